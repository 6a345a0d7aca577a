//! Value, typed value, Array and Namespace across real processes and in place: atomic adds from
//! four processes, zero-copy guard writes seen by another process, plain-data structs round
//! tripping between processes, wrong-type attaches refused, a guard holder killed, and memory
//! back to its baseline once everything is dropped.

mod common;

use std::io::BufReader;

use bytemuck::{Pod, Zeroable};
use common::{expect_success, read_value, spawn, unique, wait_for_line, Cleanup};
use shmstore::{
    ArrayProxy, Error, NamespaceProxy, Proxy, Slice, Store, TypedValueProxy, Value, ValueProxy,
};

/// A plain-data struct shared between processes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Point {
    x: f64,
    y: f64,
    tag: u32,
    flags: u32,
}

/// Same size and alignment as `Point`, another type.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct NotPoint {
    a: u64,
    b: u64,
    c: u64,
}

/// The pattern a guard writer leaves in element `i` on round `r`.
fn pattern(i: usize, r: u64) -> u64 {
    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ r
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
        // args: store, count — add 1 to the value bound as "counter", count times.
        "add" => {
            let v = ValueProxy::try_from(store.lookup("counter").unwrap()).unwrap();
            let n: u64 = args[1].parse().unwrap();
            for _ in 0..n {
                v.add(1).unwrap();
            }
        }
        // args: store, count — increment attribute "hits" of namespace "ns" under its lock.
        "ns_add" => {
            let ns = NamespaceProxy::try_from(store.lookup("ns").unwrap()).unwrap();
            let n: u64 = args[1].parse().unwrap();
            for _ in 0..n {
                ns.with_lock(|v| {
                    let h = i64::try_from(v.get("hits")?)?;
                    v.set("hits", h + 1)
                })
                .unwrap();
            }
        }
        // args: store, token, round — write the pattern through a zero-copy guard.
        "guard_write" => {
            let a = ArrayProxy::<u64>::try_from(store.attach(&args[1].parse().unwrap()).unwrap())
                .unwrap();
            let r: u64 = args[2].parse().unwrap();
            let mut g = a.lock().unwrap();
            for (i, x) in g.iter_mut().enumerate() {
                *x = pattern(i, r);
            }
        }
        // args: store, token — print the sum of the elements, read in place.
        "guard_sum" => {
            let a = ArrayProxy::<u64>::try_from(store.attach(&args[1].parse().unwrap()).unwrap())
                .unwrap();
            let g = a.lock().unwrap();
            let sum = g.iter().fold(0u64, |s, x| s.wrapping_add(*x));
            common::signal(&format!("SUM {sum}"));
        }
        // args: store, token — check the Point, then move it.
        "point" => {
            let p = TypedValueProxy::<Point>::try_from(
                store.attach(&args[1].parse().unwrap()).unwrap(),
            )
            .unwrap();
            let got = p.get().unwrap();
            assert_eq!(
                got,
                Point {
                    x: 1.5,
                    y: -2.25,
                    tag: 7,
                    flags: 0xdead_beef
                }
            );
            p.with_lock(|q| {
                q.x += 10.0;
                q.tag += 1;
            })
            .unwrap();
        }
        // args: store, token — attaching with the wrong T must be a TypeError.
        "wrong_t" => {
            let proxy = store.attach(&args[1].parse().unwrap()).unwrap();
            match TypedValueProxy::<NotPoint>::try_from(proxy.clone()) {
                Err(Error::TypeError(_)) => {}
                other => panic!("NotPoint attach: {:?}", other.map(|_| ())),
            }
            match ArrayProxy::<Point>::try_from(proxy.clone()) {
                Err(Error::TypeError(_)) => {}
                other => panic!("array attach: {:?}", other.map(|_| ())),
            }
            assert!(TypedValueProxy::<Point>::try_from(proxy).is_ok());
        }
        // args: store, token — hold the array's guard until killed.
        "hold_guard" => {
            let a = ArrayProxy::<u64>::try_from(store.attach(&args[1].parse().unwrap()).unwrap())
                .unwrap();
            let mut g = a.lock().unwrap();
            g[0] = 42;
            common::signal("HOLDING");
            loop {
                std::thread::park();
            }
        }
        other => panic!("unknown role {other}"),
    }
    common::signal("DONE");
}

