//! `Semaphore` and `BoundedSemaphore`: counters of units with no owner, as in Python — any
//! process may release a unit another acquired (CPython's own tests acquire in a child that
//! exits and release in the parent); a `BoundedSemaphore` refuses to go above its initial value.
//! (`Lock` is its own type, a futex word: [`super::lock`].)
//!
//! Body: a [`SemBody`], then `cap + 1` [`Holder`] entries. `value` counts the free units; each
//! of the first `cap` entries records a process and how many units it holds; the last entry (its
//! process is "nobody") counts units held by processes that found every entry taken. Units held
//! are `sum(count)` over the entries.
//!
//! Dead holders (recovery is lazy, and never counts a unit twice):
//! - a waiter that finds no free unit checks, at most once per [`SLICE`] of waiting (and once
//!   before a non-blocking or timed acquire gives up), whether a recorded holder died; a dead
//!   holder's units go back to `value` ("settled") and waiters are woken;
//! - a release returns a unit of, in this order: the caller's own entry, a dead holder's entry
//!   (so that a release on behalf of a process that exited settles its unit instead of adding
//!   one), another live holder's entry, the anonymous entry; with no entry holding anything, it
//!   adds a unit (`Semaphore`) or is refused (`BoundedSemaphore` at its bound).
//!   Units held in the anonymous entry are never recovered.
//!
//! Caveat: a process that acquires and then exits *on purpose* without releasing (a consumer
//! of a `Semaphore(0)` used as a signal) looks like a dead holder: once no unit is free, a waiter
//! will take its unit over.
//!
//! Crash protocol: every change is one entry and `value` together, made through the journal: the
//! new entry, its index and the new value are written to the journal, `journal_state` is set to
//! PENDING (the publishing store), the entry and `value` are written, and `journal_state` goes
//! back to IDLE. A holder of the object's lock that dies before the publishing store leaves the
//! old state; after it, the type's repair applies the journal again (the writes are idempotent).
//! Compiler fences keep the stores in this order.
//!
//! # Examples
//! ```
//! # let name = format!("doc-semaphore-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let s = store.semaphore(1)?;
//! assert_eq!(s.call_method("acquire", (false,))?, Value::Bool(true));
//! assert_eq!(s.call_method("acquire", (false,))?, Value::Bool(false));
//! s.call_method("release", ())?;
//! let b = store.bounded_semaphore(1)?;
//! assert!(b.call_method("release", ()).is_err()); // above its bound
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{compiler_fence, Ordering};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::sync_common::{bad_float_add, py_bind, truthy, wait_slice, Holder, PyTimeout, Wake};
use super::{bind_args, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::process::ProcId;
use crate::table;
use crate::token::{type_ids, Token};
use crate::value::Value;

#[cfg(doc)]
use super::sync_common::SLICE;

/// Holder entries of a `Semaphore`/`BoundedSemaphore` (besides the anonymous one): as many
/// processes at once have their units recovered if they die.
pub const MAX_HOLDERS: u64 = 16;

const FLAVOR_SEMAPHORE: u64 = 2;
const FLAVOR_BOUNDED: u64 = 3;

const J_IDLE: u64 = 0;
const J_PENDING: u64 = 1;

/// The fixed part of the body.
///
/// # Examples
/// ```
/// # let name = format!("doc-sembody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::semaphore::SemBody;
/// let p = store.bounded_semaphore(3)?;
/// let _one = p.acquire_guard()?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: SemBody = raw.read(Offset::new(body))?;
/// assert_eq!((b.value, b.bound), (2, 3));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SemBody {
    /// Free units.
    pub value: u64,
    /// Most units the semaphore may have (`u64::MAX`: unbounded).
    pub bound: u64,
    /// Holder entries, not counting the anonymous one that follows them.
    pub cap: u64,
    /// `Semaphore` or `BoundedSemaphore` (1, once a `Lock`, is refused).
    pub flavor: u64,
    /// The condition variable waiters sleep on (its bytes).
    pub cond: u64,
    /// IDLE, or PENDING while a journaled change is being applied.
    pub journal_state: u64,
    /// Entry the journaled change writes.
    pub journal_idx: u64,
    /// `value` after the journaled change.
    pub journal_value: u64,
    /// The entry the journaled change writes.
    pub journal_holder: Holder,
    /// Reserved; zero.
    pub reserved: u64,
}
const HEAD: u64 = size_of::<SemBody>() as u64;
const _: () = assert!(HEAD == 96);
const ENTRY: u64 = size_of::<Holder>() as u64;
const OFF_VALUE: u64 = std::mem::offset_of!(SemBody, value) as u64;
const OFF_COND: u64 = std::mem::offset_of!(SemBody, cond) as u64;
const OFF_J_STATE: u64 = std::mem::offset_of!(SemBody, journal_state) as u64;
const OFF_J_IDX: u64 = std::mem::offset_of!(SemBody, journal_idx) as u64;
const OFF_J_VALUE: u64 = std::mem::offset_of!(SemBody, journal_value) as u64;
const OFF_J_HOLDER: u64 = std::mem::offset_of!(SemBody, journal_holder) as u64;
const _: () = assert!(OFF_COND % 8 == 0);

