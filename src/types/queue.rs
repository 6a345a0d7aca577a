//! `Queue` and `JoinableQueue`: Python's `queue.Queue` as a referent (CPython's `SyncManager`
//! registers both typeids with `queue.Queue`, so both have `task_done` and `join`).
//!
//! Body (`BODY_SIZE` bytes):
//!
//! ```text
//! 0    QueueState   head, tail, ring, maxsize, done, reserved (6 × u64)
//! 48   not_empty        condvar (getters wait here; a put wakes one)
//! 56   not_full         condvar (putters of a bounded queue wait here; a get wakes one)
//! 64   all_tasks_done   condvar (join waits here; the last task_done wakes all)
//! 72   reserved         zero
//! ```
//!
//! The items live in a *ring block*: a 16-byte header (capacity `cap`, reserved word) followed by
//! `cap` [`Cell`]s. `head` and `tail` count the items ever taken and ever put (they only grow), so
//! the queue holds `tail - head` items, item `i` (`head <= i < tail`) in cell `i % cap`. The number
//! of unfinished tasks is `tail - done`, `done` counting `task_done` calls.
//!
//! Crash protocol (every field is written only by the holder of the object's lock, which may die
//! at any instruction; each change is published by one 8-byte store):
//! - put: write the cell at `tail % cap`, then store `tail + 1`. A crash before the store leaves
//!   the old queue (and at worst a leaked block the unpublished cell owned). Counting the
//!   unfinished task needs no second store: it is `tail - done`.
//! - get: read the cell at `head % cap`, store `head + 1`, then free what the cell owned. A crash
//!   between the store and the free leaks the block; before the store, the item stays queued.
//! - growth and shrinking: build a new ring block holding the same items at the same logical
//!   indices (`i % new_cap`), publish it with one store of `ring`, then free the old block. A
//!   crash leaks at most one of the two blocks; the capacity travels with its block, so no state
//!   ever pairs one ring with another's capacity.
//! - task_done: one store of `done + 1` (refused when `done == tail`).
//! - the condition variables hold only wake-up counters: a waiter that dies leaves a count that
//!   costs a later notify one needless system call, nothing else.
//!
//! Waits release the object's lock ([`Ctx::wait_until`]) and loop on their condition, so
//! spurious wake-ups and waiters whose deadline passes as they are woken lose nothing.
//!
//! # Examples
//! ```
//! # let name = format!("doc-queue-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let q = store.joinable_queue(2)?;
//! q.call_method("put", ("a",))?;
//! q.call_method("put_nowait", ("b",))?;
//! assert_eq!(q.call_method("full", ())?, Value::Bool(true));
//! assert_eq!(q.call_method("get", ())?, Value::from("a")); // first in, first out
//! q.call_method("task_done", ())?;
//! assert_eq!(q.call_method("qsize", ())?, Value::Int(1));
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::{Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::cell::{self, Cell, CELL_SIZE};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::table::{self, COND_BYTES};
use crate::token::{type_ids, Token};
use crate::value::Value;

/// The plain fields at the start of a queue's body.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuestate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::queue::QueueState;
/// let p = store.joinable_queue(5)?;
/// p.put("a")?;
/// p.put("b")?;
/// p.get()?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: QueueState = raw.read(Offset::new(body))?;
/// assert_eq!((b.tail - b.head, b.maxsize), (1, 5)); // one item queued
/// assert_eq!(b.tail - b.done, 2); // two tasks not yet marked done
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct QueueState {
    /// Items ever taken.
    pub head: u64,
    /// Items ever put (`tail - head` are queued).
    pub tail: u64,
    /// Offset of the ring block.
    pub ring: u64,
    /// Python's `maxsize`; 0: unbounded.
    pub maxsize: u64,
    /// `task_done` calls so far (`tail - done` tasks are unfinished).
    pub done: u64,
    /// Reserved; zero.
    pub reserved: u64,
}
const _: () = assert!(size_of::<QueueState>() == 48);

const HEAD: u64 = 0;
const TAIL: u64 = 8;
const RING: u64 = 16;
const DONE: u64 = 32;
/// Offset of the `not_empty` condvar in the body.
const NOT_EMPTY: u64 = 48;
/// Offset of the `not_full` condvar.
const NOT_FULL: u64 = 56;
/// Offset of the `all_tasks_done` condvar.
const ALL_TASKS_DONE: u64 = 64;
/// Bytes of a queue's body.
pub const BODY_SIZE: u64 = 80;
const _: () = assert!(COND_BYTES == 8 && NOT_EMPTY % 8 == 0 && ALL_TASKS_DONE + 16 == BODY_SIZE);

const CELL: u64 = CELL_SIZE as u64;
/// Bytes before the first cell of a ring block (capacity, reserved).
const RING_HDR: u64 = 16;
/// Capacity of a new ring (or of a bounded queue's, if smaller), and the floor for shrinking.
const MIN_CAP: u64 = 8;

/// `Queue` (CPython's `manager.Queue()`).
pub static QUEUE_DESC: TypeDesc = TypeDesc {
    id: type_ids::QUEUE,
    typeid: "Queue",
    proxy: "AutoProxy[Queue]",
    methods: METHODS,
    drop_body,
    repair,
    str: write_str,
    get_value: snapshot_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

/// `JoinableQueue` (CPython's `manager.JoinableQueue()`, also a `queue.Queue`).
pub static JOINABLE_DESC: TypeDesc = TypeDesc {
    id: type_ids::JOINABLE_QUEUE,
    typeid: "JoinableQueue",
    proxy: "AutoProxy[JoinableQueue]",
    methods: METHODS,
    drop_body,
    repair,
    str: write_str,
    get_value: snapshot_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

/// The public methods of `queue.Queue`, which CPython's `AutoProxy` exposes; sorted.
static METHODS: &[Method] = &[
    Method {
        name: "empty",
        call: m_empty,
    },
    Method {
        name: "full",
        call: m_full,
    },
    Method {
        name: "get",
        call: m_get,
    },
    Method {
        name: "get_nowait",
        call: m_get_nowait,
    },
    Method {
        name: "join",
        call: m_join,
    },
    Method {
        name: "put",
        call: m_put,
    },
    Method {
        name: "put_nowait",
        call: m_put_nowait,
    },
    Method {
        name: "qsize",
        call: m_qsize,
    },
    Method {
        name: "task_done",
        call: m_task_done,
    },
];

// ---------------------------------------------------------------------------------------------
// Raw access to the body and the ring.

/// A validated ring block.
#[derive(Clone, Copy)]
struct Ring {
    off: u64,
    cap: u64,
}

impl Ring {
    #[inline]
    fn cell_off(&self, i: u64) -> u64 {
        self.off + RING_HDR + (i % self.cap) * CELL
    }
}

/// Reads and validates the state: `head <= tail <= head + cap`, `done <= tail`, the ring block
/// inside the arena.
#[inline]
fn state(ctx: &Ctx<'_>) -> Result<(QueueState, Ring)> {
    let a = ctx.core.arena();
    let s: QueueState = a.read(Offset::new(ctx.body))?;
    let cap = a.load_u64(s.ring)?;
    if cap == 0 || cap > a.len() / CELL {
        return Err(Error::corrupt("queue ring capacity out of range", s.ring));
    }
    a.check(s.ring, RING_HDR + cap * CELL, 16)?;
    if s.head > s.tail || s.tail - s.head > cap {
        return Err(Error::corrupt("queue length out of range", ctx.body));
    }
    if s.done > s.tail {
        return Err(Error::corrupt("queue task count out of range", ctx.body));
    }
    Ok((s, Ring { off: s.ring, cap }))
}

#[inline]
fn read_cell(ctx: &Ctx<'_>, r: &Ring, i: u64) -> Result<Cell> {
    ctx.core.arena().read(Offset::new(r.cell_off(i)))
}

/// Allocates a ring block of `cap` cells and writes its header.
fn new_ring(core: &Core, cap: u64) -> Result<u64> {
    let bytes = cap
        .checked_mul(CELL)
        .and_then(|b| b.checked_add(RING_HDR))
        .ok_or(Error::OutOfMemory {
            requested: usize::MAX,
            available: 0,
        })?;
    let off = core.alloc(bytes)?;
    core.arena().store_u64(off, cap)?;
    core.arena().store_u64(off + 8, 0)?;
    Ok(off)
}

/// Moves the items into a new ring of `cap` cells (at least the queue's length), publishes it
/// with one store, and frees the old ring.
fn resize(ctx: &Ctx<'_>, s: &QueueState, old: &Ring, cap: u64) -> Result<Ring> {
    let off = new_ring(ctx.core, cap)?;
    let new = Ring { off, cap };
    for i in s.head..s.tail {
        let c = read_cell(ctx, old, i)?;
        ctx.core.arena().write(Offset::new(new.cell_off(i)), c)?;
    }
    ctx.core.arena().store_u64(ctx.body + RING, off)?;
    ctx.core.free(old.off)?;
    Ok(new)
}

/// Python's `maxsize > 0 and qsize() >= maxsize`.
#[inline]
fn is_full(s: &QueueState) -> bool {
    s.maxsize > 0 && s.tail - s.head >= s.maxsize
}

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates a queue (`type_id` [`type_ids::QUEUE`] or [`type_ids::JOINABLE_QUEUE`]) holding at
/// most `maxsize` items (0: unbounded).
///
/// # Errors
/// `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuecreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::queue;
/// use shmstore::{type_ids, QueueProxy};
/// let core = store.core();
/// let t = queue::create(core, type_ids::QUEUE, 2)?; // one reference: ours
/// let q = QueueProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(q.maxsize()?, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, type_id: u16, maxsize: u64) -> Result<Token> {
    let body = core.alloc(BODY_SIZE)?;
    let cap = if maxsize > 0 {
        maxsize.min(MIN_CAP)
    } else {
        MIN_CAP
    };
    let ring = match new_ring(core, cap) {
        Ok(r) => r,
        Err(e) => {
            let _ = core.free(body);
            return Err(e);
        }
    };
    let built = (|| {
        let a = core.arena();
        a.write(
            Offset::new(body),
            QueueState {
                head: 0,
                tail: 0,
                ring,
                maxsize,
                done: 0,
                reserved: 0,
            },
        )?;
        for c in [NOT_EMPTY, NOT_FULL, ALL_TASKS_DONE] {
            table::init_cond(a, body + c)?;
        }
        a.store_u64(body + ALL_TASKS_DONE + COND_BYTES, 0)?;
        core.create_object(type_id, body)
    })();
    if built.is_err() {
        let _ = core.free(ring);
        let _ = core.free(body);
    }
    built
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    let (s, r) = state(ctx)?;
    for i in s.head..s.tail {
        let c = read_cell(ctx, &r, i)?;
        if c.owns_resources() {
            cell::release(ctx.core, &c, &mut ctx.released)?;
        }
    }
    ctx.core.free(r.off)?;
    ctx.core.free(ctx.body)
}

/// Every change is published by one store (see the module's crash protocol), so the state a
/// dead holder left is valid if it passes the ordinary checks.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    state(ctx).map(|_| ())
}

/// Python's `repr` of a `queue.Queue`: `<queue.Queue object at 0x…>`, the address being the
/// body's offset in the arena (the same in every process).
fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    use std::fmt::Write;
    let _ = write!(out, "<queue.Queue object at {:#x}>", ctx.body);
    Ok(())
}

