//! `ValueProxy` (one shared [`Value`]) and `TypedValueProxy<T>` (one shared plain-data `T`),
//! with the `Store::value`, `Store::value_with_typecode` and `Store::value_of` factories.

use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use bytemuck::Pod;

use super::{Handle, Proxy};
use crate::cell::{Cell, Scalar};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::pod::{self, ElemType};
use crate::types::{value, Ctx};
use crate::value::Value;

/// A proxy of a shared `Value` (CPython's `ValueProxy`): `get`, `set`, the `value` attribute
/// through `__getattribute__`/`__setattr__`, and the atomic [`ValueProxy::add`].
///
/// It also reaches a value made by [`Store::value_of`], converting its primitive number to and
/// from [`Value`] (any other plain-data type reads as `bytes`).
///
/// # Examples
/// ```
/// # let name = format!("doc-valueproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::Value;
/// let v = store.value(0)?;
/// v.set(41)?;
/// assert_eq!(v.add(1)?, Value::Int(42)); // one atomic step
/// assert_eq!(v.get()?, Value::Int(42));
/// assert_eq!(v.to_string(), "Value(None, 42)");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct ValueProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::VALUE; ValueProxy {
    tag: "value",
    new: "store.value(5)?",
    call: ("__getattribute__", r#"("value",)"#, r#"[Value::from("value")]"# => "Value::Int(5)"),
    kw: r#"assert_eq!(p.call_method_kw("set", (), &[("value", Value::Int(6))])?, Value::None);
assert_eq!(p.get()?, Value::Int(6));"#,
    value: "Value::Int(5)",
    str: r#"assert_eq!(p.to_str()?, "Value(None, 5)");"#,
    typeid: "Value",
});

impl From<ValueProxy> for Proxy {
    fn from(p: ValueProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for ValueProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<ValueProxy> {
        Ok(ValueProxy {
            h: p.into_handle_of(type_ids::VALUE)?,
        })
    }
}

impl ValueProxy {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `v.get()` (`v.value`): a copy of the value. A scalar allocates nothing.
    ///
    /// # Errors
    /// `Corrupt` if the value's memory fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let v = store.value("hello")?;
    /// assert_eq!(v.get()?, Value::from("hello"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> Result<Value> {
        // A scalar is read lock-free when no write is under way; anything else takes the lock.
        if let Some(v) = value::get_inline(&self.h) {
            return Ok(v);
        }
        self.with(value::get)
    }

