//! A process pool, as Python's `multiprocessing.Pool`: `map`, `imap`, `imap_unordered`,
//! `starmap`, `apply`, `apply_async`, chunks, `maxtasksperchild`, an initializer — with tasks
//! and results travelling through a store's own queues.
//!
//! # How it works
//! [`Pool::builder`]`.build()` creates a private store (`pool-<pid>-<n>`) holding a task queue,
//! a result queue, a `running` dict of chunks ((job, start) → the chunk, or the worker that
//! claimed it) and the configuration, then starts the workers. A call such as [`Pool::map`]
//! registers a job, cuts its arguments into chunks, puts each in the dict and its key on the
//! task queue; a worker takes a key, claims the chunk in the dict (one step, under the dict's
//! lock), runs the task once per argument tuple, and puts the outcomes on the result queue. A
//! supervisor thread in the parent files the outcomes under their job (waking whoever waits for
//! them) and watches the workers: one that ended is reaped and, unless it was told to stop,
//! replaced; if it died while running a chunk, the calls of that chunk fail with a
//! `RuntimeError` naming the worker and how it died. The keys of chunks nobody has claimed are
//! then posted again, so a worker killed between taking a key and claiming its chunk loses
//! nothing.
//!
//! # Tasks are registered by name
//! A spawned worker is a fresh run of the program, so tasks travel by name: every process
//! registers the same functions ([`register`], [`register_args`]) and then calls
//! [`worker_main_if_requested`] — first thing in `main` — which, in a worker, runs the worker
//! loop and exits instead of returning:
//!
//! ```
//! use shmstore::{pool, Pool, Value};
//!
//! fn main() -> shmstore::Result<()> {
//!     pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
//!     pool::worker_main_if_requested(); // a worker never gets past this line
//!
//!     let pool = Pool::new(2)?; // runs this program twice more, as workers
//!     let squares = pool.map("square", 0..10)?;
//!     assert_eq!(squares[3], Value::Int(9));
//!     pool.close()?;
//!     pool.join()
//! }
//! ```
//!
//! # Start methods
//! - [`StartMethod::Spawn`] (the default) runs the program again (`std::env::current_exe()`,
//!   or the command given to [`PoolBuilder::worker_command`]) with the environment variable
//!   `SHMSTORE_POOL_WORKER` naming the store and the worker. Nothing is inherited but the task
//!   table the program builds again; safe in any program.
//! - [`StartMethod::Fork`] forks the parent: no re-run, and tasks see the parent's memory as it
//!   was at the fork. Only for programs that are **single-threaded when they create the pool**:
//!   the child of a fork has only the forking thread, and a lock another thread held at that
//!   moment (in the allocator, in stdout, in the program's own mutexes) stays locked in the
//!   child for good. Workers that replace dead or retired ones are forked later from the pool's
//!   supervisor thread, so tasks in a forked worker must not depend on locks the parent's other
//!   threads may hold. A forked worker ends with `_exit`, without running destructors: the
//!   references it inherited to objects of other stores are given back when a later
//!   `Store::open` or [`Store::reclaim`](crate::Store::reclaim) sees it dead.
//!
//! # Errors and dead workers
//! A task that returns an error or panics fails only its own call: the error comes back from
//! [`AsyncResult::get`], [`Pool::map`] or the iterators (a panic as a `RuntimeError` carrying
//! the panic message), and the worker goes on. A worker killed outright (`SIGKILL`, the OOM
//! killer) is replaced, and the calls of the chunk it was running fail with a `RuntimeError`.
//! An initializer that fails breaks the pool: pending and later calls fail with its error.
//!
//! # Limits
//! - Arguments and results are [`Value`]s stored in the pool's store: a proxy of another store
//!   is refused (`NotFound`); pass its token as a string (`token.to_string()`) and attach to it
//!   in the task.
//! - A panicking task still goes through the worker's panic hook (by default, a message on
//!   the worker's stderr) before its error is returned.
//! - A worker cannot create a pool of its own (as Python's daemonic pool workers cannot
//!   have children): [`PoolBuilder::build`] refuses in a worker process.
//! - The task queue is unbounded: `map` puts all its chunks at once, and they must fit in the
//!   store ([`PoolBuilder::store_size`]).

mod tasks;
mod wire;
mod worker;

pub use tasks::{is_registered, register, register_args};
pub use worker::worker_main_if_requested;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::process::{self, Forked};
use crate::proxy::{DictProxy, IntoArgs, QueueProxy};
use crate::store::Store;
use crate::value::Value;
use wire::{Report, Task};
use worker::{Config, Spec};

/// How often the supervisor looks at the workers, and the longest it waits for a result
/// before looking.
const POLL: Duration = Duration::from_millis(20);

/// Default size of the pool's store.
const DEFAULT_STORE_SIZE: usize = 32 << 20;

/// Numbers the pools of this process, for unique store names.
static POOLS: AtomicU32 = AtomicU32::new(0);

/// How workers are started; see the [module documentation](self#start-methods).
///
/// # Examples
/// ```
/// use shmstore::{pool, Pool, StartMethod, Value};
/// # fn main() -> shmstore::Result<()> {
/// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
/// # pool::worker_main_if_requested();
/// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
/// assert_eq!(StartMethod::default(), StartMethod::Spawn);
/// // Fork: for a program that is single-threaded when it creates the pool, as this one is.
/// assert_eq!(pool.apply("square", (3,))?, Value::Int(9));
/// # pool.close()?;
/// # pool.join()
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartMethod {
    /// Run the program again in worker mode (the default).
    #[default]
    Spawn,
    /// `fork()` the parent (opt-in; the program must be single-threaded when it creates the
    /// pool).
    Fork,
}

/// Options for a [`Pool`]; see [`Pool::builder`].
///
/// # Examples
/// ```
/// use shmstore::{pool, Pool, StartMethod, Value};
/// # fn main() -> shmstore::Result<()> {
/// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
/// # pool::worker_main_if_requested();
/// let pool = Pool::builder()
///     .processes(2)
///     .start_method(StartMethod::Fork)
///     .chunksize(4)
///     .maxtasksperchild(100)
///     .store_size(4 << 20)
///     .build()?;
/// assert_eq!(pool.map("square", 1..=3)?, [1, 4, 9].map(Value::Int));
/// # pool.close()?;
/// # pool.join()
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    processes: Option<usize>,
    start_method: StartMethod,
    chunksize: Option<usize>,
    maxtasksperchild: u64,
    initializer: Option<(String, Vec<Value>)>,
    store_size: usize,
    worker_command: Option<(PathBuf, Vec<OsString>)>,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder {
            processes: None,
            start_method: StartMethod::Spawn,
            chunksize: None,
            maxtasksperchild: 0,
            initializer: None,
            store_size: DEFAULT_STORE_SIZE,
            worker_command: None,
        }
    }
}