/// CPython cannot copy a queue out of its manager (a `queue.Queue` does not pickle); here the
/// copy is the list of queued items, oldest first.
fn snapshot_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    items(ctx).map(Value::List)
}

// ---------------------------------------------------------------------------------------------
// Typed operations (the proxies' typed methods call these directly).

/// The queued items, oldest first (a copy).
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-queueitems-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// use shmstore::Value;
/// let q = store.queue(0)?;
/// q.put(1)?;
/// q.put("two")?;
/// let items = with_object(store.core(), &q.token(), |ctx| queue::items(ctx))?;
/// assert_eq!(items, vec![Value::Int(1), Value::from("two")]); // oldest first
/// assert_eq!(q.qsize()?, 2); // a copy: nothing taken
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn items(ctx: &mut Ctx<'_>) -> Result<Vec<Value>> {
    let (s, r) = state(ctx)?;
    (s.head..s.tail)
        .map(|i| cell::load(ctx.core, &read_cell(ctx, &r, i)?, r.cell_off(i)))
        .collect()
}

/// `q.qsize()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-queueqsize-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// let q = store.queue(0)?;
/// q.put(1)?;
/// assert_eq!(with_object(store.core(), &q.token(), |ctx| queue::qsize(ctx))?, 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn qsize(ctx: &mut Ctx<'_>) -> Result<u64> {
    state(ctx).map(|(s, _)| s.tail - s.head)
}

