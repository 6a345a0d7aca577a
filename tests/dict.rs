//! The shared dict: every method against CPython's results, the typed API, a model test over
//! random operation sequences, memory and nested-proxy lifetimes, allocation-free scalar access,
//! atomic `add` from 4 real processes, and recovery from a holder killed inside `with_lock`.

#[path = "gen/dict_cases.rs"]
#[allow(dead_code)]
mod cases;
mod common;

use std::cell::Cell;
use std::io::BufReader;

use common::{expect_success, spawn, unique, wait_for_line, Cleanup};
use proptest::prelude::*;
use shmstore::{DictProxy, Error, Store, Value};

// ---------------------------------------------------------------------------------------------
// A global allocator that counts this thread's allocations, for the no-allocation test.

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// ---------------------------------------------------------------------------------------------

fn new_store(tag: &str, size: usize) -> (Store, Cleanup) {
    let name = unique(tag);
    let c = Cleanup(name.clone());
    (Store::create(&name, size).unwrap(), c)
}

fn pairs(v: Value) -> Vec<(Value, Value)> {
    match v {
        Value::Dict(kv) => kv,
        other => panic!("not a dict: {other:?}"),
    }
}

/// Entry point for child processes (run by the tests below, not on its own).
#[test]
#[ignore = "entry point for the child processes of this file's tests"]
fn child_main() {
    let Some((role, args)) = common::child_role() else {
        return;
    };
    let store = Store::open(&args[0]).expect("child: open");
    let d = DictProxy::try_from(store.lookup("counter").expect("lookup")).expect("a dict");
    match role.as_str() {
        // args: store, count
        "add" => {
            let n: i64 = args[1].parse().unwrap();
            common::signal("READY");
            for _ in 0..n {
                d.add("hits", 1).expect("add");
                d.add("secs", 0.5).expect("add");
            }
        }
        // args: store — insert under the lock and wait to be killed while holding it.
        "hold" => {
            let _ = d.with_lock(|v| {
                for i in 0..100 {
                    v.insert(format!("doomed-{i}"), i)?;
                }
                v.remove("keep-0")?;
                common::signal("HOLDING");
                loop {
                    std::thread::park();
                }
                #[allow(unreachable_code)]
                Ok(())
            });
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Against CPython.

#[test]
fn dict_methods_match_cpython() {
    let (store, _c) = new_store("dictpy", 8 << 20);
    let mut failures = Vec::new();
    for (base, method, args, kwargs, want) in cases::cases() {
        let d = store.dict(pairs(cases::base(base))).unwrap();
        let got = d.call_method_kw(method, args.as_slice(), &kwargs);
        let after = d.to_string();
        let ok = match (&got, &want) {
            (Ok(v), Ok((r, a))) => v.repr() == *r && after == *a,
            (Err(e), Err((kind, msg, a))) => {
                e.kind() == *kind && e.to_string() == *msg && after == *a
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{base}.{method}{args:?} {kwargs:?}: got {got:?} / dict {after}, want {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The typed API.

#[test]
fn typed_methods() {
    let (store, _c) = new_store("dicttyped", 4 << 20);
    let d = store.dict([("a", 1), ("b", 2), ("a", 3)]).unwrap();
    assert_eq!(d.len().unwrap(), 2);
    assert_eq!(d.to_string(), "{'a': 3, 'b': 2}");
    assert_eq!(d.get("a").unwrap(), Some(Value::Int(3)));
    assert_eq!(d.get("zz").unwrap(), None);
    assert_eq!(d.get_item("zz"), Err(Error::KeyError(Value::from("zz"))));
    assert_eq!(
        d.get_item("zz").unwrap_err().to_string(),
        "'zz'",
        "KeyError displays the key's repr"
    );
    assert_eq!(
        d.get(vec![1]),
        Err(Error::TypeError("unhashable type: 'list'".into()))
    );
    assert_eq!(
        d.insert(vec![1], 1),
        Err(Error::TypeError("unhashable type: 'list'".into()))
    );
    d.insert(1, "one").unwrap();
    d.insert(1.0, "ONE").unwrap(); // same key as 1: the value changes, the key stays
    assert_eq!(d.to_string(), "{'a': 3, 'b': 2, 1: 'ONE'}");
    assert!(d.contains(true).unwrap());
    assert_eq!(d.remove("b").unwrap(), Some(Value::Int(2)));
    assert_eq!(d.remove("b").unwrap(), None);
    assert_eq!(d.pop("b"), Err(Error::KeyError(Value::from("b"))));
    assert_eq!(d.setdefault("s", 5).unwrap(), Value::Int(5));
    assert_eq!(d.setdefault("s", 6).unwrap(), Value::Int(5));
    d.update([("u", 1), ("a", 0)]).unwrap();
    assert_eq!(
        d.keys().unwrap(),
        vec![Value::from("a"), 1.into(), "s".into(), "u".into()]
    );
    assert_eq!(
        d.values().unwrap(),
        vec![Value::Int(0), "ONE".into(), 5.into(), 1.into()]
    );
    assert_eq!(d.items().unwrap()[1], (Value::Int(1), Value::from("ONE")));
    assert_eq!(d.popitem().unwrap(), (Value::from("u"), Value::Int(1)));
    assert_eq!(
        d.get_value().unwrap(),
        Value::dict_from_pairs([("a", Value::Int(0)), ("s", 5.into())])
            .map(|v| {
                let mut kv = pairs(v);
                kv.insert(1, (1.into(), "ONE".into()));
                Value::Dict(kv)
            })
            .unwrap()
    );
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.to_string(), "{}");
    assert_eq!(
        d.popitem(),
        Err(Error::KeyError(Value::from(
            "popitem(): dictionary is empty"
        )))
    );
    assert_eq!(
        format!("{d:?}").split(" at ").next(),
        Some("<DictProxy object, typeid 'dict'")
    );
}

#[test]
fn add_is_numeric_and_starts_at_zero() {
    let (store, _c) = new_store("dictadd", 1 << 20);
    let d = store.dict([("s", Value::from("text"))]).unwrap();
    assert_eq!(d.add("n", 2).unwrap(), Value::Int(2));
    assert_eq!(d.add("n", -5).unwrap(), Value::Int(-3));
    assert_eq!(d.add("n", 0.5).unwrap(), Value::Float(-2.5));
    assert_eq!(d.add("f", 1.25).unwrap(), Value::Float(1.25));
    assert_eq!(d.add("b", true).unwrap(), Value::Int(1));
    assert_eq!(
        d.add("s", 1),
        Err(Error::TypeError(
            "unsupported operand type(s) for +: 'str' and 'int'".into()
        ))
    );
    assert_eq!(
        d.add("n", "x"),
        Err(Error::TypeError(
            "unsupported operand type(s) for +: 'float' and 'str'".into()
        ))
    );
    d.insert("big", i64::MAX).unwrap();
    assert!(matches!(d.add("big", 1), Err(Error::ValueError(_))));
    assert_eq!(
        d.get("big").unwrap(),
        Some(Value::Int(i64::MAX)),
        "unchanged"
    );
    assert_eq!(
        d.with_lock(|v| {
            v.add("n", 10)?;
            let n = v.get_item("n")?;
            v.insert("copy", n.clone())?;
            Ok((v.len()?, v.contains("copy")?, v.remove("copy")?))
        })
        .unwrap(),
        (6, true, Some(Value::Float(7.5)))
    );
}

#[test]
fn growth_and_deletion_churn_keep_order_and_lookups() {
    let (store, _c) = new_store("dictchurn", 16 << 20);
    let d = store.dict(Vec::<(Value, Value)>::new()).unwrap();
    let mut present = std::collections::BTreeSet::new();
    for i in 0..5000i64 {
        d.insert(i, i * 2).unwrap();
        present.insert(i);
        if i % 3 == 0 {
            let gone = present.remove(&(i / 2));
            assert_eq!(
                d.remove(i / 2).unwrap(),
                gone.then_some(Value::Int(i / 2 * 2))
            );
        }
    }
    let keys = d.keys().unwrap();
    let want: Vec<Value> = present.iter().map(|&i| Value::Int(i)).collect();
    // Keys removed and never re-inserted are gone; the rest keep insertion order.
    assert_eq!(keys, want);
    for i in 0..5000i64 {
        assert_eq!(
            d.get(i).unwrap(),
            present.contains(&i).then_some(Value::Int(i * 2))
        );
    }
    while d.len().unwrap() > 0 {
        d.popitem().unwrap();
    }
    d.insert("again", 1).unwrap();
    assert_eq!(d.to_string(), "{'again': 1}");
}

// ---------------------------------------------------------------------------------------------
// Memory and nested proxies.

#[test]
fn memory_returns_to_baseline_after_drop() {
    let (store, _c) = new_store("dictmem", 16 << 20);
    let base = store.stats().unwrap();
    {
        let long = "a value long enough to need its own block";
        let d = store
            .dict((0..2000).map(|i| {
                (
                    Value::from(format!("key number {i} of many")),
                    Value::from(long),
                )
            }))
            .unwrap();
        for i in 0..2000 {
            if i % 2 == 0 {
                d.remove(format!("key number {i} of many")).unwrap();
            } else {
                d.insert(
                    format!("key number {i} of many"),
                    vec![Value::from(i), long.into()],
                )
                .unwrap();
            }
        }
        d.add((1, "tuple key"), 5).unwrap();
        d.update([(
            Value::from("nested"),
            Value::from(vec![vec![1, 2], vec![3]]),
        )])
        .unwrap();
        d.popitem().unwrap();
        assert!(store.stats().unwrap().bytes_in_use > base.bytes_in_use);
        let s = store
            .set((0..500).map(|i| format!("element number {i}")))
            .unwrap();
        s.difference_update((0..250).map(|i| format!("element number {i}")))
            .unwrap();
        let d2 = store.dict([(1, 2)]).unwrap();
        d2.clear().unwrap();
    }
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.blocks_in_use, base.blocks_in_use);
    assert_eq!(after.objects_live, base.objects_live);
}

#[test]
fn nested_proxies_keep_their_referents_alive() {
    let (store, _c) = new_store("dictnest", 4 << 20);
    let live0 = store.stats().unwrap().objects_live;
    let d = store.dict(Vec::<(Value, Value)>::new()).unwrap();
    {
        let inner = store.list([1, 2, 3]).unwrap();
        let key = store.set(["k"]).unwrap();
        d.insert("inner", &inner).unwrap();
        d.insert(&key, "proxy as key").unwrap();
        d.insert("in a tuple", (Value::from(&inner), 5)).unwrap();
    }
    assert_eq!(store.stats().unwrap().objects_live, live0 + 3);
    let Some(Value::Proxy(t)) = d.get("inner").unwrap() else {
        panic!("expected a proxy");
    };
    let inner = shmstore::ListProxy::try_from(store.attach(&t).unwrap()).unwrap();
    assert_eq!(inner.to_string(), "[1, 2, 3]");
    drop(inner);
    let keys = d.keys().unwrap();
    let Value::Proxy(kt) = &keys[1] else {
        panic!("expected a proxy key")
    };
    assert_eq!(
        d.get(Value::Proxy(*kt)).unwrap(),
        Some("proxy as key".into())
    );
    // Removing one reference to the list keeps it (the tuple still holds one).
    d.remove("inner").unwrap();
    assert_eq!(store.stats().unwrap().objects_live, live0 + 3);
    d.remove("in a tuple").unwrap();
    assert_eq!(store.stats().unwrap().objects_live, live0 + 2);
    assert!(store.attach(&t).is_err(), "the list is gone");
    drop(d);
    assert_eq!(store.stats().unwrap().objects_live, live0);
}

#[test]
fn scalar_get_and_set_allocate_nothing() {
    let (store, _c) = new_store("dictalloc", 1 << 20);
    let d = store.dict((0..20).map(|i| (i, i))).unwrap();
    d.insert("short key", 1.5).unwrap();
    let getitem = d.method_id("__getitem__").unwrap();
    let args = [Value::Int(3)];
    // Warm up (thread-locals, lazily initialized statics).
    for _ in 0..3 {
        d.get(1).unwrap();
        d.insert(1, 1).unwrap();
        d.call_id(getitem, &args, &[]).unwrap();
    }
    let before = allocs();
    for i in 0..1000i64 {
        assert_eq!(d.get(i % 20).unwrap(), Some(Value::Int(i % 20)));
        d.insert(i % 20, i % 20).unwrap();
        assert!(d.contains(i % 20).unwrap());
        d.add(7, 0).unwrap();
        d.add(19, 0.0).unwrap();
        d.call_id(getitem, &args, &[]).unwrap();
    }
    d.insert(19, 19).unwrap();
    assert_eq!(allocs() - before, 0, "heap allocations on the scalar paths");
}

// ---------------------------------------------------------------------------------------------
// Across processes.

#[test]
fn four_processes_add_atomically() {
    const N: i64 = 50_000;
    let (store, _c) = new_store("dictadd4", 1 << 20);
    let d = store.dict(Vec::<(Value, Value)>::new()).unwrap();
    store.bind("counter", &d).unwrap();
    let name = store.name().to_owned();
    let n = N.to_string();
    let children: Vec<_> = (0..4).map(|_| spawn("add", &[&name, &n])).collect();
    for (i, c) in children.into_iter().enumerate() {
        expect_success(c, &format!("adder {i}"));
    }
    assert_eq!(d.get("hits").unwrap(), Some(Value::Int(4 * N)));
    assert_eq!(d.get("secs").unwrap(), Some(Value::Float(2.0 * N as f64)));
}

#[test]
fn holder_killed_inside_with_lock_leaves_a_working_dict() {
    let (store, _c) = new_store("dictkill", 4 << 20);
    let d = store
        .dict((0..10).map(|i| (format!("keep-{i}"), i)))
        .unwrap();
    store.bind("counter", &d).unwrap();
    let mut child = spawn("hold", &[store.name()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(
        wait_for_line(&mut out, "HOLDING"),
        "child never took the lock"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The dict is whole: the dead holder's writes up to its death are there, lookups agree
    // with iteration, and it takes new work.
    let items = d.items().unwrap();
    assert_eq!(items.len(), d.len().unwrap());
    for (k, v) in &items {
        assert_eq!(d.get(k.clone()).unwrap().as_ref(), Some(v));
    }
    assert!(d.contains("doomed-99").unwrap());
    assert!(!d.contains("keep-0").unwrap());
    d.insert("after", 1).unwrap();
    assert_eq!(d.len().unwrap(), 9 + 100 + 1);
    assert!(store.stats().unwrap().repairs >= 1);
}

// ---------------------------------------------------------------------------------------------
// The model test: an ordered map against the shared dict over random operation sequences.

#[derive(Clone, Debug)]
enum Op {
    Insert(Value, Value),
    Remove(Value),
    Get(Value),
    Pop(Value),
    Popitem,
    SetDefault(Value, Value),
    Add(Value, i64),
    Clear,
}

fn arb_key() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => (0i64..40).prop_map(Value::Int),
        1 => (0i64..5).prop_map(|i| Value::Float(i as f64)),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => (0u8..10).prop_map(|i| Value::from(format!("k{i}"))),
        1 => (0u8..5).prop_map(|i| Value::from(format!("a long key, longer than the inline cell {i}"))),
        1 => (0i64..3, 0u8..3).prop_map(|(a, b)| Value::from((a, format!("t{b}")))),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..1000).prop_map(Value::Int),
        "[a-z]{0,30}".prop_map(Value::from),
        prop::collection::vec(0i64..5, 0..4).prop_map(Value::from),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (arb_key(), arb_value()).prop_map(|(k, v)| Op::Insert(k, v)),
        5 => arb_key().prop_map(Op::Remove),
        3 => arb_key().prop_map(Op::Get),
        2 => arb_key().prop_map(Op::Pop),
        2 => Just(Op::Popitem),
        2 => (arb_key(), arb_value()).prop_map(|(k, v)| Op::SetDefault(k, v)),
        2 => (arb_key(), -5i64..5).prop_map(|(k, n)| Op::Add(k, n)),
        1 => Just(Op::Clear),
    ]
}

/// Python's dict, the slow way: pairs in insertion order, keys compared with `==`.
#[derive(Default)]
struct Model(Vec<(Value, Value)>);

impl Model {
    fn pos(&self, k: &Value) -> Option<usize> {
        self.0.iter().position(|(x, _)| x == k)
    }
    fn apply(&mut self, op: &Op) -> Result<Value, Error> {
        match op {
            Op::Insert(k, v) => {
                match self.pos(k) {
                    Some(i) => self.0[i].1 = v.clone(),
                    None => self.0.push((k.clone(), v.clone())),
                }
                Ok(Value::None)
            }
            Op::Remove(k) => Ok(self
                .pos(k)
                .map(|i| self.0.remove(i).1)
                .unwrap_or(Value::from("absent"))),
            Op::Get(k) => Ok(self
                .pos(k)
                .map_or(Value::from("absent"), |i| self.0[i].1.clone())),
            Op::Pop(k) => match self.pos(k) {
                Some(i) => Ok(self.0.remove(i).1),
                None => Err(Error::KeyError(k.clone())),
            },
            Op::Popitem => match self.0.pop() {
                Some((k, v)) => Ok(Value::from((k, v))),
                None => Err(Error::KeyError("popitem(): dictionary is empty".into())),
            },
            Op::SetDefault(k, v) => match self.pos(k) {
                Some(i) => Ok(self.0[i].1.clone()),
                None => {
                    self.0.push((k.clone(), v.clone()));
                    Ok(v.clone())
                }
            },
            Op::Add(k, n) => match self.pos(k) {
                Some(i) => match &self.0[i].1 {
                    Value::Int(x) => {
                        self.0[i].1 = Value::Int(x + n);
                        Ok(self.0[i].1.clone())
                    }
                    other => Err(Error::TypeError(format!(
                        "unsupported operand type(s) for +: '{}' and 'int'",
                        other.type_name()
                    ))),
                },
                None => {
                    self.0.push((k.clone(), Value::Int(*n)));
                    Ok(Value::Int(*n))
                }
            },
            Op::Clear => {
                self.0.clear();
                Ok(Value::None)
            }
        }
    }
}

fn apply(d: &DictProxy, op: &Op) -> Result<Value, Error> {
    match op {
        Op::Insert(k, v) => d.insert(k.clone(), v.clone()).map(|()| Value::None),
        Op::Remove(k) => d
            .remove(k.clone())
            .map(|v| v.unwrap_or(Value::from("absent"))),
        Op::Get(k) => d.get(k.clone()).map(|v| v.unwrap_or(Value::from("absent"))),
        Op::Pop(k) => d.pop(k.clone()),
        Op::Popitem => d.popitem().map(Value::from),
        Op::SetDefault(k, v) => d.setdefault(k.clone(), v.clone()),
        Op::Add(k, n) => d.add(k.clone(), *n),
        Op::Clear => d.clear().map(|()| Value::None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn dict_agrees_with_an_ordered_map(ops in prop::collection::vec(arb_op(), 1..400)) {
        let (store, _c) = new_store("dictmodel", 8 << 20);
        let base = store.stats().unwrap().bytes_in_use;
        let d = store.dict(Vec::<(Value, Value)>::new()).unwrap();
        let mut m = Model::default();
        for op in &ops {
            let want = m.apply(op);
            let got = apply(&d, op);
            prop_assert_eq!(&got, &want, "{:?}", op);
            prop_assert_eq!(d.len().unwrap(), m.0.len());
        }
        prop_assert_eq!(d.items().unwrap(), m.0.clone());
        prop_assert_eq!(d.to_string(), Value::Dict(m.0.clone()).repr());
        drop(d);
        prop_assert_eq!(store.stats().unwrap().bytes_in_use, base);
    }
}
