//! `SetProxy`: the typed proxy of a shared `set`, and the `Store::set` factory.

use std::sync::Arc;

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::htable::{self, KeyRef};
use crate::types::{set, Ctx};
use crate::value::Value;

/// A proxy of a shared `set` (CPython 3.14's `SyncManager.set`).
///
/// Sets come back as `Value::List`s of their elements (`Value` has no set variant), in
/// iteration order, which is insertion order.
///
/// # Examples
/// ```
/// # let name = format!("doc-setproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::Value;
/// let s = store.set([1, 2, 3])?;
/// s.add(2)?;
/// s.add(4)?;
/// assert_eq!(s.len()?, 4);
/// assert_eq!(s.intersection([2, 4, 6])?, vec![Value::Int(2), Value::Int(4)]);
/// assert_eq!(s.to_string(), "{1, 2, 3, 4}");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct SetProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::SET; SetProxy {
    tag: "set",
    new: "store.set([1, 2])?",
    call: ("__contains__", "(2,)", "[Value::Int(2)]" => "Value::Bool(true)"),
    kw: r#"assert_eq!(
    p.call_method_kw("add", (3,), &[("x", Value::Int(1))]),
    Err(shmstore::Error::TypeError("set.add() takes no keyword arguments".into()))
);"#,
    value: "Value::from(vec![1, 2])",
    str: r#"assert_eq!(p.to_str()?, "{1, 2}");"#,
    typeid: "set",
});

impl From<SetProxy> for Proxy {
    fn from(p: SetProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for SetProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<SetProxy> {
        Ok(SetProxy {
            h: p.into_handle_of(type_ids::SET)?,
        })
    }
}

fn values<I: IntoIterator<Item = V>, V: Into<Value>>(items: I) -> Vec<Value> {
    items.into_iter().map(Into::into).collect()
}

impl SetProxy {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `len(s)`.
    ///
    /// # Errors
    /// `Corrupt` if the set's memory fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2, 2, 3])?;
    /// assert_eq!(s.len()?, 3);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> Result<usize> {
        // Lock-free when no write is under way (see `dispatch::read_optimistic`).
        let h = &self.h;
        if let Some(n) = h.read_optimistic(|a, b| htable::len_racy(a, b, htable::SET)) {
            return Ok(n as usize);
        }
        self.with(|c| set::len(c).map(|n| n as usize))
    }