/// `q.empty()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-queueempty-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// let q = store.queue(0)?;
/// let (core, t) = (store.core(), q.token());
/// assert!(with_object(core, &t, |ctx| queue::empty(ctx))?);
/// q.put(1)?;
/// assert!(!with_object(core, &t, |ctx| queue::empty(ctx))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn empty(ctx: &mut Ctx<'_>) -> Result<bool> {
    state(ctx).map(|(s, _)| s.tail == s.head)
}

/// `q.full()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuefull-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// let q = store.queue(1)?;
/// let (core, t) = (store.core(), q.token());
/// assert!(!with_object(core, &t, |ctx| queue::full(ctx))?);
/// q.put(1)?;
/// assert!(with_object(core, &t, |ctx| queue::full(ctx))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn full(ctx: &mut Ctx<'_>) -> Result<bool> {
    state(ctx).map(|(s, _)| is_full(&s))
}

/// `q.maxsize` (0: unbounded).
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuemaxsize-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// let q = store.queue(5)?;
/// assert_eq!(with_object(store.core(), &q.token(), |ctx| queue::maxsize(ctx))?, 5);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn maxsize(ctx: &mut Ctx<'_>) -> Result<u64> {
    state(ctx).map(|(s, _)| s.maxsize)
}

/// `q.put(v, block, timeout)`, the timeout given as a deadline (None: wait as long as it
/// takes). Waits while the queue is full, unless `block` is false.
///
/// # Errors
/// `Full` when the queue is full and `block` is false or the deadline passes; `OutOfMemory`
/// (the queue is unchanged); `StaleHandle`/`NotFound` for a dead or foreign proxy in `v`.
///
/// # Examples
/// ```
/// # let name = format!("doc-queueput-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// use shmstore::{Error, Value};
/// let q = store.queue(1)?;
/// let (core, t) = (store.core(), q.token());
/// with_object(core, &t, |ctx| queue::put(ctx, &Value::Int(1), true, None))?;
/// // Full: a non-blocking put fails at once, a blocking one at its deadline.
/// assert_eq!(with_object(core, &t, |ctx| queue::put(ctx, &Value::Int(2), false, None)), Err(Error::Full));
/// let soon = Some(Instant::now() + Duration::from_millis(10));
/// assert_eq!(with_object(core, &t, |ctx| queue::put(ctx, &Value::Int(2), true, soon)), Err(Error::Full));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn put(ctx: &mut Ctx<'_>, v: &Value, block: bool, deadline: Option<Instant>) -> Result<()> {
    let mut timed_out = false;
    let (s, mut r) = loop {
        let (s, r) = state(ctx)?;
        if !is_full(&s) {
            break (s, r);
        }
        if !block || timed_out {
            return Err(Error::Full);
        }
        timed_out = ctx.wait_until(ctx.body + NOT_FULL, deadline)?;
    };
    let c = cell::store(ctx.core, v)?;
    if s.tail - s.head == r.cap {
        let mut cap = r.cap.saturating_mul(2);
        if s.maxsize > 0 {
            cap = cap.min(s.maxsize);
        }
        match resize(ctx, &s, &r, cap.max(r.cap + 1)) {
            Ok(new) => r = new,
            Err(e) => {
                cell::release(ctx.core, &c, &mut ctx.released)?;
                return Err(e);
            }
        }
    }
    ctx.core.arena().write(Offset::new(r.cell_off(s.tail)), c)?;
    ctx.core.arena().store_u64(ctx.body + TAIL, s.tail + 1)?;
    ctx.notify(ctx.body + NOT_EMPTY, false)
}

