//! Proxies: the handles users hold.
//!
//! A proxy owns one reference to its referent (the arena refcount). Cloning a proxy shares that
//! reference within the process (an `Arc`), so a clone costs no shared-memory traffic; the
//! referent is freed when the last proxy in every process is gone. Every proxy — the dynamic
//! [`Proxy`] and the typed ones — has `call_method`, `call_method_kw`, `get_value`, `token`,
//! `Display` (Python's `str` of the referent) and `Debug` (the repr of the proxy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::arena::Pinned;
use crate::core::Core;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::table::SlotWords;
use crate::token::{type_names, Token};
use crate::value::Value;

/// One reference to a referent, held by this process.
pub(crate) struct Handle {
    pub(crate) core: Arc<Core>,
    pub(crate) token: Token,
    /// The body's offset once a proxy of a type whose body never moves has looked it up (0:
    /// not yet). The reference this handle holds keeps the object, and so the body, in place.
    fixed_body: AtomicU64,
    /// The object's slot, checked once ([`Pinned::NOWHERE`] if its index was out of range: the
    /// fast paths then decline and the general path reports the error).
    slot: Pinned<SlotWords>,
}

impl Handle {
    /// Wraps a reference the caller already took (a queue's item handed over), recording it in
    /// this attachment's process-table entry.
    pub(crate) fn adopt(core: Arc<Core>, token: Token) -> Arc<Handle> {
        core.hold(&token);
        Handle::adopt_recorded(core, token)
    }

    /// Wraps a reference the caller took and recorded already ([`Core::make`],
    /// [`Core::take_handle`]).
    pub(crate) fn adopt_recorded(core: Arc<Core>, token: Token) -> Arc<Handle> {
        let slot = core.table().pin_slot(token.slot).unwrap_or(Pinned::NOWHERE);
        Arc::new(Handle {
            core,
            token,
            fixed_body: AtomicU64::new(0),
            slot,
        })
    }

    /// [`dispatch::read_optimistic`] on this handle's pinned slot.
    #[inline(always)]
    pub(crate) fn read_optimistic<R>(
        &self,
        read: impl Fn(&crate::arena::Arena, u64) -> Option<R>,
    ) -> Option<R> {
        let words = self.core.arena().pinned(self.slot)?;
        dispatch::read_optimistic_at(&self.core, words, &self.token, read)
    }

    /// [`dispatch::write_fast`] on this handle's pinned slot.
    #[inline(always)]
    pub(crate) fn write_fast<R>(
        &self,
        step: impl FnOnce(&crate::arena::Arena, u64) -> Option<R>,
    ) -> Option<R> {
        let words = self.core.arena().pinned(self.slot)?;
        dispatch::write_fast_at(&self.core, words, &self.token, step)
    }

    /// The body's offset for a `lockless` type whose body stays where it was created for the
    /// object's life (a `Lock`'s word): looked up, with its liveness and type checks, on the
    /// first call only.
    #[inline]
    pub(crate) fn fixed_body(&self) -> Result<u64> {
        let b = self.fixed_body.load(Ordering::Relaxed);
        if b != 0 {
            return Ok(b);
        }
        let b = crate::dispatch::body_unlocked(&self.core, &self.token)?;
        self.fixed_body.store(b, Ordering::Relaxed);
        Ok(b)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.drop_reference(&self.token);
    }
}

/// A proxy's fast answer to a call by name (see `dispatch::call_by_name`), given the method's
/// index: `None` to take the general path. `proxy_common!` implements it.
pub(crate) trait CallFast {
    /// The fast answer to method `m` with positional arguments `args`, or `None`.
    fn fast_by_index(&self, m: usize, args: &[Value]) -> Option<Value>;
}