macro_rules! sem_methods {
    ($acquire:ident, $release:ident, $enter:ident, $exit:ident) => {
        &[
            Method {
                name: "__enter__",
                call: $enter,
            },
            Method {
                name: "__exit__",
                call: $exit,
            },
            Method {
                name: "__repr__",
                call: m_repr,
            },
            Method {
                name: "__str__",
                call: m_repr,
            },
            Method {
                name: "acquire",
                call: $acquire,
            },
            Method {
                name: "release",
                call: $release,
            },
        ]
    };
}

/// The `Semaphore` type.
pub static SEMAPHORE_DESC: TypeDesc = TypeDesc {
    id: type_ids::SEMAPHORE,
    typeid: "Semaphore",
    proxy: "AcquirerProxy",
    methods: sem_methods!(m_sem_acquire, m_sem_release, m_sem_acquire, m_exit),
    drop_body,
    repair,
    str: write_str,
    get_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

/// The `BoundedSemaphore` type.
pub static BOUNDED_DESC: TypeDesc = TypeDesc {
    id: type_ids::BOUNDED_SEMAPHORE,
    typeid: "BoundedSemaphore",
    proxy: "AcquirerProxy",
    methods: sem_methods!(m_sem_acquire, m_bsem_release, m_sem_acquire, m_exit),
    drop_body,
    repair,
    str: write_str,
    get_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

// ---------------------------------------------------------------------------------------------
// The body.

/// Reads and checks the body: a known flavor, `cap` within limits, the entries inside the
/// arena, `value` within the bound.
#[inline]
fn body(ctx: &Ctx<'_>) -> Result<SemBody> {
    let b: SemBody = ctx.core.arena().read(Offset::new(ctx.body))?;
    if !(FLAVOR_SEMAPHORE..=FLAVOR_BOUNDED).contains(&b.flavor) || b.cap == 0 || b.cap > MAX_HOLDERS
    {
        return Err(Error::corrupt("semaphore header", ctx.body));
    }
    if b.value > b.bound {
        return Err(Error::corrupt("semaphore value above its bound", ctx.body));
    }
    ctx.core
        .arena()
        .check(ctx.body + HEAD, (b.cap + 1) * ENTRY, 8)?;
    Ok(b)
}

#[inline]
fn entry_off(ctx: &Ctx<'_>, i: u64) -> u64 {
    ctx.body + HEAD + i * ENTRY
}

#[inline]
fn entry(ctx: &Ctx<'_>, i: u64) -> Result<Holder> {
    ctx.core.arena().read(Offset::new(entry_off(ctx, i)))
}

/// Makes one journaled change: entry `idx` becomes `h` and `value` becomes `value`.
fn commit(ctx: &Ctx<'_>, cap: u64, idx: u64, h: Holder, value: u64) -> Result<()> {
    let a = ctx.core.arena();
    a.store_u64(ctx.body + OFF_J_IDX, idx)?;
    a.store_u64(ctx.body + OFF_J_VALUE, value)?;
    a.write(Offset::new(ctx.body + OFF_J_HOLDER), h)?;
    compiler_fence(Ordering::SeqCst);
    a.store_u64(ctx.body + OFF_J_STATE, J_PENDING)?;
    compiler_fence(Ordering::SeqCst);
    apply_journal(ctx, cap)?;
    compiler_fence(Ordering::SeqCst);
    a.store_u64(ctx.body + OFF_J_STATE, J_IDLE)
}

/// Writes what the journal says (idempotent).
fn apply_journal(ctx: &Ctx<'_>, cap: u64) -> Result<()> {
    let a = ctx.core.arena();
    let idx = a.load_u64(ctx.body + OFF_J_IDX)?;
    let value = a.load_u64(ctx.body + OFF_J_VALUE)?;
    let h: Holder = a.read(Offset::new(ctx.body + OFF_J_HOLDER))?;
    if idx > cap {
        return Err(Error::corrupt("semaphore journal index", ctx.body));
    }
    a.write(Offset::new(entry_off(ctx, idx)), h)?;
    a.store_u64(ctx.body + OFF_VALUE, value)
}

/// Finishes a journaled change its maker did not finish.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    let a = ctx.core.arena();
    let b: SemBody = a.read(Offset::new(ctx.body))?;
    if b.journal_state == J_PENDING {
        if b.cap == 0 || b.cap > MAX_HOLDERS {
            return Err(Error::corrupt("semaphore header", ctx.body));
        }
        apply_journal(ctx, b.cap)?;
        a.store_u64(ctx.body + OFF_J_STATE, J_IDLE)?;
    }
    body(ctx).map(|_| ())
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.free(ctx.body)
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    use std::fmt::Write;
    let b = body(ctx)?;
    let _ = match b.flavor {
        FLAVOR_SEMAPHORE => write!(
            out,
            "<threading.Semaphore at {:#x}: value={}>",
            ctx.body, b.value
        ),
        _ => write!(
            out,
            "<threading.BoundedSemaphore at {:#x}: value={}/{}>",
            ctx.body, b.value, b.bound
        ),
    };
    Ok(())
}

/// A semaphore's value is its count of free units.
fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    let b = body(ctx)?;
    Ok(Value::Int(i64::try_from(b.value).unwrap_or(i64::MAX)))
}

