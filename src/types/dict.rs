//! `dict`: Python's dict as a referent — insertion-ordered, keyed by any hashable `Value`.
//!
//! Body and crash protocol: see [`super::htable`], the compact hash table this type shares with
//! `set` (entries carry a key cell and a value cell).
//!
//! # Examples
//! ```
//! # let name = format!("doc-dict-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let d = store.dict([("a", 1)])?;
//! d.call_method("__setitem__", ("b", 2))?;
//! assert_eq!(d.call_method("get", ("z", 0))?, Value::Int(0));
//! assert_eq!(d.call_method("pop", ("a",))?, Value::Int(1));
//! assert_eq!(d.call_method("__len__", ())?, Value::Int(1));
//! # Ok::<(), shmstore::Error>(())
//! ```

use super::htable::{self, DICT};
use super::{iter_arg, Ctx, Kwargs, Method, TypeDesc};
use crate::core::Core;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::token::{type_ids, Token};
use crate::value::Value;

/// The dict type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::DICT,
    typeid: "dict",
    proxy: "DictProxy",
    methods: &[
        Method {
            name: "__contains__",
            call: m_contains,
        },
        Method {
            name: "__delitem__",
            call: m_delitem,
        },
        Method {
            name: "__getitem__",
            call: m_getitem,
        },
        Method {
            name: "__ior__",
            call: m_ior,
        },
        Method {
            name: "__iter__",
            call: m_iter,
        },
        Method {
            name: "__len__",
            call: m_len,
        },
        Method {
            name: "__or__",
            call: m_or,
        },
        Method {
            name: "__repr__",
            call: m_repr,
        },
        Method {
            name: "__reversed__",
            call: m_reversed,
        },
        Method {
            name: "__ror__",
            call: m_ror,
        },
        Method {
            name: "__setitem__",
            call: m_setitem,
        },
        Method {
            name: "__str__",
            call: m_repr,
        },
        Method {
            name: "clear",
            call: m_clear,
        },
        Method {
            name: "copy",
            call: m_copy,
        },
        Method {
            name: "fromkeys",
            call: m_fromkeys,
        },
        Method {
            name: "get",
            call: m_get,
        },
        Method {
            name: "items",
            call: m_items,
        },
        Method {
            name: "keys",
            call: m_keys,
        },
        Method {
            name: "pop",
            call: m_pop,
        },
        Method {
            name: "popitem",
            call: m_popitem,
        },
        Method {
            name: "setdefault",
            call: m_setdefault,
        },
        Method {
            name: "update",
            call: m_update,
        },
        Method {
            name: "values",
            call: m_values,
        },
    ],
    drop_body,
    repair,
    str: write_str,
    get_value: snapshot_value,
    lockless: false,
    hooks: FAST_HOOKS,
};

/// The fast hooks of [`DESC`], as a constant for the typed proxy's `call_method` (see
/// [`FastHooks`](super::FastHooks)).
pub const FAST_HOOKS: super::FastHooks = super::FastHooks {
    read: Some(fast_read),
    write: Some(fast_write),
    fixed: None,
};

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates a dict holding `pairs` (a later duplicate key overwrites the earlier value, keeping
/// the first position, as `dict(pairs)` does).
///
/// # Errors
/// `TypeError` for an unhashable key; `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for
/// a proxy of another store or a dead object.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictcreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict;
/// use shmstore::{DictProxy, Value};
/// let core = store.core();
/// let pairs = [(Value::from("a"), Value::Int(1)), (Value::from("a"), Value::Int(2))];
/// let t = dict::create(core, &pairs)?; // one reference: ours
/// let d = DictProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(d.to_string(), "{'a': 2}"); // the later duplicate wins
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, pairs: &[(Value, Value)]) -> Result<Token> {
    htable::create(core, DICT, type_ids::DICT, repair, |ctx| {
        update_pairs(ctx, pairs.iter().map(|(k, v)| (k, v)), pairs.len())
    })
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    htable::drop_body(ctx, DICT)
}

fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    htable::repair(ctx, DICT)
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    out.push('{');
    let mut first = true;
    let core = ctx.core;
    htable::for_each(ctx, DICT, |k, kat, v| {
        if !first {
            out.push_str(", ");
        }
        first = false;
        crate::cell::load(core, &k, kat)?.write_repr(out);
        out.push_str(": ");
        match v {
            Some((c, at)) => crate::cell::load(core, &c, at)?.write_repr(out),
            None => out.push_str("None"),
        }
        Ok(())
    })?;
    out.push('}');
    Ok(())
}

