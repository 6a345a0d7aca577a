//! `list`: Python's list as a referent.
//!
//! Body: a [`ListBody`] (length, capacity, offset of the cell array) and an array of `cap`
//! [`Cell`]s, of which the first `len` are in use.
//!
//! Crash protocol (the holder of the object's lock may die at any instruction):
//! - append: write the new cell past the end, then publish it with one store of `len`; a crash
//!   before the store leaves the old list (and at worst a leaked block the cell owned).
//! - growth: allocate the new array, copy, store the new array's offset, then the new capacity,
//!   then free the old array; every intermediate state is a valid list (the capacity is never
//!   larger than the array it describes); a crash leaks at most one array: the new one before the
//!   publishing stores, the old one after them.
//! - sort, slice assignment, insert, delete and the other rearrangements build the new cell
//!   array in a fresh block and publish it with the same two stores, so a crash leaves either
//!   the old list or the new one.
//! - `l[i] = v` replaces a 16-byte cell in place, which takes two stores: the old cell is first
//!   saved in the body's journal, which is published with one store of the journal index; then
//!   the cell is written; then the journal is cleared. A crash while the journal is set is rolled
//!   back by `repair` (the old cell is restored; the new value's block leaks until a repair), so
//!   a torn cell is never seen.
//! - a replaced or removed cell's blocks are freed only after the new state is published.
//!
//! Lock-free readers ([`len_racy`], [`get_racy`]): every mutation runs inside a write on the
//! slot's sequence (`Table::write_begin`, odd while it writes), so an optimistic reader sees
//! either the state before it or after it, never one in between; a holder that dies leaves the
//! sequence odd until `repair` (readers take the lock meanwhile).
//!
//! # Examples
//! ```
//! # let name = format!("doc-list-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let l = store.list([3, 1, 2])?;
//! l.call_method("sort", ())?;
//! l.call_method("__iadd__", (vec![4],))?;
//! assert_eq!(l.call_method("__getitem__", (-1,))?, Value::Int(4));
//! assert_eq!(l.to_string(), "[1, 2, 3, 4]");
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use bytemuck::{Pod, Zeroable};

