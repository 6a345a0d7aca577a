//! `ArrayProxy<T>`: a fixed-length shared array of plain-data `T`, with zero-copy access under
//! its lock ([`ArrayProxy::lock`]), and the `Store::array` factories.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, OnceLock};

use bytemuck::Pod;

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::table::{LockGuard, SeqWrite};
use crate::token::type_ids;
use crate::types::pod::{self, ElemType};
use crate::types::{array, Ctx};
use crate::value::Slice;

/// A proxy of a shared array of `T` (CPython's `ArrayProxy`, typeid `'Array'`): fixed length;
/// `__len__`, `__getitem__`, `__setitem__` (index or slice) through `call_method`, where a
/// primitive number converts to and from [`Value`](crate::Value) with `array.array`'s rules and
/// any other type reads as `bytes`; typed `len`, `get`, `set`, `slice`, `to_vec`; and zero-copy
/// access in place with [`ArrayProxy::lock`].
///
/// The arena records `T`'s size, alignment and type name fingerprint: converting a proxy of an
/// array of another type is a `TypeError`.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let a = store.array([1.0f64, 2.0, 3.0])?;
/// a.set(0, 10.0)?;
/// assert_eq!(a.get(-1)?, 3.0);
/// assert_eq!(a.to_vec()?, [10.0, 2.0, 3.0]);
/// {
///     let mut g = a.lock()?; // the elements in place, no copy
///     g.iter_mut().for_each(|x| *x *= 2.0);
/// }
/// assert_eq!(a.to_string(), "array('d', [20.0, 4.0, 6.0])");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct ArrayProxy<T> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
    /// `T`'s record, computed once (its fingerprint hashes `T`'s name).
    elem: ElemType,
    /// The array's length and element 0's offset, fixed at its creation: read once, then every
    /// lock-free `get` goes from the slot's sequence straight to the element.
    geometry: OnceLock<array::Geometry>,
}
proxy_common!(typed crate::type_ids::ARRAY => own; impl[T: ::bytemuck::Pod] ArrayProxy<T> {
    tag: "array",
    new: "store.array([1i32, 2, 3])?",
    call: ("__getitem__", "(-1,)", "[Value::Int(-1)]" => "Value::Int(3)"),
    kw: r#"assert_eq!(
    p.call_method_kw("__getitem__", (0,), &[("x", Value::Int(1))]),
    Err(shmstore::Error::TypeError("wrapper __getitem__() takes no keyword arguments".into()))
);"#,
    value: "Value::from(vec![1, 2, 3])",
    str: r#"assert_eq!(p.to_str()?, "array('i', [1, 2, 3])");"#,
    typeid: "Array",
});

impl<T: ::bytemuck::Pod> From<ArrayProxy<T>> for super::Proxy {
    fn from(p: ArrayProxy<T>) -> super::Proxy {
        super::Proxy { h: p.h }
    }
}

impl<T: ::bytemuck::Pod> Clone for ArrayProxy<T> {
    fn clone(&self) -> Self {
        ArrayProxy {
            h: self.h.clone(),
            _t: ::std::marker::PhantomData,
            elem: self.elem,
            geometry: self.geometry.clone(),
        }
    }
}

impl<T: Pod> TryFrom<Proxy> for ArrayProxy<T> {
    type Error = Error;
    /// # Errors
    /// `TypeError` if the proxy is not an `Array`, or its elements are not of type `T`.
    fn try_from(p: Proxy) -> Result<ArrayProxy<T>> {
        let h = p.into_handle_of(type_ids::ARRAY)?;
        let want = ElemType::of::<T>();
        dispatch::with_object(&h.core, &h.token, |c| array::data(c, &want))?;
        Ok(ArrayProxy {
            h,
            _t: PhantomData,
            elem: want,
            geometry: OnceLock::new(),
        })
    }
}

impl<T: Pod> ArrayProxy<T> {
    /// The array's [`array::Geometry`]: read lock-free on the first call and kept (it never
    /// changes); `None` while a write is under way at that first read.
    #[inline]
    fn geometry(&self) -> Option<array::Geometry> {
        match self.geometry.get() {
            Some(g) => Some(*g),
            None => self.learn_geometry(),
        }
    }

    #[cold]
    #[inline(never)]
    fn learn_geometry(&self) -> Option<array::Geometry> {
        let g = self
            .h
            .read_optimistic(|a, b| array::geometry_racy::<T>(a, b, &self.elem))?;
        Some(*self.geometry.get_or_init(|| g))
    }
}