/// Positional arguments for `call_method`: `()` or a tuple of up to six `Into<Value>` items.
///
/// # Examples
/// ```
/// # let name = format!("doc-intoargs-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::Value;
/// let l = store.list(Vec::<i64>::new())?;
/// l.call_method("append", (1,))?; // a tuple of Into<Value> items
/// l.call_method("insert", (0, "a"))?;
/// l.call_method("extend", vec![Value::from(vec![2, 3])])?; // a Vec<Value>
/// assert_eq!(l.call_method("__len__", ())?, Value::Int(4)); // no arguments
/// # Ok::<(), shmstore::Error>(())
/// ```
pub trait IntoArgs {
    /// The argument array.
    type Args: AsRef<[Value]>;
    /// Converts to the argument array.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{IntoArgs, Value};
    /// assert_eq!((1, "a").into_args(), [Value::Int(1), Value::from("a")]);
    /// assert_eq!(().into_args(), [] as [Value; 0]);
    /// ```
    fn into_args(self) -> Self::Args;

    /// Drops an argument array once the call is over. The tuples' arrays let go of their
    /// scalars (`None`, `bool`, `int`, `float`, a slice, a proxy's token: nothing to free)
    /// without a call to `Value`'s drop, which a scalar argument would otherwise cost.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{IntoArgs, Value};
    /// let args = (1, "a", 2.5).into_args();
    /// assert_eq!(args[1], Value::from("a"));
    /// <(i64, &str, f64)>::drop_args(args); // the string is freed, the scalars just go
    /// ```
    #[inline]
    fn drop_args(args: Self::Args) {
        drop(args);
    }
}

impl IntoArgs for () {
    type Args = [Value; 0];
    #[inline]
    fn into_args(self) -> [Value; 0] {
        []
    }
}

impl IntoArgs for Vec<Value> {
    type Args = Vec<Value>;
    #[inline]
    fn into_args(self) -> Vec<Value> {
        self
    }
}

impl IntoArgs for &[Value] {
    type Args = Vec<Value>;
    fn into_args(self) -> Vec<Value> {
        self.to_vec()
    }
}

/// `args`' array, and how to drop it once the call is over ([`IntoArgs::drop_args`]): what
/// every proxy's `call_method` does with its arguments (whose type it cannot name).
#[inline(always)]
#[allow(clippy::type_complexity)]
pub(crate) fn args_of<A: IntoArgs>(args: A) -> (A::Args, fn(A::Args)) {
    (args.into_args(), A::drop_args)
}

macro_rules! tuple_args {
    ($n:literal: $($t:ident $v:ident),+) => {
        impl<$($t: Into<Value>),+> IntoArgs for ($($t,)+) {
            type Args = [Value; $n];
            #[inline]
            fn into_args(self) -> [Value; $n] {
                let ($($v,)+) = self;
                [$($v.into()),+]
            }

            #[inline]
            fn drop_args(args: [Value; $n]) {
                if args.iter().all(Value::owns_nothing) {
                    ::std::mem::forget(args);
                } else {
                    drop(args);
                }
            }
        }
    };
}
tuple_args!(1: A a);
tuple_args!(2: A a, B b);
tuple_args!(3: A a, B b, C c);
tuple_args!(4: A a, B b, C c, D d);
tuple_args!(5: A a, B b, C c, D d, E e);
tuple_args!(6: A a, B b, C c, D d, E e, F f);

/// What every proxy type has in common; lets `Store::bind` and `Value::from(&proxy)` take any
/// proxy.
///
/// # Examples
/// ```
/// # let name = format!("doc-asproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::AsProxy;
/// // Any proxy type will do.
/// fn describe(p: &impl AsProxy) -> String {
///     format!("{} #{}", p.token().typeid(), p.token().slot)
/// }
/// let l = store.list([1])?;
/// let q = store.queue(0)?;
/// assert!(describe(&l).starts_with("list #"));
/// assert!(describe(&q).starts_with("Queue #"));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub trait AsProxy {
    /// The referent's token.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-token-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::AsProxy;
    /// let d = store.dict([("a", 1)])?;
    /// let t = AsProxy::token(&d);
    /// assert_eq!(t, d.token());
    /// store.bind("settings", &d)?; // what bind takes
    /// assert_eq!(store.lookup("settings")?.token(), t);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    fn token(&self) -> Token;
}

