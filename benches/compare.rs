//! Side by side, in one run: the same logical operations through
//!
//! - (a) the raw floor (`benches/floor/mod.rs`): a plain and a robust process-shared pthread
//!   mutex around a fixed `i64` array and an open-addressing `i64 → i64` table in a shared
//!   mapping;
//! - (b) shmstore's typed proxy calls;
//! - (c) the same through `call_method` by name;
//! - (d) CPython 3.11's `multiprocessing` `SyncManager` proxies, measured inside Python with
//!   `time.perf_counter_ns` by a script this bench writes to `target/` and runs with `python3`.
//!
//! Each figure is the median ns/op of several repetitions; the columns of one row are measured
//! interleaved (rep 1 of every column, then rep 2, …) so load on a shared machine hits them alike.
//! The table goes to stdout, `target/compare.json` and `target/compare.md`.
//!
//! `cargo bench --bench compare` for the full run (about a minute, half of it Python);
//! `cargo bench --bench compare -- --test` or `SHMSTORE_BENCH_QUICK=1` for a smoke run of a few
//! seconds without Python. `SHMSTORE_BENCH_NO_PYTHON=1` skips Python in a full run.

#[path = "floor/mod.rs"]
mod floor;

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use floor::{median, Floor, Kind};
use shmstore::Store;

/// Elements in every container (a power of two: the index is `i & MASK`).
const N: usize = 1024;
const MASK: u64 = N as u64 - 1;

/// A column's measurement: runs `iters` operations.
type Col<'a> = Box<dyn FnMut(u64) + 'a>;

/// Wraps a per-operation closure into a loop over `iters` operations (monomorphized, so the
/// loop has no indirect call per operation).
fn looped<'a>(mut f: impl FnMut(u64) + 'a) -> Col<'a> {
    Box::new(move |iters| {
        for i in 0..iters {
            f(i);
        }
    })
}

/// Five columns in the table's order: plain floor, robust floor, typed, call_method (CPython is
/// filled in later).
struct Cols<'a> {
    plain: Option<Col<'a>>,
    robust: Option<Col<'a>>,
    typed: Option<Col<'a>>,
    call: Option<Col<'a>>,
}

#[derive(Default, Clone)]
struct Row {
    id: &'static str,
    label: &'static str,
    plain: Option<f64>,
    robust: Option<f64>,
    typed: Option<f64>,
    call: Option<f64>,
    cpython: Option<f64>,
    note: &'static str,
}

struct Timer {
    iters: u64,
    reps: usize,
}

impl Timer {
    /// Median ns/op of each present column, repetitions interleaved across columns.
    fn measure(&self, cols: &mut Cols<'_>) -> [Option<f64>; 4] {
        let mut slots = [
            cols.plain.as_mut(),
            cols.robust.as_mut(),
            cols.typed.as_mut(),
            cols.call.as_mut(),
        ];
        for f in slots.iter_mut().flatten() {
            f(self.iters / 10 + 1); // warm-up
        }
        let mut samples: [Vec<f64>; 4] = Default::default();
        for _ in 0..self.reps {
            for (f, s) in slots.iter_mut().zip(samples.iter_mut()) {
                if let Some(f) = f {
                    let t = Instant::now();
                    f(self.iters);
                    s.push(t.elapsed().as_nanos() as f64 / self.iters as f64);
                }
            }
        }
        let mut out = [None; 4];
        for (o, s) in out.iter_mut().zip(samples.iter_mut()) {
            if !s.is_empty() {
                *o = Some(median(s));
            }
        }
        out
    }
}

fn key_str(prefix: char, i: usize) -> String {
    format!("{prefix}{i:07}")
}

/// The floor's key for an 8-byte string key: its bytes as one integer.
#[inline]
fn str_word(s: &str) -> i64 {
    let mut b = [0u8; 8];
    let src = s.as_bytes();
    let n = src.len().min(8);
    b[..n].copy_from_slice(&src[..n]);
    i64::from_le_bytes(b)
}

