//! `DictProxy`: the typed proxy of a shared `dict`, and the `Store::dict` factory.

use std::sync::Arc;

use super::{Handle, Proxy};
use crate::cell::Cell;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::htable::{self, KeyRef};
use crate::types::{dict, Ctx};
use crate::value::Value;

/// A proxy of a shared `dict`: insertion-ordered, keyed by any hashable [`Value`].
///
/// # Examples
/// ```
/// # let name = format!("doc-dictproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Error, Value};
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// d.insert("c", 3)?;
/// assert_eq!(d.get("b")?, Some(Value::Int(2)));
/// assert_eq!(d.get_item("zz"), Err(Error::KeyError(Value::from("zz"))));
/// d.add("a", 10)?; // d["a"] += 10 in one step
/// assert_eq!(d.to_string(), "{'a': 11, 'b': 2, 'c': 3}");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct DictProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::DICT; DictProxy {
    tag: "dict",
    new: r#"store.dict([("a", 1)])?"#,
    call: ("get", r#"("a",)"#, r#"[Value::from("a")]"# => "Value::Int(1)"),
    kw: r#"assert_eq!(p.call_method_kw("update", (), &[("b", Value::Int(2))])?, Value::None);
assert_eq!(p.to_str()?, "{'a': 1, 'b': 2}");"#,
    value: r#"Value::dict_from_pairs([("a", 1)])?"#,
    str: r#"assert_eq!(p.to_str()?, "{'a': 1}");"#,
    typeid: "dict",
});

impl From<DictProxy> for Proxy {
    fn from(p: DictProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for DictProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<DictProxy> {
        Ok(DictProxy {
            h: p.into_handle_of(type_ids::DICT)?,
        })
    }
}

impl DictProxy {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `len(d)`.
    ///
    /// # Errors
    /// `Corrupt` if the dict's memory fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1), ("b", 2)])?;
    /// assert_eq!(d.len()?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn len(&self) -> Result<usize> {
        // Lock-free when no write is under way (see `dispatch::read_optimistic`).
        if let Some(n) = dict::len_optimistic(&self.h.core, &self.h.token) {
            return Ok(n as usize);
        }
        self.with(|c| dict::len(c).map(|n| n as usize))
    }