impl PoolBuilder {
    /// Number of worker processes (default: the number of cores; at least 1).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(3).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.processes(), 3);
    /// assert_eq!(pool.worker_pids().len(), 3);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n.max(1));
        self
    }

    /// How workers are started (default [`StartMethod::Spawn`]).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(1).start_method(StartMethod::Fork).build()?;
    /// // A forked worker is a child of this process.
    /// assert_eq!(pool.apply("square", (5,))?, Value::Int(25));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = method;
        self
    }

    /// Default number of calls sent to a worker at once by `map`, `starmap` and the `imap`s
    /// (at least 1). Without it, `map` and `starmap` use Python's rule — the length divided by
    /// four times the number of workers, rounded up — and the `imap`s send one at a time.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// // Each worker takes five calls at a time.
    /// let pool = Pool::builder().processes(2).chunksize(5).start_method(StartMethod::Fork).build()?;
    /// let squares = pool.map("square", 0..20)?;
    /// assert_eq!(squares.len(), 20);
    /// assert_eq!(squares[19], Value::Int(361));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// A worker exits after running this many chunks, and a fresh one replaces it (0, the
    /// default: workers live as long as the pool). As Python's, it counts chunks, not calls.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register("pid", |_| Ok(Value::from(std::process::id())));
    /// // A worker retires after each chunk: every call runs in a fresh process.
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .maxtasksperchild(1)
    ///     .start_method(StartMethod::Fork)
    ///     .build()?;
    /// let a = pool.apply("pid", ((),))?;
    /// let b = pool.apply("pid", ((),))?;
    /// assert_ne!(a, b);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.maxtasksperchild = n;
        self
    }

    /// The registered task `name` runs once in each worker, with `initargs`, before the worker
    /// takes any work — to set up per-worker state the tasks use. If it fails, the pool is
    /// broken: every pending and later call fails with its error.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// static BASE: AtomicI64 = AtomicI64::new(0);
    /// pool::register("set_base", |v: Value| {
    ///     BASE.store(i64::try_from(&v)?, Relaxed); // per-worker state
    ///     Ok(Value::None)
    /// });
    /// pool::register("add_base", |v: Value| Ok(Value::Int(BASE.load(Relaxed) + i64::try_from(&v)?)));
    /// let pool = Pool::builder()
    ///     .processes(2)
    ///     .initializer("set_base", (100,))
    ///     .start_method(StartMethod::Fork)
    ///     .build()?;
    /// assert_eq!(pool.map("add_base", [1, 2])?, [101, 102].map(Value::Int));
    /// assert_eq!(BASE.load(Relaxed), 0); // the parent never ran it
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn initializer(mut self, name: &str, initargs: impl IntoArgs) -> Self {
        let args = initargs.into_args().as_ref().to_vec();
        self.initializer = Some((name.to_owned(), args));
        self
    }

    /// Size in bytes of the pool's private store, which holds the queued chunks and the
    /// results not yet collected (default 32 MiB; the memory is used only as it fills).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register("len", |v: Value| Ok(Value::from(v.as_str().map_or(0, str::len))));
    /// // Big arguments and results need room in the pool's store.
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .store_size(64 << 20)
    ///     .start_method(StartMethod::Fork)
    ///     .build()?;
    /// assert_eq!(pool.apply("len", ("x".repeat(1 << 20),))?, Value::Int(1 << 20));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn store_size(mut self, bytes: usize) -> Self {
        self.store_size = bytes;
        self
    }

    /// The command a spawned worker runs (default: this program, `current_exe()`, with no
    /// arguments). The program must register the tasks and call
    /// [`worker_main_if_requested`] when started this way; a test binary, for instance, runs
    /// itself with `--exact child_main --ignored` and calls it from that test.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// // Spawned workers run this program again: here, explicitly, the running executable.
    /// let pool = Pool::builder()
    ///     .processes(1)
    ///     .worker_command(std::env::current_exe().expect("current_exe"), Vec::<String>::new())
    ///     .build()?;
    /// assert_eq!(pool.apply("square", (6,))?, Value::Int(36));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn worker_command<I, S>(mut self, program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args = args.into_iter().map(Into::into).collect();
        self.worker_command = Some((program.into(), args));
        self
    }

    /// Creates the pool's store and starts its workers.
    ///
    /// # Errors
    /// `RuntimeError` when called in a process started as a worker (the program did not call
    /// [`worker_main_if_requested`] first in `main`); `NotFound` for an initializer that is
    /// not registered; the store's errors creating it (`OutOfMemory`, `ValueError` for a
    /// store size too small); `Os` when a worker cannot be started.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// assert_eq!(
    ///     Pool::builder().initializer("nope", ()).build().map(|_| ()),
    ///     Err(Error::NotFound(
    ///         "pool task 'nope' (register it with shmstore::pool::register)".into()
    ///     ))
    /// );
    /// let pool = Pool::builder().processes(1).start_method(StartMethod::Fork).build()?;
    /// assert!(pool.store_name().starts_with("pool-"));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn build(self) -> Result<Pool> {
        if worker::requested().is_some() {
            return Err(Error::RuntimeError(
                "this process was started as a pool worker: call \
                 shmstore::pool::worker_main_if_requested() first in main()"
                    .into(),
            ));
        }
        if let Some((name, _)) = &self.initializer {
            if !is_registered(name) {
                return Err(tasks::not_registered(name));
            }
        }
        let processes = match self.processes {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let launcher = match (self.start_method, self.worker_command) {
            (StartMethod::Fork, _) => Launcher::Fork,
            (StartMethod::Spawn, Some((program, args))) => Launcher::Spawn { program, args },
            (StartMethod::Spawn, None) => Launcher::Spawn {
                program: std::env::current_exe().map_err(|e| os_error("current_exe", &e))?,
                args: Vec::new(),
            },
        };

        let n = POOLS.fetch_add(1, Ordering::Relaxed);
        let store = Store::create(&format!("pool-{}-{n}", std::process::id()), self.store_size)?;
        let tasks = store.queue(0)?;
        let results = store.queue(0)?;
        let running = store.dict(Vec::<(Value, Value)>::new())?;
        let config = Config {
            initializer: self.initializer.clone(),
            maxtasksperchild: self.maxtasksperchild,
        };
        let config_dict = store.dict(config.to_pairs())?;
        store.bind(worker::TASKS, &tasks)?;
        store.bind(worker::RESULTS, &results)?;
        store.bind(worker::RUNNING, &running)?;
        store.bind(worker::CONFIG, &config_dict)?;

        let shared = Arc::new(Shared {
            store,
            tasks,
            results,
            running,
            launcher,
            processes,
            initializer: self.initializer.map(|(name, _)| name),
            inner: Mutex::new(Inner {
                state: State::Running,
                next_job: 0,
                next_wid: 0,
                jobs: HashMap::new(),
                workers: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        // Workers first, then the supervisor: with the fork start method, the initial workers
        // are forked while the pool has no thread of its own yet.
        let started = {
            let mut inner = shared.inner.lock();
            let r = (0..processes).try_for_each(|_| shared.launch(&mut inner));
            if r.is_err() {
                for w in &mut inner.workers {
                    w.proc.kill_and_reap();
                }
            }
            r
        };
        let supervisor = started.and_then(|()| {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("shmstore-pool".into())
                .spawn(move || s.supervise())
                .map_err(|e| os_error("spawn supervisor thread", &e))
        });
        match supervisor {
            Ok(handle) => Ok(Pool {
                shared,
                supervisor: Mutex::new(Some(handle)),
                chunksize: self.chunksize,
            }),
            Err(e) => {
                for w in &mut shared.inner.lock().workers {
                    w.proc.kill_and_reap();
                }
                let _ = Store::remove(shared.store.name());
                Err(e)
            }
        }
    }
}

fn os_error(op: &'static str, e: &std::io::Error) -> Error {
    Error::Os {
        op,
        errno: e.raw_os_error().unwrap_or(0),
    }
}

/// A pool of worker processes running registered tasks, as Python's `multiprocessing.Pool`.
///
/// Tasks are named functions ([`register`]); arguments and results are [`Value`]s. Methods
/// take `&self`, so one pool may serve several threads. Dropping the pool terminates it (as
/// leaving Python's `with Pool() as p:` block does): call [`Pool::close`] and [`Pool::join`]
/// first to let submitted work finish.
///
/// # Examples
/// The program registers its tasks and lets a worker run from the top of `main`; here the
/// workers are forked, so the example runs as it is (with the default spawn method, they would
/// run this program again and return from `worker_main_if_requested` never).
/// ```
/// use shmstore::{pool, Error, Pool, StartMethod, Value};
///
/// fn main() -> shmstore::Result<()> {
///     pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
///     pool::register_args("add", |args: &[Value]| match args {
///         [a, b] => Ok(Value::Int(i64::try_from(a)? + i64::try_from(b)?)),
///         _ => Err(Error::TypeError("add() takes 2 arguments".into())),
///     });
///     pool::worker_main_if_requested();
///
///     let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
///     assert_eq!(pool.map("square", 0..5)?, [0, 1, 4, 9, 16].map(Value::Int));
///     assert_eq!(pool.starmap("add", [(1, 2), (3, 4)])?, [Value::Int(3), Value::Int(7)]);
///     let r = pool.apply_async("square", (12,))?;
///     let mut lazy = pool.imap("square", 0..3)?;
///     assert_eq!(lazy.next(), Some(Ok(Value::Int(0))));
///     assert_eq!(r.get(None)?, Value::Int(144));
///     assert_eq!(pool.apply("square", ("x",)), Err(Error::TypeError(
///         "'str' object cannot be interpreted as an integer".into()
///     )));
///     pool.close()?;
///     pool.join()?;
///     Ok(())
/// }
/// ```
pub struct Pool {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    chunksize: Option<usize>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.shared.inner.lock();
        f.debug_struct("Pool")
            .field("store", &self.shared.store.name())
            .field("processes", &self.shared.processes)
            .field("state", &inner.state)
            .field("workers", &inner.workers.len())
            .finish()
    }
}

impl Pool {
    /// A pool of `processes` workers with the default options (spawn start method).
    ///
    /// # Errors
    /// As [`PoolBuilder::build`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// // Two workers, spawned: each runs this program again and stops at worker_main_if_requested.
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.map("square", [2, 3])?, [4, 9].map(Value::Int));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// Options: number of processes, start method, chunk size, `maxtasksperchild`,
    /// initializer, store size, worker command.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(1).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of workers the pool keeps running.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.processes(), 2);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn processes(&self) -> usize {
        self.shared.processes
    }

    /// The name of the pool's private store.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// // A private store, named after this process.
    /// assert!(pool.store_name().starts_with(&format!("pool-{}-", std::process::id())));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn store_name(&self) -> &str {
        self.shared.store.name()
    }

    /// The pids of the workers running now.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let pids = pool.worker_pids();
    /// assert_eq!(pids.len(), 2);
    /// assert!(!pids.contains(&std::process::id()));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared
            .inner
            .lock()
            .workers
            .iter()
            .map(|w| w.pid)
            .collect()
    }

    /// `pool.apply(func, args)`: runs the task `func` with the positional `args` in a worker
    /// and waits for its result.
    ///
    /// # Errors
    /// The task's own error (a panic as `RuntimeError`); `NotFound` for a task not registered
    /// in this process; `ValueError("Pool not running")` after `close` or `terminate`;
    /// `RuntimeError` when the worker running it died or the pool was terminated or broken.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.apply("square", (12,))?, Value::Int(144));
    /// // The task's own error comes back; the worker goes on.
    /// assert_eq!(
    ///     pool.apply("square", ("x",)),
    ///     Err(Error::TypeError("'str' object cannot be interpreted as an integer".into()))
    /// );
    /// assert!(matches!(pool.apply("nope", (1,)), Err(Error::NotFound(_))));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn apply(&self, func: &str, args: impl IntoArgs) -> Result<Value> {
        self.apply_async(func, args)?.get(None)
    }

    /// `pool.apply_async(func, args)`: submits one call and returns at once; the result comes
    /// from [`AsyncResult::get`].
    ///
    /// # Errors
    /// `NotFound` for a task not registered in this process; `ValueError("Pool not running")`
    /// after `close` or `terminate` (or the pool's error, once broken).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let a = pool.apply_async("square", (3,))?;
    /// let b = pool.apply_async("square", (4,))?; // both run at once
    /// assert_eq!((a.get(None)?, b.get(None)?), (Value::Int(9), Value::Int(16)));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn apply_async(&self, func: &str, args: impl IntoArgs) -> Result<AsyncResult> {
        let args = args.into_args().as_ref().to_vec();
        let job = self.shared.submit(func, vec![args], 1)?;
        Ok(AsyncResult {
            shared: self.shared.clone(),
            job,
            single: true,
        })
    }

    /// `pool.map(func, iterable)`: calls `func(item)` for every item in workers, and returns
    /// the results in the order of the items. Chunk size: the builder's, or Python's rule.
    ///
    /// # Errors
    /// The error of the first item (in order) whose call failed; as [`Pool::apply`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.map("square", 0..5)?, [0, 1, 4, 9, 16].map(Value::Int));
    /// // The first failed item's error, in order.
    /// assert!(pool.map("square", vec![Value::from(1), Value::from("x")]).is_err());
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn map<I>(&self, func: &str, iterable: I) -> Result<Vec<Value>>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.map_async(func, iterable, None)?.get_list(None)
    }

    /// `pool.map(func, iterable, chunksize)`: as [`Pool::map`], sending `chunksize` items to a
    /// worker at a time.
    ///
    /// # Errors
    /// As [`Pool::map`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let squares = pool.map_with("square", 0..100, 25)?; // four chunks
    /// assert_eq!(squares.len(), 100);
    /// assert_eq!(squares[99], Value::Int(9801));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn map_with<I>(&self, func: &str, iterable: I, chunksize: usize) -> Result<Vec<Value>>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.map_async(func, iterable, Some(chunksize))?
            .get_list(None)
    }

    /// `pool.map_async(func, iterable, chunksize)`: as [`Pool::map`] without waiting; the
    /// [`AsyncResult`] gives the results as a `Value::List`.
    ///
    /// # Errors
    /// As [`Pool::apply_async`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let r = pool.map_async("square", [1, 2, 3], None)?;
    /// // ... other work meanwhile ...
    /// assert_eq!(r.get(None)?, Value::from(vec![1, 4, 9]));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn map_async<I>(
        &self,
        func: &str,
        iterable: I,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let calls: Vec<Vec<Value>> = iterable.into_iter().map(|v| vec![v.into()]).collect();
        self.submit_list(func, calls, chunksize)
    }

    /// `pool.starmap(func, iterable)`: as [`Pool::map`], each item (a tuple or list) unpacked
    /// into the task's positional arguments: `[(1, 2), (3, 4)]` calls `func(1, 2)` and
    /// `func(3, 4)`.
    ///
    /// # Errors
    /// `TypeError` for an item that is not a tuple or list; as [`Pool::map`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register_args("pow", |args: &[Value]| match args {
    ///     [b, e] => Ok(Value::Int(i64::try_from(b)?.pow(u32::try_from(i64::try_from(e)?).unwrap_or(0)))),
    ///     _ => Err(shmstore::Error::TypeError("pow() takes 2 arguments".into())),
    /// });
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.starmap("pow", [(2, 3), (3, 2)])?, [Value::Int(8), Value::Int(9)]);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn starmap<I>(&self, func: &str, iterable: I) -> Result<Vec<Value>>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.starmap_async(func, iterable, None)?.get_list(None)
    }

    /// `pool.starmap(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`Pool::starmap`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register_args("add", |args: &[Value]| Ok(Value::Int(args.iter().filter_map(Value::as_int).sum())));
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let pairs: Vec<(i64, i64)> = (0..10).map(|i| (i, i)).collect();
    /// let sums = pool.starmap_with("add", pairs, 5)?;
    /// assert_eq!(sums[9], Value::Int(18));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn starmap_with<I>(&self, func: &str, iterable: I, chunksize: usize) -> Result<Vec<Value>>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.starmap_async(func, iterable, Some(chunksize))?
            .get_list(None)
    }

    /// `pool.starmap_async(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`Pool::starmap`], without the calls' own errors (those come from the result).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register_args("add", |args: &[Value]| Ok(Value::Int(args.iter().filter_map(Value::as_int).sum())));
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let r = pool.starmap_async("add", [(1, 2, 3), (4, 5, 6)], None)?;
    /// assert_eq!(r.get(None)?, Value::from(vec![6, 15]));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn starmap_async<I>(
        &self,
        func: &str,
        iterable: I,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let calls = iterable
            .into_iter()
            .map(|v| match v.into() {
                Value::Tuple(args) | Value::List(args) => Ok(args),
                other => Err(Error::TypeError(format!(
                    "{func}() argument after * must be an iterable, not {}",
                    other.type_name()
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        self.submit_list(func, calls, chunksize)
    }

    fn submit_list(
        &self,
        func: &str,
        calls: Vec<Vec<Value>>,
        chunksize: Option<usize>,
    ) -> Result<AsyncResult> {
        // Python's rule: about four chunks per worker.
        let chunksize = chunksize.or(self.chunksize).unwrap_or_else(|| {
            calls
                .len()
                .div_ceil(self.shared.processes.saturating_mul(4))
        });
        let job = self.shared.submit(func, calls, chunksize)?;
        Ok(AsyncResult {
            shared: self.shared.clone(),
            job,
            single: false,
        })
    }

    /// `pool.imap(func, iterable)`: as [`Pool::map`], but the results come one by one, in the
    /// order of the items, as soon as each is ready (the items are all submitted at once).
    /// Chunk size: the builder's, or 1.
    ///
    /// # Errors
    /// As [`Pool::apply_async`]; each call's own error comes from the iterator.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let mut results = pool.imap("square", 1..=3)?;
    /// assert_eq!(results.next(), Some(Ok(Value::Int(1)))); // as soon as it is ready
    /// let rest: Vec<Value> = results.collect::<shmstore::Result<_>>()?;
    /// assert_eq!(rest, [Value::Int(4), Value::Int(9)]);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn imap<I>(&self, func: &str, iterable: I) -> Result<IMapIterator>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.imap_impl(func, iterable, None, true)
    }

    /// `pool.imap(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`Pool::imap`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let total: i64 = pool
    ///     .imap_with("square", 1..=10, 5)?
    ///     .map(|r| r.map(|v| v.as_int().unwrap_or(0)))
    ///     .sum::<shmstore::Result<i64>>()?;
    /// assert_eq!(total, 385);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn imap_with<I>(&self, func: &str, iterable: I, chunksize: usize) -> Result<IMapIterator>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.imap_impl(func, iterable, Some(chunksize), true)
    }

    /// `pool.imap_unordered(func, iterable)`: as [`Pool::imap`], the results in the order they
    /// are ready.
    ///
    /// # Errors
    /// As [`Pool::imap`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let mut got: Vec<i64> = pool
    ///     .imap_unordered("square", [3, 1, 2])?
    ///     .map(|r| r.map(|v| v.as_int().unwrap_or(0)))
    ///     .collect::<shmstore::Result<_>>()?;
    /// got.sort(); // in the order they were ready
    /// assert_eq!(got, [1, 4, 9]);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn imap_unordered<I>(&self, func: &str, iterable: I) -> Result<IMapIterator>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.imap_impl(func, iterable, None, false)
    }

    /// `pool.imap_unordered(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`Pool::imap`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let n = pool.imap_unordered_with("square", 0..30, 10)?.count();
    /// assert_eq!(n, 30);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn imap_unordered_with<I>(
        &self,
        func: &str,
        iterable: I,
        chunksize: usize,
    ) -> Result<IMapIterator>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.imap_impl(func, iterable, Some(chunksize), false)
    }

    fn imap_impl<I>(
        &self,
        func: &str,
        iterable: I,
        chunksize: Option<usize>,
        ordered: bool,
    ) -> Result<IMapIterator>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let calls: Vec<Vec<Value>> = iterable.into_iter().map(|v| vec![v.into()]).collect();
        let len = calls.len();
        let chunksize = chunksize.or(self.chunksize).unwrap_or(1);
        let job = self.shared.submit(func, calls, chunksize)?;
        Ok(IMapIterator {
            shared: self.shared.clone(),
            job,
            next: 0,
            len,
            ordered,
        })
    }

    /// `pool.close()`: accepts no more work; the workers finish what was submitted, then exit.
    /// Follow with [`Pool::join`].
    ///
    /// # Errors
    /// The store's errors queueing the stop messages (`OutOfMemory`).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let pending = pool.apply_async("square", (7,))?;
    /// pool.close()?; // no more work; what was submitted still runs
    /// assert_eq!(pool.apply("square", (1,)), Err(Error::ValueError("Pool not running".into())));
    /// pool.join()?;
    /// assert_eq!(pending.get(None)?, Value::Int(49));
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self) -> Result<()> {
        let mut inner = self.shared.inner.lock();
        if !matches!(inner.state, State::Running) {
            return Ok(());
        }
        inner.state = State::Closed;
        // The stop messages go behind every chunk already queued (no more can come): a worker
        // reads one only when all the work has been taken.
        for _ in 0..self.shared.processes {
            self.shared.tasks.put(Value::None)?;
        }
        Ok(())
    }

    /// `pool.terminate()`: kills the workers at once (`SIGKILL`); pending calls fail with
    /// `RuntimeError("pool terminated")`. Returns when the workers are reaped.
    ///
    /// # Errors
    /// `RuntimeError` if the supervisor thread panicked.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register("sleep", |_| {
    ///     std::thread::sleep(std::time::Duration::from_secs(60));
    ///     Ok(Value::None)
    /// });
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let stuck = pool.apply_async("sleep", ((),))?;
    /// pool.terminate()?; // kills the workers now
    /// assert_eq!(stuck.get(None), Err(Error::RuntimeError("pool terminated".into())));
    /// pool.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn terminate(&self) -> Result<()> {
        {
            let mut inner = self.shared.inner.lock();
            if !matches!(inner.state, State::Broken(_)) {
                inner.state = State::Terminated;
            }
            let err = Error::RuntimeError("pool terminated".into());
            for job in inner.jobs.values_mut() {
                job.fail_all(&err);
            }
            for w in &mut inner.workers {
                w.proc.kill();
            }
            self.shared.changed.notify_all();
        }
        self.join_supervisor()
    }

    /// `pool.join()`: waits for the workers to exit, after [`Pool::close`] or
    /// [`Pool::terminate`].
    ///
    /// # Errors
    /// `ValueError("Pool is still running")` before `close` or `terminate`, as Python's;
    /// `RuntimeError` if the supervisor thread panicked.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(pool.join(), Err(Error::ValueError("Pool is still running".into())));
    /// pool.close()?;
    /// pool.join()?; // the workers have exited
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&self) -> Result<()> {
        if matches!(self.shared.inner.lock().state, State::Running) {
            return Err(Error::ValueError("Pool is still running".into()));
        }
        self.join_supervisor()
    }

    fn join_supervisor(&self) -> Result<()> {
        let handle = self.supervisor.lock().take();
        match handle.map(JoinHandle::join) {
            Some(Err(_)) => Err(Error::RuntimeError("pool supervisor panicked".into())),
            _ => Ok(()),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.terminate();
        // Workers are gone; results still held by AsyncResults keep their mapping.
        let _ = Store::remove(self.shared.store.name());
    }
}

