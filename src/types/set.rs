//! `set`: Python's set as a referent (CPython 3.14's `SyncManager.set`).
//!
//! Body and crash protocol: see [`super::htable`], the compact hash table this type shares with
//! `dict` (entries carry a key cell only).
//!
//! `Value` has no set variant, so a set travels as a `Value::List` of its elements in iteration
//! order (`copy`, `union`, `__iter__`, `get_value`, …), and wherever CPython wants a set operand
//! (`s | other`, `s <= other`) any iterable `Value` stands for one. Iteration order is insertion
//! order (CPython's is its hash order), and `pop` removes the most recently added element.
//!
//! # Examples
//! ```
//! # let name = format!("doc-set-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let s = store.set([1, 2])?;
//! s.call_method("add", (3,))?;
//! assert_eq!(s.call_method("__contains__", (3,))?, Value::Bool(true));
//! assert_eq!(s.call_method("issubset", (vec![1, 2, 3, 4],))?, Value::Bool(true));
//! assert_eq!(s.get_value()?, Value::from(vec![1, 2, 3])); // a list of the elements
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::collections::HashMap;

use super::dict::{no_args, no_kwargs, one_arg, slot_args};
use super::htable::{self, SET};
use super::{iter_arg, Ctx, Kwargs, Method, TypeDesc};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::token::{type_ids, Token};
use crate::value::Value;

macro_rules! methods {
    ($($name:literal => $f:ident),* $(,)?) => {
        &[$(Method { name: $name, call: $f }),*]
    };
}

/// The set type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::SET,
    typeid: "set",
    proxy: "SetProxy",
    methods: methods![
        "__and__" => m_and,
        "__contains__" => m_contains,
        "__ge__" => m_ge,
        "__gt__" => m_gt,
        "__iand__" => m_iand,
        "__ior__" => m_ior,
        "__isub__" => m_isub,
        "__iter__" => m_iter,
        "__ixor__" => m_ixor,
        "__le__" => m_le,
        "__len__" => m_len,
        "__lt__" => m_lt,
        "__or__" => m_or,
        "__rand__" => m_rand,
        "__repr__" => m_repr,
        "__ror__" => m_ror,
        "__rsub__" => m_rsub,
        "__rxor__" => m_rxor,
        "__str__" => m_repr,
        "__sub__" => m_sub,
        "__xor__" => m_xor,
        "add" => m_add,
        "clear" => m_clear,
        "copy" => m_copy,
        "difference" => m_difference,
        "difference_update" => m_difference_update,
        "discard" => m_discard,
        "intersection" => m_intersection,
        "intersection_update" => m_intersection_update,
        "isdisjoint" => m_isdisjoint,
        "issubset" => m_issubset,
        "issuperset" => m_issuperset,
        "pop" => m_pop,
        "remove" => m_remove,
        "symmetric_difference" => m_symmetric_difference,
        "symmetric_difference_update" => m_symmetric_difference_update,
        "union" => m_union,
        "update" => m_update,
    ],
    drop_body,
    repair,
    str: write_str,
    get_value: snapshot_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

// ---------------------------------------------------------------------------------------------
// A private set of values, for the algebra on snapshots.

/// An insertion-ordered set of values in this process, with Python's hashing and equality.
#[derive(Default)]
struct LocalSet {
    items: Vec<Option<Value>>,
    by_hash: HashMap<u64, Vec<usize>>,
    len: usize,
}

impl LocalSet {
    fn from_values(vals: impl IntoIterator<Item = Value>) -> Result<LocalSet> {
        let mut s = LocalSet::default();
        for v in vals {
            s.insert(v)?;
        }
        Ok(s)
    }

    fn position(&self, h: u64, v: &Value) -> Option<usize> {
        self.by_hash
            .get(&h)?
            .iter()
            .copied()
            .find(|&i| self.items.get(i).and_then(Option::as_ref) == Some(v))
    }

    fn contains(&self, v: &Value) -> Result<bool> {
        Ok(self.position(v.py_hash()?, v).is_some())
    }

    fn insert(&mut self, v: Value) -> Result<bool> {
        let h = v.py_hash()?;
        if self.position(h, &v).is_some() {
            return Ok(false);
        }
        self.by_hash.entry(h).or_default().push(self.items.len());
        self.items.push(Some(v));
        self.len += 1;
        Ok(true)
    }