    /// `len(d) == 0`.
    ///
    /// # Errors
    /// As [`Self::len`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict(Vec::<(Value, Value)>::new())?;
    /// assert!(d.is_empty()?);
    /// d.insert("k", "v")?;
    /// assert!(!d.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// `d.get(key)`: the value, or None when the key is missing.
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([("a", 1)])?;
    /// assert_eq!(d.get("a")?, Some(Value::Int(1)));
    /// assert_eq!(d.get("zz")?, None);
    /// assert_eq!(
    ///     d.get(vec![1, 2]),
    ///     Err(Error::TypeError("unhashable type: 'list'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self, key: impl Into<Value>) -> Result<Option<Value>> {
        let key = key.into();
        // An inline key with an inline value (or absent) is read lock-free when no write is
        // under way (the borrowed-key path, `get_fast`); anything else takes the lock. The key
        // is prepared here, inline, so an int key folds to a few instructions and its `Value`
        // needs no drop call.
        if let Some(v) = self.get_fast(key.racy_key(&self.h.core)) {
            discard_key(key);
            return Ok(v);
        }
        self.get_locked(key)
    }

    /// [`Self::get`] with a borrowed key ([`KeyRef`]): `d.get_borrowed("k")` looks up a short
    /// str key without building a `String`, so a hit of an inline value (or a miss) allocates
    /// nothing.
    ///
    /// # Errors
    /// As [`Self::get`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-getborrowed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([("a", 1), ("b", 2)])?;
    /// let key = String::from("b");
    /// assert_eq!(d.get_borrowed(&key)?, Some(Value::Int(2)));
    /// assert_eq!(d.get_borrowed("zz")?, None);
    /// let t = Value::from(("a", 1));
    /// assert_eq!(d.get_borrowed(&t)?, None); // a tuple key: the locked path looks it up
    /// assert_eq!(
    ///     d.get_borrowed(&Value::List(vec![])),
    ///     Err(Error::TypeError("unhashable type: 'list'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get_borrowed(&self, key: impl KeyRef) -> Result<Option<Value>> {
        if let Some(v) = self.get_fast(key.racy_key(&self.h.core)) {
            return Ok(v);
        }
        self.get_locked(key.to_value())
    }

    /// `d.get(key)` as a Rust scalar (`i64`, `f64` or `bool`, converted as by their
    /// `TryFrom<Value>`), with a borrowed key ([`KeyRef`]): the same lock-free read as
    /// [`Self::get_borrowed`], converted straight from the value's cell, so no `Value` is built
    /// or dropped. `Ok(None)` for a missing key.
    ///
    /// # Errors
    /// As [`Self::get`]; `TypeError` for a value that does not convert (`TryFrom`'s).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-dictgetas-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let d = store.dict([("n", shmstore::Value::Int(3)), ("s", "text".into())])?;
    /// assert_eq!(d.get_as::<i64>("n")?, Some(3));
    /// assert_eq!(d.get_as::<f64>("n")?, Some(3.0));
    /// assert_eq!(d.get_as::<i64>("zz")?, None);
    /// assert!(matches!(d.get_as::<i64>("s"), Err(Error::TypeError(_))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get_as<T: crate::cell::Scalar>(&self, key: impl KeyRef) -> Result<Option<T>> {
        if let Some(k) = key.racy_key(&self.h.core) {
            match self.get_cell_racy(&k) {
                Some(None) => return Ok(None),
                Some(Some(c)) => {
                    if let Some(x) = T::of_cell(&Cell::from_words(c)) {
                        return Ok(Some(x));
                    }
                }
                None => {}
            }
        }
        self.get_as_slow(key.to_value())
    }

    /// [`Self::get_as`] once the lock-free read declined.
    #[cold]
    #[inline(never)]
    fn get_as_slow<T: crate::cell::Scalar>(&self, key: Value) -> Result<Option<T>> {
        self.get_locked(key)?.map(T::try_from).transpose()
    }

    /// The lock-free read of a prepared key's value cell: `Some(None)` for a missing key,
    /// `None` when the lock must answer; out of line, as [`Self::get_racy`].
    #[inline(never)]
    fn get_cell_racy(&self, k: &htable::RacyKey<'_>) -> Option<Option<[u64; 2]>> {
        let r = self
            .h
            .read_optimistic(|a, body| htable::probe_racy(a, body, htable::DICT, k))?;
        Some(r.map(|(_, c)| c))
    }

    /// The lock-free `get` of a prepared key (`None`: no key to probe with, or the lock must
    /// answer), on the handle's pinned slot.
    #[inline(always)]
    fn get_fast(&self, k: Option<htable::RacyKey<'_>>) -> Option<Option<Value>> {
        self.get_racy(&k?)
    }

    /// The lock-free `get` of a prepared key, out of line: one call holds the whole read
    /// (sequence, probe, decoding), whatever the key's type.
    #[inline(never)]
    fn get_racy(&self, k: &htable::RacyKey<'_>) -> Option<Option<Value>> {
        match self
            .h
            .read_optimistic(|a, body| htable::probe_racy(a, body, htable::DICT, k))?
        {
            Some((_, c)) => {
                let c = Cell::from_words(c);
                // An int value, the common case, without the general decoding's match.
                match c.exact_int() {
                    Some(i) => Some(Some(Value::Int(i))),
                    None => c.inline_value().map(Some),
                }
            }
            None => Some(None),
        }
    }

    // The locked paths take the key by value, out of line: `key`'s address is then never
    // taken in the typed methods, so its kind stays known there and the fast path's drop folds
    // away.
    #[inline(never)]
    fn get_locked(&self, key: Value) -> Result<Option<Value>> {
        self.with(|c| dict::get(c, &key))
    }

    #[inline(never)]
    fn get_item_locked(&self, key: Value) -> Result<Value> {
        self.with(|c| dict::get_item(c, &key))
    }

    #[inline(never)]
    fn insert_locked(&self, key: Value, value: Value) -> Result<()> {
        self.with(|c| dict::insert(c, &key, &value))
    }

    #[inline(never)]
    fn contains_locked(&self, key: Value) -> Result<bool> {
        self.with(|c| dict::contains(c, &key))
    }

    /// `d[key]`.
    ///
    /// # Errors
    /// `KeyError(key)` when missing; `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-getitem-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([(1, "one")])?;
    /// assert_eq!(d.get_item(1)?, Value::from("one"));
    /// assert_eq!(d.get_item(1.0)?, Value::from("one")); // 1.0 == 1 and hashes alike
    /// assert_eq!(d.get_item(2), Err(Error::KeyError(Value::Int(2))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get_item(&self, key: impl Into<Value>) -> Result<Value> {
        let key = key.into();
        match self.get_fast(key.racy_key(&self.h.core)) {
            Some(Some(v)) => {
                discard_key(key);
                Ok(v)
            }
            Some(None) => Err(Error::KeyError(key)),
            None => self.get_item_locked(key),
        }
    }

    /// [`Self::get_item`] with a borrowed key ([`KeyRef`]); the `KeyError` holds the key as a
    /// [`Value`].
    ///
    /// # Errors
    /// As [`Self::get_item`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-getitemborrowed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([("one", 1)])?;
    /// assert_eq!(d.get_item_borrowed("one")?, Value::Int(1));
    /// assert_eq!(d.get_item_borrowed("two"), Err(Error::KeyError(Value::from("two"))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get_item_borrowed(&self, key: impl KeyRef) -> Result<Value> {
        match self.get_fast(key.racy_key(&self.h.core)) {
            Some(Some(v)) => Ok(v),
            Some(None) => Err(Error::KeyError(key.to_value())),
            None => self.get_item_locked(key.to_value()),
        }
    }

    /// `d[key] = value`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key; `OutOfMemory` (the dict is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-insert-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// d.insert("b", vec![1, 2])?;
    /// d.insert("a", "replaced")?; // keeps its place
    /// assert_eq!(d.to_string(), "{'a': 'replaced', 'b': [1, 2]}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn insert(&self, key: impl Into<Value>, value: impl Into<Value>) -> Result<()> {
        let (key, value) = (key.into(), value.into());
        if self.set_fast(&key, &value) {
            discard_key(key);
            Value::discard(value);
            return Ok(());
        }
        self.insert_locked(key, value)
    }

    /// [`Self::insert`] with a borrowed key ([`KeyRef`]): replacing the scalar value of an
    /// existing short-str key with one of its kind allocates nothing. A new key is turned into
    /// a [`Value`] to be stored.
    ///
    /// # Errors
    /// As [`Self::insert`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-insertborrowed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// let key = String::from("a");
    /// d.insert_borrowed(&key, 2)?; // in place
    /// d.insert_borrowed("b", "new")?; // a new key
    /// assert_eq!(d.to_string(), "{'a': 2, 'b': 'new'}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn insert_borrowed(&self, key: impl KeyRef, value: impl Into<Value>) -> Result<()> {
        let value = value.into();
        if self.set_fast(&key, &value) {
            Value::discard(value);
            return Ok(());
        }
        self.insert_locked(key.to_value(), value)
    }

    /// A scalar value of an existing key replaced by one of its kind, in place under the lock
    /// if it is free: one store (see [`htable::set_value_fast`]). False, having changed
    /// nothing, when the general path must do it.
    #[inline(always)]
    fn set_fast(&self, key: &impl KeyRef, value: &Value) -> bool {
        let Some(new) = Cell::scalar(value).filter(Cell::is_word_scalar) else {
            return false;
        };
        let Some(k) = key.racy_key(&self.h.core) else {
            return false;
        };
        self.set_racy(&k, new)
    }

    /// [`Self::set_fast`] of a prepared key and cell, out of line: one call holds the whole
    /// write (lock, sequence, probe, store), whatever the key's type.
    #[inline(never)]
    fn set_racy(&self, k: &htable::RacyKey<'_>, new: Cell) -> bool {
        self.h
            .write_fast(|a, body| htable::set_value_fast(a, body, k, new))
            .is_some()
    }

    /// Removes `key`, returning its value, or None when it was missing.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("a", 1)])?;
    /// assert_eq!(d.remove("a")?, Some(Value::Int(1)));
    /// assert_eq!(d.remove("a")?, None);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn remove(&self, key: impl Into<Value>) -> Result<Option<Value>> {
        let key = key.into();
        self.with(|c| dict::remove(c, &key))
    }

    /// `d.pop(key)`.
    ///
    /// # Errors
    /// `KeyError(key)` when missing; `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-pop-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([("a", 1)])?;
    /// assert_eq!(d.pop("a")?, Value::Int(1));
    /// assert_eq!(d.pop("a"), Err(Error::KeyError(Value::from("a"))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn pop(&self, key: impl Into<Value>) -> Result<Value> {
        let key = key.into();
        self.with(|c| dict::pop(c, &key))
    }

    /// `d.popitem()`: removes and returns the most recently inserted pair.
    ///
    /// # Errors
    /// `KeyError('popitem(): dictionary is empty')`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-popitem-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([("a", 1), ("b", 2)])?;
    /// assert_eq!(d.popitem()?, (Value::from("b"), Value::Int(2))); // the last inserted
    /// d.popitem()?;
    /// assert_eq!(
    ///     d.popitem(),
    ///     Err(Error::KeyError(Value::from("popitem(): dictionary is empty")))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn popitem(&self) -> Result<(Value, Value)> {
        self.with(dict::popitem)
    }

    /// `key in d`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// assert!(d.contains("a")?);
    /// assert!(!d.contains("b")?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn contains(&self, key: impl Into<Value>) -> Result<bool> {
        let key = key.into();
        if let Some(found) = self.contains_fast(key.racy_key(&self.h.core)) {
            discard_key(key);
            return Ok(found);
        }
        self.contains_locked(key)
    }

    /// [`Self::contains`] with a borrowed key ([`KeyRef`]).
    ///
    /// # Errors
    /// As [`Self::contains`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-containsborrowed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// assert!(d.contains_borrowed("a")?);
    /// assert!(!d.contains_borrowed(&String::from("b"))?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn contains_borrowed(&self, key: impl KeyRef) -> Result<bool> {
        if let Some(found) = self.contains_fast(key.racy_key(&self.h.core)) {
            return Ok(found);
        }
        self.contains_locked(key.to_value())
    }

    #[inline(always)]
    fn contains_fast(&self, k: Option<htable::RacyKey<'_>>) -> Option<bool> {
        contains_racy(&self.h, htable::DICT, k)
    }

    /// The keys, in insertion order (a snapshot taken under one lock).
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-keys-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("b", 1), ("a", 2)])?;
    /// assert_eq!(d.keys()?, [Value::from("b"), Value::from("a")]); // insertion order
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<Value>> {
        self.with(dict::keys)
    }

    /// The values, in insertion order.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-values-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("b", 1), ("a", 2)])?;
    /// assert_eq!(d.values()?, [Value::Int(1), Value::Int(2)]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn values(&self) -> Result<Vec<Value>> {
        self.with(dict::values)
    }

    /// The (key, value) pairs, in insertion order.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-items-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("x", 1)])?;
    /// assert_eq!(d.items()?, [(Value::from("x"), Value::Int(1))]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn items(&self) -> Result<Vec<(Value, Value)>> {
        self.with(dict::items)
    }

    /// `d.update(pairs)`: sets each pair in order, under one lock.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key (the pairs before it stay set, as in Python);
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-update-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// d.update([("a", 10), ("b", 2)])?;
    /// assert_eq!(d.to_string(), "{'a': 10, 'b': 2}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn update<I, K, V>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Value>,
        V: Into<Value>,
    {
        let pairs: Vec<(Value, Value)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.with(|c| dict::update_pairs(c, pairs.iter().map(|(k, v)| (k, v)), pairs.len()))
    }

    /// `d.clear()`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-clear-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// d.clear()?;
    /// assert_eq!(d.len()?, 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.with(dict::clear)
    }

    /// `d.setdefault(key, default)`: the value of `key`, set to `default` first if missing.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key; `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-setdefault-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("a", 1)])?;
    /// assert_eq!(d.setdefault("a", 0)?, Value::Int(1)); // there: unchanged
    /// assert_eq!(d.setdefault("b", 0)?, Value::Int(0)); // missing: set
    /// assert_eq!(d.to_string(), "{'a': 1, 'b': 0}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn setdefault(&self, key: impl Into<Value>, default: impl Into<Value>) -> Result<Value> {
        let (key, default) = (key.into(), default.into());
        self.with(|c| dict::setdefault(c, &key, &default))
    }

    /// `d[key] += n` as one atomic step (under one lock acquisition, where CPython's proxy does a
    /// get and then a set): a missing key starts at 0; ints and floats mix as in Python. Returns
    /// the new value.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key or a value that is not a number; `ValueError` when an
    /// int sum overflows 64 bits (the dict is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-dictadd-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict(Vec::<(Value, Value)>::new())?;
    /// d.add("hits", 1)?;
    /// assert_eq!(d.add("hits", 2)?, Value::Int(3));
    /// assert_eq!(d.add("secs", 0.5)?, Value::Float(0.5));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn add(&self, key: impl Into<Value>, n: impl Into<Value>) -> Result<Value> {
        let (key, n) = (key.into(), n.into());
        self.with(|c| dict::add(c, &key, &n))
    }

    /// Runs `f` with the dict's lock held, so several operations form one atomic step.
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-dictlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("balance_a", 10), ("balance_b", 0)])?;
    /// d.with_lock(|v| {
    ///     let a = i64::try_from(v.get_item("balance_a")?)?;
    ///     v.insert("balance_a", a - 7)?;
    ///     v.add("balance_b", 7).map(|_| ())
    /// })?;
    /// assert_eq!(d.to_string(), "{'balance_a': 3, 'balance_b': 7}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut DictView<'_, '_>) -> Result<R>) -> Result<R> {
        self.with(|ctx| f(&mut DictView { ctx }))
    }
}