/// The result of [`Pool::apply_async`], [`Pool::map_async`] or [`Pool::starmap_async`], as
/// Python's `AsyncResult`.
///
/// # Examples
/// ```
/// # use shmstore::{pool, Pool, StartMethod, Value};
/// # fn main() -> shmstore::Result<()> {
/// # pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
/// # let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
/// let r = pool.apply_async("square", (7,))?;
/// if r.wait(Some(std::time::Duration::from_secs(30))) {
///     assert!(r.successful()?);
///     assert_eq!(r.get(None)?, Value::Int(49));
/// }
/// # pool.close()?;
/// # pool.join()
/// # }
/// ```
pub struct AsyncResult {
    shared: Arc<Shared>,
    job: u64,
    single: bool,
}

impl std::fmt::Debug for AsyncResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("job", &self.job)
            .field("ready", &self.ready())
            .finish()
    }
}

impl AsyncResult {
    /// True once every call has finished (successfully or not).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let r = pool.apply_async("square", (2,))?;
    /// r.wait(None);
    /// assert!(r.ready());
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn ready(&self) -> bool {
        let inner = self.shared.inner.lock();
        inner.jobs.get(&self.job).map_or(true, |j| j.remaining == 0)
    }

    /// Waits until the result is ready, at most `timeout` (None: without limit); true if it
    /// is.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use std::time::Duration;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let r = pool.apply_async("square", (2,))?;
    /// assert!(r.wait(Some(Duration::from_secs(30))));
    /// assert_eq!(r.get(Some(Duration::ZERO))?, Value::Int(4));
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.shared
            .wait_job(self.job, deadline(timeout), |j| j.remaining == 0)
            .is_ok()
    }

    /// True if every call succeeded.
    ///
    /// # Errors
    /// `ValueError("result is not ready")` before it is, as Python's.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let ok = pool.apply_async("square", (2,))?;
    /// let bad = pool.apply_async("square", ("two",))?;
    /// ok.wait(None);
    /// bad.wait(None);
    /// assert!(ok.successful()?);
    /// assert!(!bad.successful()?);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn successful(&self) -> Result<bool> {
        let inner = self.shared.inner.lock();
        let job = inner.jobs.get(&self.job).ok_or_else(vanished)?;
        if job.remaining > 0 {
            return Err(Error::ValueError("result is not ready".into()));
        }
        Ok(job.slots.iter().all(|s| matches!(s, Some(Ok(_)))))
    }

    /// The result, waiting at most `timeout` (None: without limit): the value of an
    /// `apply_async`, the list of values of a `map_async`. May be called again.
    ///
    /// # Errors
    /// `Timeout` when the timeout runs out first; the call's error (for a map, the first
    /// failed item's); `RuntimeError` when a worker died running it or the pool was
    /// terminated.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use std::time::Duration;
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register("slow", |v: Value| {
    ///     std::thread::sleep(Duration::from_millis(200));
    ///     Ok(v)
    /// });
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let r = pool.apply_async("slow", ("done",))?;
    /// assert_eq!(r.get(Some(Duration::from_millis(1))), Err(Error::Timeout));
    /// assert_eq!(r.get(None)?, Value::from("done"));
    /// assert_eq!(r.get(None)?, Value::from("done")); // again
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn get(&self, timeout: Option<Duration>) -> Result<Value> {
        let values = self.collect(timeout)?;
        if self.single {
            values
                .into_iter()
                .next()
                .ok_or_else(|| Error::RuntimeError("empty apply result".into()))
        } else {
            Ok(Value::List(values))
        }
    }

    fn get_list(&self, timeout: Option<Duration>) -> Result<Vec<Value>> {
        self.collect(timeout)
    }

    fn collect(&self, timeout: Option<Duration>) -> Result<Vec<Value>> {
        let inner = self
            .shared
            .wait_job(self.job, deadline(timeout), |j| j.remaining == 0)?;
        let job = inner.jobs.get(&self.job).ok_or_else(vanished)?;
        job.slots
            .iter()
            .map(|s| s.clone().unwrap_or_else(|| Err(vanished())))
            .collect()
    }
}

impl Drop for AsyncResult {
    fn drop(&mut self) {
        self.shared.inner.lock().jobs.remove(&self.job);
    }
}

/// The results of [`Pool::imap`] (in order) or [`Pool::imap_unordered`] (as they come), as
/// they are ready. Each item is the result of one call.
///
/// # Examples
/// ```
/// use shmstore::{pool, Pool, StartMethod, Value};
/// # fn main() -> shmstore::Result<()> {
/// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
/// # pool::worker_main_if_requested();
/// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
/// let mut it = pool.imap("square", [1, 2])?;
/// assert_eq!(it.next(), Some(Ok(Value::Int(1))));
/// assert_eq!(it.next(), Some(Ok(Value::Int(4))));
/// assert_eq!(it.next(), None);
/// # pool.close()?;
/// # pool.join()
/// # }
/// ```
pub struct IMapIterator {
    shared: Arc<Shared>,
    job: u64,
    next: usize,
    len: usize,
    ordered: bool,
}

impl std::fmt::Debug for IMapIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMapIterator")
            .field("job", &self.job)
            .field("next", &self.next)
            .field("len", &self.len)
            .field("ordered", &self.ordered)
            .finish()
    }
}

