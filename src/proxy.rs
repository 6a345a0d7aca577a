//! Proxies: the handles users hold.
//!
//! A proxy owns one reference to its referent (the arena refcount). Cloning a proxy shares that
//! reference within the process (an `Arc`), so a clone costs no shared-memory traffic; the
//! referent is freed when the last proxy in every process is gone. Every proxy — the dynamic
//! [`Proxy`] and the typed ones — has `call_method`, `call_method_kw`, `get_value`, `token`,
//! `Display` (Python's `str` of the referent) and `Debug` (the repr of the proxy).

use std::fmt;
use std::sync::Arc;

use crate::core::Core;
use crate::dispatch::{self, MethodId};
use crate::error::{Error, Result};
use crate::token::{type_ids, type_names, Token};
use crate::types::{list, Ctx};
use crate::value::{Slice, Value};

/// One reference to a referent, held by this process.
pub(crate) struct Handle {
    pub(crate) core: Arc<Core>,
    pub(crate) token: Token,
}

impl Handle {
    /// Wraps a reference the caller already took (creation, attach, lookup).
    pub(crate) fn adopt(core: Arc<Core>, token: Token) -> Arc<Handle> {
        crate::fork::hold(&core, token.slot);
        Arc::new(Handle { core, token })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        crate::fork::unhold(&self.core, self.token.slot);
        dispatch::release(&self.core, &self.token);
    }
}

/// Positional arguments for `call_method`: `()` or a tuple of up to six `Into<Value>` items.
pub trait IntoArgs {
    /// The argument array.
    type Args: AsRef<[Value]>;
    /// Converts to the argument array.
    fn into_args(self) -> Self::Args;
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

macro_rules! tuple_args {
    ($n:literal: $($t:ident $v:ident),+) => {
        impl<$($t: Into<Value>),+> IntoArgs for ($($t,)+) {
            type Args = [Value; $n];
            #[inline]
            fn into_args(self) -> [Value; $n] {
                let ($($v,)+) = self;
                [$($v.into()),+]
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
pub trait AsProxy {
    /// The referent's token.
    fn token(&self) -> Token;
}

macro_rules! proxy_common {
    ($ty:ident) => {
        impl AsProxy for $ty {
            #[inline]
            fn token(&self) -> Token {
                self.h.token
            }
        }

        impl $ty {
            /// Calls a method of the referent by name with positional arguments, as CPython's
            /// `proxy._callmethod(name, args)`.
            ///
            /// # Errors
            /// `AttributeError` for an unknown method, `TypeError` for bad arguments, and the
            /// method's own errors (`IndexError`, `KeyError`, …).
            pub fn call_method(&self, name: &str, args: impl IntoArgs) -> Result<Value> {
                self.call_method_kw(name, args, &[])
            }

            /// Calls a method by name with positional and keyword arguments, as
            /// `proxy._callmethod(name, args, kwds)`.
            ///
            /// # Errors
            /// As [`Self::call_method`].
            pub fn call_method_kw(
                &self,
                name: &str,
                args: impl IntoArgs,
                kwargs: &[(&str, Value)],
            ) -> Result<Value> {
                let mid = MethodId::resolve(self.h.token.type_id, name)?;
                self.call_id(mid, args.into_args().as_ref(), kwargs)
            }

            /// Resolves a method name once, for [`Self::call_id`].
            ///
            /// # Errors
            /// `AttributeError` for an unknown method.
            pub fn method_id(&self, name: &str) -> Result<MethodId> {
                MethodId::resolve(self.h.token.type_id, name)
            }

            /// Calls a method resolved with [`Self::method_id`].
            ///
            /// # Errors
            /// As [`Self::call_method`].
            pub fn call_id(
                &self,
                mid: MethodId,
                args: &[Value],
                kwargs: &[(&str, Value)],
            ) -> Result<Value> {
                dispatch::call(&self.h.core, &self.h.token, mid, args, kwargs)
            }

            /// A deep copy of the referent (CPython's `_getvalue()`).
            ///
            /// # Errors
            /// `Corrupt` if the referent's memory fails a check.
            pub fn get_value(&self) -> Result<Value> {
                dispatch::value_of(&self.h.core, &self.h.token)
            }

            /// The referent's token: plain data to hand to another process.
            #[inline]
            pub fn token(&self) -> Token {
                self.h.token
            }

            /// Python's `str()` of the referent.
            ///
            /// # Errors
            /// `Corrupt` if the referent's memory fails a check.
            pub fn to_str(&self) -> Result<String> {
                dispatch::str_of(&self.h.core, &self.h.token)
            }
        }

        /// Python's `str()` of the referent (an error is shown in angle brackets).
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.to_str() {
                    Ok(s) => f.write_str(&s),
                    Err(e) => write!(f, "<unprintable {}: {e}>", self.h.token.typeid()),
                }
            }
        }

        /// The repr of the proxy, as CPython prints it:
        /// `<ListProxy object, typeid 'list' at 0x…>`.
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (typeid, class) = type_names(self.h.token.type_id);
                write!(
                    f,
                    "<{class} object, typeid '{typeid}' at {:#x}>",
                    Arc::as_ptr(&self.h) as usize
                )
            }
        }

        impl From<&$ty> for Value {
            fn from(p: &$ty) -> Value {
                Value::Proxy(p.h.token)
            }
        }
    };
}

/// A proxy of any type, as `Store::lookup` and `Store::attach` return it. Converts to the typed
/// proxy with `TryFrom` when the type matches.
#[derive(Clone)]
pub struct Proxy {
    pub(crate) h: Arc<Handle>,
}

impl Proxy {
    /// CPython's typeid of the referent (`"list"`, `"dict"`, `"Queue"`, …).
    pub fn typeid(&self) -> &'static str {
        self.h.token.typeid()
    }
}