    fn remove(&mut self, v: &Value) -> Result<bool> {
        match self.position(v.py_hash()?, v) {
            Some(i) => {
                if let Some(slot) = self.items.get_mut(i) {
                    *slot = None;
                }
                self.len -= 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn into_vec(self) -> Vec<Value> {
        self.items.into_iter().flatten().collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates a set holding `items` (duplicates collapse, the first one kept).
///
/// # Errors
/// `TypeError` for an unhashable item; `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for
/// a proxy of another store or a dead object.
///
/// # Examples
/// ```
/// # let name = format!("doc-setcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::set;
/// use shmstore::{SetProxy, Value};
/// let core = store.core();
/// let t = set::create(core, &[Value::Int(1), Value::Float(1.0), Value::Int(2)])?; // one reference: ours
/// let s = SetProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(s.to_string(), "{1, 2}"); // 1.0 == 1: the first one kept
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, items: &[Value]) -> Result<Token> {
    htable::create(core, SET, type_ids::SET, repair, |ctx| update(ctx, items))
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    htable::drop_body(ctx, SET)
}

fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    htable::repair(ctx, SET)
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    let core = ctx.core;
    let mut first = true;
    htable::for_each(ctx, SET, |k, at, _| {
        out.push_str(if first { "{" } else { ", " });
        first = false;
        crate::cell::load(core, &k, at)?.write_repr(out);
        Ok(())
    })?;
    out.push_str(if first { "set()" } else { "}" });
    Ok(())
}

fn snapshot_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    items(ctx).map(Value::List)
}

// ---------------------------------------------------------------------------------------------
// Typed operations (the proxy's typed methods call these directly).

/// `len(s)`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-setlen-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// let s = store.set([1, 2, 2, 3])?;
/// assert_eq!(with_object(store.core(), &s.token(), |ctx| set::len(ctx))?, 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len(ctx: &mut Ctx<'_>) -> Result<u64> {
    htable::len(ctx, SET)
}

/// `v in s`.
///
/// # Errors
/// `TypeError("unhashable type: 'list'")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-setcontains-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set(["a"])?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| set::contains(ctx, &Value::from("a")))?);
/// assert!(!with_object(core, &t, |ctx| set::contains(ctx, &Value::from("b")))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn contains(ctx: &mut Ctx<'_>, v: &Value) -> Result<bool> {
    Ok(htable::lookup(ctx, SET, v)?.is_some())
}

/// `s.add(v)`; true if `v` was new.
///
/// # Errors
/// `TypeError` for an unhashable value; `OutOfMemory`.
///
/// # Examples
/// ```
/// # let name = format!("doc-setadd-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1])?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| set::add(ctx, &Value::Int(2)))?);
/// assert!(!with_object(core, &t, |ctx| set::add(ctx, &Value::Int(2)))?); // already there
/// assert_eq!(s.len()?, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn add(ctx: &mut Ctx<'_>, v: &Value) -> Result<bool> {
    htable::set_item(ctx, SET, v, None)
}

/// `s.discard(v)`; true if `v` was there.
///
/// # Errors
/// `TypeError` for an unhashable value.
///
/// # Examples
/// ```
/// # let name = format!("doc-setdiscard-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| set::discard(ctx, &Value::Int(1)))?);
/// assert!(!with_object(core, &t, |ctx| set::discard(ctx, &Value::Int(1)))?); // no error
/// assert_eq!(s.to_string(), "{2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn discard(ctx: &mut Ctx<'_>, v: &Value) -> Result<bool> {
    let f = htable::find(ctx, SET, v)?;
    htable::remove(ctx, SET, &f)
}

/// `s.remove(v)`.
///
/// # Errors
/// `KeyError(v)`; `TypeError` for an unhashable value.
///
/// # Examples
/// ```
/// # let name = format!("doc-setremove-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::{Error, Value};
/// let s = store.set([1])?;
/// let (core, t) = (store.core(), s.token());
/// with_object(core, &t, |ctx| set::remove(ctx, &Value::Int(1)))?;
/// assert_eq!(
///     with_object(core, &t, |ctx| set::remove(ctx, &Value::Int(1))),
///     Err(Error::KeyError(Value::Int(1)))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn remove(ctx: &mut Ctx<'_>, v: &Value) -> Result<()> {
    if discard(ctx, v)? {
        Ok(())
    } else {
        Err(Error::KeyError(v.clone()))
    }
}

