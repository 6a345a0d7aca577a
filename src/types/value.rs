//! `Value`: one shared value, as CPython's `SyncManager.Value(typecode, value)` (`get`, `set`
//! and the `value` property), in two representations behind one type id:
//!
//! - **cells** (`store.value(v)`): any [`Value`], kept in a [`Cell`]; scalars live inline, so a
//!   scalar get or set allocates nothing.
//! - **plain data** (`store.value_of::<T>(x)`): the bytes of one `T: Pod`, with `T`'s size,
//!   alignment and type fingerprint ([`ElemType`]) recorded so that a proxy with another `T`
//!   is refused. Primitive numbers convert to and from [`Value`] for `call_method`; any other
//!   type reads as `bytes`.
//!
//! Body: a [`ValueBody`]; for plain data, two copies of `T` follow it in the same block (at
//! `data` and `data + stride`).
//!
//! Crash protocol (the holder of the object's lock may die at any instruction): the body keeps
//! two cells (two copies of `T`) and `current` says which one is the value. A write fills the
//! other one, publishes it with one 8-byte store of `current`, and only then frees what the old
//! cell owned. A crash before the store leaves the old value (and at worst a leaked block the
//! new cell owned); a crash after it leaves the new value (and at worst the old cell's leaked
//! block). A torn 16-byte cell or a half-copied `T` is never current.
//!
//! Lock-free reads ([`get_racy`]): each publication runs inside a write on the slot's sequence
//! (`Table::write_begin`), so an optimistic reader never uses a cell read mid-write; a holder
//! that dies leaves the sequence odd until `repair` (readers take the lock meanwhile).
//!
//! # Examples
//! ```
//! # let name = format!("doc-value-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let cells = store.value("any value")?; // cells
//! let plain = store.value_of(1.5f64)?; // plain data
//! assert_eq!(cells.call_method("get", ())?, Value::from("any value"));
//! assert_eq!(plain.call_method("get", ())?, Value::Float(1.5));
//! plain.call_method("set", (2.5,))?;
//! assert_eq!(plain.get()?, 2.5);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use bytemuck::{Pod, Zeroable};

use super::pod::{self, ElemType, Kind};
use super::pyargs;
use super::{Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::cell::{self, Cell};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::proxy::Handle;
use crate::token::{type_ids, Token};
use crate::value::Value;

/// Representation: a `Value` in cells.
pub const REPR_CELLS: u32 = 1;
/// Representation: the bytes of a plain-data `T`.
pub const REPR_POD: u32 = 2;

/// The body of a shared value.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuebody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::value::{ValueBody, REPR_CELLS};
/// let p = store.value(42)?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: ValueBody = raw.read(Offset::new(body))?;
/// assert_eq!(b.repr, REPR_CELLS);
/// assert_eq!(b.cells[b.current as usize].as_int(), Some(42));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ValueBody {
    /// [`REPR_CELLS`] or [`REPR_POD`]; never changes.
    pub repr: u32,
    /// Reserved; zero.
    pub reserved: u32,
    /// Which cell (copy of `T`) is the value: 0 or 1.
    pub current: u64,
    /// Plain data: offset of copy 0 (copy 1 is `stride` further); cells: 0.
    pub data: u64,
    /// Plain data: `T`'s record; cells: zeroes.
    pub elem: ElemType,
    /// Python's typecode (`'i'`), or None; never changes.
    pub typecode: Cell,
    /// Cells: the two cells of which `current` is the value.
    pub cells: [Cell; 2],
}
const _: () = assert!(size_of::<ValueBody>() == 96);
const _: () = assert!(align_of::<ValueBody>() == 8);

const CURRENT_OFF: u64 = 8;
const CELLS_OFF: u64 = 64;
/// The body in words, and the word indexes of `current` and of the first cell.
const BODY_WORDS: usize = size_of::<ValueBody>() / 8;
const CURRENT_WORD: usize = CURRENT_OFF as usize / 8;
const CELL0_WORD: usize = CELLS_OFF as usize / 8;
const _: () = assert!(CELL0_WORD + 4 == BODY_WORDS && 2 * cell::CELL_SIZE == 32);

/// The value type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::VALUE,
    typeid: "Value",
    proxy: "ValueProxy",
    methods: &[
        Method {
            name: "__getattribute__",
            call: m_getattribute,
        },
        Method {
            name: "__repr__",
            call: m_repr,
        },
        Method {
            name: "__setattr__",
            call: m_setattr,
        },
        Method {
            name: "__str__",
            call: m_repr,
        },
        Method {
            name: "add",
            call: m_add,
        },
        Method {
            name: "get",
            call: m_get,
        },
        Method {
            name: "set",
            call: m_set,
        },
    ],
    drop_body,
    repair,
    str: write_str,
    get_value: get,
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

/// Reads and checks the body: a known representation, `current` 0 or 1, and for plain data
/// both copies inside the arena and aligned for `T`.
#[inline]
fn body(ctx: &Ctx<'_>) -> Result<ValueBody> {
    let b: ValueBody = ctx.core.arena().read(Offset::new(ctx.body))?;
    if b.current > 1 {
        return Err(Error::corrupt("value: bad current index", ctx.body));
    }
    match b.repr {
        REPR_CELLS => {}
        REPR_POD => {
            b.elem.validate(ctx.body)?;
            ctx.core
                .arena()
                .check(b.data, 2 * b.elem.stride(), u64::from(b.elem.align))?;
        }
        _ => return Err(Error::corrupt("value: bad representation", ctx.body)),
    }
    Ok(b)
}

#[inline]
fn cell_off(ctx: &Ctx<'_>, i: u64) -> u64 {
    ctx.body + CELLS_OFF + i * cell::CELL_SIZE as u64
}

#[inline]
fn pod_off(b: &ValueBody, i: u64) -> u64 {
    b.data + i * b.elem.stride()
}

fn read_pod(ctx: &Ctx<'_>, b: &ValueBody) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; b.elem.size as usize];
    ctx.core.arena().copy_out(pod_off(b, b.current), &mut buf)?;
    Ok(buf)
}

