//! Lock-free reads (list `len`/`get`/`get_as`, value `get`/`get_as`) against a writer in another process: every
//! read is a value that was written, never a torn mix of two.
//!
//! The writer flips every item of a list, and a value, between two patterns whose cells differ
//! in every byte (an int `0x5555…` and a 14-byte inline string of `z`s), and grows and shrinks
//! the list by one item meanwhile. A torn cell would decode to neither pattern (another int,
//! another string, or a bad cell), a torn length to neither length. It also flips an element of
//! a `u64` array (written through the zero-copy guard, one 32-bit half at a time) and a
//! `value_of::<u64>` between two words that differ in every bit: a read that did not respect
//! the write sequence would see a half of each.
//!
//! A dict gets the same treatment: a writer flips the values of fixed int and short-str keys
//! between two per-key patterns (an int and a 14-byte string, cells that differ in every byte)
//! and inserts and deletes a crowd of other keys meanwhile, so the table grows, fills with
//! deleted entries, is compacted and rehashed into new blocks while the old ones are freed and
//! reused; readers check that every lock-free `get` (also by an equal float key, and through
//! `call_method`), `contains` and `len` answers with a value written for that key, or absent
//! for a key the writer deletes, and nothing else.

mod common;

use std::io::BufReader;

use common::{expect_success, spawn, unique, wait_for_line, Cleanup};
use shmstore::{
    ArrayProxy, DictProxy, Error, ListProxy, Store, TypedValueProxy, Value, ValueProxy,
};

const ITEMS: i64 = 8;
const ROUNDS: u64 = 20_000;
const P0: i64 = 0x5555_5555_5555_5555;
const P1: &str = "zzzzzzzzzzzzzz";
const W0: u64 = 0x5555_5555_5555_5555;
const W1: u64 = 0xAAAA_AAAA_AAAA_AAAA;

fn word(round: u64) -> u64 {
    if round % 2 == 0 {
        W0
    } else {
        W1
    }
}

fn is_pattern(v: &Value) -> bool {
    matches!(v, Value::Int(P0)) || matches!(v, Value::Str(s) if s == P1)
}

