//! `ListProxy`: the typed proxy of a shared `list`, and the `Store::list` factory.

use std::sync::Arc;

use super::{Handle, Proxy};
use crate::cell::{Cell, Scalar};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::{list, Ctx};
use crate::value::{Slice, Value};

/// A proxy of a shared `list`.
///
/// # Examples
/// ```
/// # let name = format!("doc-listproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Error, Value};
/// let l = store.list(["a", "b"])?;
/// l.append(3)?;
/// assert_eq!(l.len()?, 3);
/// assert_eq!(l.get(-1)?, Value::Int(3));
/// assert_eq!(l.pop(0)?, Value::from("a"));
/// assert_eq!(l.get(5), Err(Error::IndexError("list index out of range".into())));
/// assert_eq!(l.to_string(), "['b', 3]");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct ListProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::LIST; ListProxy {
    tag: "list",
    new: "store.list([3, 1, 2])?",
    call: ("index", "(2,)", "[Value::Int(2)]" => "Value::Int(2)"),
    kw: r#"assert_eq!(p.call_method_kw("sort", (), &[("reverse", Value::Bool(true))])?, Value::None);
assert_eq!(p.to_str()?, "[3, 2, 1]");"#,
    value: "Value::from(vec![3, 1, 2])",
    str: r#"assert_eq!(p.to_str()?, "[3, 1, 2]");"#,
    typeid: "list",
});

impl From<ListProxy> for Proxy {
    fn from(p: ListProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for ListProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<ListProxy> {
        Ok(ListProxy {
            h: p.into_handle_of(type_ids::LIST)?,
        })
    }
}

impl ListProxy {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `len(l)`.
    ///
    /// # Errors
    /// `Corrupt` if the list's memory fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list(0..5)?;
    /// assert_eq!(l.len()?, 5);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> Result<usize> {
        // Lock-free when no write is under way (see `dispatch::read_optimistic`).
        if let Some(n) = self.h.read_optimistic(list::len_racy) {
            return Ok(n as usize);
        }
        self.with(|c| list::len(c).map(|n| n as usize))
    }