    /// `len(s) == 0`.
    ///
    /// # Errors
    /// As [`Self::len`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1])?;
    /// assert!(!s.is_empty()?);
    /// s.clear()?;
    /// assert!(s.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// `v in s`.
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let s = store.set(["a", "b"])?;
    /// assert!(s.contains("a")?);
    /// assert!(!s.contains("z")?);
    /// assert_eq!(
    ///     s.contains(vec![1]),
    ///     Err(Error::TypeError("unhashable type: 'list'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn contains(&self, v: impl Into<Value>) -> Result<bool> {
        let v = v.into();
        // An inline key is looked up lock-free when no write is under way.
        if let Some(found) = self.contains_fast(v.racy_key(&self.h.core)) {
            super::dict::discard_key(v);
            return Ok(found);
        }
        self.contains_locked(v)
    }

    /// [`Self::contains`] with a borrowed key ([`KeyRef`]): `s.contains_borrowed("k")` looks
    /// up a short str without building a `String`.
    ///
    /// # Errors
    /// As [`Self::contains`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-setcontainsborrowed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set(["a", "b"])?;
    /// let key = String::from("a");
    /// assert!(s.contains_borrowed(&key)?);
    /// assert!(!s.contains_borrowed("z")?);
    /// assert!(!s.contains_borrowed(1)?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn contains_borrowed(&self, v: impl KeyRef) -> Result<bool> {
        if let Some(found) = self.contains_fast(v.racy_key(&self.h.core)) {
            return Ok(found);
        }
        self.contains_locked(v.to_value())
    }

    #[inline(always)]
    fn contains_fast(&self, k: Option<htable::RacyKey<'_>>) -> Option<bool> {
        super::dict::contains_racy(&self.h, htable::SET, k)
    }

    /// The locked `contains`, out of line and taking `v` by value (as `DictProxy`'s locked
    /// paths: `v`'s kind then stays known in `contains`).
    #[inline(never)]
    fn contains_locked(&self, v: Value) -> Result<bool> {
        self.with(|c| set::contains(c, &v))
    }

    /// `s.add(v)`; true if `v` was not there yet.
    ///
    /// # Errors
    /// `TypeError` for an unhashable value; `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-add-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1])?;
    /// assert!(s.add(2)?); // new
    /// assert!(!s.add(1)?); // there already
    /// assert!(!s.add(1.0)?); // 1.0 == 1
    /// assert_eq!(s.to_string(), "{1, 2}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn add(&self, v: impl Into<Value>) -> Result<bool> {
        let v = v.into();
        self.with(|c| set::add(c, &v))
    }

    /// `s.discard(v)`; true if `v` was there.
    ///
    /// # Errors
    /// `TypeError` for an unhashable value.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-discard-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2])?;
    /// assert!(s.discard(1)?);
    /// assert!(!s.discard(1)?); // no error when missing
    /// assert_eq!(s.to_string(), "{2}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn discard(&self, v: impl Into<Value>) -> Result<bool> {
        let v = v.into();
        self.with(|c| set::discard(c, &v))
    }

    /// `s.remove(v)`.
    ///
    /// # Errors
    /// `KeyError(v)` when missing; `TypeError` for an unhashable value.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let s = store.set(["a"])?;
    /// s.remove("a")?;
    /// assert_eq!(s.remove("a"), Err(Error::KeyError(Value::from("a"))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn remove(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| set::remove(c, &v))
    }

    /// `s.pop()`: removes and returns the most recently added element.
    ///
    /// # Errors
    /// `KeyError('pop from an empty set')`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-pop-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let s = store.set([1, 2])?;
    /// assert_eq!(s.pop()?, Value::Int(2)); // the most recently added
    /// assert_eq!(s.pop()?, Value::Int(1));
    /// assert_eq!(s.pop(), Err(Error::KeyError(Value::from("pop from an empty set"))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn pop(&self) -> Result<Value> {
        self.with(set::pop)
    }

    /// `s.clear()`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-clear-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2])?;
    /// s.clear()?;
    /// assert_eq!(s.to_string(), "set()");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.with(set::clear)
    }

    /// The elements, in iteration order (a snapshot taken under one lock).
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-items-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set(["b", "a", "b"])?;
    /// assert_eq!(s.items()?, [Value::from("b"), Value::from("a")]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn items(&self) -> Result<Vec<Value>> {
        self.with(set::items)
    }

    /// `s.union(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-union-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set([1, 2])?;
    /// assert_eq!(s.union([2, 3])?, [1, 2, 3].map(Value::Int));
    /// assert_eq!(s.len()?, 2); // unchanged
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn union<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<Vec<Value>> {
        let o = values(items);
        self.with(|c| set::union(c, &o))
    }

    /// `s.intersection(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-intersection-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set([1, 2, 3])?;
    /// assert_eq!(s.intersection([2, 3, 9])?, [Value::Int(2), Value::Int(3)]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn intersection<I: IntoIterator<Item = V>, V: Into<Value>>(
        &self,
        items: I,
    ) -> Result<Vec<Value>> {
        let o = values(items);
        self.with(|c| set::intersection(c, &o))
    }

    /// `s.difference(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-difference-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set([1, 2, 3])?;
    /// assert_eq!(s.difference([2])?, [Value::Int(1), Value::Int(3)]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn difference<I: IntoIterator<Item = V>, V: Into<Value>>(
        &self,
        items: I,
    ) -> Result<Vec<Value>> {
        let o = values(items);
        self.with(|c| set::difference(c, &o))
    }

    /// `s.symmetric_difference(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-symmetricdif-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set([1, 2])?;
    /// assert_eq!(s.symmetric_difference([2, 3])?, [Value::Int(1), Value::Int(3)]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn symmetric_difference<I: IntoIterator<Item = V>, V: Into<Value>>(
        &self,
        items: I,
    ) -> Result<Vec<Value>> {
        let o = values(items);
        self.with(|c| set::symmetric_difference(c, &o))
    }

    /// `s.update(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item (the items before it stay added); `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-update-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1])?;
    /// s.update([2, 3, 1])?;
    /// assert_eq!(s.to_string(), "{1, 2, 3}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn update<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<()> {
        let o = values(items);
        self.with(|c| set::update(c, &o))
    }

    /// `s.intersection_update(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item (the set is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-intersection-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2, 3])?;
    /// s.intersection_update([2, 3, 4])?;
    /// assert_eq!(s.to_string(), "{2, 3}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn intersection_update<I: IntoIterator<Item = V>, V: Into<Value>>(
        &self,
        items: I,
    ) -> Result<()> {
        let o = values(items);
        self.with(|c| set::intersection_update(c, &o))
    }

    /// `s.difference_update(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-differenceup-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2, 3])?;
    /// s.difference_update([1, 3])?;
    /// assert_eq!(s.to_string(), "{2}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn difference_update<I: IntoIterator<Item = V>, V: Into<Value>>(
        &self,
        items: I,
    ) -> Result<()> {
        let o = values(items);
        self.with(|c| set::difference_update(c, &o))
    }

    /// `s.symmetric_difference_update(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item (the set is unchanged); `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-symmetricdif-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2])?;
    /// s.symmetric_difference_update([2, 3])?;
    /// assert_eq!(s.to_string(), "{1, 3}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn symmetric_difference_update<I: IntoIterator<Item = V>, V: Into<Value>>(
        &self,
        items: I,
    ) -> Result<()> {
        let o = values(items);
        self.with(|c| set::symmetric_difference_update(c, &o))
    }

    /// `s.issubset(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-issubset-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2])?;
    /// assert!(s.issubset([1, 2, 3])?);
    /// assert!(!s.issubset([1])?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn issubset<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<bool> {
        let o = values(items);
        self.with(|c| set::issubset(c, &o))
    }

    /// `s.issuperset(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-issuperset-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2, 3])?;
    /// assert!(s.issuperset([1, 3])?);
    /// assert!(!s.issuperset([4])?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn issuperset<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<bool> {
        let o = values(items);
        self.with(|c| set::issuperset(c, &o))
    }

    /// `s.isdisjoint(items)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable item.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isdisjoint-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2])?;
    /// assert!(s.isdisjoint([3, 4])?);
    /// assert!(!s.isdisjoint([2])?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn isdisjoint<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<bool> {
        let o = values(items);
        self.with(|c| set::isdisjoint(c, &o))
    }

    /// Runs `f` with the set's lock held, so several operations form one atomic step.
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-setlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let claimed = store.set(Vec::<i64>::new())?;
    /// // Claim job 7 unless someone else did.
    /// let mine = claimed.with_lock(|v| Ok(!v.contains(7)? && v.add(7)?))?;
    /// assert!(mine);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut SetView<'_, '_>) -> Result<R>) -> Result<R> {
        self.with(|ctx| f(&mut SetView { ctx }))
    }
}

