//! Referent types. Each file declares one type: its body layout in the arena, its methods as a
//! table of (name, handler), and how to free, repair, print and copy it. The dispatcher knows
//! types only through [`TypeDesc`].
//!
//! # Examples
//! ```
//! use shmstore::dispatch::type_desc;
//! use shmstore::type_ids;
//! // What the dispatcher knows of each type: its names and its method table.
//! for id in [type_ids::LIST, type_ids::DICT, type_ids::SET, type_ids::BARRIER] {
//!     let d = type_desc(id)?;
//!     assert_eq!(d.id, id);
//!     assert!(d.methods.windows(2).all(|w| w[0].name < w[1].name)); // sorted by name
//! }
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::time::{Duration, Instant};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::sync::Acquired;
use crate::table;
use crate::token::Token;
use crate::value::Value;

pub mod array;
pub mod barrier;
pub mod condition;
pub mod dict;
pub mod event;
pub mod htable;
pub mod list;
pub mod lock;
pub mod namespace;
pub mod pod;
pub mod pyargs;
pub mod queue;
pub mod rlock;
pub mod semaphore;
pub mod set;
pub mod sync_common;
pub mod user;
pub mod value;

/// Keyword arguments, as Python's `**kwds`.
///
/// # Examples
/// ```
/// # let name = format!("doc-kwargs-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::Kwargs;
/// use shmstore::{UserType, Value};
/// // A user method that takes keyword arguments receives them as a Kwargs slice.
/// fn scale(x: &mut f64, args: &[Value], kwargs: Kwargs<'_>) -> shmstore::Result<Value> {
///     let by = kwargs.iter().find(|(k, _)| *k == "by").map(|(_, v)| v).or(args.first());
///     *x *= by.and_then(Value::as_float).unwrap_or(1.0);
///     Ok(Value::Float(*x))
/// }
/// shmstore::register(UserType::<f64>::new("DocScaled").method_kw("scale", scale))?;
/// let p = store.user("DocScaled", 2.0f64)?;
/// assert_eq!(p.call_method_kw("scale", (), &[("by", Value::Float(1.5))])?, Value::Float(3.0));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type Kwargs<'a> = &'a [(&'a str, Value)];

/// A method handler: runs on the referent in place, with the object's lock held.
///
/// # Examples
/// ```
/// # let name = format!("doc-handler-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::{type_desc, with_object};
/// use shmstore::types::Handler;
/// use shmstore::{type_ids, Value};
/// let desc = type_desc(type_ids::LIST)?;
/// let append: Handler = desc.methods[desc.method_index("append").unwrap()].call;
/// let l = store.list([1])?;
/// with_object(store.core(), &l.token(), |ctx| append(ctx, &[Value::Int(2)], &[]))?;
/// assert_eq!(l.to_string(), "[1, 2]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type Handler = fn(&mut Ctx<'_>, &[Value], Kwargs<'_>) -> Result<Value>;

/// One exposed method.
///
/// # Examples
/// ```
/// use shmstore::dispatch::type_desc;
/// let set = type_desc(shmstore::type_ids::SET)?;
/// let names: Vec<&str> = set.methods.iter().map(|m| m.name).collect();
/// assert!(names.contains(&"add") && names.contains(&"issubset"));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct Method {
    /// Python's method name.
    pub name: &'static str,
    /// Its handler.
    pub call: Handler,
}

