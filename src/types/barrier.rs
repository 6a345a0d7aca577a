//! `Barrier`: Python's `threading.Barrier(parties, timeout=None)` (without `action`), with its
//! algorithm: the barrier fills (`count` waiters arrive), the last arrival switches it to
//! draining and wakes everyone, each leaves with its arrival index, and the last to leave
//! switches it back to filling. A wait that times out breaks the barrier; `abort` breaks it,
//! `reset` mends it (waiters still inside get `BrokenBarrier`).
//!
//! Body: a [`BarrierBody`]: parties, count, state (FILLING 0, DRAINING 1, RESETTING -1, BROKEN
//! -2, as Python's `_state`), the default timeout, and the condvar waiters sleep on.
//!
//! Crash protocol: every change is a single store of `count` or `state`. A waiter whose process
//! dies inside `wait` stays counted: the others wait until their timeout breaks the barrier
//! (`abort`/`reset` mend it), as they would wait for a party that never came.
//!
//! # Examples
//! ```
//! # let name = format!("doc-barrier-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let b = store.barrier(1)?;
//! assert_eq!(b.call_method("wait", ())?, Value::Int(0));
//! assert_eq!(b.call_method("__getattribute__", ("parties",))?, Value::Int(1));
//! b.call_method("abort", ())?;
//! assert_eq!(b.call_method("__getattribute__", ("broken",))?, Value::Bool(true));
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};

use super::sync_common::{bad_float_add, deadline_of, py_bind, PyTimeout};
use super::{bind_args, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::table;
use crate::token::{type_ids, Token};
use crate::value::Value;

const FILLING: i64 = 0;
const DRAINING: i64 = 1;
const RESETTING: i64 = -1;
const BROKEN: i64 = -2;

/// No default timeout.
const NO_TIMEOUT: u64 = u64::MAX;

/// The body of a Barrier.
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::barrier::BarrierBody;
/// let p = store.barrier(3)?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: BarrierBody = raw.read(Offset::new(body))?;
/// assert_eq!((b.parties, b.count, b.state), (3, 0, 0)); // filling, nobody waiting
/// assert_eq!(b.timeout_ns, u64::MAX); // no default timeout
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BarrierBody {
    /// Parties the barrier waits for.
    pub parties: u64,
    /// Waiters inside `wait`.
    pub count: u64,
    /// FILLING, DRAINING, RESETTING or BROKEN.
    pub state: i64,
    /// Default timeout in nanoseconds (`u64::MAX`: none).
    pub timeout_ns: u64,
    /// The condvar waiters sleep on (its bytes).
    pub cond: u64,
    /// Reserved; zero.
    pub reserved: [u64; 3],
}
const _: () = assert!(size_of::<BarrierBody>() == 64);
const OFF_COUNT: u64 = std::mem::offset_of!(BarrierBody, count) as u64;
const OFF_STATE: u64 = std::mem::offset_of!(BarrierBody, state) as u64;
const OFF_COND: u64 = std::mem::offset_of!(BarrierBody, cond) as u64;

/// The `Barrier` type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::BARRIER,
    typeid: "Barrier",
    proxy: "BarrierProxy",
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
            name: "__str__",
            call: m_repr,
        },
        Method {
            name: "abort",
            call: m_abort,
        },
        Method {
            name: "reset",
            call: m_reset,
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

/// Reads and checks the body.
fn body(ctx: &Ctx<'_>) -> Result<BarrierBody> {
    let b: BarrierBody = ctx.core.arena().read(Offset::new(ctx.body))?;
    if !(BROKEN..=DRAINING).contains(&b.state) || b.parties == 0 {
        return Err(Error::corrupt("barrier state", ctx.body));
    }
    Ok(b)
}

fn store_count(ctx: &Ctx<'_>, n: u64) -> Result<()> {
    ctx.core.arena().store_u64(ctx.body + OFF_COUNT, n)
}

fn store_state(ctx: &Ctx<'_>, s: i64) -> Result<()> {
    ctx.core
        .arena()
        .write(Offset::<i64>::new(ctx.body + OFF_STATE), s)
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.free(ctx.body)
}

fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    body(ctx).map(|_| ())
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    use std::fmt::Write;
    let b = body(ctx)?;
    let _ = if b.state == BROKEN {
        write!(out, "<threading.Barrier at {:#x}: broken>", ctx.body)
    } else {
        write!(
            out,
            "<threading.Barrier at {:#x}: waiters={}/{}>",
            ctx.body,
            n_waiting_of(&b),
            b.parties
        )
    };
    Ok(())
}

