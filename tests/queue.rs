//! Queues across real processes: blocked getters and putters woken from another process,
//! timeouts that fire, 100,000 items through one queue between four processes, join across
//! processes, proxies as items, memory given back.

mod common;

use std::io::BufReader;
use std::time::{Duration, Instant};

use common::{expect_success, read_value, spawn, unique, wait_for_line, Cleanup};
use shmstore::{Error, JoinableQueueProxy, ListProxy, QueueProxy, Store, Value};

/// Long enough that correct code never hits it; short enough that a lost wake-up fails the test
/// instead of hanging it.
const PATIENCE: Option<Duration> = Some(Duration::from_secs(120));

/// Runs a blocking call with [`PATIENCE`] as its timeout. A waiter whose wake-up was lost
/// still finds its condition true when its timeout runs out (waits recheck before giving up),
/// so a call that returns only then is a failure too.
fn patient<T>(what: &str, f: impl FnOnce(Option<Duration>) -> shmstore::Result<T>) -> T {
    let start = Instant::now();
    let out = f(PATIENCE).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        Some(start.elapsed()) < PATIENCE,
        "{what}: not woken before the patience ran out"
    );
    out
}

fn queue_named(store: &Store, name: &str) -> QueueProxy {
    QueueProxy::try_from(store.lookup(name).expect("lookup")).expect("a queue")
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
        // args: store — block on get, print what came.
        "getter" => {
            let q = queue_named(&store, "q");
            common::signal("WAITING");
            let v = patient("get", |t| q.get_timeout(t));
            common::signal(&format!("GOT {}", v.repr()));
        }
        // args: store, id, count — put id*count .. (id+1)*count.
        "producer" => {
            let q = queue_named(&store, "q");
            let id: i64 = args[1].parse().unwrap();
            let n: i64 = args[2].parse().unwrap();
            for i in 0..n {
                patient("put", |t| q.put_timeout(id * n + i, t));
            }
        }
        // args: store — get ints until None, then add them all to the list "got".
        "consumer" => {
            let q = queue_named(&store, "q");
            let got = ListProxy::try_from(store.lookup("got").unwrap()).unwrap();
            let mut mine = Vec::new();
            loop {
                match patient("get", |t| q.get_timeout(t)) {
                    Value::None => break,
                    v => mine.push(v),
                }
            }
            got.extend(mine).expect("extend");
        }
        // args: store, count — blocking puts into a bounded queue, reporting each.
        "putter" => {
            let q = queue_named(&store, "q");
            let n: i64 = args[1].parse().unwrap();
            for i in 0..n {
                patient("put", |t| q.put_timeout(i, t));
                common::signal(&format!("PUT {i}"));
            }
        }
        // args: store, count — take `count` tasks, record them, wait for "go", mark them done.
        "worker" => {
            let q = JoinableQueueProxy::try_from(store.lookup("q").unwrap()).unwrap();
            let go = queue_named(&store, "go");
            let done = ListProxy::try_from(store.lookup("done").unwrap()).unwrap();
            let n: usize = args[1].parse().unwrap();
            for _ in 0..n {
                done.append(patient("get", |t| q.get_timeout(t))).unwrap();
            }
            common::signal("TAKEN");
            patient("go", |t| go.get_timeout(t));
            for _ in 0..n {
                q.task_done().expect("task_done");
            }
        }
        // args: store — get a list proxy out of the queue, keeping its referent alive.
        "proxy_getter" => {
            let q = queue_named(&store, "q");
            let (v, proxies) = patient("get", |t| q.get_with_proxies(true, t));
            assert!(matches!(v, Value::Proxy(_)), "{v:?}");
            let l = ListProxy::try_from(proxies.into_iter().next().unwrap()).unwrap();
            l.append("seen by the child").unwrap();
            common::signal(&format!("LIST {l}"));
        }
        other => panic!("unknown role {other}"),
    }
    common::signal("DONE");
}

#[test]
fn a_getter_in_one_process_is_woken_by_a_putter_in_another() {
    let name = unique("qwake");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(0).unwrap();
    store.bind("q", &q).unwrap();
    let mut child = spawn("getter", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "WAITING"));
    q.put("wake up").unwrap();
    assert_eq!(read_value(&mut out, "GOT ").as_deref(), Some("'wake up'"));
    expect_success(child, "getter");
    assert!(q.empty().unwrap());
}

