//! The worker side: recognising a worker process, and its loop.
//!
//! A worker attaches to the pool's store, reads the configuration the parent bound there, runs
//! the initializer, reports `ready`, then takes chunk keys from the task queue until it reads
//! the stop message, has run `maxtasksperchild` chunks, or finds its parent gone. A chunk lives
//! in the `running` dict (the chunks dict) from its submission until its outcomes are on the
//! result queue; a worker claims it there, in one step under the dict's lock, by replacing it
//! with its own worker id. A parent that finds the worker dead fails the chunks it had claimed
//! instead of waiting for them forever, and posts the keys of unclaimed chunks again, so that a
//! worker killed between taking a key and claiming its chunk loses nothing.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use super::tasks;
use super::wire::{claimed, claimed_by, Report, Task};
use crate::dispatch::with_object;
use crate::error::{Error, Result};
use crate::proxy::{DictProxy, QueueProxy};
use crate::store::Store;
use crate::types::dict;
use crate::value::Value;

/// The environment variable that makes a process a pool worker: `<store>:<wid>:<parent pid>`.
pub(crate) const ENV: &str = "SHMSTORE_POOL_WORKER";

/// Names of the pool's objects in its store.
pub(crate) const TASKS: &str = "tasks";
pub(crate) const RESULTS: &str = "results";
pub(crate) const RUNNING: &str = "running";
pub(crate) const CONFIG: &str = "config";

/// Exit codes: how a worker ended, which tells the parent whether to replace it.
/// Stopped (stop message, or parent gone): not replaced.
pub(crate) const EXIT_STOPPED: i32 = 0;
/// Ran `maxtasksperchild` chunks: replaced.
pub(crate) const EXIT_RETIRED: i32 = 64;
/// The initializer failed (reported on the result queue): the pool is broken.
pub(crate) const EXIT_INIT_FAILED: i32 = 65;
/// Could not attach or talk to the store.
pub(crate) const EXIT_ERROR: i32 = 66;

/// How often an idle worker checks that its parent is still there.
const PARENT_POLL: Duration = Duration::from_millis(500);

/// Who a worker is, from [`ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub store: String,
    pub wid: u64,
    pub parent: u32,
}

impl Spec {
    pub fn to_env(&self) -> String {
        format!("{}:{}:{}", self.store, self.wid, self.parent)
    }

    pub fn parse(s: &str) -> Option<Spec> {
        let mut it = s.rsplitn(3, ':');
        let parent = it.next()?.parse().ok()?;
        let wid = it.next()?.parse().ok()?;
        let store = it.next()?.to_owned();
        Some(Spec { store, wid, parent })
    }
}

/// The pool configuration a worker reads from the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Config {
    pub initializer: Option<(String, Vec<Value>)>,
    pub maxtasksperchild: u64,
}

impl Config {
    pub fn to_pairs(&self) -> Vec<(Value, Value)> {
        let (init, args) = match &self.initializer {
            Some((name, args)) => (Value::from(name.as_str()), Value::Tuple(args.clone())),
            None => (Value::None, Value::Tuple(vec![])),
        };
        vec![
            (Value::from("initializer"), init),
            (Value::from("initargs"), args),
            (
                Value::from("maxtasksperchild"),
                Value::Int(i64::try_from(self.maxtasksperchild).unwrap_or(i64::MAX)),
            ),
        ]
    }

    fn read(d: &DictProxy) -> Result<Config> {
        let bad = || Error::RuntimeError("malformed pool configuration".into());
        let initializer = match (d.get_item("initializer")?, d.get_item("initargs")?) {
            (Value::None, _) => None,
            (Value::Str(name), Value::Tuple(args)) => Some((name, args)),
            _ => return Err(bad()),
        };
        let maxtasksperchild = d
            .get_item("maxtasksperchild")?
            .as_int()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(bad)?;
        Ok(Config {
            initializer,
            maxtasksperchild,
        })
    }
}

/// If this process was started as a pool worker, runs the worker loop and exits; otherwise
/// returns at once.
///
/// Call it first in `main`, after registering the tasks (and any initializer) with
/// [`register`](super::register) and before anything else the program does: a worker of the
/// spawn start method is a fresh run of the program with an environment variable set, and
/// must not go on to do the program's own work. See [`Pool`](super::Pool) for the pattern.
///
/// A process is a worker when `SHMSTORE_POOL_WORKER` names a store and a parent that is this
/// process's parent, so a program started by a worker (which inherits the variable) is not
/// mistaken for one.
///
/// # Examples
/// ```
/// use shmstore::{pool, Pool, Value};
/// # fn main() -> shmstore::Result<()> {
/// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
/// pool::worker_main_if_requested(); // first thing in main, after the registrations
/// // Not a worker: it returns at once, and the program goes on.
/// let pool = Pool::new(1)?; // spawns this program again; that run stops in the call above
/// assert_eq!(pool.apply("square", (8,))?, Value::Int(64));
/// # pool.close()?;
/// # pool.join()
/// # }
/// ```
pub fn worker_main_if_requested() {
    let Some(spec) = requested() else {
        return;
    };
    let code = run(&spec, None);
    std::process::exit(code);
}

