//! `Array`: a fixed-length array of one plain-data type `T`, as CPython's
//! `SyncManager.Array(typecode, sequence)` (whose referent is an `array.array`): `__len__`,
//! `__getitem__` and `__setitem__` with an index or a slice, and `str` like
//! `array('i', [1, 2, 3])`. The typed proxy adds zero-copy access to the elements under the
//! object's lock.
//!
//! Semantics: indexing, element conversion and their messages are `array.array`'s ("array index
//! out of range", "signed char is greater than maximum", …). The length never changes, so a
//! slice assignment must keep it: a plain slice given another number of items is refused with
//! ctypes' (`multiprocessing.Array`'s) "Can only assign sequence of same size", an extended one
//! with `array.array`'s "attempt to assign array of size 1 to extended slice of size 3". Any
//! iterable may be assigned (`array.array` would want an array). There is no `__delitem__`, as
//! CPython's `ArrayProxy` exposes none.
//!
//! Body: an [`ArrayBody`], then (in the same block, aligned for `T`) `len` elements.
//!
//! Crash protocol: the length, element type and data offset are written once, before the
//! object is published, and never change; every state of the elements is a valid array (any bit
//! pattern is a `T`). A write interrupted by its holder's death leaves each element old or new
//! — or, for an element wider than the machine's stores, a mix of both — and a slice assignment
//! a prefix of its items: like a C array, an array write is not atomic against a crash.
//! Conversion errors are found before the first element is written, so an error leaves the
//! array unchanged.
//!
//! # Examples
//! ```
//! # let name = format!("doc-array-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let a = store.array([1i32, 2, 3])?;
//! a.call_method("__setitem__", (shmstore::Slice::new(0, 2), vec![7, 8]))?;
//! assert_eq!(a.call_method("__len__", ())?, Value::Int(3));
//! assert_eq!(a.to_string(), "array('i', [7, 8, 3])");
//! # Ok::<(), shmstore::Error>(())
//! ```

use bytemuck::{Pod, Zeroable};

use super::pod::{self, ElemType};
use super::pyargs;
use super::{iter_arg, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::{Arena, Offset};
use crate::cell::{self, Cell};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::proxy::Handle;
use crate::token::{type_ids, Token};
use crate::value::{Slice, Value};

/// The fixed part of an array's body.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraybody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::array::ArrayBody;
/// use shmstore::types::pod::ElemType;
/// let p = store.array([1i32, 2, 3])?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: ArrayBody = raw.read(Offset::new(body))?;
/// assert_eq!(b.len, 3);
/// assert_eq!(b.elem, ElemType::of::<i32>());
/// assert_eq!(raw.slice::<i32>(b.data, b.len)?, [1, 2, 3]); // the elements, in place
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ArrayBody {
    /// Number of elements; never changes.
    pub len: u64,
    /// Offset of element 0 (aligned for `T`, inside the body's block).
    pub data: u64,
    /// `T`'s record.
    pub elem: ElemType,
    /// Python's typecode (`'i'`), or `T`'s Rust name for types without one.
    pub typecode: Cell,
    /// Reserved; zero.
    pub reserved: u64,
}
const _: () = assert!(size_of::<ArrayBody>() == 64);

const TYPECODE_OFF: u64 = 40;

/// The array type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::ARRAY,
    typeid: "Array",
    proxy: "ArrayProxy",
    methods: &[
        Method {
            name: "__getitem__",
            call: m_getitem,
        },
        Method {
            name: "__len__",
            call: m_len,
        },
        Method {
            name: "__repr__",
            call: m_repr,
        },
        Method {
            name: "__setitem__",
            call: m_setitem,
        },
        Method {
            name: "__str__",
            call: m_repr,
        },
    ],
    drop_body,
    repair,
    str: write_str,
    get_value: snapshot_value,
    lockless: false,
    hooks: FAST_HOOKS,
};

/// The fast hooks of [`DESC`], as a constant for the typed proxy's `call_method` (see
/// [`FastHooks`](super::FastHooks)).
pub const FAST_HOOKS: super::FastHooks = super::FastHooks {
    read: Some(fast_read),
    write: Some(fast_write),
    fixed: None,
};

// ---------------------------------------------------------------------------------------------
// Raw access.

/// Reads and checks the body at `off`: a valid element record and every element inside the
/// arena, aligned for `T`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayheader-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::array;
/// use shmstore::types::pod::ElemType;
/// let a = store.array([1u16, 2, 3])?;
/// let body = store.objects()?[0].body;
/// let h = array::header(store.core(), body)?;
/// assert_eq!((h.len, h.elem), (3, ElemType::of::<u16>()));
/// assert!(array::header(store.core(), 8).is_err()); // not an array body: fails a check
/// # drop(a);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn header(core: &Core, off: u64) -> Result<ArrayBody> {
    let b: ArrayBody = core.arena().read(Offset::new(off))?;
    b.elem.validate(off)?;
    let bytes = b
        .len
        .checked_mul(b.elem.stride())
        .ok_or(Error::corrupt("array length overflows", off))?;
    core.arena().check(b.data, bytes, u64::from(b.elem.align))?;
    Ok(b)
}

/// The data offset and length of the array at `body`, whose element type must be `want`.
///
/// # Errors
/// `TypeError` if the array holds another type; `Corrupt` for a bad body.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraylocate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::array;
/// use shmstore::types::pod::ElemType;
/// use shmstore::Error;
/// let a = store.array([10u32, 20])?;
/// let core = store.core();
/// let body = store.objects()?[0].body;
/// let (data, len) = array::locate(core, body, &ElemType::of::<u32>())?;
/// assert_eq!(len, 2);
/// assert_eq!(core.arena().slice::<u32>(data, len)?, &[10, 20]);
/// assert!(matches!(array::locate(core, body, &ElemType::of::<i32>()), Err(Error::TypeError(_))));
/// # drop(a);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn locate(core: &Core, body: u64, want: &ElemType) -> Result<(u64, u64)> {
    let b = header(core, body)?;
    if b.elem != *want {
        return Err(mismatch(core, body, &b, want));
    }
    Ok((b.data, b.len))
}

/// `a[i]` of an array of `T` (whose record is `want`) read without the lock, for
/// [`dispatch::read_optimistic`](crate::dispatch::read_optimistic): `None` for an index out of
/// range, another element type, an element that is not 1, 2, 4 or 8 bytes, or words that fail a
/// check (the locked path then answers). The header never changes after creation; the element is
/// one atomic load.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraygetracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::array::get_racy;
/// use shmstore::types::pod::ElemType;
/// let a = store.array([1.5f64, 2.5])?;
/// let (core, t) = (store.core(), a.token());
/// let want = ElemType::of::<f64>();
/// assert_eq!(read_optimistic(core, &t, |ar, body| get_racy::<f64>(ar, body, &want, -1)), Some(2.5));
/// assert_eq!(read_optimistic(core, &t, |ar, body| get_racy::<f64>(ar, body, &want, 2)), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_racy<T: Pod>(a: &Arena, body: u64, want: &ElemType, i: i64) -> Option<T> {
    let [len, data, fingerprint, size_align] = a.load_words_racy::<4>(body)?;
    let want_sa = want.size_align_word();
    if fingerprint != want.fingerprint || size_align != want_sa {
        return None;
    }
    let i = normalize(i, len)?;
    a.load_pod_racy::<T>(data.checked_add(i.checked_mul(want.stride())?)?)
}