fn normalize(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i.checked_add(len as i64)? } else { i };
    usize::try_from(i).ok().filter(|&i| i < len)
}

impl<T: Pod> ArrayProxy<T> {
    /// `call_method`'s fast path (see `proxy_common!`): the array's, with `T` known.
    #[inline(always)]
    fn call_fast(&self, method: usize, args: &[crate::Value]) -> Option<crate::Value> {
        array::fast_call_typed_at::<T>(&self.h, &self.elem, || self.geometry(), method, args)
    }

    /// Runs `f` on the elements in place, under the lock.
    #[inline]
    fn with_slice<R>(&self, f: impl FnOnce(&mut [T]) -> Result<R>) -> Result<R> {
        let want = self.elem;
        dispatch::with_object(&self.h.core, &self.h.token, |c: &mut Ctx<'_>| {
            let (data, len) = array::data(c, &want)?;
            f(c.core.arena().slice_mut::<T>(data, len)?)
        })
    }

    /// [`Self::with_slice`] for a closure that writes: the write is marked on the array's
    /// sequence, so lock-free readers discard what they read meanwhile.
    #[inline]
    fn with_slice_mut<R>(&self, f: impl FnOnce(&mut [T]) -> Result<R>) -> Result<R> {
        let want = self.elem;
        dispatch::with_object(&self.h.core, &self.h.token, |c: &mut Ctx<'_>| {
            let (data, len) = array::data(c, &want)?;
            let _w = array::writing(c)?;
            f(c.core.arena().slice_mut::<T>(data, len)?)
        })
    }

    /// `len(a)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let a = store.array::<u8>(16)?;
    /// assert_eq!(a.len()?, 16);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> Result<usize> {
        // Lock-free: the length never changes (see `array::len_racy`).
        let (want, h) = (self.elem, &self.h);
        if let Some(n) = h.read_optimistic(|a, b| array::len_racy(a, b, &want)) {
            return Ok(n as usize);
        }
        self.with_slice(|s| Ok(s.len()))
    }

    /// `len(a) == 0`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert!(store.array::<u8>(0)?.is_empty()?);
    /// assert!(!store.array([1u8])?.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// `a[index]` (negative indices count from the end).
    ///
    /// # Errors
    /// `IndexError("array index out of range")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let a = store.array([5i64, 6, 7])?;
    /// assert_eq!(a.get(0)?, 5);
    /// assert_eq!(a.get(-1)?, 7);
    /// assert_eq!(a.get(3), Err(Error::IndexError("array index out of range".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self, index: i64) -> Result<T> {
        // Lock-free when no write is under way (see `dispatch::read_optimistic`), from the
        // array's geometry once it is known.
        if let Some(g) = self.geometry() {
            if let Some(x) = self
                .h
                .read_optimistic(|a, _| array::get_at::<T>(a, g, index))
            {
                return Ok(x);
            }
        }
        self.with_slice(|s| {
            normalize(index, s.len())
                .and_then(|i| s.get(i).copied())
                .ok_or_else(|| Error::IndexError("array index out of range".into()))
        })
    }

    /// `a[index] = x`.
    ///
    /// # Errors
    /// `IndexError("array assignment index out of range")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let a = store.array::<i32>(3)?;
    /// a.set(1, 9)?;
    /// assert_eq!(a.to_vec()?, [0, 9, 0]);
    /// assert_eq!(
    ///     a.set(-4, 1),
    ///     Err(Error::IndexError("array assignment index out of range".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, index: i64, x: T) -> Result<()> {
        // Under the lock if it is free (see `dispatch::write_fast`), at the array's geometry.
        if let Some(g) = self.geometry() {
            if self
                .h
                .write_fast(|a, _| array::set_at::<T>(a, g, index, &x))
                .is_some()
            {
                return Ok(());
            }
        }
        self.with_slice_mut(|s| {
            let len = s.len();
            match normalize(index, len).and_then(|i| s.get_mut(i)) {
                Some(e) => {
                    *e = x;
                    Ok(())
                }
                None => Err(Error::IndexError(
                    "array assignment index out of range".into(),
                )),
            }
        })
    }

    /// `a[s]`: a copy of the selected elements.
    ///
    /// # Errors
    /// `ValueError("slice step cannot be zero")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slice-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Slice;
    /// let a = store.array_from_iter(0..10u16)?;
    /// assert_eq!(a.slice(2..5)?, [2, 3, 4]);
    /// assert_eq!(a.slice(Slice::with_step(9, 0, -3))?, [9, 6, 3]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn slice(&self, s: impl Into<Slice>) -> Result<Vec<T>> {
        let s = s.into();
        self.with_slice(|a| {
            let ix = s.indices(a.len())?;
            Ok(ix.iter().filter_map(|i| a.get(i).copied()).collect())
        })
    }

    /// A copy of every element.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-tovec-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let a = store.array([1u32, 2])?;
    /// assert_eq!(a.to_vec()?, vec![1, 2]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.with_slice(|a| Ok(a.to_vec()))
    }

    /// Overwrites every element with `src`, which must have the array's length.
    ///
    /// # Errors
    /// `ValueError("Can only assign sequence of same size")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-copyfromslic-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let a = store.array::<i16>(3)?;
    /// a.copy_from_slice(&[1, 2, 3])?;
    /// assert_eq!(a.to_vec()?, [1, 2, 3]);
    /// assert_eq!(
    ///     a.copy_from_slice(&[1]),
    ///     Err(Error::ValueError("Can only assign sequence of same size".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn copy_from_slice(&self, src: &[T]) -> Result<()> {
        self.with_slice_mut(|a| {
            if a.len() != src.len() {
                return Err(Error::ValueError(
                    "Can only assign sequence of same size".into(),
                ));
            }
            a.copy_from_slice(src);
            Ok(())
        })
    }

    /// Runs `f` on the elements in place (no copy) with the lock held, for as long as `f`
    /// runs; the closure form of [`ArrayProxy::lock`].
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-withlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let a = store.array([3u32, 1, 2])?;
    /// let max = a.with_lock(|xs| {
    ///     xs.sort_unstable(); // in place, in the arena
    ///     Ok(xs[xs.len() - 1])
    /// })?;
    /// assert_eq!((max, a.to_vec()?), (3, vec![1, 2, 3]));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut [T]) -> Result<R>) -> Result<R> {
        self.with_slice_mut(f)
    }

    /// Takes the array's lock and returns a guard that derefs to the elements in the arena —
    /// `&[T]` and `&mut [T]`, no copy — and releases the lock when dropped. Writes through it
    /// are seen by every process once the guard is gone.
    ///
    /// Keep the guard short-lived: every other user of the array, in any process, waits for
    /// it. Calling a method of this array from the thread that holds the guard is an
    /// `Error::Os` (`EDEADLK`), not a deadlock. The guard cannot leave its thread (the lock
    /// belongs to the thread that took it).
    ///
    /// # Errors
    /// `StaleHandle` if the array was freed; `Os` if this thread holds the lock already.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-alock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let a = store.array::<f64>(4)?;
    /// {
    ///     let mut g = a.lock()?;
    ///     g[0] = 1.5;
    ///     g.iter_mut().skip(1).for_each(|x| *x = 2.0);
    /// }
    /// assert_eq!(a.to_vec()?, [1.5, 2.0, 2.0, 2.0]);
    /// assert_eq!(a.to_string(), "array('d', [1.5, 2.0, 2.0, 2.0])");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        let core = &*self.h.core;
        let (lock, body) = dispatch::lock_object(core, &self.h.token)?;
        let (data, len) = array::locate(core, body, &self.elem)?;
        let elems = core.arena().slice_mut::<T>(data, len)?;
        // The guard may write at any time while it lives: its write stays open until then.
        let write = core.table().write_begin(self.h.token.slot)?;
        Ok(ArrayGuard {
            elems,
            _write: write,
            _lock: lock,
            _not_send: PhantomData,
        })
    }
}