/// Implements what every proxy type has: `AsProxy`, `call_method`, `call_method_kw`,
/// `method_id`, `call_id`, `get_value`, `token`, `to_str`, `Display`, `Debug`, `From<&P> for
/// Value`. The type must have a field `h: Arc<Handle>`. A generic proxy names its parameters:
/// `proxy_common!(impl[T: Pod] UserProxy<T> { … })`. A proxy of one built-in type says which,
/// so that `call_method` knows its type and fast path at compile time
/// (`dispatch::fast_builtin_typed` with a constant type id: a list's and a value's steps
/// inlined into the caller, as the typed calls are):
/// `proxy_common!(typed type_ids::LIST; ListProxy { … })`, or with a fast path of its own, an
/// inherent `fn call_fast(&self, method: usize, args: &[Value]) -> Option<Value>` (a proxy that
/// knows its element type): `proxy_common!(typed type_ids::ARRAY => own; impl[T: Pod] … )`.
///
/// The braces hold what the methods' doc examples need, as string literals: `tag` (the store
/// name's suffix), optional `setup` lines, `new` (an expression making the proxy `p` from
/// `store`), `call` (a method, its arguments as a tuple and as a `Value` array, and what it
/// returns), `kw` (lines calling `call_method_kw`), `value` (what `get_value` returns), `str`
/// (lines checking `to_str`) and `typeid`.
macro_rules! proxy_common {
    (typed $id:expr; $ty:ident $doc:tt) => {
        impl $crate::proxy::CallFast for $ty {
            #[inline(always)]
            fn fast_by_index(&self, m: usize, a: &[$crate::Value]) -> Option<$crate::Value> {
                $crate::dispatch::fast_builtin_typed(&self.h, $id, m, a)
            }
        }
        proxy_common!(@go [Some($id)] impl[] $ty $doc);
    };
    (typed $id:expr => own; impl[$($g:tt)*] $ty:ty { $($doc:tt)* }) => {
        impl<$($g)*> $crate::proxy::CallFast for $ty {
            #[inline(always)]
            fn fast_by_index(&self, m: usize, a: &[$crate::Value]) -> Option<$crate::Value> {
                self.call_fast(m, a)
            }
        }
        proxy_common!(@go [Some($id)] impl[$($g)*] $ty { $($doc)* });
    };
    (typed $id:expr; impl[$($g:tt)*] $ty:ty { $($doc:tt)* }) => {
        impl<$($g)*> $crate::proxy::CallFast for $ty {
            #[inline(always)]
            fn fast_by_index(&self, m: usize, a: &[$crate::Value]) -> Option<$crate::Value> {
                $crate::dispatch::fast_builtin_typed(&self.h, $id, m, a)
            }
        }
        proxy_common!(@go [Some($id)] impl[$($g)*] $ty { $($doc)* });
    };
    ($ty:ident $doc:tt) => {
        impl $crate::proxy::CallFast for $ty {
            #[inline(always)]
            fn fast_by_index(&self, m: usize, a: &[$crate::Value]) -> Option<$crate::Value> {
                $crate::dispatch::fast_builtin(&self.h, self.h.token.type_id, m, a)
            }
        }
        proxy_common!(@go [None] impl[] $ty $doc);
    };
    (impl[$($g:tt)*] $ty:ty { $($doc:tt)* }) => {
        impl<$($g)*> $crate::proxy::CallFast for $ty {
            #[inline(always)]
            fn fast_by_index(&self, m: usize, a: &[$crate::Value]) -> Option<$crate::Value> {
                $crate::dispatch::fast_builtin(&self.h, self.h.token.type_id, m, a)
            }
        }
        proxy_common!(@go [None] impl[$($g)*] $ty { $($doc)* });
    };
    (@go [$static_type:expr] impl[$($g:tt)*] $ty:ty {
        tag: $tag:literal,
        $(setup: $setup:literal,)?
        new: $new:literal,
        call: ($m:literal, $args:literal, $vals:literal => $ret:literal),
        kw: $kw:literal,
        value: $value:literal,
        str: $str:literal,
        typeid: $typeid:literal $(,)?
    }) => {
        impl<$($g)*> $crate::AsProxy for $ty {
            #[inline]
            fn token(&self) -> $crate::Token {
                self.h.token
            }
        }

        impl<$($g)*> $ty {
            /// Calls a method of the referent by name with positional arguments, as CPython's
            /// `proxy._callmethod(name, args)`.
            ///
            /// # Errors
            /// `AttributeError` for an unknown method, `TypeError` for bad arguments, and the
            /// method's own errors (`IndexError`, `KeyError`, …).
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-cm-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::{Error, Value};
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            #[doc = concat!("assert_eq!(p.call_method(\"", $m, "\", ", $args, ")?, ", $ret, ");")]
            /// assert!(matches!(p.call_method("no_such_method", ()), Err(Error::AttributeError(_))));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn call_method(
                &self,
                name: &str,
                args: impl $crate::IntoArgs,
            ) -> $crate::Result<$crate::Value> {
                self.call_method_kw(name, args, &[])
            }

            /// Calls a method by name with positional and keyword arguments, as
            /// `proxy._callmethod(name, args, kwds)`.
            ///
            /// # Errors
            /// As [`Self::call_method`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-kw-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Value;
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            #[doc = $kw]
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            // Always inlined: for a string literal `name`, the method cache's key is then
            // worked out at compile time (see `dispatch::call_by_name`).
            #[inline(always)]
            pub fn call_method_kw(
                &self,
                name: &str,
                args: impl $crate::IntoArgs,
                kwargs: &[(&str, $crate::Value)],
            ) -> $crate::Result<$crate::Value> {
                let (a, drop_args) = $crate::proxy::args_of(args);
                let r = $crate::dispatch::call_by_name(
                    &self.h,
                    $static_type,
                    self,
                    name,
                    a.as_ref(),
                    kwargs,
                );
                drop_args(a);
                r
            }

            /// Resolves a method name once, for [`Self::call_id`].
            ///
            /// # Errors
            /// `AttributeError` for an unknown method.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-mid-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Error;
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            #[doc = concat!("let mid = p.method_id(\"", $m, "\")?;")]
            #[doc = concat!("assert_eq!(mid.name(), \"", $m, "\");")]
            /// assert!(matches!(p.method_id("no_such_method"), Err(Error::AttributeError(_))));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn method_id(&self, name: &str) -> $crate::Result<$crate::dispatch::MethodId> {
                $crate::dispatch::MethodId::resolve_in(&self.h.core, &self.h.token, name)
            }

            /// Calls a method resolved with [`Self::method_id`].
            ///
            /// # Errors
            /// As [`Self::call_method`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-cid-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Value;
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            #[doc = concat!("let mid = p.method_id(\"", $m, "\")?; // resolved once")]
            #[doc = concat!("assert_eq!(p.call_id(mid, &", $vals, ", &[])?, ", $ret, ");")]
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn call_id(
                &self,
                mid: $crate::dispatch::MethodId,
                args: &[$crate::Value],
                kwargs: &[(&str, $crate::Value)],
            ) -> $crate::Result<$crate::Value> {
                $crate::dispatch::call(&self.h.core, &self.h.token, mid, args, kwargs)
            }

            /// A deep copy of the referent (CPython's `_getvalue()`).
            ///
            /// # Errors
            /// `Corrupt` if the referent's memory fails a check.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-gv-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Value;
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            #[doc = concat!("assert_eq!(p.get_value()?, ", $value, ");")]
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn get_value(&self) -> $crate::Result<$crate::Value> {
                $crate::dispatch::value_of(&self.h.core, &self.h.token)
            }

            /// The referent's token: plain data to hand to another process.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-tok-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::{Store, Token};
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            /// let text = p.token().to_string(); // what another process receives
            /// let other = Store::open(&name)?; // that process's attachment
            /// let again = other.attach(&text.parse::<Token>()?)?;
            #[doc = concat!("assert_eq!(again.typeid(), \"", $typeid, "\");")]
            /// assert_eq!(again.token(), p.token());
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn token(&self) -> $crate::Token {
                self.h.token
            }

            /// Python's `str()` of the referent.
            ///
            /// # Errors
            /// `Corrupt` if the referent's memory fails a check.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-str-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            $(#[doc = $setup])?
            #[doc = concat!("let p = ", $new, ";")]
            #[doc = $str]
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn to_str(&self) -> $crate::Result<String> {
                $crate::dispatch::str_of(&self.h.core, &self.h.token)
            }
        }

        /// Python's `str()` of the referent (an error is shown in angle brackets).
        impl<$($g)*> ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.to_str() {
                    Ok(s) => f.write_str(&s),
                    Err(e) => write!(f, "<unprintable {}: {e}>", self.h.token.typeid()),
                }
            }
        }

        /// The repr of the proxy, as CPython prints it:
        /// `<ListProxy object, typeid 'list' at 0x…>`.
        impl<$($g)*> ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let (typeid, class) = self.h.token.names();
                write!(
                    f,
                    "<{class} object, typeid '{typeid}' at {:#x}>",
                    ::std::sync::Arc::as_ptr(&self.h) as usize
                )
            }
        }

        impl<$($g)*> From<&$ty> for $crate::Value {
            fn from(p: &$ty) -> $crate::Value {
                $crate::Value::Proxy(p.h.token)
            }
        }
    };
}

