//! `Condition`: Python's `threading.Condition()` with its default lock, an RLock owned by a
//! process and thread. `wait` releases the lock completely, sleeps until notified (or the
//! timeout), and takes the lock back with the recursion count it had.
//!
//! Body: a [`CondBody`]: the lock's [`Owner`] record and the condvar its acquirers wait on (see
//! [`super::rlock`]), a second condvar for `wait`, and the waiters' tickets.
//!
//! Tickets make `notify(n)` wake exactly the `n` longest waiting, as Python's FIFO of waiters
//! does: a waiter takes ticket `next_ticket` (and increments it), a notify advances `notified`
//! past `n` tickets still waiting, and a waiter is notified once its ticket is below `notified`.
//! A waiter whose timeout runs out gives its ticket back: the newest ticket by decrementing
//! `next_ticket`, another one by recording it in `cancelled` (notify skips those). When
//! `cancelled` is full a given-back ticket stays, and one later notification goes to it instead
//! of a live waiter; a waiter whose process dies keeps its ticket the same way (as a Python
//! manager's server thread keeps waiting for a client that died).
//!
//! Crash protocol: the owner record as in [`super::rlock`]. `next_ticket`, `notified` and
//! `ncancelled` change by single stores; a cancelled ticket is written before `ncancelled`
//! counts it. Entries below `notified` are dead and ignored by everyone, duplicates are
//! harmless, so a crash in the middle of a notify's rewrite of `cancelled` leaves a valid body.
//!
//! # Examples
//! ```
//! # let name = format!("doc-condition-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let c = store.condition()?;
//! assert_eq!(c.call_method("acquire", ())?, Value::Bool(true));
//! assert_eq!(c.call_method("wait", (0.01,))?, Value::Bool(false)); // nobody notified
//! assert_eq!(c.call_method("notify", ())?, Value::None);
//! c.call_method("release", ())?;
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{compiler_fence, Ordering};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::rlock::{self, Owner};
use super::sync_common::{bad_gt_int, c_acquire_args, py_bind, PyTimeout};
use super::{bind_args, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::table;
use crate::token::{type_ids, Token};
use crate::value::Value;

/// Tickets given back out of order that `notify` can skip.
const MAX_CANCELLED: usize = 8;

/// The body of a Condition.
///
/// # Examples
/// ```
/// # let name = format!("doc-condbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::condition::CondBody;
/// let p = store.condition()?;
/// let _held = p.acquire_guard()?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: CondBody = raw.read(Offset::new(body))?;
/// assert!(b.owner.held());
/// assert_eq!(b.owner.proc().pid, std::process::id());
/// assert_eq!((b.owner.count, b.next_ticket, b.notified), (1, 0, 0));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CondBody {
    /// The lock's owner record.
    pub owner: Owner,
    /// The condvar the lock's acquirers wait on (its bytes).
    pub lock_cond: u64,
    /// The condvar `wait` sleeps on (its bytes).
    pub wait_cond: u64,
    /// The next waiter's ticket.
    pub next_ticket: u64,
    /// Tickets below this are notified.
    pub notified: u64,
    /// Entries of `cancelled` in use.
    pub ncancelled: u64,
    /// Tickets whose waiters gave up (timed out), at or above `notified`.
    pub cancelled: [u64; MAX_CANCELLED],
}
const _: () = assert!(size_of::<CondBody>() == 128);
const OFF_OWNER: u64 = std::mem::offset_of!(CondBody, owner) as u64;
const OFF_LOCK_COND: u64 = std::mem::offset_of!(CondBody, lock_cond) as u64;
const OFF_WAIT_COND: u64 = std::mem::offset_of!(CondBody, wait_cond) as u64;
const OFF_NEXT: u64 = std::mem::offset_of!(CondBody, next_ticket) as u64;
const OFF_NOTIFIED: u64 = std::mem::offset_of!(CondBody, notified) as u64;
const OFF_NCANCELLED: u64 = std::mem::offset_of!(CondBody, ncancelled) as u64;
const OFF_CANCELLED: u64 = std::mem::offset_of!(CondBody, cancelled) as u64;

/// The `Condition` type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::CONDITION,
    typeid: "Condition",
    proxy: "ConditionProxy",
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
            name: "notify",
            call: m_notify,
        },
        Method {
            name: "notify_all",
            call: m_notify_all,
        },
        Method {
            name: "release",
            call: m_release,
        },
        Method {
            name: "wait",
            call: m_wait,
        },
    ],
    drop_body,
    repair,
    str: write_str,
    get_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