/// Where an array's elements are: its length and the offset of element 0. Both are fixed when
/// the array is created, so a proxy reads them once ([`geometry_racy`]) and then reaches an
/// element from its slot's sequence alone ([`get_at`]), without the header in between. Made
/// only by [`geometry_racy`], which checked every element lies inside the arena: so no offset
/// computed from it overflows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    len: u64,
    data: u64,
}

// (No `is_empty`: a geometry is not a collection; `len` is its array's.)
#[allow(clippy::len_without_is_empty)]
impl Geometry {
    /// Number of elements.
    #[inline]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Offset of element 0.
    #[inline]
    pub fn data(&self) -> u64 {
        self.data
    }
}

/// The [`Geometry`] of an array of `T` (whose record is `want`), read without the lock for
/// [`dispatch::read_optimistic`](crate::dispatch::read_optimistic): `None` for another element
/// type, or elements that are not all inside the arena and aligned for `T`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraygeometry-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::array::{geometry_racy, get_at};
/// use shmstore::types::pod::ElemType;
/// let a = store.array([1u32, 2, 3])?;
/// let (core, t) = (store.core(), a.token());
/// let g = read_optimistic(core, &t, |ar, body| geometry_racy::<u32>(ar, body, &ElemType::of::<u32>()))
///     .expect("no writer");
/// assert_eq!(g.len(), 3);
/// assert_eq!(read_optimistic(core, &t, |ar, _| get_at::<u32>(ar, g, -1)), Some(3));
/// let other = ElemType::of::<i32>();
/// assert_eq!(read_optimistic(core, &t, |ar, body| geometry_racy::<i32>(ar, body, &other)), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn geometry_racy<T: Pod>(a: &Arena, body: u64, want: &ElemType) -> Option<Geometry> {
    let [len, data, fingerprint, size_align] = a.load_words_racy::<4>(body)?;
    if !want.racy_words_are_of::<T>(fingerprint, size_align) {
        return None;
    }
    a.check(
        data,
        len.checked_mul(size_of::<T>() as u64)?,
        align_of::<T>() as u64,
    )
    .ok()?;
    Some(Geometry { len, data })
}

/// Element `i` (negative from the end) of the array of `T` laid out as `g`, read without the
/// lock for [`dispatch::read_optimistic`](crate::dispatch::read_optimistic), which checks the
/// slot still holds the array `g` was read from: `None` for an index out of range or a `T`
/// that is not 1, 2, 4 or 8 bytes (the locked path then answers).
#[inline]
pub fn get_at<T: Pod>(a: &Arena, g: Geometry, i: i64) -> Option<T> {
    let i = normalize(i, g.len)?;
    // No overflow: `geometry_racy` checked every element is inside the arena.
    a.load_pod_racy::<T>(g.data + i * size_of::<T>() as u64)
}

/// `a[i] = x` for the array of `T` laid out as `g`, for
/// [`dispatch::write_fast`](crate::dispatch::write_fast) (which holds the lock, the write, and
/// checks the slot still holds the array `g` was read from): a 4- or 8-byte primitive is one
/// word store, anything else a byte copy, as [`set_fast`] does, without reading the header.
/// `None`, having written nothing, for an index out of range.
#[inline]
pub fn set_at<T: Pod>(a: &Arena, g: Geometry, i: i64, x: &T) -> Option<()> {
    let i = normalize(i, g.len)?;
    // No overflow: `geometry_racy` checked every element is inside the arena.
    let at = g.data + i * size_of::<T>() as u64;
    let bytes = bytemuck::bytes_of(x);
    if matches!(size_of::<T>(), 4 | 8) && align_of::<T>() == size_of::<T>() {
        return store_prim(a, at, align_of::<T>() as u32, bytes);
    }
    a.copy_in(at, bytes).ok()
}

/// The length of an array of `want`'s elements, read without the lock (it never changes once
/// created), for [`dispatch::read_optimistic`](crate::dispatch::read_optimistic): `None` for
/// another element type or words out of bounds.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraylenracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::array::len_racy;
/// use shmstore::types::pod::ElemType;
/// let a = store.array([1u16, 2, 3])?;
/// let (core, t) = (store.core(), a.token());
/// let want = ElemType::of::<u16>();
/// assert_eq!(read_optimistic(core, &t, |ar, body| len_racy(ar, body, &want)), Some(3));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len_racy(a: &Arena, body: u64, want: &ElemType) -> Option<u64> {
    let [len, _, fingerprint, size_align] = a.load_words_racy::<4>(body)?;
    let want_sa = want.size_align_word();
    (fingerprint == want.fingerprint && size_align == want_sa).then_some(len)
}

/// `a[i] = x` for an element of type `want` (`bytes` are `x`'s), for
/// [`dispatch::write_fast`](crate::dispatch::write_fast), which holds the lock and the write:
/// the element's bytes are copied in place, as [`set`] does. `None`, having written nothing,
/// for an index out of range, another element type or words that fail a check (the general
/// path reports them).
///
/// # Examples
/// ```
/// # let name = format!("doc-arraysetfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::array::set_fast;
/// use shmstore::types::pod::ElemType;
/// let a = store.array([1i64, 2, 3])?;
/// let (core, t) = (store.core(), a.token());
/// let want = ElemType::of::<i64>();
/// let nine = 9i64.to_ne_bytes();
/// assert_eq!(write_fast(core, &t, |ar, body| set_fast(ar, body, &want, -1, &nine)), Some(()));
/// assert_eq!(a.get(2)?, 9);
/// assert_eq!(write_fast(core, &t, |ar, body| set_fast(ar, body, &want, 3, &nine)), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set_fast(a: &Arena, body: u64, want: &ElemType, i: i64, bytes: &[u8]) -> Option<()> {
    let [len, data, fingerprint, size_align] = a.load_words_racy::<4>(body)?;
    let want_sa = want.size_align_word();
    if fingerprint != want.fingerprint || size_align != want_sa || bytes.len() != want.size as usize
    {
        return None;
    }
    let i = normalize(i, len)?;
    let at = data.checked_add(i.checked_mul(want.stride())?)?;
    if matches!(want.size, 4 | 8) && want.align == want.size {
        return store_prim(a, at, want.align, bytes); // one word store, one bounds check
    }
    a.check(at, want.stride(), u64::from(want.align)).ok()?;
    a.copy_in(at, bytes).ok()
}

const M_LEN: usize = super::method_idx(DESC.methods, "__len__");
const M_GETITEM: usize = super::method_idx(DESC.methods, "__getitem__");