fn main() {
    let quick = floor::quick_mode();
    let t = if quick {
        Timer {
            iters: 2_000,
            reps: 3,
        }
    } else {
        Timer {
            iters: 300_000,
            reps: 5,
        }
    };
    let started = Instant::now();

    let plain = Floor::create(&floor::floor_path("cmp-plain"), Kind::Plain);
    let robust = Floor::create(&floor::floor_path("cmp-robust"), Kind::Robust);
    let name = format!("bench-compare-{}", std::process::id());
    let store = Store::create(&name, 64 << 20).expect("create store");

    let keys: Vec<String> = (0..N).map(|i| key_str('k', i)).collect();
    let misses: Vec<String> = (0..N).map(|i| key_str('m', i)).collect();
    for fl in [&plain, &robust] {
        for (i, k) in keys.iter().enumerate() {
            assert!(fl.append(i as i64));
            assert!(fl.dict_set(i as i64, i as i64));
            assert!(fl.dict_set(str_word(k), i as i64));
        }
    }
    let l = store.list(0..N as i64).expect("list");
    let d = store.dict((0..N as i64).map(|i| (i, i))).expect("dict int");
    let ds = store
        .dict(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i as i64)))
        .expect("dict str");
    let v = store.value_with_typecode("q", 0i64).expect("value");
    let tv = store.value_of(0i64).expect("value_of");
    let lk = store.lock().expect("lock");
    let a = store.array_zeroed::<i64>(N).expect("array");

    let j = |i: u64| (i & MASK) as usize;
    let mut rows: Vec<Row> = Vec::new();
    let mut run = |id, label, note, mut cols: Cols<'_>| {
        let [p, r, ty, c] = t.measure(&mut cols);
        let row = Row {
            id,
            label,
            plain: p,
            robust: r,
            typed: ty,
            call: c,
            cpython: None,
            note,
        };
        eprintln!(
            "{label:<28} plain {:>8} robust {:>8} typed {:>8} call_method {:>8}",
            fmt_ns(p),
            fmt_ns(r),
            fmt_ns(ty),
            fmt_ns(c)
        );
        rows.push(row);
    };

    run(
        "lock",
        "lock acquire+release",
        "shmstore: `store.lock()` (Python's Lock); floors: the mutex alone",
        Cols {
            plain: Some(looped(|_| plain.lock_unlock())),
            robust: Some(looped(|_| robust.lock_unlock())),
            typed: Some(looped(|_| {
                black_box(lk.acquire(true, None).expect("acquire"));
                lk.release().expect("release");
            })),
            call: Some(looped(|_| {
                black_box(lk.call_method("acquire", ()).expect("acquire"));
                black_box(lk.call_method("release", ()).expect("release"));
            })),
        },
    );
    run(
        "list_len",
        "list len",
        "",
        Cols {
            plain: Some(looped(|_| {
                black_box(plain.len());
            })),
            robust: Some(looped(|_| {
                black_box(robust.len());
            })),
            typed: Some(looped(|_| {
                black_box(l.len().expect("len"));
            })),
            call: Some(looped(|_| {
                black_box(l.call_method("__len__", ()).expect("len"));
            })),
        },
    );
    run(
        "list_get",
        "list get [i]",
        "",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.get(j(i)));
            })),
            robust: Some(looped(|i| {
                black_box(robust.get(j(i)));
            })),
            typed: Some(looped(|i| {
                black_box(l.get(j(i) as i64).expect("get"));
            })),
            call: Some(looped(|i| {
                black_box(l.call_method("__getitem__", (j(i) as i64,)).expect("get"));
            })),
        },
    );
    run(
        "list_get_as",
        "list get [i] as i64 (`get_as`)",
        "typed: get_as::<i64>, no Value built",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.get(j(i)));
            })),
            robust: Some(looped(|i| {
                black_box(robust.get(j(i)));
            })),
            typed: Some(looped(|i| {
                black_box(l.get_as::<i64>(j(i) as i64).expect("get"));
            })),
            call: None,
        },
    );
    run(
        "list_set",
        "list set [i] = int",
        "",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.set(j(i), i as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.set(j(i), i as i64));
            })),
            typed: Some(looped(|i| l.set(j(i) as i64, i as i64).expect("set"))),
            call: Some(looped(|i| {
                black_box(
                    l.call_method("__setitem__", (j(i) as i64, i as i64))
                        .expect("set"),
                );
            })),
        },
    );
    run(
        "list_append_pop",
        "list append+pop (2 calls)",
        "",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.append(i as i64));
                black_box(plain.pop());
            })),
            robust: Some(looped(|i| {
                black_box(robust.append(i as i64));
                black_box(robust.pop());
            })),
            typed: Some(looped(|i| {
                l.append(i as i64).expect("append");
                black_box(l.pop(-1).expect("pop"));
            })),
            call: Some(looped(|i| {
                black_box(l.call_method("append", (i as i64,)).expect("append"));
                black_box(l.call_method("pop", ()).expect("pop"));
            })),
        },
    );
    run(
        "dict_get_int_hit",
        "dict get int (hit)",
        "",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(j(i) as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(j(i) as i64));
            })),
            typed: Some(looped(|i| {
                black_box(d.get(j(i) as i64).expect("get"));
            })),
            call: Some(looped(|i| {
                black_box(d.call_method("get", (j(i) as i64,)).expect("get"));
            })),
        },
    );
    run(
        "dict_get_int_hit_as",
        "dict get int as i64 (`get_as`)",
        "typed: get_as::<i64>, no Value built",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(j(i) as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(j(i) as i64));
            })),
            typed: Some(looped(|i| {
                black_box(d.get_as::<i64>(j(i) as i64).expect("get"));
            })),
            call: None,
        },
    );
    run(
        "dict_get_int_miss",
        "dict get int (miss)",
        "",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(1_000_000 + j(i) as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(1_000_000 + j(i) as i64));
            })),
            typed: Some(looped(|i| {
                black_box(d.get(1_000_000 + j(i) as i64).expect("get"));
            })),
            call: Some(looped(|i| {
                black_box(
                    d.call_method("get", (1_000_000 + j(i) as i64,))
                        .expect("get"),
                );
            })),
        },
    );
    run(
        "dict_set_int",
        "dict set int (existing key)",
        "",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_set(j(i) as i64, i as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_set(j(i) as i64, i as i64));
            })),
            typed: Some(looped(|i| d.insert(j(i) as i64, i as i64).expect("set"))),
            call: Some(looped(|i| {
                black_box(
                    d.call_method("__setitem__", (j(i) as i64, i as i64))
                        .expect("set"),
                );
            })),
        },
    );
    let str_note = "floor: the 8 key bytes as one i64 key";
    run(
        "dict_get_str_hit",
        "dict get str8 (hit)",
        str_note,
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(str_word(&keys[j(i)])));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(str_word(&keys[j(i)])));
            })),
            typed: Some(looped(|i| {
                black_box(ds.get(keys[j(i)].as_str()).expect("get"));
            })),
            call: Some(looped(|i| {
                black_box(ds.call_method("get", (keys[j(i)].as_str(),)).expect("get"));
            })),
        },
    );
    run(
        "dict_get_str_miss",
        "dict get str8 (miss)",
        str_note,
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(str_word(&misses[j(i)])));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(str_word(&misses[j(i)])));
            })),
            typed: Some(looped(|i| {
                black_box(ds.get(misses[j(i)].as_str()).expect("get"));
            })),
            call: Some(looped(|i| {
                black_box(
                    ds.call_method("get", (misses[j(i)].as_str(),))
                        .expect("get"),
                );
            })),
        },
    );
    run(
        "dict_set_str",
        "dict set str8 (existing key)",
        str_note,
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_set(str_word(&keys[j(i)]), i as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_set(str_word(&keys[j(i)]), i as i64));
            })),
            typed: Some(looped(|i| {
                ds.insert(keys[j(i)].as_str(), i as i64).expect("set")
            })),
            call: Some(looped(|i| {
                black_box(
                    ds.call_method("__setitem__", (keys[j(i)].as_str(), i as i64))
                        .expect("set"),
                );
            })),
        },
    );
    let borrowed_note = "typed: get_borrowed/insert_borrowed(&str), no String; floor as str8";
    run(
        "dict_get_str_hit_borrowed",
        "dict get str8 borrowed (hit)",
        borrowed_note,
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(str_word(&keys[j(i)])));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(str_word(&keys[j(i)])));
            })),
            typed: Some(looped(|i| {
                black_box(ds.get_borrowed(keys[j(i)].as_str()).expect("get"));
            })),
            call: None,
        },
    );
    run(
        "dict_get_str_miss_borrowed",
        "dict get str8 borrowed (miss)",
        borrowed_note,
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_get(str_word(&misses[j(i)])));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_get(str_word(&misses[j(i)])));
            })),
            typed: Some(looped(|i| {
                black_box(ds.get_borrowed(misses[j(i)].as_str()).expect("get"));
            })),
            call: None,
        },
    );
    run(
        "dict_set_str_borrowed",
        "dict set str8 borrowed (existing key)",
        borrowed_note,
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.dict_set(str_word(&keys[j(i)]), i as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.dict_set(str_word(&keys[j(i)]), i as i64));
            })),
            typed: Some(looped(|i| {
                ds.insert_borrowed(keys[j(i)].as_str(), i as i64)
                    .expect("set")
            })),
            call: None,
        },
    );
    let word_note = "floor: one i64 under the mutex";
    run(
        "value_get",
        "value get",
        word_note,
        Cols {
            plain: Some(looped(|_| {
                black_box(plain.word_get());
            })),
            robust: Some(looped(|_| {
                black_box(robust.word_get());
            })),
            typed: Some(looped(|_| {
                black_box(v.get().expect("get"));
            })),
            call: Some(looped(|_| {
                black_box(v.call_method("get", ()).expect("get"));
            })),
        },
    );
    run(
        "value_get_as",
        "value get as i64 (`get_as`)",
        "floor: one i64 under the mutex; typed: get_as::<i64>, no Value built",
        Cols {
            plain: Some(looped(|_| {
                black_box(plain.word_get());
            })),
            robust: Some(looped(|_| {
                black_box(robust.word_get());
            })),
            typed: Some(looped(|_| {
                black_box(v.get_as::<i64>().expect("get"));
            })),
            call: None,
        },
    );
    run(
        "value_set",
        "value set",
        word_note,
        Cols {
            plain: Some(looped(|i| plain.word_set(i as i64))),
            robust: Some(looped(|i| robust.word_set(i as i64))),
            typed: Some(looped(|i| v.set(i as i64).expect("set"))),
            call: Some(looped(|i| {
                black_box(v.call_method("set", (i as i64,)).expect("set"));
            })),
        },
    );
    run(
        "value_of_get",
        "value_of::<i64> get",
        "TypedValueProxy<i64>; CPython has no counterpart beyond Value('q')",
        Cols {
            plain: Some(looped(|_| {
                black_box(plain.word_get());
            })),
            robust: Some(looped(|_| {
                black_box(robust.word_get());
            })),
            typed: Some(looped(|_| {
                black_box(tv.get().expect("get"));
            })),
            call: Some(looped(|_| {
                black_box(tv.call_method("get", ()).expect("get"));
            })),
        },
    );
    run(
        "value_of_set",
        "value_of::<i64> set",
        "TypedValueProxy<i64>",
        Cols {
            plain: Some(looped(|i| plain.word_set(i as i64))),
            robust: Some(looped(|i| robust.word_set(i as i64))),
            typed: Some(looped(|i| tv.set(i as i64).expect("set"))),
            call: Some(looped(|i| {
                black_box(tv.call_method("set", (i as i64,)).expect("set"));
            })),
        },
    );
    run(
        "array_get",
        "array('q') get [i]",
        "floor: the list array",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.get(j(i)));
            })),
            robust: Some(looped(|i| {
                black_box(robust.get(j(i)));
            })),
            typed: Some(looped(|i| {
                black_box(a.get(j(i) as i64).expect("get"));
            })),
            call: Some(looped(|i| {
                black_box(a.call_method("__getitem__", (j(i) as i64,)).expect("get"));
            })),
        },
    );
    run(
        "array_set",
        "array('q') set [i]",
        "floor: the list array",
        Cols {
            plain: Some(looped(|i| {
                black_box(plain.set(j(i), i as i64));
            })),
            robust: Some(looped(|i| {
                black_box(robust.set(j(i), i as i64));
            })),
            typed: Some(looped(|i| a.set(j(i) as i64, i as i64).expect("set"))),
            call: Some(looped(|i| {
                black_box(
                    a.call_method("__setitem__", (j(i) as i64, i as i64))
                        .expect("set"),
                );
            })),
        },
    );
    let rust_secs = started.elapsed().as_secs_f64();

    drop(store);
    let _ = Store::remove(&name);

    // CPython's managers.
    let mut notes: Vec<String> = Vec::new();
    let mut py_version = None;
    let mut py_secs = None;
    let no_python = std::env::var("SHMSTORE_BENCH_NO_PYTHON").is_ok_and(|v| v != "0");
    if quick {
        notes.push("quick mode: CPython column skipped".into());
    } else if no_python {
        notes.push("SHMSTORE_BENCH_NO_PYTHON set: CPython column skipped".into());
    } else {
        let (n, reps) = (4_000, 5);
        let t0 = Instant::now();
        match run_python(n, reps) {
            Ok((version, figures)) => {
                for (id, ns) in figures {
                    // Python has one `get`: it stands for the `get_as` rows too.
                    let also = format!("{id}_as");
                    for r in rows.iter_mut().filter(|r| r.id == id || r.id == also) {
                        r.cpython = Some(ns);
                    }
                }
                notes.push(format!(
                    "CPython {version}: multiprocessing.managers.SyncManager proxies, median of \
                     {reps} x {n} calls per operation, timed inside Python with perf_counter_ns"
                ));
                py_version = Some(version);
                py_secs = Some(t0.elapsed().as_secs_f64());
            }
            Err(e) => {
                eprintln!("CPython skipped: {e}");
                notes.push(format!("CPython column skipped: {e}"));
            }
        }
    }
    notes.push(format!(
        "Rust columns: median of {} repetitions x {} operations, repetitions interleaved across \
         columns; keys/indices cycle over {N} elements",
        t.reps, t.iters
    ));

    let env = machine();
    let md = markdown(&rows, &notes, &env);
    println!("\n{md}");
    let json = json(&rows, &notes, &env, quick, &t, py_version.as_deref());
    let dir = floor::target_dir();
    let _ = std::fs::write(dir.join("compare.json"), json);
    let _ = std::fs::write(dir.join("compare.md"), &md);
    eprintln!(
        "wrote {} and {} (Rust {rust_secs:.1} s, Python {})",
        dir.join("compare.json").display(),
        dir.join("compare.md").display(),
        py_secs.map_or("skipped".into(), |s| format!("{s:.1} s"))
    );
}