/// Reads and checks the body (`notified <= next_ticket`, `ncancelled` in range).
fn body(ctx: &Ctx<'_>) -> Result<CondBody> {
    let b: CondBody = ctx.core.arena().read(Offset::new(ctx.body))?;
    if b.notified > b.next_ticket || b.ncancelled > MAX_CANCELLED as u64 {
        return Err(Error::corrupt("condition tickets", ctx.body));
    }
    Ok(b)
}

/// Tickets still waiting: issued, not notified, not given back.
fn pending(b: &CondBody) -> u64 {
    let live = &b.cancelled[..b.ncancelled as usize];
    let gone = live
        .iter()
        .enumerate()
        .filter(|(i, t)| **t >= b.notified && **t < b.next_ticket && !live[..*i].contains(t))
        .count() as u64;
    (b.next_ticket - b.notified).saturating_sub(gone)
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.free(ctx.body)
}

/// Single-store changes throughout: only the checks.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    body(ctx).map(|_| ())
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    use std::fmt::Write;
    let b = body(ctx)?;
    out.push_str("<Condition(");
    rlock::write_owner_repr(&b.owner, ctx.body, out);
    let _ = write!(out, ", {})>", pending(&b));
    Ok(())
}

/// A Condition's value is its count of waiters.
fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    body(ctx).map(|b| Value::Int(pending(&b) as i64))
}

/// Creates a Condition.
///
/// # Errors
/// `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-condcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::condition;
/// use shmstore::ConditionProxy;
/// let core = store.core();
/// let t = condition::create(core)?; // one reference: ours
/// let c = ConditionProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(c.waiters()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core) -> Result<Token> {
    let size = size_of::<CondBody>() as u64;
    let body = core.alloc(size)?;
    let built = (|| {
        core.arena().write(Offset::new(body), CondBody::zeroed())?;
        table::init_cond(core.arena(), body + OFF_LOCK_COND)?;
        table::init_cond(core.arena(), body + OFF_WAIT_COND)?;
        core.create_object(type_ids::CONDITION, body)
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

// ---------------------------------------------------------------------------------------------
// Typed operations.

/// `acquire(blocking, timeout)` of the condition's lock.
///
/// # Errors
/// `Corrupt`, `Os`.
///
/// # Examples
/// ```
/// # let name = format!("doc-condacquire-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::condition;
/// let c = store.condition()?;
/// let (core, t) = (store.core(), c.token());
/// assert!(with_object(core, &t, |ctx| condition::acquire(ctx, true, None))?);
/// assert!(c.is_owned()?); // by this thread
/// // Another thread finds it held.
/// let other = std::thread::scope(|s| {
///     s.spawn(|| with_object(core, &t, |ctx| condition::acquire(ctx, false, None))).join().unwrap()
/// })?;
/// assert!(!other);
/// # c.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn acquire(ctx: &mut Ctx<'_>, blocking: bool, deadline: Option<Instant>) -> Result<bool> {
    rlock::owner_acquire(
        ctx,
        ctx.body + OFF_OWNER,
        ctx.body + OFF_LOCK_COND,
        blocking,
        deadline,
    )
}

/// `release()` of the condition's lock.
///
/// # Errors
/// `RuntimeError("cannot release un-acquired lock")` unless the calling thread owns it.
///
/// # Examples
/// ```
/// # let name = format!("doc-condrelease-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::condition;
/// use shmstore::Error;
/// let c = store.condition()?;
/// let (core, t) = (store.core(), c.token());
/// c.acquire(true, None)?;
/// with_object(core, &t, |ctx| condition::release(ctx))?;
/// assert!(!c.is_owned()?);
/// assert_eq!(
///     with_object(core, &t, |ctx| condition::release(ctx)),
///     Err(Error::RuntimeError("cannot release un-acquired lock".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn release(ctx: &mut Ctx<'_>) -> Result<()> {
    rlock::owner_release(ctx, ctx.body + OFF_OWNER, ctx.body + OFF_LOCK_COND)
}

/// True when the calling thread owns the condition's lock.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-condisowned-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::condition;
/// let c = store.condition()?;
/// let (core, t) = (store.core(), c.token());
/// assert!(!with_object(core, &t, |ctx| condition::is_owned(ctx))?);
/// c.acquire(true, None)?;
/// assert!(with_object(core, &t, |ctx| condition::is_owned(ctx))?);
/// // Owned by this thread, not by another one.
/// let elsewhere = std::thread::scope(|s| {
///     s.spawn(|| with_object(core, &t, |ctx| condition::is_owned(ctx))).join().unwrap()
/// })?;
/// assert!(!elsewhere);
/// # c.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn is_owned(ctx: &mut Ctx<'_>) -> Result<bool> {
    rlock::owner_is_me(ctx, ctx.body + OFF_OWNER)
}

