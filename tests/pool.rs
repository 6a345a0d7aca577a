//! The process pool across real processes: every call shape, chunks, the initializer,
//! `maxtasksperchild`, a panicking task, a worker killed with SIGKILL, terminate and join, and
//! the fork start method.
//!
//! Workers are this test binary run again with `--exact child_main --ignored`: `child_main`
//! registers the tasks and calls `worker_main_if_requested` first, as a program's `main` would.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Once;
use std::time::Duration;

use common::{expect_success, spawn, unique, Cleanup};
use shmstore::{pool, Error, Pool, PoolBuilder, QueueProxy, StartMethod, Store, Value};

/// Per-worker state, set by the `set_state` initializer.
static STATE: AtomicI64 = AtomicI64::new(0);

fn int(v: &Value) -> i64 {
    i64::try_from(v).expect("an int")
}

/// The task table, the same in the tests and in their workers.
fn setup() {
    static TASKS: Once = Once::new();
    TASKS.call_once(|| {
        pool::register("square", |v| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
        pool::register_args("add", |args| match args {
            [a, b] => Ok(Value::Int(i64::try_from(a)? + i64::try_from(b)?)),
            _ => Err(Error::TypeError("add() takes 2 arguments".into())),
        });
        pool::register("pid", |_| Ok(Value::from(std::process::id() as i64)));
        pool::register("panic_if_odd", |v| {
            let n = i64::try_from(&v)?;
            assert!(n % 2 == 0, "odd number {n}");
            Ok(v)
        });
        pool::register("fail_key", |v| Err(Error::KeyError(v)));
        pool::register("set_state", |v| {
            STATE.store(i64::try_from(&v)?, Ordering::Relaxed);
            Ok(Value::None)
        });
        pool::register("state_and_pid", |_| {
            Ok(Value::from((
                STATE.load(Ordering::Relaxed),
                std::process::id() as i64,
            )))
        });
        // args: store name — report this worker's pid on the store's "pids" queue, then wait
        // to be killed.
        pool::register("block_until_killed", |v| {
            let store = Store::open(v.as_str().unwrap_or_default())?;
            let pids = QueueProxy::try_from(store.lookup("pids")?)?;
            pids.put(std::process::id() as i64)?;
            loop {
                std::thread::park();
            }
        });
        // arg: (store name, n, wait) — with `wait`, take an item from the store's "gate"
        // queue first; returns n.
        pool::register("gate", |v| match v.clone() {
            Value::Tuple(t) => match t.as_slice() {
                [Value::Str(store), n, Value::Bool(wait)] => {
                    if *wait {
                        let store = Store::open(store)?;
                        QueueProxy::try_from(store.lookup("gate")?)?.get()?;
                    }
                    Ok(n.clone())
                }
                _ => Err(Error::TypeError("gate((store, n, wait))".into())),
            },
            _ => Err(Error::TypeError("gate((store, n, wait))".into())),
        });
    });
}

/// Entry point for the pool's workers and the fork test's child (not a test on its own).
#[test]
#[ignore = "entry point for the worker processes of this file's tests"]
fn child_main() {
    setup();
    pool::worker_main_if_requested();
    let Some((role, _args)) = common::child_role() else {
        return;
    };
    match role.as_str() {
        // A single-threaded process (the harness runs this one test on its own) making a pool
        // with the fork start method.
        "fork_map" => {
            // Set before the fork: forked workers see it without an initializer.
            STATE.store(7, Ordering::Relaxed);
            // Forked workers inherit the hook: keep the expected panic below off stderr.
            let default_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let expected = info
                    .payload()
                    .downcast_ref::<String>()
                    .is_some_and(|m| m.starts_with("odd number"));
                if !expected {
                    default_hook(info);
                }
            }));
            let pool = Pool::builder()
                .processes(2)
                .start_method(StartMethod::Fork)
                .build()
                .unwrap();
            let squares = pool.map("square", 0..20).unwrap();
            assert_eq!(
                squares,
                (0..20).map(|i| Value::Int(i * i)).collect::<Vec<_>>()
            );
            let states = pool.map("state_and_pid", 0..4).unwrap();
            for s in &states {
                let Value::Tuple(t) = s else { panic!("{s:?}") };
                assert_eq!(t[0], Value::Int(7));
                assert_ne!(int(&t[1]), std::process::id() as i64, "ran in a worker");
            }
            // A panic in a forked worker comes back too, and the pool goes on.
            assert_eq!(
                pool.apply("panic_if_odd", (3,)),
                Err(Error::RuntimeError(
                    "task 'panic_if_odd' panicked: odd number 3".into()
                ))
            );
            assert_eq!(pool.apply("square", (9,)), Ok(Value::Int(81)));
            pool.close().unwrap();
            pool.join().unwrap();
            assert!(pool.worker_pids().is_empty());
            common::signal("FORK-OK");
        }
        other => panic!("unknown role {other}"),
    }
}

