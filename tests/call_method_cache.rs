//! `call_method` by name finds the method in its type's name table, built at compile time and
//! keyed by the name's whole content (see `dispatch::call_by_name`; it was a per-thread cache
//! before). These tests try to fool it: names rewritten in place (same address, same length),
//! one name on several types and stores, names built at run time, every error the general path
//! gives, and objects freed under their proxies.

mod common;

use common::{unique, Cleanup};
use shmstore::{Error, Proxy, Store, UserType, Value};

fn store(tag: &str) -> (Store, Cleanup) {
    let name = unique(tag);
    let c = Cleanup(name.clone());
    (Store::create(&name, 4 << 20).unwrap(), c)
}

#[test]
fn a_name_rewritten_in_place_resolves_to_the_new_method() {
    let (store, _c) = store("cmc-rewrite");
    let l = store.list([1]).unwrap();
    // One buffer, one address, one length: "append", then "extend", then "append" again.
    let mut name = String::with_capacity(32);
    name.push_str("append");
    let at = name.as_ptr();
    assert_eq!(l.call_method(&name, (2,)).unwrap(), Value::None);
    name.clear();
    name.push_str("extend");
    assert_eq!(name.as_ptr(), at);
    assert_eq!(
        l.call_method(&name, (Value::from(vec![3, 4]),)).unwrap(),
        Value::None
    );
    name.clear();
    name.push_str("append");
    assert_eq!(l.call_method(&name, (5,)).unwrap(), Value::None);
    assert_eq!(l.to_str().unwrap(), "[1, 2, 3, 4, 5]");
    // The same buffer holding an unknown name of the same length: the general path's error.
    name.clear();
    name.push_str("appenX");
    assert_eq!(
        l.call_method(&name, (6,)),
        Err(Error::AttributeError(
            "'list' object has no attribute 'appenX'".into()
        ))
    );
    // Names of every length class (under 4, 4 to 7, 8 to 16, over 16 bytes), rewritten alike.
    for (a, b, args_a, args_b) in [
        ("pop", "pop", vec![], vec![]),
        ("count", "index", vec![Value::Int(3)], vec![Value::Int(3)]),
        ("__len__", "__str__", vec![], vec![]),
        (
            "__getitem__",
            "__delitem__",
            vec![Value::Int(-1)],
            vec![Value::Int(-1)],
        ),
    ] {
        name.clear();
        name.push_str(a);
        let ra = l.call_method(&name, args_a).unwrap();
        name.clear();
        name.push_str(b);
        let rb = l.call_method(&name, args_b).unwrap();
        assert_eq!(name.as_ptr(), at);
        match (a, b) {
            ("pop", _) => assert_eq!((ra, rb), (Value::Int(5), Value::Int(4))),
            ("count", _) => assert_eq!((ra, rb), (Value::Int(1), Value::Int(2))),
            ("__len__", _) => assert_eq!((ra, rb), (Value::Int(3), Value::from("[1, 2, 3]"))),
            _ => assert_eq!((ra, rb), (Value::Int(3), Value::None)),
        }
    }
    assert_eq!(l.to_str().unwrap(), "[1, 2]");
}