fn snapshot_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    htable::items(ctx).map(Value::Dict)
}

// ---------------------------------------------------------------------------------------------
// Lock-free reads (see `htable::lookup_racy`): every mutation runs inside a write on the slot's
// sequence, so an optimistic read sees the dict before a write or after it, never in between.

/// `d.get(key)` answered without the lock when it can be: `Some(Some(v))` for a key present
/// whose value is stored inline (a scalar), `Some(None)` for a key absent, `None` when the
/// locked path must answer (a key or value stored in a block, a write under way, damage).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictgetopt-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict::get_optimistic;
/// use shmstore::Value;
/// let d = store.dict([(Value::Int(1), Value::from("one")), (Value::Int(2), Value::from(vec![2]))])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(get_optimistic(core, &t, &Value::Bool(true)), Some(Some(Value::from("one")))); // True == 1
/// assert_eq!(get_optimistic(core, &t, &Value::Int(3)), Some(None)); // absent
/// assert_eq!(get_optimistic(core, &t, &Value::Int(2)), None); // a list value: the lock reads it
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_optimistic(core: &Core, token: &Token, key: &Value) -> Option<Option<Value>> {
    get_racy(core, token, &htable::RacyKey::new(core, key)?)
}

/// [`get_optimistic`] of a prepared key (the typed proxy prepares it inline, so an int key is
/// never built into anything that needs a drop).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictgetracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::{dict::get_racy, htable::RacyKey};
/// use shmstore::Value;
/// let d = store.dict([(1, 10)])?;
/// let (core, t) = (store.core(), d.token());
/// let one = Value::Int(1);
/// assert_eq!(get_racy(core, &t, &RacyKey::new(core, &one).unwrap()), Some(Some(Value::Int(10))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn get_racy(core: &Core, token: &Token, k: &htable::RacyKey<'_>) -> Option<Option<Value>> {
    match dispatch::read_optimistic(core, token, |a, body| htable::lookup_racy(a, body, DICT, k))? {
        // An int value, the common case, without the general decoding's match.
        Some(c) => match c.exact_int() {
            Some(i) => Some(Some(Value::Int(i))),
            None => c.inline_value().map(Some),
        },
        None => Some(None),
    }
}

/// `d[key] = value` done in place under a lock that was free (see
/// [`htable::set_value_fast`]): `Some(())` when done, `None`, having changed nothing, when the
/// general path must do it (a new key, a value of another kind, blocks, a busy lock).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictsetfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict::set_fast;
/// use shmstore::Value;
/// let d = store.dict([("k", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(set_fast(core, &t, &Value::from("k"), &Value::Int(2)), Some(()));
/// assert_eq!(set_fast(core, &t, &Value::from("new"), &Value::Int(2)), None); // an insert
/// assert_eq!(set_fast(core, &t, &Value::from("k"), &Value::from("str")), None); // another kind
/// assert_eq!(d.get("k")?, Some(Value::Int(2)));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set_fast(core: &Core, token: &Token, key: &Value, value: &Value) -> Option<()> {
    let new = crate::cell::Cell::scalar(value)?;
    if !new.is_word_scalar() {
        return None;
    }
    set_racy(core, token, &htable::RacyKey::new(core, key)?, new)
}

/// [`set_fast`] of a prepared key and the new value's cell (None, a bool, an int or a float;
/// anything else declines).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictsetracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::Cell;
/// use shmstore::types::{dict::set_racy, htable::RacyKey};
/// use shmstore::Value;
/// let d = store.dict([(1, 10)])?;
/// let (core, t) = (store.core(), d.token());
/// let (one, new) = (Value::Int(1), Cell::scalar(&Value::Int(11)).unwrap());
/// assert_eq!(set_racy(core, &t, &RacyKey::new(core, &one).unwrap(), new), Some(()));
/// assert_eq!(d.get(1)?, Some(Value::Int(11)));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn set_racy(
    core: &Core,
    token: &Token,
    k: &htable::RacyKey<'_>,
    new: crate::cell::Cell,
) -> Option<()> {
    dispatch::write_fast(core, token, |a, body| {
        htable::set_value_fast(a, body, k, new)
    })
}

const M_SETITEM: usize = super::method_idx(DESC.methods, "__setitem__");

