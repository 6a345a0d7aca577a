//! `RLock`: a lock with an owner (a process and one of its threads) that the owner may take again
//! and again; only the owner releases it. A dead owner's hold is recovered by the next acquirer.
//! The owner logic ([`Owner`] and the `owner_*` functions) is shared with `Condition`, whose
//! lock is an RLock too.
//!
//! Body: an [`RLockBody`]: the [`Owner`] record and the condition variable acquirers wait on.
//!
//! Crash protocol (the owner record): the lock is held exactly when `pid != 0`; `tid`, `start`
//! and `count` mean something only then. Taking a free lock writes `count`, `tid`, `start`, then
//! `pid` (the publishing store); a recursive acquire or release changes `count` alone (one
//! store); the last release stores `pid = 0` alone. Taking over from a dead owner first stores
//! `pid = 0`, then takes the free lock. A crash between any two of these stores leaves either the
//! old record or a free lock. Compiler fences keep the stores in this order.
//!
//! Waiters sleep in slices ([`SLICE`](super::sync_common::SLICE)) and check the owner's
//! liveness when a slice ends, so a dead owner is noticed without busy waiting. A thread that
//! exits while it owns the lock, in a process that lives on, is not detected (as in Python).
//!
//! # Examples
//! ```
//! # let name = format!("doc-rlock-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let r = store.rlock()?;
//! assert_eq!(r.call_method("acquire", ())?, Value::Bool(true));
//! assert_eq!(r.call_method("acquire", ())?, Value::Bool(true)); // the owner again
//! r.call_method("release", ())?;
//! r.call_method("release", ())?;
//! assert!(r.call_method("release", ()).is_err()); // RuntimeError: un-acquired
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{compiler_fence, Ordering};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::sync_common::{c_acquire_args, wait_slice, Wake};
use super::{bind_args, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::process::{current_tid, ProcId};
use crate::table;
use crate::token::{type_ids, Token};
use crate::value::Value;

/// Who owns an RLock (or a Condition's lock), and how many times.
///
/// # Examples
/// ```
/// # let name = format!("doc-owner-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::process::ProcId;
/// use shmstore::types::rlock::RLockBody;
/// let p = store.rlock()?;
/// let _held = p.acquire_guard()?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: RLockBody = raw.read(Offset::new(body))?;
/// let o = b.owner;
/// assert!(o.held());
/// assert_eq!(o.proc(), ProcId::current());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Owner {
    /// Owning process; 0 when the lock is free.
    pub pid: u32,
    /// Owning thread (kernel thread id).
    pub tid: u32,
    /// Start time of the owning process (see [`ProcId`]).
    pub start: u64,
    /// Recursion count.
    pub count: u64,
}
const _: () = assert!(size_of::<Owner>() == 24);
const OWN_PID: u64 = std::mem::offset_of!(Owner, pid) as u64;
const OWN_TID: u64 = std::mem::offset_of!(Owner, tid) as u64;
const OWN_START: u64 = std::mem::offset_of!(Owner, start) as u64;
const OWN_COUNT: u64 = std::mem::offset_of!(Owner, count) as u64;

impl Owner {
    /// True when the lock is held.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-held-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::arena::Offset;
    /// use shmstore::types::rlock::RLockBody;
    /// let p = store.rlock()?;
    /// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let b: RLockBody = raw.read(Offset::new(body))?;
    /// assert!(!b.owner.held()); // nobody took it yet
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn held(&self) -> bool {
        self.pid != 0
    }

    /// The owning process.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-proc-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::arena::Offset;
    /// use shmstore::types::rlock::RLockBody;
    /// let p = store.rlock()?;
    /// let _held = p.acquire_guard()?;
    /// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let b: RLockBody = raw.read(Offset::new(body))?;
    /// assert!(b.owner.proc().is_alive()); // what a waiter checks when its slice runs out
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn proc(&self) -> ProcId {
        ProcId {
            pid: self.pid,
            pad: 0,
            start: self.start,
        }
    }

    /// True when the calling thread owns the lock.
    fn is_me(&self, me: ProcId, tid: u32) -> bool {
        self.held() && self.pid == me.pid && self.start == me.start && self.tid == tid
    }
}