    /// `v.value` as a Rust scalar (`i64`, `f64` or `bool`, converted as by their
    /// `TryFrom<Value>`): the same lock-free read as [`ValueProxy::get`], with no `Value` built
    /// or dropped.
    ///
    /// # Errors
    /// As [`ValueProxy::get`]; `TypeError` for a value that does not convert (`TryFrom`'s).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-vgetas-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let v = store.value(7)?;
    /// assert_eq!(v.get_as::<i64>()?, 7);
    /// assert_eq!(v.get_as::<f64>()?, 7.0);
    /// v.set("seven")?;
    /// assert!(matches!(v.get_as::<i64>(), Err(Error::TypeError(_))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get_as<T: Scalar>(&self) -> Result<T> {
        if let Some(c) = self.h.read_optimistic(value::get_racy) {
            if let Some(x) = T::of_cell(&c) {
                return Ok(x);
            }
        }
        self.get_as_slow()
    }

    /// [`ValueProxy::get_as`] once the lock-free read declined.
    #[cold]
    #[inline(never)]
    fn get_as_slow<T: Scalar>(&self) -> Result<T> {
        T::try_from(self.get()?)
    }

    /// `v.set(x)` (`v.value = x`).
    ///
    /// # Errors
    /// `OutOfMemory` (the value is unchanged); for a plain-data value the conversion errors of
    /// `array.array` (`TypeError`, `OverflowError`).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let v = store.value(1)?;
    /// v.set(vec![1, 2])?; // any value, whatever it held before
    /// assert_eq!(v.get()?, Value::from(vec![1, 2]));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, x: impl Into<Value>) -> Result<()> {
        let x = x.into();
        // A scalar over a scalar: see `value::set_fast`.
        if let Some(c) = Cell::scalar(&x) {
            let h = &self.h;
            if h.write_fast(|a, b| value::set_fast(a, b, c)).is_some() {
                x.discard();
                return Ok(());
            }
        }
        self.with(|c| value::set(c, &x))
    }

    /// `v.value += n` as one atomic step (CPython's proxies make it a get and a set, which
    /// loses updates between processes). Ints, floats and bools mix as in Python; strings,
    /// bytes, lists and tuples concatenate. Returns the new value.
    ///
    /// # Errors
    /// `TypeError("unsupported operand type(s) for +=: 'NoneType' and 'int'")` and Python's
    /// other messages; `OverflowError` for an int sum beyond 64 bits.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-vadd-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let hits = store.value(0)?;
    /// hits.add(1)?;
    /// assert_eq!(hits.add(2.5)?, shmstore::Value::Float(3.5));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn add(&self, n: impl Into<Value>) -> Result<Value> {
        let n = n.into();
        self.with(|c| value::add(c, &n))
    }

    /// The typecode given at creation (`Value::None` for [`Store::value`]).
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-typecode-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// assert_eq!(store.value(1)?.typecode()?, Value::None);
    /// assert_eq!(store.value_with_typecode("i", 1)?.typecode()?, Value::from("i"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn typecode(&self) -> Result<Value> {
        self.with(value::typecode)
    }

    /// Runs `f` with the value's lock held: several operations as one atomic step.
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-vlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let v = store.value(10)?;
    /// let doubled = v.with_lock(|v| {
    ///     let x = i64::try_from(v.get()?)?;
    ///     v.set(x * 2)?;
    ///     Ok(x * 2)
    /// })?;
    /// assert_eq!(doubled, 20);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut ValueView<'_, '_>) -> Result<R>) -> Result<R> {
        self.with(|ctx| f(&mut ValueView { ctx }))
    }
}

/// A shared value seen under its lock ([`ValueProxy::with_lock`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-valueview-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::Value;
/// let v = store.value(5)?;
/// // Decrement only while positive: a check and a set as one step.
/// let ok = v.with_lock(|x| {
///     let n = i64::try_from(x.get()?)?;
///     if n > 0 {
///         x.set(n - 1)?;
///     }
///     Ok(n > 0)
/// })?;
/// assert!(ok);
/// assert_eq!(v.get()?, Value::Int(4));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct ValueView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl ValueView<'_, '_> {
    /// `v.get()`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let v = store.value("x")?;
    /// assert_eq!(v.with_lock(|x| x.get())?, Value::from("x"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn get(&mut self) -> Result<Value> {
        value::get(self.ctx)
    }
    /// `v.set(x)`.
    ///
    /// # Errors
    /// `OutOfMemory`, conversion errors for plain data.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let v = store.value(1)?;
    /// // Swap in a new value and return the old one.
    /// let old = v.with_lock(|x| {
    ///     let old = x.get()?;
    ///     x.set("new")?;
    ///     Ok(old)
    /// })?;
    /// assert_eq!((old, v.get()?), (Value::Int(1), Value::from("new")));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn set(&mut self, x: impl Into<Value>) -> Result<()> {
        value::set(self.ctx, &x.into())
    }
    /// `v.value += n`; returns the new value.
    ///
    /// # Errors
    /// As [`ValueProxy::add`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-add-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let v = store.value("ab")?;
    /// assert_eq!(v.with_lock(|x| x.add("c"))?, Value::from("abc")); // strings concatenate
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn add(&mut self, n: impl Into<Value>) -> Result<Value> {
        value::add(self.ctx, &n.into())
    }
}