/// Writes `bytes` into the copy that is not current and publishes it.
#[inline]
fn publish_pod(ctx: &Ctx<'_>, b: &ValueBody, bytes: &[u8]) -> Result<()> {
    if bytes.len() != b.elem.size as usize {
        return Err(Error::corrupt("value: element size changed", ctx.body));
    }
    let _w = ctx.core.table().write_begin(ctx.slot)?;
    let next = 1 - b.current;
    ctx.core.arena().copy_in(pod_off(b, next), bytes)?;
    ctx.core.arena().store_u64(ctx.body + CURRENT_OFF, next)
}

/// Stores `v` in the cell that is not current, publishes it, releases the old cell.
#[inline]
fn publish_cell(ctx: &mut Ctx<'_>, b: &ValueBody, v: &Value) -> Result<()> {
    let next = 1 - b.current;
    let new = cell::store(ctx.core, v)?;
    {
        let _w = ctx.core.table().write_begin(ctx.slot)?;
        ctx.core
            .arena()
            .write(Offset::new(cell_off(ctx, next)), new)?;
        failpoint!("value.set.before_publish");
        ctx.core.arena().store_u64(ctx.body + CURRENT_OFF, next)?;
    }
    let old = b.cells[b.current as usize & 1];
    if old.owns_resources() {
        cell::release(ctx.core, &old, &mut ctx.released)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates a value holding `v` with Python's `typecode` (None for none).
///
/// # Errors
/// `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for a proxy `v` that is dead or of
/// another store.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuecreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::value;
/// use shmstore::{Value, ValueProxy};
/// let core = store.core();
/// let t = value::create(core, &Value::from("d"), &Value::Float(0.5))?; // one reference: ours
/// let v = ValueProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(v.to_string(), "Value('d', 0.5)");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, typecode: &Value, v: &Value) -> Result<Token> {
    let body = core.alloc(size_of::<ValueBody>() as u64)?;
    let mut released = Vec::new();
    let built = (|| {
        let tc = cell::store(core, typecode)?;
        let c = match cell::store(core, v) {
            Ok(c) => c,
            Err(e) => {
                let _ = cell::release(core, &tc, &mut released);
                return Err(e);
            }
        };
        core.arena().write(
            Offset::new(body),
            ValueBody {
                repr: REPR_CELLS,
                reserved: 0,
                current: 0,
                data: 0,
                elem: ElemType::zeroed(),
                typecode: tc,
                cells: [c, Cell::default()],
            },
        )?;
        core.create_object(type_ids::VALUE, body).inspect_err(|_| {
            let _ = cell::release(core, &tc, &mut released);
            let _ = cell::release(core, &c, &mut released);
        })
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    crate::dispatch::release_all(core, released);
    built
}

/// Creates a plain-data value of element type `elem` holding `bytes` (exactly `elem.size`);
/// `typecode` names the type ([`pod::typecode_of`]).
///
/// # Errors
/// `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuecreatepod-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::pod::{typecode_of, ElemType};
/// use shmstore::types::value;
/// use shmstore::TypedValueProxy;
/// let core = store.core();
/// let t = value::create_pod(core, ElemType::of::<u16>(), typecode_of::<u16>(), &7u16.to_ne_bytes())?;
/// let v = TypedValueProxy::<u16>::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(v.get()?, 7);
/// assert!(value::create_pod(core, ElemType::of::<u16>(), "H", &[1]).is_err()); // wrong size
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create_pod(core: &Core, elem: ElemType, typecode: &str, bytes: &[u8]) -> Result<Token> {
    elem.validate(0)?;
    if bytes.len() != elem.size as usize {
        return Err(Error::ValueError("value: wrong number of bytes".into()));
    }
    let align = u64::from(elem.align);
    let head = size_of::<ValueBody>() as u64;
    // Blocks are 16-aligned: a larger alignment needs room to slide the data up.
    let slack = if align > 16 { align } else { 0 };
    let body = core.alloc(head + 2 * elem.stride() + slack)?;
    let built = (|| {
        let data = (body + head).div_ceil(align) * align;
        let tc = cell::store(core, &Value::from(typecode))?;
        core.arena().copy_in(data, bytes)?;
        core.arena().fill(data + elem.stride(), elem.stride(), 0)?;
        core.arena().write(
            Offset::new(body),
            ValueBody {
                repr: REPR_POD,
                reserved: 0,
                current: 0,
                data,
                elem,
                typecode: tc,
                cells: [Cell::default(); 2],
            },
        )?;
        core.create_object(type_ids::VALUE, body).inspect_err(|_| {
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
    if b.repr == REPR_CELLS {
        // Only the current cell owns anything: the other one was released when it was replaced
        // (or is the zeroed None cell, or a crash's leak).
        let c = b.cells[b.current as usize & 1];
        cell::release(ctx.core, &c, &mut ctx.released)?;
    }
    ctx.core.free(ctx.body)
}

/// Every write publishes with one store, so a body that passes the checks is valid. The write
/// a dead holder left open on the sequence is closed.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    body(ctx)?;
    ctx.core.table().seq_repair(ctx.slot)
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    let b = body(ctx)?;
    out.push_str("Value(");
    cell::load(ctx.core, &b.typecode, ctx.body + 48)?.write_repr(out);
    out.push_str(", ");
    match b.repr {
        REPR_POD => pod::write_repr(&b.elem, &read_pod(ctx, &b)?, out),
        _ => get(ctx)?.write_repr(out),
    }
    out.push(')');
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Typed operations.

/// `v.get()`: a copy of the value (a plain-data value converted, see [`pod::to_value`]).
///
/// # Errors
/// `Corrupt`; `OverflowError` for a `u64` beyond `i64::MAX`.
///
/// # Examples
/// ```
/// # let name = format!("doc-valueget-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::value;
/// use shmstore::Value;
/// let core = store.core();
/// let v = store.value("hello")?;
/// assert_eq!(with_object(core, &v.token(), |ctx| value::get(ctx))?, Value::from("hello"));
/// let n = store.value_of(-3i8)?; // plain data, converted
/// assert_eq!(with_object(core, &n.token(), |ctx| value::get(ctx))?, Value::Int(-3));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get(ctx: &mut Ctx<'_>) -> Result<Value> {
    let b = body(ctx)?;
    if b.repr == REPR_POD {
        return pod::to_value(&b.elem, &read_pod(ctx, &b)?);
    }
    let i = b.current;
    cell::load(ctx.core, &b.cells[i as usize & 1], cell_off(ctx, i))
}

/// The current cell of a cells value, read without the lock for
/// [`dispatch::read_optimistic`](crate::dispatch::read_optimistic); `None` for a plain-data
/// value or words that are not a valid body (the locked path then answers). Decode it, once
/// validated, with [`list::scalar_of`](super::list::scalar_of).
///
/// # Examples
/// ```
/// # let name = format!("doc-getracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::Cell;
/// use shmstore::types::value::get_racy;
/// use shmstore::Value;
/// let v = store.value(7)?;
/// let body = store.objects()?[0].body;
/// let raw = shmstore::segment::open(&name)?;
/// assert_eq!(get_racy(&raw, body), Cell::scalar(&Value::Int(7)));
/// v.set(8)?; // the same kind: in place, in cell 0
/// assert_eq!(get_racy(&raw, body), Cell::scalar(&Value::Int(8)));
/// v.set("eight")?; // another kind: written to cell 1, which becomes current
/// assert_eq!(get_racy(&raw, body), Cell::scalar(&Value::from("eight")));
/// v.set(9.5)?; // and back to cell 0
/// assert_eq!(get_racy(&raw, body), Cell::scalar(&Value::Float(9.5)));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_racy(a: &crate::arena::Arena, body: u64) -> Option<Cell> {
    // The whole body in one bounds check. Both cells are loaded beside the representation (the
    // first u32, native order) and `current`, and the current one is chosen after: the cell
    // loads then do not wait for `current`'s, one dependent load fewer on the read's path.
    let w = a
        .words_slice::<[AtomicU64; BODY_WORDS]>(body, 1)
        .ok()?
        .first()?;
    let repr: [u32; 2] = bytemuck::cast(w[0].load(Relaxed));
    let current = w[CURRENT_WORD].load(Relaxed);
    let c0 = [w[CELL0_WORD].load(Relaxed), w[CELL0_WORD + 1].load(Relaxed)];
    let c1 = [
        w[CELL0_WORD + 2].load(Relaxed),
        w[CELL0_WORD + 3].load(Relaxed),
    ];
    if repr[0] != REPR_CELLS || current > 1 {
        return None;
    }
    Some(bytemuck::cast(if current == 0 { c0 } else { c1 }))
}

/// Where a plain-data value of `T` (whose record is `want`) keeps its two copies: the offset of
/// copy 0, read without the lock for [`dispatch::read_optimistic`](crate::dispatch::read_optimistic).
/// The representation, the record and the copies' place never change after creation, so a
/// proxy reads this once and then [`get_pod_at`] reaches the value from `current` alone. `None`
/// for another representation or type, or copies outside the arena or misaligned for `T`.
///
/// # Examples
/// ```
/// # let name = format!("doc-podcopies-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::pod::ElemType;
/// use shmstore::types::value::{get_pod_at, pod_copies_racy};
/// let v = store.value_of(7u64)?;
/// let (core, t) = (store.core(), v.token());
/// let want = ElemType::of::<u64>();
/// let data = read_optimistic(core, &t, |a, body| pod_copies_racy::<u64>(a, body, &want)).unwrap();
/// v.set(8)?; // the other copy, now current
/// assert_eq!(read_optimistic(core, &t, |a, body| get_pod_at::<u64>(a, body, data)), Some(8));
/// let other = ElemType::of::<i64>();
/// assert_eq!(read_optimistic(core, &t, |a, body| pod_copies_racy::<i64>(a, body, &other)), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn pod_copies_racy<T: bytemuck::Pod>(
    a: &crate::arena::Arena,
    body: u64,
    want: &ElemType,
) -> Option<u64> {
    let [repr, _, data, fingerprint, size_align] = a.load_words_racy::<5>(body)?;
    let repr: [u32; 2] = bytemuck::cast(repr);
    if repr[0] != REPR_POD || !want.racy_words_are_of::<T>(fingerprint, size_align) {
        return None;
    }
    let stride = size_of::<T>().max(1) as u64;
    a.check(data, 2 * stride, align_of::<T>() as u64).ok()?;
    Some(data)
}

/// The plain-data value of `T` whose copies [`pod_copies_racy`] found at `data`, read without the
/// lock for [`dispatch::read_optimistic`](crate::dispatch::read_optimistic), which checks the
/// slot still holds that value: `current`, then the copy it names, with none of the header's
/// checks. `None` for a `current` that is neither copy or a `T` that is not 1, 2, 4 or 8 bytes.
#[inline]
pub fn get_pod_at<T: bytemuck::Pod>(a: &crate::arena::Arena, body: u64, data: u64) -> Option<T> {
    let current = a.load_u64_racy(body.checked_add(CURRENT_OFF)?).ok()?;
    if current > 1 {
        return None;
    }
    // (Checked: `data` is the caller's, whatever `pod_copies_racy` said of it.)
    a.load_pod_racy::<T>(data.checked_add(current * size_of::<T>().max(1) as u64)?)
}

/// `v.set(x)` for the plain-data value of `T` whose copies [`pod_copies_racy`] found at `data`,
/// for [`dispatch::write_fast`](crate::dispatch::write_fast) (which holds the lock, the write,
/// and checks the slot still holds that value): as [`set_pod_fast`] (an aligned word replaced
/// in place, anything else written to the other copy and published by `current`), without
/// reading the header. `None`, having written nothing, for a `current` that is neither copy.
#[inline]
pub fn set_pod_at<T: bytemuck::Pod>(
    a: &crate::arena::Arena,
    body: u64,
    data: u64,
    x: &T,
) -> Option<()> {
    let cur = a.atomic_u64(body.checked_add(CURRENT_OFF)?).ok()?;
    let current = cur.load(Relaxed);
    if current > 1 {
        return None;
    }
    let (size, bytes) = (size_of::<T>() as u64, bytemuck::bytes_of(x));
    // (Checked: `data` is the caller's, whatever `pod_copies_racy` said of it.)
    if matches!(size, 4 | 8) && align_of::<T>() as u64 == size {
        return super::array::store_prim(a, data.checked_add(current * size)?, size as u32, bytes);
    }
    let next = 1 - current;
    a.copy_in(data.checked_add(next * size.max(1))?, bytes)
        .ok()?;
    cur.store(next, Relaxed);
    Some(())
}

/// The record and the bits (the first `size` bytes) of a primitive plain-data value, read
/// without the lock: `None` for another representation, a non-primitive `T` or words that
/// fail a check. Decode them once the read is validated.
#[inline]
pub(crate) fn pod_bits_racy(a: &crate::arena::Arena, body: u64) -> Option<(Kind, [u8; 8])> {
    use super::array::{load_prim_racy, prim_kind_racy};
    let [w0, current, data] = a.load_words_racy::<3>(body)?;
    let repr: [u32; 2] = bytemuck::cast(w0);
    if repr[0] != REPR_POD || current > 1 {
        return None;
    }
    // As `pod::elem_racy` and `ElemType::kind`, without a division (see `prim_kind_racy`).
    let kind = prim_kind_racy(a, body.checked_add(24)?)?;
    let size = kind.size();
    let bits = load_prim_racy(a, data.checked_add(current * u64::from(size))?, size)?;
    Some((kind, bits))
}

/// `v.set(new)` for a cell that owns no block, replacing one that owns none, for
/// [`dispatch::write_fast`](crate::dispatch::write_fast) (which holds the lock and the write).
/// None, a bool, an int or a float over a current cell of the same kind replaces the payload
/// word in place (one store: a crash leaves the old value or the new one); anything else writes
/// the cell that is not current and publishes it with one store of `current`, the crash
/// protocol of [`set`]. `None`, having written nothing, for a plain-data value or when either
/// cell owns a block ([`set`] releases it).
///
/// # Examples
/// ```
/// # let name = format!("doc-valuesetfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::Cell;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::value::set_fast;
/// use shmstore::Value;
/// let v = store.value(1)?;
/// let (core, t) = (store.core(), v.token());
/// let s = Cell::scalar(&Value::from("short")).unwrap();
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, s)), Some(()));
/// assert_eq!(v.get()?, Value::from("short"));
/// let (two, half) = (Cell::scalar(&Value::Int(2)).unwrap(), Cell::scalar(&Value::Float(0.5)).unwrap());
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, two)), Some(())); // other copy
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, two)), Some(())); // in place
/// assert_eq!(v.get()?, Value::Int(2));
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, half)), Some(())); // other kind
/// assert_eq!(v.get()?, Value::Float(0.5));
/// let p = store.value_of(1u8)?;
/// assert_eq!(write_fast(core, &p.token(), |a, body| set_fast(a, body, s)), None); // plain data
/// # Ok::<(), shmstore::Error>(())
/// ```
// Always inlined: the typed call and `call_method` on a typed proxy both inline it.
#[inline(always)]
pub fn set_fast(a: &crate::arena::Arena, body: u64, new: Cell) -> Option<()> {
    const CELL_WORDS: usize = (CELLS_OFF / 8) as usize;
    if new.owns_resources() {
        return None;
    }
    let w = a.words::<[AtomicU64; CELL_WORDS + 4]>(body).ok()?;
    let repr: [u32; 2] = bytemuck::cast(w[0].load(Relaxed));
    let current = w[(CURRENT_OFF / 8) as usize].load(Relaxed);
    if repr[0] != REPR_CELLS || current > 1 {
        return None;
    }
    let old = CELL_WORDS + 2 * current as usize;
    let cell: &[AtomicU64; 2] = w.get(old..old + 2)?.try_into().ok()?;
    // A number over a number of its kind: only the payload word changes, so one store
    // replaces it in place and a crash leaves the old value or the new one.
    if new.replace_word_scalar(cell).is_some() {
        return Some(());
    }
    if Cell::from_words([cell[0].load(Relaxed), cell[1].load(Relaxed)]).owns_resources() {
        return None;
    }
    let next = 1 - current;
    let at = CELL_WORDS + 2 * next as usize;
    let [w0, w1] = new.to_words();
    w[at].store(w0, Relaxed);
    w[at + 1].store(w1, Relaxed);
    w[(CURRENT_OFF / 8) as usize].store(next, Relaxed);
    Some(())
}

