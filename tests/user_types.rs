//! User-registered types (CPython's `BaseManager.register`): calls by name and typed calls,
//! zero-copy `with_lock`, dynamic proxies from lookup and attach, per-store type ids, real child
//! processes that register the type the same way (and are served) or differently (and are
//! refused), a holder killed inside a method (the repair hook runs), and memory back to its
//! baseline once the last proxy is gone.

mod common;

use std::io::BufReader;

use bytemuck::{Pod, Zeroable};
use common::{expect_success, read_value, spawn, unique, wait_for_line, Cleanup};
use shmstore::types::{bind_args, Kwargs};
use shmstore::{Error, ListProxy, Proxy, Store, UserProxy, UserType, Value};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Counter {
    hits: u64,
    total: f64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Pair {
    a: i32,
    b: i32,
}

/// A type with an invariant across fields (`dirty` is 0 outside a method), and a repair hook
/// that restores it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Guarded {
    value: u64,
    dirty: u64,
    repairs: u64,
}

fn amount(v: Option<&Value>) -> shmstore::Result<f64> {
    match v {
        None => Ok(1.0),
        Some(v) => f64::try_from(v),
    }
}

fn incr(c: &mut Counter, args: &[Value]) -> shmstore::Result<Value> {
    let [by] = bind_args("incr", args, &[], ["amount"], 0)?;
    c.hits += 1;
    c.total += amount(by)?;
    Ok(Value::from(c.hits))
}

fn hits(c: &mut Counter, _: &[Value]) -> shmstore::Result<Value> {
    Ok(Value::from(c.hits))
}

fn total(c: &mut Counter, _: &[Value]) -> shmstore::Result<Value> {
    Ok(Value::from(c.total))
}

fn reset(c: &mut Counter, _: &[Value]) -> shmstore::Result<Value> {
    *c = Counter::zeroed();
    Ok(Value::None)
}

/// `add(n, times=1)`: keyword arguments with Python's binding rules.
fn add(c: &mut Counter, args: &[Value], kwargs: Kwargs<'_>) -> shmstore::Result<Value> {
    let [n, times] = bind_args("add", args, kwargs, ["n", "times"], 1)?;
    let n = n.map(f64::try_from).transpose()?.unwrap_or(0.0);
    let times = times.map(i64::try_from).transpose()?.unwrap_or(1);
    for _ in 0..times {
        c.hits += 1;
        c.total += n;
    }
    Ok(Value::from(c.total))
}

fn fail(_: &mut Counter, _: &[Value]) -> shmstore::Result<Value> {
    Err(Error::ValueError("counter refuses".into()))
}

/// The registration every process of these tests makes; `variant` "other" registers the same
/// typeid with another method set (what the store must refuse).
fn register_counter(variant: &str) {
    let t = UserType::<Counter>::new("Counter");
    let t = match variant {
        "other" => t.method("incr", incr).method("decr", incr),
        _ => t
            .method("incr", incr)
            .method("hits", hits)
            .method("total", total)
            .method("reset", reset)
            .method_kw("add", add)
            .method("fail", fail)
            .display(|c| format!("Counter(hits={}, total={:?})", c.hits, c.total))
            .to_value(|c| {
                Value::Dict(vec![
                    (Value::from("hits"), Value::from(c.hits)),
                    (Value::from("total"), Value::from(c.total)),
                ])
            }),
    };
    shmstore::register(t).expect("register Counter");
}

fn register_pair() {
    shmstore::register(UserType::<Pair>::new("Pair").method("swap", |p, _| {
        std::mem::swap(&mut p.a, &mut p.b);
        Ok(Value::None)
    }))
    .expect("register Pair");
}

