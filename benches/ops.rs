//! Per-call cost, in one process, of every basic operation issue 5 lists, beside a raw floor
//! measured in the same run: a robust process-shared pthread mutex around a plain `i64` array,
//! a single word and an open-addressing `i64 → i64` table in a shared mapping
//! (`benches/floor/mod.rs`, the floor `compare` and `contention` use too).
//!
//! Rows are named `GROUP/IMPL/OPERATION`: `floor` is the raw floor, `typed` the proxy's typed
//! method, `call_method` the same operation by method name (CPython's `_callmethod`), `call_id`
//! by a method id resolved once. Indices and keys cycle over 1,024 elements; str8 keys are
//! 8-byte strings (`k0000123`), which the floor stores as the 8 bytes read as one `i64`.
//!
//! `cargo bench --bench ops` runs everything (about two and a half minutes: short warm-up and
//! measurement windows, see `config`); `cargo bench --bench ops -- --test` runs each function
//! once, as CI's smoke test; `cargo bench --bench ops -- dict/` runs one group.

#[path = "floor/mod.rs"]
mod floor;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use floor::{Floor, Kind};
use shmstore::{Slice, Store, Value};

/// Elements in every container (a power of two: the index is `i & MASK`).
const N: usize = 1024;
const MASK: usize = N - 1;

/// A store of `size` bytes, named after this process and `tag`.
fn store(tag: &str, size: usize) -> Store {
    Store::create(&format!("bench-ops-{tag}-{}", std::process::id()), size).expect("create store")
}

/// A robust floor with `N` list elements `0..N` and table entries `i → i` for `i < N`.
fn floor(tag: &str) -> Floor {
    let f = Floor::create(&floor::floor_path(tag), Kind::Robust);
    for i in 0..N {
        assert!(f.append(i as i64));
        assert!(f.dict_set(i as i64, i as i64));
    }
    f
}

/// `k0000123`: the i-th 8-byte string key (`m…` for keys never inserted).
fn key8(prefix: char, i: usize) -> String {
    format!("{prefix}{i:07}")
}

/// The floor's key for an 8-byte string key: its bytes as one integer.
#[inline]
fn str_word(s: &str) -> i64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    i64::from_le_bytes(b)
}

/// The next index of a walk over `0..N` (a stride coprime to `N`, so successive calls touch
/// different elements).
#[inline]
fn step(i: &mut usize) -> usize {
    *i = (*i + 617) & MASK;
    *i
}

fn bench_list(c: &mut Criterion) {
    let store = store("list", 64 << 20);
    let l = store.list(0..N as i64).expect("list");
    let floor = floor("ops-list");

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
        let mut i = 0;
        b.iter(|| black_box(floor.get(step(&mut i))))
    });
    g.bench_function("typed/get", |b| {
        let mut i = 0;
        b.iter(|| black_box(l.get(step(&mut i) as i64).unwrap()))
    });
    g.bench_function("call_method/get", |b| {
        let mut i = 0;
        b.iter(|| black_box(l.call_method("__getitem__", (step(&mut i),)).unwrap()))
    });

    g.bench_function("floor/set", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.set(step(&mut i), i as i64)))
    });
    g.bench_function("typed/set", |b| {
        let mut i = 0;
        b.iter(|| l.set(step(&mut i) as i64, i).unwrap())
    });
    g.bench_function("call_method/set", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = step(&mut i);
            black_box(l.call_method("__setitem__", (j, j)).unwrap())
        })
    });

    g.bench_function("floor/slice5", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = step(&mut i) & !7;
            black_box(floor.list_read(j + 5, |a| a[j..].to_vec()))
        })
    });
    g.bench_function("typed/slice5", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = (step(&mut i) & !7) as i64;
            black_box(l.slice(j..j + 5).unwrap())
        })
    });
    g.bench_function("call_method/slice5", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = (step(&mut i) & !7) as i64;
            black_box(
                l.call_method("__getitem__", (Slice::new(j, j + 5),))
                    .unwrap(),
            )
        })
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