/// `call_method`'s lock-free reads (see `FastHooks::read`): `__len__()` (the length never
/// changes), and `__getitem__(i)` of a primitive element.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayfastread-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::array::{fast_read, DESC};
/// use shmstore::Value;
/// let a = store.array([5i32, 6, 7])?;
/// let (core, t) = (store.core(), a.token());
/// let len = DESC.method_index("__len__").unwrap();
/// assert_eq!(fast_read(core, &t, len, &[]), Some(Value::Int(3)));
/// let getitem = DESC.method_index("__getitem__").unwrap();
/// assert_eq!(fast_read(core, &t, getitem, &[Value::Int(1)]), Some(Value::Int(6)));
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined into a typed proxy's `call_method` (only the `match`: each arm's work is a function
// of its own), so a call of another method costs a compare or two, not a call.
#[inline]
pub fn fast_read(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_LEN, []) => len_value_fast(core, token),
        (M_GETITEM, [Value::Int(i)]) => getitem_fast(core, token, *i),
        _ => None,
    }
}

/// `__len__()` without the lock, for [`fast_read`].
#[inline(never)]
fn len_value_fast(core: &Core, token: &Token) -> Option<Value> {
    crate::dispatch::read_optimistic(core, token, len_value_racy)
}

/// The length as a `Value`, read without the lock (see [`len_racy`]: it never changes).
#[inline(always)]
fn len_value_racy(a: &Arena, body: u64) -> Option<Value> {
    Some(Value::Int(i64::try_from(a.load_u64_racy(body).ok()?).ok()?))
}

/// `__getitem__(i)` of a primitive element without the lock, for [`fast_read`].
#[inline(never)]
fn getitem_fast(core: &Core, token: &Token, i: i64) -> Option<Value> {
    // The element's bits are copied out under the sequence and decoded once the read is
    // validated.
    let (kind, bits) = crate::dispatch::read_optimistic(core, token, |a, b| getitem_bits(a, b, i))?;
    pod::scalar_of(kind, bits)
}

/// Element `i`'s primitive kind and bits, read without the lock: `None` for an element of
/// another kind or an index out of range.
#[inline(always)]
fn getitem_bits(a: &Arena, body: u64, i: i64) -> Option<(pod::Kind, [u8; 8])> {
    let [len, data] = a.load_words_racy::<2>(body)?;
    let kind = prim_kind_racy(a, body.checked_add(16)?)?;
    let i = normalize(i, len)?;
    let at = data.checked_add(i.checked_mul(u64::from(kind.size()))?)?;
    Some((kind, load_prim_racy(a, at, kind.size())?))
}

/// `call_method`'s fast path on the handle's pinned slot (`Handle::read_optimistic`,
/// `Handle::write_fast`), for a dynamic proxy's `call_method` (see `dispatch::fast_builtin`):
/// the answers of [`fast_read`] and [`fast_write`], without finding the slot again.
#[inline(always)]
pub(crate) fn fast_call(h: &Handle, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_LEN, []) => len_at(h),
        (M_GETITEM, [Value::Int(i)]) => getitem_at(h, *i),
        (M_SETITEM, [Value::Int(i), x]) => setitem_at(h, *i, x),
        _ => None,
    }
}

/// [`fast_call`] for an `ArrayProxy<T>`, whose element record is `want` (`T`'s): `__getitem__`
/// reads a `T` as the typed `get` does ([`getitem_typed`]) and `__setitem__` stores one
/// ([`setitem_typed`]), each then as [`fast_call`]; the rest as [`fast_call`].
#[inline(always)]
pub(crate) fn fast_call_typed<T: Pod>(
    h: &Handle,
    want: &ElemType,
    method: usize,
    args: &[Value],
) -> Option<Value> {
    // Where the typed step applies to `T` (a constant), what it declines (another record, an
    // index out of range, an `x` that does not convert) the out-of-line step declines too, so
    // the read answers alone. The write keeps the out-of-line step after it all the same:
    // measured with `compare` (03:06 UTC), the array and `value_of` set rows ran 1-5 ns faster
    // with it than without (the caller's copies of the result compile differently), for a few
    // more instructions.
    match (method, args) {
        (M_GETITEM, [Value::Int(i)]) if typed_get_applies::<T>() => getitem_typed::<T>(h, want, *i),
        (M_SETITEM, [Value::Int(i), x]) if typed_set_applies::<T>() => {
            setitem_typed::<T>(h, want, *i, x).or_else(|| setitem_at(h, *i, x))
        }
        _ => fast_call(h, method, args),
    }
}

/// [`fast_call_typed`] for a proxy that knows the array's [`Geometry`] (`g`, once read): a
/// `__getitem__` of a primitive `T` reads the element from it ([`get_at`]), as the typed `get`
/// does; everything else, and what that declines, as [`fast_call_typed`].
#[inline(always)]
pub(crate) fn fast_call_typed_at<T: Pod>(
    h: &Handle,
    want: &ElemType,
    g: impl FnOnce() -> Option<Geometry>,
    method: usize,
    args: &[Value],
) -> Option<Value> {
    if let (M_GETITEM, [Value::Int(i)]) = (method, args) {
        if let (Some(kind), Some(g)) = (prim_kind_checked::<T>(want), g()) {
            if let Some(x) = h.read_optimistic(|a, _| get_at::<T>(a, g, *i)) {
                return value_of_prim(kind, &x);
            }
        }
    }
    fast_call_typed::<T>(h, want, method, args)
}

/// True when [`getitem_typed`] can answer for `T` (a primitive number; a constant).
#[inline(always)]
pub(crate) fn typed_get_applies<T: Pod>() -> bool {
    prim_kind_of::<T>() != pod::Kind::Other
}

/// True when [`setitem_typed`] can answer for `T` (a primitive number of 4 or 8 bytes aligned
/// to its size, as [`prim_word_of`] requires of `T`'s record; a constant).
#[inline(always)]
pub(crate) fn typed_set_applies<T: Pod>() -> bool {
    typed_get_applies::<T>() && matches!(size_of::<T>(), 4 | 8) && align_of::<T>() == size_of::<T>()
}

/// `__getitem__(i)` of an array of `T` (whose record is `want`) without the lock: the element
/// read as a `T` when the array's record is exactly `want` (fingerprint, size and alignment,
/// kind), then converted by `want`'s primitive kind, as the locked path converts by the
/// array's record. `None` for a `T` that is not a primitive number, a record that differs, an
/// index out of range (the general path answers).
// Always inlined, as the typed `get` is inlined: the read of a `T` is the whole call.
#[inline(always)]
fn getitem_typed<T: Pod>(h: &Handle, want: &ElemType, i: i64) -> Option<Value> {
    let kind = prim_kind_checked::<T>(want)?;
    // (The closure always inlined, as a call site's only one would be: this one is shared by
    // every call site of `getitem_typed::<T>`.)
    let x = h.read_optimistic(
        #[inline(always)]
        |a, body| get_exact_racy::<T>(a, body, want, i),
    )?;
    value_of_prim(kind, &x)
}