proxy_common!(Proxy);

/// A typed conversion from the dynamic proxy failed: the referent is of another type.
fn wrong_type(p: &Proxy, want: u16) -> Error {
    Error::TypeError(format!(
        "expected a '{}' proxy, got a '{}' proxy",
        type_names(want).0,
        p.typeid()
    ))
}

/// A proxy of a shared `list`.
#[derive(Clone)]
pub struct ListProxy {
    h: Arc<Handle>,
}
proxy_common!(ListProxy);

impl From<ListProxy> for Proxy {
    fn from(p: ListProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for ListProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<ListProxy> {
        if p.h.token.type_id != type_ids::LIST {
            return Err(wrong_type(&p, type_ids::LIST));
        }
        Ok(ListProxy { h: p.h })
    }
}

impl ListProxy {
    pub(crate) fn from_handle(h: Arc<Handle>) -> ListProxy {
        ListProxy { h }
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `len(l)`.
    ///
    /// # Errors
    /// `Corrupt` if the list's memory fails a check.
    #[inline]
    pub fn len(&self) -> Result<usize> {
        self.with(|c| list::len(c).map(|n| n as usize))
    }

    /// `len(l) == 0`.
    ///
    /// # Errors
    /// As [`Self::len`].
    #[inline]
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// `l[index]` (negative indices count from the end).
    ///
    /// # Errors
    /// `IndexError("list index out of range")`.
    #[inline]
    pub fn get(&self, index: i64) -> Result<Value> {
        self.with(|c| list::get(c, index))
    }

    /// `l[index] = v`.
    ///
    /// # Errors
    /// `IndexError("list assignment index out of range")`, `OutOfMemory`.
    #[inline]
    pub fn set(&self, index: i64, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::set(c, index, &v))
    }

    /// `l.append(v)`.
    ///
    /// # Errors
    /// `OutOfMemory` when the arena is full (the list is unchanged).
    #[inline]
    pub fn append(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::append(c, &v))
    }

    /// `l.extend(items)`.
    ///
    /// # Errors
    /// `OutOfMemory` (the list is unchanged).
    pub fn extend<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<()> {
        let items: Vec<Value> = items.into_iter().map(Into::into).collect();
        self.with(|c| list::extend(c, &items))
    }