/// `call_method`'s in-place writes (see `FastHooks::write`): `__setitem__(key, value)`
/// replacing a scalar value of an existing key with one of the same kind ([`set_fast`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictfastwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict::{fast_write, DESC};
/// use shmstore::Value;
/// let d = store.dict([(1, 1.5)])?;
/// let (core, t) = (store.core(), d.token());
/// let setitem = DESC.method_index("__setitem__").unwrap();
/// let args = [Value::Int(1), Value::Float(2.5)];
/// assert_eq!(fast_write(core, &t, setitem, &args), Some(Value::None));
/// assert_eq!(d.get(1)?, Some(Value::Float(2.5)));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn fast_write(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_SETITEM, [key, value]) => {
            set_fast(core, token, key, value)?;
            Some(Value::None)
        }
        _ => None,
    }
}

/// `key in d` answered without the lock when it can be (`None`: the locked path answers).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictcontainsopt-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict::contains_optimistic;
/// use shmstore::Value;
/// let d = store.dict([("k", vec![1, 2, 3])])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(contains_optimistic(core, &t, &Value::from("k")), Some(true)); // any value
/// assert_eq!(contains_optimistic(core, &t, &Value::from("j")), Some(false));
/// assert_eq!(contains_optimistic(core, &t, &Value::from("a key too long for a cell")), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn contains_optimistic(core: &Core, token: &Token, key: &Value) -> Option<bool> {
    contains_racy(core, token, &htable::RacyKey::new(core, key)?)
}

/// [`contains_optimistic`] of a prepared key.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictcontainsracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::{dict::contains_racy, htable::RacyKey};
/// use shmstore::Value;
/// let d = store.dict([("k", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// let k = Value::from("k");
/// assert_eq!(contains_racy(core, &t, &RacyKey::new(core, &k).unwrap()), Some(true));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn contains_racy(core: &Core, token: &Token, k: &htable::RacyKey<'_>) -> Option<bool> {
    dispatch::read_optimistic(core, token, |a, body| {
        htable::probe_racy(a, body, DICT, k).map(|found| found.is_some())
    })
}

/// `len(d)` read without the lock (`None`: the locked path answers).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictlenopt-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict::len_optimistic;
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// assert_eq!(len_optimistic(store.core(), &d.token()), Some(2));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len_optimistic(core: &Core, token: &Token) -> Option<u64> {
    dispatch::read_optimistic(core, token, |a, body| htable::len_racy(a, body, DICT))
}

const M_LEN: usize = super::method_idx(DESC.methods, "__len__");
const M_GETITEM: usize = super::method_idx(DESC.methods, "__getitem__");
const M_CONTAINS: usize = super::method_idx(DESC.methods, "__contains__");
const M_GET: usize = super::method_idx(DESC.methods, "get");

/// `call_method`'s lock-free reads (see `FastHooks::read`): `__len__()`, and `get`,
/// `__getitem__` and `__contains__` of a key stored inline (for `get` and `__getitem__`, with
/// a value stored inline). A missing key in `__getitem__` is left to the locked path, which
/// raises the `KeyError`.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictfastread-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::dict::{fast_read, DESC};
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// let get = DESC.method_index("get").unwrap();
/// assert_eq!(fast_read(core, &t, get, &["a".into()]), Some(Value::Int(1)));
/// assert_eq!(fast_read(core, &t, get, &["z".into(), 0.into()]), Some(Value::Int(0)));
/// let getitem = DESC.method_index("__getitem__").unwrap();
/// assert_eq!(fast_read(core, &t, getitem, &["z".into()]), None); // KeyError: locked path
/// let pop = DESC.method_index("pop").unwrap();
/// assert_eq!(fast_read(core, &t, pop, &["a".into()]), None); // not a read
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn fast_read(core: &Core, token: &Token, method: usize, args: &[Value]) -> Option<Value> {
    match (method, args) {
        (M_LEN, []) => Some(Value::Int(
            i64::try_from(len_optimistic(core, token)?).ok()?,
        )),
        (M_GET, [key]) => Some(get_optimistic(core, token, key)?.unwrap_or(Value::None)),
        (M_GET, [key, default]) => {
            Some(get_optimistic(core, token, key)?.unwrap_or_else(|| default.clone()))
        }
        (M_GETITEM, [key]) => get_optimistic(core, token, key)?,
        (M_CONTAINS, [key]) => contains_optimistic(core, token, key).map(Value::Bool),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Typed operations (the proxy's typed methods call these directly).

/// `len(d)`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictlen-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// assert_eq!(with_object(store.core(), &d.token(), |ctx| dict::len(ctx))?, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len(ctx: &mut Ctx<'_>) -> Result<u64> {
    htable::len(ctx, DICT)
}

/// `d.get(key)`: the value, or None when the key is missing.
///
/// # Errors
/// `TypeError("unhashable type: 'list'")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictget-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(with_object(core, &t, |ctx| dict::get(ctx, &Value::from("a")))?, Some(Value::Int(1)));
/// assert_eq!(with_object(core, &t, |ctx| dict::get(ctx, &Value::from("z")))?, None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get(ctx: &mut Ctx<'_>, key: &Value) -> Result<Option<Value>> {
    match htable::lookup(ctx, DICT, key)? {
        Some((c, at)) => crate::cell::load(ctx.core, &c, at).map(Some),
        None => Ok(None),
    }
}

/// `d[key]`.
///
/// # Errors
/// `KeyError(key)`; `TypeError` for an unhashable key.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictgetitem-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::{Error, Value};
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(with_object(core, &t, |ctx| dict::get_item(ctx, &Value::from("a")))?, Value::Int(1));
/// assert_eq!(
///     with_object(core, &t, |ctx| dict::get_item(ctx, &Value::from("z"))),
///     Err(Error::KeyError(Value::from("z")))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn get_item(ctx: &mut Ctx<'_>, key: &Value) -> Result<Value> {
    get(ctx, key)?.ok_or_else(|| Error::KeyError(key.clone()))
}