/// The body of an RLock.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::rlock::RLockBody;
/// let p = store.rlock()?;
/// let _a = p.acquire_guard()?;
/// let _b = p.acquire_guard()?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: RLockBody = raw.read(Offset::new(body))?;
/// assert_eq!(b.owner.tid, shmstore::process::current_tid());
/// assert_eq!(b.owner.count, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RLockBody {
    /// The owner record.
    pub owner: Owner,
    /// The condition variable acquirers wait on (its bytes).
    pub cond: u64,
    /// Reserved; zero.
    pub reserved: [u64; 2],
}
const _: () = assert!(size_of::<RLockBody>() == 48);
const OFF_OWNER: u64 = std::mem::offset_of!(RLockBody, owner) as u64;
const OFF_COND: u64 = std::mem::offset_of!(RLockBody, cond) as u64;

/// The `RLock` type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::RLOCK,
    typeid: "RLock",
    proxy: "AcquirerProxy",
    methods: &[
        Method {
            name: "__enter__",
            call: m_acquire,
        },
        Method {
            name: "__exit__",
            call: m_exit,
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
            call: m_acquire,
        },
        Method {
            name: "release",
            call: m_release,
        },
    ],
    drop_body,
    repair,
    str: write_str,
    get_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

// ---------------------------------------------------------------------------------------------
// The owner record (shared with Condition).

/// Reads the owner record at `off`.
///
/// # Errors
/// `Corrupt` for a bad offset.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockowner-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::process::ProcId;
/// use shmstore::types::rlock::{self, RLockBody};
/// let r = store.rlock()?;
/// r.acquire(true, None)?;
/// let o = with_object(store.core(), &r.token(), |ctx| {
///     rlock::owner(ctx, ctx.body + std::mem::offset_of!(RLockBody, owner) as u64)
/// })?;
/// assert!(o.held());
/// assert_eq!((o.proc(), o.count), (ProcId::current(), 1));
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn owner(ctx: &Ctx<'_>, off: u64) -> Result<Owner> {
    ctx.core.arena().read(Offset::new(off))
}

/// Takes a free lock for the calling thread with recursion count `count`.
fn take(ctx: &Ctx<'_>, off: u64, me: ProcId, tid: u32, count: u64) -> Result<()> {
    let a = ctx.core.arena();
    a.store_u64(off + OWN_COUNT, count)?;
    a.write(Offset::<u32>::new(off + OWN_TID), tid)?;
    a.store_u64(off + OWN_START, me.start)?;
    compiler_fence(Ordering::SeqCst);
    a.write(Offset::<u32>::new(off + OWN_PID), me.pid)
}

/// Marks the lock free.
fn free(ctx: &Ctx<'_>, off: u64) -> Result<()> {
    ctx.core.arena().write(Offset::<u32>::new(off + OWN_PID), 0)
}

/// True (and the lock freed) if its owner's process died.
#[cold]
fn recover_dead(ctx: &Ctx<'_>, off: u64) -> Result<bool> {
    let o = owner(ctx, off)?;
    if o.held() && !o.proc().is_alive() {
        free(ctx, off)?;
        ctx.core.note_repair();
        return Ok(true);
    }
    Ok(false)
}

/// Acquires the lock whose owner record is at `off` for the calling thread (recursively if it
/// owns it already), waiting on the condvar at `cond` until `deadline` (a non-blocking call
/// does not wait). True if acquired. A dead owner's hold is taken over.
///
/// # Errors
/// `Corrupt`, `Os`; `ValueError` if the recursion count would overflow.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockownacq-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock::{self, RLockBody};
/// let r = store.rlock()?;
/// with_object(store.core(), &r.token(), |ctx| {
///     let off = ctx.body + std::mem::offset_of!(RLockBody, owner) as u64;
///     let cond = ctx.body + std::mem::offset_of!(RLockBody, cond) as u64;
///     assert!(rlock::owner_acquire(ctx, off, cond, true, None)?);
///     assert!(rlock::owner_acquire(ctx, off, cond, true, None)?); // recursively
///     Ok(())
/// })?;
/// assert_eq!(r.count()?, 2);
/// # r.release()?;
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn owner_acquire(
    ctx: &mut Ctx<'_>,
    off: u64,
    cond: u64,
    blocking: bool,
    deadline: Option<Instant>,
) -> Result<bool> {
    let me = ProcId::current();
    let tid = current_tid();
    let o = owner(ctx, off)?;
    if !o.held() {
        take(ctx, off, me, tid, 1)?;
        return Ok(true);
    }
    if o.is_me(me, tid) {
        let n = o
            .count
            .checked_add(1)
            .filter(|n| *n <= u64::from(u32::MAX))
            .ok_or_else(|| Error::ValueError("recursion count too large".into()))?;
        ctx.core.arena().store_u64(off + OWN_COUNT, n)?;
        return Ok(true);
    }
    wait_free(ctx, off, cond, me, tid, 1, blocking, deadline)
}