/// `T`'s primitive kind ([`prim_kind_of`], a constant) when it is the one `want` records;
/// `None` for a `T` that is not a primitive number or another record.
#[inline(always)]
pub(crate) fn prim_kind_checked<T: Pod>(want: &ElemType) -> Option<pod::Kind> {
    let kind = prim_kind_of::<T>();
    (kind != pod::Kind::Other && kind as u32 == want.kind).then_some(kind)
}

/// A primitive `x` of kind `kind` as a `Value` ([`pod::scalar_of`] of its bytes).
#[inline(always)]
pub(crate) fn value_of_prim<T: Pod>(kind: pod::Kind, x: &T) -> Option<Value> {
    let mut bits = [0u8; 8];
    bits.get_mut(..size_of::<T>())?
        .copy_from_slice(bytemuck::bytes_of(x));
    pod::scalar_of(kind, bits)
}

/// `x` converted to a `T` of the record `want` (by `T`'s primitive kind, a constant), for a
/// typed in-place write: its bytes in the first `size_of::<T>()` of the word; `None` for a
/// `T` that is not a word of 4 or 8 bytes aligned to its size, another record, or an `x`
/// that does not convert (the general path reports it).
#[inline(always)]
pub(crate) fn prim_word_of<T: Pod>(want: &ElemType, x: &Value) -> Option<[u8; 8]> {
    prim_kind_checked::<T>(want)?;
    if !matches!(size_of::<T>(), 4 | 8) || want.align as usize != size_of::<T>() {
        return None;
    }
    let mut buf = [0u8; 8];
    let out = buf.get_mut(..size_of::<T>())?;
    match prim_bytes_inline(prim_kind_of::<T>(), x) {
        Some(b) => out.copy_from_slice(b.get(..size_of::<T>())?),
        None => pod::from_value(want, x, out).ok()?,
    }
    Some(buf)
}

