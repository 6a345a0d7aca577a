//! Three processes take and drop references as fast as they can — looking names up, attaching
//! tokens, cloning proxies, creating and dropping short-lived objects — while the parent kills
//! one of them with SIGKILL at a random point every few hundred operations and starts it again,
//! 40 times. After the reclaim, every reference is exactly where it should be: each named object
//! is held by its binding alone, no short-lived object is left, and every block comes back.
//!
//! A kill lands anywhere, including between a refcount's change and its record in the process
//! table (`procs`): this is what makes those steps exact, not merely leak-only.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

use common::{next, spawn, unique, ChildGuard, Cleanup};
use shmstore::{ListProxy, Store};

const OBJECTS: u64 = 4;
const WORKERS: usize = 3;
const KILLS: u32 = 40;

/// Entry point for child processes (run by the test below, not on its own).
#[test]
#[ignore = "entry point for the child processes of this file's tests"]
fn child_main() {
    let Some((store, _)) = common::worker_store() else {
        return;
    };
    let mut seed = u64::from(std::process::id()) | 1 << 40;
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let r = next(&mut seed);
        let l = ListProxy::try_from(store.lookup(&format!("o{}", r % OBJECTS)).unwrap()).unwrap();
        match (r >> 8) % 4 {
            0 => drop(store.attach(&l.token()).unwrap()),
            1 => {
                let tmp = store.list([1, 2, 3]).unwrap();
                tmp.append(4).unwrap();
                drop(tmp);
            }
            2 => {
                let again = ListProxy::try_from(store.lookup("o0").unwrap()).unwrap();
                drop(l.clone());
                drop(again);
            }
            _ => assert_eq!(l.len().unwrap(), 1),
        }
        drop(l);
        writeln!(out, "{n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn references_stay_exact_when_processes_are_killed_taking_and_dropping_them() {
    let name = unique("rckills");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 16 << 20).unwrap();
    drop(store.list([0]).unwrap());
    let empty = store.stats().unwrap();
    for i in 0..OBJECTS {
        store
            .bind(&format!("o{i}"), &store.list([i as i64]).unwrap())
            .unwrap();
    }

    let (tx, rx) = mpsc::channel::<(usize, u32)>();
    let start = |w: usize, gen: u32| -> ChildGuard {
        let mut c = spawn("worker", &[&name]);
        let out = c.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                if line.is_err() || tx.send((w, gen)).is_err() {
                    return;
                }
            }
        });
        c
    };
    let mut gen = [0u32; WORKERS];
    let mut children: Vec<ChildGuard> = (0..WORKERS).map(|w| start(w, 0)).collect();
    let mut seed = 0x0dd_ba11_u64;
    let mut lines = 0u64;
    let mut kill_at = 100 + next(&mut seed) % 400;
    let mut kills = 0;
    while kills < KILLS {
        let (w, g) = rx.recv().expect("every worker hung up");
        if g != gen[w] {
            continue;
        }
        lines += 1;
        if lines >= kill_at {
            let v = (next(&mut seed) % WORKERS as u64) as usize;
            children[v].kill().unwrap();
            children[v].wait().unwrap();
            kills += 1;
            gen[v] += 1;
            children[v] = start(v, gen[v]);
            lines = 0;
            kill_at = 100 + next(&mut seed) % 400;
        }
    }
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }

    // (Restarted workers reclaimed most of the dead on their open; this gives back the rest.)
    store.reclaim().unwrap();
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(store.processes().unwrap().len(), 1);
    let objects = store.objects().unwrap();
    assert_eq!(objects.len() as u64, OBJECTS, "still live: {objects:?}");
    for o in &objects {
        assert_eq!(o.refcount, 1, "held by its binding alone: {o:?}");
    }
    for i in 0..OBJECTS {
        store.unbind(&format!("o{i}")).unwrap();
    }
    assert_eq!(store.stats().unwrap().objects_live, 0);
    // A kill inside a creation, before the object owned its blocks, leaks them; the mark and
    // sweep gives them back, and the store is as it was.
    store.repair().unwrap();
    let after = store.stats().unwrap();
    assert_eq!(
        (after.blocks_in_use, after.bytes_in_use),
        (empty.blocks_in_use, empty.bytes_in_use)
    );
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