use super::{bind_args, index_arg, iter_arg, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::{Arena, Offset};
use crate::cell::{self, Cell, CELL_SIZE};
use crate::core::Core;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::proxy::Handle;
use crate::token::{type_ids, Token};
use crate::value::{Slice, Value};

/// The fixed part of a list's body.
///
/// # Examples
/// ```
/// # let name = format!("doc-listbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::cell::Cell;
/// use shmstore::types::list::ListBody;
/// use shmstore::Value;
/// let p = store.list([7, 8])?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: ListBody = raw.read(Offset::new(body))?;
/// assert_eq!(b.len, 2);
/// assert!(b.cap >= 2);
/// let cells = raw.slice::<Cell>(b.cells, b.len)?;
/// assert_eq!(cells[1], Cell::scalar(&Value::Int(8)).unwrap()); // an int lives in its cell
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ListBody {
    /// Cells in use.
    pub len: u64,
    /// Cells the array has room for.
    pub cap: u64,
    /// Offset of the cell array (0 when `cap` is 0).
    pub cells: u64,
    /// Journal of an in-place cell replacement: index + 1 of the cell being replaced (0: none).
    pub journal: u64,
    /// The replaced cell's old contents, restored by `repair` while `journal` is set.
    pub journal_cell: Cell,
}
const _: () = assert!(size_of::<ListBody>() == 48);

/// Offset of `journal` in the body.
const JOURNAL_AT: u64 = 24;
/// Offset of `journal_cell` in the body.
const JOURNAL_CELL_AT: u64 = 32;

const CELL: u64 = CELL_SIZE as u64;

/// The list type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::LIST,
    typeid: "list",
    proxy: "ListProxy",
    methods: &[
        Method {
            name: "__add__",
            call: m_add,
        },
        Method {
            name: "__contains__",
            call: m_contains,
        },
        Method {
            name: "__delitem__",
            call: m_delitem,
        },
        Method {
            name: "__getitem__",
            call: m_getitem,
        },
        Method {
            name: "__iadd__",
            call: m_iadd,
        },
        Method {
            name: "__imul__",
            call: m_imul,
        },
        Method {
            name: "__iter__",
            call: m_iter,
        },
        Method {
            name: "__len__",
            call: m_len,
        },
        Method {
            name: "__mul__",
            call: m_mul,
        },
        Method {
            name: "__repr__",
            call: m_repr,
        },
        Method {
            name: "__reversed__",
            call: m_reversed,
        },
        Method {
            name: "__rmul__",
            call: m_mul,
        },
        Method {
            name: "__setitem__",
            call: m_setitem,
        },
        Method {
            name: "__str__",
            call: m_repr,
        },
        Method {
            name: "append",
            call: m_append,
        },
        Method {
            name: "clear",
            call: m_clear,
        },
        Method {
            name: "copy",
            call: m_copy,
        },
        Method {
            name: "count",
            call: m_count,
        },
        Method {
            name: "extend",
            call: m_extend,
        },
        Method {
            name: "index",
            call: m_index,
        },
        Method {
            name: "insert",
            call: m_insert,
        },
        Method {
            name: "pop",
            call: m_pop,
        },
        Method {
            name: "remove",
            call: m_remove,
        },
        Method {
            name: "reverse",
            call: m_reverse,
        },
        Method {
            name: "sort",
            call: m_sort,
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
// Raw access to the body.

/// Reads and validates the body: `len <= cap` and the cell array lies inside the arena.
#[inline]
fn body(ctx: &Ctx<'_>) -> Result<ListBody> {
    let b: ListBody = ctx.core.arena().read(crate::arena::Offset::new(ctx.body))?;
    if b.len > b.cap {
        return Err(Error::corrupt("list length exceeds capacity", ctx.body));
    }
    if b.cap > 0 {
        let bytes = b
            .cap
            .checked_mul(CELL)
            .ok_or(Error::corrupt("list capacity overflows", ctx.body))?;
        ctx.core.arena().check(b.cells, bytes, 8)?;
    }
    Ok(b)
}

/// Opens a write on the list's sequence for the duration of one mutation (nested: shared).
#[inline]
fn writing<'a>(ctx: &Ctx<'a>) -> Result<crate::table::SeqWrite<'a>> {
    ctx.core.table().write_begin(ctx.slot)
}

#[inline]
fn store_len(ctx: &Ctx<'_>, len: u64) -> Result<()> {
    ctx.core.arena().store_u64(ctx.body, len)
}

/// Publishes a new cell array: offset first, then capacity (never larger than the array), then
/// length.
fn publish(ctx: &Ctx<'_>, cells: u64, cap: u64, len: u64) -> Result<()> {
    let a = ctx.core.arena();
    a.store_u64(ctx.body + 8, cap.min(a.load_u64(ctx.body + 8)?))?;
    a.store_u64(ctx.body + 16, cells)?;
    a.store_u64(ctx.body + 8, cap)?;
    a.store_u64(ctx.body, len)
}

#[inline]
fn cell_at(b: &ListBody, i: u64) -> u64 {
    b.cells + i * CELL
}

#[inline]
fn read_cell(ctx: &Ctx<'_>, b: &ListBody, i: u64) -> Result<Cell> {
    ctx.core
        .arena()
        .read(crate::arena::Offset::new(cell_at(b, i)))
}

#[inline]
fn write_cell(ctx: &Ctx<'_>, b: &ListBody, i: u64, c: Cell) -> Result<()> {
    ctx.core
        .arena()
        .write(crate::arena::Offset::new(cell_at(b, i)), c)
}

#[inline]
fn load(ctx: &Ctx<'_>, b: &ListBody, i: u64) -> Result<Value> {
    cell::load(ctx.core, &read_cell(ctx, b, i)?, cell_at(b, i))
}

fn cells(ctx: &Ctx<'_>, b: &ListBody) -> Result<Vec<Cell>> {
    Ok(ctx.core.arena().slice::<Cell>(b.cells, b.len)?.to_vec())
}

/// Writes `cells` as the list's new contents in a fresh array, publishes it, frees the old one.
fn replace_all(ctx: &Ctx<'_>, b: &ListBody, cells: &[Cell]) -> Result<()> {
    let n = cells.len() as u64;
    let (off, cap) = if n == 0 {
        (0, 0)
    } else {
        let off = ctx.core.alloc(n * CELL)?;
        ctx.core.arena().copy_in(off, bytemuck::cast_slice(cells))?;
        (off, n)
    };
    failpoint!("list.rebuild.before_publish");
    publish(ctx, off, cap, n)?;
    if b.cap > 0 {
        ctx.core.free(b.cells)?;
    }
    Ok(())
}

/// Makes room for `extra` more cells, growing the array by doubling.
fn reserve(ctx: &Ctx<'_>, b: &mut ListBody, extra: u64) -> Result<()> {
    let need = b
        .len
        .checked_add(extra)
        .filter(|&n| n <= u64::MAX / CELL / 2)
        .ok_or(Error::OutOfMemory {
            requested: usize::MAX,
            available: 0,
        })?;
    if need <= b.cap {
        return Ok(());
    }
    let cap = need.max(b.cap * 2).max(4);
    let off = ctx.core.alloc(cap * CELL)?;
    if b.len > 0 {
        ctx.core.arena().copy_within(b.cells, off, b.len * CELL)?;
    }
    let old = (b.cap > 0).then_some(b.cells);
    failpoint!("list.grow.after_alloc");
    publish(ctx, off, cap, b.len)?;
    if let Some(old) = old {
        ctx.core.free(old)?;
    }
    b.cells = off;
    b.cap = cap;
    Ok(())
}

fn release_cells(ctx: &mut Ctx<'_>, cells: &[Cell]) -> Result<()> {
    for c in cells.iter().filter(|c| c.owns_resources()) {
        cell::release(ctx.core, c, &mut ctx.released)?;
    }
    Ok(())
}

/// Stores `values` as cells; on failure gives back what was stored.
fn store_all(core: &Core, values: &[Value], released: &mut Vec<Token>) -> Result<Vec<Cell>> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match cell::store(core, v) {
            Ok(c) => out.push(c),
            Err(e) => {
                for c in &out {
                    let _ = cell::release(core, c, released);
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

fn normalize(i: i64, len: u64) -> Option<u64> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    (i >= 0 && (i as u64) < len).then_some(i as u64)
}

fn snapshot(ctx: &Ctx<'_>, b: &ListBody) -> Result<Vec<Value>> {
    (0..b.len).map(|i| load(ctx, b, i)).collect()
}

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates a list holding `items`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::list;
/// use shmstore::{ListProxy, Value};
/// let core = store.core();
/// let t = list::create(core, &[Value::Int(1), Value::from("two")])?; // one reference: ours
/// let l = ListProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(l.to_string(), "[1, 'two']");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, items: &[Value]) -> Result<Token> {
    let mut released = Vec::new();
    let n = items.len() as u64;
    let body = core.alloc(size_of::<ListBody>() as u64)?;
    let built = (|| {
        let cells = store_all(core, items, &mut released)?;
        let arr = if n > 0 {
            match core.alloc(n * CELL) {
                Ok(off) => off,
                Err(e) => {
                    for c in &cells {
                        let _ = cell::release(core, c, &mut released);
                    }
                    return Err(e);
                }
            }
        } else {
            0
        };
        if n > 0 {
            core.arena().copy_in(arr, bytemuck::cast_slice(&cells))?;
        }
        core.arena().write(
            crate::arena::Offset::new(body),
            ListBody {
                len: n,
                cap: n,
                cells: arr,
                journal: 0,
                journal_cell: Cell::default(),
            },
        )?;
        core.create_object(type_ids::LIST, body).inspect_err(|_| {
            for c in &cells {
                let _ = cell::release(core, c, &mut released);
            }
            if n > 0 {
                let _ = core.free(arr);
            }
        })
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    // A failed creation took references to nested proxies and gave them back; a successful one
    // keeps them. Either way nothing is left to release here but what a failure pushed.
    crate::dispatch::release_all(core, released);
    built
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    let cs = cells(ctx, &b)?;
    release_cells(ctx, &cs)?;
    if b.cap > 0 {
        ctx.core.free(b.cells)?;
    }
    ctx.core.free(ctx.body)
}

/// Every list mutation but one publishes with single stores, so the body a dead holder left is
/// valid if it passes the ordinary checks; the one, an in-place cell replacement, is rolled back
/// from the journal. The write (sequence) it left open is closed.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    if b.journal != 0 {
        if b.journal <= b.len {
            write_cell(ctx, &b, b.journal - 1, b.journal_cell)?;
        }
        ctx.core.arena().store_u64(ctx.body + JOURNAL_AT, 0)?;
    }
    ctx.core.table().seq_repair(ctx.slot)
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    let b = body(ctx)?;
    out.push('[');
    for i in 0..b.len {
        if i > 0 {
            out.push_str(", ");
        }
        load(ctx, &b, i)?.write_repr(out);
    }
    out.push(']');
    Ok(())
}

fn snapshot_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    let b = body(ctx)?;
    Ok(Value::List(snapshot(ctx, &b)?))
}

// ---------------------------------------------------------------------------------------------
// Typed operations (the proxy's typed methods call these directly).

/// `len(l)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listlen-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// let l = store.list(["a", "b", "c"])?;
/// assert_eq!(with_object(store.core(), &l.token(), |ctx| list::len(ctx))?, 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len(ctx: &mut Ctx<'_>) -> Result<u64> {
    Ok(body(ctx)?.len)
}

/// `l[i]`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listget-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::{Error, Value};
/// let l = store.list([10, 20, 30])?;
/// let (core, t) = (store.core(), l.token());
/// assert_eq!(with_object(core, &t, |ctx| list::get(ctx, -1))?, Value::Int(30));
/// assert!(matches!(with_object(core, &t, |ctx| list::get(ctx, 3)), Err(Error::IndexError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get(ctx: &mut Ctx<'_>, i: i64) -> Result<Value> {
    let b = body(ctx)?;
    let i =
        normalize(i, b.len).ok_or_else(|| Error::IndexError("list index out of range".into()))?;
    load(ctx, &b, i)
}

