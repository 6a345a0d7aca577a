//! Per-call cost of list operations, beside a raw floor measured in the same run: a robust
//! process-shared pthread mutex around a plain `i64` array in shared memory.
//!
//! `cargo bench --bench ops` prints each figure; the ratios shmstore/floor are what matter.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use shmstore::{Store, Value};

/// A robust, process-shared pthread mutex and an `i64` array behind it, in a shared mapping:
/// the least any locked shared-memory list can cost.
struct Floor {
    base: *mut u8,
    len: usize,
}

const FLOOR_CAP: usize = 1 << 20;

impl Floor {
    fn new() -> Floor {
        let len = 64 + 16 + FLOOR_CAP * 8;
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

    #[inline]
    fn locked<R>(&self, f: impl FnOnce(*mut u64, *mut i64) -> R) -> R {
        // SAFETY: 1. the mutex at `base` was initialized in `new`; 2. the length word at
        // `base + 64` and the array at `base + 80` lie inside the mapping and are only touched
        // with the mutex held; 3. EOWNERDEAD cannot happen in this single-process bench.
        unsafe {
            let m = self.base.cast::<libc::pthread_mutex_t>();
            libc::pthread_mutex_lock(m);
            let r = f(self.base.add(64).cast(), self.base.add(80).cast());
            libc::pthread_mutex_unlock(m);
            r
        }
    }

    fn len(&self) -> u64 {
        // SAFETY: `n` points at the length word (see `locked`).
        self.locked(|n, _| unsafe { *n })
    }
    fn get(&self, i: u64) -> i64 {
        // SAFETY: as in `locked`; `i` is checked against the length before the read.
        self.locked(|n, a| unsafe {
            if i < *n {
                *a.add(i as usize)
            } else {
                -1
            }
        })
    }
    fn append(&self, v: i64) {
        // SAFETY: as in `locked`; the length is checked against the capacity before the write.
        self.locked(|n, a| unsafe {
            if (*n as usize) < FLOOR_CAP {
                *a.add(*n as usize) = v;
                *n += 1;
            }
        })
    }
    fn pop(&self) -> i64 {
        // SAFETY: as in `locked`.
        self.locked(|n, a| unsafe {
            if *n > 0 {
                *n -= 1;
                *a.add(*n as usize)
            } else {
                -1
            }
        })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

fn bench_list(c: &mut Criterion) {
    let name = format!("bench-ops-{}", std::process::id());
    let store = Store::create(&name, 256 << 20).expect("create store");
    let l = store.list(0..1000).expect("list");
    let floor = Floor::new();
    for i in 0..1000 {
        floor.append(i);
    }

    let mut g = c.benchmark_group("list");
    g.bench_function("floor/len", |b| b.iter(|| black_box(floor.len())));
    g.bench_function("typed/len", |b| b.iter(|| black_box(l.len().unwrap())));
    g.bench_function("call_method/len", |b| {
        b.iter(|| black_box(l.call_method("__len__", ()).unwrap()))
    });
    let len_id = l.method_id("__len__").unwrap();
    g.bench_function("call_id/len", |b| {
        b.iter(|| black_box(l.call_id(len_id, &[], &[]).unwrap()))
    });

    g.bench_function("floor/get", |b| {
        b.iter(|| black_box(floor.get(black_box(500))))
    });
    g.bench_function("typed/get", |b| {
        b.iter(|| black_box(l.get(black_box(500)).unwrap()))
    });
    g.bench_function("call_method/get", |b| {
        b.iter(|| black_box(l.call_method("__getitem__", (black_box(500),)).unwrap()))
    });

    g.bench_function("floor/append+pop", |b| {
        b.iter(|| {
            floor.append(black_box(7));
            black_box(floor.pop())
        })
    });
    g.bench_function("typed/append+pop", |b| {
        b.iter(|| {
            l.append(black_box(7)).unwrap();
            black_box(l.pop(-1).unwrap())
        })
    });
    g.bench_function("call_method/append+pop", |b| {
        b.iter(|| {
            l.call_method("append", (black_box(7),)).unwrap();
            black_box(l.call_method("pop", ()).unwrap())
        })
    });
    g.bench_function("typed/append-str16+pop", |b| {
        let s = Value::from("sixteen-byte-str");
        b.iter(|| {
            l.append(s.clone()).unwrap();
            black_box(l.pop(-1).unwrap())
        })
    });
    g.finish();
}

/// Uncontended lock+unlock of the two raw robust locks, side by side: glibc's robust
/// process-shared mutex and the futex lock, each in a shared mapping.
fn bench_lock(c: &mut Criterion) {
    use shmstore::sync::{FutexLock, PthreadMutex, RawLock};
    let floor = Floor::new(); // only for its shared mapping: locks at +4096 and +4096+128
                              // SAFETY: both offsets are 64-aligned, inside the mapping, used by nothing else; each lock
                              // is initialized once before use and unlocked by the thread that took it.
    let (pm, fm) = unsafe {
        let pm = floor.base.add(4096);
        let fm = floor.base.add(4096 + 128);
        PthreadMutex::init(pm).unwrap();
        FutexLock::init(fm).unwrap();
        (pm, fm)
    };
    let mut g = c.benchmark_group("lock");
    g.bench_function("pthread-robust/lock+unlock", |b| {
        // SAFETY: as above.
        b.iter(|| unsafe {
            let _ = black_box(PthreadMutex::lock(pm));
            let _ = PthreadMutex::unlock(pm);
        })
    });
    g.bench_function("futex/lock+unlock", |b| {
        // SAFETY: as above.
        b.iter(|| unsafe {
            let _ = black_box(FutexLock::lock(fm));
            let _ = FutexLock::unlock(fm);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_list, bench_lock);
criterion_main!(benches);