impl IMapIterator {
    /// The next result, waiting at most `timeout` (None: without limit), as Python's
    /// `next(timeout)`: `None` after the last, `Some(Err(Error::Timeout))` when the timeout ran
    /// out (the iterator does not advance).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{pool, Pool, StartMethod, Value};
    /// use std::time::Duration;
    /// use shmstore::Error;
    /// # fn main() -> shmstore::Result<()> {
    /// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
    /// # pool::worker_main_if_requested();
    /// pool::register("slow", |v: Value| {
    ///     std::thread::sleep(Duration::from_millis(200));
    ///     Ok(v)
    /// });
    /// let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build()?;
    /// let mut it = pool.imap("slow", [1])?;
    /// assert_eq!(it.next_timeout(Some(Duration::from_millis(1))), Some(Err(Error::Timeout)));
    /// assert_eq!(it.next_timeout(None), Some(Ok(Value::Int(1)))); // it did not advance
    /// assert_eq!(it.next_timeout(None), None);
    /// # pool.close()?;
    /// # pool.join()
    /// # }
    /// ```
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> Option<Result<Value>> {
        if self.next >= self.len {
            return None;
        }
        let (next, ordered) = (self.next, self.ordered);
        let ready = |j: &Job| {
            if ordered {
                matches!(j.slots.get(next), Some(Some(_)))
            } else {
                !j.arrived.is_empty()
            }
        };
        let mut inner = match self.shared.wait_job(self.job, deadline(timeout), ready) {
            Ok(g) => g,
            Err(e) => return Some(Err(e)),
        };
        let Some(job) = inner.jobs.get_mut(&self.job) else {
            return Some(Err(vanished()));
        };
        let index = if ordered {
            next
        } else {
            job.arrived.pop_front().unwrap_or(next)
        };
        self.next += 1;
        let slot = job.slots.get_mut(index).and_then(Option::take);
        Some(slot.unwrap_or_else(|| Err(vanished())))
    }
}