const PY_SCRIPT: &str = r#"# Written and run by shmstore's benches/compare.rs: CPython's SyncManager proxies, ns per op.
import statistics, sys, time
from multiprocessing.managers import SyncManager

def main():
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    N = 1024
    M = N - 1
    keys = ['k%07d' % i for i in range(N)]
    misses = ['m%07d' % i for i in range(N)]
    print('version\t' + sys.version.split()[0], flush=True)
    with SyncManager() as m:
        l = m.list(range(N))
        d = m.dict({i: i for i in range(N)})
        ds = m.dict({k: i for i, k in enumerate(keys)})
        v = m.Value('q', 0)
        a = m.Array('q', [0] * N)
        lk = m.Lock()

        def lock(i):
            lk.acquire()
            lk.release()

        def list_set(i):
            l[i & M] = i

        def list_append_pop(i):
            l.append(i)
            l.pop()

        def dict_set_int(i):
            d[i & M] = i

        def dict_set_str(i):
            ds[keys[i & M]] = i

        def value_set(i):
            v.value = i

        def array_set(i):
            a[i & M] = i

        ops = [
            ('lock', lock),
            ('list_len', lambda i: len(l)),
            ('list_get', lambda i: l[i & M]),
            ('list_set', list_set),
            ('list_append_pop', list_append_pop),
            ('dict_get_int_hit', lambda i: d.get(i & M)),
            ('dict_get_int_miss', lambda i: d.get(1000000 + (i & M))),
            ('dict_set_int', dict_set_int),
            ('dict_get_str_hit', lambda i: ds.get(keys[i & M])),
            ('dict_get_str_miss', lambda i: ds.get(misses[i & M])),
            ('dict_set_str', dict_set_str),
            ('value_get', lambda i: v.value),
            ('value_set', value_set),
            ('array_get', lambda i: a[i & M]),
            ('array_set', array_set),
        ]
        for name, f in ops:
            for i in range(min(n, 100)):
                f(i)
            samples = []
            for _ in range(reps):
                t0 = time.perf_counter_ns()
                for i in range(n):
                    f(i)
                samples.append((time.perf_counter_ns() - t0) / n)
            print('%s\t%.1f' % (name, statistics.median(samples)), flush=True)

