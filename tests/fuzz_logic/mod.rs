//! The fuzz targets' logic, shared by the cargo-fuzz binaries in `fuzz/fuzz_targets/` (which
//! include this file with `#[path]`) and by `tests/fuzz_replay.rs`, which replays the committed
//! seed corpus and every regression input through the same functions on stable Rust.
//!
//! Each function takes the raw fuzzer input and panics only when an invariant fails — a real bug:
//! a panic inside shmstore, a wrong result, an error where none is due (`Corrupt` on a sound
//! store), leaked arena memory, a broken allocator. Anything the input cannot be decoded into
//! (too short, …) simply ends the run.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Result as AResult, Unstructured};
use shmstore::{type_ids, Error, Proxy, Slice, Store, Token, Value};

// ---------------------------------------------------------------------------------------------
// Helpers

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A segment name unique to this process and call (at most 30 bytes).
fn seg_name(tag: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("fz{}-{tag}-{n}", std::process::id())
}

/// Removes a segment when dropped, so a failed run leaves nothing in /dev/shm.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Store::remove(&self.0);
    }
}

/// Whether `FUZZ_TRACE` is set: the targets then print what they do (for a failing input).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

/// Errors a sound store may give for some input; anything else (`Corrupt`, `Os`, …) is a bug.
fn expected_error(e: &Error) -> bool {
    !matches!(
        e,
        Error::Corrupt { .. } | Error::Os { .. } | Error::Incompatible { .. } | Error::OwnerDied
    )
}

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    -2,
    7,
    100,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
    1 << 32,
    -(1 << 40),
];
const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    0.5,
    -1.5,
    1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
];
const STRS: &[&str] = &[
    "",
    "a",
    "b",
    "get",
    "value",
    "x",
    "__len__",
    "block",
    "timeout",
    "reverse",
    "key",
    "é",
    "a string longer than sixteen bytes",
];

/// How values are drawn.
#[derive(Clone, Copy)]
struct ValueGen<'t> {
    /// Tokens a `Value::Proxy` may name.
    tokens: &'t [Token],
    /// NaN allowed (not in the model target: a NaN is never equal to itself).
    nan: bool,
}