/// Creates a semaphore or a bounded semaphore (`type_id` [`type_ids::SEMAPHORE`] or
/// [`type_ids::BOUNDED_SEMAPHORE`]) with `value` free units.
///
/// # Errors
/// `OutOfMemory`, `TableFull`; `ValueError` for another type id or a value above `i64::MAX`.
///
/// # Examples
/// ```
/// # let name = format!("doc-semcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::semaphore;
/// use shmstore::{type_ids, BoundedSemaphoreProxy, Error};
/// let core = store.core();
/// let t = semaphore::create(core, type_ids::BOUNDED_SEMAPHORE, 2)?; // one reference: ours
/// let s = BoundedSemaphoreProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(s.value()?, 2);
/// assert!(matches!(semaphore::create(core, type_ids::LIST, 1), Err(Error::ValueError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, type_id: u16, value: u64) -> Result<Token> {
    if value > i64::MAX as u64 {
        return Err(Error::ValueError("semaphore value too large".into()));
    }
    let (flavor, value, bound, cap) = match type_id {
        type_ids::SEMAPHORE => (FLAVOR_SEMAPHORE, value, u64::MAX, MAX_HOLDERS),
        type_ids::BOUNDED_SEMAPHORE => (FLAVOR_BOUNDED, value, value, value.clamp(1, MAX_HOLDERS)),
        _ => return Err(Error::ValueError("not a semaphore type".into())),
    };
    let size = HEAD + (cap + 1) * ENTRY;
    let body = core.alloc(size)?;
    let built = (|| {
        let a = core.arena();
        a.fill(body, size, 0)?;
        a.write(
            Offset::new(body),
            SemBody {
                value,
                bound,
                cap,
                flavor,
                ..SemBody::zeroed()
            },
        )?;
        table::init_cond(a, body + OFF_COND)?;
        core.create_object(type_id, body)
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

// ---------------------------------------------------------------------------------------------
// Typed operations.

/// Free units.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-semvalue-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::semaphore;
/// let s = store.semaphore(3)?;
/// s.acquire(true, None)?;
/// assert_eq!(with_object(store.core(), &s.token(), |ctx| semaphore::value(ctx))?, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn value(ctx: &mut Ctx<'_>) -> Result<u64> {
    body(ctx).map(|b| b.value)
}

/// What the entries record: (process, units held) for each holder, the anonymous units under
/// `ProcId::default()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-semholders-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::process::ProcId;
/// use shmstore::types::semaphore;
/// let s = store.semaphore(3)?;
/// s.acquire(true, None)?;
/// s.acquire(true, None)?;
/// let h = with_object(store.core(), &s.token(), |ctx| semaphore::holders(ctx))?;
/// assert_eq!(h, vec![(ProcId::current(), 2)]); // held by this process, so given back if it dies
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn holders(ctx: &mut Ctx<'_>) -> Result<Vec<(ProcId, u64)>> {
    let b = body(ctx)?;
    let mut out = Vec::new();
    for i in 0..=b.cap {
        let h = entry(ctx, i)?;
        if h.count > 0 {
            out.push((
                if i == b.cap {
                    ProcId::default()
                } else {
                    h.proc
                },
                h.count,
            ));
        }
    }
    Ok(out)
}

/// Takes one free unit for this process (the caller saw `b.value > 0`).
fn take(ctx: &Ctx<'_>, b: &SemBody, me: ProcId) -> Result<()> {
    let mut free = None;
    let mut at = b.cap;
    for i in 0..b.cap {
        let h = entry(ctx, i)?;
        if h.count > 0 && h.proc == me {
            at = i;
            free = None;
            break;
        }
        if h.count == 0 && free.is_none() {
            free = Some(i);
        }
    }
    let (idx, h) = match free {
        Some(i) => (i, Holder { proc: me, count: 1 }),
        None => {
            let mut h = entry(ctx, at)?;
            if at == b.cap {
                h.proc = ProcId::default();
            }
            h.count = h
                .count
                .checked_add(1)
                .ok_or(Error::corrupt("holder count overflows", ctx.body))?;
            (at, h)
        }
    };
    commit(ctx, b.cap, idx, h, b.value - 1)
}

/// Gives the units of every dead holder back; true if any came back (waiters were woken).
#[cold]
fn settle_dead(ctx: &Ctx<'_>, me: ProcId) -> Result<bool> {
    let mut any = false;
    let cap = body(ctx)?.cap;
    for i in 0..cap {
        let h = entry(ctx, i)?;
        if h.count > 0 && h.proc != me && !h.proc.is_alive() {
            let b = body(ctx)?;
            let value = b
                .value
                .checked_add(h.count)
                .filter(|v| *v <= b.bound)
                .ok_or(Error::corrupt("semaphore value overflows", ctx.body))?;
            commit(ctx, cap, i, Holder::zeroed(), value)?;
            ctx.core.note_repair();
            any = true;
        }
    }
    if any {
        ctx.notify(ctx.body + OFF_COND, true)?;
    }
    Ok(any)
}

/// `acquire(blocking, timeout)` with the deadline computed only when the call has to wait.
fn acquire_with(
    ctx: &mut Ctx<'_>,
    blocking: bool,
    deadline: impl FnOnce() -> Result<Option<Instant>>,
) -> Result<bool> {
    let me = ProcId::current();
    let b = body(ctx)?;
    if b.value > 0 {
        take(ctx, &b, me)?;
        return Ok(true);
    }
    acquire_slow(ctx, me, blocking, deadline)
}

#[cold]
fn acquire_slow(
    ctx: &mut Ctx<'_>,
    me: ProcId,
    blocking: bool,
    deadline: impl FnOnce() -> Result<Option<Instant>>,
) -> Result<bool> {
    let deadline = if blocking {
        deadline()?
    } else {
        Some(Instant::now())
    };
    let mut expired = false;
    let mut last_check = false;
    loop {
        let b = body(ctx)?;
        if b.value > 0 {
            take(ctx, &b, me)?;
            return Ok(true);
        }
        if expired {
            if last_check {
                return Ok(false);
            }
            // One last look at the holders before giving up.
            last_check = true;
            settle_dead(ctx, me)?;
            continue;
        }
        match wait_slice(ctx, ctx.body + OFF_COND, deadline)? {
            Wake::Woken => {}
            Wake::Slice => {
                settle_dead(ctx, me)?;
            }
            Wake::Deadline => expired = true,
        }
    }
}

/// `acquire(blocking, timeout)`: takes a unit, waiting for one at most until `deadline` (None:
/// without limit; a non-blocking call does not wait). True if a unit was taken.
///
/// # Errors
/// `Corrupt` if the body fails a check; `Os` for a failed wait.
///
/// # Examples
/// ```
/// # let name = format!("doc-semacquire-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::semaphore;
/// let s = store.semaphore(1)?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| semaphore::acquire(ctx, true, None))?);
/// let deadline = Some(Instant::now() + Duration::from_millis(10));
/// assert!(!with_object(core, &t, |ctx| semaphore::acquire(ctx, true, deadline))?); // none left
/// assert_eq!(s.value()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn acquire(ctx: &mut Ctx<'_>, blocking: bool, deadline: Option<Instant>) -> Result<bool> {
    acquire_with(ctx, blocking, || Ok(deadline))
}

