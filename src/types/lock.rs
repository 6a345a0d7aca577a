//! `Lock`: Python's `threading.Lock` as `SyncManager.Lock()` serves it — no owner: any process
//! may release it, whoever acquired it (CPython's own tests acquire in a child that exits and
//! release in the parent).
//!
//! Body: one [`WordLock`] (24 bytes): the lock is the futex word itself, so `acquire` is one
//! compare-and-swap and `release` one plain store, and neither takes the object's lock — the type
//! is `lockless` in the dispatch table (its handlers only touch the word's atomics). A holder
//! process that dies holding it is found by a waiter (once per slice of waiting, and once
//! before a non-blocking or timed acquire gives up) and its lock taken over; see
//! [`crate::sync::word`].
//!
//! Crash protocol: every change of the state is one atomic instruction on the word; a process
//! killed at any point leaves it locked by that process (taken over later) or not locked. A
//! process killed while it waits leaves the waiter count one too high, which costs later
//! releases a wake-up system call until a releasing process has seen it wake nobody for
//! `sync::barrier::PHANTOM_AGE` and clears it.
//!
//! # Examples
//! ```
//! # let name = format!("doc-lockmod-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! let lk = store.lock()?;
//! assert!(lk.acquire(true, None)?);
//! assert!(!lk.acquire(false, None)?); // not reentrant: a second acquire fails
//! // Ownerless: another thread (or process) may release it.
//! std::thread::scope(|s| s.spawn(|| lk.release()).join().unwrap())?;
//! assert!(!lk.locked()?);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::time::Instant;

use super::sync_common::c_acquire_args;
use super::{bind_args, Ctx, Kwargs, Method, TypeDesc};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::sync::word::{Got, WordLock};
use crate::token::{type_ids, Token};
use crate::value::Value;

/// Bytes of the body.
const BODY: u64 = std::mem::size_of::<WordLock>() as u64;

/// The `Lock` type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::LOCK,
    typeid: "Lock",
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
    lockless: true,
    hooks: FAST_HOOKS,
};

/// The fast hooks of [`DESC`], as a constant for the typed proxy's `call_method` (see
/// [`FastHooks`](super::FastHooks)).
pub const FAST_HOOKS: super::FastHooks = super::FastHooks {
    read: None,
    write: Some(fast_write),
    fixed: Some(fast_fixed),
};

const M_ENTER: usize = super::method_idx(DESC.methods, "__enter__");
const M_EXIT: usize = super::method_idx(DESC.methods, "__exit__");
const M_ACQUIRE: usize = super::method_idx(DESC.methods, "acquire");
const M_RELEASE: usize = super::method_idx(DESC.methods, "release");

/// `call_method`'s fast path (see `FastHooks::write`): `acquire()`/`__enter__()` of a free
/// lock ([`WordLock::try_acquire_free`]) and `release()`/`__exit__(...)` of a held lock no one
/// waits for ([`WordLock::try_release_uncontended`]). `None`, having changed nothing, for
/// anything else: the general path waits, takes a dead holder's lock over and reports errors.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockfastwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::lock::{fast_write, DESC};
/// use shmstore::Value;
/// let lk = store.lock()?;
/// let (core, t) = (store.core(), lk.token());
/// let acquire = DESC.method_index("acquire").unwrap();
/// let release = DESC.method_index("release").unwrap();
/// assert_eq!(fast_write(core, &t, acquire, &[]), Some(Value::Bool(true)));
/// assert_eq!(fast_write(core, &t, acquire, &[]), None); // held: the general path waits
/// assert_eq!(fast_write(core, &t, release, &[]), Some(Value::None));
/// assert_eq!(fast_write(core, &t, release, &[]), None); // the general path raises
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn fast_write(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    let acquire = fast_kind(method, args)?;
    let body = crate::dispatch::body_unlocked(core, token).ok()?;
    fast_on(core, body, acquire)
}