/// `v.set(x)` of a plain-data value of type `want` (`bytes` are `x`'s), for
/// [`dispatch::write_fast`](crate::dispatch::write_fast). A `T` of 4 or 8 bytes aligned to
/// its size is stored over the current copy in place (one store: a crash leaves the old value
/// or the new one); any other is written to the copy that is not current and published with
/// one store of `current`, the crash protocol of [`set_pod`]. `None`, having written nothing,
/// for another representation or type (the general path reports it) or words that fail a
/// check.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuesetpodfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::pod::ElemType;
/// use shmstore::types::value::set_pod_fast;
/// let v = store.value_of(1u32)?;
/// let (core, t) = (store.core(), v.token());
/// let want = ElemType::of::<u32>();
/// let seven = 7u32.to_ne_bytes();
/// assert_eq!(write_fast(core, &t, |a, body| set_pod_fast(a, body, &want, &seven)), Some(()));
/// assert_eq!(v.get()?, 7);
/// let other = ElemType::of::<f32>();
/// assert_eq!(write_fast(core, &t, |a, body| set_pod_fast(a, body, &other, &seven)), None);
/// // Three bytes: written to the other copy, then published.
/// let rgb = store.value_of([1u8, 2, 3])?;
/// let want = ElemType::of::<[u8; 3]>();
/// let t = rgb.token();
/// assert_eq!(write_fast(core, &t, |a, body| set_pod_fast(a, body, &want, &[4, 5, 6])), Some(()));
/// assert_eq!(rgb.get()?, [4, 5, 6]);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set_pod_fast(
    a: &crate::arena::Arena,
    body: u64,
    want: &ElemType,
    bytes: &[u8],
) -> Option<()> {
    let w = a.words::<[AtomicU64; 5]>(body).ok()?;
    let [w0, current, data, fingerprint, size_align] =
        [&w[0], &w[1], &w[2], &w[3], &w[4]].map(|x| x.load(Relaxed));
    let repr: [u32; 2] = bytemuck::cast(w0);
    let want_sa = want.size_align_word();
    if repr[0] != REPR_POD
        || current > 1
        || fingerprint != want.fingerprint
        || size_align != want_sa
        || bytes.len() != want.size as usize
    {
        return None;
    }
    if matches!(want.size, 4 | 8) && want.align == want.size {
        // An aligned word: one store replaces the current copy in place (a crash leaves the
        // old value or the new one), as `array::store_prim` does for an element.
        let at = data.checked_add(current * u64::from(want.size))?;
        return super::array::store_prim(a, at, want.align, bytes);
    }
    let next = 1 - current;
    let at = data.checked_add(next * want.stride())?;
    a.check(at, want.stride(), u64::from(want.align)).ok()?;
    a.copy_in(at, bytes).ok()?;
    w[1].store(next, Relaxed);
    Some(())
}