#[test]
fn three_blocked_getters_in_three_processes_each_get_one_item() {
    let name = unique("qwake3");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(0).unwrap();
    store.bind("q", &q).unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            let mut c = spawn("getter", &[&name]);
            let out = BufReader::new(c.stdout.take().unwrap());
            (c, out)
        })
        .collect();
    for (_, out) in &mut children {
        assert!(wait_for_line(out, "WAITING"));
    }
    for i in 0..3 {
        q.put(i).unwrap();
    }
    let mut got: Vec<String> = children
        .iter_mut()
        .map(|(_, out)| read_value(out, "GOT ").expect("a child got nothing"))
        .collect();
    got.sort();
    assert_eq!(got, ["0", "1", "2"]);
    for (c, _) in children {
        expect_success(c, "getter");
    }
}

#[test]
fn timeouts_fire_with_python_errors() {
    let name = unique("qtime");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let t = Duration::from_millis(50);

    let q = store.queue(0).unwrap();
    let start = Instant::now();
    assert_eq!(q.get_timeout(Some(t)), Err(Error::Empty));
    assert!(start.elapsed() >= t);
    let start = Instant::now();
    assert_eq!(q.call_method("get", (true, 0.05)), Err(Error::Empty));
    assert!(start.elapsed() >= t);
    assert_eq!(q.get_with(false, Some(t)), Err(Error::Empty));
    assert_eq!(q.get_nowait(), Err(Error::Empty));

    let full = store.queue(1).unwrap();
    full.put(1).unwrap();
    let start = Instant::now();
    assert_eq!(full.put_timeout(2, Some(t)), Err(Error::Full));
    assert!(start.elapsed() >= t);
    let start = Instant::now();
    assert_eq!(
        full.call_method_kw("put", (2,), &[("timeout", Value::Float(0.05))]),
        Err(Error::Full)
    );
    assert!(start.elapsed() >= t);
    assert_eq!(full.put_nowait(2), Err(Error::Full));
    assert_eq!(full.get().unwrap(), Value::Int(1));

    let j = store.joinable_queue(0).unwrap();
    j.put(1).unwrap();
    let start = Instant::now();
    assert!(!j.join_timeout(Some(t)).unwrap());
    assert!(start.elapsed() >= t);
    j.get().unwrap();
    j.task_done().unwrap();
    assert!(j.join_timeout(Some(t)).unwrap());
    assert_eq!(
        j.task_done(),
        Err(Error::ValueError(
            "task_done() called too many times".into()
        ))
    );
}

#[test]
fn four_processes_pass_100_000_items_through_one_queue_each_exactly_once() {
    const PER_PRODUCER: i64 = 50_000;
    const TOTAL: i64 = 2 * PER_PRODUCER;
    let name = unique("qpc");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 32 << 20).unwrap();
    let q = store.queue(1000).unwrap();
    let got = store.list(Vec::<Value>::new()).unwrap();
    store.bind("q", &q).unwrap();
    store.bind("got", &got).unwrap();
    let consumers: Vec<_> = (0..2).map(|_| spawn("consumer", &[&name])).collect();
    let producers: Vec<_> = (0..2)
        .map(|id| {
            spawn(
                "producer",
                &[&name, &id.to_string(), &PER_PRODUCER.to_string()],
            )
        })
        .collect();
    for p in producers {
        expect_success(p, "producer");
    }
    // One sentinel per consumer, after every item (the queue is FIFO).
    patient("sentinel", |t| q.put_timeout(Value::None, t));
    patient("sentinel", |t| q.put_timeout(Value::None, t));
    for c in consumers {
        expect_success(c, "consumer");
    }
    assert_eq!(got.len().unwrap(), TOTAL as usize);
    let mut seen = vec![false; TOTAL as usize];
    for v in got.iter().unwrap() {
        let i = i64::try_from(v).unwrap();
        assert!((0..TOTAL).contains(&i), "item {i} out of range");
        assert!(
            !std::mem::replace(&mut seen[i as usize], true),
            "item {i} delivered twice"
        );
    }
    assert!(seen.iter().all(|s| *s), "items missing");
    assert!(q.empty().unwrap());
}