/// `q.get(block, timeout)` with the timeout as a deadline, handing the caller the references
/// the item held: the item, and the token of every proxy in it, each now owning one reference
/// (the caller releases them, or adopts them as proxies).
///
/// # Errors
/// `Empty` when the queue is empty and `block` is false or the deadline passes.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuetake-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::{release_all, with_object};
/// use shmstore::types::queue;
/// use shmstore::{ListProxy, Value};
/// let q = store.queue(0)?;
/// let l = store.list([1, 2])?;
/// q.put(Value::Proxy(l.token()))?; // the queue holds a reference to the list
/// drop(l);
/// let (item, refs) = with_object(store.core(), &q.token(), |ctx| queue::take(ctx, false, None))?;
/// assert_eq!(refs.len(), 1); // the queue's reference, now ours
/// let Value::Proxy(t) = item else { unreachable!() };
/// assert_eq!(ListProxy::try_from(store.attach(&t)?)?.len()?, 2);
/// release_all(store.core(), refs);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn take(
    ctx: &mut Ctx<'_>,
    block: bool,
    deadline: Option<Instant>,
) -> Result<(Value, Vec<Token>)> {
    let mut timed_out = false;
    let (s, r) = loop {
        let (s, r) = state(ctx)?;
        if s.tail > s.head {
            break (s, r);
        }
        if !block || timed_out {
            return Err(Error::Empty);
        }
        timed_out = ctx.wait_until(ctx.body + NOT_EMPTY, deadline)?;
    };
    let at = r.cell_off(s.head);
    let c = read_cell(ctx, &r, s.head)?;
    let v = cell::load(ctx.core, &c, at)?;
    ctx.core.arena().store_u64(ctx.body + HEAD, s.head + 1)?;
    if s.maxsize > 0 {
        ctx.notify(ctx.body + NOT_FULL, false)?;
    }
    let len = s.tail - s.head - 1;
    if r.cap > MIN_CAP && len * 4 <= r.cap {
        let after = QueueState {
            head: s.head + 1,
            ..s
        };
        // A failed shrink keeps the larger ring, which is still valid.
        let _ = resize(ctx, &after, &r, (r.cap / 2).max(MIN_CAP));
    }
    // Last, so that nothing can fail between taking the references and returning them.
    let mut refs = Vec::new();
    if c.owns_resources() {
        cell::release(ctx.core, &c, &mut refs)?;
    }
    Ok((v, refs))
}