/// The elements of a shared array in place, with the array's lock held
/// ([`ArrayProxy::lock`]); the lock is released when the guard is dropped.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayguard-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let a = store.array::<u64>(3)?;
/// let mut g = a.lock()?;
/// g.copy_from_slice(&[1, 2, 3]);
/// assert_eq!(g.iter().sum::<u64>(), 6);
/// drop(g); // the lock is released here
/// assert_eq!(a.to_vec()?, [1, 2, 3]);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct ArrayGuard<'a, T> {
    // Declared before the lock: the slice is gone before the lock is let go.
    elems: &'a mut [T],
    // Closes the write on the array's sequence, before the lock is let go.
    _write: SeqWrite<'a>,
    _lock: LockGuard<'a>,
    // The lock belongs to the thread that took it.
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        self.elems
    }
}

impl<T> DerefMut for ArrayGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        self.elems
    }
}

/// What [`Store::array`] accepts: a length (zeroed elements) or the elements themselves.
///
/// # Examples
/// ```
/// # let name = format!("doc-arrayinit-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// // A length (zeroed elements) or the elements, owned or borrowed:
/// assert_eq!(store.array::<f32>(2)?.to_vec()?, [0.0, 0.0]);
/// assert_eq!(store.array(vec![1u8, 2])?.to_vec()?, [1, 2]);
/// assert_eq!(store.array(&[1i64, 2][..])?.to_vec()?, [1, 2]);
/// assert_eq!(store.array([7u16; 3])?.to_vec()?, [7, 7, 7]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub trait ArrayInit<T: Pod> {
    /// The length and, unless zeroed, the elements.
    ///
    /// # Examples
    /// ```
    /// use shmstore::ArrayInit;
    /// assert_eq!(ArrayInit::<u8>::into_init(3usize), (3, None));
    /// assert_eq!(vec![1u8, 2].into_init(), (2, Some(vec![1, 2])));
    /// ```
    fn into_init(self) -> (usize, Option<Vec<T>>);
}