/// Returns up to `n` units (`n >= 1`) of one holder, or all `n` as free units when no entry
/// holds any (see the module's notes for whose); the count returned.
fn release_some(ctx: &Ctx<'_>, b: &SemBody, me: ProcId, n: u64) -> Result<u64> {
    let mut own = None;
    let mut others = false;
    for i in 0..b.cap {
        let h = entry(ctx, i)?;
        if h.count > 0 {
            if h.proc == me {
                own = Some((i, h));
                break;
            }
            others = true;
        }
    }
    if own.is_none() && others {
        own = other_holder(ctx, b)?;
    }
    if own.is_none() {
        let h = entry(ctx, b.cap)?;
        if h.count > 0 {
            own = Some((b.cap, h));
        }
    }
    let k = own.map_or(n, |(_, h)| h.count.min(n));
    let value = b
        .value
        .checked_add(k)
        .filter(|v| *v <= b.bound)
        .ok_or(Error::corrupt("semaphore value overflows", ctx.body))?;
    match own {
        Some((i, mut h)) => {
            h.count -= k;
            commit(ctx, b.cap, i, h, value)?;
        }
        None => ctx.core.arena().store_u64(ctx.body + OFF_VALUE, value)?,
    }
    Ok(k)
}

/// The entry of another process whose unit a release returns: a dead one first, else the first.
#[cold]
fn other_holder(ctx: &Ctx<'_>, b: &SemBody) -> Result<Option<(u64, Holder)>> {
    let mut first = None;
    for i in 0..b.cap {
        let h = entry(ctx, i)?;
        if h.count > 0 {
            if !h.proc.is_alive() {
                return Ok(Some((i, h)));
            }
            first = first.or(Some((i, h)));
        }
    }
    Ok(first)
}