/// `s.pop()`: removes and returns the most recently added element.
///
/// # Errors
/// `KeyError('pop from an empty set')`.
///
/// # Examples
/// ```
/// # let name = format!("doc-setpop-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::{Error, Value};
/// let s = store.set(["a", "b"])?;
/// let (core, t) = (store.core(), s.token());
/// assert_eq!(with_object(core, &t, |ctx| set::pop(ctx))?, Value::from("b")); // the last added
/// with_object(core, &t, |ctx| set::pop(ctx))?;
/// assert!(matches!(with_object(core, &t, |ctx| set::pop(ctx)), Err(Error::KeyError(_)))); // empty
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn pop(ctx: &mut Ctx<'_>) -> Result<Value> {
    match htable::pop_last(ctx, SET)? {
        Some((k, _)) => Ok(k),
        None => Err(Error::KeyError(Value::from("pop from an empty set"))),
    }
}

/// `s.clear()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-setclear-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// let s = store.set([1, 2])?;
/// with_object(store.core(), &s.token(), |ctx| set::clear(ctx))?;
/// assert_eq!(s.len()?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn clear(ctx: &mut Ctx<'_>) -> Result<()> {
    htable::clear(ctx, SET)
}

/// Copies of the elements, in iteration order.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-setitems-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([3, 1, 2])?;
/// let items = with_object(store.core(), &s.token(), |ctx| set::items(ctx))?;
/// assert_eq!(items, vec![Value::Int(3), Value::Int(1), Value::Int(2)]); // insertion order
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn items(ctx: &mut Ctx<'_>) -> Result<Vec<Value>> {
    htable::keys(ctx, SET)
}

/// `s.update(items)`: adds each item in order.
///
/// # Errors
/// `TypeError` for an unhashable item (the items before it stay added, as in Python);
/// `OutOfMemory`.
///
/// # Examples
/// ```
/// # let name = format!("doc-setupdate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1])?;
/// with_object(store.core(), &s.token(), |ctx| set::update(ctx, &[Value::Int(1), Value::Int(2)]))?;
/// assert_eq!(s.to_string(), "{1, 2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn update(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<()> {
    let _w = htable::writing(ctx)?;
    if !items.is_empty() {
        htable::reserve(ctx, SET, items.len() as u64)?;
    }
    for v in items {
        add(ctx, v)?;
    }
    Ok(())
}

/// `s.difference_update(items)`: discards each item.
///
/// # Errors
/// `TypeError` for an unhashable item.
///
/// # Examples
/// ```
/// # let name = format!("doc-setdiffupdate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2, 3])?;
/// with_object(store.core(), &s.token(), |ctx| set::difference_update(ctx, &[Value::Int(2), Value::Int(9)]))?;
/// assert_eq!(s.to_string(), "{1, 3}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn difference_update(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<()> {
    let _w = htable::writing(ctx)?;
    for v in items {
        discard(ctx, v)?;
    }
    Ok(())
}

/// `s.intersection_update(items)`: keeps only the elements also in `items`.
///
/// # Errors
/// `TypeError` for an unhashable item (the set is unchanged).
///
/// # Examples
/// ```
/// # let name = format!("doc-setinterupdate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2, 3])?;
/// with_object(store.core(), &s.token(), |ctx| set::intersection_update(ctx, &[Value::Int(3), Value::Int(1)]))?;
/// assert_eq!(s.to_string(), "{1, 3}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn intersection_update(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<()> {
    let _w = htable::writing(ctx)?;
    let keep = LocalSet::from_values(items.iter().cloned())?;
    for v in self::items(ctx)? {
        if !keep.contains(&v)? {
            discard(ctx, &v)?;
        }
    }
    Ok(())
}