/// `key in d`.
///
/// # Errors
/// `TypeError` for an unhashable key.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictcontains-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([(1, "one")])?;
/// let (core, t) = (store.core(), d.token());
/// assert!(with_object(core, &t, |ctx| dict::contains(ctx, &Value::Float(1.0)))?); // 1.0 == 1
/// assert!(!with_object(core, &t, |ctx| dict::contains(ctx, &Value::Int(2)))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn contains(ctx: &mut Ctx<'_>, key: &Value) -> Result<bool> {
    Ok(htable::lookup(ctx, DICT, key)?.is_some())
}

/// `d[key] = value`.
///
/// # Errors
/// `TypeError` for an unhashable key; `OutOfMemory` (the dict is unchanged).
///
/// # Examples
/// ```
/// # let name = format!("doc-dictinsert-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// with_object(store.core(), &d.token(), |ctx| {
///     dict::insert(ctx, &Value::from("a"), &Value::Int(10))?; // replaces
///     dict::insert(ctx, &Value::from("b"), &Value::Int(2)) // adds
/// })?;
/// assert_eq!(d.to_string(), "{'a': 10, 'b': 2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn insert(ctx: &mut Ctx<'_>, key: &Value, value: &Value) -> Result<()> {
    htable::set_item(ctx, DICT, key, Some(value)).map(|_| ())
}

/// Removes `key`; its value, or None when it was missing.
///
/// # Errors
/// `TypeError` for an unhashable key.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictremove-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(with_object(core, &t, |ctx| dict::remove(ctx, &Value::from("a")))?, Some(Value::Int(1)));
/// assert_eq!(with_object(core, &t, |ctx| dict::remove(ctx, &Value::from("a")))?, None);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn remove(ctx: &mut Ctx<'_>, key: &Value) -> Result<Option<Value>> {
    let f = htable::find(ctx, DICT, key)?;
    Ok(htable::take(ctx, DICT, &f)?.and_then(|(_, v)| v))
}

/// `d.pop(key)`.
///
/// # Errors
/// `KeyError(key)`; `TypeError` for an unhashable key.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictpop-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::{Error, Value};
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(with_object(core, &t, |ctx| dict::pop(ctx, &Value::from("a")))?, Value::Int(1));
/// assert!(matches!(with_object(core, &t, |ctx| dict::pop(ctx, &Value::from("a"))), Err(Error::KeyError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn pop(ctx: &mut Ctx<'_>, key: &Value) -> Result<Value> {
    remove(ctx, key)?.ok_or_else(|| Error::KeyError(key.clone()))
}

/// `del d[key]`.
///
/// # Errors
/// `KeyError(key)`; `TypeError` for an unhashable key.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictdelitem-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// with_object(store.core(), &d.token(), |ctx| dict::del_item(ctx, &Value::from("a")))?;
/// assert_eq!(d.to_string(), "{'b': 2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn del_item(ctx: &mut Ctx<'_>, key: &Value) -> Result<()> {
    let f = htable::find(ctx, DICT, key)?;
    if htable::remove(ctx, DICT, &f)? {
        Ok(())
    } else {
        Err(Error::KeyError(key.clone()))
    }
}

