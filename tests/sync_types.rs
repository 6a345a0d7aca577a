//! The synchronization types: Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and
//! Barrier — their methods against CPython's (a generated table), the typed API and guards,
//! threads, and real processes: a barrier of three, a condition notified across processes, an
//! event waking two others, a semaphore bounding concurrency, timeouts that fire, holders killed
//! with SIGKILL while holding, and a lock acquired in a child that exits and released here.

mod common;

#[path = "gen/sync_cases.rs"]
mod cases;

use std::io::BufReader;
use std::time::Duration;

use common::{expect_success, read_value, spawn, unique, wait_for_line, Cleanup};
use shmstore::{
    BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, Error, EventProxy, ListProxy, LockProxy,
    Proxy, RLockProxy, SemaphoreProxy, Store, Value,
};

/// Long enough that only a bug makes a bounded wait run out.
const LONG: Duration = Duration::from_secs(30);

fn lookup<P: TryFrom<Proxy, Error = Error>>(store: &Store, name: &str) -> P {
    P::try_from(store.lookup(name).expect("lookup")).expect("type")
}

/// Entry point for child processes (run by the tests below, not on its own).
#[test]
#[ignore = "entry point for the child processes of this file's tests"]
fn child_main() {
    let Some((role, args)) = common::child_role() else {
        return;
    };
    let store = Store::open(&args[0]).expect("child: open");
    match role.as_str() {
        // Waits at the barrier `rounds` times, printing each arrival index.
        "barrier" => {
            let b: BarrierProxy = lookup(&store, "barrier");
            let rounds: usize = args[1].parse().unwrap();
            for _ in 0..rounds {
                let i = b.wait(Some(LONG)).expect("barrier wait");
                common::signal(&format!("INDEX {i}"));
            }
        }
        // Waits on the condition once; prints whether it was notified.
        "cond_wait" => {
            let c: ConditionProxy = lookup(&store, "cond");
            let g = c.acquire_guard().unwrap();
            common::signal("WAITING");
            let notified = g.wait(Some(LONG)).unwrap();
            assert!(g.is_owned().unwrap(), "the lock is held again after wait");
            drop(g);
            common::signal(&format!("NOTIFIED {notified}"));
            assert!(notified);
        }
        // Waits for the event.
        "event_wait" => {
            let e: EventProxy = lookup(&store, "event");
            common::signal("READY");
            assert!(e.wait(Some(LONG)).unwrap(), "event not set in time");
        }
        "event_set" => {
            let e: EventProxy = lookup(&store, "event");
            e.set().unwrap();
        }
        // Takes the semaphore `n` times, counting how many are inside at once in a list
        // [inside, most inside].
        "sem_worker" => {
            let s: SemaphoreProxy = lookup(&store, "sem");
            let l: ListProxy = lookup(&store, "stats");
            let n: usize = args[1].parse().unwrap();
            for _ in 0..n {
                let _g = s.acquire_guard().unwrap();
                l.with_lock(|v| {
                    let inside = i64::try_from(v.get(0)?).unwrap() + 1;
                    let most = i64::try_from(v.get(1)?).unwrap().max(inside);
                    v.set(0, inside)?;
                    v.set(1, most)
                })
                .unwrap();
                std::thread::yield_now();
                l.with_lock(|v| {
                    let inside = i64::try_from(v.get(0)?).unwrap() - 1;
                    v.set(0, inside)
                })
                .unwrap();
            }
        }
        // Acquires the object named args[1] (a lock, rlock, semaphore or bounded semaphore)
        // and waits to be killed.
        "hold" => {
            let p = store.lookup(&args[1]).unwrap();
            assert_eq!(
                p.call_method("acquire", (true, 10)).unwrap(),
                Value::Bool(true)
            );
            common::signal("HOLDING");
            loop {
                std::thread::park();
            }
        }
        // Acquires the object named args[1], waits for the event "go", exits without releasing.
        "hold_and_exit" => {
            let p = store.lookup(&args[1]).unwrap();
            assert_eq!(p.call_method("acquire", ()).unwrap(), Value::Bool(true));
            common::signal("HOLDING");
            let go: EventProxy = lookup(&store, "go");
            assert!(go.wait(Some(LONG)).unwrap());
        }
        other => panic!("unknown role {other}"),
    }
    common::signal("DONE");
}

