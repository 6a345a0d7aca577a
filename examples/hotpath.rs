//! One hot-path operation in a loop, for counting instructions per call with callgrind:
//!
//! ```text
//! cargo build --release --example hotpath
//! valgrind --tool=callgrind target/release/examples/hotpath set 100000
//! valgrind --tool=callgrind target/release/examples/hotpath set 0      # setup only
//! ```
//!
//! (instructions of the first run minus the second, divided by 100,000). Operations: `len`,
//! `get`, `geti` (`get_as::<i64>`), `set`, `append` (+pop), `dget`/`dset` (int keys), `dgeta` (`get_as::<i64>` of an int key), `sget`/`sset` (8-byte str keys, each call given a
//! `Value` cloned from a prepared one, as `get(&str)` builds one), `sgetb`/`ssetb` (the same keys
//! borrowed: `get_borrowed(&str)`, `insert_borrowed`),
//! `vget`/`vgeti`/`vset`, `tget`/`tset` (`value_of::<i64>`), `aget`/`aset` (`array::<i64>`), `lock`
//! (acquire+release), `cm` (`call_method("__getitem__")`), `cid` (the same through `call_id`,
//! resolved once), and more `call_method` by name: `cmlen` (list `__len__`; `cmlenm` matches
//! the result rather than passing the whole `Value` to `black_box`), `cmset` (list
//! `__setitem__`), `cmappend` (list `append` + `pop`), `cmvget`/`cmvset` (value `get`/`set`),
//! `cmtget`/`cmtset` (the same on `value_of::<i64>`), `cmaget`/`cmaset` (array
//! `__getitem__`/`__setitem__`; `cmagetm` matches the result), `cmlock` (Lock `acquire` + `release`), `cmdget`/`cmdset` (dict
//! `get`/`__setitem__`, int keys); `wl` (an empty `with_lock`), `wf` (an empty
//! `dispatch::write_fast`), `create` (a one-int list made and dropped), `lookup` (a name looked
//! up and the proxy dropped: a reference taken and given back), `raw` (a compare-and-swap and an exchange on a local word: the floor
//! of any lock).
//! Instruction counts are repeatable whatever else the machine runs, unlike timings.
use shmstore::*;
use std::hint::black_box;
#[inline(never)]
fn run(n: i64, f: impl Fn(i64, i64)) {
    for i in 0..n {
        f(i, i & 1023);
    }
}
fn main() {
    let op = std::env::args().nth(1).unwrap_or("set".into());
    let n: i64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(200000);
    let name = format!("hotpath{}", std::process::id());
    let store = Store::create(&name, 64 << 20).unwrap();
    let l = store.list((0..1024i64).collect::<Vec<_>>()).unwrap();
    let d = store.dict((0..1024i64).map(|i| (i, i))).unwrap();
    let ds = store
        .dict((0..1024i64).map(|i| (format!("k{i:07}"), i)))
        .unwrap();
    let skeys: Vec<String> = (0..1024i64).map(|i| format!("k{i:07}")).collect();
    let keys: Vec<Value> = skeys.iter().map(Value::from).collect();
    let v = store.value(5).unwrap();
    let a = store.array::<i64>(vec![0; 1024]).unwrap();
    let lk = store.lock().unwrap();
    let tv = store.value_of::<i64>(0).unwrap();
    match op.as_str() {
        "set" => run(n, |i, k| l.set(k, i).unwrap()),
        "get" => run(n, |_, k| {
            black_box(l.get(k).unwrap());
        }),
        "geti" => run(n, |_, k| {
            black_box(l.get_as::<i64>(k).unwrap());
        }),
        "vgeti" => run(n, |_, _| {
            black_box(v.get_as::<i64>().unwrap());
        }),
        "len" => run(n, |_, _| {
            black_box(l.len().unwrap());
        }),
        "append" => run(n, |i, _| {
            l.append(i).unwrap();
            black_box(l.pop(-1).unwrap());
        }),
        "dget" => run(n, |_, k| {
            black_box(d.get(k).unwrap());
        }),
        "dgeta" => run(n, |_, k| {
            black_box(d.get_as::<i64>(k).unwrap());
        }),
        "dset" => run(n, |i, k| d.insert(k, i).unwrap()),
        "sget" => run(n, |_, k| {
            black_box(ds.get(keys[k as usize].clone()).unwrap());
        }),
        "sset" => run(n, |i, k| ds.insert(keys[k as usize].clone(), i).unwrap()),
        "sgetb" => run(n, |_, k| {
            black_box(ds.get_borrowed(skeys[k as usize].as_str()).unwrap());
        }),
        "ssetb" => run(n, |i, k| {
            ds.insert_borrowed(skeys[k as usize].as_str(), i).unwrap()
        }),
        "vget" => run(n, |_, _| {
            black_box(v.get().unwrap());
        }),
        "vset" => run(n, |i, _| v.set(i).unwrap()),
        "tget" => run(n, |_, _| {
            black_box(tv.get().unwrap());
        }),
        "tset" => run(n, |i, _| tv.set(i).unwrap()),
        "aget" => run(n, |_, k| {
            black_box(a.get(k).unwrap());
        }),
        "aset" => run(n, |i, k| a.set(k, i).unwrap()),
        "lock" => run(n, |_, _| {
            lk.acquire(true, None).unwrap();
            lk.release().unwrap();
        }),
        "cm" => run(n, |_, k| {
            black_box(l.call_method("__getitem__", (k,)).unwrap());
        }),
        "cmlen" => run(n, |_, _| {
            black_box(l.call_method("__len__", ()).unwrap());
        }),
        "cmlenm" => run(n, |_, _| match l.call_method("__len__", ()) {
            Ok(Value::Int(x)) => {
                black_box(x);
            }
            other => panic!("{other:?}"),
        }),
        "cmagetm" => run(n, |_, k| match a.call_method("__getitem__", (k,)) {
            Ok(Value::Int(x)) => {
                black_box(x);
            }
            other => panic!("{other:?}"),
        }),
        "cmset" => run(n, |i, k| {
            black_box(l.call_method("__setitem__", (k, i)).unwrap());
        }),
        "cmappend" => run(n, |i, _| {
            black_box(l.call_method("append", (i,)).unwrap());
            black_box(l.call_method("pop", ()).unwrap());
        }),
        "cmvget" => run(n, |_, _| {
            black_box(v.call_method("get", ()).unwrap());
        }),
        "cmvset" => run(n, |i, _| {
            black_box(v.call_method("set", (i,)).unwrap());
        }),
        "cmtget" => run(n, |_, _| {
            black_box(tv.call_method("get", ()).unwrap());
        }),
        "cmtset" => run(n, |i, _| {
            black_box(tv.call_method("set", (i,)).unwrap());
        }),
        "cmaget" => run(n, |_, k| {
            black_box(a.call_method("__getitem__", (k,)).unwrap());
        }),
        "cmaset" => run(n, |i, k| {
            black_box(a.call_method("__setitem__", (k, i)).unwrap());
        }),
        "cmlock" => run(n, |_, _| {
            black_box(lk.call_method("acquire", ()).unwrap());
            black_box(lk.call_method("release", ()).unwrap());
        }),
        "cmdget" => run(n, |_, k| {
            black_box(d.call_method("get", (k,)).unwrap());
        }),
        "cmdset" => run(n, |i, k| {
            black_box(d.call_method("__setitem__", (k, i)).unwrap());
        }),
        "wl" => run(n, |_, _| {
            l.with_lock(|_| Ok(())).unwrap();
        }),
        "cid" => {
            let mid = l.method_id("__getitem__").unwrap();
            run(n, |_, k| {
                black_box(l.call_id(mid, &[Value::Int(k)], &[]).unwrap());
            })
        }
        "wf" => {
            let (core, t) = (store.core(), l.token());
            run(n, |_, _| {
                black_box(shmstore::dispatch::write_fast(core, &t, |_, body| {
                    Some(body)
                }));
            })
        }
        "raw" => {
            // The two atomic read-modify-writes of any lock, alone: the physical floor.
            let w = std::sync::atomic::AtomicU32::new(0);
            run(n, |_, _| {
                use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
                let _ = black_box(&w).compare_exchange(0, 5, Acquire, Relaxed);
                black_box(&w).swap(0, Release);
            })
        }
        "create" => run(n, |_, _| drop(black_box(store.list([1]).unwrap()))),
        "lookup" => {
            store.bind("l", &l).unwrap();
            run(n, |_, _| drop(black_box(store.lookup("l").unwrap())))
        }
        "none" => run(n, |_, k| {
            black_box(k);
        }),
        other => {
            eprintln!(
                "unknown operation {other:?}: see the comment at the top of examples/hotpath.rs"
            );
            // `exit` runs no destructors: unlink the segment first.
            let _ = Store::remove(&name);
            std::process::exit(2);
        }
    }
}