/// Waiters not yet notified.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-condwaiters-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::condition;
/// let c = store.condition()?;
/// let (core, t) = (store.core(), c.token());
/// assert_eq!(with_object(core, &t, |ctx| condition::waiters(ctx))?, 0);
/// std::thread::scope(|s| {
///     let waiter = s.spawn(|| {
///         c.acquire(true, None)?;
///         let notified = c.wait(Some(Duration::from_secs(10)));
///         c.release()?;
///         notified
///     });
///     while with_object(core, &t, |ctx| condition::waiters(ctx))? == 0 {
///         std::thread::sleep(Duration::from_millis(1));
///     }
///     c.acquire(true, None)?;
///     c.notify(1)?;
///     c.release()?;
///     assert!(waiter.join().unwrap()?);
///     Ok::<(), shmstore::Error>(())
/// })?;
/// assert_eq!(with_object(core, &t, |ctx| condition::waiters(ctx))?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn waiters(ctx: &mut Ctx<'_>) -> Result<u64> {
    body(ctx).map(|b| pending(&b))
}

/// `wait(timeout)`: releases the lock (which the caller must own), waits to be notified until
/// `deadline` (computed by `deadline` once the lock is released), takes the lock back with its
/// recursion count; true if notified.
fn wait_with(
    ctx: &mut Ctx<'_>,
    deadline: impl FnOnce() -> Result<Option<Instant>>,
) -> Result<bool> {
    if !is_owned(ctx)? {
        return Err(Error::RuntimeError(
            "cannot wait on un-acquired lock".into(),
        ));
    }
    let deadline = deadline()?;
    let b = body(ctx)?;
    let ticket = b.next_ticket;
    let a = ctx.core.arena();
    a.store_u64(
        ctx.body + OFF_NEXT,
        ticket
            .checked_add(1)
            .ok_or(Error::corrupt("ticket overflow", ctx.body))?,
    )?;
    let saved = rlock::owner_release_all(ctx, ctx.body + OFF_OWNER, ctx.body + OFF_LOCK_COND)?;
    let notified = loop {
        let b = body(ctx)?;
        if ticket < b.notified {
            break true;
        }
        if ctx.wait_until(ctx.body + OFF_WAIT_COND, deadline)? {
            let b = body(ctx)?;
            if ticket < b.notified {
                break true;
            }
            give_back(ctx, &b, ticket)?;
            break false;
        }
    };
    rlock::owner_reacquire(ctx, ctx.body + OFF_OWNER, ctx.body + OFF_LOCK_COND, saved)?;
    Ok(notified)
}

/// A timed-out waiter gives its (un-notified) ticket back.
fn give_back(ctx: &Ctx<'_>, b: &CondBody, ticket: u64) -> Result<()> {
    let a = ctx.core.arena();
    if ticket + 1 == b.next_ticket {
        return a.store_u64(ctx.body + OFF_NEXT, ticket);
    }
    let n = b.ncancelled;
    if n < MAX_CANCELLED as u64 {
        a.store_u64(ctx.body + OFF_CANCELLED + 8 * n, ticket)?;
        compiler_fence(Ordering::SeqCst);
        a.store_u64(ctx.body + OFF_NCANCELLED, n + 1)?;
    }
    Ok(())
}

/// `wait(timeout)` with a typed deadline (None: no limit). True if notified.
///
/// # Errors
/// `RuntimeError("cannot wait on un-acquired lock")` unless the calling thread owns the lock.
///
/// # Examples
/// ```
/// # let name = format!("doc-condwait-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::condition;
/// let c = store.condition()?;
/// let notified = with_object(store.core(), &c.token(), |ctx| {
///     condition::acquire(ctx, true, None)?;
///     let notified = condition::wait(ctx, Some(Instant::now() + Duration::from_millis(10)));
///     condition::release(ctx)?;
///     notified
/// })?;
/// assert!(!notified); // nobody notified: the deadline passed
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn wait(ctx: &mut Ctx<'_>, deadline: Option<Instant>) -> Result<bool> {
    wait_with(ctx, || Ok(deadline))
}

