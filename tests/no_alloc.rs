//! Issue 5's allocation target: scalar operations on the hot paths allocate nothing on the
//! heap — list, value, typed value, array, lock, queue and event, typed and through
//! `call_method` — proven by a global allocator that counts this thread's allocations; and
//! dict lookups (hits and misses, int and short-str keys, lock-free and locked) and scalar sets
//! of existing keys. (`tests/dict.rs` has the dict's `add` paths.)

mod common;

use std::cell::Cell;

use common::{unique, Cleanup};
use shmstore::{Proxy, Store, Value};

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

/// Runs `round` a few times to warm up (thread-locals, lazily built tables, the list's first
/// growth), then 1,000 times counting: none may allocate.
fn assert_no_alloc(what: &str, mut round: impl FnMut(i64)) {
    for i in 0..4 {
        round(i);
    }
    let before = allocs();
    for i in 0..1000 {
        round(i);
    }
    assert_eq!(allocs() - before, 0, "heap allocations on the {what} path");
}

#[test]
fn scalar_operations_allocate_nothing() {
    let name = unique("noalloc");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();

    let l = store.list((0..64i64).collect::<Vec<_>>()).unwrap();
    assert_no_alloc("list", |i| {
        assert_eq!(l.len().unwrap(), 64);
        assert_eq!(l.get(i % 64).unwrap(), Value::Int(i % 64));
        assert_eq!(l.get_as::<i64>(i % 64).unwrap(), i % 64);
        l.set(i % 64, i % 64).unwrap();
        l.append(1.5).unwrap();
        assert_eq!(l.pop(-1).unwrap(), Value::Float(1.5));
        assert_eq!(l.call_method("__len__", ()).unwrap(), Value::Int(64));
        assert_eq!(l.call_method("__getitem__", (3,)).unwrap(), Value::Int(3));
        l.call_method("__setitem__", (i % 64, i % 64)).unwrap();
        l.call_method("append", (i,)).unwrap();
        assert_eq!(l.call_method("pop", ()).unwrap(), Value::Int(i));
    });

    let v = store.value(0i64).unwrap();
    assert_no_alloc("value", |i| {
        v.set(i).unwrap();
        assert_eq!(v.get().unwrap(), Value::Int(i));
        assert_eq!(v.get_as::<f64>().unwrap(), i as f64);
        assert_eq!(v.call_method("get", ()).unwrap(), Value::Int(i));
        v.call_method("set", (i + 1,)).unwrap();
    });

    let tv = store.value_of(0u64).unwrap();
    assert_no_alloc("typed value", |i| {
        tv.set(i as u64).unwrap();
        assert_eq!(tv.get().unwrap(), i as u64);
        tv.call_method("set", (i + 1,)).unwrap();
        assert_eq!(tv.call_method("get", ()).unwrap(), Value::Int(i + 1));
    });

    let a = store.array::<f64>(vec![0.0; 16]).unwrap();
    assert_no_alloc("array", |i| {
        a.set(i % 16, i as f64).unwrap();
        assert_eq!(a.get(i % 16).unwrap(), i as f64);
        a.lock().unwrap()[0] = 2.0;
        assert_eq!(
            a.call_method("__getitem__", (0,)).unwrap(),
            Value::Float(2.0)
        );
        a.call_method("__setitem__", (1, 0.5)).unwrap();
        assert_eq!(a.call_method("__len__", ()).unwrap(), Value::Int(16));
    });

    // The dynamic proxy's calls by name take the same fast paths.
    let (pl, pa) = (Proxy::from(l.clone()), store.attach(&a.token()).unwrap());
    assert_no_alloc("dynamic proxy", |i| {
        assert_eq!(pl.call_method("__len__", ()).unwrap(), Value::Int(64));
        assert_eq!(pl.call_method("__getitem__", (5,)).unwrap(), Value::Int(5));
        pl.call_method("__setitem__", (i % 64, i % 64)).unwrap();
        assert_eq!(
            pa.call_method("__getitem__", (1,)).unwrap(),
            Value::Float(0.5)
        );
    });

    let lock = store.lock().unwrap();
    assert_no_alloc("lock", |_| {
        assert!(lock.acquire(true, None).unwrap());
        lock.release().unwrap();
        assert_eq!(lock.call_method("acquire", ()).unwrap(), Value::Bool(true));
        assert_eq!(lock.call_method("release", ()).unwrap(), Value::None);
    });

    let q = store.queue(0).unwrap();
    assert_no_alloc("queue", |i| {
        q.put(i).unwrap();
        assert_eq!(q.get().unwrap(), Value::Int(i));
    });

    // Dict lookups: the keys are built before counting (building a `Value::Str` allocates its
    // `String`; handing it to `get` moves it). Values are ints: a hit allocates nothing.
    let d = store.dict((0..64i64).map(|i| (i, i))).unwrap();
    let s = store
        .dict((0..64i64).map(|i| (format!("key{i}"), i)))
        .unwrap();
    // One key per call of a round, in the order `assert_no_alloc` calls them (i = 0..4, then
    // 0..1000).
    let str_keys = || -> Vec<Value> {
        (0..4)
            .chain(0..1000)
            .map(|i| Value::from(format!("key{}", i % 64)))
            .collect()
    };
    let (mut hits, mut misses) = (str_keys().into_iter(), str_keys().into_iter());
    let get = d.method_id("get").unwrap();
    let contains = d.method_id("__contains__").unwrap();
    assert_no_alloc("dict get", |i| {
        let k = i % 64;
        assert_eq!(d.get(k).unwrap(), Some(Value::Int(k)));
        assert_eq!(d.get(k + 64).unwrap(), None);
        assert_eq!(d.get(k as f64).unwrap(), Some(Value::Int(k))); // 1.0 == 1
        assert_eq!(d.get_item(k).unwrap(), Value::Int(k));
        assert!(d.contains(k).unwrap());
        assert!(!d.contains(-1 - k).unwrap());
        assert_eq!(d.len().unwrap(), 64);
        let hit = hits.next().unwrap();
        let miss = misses.next().unwrap();
        assert_eq!(s.get(hit).unwrap(), Some(Value::Int(k)));
        assert_eq!(d.get(miss).unwrap(), None); // a str in an int-keyed dict
        let args = [Value::Int(k)];
        assert_eq!(d.call_id(get, &args, &[]).unwrap(), Value::Int(k));
        assert_eq!(d.call_id(contains, &args, &[]).unwrap(), Value::Bool(true));
    });
    // Scalar sets of existing keys (in place, under a lock that is free), with int, float
    // (`1.0 == 1`: the int key's entry) and short-str keys, typed and by `call_method`, and a
    // short-str `contains`.
    let (mut set_keys, mut in_keys) = (str_keys().into_iter(), str_keys().into_iter());
    let setitem = d.method_id("__setitem__").unwrap();
    assert_no_alloc("dict set", |i| {
        let k = i % 64;
        d.insert(k, k + 1).unwrap();
        d.insert(k as f64, k).unwrap();
        assert_eq!(d.get(k).unwrap(), Some(Value::Int(k)));
        s.insert(set_keys.next().unwrap(), k).unwrap();
        assert!(s.contains(in_keys.next().unwrap()).unwrap());
        let args = [Value::Int(k), Value::Int(k)];
        assert_eq!(d.call_id(setitem, &args, &[]).unwrap(), Value::None);
    });
    assert_eq!(d.len().unwrap(), 64);

    // Borrowed keys (`KeyRef`): the 8-byte str keys of the benches, passed as `&str`, never
    // become a `String` — a get (hit and miss), `get_item`, `contains`, a set `contains` and a
    // scalar replacement of an existing key's value allocate nothing, with no key prepared
    // beforehand.
    let names: Vec<String> = (0..64).map(|i| format!("k{i:07}")).collect();
    let s8 = store
        .dict(
            names
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i as i64)),
        )
        .unwrap();
    let set8 = store.set(names.iter().map(String::as_str)).unwrap();
    assert_no_alloc("dict get/insert, borrowed str keys", |i| {
        let k = (i % 64) as usize;
        let key = names[k].as_str();
        assert_eq!(s8.get_borrowed(key).unwrap(), Some(Value::Int(k as i64)));
        assert_eq!(s8.get_borrowed("m0000000").unwrap(), None);
        assert_eq!(
            s8.get_item_borrowed(&names[k]).unwrap(),
            Value::Int(k as i64)
        );
        assert!(s8.contains_borrowed(key).unwrap());
        s8.insert_borrowed(key, k as i64 + 1).unwrap();
        s8.insert_borrowed(key, k as i64).unwrap();
        assert!(set8.contains_borrowed(key).unwrap());
        assert!(!set8.contains_borrowed("m0000000").unwrap());
        // Scalar keys through the same family.
        assert_eq!(
            d.get_borrowed(k as i64).unwrap(),
            Some(Value::Int(k as i64))
        );
        d.insert_borrowed(k as i64, k as i64).unwrap();
        // Values read as Rust scalars.
        assert_eq!(s8.get_as::<i64>(key).unwrap(), Some(k as i64));
        assert_eq!(d.get_as::<f64>(k as i64).unwrap(), Some(k as f64));
        assert_eq!(d.get_as::<i64>(-1).unwrap(), None);
    });
    assert_eq!(s8.len().unwrap(), 64);

    // The same lookups through the lock (this thread holds it, so the lock-free path is not
    // taken; `DictView` runs them under the held lock).
    let (mut hits, mut misses) = (str_keys().into_iter(), str_keys().into_iter());
    let (dt, st) = (d.token(), s.token());
    assert_no_alloc("dict get, locked", |i| {
        let k = i % 64;
        shmstore::dispatch::with_object(store.core(), &dt, |ctx| {
            assert_eq!(
                shmstore::types::dict::get(ctx, &Value::Int(k))?,
                Some(Value::Int(k))
            );
            assert_eq!(shmstore::types::dict::get(ctx, &Value::Int(k + 64))?, None);
            assert_eq!(
                shmstore::types::dict::get(ctx, &misses.next().unwrap())?,
                None
            );
            Ok(())
        })
        .unwrap();
        shmstore::dispatch::with_object(store.core(), &st, |ctx| {
            let hit = hits.next().unwrap();
            assert_eq!(shmstore::types::dict::get(ctx, &hit)?, Some(Value::Int(k)));
            Ok(())
        })
        .unwrap();
    });

    let e = store.event().unwrap();
    assert_no_alloc("event", |_| {
        e.set().unwrap();
        assert!(e.is_set().unwrap());
        e.clear().unwrap();
    });
}