/// `d.popitem()`: the most recently inserted pair.
///
/// # Errors
/// `KeyError('popitem(): dictionary is empty')`.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictpopitem-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::{Error, Value};
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// let (core, t) = (store.core(), d.token());
/// assert_eq!(with_object(core, &t, |ctx| dict::popitem(ctx))?, (Value::from("b"), Value::Int(2)));
/// with_object(core, &t, |ctx| dict::popitem(ctx))?;
/// assert!(matches!(with_object(core, &t, |ctx| dict::popitem(ctx)), Err(Error::KeyError(_)))); // empty
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn popitem(ctx: &mut Ctx<'_>) -> Result<(Value, Value)> {
    match htable::pop_last(ctx, DICT)? {
        Some((k, v)) => Ok((k, v.unwrap_or(Value::None))),
        None => Err(Error::KeyError(Value::from(
            "popitem(): dictionary is empty",
        ))),
    }
}

/// `d.setdefault(key, default)`: the value of `key`, inserting `default` first if missing.
///
/// # Errors
/// `TypeError` for an unhashable key; `OutOfMemory`.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictsetdefault-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// let (a, b, zero) = (Value::from("a"), Value::from("b"), Value::Int(0));
/// assert_eq!(with_object(core, &t, |ctx| dict::setdefault(ctx, &a, &zero))?, Value::Int(1));
/// assert_eq!(with_object(core, &t, |ctx| dict::setdefault(ctx, &b, &zero))?, Value::Int(0));
/// assert_eq!(d.to_string(), "{'a': 1, 'b': 0}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn setdefault(ctx: &mut Ctx<'_>, key: &Value, default: &Value) -> Result<Value> {
    let f = htable::find(ctx, DICT, key)?;
    if let Some(v) = htable::value(ctx, &f)? {
        return Ok(v);
    }
    htable::insert(ctx, DICT, &f, key, Some(default))?;
    Ok(default.clone())
}

/// Sets each (key, value) in order (`size_hint` pairs, for one resize up front).
///
/// # Errors
/// `TypeError` for an unhashable key (pairs before it stay set, as in Python); `OutOfMemory`.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictupdatepairs-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict::<_, i64, i64>([])?;
/// let keys: Vec<Value> = (0..100).map(Value::Int).collect();
/// let squares: Vec<Value> = (0..100).map(|i| Value::Int(i * i)).collect();
/// with_object(store.core(), &d.token(), |ctx| {
///     dict::update_pairs(ctx, keys.iter().zip(&squares), keys.len()) // one resize up front
/// })?;
/// assert_eq!(d.len()?, 100);
/// assert_eq!(d.get(9)?, Some(Value::Int(81)));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn update_pairs<'v>(
    ctx: &mut Ctx<'_>,
    pairs: impl IntoIterator<Item = (&'v Value, &'v Value)>,
    size_hint: usize,
) -> Result<()> {
    // One write around every insert: an optimistic reader sees the update whole or not at all.
    let _w = htable::writing(ctx)?;
    if size_hint > 0 {
        htable::reserve(ctx, DICT, size_hint as u64)?;
    }
    for (k, v) in pairs {
        insert(ctx, k, v)?;
    }
    Ok(())
}

/// The (key, value) pair of element `i` of an `update` argument.
fn pair_of(i: usize, item: &Value) -> Result<(Value, Value)> {
    let kv = iter_arg(item).map_err(|_| {
        Error::TypeError(format!(
            "cannot convert dictionary update sequence element #{i} to a sequence"
        ))
    })?;
    <[Value; 2]>::try_from(kv)
        .map(|[k, v]| (k, v))
        .map_err(|kv| {
            Error::ValueError(format!(
                "dictionary update sequence element #{i} has length {}; 2 is required",
                kv.len()
            ))
        })
}

/// `d.update(other)` for a dict or an iterable of 2-item iterables; pairs are set one by one,
/// so those before a bad element stay set, as in Python.
///
/// # Errors
/// Python's `TypeError`/`ValueError` for a non-iterable or an element of the wrong length;
/// `TypeError` for an unhashable key; `OutOfMemory`.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictupdatefrom-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// let pairs = Value::List(vec![Value::Tuple(vec![Value::from("b"), Value::Int(2)])]);
/// with_object(core, &t, |ctx| dict::update_from(ctx, &pairs))?;
/// assert_eq!(d.to_string(), "{'a': 1, 'b': 2}");
/// // An element that is not a pair: those before it stay set.
/// let bad = Value::List(vec![Value::Tuple(vec![Value::from("c"), Value::Int(3)]), Value::Int(4)]);
/// assert!(with_object(core, &t, |ctx| dict::update_from(ctx, &bad)).is_err());
/// assert_eq!(d.len()?, 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn update_from(ctx: &mut Ctx<'_>, other: &Value) -> Result<()> {
    let _w = htable::writing(ctx)?;
    if let Value::Dict(kv) = other {
        return update_pairs(ctx, kv.iter().map(|(k, v)| (k, v)), kv.len());
    }
    let items = iter_arg(other)?;
    htable::reserve(ctx, DICT, items.len() as u64)?;
    for (i, item) in items.iter().enumerate() {
        let (k, v) = pair_of(i, item)?;
        insert(ctx, &k, &v)?;
    }
    Ok(())
}