/// A pool whose workers run this test binary's `child_main` (through `sh -c exec`, only to
/// silence the harness's own "running 1 test" line; the worker is still the pool's child).
fn builder(processes: usize) -> PoolBuilder {
    setup();
    let exe = std::env::current_exe().unwrap();
    Pool::builder()
        .processes(processes)
        .store_size(4 << 20)
        .worker_command(
            "sh",
            [
                "-c".into(),
                r#"exec "$0" --exact child_main --ignored --quiet >/dev/null"#.into(),
                exe.into_os_string(),
            ],
        )
}

/// A store of the test's own, with the "pids" and "gate" queues the tasks use.
fn side_store(tag: &str) -> (Store, Cleanup, QueueProxy, QueueProxy) {
    let name = unique(tag);
    let cleanup = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let pids = store.queue(0).unwrap();
    let gate = store.queue(0).unwrap();
    store.bind("pids", &pids).unwrap();
    store.bind("gate", &gate).unwrap();
    (store, cleanup, pids, gate)
}

fn is_running(pid: u32) -> bool {
    shmstore::process::ProcId {
        pid,
        pad: 0,
        start: 0,
    }
    .is_alive()
}

fn kill9(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions; `pid` is a worker of our pool.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
}

fn squares(n: i64) -> Vec<Value> {
    (0..n).map(|i| Value::Int(i * i)).collect()
}

#[test]
fn map_starmap_apply_and_async_results() {
    let pool = builder(2).build().unwrap();
    assert_eq!(pool.processes(), 2);
    assert_eq!(pool.worker_pids().len(), 2);

    assert_eq!(pool.map("square", 0..50).unwrap(), squares(50));
    assert_eq!(pool.map_with("square", 0..50, 7).unwrap(), squares(50));
    assert_eq!(pool.map("square", Vec::<i64>::new()).unwrap(), vec![]);
    assert_eq!(
        pool.starmap("add", [(1, 2), (3, 4), (5, 6)]).unwrap(),
        [3, 7, 11].map(Value::Int)
    );
    assert_eq!(
        pool.starmap_with("add", (0..10).map(|i| (i, 100)), 4)
            .unwrap(),
        (0..10).map(|i| Value::Int(i + 100)).collect::<Vec<_>>()
    );
    assert_eq!(
        pool.starmap("add", [1]),
        Err(Error::TypeError(
            "add() argument after * must be an iterable, not int".into()
        ))
    );
    assert_eq!(pool.apply("square", (12,)), Ok(Value::Int(144)));
    assert_eq!(pool.apply("add", (2, 3)), Ok(Value::Int(5)));
    // Task errors come back as they were raised.
    assert_eq!(
        pool.apply("square", (1, 2)),
        Err(Error::TypeError(
            "square() takes 1 positional argument but 2 were given".into()
        ))
    );
    assert_eq!(
        pool.apply("fail_key", ("k",)),
        Err(Error::KeyError(Value::from("k")))
    );
    assert!(matches!(pool.apply("nope", ()), Err(Error::NotFound(_))));
    // A proxy of another store cannot travel as a proxy (its token as text can).
    let (side, _c, _pids, _gate) = side_store("foreign");
    let l = side.list([1]).unwrap();
    let r = pool.apply("square", (Value::from(l.token()),));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");

    let r = pool.apply_async("square", (5,)).unwrap();
    assert!(r.wait(None));
    assert!(r.ready());
    assert_eq!(r.successful(), Ok(true));
    assert_eq!(r.get(None), Ok(Value::Int(25)));
    assert_eq!(r.get(Some(Duration::ZERO)), Ok(Value::Int(25)), "get again");

    let m = pool.map_async("square", 0..10, Some(3)).unwrap();
    assert_eq!(m.get(None), Ok(Value::List(squares(10))));
    let bad = pool.map_async("fail_key", [1, 2], None).unwrap();
    assert_eq!(bad.get(None), Err(Error::KeyError(Value::Int(1))));
    assert_eq!(bad.successful(), Ok(false));
}