    /// `len(l) == 0`.
    ///
    /// # Errors
    /// As [`Self::len`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list(Vec::<i64>::new())?;
    /// assert!(l.is_empty()?);
    /// l.append(1)?;
    /// assert!(!l.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// `l[index]` (negative indices count from the end).
    ///
    /// # Errors
    /// `IndexError("list index out of range")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let l = store.list([10, 20, 30])?;
    /// assert_eq!(l.get(0)?, Value::Int(10));
    /// assert_eq!(l.get(-1)?, Value::Int(30));
    /// assert_eq!(l.get(3), Err(Error::IndexError("list index out of range".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self, index: i64) -> Result<Value> {
        // A scalar is read lock-free when no write is under way; anything else takes the lock.
        let h = &self.h;
        if let Some(c) = h.read_optimistic(|a, b| list::get_racy(a, b, index)) {
            if let Some(v) = c.inline_value() {
                return Ok(v);
            }
        }
        self.with(|c| list::get(c, index))
    }

    /// `l[index]` as a Rust scalar (`i64`, `f64` or `bool`, converted as by their
    /// `TryFrom<Value>`): the same lock-free read as [`ListProxy::get`], with no `Value` built
    /// or dropped.
    ///
    /// # Errors
    /// As [`ListProxy::get`]; `TypeError` for an item that does not convert (`TryFrom`'s).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-getas-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let l = store.list([1.5, 2.5])?;
    /// assert_eq!(l.get_as::<f64>(-1)?, 2.5);
    /// assert!(matches!(l.get_as::<i64>(0), Err(Error::TypeError(_)))); // a float is not an int
    /// assert!(matches!(l.get_as::<f64>(2), Err(Error::IndexError(_))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get_as<T: Scalar>(&self, index: i64) -> Result<T> {
        if let Some(c) = self.h.read_optimistic(|a, b| list::get_racy(a, b, index)) {
            if let Some(x) = T::of_cell(&c) {
                return Ok(x);
            }
        }
        self.get_as_slow(index)
    }

    /// [`ListProxy::get_as`] once the lock-free read declined.
    #[cold]
    #[inline(never)]
    fn get_as_slow<T: Scalar>(&self, index: i64) -> Result<T> {
        T::try_from(self.get(index)?)
    }

    /// `l[index] = v`.
    ///
    /// # Errors
    /// `IndexError("list assignment index out of range")`, `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let l = store.list([1, 2, 3])?;
    /// l.set(-1, "last")?;
    /// assert_eq!(l.to_string(), "[1, 2, 'last']");
    /// assert_eq!(
    ///     l.set(3, 0),
    ///     Err(Error::IndexError("list assignment index out of range".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, index: i64, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        // An int replacing an int (or None, bool, float of one kind): one store, see `set_fast`.
        if let Some(c) = Cell::scalar(&v) {
            let h = &self.h;
            if h.write_fast(|a, b| list::set_fast(a, b, index, c))
                .is_some()
            {
                v.discard();
                return Ok(());
            }
        }
        self.with(|c| list::set(c, index, &v))
    }

    /// `l.append(v)`.
    ///
    /// # Errors
    /// `OutOfMemory` when the arena is full (the list is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-append-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// l.append("two")?;
    /// l.append(vec![3, 4])?; // a nested list, stored by value
    /// assert_eq!(l.to_string(), "[1, 'two', [3, 4]]");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn append(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        // A scalar into an array with room: see `append_fast`.
        if let Some(c) = Cell::scalar(&v) {
            let h = &self.h;
            if h.write_fast(|a, b| list::append_fast(a, b, c)).is_some() {
                v.discard();
                return Ok(());
            }
        }
        self.with(|c| list::append(c, &v))
    }

    /// `l.extend(items)`.
    ///
    /// # Errors
    /// `OutOfMemory` (the list is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-extend-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// l.extend([2, 3])?;
    /// l.extend(vec!["x"])?;
    /// assert_eq!(l.to_string(), "[1, 2, 3, 'x']");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn extend<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<()> {
        let items: Vec<Value> = items.into_iter().map(Into::into).collect();
        self.with(|c| list::extend(c, &items))
    }

    /// `l.insert(index, v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-insert-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list(["a", "c"])?;
    /// l.insert(1, "b")?;
    /// l.insert(-100, "start")?; // clamped, as in Python
    /// assert_eq!(l.to_string(), "['start', 'a', 'b', 'c']");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn insert(&self, index: i64, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::insert(c, index, &v))
    }

    /// `l.pop(index)`; `l.pop()` is `pop(-1)`.
    ///
    /// # Errors
    /// `IndexError("pop from empty list")`, `IndexError("pop index out of range")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-pop-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let l = store.list([1, 2, 3])?;
    /// assert_eq!(l.pop(-1)?, Value::Int(3));
    /// assert_eq!(l.pop(0)?, Value::Int(1));
    /// assert_eq!(l.pop(5), Err(Error::IndexError("pop index out of range".into())));
    /// l.pop(-1)?;
    /// assert_eq!(l.pop(-1), Err(Error::IndexError("pop from empty list".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn pop(&self, index: i64) -> Result<Value> {
        // The last item, a scalar: see `pop_fast`.
        let h = &self.h;
        if let Some(c) = h.write_fast(|a, b| list::pop_fast_cell(a, b, index)) {
            // Decoded here, into the result: `pop_fast_cell` hands over only a cell that
            // decodes.
            return Ok(c.decoded_inline());
        }
        self.with(|c| list::pop(c, index))
    }

    /// `l.remove(v)`.
    ///
    /// # Errors
    /// `ValueError("list.remove(x): x not in list")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let l = store.list([1, 2, 1])?;
    /// l.remove(1)?; // the first 1 only
    /// assert_eq!(l.to_string(), "[2, 1]");
    /// assert_eq!(
    ///     l.remove(9),
    ///     Err(Error::ValueError("list.remove(x): x not in list".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn remove(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::remove(c, &v))
    }

    /// `l.index(v)`.
    ///
    /// # Errors
    /// `ValueError("5 is not in list")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-index-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let l = store.list(["a", "b", "a"])?;
    /// assert_eq!(l.index("b")?, 1);
    /// assert_eq!(l.index("z"), Err(Error::ValueError("'z' is not in list".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn index(&self, v: impl Into<Value>) -> Result<usize> {
        let v = v.into();
        self.with(|c| list::index(c, &v, None, None).map(|i| i as usize))
    }

    /// `l.count(v)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-count-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1, 2, 1, 1])?;
    /// assert_eq!(l.count(1)?, 3);
    /// assert_eq!(l.count(1.0)?, 3); // 1 == 1.0, as in Python
    /// assert_eq!(l.count("1")?, 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn count(&self, v: impl Into<Value>) -> Result<usize> {
        let v = v.into();
        self.with(|c| list::count(c, &v).map(|i| i as usize))
    }

    /// `v in l`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list(["a", "b"])?;
    /// assert!(l.contains("a")?);
    /// assert!(!l.contains("z")?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
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
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slice-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Slice, Value};
    /// let l = store.list(0..6)?;
    /// assert_eq!(l.slice(1..3)?, [Value::Int(1), Value::Int(2)]);
    /// assert_eq!(l.slice(-2..)?, [Value::Int(4), Value::Int(5)]);
    /// assert_eq!(l.slice(Slice::with_step(0, 6, 2))?, [0, 2, 4].map(Value::Int));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn slice(&self, s: impl Into<Slice>) -> Result<Vec<Value>> {
        let s = s.into();
        self.with(|c| list::slice(c, &s))
    }

    /// A snapshot of every item, taken under one lock (one call, where CPython's iterator makes
    /// one round trip per item).
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-iter-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1, 2, 3])?;
    /// let total: i64 = l.iter()?.map(|v| v.as_int().unwrap_or(0)).sum();
    /// assert_eq!(total, 6);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn iter(&self) -> Result<std::vec::IntoIter<Value>> {
        self.with(list::items).map(Vec::into_iter)
    }

    /// `l.clear()`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-clear-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1, 2])?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.with(list::clear)
    }

    /// `l.reverse()`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-reverse-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1, 2, 3])?;
    /// l.reverse()?;
    /// assert_eq!(l.to_string(), "[3, 2, 1]");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn reverse(&self) -> Result<()> {
        self.with(list::reverse)
    }

    /// `l.sort(reverse=descending)`.
    ///
    /// # Errors
    /// `TypeError` for items Python cannot order (the list is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-sort-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let l = store.list([3, 1, 2])?;
    /// l.sort(false)?;
    /// assert_eq!(l.to_string(), "[1, 2, 3]");
    /// l.sort(true)?;
    /// assert_eq!(l.to_string(), "[3, 2, 1]");
    /// l.append("x")?;
    /// assert_eq!(
    ///     l.sort(false),
    ///     Err(Error::TypeError("'<' not supported between instances of 'str' and 'int'".into()))
    /// );
    /// assert_eq!(l.to_string(), "[3, 2, 1, 'x']"); // unchanged
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn sort(&self, descending: bool) -> Result<()> {
        self.with(|c| list::sort(c, descending))
    }
}