/// Waits for the lock at `off` to be free (or its owner dead), then takes it with `count`.
#[cold]
#[allow(clippy::too_many_arguments)]
fn wait_free(
    ctx: &mut Ctx<'_>,
    off: u64,
    cond: u64,
    me: ProcId,
    tid: u32,
    count: u64,
    blocking: bool,
    deadline: Option<Instant>,
) -> Result<bool> {
    let deadline = if blocking {
        deadline
    } else {
        Some(Instant::now())
    };
    let mut expired = false;
    let mut last_check = false;
    loop {
        if !owner(ctx, off)?.held() {
            take(ctx, off, me, tid, count)?;
            return Ok(true);
        }
        if expired {
            if last_check {
                return Ok(false);
            }
            last_check = true;
            recover_dead(ctx, off)?;
            continue;
        }
        match wait_slice(ctx, cond, deadline)? {
            Wake::Woken => {}
            Wake::Slice => {
                recover_dead(ctx, off)?;
            }
            Wake::Deadline => expired = true,
        }
    }
}

/// Takes the lock at `off` with recursion count `count`, waiting without limit: how a
/// `Condition.wait` takes its lock back.
///
/// # Errors
/// `Corrupt`, `Os`.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockownreacq-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock::{self, RLockBody};
/// let r = store.rlock()?;
/// let count = with_object(store.core(), &r.token(), |ctx| {
///     let off = ctx.body + std::mem::offset_of!(RLockBody, owner) as u64;
///     let cond = ctx.body + std::mem::offset_of!(RLockBody, cond) as u64;
///     // What a Condition's wait does: let go completely, then take it back as it was.
///     rlock::owner_acquire(ctx, off, cond, true, None)?;
///     rlock::owner_acquire(ctx, off, cond, true, None)?;
///     let saved = rlock::owner_release_all(ctx, off, cond)?;
///     assert!(!rlock::owner(ctx, off)?.held());
///     rlock::owner_reacquire(ctx, off, cond, saved)?;
///     Ok(rlock::owner(ctx, off)?.count)
/// })?;
/// assert_eq!(count, 2);
/// # r.release()?;
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn owner_reacquire(ctx: &mut Ctx<'_>, off: u64, cond: u64, count: u64) -> Result<()> {
    let me = ProcId::current();
    let tid = current_tid();
    wait_free(ctx, off, cond, me, tid, count, true, None).map(|_| ())
}

/// True when the calling thread owns the lock at `off`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockownisme-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock::{self, RLockBody};
/// let r = store.rlock()?;
/// let (core, t) = (store.core(), r.token());
/// let is_me = || {
///     with_object(core, &t, |ctx| {
///         rlock::owner_is_me(ctx, ctx.body + std::mem::offset_of!(RLockBody, owner) as u64)
///     })
/// };
/// assert!(!is_me()?);
/// r.acquire(true, None)?;
/// assert!(is_me()?);
/// assert!(!std::thread::scope(|s| s.spawn(is_me).join().unwrap())?); // another thread
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn owner_is_me(ctx: &Ctx<'_>, off: u64) -> Result<bool> {
    Ok(owner(ctx, off)?.is_me(ProcId::current(), current_tid()))
}

