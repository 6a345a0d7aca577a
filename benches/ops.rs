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
//! Every row goes through one non-generic `run` (criterion's machinery is instantiated once, not
//! once per row, which keeps the bench quick to build); only the row's own loop is generic, so
//! no indirect call sits between two timed operations.
//!
//! `cargo bench --bench ops` runs everything (about two and a half minutes: short warm-up and
//! measurement windows, see `config`); `cargo bench --bench ops -- --test` runs each function
//! once, as CI's smoke test; `cargo bench --bench ops -- dict/` runs one group.

#[path = "floor/mod.rs"]
mod floor;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
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

/// `f` called with successive indices of the walk over `0..N`.
fn walk<R>(mut f: impl FnMut(usize) -> R) -> impl FnMut() -> R {
    let mut i = 0;
    move || f(step(&mut i))
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Times `iters` calls of a row's loop: the one instantiation of criterion's routine.
fn run(g: &mut Group<'_>, name: &str, f: &mut dyn FnMut(u64)) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            f(iters);
            t.elapsed()
        })
    });
}

/// A row: `f` called in a monomorphized loop, its result kept from the optimizer.
fn row<R>(g: &mut Group<'_>, name: &str, mut f: impl FnMut() -> R) {
    run(g, name, &mut |iters| {
        for _ in 0..iters {
            black_box(f());
        }
    });
}

fn bench_list(c: &mut Criterion) {
    let store = store("list", 64 << 20);
    let l = &store.list(0..N as i64).expect("list");
    let floor = &floor("ops-list");

    let mut group = c.benchmark_group("list");
    let g = &mut group;
    row(g, "floor/len", || floor.len());
    row(g, "typed/len", || l.len().unwrap());
    row(g, "call_method/len", || {
        l.call_method("__len__", ()).unwrap()
    });
    let len_id = l.method_id("__len__").unwrap();
    row(g, "call_id/len", || l.call_id(len_id, &[], &[]).unwrap());

    row(g, "floor/get", walk(|j| floor.get(j)));
    row(g, "typed/get", walk(|j| l.get(j as i64).unwrap()));
    row(
        g,
        "call_method/get",
        walk(|j| l.call_method("__getitem__", (j,)).unwrap()),
    );

    row(g, "floor/set", walk(|j| floor.set(j, j as i64)));
    row(g, "typed/set", walk(|j| l.set(j as i64, j).unwrap()));
    row(
        g,
        "call_method/set",
        walk(|j| l.call_method("__setitem__", (j, j)).unwrap()),
    );

    // Five items from a position that is a multiple of 8 (so the slice stays inside).
    row(
        g,
        "floor/slice5",
        walk(|j| floor.list_read((j & !7) + 5, |a| a[j & !7..].to_vec())),
    );
    row(
        g,
        "typed/slice5",
        walk(|j| {
            let j = (j & !7) as i64;
            l.slice(j..j + 5).unwrap()
        }),
    );
    row(
        g,
        "call_method/slice5",
        walk(|j| {
            let j = (j & !7) as i64;
            l.call_method("__getitem__", (Slice::new(j, j + 5),))
                .unwrap()
        }),
    );

    row(g, "floor/append+pop", || {
        floor.append(black_box(7));
        floor.pop()
    });
    row(g, "typed/append+pop", || {
        l.append(black_box(7)).unwrap();
        l.pop(-1).unwrap()
    });
    row(g, "call_method/append+pop", || {
        l.call_method("append", (black_box(7),)).unwrap();
        l.call_method("pop", ()).unwrap()
    });
    let s = Value::from("sixteen-byte-str");
    row(g, "typed/append-str16+pop", || {
        l.append(s.clone()).unwrap();
        l.pop(-1).unwrap()
    });
    group.finish();
}