impl Iterator for IMapIterator {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        self.next_timeout(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for IMapIterator {}

impl Drop for IMapIterator {
    fn drop(&mut self) {
        self.shared.inner.lock().jobs.remove(&self.job);
    }
}

#[cold]
fn vanished() -> Error {
    Error::RuntimeError("pool result missing".into())
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

// A pool and its results may be shared with and sent to other threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool>();
    send_sync::<AsyncResult>();
    send_sync::<IMapIterator>();
};

/// The parent's side of a pool, shared by the [`Pool`], its results and the supervisor.
struct Shared {
    store: Store,
    tasks: QueueProxy,
    results: QueueProxy,
    running: DictProxy,
    launcher: Launcher,
    processes: usize,
    initializer: Option<String>,
    inner: Mutex<Inner>,
    /// Notified whenever a job gets results or the pool changes state.
    changed: Condvar,
}

enum Launcher {
    Spawn {
        program: PathBuf,
        args: Vec<OsString>,
    },
    Fork,
}

struct Inner {
    state: State,
    next_job: u64,
    next_wid: u64,
    /// Jobs whose handle (AsyncResult, iterator) is alive; results for others are dropped.
    jobs: HashMap<u64, Job>,
    workers: Vec<Worker>,
}

#[derive(Debug)]
enum State {
    Running,
    Closed,
    Terminated,
    Broken(Error),
}

struct Worker {
    wid: u64,
    pid: u32,
    /// It reported `ready` (attached and initialized).
    ready: bool,
    proc: Proc,
}

enum Proc {
    Spawned(Child),
    Forked(u32),
}

impl Proc {
    fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self {
            Proc::Spawned(c) => c.try_wait().map_err(|e| os_error("waitpid", &e)),
            Proc::Forked(pid) => process::try_wait(*pid),
        }
    }

    /// Kills and waits for the worker (when no supervisor will reap it).
    fn kill_and_reap(&mut self) {
        self.kill();
        match self {
            Proc::Spawned(c) => {
                let _ = c.wait();
            }
            // Only on error paths, for a process just sent SIGKILL: it ends promptly.
            Proc::Forked(pid) => {
                while let Ok(None) = process::try_wait(*pid) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn kill(&mut self) {
        // A worker that already exited cannot be killed; it is reaped all the same.
        let _ = match self {
            Proc::Spawned(c) => c.kill().map_err(|e| os_error("kill", &e)),
            Proc::Forked(pid) => process::kill(*pid, libc::SIGKILL),
        };
    }
}

/// One submitted `map`/`apply`/…: a result slot per call.
struct Job {
    slots: Vec<Option<Result<Value>>>,
    /// Indices of filled slots, in the order they were filled (for `imap_unordered`).
    arrived: VecDeque<usize>,
    /// Slots not filled yet.
    remaining: usize,
    /// Chunks not reported yet: start index → (length, task name).
    chunks: HashMap<u64, (usize, String)>,
}

impl Job {
    fn fill(&mut self, start: u64, outcomes: impl IntoIterator<Item = Result<Value>>) {
        let Some((len, _)) = self.chunks.remove(&start) else {
            return; // reported already (a worker that died after reporting)
        };
        let mut outcomes = outcomes.into_iter();
        let Ok(start) = usize::try_from(start) else {
            return;
        };
        for i in start..start.saturating_add(len) {
            let o = outcomes
                .next()
                .unwrap_or_else(|| Err(Error::RuntimeError("pool result missing".into())));
            if let Some(slot @ None) = self.slots.get_mut(i) {
                *slot = Some(o);
                self.remaining -= 1;
                self.arrived.push_back(i);
            }
        }
    }

    fn fail_chunk(&mut self, start: u64, err: &Error) {
        let len = self.chunks.get(&start).map_or(0, |c| c.0);
        self.fill(start, std::iter::repeat(Err(err.clone())).take(len));
    }

    fn fail_all(&mut self, err: &Error) {
        let starts: Vec<u64> = self.chunks.keys().copied().collect();
        for s in starts {
            self.fail_chunk(s, err);
        }
    }
}

impl Shared {
    /// Submits the calls of a new job in chunks; returns its id.
    fn submit(&self, func: &str, calls: Vec<Vec<Value>>, chunksize: usize) -> Result<u64> {
        if !is_registered(func) {
            return Err(tasks::not_registered(func));
        }
        let chunksize = chunksize.max(1);
        let n = calls.len();
        // Chunks are queued under the lock, so `close` cannot put its stop messages before
        // them.
        let mut inner = self.inner.lock();
        match &inner.state {
            State::Running => {}
            State::Broken(e) => return Err(e.clone()),
            State::Closed | State::Terminated => {
                return Err(Error::ValueError("Pool not running".into()))
            }
        }
        let id = inner.next_job;
        inner.next_job += 1;
        let starts = (0..n).step_by(chunksize);
        let mut job = Job {
            slots: vec![None; n],
            arrived: VecDeque::new(),
            remaining: n,
            chunks: starts
                .clone()
                .map(|s| (s as u64, (chunksize.min(n - s), func.to_owned())))
                .collect(),
        };
        let mut calls = calls.into_iter();
        for start in starts {
            let task = Task {
                job: id,
                start: start as u64,
                name: func.to_owned(),
                calls: calls.by_ref().take(chunksize).collect(),
            };
            // The chunk first, then its key (a worker claims the chunk the key names).
            let key = task.key();
            let queued = self
                .running
                .insert(key.clone(), task.to_value())
                .and_then(|()| {
                    self.tasks.put(key.clone()).inspect_err(|_| {
                        let _ = self.running.remove(key.clone());
                    })
                });
            if let Err(e) = queued {
                // This chunk and the later ones will not run; the earlier ones will.
                job.fail_all_from(start as u64, &e);
                break;
            }
        }
        inner.jobs.insert(id, job);
        Ok(id)
    }

    /// Waits until the job satisfies `ready`, until `deadline` (None: without limit).
    fn wait_job(
        &self,
        job: u64,
        deadline: Option<Instant>,
        ready: impl Fn(&Job) -> bool,
    ) -> Result<MutexGuard<'_, Inner>> {
        let mut inner = self.inner.lock();
        loop {
            match inner.jobs.get(&job) {
                None => return Err(vanished()),
                Some(j) if ready(j) => return Ok(inner),
                Some(_) => {}
            }
            match deadline {
                None => self.changed.wait(&mut inner),
                Some(d) => {
                    if Instant::now() >= d {
                        return Err(Error::Timeout);
                    }
                    self.changed.wait_until(&mut inner, d);
                }
            }
        }
    }

    /// Starts one worker.
    fn launch(&self, inner: &mut Inner) -> Result<()> {
        let wid = inner.next_wid;
        inner.next_wid += 1;
        let spec = Spec {
            store: self.store.name().to_owned(),
            wid,
            parent: std::process::id(),
        };
        let (pid, proc) = match &self.launcher {
            Launcher::Spawn { program, args } => {
                let child = Command::new(program)
                    .args(args)
                    .env(worker::ENV, spec.to_env())
                    .stdin(Stdio::null())
                    .spawn()
                    .map_err(|e| os_error("spawn pool worker", &e))?;
                (child.id(), Proc::Spawned(child))
            }
            Launcher::Fork => match process::fork()? {
                Forked::Child => {
                    let code = worker::run(&spec, Some(&self.store));
                    process::exit_now(code)
                }
                Forked::Parent(pid) => (pid, Proc::Forked(pid)),
            },
        };
        inner.workers.push(Worker {
            wid,
            pid,
            ready: false,
            proc,
        });
        Ok(())
    }

    /// The supervisor thread: files results, reaps and replaces workers, and ends when the
    /// pool is no longer running and its last worker is gone.
    fn supervise(self: Arc<Self>) {
        let mut next_check = Instant::now();
        loop {
            match self.results.get_timeout(Some(POLL)) {
                Ok(msg) => {
                    let mut inner = self.inner.lock();
                    self.deliver(&mut inner, msg);
                }
                Err(Error::Empty) => {}
                Err(e) => self.break_pool(&mut self.inner.lock(), e),
            }
            if Instant::now() >= next_check {
                next_check = Instant::now() + POLL;
                let mut inner = self.inner.lock();
                self.check_workers(&mut inner);
                if !matches!(inner.state, State::Running) && inner.workers.is_empty() {
                    // Every worker is gone: a call still pending will never run.
                    let e = Error::RuntimeError("pool stopped before the call ran".into());
                    for job in inner.jobs.values_mut() {
                        job.fail_all(&e);
                    }
                    self.changed.notify_all();
                    return;
                }
            }
        }
    }

    /// Files one report from a worker.
    fn deliver(&self, inner: &mut Inner, msg: Value) {
        match Report::from_value(msg) {
            Ok(Report::Ready { wid, .. }) => {
                if let Some(w) = inner.workers.iter_mut().find(|w| w.wid == wid) {
                    w.ready = true;
                }
            }
            Ok(Report::Done {
                job,
                start,
                outcomes,
            }) => {
                if let Some(j) = inner.jobs.get_mut(&job) {
                    j.fill(start, outcomes);
                    self.changed.notify_all();
                }
            }
            Ok(Report::InitError { error, .. }) => {
                let name = self.initializer.as_deref().unwrap_or("?");
                let e = Error::RuntimeError(format!("pool initializer '{name}' failed: {error}"));
                self.break_pool(inner, e);
            }
            Err(e) => self.break_pool(inner, e),
        }
    }

    /// Reaps workers that ended; fails the chunk a dead one was running; replaces those that
    /// should be.
    fn check_workers(&self, inner: &mut Inner) {
        let mut ended = Vec::new();
        for (i, w) in inner.workers.iter_mut().enumerate() {
            match w.proc.try_wait() {
                Ok(None) => {}
                Ok(Some(status)) => ended.push((i, Some(status))),
                Err(_) => ended.push((i, None)),
            }
        }
        if ended.is_empty() {
            return;
        }
        // What they reported before ending is in the queue: file it first, so a chunk they
        // finished is not failed below and their `ready` is seen.
        while let Ok(msg) = self.results.get_nowait() {
            self.deliver(inner, msg);
        }
        // Highest index first, so the lower ones stay valid.
        for (i, status) in ended.into_iter().rev() {
            let w = inner.workers.swap_remove(i);
            let how = status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string());
            // A worker that ended on its own (stopped, retired) was not between a key and
            // its claim: only the others' unclaimed keys are posted again.
            let ended_itself = matches!(
                status.and_then(|s| s.code()),
                Some(worker::EXIT_STOPPED | worker::EXIT_RETIRED)
            );
            self.fail_running(inner, w.wid, w.pid, &how, !ended_itself);
            match status.and_then(|s| s.code()) {
                // It exited by itself before it could work: a worker command that does not
                // run the worker (or cannot attach). Replacing it would fail the same way.
                Some(_) if !w.ready => {
                    let e = Error::RuntimeError(format!(
                        "pool worker {} exited ({how}) before it was ready: does the worker \
                         command call shmstore::pool::worker_main_if_requested() first in \
                         main(), with the tasks registered?",
                        w.pid
                    ));
                    self.break_pool(inner, e);
                }
                Some(worker::EXIT_STOPPED) => {}
                _ => self.replace(inner),
            }
        }
        self.changed.notify_all();
    }

    /// Fails the chunks the ended worker `wid` had claimed and not reported, and posts the keys
    /// of the chunks nobody has claimed again: the worker may have taken one of those keys from
    /// the queue and died before claiming its chunk (a key posted twice is skipped by the
    /// worker that finds its chunk claimed or gone).
    fn fail_running(&self, inner: &mut Inner, wid: u64, pid: u32, how: &str, repost: bool) {
        let repost = repost && matches!(inner.state, State::Running | State::Closed);
        let Ok(entries) = self.running.items() else {
            return;
        };
        for (key, v) in entries {
            let Some((job, start)) = wire::parse_key(&key) else {
                continue;
            };
            match wire::claimed_by(&v) {
                Some(w) if w == wid => {
                    let _ = self.running.remove(key);
                    let Some(j) = inner.jobs.get_mut(&job) else {
                        continue;
                    };
                    if let Some((_, task)) = j.chunks.get(&start) {
                        let e = Error::RuntimeError(format!(
                            "pool worker {pid} died ({how}) while running task '{task}'"
                        ));
                        j.fail_chunk(start, &e);
                    }
                }
                Some(_) => {}
                None if repost => {
                    if let Err(e) = self.tasks.put(key) {
                        self.break_pool(inner, e);
                        return;
                    }
                }
                None => {}
            }
        }
    }

    /// Starts a worker in place of one that ended, while the pool has work to do.
    fn replace(&self, inner: &mut Inner) {
        match inner.state {
            State::Running => {}
            // After close, the stop messages are counted for the workers then running: the
            // newcomer gets one of its own (behind all the work, so it cannot stop early).
            State::Closed => {
                if let Err(e) = self.tasks.put(Value::None) {
                    self.break_pool(inner, e);
                    return;
                }
            }
            State::Terminated | State::Broken(_) => return,
        }
        if let Err(e) = self.launch(inner) {
            self.break_pool(inner, e);
        }
    }

    /// Marks the pool broken: every pending call fails with `err`, the workers are killed.
    fn break_pool(&self, inner: &mut Inner, err: Error) {
        if matches!(inner.state, State::Broken(_) | State::Terminated) {
            return;
        }
        for job in inner.jobs.values_mut() {
            job.fail_all(&err);
        }
        inner.state = State::Broken(err);
        for w in &mut inner.workers {
            w.proc.kill();
        }
        self.changed.notify_all();
    }
}

impl Job {
    fn fail_all_from(&mut self, from: u64, err: &Error) {
        let starts: Vec<u64> = self.chunks.keys().copied().filter(|&s| s >= from).collect();
        for s in starts {
            self.fail_chunk(s, err);
        }
    }
}