/// What [`pod::from_value`] writes for an int, bool or float `x` into a 4- or 8-byte
/// primitive of kind `kind` (a constant where `T` is known, so only its arm is left, inlined):
/// the value's native bytes, in the first 4 or 8 of the word. `None` for any other kind or
/// `x`, and for an int out of the kind's range (`from_value` then answers, or reports it).
#[inline(always)]
fn prim_bytes_inline(kind: pod::Kind, x: &Value) -> Option<[u8; 8]> {
    use pod::Kind;
    let int = || match x {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    };
    let float = || match x {
        Value::Int(i) => Some(*i as f64),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    let mut w = [0u8; 8];
    match kind {
        Kind::I32 => w[..4].copy_from_slice(&i32::try_from(int()?).ok()?.to_ne_bytes()),
        Kind::U32 => w[..4].copy_from_slice(&u32::try_from(int()?).ok()?.to_ne_bytes()),
        Kind::I64 | Kind::Isize => w = int()?.to_ne_bytes(),
        Kind::U64 | Kind::Usize => {
            w = u64::try_from(int()?).ok()?.to_ne_bytes();
        }
        Kind::F32 => w[..4].copy_from_slice(&(float()? as f32).to_ne_bytes()),
        Kind::F64 => w = float()?.to_ne_bytes(),
        _ => return None,
    }
    Some(w)
}

/// Element `i` of an array whose element record is exactly `want` (every word of it), read
/// without the lock as a `T`, for [`getitem_typed`]: `None` for another record or an index out
/// of range.
#[inline(always)]
fn get_exact_racy<T: Pod>(a: &Arena, body: u64, want: &ElemType, i: i64) -> Option<T> {
    a.load_pod_racy::<T>(exact_at(a, body, want, i)?)
}

/// The offset of element `i` of an array whose element record is exactly `want` (every word
/// of it); `None` for another record or an index out of range.
#[inline(always)]
fn exact_at(a: &Arena, body: u64, want: &ElemType, i: i64) -> Option<u64> {
    let want_sa = want.size_align_word();
    let want_kr: u64 = bytemuck::cast([want.kind, want.reserved]);
    let [len, data, fingerprint, size_align, kr] = a.load_words_racy::<5>(body)?;
    if fingerprint != want.fingerprint || size_align != want_sa || kr != want_kr {
        return None;
    }
    let i = normalize(i, len)?;
    data.checked_add(i.checked_mul(want.stride())?)
}

/// `__setitem__(i, x)` of an array of `T` (whose record is `want`): `x` converted by `T`'s
/// primitive kind (a constant), as the locked path converts by the array's record, and stored
/// in element `i` when the record is exactly `want` and `T` is a word of 4 or 8 bytes aligned
/// to its size (one store, as the typed `set` does). `None`, having written nothing, for any
/// other `T`, record, index or `x` (the general path answers, errors included).
#[inline(always)]
fn setitem_typed<T: Pod>(h: &Handle, want: &ElemType, i: i64, x: &Value) -> Option<Value> {
    let word = prim_word_of::<T>(want, x)?;
    let bytes = word.get(..size_of::<T>())?;
    h.write_fast(
        #[inline(always)]
        |a, body| store_prim(a, exact_at(a, body, want, i)?, want.align, bytes),
    )?;
    Some(Value::None)
}

/// The primitive kind of `T`, by its type id (so, for a given `T`, a constant the compiler folds
/// into the conversion's one arm): what [`ElemType::of`] records for a primitive number, `Other`
/// for any other type. The fast paths check it against the record they hold (`want.kind`).
#[inline(always)]
pub(crate) fn prim_kind_of<T: Pod>() -> pod::Kind {
    use pod::Kind;
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    let kinds = [
        (TypeId::of::<i8>(), Kind::I8),
        (TypeId::of::<u8>(), Kind::U8),
        (TypeId::of::<i16>(), Kind::I16),
        (TypeId::of::<u16>(), Kind::U16),
        (TypeId::of::<i32>(), Kind::I32),
        (TypeId::of::<u32>(), Kind::U32),
        (TypeId::of::<i64>(), Kind::I64),
        (TypeId::of::<u64>(), Kind::U64),
        (TypeId::of::<f32>(), Kind::F32),
        (TypeId::of::<f64>(), Kind::F64),
        (TypeId::of::<isize>(), Kind::Isize),
        (TypeId::of::<usize>(), Kind::Usize),
    ];
    for (id, k) in kinds {
        if t == id && k.size() as usize == size_of::<T>() {
            return k;
        }
    }
    Kind::Other
}

/// [`len_value_fast`] on the handle's pinned slot.
#[inline(never)]
fn len_at(h: &Handle) -> Option<Value> {
    h.read_optimistic(len_value_racy)
}

/// [`getitem_fast`] on the handle's pinned slot.
#[inline(never)]
fn getitem_at(h: &Handle, i: i64) -> Option<Value> {
    let (kind, bits) = h.read_optimistic(|a, b| getitem_bits(a, b, i))?;
    pod::scalar_of(kind, bits)
}

/// [`setitem_fast`] on the handle's pinned slot.
#[inline(never)]
fn setitem_at(h: &Handle, i: i64, x: &Value) -> Option<Value> {
    h.write_fast(|a, body| setitem_step(a, body, i, x))?;
    Some(Value::None)
}

/// The primitive kind of the element type record at `off`, read without the lock: what
/// [`pod::elem_racy`] then [`ElemType::kind`] give, but with `ElemType::validate`'s checks made
/// with a power-of-two alignment's mask rather than a division. `None` for `Kind::Other` and
/// for a record `validate` rejects (the locked path reports it).
#[inline(always)]
pub(crate) fn prim_kind_racy(a: &Arena, off: u64) -> Option<pod::Kind> {
    prim_elem_racy(a, off).map(|e| pod::Kind::from_u32(e.kind))
}

/// The element type record at `off` if it is a valid one of a primitive kind (see
/// [`prim_kind_racy`]), read without the lock.
#[inline(always)]
pub(crate) fn prim_elem_racy(a: &Arena, off: u64) -> Option<ElemType> {
    let [fingerprint, sa, kr] = a.load_words_racy::<3>(off)?;
    let [size, align]: [u32; 2] = bytemuck::cast(sa);
    let [kind, reserved]: [u32; 2] = bytemuck::cast(kr);
    if !align.is_power_of_two() || align > 4096 || size & (align - 1) != 0 {
        return None;
    }
    let k = pod::Kind::from_u32(kind);
    (k != pod::Kind::Other && k.size() == size).then_some(ElemType {
        fingerprint,
        size,
        align,
        kind,
        reserved,
    })
}

/// Writes a primitive's `bytes` (1, 2, 4 or 8 of them) at `at`, checking `at` against the
/// record's power-of-two `align` with a mask (as `Arena::check` does with a division), with no
/// call to `memcpy` for a word.
#[inline(always)]
pub(crate) fn store_prim(a: &Arena, at: u64, align: u32, bytes: &[u8]) -> Option<()> {
    if at & (u64::from(align) - 1) != 0 {
        return None;
    }
    use std::sync::atomic::Ordering::Relaxed;
    // Words are stored as one (readers load them atomically; an 8-byte kind aligned to less
    // than 8 is left to the general path); a byte or two are copied.
    match bytes.len() {
        8 => {
            let w = u64::from_ne_bytes(bytes.try_into().ok()?);
            a.atomic_u64(at).ok()?.store(w, Relaxed);
        }
        4 => {
            let w = u32::from_ne_bytes(bytes.try_into().ok()?);
            a.atomic_u32(at).ok()?.store(w, Relaxed);
        }
        1 | 2 => a.copy_in(at, bytes).ok()?,
        _ => return None,
    }
    Some(())
}

/// [`Arena::load_bits_racy`] of a primitive's `size` (1, 2, 4 or 8) bytes, with the size a
/// constant in each arm (so the alignment check is a mask, not a division).
#[inline(always)]
pub(crate) fn load_prim_racy(a: &Arena, at: u64, size: u32) -> Option<[u8; 8]> {
    // Words through the word loads (the bytes `load_bits_racy` would give: the value's bytes
    // first, then zeros).
    match size {
        8 => Some(a.load_u64_racy(at).ok()?.to_ne_bytes()),
        4 => {
            let mut out = [0u8; 8];
            out.get_mut(..4)?
                .copy_from_slice(&a.load_u32_racy(at).ok()?.to_ne_bytes());
            Some(out)
        }
        1 => a.load_bits_racy(at, 1),
        2 => a.load_bits_racy(at, 2),
        _ => None,
    }
}

const M_SETITEM: usize = super::method_idx(DESC.methods, "__setitem__");

/// `call_method`'s in-place writes (see `FastHooks::write`): `__setitem__(i, x)` of a
/// primitive number, converted with `array.array`'s rules and written by [`set_fast`] under a
/// lock that was free.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayfastwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::array::{fast_write, DESC};
/// use shmstore::Value;
/// let a = store.array([1i16, 2])?;
/// let (core, t) = (store.core(), a.token());
/// let setitem = DESC.method_index("__setitem__").unwrap();
/// assert_eq!(fast_write(core, &t, setitem, &[Value::Int(-1), Value::Int(7)]), Some(Value::None));
/// assert_eq!(a.get(1)?, 7);
/// // Out of range, or a value the element cannot hold: the general path reports it.
/// assert_eq!(fast_write(core, &t, setitem, &[Value::Int(2), Value::Int(7)]), None);
/// assert_eq!(fast_write(core, &t, setitem, &[Value::Int(0), Value::Int(1 << 20)]), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined as `fast_read` is: the `match` only.
#[inline]
pub fn fast_write(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    let (M_SETITEM, [Value::Int(i), x]) = (method, args) else {
        return None;
    };
    setitem_fast(core, token, *i, x)
}

/// `__setitem__(i, x)` of a primitive number in place, for [`fast_write`].
#[inline(never)]
fn setitem_fast(core: &Core, token: &Token, i: i64, x: &Value) -> Option<Value> {
    // What `set_fast` does with the record read from the body itself (so no record to compare),
    // without a division or a call to `memcpy` (see `prim_elem_racy`, `store_prim`).
    crate::dispatch::write_fast(core, token, |a, body| setitem_step(a, body, i, x))?;
    Some(Value::None)
}

/// The write of [`setitem_fast`], under the lock and the write: `x` converted by the array's
/// record and stored in element `i`; `None`, having written nothing, when it cannot be.
#[inline(always)]
fn setitem_step(a: &Arena, body: u64, i: i64, x: &Value) -> Option<()> {
    let [len, data] = a.load_words_racy::<2>(body)?;
    let e = prim_elem_racy(a, body.checked_add(16)?)?;
    let mut buf = [0u8; 8];
    let bytes = buf.get_mut(..e.size as usize)?;
    pod::from_value(&e, x, bytes).ok()?;
    let i = normalize(i, len)?;
    let at = data.checked_add(i.checked_mul(u64::from(e.size))?)?;
    store_prim(a, at, e.align, bytes)
}

#[cold]
fn mismatch(core: &Core, body: u64, b: &ArrayBody, want: &ElemType) -> Error {
    let tc = cell::load(core, &b.typecode, body + TYPECODE_OFF)
        .map(|v| v.repr())
        .unwrap_or_default();
    Error::TypeError(format!(
        "this proxy's element type (size {}, align {}) does not match the shared Array's \
         (typecode {tc}, size {}, align {})",
        want.size, want.align, b.elem.size, b.elem.align
    ))
}

#[inline]
fn body(ctx: &Ctx<'_>) -> Result<ArrayBody> {
    header(ctx.core, ctx.body)
}

#[inline]
fn elem_off(b: &ArrayBody, i: u64) -> u64 {
    b.data + i * b.elem.stride()
}

fn read_elem(ctx: &Ctx<'_>, b: &ArrayBody, i: u64, buf: &mut [u8]) -> Result<()> {
    ctx.core.arena().copy_out(elem_off(b, i), buf)
}

fn normalize(i: i64, len: u64) -> Option<u64> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    (i >= 0 && (i as u64) < len).then_some(i as u64)
}