impl<T: Pod> ArrayInit<T> for usize {
    fn into_init(self) -> (usize, Option<Vec<T>>) {
        (self, None)
    }
}

impl<T: Pod> ArrayInit<T> for Vec<T> {
    fn into_init(self) -> (usize, Option<Vec<T>>) {
        (self.len(), Some(self))
    }
}

impl<T: Pod> ArrayInit<T> for &[T] {
    fn into_init(self) -> (usize, Option<Vec<T>>) {
        (self.len(), Some(self.to_vec()))
    }
}

impl<T: Pod> ArrayInit<T> for &Vec<T> {
    fn into_init(self) -> (usize, Option<Vec<T>>) {
        (self.len(), Some(self.clone()))
    }
}

impl<T: Pod, const N: usize> ArrayInit<T> for [T; N] {
    fn into_init(self) -> (usize, Option<Vec<T>>) {
        (N, Some(self.to_vec()))
    }
}

impl Store {
    /// A new shared array of `T`: `store.array::<i32>(10)` (ten zeroes, as
    /// `manager.Array('i', 10)`), or its elements (`store.array(vec![1.5, 2.5])`,
    /// `store.array([1u8, 2, 3])`, `store.array(&slice[..])`). See also
    /// [`Store::array_zeroed`] and [`Store::array_from_iter`].
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-array-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Slice, Value};
    /// let a = store.array([1i32, 2, 3])?;
    /// a.call_method("__setitem__", (0, 10))?;
    /// assert_eq!(a.call_method("__getitem__", (Slice::new(0, 2),))?, Value::from(vec![10, 2]));
    /// assert_eq!(a.to_string(), "array('i', [10, 2, 3])");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn array<T: Pod>(&self, init: impl ArrayInit<T>) -> Result<ArrayProxy<T>> {
        let (len, items) = init.into_init();
        let bytes = items.as_deref().map(bytemuck::cast_slice::<T, u8>);
        let h = self.make(|core| {
            array::create(
                core,
                ElemType::of::<T>(),
                pod::typecode_of::<T>(),
                len as u64,
                bytes,
            )
        })?;
        Ok(ArrayProxy {
            h,
            _t: PhantomData,
            elem: ElemType::of::<T>(),
            geometry: OnceLock::new(),
        })
    }

    /// A new shared array of `len` zeroed elements.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-arrayzeroed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let a = store.array_zeroed::<i32>(4)?;
    /// assert_eq!(a.to_vec()?, [0; 4]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn array_zeroed<T: Pod>(&self, len: usize) -> Result<ArrayProxy<T>> {
        self.array::<T>(len)
    }

    /// A new shared array holding the items of `items`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-arrayfromite-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let a = store.array_from_iter((1..=4).map(|i: u32| i * i))?;
    /// assert_eq!(a.to_vec()?, [1, 4, 9, 16]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn array_from_iter<T: Pod>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ArrayProxy<T>> {
        self.array(items.into_iter().collect::<Vec<T>>())
    }
}