// ---------------------------------------------------------------------------------------------
// Semantics against CPython.

fn make(store: &Store, ctor: &str, arg: usize) -> Proxy {
    match ctor {
        "Lock" => store.lock().unwrap().into(),
        "RLock" => store.rlock().unwrap().into(),
        "Semaphore" => store.semaphore(arg).unwrap().into(),
        "BoundedSemaphore" => store.bounded_semaphore(arg).unwrap().into(),
        "Condition" => store.condition().unwrap().into(),
        "Event" => store.event().unwrap().into(),
        "Barrier" => store.barrier(arg).unwrap().into(),
        other => panic!("unknown type {other}"),
    }
}

#[test]
fn methods_match_cpython() {
    let name = unique("python");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let mut checked = 0;
    for (ctor, arg, steps) in cases::scenarios() {
        let p = make(&store, ctor, arg);
        for (i, (method, args, kwargs, want)) in steps.into_iter().enumerate() {
            let got = p.call_method_kw(method, args.clone(), &kwargs);
            let what = format!("{ctor}({arg}) step {i}: {method}{args:?} {kwargs:?}");
            match (got, want) {
                (Ok(v), Ok(repr)) => assert_eq!(v.repr(), repr, "{what}"),
                (Err(e), Err((kind, msg))) => {
                    assert_eq!(e.kind(), kind, "{what}: {e:?}");
                    if kind != "BrokenBarrierError" {
                        assert_eq!(e.to_string(), msg, "{what}");
                    }
                }
                (got, want) => panic!("{what}: got {got:?}, CPython gives {want:?}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} steps");
}

#[test]
fn acquirer_proxy_timeout_none_means_no_limit() {
    // AcquirerProxy.acquire(blocking=True, timeout=None) passes no timeout on; shmstore's C-style
    // acquires take None as "no limit" too.
    let name = unique("none");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.lock().unwrap();
    assert_eq!(
        l.call_method("acquire", (true, Value::None)).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        l.call_method("acquire", (false, Value::None)).unwrap(),
        Value::Bool(false)
    );
    let r = store.rlock().unwrap();
    assert_eq!(
        r.call_method_kw("acquire", (), &[("timeout", Value::None)])
            .unwrap(),
        Value::Bool(true)
    );
}

#[test]
fn str_and_repr_follow_cpython() {
    let name = unique("str");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let addr = |s: &str| -> String {
        // Replace the address (the body's offset) with a placeholder.
        let at = s.find("0x").unwrap();
        let end = s[at..]
            .find(|c: char| !c.is_ascii_hexdigit() && c != 'x')
            .map_or(s.len(), |e| at + e);
        format!("{}ADDR{}", &s[..at], &s[end..])
    };
    let l = store.lock().unwrap();
    assert_eq!(
        addr(&l.to_string()),
        "<unlocked _thread.lock object at ADDR>"
    );
    let _g = l.acquire_guard().unwrap();
    assert_eq!(addr(&l.to_string()), "<locked _thread.lock object at ADDR>");
    assert_eq!(
        addr(&store.semaphore(3).unwrap().to_string()),
        "<threading.Semaphore at ADDR: value=3>"
    );
    assert_eq!(
        addr(&store.bounded_semaphore(3).unwrap().to_string()),
        "<threading.BoundedSemaphore at ADDR: value=3/3>"
    );
    let r = store.rlock().unwrap();
    assert_eq!(
        addr(&r.to_string()),
        "<unlocked _thread.RLock object owner=0 count=0 at ADDR>"
    );
    let c = store.condition().unwrap();
    assert_eq!(
        addr(&c.to_string()),
        "<Condition(<unlocked _thread.RLock object owner=0 count=0 at ADDR>, 0)>"
    );
    let e = store.event().unwrap();
    assert_eq!(addr(&e.to_string()), "<threading.Event at ADDR: unset>");
    e.set().unwrap();
    assert_eq!(addr(&e.to_string()), "<threading.Event at ADDR: set>");
    let b = store.barrier(3).unwrap();
    assert_eq!(
        addr(&b.to_string()),
        "<threading.Barrier at ADDR: waiters=0/3>"
    );
    b.abort().unwrap();
    assert_eq!(addr(&b.to_string()), "<threading.Barrier at ADDR: broken>");
    assert_eq!(
        format!("{l:?}").split(" at ").next(),
        Some("<AcquirerProxy object, typeid 'Lock'")
    );
    assert_eq!(
        b.call_method("__str__", ()).unwrap(),
        Value::from(b.to_string())
    );
}

// ---------------------------------------------------------------------------------------------
// The typed API.

#[test]
fn typed_lock_semaphore_and_guards() {
    let name = unique("typed");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.lock().unwrap();
    assert!(l.acquire(true, None).unwrap());
    assert!(!l.acquire(false, None).unwrap());
    assert!(!l.acquire(true, Some(Duration::from_millis(20))).unwrap());
    assert_eq!(
        l.acquire(false, Some(Duration::ZERO)),
        Err(Error::ValueError(
            "can't specify a timeout for a non-blocking call".into()
        ))
    );
    assert_eq!(l.get_value().unwrap(), Value::Bool(true));
    l.release().unwrap();
    assert_eq!(l.get_value().unwrap(), Value::Bool(false));
    {
        let g = l.guard().unwrap();
        assert!(g.locked().unwrap());
        assert!(l.try_acquire_guard(Some(Duration::ZERO)).unwrap().is_none());
    }
    assert!(!l.locked().unwrap());
    let g = l.try_acquire_guard(None).unwrap().unwrap();
    g.release().unwrap();
    assert!(!l.locked().unwrap());

    let s = store.semaphore(0).unwrap();
    assert!(!s.acquire(true, Some(Duration::from_millis(10))).unwrap());
    s.release_n(3).unwrap();
    assert_eq!(s.value().unwrap(), 3);
    assert_eq!(s.get_value().unwrap(), Value::Int(3));
    let guards: Vec<_> = (0..3).map(|_| s.acquire_guard().unwrap()).collect();
    assert_eq!(s.value().unwrap(), 0);
    drop(guards);
    assert_eq!(s.value().unwrap(), 3);
    assert_eq!(
        s.release_n(0),
        Err(Error::ValueError("n must be one or more".into()))
    );

    let b = store.bounded_semaphore(2).unwrap();
    let g = b.acquire_guard().unwrap();
    assert_eq!(
        b.release_n(2),
        Err(Error::ValueError(
            "Semaphore released too many times".into()
        ))
    );
    drop(g);
    assert_eq!(
        b.release(),
        Err(Error::ValueError(
            "Semaphore released too many times".into()
        ))
    );
    assert_eq!(b.value().unwrap(), 2);
}

#[test]
fn typed_rlock_condition_event_barrier() {
    let name = unique("typed2");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let r = store.rlock().unwrap();
    {
        let _a = r.acquire_guard().unwrap();
        let _b = r.acquire_guard().unwrap();
        assert_eq!(r.count().unwrap(), 2);
        assert!(r.is_owned().unwrap());
        assert_eq!(r.get_value().unwrap(), Value::Int(2));
    }
    assert_eq!(r.count().unwrap(), 0);
    assert!(!r.is_owned().unwrap());

    let c = store.condition().unwrap();
    assert_eq!(
        c.wait(None),
        Err(Error::RuntimeError(
            "cannot wait on un-acquired lock".into()
        ))
    );
    {
        let g = c.acquire_guard().unwrap();
        let _again = c.acquire_guard().unwrap();
        let mut calls = 0;
        assert!(!g
            .wait_for(
                || {
                    calls += 1;
                    false
                },
                Some(Duration::from_millis(30))
            )
            .unwrap());
        assert!(
            calls >= 2,
            "the predicate is checked before and after waiting"
        );
        // The recursion count is back after the waits.
        assert!(g.is_owned().unwrap());
        assert!(g.wait_for(|| true, None).unwrap());
        assert_eq!(g.notify_all().unwrap(), 0);
    }
    assert!(!c.is_owned().unwrap());

    let e = store.event().unwrap();
    assert!(!e.is_set().unwrap());
    assert!(!e.wait(Some(Duration::from_millis(5))).unwrap());
    e.set().unwrap();
    assert!(e.wait(None).unwrap());
    e.clear().unwrap();
    assert_eq!(e.get_value().unwrap(), Value::Bool(false));

    assert_eq!(
        store.barrier(0).err(),
        Some(Error::ValueError("parties must be >= 1".into()))
    );
    let b = store.barrier(1).unwrap();
    assert_eq!(b.wait(None).unwrap(), 0);
    assert_eq!(b.wait(None).unwrap(), 0);
    assert_eq!(b.default_timeout().unwrap(), None);
    let b = store
        .barrier_with(2, Some(Duration::from_millis(20)))
        .unwrap();
    assert_eq!(
        b.default_timeout().unwrap(),
        Some(Duration::from_millis(20))
    );
    // The default timeout breaks a barrier that never fills.
    assert_eq!(b.wait(None), Err(Error::BrokenBarrier));
    assert!(b.broken().unwrap());
    assert_eq!(
        b.call_method("__getattribute__", ("broken",)).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(b.call_method("wait", ()), Err(Error::BrokenBarrier));
    b.reset().unwrap();
    assert_eq!(b.parties().unwrap(), 2);
    assert_eq!(b.n_waiting().unwrap(), 0);
    assert_eq!(
        b.call_method("__getattribute__", ("parties",)).unwrap(),
        Value::Int(2)
    );
}

#[test]
fn proxies_convert_and_refuse_other_types() {
    let name = unique("conv");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.lock().unwrap();
    store.bind("l", &l).unwrap();
    let p = store.lookup("l").unwrap();
    assert_eq!(p.typeid(), "Lock");
    assert!(RLockProxy::try_from(p.clone()).is_err());
    assert!(SemaphoreProxy::try_from(p.clone()).is_err());
    let again = LockProxy::try_from(p).unwrap();
    assert!(again.acquire(false, None).unwrap());
    assert!(l.locked().unwrap());
    let s: BoundedSemaphoreProxy = store.bounded_semaphore(1).unwrap();
    let t = store.attach(&s.token()).unwrap();
    assert_eq!(t.typeid(), "BoundedSemaphore");
    assert_eq!(
        t.call_method("nope", ()),
        Err(Error::AttributeError(
            "'BoundedSemaphore' object has no attribute 'nope'".into()
        ))
    );
    // Freed when the last proxy goes.
    let live = store.stats().unwrap().objects_live;
    drop((s, t));
    assert_eq!(store.stats().unwrap().objects_live, live - 1);
}

// ---------------------------------------------------------------------------------------------
// Threads of one process.

#[test]
fn rlock_and_condition_belong_to_a_thread_but_a_lock_to_nobody() {
    let name = unique("threads");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let r = store.rlock().unwrap();
    let l = store.lock().unwrap();
    let c = store.condition().unwrap();
    r.acquire(true, None).unwrap();
    l.acquire(true, None).unwrap();
    c.acquire(true, None).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(
                r.release(),
                Err(Error::RuntimeError(
                    "cannot release un-acquired lock".into()
                ))
            );
            assert!(!r.acquire(true, Some(Duration::from_millis(10))).unwrap());
            assert_eq!(
                c.notify(1),
                Err(Error::RuntimeError(
                    "cannot notify on un-acquired lock".into()
                ))
            );
            // A Lock has no owner: another thread releases it.
            l.release().unwrap();
        });
    });
    assert!(!l.locked().unwrap());
    r.release().unwrap();
    c.release().unwrap();
}