/// A list seen under its lock, for several operations in one critical section
/// ([`ListProxy::with_lock`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-listview-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let l = store.list([1, 2])?;
/// // Move the last item to the front, with no other process seeing the list in between.
/// l.with_lock(|v| {
///     let last = v.pop(-1)?;
///     v.insert(0, last)
/// })?;
/// assert_eq!(l.to_string(), "[2, 1]");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct ListView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl ListView<'_, '_> {
    /// `len(l)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1, 2, 3])?;
    /// assert_eq!(l.with_lock(|v| v.len())?, 3);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn len(&mut self) -> Result<usize> {
        list::len(self.ctx).map(|n| n as usize)
    }
    /// `len(l) == 0`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list(Vec::<i64>::new())?;
    /// // Append a first item only if the list is still empty.
    /// let added = l.with_lock(|v| {
    ///     let empty = v.is_empty()?;
    ///     if empty {
    ///         v.append("first")?;
    ///     }
    ///     Ok(empty)
    /// })?;
    /// assert!(added);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_empty(&mut self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// `l[index]`.
    ///
    /// # Errors
    /// `IndexError`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let l = store.list([10, 20])?;
    /// assert_eq!(l.with_lock(|v| v.get(-1))?, Value::Int(20));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn get(&mut self, index: i64) -> Result<Value> {
        list::get(self.ctx, index)
    }
    /// `l[index] = v`.
    ///
    /// # Errors
    /// `IndexError`, `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1, 2])?;
    /// // Swap the two items in one step.
    /// l.with_lock(|v| {
    ///     let (a, b) = (v.get(0)?, v.get(1)?);
    ///     v.set(0, b)?;
    ///     v.set(1, a)
    /// })?;
    /// assert_eq!(l.to_string(), "[2, 1]");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn set(&mut self, index: i64, v: impl Into<Value>) -> Result<()> {
        list::set(self.ctx, index, &v.into())
    }
    /// `l.append(v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-append-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// // Append the next number after the last.
    /// l.with_lock(|v| {
    ///     let last = i64::try_from(v.get(-1)?)?;
    ///     v.append(last + 1)
    /// })?;
    /// assert_eq!(l.to_string(), "[1, 2]");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn append(&mut self, v: impl Into<Value>) -> Result<()> {
        list::append(self.ctx, &v.into())
    }
    /// `l.pop(index)`.
    ///
    /// # Errors
    /// `IndexError`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-pop-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let l = store.list(["a", "b", "c"])?;
    /// // Take two items at once.
    /// let two = l.with_lock(|v| Ok((v.pop(0)?, v.pop(0)?)))?;
    /// assert_eq!(two, (Value::from("a"), Value::from("b")));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn pop(&mut self, index: i64) -> Result<Value> {
        list::pop(self.ctx, index)
    }
    /// `l.insert(index, v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-insert-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([2, 3])?;
    /// l.with_lock(|v| v.insert(0, 1))?;
    /// assert_eq!(l.to_string(), "[1, 2, 3]");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn insert(&mut self, index: i64, v: impl Into<Value>) -> Result<()> {
        list::insert(self.ctx, index, &v.into())
    }
    /// A copy of every item.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-items-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let l = store.list([1, 2])?;
    /// // Read everything and clear the list, as one step.
    /// let drained = l.with_lock(|v| {
    ///     let items = v.items()?;
    ///     while !v.is_empty()? {
    ///         v.pop(-1)?;
    ///     }
    ///     Ok(items)
    /// })?;
    /// assert_eq!(drained, [Value::Int(1), Value::Int(2)]);
    /// assert!(l.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
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