#[test]
fn one_name_on_several_types_and_stores_calls_each_ones_method() {
    let (s1, _c1) = store("cmc-types1");
    let (s2, _c2) = store("cmc-types2");
    let l1 = s1.list([1, 2, 3]).unwrap();
    let l2 = s2.list([10, 20]).unwrap();
    let d = s1.dict([(1, "one")]).unwrap();
    let set = s2.set([7]).unwrap();
    let dynamic = Proxy::from(s2.dict([(2, "two")]).unwrap());
    // One literal (one address): "pop" is a different method index on each type.
    for _ in 0..3 {
        let name: &'static str = "pop";
        assert_eq!(l1.call_method(name, ()).unwrap(), Value::Int(3));
        assert_eq!(d.call_method(name, (1,)).unwrap(), Value::from("one"));
        assert_eq!(l2.call_method(name, (0,)).unwrap(), Value::Int(10));
        assert_eq!(set.call_method(name, ()).unwrap(), Value::Int(7));
        assert_eq!(dynamic.call_method(name, (2,)).unwrap(), Value::from("two"));
        l1.append(3).unwrap();
        d.insert(1, "one").unwrap();
        l2.insert(0, 10).unwrap();
        set.add(7).unwrap();
        dynamic.call_method("__setitem__", (2, "two")).unwrap();
    }
    // "__len__" through the typed proxies and the dynamic one, alternately.
    let l1p = Proxy::from(l1.clone());
    for _ in 0..3 {
        assert_eq!(l1.call_method("__len__", ()).unwrap(), Value::Int(3));
        assert_eq!(l1p.call_method("__len__", ()).unwrap(), Value::Int(3));
        assert_eq!(d.call_method("__len__", ()).unwrap(), Value::Int(1));
        assert_eq!(l2.call_method("__len__", ()).unwrap(), Value::Int(2));
    }
}

#[test]
fn a_cached_name_still_gets_every_error_of_the_general_path() {
    let (store, _c) = store("cmc-errors");
    let l = store.list([1, 2]).unwrap();
    let a = store.array([1i64, 2]).unwrap();
    let v = store.value_of(1u8).unwrap();
    let lk = store.lock().unwrap();
    for _ in 0..2 {
        // Resolved and cached by the first call of the loop; errors on the second too.
        assert_eq!(l.call_method("__getitem__", (0,)).unwrap(), Value::Int(1));
        assert!(matches!(
            l.call_method("__getitem__", (5,)),
            Err(Error::IndexError(m)) if m == "list index out of range"
        ));
        assert!(matches!(
            l.call_method("__getitem__", ()),
            Err(Error::TypeError(_))
        ));
        assert!(matches!(
            l.call_method("__getitem__", ("x",)),
            Err(Error::TypeError(_))
        ));
        assert!(matches!(
            l.call_method_kw("__getitem__", (0,), &[("x", Value::Int(1))]),
            Err(Error::TypeError(_))
        ));
        assert_eq!(
            l.call_method_kw("sort", (), &[("reverse", Value::Bool(true))])
                .unwrap(),
            Value::None
        );
        assert_eq!(l.get(0).unwrap(), Value::Int(2));
        l.call_method("sort", ()).unwrap();
        assert!(matches!(
            a.call_method("__setitem__", (9, 1)),
            Err(Error::IndexError(_))
        ));
        assert!(matches!(
            v.call_method("set", (300,)),
            Err(Error::OverflowError(_))
        ));
        assert_eq!(lk.call_method("acquire", ()).unwrap(), Value::Bool(true));
        assert_eq!(
            lk.call_method("acquire", (false,)).unwrap(),
            Value::Bool(false)
        );
        assert_eq!(lk.call_method("release", ()).unwrap(), Value::None);
        assert!(matches!(
            lk.call_method("release", ()),
            Err(Error::RuntimeError(_))
        ));
        assert!(matches!(
            lk.call_method("no_such_method", ()),
            Err(Error::AttributeError(_))
        ));
    }
}

#[test]
fn names_built_at_run_time_and_user_types() {
    let (store, _c) = store("cmc-runtime");
    shmstore::register(UserType::<u64>::new("CmcTally").method("bump", |n, _| {
        *n += 1;
        Ok(Value::from(*n))
    }))
    .unwrap();
    let u = store.user("CmcTally", 0u64).unwrap();
    let l = store.list(Vec::<i64>::new()).unwrap();
    for i in 0..20 {
        // A fresh String each time (often at a reused address).
        let name = format!("{}{}", "app", "end");
        l.call_method(&name, (i,)).unwrap();
        let bump = String::from("bump");
        assert_eq!(u.call_method(&bump, ()).unwrap(), Value::Int(i + 1));
        assert!(matches!(
            u.call_method(&format!("bum{}", "q"), ()),
            Err(Error::AttributeError(_))
        ));
    }
    assert_eq!(l.len().unwrap(), 20);
    let dynamic = Proxy::from(u);
    assert_eq!(dynamic.call_method("bump", ()).unwrap(), Value::Int(21));
}