/// `len(l)` read without the lock, for [`dispatch::read_optimistic`]:
/// `None` when the words read are not a valid list (a torn read, or damage the locked path
/// reports).
///
/// # Examples
/// ```
/// # let name = format!("doc-lenracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::list::len_racy;
/// let l = store.list([10, 20])?;
/// let body = store.objects()?[0].body;
/// let raw = shmstore::segment::open(&name)?;
/// // No lock taken: a reader checks the slot's write sequence before and after.
/// assert_eq!(len_racy(&raw, body), Some(2));
/// l.append(30)?;
/// assert_eq!(len_racy(&raw, body), Some(3));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len_racy(a: &Arena, body: u64) -> Option<u64> {
    let [len, cap] = a.load_words_racy::<2>(body)?;
    (len <= cap).then_some(len)
}

/// The cell of `l[i]` read without the lock, for
/// [`dispatch::read_optimistic`]: `None` for an index out of
/// range or words that are not a valid list (the locked path then answers). Every offset is
/// checked by the arena; the cell is a copy, to decode only once the read is validated
/// ([`scalar_of`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-getracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::list::get_racy;
/// let l = store.list([10, 20])?;
/// let body = store.objects()?[0].body;
/// let raw = shmstore::segment::open(&name)?;
/// use shmstore::cell::Cell;
/// use shmstore::Value;
/// assert_eq!(get_racy(&raw, body, -1), Cell::scalar(&Value::Int(20)));
/// assert_eq!(get_racy(&raw, body, 5), None); // out of range: the locked path answers
/// assert_eq!(l.len()?, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_racy(a: &Arena, body: u64, i: i64) -> Option<Cell> {
    let [len, cap, cells] = a.load_words_racy::<3>(body)?;
    if len > cap {
        return None;
    }
    let i = normalize(i, len)?;
    let at = cells.checked_add(i.checked_mul(CELL)?)?;
    Some(bytemuck::cast(a.load_words_racy::<2>(at)?))
}

/// The value of a cell read by [`get_racy`] if it is a scalar stored inline (it owns no
/// block, so decoding it reads nothing more from the arena); `None` otherwise.
///
/// # Examples
/// ```
/// # let name = format!("doc-listscalarof-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::list::{get_racy, scalar_of};
/// use shmstore::Value;
/// let l = store.list([Value::Int(7), Value::from("a string too long to be inline")])?;
/// let (core, t) = (store.core(), l.token());
/// let first = read_optimistic(core, &t, |a, body| get_racy(a, body, 0)).expect("no writer");
/// assert_eq!(scalar_of(core, &first), Some(Value::Int(7)));
/// let second = read_optimistic(core, &t, |a, body| get_racy(a, body, 1)).expect("no writer");
/// assert_eq!(scalar_of(core, &second), None); // in a block: the locked path reads it
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn scalar_of(core: &Core, c: &Cell) -> Option<Value> {
    let _ = core;
    c.inline_value()
}

/// The length, capacity and cell-array words of the list at `body`, and their values, for the
/// fast paths under the lock: `None` for words out of bounds or a length beyond the capacity.
#[inline]
fn head_fast(a: &Arena, body: u64) -> Option<(&[AtomicU64; 3], u64, u64, u64)> {
    let h = a.words::<[AtomicU64; 3]>(body).ok()?;
    let [len, cap, cells] = [&h[0], &h[1], &h[2]].map(|w| w.load(Relaxed));
    (len <= cap).then_some((h, len, cap, cells))
}

/// The words of cell `i` of a cell array at `cells`, bounds-checked.
#[inline]
fn cell_words(a: &Arena, cells: u64, i: u64) -> Option<&[AtomicU64; 2]> {
    a.words::<[AtomicU64; 2]>(cells.checked_add(i.checked_mul(CELL)?)?)
        .ok()
}

/// `l[i] = new` in place, for [`dispatch::write_fast`] (which holds the lock and the write):
/// when both the old cell and `new` are None, a bool, an int or a float of the same kind, the
/// payload word is the only word that changes, and one 8-byte store replaces it, so a crash
/// leaves the old value or the new one and no journal is needed. `None`, having written
/// nothing, for anything else (an index out of range, another kind, a cell owning a block):
/// [`set`] does those.
///
/// # Examples
/// ```
/// # let name = format!("doc-listsetfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::Cell;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::list::set_fast;
/// use shmstore::Value;
/// let l = store.list([1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// let nine = Cell::scalar(&Value::Int(9)).unwrap();
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, -1, nine)), Some(()));
/// assert_eq!(l.to_string(), "[1, 9]");
/// let half = Cell::scalar(&Value::Float(0.5)).unwrap();
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, 0, half)), None); // another kind
/// assert_eq!(write_fast(core, &t, |a, body| set_fast(a, body, 2, nine)), None); // out of range
/// assert_eq!(l.to_string(), "[1, 9]");
/// # Ok::<(), shmstore::Error>(())
/// ```
// Always inlined: the typed call and `call_method` on a typed proxy both inline it.
#[inline(always)]
pub fn set_fast(a: &Arena, body: u64, i: i64, new: Cell) -> Option<()> {
    if !new.is_word_scalar() {
        return None;
    }
    let (_, len, _, cells) = head_fast(a, body)?;
    new.replace_word_scalar(cell_words(a, cells, normalize(i, len)?)?)
}

/// `l.append(new)` for a cell that owns no block, when the array has room, for
/// [`dispatch::write_fast`]: the cell is written past the end and published with one store of
/// the length (the crash protocol of [`append`]). `None`, having written nothing, when the
/// list is full or `new` owns a block: [`append`] grows it.
///
/// # Examples
/// ```
/// # let name = format!("doc-listappendfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::Cell;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::list::append_fast;
/// use shmstore::Value;
/// let l = store.list(Vec::<i64>::new())?;
/// let (core, t) = (store.core(), l.token());
/// let s = Cell::scalar(&Value::from("short")).unwrap();
/// // An empty list has no array yet: the general path allocates one.
/// assert_eq!(write_fast(core, &t, |a, body| append_fast(a, body, s)), None);
/// l.append(1)?;
/// assert_eq!(write_fast(core, &t, |a, body| append_fast(a, body, s)), Some(()));
/// assert_eq!(l.to_string(), "[1, 'short']");
/// # Ok::<(), shmstore::Error>(())
/// ```
// Always inlined: the typed call and `call_method` on a typed proxy both inline it.
#[inline(always)]
pub fn append_fast(a: &Arena, body: u64, new: Cell) -> Option<()> {
    if new.owns_resources() {
        return None;
    }
    let (h, len, cap, cells) = head_fast(a, body)?;
    if len == cap {
        return None;
    }
    let c = cell_words(a, cells, len)?;
    let [w0, w1] = new.to_words();
    c[0].store(w0, Relaxed);
    c[1].store(w1, Relaxed);
    failpoint!("list.append.before_publish");
    h[0].store(len + 1, Relaxed);
    Some(())
}