fn bench_dict(c: &mut Criterion) {
    let store = store("dict", 64 << 20);
    let keys: Vec<String> = (0..N).map(|i| key8('k', i)).collect();
    let misses: Vec<String> = (0..N).map(|i| key8('m', i)).collect();
    let di = store.dict((0..N as i64).map(|i| (i, i))).expect("dict int");
    let ds = store
        .dict(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as i64)))
        .expect("dict str8");
    let floor = floor("ops-dict");
    for (i, k) in keys.iter().enumerate() {
        assert!(floor.dict_set(str_word(k), i as i64));
    }

    let mut g = c.benchmark_group("dict");
    // Int keys.
    g.bench_function("floor/get-int-hit", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.dict_get(step(&mut i) as i64)))
    });
    g.bench_function("typed/get-int-hit", |b| {
        let mut i = 0;
        b.iter(|| black_box(di.get(step(&mut i)).unwrap()))
    });
    g.bench_function("call_method/get-int-hit", |b| {
        let mut i = 0;
        b.iter(|| black_box(di.call_method("get", (step(&mut i),)).unwrap()))
    });
    g.bench_function("floor/get-int-miss", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.dict_get(1_000_000 + step(&mut i) as i64)))
    });
    g.bench_function("typed/get-int-miss", |b| {
        let mut i = 0;
        b.iter(|| black_box(di.get(1_000_000 + step(&mut i)).unwrap()))
    });
    g.bench_function("call_method/get-int-miss", |b| {
        let mut i = 0;
        b.iter(|| black_box(di.call_method("get", (1_000_000 + step(&mut i),)).unwrap()))
    });
    g.bench_function("floor/set-int", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.dict_set(step(&mut i) as i64, i as i64)))
    });
    g.bench_function("typed/set-int", |b| {
        let mut i = 0;
        b.iter(|| di.insert(step(&mut i), i).unwrap())
    });
    g.bench_function("call_method/set-int", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = step(&mut i);
            black_box(di.call_method("__setitem__", (j, j)).unwrap())
        })
    });
    // 8-byte string keys.
    g.bench_function("floor/get-str8-hit", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.dict_get(str_word(&keys[step(&mut i)]))))
    });
    g.bench_function("typed/get-str8-hit", |b| {
        let mut i = 0;
        b.iter(|| black_box(ds.get(keys[step(&mut i)].as_str()).unwrap()))
    });
    g.bench_function("call_method/get-str8-hit", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(
                ds.call_method("get", (keys[step(&mut i)].as_str(),))
                    .unwrap(),
            )
        })
    });
    g.bench_function("floor/get-str8-miss", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.dict_get(str_word(&misses[step(&mut i)]))))
    });
    g.bench_function("typed/get-str8-miss", |b| {
        let mut i = 0;
        b.iter(|| black_box(ds.get(misses[step(&mut i)].as_str()).unwrap()))
    });
    g.bench_function("call_method/get-str8-miss", |b| {
        let mut i = 0;
        b.iter(|| {
            black_box(
                ds.call_method("get", (misses[step(&mut i)].as_str(),))
                    .unwrap(),
            )
        })
    });
    g.bench_function("floor/set-str8", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.dict_set(str_word(&keys[step(&mut i)]), i as i64)))
    });
    g.bench_function("typed/set-str8", |b| {
        let mut i = 0;
        b.iter(|| ds.insert(keys[step(&mut i)].as_str(), i).unwrap())
    });
    g.bench_function("call_method/set-str8", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = step(&mut i);
            black_box(
                ds.call_method("__setitem__", (keys[j].as_str(), j))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn bench_value_array(c: &mut Criterion) {
    let store = store("value", 64 << 20);
    let v = store.value(0).expect("value");
    let tv = store.value_of(0i64).expect("value_of");
    let a = store
        .array((0..N as i64).collect::<Vec<_>>())
        .expect("array");
    // 4 KiB of i64s.
    let block = store.array_zeroed::<i64>(512).expect("array 4 KiB");
    block.copy_from_slice(&[1; 512]).expect("fill");
    let floor = floor("ops-value");

    let mut g = c.benchmark_group("value");
    g.bench_function("floor/get", |b| b.iter(|| black_box(floor.word_get())));
    g.bench_function("typed/get", |b| b.iter(|| black_box(v.get().unwrap())));
    g.bench_function("call_method/get", |b| {
        b.iter(|| black_box(v.call_method("get", ()).unwrap()))
    });
    g.bench_function("typed-i64/get", |b| b.iter(|| black_box(tv.get().unwrap())));
    g.bench_function("floor/set", |b| {
        let mut i = 0i64;
        b.iter(|| {
            i += 1;
            floor.word_set(black_box(i))
        })
    });
    g.bench_function("typed/set", |b| {
        let mut i = 0i64;
        b.iter(|| {
            i += 1;
            v.set(black_box(i)).unwrap()
        })
    });
    g.bench_function("call_method/set", |b| {
        let mut i = 0i64;
        b.iter(|| {
            i += 1;
            black_box(v.call_method("set", (black_box(i),)).unwrap())
        })
    });
    g.bench_function("typed-i64/set", |b| {
        let mut i = 0i64;
        b.iter(|| {
            i += 1;
            tv.set(black_box(i)).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("array");
    g.bench_function("floor/get", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.get(step(&mut i))))
    });
    g.bench_function("typed/get", |b| {
        let mut i = 0;
        b.iter(|| black_box(a.get(step(&mut i) as i64).unwrap()))
    });
    g.bench_function("call_method/get", |b| {
        let mut i = 0;
        b.iter(|| black_box(a.call_method("__getitem__", (step(&mut i),)).unwrap()))
    });
    g.bench_function("floor/set", |b| {
        let mut i = 0;
        b.iter(|| black_box(floor.set(step(&mut i), i as i64)))
    });
    g.bench_function("typed/set", |b| {
        let mut i = 0;
        b.iter(|| a.set(step(&mut i) as i64, i as i64).unwrap())
    });
    g.bench_function("call_method/set", |b| {
        let mut i = 0;
        b.iter(|| {
            let j = step(&mut i);
            black_box(a.call_method("__setitem__", (j, j)).unwrap())
        })
    });
    // A 4 KiB block read in place under the lock: summed, and copied out.
    g.bench_function("floor/sum-4KiB", |b| {
        b.iter(|| black_box(floor.list_read(512, |s| s.iter().sum::<i64>())))
    });
    g.bench_function("typed/lock-sum-4KiB", |b| {
        b.iter(|| black_box(block.lock().unwrap().iter().sum::<i64>()))
    });
    g.bench_function("floor/copy-4KiB", |b| {
        let mut out = [0i64; 512];
        b.iter(|| {
            floor.list_read(512, |s| out.copy_from_slice(s));
            black_box(&mut out);
        })
    });
    g.bench_function("typed/lock-copy-4KiB", |b| {
        let mut out = [0i64; 512];
        b.iter(|| {
            out.copy_from_slice(&block.lock().unwrap());
            black_box(&mut out);
        })
    });
    g.bench_function("typed/to_vec-4KiB", |b| {
        b.iter(|| black_box(block.to_vec().unwrap()))
    });
    g.finish();
}

fn bench_sync(c: &mut Criterion) {
    let store = store("sync", 64 << 20);
    let lock = store.lock().expect("lock");
    let q = store.queue(0).expect("queue");
    let ev = store.event().expect("event");
    let floor = floor("ops-sync");

    let mut g = c.benchmark_group("sync");
    g.bench_function("floor/lock+unlock", |b| b.iter(|| floor.lock_unlock()));
    g.bench_function("typed/lock-acquire+release", |b| {
        b.iter(|| {
            black_box(lock.acquire(true, None).unwrap());
            lock.release().unwrap()
        })
    });
    g.bench_function("typed/lock-guard", |b| {
        b.iter(|| drop(black_box(lock.guard().unwrap())))
    });
    g.bench_function("call_method/lock-acquire+release", |b| {
        b.iter(|| {
            black_box(lock.call_method("acquire", ()).unwrap());
            black_box(lock.call_method("release", ()).unwrap())
        })
    });
    g.bench_function("typed/queue-put+get", |b| {
        b.iter(|| {
            q.put(black_box(7)).unwrap();
            black_box(q.get().unwrap())
        })
    });
    g.bench_function("call_method/queue-put+get", |b| {
        b.iter(|| {
            q.call_method("put", (black_box(7),)).unwrap();
            black_box(q.call_method("get", ()).unwrap())
        })
    });
    g.bench_function("typed/event-set+is_set", |b| {
        b.iter(|| {
            ev.set().unwrap();
            black_box(ev.is_set().unwrap())
        })
    });
    g.bench_function("typed/event-is_set", |b| {
        b.iter(|| black_box(ev.is_set().unwrap()))
    });
    g.bench_function("call_method/event-set+is_set", |b| {
        b.iter(|| {
            ev.call_method("set", ()).unwrap();
            black_box(ev.call_method("is_set", ()).unwrap())
        })
    });
    g.finish();
}

/// Proxy lifetimes: handles, references, objects, stores.
fn bench_objects(c: &mut Criterion) {
    let store = store("objects", 64 << 20);
    let l = store.list([1, 2, 3]).expect("list");
    let token = l.token();

    let mut g = c.benchmark_group("objects");
    // A clone shares the handle (an `Arc`): no shared-memory traffic.
    g.bench_function("proxy-clone+drop", |b| {
        b.iter(|| drop(black_box(l.clone())))
    });
    // `attach` takes a reference in the arena and records it in this process's holdings;
    // dropping the proxy gives both back: the shared refcount path.
    g.bench_function("attach+drop", |b| {
        b.iter(|| drop(black_box(store.attach(&token).unwrap())))
    });
    g.bench_function("create+free/list3", |b| {
        b.iter(|| drop(black_box(store.list([1, 2, 3]).unwrap())))
    });
    g.bench_function("create+free/dict3", |b| {
        b.iter(|| drop(black_box(store.dict([(1, 1), (2, 2), (3, 3)]).unwrap())))
    });
    g.bench_function("create+free/value", |b| {
        b.iter(|| drop(black_box(store.value(1).unwrap())))
    });
    g.finish();
}

/// `Store::open` (and the drop that detaches) of a store holding 100,000 live objects, beside
/// one holding a single object.
fn bench_open(c: &mut Criterion) {
    const OBJECTS: usize = 100_000;
    let full_name = format!("bench-ops-open-full-{}", std::process::id());
    let full = Store::builder()
        .max_objects(2 * OBJECTS as u64)
        .create(&full_name, 64 << 20)
        .expect("create store");
    // 100,000 values kept alive by the references a bound list holds to them.
    let holder = full.list(Vec::<i64>::new()).expect("list");
    for i in 0..OBJECTS {
        let v = full.value(i as i64).expect("value");
        holder.append(v.token()).expect("append");
    }
    full.bind("holder", &holder).expect("bind");
    drop(holder);
    let live = full.stats().expect("stats").objects_live;
    assert_eq!(live, OBJECTS as u64 + 1, "objects live in the store");

    let empty_name = format!("bench-ops-open-empty-{}", std::process::id());
    let empty = Store::create(&empty_name, 64 << 20).expect("create store");
    empty
        .bind("one", &empty.value(0).expect("value"))
        .expect("bind");

    let mut g = c.benchmark_group("open");
    g.bench_function("1-object", |b| {
        b.iter(|| drop(black_box(Store::open(&empty_name).unwrap())))
    });
    g.bench_function("100k-objects", |b| {
        b.iter(|| drop(black_box(Store::open(&full_name).unwrap())))
    });
    g.finish();
    drop((full, empty));
}

/// Uncontended lock+unlock of the two raw robust locks, side by side: glibc's robust
/// process-shared mutex and the futex lock, each in a shared mapping.
fn bench_lock(c: &mut Criterion) {
    use shmstore::sync::{FutexLock, PthreadMutex, RawLock};
    let len = 4096;
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
    // SAFETY: both offsets are 64-aligned, inside the mapping, used by nothing else; each lock
    // is initialized once before use and unlocked by the thread that took it.
    let (pm, fm) = unsafe {
        let pm = base;
        let fm = base.add(128);
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
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(base.cast(), len) };
}

/// Short windows: about 80 functions must finish in under three minutes on a shared machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_list, bench_dict, bench_value_array, bench_sync, bench_objects, bench_open,
        bench_lock
}
criterion_main!(benches);