    /// `l.insert(index, v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn insert(&self, index: i64, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::insert(c, index, &v))
    }

    /// `l.pop(index)`; `l.pop()` is `pop(-1)`.
    ///
    /// # Errors
    /// `IndexError("pop from empty list")`, `IndexError("pop index out of range")`.
    pub fn pop(&self, index: i64) -> Result<Value> {
        self.with(|c| list::pop(c, index))
    }

    /// `l.remove(v)`.
    ///
    /// # Errors
    /// `ValueError("list.remove(x): x not in list")`.
    pub fn remove(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::remove(c, &v))
    }

    /// `l.index(v)`.
    ///
    /// # Errors
    /// `ValueError("5 is not in list")`.
    pub fn index(&self, v: impl Into<Value>) -> Result<usize> {
        let v = v.into();
        self.with(|c| list::index(c, &v, None, None).map(|i| i as usize))
    }

    /// `l.count(v)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn count(&self, v: impl Into<Value>) -> Result<usize> {
        let v = v.into();
        self.with(|c| list::count(c, &v).map(|i| i as usize))
    }

    /// `v in l`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn contains(&self, v: impl Into<Value>) -> Result<bool> {
        let v = v.into();
        self.with(|c| list::index(c, &v, None, None).map(|_| true))
            .or_else(|e| match e {
                Error::ValueError(_) => Ok(false),
                e => Err(e),
            })
    }

    /// `l[s]`: a copy of the selected items.
    ///
    /// # Errors
    /// `ValueError("slice step cannot be zero")`.
    pub fn slice(&self, s: impl Into<Slice>) -> Result<Vec<Value>> {
        let s = s.into();
        self.with(|c| list::slice(c, &s))
    }

    /// A snapshot of every item, taken under one lock (one call, where CPython's iterator makes
    /// one round trip per item).
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn iter(&self) -> Result<std::vec::IntoIter<Value>> {
        self.with(list::items).map(Vec::into_iter)
    }

    /// `l.clear()`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn clear(&self) -> Result<()> {
        self.with(list::clear)
    }

    /// `l.reverse()`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn reverse(&self) -> Result<()> {
        self.with(list::reverse)
    }

    /// `l.sort(reverse=descending)`.
    ///
    /// # Errors
    /// `TypeError` for items Python cannot order (the list is unchanged).
    pub fn sort(&self, descending: bool) -> Result<()> {
        self.with(|c| list::sort(c, descending))
    }
}

/// A list seen under its lock, for several operations in one critical section
/// ([`ListProxy::with_lock`]).
pub struct ListView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl ListView<'_, '_> {
    /// `len(l)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn len(&mut self) -> Result<usize> {
        list::len(self.ctx).map(|n| n as usize)
    }
    /// `len(l) == 0`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn is_empty(&mut self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// `l[index]`.
    ///
    /// # Errors
    /// `IndexError`.
    pub fn get(&mut self, index: i64) -> Result<Value> {
        list::get(self.ctx, index)
    }
    /// `l[index] = v`.
    ///
    /// # Errors
    /// `IndexError`, `OutOfMemory`.
    pub fn set(&mut self, index: i64, v: impl Into<Value>) -> Result<()> {
        list::set(self.ctx, index, &v.into())
    }
    /// `l.append(v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn append(&mut self, v: impl Into<Value>) -> Result<()> {
        list::append(self.ctx, &v.into())
    }
    /// `l.pop(index)`.
    ///
    /// # Errors
    /// `IndexError`.
    pub fn pop(&mut self, index: i64) -> Result<Value> {
        list::pop(self.ctx, index)
    }
    /// `l.insert(index, v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn insert(&mut self, index: i64, v: impl Into<Value>) -> Result<()> {
        list::insert(self.ctx, index, &v.into())
    }
    /// A copy of every item.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn items(&mut self) -> Result<Vec<Value>> {
        list::items(self.ctx)
    }
}

impl ListProxy {
    /// Runs `f` with the list's lock held, so several operations form one atomic step (what
    /// CPython's proxies cannot do: there `l[0] += 1` is a get and a set).
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-withlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([10])?;
    /// l.with_lock(|v| {
    ///     let x = i64::try_from(v.get(0)?)?;
    ///     v.set(0, x + 1)
    /// })?;
    /// assert_eq!(l.get(0)?, shmstore::Value::Int(11));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut ListView<'_, '_>) -> Result<R>) -> Result<R> {
        self.with(|ctx| f(&mut ListView { ctx }))
    }
}