/// `l.pop(i)` when `i` names the last item and it owns no block, for
/// [`dispatch::write_fast`]: one store of the length unpublishes it. Returns the item; `None`,
/// having written nothing, for another index, an empty list or a last item in a block ([`pop`] answers those, and reports a cell that fails a check).
///
/// # Examples
/// ```
/// # let name = format!("doc-listpopfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::list::pop_fast;
/// use shmstore::Value;
/// let l = store.list([Value::from("a string kept in a block"), Value::Int(2)])?;
/// let (core, t) = (store.core(), l.token());
/// assert_eq!(write_fast(core, &t, |a, body| pop_fast(a, body, -1)), Some(Value::Int(2)));
/// // In a block: the general path.
/// assert_eq!(write_fast(core, &t, |a, body| pop_fast(a, body, 0)), None);
/// assert_eq!(l.len()?, 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
// Always inlined: the typed call and `call_method` on a typed proxy both inline it.
#[inline(always)]
pub fn pop_fast(a: &Arena, body: u64, i: i64) -> Option<Value> {
    // The item is unpublished once the cell is out: an answer from here on, never `None`
    // (which would send the caller down the general path to pop another).
    Some(pop_fast_cell(a, body, i)?.decoded_inline())
}

/// [`pop_fast`], handing back the item's cell, which [`Cell::decodes_inline`] (checked before
/// the item is unpublished), instead of its value: the typed `pop` decodes the 16-byte copy
/// once the lock is released, straight into its result, where a `Value` built under the lock
/// was copied out through each layer of the write.
///
/// # Examples
/// ```
/// # let name = format!("doc-listpopfastcell-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::list::pop_fast_cell;
/// use shmstore::Value;
/// let l = store.list([1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// let c = write_fast(core, &t, |a, body| pop_fast_cell(a, body, -1)).expect("the last item");
/// assert_eq!(c.inline_value(), Some(Value::Int(2)));
/// assert_eq!(l.len()?, 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline(always)]
pub fn pop_fast_cell(a: &Arena, body: u64, i: i64) -> Option<Cell> {
    let (h, len, _, cells) = head_fast(a, body)?;
    let last = len.checked_sub(1)?;
    // `i` names the last item: -1 (every other negative index names an earlier one), or
    // `len - 1` itself. For the usual constant -1 this is the empty list's test alone.
    if i != -1 && u64::try_from(i).ok()? != last {
        return None;
    }
    let c = cell_words(a, cells, last)?;
    let c = Cell::from_words([c[0].load(Relaxed), c[1].load(Relaxed)]);
    if !c.decodes_inline() {
        return None;
    }
    h[0].store(last, Relaxed);
    Some(c)
}

const M_LEN: usize = super::method_idx(DESC.methods, "__len__");
const M_GETITEM: usize = super::method_idx(DESC.methods, "__getitem__");

/// `call_method`'s lock-free reads (see `FastHooks::read`): `__len__()`, and
/// `__getitem__(i)` of an item stored inline.
///
/// # Examples
/// ```
/// # let name = format!("doc-listfastread-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::list::{fast_read, DESC};
/// use shmstore::Value;
/// let l = store.list([1, 2, 3])?;
/// let (core, t) = (store.core(), l.token());
/// let len = DESC.method_index("__len__").unwrap();
/// assert_eq!(fast_read(core, &t, len, &[]), Some(Value::Int(3)));
/// let sort = DESC.method_index("sort").unwrap();
/// assert_eq!(fast_read(core, &t, sort, &[]), None); // not a read: the locked path runs it
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined into a typed proxy's `call_method` (the `match`, and `len`; each other arm's work is
// a function of its own), so a call of another method costs a compare or two, not a call.
#[inline(always)]
pub fn fast_read(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_LEN, []) => len_value_fast(core, token),
        (M_GETITEM, [Value::Int(i)]) => getitem_fast(core, token, *i),
        _ => None,
    }
}

/// `__len__()` without the lock, for [`fast_read`]: inlined, as the typed `len` is.
#[inline]
fn len_value_fast(core: &Core, token: &Token) -> Option<Value> {
    // (A closure: an instance of `read_optimistic` of its own, which leaves the typed `len`'s
    // inlining as it is.)
    #[allow(clippy::redundant_closure)]
    let n = dispatch::read_optimistic(core, token, |a, b| len_racy(a, b))?;
    Some(Value::Int(i64::try_from(n).ok()?))
}

/// `__getitem__(i)` of an item stored inline, without the lock, for [`fast_read`].
#[inline(never)]
fn getitem_fast(core: &Core, token: &Token, i: i64) -> Option<Value> {
    dispatch::read_optimistic(core, token, |a, b| get_racy(a, b, i))?.inline_value()
}

const M_SETITEM: usize = super::method_idx(DESC.methods, "__setitem__");
const M_APPEND: usize = super::method_idx(DESC.methods, "append");
const M_POP: usize = super::method_idx(DESC.methods, "pop");

/// `call_method`'s in-place writes (see `FastHooks::write`): `__setitem__(i, v)`,
/// `append(v)` and `pop()`/`pop(i)` of scalars, done by [`set_fast`], [`append_fast`] and
/// [`pop_fast`] under a lock that was free.
///
/// # Examples
/// ```
/// # let name = format!("doc-listfastwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::list::{fast_write, DESC};
/// use shmstore::Value;
/// let l = store.list([1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// let append = DESC.method_index("append").unwrap();
/// let pop = DESC.method_index("pop").unwrap();
/// // Created full (capacity 2): the general path grows it.
/// assert_eq!(fast_write(core, &t, append, &[Value::Int(3)]), None);
/// assert_eq!(fast_write(core, &t, pop, &[]), Some(Value::Int(2)));
/// assert_eq!(fast_write(core, &t, append, &[Value::Int(3)]), Some(Value::None));
/// assert_eq!(l.to_string(), "[1, 3]");
/// let sort = DESC.method_index("sort").unwrap();
/// assert_eq!(fast_write(core, &t, sort, &[]), None); // the general path
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined as `fast_read` is: the `match` only.
#[inline]
pub fn fast_write(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_SETITEM, [Value::Int(i), v]) => setitem_fast(core, token, *i, v),
        (M_APPEND, [v]) => append_value_fast(core, token, v),
        (M_POP, []) => pop_value_fast(core, token, -1),
        (M_POP, [Value::Int(i)]) => pop_value_fast(core, token, *i),
        _ => None,
    }
}

/// `__setitem__(i, v)` of a scalar in place, for [`fast_write`].
#[inline(never)]
fn setitem_fast(core: &Core, token: &Token, i: i64, v: &Value) -> Option<Value> {
    let c = Cell::scalar(v)?;
    dispatch::write_fast(core, token, |a, b| set_fast(a, b, i, c))?;
    Some(Value::None)
}

/// `append(v)` of a scalar into spare capacity, for [`fast_write`].
#[inline(never)]
fn append_value_fast(core: &Core, token: &Token, v: &Value) -> Option<Value> {
    let c = Cell::scalar(v)?;
    dispatch::write_fast(core, token, |a, b| append_fast(a, b, c))?;
    Some(Value::None)
}

/// `pop(i)` of the last item when it is stored inline, for [`fast_write`].
#[inline(never)]
fn pop_value_fast(core: &Core, token: &Token, i: i64) -> Option<Value> {
    dispatch::write_fast(core, token, |a, b| pop_fast(a, b, i))
}