#[test]
fn threads_keep_their_own_cache() {
    let (store, _c) = store("cmc-threads");
    let l = store.list([0i64; 8]).unwrap();
    std::thread::scope(|s| {
        for t in 0..2i64 {
            let l = &l;
            s.spawn(move || {
                for i in 0..1000 {
                    let k = t * 4 + i % 4;
                    l.call_method("__setitem__", (k, i)).unwrap();
                    assert_eq!(l.call_method("__getitem__", (k,)).unwrap(), Value::Int(i));
                }
            });
        }
    });
    assert_eq!(l.call_method("__len__", ()).unwrap(), Value::Int(8));
}

/// `call_method` `__getitem__`/`__setitem__` on an array, and `get`/`set` on a `value_of`, of one
/// primitive type: the fast paths' conversions agree with the typed proxies'.
fn primitive_round_trip<T>(store: &Store, x: T, as_value: Value, too_big: Option<Value>)
where
    T: bytemuck::Pod + PartialEq + std::fmt::Debug,
{
    let a = store.array::<T>(vec![T::zeroed(); 4]).unwrap();
    for _ in 0..2 {
        assert_eq!(
            a.call_method("__setitem__", (-2, as_value.clone()))
                .unwrap(),
            Value::None
        );
        assert_eq!(a.get(2).unwrap(), x);
        assert_eq!(a.call_method("__getitem__", (2,)).unwrap(), as_value);
        assert_eq!(a.call_method("__getitem__", (-2,)).unwrap(), as_value);
        assert!(matches!(
            a.call_method("__setitem__", (4, as_value.clone())),
            Err(Error::IndexError(_))
        ));
        assert!(matches!(
            a.call_method("__getitem__", (-5,)),
            Err(Error::IndexError(_))
        ));
        if let Some(big) = &too_big {
            assert!(matches!(
                a.call_method("__setitem__", (0, big.clone())),
                Err(Error::OverflowError(_))
            ));
            assert_eq!(a.get(0).unwrap(), T::zeroed());
        }
    }
    let v = store.value_of::<T>(T::zeroed()).unwrap();
    for _ in 0..3 {
        assert_eq!(
            v.call_method("set", (as_value.clone(),)).unwrap(),
            Value::None
        );
        assert_eq!(v.get().unwrap(), x);
        assert_eq!(v.call_method("get", ()).unwrap(), as_value);
        if let Some(big) = &too_big {
            assert!(matches!(
                v.call_method("set", (big.clone(),)),
                Err(Error::OverflowError(_))
            ));
            assert_eq!(v.get().unwrap(), x);
        }
    }
}

#[test]
fn primitive_arrays_and_values_through_call_method() {
    let (store, _c) = store("cmc-prims");
    primitive_round_trip::<i8>(&store, -5, Value::Int(-5), Some(Value::Int(200)));
    primitive_round_trip::<u8>(&store, 200, Value::Int(200), Some(Value::Int(256)));
    primitive_round_trip::<i16>(&store, -300, Value::Int(-300), Some(Value::Int(1 << 20)));
    primitive_round_trip::<u16>(&store, 60000, Value::Int(60000), Some(Value::Int(-1)));
    primitive_round_trip::<i32>(
        &store,
        -70000,
        Value::Int(-70000),
        Some(Value::Int(1 << 40)),
    );
    primitive_round_trip::<u32>(&store, 1 << 31, Value::Int(1 << 31), Some(Value::Int(-1)));
    primitive_round_trip::<i64>(&store, i64::MIN, Value::Int(i64::MIN), None);
    primitive_round_trip::<u64>(&store, 1 << 62, Value::Int(1 << 62), Some(Value::Int(-1)));
    primitive_round_trip::<f32>(&store, 1.5, Value::Float(1.5), None);
    primitive_round_trip::<f64>(&store, -2.25, Value::Float(-2.25), None);
    // A u64 beyond i64: the fast read declines and the general path reports it.
    let a = store.array::<u64>(vec![u64::MAX; 2]).unwrap();
    assert!(matches!(
        a.call_method("__getitem__", (0,)),
        Err(Error::OverflowError(_))
    ));
    let v = store.value_of::<u64>(u64::MAX).unwrap();
    assert!(matches!(
        v.call_method("get", ()),
        Err(Error::OverflowError(_))
    ));
}