fn register_guarded() {
    shmstore::register(
        UserType::<Guarded>::new("Guarded")
            .method("value", |g, _| Ok(Value::from(g.value)))
            .repair(|g| {
                if g.dirty != 0 {
                    g.value = 0;
                    g.dirty = 0;
                    g.repairs += 1;
                }
            }),
    )
    .expect("register Guarded");
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
        // args: store, count. Registers Pair first, so this process's registration order
        // (and serials) differ from the parent's; the store's ids are what count.
        "same" => {
            register_pair();
            register_counter("same");
            let c: UserProxy<Counter> = store.lookup("counter").unwrap().try_into().unwrap();
            let n: u64 = args[1].parse().unwrap();
            let incr_id = c.method_id("incr").unwrap();
            for i in 0..n {
                if i % 2 == 0 {
                    c.call_method("incr", (0.5,)).unwrap();
                } else {
                    c.call_id(incr_id, &[Value::Float(0.5)], &[]).unwrap();
                }
                c.with_lock(|c| c.total += 0.5).unwrap();
            }
            let p: UserProxy<Pair> = store.lookup("pair").unwrap().try_into().unwrap();
            p.call_method("swap", ()).unwrap();
        }
        // args: store, token. Registers Counter with other methods: every way in is refused.
        "other" => {
            register_counter("other");
            let refusals = [
                store.lookup("counter").map(drop),
                store.attach(&args[1].parse().unwrap()).map(drop),
                store.user("Counter", Counter::zeroed()).map(drop),
            ];
            for r in refusals {
                match r {
                    Err(Error::TypeError(msg)) => println!("\nREFUSED {msg}"),
                    other => panic!("expected a TypeError, got {other:?}"),
                }
            }
        }
        // args: store. Registers nothing: may hold the object, not call it.
        "none" => {
            let p = store.lookup("counter").unwrap();
            assert_eq!(p.typeid(), "Counter");
            match p.call_method("hits", ()) {
                Err(Error::NotFound(msg)) => println!("\nNOTFOUND {msg}"),
                other => panic!("expected NotFound, got {other:?}"),
            }
            assert!(matches!(p.get_value(), Err(Error::NotFound(_))));
        }
        // args: store. Dirties the object under its lock and waits to be killed.
        "hold" => {
            register_guarded();
            let g: UserProxy<Guarded> = store.lookup("guarded").unwrap().try_into().unwrap();
            let _ = g.with_lock(|g| {
                g.value = 999;
                g.dirty = 1;
                common::signal("HOLDING");
                loop {
                    std::thread::park();
                }
            });
        }
        other => panic!("unknown role {other}"),
    }
    common::signal("DONE");
}

fn store(tag: &str) -> (Store, Cleanup) {
    let name = unique(tag);
    let c = Cleanup(name.clone());
    (Store::create(&name, 4 << 20).unwrap(), c)
}

type Expect = Result<Value, Error>;

#[test]
fn call_method_by_name_results_and_errors() {
    register_counter("same");
    let (store, _c) = store("calls");
    let c = store
        .user(
            "Counter",
            Counter {
                hits: 0,
                total: 0.0,
            },
        )
        .unwrap();
    let attr = |m: &str| {
        Err(Error::AttributeError(format!(
            "'Counter' object has no attribute '{m}'"
        )))
    };
    let cases: Vec<(&str, Vec<Value>, Kwargs<'_>, Expect)> = vec![
        ("incr", vec![], &[], Ok(Value::Int(1))),
        ("incr", vec![Value::Float(2.5)], &[], Ok(Value::Int(2))),
        ("hits", vec![], &[], Ok(Value::Int(2))),
        ("total", vec![], &[], Ok(Value::Float(3.5))),
        (
            "add",
            vec![Value::Int(2)],
            &[("times", Value::Int(3))],
            Ok(Value::Float(9.5)),
        ),
        (
            "add",
            vec![],
            &[("n", Value::Float(0.5))],
            Ok(Value::Float(10.0)),
        ),
        ("hits", vec![], &[], Ok(Value::Int(6))),
        (
            "incr",
            vec![Value::Int(1), Value::Int(2)],
            &[],
            Err(Error::TypeError(
                "incr expected at most 1 argument, got 2".into(),
            )),
        ),
        (
            "incr",
            vec![],
            &[("amount", Value::Int(1))],
            Err(Error::TypeError(
                "Counter.incr() takes no keyword arguments".into(),
            )),
        ),
        (
            "add",
            vec![],
            &[],
            Err(Error::TypeError(
                "add expected at least 1 argument, got 0".into(),
            )),
        ),
        (
            "add",
            vec![Value::Int(1)],
            &[("n", Value::Int(1))],
            Err(Error::TypeError(
                "add() got multiple values for argument 'n'".into(),
            )),
        ),
        (
            "add",
            vec![Value::Int(1)],
            &[("step", Value::Int(1))],
            Err(Error::TypeError(
                "'step' is an invalid keyword argument for add()".into(),
            )),
        ),
        (
            "incr",
            vec![Value::from("x")],
            &[],
            Err(Error::TypeError("must be real number, not str".into())),
        ),
        (
            "fail",
            vec![],
            &[],
            Err(Error::ValueError("counter refuses".into())),
        ),
        ("nope", vec![], &[], attr("nope")),
        ("__len__", vec![], &[], attr("__len__")),
        ("reset", vec![], &[], Ok(Value::None)),
        ("hits", vec![], &[], Ok(Value::Int(0))),
    ];
    for (i, (m, args, kw, want)) in cases.into_iter().enumerate() {
        let got = c.call_method_kw(m, args, kw);
        assert_eq!(got, want, "case {i}: {m}");
    }
    c.call_method("incr", (1.5,)).unwrap();
    assert_eq!(c.to_string(), "Counter(hits=1, total=1.5)");
    assert_eq!(c.to_str().unwrap(), "Counter(hits=1, total=1.5)");
    assert_eq!(
        c.get_value().unwrap().to_string(),
        "{'hits': 1, 'total': 1.5}"
    );
    assert_eq!(c.token().typeid(), "Counter");
    assert_eq!(c.typeid(), "Counter");
    let repr = format!("{c:?}");
    assert!(
        repr.starts_with("<AutoProxy[Counter] object, typeid 'Counter' at 0x"),
        "{repr}"
    );
    assert!(c
        .token()
        .proxy_repr()
        .starts_with("<AutoProxy[Counter] object"));
    // A method id from one user type is refused on another.
    register_pair();
    let p = store.user("Pair", Pair { a: 1, b: 2 }).unwrap();
    let swap = p.method_id("swap").unwrap();
    assert_eq!(swap.name(), "swap");
    assert!(matches!(
        c.call_id(swap, &[], &[]),
        Err(Error::TypeError(_))
    ));
    // Built-in resolution of a user type id points to the per-store resolver.
    assert!(matches!(
        shmstore::MethodId::resolve(c.token().type_id, "incr"),
        Err(Error::TypeError(_))
    ));
}

