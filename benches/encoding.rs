//! Our checked value encoding (`Value::encode` / `Value::decode`) against rkyv 0.8 archives
//! (little-endian, aligned, 32-bit offsets, bytecheck), on the same payloads in the same run.
//!
//! `cargo bench --bench encoding` prints the encoded size of each payload in both formats, then
//! times, per payload:
//! - `ours/encode`: [`Value::encode`] into a reused `Vec`;
//! - `rkyv/to_bytes`: `rkyv::to_bytes` (a fresh `AlignedVec`, rkyv's thread-local arena);
//! - `rkyv/to_bytes_reused`: `to_bytes_in_with_alloc` into a reused `AlignedVec` and `Arena`;
//! - `ours/decode`: [`Value::decode`], full validation and an owned `Value`;
//! - `rkyv/from_bytes`: validate with bytecheck and deserialize into an owned value;
//! - `rkyv/access+peek`: validate with bytecheck and read, in place, the length and first item;
//! - `rkyv/access_unchecked+peek`: the same read without validation (a floor, not a safe path).
//!
//! `ours/decode` against `rkyv/from_bytes` is the like-for-like pair for a read that returns the
//! whole value; `rkyv/access+peek` is what an in-place partial read could cost.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rkyv::rancor::Error as RkyvError;
use rkyv::ser::allocator::Arena;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use shmstore::Value;

