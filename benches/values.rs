//! Per-call cost of values and arrays beside a raw floor measured in the same run: a robust
//! process-shared pthread mutex around 4 KiB of plain memory in a shared mapping.
//!
//! `cargo bench --bench values` prints each figure; the ratios shmstore/floor are what matter.
//! The 4 KiB read is the zero-copy case: `ArrayProxy::lock` hands out the elements in place, so
//! summing them should cost the floor plus the object checks, where `to_vec` adds a copy and an
//! allocation.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shmstore::{Store, Value};

const WORDS: usize = 512; // 4 KiB of u64

/// A robust process-shared mutex and 4 KiB behind it, in a shared anonymous mapping.
struct Floor {
    base: *mut u8,
    len: usize,
}

impl Floor {
    fn new() -> Floor {
        let len = 64 + WORDS * 8;
        // SAFETY: an anonymous shared mapping with no preconditions; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base.cast::<u8>();
        // SAFETY: 1. `base` is a fresh, zeroed, page-aligned mapping large enough for a mutex;
        // 2. nothing else uses it yet; 3. the attribute object lives for these calls.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut attr);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            libc::pthread_mutex_init(base.cast(), &attr);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        Floor { base, len }
    }

    fn sum(&self) -> u64 {
        // SAFETY: 1. the mutex at `base` was initialized in `new`; 2. the words at `base + 64`
        // lie inside the mapping, are 8-aligned, and are only read with the mutex held;
        // 3. EOWNERDEAD cannot happen in this single-process bench.
        unsafe {
            let m = self.base.cast::<libc::pthread_mutex_t>();
            libc::pthread_mutex_lock(m);
            let words = std::slice::from_raw_parts(self.base.add(64).cast::<u64>(), WORDS);
            let s = words.iter().fold(0u64, |s, x| s.wrapping_add(*x));
            libc::pthread_mutex_unlock(m);
            s
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

fn bench_values(c: &mut Criterion) {
    let name = format!("bench-values-{}", std::process::id());
    let store = Store::create(&name, 16 << 20).expect("create");
    let floor = Floor::new();

    let a = store.array_from_iter(0..WORDS as u64).unwrap();
    let mut g = c.benchmark_group("array-4KiB");
    g.throughput(Throughput::Bytes((WORDS * 8) as u64));
    g.bench_function("floor/sum", |b| b.iter(|| black_box(floor.sum())));
    g.bench_function("guard/sum", |b| {
        b.iter(|| {
            let g = a.lock().unwrap();
            black_box(g.iter().fold(0u64, |s, x| s.wrapping_add(*x)))
        })
    });
    g.bench_function("guard/lock-only", |b| {
        b.iter(|| black_box(a.lock().unwrap().len()))
    });
    g.bench_function("with_lock/sum", |b| {
        b.iter(|| {
            a.with_lock(|s| Ok(black_box(s.iter().fold(0u64, |s, x| s.wrapping_add(*x)))))
                .unwrap()
        })
    });
    g.bench_function("to_vec/sum", |b| {
        b.iter(|| {
            let v = a.to_vec().unwrap();
            black_box(v.iter().fold(0u64, |s, x| s.wrapping_add(*x)))
        })
    });
    g.finish();

    let v = store.value(0).unwrap();
    let t = store.value_of(0u64).unwrap();
    let mut g = c.benchmark_group("value");
    g.bench_function("typed/get", |b| b.iter(|| black_box(v.get().unwrap())));
    g.bench_function("typed/set", |b| b.iter(|| v.set(black_box(7)).unwrap()));
    g.bench_function("typed/add", |b| b.iter(|| black_box(v.add(1).unwrap())));
    g.bench_function("call_method/get", |b| {
        b.iter(|| black_box(v.call_method("get", ()).unwrap()))
    });
    let mid = v.method_id("get").unwrap();
    g.bench_function("call_id/get", |b| {
        b.iter(|| black_box(v.call_id(mid, &[], &[]).unwrap()))
    });
    g.bench_function("pod/get", |b| b.iter(|| black_box(t.get().unwrap())));
    g.bench_function("pod/set", |b| b.iter(|| t.set(black_box(7)).unwrap()));
    g.finish();

    let ns = store
        .namespace_with([("a", Value::Int(1)), ("b", Value::Int(2))])
        .unwrap();
    let mut g = c.benchmark_group("namespace");
    g.bench_function("typed/get", |b| b.iter(|| black_box(ns.get("b").unwrap())));
    g.bench_function("typed/set", |b| {
        b.iter(|| ns.set("b", black_box(3)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_values);
criterion_main!(benches);