if __name__ == '__main__':
    main()
"#;

/// Writes the Python script to `target/` and runs it: (version, [(op id, ns/op)]).
fn run_python(n: u32, reps: u32) -> Result<(String, Vec<(String, f64)>), String> {
    let path = floor::target_dir().join("compare_cpython.py");
    std::fs::write(&path, PY_SCRIPT).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!(
        "running {} with python3 ({reps} x {n} calls per op)…",
        path.display()
    );
    let out = Command::new("python3")
        .arg(&path)
        .arg(n.to_string())
        .arg(reps.to_string())
        .output()
        .map_err(|e| format!("python3 not runnable ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = String::from("?");
    let mut figures = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('\t') else {
            continue;
        };
        if k == "version" {
            version = v.to_owned();
        } else if let Ok(ns) = v.parse::<f64>() {
            figures.push((k.to_owned(), ns));
        }
    }
    if !version.starts_with("3.11") {
        eprintln!("note: python3 is {version}, not 3.11");
    }
    Ok((version, figures))
}

/// Date, CPU, core count and load average, for the report.
struct Machine {
    date: String,
    cpu: String,
    cores: usize,
    load: String,
}

fn machine() -> Machine {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    Machine {
        date,
        cpu,
        cores,
        load,
    }
}

fn fmt_ns(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(x) if x < 100.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.0}"),
    }
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}×"),
        Some(x) => format!("{x:.2}×"),
    }
}