/// A Barrier's value: `{'parties': …, 'n_waiting': …, 'broken': …}`.
fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    let b = body(ctx)?;
    Ok(Value::Dict(vec![
        (Value::from("parties"), Value::Int(b.parties as i64)),
        (
            Value::from("n_waiting"),
            Value::Int(n_waiting_of(&b) as i64),
        ),
        (Value::from("broken"), Value::Bool(b.state == BROKEN)),
    ]))
}

fn n_waiting_of(b: &BarrierBody) -> u64 {
    if b.state == FILLING {
        b.count
    } else {
        0
    }
}

/// Creates a Barrier for `parties` parties with a default timeout for `wait`.
///
/// # Errors
/// `ValueError("parties must be >= 1")` (as CPython 3.14 says; 3.11 accepted a barrier that
/// could never fill), `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-barriercreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::types::barrier;
/// use shmstore::{BarrierProxy, Error};
/// let core = store.core();
/// let t = barrier::create(core, 3, Some(Duration::from_secs(5)))?; // one reference: ours
/// let b = BarrierProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!((b.parties()?, b.default_timeout()?), (3, Some(Duration::from_secs(5))));
/// assert!(matches!(barrier::create(core, 0, None), Err(Error::ValueError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, parties: u64, timeout: Option<Duration>) -> Result<Token> {
    if parties == 0 || parties > i64::MAX as u64 {
        return Err(Error::ValueError("parties must be >= 1".into()));
    }
    let timeout_ns = timeout.map_or(NO_TIMEOUT, |d| {
        u64::try_from(d.as_nanos())
            .unwrap_or(NO_TIMEOUT - 1)
            .min(NO_TIMEOUT - 1)
    });
    let size = size_of::<BarrierBody>() as u64;
    let body = core.alloc(size)?;
    let built = (|| {
        core.arena().write(
            Offset::new(body),
            BarrierBody {
                parties,
                timeout_ns,
                ..BarrierBody::zeroed()
            },
        )?;
        table::init_cond(core.arena(), body + OFF_COND)?;
        core.create_object(type_ids::BARRIER, body)
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

// ---------------------------------------------------------------------------------------------
// Typed operations.

/// The number of parties.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierparties-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// let b = store.barrier(4)?;
/// assert_eq!(with_object(store.core(), &b.token(), |ctx| barrier::parties(ctx))?, 4);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn parties(ctx: &mut Ctx<'_>) -> Result<u64> {
    body(ctx).map(|b| b.parties)
}

/// Waiters in the filling barrier.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-barriernwaiting-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// let b = store.barrier(2)?;
/// let (core, t) = (store.core(), b.token());
/// assert_eq!(with_object(core, &t, |ctx| barrier::n_waiting(ctx))?, 0);
/// std::thread::scope(|s| {
///     let first = s.spawn(|| b.wait(Some(Duration::from_secs(10))));
///     while with_object(core, &t, |ctx| barrier::n_waiting(ctx))? == 0 {
///         std::thread::sleep(Duration::from_millis(1));
///     }
///     b.wait(None)?; // the second party: both pass
///     first.join().unwrap()?;
///     Ok::<(), shmstore::Error>(())
/// })?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn n_waiting(ctx: &mut Ctx<'_>) -> Result<u64> {
    body(ctx).map(|b| n_waiting_of(&b))
}