/// Releases the calling thread's hold once; the last release frees the lock and wakes one
/// waiter on `cond`.
///
/// # Errors
/// `RuntimeError("cannot release un-acquired lock")` unless the calling thread owns it.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockownrel-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock::{self, RLockBody};
/// use shmstore::Error;
/// let r = store.rlock()?;
/// let (core, t) = (store.core(), r.token());
/// let release = || {
///     with_object(core, &t, |ctx| {
///         let off = ctx.body + std::mem::offset_of!(RLockBody, owner) as u64;
///         let cond = ctx.body + std::mem::offset_of!(RLockBody, cond) as u64;
///         rlock::owner_release(ctx, off, cond)
///     })
/// };
/// r.acquire(true, None)?;
/// r.acquire(true, None)?;
/// release()?;
/// assert_eq!(r.count()?, 1); // once: still held
/// release()?;
/// assert_eq!(r.count()?, 0);
/// assert_eq!(release(), Err(Error::RuntimeError("cannot release un-acquired lock".into())));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn owner_release(ctx: &mut Ctx<'_>, off: u64, cond: u64) -> Result<()> {
    let o = owner(ctx, off)?;
    if !o.is_me(ProcId::current(), current_tid()) || o.count == 0 {
        return Err(Error::RuntimeError(
            "cannot release un-acquired lock".into(),
        ));
    }
    if o.count > 1 {
        ctx.core.arena().store_u64(off + OWN_COUNT, o.count - 1)
    } else {
        free(ctx, off)?;
        ctx.notify(cond, false)
    }
}

/// Releases the calling thread's hold completely (it owns the lock); returns the recursion
/// count to restore.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockownrelall-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock::{self, RLockBody};
/// let r = store.rlock()?;
/// for _ in 0..3 {
///     r.acquire(true, None)?;
/// }
/// let saved = with_object(store.core(), &r.token(), |ctx| {
///     let off = ctx.body + std::mem::offset_of!(RLockBody, owner) as u64;
///     let cond = ctx.body + std::mem::offset_of!(RLockBody, cond) as u64;
///     rlock::owner_release_all(ctx, off, cond)
/// })?;
/// assert_eq!(saved, 3); // the count to restore
/// assert_eq!(r.count()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn owner_release_all(ctx: &mut Ctx<'_>, off: u64, cond: u64) -> Result<u64> {
    let o = owner(ctx, off)?;
    free(ctx, off)?;
    ctx.notify(cond, false)?;
    Ok(o.count.max(1))
}

/// Python's repr of an RLock with this owner record.
///
/// # Examples
/// ```
/// use shmstore::types::rlock::{write_owner_repr, Owner};
/// let mut out = String::new();
/// write_owner_repr(&Owner { pid: 0, tid: 0, start: 0, count: 0 }, 0x40, &mut out);
/// assert_eq!(out, "<unlocked _thread.RLock object owner=0 count=0 at 0x40>");
/// ```
pub fn write_owner_repr(o: &Owner, at: u64, out: &mut String) {
    use std::fmt::Write;
    let (state, tid, count) = if o.held() {
        ("locked", o.tid, o.count)
    } else {
        ("unlocked", 0, 0)
    };
    let _ = write!(
        out,
        "<{state} _thread.RLock object owner={tid} count={count} at {at:#x}>"
    );
}

// ---------------------------------------------------------------------------------------------
// The RLock type.

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.free(ctx.body)
}

/// Every change to the owner record is one publishing store: nothing to repair.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    owner(ctx, ctx.body + OFF_OWNER).map(|_| ())
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    let o = owner(ctx, ctx.body + OFF_OWNER)?;
    write_owner_repr(&o, ctx.body, out);
    Ok(())
}

/// An RLock's value is its recursion count (0 when free).
fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    count(ctx).map(|n| Value::Int(n as i64))
}