/// An object freed under its proxy (one reference dropped too many, as a buggy caller could)
/// whose slot a new object of another type took: `call_method` by name must not run the old
/// type's fast path on the new object, and gives the general path's error (what `call_id`
/// gives), leaving the new object as it was.
#[test]
fn a_freed_object_whose_slot_another_type_took_is_not_called() {
    let (store, _c) = store("cmc-reused");
    let core = store.core();
    let l = store.list([1, 2, 3]).unwrap();
    let a = store.array([1i64, 2, 3]).unwrap();
    let v = store.value_of(7i64).unwrap();
    let cv = store.value(7).unwrap();
    let dynamic = Proxy::from(store.list([4, 5]).unwrap());
    // Warm: every call below answered once on the live objects.
    assert_eq!(l.call_method("__len__", ()).unwrap(), Value::Int(3));
    assert_eq!(a.call_method("__getitem__", (0,)).unwrap(), Value::Int(1));
    assert_eq!(v.call_method("get", ()).unwrap(), Value::Int(7));
    assert_eq!(cv.call_method("get", ()).unwrap(), Value::Int(7));
    assert_eq!(dynamic.call_method("__len__", ()).unwrap(), Value::Int(2));
    type Call<'a> = Box<dyn Fn() -> shmstore::Result<Value> + 'a>;
    let cases: Vec<(shmstore::Token, Call, Call)> = vec![
        (
            l.token(),
            Box::new(|| l.call_method("__len__", ())),
            Box::new(|| l.call_id(l.method_id("__len__")?, &[], &[])),
        ),
        (
            l.token(),
            Box::new(|| l.call_method("__setitem__", (0, 9))),
            Box::new(|| l.call_id(l.method_id("__setitem__")?, &[0.into(), 9.into()], &[])),
        ),
        (
            a.token(),
            Box::new(|| a.call_method("__getitem__", (0,))),
            Box::new(|| a.call_id(a.method_id("__getitem__")?, &[0.into()], &[])),
        ),
        (
            v.token(),
            Box::new(|| v.call_method("get", ())),
            Box::new(|| v.call_id(v.method_id("get")?, &[], &[])),
        ),
        (
            cv.token(),
            Box::new(|| cv.call_method("set", (1,))),
            Box::new(|| cv.call_id(cv.method_id("set")?, &[1.into()], &[])),
        ),
        (
            dynamic.token(),
            Box::new(|| dynamic.call_method("__len__", ())),
            Box::new(|| dynamic.call_id(dynamic.method_id("__len__")?, &[], &[])),
        ),
    ];
    let mut taken = Vec::new();
    for (t, by_name, by_id) in &cases {
        if !taken.iter().any(|(s, _)| *s == t.slot) {
            // The proxy's reference, dropped behind its back: the object is freed...
            shmstore::dispatch::release(core, t);
            // ...and a dict takes its slot (the free-slot list hands it out next).
            let d = store.dict([(1, 2)]).unwrap();
            assert_eq!(d.token().slot, t.slot, "the slot was not reused");
            assert_ne!(d.token().type_id, t.type_id);
            taken.push((t.slot, d));
        }
        let want = by_id();
        assert!(want.is_err(), "{want:?}");
        for _ in 0..2 {
            assert_eq!(by_name(), want);
        }
    }
    for (_, d) in &taken {
        assert_eq!(d.to_str().unwrap(), "{1: 2}");
        assert_eq!(d.len().unwrap(), 1);
    }
    drop(cases);
    // The stale proxies' references are gone already: dropping them would drop the dicts'.
    std::mem::forget((l, a, v, cv, dynamic));
}