#[test]
fn notify_n_wakes_exactly_n_waiters_longest_first() {
    let name = unique("notifyn");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let c = store.condition().unwrap();
    let woken = store.list(Vec::<Value>::new()).unwrap();
    std::thread::scope(|s| {
        for id in 0..4 {
            let (c, woken) = (&c, &woken);
            s.spawn(move || {
                let g = c.acquire_guard().unwrap();
                assert!(g.wait(Some(LONG)).unwrap());
                woken.append(id).unwrap();
            });
            // Each waiter is inside wait once this thread can take the lock and sees it.
            loop {
                let g = c.acquire_guard().unwrap();
                if g.waiters().unwrap() == id + 1 {
                    break;
                }
                drop(g);
                std::thread::yield_now();
            }
        }
        let g = c.acquire_guard().unwrap();
        assert_eq!(g.notify(2).unwrap(), 2);
        assert_eq!(g.waiters().unwrap(), 2);
        drop(g);
        // The two longest waiting (0 and 1) wake.
        while woken.len().unwrap() < 2 {
            std::thread::yield_now();
        }
        let g = c.acquire_guard().unwrap();
        let mut first: Vec<i64> = woken
            .iter()
            .unwrap()
            .map(|v| i64::try_from(v).unwrap())
            .collect();
        first.sort_unstable();
        assert_eq!(first, [0, 1]);
        assert_eq!(g.notify_all().unwrap(), 2);
    });
    assert_eq!(woken.len().unwrap(), 4);
}

