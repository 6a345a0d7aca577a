//! The store across real processes: concurrent appends, threads and processes at once, a lock
//! holder killed with SIGKILL, the last detach racing new opens.

mod common;

use std::io::BufReader;

use common::{expect_success, spawn, unique, wait_for_line, Cleanup};
use shmstore::{Error, ListProxy, Store, Value};

/// Entry point for child processes (run by the tests below, not on its own).
#[test]
#[ignore = "entry point for the child processes of this file's tests"]
fn child_main() {
    let Some((role, args)) = common::child_role() else {
        return;
    };
    if role == "open-as-nobody" {
        // SAFETY: setgid/setuid have no memory preconditions; the results are checked.
        let dropped = unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
        assert!(dropped, "could not drop privileges");
        match Store::open(&args[0]) {
            Err(Error::PermissionDenied(_)) => common::signal("DENIED"),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
        return;
    }
    let store = Store::open(&args[0]).expect("child: open");
    match role.as_str() {
        // args: store, "lookup" | token text, id, count
        "append" => {
            let proxy = if args[1] == "lookup" {
                store.lookup("jobs").expect("lookup")
            } else {
                store
                    .attach(&args[1].parse().expect("token"))
                    .expect("attach")
            };
            let l = ListProxy::try_from(proxy).expect("a list");
            let id: i64 = args[2].parse().unwrap();
            let n: i64 = args[3].parse().unwrap();
            for i in 0..n {
                l.append(id * n + i).expect("append");
            }
        }
        // args: store, id, threads, per-thread count
        "threads" => {
            let l = ListProxy::try_from(store.lookup("jobs").unwrap()).unwrap();
            let id: i64 = args[1].parse().unwrap();
            let threads: i64 = args[2].parse().unwrap();
            let n: i64 = args[3].parse().unwrap();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let l = l.clone();
                    s.spawn(move || {
                        for i in 0..n {
                            l.append((id * threads + t) * n + i).unwrap();
                        }
                    });
                }
            });
        }
        // args: store — take the list's lock and wait to be killed while holding it.
        "hold" => {
            let l = ListProxy::try_from(store.lookup("jobs").unwrap()).unwrap();
            let _ = l.with_lock(|v| {
                v.append(Value::from("added by the doomed child"))?;
                common::signal("HOLDING");
                loop {
                    std::thread::park();
                }
                #[allow(unreachable_code)]
                Ok(())
            });
        }
        // args: store — take the locks of the objects named "l", "v", "tv" and "a", then wait
        // to be killed.
        "hold-all" => {
            let guards: Vec<_> = ["l", "v", "tv", "a"]
                .iter()
                .map(|n| {
                    let t = store.lookup(n).unwrap().token();
                    shmstore::dispatch::lock_object(store.core(), &t).unwrap()
                })
                .collect();
            common::signal("HOLDING");
            loop {
                std::thread::park();
                std::hint::black_box(&guards);
            }
        }
        // args: store, n — take n proxies (lists made here and attached ones), then wait to be
        // killed.
        "hoard" => {
            let n: usize = args[1].parse().unwrap();
            let shared = store.lookup("jobs").unwrap();
            let mut keep = Vec::new();
            for i in 0..n {
                if i % 2 == 0 {
                    keep.push(shmstore::Proxy::from(store.list([i as i64]).unwrap()));
                } else {
                    keep.push(store.attach(&shared.token()).unwrap());
                }
            }
            common::signal("HOARDING");
            loop {
                std::thread::park();
            }
        }
        other => panic!("unknown role {other}"),
    }
    common::signal("DONE");
}

fn check_exactly_once(l: &ListProxy, total: i64) {
    let mut seen = vec![false; total as usize];
    for v in l.iter().unwrap() {
        let i = i64::try_from(v).unwrap();
        assert!((0..total).contains(&i), "item {i} out of range");
        assert!(
            !std::mem::replace(&mut seen[i as usize], true),
            "item {i} twice"
        );
    }
    assert!(seen.iter().all(|s| *s), "items missing");
}