/// A proxy of any type, as `Store::lookup` and `Store::attach` return it. Converts to the typed
/// proxy with `TryFrom` when the type matches.
///
/// # Examples
/// ```
/// # let name = format!("doc-proxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{DictProxy, ListProxy, Value};
/// store.bind("jobs", &store.list([1, 2])?)?;
/// let p = store.lookup("jobs")?; // a Proxy: its type is known at run time
/// assert_eq!(p.typeid(), "list");
/// assert_eq!(p.call_method("__len__", ())?, Value::Int(2));
/// let l = ListProxy::try_from(p.clone())?; // typed, when the type matches
/// assert_eq!(l.len()?, 2);
/// assert!(DictProxy::try_from(p).is_err());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    pub(crate) h: Arc<Handle>,
}

impl Proxy {
    /// CPython's typeid of the referent (`"list"`, `"dict"`, `"Queue"`, …).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-typeid-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let p = store.attach(&store.queue(0)?.token())?;
    /// assert_eq!(p.typeid(), "Queue");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn typeid(&self) -> &'static str {
        self.h.token.typeid()
    }
}

proxy_common!(Proxy {
    tag: "proxy",
    new: "shmstore::Proxy::from(store.list([3, 1, 2])?)",
    call: ("index", "(2,)", "[Value::Int(2)]" => "Value::Int(2)"),
    kw: r#"assert_eq!(p.call_method_kw("sort", (), &[("reverse", Value::Bool(true))])?, Value::None);
assert_eq!(p.to_str()?, "[3, 2, 1]");"#,
    value: "Value::from(vec![3, 1, 2])",
    str: r#"assert_eq!(p.to_str()?, "[3, 1, 2]");"#,
    typeid: "list",
});