fn pattern(round: u64) -> Value {
    if round % 2 == 0 {
        Value::Int(P0)
    } else {
        Value::from(P1)
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
    if role.starts_with("dict-") {
        return dict_child(&role, &store);
    }
    let l = ListProxy::try_from(store.lookup("items").unwrap()).unwrap();
    let v = ValueProxy::try_from(store.lookup("value").unwrap()).unwrap();
    let done = ValueProxy::try_from(store.lookup("done").unwrap()).unwrap();
    let started = ValueProxy::try_from(store.lookup("started").unwrap()).unwrap();
    let arr = ArrayProxy::<u64>::try_from(store.lookup("array").unwrap()).unwrap();
    let tv = TypedValueProxy::<u64>::try_from(store.lookup("word").unwrap()).unwrap();
    match role.as_str() {
        "writer" => {
            common::signal("READY");
            // At least ROUNDS rounds, and on until both readers are reading (a loaded machine
            // may not run them before the writer is done), ending after an odd round.
            let mut round = 0;
            while round < ROUNDS || round % 2 == 1 || started.get_as::<i64>().expect("started") < 2
            {
                let p = pattern(round);
                for i in 0..ITEMS {
                    l.set(i, p.clone()).expect("set");
                }
                v.set(p.clone()).expect("value set");
                let w = word(round);
                {
                    let mut g = arr.lock().expect("array lock");
                    let halves: &mut [u32] = bytemuck::cast_slice_mut(&mut g[..1]);
                    halves[0] = w as u32;
                    std::hint::black_box(&mut *halves);
                    halves[1] = (w >> 32) as u32;
                }
                arr.set(1, w).expect("array set");
                tv.set(w).expect("typed value set");
                l.append(p).expect("append");
                l.pop(-1).expect("pop");
                round += 1;
            }
            done.set(true).expect("done");
        }
        "reader" => {
            common::signal("READY");
            // Wait for the writer's first round, then read until it is done.
            while v.get().expect("value get") != Value::from(P1) {
                std::hint::spin_loop();
            }
            let mut n = 0u64;
            while done.get().expect("done") == Value::Bool(false) {
                n += 1;
                if n == 1 {
                    started.add(1).expect("started");
                }
                let len = l.len().expect("len");
                assert!(
                    len == ITEMS as usize || len == ITEMS as usize + 1,
                    "len {len}"
                );
                let i = (n % (ITEMS as u64 + 1)) as i64 - 1; // -1 (the last item) and 0..ITEMS
                let x = l.get(i).expect("get");
                assert!(is_pattern(&x), "torn list read: {x:?}");
                let y = v.get().expect("value get");
                assert!(is_pattern(&y), "torn value read: {y:?}");
                // The same reads with no `Value` in between: the int, or the string's TypeError.
                for got in [l.get_as::<i64>(i), v.get_as::<i64>()] {
                    match got {
                        Ok(x) => assert_eq!(x, P0, "torn get_as read: {x:#x}"),
                        Err(Error::TypeError(_)) => {}
                        Err(e) => panic!("get_as: {e}"),
                    }
                }
                for i in 0..2 {
                    let a = arr.get(i).expect("array get");
                    assert!(a == W0 || a == W1, "torn array read: {a:#x}");
                }
                let t = tv.get().expect("typed value get");
                assert!(t == W0 || t == W1, "torn typed value read: {t:#x}");
            }
            common::signal(&format!("READS {n}"));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn lock_free_reads_in_other_processes_never_see_a_torn_write() {
    let name = unique("seqlock");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 16 << 20).unwrap();
    let l = store.list(vec![Value::Int(P0); ITEMS as usize]).unwrap();
    let v = store.value(P0).unwrap();
    store.bind("items", &l).unwrap();
    store.bind("value", &v).unwrap();
    let done = store.value(false).unwrap();
    store.bind("done", &done).unwrap();
    let started = store.value(0).unwrap();
    store.bind("started", &started).unwrap();
    let arr = store.array::<u64>(vec![W0; 2]).unwrap();
    store.bind("array", &arr).unwrap();
    let tv = store.value_of::<u64>(W0).unwrap();
    store.bind("word", &tv).unwrap();

    let mut readers: Vec<_> = (0..2).map(|_| spawn("reader", &[&name])).collect();
    let mut writer = spawn("writer", &[&name]);
    // Kept open until the children end: they print to them.
    let mut outs = Vec::new();
    for c in readers.iter_mut().chain(std::iter::once(&mut writer)) {
        let mut out = BufReader::new(c.stdout.take().unwrap());
        assert!(wait_for_line(&mut out, "READY"));
        outs.push(out);
    }
    expect_success(writer, "writer");
    for (r, out) in readers.into_iter().zip(&mut outs) {
        let n: u64 = common::read_value(out, "READS ").unwrap().parse().unwrap();
        assert!(n > 0, "a reader read nothing while the writer wrote");
        expect_success(r, "reader");
    }
    // The writer finished on an odd round: the string pattern.
    assert_eq!(l.len().unwrap(), ITEMS as usize);
    assert_eq!(l.get(0).unwrap(), Value::from(P1));
    assert_eq!(v.get().unwrap(), Value::from(P1));
    assert_eq!(arr.to_vec().unwrap(), [W1, W1]);
    assert_eq!(tv.get().unwrap(), W1);
}

/// Reads in this thread while it holds the list's (the dict's, …) lock: `len` and a scalar
/// `get` succeed without the lock (so the lock-free path is really taken), a string that lives
/// in a block takes the lock and reports the relock. (A writer that dies mid-write: `proxy::list`'s unit
/// test.)
#[test]
fn reads_without_the_lock_do_not_wait_for_its_holder() {
    let name = unique("seqlock-held");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 16 << 20).unwrap();
    let long = "a string too long to be stored inline";
    let l = store
        .list(vec![Value::Int(1), Value::from(long), Value::from("short")])
        .unwrap();
    let v = store.value(2.5).unwrap();
    l.with_lock(|view| {
        assert_eq!(l.len().unwrap(), 3);
        assert_eq!(l.get(0).unwrap(), Value::Int(1));
        assert_eq!(l.get(-1).unwrap(), Value::from("short"));
        assert!(matches!(l.get(1), Err(Error::Os { .. })), "{:?}", l.get(1));
        // An index out of range is answered by the locked path, which is held here.
        assert!(matches!(l.get(3), Err(Error::Os { .. })));
        // `call_method`'s read-only methods take the same lock-free path.
        assert_eq!(l.call_method("__len__", ()).unwrap(), Value::Int(3));
        assert_eq!(l.call_method("__getitem__", (0,)).unwrap(), Value::Int(1));
        assert!(matches!(
            l.call_method("__getitem__", (1,)),
            Err(Error::Os { .. })
        ));
        view.append(Value::Int(4))?;
        assert_eq!(l.len().unwrap(), 4);
        assert_eq!(l.get(3).unwrap(), Value::Int(4));
        Ok(())
    })
    .unwrap();
    v.with_lock(|_| {
        assert_eq!(v.get().unwrap(), Value::Float(2.5));
        assert_eq!(v.call_method("get", ()).unwrap(), Value::Float(2.5));
        Ok(())
    })
    .unwrap();
    // A plain-data value (typecode 'q') too.
    let q = store.value_with_typecode("q", 41i64).unwrap();
    q.with_lock(|_| {
        assert_eq!(q.get().unwrap(), Value::Int(41));
        assert_eq!(
            q.call_method("__getattribute__", ("value",)).unwrap(),
            Value::Int(41)
        );
        Ok(())
    })
    .unwrap();
    assert_eq!(l.get(1).unwrap(), Value::from(long));
    assert!(matches!(l.get(4), Err(Error::IndexError(_))));

    // A typed value is read lock-free while its lock is held; an array whose zero-copy guard is
    // out (a write may be under way) is read through the lock, which this thread holds.
    let tv = store.value_of::<i64>(7).unwrap();
    tv.with_lock(|_| assert_eq!(tv.get().unwrap(), 7)).unwrap();
    let arr = store.array::<i64>(vec![1, 2, 3]).unwrap();
    {
        let _g = arr.lock().unwrap();
        assert!(
            matches!(arr.get(0), Err(Error::Os { .. })),
            "{:?}",
            arr.get(0)
        );
    }
    assert_eq!(arr.get(-1).unwrap(), 3);
    assert!(matches!(arr.get(3), Err(Error::IndexError(_))));

    // A dict: a lookup of an inline key whose value is inline (or absent), `contains` and `len`
    // are answered without the lock; a key or value stored in a block takes it.
    let d = store
        .dict(vec![
            (Value::Int(1), Value::from("one")),
            (Value::from("short"), Value::Float(0.5)),
            (Value::Int(2), Value::from(long)),
            (Value::from(long), Value::Int(3)),
        ])
        .unwrap();
    d.with_lock(|view| {
        assert_eq!(d.len().unwrap(), 4);
        assert_eq!(d.get(1).unwrap(), Some(Value::from("one")));
        assert_eq!(d.get(true).unwrap(), Some(Value::from("one"))); // True == 1
        assert_eq!(d.get("short").unwrap(), Some(Value::Float(0.5)));
        assert_eq!(d.get(7).unwrap(), None);
        assert_eq!(d.get_item(1.0).unwrap(), Value::from("one"));
        assert_eq!(d.get_item(7), Err(Error::KeyError(Value::Int(7))));
        assert!(d.contains(2).unwrap()); // its value is in a block: not read
        assert!(!d.contains("other").unwrap());
        assert_eq!(d.call_method("__len__", ()).unwrap(), Value::Int(4));
        assert_eq!(d.call_method("get", (1,)).unwrap(), Value::from("one"));
        assert_eq!(d.call_method("get", (7, 0)).unwrap(), Value::Int(0));
        assert_eq!(
            d.call_method("__getitem__", ("short",)).unwrap(),
            Value::Float(0.5)
        );
        assert_eq!(
            d.call_method("__contains__", (7,)).unwrap(),
            Value::Bool(false)
        );
        // Block-stored: the value, the key, and `__getitem__`'s KeyError take the lock.
        assert!(matches!(d.get(2), Err(Error::Os { .. })), "{:?}", d.get(2));
        assert!(matches!(d.get(long), Err(Error::Os { .. })));
        assert!(matches!(d.contains(long), Err(Error::Os { .. })));
        assert!(matches!(
            d.call_method("__getitem__", (7,)),
            Err(Error::Os { .. })
        ));
        view.insert(8, 9)?;
        assert_eq!(d.get(8).unwrap(), Some(Value::Int(9)));
        assert_eq!(d.len().unwrap(), 5);
        Ok(())
    })
    .unwrap();
    assert_eq!(d.get(2).unwrap(), Some(Value::from(long)));
    assert_eq!(d.get(long).unwrap(), Some(Value::Int(3)));

    // A set's `len` and `in` of an inline key, the same way.
    let s = store
        .set(vec![Value::Int(1), Value::from("short"), Value::from(long)])
        .unwrap();
    s.with_lock(|view| {
        assert_eq!(s.len().unwrap(), 3);
        assert!(s.contains(1.0).unwrap());
        assert!(s.contains("short").unwrap());
        assert!(!s.contains(2).unwrap());
        assert!(matches!(s.contains(long), Err(Error::Os { .. })));
        view.add(2)?;
        assert!(s.contains(2).unwrap());
        assert_eq!(s.len().unwrap(), 4);
        Ok(())
    })
    .unwrap();
}

/// Dict keys whose values flip between two patterns (never deleted).
const FIXED: i64 = 8;
/// Keys the dict writer inserts and deletes every round.
const CHURN: i64 = 48;
const DICT_ROUNDS: u64 = 10_000;

/// The value of fixed key `k` (an int key `k`, or the string key `fixed_str(k)`) in a round:
/// an int or a 14-byte string, both derived from the key.
fn dict_pattern(k: i64, round: u64) -> Value {
    if round % 2 == 0 {
        Value::Int(P0 ^ k)
    } else {
        Value::from(format!("z{k:013}"))
    }
}

fn is_dict_pattern(k: i64, v: &Value) -> bool {
    *v == dict_pattern(k, 0) || *v == dict_pattern(k, 1)
}

fn fixed_str(k: i64) -> Value {
    Value::from(format!("fixed{k}"))
}

/// The churned keys: ints past the fixed ones, and short strings; each with one value.
fn churn_key(c: i64) -> Value {
    if c % 2 == 0 {
        Value::Int(1_000 + c)
    } else {
        Value::from(format!("churn{c}"))
    }
}

fn churn_value(c: i64) -> Value {
    Value::Int(!(c * 7))
}

fn dict_child(role: &str, store: &Store) {
    let d = DictProxy::try_from(store.lookup("dict").unwrap()).unwrap();
    let done = ValueProxy::try_from(store.lookup("dict-done").unwrap()).unwrap();
    let started = ValueProxy::try_from(store.lookup("dict-started").unwrap()).unwrap();
    match role {
        "dict-writer" => {
            common::signal("READY");
            // At least DICT_ROUNDS rounds, and on until both readers are reading, ending after
            // an odd round.
            let mut round = 0;
            while round < DICT_ROUNDS
                || round % 2 == 1
                || started.get_as::<i64>().expect("started") < 2
            {
                for k in 0..FIXED {
                    d.insert(k, dict_pattern(k, round)).expect("insert");
                    d.insert(fixed_str(k), dict_pattern(k, round))
                        .expect("insert str");
                }
                // Grow the table with new keys, then delete them (in an order that leaves
                // deleted entries inside the table), so later inserts compact and rehash it.
                let n = if round % 3 == 0 { CHURN } else { CHURN / 4 };
                for c in 0..n {
                    d.insert(churn_key(c), churn_value(c))
                        .expect("churn insert");
                }
                for c in (0..n).rev().step_by(2).chain((0..n).step_by(2)) {
                    d.remove(churn_key(c)).expect("churn remove");
                }
                round += 1;
            }
            done.set(true).expect("done");
        }
        "dict-reader" => {
            common::signal("READY");
            while d.get(fixed_str(0)).expect("get") != Some(dict_pattern(0, 1)) {
                std::hint::spin_loop();
            }
            let mut n = 0u64;
            let mut seen_churn = 0u64;
            while done.get().expect("done") == Value::Bool(false) {
                n += 1;
                if n == 1 {
                    started.add(1).expect("started");
                }
                let k = (n % FIXED as u64) as i64;
                for key in [Value::Int(k), Value::Float(k as f64), fixed_str(k)] {
                    let v = d.get(key.clone()).expect("get");
                    assert!(
                        v.as_ref().is_some_and(|v| is_dict_pattern(k, v)),
                        "torn dict read of {key:?}: {v:?}"
                    );
                    let v = d.call_method("get", (key.clone(),)).expect("call get");
                    assert!(
                        is_dict_pattern(k, &v),
                        "torn call_method get {key:?}: {v:?}"
                    );
                    assert!(d.contains(key).expect("contains"));
                }
                let v = d.get_item(k).expect("get_item");
                assert!(is_dict_pattern(k, &v), "torn get_item of {k}: {v:?}");
                let c = (n % CHURN as u64) as i64;
                match d.get(churn_key(c)).expect("churn get") {
                    None => {}
                    Some(v) => {
                        assert_eq!(v, churn_value(c), "wrong value for churned key {c}");
                        seen_churn += 1;
                    }
                }
                let len = d.len().expect("len");
                assert!(
                    (2 * FIXED as usize..=2 * FIXED as usize + CHURN as usize).contains(&len),
                    "len {len}"
                );
            }
            common::signal(&format!("READS {n} {seen_churn}"));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn lock_free_dict_reads_in_other_processes_never_see_a_torn_write() {
    let name = unique("seqlock-dict");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 16 << 20).unwrap();
    let fixed = (0..FIXED).flat_map(|k| {
        [
            (Value::Int(k), dict_pattern(k, 0)),
            (fixed_str(k), dict_pattern(k, 0)),
        ]
    });
    let d = store.dict(fixed.collect::<Vec<_>>()).unwrap();
    store.bind("dict", &d).unwrap();
    let done = store.value(false).unwrap();
    store.bind("dict-done", &done).unwrap();
    let started = store.value(0).unwrap();
    store.bind("dict-started", &started).unwrap();

    let mut readers: Vec<_> = (0..2).map(|_| spawn("dict-reader", &[&name])).collect();
    let mut writer = spawn("dict-writer", &[&name]);
    let mut outs = Vec::new();
    for c in readers.iter_mut().chain(std::iter::once(&mut writer)) {
        let mut out = BufReader::new(c.stdout.take().unwrap());
        assert!(wait_for_line(&mut out, "READY"));
        outs.push(out);
    }
    expect_success(writer, "writer");
    for (r, out) in readers.into_iter().zip(&mut outs) {
        let reads = common::read_value(out, "READS ").unwrap();
        let n: u64 = reads.split(' ').next().unwrap().parse().unwrap();
        assert!(n > 0, "a reader read nothing while the writer wrote");
        expect_success(r, "reader");
    }
    // The writer's last round was odd: the string patterns; the churned keys are gone.
    assert_eq!(d.len().unwrap(), 2 * FIXED as usize);
    for k in 0..FIXED {
        assert_eq!(d.get(k).unwrap(), Some(dict_pattern(k, 1)));
        assert_eq!(d.get(fixed_str(k)).unwrap(), Some(dict_pattern(k, 1)));
    }
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
