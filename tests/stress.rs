//! Four processes, 200,000 mixed list and dict operations, one of them killed with SIGKILL and
//! restarted every few thousand operations: the store stays sound and holds exactly the
//! operations that completed.
//!
//! Worker `w` runs operations `0..PER_WORKER` in order; operation `i` is
//! - `i % 3 == 0`: append `i` to its own list `l{w}`,
//! - `i % 3 == 1`: `add("n{w}", 1)` on the shared dict,
//! - `i % 3 == 2`: insert `"k{w}:{i}" → i` into the shared dict (which grows to ~67,000 keys),
//!
//! so what the store holds for a worker is always a prefix of its sequence, and the length of
//! that prefix can be read back from the store ([`progress`]). A worker reports each completed
//! operation as a line `DONE n` (cumulative). When the parent kills the worker, the store must
//! hold exactly the `n` it last reported, or `n + 1` (the operation in flight finished, or died
//! after its publishing store but before the report); the restarted worker resumes from what
//! the store holds.

mod common;

use std::io::{BufRead, BufReader};
use std::process::ChildStdout;
use std::sync::mpsc;

use common::{next, spawn, unique, ChildGuard, Cleanup};
use shmstore::{DictProxy, ListProxy, Store, Value};

const WORKERS: usize = 4;
const PER_WORKER: u64 = 50_000;

fn key(w: usize, i: u64) -> String {
    format!("k{w}:{i}")
}

/// How many of worker `w`'s operations the store holds.
fn progress(l: &ListProxy, d: &DictProxy, w: usize) -> u64 {
    let a = l.len().unwrap() as u64;
    let b = i64::try_from(d.get_item(format!("n{w}")).unwrap()).unwrap() as u64;
    // After n operations: a = ceil(n / 3) appends, b = ceil((n - 1) / 3) adds, and
    // floor(n / 3) inserts, the last of which (if any) is operation 3a - 1.
    let n = if a == 0 {
        0
    } else if a > b {
        3 * b + 1
    } else if d.contains(key(w, 3 * a - 1)).unwrap() {
        3 * a
    } else {
        3 * a - 1
    };
    assert!(
        a == n.div_ceil(3) && b == n.saturating_sub(1).div_ceil(3) && a >= b,
        "worker {w}: {a} appends and {b} adds are no prefix of its operations"
    );
    n
}

/// Entry point for child processes (run by the tests below, not on its own).
#[test]
#[ignore = "entry point for the child processes of this file's tests"]
fn child_main() {
    let Some((store, args)) = common::worker_store() else {
        return;
    };
    let w: usize = args[1].parse().unwrap();
    let l = ListProxy::try_from(store.lookup(&format!("l{w}")).unwrap()).unwrap();
    let d = DictProxy::try_from(store.lookup("d").unwrap()).unwrap();
    let start = progress(&l, &d, w);
    common::signal(&format!("START {start}"));
    let counter = format!("n{w}");
    let mut out = std::io::stdout().lock();
    for i in start..PER_WORKER {
        match i % 3 {
            0 => l.append(i as i64).unwrap(),
            1 => {
                d.add(counter.as_str(), 1).unwrap();
            }
            _ => d.insert(key(w, i), i as i64).unwrap(),
        }
        use std::io::Write;
        writeln!(out, "DONE {}", i + 1).unwrap();
        out.flush().unwrap();
    }
    drop(out);
    common::signal("FINISHED");
}

enum Msg {
    Line(usize, u32, String),
    Eof(usize, u32),
}

/// Forwards the child's lines to `tx`, tagged with the worker and its incarnation.
fn reader(out: ChildStdout, w: usize, gen: u32, tx: mpsc::Sender<Msg>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(Msg::Line(w, gen, line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Msg::Eof(w, gen));
    });
}