#[test]
fn imap_streams_in_order_and_imap_unordered_as_ready() {
    let (store, _c, _pids, gate) = side_store("imap");
    let name = store.name().to_owned();
    let pool = builder(2).build().unwrap();

    let mut it = pool.imap("square", 0..30).unwrap();
    assert_eq!(it.len(), 30);
    assert_eq!(
        it.by_ref().take(5).collect::<Result<Vec<_>, _>>().unwrap(),
        squares(5)
    );
    assert_eq!(it.len(), 25);
    assert_eq!(it.map(Result::unwrap).count(), 25);
    assert_eq!(
        pool.imap_with("square", 0..30, 4)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        squares(30)
    );

    // Streamed: the first result comes while the second call still waits at its gate.
    let mut it = pool
        .imap(
            "gate",
            [(name.as_str(), 0, false), (name.as_str(), 1, true)].map(Value::from),
        )
        .unwrap();
    assert_eq!(it.next(), Some(Ok(Value::Int(0))));
    assert_eq!(
        it.next_timeout(Some(Duration::from_millis(20))),
        Some(Err(Error::Timeout))
    );
    gate.put(()).unwrap();
    assert_eq!(it.next(), Some(Ok(Value::Int(1))));
    assert_eq!(it.next(), None);

    // Unordered: the call that does not wait comes first.
    let mut it = pool
        .imap_unordered(
            "gate",
            [(name.as_str(), 0, true), (name.as_str(), 1, false)].map(Value::from),
        )
        .unwrap();
    assert_eq!(it.next(), Some(Ok(Value::Int(1))));
    gate.put(()).unwrap();
    assert_eq!(it.next(), Some(Ok(Value::Int(0))));
    assert_eq!(it.next(), None);

    let mut all: Vec<i64> = pool
        .imap_unordered_with("square", 0..40, 3)
        .unwrap()
        .map(|r| int(&r.unwrap()))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..40).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn a_chunk_runs_in_one_worker() {
    let pool = builder(3).build().unwrap();
    let pids = pool.map_with("pid", 0..20, 5).unwrap();
    for chunk in pids.chunks(5) {
        assert!(chunk.iter().all(|p| *p == chunk[0]), "{pids:?}");
    }
    // The builder's chunk size is the default for map and imap.
    let pool = builder(3).chunksize(4).build().unwrap();
    let pids: Vec<Value> = pool
        .imap("pid", 0..12)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for chunk in pids.chunks(4) {
        assert!(chunk.iter().all(|p| *p == chunk[0]), "{pids:?}");
    }
}

#[test]
fn the_initializer_runs_once_in_every_worker() {
    let plain = builder(2).build().unwrap();
    let pool = builder(2).initializer("set_state", (42,)).build().unwrap();
    let mut pids = HashSet::new();
    for r in pool.map_with("state_and_pid", 0..40, 1).unwrap() {
        let Value::Tuple(t) = r else { panic!("{r:?}") };
        assert_eq!(t[0], Value::Int(42));
        pids.insert(int(&t[1]));
    }
    assert!(!pids.contains(&(std::process::id() as i64)));
    // Without it, the workers' state is the default.
    let r = plain.apply("state_and_pid", (0,)).unwrap();
    let Value::Tuple(t) = r else { panic!("{r:?}") };
    assert_eq!(t[0], Value::Int(0));
}