/// Copies of the keys, in insertion order.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictkeys-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("b", 1), ("a", 2)])?;
/// let keys = with_object(store.core(), &d.token(), |ctx| dict::keys(ctx))?;
/// assert_eq!(keys, vec![Value::from("b"), Value::from("a")]); // insertion order
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn keys(ctx: &mut Ctx<'_>) -> Result<Vec<Value>> {
    htable::keys(ctx, DICT)
}

/// Copies of the values, in insertion order.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictvalues-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("b", 1), ("a", 2)])?;
/// let values = with_object(store.core(), &d.token(), |ctx| dict::values(ctx))?;
/// assert_eq!(values, vec![Value::Int(1), Value::Int(2)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn values(ctx: &mut Ctx<'_>) -> Result<Vec<Value>> {
    htable::values(ctx)
}

/// Copies of the (key, value) pairs, in insertion order.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictitems-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict([("k", 1)])?;
/// let items = with_object(store.core(), &d.token(), |ctx| dict::items(ctx))?;
/// assert_eq!(items, vec![(Value::from("k"), Value::Int(1))]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn items(ctx: &mut Ctx<'_>) -> Result<Vec<(Value, Value)>> {
    htable::items(ctx)
}

/// `d.clear()`.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-dictclear-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// with_object(store.core(), &d.token(), |ctx| dict::clear(ctx))?;
/// assert!(d.is_empty()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn clear(ctx: &mut Ctx<'_>) -> Result<()> {
    htable::clear(ctx, DICT)
}

/// Python's `a + b` for numbers (`bool`, `int`, `float`).
///
/// # Errors
/// `TypeError` for a non-number; `ValueError` when an int sum overflows 64 bits.
///
/// # Examples
/// ```
/// use shmstore::types::dict::num_add;
/// use shmstore::{Error, Value};
/// assert_eq!(num_add(&Value::Int(1), &Value::Float(0.5))?, Value::Float(1.5));
/// assert_eq!(num_add(&Value::Bool(true), &Value::Int(1))?, Value::Int(2));
/// assert!(matches!(num_add(&Value::Int(i64::MAX), &Value::Int(1)), Err(Error::ValueError(_))));
/// assert!(matches!(num_add(&Value::from("a"), &Value::Int(1)), Err(Error::TypeError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn num_add(a: &Value, b: &Value) -> Result<Value> {
    match (a, b) {
        (Value::Int(_) | Value::Bool(_), Value::Int(_) | Value::Bool(_)) => {
            let (x, y) = (a.as_int().unwrap_or(0), b.as_int().unwrap_or(0));
            x.checked_add(y).map(Value::Int).ok_or_else(|| {
                Error::ValueError(format!(
                    "integer overflow: {x} + {y} does not fit in 64 bits"
                ))
            })
        }
        (
            Value::Float(_) | Value::Int(_) | Value::Bool(_),
            Value::Float(_) | Value::Int(_) | Value::Bool(_),
        ) => Ok(Value::Float(
            a.as_float().unwrap_or(0.0) + b.as_float().unwrap_or(0.0),
        )),
        _ => Err(Error::TypeError(format!(
            "unsupported operand type(s) for +: '{}' and '{}'",
            a.type_name(),
            b.type_name()
        ))),
    }
}