/// `v.set(x)` of a value whose representation is read under the lock: a scalar cell
/// ([`set_fast`]) or a primitive plain-data number ([`set_pod_fast`], after `array.array`'s
/// conversion). `None`, having written nothing, for anything else.
// Always inlined: `call_method` on a `ValueProxy` inlines it (and `set_at` for the others).
#[inline(always)]
fn set_value_fast(a: &crate::arena::Arena, body: u64, x: &Value) -> Option<()> {
    let repr: [u32; 2] = bytemuck::cast(a.load_u64(body).ok()?);
    match repr[0] {
        REPR_CELLS => set_fast(a, body, Cell::scalar(x)?),
        REPR_POD => {
            // What `set_pod_fast` does with the record read from the body itself (so no record
            // to compare), without a division or a call to `memcpy` (see
            // `array::prim_elem_racy`, `array::store_prim`).
            let e = super::array::prim_elem_racy(a, body.checked_add(24)?)?;
            let mut buf = [0u8; 8];
            let bytes = buf.get_mut(..e.size as usize)?;
            pod::from_value(&e, x, bytes).ok()?;
            let w = a.words::<[AtomicU64; 3]>(body).ok()?;
            let current = w[1].load(Relaxed);
            if current > 1 {
                return None;
            }
            let next = 1 - current;
            let at = w[2].load(Relaxed).checked_add(next * u64::from(e.size))?;
            super::array::store_prim(a, at, e.align, bytes)?;
            w[1].store(next, Relaxed);
            Some(())
        }
        _ => None,
    }
}