/// All elements' bytes, `len * size` of them.
fn all_bytes(ctx: &Ctx<'_>, b: &ArrayBody) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; (b.len * u64::from(b.elem.size)) as usize];
    ctx.core.arena().copy_out(b.data, &mut buf)?;
    Ok(buf)
}

fn elements(b: &ArrayBody, bytes: &[u8]) -> Result<Vec<Value>> {
    let size = b.elem.size.max(1) as usize;
    if b.elem.size == 0 {
        return (0..b.len).map(|_| pod::to_value(&b.elem, &[])).collect();
    }
    bytes
        .chunks_exact(size)
        .map(|c| pod::to_value(&b.elem, c))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates an array of `len` elements of type `elem`, named `typecode`
/// ([`pod::typecode_of`]), holding `bytes` (`len * elem.size` of them) or zeroes if `bytes` is
/// None.
///
/// # Errors
/// `OutOfMemory`, `TableFull`; `ValueError` if `bytes` has the wrong length.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraycreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::array;
/// use shmstore::types::pod::{typecode_of, ElemType};
/// use shmstore::ArrayProxy;
/// let core = store.core();
/// let bytes: Vec<u8> = [1u32, 2, 3].iter().flat_map(|x| x.to_ne_bytes()).collect();
/// let t = array::create(core, ElemType::of::<u32>(), typecode_of::<u32>(), 3, Some(&bytes))?;
/// let a = ArrayProxy::<u32>::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(a.to_vec()?, vec![1, 2, 3]);
/// let zeroed = array::create(core, ElemType::of::<u8>(), "B", 4, None)?;
/// assert_eq!(shmstore::dispatch::str_of(core, &zeroed)?, "array('B', [0, 0, 0, 0])");
/// shmstore::dispatch::release(core, &zeroed);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(
    core: &Core,
    elem: ElemType,
    typecode: &str,
    len: u64,
    bytes: Option<&[u8]>,
) -> Result<Token> {
    elem.validate(0)?;
    let too_big = || Error::OutOfMemory {
        requested: usize::MAX,
        available: 0,
    };
    let data_bytes = len.checked_mul(elem.stride()).ok_or_else(too_big)?;
    if let Some(b) = bytes {
        if b.len() as u64 != len * u64::from(elem.size) {
            return Err(Error::ValueError("array: wrong number of bytes".into()));
        }
    }
    let align = u64::from(elem.align);
    let head = size_of::<ArrayBody>() as u64;
    let slack = if align > 16 { align } else { 0 };
    let total = head
        .checked_add(data_bytes)
        .and_then(|t| t.checked_add(slack))
        .ok_or_else(too_big)?;
    let body = core.alloc(total)?;
    let built = (|| {
        let data = (body + head).div_ceil(align) * align;
        match bytes {
            Some(b) => core.arena().copy_in(data, b)?,
            None => core.arena().fill(data, data_bytes, 0)?,
        }
        let tc = cell::store(core, &Value::from(typecode))?;
        core.arena().write(
            Offset::new(body),
            ArrayBody {
                len,
                data,
                elem,
                typecode: tc,
                reserved: 0,
            },
        )?;
        core.create_object(type_ids::ARRAY, body).inspect_err(|_| {
            let _ = cell::release(core, &tc, &mut Vec::new());
        })
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    cell::release(ctx.core, &b.typecode, &mut ctx.released)?;
    ctx.core.free(ctx.body)
}

/// Nothing a writer does changes the body's structure: a body that passes the checks is valid.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    body(ctx).map(|_| ())
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    let b = body(ctx)?;
    out.push_str("array(");
    cell::load(ctx.core, &b.typecode, ctx.body + TYPECODE_OFF)?.write_repr(out);
    if b.len > 0 {
        out.push_str(", [");
        let size = b.elem.size as usize;
        let mut buf = vec![0u8; size];
        for i in 0..b.len {
            if i > 0 {
                out.push_str(", ");
            }
            read_elem(ctx, &b, i, &mut buf)?;
            pod::write_repr(&b.elem, &buf, out);
        }
        out.push(']');
    }
    out.push(')');
    Ok(())
}

fn snapshot_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    Ok(Value::List(items(ctx)?))
}

// ---------------------------------------------------------------------------------------------
// Typed operations.

/// `len(a)`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraylen-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// let a = store.array_zeroed::<u64>(8)?;
/// assert_eq!(with_object(store.core(), &a.token(), |ctx| array::len(ctx))?, 8);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len(ctx: &mut Ctx<'_>) -> Result<u64> {
    Ok(body(ctx)?.len)
}

/// `a[i]` as a [`Value`].
///
/// # Errors
/// `IndexError("array index out of range")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayget-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// use shmstore::{Error, Value};
/// let a = store.array([1.5f32, 2.5])?;
/// let (core, t) = (store.core(), a.token());
/// assert_eq!(with_object(core, &t, |ctx| array::get(ctx, -1))?, Value::Float(2.5));
/// assert!(matches!(with_object(core, &t, |ctx| array::get(ctx, 2)), Err(Error::IndexError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn get(ctx: &mut Ctx<'_>, i: i64) -> Result<Value> {
    let b = body(ctx)?;
    let i =
        normalize(i, b.len).ok_or_else(|| Error::IndexError("array index out of range".into()))?;
    let mut buf = [0u8; 8];
    if let Some(small) = buf.get_mut(..b.elem.size as usize) {
        read_elem(ctx, &b, i, small)?;
        return pod::to_value(&b.elem, small);
    }
    let mut big = vec![0u8; b.elem.size as usize];
    read_elem(ctx, &b, i, &mut big)?;
    pod::to_value(&b.elem, &big)
}

/// `a[i] = v`, converting `v` with `array.array`'s rules.
///
/// # Errors
/// `IndexError("array assignment index out of range")`, `TypeError`, `OverflowError`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// use shmstore::{Error, Value};
/// let a = store.array([0u8; 2])?;
/// let (core, t) = (store.core(), a.token());
/// with_object(core, &t, |ctx| array::set(ctx, 0, &Value::Int(255)))?;
/// assert_eq!(a.get(0)?, 255);
/// assert!(matches!(with_object(core, &t, |ctx| array::set(ctx, 1, &Value::Int(256))), Err(Error::OverflowError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn set(ctx: &mut Ctx<'_>, i: i64, v: &Value) -> Result<()> {
    let b = body(ctx)?;
    let i = normalize(i, b.len)
        .ok_or_else(|| Error::IndexError("array assignment index out of range".into()))?;
    let mut small = [0u8; 16];
    let mut big = Vec::new();
    let buf = match small.get_mut(..b.elem.size as usize) {
        Some(s) => s,
        None => {
            big.resize(b.elem.size as usize, 0);
            &mut big[..]
        }
    };
    pod::from_value(&b.elem, v, buf)?;
    let _w = writing(ctx)?;
    ctx.core.arena().copy_in(elem_off(&b, i), buf)
}

