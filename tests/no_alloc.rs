//! Issue 5's allocation target: scalar operations on the hot paths allocate nothing on the
//! heap — list, value, typed value, array, lock, queue and event, typed and through
//! `call_method` — proven by a global allocator that counts this thread's allocations. (Dicts
//! have their own such test in `tests/dict.rs`.)

mod common;

use std::cell::Cell;

use common::{unique, Cleanup};
use shmstore::{Store, Value};

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
        assert_eq!(v.call_method("get", ()).unwrap(), Value::Int(i));
        v.call_method("set", (i + 1,)).unwrap();
    });

    let tv = store.value_of(0u64).unwrap();
    assert_no_alloc("typed value", |i| {
        tv.set(i as u64).unwrap();
        assert_eq!(tv.get().unwrap(), i as u64);
        tv.call_method("set", (i + 1,)).unwrap();
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
    });

    let lock = store.lock().unwrap();
    assert_no_alloc("lock", |_| {
        assert!(lock.acquire(true, None).unwrap());
        lock.release().unwrap();
    });

    let q = store.queue(0).unwrap();
    assert_no_alloc("queue", |i| {
        q.put(i).unwrap();
        assert_eq!(q.get().unwrap(), Value::Int(i));
    });

    let e = store.event().unwrap();
    assert_no_alloc("event", |_| {
        e.set().unwrap();
        assert!(e.is_set().unwrap());
        e.clear().unwrap();
    });
}