#[test]
fn defaults_without_display_or_to_value() {
    register_pair();
    let (store, _c) = store("defaults");
    let p = store.user("Pair", Pair { a: 1, b: -1 }).unwrap();
    assert_eq!(p.to_string(), "<Pair object>");
    let mut bytes = 1i32.to_ne_bytes().to_vec();
    bytes.extend((-1i32).to_ne_bytes());
    assert_eq!(p.get_value().unwrap(), Value::Bytes(bytes));
    assert_eq!(p.call_method("swap", ()).unwrap(), Value::None);
    assert_eq!(p.get().unwrap(), Pair { a: -1, b: 1 });
}

#[test]
fn typed_get_set_and_with_lock_in_place() {
    register_counter("same");
    let (store, _c) = store("typed");
    let c = store.user("Counter", Counter::zeroed()).unwrap();
    c.set(Counter {
        hits: 7,
        total: 1.25,
    })
    .unwrap();
    assert_eq!(
        c.get().unwrap(),
        Counter {
            hits: 7,
            total: 1.25
        }
    );
    // with_lock works on the arena's bytes: a call by name sees its writes, and it sees theirs.
    let seen = c
        .with_lock(|x| {
            x.hits *= 2;
            x.total += 0.75;
            (x.hits, x.total)
        })
        .unwrap();
    assert_eq!(seen, (14, 2.0));
    assert_eq!(c.call_method("hits", ()).unwrap(), Value::Int(14));
    c.call_method("incr", ()).unwrap();
    assert_eq!(c.with_lock(|x| x.hits).unwrap(), 15);
    // Clones share the referent.
    let c2 = c.clone();
    c2.with_lock(|x| x.hits = 100).unwrap();
    assert_eq!(c.get().unwrap().hits, 100);
    // Threads of one process increment under the lock without losing updates.
    std::thread::scope(|s| {
        for _ in 0..4 {
            let c = c.clone();
            s.spawn(move || {
                for _ in 0..1000 {
                    c.with_lock(|x| x.hits += 1).unwrap();
                }
            });
        }
    });
    assert_eq!(c.get().unwrap().hits, 4100);
}