/// True when the barrier is broken.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierbroken-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// let b = store.barrier(2)?;
/// let (core, t) = (store.core(), b.token());
/// assert!(!with_object(core, &t, |ctx| barrier::broken(ctx))?);
/// b.abort()?;
/// assert!(with_object(core, &t, |ctx| barrier::broken(ctx))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn broken(ctx: &mut Ctx<'_>) -> Result<bool> {
    body(ctx).map(|b| b.state == BROKEN)
}

/// The default timeout given at creation.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierdeftimeout-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// let core = store.core();
/// let b = store.barrier_with(2, Some(Duration::from_millis(1500)))?;
/// let t = with_object(core, &b.token(), |ctx| barrier::default_timeout(ctx))?;
/// assert_eq!(t, Some(Duration::from_millis(1500)));
/// let forever = store.barrier(2)?;
/// assert_eq!(with_object(core, &forever.token(), |ctx| barrier::default_timeout(ctx))?, None);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn default_timeout(ctx: &mut Ctx<'_>) -> Result<Option<Duration>> {
    body(ctx).map(|b| (b.timeout_ns != NO_TIMEOUT).then(|| Duration::from_nanos(b.timeout_ns)))
}

/// `abort()`: breaks the barrier; waiters get `BrokenBarrier`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierabort-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// use shmstore::Error;
/// let b = store.barrier(2)?;
/// with_object(store.core(), &b.token(), |ctx| barrier::abort(ctx))?;
/// assert_eq!(b.wait(None), Err(Error::BrokenBarrier));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn abort(ctx: &mut Ctx<'_>) -> Result<()> {
    store_state(ctx, BROKEN)?;
    ctx.notify(ctx.body + OFF_COND, true)
}

/// `reset()`: back to the empty, filling state; waiters inside get `BrokenBarrier`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierreset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// let b = store.barrier(1)?;
/// b.abort()?;
/// assert!(b.broken()?);
/// with_object(store.core(), &b.token(), |ctx| barrier::reset(ctx))?;
/// assert!(!b.broken()?);
/// assert_eq!(b.wait(None)?, 0); // usable again
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn reset(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    if b.count > 0 {
        if b.state == FILLING || b.state == BROKEN {
            store_state(ctx, RESETTING)?;
        }
    } else {
        store_state(ctx, FILLING)?;
    }
    ctx.notify(ctx.body + OFF_COND, true)
}

/// `wait(timeout)`: `deadline` is computed (from the argument, or the default timeout when
/// `None` is returned for it) only when the caller has to wait for others.
fn wait_with(
    ctx: &mut Ctx<'_>,
    deadline: impl FnOnce() -> Result<Option<Option<Instant>>>,
) -> Result<u64> {
    // Python's _enter: wait while the barrier drains or resets.
    loop {
        let b = body(ctx)?;
        if b.state == DRAINING || b.state == RESETTING {
            ctx.wait(ctx.body + OFF_COND, None)?;
            continue;
        }
        if b.state == BROKEN {
            return Err(Error::BrokenBarrier);
        }
        break;
    }
    let b = body(ctx)?;
    let index = b.count;
    store_count(ctx, index + 1)?;
    let out = if index + 1 == b.parties {
        store_state(ctx, DRAINING)?;
        ctx.notify(ctx.body + OFF_COND, true)?;
        Ok(index)
    } else {
        wait_filled(ctx, &b, deadline).map(|()| index)
    };
    // Python's finally: count -= 1, then _exit.
    let b = body(ctx)?;
    store_count(ctx, b.count.saturating_sub(1))?;
    if b.count <= 1 && (b.state == DRAINING || b.state == RESETTING) {
        store_state(ctx, FILLING)?;
        ctx.notify(ctx.body + OFF_COND, true)?;
    }
    out
}