/// `call_method`'s fast path on the handle's pinned slot (`Handle::read_optimistic`,
/// `Handle::write_fast`), for a dynamic proxy's `call_method` (see `dispatch::fast_builtin`):
/// the answers of [`fast_read`] and [`fast_write`], without finding the slot again, each
/// method's step out of line, shared by every call site.
#[inline(always)]
pub(crate) fn fast_call(h: &Handle, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_LEN, []) => len_inline(h),
        (M_GETITEM, [Value::Int(i)]) => getitem_at(h, *i),
        (M_SETITEM, [Value::Int(i), v]) => setitem_at(h, *i, v),
        (M_APPEND, [v]) => append_at(h, v),
        (M_POP, []) => pop_at(h, -1),
        (M_POP, [Value::Int(i)]) => pop_at(h, *i),
        _ => None,
    }
}

/// [`fast_call`] for a `ListProxy`'s `call_method` (see `dispatch::fast_builtin_typed`): the
/// same steps, inlined as the typed calls are. For a method index known at compile time (a
/// string literal's), only its arm is left, and with the arguments' kinds known (a tuple's),
/// the checks on them fold too.
#[inline(always)]
pub(crate) fn fast_call_inline(h: &Handle, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_LEN, []) => len_inline(h),
        (M_GETITEM, [Value::Int(i)]) => getitem_inline(h, *i),
        (M_SETITEM, [Value::Int(i), v]) => setitem_inline(h, *i, v).map(|()| Value::None),
        (M_APPEND, [v]) => append_inline(h, v).map(|()| Value::None),
        (M_POP, []) => pop_inline(h, -1),
        (M_POP, [Value::Int(i)]) => pop_inline(h, *i),
        _ => None,
    }
}

/// `len(l)` on the handle's pinned slot, as an int.
#[inline(always)]
fn len_inline(h: &Handle) -> Option<Value> {
    // (A closure, as in `len_value_fast`; always inlined: this one is shared by every call
    // site.)
    #[allow(clippy::redundant_closure)]
    let n = h.read_optimistic(
        #[inline(always)]
        |a, b| len_racy(a, b),
    )?;
    Some(Value::Int(i64::try_from(n).ok()?))
}

/// [`getitem_fast`] on the handle's pinned slot.
#[inline(always)]
fn getitem_inline(h: &Handle, i: i64) -> Option<Value> {
    h.read_optimistic(
        #[inline(always)]
        |a, b| get_racy(a, b, i),
    )?
    .inline_value()
}

/// [`setitem_fast`] on the handle's pinned slot.
#[inline(always)]
fn setitem_inline(h: &Handle, i: i64, v: &Value) -> Option<()> {
    let c = Cell::scalar(v)?;
    h.write_fast(
        #[inline(always)]
        |a, b| set_fast(a, b, i, c),
    )
}

/// [`append_value_fast`] on the handle's pinned slot.
#[inline(always)]
fn append_inline(h: &Handle, v: &Value) -> Option<()> {
    let c = Cell::scalar(v)?;
    h.write_fast(
        #[inline(always)]
        |a, b| append_fast(a, b, c),
    )
}

/// [`pop_value_fast`] on the handle's pinned slot.
#[inline(always)]
fn pop_inline(h: &Handle, i: i64) -> Option<Value> {
    // The cell out of the write, decoded after it (see `pop_fast_cell`).
    // Never `None` once the write took the item (see `pop_fast`).
    let c = h.write_fast(
        #[inline(always)]
        |a, b| pop_fast_cell(a, b, i),
    )?;
    Some(c.decoded_inline())
}

/// [`getitem_inline`], out of line.
#[inline(never)]
fn getitem_at(h: &Handle, i: i64) -> Option<Value> {
    getitem_inline(h, i)
}

/// [`setitem_inline`], out of line.
#[inline(never)]
fn setitem_at(h: &Handle, i: i64, v: &Value) -> Option<Value> {
    setitem_inline(h, i, v).map(|()| Value::None)
}

/// [`append_inline`], out of line.
#[inline(never)]
fn append_at(h: &Handle, v: &Value) -> Option<Value> {
    append_inline(h, v).map(|()| Value::None)
}

/// [`pop_inline`], out of line.
#[inline(never)]
fn pop_at(h: &Handle, i: i64) -> Option<Value> {
    pop_inline(h, i)
}

/// `l[i] = v`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1, 2, 3])?;
/// with_object(store.core(), &l.token(), |ctx| list::set(ctx, -1, &Value::from("three")))?;
/// assert_eq!(l.to_string(), "[1, 2, 'three']");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set(ctx: &mut Ctx<'_>, i: i64, v: &Value) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let i = normalize(i, b.len)
        .ok_or_else(|| Error::IndexError("list assignment index out of range".into()))?;
    let new = cell::store(ctx.core, v)?;
    let old = read_cell(ctx, &b, i)?;
    let a = ctx.core.arena();
    a.write(Offset::new(ctx.body + JOURNAL_CELL_AT), old)?;
    a.store_u64(ctx.body + JOURNAL_AT, i + 1)?;
    write_cell(ctx, &b, i, new)?;
    failpoint!("list.set.before_journal_clear");
    a.store_u64(ctx.body + JOURNAL_AT, 0)?;
    if old.owns_resources() {
        cell::release(ctx.core, &old, &mut ctx.released)?;
    }
    Ok(())
}

/// `l.append(v)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listappend-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1])?;
/// with_object(store.core(), &l.token(), |ctx| {
///     for i in 2..=4 {
///         list::append(ctx, &Value::Int(i))?;
///     }
///     Ok(())
/// })?;
/// assert_eq!(l.to_string(), "[1, 2, 3, 4]");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn append(ctx: &mut Ctx<'_>, v: &Value) -> Result<()> {
    let _w = writing(ctx)?;
    let mut b = body(ctx)?;
    let c = cell::store(ctx.core, v)?;
    if b.len == b.cap {
        if let Err(e) = reserve(ctx, &mut b, 1) {
            cell::release(ctx.core, &c, &mut ctx.released)?;
            return Err(e);
        }
    }
    write_cell(ctx, &b, b.len, c)?;
    failpoint!("list.append.before_publish");
    store_len(ctx, b.len + 1)
}

/// `l.extend(items)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listextend-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1])?;
/// with_object(store.core(), &l.token(), |ctx| list::extend(ctx, &[Value::Int(2), Value::Int(3)]))?;
/// assert_eq!(l.to_string(), "[1, 2, 3]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn extend(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<()> {
    let _w = writing(ctx)?;
    let mut b = body(ctx)?;
    let cs = store_all(ctx.core, items, &mut ctx.released)?;
    if let Err(e) = reserve(ctx, &mut b, cs.len() as u64) {
        release_cells(ctx, &cs)?;
        return Err(e);
    }
    ctx.core
        .arena()
        .copy_in(cell_at(&b, b.len), bytemuck::cast_slice(&cs))?;
    store_len(ctx, b.len + cs.len() as u64)
}