impl ValueGen<'_> {
    fn int(&self, u: &mut Unstructured<'_>) -> AResult<i64> {
        if u.ratio(3, 4)? {
            Ok(*u.choose(INTS)?)
        } else {
            i64::arbitrary(u)
        }
    }

    fn value(&self, u: &mut Unstructured<'_>, depth: u32) -> AResult<Value> {
        let kinds = if depth >= 2 { 8 } else { 12 };
        Ok(match u.choose_index(kinds)? {
            0 => Value::None,
            1 => Value::Bool(bool::arbitrary(u)?),
            2 | 3 => Value::Int(self.int(u)?),
            4 => {
                let f = *u.choose(FLOATS)?;
                Value::Float(if f.is_nan() && !self.nan { 2.5 } else { f })
            }
            5 => {
                if u.ratio(3, 4)? {
                    Value::Str((*u.choose(STRS)?).to_owned())
                } else {
                    let n = u.int_in_range(0..=40)?;
                    Value::Str(String::from_utf8_lossy(u.bytes(n)?).into_owned())
                }
            }
            6 => {
                let n = u.int_in_range(0..=24)?;
                Value::bytes(u.bytes(n)?)
            }
            7 => {
                if self.tokens.is_empty() || u.ratio(1, 4)? {
                    Value::Slice(Slice::from_options(
                        self.opt_int(u)?,
                        self.opt_int(u)?,
                        self.opt_int(u)?,
                    ))
                } else {
                    Value::Proxy(*u.choose(self.tokens)?)
                }
            }
            8 => Value::List(self.values(u, depth + 1, 4)?),
            9 => Value::Tuple(self.values(u, depth + 1, 4)?),
            10 => {
                // Built as a user could build one: duplicate or unhashable keys included.
                let n = u.int_in_range(0..=3)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    pairs.push((self.value(u, depth + 1)?, self.value(u, depth + 1)?));
                }
                Value::Dict(pairs)
            }
            _ => Value::Int(self.int(u)?),
        })
    }

    fn opt_int(&self, u: &mut Unstructured<'_>) -> AResult<Option<i64>> {
        Ok(if bool::arbitrary(u)? {
            Some(if u.ratio(3, 4)? {
                u.int_in_range(-6..=6)?
            } else {
                self.int(u)?
            })
        } else {
            None
        })
    }

    fn values(&self, u: &mut Unstructured<'_>, depth: u32, max: usize) -> AResult<Vec<Value>> {
        let n = u.int_in_range(0..=max)?;
        (0..n).map(|_| self.value(u, depth)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// dispatch

/// Owned keyword arguments.
type Kwargs<'a> = Vec<(&'a str, Value)>;

/// Python's truth value of an argument (`bool(v)`).
fn truthy(v: &Value) -> bool {
    match v {
        Value::None => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Bytes(b) => !b.is_empty(),
        Value::List(xs) | Value::Tuple(xs) => !xs.is_empty(),
        Value::Dict(kv) => !kv.is_empty(),
        Value::Slice(_) | Value::Proxy(_) => true,
    }
}

/// The longest wait a rewritten call may make, in seconds.
const MAX_WAIT: f64 = 0.01;

/// Whether a timeout argument bounds a wait by [`MAX_WAIT`]: a number of at most that many
/// seconds (negative or NaN: no wait, or a typed error) other than `-1` (the C locks' "no
/// limit"), or a value that is not a number at all (a `TypeError` before or instead of the
/// wait). `None` means no limit; `True` is one second.
fn bounded_timeout(v: &Value) -> bool {
    let secs = match v {
        Value::None => return false,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => return true,
    };
    secs.is_nan() || (secs <= MAX_WAIT && secs != -1.0)
}

/// Makes a call to a blocking method of a sync type wait at most [`MAX_WAIT`]: its timeout
/// argument (positional at `at`, else the `timeout` keyword) is replaced by 1 ms unless it is
/// already bounded, and added when absent. `blocking_at`: the position of a `blocking`
/// argument; a false one (or one that is not an integer, for the C locks: a `TypeError`)
/// never waits, so its call is left as the fuzzer made it — a timeout added to it would only
/// turn it into a `ValueError`.
fn bound_wait(args: &mut [Value], kwargs: &mut Kwargs<'_>, at: usize, blocking_at: Option<usize>) {
    if let Some(b) = blocking_at {
        let blocking = args.get(b).or_else(|| {
            kwargs
                .iter()
                .find(|(k, _)| *k == "blocking")
                .map(|(_, v)| v)
        });
        if blocking.is_some_and(|v| !truthy(v)) {
            return;
        }
    }
    let short = Value::Float(0.001);
    if let Some(v) = args.get_mut(at) {
        if !bounded_timeout(v) {
            *v = short;
        }
    } else if let Some((_, v)) = kwargs.iter_mut().find(|(k, _)| *k == "timeout") {
        if !bounded_timeout(v) {
            *v = short;
        }
    } else {
        kwargs.push(("timeout", short));
    }
}

/// Rewrites a call that could block forever into its non-blocking or briefly waiting form;
/// `None` skips it.
///
/// - `Queue.get`/`put`: `block=False` (positional extras beyond the item are dropped, as are
///   the caller's `block`/`timeout` keywords).
/// - `JoinableQueue.join`: skipped (it waits for every `task_done`).
/// - `acquire`/`__enter__` of `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore` and
///   `Condition`, and `wait` of `Condition`, `Event` and `Barrier`: a timeout of at most
///   [`MAX_WAIT`] (see [`bound_wait`]). A lock this thread holds, a semaphore at zero, an
///   unset event then time out (`False`); a barrier of more than one party breaks
///   (`BrokenBarrier`, and every later `wait` fails at once until `reset`); a condition not
///   held refuses `wait` and `notify` (`RuntimeError`). All typed.
fn unblock<'a>(
    type_id: u16,
    method: &str,
    mut args: Vec<Value>,
    mut kwargs: Vec<(&'a str, Value)>,
) -> Option<(Vec<Value>, Kwargs<'a>)> {
    if type_id == type_ids::LIST && (method == "__mul__" || method == "__rmul__") {
        // `l * n` builds its result in this process's memory, as CPython does: a count in the
        // billions exhausts it (MemoryError there; here `OutOfMemory` when malloc says no, but
        // AddressSanitizer aborts on such a request instead), so counts are kept small.
        let small = |v: &mut Value| {
            if let Value::Int(n) = v {
                *n %= 1000;
            }
        };
        args.iter_mut().for_each(small);
        kwargs.iter_mut().for_each(|(_, v)| small(v));
    }
    let acquire = method == "acquire" || method == "__enter__";
    match type_id {
        type_ids::LOCK
        | type_ids::RLOCK
        | type_ids::SEMAPHORE
        | type_ids::BOUNDED_SEMAPHORE
        | type_ids::CONDITION
            if acquire =>
        {
            bound_wait(&mut args, &mut kwargs, 1, Some(0));
            return Some((args, kwargs));
        }
        type_ids::CONDITION | type_ids::EVENT | type_ids::BARRIER if method == "wait" => {
            bound_wait(&mut args, &mut kwargs, 0, None);
            return Some((args, kwargs));
        }
        _ => {}
    }
    let queue = type_id == type_ids::QUEUE || type_id == type_ids::JOINABLE_QUEUE;
    if !queue {
        return Some((args, kwargs));
    }
    match method {
        "join" => None,
        "get" | "put" => {
            args.truncate(usize::from(method == "put"));
            kwargs.retain(|(k, _)| *k != "block" && *k != "timeout");
            kwargs.push(("block", Value::Bool(false)));
            Some((args, kwargs))
        }
        _ => Some((args, kwargs)),
    }
}

const KW_NAMES: &[&str] = &[
    "block", "blocking", "timeout", "reverse", "key", "default", "item", "value", "index", "x",
    "i", "n", "other", "iterable",
];

/// `dispatch`: arbitrary calls — a method from the type's table or a random name, arbitrary
/// positional values (proxies to live objects and forged tokens among them), optional keywords —
/// on live objects of every built-in type. Each call gives Ok or a typed error; afterwards the
/// store checks clean and, once everything is dropped, holds no more memory or objects than
/// before.
pub fn dispatch(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let name = seg_name("d");
    let _c = Cleanup(name.clone());
    let Ok(store) = Store::builder().max_objects(256).create(&name, 1 << 20) else {
        return; // The environment (say /dev/shm full), not the input.
    };
    let base = store.stats().expect("stats");
    {
        // Leaves: objects that are only ever stored, never called, so a stored proxy can never
        // close a reference cycle (which refcounting cannot free, by design).
        let leaf_list = store.list([1, 2]).expect("leaf list");
        let leaf_value = store.value(5).expect("leaf value");
        let mut tokens = vec![leaf_list.token(), leaf_value.token()];
        // Forged tokens: another store, a free slot, a stale generation, a wrong type.
        let t = leaf_list.token();
        tokens.push(Token {
            store: t.store ^ 1,
            ..t
        });
        tokens.push(Token { slot: 200, ..t });
        tokens.push(Token {
            generation: t.generation.wrapping_add(1),
            ..t
        });
        tokens.push(Token {
            type_id: type_ids::DICT,
            ..t
        });

        let objects: Vec<Proxy> = vec![
            store
                .list([Value::from(1), Value::from("a")])
                .expect("list")
                .into(),
            store.dict([("k", 1)]).expect("dict").into(),
            store.set([1, 2, 3]).expect("set").into(),
            store.value(3).expect("value").into(),
            store.array::<i64>(vec![1, 2, 3]).expect("array").into(),
            store.namespace().expect("namespace").into(),
            store.queue(0).expect("queue").into(),
            store.queue(2).expect("bounded queue").into(),
            store.joinable_queue(0).expect("joinable queue").into(),
            store.lock().expect("lock").into(),
            store.rlock().expect("rlock").into(),
            store.semaphore(0).expect("semaphore at zero").into(),
            store.semaphore(2).expect("semaphore").into(),
            store
                .bounded_semaphore(1)
                .expect("bounded semaphore")
                .into(),
            store.condition().expect("condition").into(),
            store.event().expect("event").into(),
            store.barrier(1).expect("barrier of one").into(),
            store
                .barrier_with(2, Some(std::time::Duration::from_millis(1)))
                .expect("barrier of two")
                .into(),
        ];
        let gen = ValueGen {
            tokens: &tokens,
            nan: true,
        };
        for _ in 0..64 {
            if u.is_empty() {
                break;
            }
            let Ok(obj) = u.choose(&objects) else { break };
            let ty = obj.token().type_id;
            let methods = shmstore::dispatch::type_desc(ty)
                .expect("type desc")
                .methods;
            let method: String = match u.choose_index(8) {
                Ok(0) => {
                    let n = u.int_in_range(0..=12).unwrap_or(0);
                    String::from_utf8_lossy(u.bytes(n).unwrap_or(&[])).into_owned()
                }
                Ok(_) => match u.choose(methods) {
                    Ok(m) => m.name.to_owned(),
                    Err(_) => break,
                },
                Err(_) => break,
            };
            let Ok(args) = gen.values(&mut u, 0, 4) else {
                break;
            };
            let mut kwargs = Vec::new();
            if u.ratio(1, 4).unwrap_or(false) {
                for _ in 0..u.int_in_range(1..=2).unwrap_or(1) {
                    let (Ok(k), Ok(v)) = (u.choose(KW_NAMES), gen.value(&mut u, 1)) else {
                        break;
                    };
                    kwargs.push((*k, v));
                }
            }
            let Some((args, kwargs)) = unblock(ty, &method, args, kwargs) else {
                continue;
            };
            let r = obj.call_method_kw(&method, args.clone(), &kwargs);
            if trace() {
                eprintln!(
                    "{}#{}.{method}({args:?}, {kwargs:?}) -> {r:?}",
                    obj.typeid(),
                    obj.token().slot
                );
            }
            match r {
                Ok(_) => {}
                Err(e) => assert!(
                    expected_error(&e),
                    "{}.{method}({args:?}, {kwargs:?}) gave {e:?}",
                    obj.typeid()
                ),
            }
        }
        for obj in &objects {
            if let Err(e) = obj.get_value() {
                panic!("get_value of {} failed: {e:?}", obj.typeid());
            }
            if let Err(e) = obj.to_str() {
                panic!("str of {} failed: {e:?}", obj.typeid());
            }
        }
        let report = store.check().expect("check");
        assert!(report.is_ok(), "check after calls: {:?}", report.problems);
    }
    let after = store.stats().expect("stats");
    assert_eq!(after.objects_live, base.objects_live, "objects leaked");
    assert_eq!(
        after.blocks_in_use, base.blocks_in_use,
        "arena blocks leaked"
    );
    // Bytes may differ by less than a minimum block: the process table's holdings block grows
    // while many proxies live and is remade at its small size when they are gone, and the
    // allocator hands out a whole free block when the rest would be under 32 bytes (found by
    // this target: `tests/fuzz_regressions/dispatch/leak-16-bytes`, 288 against 272).
    assert!(
        after.bytes_in_use >= base.bytes_in_use && after.bytes_in_use - base.bytes_in_use < 32,
        "arena memory leaked: {} bytes in use, {} at the start",
        after.bytes_in_use,
        base.bytes_in_use
    );
    // The definition of a leak: a block nothing reaches. Mark and sweep must find none.
    let swept = store.repair().expect("repair");
    assert_eq!(swept.freed_blocks, 0, "unreachable blocks: {swept:?}");
    let report = store.check().expect("check");
    assert!(report.is_ok(), "check after drop: {:?}", report.problems);
}

// ---------------------------------------------------------------------------------------------
// ops_model

/// A value for the model target: no NaN, no proxies.
#[derive(Debug, Clone)]
pub struct MV(pub Value);

impl<'a> Arbitrary<'a> for MV {
    fn arbitrary(u: &mut Unstructured<'a>) -> AResult<Self> {
        let gen = ValueGen {
            tokens: &[],
            nan: false,
        };
        // Small, mostly scalar: collisions between keys are what exercise the containers.
        Ok(MV(match u.choose_index(10)? {
            0..=3 => Value::Int(u.int_in_range(-4..=4)?),
            4 => Value::Bool(bool::arbitrary(u)?),
            5 => Value::Float(f64::from(u.int_in_range(-4i8..=4)?) / 2.0),
            6 => Value::Str((*u.choose(&["", "a", "b", "a string longer than sixteen"])?).into()),
            7 => Value::Tuple(vec![Value::Int(u.int_in_range(0..=2)?)]),
            8 => Value::List(vec![Value::Int(u.int_in_range(0..=2)?)]),
            // Anything else, with dicts made valid (`Value::Dict` built by hand may have
            // unhashable or repeated keys, which the store refuses: not what is modelled here).
            _ => valid_dicts(gen.value(u, 1)?),
        }))
    }
}

/// `v` with every dict rebuilt as `dict(pairs)` builds it, unhashable keys dropped.
fn valid_dicts(v: Value) -> Value {
    match v {
        Value::List(xs) => Value::List(xs.into_iter().map(valid_dicts).collect()),
        Value::Tuple(xs) => Value::Tuple(xs.into_iter().map(valid_dicts).collect()),
        Value::Dict(pairs) => Value::dict_from_pairs(
            pairs
                .into_iter()
                .map(|(k, v)| (valid_dicts(k), valid_dicts(v)))
                .filter(|(k, _)| k.py_hash().is_ok()),
        )
        .unwrap_or(Value::None),
        v => v,
    }
}

fn vals(xs: &[MV]) -> Vec<Value> {
    xs.iter().map(|x| x.0.clone()).collect()
}

/// A list operation.
#[derive(Debug, Arbitrary)]
pub enum ListOp {
    Append(MV),
    Insert(i8, MV),
    Pop(Option<i8>),
    Get(i8),
    Set(i8, MV),
    Del(i8),
    Remove(MV),
    Index(MV),
    Count(MV),
    Contains(MV),
    GetSlice(Option<i8>, Option<i8>, Option<i8>),
    SetSlice(Option<i8>, Option<i8>, Option<i8>, Vec<MV>),
    DelSlice(Option<i8>, Option<i8>, Option<i8>),
    Extend(Vec<MV>),
    Reverse,
    Sort(bool),
    Clear,
    IMul(i8),
    Len,
}

/// A dict operation.
#[derive(Debug, Arbitrary)]
pub enum DictOp {
    Set(MV, MV),
    Get(MV),
    GetOr(MV, MV),
    GetItem(MV),
    Del(MV),
    Pop(MV),
    PopOr(MV, MV),
    PopItem,
    SetDefault(MV, MV),
    Contains(MV),
    Len,
    Clear,
    Update(Vec<(MV, MV)>),
    Keys,
    Values,
}

/// One step of the model target.
#[derive(Debug, Arbitrary)]
pub enum ModelOp {
    List(ListOp),
    Dict(DictOp),
}

fn norm(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

fn slice(a: &Option<i8>, b: &Option<i8>, c: &Option<i8>) -> Slice {
    Slice::from_options(a.map(i64::from), b.map(i64::from), c.map(i64::from))
}

/// Python's list semantics on a `Vec<Value>`; what `call_method` should return. `None` when the
/// operation is not modelled in this state (sorting values without a total order).
fn list_model(m: &mut Vec<Value>, op: &ListOp) -> Option<Result<Value, Error>> {
    let ierr = |s: &str| Some(Err(Error::IndexError(s.into())));
    match op {
        ListOp::Append(v) => m.push(v.0.clone()),
        ListOp::Insert(i, v) => {
            let (i, len) = (i64::from(*i), m.len() as i64);
            let at = if i < 0 { (i + len).max(0) } else { i.min(len) };
            m.insert(at as usize, v.0.clone());
        }
        ListOp::Pop(i) => {
            if m.is_empty() {
                return ierr("pop from empty list");
            }
            return match norm(i.map_or(-1, i64::from), m.len()) {
                Some(at) => Some(Ok(m.remove(at))),
                None => ierr("pop index out of range"),
            };
        }
        ListOp::Get(i) => {
            return match norm(i64::from(*i), m.len()) {
                Some(at) => Some(Ok(m[at].clone())),
                None => ierr("list index out of range"),
            }
        }
        ListOp::Set(i, v) => match norm(i64::from(*i), m.len()) {
            Some(at) => m[at] = v.0.clone(),
            None => return ierr("list assignment index out of range"),
        },
        ListOp::Del(i) => match norm(i64::from(*i), m.len()) {
            Some(at) => {
                m.remove(at);
            }
            None => return ierr("list assignment index out of range"),
        },
        ListOp::Remove(v) => match m.iter().position(|x| *x == v.0) {
            Some(at) => {
                m.remove(at);
            }
            None => {
                return Some(Err(Error::ValueError(
                    "list.remove(x): x not in list".into(),
                )))
            }
        },
        ListOp::Index(v) => {
            return Some(match m.iter().position(|x| *x == v.0) {
                Some(at) => Ok(Value::Int(at as i64)),
                None => Err(Error::ValueError(format!("{} is not in list", v.0.repr()))),
            })
        }
        ListOp::Count(v) => {
            return Some(Ok(Value::Int(
                m.iter().filter(|x| **x == v.0).count() as i64
            )))
        }
        ListOp::Contains(v) => return Some(Ok(Value::Bool(m.contains(&v.0)))),
        ListOp::Len => return Some(Ok(Value::Int(m.len() as i64))),
        ListOp::GetSlice(a, b, c) => {
            return Some(
                slice(a, b, c)
                    .indices(m.len())
                    .map(|ix| Value::List(ix.iter().map(|i| m[i].clone()).collect())),
            )
        }
        ListOp::SetSlice(a, b, c, xs) => {
            let ix = match slice(a, b, c).indices(m.len()) {
                Ok(ix) => ix,
                Err(e) => return Some(Err(e)),
            };
            if ix.step == 1 {
                let start = ix.start as usize;
                let stop = (ix.stop as usize).max(start);
                m.splice(start..stop, vals(xs));
            } else {
                if xs.len() != ix.len {
                    return Some(Err(Error::ValueError(format!(
                        "attempt to assign sequence of size {} to extended slice of size {}",
                        xs.len(),
                        ix.len
                    ))));
                }
                for (i, x) in ix.iter().zip(xs) {
                    m[i] = x.0.clone();
                }
            }
        }
        ListOp::DelSlice(a, b, c) => {
            let ix = match slice(a, b, c).indices(m.len()) {
                Ok(ix) => ix,
                Err(e) => return Some(Err(e)),
            };
            let gone: Vec<usize> = ix.iter().collect();
            let mut k = 0;
            m.retain(|_| {
                let keep = !gone.contains(&k);
                k += 1;
                keep
            });
        }
        ListOp::Extend(xs) => m.extend(vals(xs)),
        ListOp::Reverse => m.reverse(),
        ListOp::Sort(rev) => {
            // Modelled only for integers: a total order (Python's sort is stable, also
            // with reverse=True).
            if !m.iter().all(|v| matches!(v, Value::Int(_))) {
                return None;
            }
            let key = |v: &Value| v.as_int().unwrap_or(0);
            if *rev {
                m.sort_by_key(|v| std::cmp::Reverse(key(v)));
            } else {
                m.sort_by_key(key);
            }
        }
        ListOp::Clear => m.clear(),
        ListOp::IMul(n) => {
            let n = i64::from(*n).clamp(-1, 3);
            if n <= 0 {
                m.clear()
            } else {
                let orig = m.clone();
                for _ in 1..n {
                    m.extend(orig.iter().cloned());
                }
            }
        }
    }
    Some(Ok(Value::None))
}

fn list_apply(l: &shmstore::ListProxy, op: &ListOp) -> Result<Value, Error> {
    match op {
        ListOp::Append(v) => l.call_method("append", (v.0.clone(),)),
        ListOp::Insert(i, v) => l.call_method("insert", (i64::from(*i), v.0.clone())),
        ListOp::Pop(None) => l.call_method("pop", ()),
        ListOp::Pop(Some(i)) => l.call_method("pop", (i64::from(*i),)),
        ListOp::Get(i) => l.call_method("__getitem__", (i64::from(*i),)),
        ListOp::Set(i, v) => l.call_method("__setitem__", (i64::from(*i), v.0.clone())),
        ListOp::Del(i) => l.call_method("__delitem__", (i64::from(*i),)),
        ListOp::Remove(v) => l.call_method("remove", (v.0.clone(),)),
        ListOp::Index(v) => l.call_method("index", (v.0.clone(),)),
        ListOp::Count(v) => l.call_method("count", (v.0.clone(),)),
        ListOp::Contains(v) => l.call_method("__contains__", (v.0.clone(),)),
        ListOp::Len => l.call_method("__len__", ()),
        ListOp::GetSlice(a, b, c) => l.call_method("__getitem__", (slice(a, b, c),)),
        ListOp::SetSlice(a, b, c, xs) => {
            l.call_method("__setitem__", (slice(a, b, c), Value::List(vals(xs))))
        }
        ListOp::DelSlice(a, b, c) => l.call_method("__delitem__", (slice(a, b, c),)),
        ListOp::Extend(xs) => l.call_method("extend", (Value::List(vals(xs)),)),
        ListOp::Reverse => l.call_method("reverse", ()),
        ListOp::Sort(rev) => l.call_method_kw("sort", (), &[("reverse", Value::Bool(*rev))]),
        ListOp::Clear => l.call_method("clear", ()),
        ListOp::IMul(n) => l
            .call_method("__imul__", (i64::from(*n).clamp(-1, 3),))
            .map(|_| Value::None),
    }
}

/// Python's dict semantics on an insertion-ordered `Vec<(key, value)>`.
fn dict_model(m: &mut Vec<(Value, Value)>, op: &DictOp) -> Result<Value, Error> {
    fn find(m: &[(Value, Value)], k: &Value) -> Result<Option<usize>, Error> {
        k.py_hash()?;
        Ok(m.iter().position(|(x, _)| x == k))
    }
    fn set(m: &mut Vec<(Value, Value)>, k: &Value, v: &Value) -> Result<(), Error> {
        match find(m, k)? {
            Some(i) => m[i].1 = v.clone(),
            None => m.push((k.clone(), v.clone())),
        }
        Ok(())
    }
    let missing = |k: &Value| Err(Error::KeyError(k.clone()));
    match op {
        DictOp::Set(k, v) => set(m, &k.0, &v.0)?,
        DictOp::Get(k) => return Ok(find(m, &k.0)?.map_or(Value::None, |i| m[i].1.clone())),
        DictOp::GetOr(k, d) => return Ok(find(m, &k.0)?.map_or(d.0.clone(), |i| m[i].1.clone())),
        DictOp::GetItem(k) => {
            return match find(m, &k.0)? {
                Some(i) => Ok(m[i].1.clone()),
                None => missing(&k.0),
            }
        }
        DictOp::Del(k) => match find(m, &k.0)? {
            Some(i) => {
                m.remove(i);
            }
            None => return missing(&k.0),
        },
        DictOp::Pop(k) => {
            return match find(m, &k.0)? {
                Some(i) => Ok(m.remove(i).1),
                None => missing(&k.0),
            }
        }
        DictOp::PopOr(k, d) => {
            return Ok(match find(m, &k.0)? {
                Some(i) => m.remove(i).1,
                None => d.0.clone(),
            })
        }
        DictOp::PopItem => {
            return match m.pop() {
                Some((k, v)) => Ok(Value::Tuple(vec![k, v])),
                None => Err(Error::KeyError(Value::Str(
                    "popitem(): dictionary is empty".into(),
                ))),
            }
        }
        DictOp::SetDefault(k, d) => {
            return Ok(match find(m, &k.0)? {
                Some(i) => m[i].1.clone(),
                None => {
                    m.push((k.0.clone(), d.0.clone()));
                    d.0.clone()
                }
            })
        }
        DictOp::Contains(k) => return Ok(Value::Bool(find(m, &k.0)?.is_some())),
        DictOp::Len => return Ok(Value::Int(m.len() as i64)),
        DictOp::Clear => m.clear(),
        DictOp::Update(pairs) => {
            // Pair by pair, as Python: an unhashable key stops the update midway.
            for (k, v) in pairs {
                set(m, &k.0, &v.0)?;
            }
        }
        DictOp::Keys => return Ok(Value::List(m.iter().map(|(k, _)| k.clone()).collect())),
        DictOp::Values => return Ok(Value::List(m.iter().map(|(_, v)| v.clone()).collect())),
    }
    Ok(Value::None)
}

fn dict_apply(d: &shmstore::DictProxy, op: &DictOp) -> Result<Value, Error> {
    match op {
        DictOp::Set(k, v) => d.call_method("__setitem__", (k.0.clone(), v.0.clone())),
        DictOp::Get(k) => d.call_method("get", (k.0.clone(),)),
        DictOp::GetOr(k, x) => d.call_method("get", (k.0.clone(), x.0.clone())),
        DictOp::GetItem(k) => d.call_method("__getitem__", (k.0.clone(),)),
        DictOp::Del(k) => d.call_method("__delitem__", (k.0.clone(),)),
        DictOp::Pop(k) => d.call_method("pop", (k.0.clone(),)),
        DictOp::PopOr(k, x) => d.call_method("pop", (k.0.clone(), x.0.clone())),
        DictOp::PopItem => d.call_method("popitem", ()),
        DictOp::SetDefault(k, x) => d.call_method("setdefault", (k.0.clone(), x.0.clone())),
        DictOp::Contains(k) => d.call_method("__contains__", (k.0.clone(),)),
        DictOp::Len => d.call_method("__len__", ()),
        DictOp::Clear => d.call_method("clear", ()),
        DictOp::Update(pairs) => {
            let pairs = pairs
                .iter()
                .map(|(k, v)| Value::Tuple(vec![k.0.clone(), v.0.clone()]))
                .collect();
            d.call_method("update", (Value::List(pairs),))
        }
        DictOp::Keys => d.keys().map(Value::List),
        DictOp::Values => d.values().map(Value::List),
    }
}

/// `ops_model`: list and dict operations applied to shmstore proxies and to a model
/// (`Vec<Value>`, an insertion-ordered `Vec<(key, value)>`); results, errors and contents must
/// match after every step, and all memory comes back at the end.
pub fn ops_model(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<ModelOp>::arbitrary(&mut u) else {
        return;
    };
    let name = seg_name("m");
    let _c = Cleanup(name.clone());
    let Ok(store) = Store::builder().max_objects(64).create(&name, 1 << 20) else {
        return;
    };
    let base = store.stats().expect("stats");
    {
        let l = store.list(Vec::<Value>::new()).expect("list");
        let d = store.dict(Vec::<(Value, Value)>::new()).expect("dict");
        let mut lm: Vec<Value> = Vec::new();
        let mut dm: Vec<(Value, Value)> = Vec::new();
        for op in ops.iter().take(200) {
            match op {
                // The model has no size limit; the segment has. An operation that runs out of
                // arena memory must change nothing (as CPython's `MemoryError` in a list
                // operation), except that `dict.update` may stop after any pair (as it does on
                // an unhashable key). Found by this target: `*= 3` a few times filled the
                // segment (tests/fuzz_regressions/ops_model/out-of-memory-in-append).
                ModelOp::List(op) => {
                    let before = lm.clone();
                    let Some(want) = list_model(&mut lm, op) else {
                        continue;
                    };
                    let got = list_apply(&l, op);
                    if matches!(got, Err(Error::OutOfMemory { .. })) {
                        lm = before;
                    } else {
                        assert_eq!(got, want, "list op {op:?}");
                    }
                    assert_eq!(l.items_or_panic(), lm, "list after {op:?}");
                }
                ModelOp::Dict(op) => {
                    let before = dm.clone();
                    let want = dict_model(&mut dm, op);
                    let got = dict_apply(&d, op);
                    let items = d.items().expect("items");
                    if matches!(got, Err(Error::OutOfMemory { .. })) {
                        let mut states = vec![before.clone()];
                        if let DictOp::Update(pairs) = op {
                            let mut m = before;
                            for (k, v) in pairs {
                                if dict_model(&mut m, &DictOp::Set(k.clone(), v.clone())).is_err() {
                                    break;
                                }
                                states.push(m.clone());
                            }
                        }
                        assert!(
                            states.contains(&items),
                            "dict after {op:?} ran out of memory: {items:?}"
                        );
                        dm = items;
                    } else {
                        assert_eq!(got, want, "dict op {op:?}");
                        assert_eq!(items, dm, "dict after {op:?}");
                    }
                }
            }
        }
    }
    let after = store.stats().expect("stats");
    assert_eq!(after.objects_live, base.objects_live, "objects leaked");
    assert_eq!(after.bytes_in_use, base.bytes_in_use, "arena memory leaked");
}

trait ItemsOrPanic {
    fn items_or_panic(&self) -> Vec<Value>;
}
impl ItemsOrPanic for shmstore::ListProxy {
    fn items_or_panic(&self) -> Vec<Value> {
        match self.get_value() {
            Ok(Value::List(xs)) => xs,
            other => panic!("list get_value gave {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// arena_bytes

/// A valid segment image and what it holds.
struct Image {
    bytes: Vec<u8>,
    names: Vec<&'static str>,
    tokens: Vec<Token>,
    /// Byte ranges the mutations leave alone (see [`arena_bytes`]).
    protected: Vec<(usize, usize)>,
    /// Offsets of the lock words (the arena lock's, each slot's) the mutations may change,
    /// within the bounds [`bound_locks`] sets; empty when they are protected instead.
    locks: Vec<usize>,
}

const IMAGE_SIZE: usize = 128 << 10;

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let name = seg_name("img");
        let _c = Cleanup(name.clone());
        let store = Store::builder()
            .max_objects(64)
            .create(&name, IMAGE_SIZE)
            .expect("image store");
        let d = store
            .dict([
                (Value::from("a"), Value::from(1)),
                (Value::from(2), Value::from("a string longer than sixteen")),
            ])
            .expect("dict");
        let l = store
            .list(vec![
                Value::from(1),
                Value::from("two"),
                Value::Float(3.0),
                Value::from(&d),
                Value::Tuple(vec![Value::from(1), Value::bytes(*b"xyz")]),
            ])
            .expect("list");
        let q = store.queue(0).expect("queue");
        q.put(Value::from("queued")).expect("put");
        q.put(Value::List(vec![Value::from(1)])).expect("put");
        let ns = store.namespace_with([("x", 1)]).expect("namespace");
        store.bind("l", &l).expect("bind");
        store.bind("d", &d).expect("bind");
        store.bind("q", &q).expect("bind");
        store.bind("ns", &ns).expect("bind");
        let tokens = vec![l.token(), d.token(), q.token(), ns.token()];
        drop((l, d, q, ns));
        let bytes = std::fs::read(format!("/dev/shm/{name}")).expect("read the image");
        assert_eq!(bytes.len(), IMAGE_SIZE);

        // Left alone: the header fields that say where the locks are (moved, the "lock words"
        // would be arbitrary bytes, see `bound_locks`), and the state word (INIT makes `open`
        // wait two seconds for the creator). The lock words themselves are mutated, bounded by
        // `bound_locks`, when the lock is the futex lock; a pthread robust mutex whose word
        // holds a random thread id blocks a locker forever (the kernel is asked to wait for
        // that "owner"), so with it they are left alone too.
        use shmstore::header::{Header, LOCK_OFF, STATE_OFF};
        use shmstore::table::{ObjLock, LOCK_BYTES, SLOT_SIZE};
        let futex = std::any::TypeId::of::<ObjLock>()
            == std::any::TypeId::of::<shmstore::sync::FutexLock>();
        let word = |off: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[off..off + 8]);
            u64::from_le_bytes(w)
        };
        let table_off = word(std::mem::offset_of!(Header, table_off));
        let table_slots = word(std::mem::offset_of!(Header, table_slots));
        let mut protected = vec![
            (
                std::mem::offset_of!(Header, lock_off),
                std::mem::offset_of!(Header, lock_off) + 8,
            ),
            (
                std::mem::offset_of!(Header, table_off),
                std::mem::offset_of!(Header, table_slots) + 8,
            ),
            (STATE_OFF as usize, STATE_OFF as usize + 4),
        ];
        let locks: Vec<usize> = std::iter::once(LOCK_OFF as usize)
            .chain((0..table_slots).map(|i| (table_off + i * SLOT_SIZE) as usize))
            .collect();
        if !futex {
            protected.extend(locks.iter().map(|&off| (off, off + LOCK_BYTES)));
        }
        Image {
            bytes,
            names: vec!["l", "d", "q", "ns", "missing"],
            tokens,
            protected,
            locks: if futex { locks } else { Vec::new() },
        }
    })
}

fn protected(img: &Image, off: usize) -> bool {
    img.protected.iter().any(|&(a, b)| (a..b).contains(&off))
}

/// Lock words whose state a mutation may change, per input.
const MAX_LOCKS_CHANGED: usize = 2;

/// Bounds what mutated futex lock words can do (src/sync/futex.rs: `state` holds the owner's
/// tid in its low 30 bits and INCONSISTENT in bit 30; then the owner record and the waiter
/// count, whose mutations only cost unlocks a `FUTEX_WAKE` that wakes nobody).
///
/// - An owner tid that names a live thread — the fuzzer's own, a thread of any other process
///   (pid 1 is always there) — is a lock held by a live owner, and a locker without a timeout
///   rightly waits for it for ever: every nonzero owner gets bit 22 set, and no task has an id
///   of 2^22 (Linux's `PID_MAX_LIMIT`) or more. The owner is then certainly dead; a waiter
///   takes the lock over (`OwnerDied`, then the type's repair) when its first 100 ms slice
///   runs out. INCONSISTENT and bit 31 stay as the fuzzer set them ("not recoverable"),
///   and so do the owner record's bytes and the waiter count.
/// - Each dead owner costs a waiter that 100 ms slice, so at most [`MAX_LOCKS_CHANGED`] lock
///   words per input keep a changed state (the first ones, in arena order); the others get the
///   image's state back. An input thus stays well under libFuzzer's 10 s `-timeout`.
fn bound_locks(img: &Image, bytes: &mut [u8]) {
    const OWNER: u32 = 0x3fff_ffff;
    const NO_TASK: u32 = 1 << 22;
    let mut changed = 0;
    for &off in &img.locks {
        let word = |b: &[u8]| u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        let mut state = word(bytes);
        if state == word(&img.bytes) {
            continue;
        }
        changed += 1;
        if changed > MAX_LOCKS_CHANGED {
            bytes[off..off + 4].copy_from_slice(&img.bytes[off..off + 4]);
            continue;
        }
        if state & OWNER != 0 {
            state |= NO_TASK;
        }
        bytes[off..off + 4].copy_from_slice(&state.to_le_bytes());
    }
}

/// Errors allowed on a scribbled-on arena: the typed ones (`Corrupt` included); a panic or a
/// crash is the bug.
fn poke(r: Result<impl Sized, Error>) {
    let _ = r;
}

/// Calls that cannot block, per type, on whatever a scribbled-on store holds.
fn safe_calls(p: &Proxy) {
    poke(p.get_value());
    poke(p.to_str());
    let calls: &[(&str, Vec<Value>)] = match p.token().type_id {
        type_ids::LIST => &[
            ("__len__", vec![]),
            ("__getitem__", vec![Value::Int(0)]),
            ("__getitem__", vec![Value::Int(-1)]),
            ("append", vec![Value::from("new")]),
            ("index", vec![Value::Int(7)]),
            ("pop", vec![]),
            ("sort", vec![]),
        ],
        type_ids::DICT => &[
            ("__len__", vec![]),
            ("__getitem__", vec![Value::from("a")]),
            ("get", vec![Value::Int(2)]),
            ("__setitem__", vec![Value::from("z"), Value::Int(1)]),
            ("__delitem__", vec![Value::from("a")]),
            ("keys", vec![]),
            ("popitem", vec![]),
        ],
        type_ids::QUEUE => &[
            ("qsize", vec![]),
            ("get_nowait", vec![]),
            ("put_nowait", vec![Value::Int(1)]),
            ("get_nowait", vec![]),
        ],
        type_ids::NAMESPACE => &[
            ("__getattribute__", vec![Value::from("x")]),
            ("__setattr__", vec![Value::from("y"), Value::Int(2)]),
            ("__delattr__", vec![Value::from("x")]),
        ],
        _ => &[("__str__", vec![])],
    };
    for (m, args) in calls {
        poke(p.call_method(m, args.clone()));
    }
}

/// `arena_bytes`: a valid segment image with the input's (offset, byte) writes laid over it is
/// opened (attached or not), checked, searched for its names, its tokens attached, and what is
/// found called. Everything must end in Ok or a typed error, never a panic, a crash or a hang.
///
/// Not mutated (a known limitation, see `image`): the header words that locate the locks and
/// the segment state word. Lock words are, within the bounds [`bound_locks`] sets.
pub fn arena_bytes(data: &[u8]) {
    let img = image();
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = img.bytes.clone();
    for w in rest.chunks_exact(4).take(256) {
        let off =
            (usize::from(w[0]) | usize::from(w[1]) << 8 | usize::from(w[2]) << 16) % bytes.len();
        if !protected(img, off) {
            bytes[off] = w[3];
        }
    }
    bound_locks(img, &mut bytes);
    let name = seg_name("a");
    let _c = Cleanup(name.clone());
    {
        let Ok(arena) = shmstore::segment::create(&name, bytes.len(), 0o600) else {
            return;
        };
        arena.copy_in(0, &bytes).expect("copy_in");
    }
    let store = if flags & 1 == 0 {
        Store::open(&name)
    } else {
        Store::open_unattached(&name)
    };
    let Ok(store) = store else { return };
    poke(store.stats());
    poke(store.check());
    poke(store.names());
    poke(store.processes());
    let mut found = Vec::new();
    for n in &img.names {
        if let Ok(p) = store.lookup(n) {
            found.push(p);
        }
    }
    for t in &img.tokens {
        if let Ok(p) = store.attach(t) {
            found.push(p);
        }
    }
    for p in &found {
        safe_calls(p);
    }
    if flags & 2 != 0 {
        poke(store.unbind("l"));
        if let Some(p) = found.first() {
            poke(store.bind("new", p));
        }
    }
    drop(found);
    if flags & 4 != 0 {
        poke(store.reclaim());
    }
    poke(store.check());
}

// ---------------------------------------------------------------------------------------------
// alloc

/// One allocator operation.
#[derive(Debug, Arbitrary)]
pub enum AllocOp {
    Alloc(u16),
    AllocZeroed(u16),
    AllocBig(u8),
    Free(u8),
    Realloc(u8, u16),
    FreeStray(u16),
}

const HEAP_HDR: u64 = 0;
const HEAP_START: u64 = 4096;
const HEAP_LEN: usize = 256 << 10;

/// `alloc`: alloc/free/realloc sequences on a heap-backed arena against a model of the live
/// blocks: blocks never overlap, contents survive other operations and moves, no block is lost
/// or invented, the statistics are exact, and `check()` finds nothing.
pub fn alloc(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(ops) = Vec::<AllocOp>::arbitrary(&mut u) else {
        return;
    };
    let arena = shmstore::arena::Arena::heap(HEAP_LEN);
    let heap = shmstore::alloc::Heap::init(&arena, HEAP_HDR, HEAP_START, HEAP_LEN as u64)
        .expect("heap init");
    let empty = heap.stats().expect("stats");
    // Live blocks: payload offset → (usable size, fill byte).
    let mut live: BTreeMap<u64, (u64, u8)> = BTreeMap::new();
    let mut next_fill: u8 = 1;
    let mut header_bytes: Option<u64> = None;
    let fill = |off: u64, len: u64, b: u8| arena.fill(off, len, b).expect("fill a block");
    for op in ops.iter().take(300) {
        let nth = |i: u8| -> Option<u64> {
            if live.is_empty() {
                None
            } else {
                live.keys().nth(usize::from(i) % live.len()).copied()
            }
        };
        match *op {
            AllocOp::Alloc(n) | AllocOp::AllocZeroed(n) => {
                let zeroed = matches!(op, AllocOp::AllocZeroed(_));
                let size = u64::from(n) % 8192;
                let r = if zeroed {
                    heap.alloc_zeroed(size)
                } else {
                    heap.alloc(size)
                };
                match r {
                    Ok(off) => {
                        let usable = heap.usable_size(off).expect("usable_size");
                        assert!(usable >= size, "usable {usable} < asked {size}");
                        assert_eq!(off % 16, 0, "payload alignment");
                        if zeroed {
                            let mut buf = vec![1u8; usable as usize];
                            arena.copy_out(off, &mut buf).expect("copy_out");
                            assert!(buf.iter().all(|&b| b == 0), "alloc_zeroed not zeroed");
                        }
                        fill(off, usable, next_fill);
                        assert!(
                            live.insert(off, (usable, next_fill)).is_none(),
                            "same block twice"
                        );
                        next_fill = next_fill.wrapping_add(1).max(1);
                    }
                    Err(Error::OutOfMemory { .. }) => {}
                    Err(e) => panic!("alloc({size}): {e:?}"),
                }
            }
            AllocOp::AllocBig(n) => {
                let size = (u64::from(n) + 1) << 12;
                match heap.alloc(size) {
                    Ok(off) => {
                        let usable = heap.usable_size(off).expect("usable_size");
                        assert!(usable >= size);
                        fill(off, usable, next_fill);
                        live.insert(off, (usable, next_fill));
                        next_fill = next_fill.wrapping_add(1).max(1);
                    }
                    Err(Error::OutOfMemory { .. }) => {}
                    Err(e) => panic!("alloc({size}): {e:?}"),
                }
            }
            AllocOp::Free(i) => {
                let Some(off) = nth(i) else { continue };
                heap.free(off).expect("free");
                live.remove(&off);
                // A double free is refused before anything is written.
                assert!(heap.free(off).is_err(), "double free accepted");
            }
            AllocOp::FreeStray(o) => {
                let off = HEAP_START + u64::from(o) * 8;
                if live.contains_key(&off) {
                    continue;
                }
                assert!(heap.free(off).is_err(), "stray free of {off} accepted");
            }
            AllocOp::Realloc(i, n) => {
                let Some(off) = nth(i) else { continue };
                let (old_usable, b) = live[&off];
                let size = u64::from(n) % 12288;
                match heap.realloc(off, size) {
                    Ok(new) => {
                        let usable = heap.usable_size(new).expect("usable_size");
                        assert!(usable >= size);
                        let kept = old_usable.min(size) as usize;
                        let mut buf = vec![0u8; kept];
                        arena.copy_out(new, &mut buf).expect("copy_out");
                        assert!(buf.iter().all(|&x| x == b), "realloc lost contents");
                        live.remove(&off);
                        fill(new, usable, b);
                        live.insert(new, (usable, b));
                    }
                    Err(Error::OutOfMemory { .. }) => {
                        assert_eq!(heap.usable_size(off).expect("old block"), old_usable);
                    }
                    Err(e) => panic!("realloc({off}, {size}): {e:?}"),
                }
            }
        }
        // The model and the heap agree.
        let mut end = 0;
        for (&off, &(usable, b)) in &live {
            assert!(off >= end, "blocks overlap at {off}");
            end = off + usable;
            let mut buf = vec![0u8; usable as usize];
            arena.copy_out(off, &mut buf).expect("copy_out");
            assert!(
                buf.iter().all(|&x| x == b),
                "block at {off} was overwritten"
            );
        }
        let blocks = heap.blocks().expect("blocks");
        let used: BTreeMap<u64, u64> = blocks
            .iter()
            .filter(|b| b.2)
            .map(|&(o, s, _)| (o, s))
            .collect();
        let want: BTreeMap<u64, u64> = live.iter().map(|(&o, &(s, _))| (o, s)).collect();
        assert_eq!(used, want, "blocks in use differ from the model");
        let st = heap.stats().expect("stats");
        assert_eq!(st.blocks_in_use, live.len() as u64, "blocks_in_use");
        assert_eq!(
            st.bytes_in_use + st.bytes_free,
            st.heap_bytes,
            "bytes add up"
        );
        assert_eq!(st.heap_bytes, empty.heap_bytes, "heap size changed");
        let payload: u64 = live.values().map(|v| v.0).sum();
        if let Some(per) = st.bytes_in_use.checked_sub(payload) {
            if !live.is_empty() {
                assert_eq!(per % live.len() as u64, 0, "bytes_in_use not per block");
                let h = per / live.len() as u64;
                assert_eq!(*header_bytes.get_or_insert(h), h, "block overhead varies");
            }
        } else {
            panic!(
                "bytes_in_use {} below the payload {payload}",
                st.bytes_in_use
            );
        }
        let free_blocks = blocks.iter().filter(|b| !b.2).count() as u64;
        assert_eq!(st.free_blocks, free_blocks, "free_blocks");
        let largest = blocks.iter().filter(|b| !b.2).map(|b| b.1).max();
        if let Some(h) = header_bytes {
            assert_eq!(
                st.largest_free,
                largest.map_or(0, |s| s + h),
                "largest_free"
            );
        }
    }
    let report = heap.check().expect("check");
    assert!(report.problems.is_empty(), "check: {:?}", report.problems);
    for off in live.keys().copied().collect::<Vec<_>>() {
        heap.free(off).expect("free at the end");
    }
    let st = heap.stats().expect("stats");
    assert_eq!(st.bytes_in_use, empty.bytes_in_use, "memory back");
    assert_eq!(st.free_blocks, 1, "one free block at the end");
}
