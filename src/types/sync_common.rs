//! What the synchronization types share: holder records that name a process, waiting in slices
//! so that a dead holder is noticed without busy waiting, and Python's argument rules for the
//! methods of `threading`'s classes (the C ones of `_thread.lock`/`_thread.RLock` and the Python
//! ones of `Semaphore`, `Condition`, `Event`, `Barrier`).
//!
//! # Examples
//! ```
//! use std::time::{Duration, Instant};
//! use shmstore::types::sync_common::{deadline_of, seconds, truthy};
//! use shmstore::Value;
//! assert!(truthy(&Value::from(vec![0]))); // a non-empty list, as bool([0])
//! assert_eq!(seconds(&Value::Int(2)), Some(2.0));
//! assert!(deadline_of(Some(Duration::from_secs(1))).is_some_and(|d| d > Instant::now()));
//! ```

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};

use super::Ctx;
use crate::error::{Error, Result};
use crate::process::ProcId;
use crate::value::Value;

/// How long a blocked waiter sleeps before it checks whether the holder it waits for is still
/// alive. A holder that dies is noticed within one slice; a live one costs each waiter one
/// liveness check per slice.
pub const SLICE: Duration = Duration::from_millis(200);

/// Who holds units of a lock or semaphore: a process and how many units it holds.
/// An entry with `count == 0` is free (its `proc` is stale and ignored).
///
/// # Examples
/// ```
/// use shmstore::process::ProcId;
/// use shmstore::types::sync_common::Holder;
/// let free = Holder::default();
/// assert_eq!(free.count, 0); // a free entry
/// let mine = Holder { proc: ProcId::current(), count: 2 };
/// assert!(mine.proc.is_alive());
/// assert_eq!(std::mem::size_of::<Holder>(), 24);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Holder {
    /// The holding process.
    pub proc: ProcId,
    /// Units it holds.
    pub count: u64,
}
const _: () = assert!(size_of::<Holder>() == 24);

/// How a slice of waiting ended.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::Wake;
/// // What a waiting loop does after each slice.
/// fn go_on(w: Wake) -> bool {
///     match w {
///         Wake::Woken | Wake::Slice => true, // look again (and after a slice, check holders)
///         Wake::Deadline => false,           // give up: timed out
///     }
/// }
/// assert!(go_on(Wake::Slice) && !go_on(Wake::Deadline));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Notified (or spuriously woken): look again.
    Woken,
    /// The slice ran out before the deadline: look again, and check holders' liveness.
    Slice,
    /// The caller's deadline has passed.
    Deadline,
}

/// Waits on the condvar at `cond` for at most one [`SLICE`], and not past `deadline`.
///
/// # Errors
/// As [`Ctx::wait`].
///
/// # Examples
/// ```
/// # let name = format!("doc-waitslice-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::{Duration, Instant};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::event::EventBody;
/// use shmstore::types::sync_common::{wait_slice, Wake, SLICE};
/// let e = store.event()?;
/// let (core, t) = (store.core(), e.token());
/// let cond = |body: u64| body + std::mem::offset_of!(EventBody, cond) as u64;
/// // A deadline before the slice ends: the wait ends at the deadline.
/// let soon = Some(Instant::now() + Duration::from_millis(10));
/// assert_eq!(with_object(core, &t, |ctx| wait_slice(ctx, cond(ctx.body), soon))?, Wake::Deadline);
/// // No deadline: one slice at most, then the caller looks at the holders again.
/// let start = Instant::now();
/// let w = with_object(core, &t, |ctx| wait_slice(ctx, cond(ctx.body), None))?;
/// assert!(w == Wake::Slice && start.elapsed() >= SLICE || w == Wake::Woken); // woken spuriously
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn wait_slice(ctx: &mut Ctx<'_>, cond: u64, deadline: Option<Instant>) -> Result<Wake> {
    let now = Instant::now();
    if deadline.is_some_and(|d| d <= now) {
        return Ok(Wake::Deadline);
    }
    let slice_end = now.checked_add(SLICE);
    let until = match (deadline, slice_end) {
        (Some(d), Some(s)) => Some(d.min(s)),
        (d, s) => d.or(s),
    };
    ctx.wait_until(cond, until)?;
    let now = Instant::now();
    if deadline.is_some_and(|d| d <= now) {
        Ok(Wake::Deadline)
    } else if slice_end.is_some_and(|s| s <= now) {
        Ok(Wake::Slice)
    } else {
        Ok(Wake::Woken)
    }
}