#[test]
fn dynamic_proxies_from_lookup_and_attach_and_typed_conversions() {
    register_counter("same");
    register_pair();
    let (store, _c) = store("dynamic");
    let c = store.user("Counter", Counter::zeroed()).unwrap();
    store.bind("counter", &c).unwrap();
    let other = Store::open(store.name()).unwrap();
    let p = other.lookup("counter").unwrap();
    assert_eq!(p.typeid(), "Counter");
    assert_eq!(p.call_method("incr", (2.0,)).unwrap(), Value::Int(1));
    let a = other
        .attach(&c.token().to_string().parse().unwrap())
        .unwrap();
    assert_eq!(a.call_method("total", ()).unwrap(), Value::Float(2.0));
    assert_eq!(a.to_string(), "Counter(hits=1, total=2.0)");
    assert!(format!("{a:?}").starts_with("<AutoProxy[Counter] object, typeid 'Counter'"));
    // Typed again, from the dynamic proxy.
    let typed: UserProxy<Counter> = p.clone().try_into().unwrap();
    assert_eq!(typed.get().unwrap().hits, 1);
    // The wrong Rust type, or a built-in type, is refused; and the other way round.
    let e = UserProxy::<Pair>::try_from(p.clone()).err().unwrap();
    assert_eq!(e.kind(), "TypeError");
    assert!(e.to_string().contains("does not store a"), "{e}");
    let l: Proxy = store.list([1]).unwrap().into();
    assert_eq!(
        UserProxy::<Counter>::try_from(l).err(),
        Some(Error::TypeError(
            "expected a user-type proxy, got a 'list' proxy".into()
        ))
    );
    assert_eq!(
        ListProxy::try_from(p).err(),
        Some(Error::TypeError(
            "expected a 'list' proxy, got a 'Counter' proxy".into()
        ))
    );
    // A user proxy nested in a list comes back as its token.
    let l = store.list(vec![Value::from(&c)]).unwrap();
    let Value::Proxy(t) = l.get(0).unwrap() else {
        panic!("not a proxy")
    };
    assert_eq!(t.typeid(), "Counter");
    let back: UserProxy<Counter> = store.attach(&t).unwrap().try_into().unwrap();
    assert_eq!(back.get().unwrap().hits, 1);
    // Creating under a name this process has not registered, or for the wrong Rust type.
    assert!(matches!(
        store.user("NoSuchType", 0u64),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.user("Counter", Pair { a: 0, b: 0 }),
        Err(Error::TypeError(_))
    ));
}

#[test]
fn type_ids_come_from_each_store_not_from_registration_order() {
    register_counter("same");
    register_pair();
    let (s1, _c1) = store("ids1");
    let (s2, _c2) = store("ids2");
    let c1 = s1.user("Counter", Counter::zeroed()).unwrap();
    let p1 = s1.user("Pair", Pair { a: 1, b: 2 }).unwrap();
    let p2 = s2.user("Pair", Pair { a: 3, b: 4 }).unwrap();
    let c2 = s2.user("Counter", Counter::zeroed()).unwrap();
    let first = shmstore::type_ids::FIRST_USER;
    assert_eq!((c1.token().type_id, p1.token().type_id), (first, first + 1));
    assert_eq!((p2.token().type_id, c2.token().type_id), (first, first + 1));
    // The same id names another type in each store, and each resolves right.
    assert_eq!(c1.token().typeid(), "Counter");
    assert_eq!(p2.token().typeid(), "Pair");
    c2.call_method("incr", ()).unwrap();
    p1.call_method("swap", ()).unwrap();
    assert_eq!(p1.get().unwrap(), Pair { a: 2, b: 1 });
    assert_eq!(c2.get().unwrap().hits, 1);
    // A method id resolved in one store is not valid for the same type id in the other.
    let swap_in_s1 = p1.method_id("swap").unwrap();
    assert!(matches!(
        c1.call_id(swap_in_s1, &[], &[]),
        Err(Error::TypeError(_))
    ));
    // More objects of a type reuse its id.
    let c3 = s1.user("Counter", Counter::zeroed()).unwrap();
    assert_eq!(c3.token().type_id, first);
}

#[test]
fn two_child_processes_attach_by_name_and_call_methods() {
    register_counter("same");
    register_pair();
    let name = unique("children");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let c = store.user("Counter", Counter::zeroed()).unwrap();
    store.bind("counter", &c).unwrap();
    let p = store.user("Pair", Pair { a: 1, b: 2 }).unwrap();
    store.bind("pair", &p).unwrap();
    let children: Vec<_> = (0..2).map(|_| spawn("same", &[&name, "2000"])).collect();
    for child in children {
        expect_success(child, "same-registration child");
    }
    assert_eq!(
        c.get().unwrap(),
        Counter {
            hits: 4000,
            total: 4000.0
        }
    );
    assert_eq!(p.get().unwrap(), Pair { a: 1, b: 2 }, "swapped twice");
    assert_eq!(store.stats().unwrap().processes_attached, 1);
}

