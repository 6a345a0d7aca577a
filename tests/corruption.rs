//! Scribbled memory: random bytes written over a store's header, object table and object
//! bodies. Every call then returns `Ok` or a typed error — never a panic, a hang or a crash —
//! and `check` reports damage it can see.
//!
//! Each case copies the bytes of one valid store (the *image*) into a fresh segment, scribbles
//! on the copy with a seeded generator, opens it and works on it: check, stats, every bound
//! object's methods, unbinding (which frees objects), check again. A panic becomes a test
//! failure naming the seed; a case that makes no progress for a minute aborts the run with its
//! seed printed (a hang).
//!
//! Lock words (the arena lock and each slot's robust mutex) are left alone: a scribbled lock
//! word reads as a lock held by some thread, which no lock can tell from a real holder, so a
//! caller waits for it as for any held lock (`check` waits a bounded time and reports the
//! object as busy; an ordinary call waits). That is a limitation of any process-shared lock, not
//! something this test can check.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{unique, Cleanup};
use shmstore::arena::{Arena, Offset};
use shmstore::header::{Header, LOCK_OFF};
use shmstore::table::{BODY_AT, LOCK_BYTES, SLOT_SIZE};
use shmstore::{Error, Proxy, Store, Value};

const SIZE: usize = 128 << 10;

/// A small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A valid store's bytes, and where its parts lie.
struct Image {
    bytes: Vec<u8>,
    hdr: Header,
    /// Byte ranges a scribble may hit, per target.
    header: Vec<(u64, u64)>,
    table: Vec<(u64, u64)>,
    bodies: Vec<(u64, u64)>,
    /// (list body offset, its length == capacity) of the list bound as "l".
    list_body: u64,
    list_len: u64,
    /// The table block of the dict bound as "d".
    dict_table: u64,
}

fn long(s: &str) -> Value {
    Value::from(format!("{s}, a string long enough to need a block"))
}

/// Builds the image: objects of several types bound by name, nested values, a proxy inside a
/// list, long strings and bytes in blocks.
fn make_image() -> Image {
    let name = unique("image");
    let _c = Cleanup(name.clone());
    let store = Store::builder()
        .max_objects(32)
        .create(&name, SIZE)
        .unwrap();
    {
        let inner = store.list([1, 2, 3]).unwrap();
        let items = vec![
            Value::from(0),
            long("first"),
            Value::Bytes(b"bytes long enough to live in a block".to_vec()),
            Value::Float(2.5),
            Value::None,
            Value::Bool(true),
            Value::List(vec![1.into(), long("nested"), Value::Tuple(vec![3.into()])]),
            Value::Dict(vec![(Value::from("k"), long("v"))]),
            Value::from(&inner),
            Value::from("short"),
        ];
        let l = store.list(items).unwrap();
        let d = store
            .dict((0..30).map(|i| {
                let k = if i % 3 == 0 {
                    Value::from(i)
                } else {
                    Value::from(format!("key number {i} of the dict"))
                };
                (
                    k,
                    if i % 2 == 0 {
                        long("value")
                    } else {
                        Value::from(i)
                    },
                )
            }))
            .unwrap();
        let s = store.set((0..20).map(|i| format!("member {i}"))).unwrap();
        let v = store.value(long("value object")).unwrap();
        for (n, p) in [
            ("l", Proxy::from(l)),
            ("inner", Proxy::from(inner)),
            ("d", Proxy::from(d)),
            ("s", Proxy::from(s)),
            ("v", Proxy::from(v)),
        ] {
            store.bind(n, &p).unwrap();
        }
    }
    let r = store.check().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    let raw = shmstore::segment::open(&name).unwrap();
    let mut bytes = vec![0u8; SIZE];
    raw.copy_out(0, &mut bytes).unwrap();
    let hdr: Header = raw.read(Offset::new(0)).unwrap();
    let lock = (LOCK_OFF, LOCK_OFF + LOCK_BYTES as u64);
    let header = vec![(0, lock.0), (lock.1, hdr.table_off)];
    // Every slot ever used (the never-used ones are zeroes nothing reads).
    let used = u64::from(
        raw.atomic_u32(shmstore::header::SLOT_UNUSED_OFF)
            .unwrap()
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(used, 5);
    let table = (0..used)
        .map(|s| {
            let off = hdr.table_off + s * SLOT_SIZE;
            (off + LOCK_BYTES as u64, off + SLOT_SIZE)
        })
        .collect();
    let heap = shmstore::alloc::Heap::open(&raw, hdr.alloc_off).unwrap();
    let bodies = heap
        .blocks()
        .unwrap()
        .into_iter()
        .filter(|b| b.2)
        .map(|(off, usable, _)| (off - 16, off + usable))
        .collect();
    let body_of = |name: &str| {
        let slot = store.lookup(name).unwrap().token().slot;
        raw.load_u64(hdr.table_off + u64::from(slot) * SLOT_SIZE + BODY_AT)
            .unwrap()
    };
    let list_body = body_of("l");
    let list_len = raw.load_u64(list_body).unwrap();
    assert_eq!(list_len, raw.load_u64(list_body + 8).unwrap(), "len == cap");
    let dict_table = raw.load_u64(body_of("d")).unwrap();
    Image {
        bytes,
        hdr,
        header,
        table,
        bodies,
        list_body,
        list_len,
        dict_table,
    }
}

/// A fresh segment holding the image's bytes.
fn copy_of(img: &Image, name: &str) -> Arena {
    let a = shmstore::segment::create(name, SIZE, 0o600).unwrap();
    a.copy_in(0, &img.bytes).unwrap();
    a
}

/// A u64 a scribble writes: values that tend to matter (0, 1, all ones, offsets in and near
/// the arena, small counts) as well as noise.
fn word(rng: &mut Rng, img: &Image) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => rng.below(64),
        4 => rng.below(SIZE as u64 + 64),
        5 => img.hdr.heap_start + rng.below(img.hdr.heap_end - img.hdr.heap_start) / 16 * 16,
        6 => 1 << rng.below(64),
        _ => rng.next(),
    }
}