/// Python's truth value of an argument (`bool(x)`).
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::truthy;
/// use shmstore::Value;
/// assert!(!truthy(&Value::None));
/// assert!(!truthy(&Value::Int(0)));
/// assert!(!truthy(&Value::from("")));
/// assert!(truthy(&Value::Float(0.5)));
/// ```
pub fn truthy(v: &Value) -> bool {
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

/// A number argument as float seconds; `None` for a non-number.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::seconds;
/// use shmstore::Value;
/// assert_eq!(seconds(&Value::Float(0.25)), Some(0.25));
/// assert_eq!(seconds(&Value::Bool(true)), Some(1.0));
/// assert_eq!(seconds(&Value::from("1")), None);
/// ```
pub fn seconds(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// The deadline `secs` seconds from now; a negative (or NaN) count is "now", a huge one none.
///
/// # Examples
/// ```
/// use std::time::Instant;
/// use shmstore::types::sync_common::deadline_in;
/// let now = Instant::now();
/// assert!(deadline_in(0.5).is_some_and(|d| d > now));
/// assert!(deadline_in(-1.0).is_some_and(|d| d <= Instant::now())); // negative: now
/// assert_eq!(deadline_in(f64::INFINITY), None); // too far to represent: no limit
/// ```
pub fn deadline_in(secs: f64) -> Option<Instant> {
    if secs.is_nan() || secs <= 0.0 {
        return Some(Instant::now());
    }
    Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| Instant::now().checked_add(d))
}

/// The deadline of a typed timeout (`None`: no limit).
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// use shmstore::types::sync_common::deadline_of;
/// assert_eq!(deadline_of(None), None);
/// assert!(deadline_of(Some(Duration::ZERO)).is_some_and(|d| d <= Instant::now()));
/// ```
pub fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|d| Instant::now().checked_add(d))
}

/// A Python timeout argument of a method written in Python (`Semaphore.acquire`,
/// `Condition.wait`, `Event.wait`, `Barrier.wait`): `None` waits without limit, a number of
/// seconds (negative: do not wait), anything else a `TypeError` — raised, as in Python, only
/// when the method actually has to wait. `bad` builds that error from the argument's type name.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::{bad_float_add, PyTimeout};
/// use shmstore::{Error, Value};
/// assert!(matches!(PyTimeout::parse(None), PyTimeout::Forever));
/// let bad = PyTimeout::parse(Some(&Value::from("soon")));
/// // The error comes only when the method is about to wait, as in Python.
/// assert_eq!(
///     bad.deadline(bad_float_add),
///     Err(Error::TypeError("unsupported operand type(s) for +: 'float' and 'str'".into()))
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub enum PyTimeout {
    /// No limit.
    Forever,
    /// Seconds from the call.
    Secs(f64),
    /// Not a number: the argument's type name.
    Bad(&'static str),
}

impl PyTimeout {
    /// Reads the argument (absent or `None`: no limit).
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::sync_common::PyTimeout;
    /// use shmstore::Value;
    /// assert!(matches!(PyTimeout::parse(Some(&Value::None)), PyTimeout::Forever));
    /// assert!(matches!(PyTimeout::parse(Some(&Value::Int(2))), PyTimeout::Secs(s) if s == 2.0));
    /// assert!(matches!(PyTimeout::parse(Some(&Value::from("x"))), PyTimeout::Bad("str")));
    /// ```
    pub fn parse(v: Option<&Value>) -> PyTimeout {
        match v {
            None | Some(Value::None) => PyTimeout::Forever,
            Some(v) => seconds(v).map_or(PyTimeout::Bad(v.type_name()), PyTimeout::Secs),
        }
    }

    /// The deadline, computed when the method is about to wait.
    ///
    /// # Errors
    /// `bad(type name)` for a non-number.
    ///
    /// # Examples
    /// ```
    /// use std::time::Instant;
    /// use shmstore::types::sync_common::{bad_gt_int, PyTimeout};
    /// assert_eq!(PyTimeout::Forever.deadline(bad_gt_int)?, None);
    /// assert!(PyTimeout::Secs(1.0).deadline(bad_gt_int)?.is_some_and(|d| d > Instant::now()));
    /// assert!(PyTimeout::Bad("list").deadline(bad_gt_int).is_err());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn deadline(self, bad: fn(&str) -> Error) -> Result<Option<Instant>> {
        match self {
            PyTimeout::Forever => Ok(None),
            PyTimeout::Secs(s) => Ok(deadline_in(s)),
            PyTimeout::Bad(t) => Err(bad(t)),
        }
    }
}