/// `s.symmetric_difference_update(items)`: elements in exactly one of the two.
///
/// # Errors
/// `TypeError` for an unhashable item (the set is unchanged); `OutOfMemory`.
///
/// # Examples
/// ```
/// # let name = format!("doc-setsymdiffupdate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// with_object(store.core(), &s.token(), |ctx| set::symmetric_difference_update(ctx, &[Value::Int(2), Value::Int(3)]))?;
/// assert_eq!(s.to_string(), "{1, 3}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn symmetric_difference_update(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<()> {
    let _w = htable::writing(ctx)?;
    let other = LocalSet::from_values(items.iter().cloned())?.into_vec();
    for v in &other {
        if !discard(ctx, v)? {
            add(ctx, v)?;
        }
    }
    Ok(())
}

/// `s.union(items)`.
///
/// # Errors
/// `TypeError` for an unhashable item.
///
/// # Examples
/// ```
/// # let name = format!("doc-setunion-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let u = with_object(store.core(), &s.token(), |ctx| set::union(ctx, &[Value::Int(2), Value::Int(3)]))?;
/// assert_eq!(u, vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
/// assert_eq!(s.len()?, 2); // the set is unchanged
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn union(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<Vec<Value>> {
    let mut r = LocalSet::from_values(self::items(ctx)?)?;
    for v in items {
        r.insert(v.clone())?;
    }
    Ok(r.into_vec())
}

/// `s.intersection(items)`: the items (in their order) that are in the set.
///
/// # Errors
/// `TypeError` for an unhashable item.
///
/// # Examples
/// ```
/// # let name = format!("doc-setinter-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2, 3])?;
/// let both = with_object(store.core(), &s.token(), |ctx| set::intersection(ctx, &[Value::Int(3), Value::Int(5), Value::Int(1)]))?;
/// assert_eq!(both, vec![Value::Int(3), Value::Int(1)]); // in the items' order
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn intersection(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<Vec<Value>> {
    let mut r = LocalSet::default();
    for v in items {
        if contains(ctx, v)? {
            r.insert(v.clone())?;
        }
    }
    Ok(r.into_vec())
}

/// `s.difference(items)`.
///
/// # Errors
/// `TypeError` for an unhashable item.
///
/// # Examples
/// ```
/// # let name = format!("doc-setdiff-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2, 3])?;
/// let d = with_object(store.core(), &s.token(), |ctx| set::difference(ctx, &[Value::Int(2)]))?;
/// assert_eq!(d, vec![Value::Int(1), Value::Int(3)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn difference(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<Vec<Value>> {
    let mut r = LocalSet::from_values(self::items(ctx)?)?;
    for v in items {
        r.remove(v)?;
    }
    Ok(r.into_vec())
}

/// `s.symmetric_difference(items)`.
///
/// # Errors
/// `TypeError` for an unhashable item.
///
/// # Examples
/// ```
/// # let name = format!("doc-setsymdiff-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let mut d = with_object(store.core(), &s.token(), |ctx| set::symmetric_difference(ctx, &[Value::Int(2), Value::Int(3)]))?;
/// d.sort_by_key(|v| v.as_int());
/// assert_eq!(d, vec![Value::Int(1), Value::Int(3)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn symmetric_difference(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<Vec<Value>> {
    let other = LocalSet::from_values(items.iter().cloned())?;
    let mut r = LocalSet::default();
    for v in self::items(ctx)? {
        if !other.contains(&v)? {
            r.insert(v)?;
        }
    }
    for v in other.into_vec() {
        if !contains(ctx, &v)? {
            r.insert(v)?;
        }
    }
    Ok(r.into_vec())
}