/// What the dispatcher knows of a type.
///
/// # Examples
/// ```
/// use shmstore::dispatch::type_desc;
/// let d = type_desc(shmstore::type_ids::NAMESPACE)?;
/// assert_eq!((d.typeid, d.proxy), ("Namespace", "NamespaceProxy"));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct TypeDesc {
    /// Stable type id (stored in the arena).
    pub id: u16,
    /// CPython's typeid (`'list'`).
    pub typeid: &'static str,
    /// CPython's proxy class name (`ListProxy`).
    pub proxy: &'static str,
    /// Methods, sorted by name (checked by a test) for binary search.
    pub methods: &'static [Method],
    /// Frees the body (blocks and the references it holds; references go on `ctx.released`).
    pub drop_body: fn(&mut Ctx<'_>) -> Result<()>,
    /// Brings the body back to a valid state after its lock's holder died.
    pub repair: fn(&mut Ctx<'_>) -> Result<()>,
    /// Python's `str()` of the referent.
    pub str: fn(&mut Ctx<'_>, &mut String) -> Result<()>,
    /// A deep copy of the referent as a `Value`.
    pub get_value: fn(&mut Ctx<'_>) -> Result<Value>,
    /// The methods run without the object's lock: the type keeps its state in atomics (a
    /// `Lock` is its futex word). `str`, `get_value` and checks still take the lock.
    pub lockless: bool,
    /// The `call_method` fast hooks ([`FastHooks`]): a lock-free answer to a read-only call and
    /// an in-place answer to a scalar write, tried before the general path.
    pub hooks: FastHooks,
}

/// The index of method `name` in `methods`, evaluated at compile time by the types' fast paths
/// (a name missing from the table fails the build).
///
/// # Examples
/// ```
/// use shmstore::types::{list, method_idx};
/// // Evaluated at compile time: a name missing from the table fails the build.
/// const APPEND: usize = method_idx(list::DESC.methods, "append");
/// assert_eq!(list::DESC.methods[APPEND].name, "append");
/// assert_eq!(list::DESC.method_index("append"), Some(APPEND));
/// ```
pub const fn method_idx(methods: &[Method], name: &str) -> usize {
    let mut i = 0;
    while i < methods.len() {
        let m = methods[i].name.as_bytes();
        let n = name.as_bytes();
        if m.len() == n.len() {
            let mut j = 0;
            while j < n.len() && m[j] == n[j] {
                j += 1;
            }
            if j == n.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("method not in the table")
}

/// See [`FastHooks::read`].
///
/// # Examples
/// ```
/// # let name = format!("doc-fastread-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::type_desc;
/// use shmstore::types::FastRead;
/// use shmstore::{type_ids, Value};
/// let desc = type_desc(type_ids::LIST)?;
/// let fast: FastRead = desc.hooks.read.expect("lists answer reads lock-free");
/// let l = store.list([5, 6, 7])?;
/// let len = desc.method_index("__len__").unwrap();
/// assert_eq!(fast(store.core(), &l.token(), len, &[]), Some(Value::Int(3)));
/// let getitem = desc.method_index("__getitem__").unwrap();
/// assert_eq!(fast(store.core(), &l.token(), getitem, &[Value::Int(-1)]), Some(Value::Int(7)));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type FastRead = fn(&Core, &Token, usize, &[Value]) -> Option<Value>;

/// See [`FastHooks::write`].
///
/// # Examples
/// ```
/// # let name = format!("doc-fastwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::type_desc;
/// use shmstore::types::FastWrite;
/// use shmstore::{type_ids, Value};
/// let desc = type_desc(type_ids::LIST)?;
/// let fast: FastWrite = desc.hooks.write.expect("lists write scalars in place");
/// let l = store.list([5, 6, 7])?;
/// let setitem = desc.method_index("__setitem__").unwrap();
/// let args = [Value::Int(0), Value::Int(50)];
/// assert_eq!(fast(store.core(), &l.token(), setitem, &args), Some(Value::None));
/// assert_eq!(l.get(0)?, Value::Int(50));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type FastWrite = fn(&Core, &Token, usize, &[Value]) -> Option<Value>;

/// A built-in type's `call_method` fast hooks as a constant (the same functions as its
/// [`FastHooks::read`] and [`FastHooks::write`], which are built from it): a typed
/// proxy's `call_method` calls them directly — a constant is folded into the caller's code even
/// in another crate, where a field of the `static` descriptor is a load and an indirect call.
///
/// # Examples
/// ```
/// # let name = format!("doc-fasthooks-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::{list, FastHooks};
/// use shmstore::Value;
/// let hooks: FastHooks = list::FAST_HOOKS;
/// let l = store.list([5, 6])?;
/// let len = list::DESC.method_index("__len__").unwrap();
/// let read = hooks.read.expect("lists answer reads lock-free");
/// assert_eq!(read(store.core(), &l.token(), len, &[]), Some(Value::Int(2)));
/// assert!(FastHooks::NONE.read.is_none() && FastHooks::NONE.write.is_none());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FastHooks {
    /// A lock-free answer to a read-only method call (`call_method`'s counterpart of the typed
    /// proxies' optimistic reads): given the method's index in `methods` and the positional
    /// arguments (the dispatcher tries it only for calls without keyword arguments),
    /// `Some(result)` when it could answer without the lock, `None` to take the locked path
    /// (which also reports every error).
    pub read: Option<FastRead>,
    /// An in-place answer to a scalar write (`call_method`'s counterpart of the typed
    /// proxies' fast writes, [`dispatch::write_fast`](crate::dispatch::write_fast)): `Some(result)`
    /// when it took the free lock and did the whole call in place, `None`, having changed
    /// nothing, to take the general path (which also reports every error). Tried, like `read`,
    /// only for calls without keyword arguments.
    pub write: Option<FastWrite>,
    /// For a `lockless` type whose body never moves (a `Lock`'s word): what `read` and `write`
    /// do, given the body's offset the proxy looked up once (its handle keeps the object, and
    /// so the body, in place). A typed proxy tries it instead of `read` and `write`.
    pub fixed: Option<FastFixed>,
}

impl FastHooks {
    /// No fast hooks: every call takes the general path.
    pub const NONE: FastHooks = FastHooks {
        read: None,
        write: None,
        fixed: None,
    };
}

/// See [`FastHooks::fixed`]: the arguments of [`FastWrite`], with the body's offset in place of
/// the token.
///
/// # Examples
/// ```
/// # let name = format!("doc-fastfixed-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::body_unlocked;
/// use shmstore::types::{lock, FastFixed};
/// use shmstore::Value;
/// let fast: FastFixed = lock::FAST_HOOKS.fixed.expect("a Lock's body never moves");
/// let lk = store.lock()?;
/// let body = body_unlocked(store.core(), &lk.token())?; // looked up once
/// let acquire = lock::DESC.method_index("acquire").unwrap();
/// assert_eq!(fast(store.core(), body, acquire, &[]), Some(Value::Bool(true)));
/// assert!(lk.locked()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type FastFixed = fn(&Core, u64, usize, &[Value]) -> Option<Value>;

impl TypeDesc {
    /// The index of method `name`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::dispatch::type_desc;
    /// let d = type_desc(shmstore::type_ids::LIST)?;
    /// let i = d.method_index("sort").expect("list has sort");
    /// assert_eq!(d.methods[i].name, "sort");
    /// assert_eq!(d.method_index("push"), None);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn method_index(&self, name: &str) -> Option<usize> {
        self.methods.binary_search_by(|m| m.name.cmp(name)).ok()
    }
}

/// The context a handler runs in: the arena, the object's slot and body, and references to
/// release once the object's lock is let go.
///
/// # Examples
/// ```
/// # let name = format!("doc-ctx-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// let l = store.list([1, 2])?;
/// let t = l.token();
/// let (slot, body, released) =
///     with_object(store.core(), &t, |ctx| Ok((ctx.slot, ctx.body, ctx.released.len())))?;
/// assert_eq!(slot, t.slot);
/// assert_eq!(body, store.objects()?[0].body);
/// assert_eq!(released, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct Ctx<'a> {
    /// The attached arena.
    pub core: &'a Core,
    /// The object's slot.
    pub slot: u32,
    /// Offset of the object's body.
    pub body: u64,
    /// Offset of the object's lock (held while the handler runs).
    pub lock_off: u64,
    /// The type's repair hook, run when a wait retakes a lock whose holder died.
    pub repair: fn(&mut Ctx<'_>) -> Result<()>,
    /// References released by the operation, dropped by the dispatcher after unlocking.
    pub released: Vec<Token>,
}

impl Ctx<'_> {
    /// Waits on the condition variable at `cond_off` (in the body), releasing the object's lock
    /// meanwhile. Returns true if `timeout` ran out. Wake-ups may be spurious: loop on the
    /// condition. A lock retaken from a holder that died is repaired first.
    ///
    /// # Errors
    /// `Corrupt` for a bad offset; `Os` for a failed wait.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-ctxwait-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// use shmstore::dispatch::with_object;
    /// use shmstore::types::event::EventBody;
    /// let e = store.event()?;
    /// let timed_out = with_object(store.core(), &e.token(), |ctx| {
    ///     let cond = ctx.body + std::mem::offset_of!(EventBody, cond) as u64;
    ///     ctx.wait(cond, Some(Duration::from_millis(10)))
    /// })?;
    /// assert!(timed_out); // nobody notified
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn wait(&mut self, cond_off: u64, timeout: Option<Duration>) -> Result<bool> {
        let (got, timed_out) =
            table::cond_wait(self.core.arena(), cond_off, self.lock_off, timeout)?;
        if got == Acquired::OwnerDied {
            (self.repair)(self)?;
            self.core.note_repair();
            table::make_consistent_at(self.core.arena(), self.lock_off)?;
        }
        Ok(timed_out)
    }

    /// Waits until `deadline` (None: no limit) on the condvar at `cond_off`; true if the
    /// deadline has passed on return.
    ///
    /// # Errors
    /// As [`Ctx::wait`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-ctxwaituntil-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::{Duration, Instant};
    /// use shmstore::dispatch::with_object;
    /// use shmstore::types::event::{self, EventBody};
    /// let e = store.event()?;
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// let set_in_time = std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         e.set() // takes the object's lock, which `wait_until` lets go of while it sleeps
    ///     });
    ///     with_object(store.core(), &e.token(), |ctx| {
    ///         let cond = ctx.body + std::mem::offset_of!(EventBody, cond) as u64;
    ///         while !event::is_set(ctx)? {
    ///             if ctx.wait_until(cond, Some(deadline))? {
    ///                 return Ok(false);
    ///             }
    ///         }
    ///         Ok(true)
    ///     })
    /// })?;
    /// assert!(set_in_time);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn wait_until(&mut self, cond_off: u64, deadline: Option<Instant>) -> Result<bool> {
        match deadline {
            None => self.wait(cond_off, None),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(true);
                }
                self.wait(cond_off, Some(left))?;
                Ok(Instant::now() >= d)
            }
        }
    }

    /// Wakes one waiter (or every waiter) of the condvar at `cond_off`.
    ///
    /// # Errors
    /// `Corrupt` for a bad offset.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-ctxnotify-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::time::Duration;
    /// use shmstore::dispatch::with_object;
    /// use shmstore::types::event::EventBody;
    /// let e = store.event()?;
    /// let (core, t) = (store.core(), e.token());
    /// let cond = |body: u64| body + std::mem::offset_of!(EventBody, cond) as u64;
    /// let waiting = AtomicBool::new(false);
    /// let timed_out = std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| {
    ///         with_object(core, &t, |ctx| {
    ///             waiting.store(true, Ordering::Release);
    ///             ctx.wait(cond(ctx.body), Some(Duration::from_secs(10)))
    ///         })
    ///     });
    ///     while !waiting.load(Ordering::Acquire) {
    ///         std::thread::yield_now();
    ///     }
    ///     // Getting the object's lock means the waiter let go of it: it sleeps in `wait`.
    ///     with_object(core, &t, |ctx| ctx.notify(cond(ctx.body), true))?;
    ///     waiter.join().unwrap()
    /// })?;
    /// assert!(!timed_out);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn notify(&self, cond_off: u64, all: bool) -> Result<()> {
        table::cond_notify(self.core.arena(), cond_off, all)
    }
}