/// `l.insert(i, v)`, with Python's clamping of `i`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listinsert-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1, 3])?;
/// let (core, t) = (store.core(), l.token());
/// with_object(core, &t, |ctx| list::insert(ctx, 1, &Value::Int(2)))?;
/// with_object(core, &t, |ctx| list::insert(ctx, 100, &Value::Int(4)))?; // clamped to the end
/// assert_eq!(l.to_string(), "[1, 2, 3, 4]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn insert(ctx: &mut Ctx<'_>, i: i64, v: &Value) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let len = b.len as i64;
    let at = if i < 0 {
        (i.saturating_add(len)).max(0)
    } else {
        i.min(len)
    } as usize;
    if at == b.len as usize {
        return append(ctx, v);
    }
    let mut cs = cells(ctx, &b)?;
    let c = cell::store(ctx.core, v)?;
    cs.insert(at, c);
    if let Err(e) = replace_all(ctx, &b, &cs) {
        cell::release(ctx.core, &c, &mut ctx.released)?;
        return Err(e);
    }
    Ok(())
}

/// `l.pop(i)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listpop-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1, 2, 3])?;
/// assert_eq!(with_object(store.core(), &l.token(), |ctx| list::pop(ctx, 0))?, Value::Int(1));
/// assert_eq!(l.to_string(), "[2, 3]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn pop(ctx: &mut Ctx<'_>, i: i64) -> Result<Value> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    if b.len == 0 {
        return Err(Error::IndexError("pop from empty list".into()));
    }
    let at =
        normalize(i, b.len).ok_or_else(|| Error::IndexError("pop index out of range".into()))?;
    let c = read_cell(ctx, &b, at)?;
    let v = cell::load(ctx.core, &c, cell_at(&b, at))?;
    if at + 1 == b.len {
        store_len(ctx, at)?;
    } else {
        let mut cs = cells(ctx, &b)?;
        cs.remove(at as usize);
        replace_all(ctx, &b, &cs)?;
    }
    if c.owns_resources() {
        cell::release(ctx.core, &c, &mut ctx.released)?;
    }
    Ok(v)
}

/// `l[slice]`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listslice-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::{Slice, Value};
/// let l = store.list(0..6)?;
/// let every_other = Slice { start: None, stop: None, step: Some(2) };
/// let got = with_object(store.core(), &l.token(), |ctx| list::slice(ctx, &every_other))?;
/// assert_eq!(got, vec![Value::Int(0), Value::Int(2), Value::Int(4)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn slice(ctx: &mut Ctx<'_>, s: &Slice) -> Result<Vec<Value>> {
    let b = body(ctx)?;
    let ix = s.indices(b.len as usize)?;
    ix.iter().map(|i| load(ctx, &b, i as u64)).collect()
}

/// A copy of every item.
///
/// # Examples
/// ```
/// # let name = format!("doc-listitems-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list(["x", "y"])?;
/// let all = with_object(store.core(), &l.token(), |ctx| list::items(ctx))?;
/// assert_eq!(all, vec![Value::from("x"), Value::from("y")]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn items(ctx: &mut Ctx<'_>) -> Result<Vec<Value>> {
    let b = body(ctx)?;
    snapshot(ctx, &b)
}

/// Position of the first item equal to `v` in `[start, stop)` (already clamped), if any.
fn find(ctx: &Ctx<'_>, b: &ListBody, v: &Value, start: u64, stop: u64) -> Result<Option<u64>> {
    for i in start..stop.min(b.len) {
        if cell::eq(ctx.core, &read_cell(ctx, b, i)?, cell_at(b, i), v)? {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `l.remove(v)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listremove-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::{Error, Value};
/// let l = store.list([1, 2, 1])?;
/// let (core, t) = (store.core(), l.token());
/// with_object(core, &t, |ctx| list::remove(ctx, &Value::Int(1)))?; // the first one
/// assert_eq!(l.to_string(), "[2, 1]");
/// assert!(matches!(with_object(core, &t, |ctx| list::remove(ctx, &Value::Int(9))), Err(Error::ValueError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn remove(ctx: &mut Ctx<'_>, v: &Value) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let at = find(ctx, &b, v, 0, b.len)?
        .ok_or_else(|| Error::ValueError("list.remove(x): x not in list".into()))?;
    pop(ctx, at as i64).map(|_| ())
}

/// `l.index(v, start, stop)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listindex-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list(["a", "b", "a"])?;
/// let (core, t) = (store.core(), l.token());
/// let a = Value::from("a");
/// assert_eq!(with_object(core, &t, |ctx| list::index(ctx, &a, None, None))?, 0);
/// assert_eq!(with_object(core, &t, |ctx| list::index(ctx, &a, Some(1), None))?, 2);
/// assert!(with_object(core, &t, |ctx| list::index(ctx, &a, Some(1), Some(2))).is_err());
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn index(ctx: &mut Ctx<'_>, v: &Value, start: Option<i64>, stop: Option<i64>) -> Result<u64> {
    let b = body(ctx)?;
    let len = b.len as i64;
    let clamp = |x: i64| -> u64 {
        if x < 0 {
            x.saturating_add(len).max(0) as u64
        } else {
            x.min(len) as u64
        }
    };
    let start = start.map_or(0, clamp);
    let stop = stop.map_or(b.len, clamp);
    find(ctx, &b, v, start, stop)?
        .ok_or_else(|| Error::ValueError(format!("{} is not in list", v.repr())))
}

/// `l.count(v)`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listcount-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1, 2, 1, 1])?;
/// assert_eq!(with_object(store.core(), &l.token(), |ctx| list::count(ctx, &Value::Int(1)))?, 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn count(ctx: &mut Ctx<'_>, v: &Value) -> Result<u64> {
    let b = body(ctx)?;
    let mut n = 0;
    for i in 0..b.len {
        if cell::eq(ctx.core, &read_cell(ctx, &b, i)?, cell_at(&b, i), v)? {
            n += 1;
        }
    }
    Ok(n)
}

/// `l.clear()`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listclear-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// let l = store.list([1, 2, 3])?;
/// with_object(store.core(), &l.token(), |ctx| list::clear(ctx))?;
/// assert_eq!(l.len()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn clear(ctx: &mut Ctx<'_>) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let cs = cells(ctx, &b)?;
    replace_all(ctx, &b, &[])?;
    release_cells(ctx, &cs)
}

/// `l.reverse()`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listreverse-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// let l = store.list([1, 2, 3])?;
/// with_object(store.core(), &l.token(), |ctx| list::reverse(ctx))?;
/// assert_eq!(l.to_string(), "[3, 2, 1]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn reverse(ctx: &mut Ctx<'_>) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let mut cs = cells(ctx, &b)?;
    cs.reverse();
    replace_all(ctx, &b, &cs)
}