/// `value_of`/`array` of a plain-data type that is not a primitive number: `call_method` gives
/// what the general path gives (bytes), whatever the typed fast path does.
#[test]
fn non_primitive_plain_data_through_call_method() {
    let (store, _c) = store("cmc-nonprim");
    let v = store.value_of(*b"abcd").unwrap();
    let a = store.array([*b"ab", *b"cd"]).unwrap();
    for _ in 0..2 {
        let get = v.method_id("get").unwrap();
        assert_eq!(
            v.call_method("get", ()).unwrap(),
            v.call_id(get, &[], &[]).unwrap()
        );
        assert_eq!(v.call_method("get", ()).unwrap(), Value::bytes(b"abcd"));
        let gi = a.method_id("__getitem__").unwrap();
        assert_eq!(
            a.call_method("__getitem__", (1,)).unwrap(),
            a.call_id(gi, &[Value::Int(1)], &[]).unwrap()
        );
        assert_eq!(a.call_method("__len__", ()).unwrap(), Value::Int(2));
    }
}

/// `set`/`__setitem__` by name on a typed `value_of`/array proxy (which converts by `T`'s kind
/// and stores a `T`) and on the dynamic proxy of an identical object (which converts by the
/// record in shared memory): the same answer, error or not, and the same value stored, for
/// arguments of every kind.
fn typed_and_dynamic_sets_agree<T>(store: &Store)
where
    T: bytemuck::Pod + PartialEq + std::fmt::Debug,
{
    let args = [
        Value::Int(7),
        Value::Int(-1),
        Value::Int(1 << 40),
        Value::Int(i64::MIN),
        Value::Float(2.5),
        Value::Float(f64::NAN),
        Value::Bool(true),
        Value::None,
        Value::from("3"),
        Value::Bytes(vec![1, 2, 3, 4]),
    ];
    for x in &args {
        let (v, w) = (
            store.value_of(T::zeroed()).unwrap(),
            store.value_of(T::zeroed()).unwrap(),
        );
        let dynamic = Proxy::from(w.clone());
        let typed = v.call_method("set", (x.clone(),));
        assert_eq!(
            typed,
            dynamic.call_method("set", (x.clone(),)),
            "set({x:?})"
        );
        assert_eq!(
            v.get().unwrap().to_ne_bytes_of(),
            w.get().unwrap().to_ne_bytes_of()
        );
        let (a, b) = (
            store.array(vec![T::zeroed(); 3]).unwrap(),
            store.array(vec![T::zeroed(); 3]).unwrap(),
        );
        let dynamic = Proxy::from(b.clone());
        for i in [0i64, -1, 3, -4] {
            let typed = a.call_method("__setitem__", (i, x.clone()));
            let general = dynamic.call_method("__setitem__", (i, x.clone()));
            assert_eq!(typed, general, "__setitem__({i}, {x:?})");
        }
        for i in 0..3 {
            assert_eq!(
                a.get(i).unwrap().to_ne_bytes_of(),
                b.get(i).unwrap().to_ne_bytes_of()
            );
        }
    }
}

/// A plain-data value's bytes (to compare floats, NaN included, bit for bit).
trait Bits {
    fn to_ne_bytes_of(&self) -> Vec<u8>;
}