const M_SET: usize = super::method_idx(DESC.methods, "set");
const M_SETATTR: usize = super::method_idx(DESC.methods, "__setattr__");

/// `call_method`'s in-place writes (see `FastHooks::write`): `set(x)` and the `value`
/// attribute's assignment, of a scalar (cells) or a primitive number (plain data), under a
/// lock that was free.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuefastwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::value::{fast_write, DESC};
/// use shmstore::Value;
/// let v = store.value(1)?;
/// let p = store.value_of(1u8)?;
/// let core = store.core();
/// let set = DESC.method_index("set").unwrap();
/// assert_eq!(fast_write(core, &v.token(), set, &[Value::Int(2)]), Some(Value::None));
/// assert_eq!(fast_write(core, &p.token(), set, &[Value::Int(3)]), Some(Value::None));
/// assert_eq!((v.get()?, p.get()?), (Value::Int(2), 3));
/// // 300 does not fit a u8: the general path reports the OverflowError.
/// assert_eq!(fast_write(core, &p.token(), set, &[Value::Int(300)]), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined into a typed proxy's `call_method` (only the `match`: the work is a function of its
// own), so a call of another method costs a compare or two, not a call.
#[inline]
pub fn fast_write(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    let x = match (method, args) {
        (M_SET, [x]) => x,
        (M_SETATTR, [Value::Str(name), x]) if name == "value" || name == "_value" => x,
        _ => return None,
    };
    set_call_fast(core, token, x)
}

/// `set(x)` in place, for [`fast_write`].
#[inline(never)]
fn set_call_fast(core: &Core, token: &Token, x: &Value) -> Option<Value> {
    crate::dispatch::write_fast(core, token, |a, body| set_value_fast(a, body, x))?;
    Some(Value::None)
}

const M_GET: usize = super::method_idx(DESC.methods, "get");
const M_GETATTRIBUTE: usize = super::method_idx(DESC.methods, "__getattribute__");

/// `call_method`'s lock-free reads (see `FastHooks::read`): `get()` and the `value`
/// attribute.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuefastread-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::value::{fast_read, DESC};
/// use shmstore::Value;
/// let v = store.value(42)?;
/// let (core, t) = (store.core(), v.token());
/// let get = DESC.method_index("get").unwrap();
/// assert_eq!(fast_read(core, &t, get, &[]), Some(Value::Int(42)));
/// let getattr = DESC.method_index("__getattribute__").unwrap();
/// assert_eq!(fast_read(core, &t, getattr, &[Value::from("value")]), Some(Value::Int(42)));
/// let set = DESC.method_index("set").unwrap();
/// assert_eq!(fast_read(core, &t, set, &[Value::Int(1)]), None); // a write: locked path
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined as `fast_write` is: the `match` only.
#[inline]
pub fn fast_read(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_GET, []) => {}
        (M_GETATTRIBUTE, [Value::Str(a)]) if a == "value" || a == "_value" => {}
        _ => return None,
    }
    get_call_fast(core, token)
}

/// [`get_optimistic`] as a function of its own, for [`fast_read`].
#[inline(never)]
fn get_call_fast(core: &Core, token: &Token) -> Option<Value> {
    get_optimistic(core, token)
}

/// `call_method`'s fast path on the handle's pinned slot (`Handle::read_optimistic`,
/// `Handle::write_fast`), for a proxy's `call_method` (see `dispatch::fast_builtin`): the
/// answers of [`fast_read`] and [`fast_write`], without finding the slot again.
#[inline(always)]
pub(crate) fn fast_call(h: &Handle, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_GET, []) => get_at(h),
        (M_GETATTRIBUTE, [Value::Str(a)]) if a == "value" || a == "_value" => get_at(h),
        (M_SET, [x]) => set_at(h, x),
        (M_SETATTR, [Value::Str(name), x]) if name == "value" || name == "_value" => set_at(h, x),
        _ => None,
    }
}