fn bench_dict(c: &mut Criterion) {
    let store = store("dict", 64 << 20);
    let keys = &(0..N).map(|i| key8('k', i)).collect::<Vec<_>>();
    let misses = &(0..N).map(|i| key8('m', i)).collect::<Vec<_>>();
    let di = &store.dict((0..N as i64).map(|i| (i, i))).expect("dict int");
    let ds = &store
        .dict(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as i64)))
        .expect("dict str8");
    let floor = &floor("ops-dict");
    for (i, k) in keys.iter().enumerate() {
        assert!(floor.dict_set(str_word(k), i as i64));
    }
    const MISS: usize = 1_000_000;

    let mut group = c.benchmark_group("dict");
    let g = &mut group;
    // Int keys.
    row(g, "floor/get-int-hit", walk(|j| floor.dict_get(j as i64)));
    row(g, "typed/get-int-hit", walk(|j| di.get(j).unwrap()));
    row(
        g,
        "call_method/get-int-hit",
        walk(|j| di.call_method("get", (j,)).unwrap()),
    );
    row(
        g,
        "floor/get-int-miss",
        walk(|j| floor.dict_get((MISS + j) as i64)),
    );
    row(g, "typed/get-int-miss", walk(|j| di.get(MISS + j).unwrap()));
    row(
        g,
        "call_method/get-int-miss",
        walk(|j| di.call_method("get", (MISS + j,)).unwrap()),
    );
    row(
        g,
        "floor/set-int",
        walk(|j| floor.dict_set(j as i64, j as i64)),
    );
    row(g, "typed/set-int", walk(|j| di.insert(j, j).unwrap()));
    row(
        g,
        "call_method/set-int",
        walk(|j| di.call_method("__setitem__", (j, j)).unwrap()),
    );
    // 8-byte string keys.
    row(
        g,
        "floor/get-str8-hit",
        walk(|j| floor.dict_get(str_word(&keys[j]))),
    );
    row(
        g,
        "typed/get-str8-hit",
        walk(|j| ds.get(keys[j].as_str()).unwrap()),
    );
    row(
        g,
        "call_method/get-str8-hit",
        walk(|j| ds.call_method("get", (keys[j].as_str(),)).unwrap()),
    );
    row(
        g,
        "floor/get-str8-miss",
        walk(|j| floor.dict_get(str_word(&misses[j]))),
    );
    row(
        g,
        "typed/get-str8-miss",
        walk(|j| ds.get(misses[j].as_str()).unwrap()),
    );
    row(
        g,
        "call_method/get-str8-miss",
        walk(|j| ds.call_method("get", (misses[j].as_str(),)).unwrap()),
    );
    row(
        g,
        "floor/set-str8",
        walk(|j| floor.dict_set(str_word(&keys[j]), j as i64)),
    );
    row(
        g,
        "typed/set-str8",
        walk(|j| ds.insert(keys[j].as_str(), j).unwrap()),
    );
    row(
        g,
        "call_method/set-str8",
        walk(|j| {
            ds.call_method("__setitem__", (keys[j].as_str(), j))
                .unwrap()
        }),
    );
    group.finish();
}

fn bench_value_array(c: &mut Criterion) {
    let store = store("value", 64 << 20);
    let v = &store.value(0).expect("value");
    let tv = &store.value_of(0i64).expect("value_of");
    let a = &store
        .array((0..N as i64).collect::<Vec<_>>())
        .expect("array");
    // 4 KiB of i64s.
    let block = &store.array_zeroed::<i64>(512).expect("array 4 KiB");
    block.copy_from_slice(&[1; 512]).expect("fill");
    let floor = &floor("ops-value");

    let mut group = c.benchmark_group("value");
    let g = &mut group;
    row(g, "floor/get", || floor.word_get());
    row(g, "typed/get", || v.get().unwrap());
    row(g, "call_method/get", || v.call_method("get", ()).unwrap());
    row(g, "typed-i64/get", || tv.get().unwrap());
    row(g, "floor/set", walk(|j| floor.word_set(j as i64)));
    row(g, "typed/set", walk(|j| v.set(j).unwrap()));
    row(
        g,
        "call_method/set",
        walk(|j| v.call_method("set", (j,)).unwrap()),
    );
    row(g, "typed-i64/set", walk(|j| tv.set(j as i64).unwrap()));
    group.finish();

    let mut group = c.benchmark_group("array");
    let g = &mut group;
    row(g, "floor/get", walk(|j| floor.get(j)));
    row(g, "typed/get", walk(|j| a.get(j as i64).unwrap()));
    row(
        g,
        "call_method/get",
        walk(|j| a.call_method("__getitem__", (j,)).unwrap()),
    );
    row(g, "floor/set", walk(|j| floor.set(j, j as i64)));
    row(g, "typed/set", walk(|j| a.set(j as i64, j as i64).unwrap()));
    row(
        g,
        "call_method/set",
        walk(|j| a.call_method("__setitem__", (j, j)).unwrap()),
    );
    // A 4 KiB block read in place under the lock: summed, and copied out.
    row(g, "floor/sum-4KiB", || {
        floor.list_read(512, |s| s.iter().sum::<i64>())
    });
    row(g, "typed/lock-sum-4KiB", || {
        block.lock().unwrap().iter().sum::<i64>()
    });
    let mut out = [0i64; 512];
    row(g, "floor/copy-4KiB", || {
        floor.list_read(512, |s| out.copy_from_slice(s));
        black_box(&mut out);
    });
    let mut out = [0i64; 512];
    row(g, "typed/lock-copy-4KiB", || {
        out.copy_from_slice(&block.lock().unwrap());
        black_box(&mut out);
    });
    row(g, "typed/to_vec-4KiB", || block.to_vec().unwrap());
    group.finish();
}