/// [`fast_write`] on the body at `body`, which the caller looked up once (see
/// [`FastHooks::fixed`](super::FastHooks::fixed)): what a `LockProxy`'s `call_method` runs.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockfastfixed-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::body_unlocked;
/// use shmstore::types::lock::{fast_fixed, DESC};
/// use shmstore::Value;
/// let lk = store.lock()?;
/// let (core, body) = (store.core(), body_unlocked(store.core(), &lk.token())?);
/// let acquire = DESC.method_index("acquire").unwrap();
/// let release = DESC.method_index("release").unwrap();
/// assert_eq!(fast_fixed(core, body, acquire, &[]), Some(Value::Bool(true)));
/// assert_eq!(fast_fixed(core, body, acquire, &[]), None); // held: the general path waits
/// assert_eq!(fast_fixed(core, body, release, &[]), Some(Value::None));
/// assert_eq!(fast_fixed(core, body, release, &[]), None); // the general path raises
/// # Ok::<(), shmstore::Error>(())
/// ```
// Inlined into a `LockProxy`'s `call_method`: for a method index known at compile time,
// `fast_kind` is a constant and only the acquire or the release is left.
#[inline(always)]
pub fn fast_fixed(core: &Core, body: u64, method: usize, args: &[Value]) -> Option<Value> {
    fast_on(core, body, fast_kind(method, args)?)
}

/// Which fast call this is: `Some(true)` to acquire, `Some(false)` to release, `None` for
/// anything else.
#[inline(always)]
fn fast_kind(method: usize, args: &[Value]) -> Option<bool> {
    match (method, args) {
        (M_ACQUIRE | M_ENTER, []) => Some(true),
        (M_RELEASE, []) | (M_EXIT, _) => Some(false),
        _ => None,
    }
}

/// The fast acquire of a free lock or release of an uncontended one, on the word at `body`
/// (inlined, as the typed `acquire` and `release` are).
#[inline(always)]
fn fast_on(core: &Core, body: u64, acquire: bool) -> Option<Value> {
    let word = core.arena().words::<WordLock>(body).ok()?;
    // (`if`s rather than `then_some`, which builds the value before the test and copies it.)
    if acquire {
        if word.try_acquire_free() {
            return Some(Value::Bool(true));
        }
    } else if word.try_release_uncontended() {
        return Some(Value::None);
    }
    None
}

/// The lock word in the body.
#[inline]
fn word<'a>(ctx: &Ctx<'a>) -> Result<&'a WordLock> {
    ctx.core.arena().words(ctx.body)
}

/// Creates an unlocked lock.
///
/// # Errors
/// `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::lock;
/// use shmstore::LockProxy;
/// let core = store.core();
/// let t = lock::create(core)?; // one reference: ours
/// let lk = LockProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert!(!lk.locked()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core) -> Result<Token> {
    let body = core.alloc(BODY)?;
    let built = core
        .arena()
        .fill(body, BODY, 0)
        .and_then(|()| core.create_object(type_ids::LOCK, body));
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.free(ctx.body)
}

/// Nothing to repair: no handler runs under the object's lock, and each change is atomic.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    word(ctx).map(|_| ())
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    use std::fmt::Write;
    let locked = word(ctx)?.locked();
    let _ = write!(
        out,
        "<{} _thread.lock object at {:#x}>",
        if locked { "locked" } else { "unlocked" },
        ctx.body
    );
    Ok(())
}

/// Whether the lock is held.
fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    Ok(Value::Bool(word(ctx)?.locked()))
}

/// True while the lock is held (by anyone).
///
/// # Errors
/// `Corrupt` for a bad body offset.
///
/// # Examples
/// ```
/// # let name = format!("doc-locklocked-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object_lockless;
/// use shmstore::types::lock;
/// let lk = store.lock()?;
/// let (core, t) = (store.core(), lk.token());
/// assert!(!with_object_lockless(core, &t, |ctx| lock::locked(ctx))?);
/// lk.acquire(true, None)?;
/// assert!(with_object_lockless(core, &t, |ctx| lock::locked(ctx))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn locked(ctx: &mut Ctx<'_>) -> Result<bool> {
    Ok(word(ctx)?.locked())
}