#[test]
fn three_processes_append_5000_each_through_lookup_and_attach() {
    let name = unique("three");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 16 << 20).unwrap();
    let l = store.list(Vec::<Value>::new()).unwrap();
    store.bind("jobs", &l).unwrap();
    let token = l.token().to_string();
    let children: Vec<_> = (0..3)
        .map(|id| {
            let how = if id == 1 { token.as_str() } else { "lookup" };
            spawn("append", &[&name, how, &id.to_string(), "5000"])
        })
        .collect();
    for c in children {
        expect_success(c, "appender");
    }
    assert_eq!(l.len().unwrap(), 15_000);
    check_exactly_once(&l, 15_000);
    // Every child detached: only this process remains.
    assert_eq!(store.stats().unwrap().processes_attached, 1);
}

#[test]
fn two_processes_of_four_threads_each_plus_threads_here() {
    let name = unique("threads");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 16 << 20).unwrap();
    let l = store.list(Vec::<Value>::new()).unwrap();
    store.bind("jobs", &l).unwrap();
    let children: Vec<_> = (0..2)
        .map(|id| spawn("threads", &[&name, &id.to_string(), "4", "2000"]))
        .collect();
    for c in children {
        expect_success(c, "threaded appender");
    }
    assert_eq!(l.len().unwrap(), 16_000);
    check_exactly_once(&l, 16_000);
}

#[test]
fn a_lock_holder_killed_with_sigkill_is_recovered() {
    let name = unique("kill");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.list([1, 2, 3]).unwrap();
    store.bind("jobs", &l).unwrap();
    let mut child = spawn("hold", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(
        wait_for_line(&mut out, "HOLDING"),
        "child did not take the lock"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before = store.stats().unwrap().repairs;
    // The next call takes the lock over, repairs, and sees the completed append.
    assert_eq!(l.len().unwrap(), 4);
    assert_eq!(l.get(-1).unwrap(), Value::from("added by the doomed child"));
    assert_eq!(store.stats().unwrap().repairs, before + 1);
    l.append(5).unwrap();
    assert_eq!(
        l.get_value().unwrap().to_string(),
        "[1, 2, 3, 'added by the doomed child', 5]"
    );
}

/// The typed writes' fast path only takes a lock that is free; a lock whose holder was killed
/// sends each write to the general path, which takes it over and repairs, and the write lands.
#[test]
fn fast_writes_take_over_locks_of_a_killed_holder() {
    let name = unique("kill-fast");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.list([1, 2, 3]).unwrap();
    let v = store.value(1).unwrap();
    let tv = store.value_of(1u64).unwrap();
    let a = store.array([1i64, 2]).unwrap();
    store.bind("l", &l).unwrap();
    store.bind("v", &v).unwrap();
    store.bind("tv", &tv).unwrap();
    store.bind("a", &a).unwrap();
    let mut child = spawn("hold-all", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(
        wait_for_line(&mut out, "HOLDING"),
        "child did not take the locks"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before = store.stats().unwrap().repairs;
    l.set(0, 10).unwrap();
    v.set(20).unwrap();
    tv.set(30).unwrap();
    a.set(-1, 40).unwrap();
    assert_eq!(store.stats().unwrap().repairs, before + 4);
    // The locks are clean again: these take the fast path (and call_method's).
    l.append(4).unwrap();
    assert_eq!(l.pop(-1).unwrap(), Value::Int(4));
    l.call_method("__setitem__", (1, 11)).unwrap();
    v.call_method("set", (21,)).unwrap();
    a.call_method("__setitem__", (0, 41)).unwrap();
    assert_eq!(store.stats().unwrap().repairs, before + 4);
    assert_eq!(l.get_value().unwrap().to_string(), "[10, 11, 3]");
    assert_eq!(v.get().unwrap(), Value::Int(21));
    assert_eq!(tv.get().unwrap(), 30);
    assert_eq!(a.to_vec().unwrap(), [41, 40]);
}

#[test]
fn last_detach_racing_opens_never_corrupts_or_leaks() {
    // Threads of this process open and drop the store in a loop while the creator detaches;
    // every open either attaches (and keeps the segment alive until its own drop) or reports
    // NotFound, and once everyone is gone the name is gone.
    for round in 0..20 {
        let name = unique(&format!("race{round}"));
        let _c = Cleanup(name.clone());
        let store = Store::create(&name, 256 << 10).unwrap();
        let l = store.list([round]).unwrap();
        store.bind("x", &l).unwrap();
        drop(l);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..50 {
                        match Store::open(&name) {
                            Ok(st) => {
                                let p = st.lookup("x").unwrap();
                                assert_eq!(p.call_method("__len__", ()).unwrap(), Value::Int(1));
                            }
                            Err(Error::NotFound(_)) => return,
                            Err(e) => panic!("open during detach: {e:?}"),
                        }
                    }
                });
            }
            drop(store);
        });
        assert!(
            matches!(Store::open(&name), Err(Error::NotFound(_))),
            "segment outlived its last process"
        );
    }
}