/// `float + x`, as `Semaphore.acquire` and `Barrier.wait` compute `_time() + timeout`.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::bad_float_add;
/// assert_eq!(
///     bad_float_add("list").to_string(),
///     "unsupported operand type(s) for +: 'float' and 'list'"
/// );
/// ```
pub fn bad_float_add(t: &str) -> Error {
    Error::TypeError(format!(
        "unsupported operand type(s) for +: 'float' and '{t}'"
    ))
}

/// `x > 0`, as `Condition.wait` compares its timeout.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::bad_gt_int;
/// assert_eq!(bad_gt_int("str").to_string(), "'>' not supported between instances of 'str' and 'int'");
/// ```
pub fn bad_gt_int(t: &str) -> Error {
    Error::TypeError(format!(
        "'>' not supported between instances of '{t}' and 'int'"
    ))
}

/// `'str' object cannot be interpreted as an integer`.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::not_an_integer;
/// use shmstore::Value;
/// assert_eq!(
///     not_an_integer(&Value::Float(1.5)).to_string(),
///     "'float' object cannot be interpreted as an integer"
/// );
/// ```
pub fn not_an_integer(v: &Value) -> Error {
    Error::TypeError(format!(
        "'{}' object cannot be interpreted as an integer",
        v.type_name()
    ))
}

/// The arguments of `acquire(blocking=True, timeout=-1)` of CPython's C locks
/// (`_thread.lock`, `_thread.RLock`, and so `Condition.acquire`), checked as CPython checks
/// them. `None` as the timeout means no limit, as `AcquirerProxy.acquire(blocking=True,
/// timeout=None)` means it (the proxy never passes `None` on; shmstore accepts it).
/// Returns (blocking, deadline).
///
/// # Errors
/// `TypeError`/`ValueError` with CPython's messages.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::c_acquire_args;
/// use shmstore::{Error, Value};
/// assert_eq!(c_acquire_args(&[], &[])?, (true, None)); // acquire(): block without limit
/// let (blocking, deadline) = c_acquire_args(&[Value::Bool(true), Value::Float(0.5)], &[])?;
/// assert!(blocking && deadline.is_some());
/// assert_eq!(
///     c_acquire_args(&[Value::Bool(false)], &[("timeout", Value::Int(1))]),
///     Err(Error::ValueError("can't specify a timeout for a non-blocking call".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn c_acquire_args(args: &[Value], kwargs: &[(&str, Value)]) -> Result<(bool, Option<Instant>)> {
    let given = args.len() + kwargs.len();
    if given > 2 {
        return Err(Error::TypeError(format!(
            "acquire() takes at most 2 arguments ({given} given)"
        )));
    }
    let mut slots: [Option<&Value>; 2] = [args.first(), args.get(1)];
    for (k, v) in kwargs {
        let i = match *k {
            "blocking" => 0,
            "timeout" => 1,
            _ => {
                return Err(Error::TypeError(format!(
                    "'{k}' is an invalid keyword argument for acquire()"
                )))
            }
        };
        match slots.get_mut(i) {
            Some(s @ None) => *s = Some(v),
            _ => {
                return Err(Error::TypeError(format!(
                    "argument for acquire() given by name ('{k}') and position ({})",
                    i + 1
                )))
            }
        }
    }
    let [blocking, timeout] = slots;
    let blocking = match blocking {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::Int(i)) => *i != 0,
        Some(other) => return Err(not_an_integer(other)),
    };
    let secs = match timeout {
        None | Some(Value::None) => -1.0,
        Some(v) => seconds(v).ok_or_else(|| not_an_integer(v))?,
    };
    if secs.is_nan() {
        return Err(Error::ValueError("Invalid value NaN (not a number)".into()));
    }
    if !blocking && secs != -1.0 {
        return Err(Error::ValueError(
            "can't specify a timeout for a non-blocking call".into(),
        ));
    }
    if secs < 0.0 && secs != -1.0 {
        return Err(Error::ValueError("timeout value must be positive".into()));
    }
    let deadline = if !blocking {
        Some(Instant::now())
    } else if secs == -1.0 {
        None
    } else {
        deadline_in(secs)
    };
    Ok((blocking, deadline))
}