/// [`fast_call`] for a `ValueProxy`'s `call_method` (see `dispatch::fast_builtin_typed`):
/// `get()` and `set(x)` take [`fast_call`]'s steps inlined, as the typed `get` and `set` are
/// (for a method index known at compile time only its arm is left).
#[inline(always)]
pub(crate) fn fast_call_inline(h: &Handle, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_GET, []) => get_inline(h),
        (M_SET, [x]) => set_inline(h, x).map(|()| Value::None),
        _ => fast_call(h, method, args),
    }
}

/// [`fast_call`] for a `TypedValueProxy<T>`, whose element record is `want` (`T`'s): `get()`
/// reads a `T` as the typed `get` does ([`get_typed`]) and `set(x)` stores one
/// ([`set_typed`]), each then as [`fast_call`]; the rest as [`fast_call`].
#[inline(always)]
pub(crate) fn fast_call_typed<T: Pod>(
    h: &Handle,
    want: &ElemType,
    method: usize,
    args: &[Value],
) -> Option<Value> {
    match (method, args) {
        // (The typed step where it applies to `T`, then the out-of-line one, which declines
        // what it declines but measured faster with it than without: see
        // `array::fast_call_typed`.)
        (M_GET, []) if super::array::typed_get_applies::<T>() => {
            get_typed::<T>(h, want).or_else(|| get_at(h))
        }
        (M_SET, [x]) if super::array::typed_set_applies::<T>() => {
            set_typed::<T>(h, want, x).or_else(|| set_at(h, x))
        }
        _ => fast_call(h, method, args),
    }
}

/// `get()` of a plain-data value of `T` (whose record is `want`) without the lock: the current
/// copy read as a `T` when the value's record is exactly `want` (fingerprint, size and
/// alignment, kind), then converted by `want`'s primitive kind, as the locked path converts by
/// the value's record. `None` for a `T` that is not a primitive number or a record that
/// differs.
// Always inlined, as the typed `get` is inlined: the read of a `T` is the whole call.
#[inline(always)]
fn get_typed<T: Pod>(h: &Handle, want: &ElemType) -> Option<Value> {
    let kind = super::array::prim_kind_checked::<T>(want)?;
    // (The closure always inlined, as in `array::getitem_typed`.)
    let x = h.read_optimistic(
        #[inline(always)]
        |a, body| get_exact_racy::<T>(a, body, want),
    )?;
    super::array::value_of_prim(kind, &x)
}

/// A plain-data value whose element record is exactly `want` (every word of it), its current
/// copy read without the lock as a `T`, for [`get_typed`]: `None` for cells or another record.
#[inline(always)]
fn get_exact_racy<T: Pod>(a: &crate::arena::Arena, body: u64, want: &ElemType) -> Option<T> {
    a.load_pod_racy::<T>(exact_current(a, body, want)?)
}

/// The offset of the current copy of a plain-data value whose element record is exactly
/// `want` (every word of it); `None` for cells or another record.
#[inline(always)]
fn exact_current(a: &crate::arena::Arena, body: u64, want: &ElemType) -> Option<u64> {
    let want_sa = want.size_align_word();
    let want_kr: u64 = bytemuck::cast([want.kind, want.reserved]);
    let [w0, current, data, fingerprint, size_align, kr] = a.load_words_racy::<6>(body)?;
    let repr: [u32; 2] = bytemuck::cast(w0);
    if repr[0] != REPR_POD
        || current > 1
        || fingerprint != want.fingerprint
        || size_align != want_sa
        || kr != want_kr
    {
        return None;
    }
    data.checked_add(current * want.stride())
}

/// `set(x)` of a plain-data value of `T` (whose record is `want`): `x` converted by `T`'s
/// primitive kind (a constant), as the locked path converts by the value's record, and stored
/// over the current copy in place when the record is exactly `want` and `T` is a word of 4 or
/// 8 bytes aligned to its size (one store, as the typed `set` does). `None`, having written
/// nothing, for any other `T`, record or `x` (the general path answers, errors included).
#[inline(always)]
fn set_typed<T: Pod>(h: &Handle, want: &ElemType, x: &Value) -> Option<Value> {
    let word = super::array::prim_word_of::<T>(want, x)?;
    let bytes = word.get(..size_of::<T>())?;
    h.write_fast(
        #[inline(always)]
        |a, body| super::array::store_prim(a, exact_current(a, body, want)?, want.align, bytes),
    )?;
    Some(Value::None)
}

/// [`get_optimistic`] on the handle's pinned slot (as the typed `get`: a cell, else a
/// primitive plain-data value's bits).
#[inline(always)]
pub(crate) fn get_inline(h: &Handle) -> Option<Value> {
    if let Some(c) = h.read_optimistic(get_racy) {
        return c.inline_value();
    }
    pod_bits_value(h.read_optimistic(pod_bits_racy)?)
}

/// [`get_inline`], out of line.
#[inline(never)]
fn get_at(h: &Handle) -> Option<Value> {
    get_inline(h)
}

/// [`set_call_fast`] on the handle's pinned slot: one in-place write of a scalar cell or a
/// primitive plain-data value (`Some(())`), or `None`, having written nothing.
#[inline(always)]
fn set_inline(h: &Handle, x: &Value) -> Option<()> {
    h.write_fast(
        #[inline(always)]
        |a, body| set_value_fast(a, body, x),
    )
}

/// [`set_inline`], out of line.
#[inline(never)]
fn set_at(h: &Handle, x: &Value) -> Option<Value> {
    set_inline(h, x).map(|()| Value::None)
}

/// The value read without the lock, or `None` when the locked path must answer: a cell is
/// copied out under the sequence ([`get_racy`]) and decoded once the read is validated (a
/// `Value` built inside the read section costs twice as much); so are a primitive plain-data
/// value's bits.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuegetopt-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::value::get_optimistic;
/// use shmstore::Value;
/// let core = store.core();
/// let v = store.value("short")?;
/// assert_eq!(get_optimistic(core, &v.token()), Some(Value::from("short")));
/// let p = store.value_of(2.5f64)?;
/// assert_eq!(get_optimistic(core, &p.token()), Some(Value::Float(2.5)));
/// let long = store.value("a string kept in a block")?;
/// assert_eq!(get_optimistic(core, &long.token()), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_optimistic(core: &Core, token: &Token) -> Option<Value> {
    use crate::dispatch::read_optimistic;
    // (Two passes, cells first: one pass for both representations costs the cells more.)
    if let Some(c) = read_optimistic(core, token, get_racy) {
        return c.inline_value();
    }
    pod_bits_value(read_optimistic(core, token, pod_bits_racy)?)
}