/// `q.get(block, timeout)` with the timeout as a deadline. Proxies in the item lose the
/// queue's reference once the object's lock is released (use [`take`] to keep them).
///
/// # Errors
/// `Empty` when the queue is empty and `block` is false or the deadline passes.
///
/// # Examples
/// ```
/// # let name = format!("doc-queueget-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// use shmstore::{Error, Value};
/// let q = store.queue(0)?;
/// let (core, t) = (store.core(), q.token());
/// q.put("job")?;
/// assert_eq!(with_object(core, &t, |ctx| queue::get(ctx, true, None))?, Value::from("job"));
/// let soon = Some(Instant::now() + Duration::from_millis(10));
/// assert_eq!(with_object(core, &t, |ctx| queue::get(ctx, true, soon)), Err(Error::Empty));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn get(ctx: &mut Ctx<'_>, block: bool, deadline: Option<Instant>) -> Result<Value> {
    let (v, refs) = take(ctx, block, deadline)?;
    ctx.released.extend(refs);
    Ok(v)
}

/// `q.task_done()`.
///
/// # Errors
/// `ValueError("task_done() called too many times")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuetaskdone-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// let q = store.joinable_queue(0)?;
/// let (core, t) = (store.core(), q.token());
/// q.put(1)?;
/// q.get()?;
/// with_object(core, &t, |ctx| queue::task_done(ctx))?;
/// assert!(with_object(core, &t, |ctx| queue::task_done(ctx)).is_err()); // called too many times
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn task_done(ctx: &mut Ctx<'_>) -> Result<()> {
    let (s, _) = state(ctx)?;
    if s.done >= s.tail {
        return Err(Error::ValueError(
            "task_done() called too many times".into(),
        ));
    }
    ctx.core.arena().store_u64(ctx.body + DONE, s.done + 1)?;
    if s.done + 1 == s.tail {
        ctx.notify(ctx.body + ALL_TASKS_DONE, true)?;
    }
    Ok(())
}