/// A Python timeout argument (`None` or float seconds) as a deadline.
///
/// # Errors
/// `ValueError("timeout value must be a non-negative number")` for a negative one, `TypeError`
/// for a non-number.
///
/// # Examples
/// ```
/// use std::time::Instant;
/// use shmstore::types::deadline_arg;
/// use shmstore::{Error, Value};
/// assert_eq!(deadline_arg(None)?, None); // no timeout: no deadline
/// assert_eq!(deadline_arg(Some(&Value::None))?, None);
/// assert!(deadline_arg(Some(&Value::Float(0.5)))?.is_some_and(|d| d > Instant::now()));
/// assert_eq!(
///     deadline_arg(Some(&Value::Int(-1))),
///     Err(Error::ValueError("timeout value must be a non-negative number".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn deadline_arg(v: Option<&Value>) -> Result<Option<Instant>> {
    match v {
        None | Some(Value::None) => Ok(None),
        Some(v) => {
            let secs = match v {
                Value::Int(i) => *i as f64,
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Float(f) => *f,
                other => {
                    return Err(Error::TypeError(format!(
                        "timeout must be a number or None, not {}",
                        other.type_name()
                    )))
                }
            };
            if secs.is_nan() || secs < 0.0 {
                return Err(Error::ValueError(
                    "timeout value must be a non-negative number".into(),
                ));
            }
            let d = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
            Ok(Instant::now().checked_add(d))
        }
    }
}