/// `release(n)`: returns `n` units and wakes as many waiters.
///
/// # Errors
/// `ValueError("Semaphore released too many times")` when a `BoundedSemaphore` would go above its initial value;
/// `ValueError("n must be one or more")` for `n == 0`.
///
/// # Examples
/// ```
/// # let name = format!("doc-semrelease-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::semaphore;
/// use shmstore::Error;
/// let s = store.bounded_semaphore(2)?;
/// let (core, t) = (store.core(), s.token());
/// s.acquire(true, None)?;
/// s.acquire(true, None)?;
/// with_object(core, &t, |ctx| semaphore::release(ctx, 2))?;
/// assert_eq!(s.value()?, 2);
/// assert_eq!(
///     with_object(core, &t, |ctx| semaphore::release(ctx, 1)),
///     Err(Error::ValueError("Semaphore released too many times".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn release(ctx: &mut Ctx<'_>, n: u64) -> Result<()> {
    if n == 0 {
        return Err(Error::ValueError("n must be one or more".into()));
    }
    let me = ProcId::current();
    let b = body(ctx)?;
    match b.flavor {
        FLAVOR_BOUNDED if b.value.checked_add(n).map_or(true, |v| v > b.bound) => {
            return Err(Error::ValueError(
                "Semaphore released too many times".into(),
            ))
        }
        _ => {}
    }
    if b.value.checked_add(n).map_or(true, |v| v > i64::MAX as u64) {
        return Err(Error::ValueError("semaphore value too large".into()));
    }
    // One holder's units at a time, not one unit at a time: `release(n)` with a huge `n` ends
    // after at most `cap + 2` steps (found by fuzzing: `release(3748222034398419183)` ran for
    // hours, one unit per step).
    let mut left = n;
    while left > 0 {
        let b = body(ctx)?;
        left -= release_some(ctx, &b, me, left)?;
    }
    ctx.notify(ctx.body + OFF_COND, n > 1)
}