/// `acquire(blocking, timeout)` on the lock whose body is at `body`: takes the lock, waiting
/// for it at most until `deadline` (None: without limit; a non-blocking call does not wait).
/// True if taken.
///
/// # Errors
/// `Corrupt` for a bad body offset; `Os` for a failed wait.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockacquireat-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::body_unlocked;
/// use shmstore::types::lock::{acquire_at, release_at};
/// let lk = store.lock()?;
/// let core = store.core();
/// let body = body_unlocked(core, &lk.token())?;
/// assert!(acquire_at(core, body, true, None)?);
/// assert!(!acquire_at(core, body, false, None)?); // held: a non-blocking call gives up
/// assert!(lk.locked()?);
/// release_at(core, body)?;
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn acquire_at(
    core: &Core,
    body: u64,
    blocking: bool,
    deadline: Option<Instant>,
) -> Result<bool> {
    match core
        .arena()
        .words::<WordLock>(body)?
        .acquire(blocking, deadline)?
    {
        Got::Taken => Ok(true),
        Got::FromDead => {
            core.note_repair();
            Ok(true)
        }
        Got::Busy => Ok(false),
    }
}

/// `release()` of the lock whose body is at `body`, by anyone.
///
/// # Errors
/// `RuntimeError("release unlocked lock")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockreleaseat-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::body_unlocked;
/// use shmstore::types::lock::release_at;
/// use shmstore::Error;
/// let lk = store.lock()?;
/// let core = store.core();
/// let body = body_unlocked(core, &lk.token())?;
/// lk.acquire(true, None)?;
/// release_at(core, body)?;
/// assert!(!lk.locked()?);
/// assert_eq!(release_at(core, body), Err(Error::RuntimeError("release unlocked lock".into())));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn release_at(core: &Core, body: u64) -> Result<()> {
    if core.arena().words::<WordLock>(body)?.release()? {
        Ok(())
    } else {
        Err(Error::RuntimeError("release unlocked lock".into()))
    }
}

/// [`acquire_at`] in a handler's context.
///
/// # Errors
/// As [`acquire_at`].
///
/// # Examples
/// ```
/// # let name = format!("doc-lockacquire-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object_lockless;
/// use shmstore::types::lock;
/// let lk = store.lock()?;
/// let (core, t) = (store.core(), lk.token());
/// assert!(with_object_lockless(core, &t, |ctx| lock::acquire(ctx, true, None))?);
/// // Held, and no owner to recurse on: a timed acquire gives up at its deadline.
/// let deadline = Some(Instant::now() + Duration::from_millis(20));
/// assert!(!with_object_lockless(core, &t, |ctx| lock::acquire(ctx, true, deadline))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn acquire(ctx: &mut Ctx<'_>, blocking: bool, deadline: Option<Instant>) -> Result<bool> {
    acquire_at(ctx.core, ctx.body, blocking, deadline)
}

/// [`release_at`] in a handler's context.
///
/// # Errors
/// As [`release_at`].
///
/// # Examples
/// ```
/// # let name = format!("doc-lockrelease-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object_lockless;
/// use shmstore::types::lock;
/// let lk = store.lock()?;
/// lk.acquire(true, None)?;
/// // Ownerless: another thread may release it.
/// std::thread::scope(|s| {
///     s.spawn(|| with_object_lockless(store.core(), &lk.token(), |ctx| lock::release(ctx)))
///         .join()
///         .unwrap()
/// })?;
/// assert!(!lk.locked()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn release(ctx: &mut Ctx<'_>) -> Result<()> {
    release_at(ctx.core, ctx.body)
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

/// `Lock.acquire(blocking=True, timeout=-1)` (and `__enter__`, which takes the same).
fn m_acquire(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let (blocking, deadline) = c_acquire_args(a, k)?;
    acquire(ctx, blocking, deadline).map(Value::Bool)
}

fn m_release(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("lock.release", a, k, [], 0)?;
    release(ctx)?;
    Ok(Value::None)
}

/// `__exit__(*exc_info)`: a release (as `AcquirerProxy.__exit__` calls `release()`).
fn m_exit(ctx: &mut Ctx<'_>, _a: &[Value], _k: Kwargs<'_>) -> Result<Value> {
    release(ctx)?;
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