/// Binds positional and keyword arguments to parameter names, as Python does for a method with
/// positional-or-keyword parameters. `required` is how many leading parameters must be given.
///
/// # Errors
/// `TypeError` with Python's wording for too many, too few, unknown or repeated arguments.
///
/// # Examples
/// ```
/// use shmstore::types::bind_args;
/// use shmstore::{Error, Value};
/// // pop(index=-1): one optional parameter.
/// let args = [Value::Int(0)];
/// let [index] = bind_args("pop", &args, &[], ["index"], 0)?;
/// assert_eq!(index, Some(&Value::Int(0)));
/// let kwargs = [("index", Value::Int(2))];
/// assert_eq!(bind_args("pop", &[], &kwargs, ["index"], 0)?, [Some(&Value::Int(2))]);
/// assert_eq!(
///     bind_args("pop", &[], &[("i", Value::Int(2))], ["index"], 0),
///     Err(Error::TypeError("'i' is an invalid keyword argument for pop()".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn bind_args<'v, const N: usize>(
    method: &str,
    args: &'v [Value],
    kwargs: &'v [(&str, Value)],
    names: [&str; N],
    required: usize,
) -> Result<[Option<&'v Value>; N]> {
    let n = args.len();
    let plural = |k: usize| if k == 1 { "" } else { "s" };
    // CPython's wording: METH_NOARGS and METH_O methods say "takes …"; methods whose
    // positional count is checked by argument clinic say "expected …".
    let count_error = if N == 0 && n > 0 {
        Some(format!("{method}() takes no arguments ({n} given)"))
    } else if N == 1 && required == 1 && n != 1 && kwargs.is_empty() {
        Some(format!("{method}() takes exactly one argument ({n} given)"))
    } else if n > N {
        Some(if required == N {
            format!("{method} expected {N} argument{}, got {n}", plural(N))
        } else {
            format!(
                "{method} expected at most {N} argument{}, got {n}",
                plural(N)
            )
        })
    } else if n < required && kwargs.is_empty() {
        Some(if required == N {
            format!("{method} expected {N} argument{}, got {n}", plural(N))
        } else {
            format!(
                "{method} expected at least {required} argument{}, got {n}",
                plural(required)
            )
        })
    } else {
        None
    };
    if let Some(msg) = count_error {
        return Err(Error::TypeError(msg));
    }
    let mut out: [Option<&Value>; N] = [None; N];
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = Some(a);
    }
    for (k, v) in kwargs {
        match names.iter().position(|n| n == k) {
            Some(i) if out[i].is_none() => out[i] = Some(v),
            Some(_) => {
                return Err(Error::TypeError(format!(
                    "{method}() got multiple values for argument '{k}'"
                )))
            }
            None => {
                return Err(Error::TypeError(format!(
                    "'{k}' is an invalid keyword argument for {method}()"
                )))
            }
        }
    }
    if let Some(missing) = out.iter().take(required).position(Option::is_none) {
        return Err(Error::TypeError(format!(
            "{method}() missing required argument '{}' (pos {})",
            names.get(missing).unwrap_or(&"?"),
            missing + 1
        )));
    }
    Ok(out)
}