fn markdown(rows: &[Row], notes: &[String], m: &Machine) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "shmstore compare — {} — {} ({} cores), load average {} at the end\n",
        m.date, m.cpu, m.cores, m.load
    );
    s.push_str(
        "| operation | floor plain (ns) | floor robust (ns) | typed (ns) | call_method (ns) | CPython (ns) \
         | typed / plain floor | typed / robust floor | call_method / typed | CPython / typed |\n",
    );
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            fmt_ns(r.plain),
            fmt_ns(r.robust),
            fmt_ns(r.typed),
            fmt_ns(r.call),
            fmt_ns(r.cpython),
            fmt_ratio(ratio(r.typed, r.plain)),
            fmt_ratio(ratio(r.typed, r.robust)),
            fmt_ratio(ratio(r.call, r.typed)),
            fmt_ratio(ratio(r.cpython, r.typed)),
        );
    }
    s.push('\n');
    for r in rows.iter().filter(|r| !r.note.is_empty()) {
        let _ = writeln!(s, "- {}: {}", r.label, r.note);
    }
    for n in notes {
        let _ = writeln!(s, "- {n}");
    }
    s
}

fn json_num(x: Option<f64>) -> String {
    x.map_or("null".into(), |x| format!("{x:.3}"))
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json(
    rows: &[Row],
    notes: &[String],
    m: &Machine,
    quick: bool,
    t: &Timer,
    py: Option<&str>,
) -> String {
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"date\": {},", json_str(&m.date));
    let _ = writeln!(s, "  \"cpu\": {},", json_str(&m.cpu));
    let _ = writeln!(s, "  \"cores\": {},", m.cores);
    let _ = writeln!(s, "  \"load_average_at_end\": {},", json_str(&m.load));
    let _ = writeln!(s, "  \"quick\": {quick},");
    let _ = writeln!(s, "  \"repetitions\": {},", t.reps);
    let _ = writeln!(s, "  \"iterations_per_repetition\": {},", t.iters);
    let _ = writeln!(s, "  \"python\": {},", py.map_or("null".into(), json_str));
    s.push_str("  \"unit\": \"ns/op, median\",\n  \"rows\": [\n");
    for (k, r) in rows.iter().enumerate() {
        let _ = write!(
            s,
            "    {{\"op\": {}, \"label\": {}, \"floor_plain\": {}, \"floor_robust\": {}, \
             \"typed\": {}, \"call_method\": {}, \"cpython\": {}, \"typed_over_plain\": {}, \
             \"typed_over_robust\": {}, \"call_method_over_typed\": {}, \"cpython_over_typed\": {}, \
             \"note\": {}}}",
            json_str(r.id),
            json_str(r.label),
            json_num(r.plain),
            json_num(r.robust),
            json_num(r.typed),
            json_num(r.call),
            json_num(r.cpython),
            json_num(ratio(r.typed, r.plain)),
            json_num(ratio(r.typed, r.robust)),
            json_num(ratio(r.call, r.typed)),
            json_num(ratio(r.cpython, r.typed)),
            json_str(r.note),
        );
        s.push_str(if k + 1 < rows.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ],\n  \"notes\": [");
    for (k, n) in notes.iter().enumerate() {
        if k > 0 {
            s.push_str(", ");
        }
        s.push_str(&json_str(n));
    }
    s.push_str("]\n}\n");
    s
}