// ---------------------------------------------------------------------------------------------
// Handlers.

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

/// `__exit__(*exc_info)`: a release (as `AcquirerProxy.__exit__` calls `release()`).
fn m_exit(ctx: &mut Ctx<'_>, _a: &[Value], _k: Kwargs<'_>) -> Result<Value> {
    release(ctx, 1)?;
    Ok(Value::None)
}

/// `Semaphore.acquire(blocking=True, timeout=None)`.
fn m_sem_acquire(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [blocking, timeout] = py_bind("Semaphore.acquire", a, k, ["blocking", "timeout"])?;
    let blocking = blocking.map_or(true, truthy);
    let timeout = PyTimeout::parse(timeout);
    if !blocking && !matches!(timeout, PyTimeout::Forever) {
        return Err(Error::ValueError(
            "can't specify timeout for non-blocking acquire".into(),
        ));
    }
    acquire_with(ctx, blocking, || timeout.deadline(bad_float_add)).map(Value::Bool)
}

/// The `n` of `Semaphore.release(n=1)`, checked as Python's `if n < 1` and `range(n)` do.
fn release_count(v: Option<&Value>) -> Result<u64> {
    let n = match v {
        None => 1,
        Some(Value::Int(i)) => *i,
        Some(Value::Bool(b)) => i64::from(*b),
        Some(Value::Float(f)) if *f < 1.0 => 0,
        Some(v @ Value::Float(_)) => return Err(super::sync_common::not_an_integer(v)),
        Some(other) => {
            return Err(Error::TypeError(format!(
                "'<' not supported between instances of '{}' and 'int'",
                other.type_name()
            )))
        }
    };
    u64::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| Error::ValueError("n must be one or more".into()))
}

fn m_sem_release(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [n] = py_bind("Semaphore.release", a, k, ["n"])?;
    release(ctx, release_count(n)?)?;
    Ok(Value::None)
}