/// The rkyv mirror of [`Value`], without `Slice` and `Proxy`, which no payload here holds.
#[derive(Archive, Serialize, Deserialize, Debug, PartialEq)]
// A recursive type: the recursive fields omit their derived bounds, and the bounds the `Vec`s
// need are written out instead (as in rkyv's `json_like_schema` example).
#[rkyv(serialize_bounds(
    __S: rkyv::ser::Writer + rkyv::ser::Allocator,
    __S::Error: rkyv::rancor::Source,
))]
#[rkyv(deserialize_bounds(__D::Error: rkyv::rancor::Source))]
#[rkyv(bytecheck(bounds(__C: rkyv::validation::ArchiveContext)))]
enum RValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(#[rkyv(omit_bounds)] Vec<RValue>),
    Tuple(#[rkyv(omit_bounds)] Vec<RValue>),
    Dict(#[rkyv(omit_bounds)] Vec<(RValue, RValue)>),
}

impl RValue {
    /// The mirror of `v`.
    fn of(v: &Value) -> RValue {
        match v {
            Value::None => RValue::None,
            Value::Bool(b) => RValue::Bool(*b),
            Value::Int(i) => RValue::Int(*i),
            Value::Float(f) => RValue::Float(*f),
            Value::Str(s) => RValue::Str(s.clone()),
            Value::Bytes(b) => RValue::Bytes(b.clone()),
            Value::List(items) => RValue::List(items.iter().map(RValue::of).collect()),
            Value::Tuple(items) => RValue::Tuple(items.iter().map(RValue::of).collect()),
            Value::Dict(pairs) => RValue::Dict(
                pairs
                    .iter()
                    .map(|(k, v)| (RValue::of(k), RValue::of(v)))
                    .collect(),
            ),
            other => unreachable!("no payload holds a {}", other.type_name()),
        }
    }
}

/// A figure for one archived item that touches it the way a reader would: a scalar's value, a
/// str's or container's length.
fn scalar(v: &ArchivedRValue) -> u64 {
    match v {
        ArchivedRValue::None => 0,
        ArchivedRValue::Bool(b) => u64::from(*b),
        ArchivedRValue::Int(i) => i.to_native() as u64,
        ArchivedRValue::Float(f) => f.to_native().to_bits(),
        ArchivedRValue::Str(s) => s.len() as u64,
        ArchivedRValue::Bytes(b) => b.len() as u64,
        ArchivedRValue::List(items) | ArchivedRValue::Tuple(items) => items.len() as u64,
        ArchivedRValue::Dict(pairs) => pairs.len() as u64,
    }
}

/// Reads a partial view in place: the length and the first item (first byte of a str, first key
/// of a dict).
fn peek(v: &ArchivedRValue) -> (usize, u64) {
    match v {
        ArchivedRValue::Str(s) => (s.len(), s.as_bytes().first().map_or(0, |&b| u64::from(b))),
        ArchivedRValue::Bytes(b) => (b.len(), b.first().map_or(0, |&b| u64::from(b))),
        ArchivedRValue::List(items) | ArchivedRValue::Tuple(items) => {
            (items.len(), items.first().map_or(0, scalar))
        }
        ArchivedRValue::Dict(pairs) => (pairs.len(), pairs.first().map_or(0, |p| scalar(&p.0))),
        other => (0, scalar(other)),
    }
}

/// The payloads, named.
fn payloads() -> Vec<(&'static str, Value)> {
    let str100 = Value::from("x".repeat(100));
    let list10 = Value::from((0..10).collect::<Vec<i64>>());
    let mixed100 = Value::List(
        (0..100i64)
            .map(|i| match i % 5 {
                0 => Value::Int(i * 1000),
                1 => Value::Float(i as f64 / 3.0),
                2 => Value::Bool(i % 2 == 0),
                3 => Value::None,
                _ => Value::from(format!("s{i}")),
            })
            .collect(),
    );
    let dict10 = Value::dict_from_pairs((0..10).map(|i| (format!("key{i}"), i))).unwrap();
    let nested = Value::List(
        (0..4)
            .map(|a| {
                Value::List(
                    (0..4)
                        .map(|b| {
                            Value::from((0..4).map(|c| a * 16 + b * 4 + c).collect::<Vec<i64>>())
                        })
                        .collect(),
                )
            })
            .collect(),
    );
    vec![
        ("str100", str100),
        ("list10_int", list10),
        ("list100_mixed", mixed100),
        ("dict10_str_int", dict10),
        ("nested_4x4x4_int", nested),
    ]
}

fn bench_encoding(c: &mut Criterion) {
    let payloads = payloads();

    // Sizes and round trips, checked once, outside any timing.
    println!("encoded sizes (bytes): payload, ours, rkyv");
    for (name, value) in &payloads {
        let mut ours = Vec::new();
        value.encode(&mut ours).unwrap();
        assert_eq!(Value::decode(&ours).unwrap().repr(), value.repr());
        let mirror = RValue::of(value);
        let archived = rkyv::to_bytes::<RkyvError>(&mirror).unwrap();
        assert_eq!(
            rkyv::from_bytes::<RValue, RkyvError>(&archived).unwrap(),
            mirror
        );
        println!("size {name}: {} {}", ours.len(), archived.len());
    }

    for (name, value) in &payloads {
        let mirror = RValue::of(value);
        let mut ours = Vec::new();
        value.encode(&mut ours).unwrap();
        let archived = rkyv::to_bytes::<RkyvError>(&mirror).unwrap();

        let mut g = c.benchmark_group(format!("encoding/{name}"));
        let mut buf = Vec::new();
        g.bench_function("ours/encode", |b| {
            b.iter(|| {
                buf.clear();
                black_box(value).encode(&mut buf).unwrap();
                black_box(buf.len())
            })
        });
        g.bench_function("rkyv/to_bytes", |b| {
            b.iter(|| rkyv::to_bytes::<RkyvError>(black_box(&mirror)).unwrap())
        });
        let mut out = AlignedVec::<16>::new();
        let mut arena = Arena::new();
        g.bench_function("rkyv/to_bytes_reused", |b| {
            b.iter(|| {
                out.clear();
                rkyv::api::high::to_bytes_in_with_alloc::<_, _, RkyvError>(
                    black_box(&mirror),
                    &mut out,
                    arena.acquire(),
                )
                .unwrap();
                black_box(out.len())
            })
        });
        g.bench_function("ours/decode", |b| {
            b.iter(|| Value::decode(black_box(&ours)).unwrap())
        });
        g.bench_function("rkyv/from_bytes", |b| {
            b.iter(|| rkyv::from_bytes::<RValue, RkyvError>(black_box(&archived)).unwrap())
        });
        g.bench_function("rkyv/access+peek", |b| {
            b.iter(|| {
                let root = rkyv::access::<ArchivedRValue, RkyvError>(black_box(&archived)).unwrap();
                peek(root)
            })
        });
        g.bench_function("rkyv/access_unchecked+peek", |b| {
            b.iter(|| {
                // SAFETY: `archived` is what `rkyv::to_bytes` wrote for an `RValue`, in an
                // `AlignedVec`, and `rkyv::access` validated it above.
                let root =
                    unsafe { rkyv::access_unchecked::<ArchivedRValue>(black_box(&archived)) };
                peek(root)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench_encoding);
criterion_main!(benches);