impl<T: bytemuck::Pod> Bits for T {
    fn to_ne_bytes_of(&self) -> Vec<u8> {
        bytemuck::bytes_of(self).to_vec()
    }
}

#[test]
fn typed_sets_by_name_answer_as_the_general_path() {
    let (store, _c) = store("cmc-typedset");
    typed_and_dynamic_sets_agree::<i64>(&store);
    typed_and_dynamic_sets_agree::<u64>(&store);
    typed_and_dynamic_sets_agree::<i32>(&store);
    typed_and_dynamic_sets_agree::<u32>(&store);
    typed_and_dynamic_sets_agree::<f64>(&store);
    typed_and_dynamic_sets_agree::<f32>(&store);
    typed_and_dynamic_sets_agree::<i16>(&store);
    typed_and_dynamic_sets_agree::<u8>(&store);
}

/// A typed list or value proxy's `call_method` takes its fast steps inlined (a dynamic
/// `Proxy`'s are out of line): both answer every call alike, whatever the element or the
/// value holds (scalars in place, strings and lists through the general path, a plain-data
/// value through a `ValueProxy`).
#[test]
fn typed_list_and_value_calls_answer_as_the_dynamic_proxy() {
    let (store, _c) = store("cmc-inline");
    let xs = [
        Value::Int(3),
        Value::Int(i64::MIN),
        Value::Float(0.5),
        Value::Bool(true),
        Value::None,
        Value::from("short"),
        Value::from("a string too long to be inline in a cell"),
        Value::List(vec![Value::Int(1)]),
    ];
    for x in &xs {
        for y in &xs {
            let (l, m) = (
                store.list([x.clone(), x.clone()]).unwrap(),
                store.list([x.clone(), x.clone()]).unwrap(),
            );
            let dynamic = Proxy::from(m.clone());
            for i in [0i64, -1, 2, -3] {
                assert_eq!(
                    l.call_method("__setitem__", (i, y.clone())),
                    dynamic.call_method("__setitem__", (i, y.clone())),
                    "__setitem__({i}, {y:?}) over {x:?}"
                );
                assert_eq!(
                    l.call_method("__getitem__", (i,)),
                    dynamic.call_method("__getitem__", (i,))
                );
            }
            assert_eq!(
                l.call_method("append", (y.clone(),)),
                dynamic.call_method("append", (y.clone(),))
            );
            assert_eq!(
                l.call_method("__len__", ()),
                dynamic.call_method("__len__", ())
            );
            assert_eq!(l.call_method("pop", ()), dynamic.call_method("pop", ()));
            assert_eq!(l.call_method("pop", (0,)), dynamic.call_method("pop", (0,)));
            assert_eq!(l.get_value().unwrap(), m.get_value().unwrap());

            let (v, w) = (
                store.value(x.clone()).unwrap(),
                store.value(x.clone()).unwrap(),
            );
            let dynamic = Proxy::from(w.clone());
            assert_eq!(
                v.call_method("set", (y.clone(),)),
                dynamic.call_method("set", (y.clone(),)),
                "set({y:?}) over {x:?}"
            );
            assert_eq!(v.call_method("get", ()).unwrap(), y.clone());
            assert_eq!(v.call_method("get", ()), dynamic.call_method("get", ()));
        }
    }
    // A plain-data value through a `ValueProxy`: the inlined cell steps decline and the
    // out-of-line ones (or the general path) answer.
    let p = shmstore::ValueProxy::try_from(Proxy::from(store.value_of(5i64).unwrap())).unwrap();
    assert_eq!(p.call_method("get", ()).unwrap(), Value::Int(5));
    assert_eq!(p.call_method("set", (9,)).unwrap(), Value::None);
    assert_eq!(p.call_method("get", ()).unwrap(), Value::Int(9));
    assert!(matches!(
        p.call_method("set", ("x",)),
        Err(Error::TypeError(_))
    ));
    assert_eq!(p.call_method("get", ()).unwrap(), Value::Int(9));
}