#[test]
fn references_of_a_killed_process_holding_1000_proxies_are_reclaimed() {
    let name = unique("hoard");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 8 << 20).unwrap();
    let l = store.list([1, 2, 3]).unwrap();
    store.bind("jobs", &l).unwrap();
    let base = store.stats().unwrap();
    let mut child = spawn("hoard", &[&name, "1000"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "HOARDING"), "child did not start");
    let during = store.stats().unwrap();
    assert_eq!(during.objects_live, base.objects_live + 500);
    assert_eq!(during.processes_attached, 2);
    let held: u64 = store
        .processes()
        .unwrap()
        .iter()
        .filter(|p| p.pid == child.id())
        .map(|p| p.references)
        .sum();
    assert_eq!(
        held, 1001,
        "500 lists, 500 attached proxies and the looked-up one"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let r = store.reclaim().unwrap();
    assert_eq!(r.processes, 1);
    assert_eq!(r.references, 1001);
    let after = store.stats().unwrap();
    assert_eq!(after.objects_live, base.objects_live);
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.processes_attached, 1);
    // The shared list lost only the child's references.
    assert_eq!(l.len().unwrap(), 3);
    assert_eq!(store.reclaim().unwrap(), shmstore::Reclaimed::default());
}

#[test]
fn owner_died_mode_reports_the_takeover_once_then_goes_on() {
    let name = unique("ownerdied");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    store.report_owner_died(true);
    let l = store.list([1, 2, 3]).unwrap();
    store.bind("jobs", &l).unwrap();
    let mut child = spawn("hold", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "HOLDING"));
    child.kill().unwrap();
    child.wait().unwrap();
    // A call that takes the lock is told (typed reads like `len` may not take it at all).
    assert_eq!(l.append(5), Err(Error::OwnerDied));
    // Repaired and consistent: the next calls proceed; the child's completed append is there
    // and the reported call did not run.
    assert_eq!(l.len().unwrap(), 4);
    l.append(5).unwrap();
    assert_eq!(l.len().unwrap(), 5);
    assert_eq!(store.stats().unwrap().repairs, 1);
}

#[test]
fn opening_a_segment_the_caller_may_not_read_is_permission_denied() {
    let name = unique("perm");
    let _c = Cleanup(name.clone());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // Root reads everything: a child that drops to `nobody` must be refused a 0600 segment.
        let _store = Store::create(&name, 1 << 20).unwrap();
        let mut child = spawn("open-as-nobody", &[&name]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        assert!(wait_for_line(&mut out, "DENIED"), "child was not refused");
        expect_success(child, "open as nobody");
    } else {
        // Not root: a segment with no permission bits refuses its own owner.
        let _store = Store::builder().mode(0).create(&name, 1 << 20).unwrap();
        assert!(matches!(
            Store::open(&name),
            Err(Error::PermissionDenied(_))
        ));
    }
}