/// Writes 1 to 3 scribbles into `a`, each inside a range of `ranges`.
fn scribble(rng: &mut Rng, img: &Image, a: &Arena, ranges: &[(u64, u64)]) {
    for _ in 0..1 + rng.below(3) {
        let (lo, hi) = ranges[rng.below(ranges.len() as u64) as usize];
        if rng.below(2) == 0 && hi - lo >= 8 {
            let off = (lo + rng.below(hi - lo - 7)) / 8 * 8;
            if off >= lo {
                a.store_u64(off, word(rng, img)).unwrap();
                continue;
            }
        }
        let n = (1 + rng.below(8)).min(hi - lo);
        let off = lo + rng.below(hi - lo - n + 1);
        let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        a.copy_in(off, &bytes).unwrap();
    }
}

fn typed(e: &Error) -> bool {
    // Every variant is typed; what matters is that the call returned. Debug-format it so a
    // broken Display would show up here too.
    !format!("{e:?}").is_empty()
}

/// Works on every bound object of a (possibly scribbled) store; only returns or errs.
fn exercise(store: &Store) {
    let _ = store.stats();
    let _ = store.processes();
    let names = store.names().unwrap_or_default();
    for n in ["l", "inner", "d", "s", "v"]
        .iter()
        .map(|s| s.to_string())
        .chain(names)
    {
        let Ok(p) = store.lookup(&n) else { continue };
        let _ = p.to_str();
        let _ = p.get_value();
        let _ = format!("{p:?}");
        let calls: Vec<(&str, Vec<Value>)> = match p.typeid() {
            "list" => vec![
                ("__len__", vec![]),
                ("__getitem__", vec![0.into()]),
                ("__getitem__", vec![(-1).into()]),
                ("__contains__", vec![long("first")]),
                ("count", vec![0.into()]),
                ("append", vec![long("appended")]),
                ("insert", vec![1.into(), 7.into()]),
                ("__setitem__", vec![0.into(), long("set")]),
                ("pop", vec![]),
                ("pop", vec![0.into()]),
                ("reverse", vec![]),
                ("sort", vec![]),
                ("extend", vec![Value::List(vec![1.into(), long("ext")])]),
            ],
            "dict" => vec![
                ("__len__", vec![]),
                ("get", vec![0.into()]),
                ("__getitem__", vec![Value::from("key number 1 of the dict")]),
                ("__contains__", vec![3.into()]),
                ("__setitem__", vec![100.into(), long("new")]),
                ("__setitem__", vec![0.into(), 5.into()]),
                ("__delitem__", vec![3.into()]),
                (
                    "pop",
                    vec![Value::from("key number 2 of the dict"), Value::None],
                ),
                ("keys", vec![]),
                ("items", vec![]),
                ("popitem", vec![]),
                (
                    "update",
                    vec![Value::Dict(
                        (200..230).map(|i| (i.into(), i.into())).collect(),
                    )],
                ),
            ],
            "set" => vec![
                ("__len__", vec![]),
                ("__contains__", vec![Value::from("member 3")]),
                ("add", vec![Value::from("a new member")]),
                ("discard", vec![Value::from("member 4")]),
                ("pop", vec![]),
                (
                    "update",
                    vec![Value::List((0..30).map(Value::from).collect())],
                ),
            ],
            _ => vec![("get", vec![]), ("set", vec![long("new value")])],
        };
        for (m, args) in calls {
            if let Err(e) = p.call_method(m, args) {
                assert!(typed(&e));
            }
        }
        let _ = p.to_str();
    }
    let _ = store.reclaim();
    let _ = store.check();
    // Unbinding frees objects: drop hooks on scribbled bodies.
    for n in ["s", "d", "l", "inner", "v"] {
        let _ = store.unbind(n);
    }
    let _ = store.check();
    let _ = store.stats();
    // The allocator still serves (or says why not).
    let _ = store.list([long("after")]);
}

/// Progress for the watchdog: (case number, seed of the case running).
static PROGRESS: AtomicU64 = AtomicU64::new(0);
static SEED: AtomicU64 = AtomicU64::new(0);