/// A dict seen under its lock, for several operations in one critical section
/// ([`DictProxy::with_lock`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictview-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let d = store.dict([("stock", 3)])?;
/// // Take one unit if there is any, with no other process in between.
/// let took = d.with_lock(|v| {
///     let n = i64::try_from(v.get_item("stock")?)?;
///     if n > 0 {
///         v.insert("stock", n - 1)?;
///     }
///     Ok(n > 0)
/// })?;
/// assert!(took);
/// assert_eq!(d.to_string(), "{'stock': 2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct DictView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl DictView<'_, '_> {
    /// `len(d)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-len-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// assert_eq!(d.with_lock(|v| v.len())?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn len(&mut self) -> Result<usize> {
        dict::len(self.ctx).map(|n| n as usize)
    }
    /// `len(d) == 0`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isempty-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict(Vec::<(Value, Value)>::new())?;
    /// // Seed the dict only if nobody has yet.
    /// d.with_lock(|v| if v.is_empty()? { v.insert("seed", 1) } else { Ok(()) })?;
    /// assert_eq!(d.len()?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_empty(&mut self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// `d.get(key)`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// // Copy "a" to "b" if "b" is missing.
    /// d.with_lock(|v| match v.get("b")? {
    ///     Some(_) => Ok(()),
    ///     None => {
    ///         let a = v.get_item("a")?;
    ///         v.insert("b", a)
    ///     }
    /// })?;
    /// assert_eq!(d.to_string(), "{'a': 1, 'b': 1}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn get(&mut self, key: impl Into<Value>) -> Result<Option<Value>> {
        dict::get(self.ctx, &key.into())
    }
    /// `d[key]`.
    ///
    /// # Errors
    /// `KeyError(key)`; `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-getitem-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let d = store.dict([("a", 1)])?;
    /// assert_eq!(d.with_lock(|v| v.get_item("a"))?, Value::Int(1));
    /// assert_eq!(d.with_lock(|v| v.get_item("b")), Err(Error::KeyError(Value::from("b"))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn get_item(&mut self, key: impl Into<Value>) -> Result<Value> {
        dict::get_item(self.ctx, &key.into())
    }
    /// `d[key] = value`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key; `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-insert-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("owner", "nobody")])?;
    /// // Rename a key in one step.
    /// d.with_lock(|v| {
    ///     let owner = v.get_item("owner")?;
    ///     v.remove("owner")?;
    ///     v.insert("holder", owner)
    /// })?;
    /// assert_eq!(d.to_string(), "{'holder': 'nobody'}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn insert(&mut self, key: impl Into<Value>, value: impl Into<Value>) -> Result<()> {
        dict::insert(self.ctx, &key.into(), &value.into())
    }
    /// Removes `key`; its value, or None when missing.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("job", 7)])?;
    /// // Claim the job: read and remove it together.
    /// let job = d.with_lock(|v| v.remove("job"))?;
    /// assert_eq!(job, Some(Value::Int(7)));
    /// assert!(d.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn remove(&mut self, key: impl Into<Value>) -> Result<Option<Value>> {
        dict::remove(self.ctx, &key.into())
    }
    /// `key in d`.
    ///
    /// # Errors
    /// `TypeError` for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let d = store.dict([("a", 1)])?;
    /// let fresh = d.with_lock(|v| {
    ///     let had = v.contains("b")?;
    ///     if !had {
    ///         v.insert("b", 2)?;
    ///     }
    ///     Ok(!had)
    /// })?;
    /// assert!(fresh);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn contains(&mut self, key: impl Into<Value>) -> Result<bool> {
        dict::contains(self.ctx, &key.into())
    }
    /// `d[key] += n` (a missing key starts at 0); the new value.
    ///
    /// # Errors
    /// As [`DictProxy::add`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-add-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("a", 1)])?;
    /// // Two counters moved together.
    /// d.with_lock(|v| {
    ///     v.add("a", -1)?;
    ///     v.add("b", 1)
    /// })?;
    /// assert_eq!(d.get("b")?, Some(Value::Int(1)));
    /// assert_eq!(d.to_string(), "{'a': 0, 'b': 1}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn add(&mut self, key: impl Into<Value>, n: impl Into<Value>) -> Result<Value> {
        dict::add(self.ctx, &key.into(), &n.into())
    }
    /// The (key, value) pairs, in insertion order.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-items-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([("a", 1), ("b", 2)])?;
    /// // Take everything out at once.
    /// let all = d.with_lock(|v| {
    ///     let items = v.items()?;
    ///     for (k, _) in &items {
    ///         v.remove(k.clone())?;
    ///     }
    ///     Ok(items)
    /// })?;
    /// assert_eq!(all.len(), 2);
    /// assert_eq!(all[0], (Value::from("a"), Value::Int(1)));
    /// assert!(d.is_empty()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn items(&mut self) -> Result<Vec<(Value, Value)>> {
        dict::items(self.ctx)
    }
}