/// `l.sort(reverse=…)`: stable; a `TypeError` for incomparable items leaves the list unchanged.
///
/// # Examples
/// ```
/// # let name = format!("doc-listsort-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Error;
/// let l = store.list([2, 3, 1])?;
/// let (core, t) = (store.core(), l.token());
/// with_object(core, &t, |ctx| list::sort(ctx, true))?;
/// assert_eq!(l.to_string(), "[3, 2, 1]");
/// l.append("x")?; // a str among ints: not comparable
/// assert!(matches!(with_object(core, &t, |ctx| list::sort(ctx, false)), Err(Error::TypeError(_))));
/// assert_eq!(l.to_string(), "[3, 2, 1, 'x']"); // unchanged
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn sort(ctx: &mut Ctx<'_>, descending: bool) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let cs = cells(ctx, &b)?;
    let vals = snapshot(ctx, &b)?;
    let mut order: Vec<usize> = (0..cs.len()).collect();
    if descending {
        order.reverse();
    }
    let mut err = None;
    // Ask `x < y` first, as CPython's sort asks `next < previous`, so that the TypeError for
    // incomparable items names the two types in CPython's order.
    order.sort_by(|&x, &y| {
        if err.is_some() {
            return std::cmp::Ordering::Equal;
        }
        let (a, b) = match (vals.get(x), vals.get(y)) {
            (Some(a), Some(b)) => (a, b),
            _ => return std::cmp::Ordering::Equal,
        };
        match a
            .py_lt(b)
            .and_then(|lt| if lt { Ok(None) } else { b.py_lt(a).map(Some) })
        {
            Ok(None) => std::cmp::Ordering::Less,
            Ok(Some(true)) => std::cmp::Ordering::Greater,
            Ok(Some(false)) => std::cmp::Ordering::Equal,
            Err(e) => {
                err = Some(e);
                std::cmp::Ordering::Equal
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    if descending {
        order.reverse();
    }
    let sorted: Vec<Cell> = order.iter().filter_map(|&i| cs.get(i).copied()).collect();
    replace_all(ctx, &b, &sorted)
}

/// `l[slice] = items` (Python's slice assignment, extended slices included).
///
/// # Examples
/// ```
/// # let name = format!("doc-listsetslice-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::{Slice, Value};
/// let l = store.list([1, 2, 3, 4])?;
/// // l[1:3] = ['b']: the list shrinks.
/// with_object(store.core(), &l.token(), |ctx| list::set_slice(ctx, &Slice::new(1, 3), &[Value::from("b")]))?;
/// assert_eq!(l.to_string(), "[1, 'b', 4]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn set_slice(ctx: &mut Ctx<'_>, s: &Slice, items: &[Value]) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let ix = s.indices(b.len as usize)?;
    let mut cs = cells(ctx, &b)?;
    let removed: Vec<Cell>;
    let new = if ix.step == 1 {
        let start = ix.start as usize;
        let stop = (ix.stop as usize).max(start);
        let new = store_all(ctx.core, items, &mut ctx.released)?;
        removed = cs.splice(start..stop, new.iter().copied()).collect();
        new
    } else {
        if items.len() != ix.len {
            return Err(Error::ValueError(format!(
                "attempt to assign sequence of size {} to extended slice of size {}",
                items.len(),
                ix.len
            )));
        }
        let new = store_all(ctx.core, items, &mut ctx.released)?;
        removed = ix
            .iter()
            .zip(&new)
            .filter_map(|(i, c)| cs.get_mut(i).map(|old| std::mem::replace(old, *c)))
            .collect();
        new
    };
    if let Err(e) = replace_all(ctx, &b, &cs) {
        release_cells(ctx, &new)?;
        return Err(e);
    }
    release_cells(ctx, &removed)
}

/// `del l[slice]`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listdelslice-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Slice;
/// let l = store.list(0..6)?;
/// let evens = Slice { start: None, stop: None, step: Some(2) };
/// with_object(store.core(), &l.token(), |ctx| list::del_slice(ctx, &evens))?;
/// assert_eq!(l.to_string(), "[1, 3, 5]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn del_slice(ctx: &mut Ctx<'_>, s: &Slice) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let ix = s.indices(b.len as usize)?;
    if ix.len == 0 {
        return Ok(());
    }
    let cs = cells(ctx, &b)?;
    let mut gone = vec![false; cs.len()];
    for i in ix.iter() {
        if let Some(g) = gone.get_mut(i) {
            *g = true;
        }
    }
    let (removed, kept): (Vec<_>, Vec<_>) = cs.iter().zip(&gone).partition(|(_, g)| **g);
    let kept: Vec<Cell> = kept.into_iter().map(|(c, _)| *c).collect();
    let removed: Vec<Cell> = removed.into_iter().map(|(c, _)| *c).collect();
    replace_all(ctx, &b, &kept)?;
    release_cells(ctx, &removed)
}

/// `del l[i]`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listdelindex-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// let l = store.list([1, 2, 3])?;
/// with_object(store.core(), &l.token(), |ctx| list::del_index(ctx, -2))?;
/// assert_eq!(l.to_string(), "[1, 3]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn del_index(ctx: &mut Ctx<'_>, i: i64) -> Result<()> {
    let _w = writing(ctx)?;
    let b = body(ctx)?;
    let at = normalize(i, b.len)
        .ok_or_else(|| Error::IndexError("list assignment index out of range".into()))?;
    pop(ctx, at as i64).map(|_| ())
}

/// `l *= n`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listimul-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// let l = store.list(["a", "b"])?;
/// let (core, t) = (store.core(), l.token());
/// with_object(core, &t, |ctx| list::imul(ctx, 2))?;
/// assert_eq!(l.to_string(), "['a', 'b', 'a', 'b']");
/// with_object(core, &t, |ctx| list::imul(ctx, 0))?;
/// assert_eq!(l.len()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn imul(ctx: &mut Ctx<'_>, n: i64) -> Result<()> {
    let _w = writing(ctx)?;
    if n <= 0 {
        return clear(ctx);
    }
    let vals = items(ctx)?;
    let total = vals
        .len()
        .checked_mul(n as usize)
        .filter(|t| *t <= u32::MAX as usize)
        .ok_or(Error::OutOfMemory {
            requested: usize::MAX,
            available: 0,
        })?;
    let mut more = Vec::with_capacity(total - vals.len());
    for _ in 1..n {
        more.extend(vals.iter().cloned());
    }
    extend(ctx, &more)
}

// ---------------------------------------------------------------------------------------------
// Handlers (Python's names and argument rules).

fn m_len(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.__len__", a, k, [], 0)?;
    Ok(Value::Int(len(ctx)? as i64))
}

fn m_getitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i] = bind_args("list.__getitem__", a, k, ["index"], 1)?;
    match i {
        Some(Value::Slice(s)) => Ok(Value::List(slice(ctx, s)?)),
        Some(v) => match v {
            Value::Int(_) | Value::Bool(_) => get(ctx, index_arg(v)?),
            other => Err(Error::TypeError(format!(
                "list indices must be integers or slices, not {}",
                other.type_name()
            ))),
        },
        None => unreachable_arg(),
    }
}

#[cold]
fn unreachable_arg() -> Result<Value> {
    Err(Error::TypeError("missing argument".into()))
}

fn m_setitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i, v] = bind_args("list.__setitem__", a, k, ["index", "value"], 2)?;
    let (Some(i), Some(v)) = (i, v) else {
        return unreachable_arg();
    };
    match i {
        Value::Slice(s) => {
            let items = iter_arg(v).map_err(|_| {
                Error::TypeError(if s.step.unwrap_or(1) == 1 {
                    "can only assign an iterable".into()
                } else {
                    "must assign iterable to extended slice".into()
                })
            })?;
            set_slice(ctx, s, &items)?;
        }
        Value::Int(_) | Value::Bool(_) => set(ctx, index_arg(i)?, v)?,
        other => {
            return Err(Error::TypeError(format!(
                "list indices must be integers or slices, not {}",
                other.type_name()
            )))
        }
    }
    Ok(Value::None)
}