/// A proxy of a shared plain-data value of type `T` ([`Store::value_of`]): `get` and `set`
/// copy exactly `size_of::<T>()` bytes and allocate nothing. Its typeid is `'Value'`, so
/// `call_method("get", ())` works too (a primitive number converts to a [`Value`], any other
/// type reads as `bytes`).
///
/// The arena records `T`'s size, alignment and type name fingerprint: converting a proxy of a
/// value of another type (`TypedValueProxy::<u32>::try_from(proxy_of_an_i32)`) is a
/// `TypeError`.
///
/// # Examples
/// ```
/// # let name = format!("doc-typedvaluepr-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let counter = store.value_of(0u64)?;
/// counter.with_lock(|n| *n += 5)?;
/// assert_eq!(counter.get()?, 5);
/// // Any process can attach it by token and get the same type back.
/// let again: shmstore::TypedValueProxy<u64> = store.attach(&counter.token())?.try_into()?;
/// assert_eq!(again.get()?, 5);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct TypedValueProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
    /// `T`'s record, computed once (its fingerprint hashes `T`'s name).
    elem: ElemType,
    /// The offset of the value's two copies, fixed at its creation: read once, then every
    /// lock-free `get` reads `current` and the copy it names, without the header.
    copies: OnceLock<u64>,
}
proxy_common!(typed crate::type_ids::VALUE => own; impl[T: ::bytemuck::Pod] TypedValueProxy<T> {
    tag: "tvalue",
    new: "store.value_of(7i32)?",
    call: ("get", "()", "[]" => "Value::Int(7)"),
    kw: r#"assert_eq!(p.call_method_kw("set", (), &[("value", Value::Int(8))])?, Value::None);
assert_eq!(p.get()?, 8);"#,
    value: "Value::Int(7)",
    str: r#"assert_eq!(p.to_str()?, "Value('i', 7)");"#,
    typeid: "Value",
});

impl<T: ::bytemuck::Pod> From<TypedValueProxy<T>> for super::Proxy {
    fn from(p: TypedValueProxy<T>) -> super::Proxy {
        super::Proxy { h: p.h }
    }
}

impl<T: ::bytemuck::Pod> Clone for TypedValueProxy<T> {
    fn clone(&self) -> Self {
        TypedValueProxy {
            h: self.h.clone(),
            _t: ::std::marker::PhantomData,
            elem: self.elem,
            copies: self.copies.clone(),
        }
    }
}

impl<T: Pod> TypedValueProxy<T> {
    /// The offset of the value's copies: read lock-free on the first call and kept (it never
    /// changes); `None` while a write is under way at that first read.
    #[inline]
    fn copies(&self) -> Option<u64> {
        match self.copies.get() {
            Some(d) => Some(*d),
            None => self.learn_copies(),
        }
    }

    #[cold]
    #[inline(never)]
    fn learn_copies(&self) -> Option<u64> {
        let d = self
            .h
            .read_optimistic(|a, b| value::pod_copies_racy::<T>(a, b, &self.elem))?;
        Some(*self.copies.get_or_init(|| d))
    }
}

impl<T: Pod> TryFrom<Proxy> for TypedValueProxy<T> {
    type Error = Error;
    /// # Errors
    /// `TypeError` if the proxy is not a `Value`, or its value is not plain data of type `T`.
    fn try_from(p: Proxy) -> Result<TypedValueProxy<T>> {
        let h = p.into_handle_of(type_ids::VALUE)?;
        let want = ElemType::of::<T>();
        dispatch::with_object(&h.core, &h.token, |c| value::check_pod(c, &want))?;
        Ok(TypedValueProxy {
            h,
            _t: PhantomData,
            elem: want,
            copies: OnceLock::new(),
        })
    }
}

impl<T: Pod> TypedValueProxy<T> {
    /// `call_method`'s fast path (see `proxy_common!`): the value's, with `T` known.
    #[inline(always)]
    fn call_fast(&self, method: usize, args: &[Value]) -> Option<Value> {
        value::fast_call_typed::<T>(&self.h, &self.elem, method, args)
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// A copy of the value: `size_of::<T>()` bytes, no allocation.
    ///
    /// # Errors
    /// `Corrupt` if the value's memory fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let v = store.value_of(1.5f64)?;
    /// assert_eq!(v.get()?, 1.5);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> Result<T> {
        // Lock-free when no write is under way (see `dispatch::read_optimistic`), from the
        // copies' place once it is known.
        if let Some(data) = self.copies() {
            if let Some(x) = self
                .h
                .read_optimistic(|a, b| value::get_pod_at::<T>(a, b, data))
            {
                return Ok(x);
            }
        }
        let want = &self.elem;
        let mut x = T::zeroed();
        self.with(|c| value::get_pod(c, want, bytemuck::bytes_of_mut(&mut x)))?;
        Ok(x)
    }