/// `q.join()` with a deadline: waits until every item put has been marked done. True when
/// they all were, false when the deadline passed first.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-queuejoin-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::queue;
/// let q = store.joinable_queue(0)?;
/// let (core, t) = (store.core(), q.token());
/// q.put(1)?;
/// let soon = || Some(Instant::now() + Duration::from_millis(10));
/// assert!(!with_object(core, &t, |ctx| queue::join(ctx, soon()))?); // one item not done
/// q.get()?;
/// q.task_done()?;
/// assert!(with_object(core, &t, |ctx| queue::join(ctx, soon()))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn join(ctx: &mut Ctx<'_>, deadline: Option<Instant>) -> Result<bool> {
    let mut timed_out = false;
    loop {
        let (s, _) = state(ctx)?;
        if s.done == s.tail {
            return Ok(true);
        }
        if timed_out {
            return Ok(false);
        }
        timed_out = ctx.wait_until(ctx.body + ALL_TASKS_DONE, deadline)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers: `queue.Queue`'s methods are Python functions, so their argument errors read as
// CPython reports a Python function's.

/// Binds arguments to the parameters `names` of the Python method `Queue.{method}` (after
/// `self`), of which the first `required` have no default — CPython's order of checks: keyword
/// arguments first, then too many positional ones, then missing ones.
fn bind<'v, const N: usize>(
    method: &str,
    args: &'v [Value],
    kwargs: Kwargs<'v>,
    names: [&str; N],
    required: usize,
) -> Result<[Option<&'v Value>; N]> {
    let mut out: [Option<&Value>; N] = [None; N];
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = Some(a);
    }
    for (k, v) in kwargs {
        match names.iter().position(|n| n == k) {
            Some(i) => match out.get_mut(i) {
                Some(slot @ None) => *slot = Some(v),
                _ => {
                    return Err(Error::TypeError(format!(
                        "Queue.{method}() got multiple values for argument '{k}'"
                    )))
                }
            },
            None => {
                return Err(Error::TypeError(format!(
                    "Queue.{method}() got an unexpected keyword argument '{k}'"
                )))
            }
        }
    }
    if args.len() > N {
        // Counts include `self`, as CPython's do.
        let takes = if required == N {
            format!(
                "{} positional argument{}",
                N + 1,
                if N == 0 { "" } else { "s" }
            )
        } else {
            format!("from {} to {} positional arguments", required + 1, N + 1)
        };
        let given = args.len() + 1;
        return Err(Error::TypeError(format!(
            "Queue.{method}() takes {takes} but {given} {} given",
            if given == 1 { "was" } else { "were" }
        )));
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&out)
        .take(required)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        let list = match missing.as_slice() {
            [one] => format!("'{one}'"),
            [init @ .., last] => format!(
                "{} and '{last}'",
                init.iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            [] => String::new(),
        };
        return Err(Error::TypeError(format!(
            "Queue.{method}() missing {} required positional argument{}: {list}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(out)
}

/// Python's truth value of a `block` argument.
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

/// A blocking call's `timeout` as `queue.Queue` reads it: None waits without limit; a negative
/// number is a `ValueError`; anything but a number fails `timeout < 0` with a `TypeError`. A
/// NaN compares as not negative and never runs out, as in CPython.
fn timeout_deadline(v: Option<&Value>) -> Result<Option<Instant>> {
    let secs = match v {
        None | Some(Value::None) => return Ok(None),
        Some(Value::Int(i)) => *i as f64,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Float(f)) => *f,
        Some(other) => {
            return Err(Error::TypeError(format!(
                "'<' not supported between instances of '{}' and 'int'",
                other.type_name()
            )))
        }
    };
    if secs < 0.0 {
        return Err(Error::ValueError(
            "'timeout' must be a non-negative number".into(),
        ));
    }
    if secs.is_nan() {
        return Ok(None);
    }
    Ok(std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| Instant::now().checked_add(d)))
}

fn m_put(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [item, block, timeout] = bind("put", a, k, ["item", "block", "timeout"], 1)?;
    let item = item.unwrap_or(&Value::None);
    let block = block.map_or(true, truthy);
    // As CPython: the timeout is read only when a bounded queue may have to wait.
    let deadline = if block && state(ctx)?.0.maxsize > 0 {
        timeout_deadline(timeout)?
    } else {
        None
    };
    put(ctx, item, block, deadline)?;
    Ok(Value::None)
}

fn m_put_nowait(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [item] = bind("put_nowait", a, k, ["item"], 1)?;
    put(ctx, item.unwrap_or(&Value::None), false, None)?;
    Ok(Value::None)
}

fn m_get(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [block, timeout] = bind("get", a, k, ["block", "timeout"], 0)?;
    let block = block.map_or(true, truthy);
    let deadline = if block {
        timeout_deadline(timeout)?
    } else {
        None
    };
    get(ctx, block, deadline)
}

fn m_get_nowait(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind::<0>("get_nowait", a, k, [], 0)?;
    get(ctx, false, None)
}

fn m_qsize(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind::<0>("qsize", a, k, [], 0)?;
    Ok(Value::Int(qsize(ctx)? as i64))
}

fn m_empty(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind::<0>("empty", a, k, [], 0)?;
    empty(ctx).map(Value::Bool)
}

fn m_full(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind::<0>("full", a, k, [], 0)?;
    full(ctx).map(Value::Bool)
}

fn m_task_done(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind::<0>("task_done", a, k, [], 0)?;
    task_done(ctx)?;
    Ok(Value::None)
}

fn m_join(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind::<0>("join", a, k, [], 0)?;
    join(ctx, None)?;
    Ok(Value::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_table_is_sorted_for_binary_search() {
        for w in METHODS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }

    /// A holder that dies inside a put — its item's cell written but not published, a grown
    /// ring allocated but not published — leaves a queue that the next caller repairs and uses.
    #[test]
    fn a_holder_dying_mid_put_and_mid_growth_leaves_a_valid_queue() {
        let name = format!("t{}-qabandon", std::process::id());
        let store = crate::Store::create(&name, 1 << 20).unwrap();
        let q = store.queue(0).unwrap();
        for i in 0..MIN_CAP as i64 {
            q.put(i).unwrap();
        }
        let token = q.token();
        let repairs = store.stats().unwrap().repairs;
        std::thread::scope(|s| {
            s.spawn(|| {
                let core = store.core();
                let (guard, _) = core.table().lock(token.slot, None).unwrap();
                let body = core.table().body(token.slot).unwrap();
                let body = body.load(std::sync::atomic::Ordering::Relaxed);
                let st: QueueState = core.arena().read(Offset::new(body)).unwrap();
                let ring = Ring {
                    off: st.ring,
                    cap: core.arena().load_u64(st.ring).unwrap(),
                };
                // The ring is full: a put would grow it. Die after building the new ring and
                // writing the new item into it, before publishing either.
                let new = Ring {
                    off: new_ring(core, ring.cap * 2).unwrap(),
                    cap: ring.cap * 2,
                };
                let c = cell::store(core, &Value::from("x".repeat(40))).unwrap();
                core.arena()
                    .write(Offset::new(new.cell_off(st.tail)), c)
                    .unwrap();
                // The thread ends holding the lock: the robust lock reports its owner died.
                std::mem::forget(guard);
            });
        });
        assert_eq!(q.qsize().unwrap(), MIN_CAP as usize);
        assert_eq!(store.stats().unwrap().repairs, repairs + 1);
        q.put("after").unwrap();
        for i in 0..MIN_CAP as i64 {
            assert_eq!(q.get_nowait().unwrap(), Value::Int(i));
        }
        assert_eq!(q.get_nowait().unwrap(), Value::from("after"));
        assert_eq!(q.get_nowait(), Err(Error::Empty));
    }

    #[test]
    fn argument_errors_read_as_cpython_reports_them() {
        let msg = |r: Result<[Option<&Value>; 3]>| match r {
            Err(Error::TypeError(m)) => m,
            other => panic!("{other:?}"),
        };
        let names = ["item", "block", "timeout"];
        let one = [Value::Int(1)];
        let five = [Value::Int(1), Value::Int(2), Value::Int(3), Value::Int(4)];
        assert_eq!(
            msg(bind("put", &[], &[], names, 1)),
            "Queue.put() missing 1 required positional argument: 'item'"
        );
        assert_eq!(
            msg(bind("put", &five, &[], names, 1)),
            "Queue.put() takes from 2 to 4 positional arguments but 5 were given"
        );
        assert_eq!(
            msg(bind("put", &one, &[("item", Value::Int(2))], names, 1)),
            "Queue.put() got multiple values for argument 'item'"
        );
        assert_eq!(
            msg(bind("put", &five, &[("x", Value::Int(2))], names, 1)),
            "Queue.put() got an unexpected keyword argument 'x'"
        );
        match bind::<0>("qsize", &one, &[], [], 0) {
            Err(Error::TypeError(m)) => {
                assert_eq!(
                    m,
                    "Queue.qsize() takes 1 positional argument but 2 were given"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