/// Python's `_wait`: sleeps until the state leaves FILLING; a timeout breaks the barrier.
fn wait_filled(
    ctx: &mut Ctx<'_>,
    b: &BarrierBody,
    deadline: impl FnOnce() -> Result<Option<Option<Instant>>>,
) -> Result<()> {
    let default = (b.timeout_ns != NO_TIMEOUT).then(|| Duration::from_nanos(b.timeout_ns));
    let deadline = match deadline() {
        Ok(Some(d)) => d,
        Ok(None) => deadline_of(default),
        Err(e) => return Err(e),
    };
    loop {
        if body(ctx)?.state != FILLING {
            break;
        }
        if ctx.wait_until(ctx.body + OFF_COND, deadline)? {
            if body(ctx)?.state == FILLING {
                abort(ctx)?;
                return Err(Error::BrokenBarrier);
            }
            break;
        }
    }
    if body(ctx)?.state < 0 {
        return Err(Error::BrokenBarrier);
    }
    Ok(())
}

/// `wait(timeout)` (None: the barrier's default timeout). Returns the arrival index, `0..parties`.
///
/// # Errors
/// `BrokenBarrier` if the barrier is broken or resets while waiting, or the timeout runs out
/// (which breaks it for the others too).
///
/// # Examples
/// ```
/// # let name = format!("doc-barrierwait-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::barrier;
/// use shmstore::Error;
/// let core = store.core();
/// let one = store.barrier(1)?;
/// assert_eq!(with_object(core, &one.token(), |ctx| barrier::wait(ctx, None))?, 0);
/// // Alone at a barrier for two: the timeout runs out and breaks it.
/// let two = store.barrier(2)?;
/// let short = Some(Duration::from_millis(10));
/// assert_eq!(with_object(core, &two.token(), |ctx| barrier::wait(ctx, short)), Err(Error::BrokenBarrier));
/// assert!(two.broken()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn wait(ctx: &mut Ctx<'_>, timeout: Option<Duration>) -> Result<u64> {
    wait_with(ctx, || Ok(timeout.map(|t| deadline_of(Some(t)))))
}

// ---------------------------------------------------------------------------------------------
// Handlers.

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

fn m_wait(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [timeout] = py_bind("Barrier.wait", a, k, ["timeout"])?;
    let timeout = PyTimeout::parse(timeout);
    wait_with(ctx, || match timeout {
        PyTimeout::Forever => Ok(None),
        t => t.deadline(bad_float_add).map(Some),
    })
    .map(|i| Value::Int(i as i64))
}

fn m_abort(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    py_bind::<0>("Barrier.abort", a, k, [])?;
    abort(ctx)?;
    Ok(Value::None)
}

fn m_reset(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    py_bind::<0>("Barrier.reset", a, k, [])?;
    reset(ctx)?;
    Ok(Value::None)
}

/// `__getattribute__(name)`, as `BarrierProxy` reads `parties`, `n_waiting` and `broken`.
fn m_getattribute(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    if !k.is_empty() {
        return Err(Error::TypeError(
            "wrapper __getattribute__() takes no keyword arguments".into(),
        ));
    }
    let [name] = a else {
        return Err(Error::TypeError(format!(
            "expected 1 argument, got {}",
            a.len()
        )));
    };
    let b = body(ctx)?;
    match name {
        Value::Str(s) => match s.as_str() {
            "parties" => Ok(Value::Int(b.parties as i64)),
            "n_waiting" => Ok(Value::Int(n_waiting_of(&b) as i64)),
            "broken" => Ok(Value::Bool(b.state == BROKEN)),
            other => Err(Error::AttributeError(format!(
                "'Barrier' object has no attribute '{other}'"
            ))),
        },
        other => Err(Error::TypeError(format!(
            "attribute name must be string, not '{}'",
            other.type_name()
        ))),
    }
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