/// A typed conversion from the dynamic proxy failed: the referent is of another type.
pub(crate) fn wrong_type(p: &Proxy, want: u16) -> Error {
    Error::TypeError(format!(
        "expected a '{}' proxy, got a '{}' proxy",
        type_names(want).0,
        p.typeid()
    ))
}

impl Proxy {
    /// Checks the referent's type id, for the typed proxies' `TryFrom<Proxy>`.
    pub(crate) fn into_handle_of(self, type_id: u16) -> Result<Arc<Handle>> {
        if self.h.token.type_id != type_id {
            return Err(wrong_type(&self, type_id));
        }
        Ok(self.h)
    }
}

mod array;
mod dict;
mod list;
mod namespace;
mod queue;
mod set;
mod user;
mod value;
pub use array::{ArrayGuard, ArrayInit, ArrayProxy};
pub use dict::{DictProxy, DictView};
pub use list::{ListProxy, ListView};
pub use namespace::{NamespaceProxy, NamespaceView};
pub use queue::{JoinableQueueProxy, QueueProxy};
pub use set::{SetProxy, SetView};
pub use user::UserProxy;
pub use value::{TypedValueProxy, ValueProxy, ValueView};
mod sync;
pub use sync::{
    Acquire, AcquireGuard, BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, EventProxy,
    LockProxy, RLockProxy, SemaphoreProxy,
};