/// Creates an RLock.
///
/// # Errors
/// `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::rlock;
/// use shmstore::RLockProxy;
/// let core = store.core();
/// let t = rlock::create(core)?; // one reference: ours
/// let r = RLockProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(r.count()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core) -> Result<Token> {
    let size = size_of::<RLockBody>() as u64;
    let body = core.alloc(size)?;
    let built = (|| {
        core.arena().write(Offset::new(body), RLockBody::zeroed())?;
        table::init_cond(core.arena(), body + OFF_COND)?;
        core.create_object(type_ids::RLOCK, body)
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

/// `acquire(blocking, timeout)`.
///
/// # Errors
/// `Corrupt`, `Os`.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockacquire-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock;
/// let r = store.rlock()?;
/// let (core, t) = (store.core(), r.token());
/// assert!(with_object(core, &t, |ctx| rlock::acquire(ctx, true, None))?);
/// assert!(with_object(core, &t, |ctx| rlock::acquire(ctx, false, None))?); // recursively
/// let other = std::thread::scope(|s| {
///     s.spawn(|| with_object(core, &t, |ctx| rlock::acquire(ctx, false, None))).join().unwrap()
/// })?;
/// assert!(!other); // owned by this thread
/// assert_eq!(r.count()?, 2);
/// # r.release()?;
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn acquire(ctx: &mut Ctx<'_>, blocking: bool, deadline: Option<Instant>) -> Result<bool> {
    owner_acquire(
        ctx,
        ctx.body + OFF_OWNER,
        ctx.body + OFF_COND,
        blocking,
        deadline,
    )
}

/// `release()`.
///
/// # Errors
/// `RuntimeError("cannot release un-acquired lock")` unless the calling thread owns it.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockrelease-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock;
/// use shmstore::Error;
/// let r = store.rlock()?;
/// let (core, t) = (store.core(), r.token());
/// r.acquire(true, None)?;
/// with_object(core, &t, |ctx| rlock::release(ctx))?;
/// assert_eq!(r.count()?, 0);
/// assert_eq!(
///     with_object(core, &t, |ctx| rlock::release(ctx)),
///     Err(Error::RuntimeError("cannot release un-acquired lock".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn release(ctx: &mut Ctx<'_>) -> Result<()> {
    owner_release(ctx, ctx.body + OFF_OWNER, ctx.body + OFF_COND)
}

/// The recursion count (0 when free).
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockcount-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock;
/// let r = store.rlock()?;
/// let (core, t) = (store.core(), r.token());
/// assert_eq!(with_object(core, &t, |ctx| rlock::count(ctx))?, 0);
/// r.acquire(true, None)?;
/// r.acquire(true, None)?;
/// assert_eq!(with_object(core, &t, |ctx| rlock::count(ctx))?, 2);
/// # r.release()?;
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn count(ctx: &mut Ctx<'_>) -> Result<u64> {
    let o = owner(ctx, ctx.body + OFF_OWNER)?;
    Ok(if o.held() { o.count } else { 0 })
}

/// True when the calling thread owns it.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-rlockisowned-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::rlock;
/// let r = store.rlock()?;
/// let (core, t) = (store.core(), r.token());
/// r.acquire(true, None)?;
/// assert!(with_object(core, &t, |ctx| rlock::is_owned(ctx))?);
/// let other = std::thread::scope(|s| {
///     s.spawn(|| with_object(core, &t, |ctx| rlock::is_owned(ctx))).join().unwrap()
/// })?;
/// assert!(!other);
/// # r.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn is_owned(ctx: &mut Ctx<'_>) -> Result<bool> {
    owner_is_me(ctx, ctx.body + OFF_OWNER)
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

/// `RLock.acquire(blocking=True, timeout=-1)` (and `__enter__`).
fn m_acquire(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let (blocking, deadline) = c_acquire_args(a, k)?;
    acquire(ctx, blocking, deadline).map(Value::Bool)
}

fn m_release(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("RLock.release", a, k, [], 0)?;
    release(ctx)?;
    Ok(Value::None)
}

/// `__exit__(*exc_info)`: a release.
fn m_exit(ctx: &mut Ctx<'_>, _a: &[Value], _k: Kwargs<'_>) -> Result<Value> {
    release(ctx)?;
    Ok(Value::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_dead_owner_is_taken_over_and_a_live_one_is_not() {
        let name = format!("u{}-rlock-dead", std::process::id());
        let _ = Store::remove(&name);
        let store = Store::create(&name, 1 << 20).unwrap();
        let r = store.rlock().unwrap();
        let t = r.token();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let fake = |pid: u32| {
            move |ctx: &mut Ctx<'_>| {
                let me = ProcId {
                    pid,
                    pad: 0,
                    start: 0,
                };
                take(ctx, ctx.body + OFF_OWNER, me, 7, 3)
            }
        };
        // pid 1 lives: the lock stays its own.
        crate::dispatch::with_object(store.core(), &t, fake(1)).unwrap();
        assert!(!r.acquire(false, None).unwrap());
        assert_eq!(
            r.release(),
            Err(Error::RuntimeError(
                "cannot release un-acquired lock".into()
            ))
        );
        // A dead owner's hold goes to the next acquirer.
        crate::dispatch::with_object(store.core(), &t, fake(dead)).unwrap();
        assert!(r.acquire(false, None).unwrap());
        assert_eq!(r.count().unwrap(), 1);
        r.release().unwrap();
        assert_eq!(r.count().unwrap(), 0);
        drop(r);
        let _ = Store::remove(&name);
    }

    #[test]
    fn method_table_is_sorted_for_binary_search() {
        for w in DESC.methods.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
    }
}