/// `d[key] += n` as one step: a missing key starts at 0. Returns the new value.
///
/// # Errors
/// `TypeError` for an unhashable key or a value that is not a number; `ValueError` on int
/// overflow (the dict is unchanged).
///
/// # Examples
/// ```
/// # let name = format!("doc-dicttypedadd-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::dict;
/// use shmstore::Value;
/// let d = store.dict::<_, &str, i64>([])?;
/// let (core, t) = (store.core(), d.token());
/// let word = Value::from("the");
/// with_object(core, &t, |ctx| dict::add(ctx, &word, &Value::Int(1)))?; // missing: starts at 0
/// assert_eq!(with_object(core, &t, |ctx| dict::add(ctx, &word, &Value::Int(1)))?, Value::Int(2));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn add(ctx: &mut Ctx<'_>, key: &Value, n: &Value) -> Result<Value> {
    let f = htable::find(ctx, DICT, key)?;
    match htable::value(ctx, &f)? {
        Some(cur) => {
            let new = num_add(&cur, n)?;
            htable::replace_value(ctx, &f, &new)?;
            Ok(new)
        }
        None => {
            let new = num_add(&Value::Int(0), n)?;
            htable::insert(ctx, DICT, &f, key, Some(&new))?;
            Ok(new)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Argument rules of CPython's dict methods (shared with `set`).

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A METH_NOARGS method: `dict.keys() takes no arguments (1 given)`.
pub(super) fn no_args(method: &str, a: &[Value], k: Kwargs<'_>) -> Result<()> {
    if !a.is_empty() {
        return Err(Error::TypeError(format!(
            "{method}() takes no arguments ({} given)",
            a.len()
        )));
    }
    no_kwargs(method, k)
}

/// `dict.get() takes no keyword arguments`.
pub(super) fn no_kwargs(method: &str, k: Kwargs<'_>) -> Result<()> {
    if k.is_empty() {
        Ok(())
    } else {
        Err(Error::TypeError(format!(
            "{method}() takes no keyword arguments"
        )))
    }
}

/// A METH_O method: `dict.__getitem__() takes exactly one argument (0 given)`.
pub(super) fn one_arg<'v>(method: &str, a: &'v [Value], k: Kwargs<'_>) -> Result<&'v Value> {
    no_kwargs(method, k)?;
    match a {
        [v] => Ok(v),
        _ => Err(Error::TypeError(format!(
            "{method}() takes exactly one argument ({} given)",
            a.len()
        ))),
    }
}

/// A slot wrapper (`__len__`, `__setitem__`, `__or__`, …): `expected 1 argument, got 0`.
pub(super) fn slot_args<'v>(
    wrapper: &str,
    a: &'v [Value],
    k: Kwargs<'_>,
    n: usize,
) -> Result<&'v [Value]> {
    if !k.is_empty() {
        return Err(Error::TypeError(format!(
            "wrapper {wrapper}() takes no keyword arguments"
        )));
    }
    if a.len() != n {
        // CPython's own message has an empty function name before " expected" for two.
        let lead = if n == 2 { " " } else { "" };
        return Err(Error::TypeError(format!(
            "{lead}expected {n} argument{}, got {}",
            plural(n),
            a.len()
        )));
    }
    Ok(a)
}

/// Positional-only arguments, `min..=max` of them: `get expected at least 1 argument, got 0`.
pub(super) fn pos_args<'v>(
    short: &str,
    method: &str,
    a: &'v [Value],
    k: Kwargs<'_>,
    min: usize,
    max: usize,
) -> Result<&'v [Value]> {
    no_kwargs(method, k)?;
    if a.len() < min {
        return Err(Error::TypeError(format!(
            "{short} expected at least {min} argument{}, got {}",
            plural(min),
            a.len()
        )));
    }
    if a.len() > max {
        return Err(Error::TypeError(format!(
            "{short} expected at most {max} argument{}, got {}",
            plural(max),
            a.len()
        )));
    }
    Ok(a)
}

// ---------------------------------------------------------------------------------------------
// Handlers (Python's names and argument rules).

fn m_len(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    slot_args("__len__", a, k, 0)?;
    Ok(Value::Int(len(ctx)? as i64))
}

fn m_getitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    get_item(ctx, one_arg("dict.__getitem__", a, k)?)
}

fn m_contains(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    contains(ctx, one_arg("dict.__contains__", a, k)?).map(Value::Bool)
}

fn m_setitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match slot_args("__setitem__", a, k, 2)? {
        [key, v] => insert(ctx, key, v)?,
        _ => return Err(Error::TypeError("expected 2 arguments".into())),
    }
    Ok(Value::None)
}

fn m_delitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match slot_args("__delitem__", a, k, 1)? {
        [key] => del_item(ctx, key)?,
        _ => return Err(Error::TypeError("expected 1 argument".into())),
    }
    Ok(Value::None)
}

fn m_iter(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    slot_args("__iter__", a, k, 0)?;
    keys(ctx).map(Value::List)
}

fn m_reversed(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.__reversed__", a, k)?;
    let mut ks = keys(ctx)?;
    ks.reverse();
    Ok(Value::List(ks))
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    slot_args("__repr__", a, k, 0)?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
}

fn or_operand<'v>(
    a: &'v [Value],
    k: Kwargs<'_>,
    wrapper: &str,
) -> Result<Option<&'v [(Value, Value)]>> {
    match slot_args(wrapper, a, k, 1)? {
        [Value::Dict(kv)] => Ok(Some(kv)),
        _ => Ok(None),
    }
}