/// The worker spec from the environment, if this process is a worker.
pub(crate) fn requested() -> Option<Spec> {
    let spec = Spec::parse(&std::env::var(ENV).ok()?)?;
    (spec.parent == std::os::unix::process::parent_id()).then_some(spec)
}

/// Runs the worker and returns its exit code: attached to `store` (a forked worker's inherited
/// store), or opening the store the spec names.
pub(crate) fn run(spec: &Spec, store: Option<&Store>) -> i32 {
    let attach = || match store {
        Some(s) => Ok(s.clone()),
        None => Store::open(&spec.store),
    };
    // Task panics are caught per call; this catches the worker's own (none expected).
    match std::panic::catch_unwind(AssertUnwindSafe(|| serve(&attach()?, spec))) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("shmstore pool worker {}: {e}", spec.wid);
            EXIT_ERROR
        }
        Err(_) => EXIT_ERROR,
    }
}

fn serve(store: &Store, spec: &Spec) -> Result<i32> {
    let queue = |name| QueueProxy::try_from(store.lookup(name)?);
    let (tasks_q, results) = (queue(TASKS)?, queue(RESULTS)?);
    let running = DictProxy::try_from(store.lookup(RUNNING)?)?;
    let config = Config::read(&DictProxy::try_from(store.lookup(CONFIG)?)?)?;

    if let Some((name, args)) = config.initializer {
        if let Err(error) = tasks::run(&name, args) {
            results.put(
                Report::InitError {
                    wid: spec.wid,
                    error,
                }
                .to_value(),
            )?;
            return Ok(EXIT_INIT_FAILED);
        }
    }
    let pid = std::process::id();
    results.put(Report::Ready { wid: spec.wid, pid }.to_value())?;

    let mut done = 0u64;
    loop {
        let msg = match tasks_q.get_timeout(Some(PARENT_POLL)) {
            Ok(m) => m,
            Err(Error::Empty) => {
                if std::os::unix::process::parent_id() != spec.parent {
                    return Ok(EXIT_STOPPED);
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if msg == Value::None {
            return Ok(EXIT_STOPPED);
        }
        failpoint!("pool.worker.after_take");
        // The message is a hint: the chunk is claimed in the chunks dict, under its lock, in
        // one step. A worker killed before it leaves the chunk there for another (the
        // supervisor posts the hint again); a hint for a chunk already claimed or done (such a
        // repost) is skipped.
        let claim = with_object(store.core(), &running.token(), |ctx| {
            match dict::get(ctx, &msg)? {
                Some(v) if claimed_by(&v).is_none() => {
                    dict::insert(ctx, &msg, &claimed(spec.wid))?;
                    Ok(Some(v))
                }
                _ => Ok(None),
            }
        })?;
        let Some(task) = claim else {
            continue;
        };
        let Some(Task {
            job,
            start,
            name,
            calls,
        }) = Task::from_value(task)?
        else {
            running.remove(msg)?;
            continue;
        };
        let outcomes: Vec<Result<Value>> = calls
            .into_iter()
            .map(|args| tasks::run(&name, args))
            .collect();
        let n = outcomes.len();
        let report = Report::Done {
            job,
            start,
            outcomes,
        };
        if let Err(e) = results.put(report.to_value()) {
            // The outcomes do not fit (a result too large for the store): report the failure
            // for each call instead, so the caller is not left waiting.
            let outcomes = vec![Err(e); n];
            results.put(
                Report::Done {
                    job,
                    start,
                    outcomes,
                }
                .to_value(),
            )?;
        }
        running.remove(msg)?;
        done += 1;
        if config.maxtasksperchild > 0 && done >= config.maxtasksperchild {
            return Ok(EXIT_RETIRED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_back() {
        let s = Spec {
            store: "pool-1:2".into(),
            wid: 7,
            parent: 42,
        };
        assert_eq!(Spec::parse(&s.to_env()), Some(s));
        assert_eq!(Spec::parse("x:1"), None);
        assert_eq!(Spec::parse("x:a:1"), None);
    }
}
