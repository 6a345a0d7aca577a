//! How costs grow with size:
//!
//! - (a) list get/set and dict get/set (int keys and values) at random positions in containers
//!   of 10 to 10,000,000 elements, beside a random read of a private `Vec<i64>` of the same
//!   length (what the cache and TLB alone cost at that size);
//! - (b) create+free of a small list and a small dict as the number of live objects in the store
//!   grows (0 to 1,000,000);
//! - (c) arena bytes per element (from `Store::stats().bytes_in_use`) for ints, floats and
//!   16-byte strings in a list and in a dict — measurements, not timings: printed as a table and
//!   written to `target/scaling.md`.
//!
//! `cargo bench --bench scaling` for the full run (a few minutes; the 10M containers take a few
//! GiB of sparse `/dev/shm`, of which about 1.5 GiB is touched); `cargo bench --bench scaling --
//! --test` (or `SHMSTORE_BENCH_QUICK=1`) is the smoke run: small sizes only, each function once.

#[path = "floor/mod.rs"]
mod floor;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use shmstore::{Store, Value};

/// Names the stores of this run apart from other runs'.
fn store_name(tag: &str) -> String {
    format!("scal-{tag}-{}", std::process::id())
}

/// A store of `size` bytes with few object slots (the containers are few and large).
fn big_store(tag: &str, size: usize) -> Store {
    Store::builder()
        .max_objects(1024)
        .create(&store_name(tag), size)
        .expect("create store")
}

/// xorshift64*: a cheap, well-spread stream of positions in `0..n`.
struct Walk(u64);

impl Walk {
    #[inline]
    fn next(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((u128::from(r) * u128::from(n)) >> 64) as u64
    }
}

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// `f` called with successive random positions in `0..n`.
fn random<R>(n: u64, mut f: impl FnMut(u64) -> R) -> impl FnMut() -> R {
    let mut w = Walk(SEED);
    move || f(w.next(n))
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// Times `iters` calls of a row's loop: the one instantiation of criterion's routine (as in
/// `ops.rs`: quick to build, and no indirect call between two timed operations).
fn run(g: &mut Group<'_>, id: BenchmarkId, f: &mut dyn FnMut(u64)) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            f(iters);
            t.elapsed()
        })
    });
}