#[test]
fn four_processes_adding_50000_each_end_at_exactly_200000() {
    let name = unique("vadd");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let v = store.value(0).unwrap();
    store.bind("counter", &v).unwrap();
    let children: Vec<_> = (0..4).map(|_| spawn("add", &[&name, "50000"])).collect();
    for c in children {
        expect_success(c, "adder");
    }
    assert_eq!(v.get().unwrap(), Value::Int(200_000));
}

#[test]
fn namespace_with_lock_from_two_processes_loses_no_update() {
    let name = unique("nsadd");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let ns = store.namespace_with([("hits", 0)]).unwrap();
    store.bind("ns", &ns).unwrap();
    let children: Vec<_> = (0..2).map(|_| spawn("ns_add", &[&name, "10000"])).collect();
    for c in children {
        expect_success(c, "namespace adder");
    }
    assert_eq!(ns.get("hits").unwrap(), Value::Int(20_000));
    assert_eq!(ns.to_string(), "Namespace(hits=20000)");
}

#[test]
fn zero_copy_guard_writes_are_seen_by_another_process_both_ways() {
    let name = unique("guard");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let a = store.array::<u64>(512).unwrap();
    let token = a.token().to_string();

    // A child writes through its guard; this process sees it.
    expect_success(spawn("guard_write", &[&name, &token, "7"]), "guard writer");
    let want: Vec<u64> = (0..512).map(|i| pattern(i, 7)).collect();
    assert_eq!(a.to_vec().unwrap(), want);
    {
        let g = a.lock().unwrap();
        assert_eq!(&g[..], &want[..]);
    }

    // This process writes through its guard; a child reads it in place.
    {
        let mut g = a.lock().unwrap();
        for (i, x) in g.iter_mut().enumerate() {
            *x = pattern(i, 99);
        }
    }
    let mut child = spawn("guard_sum", &[&name, &token]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let sum: u64 = read_value(&mut out, "SUM ").unwrap().parse().unwrap();
    expect_success(child, "guard reader");
    let want = (0..512).fold(0u64, |s, i| s.wrapping_add(pattern(i, 99)));
    assert_eq!(sum, want);
}

#[test]
fn a_pod_struct_round_trips_between_processes() {
    let name = unique("point");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let p = store
        .value_of(Point {
            x: 1.5,
            y: -2.25,
            tag: 7,
            flags: 0xdead_beef,
        })
        .unwrap();
    expect_success(
        spawn("point", &[&name, &p.token().to_string()]),
        "point child",
    );
    assert_eq!(
        p.get().unwrap(),
        Point {
            x: 11.5,
            y: -2.25,
            tag: 8,
            flags: 0xdead_beef
        }
    );
    // Through call_method a struct reads as its bytes.
    let bytes = p.call_method("get", ()).unwrap();
    assert_eq!(
        bytes,
        Value::bytes(
            bytemuck::bytes_of(&Point {
                x: 11.5,
                y: -2.25,
                tag: 8,
                flags: 0xdead_beef
            })
            .to_vec()
        )
    );
    assert_eq!(
        format!("{p:?}").split(" at ").next(),
        Some("<ValueProxy object, typeid 'Value'")
    );
}

#[test]
fn attaching_with_another_type_is_a_type_error_here_and_in_a_child() {
    let name = unique("wrongt");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let p = store.value_of(Point::zeroed()).unwrap();
    expect_success(
        spawn("wrong_t", &[&name, &p.token().to_string()]),
        "wrong-type child",
    );

    let n = store.value_of(5i32).unwrap();
    let dynamic = || store.attach(&n.token()).unwrap();
    assert!(matches!(
        TypedValueProxy::<u32>::try_from(dynamic()),
        Err(Error::TypeError(_))
    ));
    assert!(matches!(
        TypedValueProxy::<f32>::try_from(dynamic()),
        Err(Error::TypeError(_))
    ));
    assert_eq!(
        TypedValueProxy::<i32>::try_from(dynamic())
            .unwrap()
            .get()
            .unwrap(),
        5
    );
    // The dynamic view of a typed value works, with array.array's conversions.
    let v = ValueProxy::try_from(dynamic()).unwrap();
    assert_eq!(v.get().unwrap(), Value::Int(5));
    assert_eq!(v.to_string(), "Value('i', 5)");
    assert_eq!(
        v.set(1i64 << 40),
        Err(Error::OverflowError(
            "signed integer is greater than maximum".into()
        ))
    );
    assert_eq!(v.add(2).unwrap(), Value::Int(7));

    // A Python value is not plain data; an Array is not a Value.
    let cells = store.value(5).unwrap();
    assert!(matches!(
        TypedValueProxy::<i64>::try_from(store.attach(&cells.token()).unwrap()),
        Err(Error::TypeError(_))
    ));
    let a = store.array([1u32, 2, 3]).unwrap();
    let a_dyn = || store.attach(&a.token()).unwrap();
    assert!(matches!(
        ArrayProxy::<i32>::try_from(a_dyn()),
        Err(Error::TypeError(_))
    ));
    assert!(matches!(
        ArrayProxy::<[u8; 4]>::try_from(a_dyn()),
        Err(Error::TypeError(_))
    ));
    assert_eq!(
        ValueProxy::try_from(a_dyn()).err().map(|e| e.to_string()),
        Some("expected a 'Value' proxy, got a 'Array' proxy".into())
    );
    assert_eq!(
        ArrayProxy::<u32>::try_from(a_dyn())
            .unwrap()
            .to_vec()
            .unwrap(),
        [1, 2, 3]
    );
}

#[test]
fn a_guard_holder_killed_is_recovered_and_its_writes_kept() {
    let name = unique("guardkill");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let a = store.array::<u64>(8).unwrap();
    let mut child = spawn("hold_guard", &[&name, &a.token().to_string()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(
        wait_for_line(&mut out, "HOLDING"),
        "child did not take the guard"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before = store.stats().unwrap().repairs;
    assert_eq!(a.get(0).unwrap(), 42);
    assert_eq!(store.stats().unwrap().repairs, before + 1);
    a.set(1, 5).unwrap();
    assert_eq!(a.to_vec().unwrap(), [42, 5, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn a_second_lock_from_the_guard_holding_thread_is_an_error_not_a_deadlock() {
    let name = unique("relock");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let a = store.array::<u8>(4).unwrap();
    let g = a.lock().unwrap();
    assert!(matches!(a.get(0), Err(Error::Os { .. })));
    assert!(a.lock().is_err());
    drop(g);
    assert_eq!(a.get(0).unwrap(), 0);
}

#[test]
fn typed_array_operations() {
    let name = unique("tarray");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let a = store
        .array_from_iter((0..10).map(|i| i as f32 * 0.5))
        .unwrap();
    assert_eq!(a.len().unwrap(), 10);
    assert_eq!(a.get(-1).unwrap(), 4.5);
    assert_eq!(
        a.get(10),
        Err(Error::IndexError("array index out of range".into()))
    );
    a.set(-10, 9.0).unwrap();
    assert_eq!(
        a.set(10, 0.0),
        Err(Error::IndexError(
            "array assignment index out of range".into()
        ))
    );
    assert_eq!(
        a.slice(Slice::with_step(0, 10, 4)).unwrap(),
        [9.0, 2.0, 4.0]
    );
    assert_eq!(a.slice(..).unwrap(), a.to_vec().unwrap());
    assert_eq!(
        a.copy_from_slice(&[1.0]),
        Err(Error::ValueError(
            "Can only assign sequence of same size".into()
        ))
    );
    a.with_lock(|s| {
        s.reverse();
        Ok(())
    })
    .unwrap();
    assert_eq!(a.get(0).unwrap(), 4.5);
    assert_eq!(
        a.call_method("__getitem__", (-1,)).unwrap(),
        Value::Float(9.0)
    );
    assert_eq!(
        a.get_value().unwrap().repr(),
        "[4.5, 4.0, 3.5, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 9.0]"
    );

    // Construction forms.
    assert_eq!(
        store.array::<i16>(3).unwrap().to_string(),
        "array('h', [0, 0, 0])"
    );
    assert_eq!(
        store.array_zeroed::<u8>(0).unwrap().to_string(),
        "array('B')"
    );
    let v = vec![1u64, 2];
    assert_eq!(store.array(&v).unwrap().to_vec().unwrap(), v);
    assert_eq!(store.array(&v[..1]).unwrap().to_vec().unwrap(), [1]);

    // A u64 beyond i64::MAX prints, but cannot become a Value::Int.
    let big = store.array([u64::MAX]).unwrap();
    assert_eq!(big.to_string(), "array('Q', [18446744073709551615])");
    assert!(matches!(
        big.call_method("__getitem__", (0,)),
        Err(Error::OverflowError(_))
    ));
}

/// Typed arrays answer `get` and `call_method("__getitem__")` from the geometry the proxy read
/// once: every index (negative, out of range) agrees with the locked view, for several element
/// types, through the creating proxy, a clone and a proxy attached in another attachment, before
/// and after writes.
#[test]
fn typed_array_reads_agree_at_every_index_with_the_locked_view() {
    fn check<T>(store: &Store, other: &Store, items: Vec<T>, write: T)
    where
        T: bytemuck::Pod + PartialEq + std::fmt::Debug + Into<Value>,
    {
        let a = store.array(items.clone()).unwrap();
        let attached: ArrayProxy<T> = other.attach(&a.token()).unwrap().try_into().unwrap();
        let clone = a.clone();
        let n = items.len() as i64;
        for round in 0..2 {
            let now = a.to_vec().unwrap();
            for p in [&a, &clone, &attached] {
                for i in -n - 2..n + 2 {
                    let want = if (-n..n).contains(&i) {
                        Some(now[i.rem_euclid(n) as usize])
                    } else {
                        None
                    };
                    match want {
                        Some(x) => {
                            assert_eq!(p.get(i).unwrap(), x, "get({i}), round {round}");
                            assert_eq!(p.call_method("__getitem__", (i,)).unwrap(), x.into());
                        }
                        None => {
                            let e = Error::IndexError("array index out of range".into());
                            assert_eq!(p.get(i), Err(e.clone()), "get({i})");
                            assert_eq!(p.call_method("__getitem__", (i,)), Err(e));
                        }
                    }
                }
            }
            // Writes through another proxy are seen by all three.
            attached.set(0, write).unwrap();
            a.set(-1, write).unwrap();
        }
    }
    let name = unique("arraygeom");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let other = Store::open(&name).unwrap();
    check(&store, &other, vec![1i64, -2, 3, i64::MIN], 7);
    check(&store, &other, vec![0.5f64, 1.5], -2.25);
    check(&store, &other, vec![1u8, 2, 255], 9);
    check(&store, &other, vec![-1i32], 4);
    check(&store, &other, vec![1.25f32, 2.0, 3.0], 0.75);
}

/// A `value_of::<T>` proxy reads and writes from the copies' place it read once: sets through
/// any of three proxies (the creating one, a clone, another attachment's), alternating, are
/// what every proxy's `get` then returns, for a word (replaced in place), a byte, a float and a
/// struct of three words (written to the other copy and published), with the locked view
/// (`with_lock`) agreeing.
#[test]
fn value_of_gets_and_sets_agree_through_every_proxy() {
    fn check<T>(store: &Store, other: &Store, xs: &[T])
    where
        T: bytemuck::Pod + PartialEq + std::fmt::Debug,
    {
        let v = store.value_of(xs[0]).unwrap();
        let attached: TypedValueProxy<T> = other.attach(&v.token()).unwrap().try_into().unwrap();
        let clone = v.clone();
        let proxies = [&v, &clone, &attached];
        for (k, x) in xs.iter().enumerate() {
            proxies[k % 3].set(*x).unwrap();
            for p in proxies {
                assert_eq!(p.get().unwrap(), *x, "after set {k}");
                assert_eq!(p.with_lock(|y| *y).unwrap(), *x, "locked, after set {k}");
            }
        }
    }
    let name = unique("valueofgeom");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let other = Store::open(&name).unwrap();
    check(&store, &other, &[1i64, -2, i64::MAX, 4, 5, 6, 7]);
    check(&store, &other, &[1u8, 2, 255, 0, 9]);
    check(&store, &other, &[0.5f32, -1.5, 2.25, 3.0]);
    check(
        &store,
        &other,
        &[[1u32, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [0, 0, 0]],
    );
}

#[test]
fn an_array_of_structs_reads_and_writes_bytes_through_call_method() {
    let name = unique("sarray");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let pts = [
        Point::zeroed(),
        Point {
            x: 1.0,
            y: 2.0,
            tag: 3,
            flags: 4,
        },
    ];
    let a = store.array(pts).unwrap();
    let raw = |p: &Point| Value::bytes(bytemuck::bytes_of(p).to_vec());
    assert_eq!(a.call_method("__getitem__", (1,)).unwrap(), raw(&pts[1]));
    a.call_method("__setitem__", (0, raw(&pts[1]))).unwrap();
    assert_eq!(a.get(0).unwrap(), pts[1]);
    assert_eq!(
        a.call_method("__setitem__", (0, 5)),
        Err(Error::TypeError(
            "a bytes object of 24 bytes is required, not 'int'".into()
        ))
    );
    assert_eq!(
        a.call_method("__setitem__", (0, Value::bytes(vec![0u8; 3]))),
        Err(Error::TypeError(
            "a bytes object of 24 bytes is required, not one of 3 bytes".into()
        ))
    );
    assert!(a.to_string().starts_with("array('values::Point', [b'"));
}

#[test]
fn typed_values_of_primitives_convert_like_array_array() {
    let name = unique("tvalue");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let b = store.value_of(100i8).unwrap();
    assert_eq!(
        b.call_method("set", (200,)),
        Err(Error::OverflowError(
            "signed char is greater than maximum".into()
        ))
    );
    assert_eq!(
        b.call_method("add", (28,)),
        Err(Error::OverflowError(
            "signed char is greater than maximum".into()
        ))
    );
    assert_eq!(b.call_method("add", (27,)).unwrap(), Value::Int(127));
    assert_eq!(b.get().unwrap(), 127);
    let f = store.value_of(0.5f32).unwrap();
    f.call_method("set", (0.1,)).unwrap();
    assert_eq!(f.to_string(), "Value('f', 0.10000000149011612)");
    assert_eq!(
        f.call_method("set", ("x",)),
        Err(Error::TypeError("must be real number, not str".into()))
    );
    let u = store.value_of(1u32).unwrap();
    assert_eq!(
        u.call_method("__setattr__", ("value", -1)),
        Err(Error::OverflowError(
            "can't convert negative value to unsigned int".into()
        ))
    );
    u.set(u32::MAX).unwrap();
    assert_eq!(
        u.call_method("get", ()).unwrap(),
        Value::Int(u32::MAX as i64)
    );
}

#[test]
fn nested_proxies_in_values_and_namespaces_keep_their_referents_alive() {
    let name = unique("nested");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let base = store.stats().unwrap();
    let inner = store.list([1, 2, 3]).unwrap();
    let v = store.value(&inner).unwrap();
    let ns = store.namespace().unwrap();
    ns.set("l", &inner).unwrap();
    let token = inner.token();
    drop(inner);
    // Still alive: the value and the namespace hold it.
    let back = store.attach(&token).unwrap();
    assert_eq!(back.call_method("__len__", ()).unwrap(), Value::Int(3));
    drop(back);
    assert_eq!(v.get().unwrap(), Value::Proxy(token));
    v.set(0).unwrap();
    assert!(store.attach(&token).is_ok(), "the namespace still holds it");
    ns.del("l").unwrap();
    assert!(
        matches!(store.attach(&token), Err(Error::StaleHandle { .. })),
        "the last reference went with the attribute"
    );
    drop((v, ns));
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.objects_live, base.objects_live);
}

#[test]
fn memory_is_back_to_baseline_after_everything_is_dropped() {
    let name = unique("baseline");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let base = store.stats().unwrap();
    {
        let long = "a string much longer than fourteen bytes";
        let v = store
            .value_with_typecode("a typecode longer than inline", long)
            .unwrap();
        for i in 0..100 {
            v.set(format!("{long} {i}")).unwrap();
            v.add("!").unwrap();
            v.set(vec![Value::from(i), Value::from(long)]).unwrap();
        }
        v.call_method("__setattr__", ("value", 1.5)).unwrap();
        let t = store.value_of([0u64; 32]).unwrap();
        t.with_lock(|x| x[31] = 1).unwrap();
        let a = store.array::<Point>(1000).unwrap();
        a.lock().unwrap()[999].tag = 1;
        #[repr(C, align(64))]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct Line([u8; 64]);
        let lines = store.array::<Line>(3).unwrap();
        assert_eq!(lines.lock().unwrap().as_ptr() as usize % 64, 0);
        let ns = store.namespace().unwrap();
        for i in 0..50 {
            ns.set(&format!("attribute_with_a_long_name_{i}"), long)
                .unwrap();
            ns.set("x", i).unwrap();
        }
        for i in (0..50).step_by(2) {
            ns.del(&format!("attribute_with_a_long_name_{i}")).unwrap();
        }
        let nested = store
            .namespace_with([("v", Value::from(&v)), ("a", Value::from(&a))])
            .unwrap();
        let also = store.value(&nested).unwrap();
        assert!(store.stats().unwrap().bytes_in_use > base.bytes_in_use);
        drop((v, t, a, lines, ns, nested, also));
    }
    let after = store.stats().unwrap();
    assert_eq!(after.objects_live, base.objects_live);
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.blocks_in_use, base.blocks_in_use);
}

#[test]
fn namespace_typed_operations_and_repr() {
    let name = unique("nstyped");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let ns = store.namespace().unwrap();
    assert_eq!(ns.to_string(), "Namespace()");
    ns.set("b", "x").unwrap();
    ns.set("a", 1).unwrap();
    ns.set("_hidden", 2).unwrap();
    ns.set("a", 3).unwrap();
    assert_eq!(ns.to_string(), "Namespace(a=3, b='x')");
    assert_eq!(
        ns.attrs().unwrap(),
        [
            ("b".to_owned(), Value::from("x")),
            ("a".to_owned(), Value::Int(3)),
            ("_hidden".to_owned(), Value::Int(2))
        ]
    );
    assert!(ns.contains("_hidden").unwrap());
    assert_eq!(
        ns.del("zz"),
        Err(Error::AttributeError(
            "'Namespace' object has no attribute 'zz'".into()
        ))
    );
    let p: Proxy = ns.clone().into();
    assert_eq!(p.typeid(), "Namespace");
    assert!(format!("{ns:?}").starts_with("<NamespaceProxy object, typeid 'Namespace' at 0x"));
    assert_eq!(
        ns.call_method("nope", ()),
        Err(Error::AttributeError(
            "'Namespace' object has no attribute 'nope'".into()
        ))
    );
}

/// `ValueProxy::set` on a plain-data value (a `value_of::<T>` reached through an untyped
/// `ValueProxy`) stores numbers in place with `array.array`'s conversions, and leaves every
/// value it rejects to the general path's error, the stored value unchanged.
#[test]
fn untyped_set_of_a_plain_data_value_converts_in_place_and_rejects_as_array_array() {
    let name = unique("podset");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let untyped = |tv: &dyn Fn(&Store) -> shmstore::Proxy, key: &str| {
        store.bind(key, &tv(&store)).unwrap();
        ValueProxy::try_from(store.lookup(key).unwrap()).unwrap()
    };
    let q = untyped(&|s| s.value_of(0i64).unwrap().into(), "q");
    for x in [1i64, -1, i64::MAX, i64::MIN, 0] {
        q.set(x).unwrap();
        assert_eq!(q.get().unwrap(), Value::Int(x));
    }
    q.set(true).unwrap(); // a bool is an int
    assert_eq!(q.get().unwrap(), Value::Int(1));
    assert!(matches!(q.set(2.5), Err(Error::TypeError(_))));
    assert!(matches!(q.set("7"), Err(Error::TypeError(_))));
    assert_eq!(q.get().unwrap(), Value::Int(1));

    let b = untyped(&|s| s.value_of(0i8).unwrap().into(), "b");
    b.set(-128).unwrap();
    assert_eq!(b.get().unwrap(), Value::Int(-128));
    assert!(matches!(b.set(128), Err(Error::OverflowError(_))));
    assert_eq!(b.get().unwrap(), Value::Int(-128));

    let d = untyped(&|s| s.value_of(0.0f64).unwrap().into(), "d");
    d.set(2.5).unwrap();
    assert_eq!(d.get().unwrap(), Value::Float(2.5));
    d.set(3).unwrap(); // an int into a float value
    assert_eq!(d.get().unwrap(), Value::Float(3.0));
}