#[test]
fn putters_into_a_bounded_queue_block_until_a_consumer_drains_it() {
    let name = unique("qbound");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(2).unwrap();
    store.bind("q", &q).unwrap();
    let mut child = spawn("putter", &[&name, "10"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "PUT 0"));
    assert!(wait_for_line(&mut out, "PUT 1"));
    // The child now blocks in its third put: the queue is full and stays at two items.
    assert!(q.full().unwrap());
    assert_eq!(q.qsize().unwrap(), 2);
    for i in 0..10 {
        assert_eq!(patient("get", |t| q.get_timeout(t)), Value::Int(i));
        assert!(q.qsize().unwrap() <= 2);
    }
    expect_success(child, "putter");
    assert!(q.empty().unwrap());
}

#[test]
fn join_returns_once_every_task_done_arrived_from_another_process() {
    let name = unique("qjoin");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.joinable_queue(0).unwrap();
    let go = store.queue(0).unwrap();
    let done = store.list(Vec::<Value>::new()).unwrap();
    store.bind("q", &q).unwrap();
    store.bind("go", &go).unwrap();
    store.bind("done", &done).unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    let mut child = spawn("worker", &[&name, "5"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "TAKEN"));
    // Every item was got, none marked done: join waits.
    assert!(q.empty().unwrap());
    assert!(!q.join_timeout(Some(Duration::ZERO)).unwrap());
    let joiner = {
        let q = q.clone();
        std::thread::spawn(move || patient("join", |t| q.join_timeout(t)))
    };
    go.put("go").unwrap();
    assert!(joiner.join().unwrap(), "join timed out");
    assert_eq!(done.len().unwrap(), 5);
    expect_success(child, "worker");
    assert_eq!(
        q.call_method("task_done", ()),
        Err(Error::ValueError(
            "task_done() called too many times".into()
        ))
    );
}

#[test]
fn proxies_as_items_keep_their_referents_alive_until_got() {
    let name = unique("qprox");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(0).unwrap();
    let a = store.list([1, 2]).unwrap();
    let b = store.list([3]).unwrap();
    let (ta, tb) = (a.token(), b.token());
    q.put(&a).unwrap();
    // Nested inside a tuple.
    q.put(Value::Tuple(vec![Value::from("b"), Value::from(&b)]))
        .unwrap();
    drop((a, b));
    assert_eq!(store.stats().unwrap().objects_live, 3);
    assert_eq!(
        store.attach(&ta).unwrap().to_str().unwrap(),
        "[1, 2]",
        "the queue keeps the list alive"
    );
    assert_eq!(q.get_value().unwrap().repr(), {
        let items = Value::List(vec![
            Value::Proxy(ta),
            Value::Tuple(vec![Value::from("b"), Value::Proxy(tb)]),
        ]);
        items.repr()
    });

    // A plain get hands back the token; the queue's reference goes with the item.
    assert_eq!(q.get().unwrap(), Value::Proxy(ta));
    assert_eq!(store.stats().unwrap().objects_live, 2);
    assert!(matches!(store.attach(&ta), Err(Error::StaleHandle { .. })));

    // get_with_proxies hands the reference over as a live proxy.
    let (v, proxies) = q.get_with_proxies(false, None).unwrap();
    assert_eq!(v, Value::Tuple(vec![Value::from("b"), Value::Proxy(tb)]));
    assert_eq!(proxies.len(), 1);
    assert_eq!(proxies[0].token(), tb);
    assert_eq!(proxies[0].to_str().unwrap(), "[3]");
    assert_eq!(store.stats().unwrap().objects_live, 2);
    drop(proxies);
    assert_eq!(store.stats().unwrap().objects_live, 1);

    // Dropping a queue that still holds a proxy frees the referent too.
    let c = store.list([4]).unwrap();
    q.put(Value::List(vec![Value::from(&c)])).unwrap();
    drop(c);
    assert_eq!(store.stats().unwrap().objects_live, 2);
    drop(q);
    assert_eq!(store.stats().unwrap().objects_live, 0);
}