/// A row: `f` called in a monomorphized loop, its result kept from the optimizer.
fn row<R>(g: &mut Group<'_>, id: BenchmarkId, mut f: impl FnMut() -> R) {
    run(g, id, &mut |iters| {
        for _ in 0..iters {
            black_box(f());
        }
    });
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The name filter given on the command line (`cargo bench --bench scaling -- FILTER`), if any:
/// the first argument that is neither an option nor an option's value.
fn name_filter() -> Option<String> {
    const WITH_VALUE: [&str; 14] = [
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--color",
        "--output-format",
        "--plotting-backend",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Whether any of the benchmark ids `ids` passes the name filter (a substring match, as
/// criterion's regex filter is for plain names): sections whose functions are all filtered out
/// skip their setup (the 10M containers take seconds to build).
fn wanted(filter: Option<&str>, ids: &[String]) -> bool {
    match filter {
        None => true,
        Some(f) => ids.iter().any(|id| id.contains(f)),
    }
}

/// (a) get/set at random positions as the container grows.
fn bench_sizes(c: &mut Criterion, sizes: &[usize], filter: Option<&str>, notes: &mut String) {
    let mut group = c.benchmark_group("size");
    let g = &mut group;
    for &n in sizes {
        let id = human(n);
        let n64 = n as u64;
        let ids = |names: &[&str]| -> Vec<String> {
            names.iter().map(|f| format!("size/{f}/{id}")).collect()
        };

        if wanted(filter, &ids(&["rawvec-get", "rawvec-chase"])) {
            let raw = &(0..n as i64).collect::<Vec<_>>();
            // Independent reads: the CPU overlaps several misses (a throughput figure).
            row(
                g,
                BenchmarkId::new("rawvec-get", &id),
                random(n64, |j| raw[j as usize]),
            );
            // Each read's position depends on the previous read's value (or-ed in through a
            // zero the compiler cannot see): one full miss after another (a latency figure).
            let zero = black_box(0u64);
            let mut last = 0u64;
            row(
                g,
                BenchmarkId::new("rawvec-chase", &id),
                random(n64, |j| {
                    last = raw[(j | (last & zero)) as usize] as u64;
                    last
                }),
            );
        }

        if !wanted(
            filter,
            &ids(&["list-get", "list-set", "dict-get", "dict-set"]),
        ) {
            continue;
        }

        // Room for the items plus growth slack: ints take a 16-byte cell in a list.
        let store = big_store(&format!("l{id}"), (n * 48).max(64 << 20));
        let t = Instant::now();
        let l = store.list(0..n as i64).expect("list");
        let built = t.elapsed();
        row(
            g,
            BenchmarkId::new("list-get", &id),
            random(n64, |j| l.get(j as i64).unwrap()),
        );
        row(
            g,
            BenchmarkId::new("list-set", &id),
            random(n64, |j| l.set(j as i64, j).unwrap()),
        );
        let bytes = store.stats().expect("stats").bytes_in_use;
        let _ = writeln!(
            notes,
            "- list of {id} ints: built in {:.2} s, {:.1} MiB of arena in use",
            built.as_secs_f64(),
            bytes as f64 / (1 << 20) as f64
        );
        drop((l, store));

        // A dict entry holds two cells, a hash and an index slot; tables double as they grow.
        let store = big_store(&format!("d{id}"), (n * 256).max(64 << 20));
        let t = Instant::now();
        let d = store.dict((0..n as i64).map(|i| (i, i))).expect("dict");
        let built = t.elapsed();
        row(
            g,
            BenchmarkId::new("dict-get", &id),
            random(n64, |k| d.get(k as i64).unwrap()),
        );
        row(
            g,
            BenchmarkId::new("dict-set", &id),
            random(n64, |k| d.insert(k as i64, k as i64).unwrap()),
        );
        let bytes = store.stats().expect("stats").bytes_in_use;
        let _ = writeln!(
            notes,
            "- dict of {id} int→int entries: built in {:.2} s, {:.1} MiB of arena in use",
            built.as_secs_f64(),
            bytes as f64 / (1 << 20) as f64
        );
        drop((d, store));
    }
    group.finish();
}

/// (b) create+free of a small object as the number of live objects grows.
fn bench_live(c: &mut Criterion, live: &[usize], filter: Option<&str>, notes: &mut String) {
    let ids: Vec<String> = live
        .iter()
        .flat_map(|&n| ["list3", "dict3"].map(|k| format!("live/create+free/{k}/{}", human(n))))
        .collect();
    if !wanted(filter, &ids) {
        return;
    }
    let max = live.iter().copied().max().unwrap_or(0);
    let store = Store::builder()
        .max_objects(max as u64 + 1024)
        .create(&store_name("live"), (max * 512).max(64 << 20))
        .expect("create store");
    // The live objects are values the holder list keeps alive through references.
    let holder = store.list(Vec::<i64>::new()).expect("list");
    let base = store.stats().expect("stats").objects_live;
    let mut group = c.benchmark_group("live");
    let g = &mut group;
    for &n in live {
        let t = Instant::now();
        let have = (store.stats().expect("stats").objects_live - base) as usize;
        for i in have..n {
            let v = store.value(i as i64).expect("value");
            holder.append(v.token()).expect("append");
        }
        let made = t.elapsed();
        let stats = store.stats().expect("stats");
        assert_eq!(stats.objects_live - base, n as u64, "live objects");
        let id = human(n);
        let _ = writeln!(
            notes,
            "- {id} live objects: {} object slots in the table, grown to this count in {:.2} s",
            stats.object_slots,
            made.as_secs_f64()
        );
        row(g, BenchmarkId::new("create+free/list3", &id), || {
            drop(black_box(store.list([1, 2, 3]).unwrap()))
        });
        row(g, BenchmarkId::new("create+free/dict3", &id), || {
            drop(black_box(store.dict([(1, 1), (2, 2), (3, 3)]).unwrap()))
        });
    }
    group.finish();
}

/// The i-th element of each kind measured in (c).
#[derive(Clone, Copy)]
enum Kind {
    Int,
    Float,
    Str16,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Int, Kind::Float, Kind::Str16];

    fn label(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str16 => "str (16 bytes)",
        }
    }

    /// Bytes of the element's own data (what a packed array of them would take).
    fn payload(self) -> usize {
        match self {
            Kind::Int | Kind::Float => 8,
            Kind::Str16 => 16,
        }
    }

    fn item(self, i: usize) -> Value {
        match self {
            Kind::Int => Value::Int(i as i64),
            Kind::Float => Value::Float(i as f64 + 0.5),
            Kind::Str16 => Value::Str(format!("s{i:015}")),
        }
    }
}

/// How the container is filled.
#[derive(Clone, Copy)]
enum Build {
    /// `store.list(items)` in one call.
    ListAtOnce,
    /// `append` one by one (capacity grows as it goes).
    ListAppend,
    /// `store.dict(pairs)` in one call, key and value both the element.
    DictAtOnce,
    /// `insert` one by one.
    DictInsert,
}

impl Build {
    const ALL: [Build; 4] = [
        Build::ListAtOnce,
        Build::ListAppend,
        Build::DictAtOnce,
        Build::DictInsert,
    ];

    fn label(self) -> &'static str {
        match self {
            Build::ListAtOnce => "list, built at once",
            Build::ListAppend => "list, appended one by one",
            Build::DictAtOnce => "dict {x: x}, built at once",
            Build::DictInsert => "dict {x: x}, inserted one by one",
        }
    }
}

/// Arena bytes the container of `n` elements adds to `store`, measured with the container alive
/// and checked to be given back when it is dropped.
fn arena_bytes(store: &Store, kind: Kind, build: Build, n: usize) -> u64 {
    let before = store.stats().expect("stats").bytes_in_use;
    let items = (0..n).map(|i| kind.item(i));
    let after = match build {
        Build::ListAtOnce => {
            let l = store.list(items).expect("list");
            let after = store.stats().expect("stats").bytes_in_use;
            assert_eq!(l.len().expect("len"), n);
            after
        }
        Build::ListAppend => {
            let l = store.list(Vec::<i64>::new()).expect("list");
            for x in items {
                l.append(x).expect("append");
            }
            let after = store.stats().expect("stats").bytes_in_use;
            assert_eq!(l.len().expect("len"), n);
            after
        }
        Build::DictAtOnce => {
            let d = store.dict(items.map(|x| (x.clone(), x))).expect("dict");
            let after = store.stats().expect("stats").bytes_in_use;
            assert_eq!(d.len().expect("len"), n);
            after
        }
        Build::DictInsert => {
            let d = store.dict(Vec::<(i64, i64)>::new()).expect("dict");
            for x in items {
                d.insert(x.clone(), x).expect("insert");
            }
            let after = store.stats().expect("stats").bytes_in_use;
            assert_eq!(d.len().expect("len"), n);
            after
        }
    };
    assert_eq!(
        store.stats().expect("stats").bytes_in_use,
        before,
        "the container's bytes are given back when it is freed"
    );
    after - before
}

/// (c) bytes per element; returns the Markdown table.
fn bytes_per_element(counts: &[usize]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0);
    let store = big_store("bytes", (max * 512).max(64 << 20));
    let mut md = String::new();
    let _ = write!(md, "| element | container | payload (B) |");
    for &n in counts {
        let _ = write!(md, " B/element at {} |", human(n));
    }
    let _ = write!(md, "\n|---|---|--:|");
    for _ in counts {
        let _ = write!(md, "--:|");
    }
    md.push('\n');
    for kind in Kind::ALL {
        for build in Build::ALL {
            let _ = write!(
                md,
                "| {} | {} | {} |",
                kind.label(),
                build.label(),
                kind.payload()
            );
            for &n in counts {
                let per = arena_bytes(&store, kind, build, n) as f64 / n as f64;
                let _ = write!(md, " {per:.1} |");
            }
            md.push('\n');
        }
    }
    let empty_list = arena_bytes(&store, Kind::Int, Build::ListAtOnce, 0);
    let empty_dict = arena_bytes(&store, Kind::Int, Build::DictAtOnce, 0);
    let _ = writeln!(
        md,
        "\nEmpty containers: a list takes {empty_list} B of arena, a dict {empty_dict} B \
         (included in the figures above, spread over the elements). Dict figures count the key \
         and the value, both the element. `bytes_in_use` counts allocated blocks with their \
         headers; free space inside a list's or dict's spare capacity is counted too."
    );
    md
}