fn m_delitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i] = bind_args("list.__delitem__", a, k, ["index"], 1)?;
    match i {
        Some(Value::Slice(s)) => del_slice(ctx, s)?,
        Some(v @ (Value::Int(_) | Value::Bool(_))) => del_index(ctx, index_arg(v)?)?,
        Some(other) => {
            return Err(Error::TypeError(format!(
                "list indices must be integers or slices, not {}",
                other.type_name()
            )))
        }
        None => return unreachable_arg(),
    }
    Ok(Value::None)
}

fn m_contains(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.__contains__", a, k, ["key"], 1)?;
    let v = v.unwrap_or(&Value::None);
    let b = body(ctx)?;
    Ok(Value::Bool(find(ctx, &b, v, 0, b.len)?.is_some()))
}

fn m_add(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.__add__", a, k, ["value"], 1)?;
    match v {
        Some(Value::List(xs)) => {
            let mut out = items(ctx)?;
            out.extend(xs.iter().cloned());
            Ok(Value::List(out))
        }
        Some(other) => Err(Error::TypeError(format!(
            "can only concatenate list (not \"{}\") to list",
            other.type_name()
        ))),
        None => unreachable_arg(),
    }
}

fn m_iadd(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.__iadd__", a, k, ["value"], 1)?;
    let xs = iter_arg(v.unwrap_or(&Value::None))?;
    extend(ctx, &xs)?;
    snapshot_value(ctx)
}

/// The count of `__mul__`/`__imul__`; called as methods (as a proxy does), CPython reports a
/// non-int as "'str' object cannot be interpreted as an integer".
fn repeat_count(v: Option<&Value>) -> Result<i64> {
    v.map_or_else(unreachable_arg_int, index_arg)
}

#[cold]
fn unreachable_arg_int() -> Result<i64> {
    Err(Error::TypeError("missing argument".into()))
}

fn m_mul(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.__mul__", a, k, ["value"], 1)?;
    let n = repeat_count(v)?;
    let xs = items(ctx)?;
    if n <= 0 || xs.is_empty() {
        return Ok(Value::List(Vec::new()));
    }
    let total = xs.len().checked_mul(n as usize).ok_or(Error::OutOfMemory {
        requested: usize::MAX,
        available: 0,
    })?;
    let mut out = Vec::new();
    out.try_reserve(total).map_err(|_| Error::OutOfMemory {
        requested: total,
        available: 0,
    })?;
    for _ in 0..n {
        out.extend(xs.iter().cloned());
    }
    Ok(Value::List(out))
}

fn m_imul(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.__imul__", a, k, ["value"], 1)?;
    imul(ctx, repeat_count(v)?)?;
    snapshot_value(ctx)
}

fn m_iter(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.__iter__", a, k, [], 0)?;
    snapshot_value(ctx)
}

fn m_reversed(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.__reversed__", a, k, [], 0)?;
    let mut xs = items(ctx)?;
    xs.reverse();
    Ok(Value::List(xs))
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

fn m_append(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.append", a, k, ["object"], 1)?;
    append(ctx, v.unwrap_or(&Value::None))?;
    Ok(Value::None)
}

fn m_clear(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.clear", a, k, [], 0)?;
    clear(ctx)?;
    Ok(Value::None)
}

fn m_copy(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.copy", a, k, [], 0)?;
    snapshot_value(ctx)
}

fn m_count(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.count", a, k, ["value"], 1)?;
    Ok(Value::Int(count(ctx, v.unwrap_or(&Value::None))? as i64))
}

fn m_extend(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.extend", a, k, ["iterable"], 1)?;
    let xs = iter_arg(v.unwrap_or(&Value::None))?;
    extend(ctx, &xs)?;
    Ok(Value::None)
}

fn slice_index(v: Option<&Value>) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(v @ (Value::Int(_) | Value::Bool(_))) => index_arg(v).map(Some),
        Some(_) => Err(Error::TypeError(
            "slice indices must be integers or have an __index__ method".into(),
        )),
    }
}

fn m_index(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v, start, stop] = bind_args("index", a, k, ["value", "start", "stop"], 1)?;
    let (start, stop) = (slice_index(start)?, slice_index(stop)?);
    Ok(Value::Int(
        index(ctx, v.unwrap_or(&Value::None), start, stop)? as i64,
    ))
}

fn m_insert(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i, v] = bind_args("insert", a, k, ["index", "object"], 2)?;
    let (Some(i), Some(v)) = (i, v) else {
        return unreachable_arg();
    };
    insert(ctx, index_arg(i)?, v)?;
    Ok(Value::None)
}

fn m_pop(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [i] = bind_args("pop", a, k, ["index"], 0)?;
    pop(ctx, i.map_or(Ok(-1), index_arg)?)
}

fn m_remove(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [v] = bind_args("list.remove", a, k, ["value"], 1)?;
    remove(ctx, v.unwrap_or(&Value::None))?;
    Ok(Value::None)
}

fn m_reverse(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("list.reverse", a, k, [], 0)?;
    reverse(ctx)?;
    Ok(Value::None)
}

fn m_sort(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    if !a.is_empty() {
        return Err(Error::TypeError(
            "sort() takes no positional arguments".into(),
        ));
    }
    let [key, rev] = bind_args("sort", a, k, ["key", "reverse"], 0)?;
    if !matches!(key, None | Some(Value::None)) {
        return Err(Error::TypeError(
            "sort(key=...) cannot take a function across processes; sort a copy instead".into(),
        ));
    }
    let descending = match rev {
        None => false,
        Some(v @ (Value::Int(_) | Value::Bool(_))) => index_arg(v)? != 0,
        Some(other) => {
            return Err(Error::TypeError(format!(
                "'{}' object cannot be interpreted as an integer",
                other.type_name()
            )))
        }
    };
    sort(ctx, descending)?;
    Ok(Value::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_rolls_back_a_torn_cell_replacement() {
        let name = format!("listjournal-{}", std::process::id());
        let store = crate::Store::create(&name, 1 << 20).unwrap();
        let l = store.list([1, 2, 3]).unwrap();
        let token = crate::AsProxy::token(&l);
        crate::dispatch::with_object(store.core(), &token, |ctx| {
            let b = body(ctx)?;
            // What a holder killed inside `set(1, "x…")` leaves: journal published, the cell
            // half written (here: wholly replaced by junk).
            let a = ctx.core.arena();
            a.write(
                Offset::new(ctx.body + JOURNAL_CELL_AT),
                read_cell(ctx, &b, 1)?,
            )?;
            a.store_u64(ctx.body + JOURNAL_AT, 2)?;
            write_cell(ctx, &b, 1, bytemuck::cast([0xffu64, 0xdead_beef]))?;
            assert!(get(ctx, 1).is_err(), "the torn cell is unreadable");
            repair(ctx)?;
            assert_eq!(get(ctx, 1)?, Value::Int(2));
            assert_eq!(body(ctx)?.journal, 0);
            Ok(())
        })
        .unwrap();
        assert_eq!(l.to_string(), "[1, 2, 3]");
    }

    #[test]
    fn method_table_is_sorted_for_binary_search() {
        for w in DESC.methods.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }
}
