//! `Event`: Python's `threading.Event`, a flag that waiters sleep on until it is set.
//!
//! Body: an [`EventBody`]: the flag, a generation bumped by every `set` that finds the flag
//! clear, and the condvar waiters sleep on. A waiter returns true once the generation moved (it
//! was set while the waiter slept, even if cleared since — as Python's `wait` returns what its
//! `Condition.wait` returned) or the flag is set.
//!
//! Crash protocol: `set` stores the generation, then the flag; `clear` stores the flag. Each is
//! one store a waiter can act on, so any crash leaves a valid event.
//!
//! # Examples
//! ```
//! # let name = format!("doc-event-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let e = store.event()?;
//! assert_eq!(e.call_method("is_set", ())?, Value::Bool(false));
//! e.call_method("set", ())?;
//! assert_eq!(e.call_method("wait", (0,))?, Value::Bool(true));
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{compiler_fence, Ordering};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};

use super::sync_common::{bad_gt_int, py_bind, PyTimeout};
use super::{bind_args, Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::core::Core;
use crate::error::Result;
use crate::table;
use crate::token::{type_ids, Token};
use crate::value::Value;

/// The body of an Event.
///
/// # Examples
/// ```
/// # let name = format!("doc-eventbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::event::EventBody;
/// let p = store.event()?;
/// p.set()?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: EventBody = raw.read(Offset::new(body))?;
/// assert_eq!((b.flag, b.generation), (1, 1));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct EventBody {
    /// 1 when set.
    pub flag: u64,
    /// Bumped by every `set` that found the flag clear.
    pub generation: u64,
    /// The condvar waiters sleep on (its bytes).
    pub cond: u64,
    /// Reserved; zero.
    pub reserved: u64,
}
const _: () = assert!(size_of::<EventBody>() == 32);
const OFF_FLAG: u64 = std::mem::offset_of!(EventBody, flag) as u64;
const OFF_GEN: u64 = std::mem::offset_of!(EventBody, generation) as u64;
const OFF_COND: u64 = std::mem::offset_of!(EventBody, cond) as u64;

/// The `Event` type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::EVENT,
    typeid: "Event",
    proxy: "EventProxy",
    methods: &[
        Method {
            name: "__repr__",
            call: m_repr,
        },
        Method {
            name: "__str__",
            call: m_repr,
        },
        Method {
            name: "clear",
            call: m_clear,
        },
        Method {
            name: "is_set",
            call: m_is_set,
        },
        Method {
            name: "set",
            call: m_set,
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

fn body(ctx: &Ctx<'_>) -> Result<EventBody> {
    ctx.core.arena().read(Offset::new(ctx.body))
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
    let state = if b.flag != 0 { "set" } else { "unset" };
    let _ = write!(out, "<threading.Event at {:#x}: {state}>", ctx.body);
    Ok(())
}

/// An Event's value is its flag.
fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    is_set(ctx).map(Value::Bool)
}

/// Creates an Event (clear).
///
/// # Errors
/// `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-eventcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::event;
/// use shmstore::EventProxy;
/// let core = store.core();
/// let t = event::create(core)?; // one reference: ours
/// let e = EventProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert!(!e.is_set()?); // created clear
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core) -> Result<Token> {
    let size = size_of::<EventBody>() as u64;
    let body = core.alloc(size)?;
    let built = (|| {
        core.arena().write(Offset::new(body), EventBody::zeroed())?;
        table::init_cond(core.arena(), body + OFF_COND)?;
        core.create_object(type_ids::EVENT, body)
    })();
    if built.is_err() {
        let _ = core.free(body);
    }
    built
}

/// `is_set()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-eventisset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::event;
/// let e = store.event()?;
/// assert!(!with_object(store.core(), &e.token(), |ctx| event::is_set(ctx))?);
/// e.set()?;
/// assert!(with_object(store.core(), &e.token(), |ctx| event::is_set(ctx))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn is_set(ctx: &mut Ctx<'_>) -> Result<bool> {
    body(ctx).map(|b| b.flag != 0)
}

/// `set()`: sets the flag and wakes every waiter.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-eventset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::event;
/// let e = store.event()?;
/// let woke = std::thread::scope(|s| {
///     let waiter = s.spawn(|| e.wait(Some(Duration::from_secs(10))));
///     std::thread::sleep(Duration::from_millis(20));
///     with_object(store.core(), &e.token(), |ctx| event::set(ctx))?;
///     waiter.join().unwrap()
/// })?;
/// assert!(woke);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn set(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    if b.flag == 0 {
        let a = ctx.core.arena();
        a.store_u64(ctx.body + OFF_GEN, b.generation.wrapping_add(1))?;
        compiler_fence(Ordering::SeqCst);
        a.store_u64(ctx.body + OFF_FLAG, 1)?;
    }
    ctx.notify(ctx.body + OFF_COND, true)
}

/// `clear()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-eventclear-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::event;
/// let e = store.event()?;
/// e.set()?;
/// with_object(store.core(), &e.token(), |ctx| event::clear(ctx))?;
/// assert!(!e.is_set()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn clear(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.arena().store_u64(ctx.body + OFF_FLAG, 0)
}

/// `wait(timeout)` with the deadline computed only when the call has to wait.
fn wait_with(
    ctx: &mut Ctx<'_>,
    deadline: impl FnOnce() -> Result<Option<Instant>>,
) -> Result<bool> {
    let b = body(ctx)?;
    if b.flag != 0 {
        return Ok(true);
    }
    let deadline = deadline()?;
    let start = b.generation;
    loop {
        let timed_out = ctx.wait_until(ctx.body + OFF_COND, deadline)?;
        let b = body(ctx)?;
        if b.generation != start || b.flag != 0 {
            return Ok(true);
        }
        if timed_out {
            return Ok(false);
        }
    }
}

/// `wait(timeout)`: true once the flag is set, false if `deadline` passed first.
///
/// # Errors
/// `Corrupt`, `Os`.
///
/// # Examples
/// ```
/// # let name = format!("doc-eventwait-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::event;
/// let e = store.event()?;
/// let (core, t) = (store.core(), e.token());
/// let soon = || Some(Instant::now() + Duration::from_millis(10));
/// assert!(!with_object(core, &t, |ctx| event::wait(ctx, soon()))?); // not set in time
/// e.set()?;
/// assert!(with_object(core, &t, |ctx| event::wait(ctx, soon()))?); // set: no wait
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn wait(ctx: &mut Ctx<'_>, deadline: Option<Instant>) -> Result<bool> {
    wait_with(ctx, || Ok(deadline))
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    bind_args::<0>("__repr__", a, k, [], 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

fn m_is_set(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    py_bind::<0>("Event.is_set", a, k, [])?;
    is_set(ctx).map(Value::Bool)
}

fn m_set(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    py_bind::<0>("Event.set", a, k, [])?;
    set(ctx)?;
    Ok(Value::None)
}

fn m_clear(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    py_bind::<0>("Event.clear", a, k, [])?;
    clear(ctx)?;
    Ok(Value::None)
}

fn m_wait(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [timeout] = py_bind("Event.wait", a, k, ["timeout"])?;
    let timeout = PyTimeout::parse(timeout);
    wait_with(ctx, || timeout.deadline(bad_gt_int)).map(Value::Bool)
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