    /// Sets the value to `x`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let v = store.value_of([0u8; 4])?;
    /// v.set(*b"abcd")?;
    /// assert_eq!(&v.get()?, b"abcd");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, x: T) -> Result<()> {
        // Under the lock if it is free (see `dispatch::write_fast`), at the copies' place.
        if let Some(data) = self.copies() {
            if self
                .h
                .write_fast(|a, b| value::set_pod_at::<T>(a, b, data, &x))
                .is_some()
            {
                return Ok(());
            }
        }
        self.with(|c| value::set_pod(c, &self.elem, bytemuck::bytes_of(&x)))
    }

    /// Runs `f` on the value under its lock and stores what it leaves: an atomic
    /// read-modify-write. Returns what `f` returns.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-tvlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let v = store.value_of([1u32, 2])?;
    /// v.with_lock(|p| p[1] += 40)?;
    /// assert_eq!(v.get()?, [1, 42]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let want = self.elem;
        self.with(|c| {
            let mut x = T::zeroed();
            value::get_pod(c, &want, bytemuck::bytes_of_mut(&mut x))?;
            let r = f(&mut x);
            value::set_pod(c, &want, bytemuck::bytes_of(&x))?;
            Ok(r)
        })
    }
}

impl Store {
    /// A new shared value holding `v` (CPython's `manager.Value(typecode, v)`; this one has no
    /// typecode: see [`Store::value_with_typecode`]).
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for a proxy `v` that is dead or of
    /// another store.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-value-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let v = store.value("ready")?;
    /// assert_eq!(v.call_method("get", ())?, Value::from("ready"));
    /// v.call_method("__setattr__", ("value", 3))?;
    /// assert_eq!(v.to_string(), "Value(None, 3)");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn value(&self, v: impl Into<Value>) -> Result<ValueProxy> {
        self.value_with_typecode(Value::None, v)
    }

    /// A new shared value with CPython's `typecode` (kept for `str`, as CPython keeps it:
    /// `Value('i', 5)`; neither checks the value against it).
    ///
    /// # Errors
    /// As [`Store::value`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-valuewithtyp-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let v = store.value_with_typecode("i", 5)?;
    /// assert_eq!(v.to_string(), "Value('i', 5)");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn value_with_typecode(
        &self,
        typecode: impl Into<Value>,
        v: impl Into<Value>,
    ) -> Result<ValueProxy> {
        let h = self.make(|core| value::create(core, &typecode.into(), &v.into()))?;
        Ok(ValueProxy { h })
    }

    /// A new shared plain-data value of type `T`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-valueof-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, PartialEq, Debug)]
    /// #[repr(C)]
    /// struct Point { x: f64, y: f64 }
    /// let p = store.value_of(Point { x: 1.0, y: 2.0 })?;
    /// p.set(Point { x: 3.0, y: 4.0 })?;
    /// assert_eq!(p.get()?, Point { x: 3.0, y: 4.0 });
    /// let n = store.value_of(7i32)?;
    /// assert_eq!(n.call_method("get", ())?, shmstore::Value::Int(7));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn value_of<T: Pod>(&self, x: T) -> Result<TypedValueProxy<T>> {
        let h = self.make(|core| {
            value::create_pod(
                core,
                ElemType::of::<T>(),
                pod::typecode_of::<T>(),
                bytemuck::bytes_of(&x),
            )
        })?;
        Ok(TypedValueProxy {
            h,
            _t: PhantomData,
            elem: ElemType::of::<T>(),
            copies: OnceLock::new(),
        })
    }
}