fn main() {
    let quick = floor::quick_mode();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
        .configure_from_args();

    let (sizes, live, counts): (&[usize], &[usize], &[usize]) = if quick {
        (&[10, 1_000], &[0, 1_000], &[1_000])
    } else {
        (
            &[10, 1_000, 100_000, 10_000_000],
            &[0, 10_000, 100_000, 1_000_000],
            &[1_000, 100_000, 1_000_000],
        )
    };

    let filter = name_filter();
    let filter = filter.as_deref();
    let load_before = load_average();

    // The bytes table is measured unless a name filter leaves it out ("bytes" selects it alone).
    let table = wanted(filter, &["bytes".to_owned()]).then(|| bytes_per_element(counts));
    if let Some(table) = &table {
        println!("\nArena bytes per element (Store::stats().bytes_in_use, after − before):\n");
        println!("{table}");
    }

    let mut notes = String::new();
    bench_sizes(&mut c, sizes, filter, &mut notes);
    bench_live(&mut c, live, filter, &mut notes);
    c.final_summary();
    let _ = writeln!(
        notes,
        "- load average (1, 5, 15 min) at the start: {load_before}; at the end: {}",
        load_average()
    );
    println!("\nSetup:\n{notes}");

    let Some(table) = table else {
        return;
    };
    let smoke = if quick {
        " (smoke run: small sizes)"
    } else {
        ""
    };
    let mut md = format!("# shmstore scaling: arena bytes per element{smoke}\n\n");
    md.push_str(&table);
    let _ = write!(md, "\n## Setup of the timed runs{smoke}\n\n{notes}");
    let path = floor::target_dir().join("scaling.md");
    match std::fs::write(&path, md) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// The first three fields of `/proc/loadavg`, or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}