#[test]
fn a_failing_initializer_breaks_the_pool() {
    let pool = builder(2)
        .initializer("fail_key", ("boom",))
        .build()
        .unwrap();
    let err = Error::RuntimeError("pool initializer 'fail_key' failed: 'boom'".into());
    assert_eq!(pool.map("square", 0..4), Err(err.clone()));
    assert_eq!(pool.apply("square", (1,)), Err(err));
    assert!(matches!(
        Pool::builder().initializer("nope", ()).build(),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn a_worker_command_that_does_not_run_the_worker_breaks_the_pool() {
    setup();
    let pool = Pool::builder()
        .processes(1)
        .worker_command("true", Vec::<String>::new())
        .build()
        .unwrap();
    match pool.apply("square", (2,)) {
        Err(Error::RuntimeError(m)) => assert!(m.contains("before it was ready"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn maxtasksperchild_replaces_workers() {
    let pool = builder(2).maxtasksperchild(1).build().unwrap();
    let pids: HashSet<i64> = pool
        .map_with("pid", 0..6, 1)
        .unwrap()
        .iter()
        .map(int)
        .collect();
    assert_eq!(pids.len(), 6, "one worker per chunk: {pids:?}");
    // Two chunks of three: two more workers.
    let pids: HashSet<i64> = pool
        .map_with("pid", 0..6, 3)
        .unwrap()
        .iter()
        .map(int)
        .collect();
    assert_eq!(pids.len(), 2);
    assert_eq!(pool.apply("square", (4,)), Ok(Value::Int(16)));
}

#[test]
fn a_panicking_task_fails_alone_and_the_pool_goes_on() {
    let pool = builder(2).build().unwrap();
    let before: HashSet<u32> = pool.worker_pids().into_iter().collect();
    let err = |n| Error::RuntimeError(format!("task 'panic_if_odd' panicked: odd number {n}"));
    // map: the first failed item's error.
    assert_eq!(pool.map_with("panic_if_odd", 0..6, 2), Err(err(1)));
    // imap: each item's own outcome.
    let got: Vec<_> = pool.imap_with("panic_if_odd", 0..4, 2).unwrap().collect();
    assert_eq!(
        got,
        vec![
            Ok(Value::Int(0)),
            Err(err(1)),
            Ok(Value::Int(2)),
            Err(err(3))
        ]
    );
    assert_eq!(pool.map("square", 0..10).unwrap(), squares(10));
    let after: HashSet<u32> = pool.worker_pids().into_iter().collect();
    assert_eq!(before, after, "no worker was lost");
}

#[test]
fn a_killed_worker_fails_its_task_and_is_replaced() {
    let (store, _c, pids, _gate) = side_store("kill");
    let pool = builder(2).build().unwrap();
    let r = pool
        .apply_async("block_until_killed", (store.name(),))
        .unwrap();
    let victim = int(&pids.get().unwrap()) as u32;
    assert!(pool.worker_pids().contains(&victim));
    assert_eq!(r.get(Some(Duration::from_millis(10))), Err(Error::Timeout));
    assert!(!r.ready());
    assert_eq!(
        r.successful(),
        Err(Error::ValueError("result is not ready".into()))
    );

    kill9(victim);
    match r.get(None) {
        Err(Error::RuntimeError(m)) => {
            assert!(
                m.starts_with(&format!("pool worker {victim} died (")),
                "{m}"
            );
            assert!(m.contains("SIGKILL"), "{m}");
            assert!(
                m.ends_with("while running task 'block_until_killed'"),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.successful(), Ok(false));
    let now = pool.worker_pids();
    assert_eq!(now.len(), 2, "replaced");
    assert!(!now.contains(&victim));
    assert_eq!(pool.map_with("square", 0..20, 1).unwrap(), squares(20));
}

#[test]
fn terminate_kills_the_workers_and_fails_pending_work() {
    let (store, _c, pids, _gate) = side_store("term");
    let pool = builder(2).build().unwrap();
    let store_name = pool.store_name().to_owned();
    let r = pool
        .apply_async("block_until_killed", (store.name(),))
        .unwrap();
    let busy = int(&pids.get().unwrap()) as u32;
    let workers = pool.worker_pids();
    assert!(workers.contains(&busy));

    pool.terminate().unwrap();
    assert_eq!(
        r.get(None),
        Err(Error::RuntimeError("pool terminated".into()))
    );
    for pid in workers {
        assert!(!is_running(pid), "worker {pid} still runs");
    }
    assert!(pool.worker_pids().is_empty());
    assert_eq!(
        pool.apply("square", (1,)),
        Err(Error::ValueError("Pool not running".into()))
    );
    pool.join().unwrap();
    drop(pool);
    assert!(
        matches!(Store::open(&store_name), Err(Error::NotFound(_))),
        "store removed"
    );
}

#[test]
fn close_and_join_let_submitted_work_finish() {
    let (store, _c, _pids, gate) = side_store("join");
    let name = store.name().to_owned();
    let pool = builder(2).build().unwrap();
    assert_eq!(
        pool.join(),
        Err(Error::ValueError("Pool is still running".into()))
    );
    let waiting = pool
        .apply_async("gate", ((name.as_str(), 5, true),))
        .unwrap();
    let many = pool.map_async("square", 0..100, Some(10)).unwrap();
    pool.close().unwrap();
    assert_eq!(
        pool.map("square", 0..3),
        Err(Error::ValueError("Pool not running".into()))
    );
    let workers = pool.worker_pids();
    gate.put(()).unwrap();
    pool.join().unwrap();
    assert_eq!(waiting.get(Some(Duration::ZERO)), Ok(Value::Int(5)));
    assert_eq!(
        many.get(Some(Duration::ZERO)),
        Ok(Value::List(squares(100)))
    );
    for pid in workers {
        assert!(!is_running(pid), "worker {pid} still runs");
    }
    pool.close().unwrap();
    pool.join().unwrap();
}

#[test]
fn the_fork_start_method_maps() {
    let child = spawn("fork_map", &[]);
    let mut child = child;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    assert!(common::wait_for_line(&mut out, "FORK-OK"));
    expect_success(child, "fork pool");
}

#[test]
fn building_a_pool_in_a_worker_is_refused() {
    // What a program that forgets worker_main_if_requested would do in its workers.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "building_a_pool_in_a_worker_is_refused_child",
            "--ignored",
            "--nocapture",
        ])
        .env(
            "SHMSTORE_POOL_WORKER",
            format!("nostore:0:{}", std::process::id()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("REFUSED"));
}

#[test]
#[ignore = "run by building_a_pool_in_a_worker_is_refused"]
fn building_a_pool_in_a_worker_is_refused_child() {
    match Pool::new(1) {
        Err(Error::RuntimeError(m)) if m.contains("worker_main_if_requested") => {
            common::signal("REFUSED")
        }
        other => panic!("{other:?}"),
    }
}

/// A worker killed after it took a chunk's key from the task queue and before it claimed the
/// chunk loses nothing: the supervisor posts the keys of unclaimed chunks again, and the
/// replacement runs the chunk.
#[cfg(feature = "failpoints")]
#[test]
fn a_worker_killed_between_taking_a_chunk_key_and_claiming_it_loses_nothing() {
    setup();
    let name = unique("takeclaim");
    let dir = std::env::temp_dir();
    let (marker, out) = (
        dir.join(format!("{name}.first")),
        dir.join(format!("{name}.out")),
    );
    let _c = (
        Cleanup(name),
        FileCleanup(marker.clone()),
        FileCleanup(out.clone()),
    );
    let path = std::ffi::CString::new(out.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `path` is a NUL-terminated path; mkfifo has no other precondition.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // Opening a FIFO to read waits for its writer (the first worker): on a thread of its own,
    // which sends the failpoint's line.
    let (tx, reader) = std::sync::mpsc::channel::<String>();
    let fifo = out.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let f = std::io::BufReader::new(std::fs::File::open(fifo).unwrap());
        for line in f.lines().map_while(|l| l.ok()) {
            // (The harness's own lines come first.)
            if line.starts_with("FAILPOINT") {
                let _ = tx.send(line);
            }
        }
    });
    // The first worker stops at the failpoint (and says so in `out`, a FIFO); the one that replaces it
    // finds the marker and runs normally.
    let script = r#"if [ -e "$1" ]; then exec "$0" --exact child_main --ignored --quiet >/dev/null; fi
        touch "$1"
        SHMSTORE_FAILPOINT=pool.worker.after_take exec "$0" --exact child_main --ignored --quiet >"$2""#;
    let exe = std::env::current_exe().unwrap();
    let pool = Pool::builder()
        .processes(1)
        .store_size(4 << 20)
        .worker_command(
            "sh",
            [
                "-c".into(),
                script.into(),
                exe.into_os_string(),
                marker.into_os_string(),
                out.clone().into_os_string(),
            ],
        )
        .build()
        .unwrap();
    let victim = pool.worker_pids()[0];
    let r = pool.map_async("square", 0..10, Some(5)).unwrap();
    // The worker's stdout is a FIFO: the failpoint's line arrives as it is written.
    let line = reader.recv_timeout(Duration::from_secs(30));
    assert_eq!(
        line.as_deref().map(str::trim),
        Ok("FAILPOINT pool.worker.after_take"),
        "the worker never took a key"
    );
    kill9(victim);
    assert_eq!(
        r.get(Some(Duration::from_secs(30))),
        Ok(Value::List(squares(10)))
    );
    assert!(!pool.worker_pids().contains(&victim));
}

#[cfg(feature = "failpoints")]
struct FileCleanup(std::path::PathBuf);

#[cfg(feature = "failpoints")]
impl Drop for FileCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