/// `notify(n)`: wakes the `n` longest waiting (all of them: `u64::MAX`). Returns how many
/// were notified.
///
/// # Errors
/// `RuntimeError("cannot notify on un-acquired lock")` unless the calling thread owns the lock.
///
/// # Examples
/// ```
/// # let name = format!("doc-condnotify-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::condition;
/// let c = store.condition()?;
/// let (core, t) = (store.core(), c.token());
/// std::thread::scope(|s| {
///     let waiter = s.spawn(|| {
///         c.acquire(true, None)?;
///         let notified = c.wait(Some(Duration::from_secs(10)));
///         c.release()?;
///         notified
///     });
///     while c.waiters()? == 0 {
///         std::thread::sleep(Duration::from_millis(1));
///     }
///     let woken = with_object(core, &t, |ctx| {
///         condition::acquire(ctx, true, None)?;
///         let n = condition::notify(ctx, u64::MAX); // all of them
///         condition::release(ctx)?;
///         n
///     })?;
///     assert_eq!(woken, 1);
///     assert!(waiter.join().unwrap()?);
///     Ok::<(), shmstore::Error>(())
/// })?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn notify(ctx: &mut Ctx<'_>, n: u64) -> Result<u64> {
    if !is_owned(ctx)? {
        return Err(Error::RuntimeError(
            "cannot notify on un-acquired lock".into(),
        ));
    }
    let b = body(ctx)?;
    let cancelled = &b.cancelled[..b.ncancelled as usize];
    let mut at = b.notified;
    let mut woken = 0;
    while woken < n && at < b.next_ticket {
        if !cancelled.contains(&at) {
            woken += 1;
        }
        at += 1;
    }
    // Skip given-back tickets right after the last one notified, so they do not linger.
    while at < b.next_ticket && cancelled.contains(&at) {
        at += 1;
    }
    if at == b.notified {
        return Ok(0);
    }
    let a = ctx.core.arena();
    a.store_u64(ctx.body + OFF_NOTIFIED, at)?;
    compiler_fence(Ordering::SeqCst);
    let mut kept = 0u64;
    for &t in cancelled.iter().filter(|t| **t >= at) {
        a.store_u64(ctx.body + OFF_CANCELLED + 8 * kept, t)?;
        kept += 1;
    }
    compiler_fence(Ordering::SeqCst);
    a.store_u64(ctx.body + OFF_NCANCELLED, kept)?;
    if woken > 0 {
        ctx.notify(ctx.body + OFF_WAIT_COND, true)?;
    }
    Ok(woken)
}

// ---------------------------------------------------------------------------------------------
// Handlers.

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

/// `acquire(blocking=True, timeout=-1)` (the RLock's; and `__enter__`).
fn m_acquire(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let (blocking, deadline) = c_acquire_args(a, k)?;
    acquire(ctx, blocking, deadline).map(Value::Bool)
}

fn m_release(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("RLock.release", a, k, [], 0)?;
    release(ctx)?;
    Ok(Value::None)
}

fn m_exit(ctx: &mut Ctx<'_>, _a: &[Value], _k: Kwargs<'_>) -> Result<Value> {
    release(ctx)?;
    Ok(Value::None)
}

/// `Condition.wait(timeout=None)`.
fn m_wait(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [timeout] = py_bind("Condition.wait", a, k, ["timeout"])?;
    let timeout = PyTimeout::parse(timeout);
    wait_with(ctx, || timeout.deadline(bad_gt_int)).map(Value::Bool)
}

/// `Condition.notify(n=1)`. Python takes `n` lazily (`islice(waiters, n)`): a bad `n` is an
/// error only when someone waits.
fn m_notify(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [n] = py_bind("Condition.notify", a, k, ["n"])?;
    let n = match n {
        None => Some(1),
        Some(Value::Int(i)) => u64::try_from(*i).ok(),
        Some(Value::Bool(b)) => Some(u64::from(*b)),
        Some(_) => None,
    };
    match n {
        Some(n) => notify(ctx, n)?,
        None => {
            if !is_owned(ctx)? {
                return Err(Error::RuntimeError(
                    "cannot notify on un-acquired lock".into(),
                ));
            }
            if waiters(ctx)? > 0 {
                return Err(Error::ValueError(
                    "Stop argument for islice() must be None or an integer: 0 <= x <= sys.maxsize."
                        .into(),
                ));
            }
            0
        }
    };
    Ok(Value::None)
}

fn m_notify_all(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    py_bind::<0>("Condition.notify_all", a, k, [])?;
    notify(ctx, u64::MAX)?;
    Ok(Value::None)
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
}