impl Store {
    /// A new shared list holding `items`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for a proxy item that is dead or of
    /// another store.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-list-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let l = store.list(vec![Value::from("a"), Value::from(2)])?;
    /// l.append(3.5)?;
    /// assert_eq!(l.get(-1)?, Value::Float(3.5));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn list<I, V>(&self, items: I) -> Result<ListProxy>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        let items: Vec<Value> = items.into_iter().map(Into::into).collect();
        let h = self.make(|core| list::create(core, &items))?;
        Ok(ListProxy { h })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// A holder that dies mid-write leaves the sequence odd: lock-free reads give up, the next
    /// locked call repairs (closing the write), and reads are lock-free again.
    #[test]
    fn a_writer_dead_mid_write_sends_readers_to_the_lock_until_repaired() {
        let name = format!("t{}-seq-dead-writer", std::process::id());
        let store = Store::create(&name, 1 << 20).unwrap();
        let l = store.list([1i64, 2, 3]).unwrap();
        let core = &l.h.core;
        let token = l.h.token;
        std::thread::scope(|s| {
            s.spawn(|| {
                let (guard, _) = core.table().lock(token.slot, None).unwrap();
                std::mem::forget(core.table().write_begin(token.slot).unwrap());
                std::mem::forget(guard); // the thread ends holding the lock, mid-write
            })
            .join()
            .unwrap();
        });
        let seq = core.table().seq(token.slot).unwrap();
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 1);
        assert_eq!(
            dispatch::read_optimistic(core, &token, list::len_racy),
            None
        );
        assert_eq!(l.len().unwrap(), 3); // the locked path: OwnerDied, repaired
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 0);
        assert_eq!(
            dispatch::read_optimistic(core, &token, list::len_racy),
            Some(3)
        );
        l.append(4).unwrap();
        assert_eq!(l.get(-1).unwrap(), Value::Int(4));
        drop(l);
        drop(store);
        let _ = Store::remove(&name);
    }
}