/// The integer value of an index argument (`bool` counts, as in Python).
///
/// # Errors
/// `TypeError("'str' object cannot be interpreted as an integer")`.
///
/// # Examples
/// ```
/// use shmstore::types::index_arg;
/// use shmstore::{Error, Value};
/// assert_eq!(index_arg(&Value::Int(-2))?, -2);
/// assert_eq!(index_arg(&Value::Bool(true))?, 1);
/// assert_eq!(
///     index_arg(&Value::from("1")),
///     Err(Error::TypeError("'str' object cannot be interpreted as an integer".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn index_arg(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(*b as i64),
        other => Err(Error::TypeError(format!(
            "'{}' object cannot be interpreted as an integer",
            other.type_name()
        ))),
    }
}

/// The items of an iterable argument, as Python's `list(x)` would give them.
///
/// # Errors
/// `TypeError("'int' object is not iterable")`.
///
/// # Examples
/// ```
/// use shmstore::types::iter_arg;
/// use shmstore::Value;
/// assert_eq!(iter_arg(&Value::from("ab"))?, [Value::from("a"), Value::from("b")]);
/// assert_eq!(iter_arg(&Value::dict_from_pairs([(1, 2)])?)?, [Value::Int(1)]); // the keys
/// assert!(iter_arg(&Value::Int(3)).is_err()); // 'int' object is not iterable
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn iter_arg(v: &Value) -> Result<Vec<Value>> {
    match v {
        Value::List(xs) | Value::Tuple(xs) => Ok(xs.clone()),
        Value::Dict(kv) => Ok(kv.iter().map(|(k, _)| k.clone()).collect()),
        Value::Str(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
        Value::Bytes(b) => Ok(b.iter().map(|&x| Value::Int(i64::from(x))).collect()),
        other => Err(Error::TypeError(format!(
            "'{}' object is not iterable",
            other.type_name()
        ))),
    }
}