#[test]
fn a_proxy_put_by_one_process_is_got_alive_by_another() {
    let name = unique("qproxp");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(0).unwrap();
    store.bind("q", &q).unwrap();
    let l = store.list(["made by the parent"]).unwrap();
    q.put(&l).unwrap();
    drop(l); // only the queue holds the list now
    let mut child = spawn("proxy_getter", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(
        read_value(&mut out, "LIST ").as_deref(),
        Some("['made by the parent', 'seen by the child']")
    );
    expect_success(child, "proxy getter");
    // The child's proxy was the last reference: the list is gone.
    assert_eq!(store.stats().unwrap().objects_live, 1);
}

#[test]
fn memory_returns_to_baseline_after_growing_draining_and_dropping() {
    let name = unique("qmem");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 8 << 20).unwrap();
    let before = store.stats().unwrap();
    let q = store.queue(0).unwrap();
    let j = store.joinable_queue(5).unwrap();
    let created = store.stats().unwrap();
    let long = "a string long enough to need its own block";
    for i in 0..5000 {
        if i % 2 == 0 {
            q.put(i).unwrap();
        } else {
            q.put(format!("{long} {i}")).unwrap();
        }
    }
    assert_eq!(q.qsize().unwrap(), 5000);
    for i in 0..5000 {
        let v = q.get().unwrap();
        if i % 2 == 0 {
            assert_eq!(v, Value::Int(i));
        } else {
            assert_eq!(v, Value::from(format!("{long} {i}")));
        }
    }
    // Drained, the ring shrank back to its first size.
    let drained = store.stats().unwrap();
    assert_eq!(drained.bytes_in_use, created.bytes_in_use);
    assert_eq!(drained.blocks_in_use, created.blocks_in_use);
    // Dropped with items still queued.
    for i in 0..100 {
        q.put(format!("{long} {i}")).unwrap();
    }
    j.put(vec![1, 2, 3]).unwrap();
    drop((q, j));
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, before.bytes_in_use);
    assert_eq!(after.blocks_in_use, before.blocks_in_use);
    assert_eq!(after.objects_live, before.objects_live);
}

#[test]
fn typed_proxies_repr_str_lookup_and_typeids() {
    let name = unique("qrepr");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(3).unwrap();
    let j = store.joinable_queue(0).unwrap();
    assert!(format!("{q:?}").starts_with("<AutoProxy[Queue] object, typeid 'Queue' at 0x"));
    assert!(format!("{j:?}")
        .starts_with("<AutoProxy[JoinableQueue] object, typeid 'JoinableQueue' at 0x"));
    assert!(q.to_string().starts_with("<queue.Queue object at 0x"));
    assert_eq!(q.maxsize().unwrap(), 3);
    assert_eq!(j.maxsize().unwrap(), 0);
    store.bind("q", &q).unwrap();
    store.bind("j", &j).unwrap();
    assert_eq!(store.lookup("q").unwrap().typeid(), "Queue");
    assert_eq!(store.lookup("j").unwrap().typeid(), "JoinableQueue");
    assert!(JoinableQueueProxy::try_from(store.lookup("q").unwrap()).is_err());
    assert!(QueueProxy::try_from(store.lookup("j").unwrap()).is_err());
    let again = QueueProxy::try_from(store.lookup("q").unwrap()).unwrap();
    again.put_with("x", true, None).unwrap();
    assert_eq!(q.get_with(true, None).unwrap(), Value::from("x"));
    assert_eq!(
        q.call_method("__len__", ()),
        Err(Error::AttributeError(
            "'Queue' object has no attribute '__len__'".into()
        ))
    );
}

#[test]
fn a_getter_killed_while_waiting_leaves_the_queue_usable() {
    let name = unique("qkill");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let q = store.queue(0).unwrap();
    store.bind("q", &q).unwrap();
    let mut child = spawn("getter", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "WAITING"));
    child.kill().unwrap();
    child.wait().unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get_nowait().unwrap(), Value::Int(1));
    // A new getter elsewhere is still woken.
    let mut child = spawn("getter", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "WAITING"));
    q.put(2).unwrap();
    assert_eq!(read_value(&mut out, "GOT ").as_deref(), Some("2"));
    expect_success(child, "getter");
}