/// `a[s]` as values.
///
/// # Errors
/// `ValueError("slice step cannot be zero")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayslice-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// use shmstore::{Slice, Value};
/// let a = store.array([1i64, 2, 3, 4])?;
/// let got = with_object(store.core(), &a.token(), |ctx| array::slice(ctx, &Slice::new(1, 3)))?;
/// assert_eq!(got, vec![Value::Int(2), Value::Int(3)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn slice(ctx: &mut Ctx<'_>, s: &Slice) -> Result<Vec<Value>> {
    let b = body(ctx)?;
    let ix = s.indices(b.len as usize)?;
    let mut buf = vec![0u8; b.elem.size as usize];
    ix.iter()
        .map(|i| {
            read_elem(ctx, &b, i as u64, &mut buf)?;
            pod::to_value(&b.elem, &buf)
        })
        .collect()
}

/// Every element as a value.
///
/// # Errors
/// `Corrupt`; `OverflowError` for a `u64` beyond `i64::MAX`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayitems-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// use shmstore::Value;
/// let a = store.array([7u16, 8])?;
/// let all = with_object(store.core(), &a.token(), |ctx| array::items(ctx))?;
/// assert_eq!(all, vec![Value::Int(7), Value::Int(8)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn items(ctx: &mut Ctx<'_>) -> Result<Vec<Value>> {
    let b = body(ctx)?;
    elements(&b, &all_bytes(ctx, &b)?)
}

/// `a[s] = items`: the number of items must match the slice's (the array cannot resize).
///
/// # Errors
/// `ValueError("Can only assign sequence of same size")`,
/// `ValueError("attempt to assign array of size 1 to extended slice of size 3")`, conversion
/// errors (the array is unchanged).
///
/// # Examples
/// ```
/// # let name = format!("doc-arraysetslice-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// use shmstore::{Error, Slice, Value};
/// let a = store.array([0i32; 4])?;
/// let (core, t) = (store.core(), a.token());
/// with_object(core, &t, |ctx| array::set_slice(ctx, &Slice::new(1, 3), &[Value::Int(5), Value::Int(6)]))?;
/// assert_eq!(a.to_vec()?, vec![0, 5, 6, 0]);
/// // The array cannot resize: the counts must match.
/// let short = with_object(core, &t, |ctx| array::set_slice(ctx, &Slice::new(0, 2), &[Value::Int(1)]));
/// assert!(matches!(short, Err(Error::ValueError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn set_slice(ctx: &mut Ctx<'_>, s: &Slice, items: &[Value]) -> Result<()> {
    let b = body(ctx)?;
    let ix = s.indices(b.len as usize)?;
    if items.len() != ix.len {
        return Err(Error::ValueError(if ix.step == 1 {
            "Can only assign sequence of same size".into()
        } else {
            format!(
                "attempt to assign array of size {} to extended slice of size {}",
                items.len(),
                ix.len
            )
        }));
    }
    let size = b.elem.size as usize;
    let mut buf = vec![0u8; size * items.len()];
    for (v, dst) in items.iter().zip(buf.chunks_exact_mut(size.max(1))) {
        pod::from_value(&b.elem, v, dst)?;
    }
    let _w = writing(ctx)?;
    if ix.step == 1 {
        return ctx
            .core
            .arena()
            .copy_in(elem_off(&b, ix.start as u64), &buf);
    }
    for (i, src) in ix.iter().zip(buf.chunks_exact(size.max(1))) {
        ctx.core.arena().copy_in(elem_off(&b, i as u64), src)?;
    }
    Ok(())
}

/// The data offset and length of this array, whose element type must be `want` (for the typed
/// proxy, which reads the elements in place).
///
/// # Errors
/// `TypeError` for another element type.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraydata-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// use shmstore::types::pod::ElemType;
/// let a = store.array([3u8, 4, 5])?;
/// let core = store.core();
/// let (data, len) = with_object(core, &a.token(), |ctx| array::data(ctx, &ElemType::of::<u8>()))?;
/// assert_eq!(core.arena().slice::<u8>(data, len)?, &[3, 4, 5]);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn data(ctx: &mut Ctx<'_>, want: &ElemType) -> Result<(u64, u64)> {
    locate(ctx.core, ctx.body, want)
}

/// Opens a write on the array's sequence (see `Table::write_begin`): optimistic readers
/// ([`get_racy`]) discard what they read meanwhile. Every writer of the elements holds one.
///
/// # Errors
/// `Corrupt` for a bad slot.
///
/// # Examples
/// ```
/// # let name = format!("doc-arraywriting-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::sync::atomic::Ordering;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::array;
/// let a = store.array([1u32, 2])?;
/// let (core, t) = (store.core(), a.token());
/// let seq = core.table().seq(t.slot)?;
/// let before = seq.load(Ordering::Acquire);
/// with_object(core, &t, |ctx| {
///     let (data, _) = array::data(ctx, &shmstore::types::pod::ElemType::of::<u32>())?;
///     let _w = array::writing(ctx)?; // optimistic readers now retry or take the lock
///     assert_eq!(seq.load(Ordering::Relaxed) & 1, 1);
///     ctx.core.arena().copy_in(data, &9u32.to_ne_bytes())
/// })?;
/// assert_eq!(seq.load(Ordering::Acquire), before + 2);
/// assert_eq!(a.get(0)?, 9);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn writing<'a>(ctx: &Ctx<'a>) -> Result<crate::table::SeqWrite<'a>> {
    ctx.core.table().write_begin(ctx.slot)
}

// ---------------------------------------------------------------------------------------------
// Handlers (`array.array`'s slot wrappers).

fn m_len(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    pyargs::wrapper::<0>("__len__", a, k)?;
    Ok(Value::Int(len(ctx)? as i64))
}

fn m_getitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i] = pyargs::wrapper("__getitem__", a, k)?;
    match i {
        Value::Slice(s) => Ok(Value::List(slice(ctx, s)?)),
        Value::Int(x) => get(ctx, *x),
        Value::Bool(x) => get(ctx, i64::from(*x)),
        _ => Err(Error::TypeError("array indices must be integers".into())),
    }
}

fn m_setitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i, v] = pyargs::wrapper("__setitem__", a, k)?;
    match i {
        Value::Slice(s) => {
            let items = iter_arg(v).map_err(|_| {
                Error::TypeError(format!(
                    "can only assign array (not \"{}\") to array slice",
                    v.type_name()
                ))
            })?;
            set_slice(ctx, s, &items)?;
        }
        Value::Int(x) => set(ctx, *x, v)?,
        Value::Bool(x) => set(ctx, i64::from(*x), v)?,
        _ => return Err(Error::TypeError("array indices must be integers".into())),
    }
    Ok(Value::None)
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    pyargs::wrapper::<0>("__repr__", a, k)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