#[test]
fn a_timed_out_condition_waiter_does_not_absorb_a_notify() {
    let name = unique("cancel");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let c = store.condition().unwrap();
    std::thread::scope(|s| {
        let g = c.acquire_guard().unwrap();
        s.spawn(|| {
            let g = c.acquire_guard().unwrap();
            assert!(g.wait(Some(LONG)).unwrap());
        });
        // The other thread waits (ticket 0); this one waits with a short timeout (ticket 1),
        // giving ticket 1 back; then a third wait times out too, leaving tickets clean.
        while g.waiters().unwrap() == 0 {
            assert!(!c.wait(Some(Duration::from_millis(1))).unwrap());
        }
        assert!(!g.wait(Some(Duration::from_millis(5))).unwrap());
        assert_eq!(g.waiters().unwrap(), 1);
        assert_eq!(g.notify(1).unwrap(), 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Real processes.

#[test]
fn a_barrier_of_three_processes_gives_each_index_once_per_round() {
    let name = unique("barrier");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let b = store.barrier(3).unwrap();
    store.bind("barrier", &b).unwrap();
    let rounds = 4;
    let mut children: Vec<_> = (0..3)
        .map(|_| spawn("barrier", &[&name, &rounds.to_string()]))
        .collect();
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for round in 0..rounds {
        let mut seen: Vec<usize> = outs
            .iter_mut()
            .map(|o| read_value(o, "INDEX ").expect("index").parse().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2], "round {round}");
    }
    for c in children {
        expect_success(c, "barrier party");
    }
    assert!(!b.broken().unwrap());
    assert_eq!(b.n_waiting().unwrap(), 0);
}

#[test]
fn a_condition_notifies_across_processes() {
    let name = unique("condproc");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let c = store.condition().unwrap();
    store.bind("cond", &c).unwrap();
    let mut children: Vec<_> = (0..2).map(|_| spawn("cond_wait", &[&name])).collect();
    let mut outs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for o in &mut outs {
        assert!(wait_for_line(o, "WAITING"));
    }
    // Each child held the lock when it said WAITING and lets it go only inside wait: once this
    // process has the lock, both are waiting.
    let g = c.acquire_guard().unwrap();
    assert_eq!(g.waiters().unwrap(), 2);
    assert_eq!(g.notify(1).unwrap(), 1);
    assert_eq!(g.waiters().unwrap(), 1);
    drop(g);
    let g = c.acquire_guard().unwrap();
    assert_eq!(g.notify_all().unwrap(), 1);
    drop(g);
    for (c, mut o) in children.into_iter().zip(outs) {
        assert_eq!(read_value(&mut o, "NOTIFIED ").as_deref(), Some("true"));
        expect_success(c, "condition waiter");
    }
}

#[test]
fn an_event_set_in_one_process_wakes_waiters_in_two_others() {
    let name = unique("event");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let e = store.event().unwrap();
    store.bind("event", &e).unwrap();
    let mut waiters: Vec<_> = (0..2).map(|_| spawn("event_wait", &[&name])).collect();
    // Keep the pipes open until the children exit.
    let mut outs: Vec<_> = waiters
        .iter_mut()
        .map(|w| BufReader::new(w.stdout.take().unwrap()))
        .collect();
    for o in &mut outs {
        assert!(wait_for_line(o, "READY"));
    }
    assert!(!e.is_set().unwrap());
    expect_success(spawn("event_set", &[&name]), "setter");
    for w in waiters {
        expect_success(w, "event waiter");
    }
    assert!(e.is_set().unwrap());
}

#[test]
fn a_semaphore_bounds_concurrency_across_processes() {
    let name = unique("semproc");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let s = store.semaphore(2).unwrap();
    let stats = store.list([0, 0]).unwrap();
    store.bind("sem", &s).unwrap();
    store.bind("stats", &stats).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| spawn("sem_worker", &[&name, "300"]))
        .collect();
    for c in children {
        expect_success(c, "semaphore worker");
    }
    assert_eq!(stats.get(0).unwrap(), Value::Int(0));
    let most = i64::try_from(stats.get(1).unwrap()).unwrap();
    assert!((1..=2).contains(&most), "{most} inside at once");
    assert_eq!(s.value().unwrap(), 2, "every unit came back");
}

/// Spawns a child holding `what` (bound under that name) and waits until it holds it.
/// A child holding an object, and its stdout (kept open while it lives); killed when dropped,
/// so that a failing test leaves no child behind.
struct Holder {
    child: common::ChildGuard,
    _out: BufReader<std::process::ChildStdout>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_holder(name: &str, what: &str) -> Holder {
    let mut child = spawn("hold", &[name, what]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "HOLDING"), "child did not acquire");
    Holder { child, _out: out }
}

/// SIGKILLs the holder and reaps it.
fn kill(mut h: Holder) {
    h.child.kill().unwrap();
    h.child.wait().unwrap();
}

#[test]
fn a_timeout_fires_on_a_lock_another_process_holds() {
    let name = unique("timeout");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.lock().unwrap();
    store.bind("lock", &l).unwrap();
    let r = store.rlock().unwrap();
    store.bind("rlock", &r).unwrap();
    let a = spawn_holder(&name, "lock");
    let b = spawn_holder(&name, "rlock");
    // The holders are alive: waits with a timeout give up.
    assert!(!l.acquire(true, Some(Duration::from_millis(300))).unwrap());
    assert_eq!(
        l.call_method("acquire", (true, 0.05)).unwrap(),
        Value::Bool(false)
    );
    assert!(!l.acquire(false, None).unwrap());
    assert!(!r.acquire(true, Some(Duration::from_millis(300))).unwrap());
    assert_eq!(
        r.release(),
        Err(Error::RuntimeError(
            "cannot release un-acquired lock".into()
        ))
    );
    kill(a);
    kill(b);
}

#[test]
fn a_lock_holder_killed_is_recovered_by_a_waiter_already_waiting() {
    let name = unique("killlock");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.lock().unwrap();
    store.bind("lock", &l).unwrap();
    let child = spawn_holder(&name, "lock");
    let repairs = store.stats().unwrap().repairs;
    std::thread::scope(|s| {
        let waiter = s.spawn(|| l.acquire(true, Some(LONG)).unwrap());
        kill(child);
        assert!(
            waiter.join().unwrap(),
            "the waiter took the dead holder's lock"
        );
    });
    assert!(store.stats().unwrap().repairs > repairs);
    // Exactly one unit: held now, and one release frees it.
    assert!(!l.acquire(false, None).unwrap());
    l.release().unwrap();
    assert!(l.acquire(false, None).unwrap());
    assert!(!l.acquire(false, None).unwrap());
    l.release().unwrap();
    assert_eq!(
        l.release(),
        Err(Error::RuntimeError("release unlocked lock".into()))
    );
}

/// The lock word names the holder *process*: a dead one is taken over even by a call that does
/// not wait, while a thread that acquired and ended leaves the lock held (its process lives),
/// as Python's ownerless `Lock` does.
#[test]
fn a_dead_lock_holder_is_taken_over_without_waiting_but_a_finished_thread_still_holds() {
    let name = unique("deadlock2");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.lock().unwrap();
    store.bind("lock", &l).unwrap();
    kill(spawn_holder(&name, "lock"));
    assert!(l.locked().unwrap());
    let repairs = store.stats().unwrap().repairs;
    assert!(l.acquire(false, None).unwrap(), "the dead holder's lock");
    assert_eq!(store.stats().unwrap().repairs, repairs + 1);
    assert!(!l.acquire(false, None).unwrap());
    l.release().unwrap();

    std::thread::scope(|s| {
        s.spawn(|| assert!(l.acquire(false, None).unwrap()));
    });
    assert!(l.locked().unwrap());
    assert!(!l.acquire(true, Some(Duration::from_millis(250))).unwrap());
    l.release().unwrap();
    assert!(!l.locked().unwrap());
}

#[test]
fn an_rlock_owner_killed_is_recovered() {
    let name = unique("killrlock");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let r = store.rlock().unwrap();
    store.bind("rlock", &r).unwrap();
    let c = store.condition().unwrap();
    store.bind("cond", &c).unwrap();
    let a = spawn_holder(&name, "rlock");
    let b = spawn_holder(&name, "cond");
    kill(a);
    kill(b);
    assert!(r.acquire(true, Some(LONG)).unwrap());
    assert_eq!(r.count().unwrap(), 1, "the dead owner's count is gone");
    r.release().unwrap();
    assert_eq!(r.count().unwrap(), 0);
    // A Condition's lock too.
    assert!(c.acquire(true, Some(LONG)).unwrap());
    assert!(c.is_owned().unwrap());
    c.release().unwrap();
}

#[test]
fn a_semaphore_holder_killed_gives_back_its_unit_only() {
    let name = unique("killsem");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    for kind in ["sem", "bsem"] {
        let s: Proxy = if kind == "sem" {
            store.semaphore(2).unwrap().into()
        } else {
            store.bounded_semaphore(2).unwrap().into()
        };
        store.bind(kind, &s).unwrap();
        let a = spawn_holder(&name, kind);
        let b = spawn_holder(&name, kind);
        let acquire = |timeout: f64| s.call_method("acquire", (true, timeout)).unwrap();
        assert_eq!(acquire(0.05), Value::Bool(false), "{kind}: both units held");
        kill(a);
        assert_eq!(
            acquire(30.0),
            Value::Bool(true),
            "{kind}: a's unit recovered"
        );
        assert_eq!(
            acquire(0.3),
            Value::Bool(false),
            "{kind}: b still holds one"
        );
        kill(b);
        assert_eq!(
            acquire(30.0),
            Value::Bool(true),
            "{kind}: b's unit recovered"
        );
        s.call_method("release", (2,)).unwrap();
        assert_eq!(
            s.get_value().unwrap(),
            Value::Int(2),
            "{kind}: no unit twice"
        );
        store.unbind(kind).unwrap();
    }
}

#[test]
fn a_lock_acquired_in_a_child_that_exits_is_released_here_once() {
    // CPython's test_lock pattern: acquire in a child, which exits; release in the parent.
    let name = unique("exitrel");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let go = store.event().unwrap();
    store.bind("go", &go).unwrap();
    let l = store.lock().unwrap();
    store.bind("lock", &l).unwrap();
    let s = store.semaphore(1).unwrap();
    store.bind("sem", &s).unwrap();
    let mut children = Vec::new();
    let mut outs = Vec::new();
    for what in ["lock", "sem"] {
        let mut child = spawn("hold_and_exit", &[&name, what]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        assert!(wait_for_line(&mut out, "HOLDING"));
        children.push(child);
        outs.push(out);
    }
    assert!(l.locked().unwrap());
    go.set().unwrap();
    for c in children {
        expect_success(c, "holder that exits");
    }
    // The child is gone and the lock still held; the parent's release settles the child's
    // unit instead of adding one.
    assert!(l.locked().unwrap());
    l.release().unwrap();
    assert!(!l.locked().unwrap());
    assert_eq!(
        l.release(),
        Err(Error::RuntimeError("release unlocked lock".into()))
    );
    assert!(l.acquire(false, None).unwrap());
    assert!(!l.acquire(true, Some(Duration::from_millis(300))).unwrap());
    // The semaphore likewise: one unit, not two.
    assert_eq!(s.value().unwrap(), 0);
    s.release().unwrap();
    assert_eq!(s.value().unwrap(), 1);
    assert!(s.acquire(false, None).unwrap());
    assert!(!s.acquire(true, Some(Duration::from_millis(300))).unwrap());
}