fn m_bsem_release(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [n] = py_bind("BoundedSemaphore.release", a, k, ["n"])?;
    release(ctx, release_count(n)?)?;
    Ok(Value::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A process id that is certainly dead: a child that ran and was reaped.
    fn dead_proc() -> ProcId {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        ProcId {
            pid,
            pad: 0,
            start: 1,
        }
    }

    fn store(tag: &str) -> (Store, String) {
        let name = format!("u{}-sem-{tag}", std::process::id());
        let _ = Store::remove(&name);
        (Store::create(&name, 1 << 20).unwrap(), name)
    }

    /// Regression (fuzzing): `release(n)` returned one unit per step, so a huge `n` never ended.
    #[test]
    fn a_release_of_a_huge_count_ends() {
        let (store, name) = store("huge");
        let sem = store.semaphore(2).unwrap();
        assert!(sem.acquire(false, None).unwrap());
        assert!(sem.acquire(false, None).unwrap());
        let n = 1u64 << 62;
        sem.release_n(n as usize).unwrap();
        assert_eq!(
            sem.value().unwrap() as u64,
            n,
            "the two held units, then n - 2 free ones"
        );
        let held = crate::dispatch::with_object(store.core(), &sem.token(), holders).unwrap();
        assert!(held.is_empty(), "{held:?}");
        drop(sem);
        let _ = Store::remove(&name);
    }

    #[test]
    fn an_abandoned_holder_is_settled_by_a_waiter_in_process() {
        let (store, name) = store("abandoned");
        let sem = store.semaphore(1).unwrap();
        let t = sem.token();
        let core = store.core();
        // Simulate a holder that died holding the only unit.
        crate::dispatch::with_object(core, &t, |ctx| {
            let b = body(ctx)?;
            let dead = Holder {
                proc: dead_proc(),
                count: 1,
            };
            commit(ctx, b.cap, 3, dead, 0)
        })
        .unwrap();
        assert_eq!(sem.value().unwrap(), 0);
        assert!(sem.acquire(false, None).unwrap(), "settled, then taken");
        let held = crate::dispatch::with_object(core, &t, holders).unwrap();
        assert_eq!(held, vec![(ProcId::current(), 1)]);
        assert!(!sem.acquire(false, None).unwrap(), "only one unit");
        drop(sem);
        let _ = Store::remove(&name);
    }

    #[test]
    fn a_release_settles_a_dead_holder_before_a_live_one() {
        let (store, name) = store("settle");
        let sem = store.bounded_semaphore(2).unwrap();
        let t = sem.token();
        let core = store.core();
        let other_live = ProcId {
            pid: 1,
            pad: 0,
            start: 0,
        };
        crate::dispatch::with_object(core, &t, |ctx| {
            let b = body(ctx)?;
            commit(
                ctx,
                b.cap,
                0,
                Holder {
                    proc: other_live,
                    count: 1,
                },
                1,
            )?;
            commit(
                ctx,
                b.cap,
                1,
                Holder {
                    proc: dead_proc(),
                    count: 1,
                },
                0,
            )
        })
        .unwrap();
        sem.release().unwrap();
        let held = crate::dispatch::with_object(core, &t, holders).unwrap();
        assert_eq!(
            held,
            vec![(other_live, 1)],
            "the dead holder's unit came back"
        );
        sem.release().unwrap();
        assert_eq!(sem.value().unwrap(), 2);
        assert!(sem.release().is_err());
        drop(sem);
        let _ = Store::remove(&name);
    }

    #[test]
    fn repair_finishes_a_half_applied_journal() {
        let (store, name) = store("journal");
        let lock = store.bounded_semaphore(1).unwrap();
        let t = lock.token();
        let core = store.core();
        crate::dispatch::with_object(core, &t, |ctx| {
            // A holder died after publishing the journal and writing the entry, before the
            // value: the lock looks free and held at once.
            let a = ctx.core.arena();
            let h = Holder {
                proc: ProcId::current(),
                count: 1,
            };
            a.store_u64(ctx.body + OFF_J_IDX, 0)?;
            a.store_u64(ctx.body + OFF_J_VALUE, 0)?;
            a.write(Offset::new(ctx.body + OFF_J_HOLDER), h)?;
            a.store_u64(ctx.body + OFF_J_STATE, J_PENDING)?;
            a.write(Offset::new(entry_off(ctx, 0)), h)?;
            repair(ctx)?;
            let b = body(ctx)?;
            assert_eq!((b.value, b.journal_state), (0, J_IDLE));
            assert_eq!(holders(ctx)?, vec![(ProcId::current(), 1)]);
            Ok(())
        })
        .unwrap();
        assert_eq!(lock.value().unwrap(), 0);
        lock.release().unwrap();
        assert_eq!(lock.value().unwrap(), 1);
        drop(lock);
        let _ = Store::remove(&name);
    }

    #[test]
    fn method_tables_are_sorted_for_binary_search() {
        for d in [&SEMAPHORE_DESC, &BOUNDED_DESC] {
            for w in d.methods.windows(2) {
                assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
            }
        }
    }
}