fn bench_sync(c: &mut Criterion) {
    let store = store("sync", 64 << 20);
    let lock = &store.lock().expect("lock");
    let q = &store.queue(0).expect("queue");
    let ev = &store.event().expect("event");
    let floor = &floor("ops-sync");

    let mut group = c.benchmark_group("sync");
    let g = &mut group;
    row(g, "floor/lock+unlock", || floor.lock_unlock());
    row(g, "typed/lock-acquire+release", || {
        black_box(lock.acquire(true, None).unwrap());
        lock.release().unwrap()
    });
    row(g, "typed/lock-guard", || drop(lock.guard().unwrap()));
    row(g, "call_method/lock-acquire+release", || {
        black_box(lock.call_method("acquire", ()).unwrap());
        lock.call_method("release", ()).unwrap()
    });
    row(g, "typed/queue-put+get", || {
        q.put(black_box(7)).unwrap();
        q.get().unwrap()
    });
    row(g, "call_method/queue-put+get", || {
        q.call_method("put", (black_box(7),)).unwrap();
        q.call_method("get", ()).unwrap()
    });
    row(g, "typed/event-set+is_set", || {
        ev.set().unwrap();
        ev.is_set().unwrap()
    });
    row(g, "typed/event-is_set", || ev.is_set().unwrap());
    row(g, "call_method/event-set+is_set", || {
        ev.call_method("set", ()).unwrap();
        ev.call_method("is_set", ()).unwrap()
    });
    group.finish();
}

/// Proxy lifetimes: handles, references, objects, stores.
fn bench_objects(c: &mut Criterion) {
    let store = &store("objects", 64 << 20);
    let l = &store.list([1, 2, 3]).expect("list");
    let token = l.token();

    let mut group = c.benchmark_group("objects");
    let g = &mut group;
    // A clone shares the handle (an `Arc`): no shared-memory traffic.
    row(g, "proxy-clone+drop", || drop(black_box(l.clone())));
    // `attach` takes a reference in the arena and records it in this process's holdings;
    // dropping the proxy gives both back: the shared refcount path.
    row(g, "attach+drop", || {
        drop(black_box(store.attach(&token).unwrap()))
    });
    row(g, "create+free/list3", || {
        drop(black_box(store.list([1, 2, 3]).unwrap()))
    });
    row(g, "create+free/dict3", || {
        drop(black_box(store.dict([(1, 1), (2, 2), (3, 3)]).unwrap()))
    });
    row(g, "create+free/value", || {
        drop(black_box(store.value(1).unwrap()))
    });
    group.finish();
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

    let mut group = c.benchmark_group("open");
    let g = &mut group;
    row(g, "1-object", || {
        drop(black_box(Store::open(&empty_name).unwrap()))
    });
    row(g, "100k-objects", || {
        drop(black_box(Store::open(&full_name).unwrap()))
    });
    group.finish();
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
    let mut group = c.benchmark_group("lock");
    let g = &mut group;
    // SAFETY (both rows): as above.
    row(g, "pthread-robust/lock+unlock", || unsafe {
        let _ = black_box(PthreadMutex::lock(pm));
        let _ = PthreadMutex::unlock(pm);
    });
    row(g, "futex/lock+unlock", || unsafe {
        let _ = black_box(FutexLock::lock(fm));
        let _ = FutexLock::unlock(fm);
    });
    group.finish();
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(base.cast(), len) };
}

/// Short windows: about 70 functions must finish in under three minutes on a shared machine.
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