/// A set seen under its lock ([`SetProxy::with_lock`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-setview-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let seen = store.set(["a"])?;
/// // Add "b" and report whether the set was new to both, in one step.
/// let both_new = seen.with_lock(|v| Ok(!v.contains("a")? && v.add("b")?))?;
/// assert!(!both_new);
/// assert_eq!(seen.len()?, 1); // "b" was not added: && stopped at "a"
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct SetView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl SetView<'_, '_> {
    /// `len(s)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([1, 2])?;
    /// assert_eq!(s.with_lock(|v| v.len())?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn len(&mut self) -> Result<usize> {
        set::len(self.ctx).map(|n| n as usize)
    }
    /// `len(s) == 0`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set(Vec::<i64>::new())?;
    /// let was_empty = s.with_lock(|v| {
    ///     let e = v.is_empty()?;
    ///     v.add(1)?;
    ///     Ok(e)
    /// })?;
    /// assert!(was_empty);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_empty(&mut self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// `v in s`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable value.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set([7])?;
    /// assert!(s.with_lock(|v| v.contains(7))?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn contains(&mut self, v: impl Into<Value>) -> Result<bool> {
        set::contains(self.ctx, &v.into())
    }
    /// `s.add(v)`; true if new.
    ///
    /// # Errors
    /// `TypeError` for an unhashable value; `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-add-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let claimed = store.set(Vec::<i64>::new())?;
    /// // Claim the first free job number of 1..=3.
    /// let job = claimed.with_lock(|v| {
    ///     for j in 1..=3 {
    ///         if v.add(j)? {
    ///             return Ok(Some(j));
    ///         }
    ///     }
    ///     Ok(None)
    /// })?;
    /// assert_eq!(job, Some(1));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn add(&mut self, v: impl Into<Value>) -> Result<bool> {
        set::add(self.ctx, &v.into())
    }
    /// `s.discard(v)`; true if it was there.
    ///
    /// # Errors
    /// `TypeError` for an unhashable value.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-discard-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.set(["a", "b"])?;
    /// // Move "a" out only if "b" is there too.
    /// let moved = s.with_lock(|v| Ok(v.contains("b")? && v.discard("a")?))?;
    /// assert!(moved);
    /// assert_eq!(s.to_string(), "{'b'}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn discard(&mut self, v: impl Into<Value>) -> Result<bool> {
        set::discard(self.ctx, &v.into())
    }
    /// The elements, in iteration order.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-items-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set([1, 2])?;
    /// let drained = s.with_lock(|v| {
    ///     let all = v.items()?;
    ///     for x in &all {
    ///         v.discard(x.clone())?;
    ///     }
    ///     Ok(all)
    /// })?;
    /// assert_eq!(drained, [Value::Int(1), Value::Int(2)]);
    /// assert!(s.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn items(&mut self) -> Result<Vec<Value>> {
        set::items(self.ctx)
    }
}

impl Store {
    /// A new shared set holding `items` (duplicates collapse).
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")` for an unhashable item; `OutOfMemory`,
    /// `TableFull`; `StaleHandle`/`NotFound` for a proxy that is dead or of another store.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let s = store.set(["a", "b", "a"])?;
    /// assert_eq!(s.call_method("__len__", ())?, Value::Int(2));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn set<I, V>(&self, items: I) -> Result<SetProxy>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        let items = values(items);
        let h = self.make(|core| set::create(core, &items))?;
        Ok(SetProxy { h })
    }
}