impl Store {
    /// A new shared dict holding `pairs` (a later duplicate key overwrites the earlier value, as
    /// `dict(pairs)` does).
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")` for an unhashable key; `OutOfMemory`,
    /// `TableFull`; `StaleHandle`/`NotFound` for a proxy that is dead or of another store.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-dict-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let d = store.dict([(1, "one"), (2, "two")])?;
    /// assert_eq!(d.call_method("__getitem__", (2,))?, Value::from("two"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn dict<I, K, V>(&self, pairs: I) -> Result<DictProxy>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Value>,
        V: Into<Value>,
    {
        let pairs: Vec<(Value, Value)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let h = self.make(|core| dict::create(core, &pairs))?;
        Ok(DictProxy { h })
    }
}

/// The lock-free `contains` of a prepared key in a dict's or set's (`shape`) table on the
/// handle's pinned slot: `None` with no key to probe with, or when the lock must answer.
#[inline(always)]
pub(super) fn contains_racy(
    h: &Handle,
    shape: htable::Shape,
    k: Option<htable::RacyKey<'_>>,
) -> Option<bool> {
    let k = k?;
    h.read_optimistic(|a, body| htable::probe_racy(a, body, shape, &k))
        .map(|found| found.is_some())
}

/// Drops a key the fast path is done with: a `str` key's `String` freed directly, a scalar's
/// nothing ([`Value::discard`]), sparing the out-of-line drop of a `Value`.
#[inline(always)]
pub(super) fn discard_key(k: Value) {
    if let Value::Str(s) = k {
        drop(s);
    } else {
        k.discard();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::types::htable;

    /// A holder that dies mid-write (here: inside a delete, the entry unpublished but its index
    /// slot and counts not yet updated) leaves the sequence odd: lock-free reads give up, the
    /// next locked call repairs (closing the write), and reads are lock-free again.
    #[test]
    fn a_writer_dead_mid_write_sends_dict_readers_to_the_lock_until_repaired() {
        let name = format!("t{}-dict-dead-writer", std::process::id());
        let store = Store::create(&name, 1 << 20).unwrap();
        let d = store.dict((0..6i64).map(|i| (i, i * 10))).unwrap();
        let core = &d.h.core;
        let token = d.h.token;
        std::thread::scope(|s| {
            s.spawn(|| {
                let (guard, _) = core.table().lock(token.slot, None).unwrap();
                std::mem::forget(core.table().write_begin(token.slot).unwrap());
                // Half a delete of key 4: its entry's `live` flag cleared, nothing else.
                let a = core.arena();
                let body = core
                    .table()
                    .body(token.slot)
                    .unwrap()
                    .load(Ordering::Relaxed);
                let off = a.load_u64(body).unwrap();
                let log2 = a.load_u64(off).unwrap();
                let entries = off + 64 + 4 * (1 << log2);
                a.store_u64(entries + 4 * 48 + 8, 0).unwrap();
                std::mem::forget(guard); // the thread ends holding the lock, mid-write
            })
            .join()
            .unwrap();
        });
        let seq = core.table().seq(token.slot).unwrap();
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 1);
        let key = Value::Int(4);
        assert_eq!(dict::get_optimistic(core, &token, &key), None);
        assert_eq!(dict::len_optimistic(core, &token), None);
        // The locked path: OwnerDied, repaired from the entries (4 is gone, the count follows).
        assert_eq!(d.get(4).unwrap(), None);
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 0);
        assert_eq!(dict::len_optimistic(core, &token), Some(5));
        assert_eq!(
            dict::get_optimistic(core, &token, &Value::Int(5)),
            Some(Some(Value::Int(50)))
        );
        assert_eq!(dict::get_optimistic(core, &token, &key), Some(None));
        let k = htable::RacyKey::new(core, &key).unwrap();
        assert_eq!(
            dispatch::read_optimistic(core, &token, |a, b| htable::lookup_racy(
                a,
                b,
                htable::DICT,
                &k
            )),
            Some(None)
        );
        d.insert(4, 40).unwrap();
        assert_eq!(d.get(4).unwrap(), Some(Value::Int(40)));
        drop(d);
        drop(store);
        let _ = Store::remove(&name);
    }
}