#[cfg(test)]
mod tests {
    /// The inline conversion of the typed `__setitem__`/`set` writes what `pod::from_value`
    /// writes, and declines exactly where `from_value` fails (then the general path reports).
    #[test]
    fn prim_bytes_inline_is_from_value() {
        use super::{pod, prim_bytes_inline, prim_kind_of};
        use crate::Value;
        fn check<T: bytemuck::Pod>() {
            let e = pod::ElemType::of::<T>();
            let n = size_of::<T>();
            let xs = [
                Value::Int(0),
                Value::Int(7),
                Value::Int(-1),
                Value::Int(i64::MIN),
                Value::Int(i64::MAX),
                Value::Int(i64::from(i32::MAX) + 1),
                Value::Int(i64::from(i32::MIN) - 1),
                Value::Int(i64::from(u32::MAX)),
                Value::Int(i64::from(u32::MAX) + 1),
                Value::Int((1 << 53) + 1),
                Value::Bool(true),
                Value::Bool(false),
                Value::Float(2.5),
                Value::Float(-0.0),
                Value::Float(f64::NAN),
                Value::Float(1e300),
                Value::None,
                Value::from("3"),
                Value::bytes(vec![0u8; 8]),
            ];
            for x in &xs {
                let mut want = [0u8; 8];
                let general = pod::from_value(&e, x, &mut want[..n]);
                let inline = prim_bytes_inline(prim_kind_of::<T>(), x);
                let what = format!("{} {x:?}", std::any::type_name::<T>());
                match (general, inline) {
                    (Ok(()), Some(got)) => assert_eq!(got[..n], want[..n], "{what}"),
                    (Err(_), None) => {}
                    (g, i) => panic!("{what}: from_value {g:?}, inline {i:?}"),
                }
            }
        }
        check::<i32>();
        check::<u32>();
        check::<i64>();
        check::<u64>();
        check::<isize>();
        check::<usize>();
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn prim_kind_of_is_what_elem_type_records() {
        use super::{pod::ElemType, prim_kind_of};
        fn check<T: bytemuck::Pod>() {
            assert_eq!(
                prim_kind_of::<T>() as u32,
                ElemType::of::<T>().kind,
                "{}",
                std::any::type_name::<T>()
            );
        }
        check::<i8>();
        check::<u8>();
        check::<i16>();
        check::<u16>();
        check::<i32>();
        check::<u32>();
        check::<i64>();
        check::<u64>();
        check::<f32>();
        check::<f64>();
        check::<isize>();
        check::<usize>();
        check::<[u8; 4]>();
        check::<[i64; 1]>();
        check::<[u16; 2]>();
        check::<()>();
    }

    #[test]
    fn prim_kind_racy_agrees_with_elem_racy_and_kind() {
        let a = Arena::heap(64);
        for kind in 0..=14u32 {
            for size in [0u32, 1, 2, 3, 4, 8, 16] {
                for align in [0u32, 1, 2, 3, 4, 8, 8192] {
                    let words: [u64; 3] = [
                        7,
                        bytemuck::cast([size, align]),
                        bytemuck::cast([kind, 0u32]),
                    ];
                    for (i, w) in words.iter().enumerate() {
                        a.store_u64(8 + 8 * i as u64, *w).unwrap();
                    }
                    let want = pod::elem_racy(&a, 8)
                        .map(|e| e.kind())
                        .filter(|k| *k != pod::Kind::Other);
                    assert_eq!(prim_kind_racy(&a, 8), want, "{kind} {size} {align}");
                }
            }
        }
    }

    #[test]
    fn load_prim_racy_reads_what_load_bits_racy_reads() {
        let a = Arena::heap(64);
        for i in 0..64u64 {
            a.copy_in(i, &[(i * 37 + 11) as u8]).unwrap();
        }
        for size in [0u32, 1, 2, 3, 4, 8, 16] {
            for at in 0..64u64 {
                assert_eq!(
                    load_prim_racy(&a, at, size),
                    a.load_bits_racy(at, size as usize),
                    "{size} at {at}"
                );
            }
        }
    }

    /// `pod::scalar_of` (and so `pod::to_value`) against conversions written out here: on a
    /// little-endian machine a kind's low bytes are the pattern truncated to its width.
    #[test]
    #[cfg(target_endian = "little")]
    fn scalar_of_converts_every_kind_as_its_rust_type() {
        use crate::types::pod::Kind;
        let patterns: [u64; 7] = [
            0,
            1,
            0x7f,
            0x80,
            0xffff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            0x3ff0_0000_4049_0fdb, // 1.0 as f64; pi as f32 in the low half
        ];
        for k in 0..=13u32 {
            let kind = Kind::from_u32(k);
            for p in patterns {
                let want = match kind {
                    Kind::Other => None,
                    Kind::I8 => Some(Value::Int(i64::from(p as u8 as i8))),
                    Kind::U8 => Some(Value::Int(i64::from(p as u8))),
                    Kind::I16 => Some(Value::Int(i64::from(p as u16 as i16))),
                    Kind::U16 => Some(Value::Int(i64::from(p as u16))),
                    Kind::I32 => Some(Value::Int(i64::from(p as u32 as i32))),
                    Kind::U32 => Some(Value::Int(i64::from(p as u32))),
                    Kind::I64 | Kind::Isize => Some(Value::Int(p as i64)),
                    Kind::U64 | Kind::Usize => i64::try_from(p).ok().map(Value::Int),
                    Kind::F32 => Some(Value::Float(f64::from(f32::from_bits(p as u32)))),
                    Kind::F64 => Some(Value::Float(f64::from_bits(p))),
                };
                let got = pod::scalar_of(kind, p.to_ne_bytes());
                // NaN != NaN: compare the bits of floats.
                match (&got, &want) {
                    (Some(Value::Float(a)), Some(Value::Float(b))) => {
                        assert_eq!(a.to_bits(), b.to_bits(), "{kind:?} {p:#x}")
                    }
                    _ => assert_eq!(got, want, "{kind:?} {p:#x}"),
                }
                if kind != Kind::Other {
                    let e = ElemType {
                        fingerprint: 0,
                        size: kind.size(),
                        align: kind.size(),
                        kind: k,
                        reserved: 0,
                    };
                    let bytes = &p.to_ne_bytes()[..kind.size() as usize];
                    match pod::to_value(&e, bytes) {
                        Ok(v) => assert_eq!(Some(v).is_some(), want.is_some(), "{kind:?} {p:#x}"),
                        Err(Error::OverflowError(_)) => assert!(want.is_none(), "{kind:?}"),
                        Err(other) => panic!("{kind:?} {p:#x}: {other}"),
                    }
                }
            }
        }
    }

    use super::*;

    #[test]
    fn method_table_is_sorted_for_binary_search() {
        for w in DESC.methods.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }
}