/// Binds the arguments of a method written in Python whose parameters (after `self`) all have
/// defaults, with Python's messages: `qualname` is `Semaphore.release` and the like.
///
/// # Errors
/// `TypeError` for too many positional arguments, an unknown keyword or a repeated argument.
///
/// # Examples
/// ```
/// use shmstore::types::sync_common::py_bind;
/// use shmstore::{Error, Value};
/// // def release(self, n=1)
/// let kwargs = [("n", Value::Int(3))];
/// assert_eq!(py_bind("Semaphore.release", &[], &kwargs, ["n"])?, [Some(&Value::Int(3))]);
/// assert_eq!(py_bind("Semaphore.release", &[], &[], ["n"])?, [None]); // the default
/// assert_eq!(
///     py_bind("Semaphore.release", &[Value::Int(1), Value::Int(2)], &[], ["n"]).map(|_| ()),
///     Err(Error::TypeError(
///         "Semaphore.release() takes from 1 to 2 positional arguments but 3 were given".into()
///     ))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn py_bind<'v, const N: usize>(
    qualname: &str,
    args: &'v [Value],
    kwargs: &'v [(&str, Value)],
    names: [&str; N],
) -> Result<[Option<&'v Value>; N]> {
    let n = args.len();
    if n > N {
        return Err(Error::TypeError(if N == 0 {
            format!(
                "{qualname}() takes 1 positional argument but {} were given",
                n + 1
            )
        } else {
            format!(
                "{qualname}() takes from 1 to {} positional arguments but {} were given",
                N + 1,
                n + 1
            )
        }));
    }
    let mut out: [Option<&Value>; N] = [None; N];
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = Some(a);
    }
    for (k, v) in kwargs {
        match names
            .iter()
            .position(|name| name == k)
            .map(|i| out.get_mut(i))
        {
            Some(Some(s @ None)) => *s = Some(v),
            Some(_) => {
                return Err(Error::TypeError(format!(
                    "{qualname}() got multiple values for argument '{k}'"
                )))
            }
            None => {
                return Err(Error::TypeError(format!(
                    "{qualname}() got an unexpected keyword argument '{k}'"
                )))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_acquire_args_follow_cpython() {
        let v = |x: i64| Value::Int(x);
        assert!(matches!(c_acquire_args(&[], &[]), Ok((true, None))));
        assert!(matches!(
            c_acquire_args(&[v(1), v(-1)], &[]),
            Ok((true, None))
        ));
        assert!(matches!(
            c_acquire_args(&[Value::Bool(false)], &[]),
            Ok((false, Some(_)))
        ));
        assert_eq!(
            c_acquire_args(&[v(0), v(1)], &[]).unwrap_err(),
            Error::ValueError("can't specify a timeout for a non-blocking call".into())
        );
        assert_eq!(
            c_acquire_args(&[v(1), v(-2)], &[]).unwrap_err(),
            Error::ValueError("timeout value must be positive".into())
        );
        assert_eq!(
            c_acquire_args(&[v(1)], &[("blocking", v(1))]).unwrap_err(),
            Error::TypeError(
                "argument for acquire() given by name ('blocking') and position (1)".into()
            )
        );
    }

    #[test]
    fn py_bind_messages() {
        let a = [Value::Int(1), Value::Int(2)];
        assert_eq!(
            py_bind::<0>("Event.set", &a[..1], &[], []).unwrap_err(),
            Error::TypeError("Event.set() takes 1 positional argument but 2 were given".into())
        );
        assert_eq!(
            py_bind("Event.wait", &a, &[], ["timeout"]).unwrap_err(),
            Error::TypeError(
                "Event.wait() takes from 1 to 2 positional arguments but 3 were given".into()
            )
        );
        assert_eq!(
            py_bind(
                "Event.wait",
                &a[..1],
                &[("timeout", Value::None)],
                ["timeout"]
            )
            .unwrap_err(),
            Error::TypeError("Event.wait() got multiple values for argument 'timeout'".into())
        );
    }
}