#[test]
fn four_processes_200k_operations_one_killed_and_restarted() {
    let name = unique("stress");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 64 << 20).unwrap();
    drop(store.list([0]).unwrap());
    let empty = store.stats().unwrap();
    let lists: Vec<ListProxy> = (0..WORKERS)
        .map(|w| {
            let l = store.list(Vec::<Value>::new()).unwrap();
            store.bind(&format!("l{w}"), &l).unwrap();
            l
        })
        .collect();
    let d = store
        .dict((0..WORKERS).map(|w| (format!("n{w}"), 0)))
        .unwrap();
    store.bind("d", &d).unwrap();

    let (tx, rx) = mpsc::channel();
    let mut children: Vec<Option<ChildGuard>> = Vec::new();
    let start = |w: usize, gen: u32| -> ChildGuard {
        let mut c = spawn("worker", &[&name, &w.to_string()]);
        reader(c.stdout.take().unwrap(), w, gen, tx.clone());
        c
    };
    for w in 0..WORKERS {
        children.push(Some(start(w, 0)));
    }
    // The victim is worker 0; it is killed after 2,000 to 6,000 of its operations.
    let mut seed = 0x5eed_cafe_f00d_u64;
    let mut kill_at = 2_000 + next(&mut seed) % 4_000;
    let mut gen = [0u32; WORKERS];
    let mut reported = [0u64; WORKERS];
    let mut started_at = [0u64; WORKERS];
    let mut finished = [false; WORKERS];
    let mut kills = 0u32;
    let mut killed_waiting_eof = false;
    while finished.iter().any(|f| !f) {
        let msg = rx.recv().expect("every reader hung up");
        match msg {
            Msg::Line(w, g, line) => {
                if g != gen[w] {
                    continue;
                }
                let line = line.trim();
                if let Some(n) = line.strip_prefix("DONE ") {
                    let n: u64 = n.parse().unwrap();
                    assert_eq!(n, reported[w] + 1, "worker {w} skipped an operation");
                    reported[w] = n;
                    if w == 0
                        && !killed_waiting_eof
                        && n - started_at[0] >= kill_at
                        && n < PER_WORKER
                    {
                        let mut c = children[0].take().unwrap();
                        c.kill().unwrap();
                        c.wait().unwrap();
                        kills += 1;
                        killed_waiting_eof = true;
                    }
                } else if let Some(n) = line.strip_prefix("START ") {
                    let n: u64 = n.parse().unwrap();
                    assert_eq!(n, reported[w], "worker {w} resumed elsewhere");
                    started_at[w] = n;
                } else if line == "FINISHED" {
                    assert_eq!(reported[w], PER_WORKER);
                    finished[w] = true;
                }
            }
            Msg::Eof(w, g) => {
                if g != gen[w] {
                    continue;
                }
                if w == 0 && killed_waiting_eof {
                    // Every line the killed worker wrote has been read: what the store holds is
                    // what it reported, or one more.
                    killed_waiting_eof = false;
                    let held = progress(&lists[0], &d, 0);
                    assert!(
                        held == reported[0] || held == reported[0] + 1,
                        "store holds {held} operations, worker reported {}",
                        reported[0]
                    );
                    reported[0] = held;
                    gen[0] += 1;
                    kill_at = 2_000 + next(&mut seed) % 4_000;
                    children[0] = Some(start(0, gen[0]));
                } else if !finished[w] {
                    panic!("worker {w} ended before finishing ({} done)", reported[w]);
                }
            }
        }
    }
    for c in children.iter_mut() {
        if let Some(c) = c.take() {
            common::expect_success(c, "worker");
        }
    }
    assert!(kills >= 5, "only {kills} kills");
    println!(
        "worker 0 was killed {kills} times; locks taken over from a dead holder: {}",
        store.stats().unwrap().repairs
    );

    store.reclaim().unwrap();
    let r = store.check().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    let procs = store.processes().unwrap();
    assert_eq!(procs.len(), 1, "{procs:?}");

    // Exactly the operations every worker completed, each once.
    let items = d.items().unwrap();
    assert_eq!(
        items.len() as u64,
        WORKERS as u64 + WORKERS as u64 * (PER_WORKER / 3)
    );
    for (w, l) in lists.iter().enumerate() {
        assert_eq!(progress(l, &d, w), PER_WORKER);
        let want: Vec<Value> = (0..PER_WORKER)
            .filter(|i| i % 3 == 0)
            .map(|i| Value::Int(i as i64))
            .collect();
        assert_eq!(
            l.get_value().unwrap(),
            Value::List(want),
            "list of worker {w}"
        );
    }
    let mut seen = vec![vec![false; PER_WORKER as usize]; WORKERS];
    for (k, v) in &items {
        let Value::Str(k) = k else {
            panic!("key {k:?}")
        };
        if k.starts_with('n') {
            continue;
        }
        let (w, i) = k[1..].split_once(':').unwrap();
        let (w, i): (usize, u64) = (w.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i % 3, 2);
        assert_eq!(v, &Value::Int(i as i64));
        assert!(!std::mem::replace(&mut seen[w][i as usize], true));
    }

    // What the killed incarnations may have leaked: at most the one block each interrupted
    // operation had allocated and not yet published (only a mark-and-sweep would reclaim it).
    for w in 0..WORKERS {
        store.unbind(&format!("l{w}")).unwrap();
    }
    drop(lists);
    store.unbind("d").unwrap();
    drop(d);
    let after = store.stats().unwrap();
    assert_eq!(after.objects_live, 0, "still live: {:?}", store.objects());
    let leaked = after.blocks_in_use - empty.blocks_in_use;
    println!(
        "leaked {leaked} blocks, {} bytes, over {kills} kills",
        after.bytes_in_use - empty.bytes_in_use
    );
    assert!(
        leaked <= u64::from(kills),
        "{leaked} blocks leaked over {kills} kills"
    );
    let r = store.check().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
}