/// The value of the bits [`pod_bits_racy`] read, once the read is validated.
#[inline]
pub(crate) fn pod_bits_value((kind, bits): (Kind, [u8; 8])) -> Option<Value> {
    pod::scalar_of(kind, bits)
}

/// `v.set(x)`. A plain-data value converts `x` with `array.array`'s rules.
///
/// # Errors
/// `OutOfMemory` (the value is unchanged); for plain data `TypeError`/`OverflowError` as
/// [`pod::from_value`].
///
/// # Examples
/// ```
/// # let name = format!("doc-valueset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::value;
/// use shmstore::{Error, Value};
/// let core = store.core();
/// let v = store.value(1)?;
/// with_object(core, &v.token(), |ctx| value::set(ctx, &Value::from("anything")))?;
/// assert_eq!(v.get()?, Value::from("anything"));
/// // A plain-data value converts with array.array's rules.
/// let b = store.value_of(0u8)?;
/// let too_big = with_object(core, &b.token(), |ctx| value::set(ctx, &Value::Int(300)));
/// assert!(matches!(too_big, Err(Error::OverflowError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set(ctx: &mut Ctx<'_>, v: &Value) -> Result<()> {
    let b = body(ctx)?;
    if b.repr == REPR_POD {
        return set_pod_value(ctx, &b, v);
    }
    publish_cell(ctx, &b, v)
}

fn set_pod_value(ctx: &mut Ctx<'_>, b: &ValueBody, v: &Value) -> Result<()> {
    let mut small = [0u8; 8];
    match b.elem.kind() {
        Kind::Other => publish_pod(ctx, b, pod::bytes_arg(&b.elem, v)?),
        _ => {
            let n = b.elem.size as usize;
            let buf = small
                .get_mut(..n)
                .ok_or(Error::corrupt("value: bad element size", ctx.body))?;
            pod::from_value(&b.elem, v, buf)?;
            publish_pod(ctx, b, buf)
        }
    }
}

/// `v.value += n` in one step under the lock: Python's `+=` (ints, floats and bools mix;
/// strings, bytes, lists and tuples concatenate). Returns the new value.
///
/// # Errors
/// `TypeError` with Python's message for operands `+=` refuses; `OverflowError` for an int sum
/// beyond 64 bits (or beyond a plain-data element's range).
///
/// # Examples
/// ```
/// # let name = format!("doc-valueadd-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::value;
/// use shmstore::{Error, Value};
/// let v = store.value(1)?;
/// let (core, t) = (store.core(), v.token());
/// assert_eq!(with_object(core, &t, |ctx| value::add(ctx, &Value::Float(0.5)))?, Value::Float(1.5));
/// assert!(matches!(with_object(core, &t, |ctx| value::add(ctx, &Value::from("x"))), Err(Error::TypeError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn add(ctx: &mut Ctx<'_>, n: &Value) -> Result<Value> {
    let old = get(ctx)?;
    let new = py_iadd(&old, n)?;
    set(ctx, &new)?;
    Ok(new)
}

/// Python's typecode given at creation (None for none).
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuetypecode-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::value;
/// use shmstore::Value;
/// let core = store.core();
/// let v = store.value_with_typecode("i", 5)?;
/// assert_eq!(with_object(core, &v.token(), |ctx| value::typecode(ctx))?, Value::from("i"));
/// let none = store.value(5)?;
/// assert_eq!(with_object(core, &none.token(), |ctx| value::typecode(ctx))?, Value::None);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn typecode(ctx: &mut Ctx<'_>) -> Result<Value> {
    let b = body(ctx)?;
    cell::load(ctx.core, &b.typecode, ctx.body + 48)
}

/// The record of a plain-data value's `T`, or None for a value kept in cells.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-valueelemtype-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::pod::ElemType;
/// use shmstore::types::value;
/// let core = store.core();
/// let p = store.value_of(1u64)?;
/// assert_eq!(with_object(core, &p.token(), |ctx| value::elem_type(ctx))?, Some(ElemType::of::<u64>()));
/// let v = store.value(1)?; // a Python value, kept in cells
/// assert_eq!(with_object(core, &v.token(), |ctx| value::elem_type(ctx))?, None);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn elem_type(ctx: &mut Ctx<'_>) -> Result<Option<ElemType>> {
    let b = body(ctx)?;
    Ok((b.repr == REPR_POD).then_some(b.elem))
}

fn check_elem(ctx: &Ctx<'_>, b: &ValueBody, want: &ElemType) -> Result<()> {
    if b.repr != REPR_POD || b.elem != *want {
        return Err(mismatch(b, want, ctx));
    }
    Ok(())
}

#[cold]
fn mismatch(b: &ValueBody, want: &ElemType, ctx: &Ctx<'_>) -> Error {
    let held = if b.repr == REPR_POD {
        let tc = cell::load(ctx.core, &b.typecode, ctx.body + 48)
            .map(|v| v.repr())
            .unwrap_or_default();
        format!(
            "plain data of another type (typecode {tc}, size {}, align {})",
            b.elem.size, b.elem.align
        )
    } else {
        "a Python value, not plain data".to_owned()
    };
    Error::TypeError(format!(
        "this proxy's type (size {}, align {}) does not match the shared Value, which holds {held}",
        want.size, want.align
    ))
}

/// Checks that the value is plain data of type `want`.
///
/// # Errors
/// `TypeError` naming what the value holds instead.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuecheckpod-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::pod::ElemType;
/// use shmstore::types::value;
/// use shmstore::Error;
/// let p = store.value_of(1i32)?;
/// let (core, t) = (store.core(), p.token());
/// with_object(core, &t, |ctx| value::check_pod(ctx, &ElemType::of::<i32>()))?;
/// let wrong = with_object(core, &t, |ctx| value::check_pod(ctx, &ElemType::of::<u32>()));
/// assert!(matches!(wrong, Err(Error::TypeError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn check_pod(ctx: &mut Ctx<'_>, want: &ElemType) -> Result<()> {
    let b = body(ctx)?;
    check_elem(ctx, &b, want)
}