fn m_or(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match or_operand(a, k, "__or__")? {
        Some(kv) => {
            let mut all = items(ctx)?;
            all.extend(kv.iter().cloned());
            Value::dict_from_pairs(all)
        }
        None => Err(Error::TypeError(format!(
            "unsupported operand type(s) for |: 'dict' and '{}'",
            a.first().map_or("NoneType", Value::type_name)
        ))),
    }
}

fn m_ror(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match or_operand(a, k, "__ror__")? {
        Some(kv) => {
            let mut all = kv.to_vec();
            all.extend(items(ctx)?);
            Value::dict_from_pairs(all)
        }
        None => Err(Error::TypeError(format!(
            "unsupported operand type(s) for |: '{}' and 'dict'",
            a.first().map_or("NoneType", Value::type_name)
        ))),
    }
}

fn m_ior(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    if let [other] = slot_args("__ior__", a, k, 1)? {
        update_from(ctx, other)?;
    }
    snapshot_value(ctx)
}

fn m_clear(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.clear", a, k)?;
    clear(ctx)?;
    Ok(Value::None)
}

fn m_copy(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.copy", a, k)?;
    snapshot_value(ctx)
}

fn m_fromkeys(_ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let a = pos_args("fromkeys", "dict.fromkeys", a, k, 1, 2)?;
    let (keys, v) = match a {
        [ks] => (ks, &Value::None),
        [ks, v] => (ks, v),
        _ => {
            return Err(Error::TypeError(
                "fromkeys expected 1 or 2 arguments".into(),
            ))
        }
    };
    let keys = iter_arg(keys)?;
    Value::dict_from_pairs(keys.into_iter().map(|key| (key, v.clone())))
}

fn m_get(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match pos_args("get", "dict.get", a, k, 1, 2)? {
        [key] => Ok(get(ctx, key)?.unwrap_or(Value::None)),
        [key, default] => Ok(get(ctx, key)?.unwrap_or_else(|| default.clone())),
        _ => Err(Error::TypeError("get expected 1 or 2 arguments".into())),
    }
}

fn m_items(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.items", a, k)?;
    Ok(Value::List(
        items(ctx)?
            .into_iter()
            .map(|(k, v)| Value::Tuple(vec![k, v]))
            .collect(),
    ))
}

fn m_keys(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.keys", a, k)?;
    keys(ctx).map(Value::List)
}

fn m_values(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.values", a, k)?;
    values(ctx).map(Value::List)
}

fn m_pop(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match pos_args("pop", "dict.pop", a, k, 1, 2)? {
        [key] => pop(ctx, key),
        [key, default] => Ok(remove(ctx, key)?.unwrap_or_else(|| default.clone())),
        _ => Err(Error::TypeError("pop expected 1 or 2 arguments".into())),
    }
}

fn m_popitem(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    no_args("dict.popitem", a, k)?;
    let (key, v) = popitem(ctx)?;
    Ok(Value::Tuple(vec![key, v]))
}

fn m_setdefault(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    match pos_args("setdefault", "dict.setdefault", a, k, 1, 2)? {
        [key] => setdefault(ctx, key, &Value::None),
        [key, default] => setdefault(ctx, key, default),
        _ => Err(Error::TypeError(
            "setdefault expected 1 or 2 arguments".into(),
        )),
    }
}

fn m_update(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    if a.len() > 1 {
        return Err(Error::TypeError(format!(
            "update expected at most 1 argument, got {}",
            a.len()
        )));
    }
    let _w = htable::writing(ctx)?;
    if let Some(other) = a.first() {
        update_from(ctx, other)?;
    }
    for (key, v) in k {
        insert(ctx, &Value::from(*key), v)?;
    }
    Ok(Value::None)
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
    fn numbers_add_as_in_python() {
        let add = |a: Value, b: Value| num_add(&a, &b).map(|v| v.repr());
        assert_eq!(add(1.into(), 2.into()), Ok("3".into()));
        assert_eq!(add(true.into(), true.into()), Ok("2".into()));
        assert_eq!(add(1.into(), 0.5.into()), Ok("1.5".into()));
        assert_eq!(add(0.5.into(), 1.into()), Ok("1.5".into()));
        assert!(matches!(
            add(i64::MAX.into(), 1.into()),
            Err(Error::ValueError(_))
        ));
        assert_eq!(
            add("a".into(), 1.into()),
            Err(Error::TypeError(
                "unsupported operand type(s) for +: 'str' and 'int'".into()
            ))
        );
    }
}