/// `s.issubset(items)`.
///
/// # Errors
/// `TypeError` for an unhashable item.
///
/// # Examples
/// ```
/// # let name = format!("doc-setissubset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let (core, t) = (store.core(), s.token());
/// let wide = [Value::Int(1), Value::Int(2), Value::Int(3)];
/// assert!(with_object(core, &t, |ctx| set::issubset(ctx, &wide))?);
/// assert!(!with_object(core, &t, |ctx| set::issubset(ctx, &wide[..1]))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn issubset(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<bool> {
    let other = LocalSet::from_values(items.iter().cloned())?;
    for v in self::items(ctx)? {
        if !other.contains(&v)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `s.issuperset(items)`.
///
/// # Errors
/// `TypeError` for an unhashable item met before a missing one.
///
/// # Examples
/// ```
/// # let name = format!("doc-setissuperset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| set::issuperset(ctx, &[Value::Int(2)]))?);
/// assert!(!with_object(core, &t, |ctx| set::issuperset(ctx, &[Value::Int(3)]))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn issuperset(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<bool> {
    for v in items {
        if !contains(ctx, v)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `s.isdisjoint(items)`.
///
/// # Errors
/// `TypeError` for an unhashable item met before a common one.
///
/// # Examples
/// ```
/// # let name = format!("doc-setisdisjoint-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::set;
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| set::isdisjoint(ctx, &[Value::Int(3)]))?);
/// assert!(!with_object(core, &t, |ctx| set::isdisjoint(ctx, &[Value::Int(3), Value::Int(1)]))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn isdisjoint(ctx: &mut Ctx<'_>, items: &[Value]) -> Result<bool> {
    for v in items {
        if contains(ctx, v)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The number of distinct items.
fn distinct(items: &[Value]) -> Result<usize> {
    Ok(LocalSet::from_values(items.iter().cloned())?.len)
}

// ---------------------------------------------------------------------------------------------
// Handlers (Python's names and argument rules).

/// The items of each positional argument of a varargs method (`union(*others)`).
fn others(method: &str, a: &[Value], k: Kwargs<'_>) -> Result<Vec<Vec<Value>>> {
    no_kwargs(method, k)?;
    a.iter().map(iter_arg).collect()
}

/// The one operand of an operator, or Python's `TypeError` for a non-iterable.
fn operand(wrapper: &str, op: &str, a: &[Value], k: Kwargs<'_>) -> Result<Vec<Value>> {
    match slot_args(wrapper, a, k, 1)? {
        [v] => iter_arg(v).map_err(|_| {
            Error::TypeError(format!(
                "unsupported operand type(s) for {op}: 'set' and '{}'",
                v.type_name()
            ))
        }),
        _ => Err(Error::TypeError("expected 1 argument".into())),
    }
}

/// The operand of a comparison.
fn compared(wrapper: &str, op: &str, a: &[Value], k: Kwargs<'_>) -> Result<Vec<Value>> {
    match slot_args(wrapper, a, k, 1)? {
        [v] => iter_arg(v).map_err(|_| {
            Error::TypeError(format!(
                "'{op}' not supported between instances of 'set' and '{}'",
                v.type_name()
            ))
        }),
        _ => Err(Error::TypeError("expected 1 argument".into())),
    }
}

fn list(v: Vec<Value>) -> Value {
    Value::List(v)
}

fn m_len(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    slot_args("__len__", a, k, 0)?;
    Ok(Value::Int(len(ctx)? as i64))
}

fn m_iter(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    slot_args("__iter__", a, k, 0)?;
    snapshot_value(ctx)
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    slot_args("__repr__", a, k, 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

fn m_contains(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    contains(ctx, one_arg("set.__contains__", a, k)?).map(Value::Bool)
}

fn m_add(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    add(ctx, one_arg("set.add", a, k)?)?;
    Ok(Value::None)
}

fn m_discard(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    discard(ctx, one_arg("set.discard", a, k)?)?;
    Ok(Value::None)
}

fn m_remove(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    remove(ctx, one_arg("set.remove", a, k)?)?;
    Ok(Value::None)
}

fn m_pop(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("set.pop", a, k)?;
    pop(ctx)
}

fn m_clear(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("set.clear", a, k)?;
    clear(ctx)?;
    Ok(Value::None)
}

fn m_copy(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("set.copy", a, k)?;
    snapshot_value(ctx)
}

fn m_union(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let all: Vec<Value> = others("union", a, k)?.concat();
    union(ctx, &all).map(list)
}

/// `s.intersection(*others)`; with no others, a copy.
fn intersection_multi(ctx: &mut Ctx<'_>, os: &[Vec<Value>]) -> Result<Vec<Value>> {
    let Some((first, rest)) = os.split_first() else {
        return items(ctx);
    };
    let mut r = intersection(ctx, first)?;
    for o in rest {
        let keep = LocalSet::from_values(o.iter().cloned())?;
        let mut next = Vec::new();
        for v in r {
            if keep.contains(&v)? {
                next.push(v);
            }
        }
        r = next;
    }
    Ok(r)
}

fn m_intersection(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let os = others("intersection", a, k)?;
    intersection_multi(ctx, &os).map(list)
}

fn m_difference(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let all: Vec<Value> = others("difference", a, k)?.concat();
    difference(ctx, &all).map(list)
}

fn m_symmetric_difference(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = iter_arg(one_arg("set.symmetric_difference", a, k)?)?;
    symmetric_difference(ctx, &o).map(list)
}

fn m_update(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_kwargs("update", k)?;
    for o in a {
        update(ctx, &iter_arg(o)?)?;
    }
    Ok(Value::None)
}

fn m_intersection_update(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let os = others("intersection_update", a, k)?;
    if !os.is_empty() {
        // Computed whole first, so an unhashable item leaves the set unchanged, as in Python.
        let keep = intersection_multi(ctx, &os)?;
        intersection_update(ctx, &keep)?;
    }
    Ok(Value::None)
}

fn m_difference_update(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_kwargs("difference_update", k)?;
    for o in a {
        difference_update(ctx, &iter_arg(o)?)?;
    }
    Ok(Value::None)
}

fn m_symmetric_difference_update(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = iter_arg(one_arg("set.symmetric_difference_update", a, k)?)?;
    symmetric_difference_update(ctx, &o)?;
    Ok(Value::None)
}

fn m_issubset(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = iter_arg(one_arg("set.issubset", a, k)?)?;
    issubset(ctx, &o).map(Value::Bool)
}

fn m_issuperset(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = iter_arg(one_arg("set.issuperset", a, k)?)?;
    issuperset(ctx, &o).map(Value::Bool)
}

fn m_isdisjoint(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = iter_arg(one_arg("set.isdisjoint", a, k)?)?;
    isdisjoint(ctx, &o).map(Value::Bool)
}

fn m_or(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = operand("__or__", "|", a, k)?;
    union(ctx, &o).map(list)
}

fn m_ror(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    m_or(ctx, a, k)
}

fn m_and(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = operand("__and__", "&", a, k)?;
    intersection(ctx, &o).map(list)
}

fn m_rand(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    m_and(ctx, a, k)
}

fn m_sub(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = operand("__sub__", "-", a, k)?;
    difference(ctx, &o).map(list)
}

fn m_rsub(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = operand("__rsub__", "-", a, k)?;
    let mut r = LocalSet::default();
    for v in o {
        if !contains(ctx, &v)? {
            r.insert(v)?;
        }
    }
    Ok(list(r.into_vec()))
}

fn m_xor(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = operand("__xor__", "^", a, k)?;
    symmetric_difference(ctx, &o).map(list)
}

fn m_rxor(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    m_xor(ctx, a, k)
}

fn m_ior(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    update(ctx, &operand("__ior__", "|=", a, k)?)?;
    snapshot_value(ctx)
}

fn m_iand(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    intersection_update(ctx, &operand("__iand__", "&=", a, k)?)?;
    snapshot_value(ctx)
}

fn m_isub(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    difference_update(ctx, &operand("__isub__", "-=", a, k)?)?;
    snapshot_value(ctx)
}

fn m_ixor(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    symmetric_difference_update(ctx, &operand("__ixor__", "^=", a, k)?)?;
    snapshot_value(ctx)
}

fn m_le(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = compared("__le__", "<=", a, k)?;
    issubset(ctx, &o).map(Value::Bool)
}

fn m_lt(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = compared("__lt__", "<", a, k)?;
    let proper = issubset(ctx, &o)? && len(ctx)? < distinct(&o)? as u64;
    Ok(Value::Bool(proper))
}

fn m_ge(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = compared("__ge__", ">=", a, k)?;
    distinct(&o)?;
    issuperset(ctx, &o).map(Value::Bool)
}

fn m_gt(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let o = compared("__gt__", ">", a, k)?;
    let proper = len(ctx)? > distinct(&o)? as u64 && issuperset(ctx, &o)?;
    Ok(Value::Bool(proper))
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

    #[test]
    fn local_set_follows_python_equality() {
        let mut s = LocalSet::from_values([1.into(), 1.0.into(), true.into(), "a".into()]).unwrap();
        assert_eq!(s.len, 2);
        assert!(s.contains(&Value::from(1.0)).unwrap());
        assert!(s.remove(&Value::from(true)).unwrap());
        assert_eq!(Value::List(s.into_vec()).repr(), "['a']");
    }
}
