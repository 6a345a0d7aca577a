//! The shared set: every method against CPython's results (compared as sets, since CPython
//! iterates in hash order and shmstore in insertion order), the typed API, a model test, memory
//! and nested-proxy lifetimes, and concurrent adds from several processes.

#[path = "gen/set_cases.rs"]
#[allow(dead_code)]
mod cases;
mod common;

use common::{expect_success, spawn, unique, Cleanup};
use proptest::prelude::*;
use shmstore::{Error, SetProxy, Store, Value};

fn new_store(tag: &str, size: usize) -> (Store, Cleanup) {
    let name = unique(tag);
    let c = Cleanup(name.clone());
    (Store::create(&name, size).unwrap(), c)
}

/// A set's canonical repr, as the generator writes it: element reprs sorted.
fn canon(items: &[Value]) -> String {
    if items.is_empty() {
        return "set()".into();
    }
    let mut r: Vec<String> = items.iter().map(Value::repr).collect();
    r.sort();
    format!("{{{}}}", r.join(", "))
}

fn list(v: Value) -> Vec<Value> {
    match v {
        Value::List(xs) => xs,
        other => panic!("not a list: {other:?}"),
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
    let s = SetProxy::try_from(store.lookup("seen").expect("lookup")).expect("a set");
    match role.as_str() {
        // args: store, id, count — add id*count..(id+1)*count, plus a shared range.
        "add" => {
            let id: i64 = args[1].parse().unwrap();
            let n: i64 = args[2].parse().unwrap();
            for i in 0..n {
                s.add(id * n + i).expect("add");
                s.add(-(i % 100) - 1).expect("add shared");
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn set_methods_match_cpython() {
    let (store, _c) = new_store("setpy", 8 << 20);
    let mut failures = Vec::new();
    for (base, method, args, kwargs, want) in cases::cases() {
        let s = store.set(list(cases::base(base))).unwrap();
        let got = s.call_method_kw(method, args.as_slice(), &kwargs);
        let after = canon(&list(s.get_value().unwrap()));
        let shown = match &got {
            Ok(Value::List(xs)) if cases::SET_RESULTS.contains(&method) => canon(xs),
            Ok(v) => v.repr(),
            Err(_) => String::new(),
        };
        let ok = match (&got, &want) {
            (Ok(_), Ok((r, a))) => shown == *r && after == *a,
            (Err(e), Err((kind, msg, a))) => {
                e.kind() == *kind && e.to_string() == *msg && after == *a
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{base}.{method}{args:?} {kwargs:?}: got {got:?} ({shown}) / set {after}, want {want:?}"
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

#[test]
fn str_and_repr_in_insertion_order() {
    let (store, _c) = new_store("setstr", 1 << 20);
    let s = store
        .set([Value::from(3), 1.into(), "a".into(), 1.0.into()])
        .unwrap();
    assert_eq!(s.to_string(), "{3, 1, 'a'}");
    assert_eq!(
        s.call_method("__repr__", ()).unwrap(),
        Value::from("{3, 1, 'a'}")
    );
    s.clear().unwrap();
    assert_eq!(s.to_string(), "set()");
    assert_eq!(s.call_method("__str__", ()).unwrap(), Value::from("set()"));
    assert_eq!(
        format!("{s:?}").split(" at ").next(),
        Some("<SetProxy object, typeid 'set'")
    );
}

#[test]
fn typed_methods() {
    let (store, _c) = new_store("settyped", 1 << 20);
    let s = store.set([1, 2, 3, 2]).unwrap();
    assert_eq!(s.len().unwrap(), 3);
    assert!(s.add(4).unwrap());
    assert!(!s.add(4.0).unwrap());
    assert!(s.contains(true).unwrap());
    assert_eq!(
        s.contains(vec![1]),
        Err(Error::TypeError("unhashable type: 'list'".into()))
    );
    assert!(s.discard(1).unwrap());
    assert!(!s.discard(1).unwrap());
    assert_eq!(s.remove(1), Err(Error::KeyError(Value::Int(1))));
    assert_eq!(s.pop().unwrap(), Value::Int(4), "pop takes the newest");
    assert_eq!(s.items().unwrap(), vec![Value::Int(2), 3.into()]);
    assert_eq!(
        s.union([3, 5]).unwrap(),
        vec![Value::Int(2), 3.into(), 5.into()]
    );
    assert_eq!(s.intersection([3, 5]).unwrap(), vec![Value::Int(3)]);
    assert_eq!(s.difference([3, 5]).unwrap(), vec![Value::Int(2)]);
    assert_eq!(
        s.symmetric_difference([3, 5]).unwrap(),
        vec![Value::Int(2), 5.into()]
    );
    assert!(s.issubset([1, 2, 3]).unwrap());
    assert!(!s.issuperset([1, 2, 3]).unwrap());
    assert!(s.isdisjoint([7]).unwrap());
    s.update([7, 8]).unwrap();
    s.difference_update([8]).unwrap();
    s.intersection_update([2, 3, 7, 9]).unwrap();
    s.symmetric_difference_update([3, 10]).unwrap();
    assert_eq!(s.to_string(), "{2, 7, 10}");
    assert_eq!(
        s.with_lock(|v| Ok((v.add(11)?, v.discard(2)?, v.contains(11)?, v.len()?)))
            .unwrap(),
        (true, true, true, 3)
    );
    s.clear().unwrap();
    assert!(s.is_empty().unwrap());
    assert_eq!(
        s.pop(),
        Err(Error::KeyError(Value::from("pop from an empty set")))
    );
    assert_eq!(s.pop().unwrap_err().to_string(), "'pop from an empty set'");
    assert_eq!(
        store.set([vec![1]]).err(),
        Some(Error::TypeError("unhashable type: 'list'".into()))
    );
}

#[test]
fn memory_returns_to_baseline_and_nested_proxies_live_while_held() {
    let (store, _c) = new_store("setmem", 8 << 20);
    let base = store.stats().unwrap();
    {
        let s = store
            .set((0..3000).map(|i| format!("a long element, number {i}")))
            .unwrap();
        for i in (0..3000).step_by(2) {
            s.remove(format!("a long element, number {i}")).unwrap();
        }
        while s.len().unwrap() > 10 {
            s.pop().unwrap();
        }
        let inner = store.dict([("x", 1)]).unwrap();
        s.add(&inner).unwrap();
        s.add((Value::from(&inner), "in a tuple")).unwrap();
        let t = inner.token();
        drop(inner);
        assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 2);
        assert!(s.contains(Value::Proxy(t)).unwrap());
        let again = store.attach(&t).unwrap();
        assert_eq!(again.to_string(), "{'x': 1}");
        drop(again);
        s.discard(Value::Proxy(t)).unwrap();
        assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 2);
        s.discard((Value::Proxy(t), "in a tuple")).unwrap();
        assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 1);
        assert!(store.attach(&t).is_err());
        let other = store.list([1]).unwrap();
        s.add(&other).unwrap();
    }
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.blocks_in_use, base.blocks_in_use);
    assert_eq!(after.objects_live, base.objects_live);
}

#[test]
fn four_processes_add_concurrently() {
    const N: i64 = 5_000;
    let (store, _c) = new_store("setadd4", 8 << 20);
    let s = store.set(Vec::<i64>::new()).unwrap();
    store.bind("seen", &s).unwrap();
    let name = store.name().to_owned();
    let n = N.to_string();
    let children: Vec<_> = (0..4)
        .map(|id| spawn("add", &[&name, &id.to_string(), &n]))
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        expect_success(c, &format!("adder {i}"));
    }
    assert_eq!(s.len().unwrap(), 4 * N as usize + 100);
    for i in 0..4 * N {
        assert!(s.contains(i).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// The model test.

#[derive(Clone, Debug)]
enum Op {
    Add(Value),
    Discard(Value),
    Remove(Value),
    Pop,
    Update(Vec<Value>),
    DifferenceUpdate(Vec<Value>),
    IntersectionUpdate(Vec<Value>),
    Clear,
}

fn arb_elem() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0i64..50).prop_map(Value::Int),
        1 => (0i64..5).prop_map(|i| Value::Float(i as f64 + 0.5)),
        2 => (0u8..8).prop_map(|i| Value::from(format!("an element long enough to need a block {i}"))),
        1 => (0i64..3).prop_map(|i| Value::from((i, "t"))),
    ]
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => arb_elem().prop_map(Op::Add),
        4 => arb_elem().prop_map(Op::Discard),
        2 => arb_elem().prop_map(Op::Remove),
        2 => Just(Op::Pop),
        2 => prop::collection::vec(arb_elem(), 0..20).prop_map(Op::Update),
        1 => prop::collection::vec(arb_elem(), 0..20).prop_map(Op::DifferenceUpdate),
        1 => prop::collection::vec(arb_elem(), 0..40).prop_map(Op::IntersectionUpdate),
        1 => Just(Op::Clear),
    ]
}

#[derive(Default)]
struct Model(Vec<Value>);

impl Model {
    fn pos(&self, v: &Value) -> Option<usize> {
        self.0.iter().position(|x| x == v)
    }
    fn add(&mut self, v: &Value) {
        if self.pos(v).is_none() {
            self.0.push(v.clone());
        }
    }
    fn discard(&mut self, v: &Value) -> bool {
        self.pos(v).map(|i| self.0.remove(i)).is_some()
    }
    fn apply(&mut self, op: &Op) -> Result<Value, Error> {
        match op {
            Op::Add(v) => {
                self.add(v);
                Ok(Value::None)
            }
            Op::Discard(v) => Ok(Value::Bool(self.discard(v))),
            Op::Remove(v) => {
                if self.discard(v) {
                    Ok(Value::None)
                } else {
                    Err(Error::KeyError(v.clone()))
                }
            }
            Op::Pop => self
                .0
                .pop()
                .ok_or(Error::KeyError("pop from an empty set".into())),
            Op::Update(vs) => {
                vs.iter().for_each(|v| self.add(v));
                Ok(Value::None)
            }
            Op::DifferenceUpdate(vs) => {
                vs.iter().for_each(|v| {
                    self.discard(v);
                });
                Ok(Value::None)
            }
            Op::IntersectionUpdate(vs) => {
                self.0.retain(|x| vs.contains(x));
                Ok(Value::None)
            }
            Op::Clear => {
                self.0.clear();
                Ok(Value::None)
            }
        }
    }
}

fn apply(s: &SetProxy, op: &Op) -> Result<Value, Error> {
    match op {
        Op::Add(v) => s.add(v.clone()).map(|_| Value::None),
        Op::Discard(v) => s.discard(v.clone()).map(Value::Bool),
        Op::Remove(v) => s.remove(v.clone()).map(|()| Value::None),
        Op::Pop => s.pop(),
        Op::Update(vs) => s.update(vs.clone()).map(|()| Value::None),
        Op::DifferenceUpdate(vs) => s.difference_update(vs.clone()).map(|()| Value::None),
        Op::IntersectionUpdate(vs) => s.intersection_update(vs.clone()).map(|()| Value::None),
        Op::Clear => s.clear().map(|()| Value::None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn set_agrees_with_an_ordered_model(ops in prop::collection::vec(arb_op(), 1..300)) {
        let (store, _c) = new_store("setmodel", 8 << 20);
        let base = store.stats().unwrap().bytes_in_use;
        let s = store.set(Vec::<Value>::new()).unwrap();
        let mut m = Model::default();
        for op in &ops {
            let want = m.apply(op);
            let got = apply(&s, op);
            prop_assert_eq!(&got, &want, "{:?}", op);
            prop_assert_eq!(s.len().unwrap(), m.0.len());
        }
        prop_assert_eq!(s.items().unwrap(), m.0.clone());
        drop(s);
        prop_assert_eq!(store.stats().unwrap().bytes_in_use, base);
    }
}