#[test]
fn a_child_with_a_different_registration_is_refused() {
    register_counter("same");
    let name = unique("differs");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let c = store.user("Counter", Counter::zeroed()).unwrap();
    store.bind("counter", &c).unwrap();
    let before = store.stats().unwrap();
    let mut child = spawn("other", &[&name, &c.token().to_string()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        let msg = read_value(&mut out, "REFUSED ").expect("child refusal line");
        assert!(
            msg.starts_with(
                "user type 'Counter' is registered differently in this process than in store"
            ),
            "{msg}"
        );
        assert!(msg.contains("methods [decr, incr]"), "{msg}");
    }
    assert!(wait_for_line(&mut out, "DONE"));
    expect_success(child, "other-registration child");
    // The refused attaches left no reference behind, and the object is untouched.
    assert_eq!(c.get().unwrap(), Counter::zeroed());
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, before.bytes_in_use);
    assert_eq!(after.objects_live, before.objects_live);
    drop(c);
    store.unbind("counter").unwrap();
    assert_eq!(store.stats().unwrap().objects_live, 0);
}

#[test]
fn a_child_without_the_registration_may_hold_but_not_call() {
    register_counter("same");
    let name = unique("unreg");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let c = store.user("Counter", Counter::zeroed()).unwrap();
    store.bind("counter", &c).unwrap();
    let mut child = spawn("none", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let msg = read_value(&mut out, "NOTFOUND ").expect("child line");
    assert_eq!(
        msg,
        "user type 'Counter' is not registered in this process (shmstore::register)"
    );
    expect_success(child, "unregistered child");
}

#[test]
fn a_holder_killed_inside_with_lock_is_repaired_by_the_hook() {
    register_guarded();
    let name = unique("ukill");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let g = store
        .user(
            "Guarded",
            Guarded {
                value: 5,
                dirty: 0,
                repairs: 0,
            },
        )
        .unwrap();
    store.bind("guarded", &g).unwrap();
    let mut child = spawn("hold", &[&name]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(
        wait_for_line(&mut out, "HOLDING"),
        "child did not take the lock"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before = store.stats().unwrap().repairs;
    assert_eq!(
        g.get().unwrap(),
        Guarded {
            value: 0,
            dirty: 0,
            repairs: 1
        }
    );
    assert_eq!(store.stats().unwrap().repairs, before + 1);
    assert_eq!(g.call_method("value", ()).unwrap(), Value::Int(0));
}

#[test]
fn memory_returns_to_baseline_after_the_last_proxy_drops() {
    register_counter("same");
    register_pair();
    let (store, _c) = store("memory");
    // The store's user-type table is allocated once, when the first user type is used in it,
    // and stays: take the baseline after that.
    drop(store.user("Counter", Counter::zeroed()).unwrap());
    drop(store.user("Pair", Pair { a: 0, b: 0 }).unwrap());
    let base = store.stats().unwrap();
    assert_eq!(base.objects_live, 0);
    let counters: Vec<_> = (0..50)
        .map(|i| {
            store
                .user(
                    "Counter",
                    Counter {
                        hits: i,
                        total: 0.0,
                    },
                )
                .unwrap()
        })
        .collect();
    let pairs: Vec<_> = (0..50)
        .map(|i| store.user("Pair", Pair { a: i, b: -i }).unwrap())
        .collect();
    let clones: Vec<_> = counters.iter().map(UserProxy::clone).collect();
    store.bind("c0", &counters[0]).unwrap();
    let holder = store
        .list(pairs.iter().map(Value::from).collect::<Vec<_>>())
        .unwrap();
    let dynamic: Vec<Proxy> = counters
        .iter()
        .map(|c| store.attach(&c.token()).unwrap())
        .collect();
    let mid = store.stats().unwrap();
    assert_eq!(mid.objects_live, 101);
    assert!(mid.bytes_in_use > base.bytes_in_use);
    drop((counters, pairs, clones, dynamic));
    // Still held: the binding and the list's references.
    assert_eq!(store.stats().unwrap().objects_live, 52);
    drop(holder);
    store.unbind("c0").unwrap();
    let after = store.stats().unwrap();
    assert_eq!(after.objects_live, 0);
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.blocks_in_use, base.blocks_in_use);
}

#[test]
fn the_example_runs_two_children_to_the_expected_total() {
    // `cargo test` builds the examples next to the test binaries; a run of this file alone
    // (`cargo test --test user_types`) does not, and then this test has nothing to run.
    let Some(exe) = std::env::current_exe()
        .ok()
        .and_then(|t| Some(t.parent()?.parent()?.join("examples").join("user_type")))
        .filter(|p| p.exists())
    else {
        eprintln!("examples/user_type not built; run `cargo test` or `cargo build --examples`");
        return;
    };
    let out = std::process::Command::new(exe).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "example failed: {text}");
    assert!(
        text.contains("final: Counter(hits=2000, total=2000.0)"),
        "{text}"
    );
}