/// Aborts the run, naming the seed, if a case makes no progress for a minute.
fn watchdog() {
    std::thread::spawn(|| {
        let mut last = (u64::MAX, Instant::now());
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let p = PROGRESS.load(Ordering::Relaxed);
            if p != last.0 {
                last = (p, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(60) {
                eprintln!(
                    "corruption case {p} (seed {:#x}) hangs",
                    SEED.load(Ordering::Relaxed)
                );
                std::process::abort();
            }
        }
    });
}

fn run_cases(target: &str, cases: u64, seed0: u64, pick: impl Fn(&Image) -> &[(u64, u64)]) {
    let img = make_image();
    watchdog();
    let mut outcomes = [0u64; 3]; // open failed, opened and check clean, opened and check found damage
    for case in 0..cases {
        let seed = seed0 ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d);
        SEED.store(seed, Ordering::Relaxed);
        PROGRESS.fetch_add(1, Ordering::Relaxed);
        let name = unique(target);
        let _c = Cleanup(name.clone());
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut rng = Rng(seed);
            let a = copy_of(&img, &name);
            scribble(&mut rng, &img, &a, pick(&img));
            drop(a);
            let tool = Store::open_unattached(&name);
            let report = tool.as_ref().ok().map(|t| t.check());
            match Store::open(&name) {
                Err(e) => {
                    assert!(typed(&e));
                    0
                }
                Ok(store) => {
                    exercise(&store);
                    match report {
                        Some(Ok(r)) if r.is_ok() => 1,
                        _ => 2,
                    }
                }
            }
        }));
        match r {
            Ok(k) => outcomes[k] += 1,
            Err(_) => panic!("{target} case {case}: seed {seed:#x} panicked"),
        }
    }
    println!(
        "{target}: {cases} cases: open refused {}, check clean {}, check found damage {}",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

#[test]
fn scribbled_header_never_panics_or_hangs() {
    run_cases("header", 1500, 0x4ead_0001, |i| &i.header);
}

#[test]
fn scribbled_object_table_never_panics_or_hangs() {
    run_cases("table", 1500, 0x7ab1_0002, |i| &i.table);
}

#[test]
fn scribbled_object_bodies_never_panic_or_hang() {
    run_cases("bodies", 3000, 0xb0d1_0003, |i| &i.bodies);
}

/// Damage `check` must see: scribbles whose effect no valid store can show.
#[test]
fn check_reports_a_broken_magic_and_list_and_dict_lengths_past_their_capacity() {
    let img = make_image();
    let mut rng = Rng(0xc4ec_0004);
    for case in 0..200 {
        // The magic word: neither open nor a tool's open accepts the segment.
        let name = unique("magic");
        let _c = Cleanup(name.clone());
        let a = copy_of(&img, &name);
        let i = rng.below(8);
        let mut b = [0u8; 1];
        a.copy_out(i, &mut b).unwrap();
        a.copy_in(i, &[b[0] ^ (1 + rng.below(255)) as u8]).unwrap();
        assert!(
            matches!(Store::open(&name), Err(Error::Corrupt { .. })),
            "case {case}"
        );
        assert!(matches!(
            Store::open_unattached(&name),
            Err(Error::Corrupt { .. })
        ));

        // The list's length, past its capacity.
        let name = unique("listlen");
        let _c = Cleanup(name.clone());
        let a = copy_of(&img, &name);
        let len = match rng.below(3) {
            0 => img.list_len + 1 + rng.below(1000),
            1 => u64::MAX - rng.below(1000),
            _ => img.list_len + 1 + rng.next() % (u64::MAX - img.list_len - 1),
        };
        a.store_u64(img.list_body, len).unwrap();
        let store = Store::open(&name).unwrap();
        let r = store.check().unwrap();
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("length exceeds capacity")),
            "case {case}: len {len:#x}: {:?}",
            r.problems
        );
        let l = shmstore::ListProxy::try_from(store.lookup("l").unwrap()).unwrap();
        assert!(matches!(l.len(), Err(Error::Corrupt { .. })));
        assert!(matches!(l.append(1), Err(Error::Corrupt { .. })));
        // Dropping the last reference to a corrupt list frees what can be freed and reports
        // nothing; the store stays usable.
        drop(l);
        store.unbind("l").unwrap();
        assert_eq!(store.list([1]).unwrap().len().unwrap(), 1);

        // The dict's entry count (its table header's third word), past the table's capacity.
        let name = unique("dictlen");
        let _c = Cleanup(name.clone());
        let a = copy_of(&img, &name);
        let cap = a.load_u64(img.dict_table + 8).unwrap();
        a.store_u64(img.dict_table + 16, cap + 1 + rng.below(u64::MAX - cap - 1))
            .unwrap();
        let store = Store::open(&name).unwrap();
        let r = store.check().unwrap();
        assert!(
            r.problems.iter().any(|p| p.contains("hash table counts")),
            "case {case}: {:?}",
            r.problems
        );
        let d = shmstore::DictProxy::try_from(store.lookup("d").unwrap()).unwrap();
        assert!(matches!(d.len(), Err(Error::Corrupt { .. })));
        assert!(matches!(d.insert(1, 2), Err(Error::Corrupt { .. })));
    }
}