/// Copies the plain-data value (of type `want`) into `out` (exactly `want.size` bytes).
///
/// # Errors
/// `TypeError` for another type.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuegetpod-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::pod::ElemType;
/// use shmstore::types::value;
/// let p = store.value_of(0x1234u16)?;
/// let mut out = [0u8; 2];
/// with_object(store.core(), &p.token(), |ctx| value::get_pod(ctx, &ElemType::of::<u16>(), &mut out))?;
/// assert_eq!(u16::from_ne_bytes(out), 0x1234);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_pod(ctx: &mut Ctx<'_>, want: &ElemType, out: &mut [u8]) -> Result<()> {
    let b = body(ctx)?;
    check_elem(ctx, &b, want)?;
    if out.len() != want.size as usize {
        return Err(Error::ValueError("value: wrong number of bytes".into()));
    }
    ctx.core.arena().copy_out(pod_off(&b, b.current), out)
}

/// Sets the plain-data value (of type `want`) to `bytes` (exactly `want.size` bytes).
///
/// # Errors
/// `TypeError` for another type.
///
/// # Examples
/// ```
/// # let name = format!("doc-valuesetpod-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::pod::ElemType;
/// use shmstore::types::value;
/// let p = store.value_of(0f64)?;
/// let bytes = 2.5f64.to_ne_bytes();
/// with_object(store.core(), &p.token(), |ctx| value::set_pod(ctx, &ElemType::of::<f64>(), &bytes))?;
/// assert_eq!(p.get()?, 2.5);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set_pod(ctx: &mut Ctx<'_>, want: &ElemType, bytes: &[u8]) -> Result<()> {
    let b = body(ctx)?;
    check_elem(ctx, &b, want)?;
    publish_pod(ctx, &b, bytes)
}

/// Python's `a += b` for the values a shared Value can hold.
///
/// # Errors
/// As [`add`].
///
/// # Examples
/// ```
/// use shmstore::types::value::py_iadd;
/// use shmstore::Value;
/// assert_eq!(py_iadd(&Value::Int(2), &Value::Int(3))?, Value::Int(5));
/// assert_eq!(py_iadd(&Value::from("ab"), &Value::from("c"))?, Value::from("abc"));
/// assert_eq!(py_iadd(&Value::from(vec![1]), &Value::from(vec![2]))?, Value::from(vec![1, 2]));
/// assert!(py_iadd(&Value::None, &Value::Int(1)).is_err()); // TypeError, as Python's
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn py_iadd(a: &Value, b: &Value) -> Result<Value> {
    use Value::*;
    let overflow = || Error::OverflowError("int too large to convert to a 64-bit int".into());
    let int = |v: &Value| match v {
        Int(i) => Some(*i),
        Bool(x) => Some(i64::from(*x)),
        _ => Option::None,
    };
    Ok(match (a, b) {
        (Int(_) | Bool(_), Int(_) | Bool(_)) => {
            let (x, y) = (int(a).unwrap_or(0), int(b).unwrap_or(0));
            Int(x.checked_add(y).ok_or_else(overflow)?)
        }
        (Float(x), Float(y)) => Float(x + y),
        (Float(x), Int(_) | Bool(_)) => Float(x + int(b).unwrap_or(0) as f64),
        (Int(_) | Bool(_), Float(y)) => Float(int(a).unwrap_or(0) as f64 + y),
        (Str(x), Str(y)) => Str(format!("{x}{y}")),
        (Str(_), other) => {
            return Err(Error::TypeError(format!(
                "can only concatenate str (not \"{}\") to str",
                other.type_name()
            )))
        }
        (Bytes(x), Bytes(y)) => Bytes([x.as_slice(), y.as_slice()].concat()),
        (Tuple(x), Tuple(y)) => Tuple([x.as_slice(), y.as_slice()].concat()),
        (List(x), other) => {
            let more = super::iter_arg(other)?;
            List([x.as_slice(), more.as_slice()].concat())
        }
        (x, y) => {
            return Err(Error::TypeError(format!(
                "unsupported operand type(s) for +=: '{}' and '{}'",
                x.type_name(),
                y.type_name()
            )))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers (the methods of CPython's `managers.Value`, written in Python).

fn m_get(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    pyargs::function::<0>("Value.get", a, k, [])?;
    get(ctx)
}

fn m_set(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = pyargs::function("Value.set", a, k, ["value"])?;
    set(ctx, v)?;
    Ok(Value::None)
}

fn m_add(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [n] = pyargs::function("Value.add", a, k, ["n"])?;
    add(ctx, n)
}

fn m_getattribute(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [name] = pyargs::wrapper("__getattribute__", a, k)?;
    match pyargs::attr_name(name)? {
        "value" | "_value" => get(ctx),
        "_typecode" => typecode(ctx),
        other => Err(Error::AttributeError(format!(
            "'Value' object has no attribute '{other}'"
        ))),
    }
}

fn m_setattr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [name, v] = pyargs::wrapper("__setattr__", a, k)?;
    match pyargs::attr_name(name)? {
        "value" | "_value" => set(ctx, v)?,
        other => {
            return Err(Error::AttributeError(format!(
                "'Value' object has no attribute '{other}'"
            )))
        }
    }
    Ok(Value::None)
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    pyargs::function::<0>("Value.__repr__", a, k, [])?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_table_is_sorted_for_binary_search() {
        for w in DESC.methods.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn iadd_follows_python() {
        assert_eq!(
            py_iadd(&Value::Int(1), &Value::Float(1.5)),
            Ok(Value::Float(2.5))
        );
        assert_eq!(
            py_iadd(&Value::Bool(true), &Value::Int(1)),
            Ok(Value::Int(2))
        );
        assert!(matches!(
            py_iadd(&Value::Int(i64::MAX), &Value::Int(1)),
            Err(Error::OverflowError(_))
        ));
        assert_eq!(
            py_iadd(&Value::None, &Value::Int(1)),
            Err(Error::TypeError(
                "unsupported operand type(s) for +=: 'NoneType' and 'int'".into()
            ))
        );
    }
}
