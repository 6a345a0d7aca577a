//! `Namespace`: CPython's `SyncManager.Namespace()`, attributes set, read and deleted by name
//! (`__setattr__`, `__getattribute__`, `__delattr__`); `str` as CPython's
//! `Namespace(a=1, b='x')` — the `name=repr` items sorted, names starting with `_` left out.
//!
//! Body: a [`NamespaceBody`] (count, capacity, offset of the attribute array) and an array of
//! `cap` [`Attr`]s, the first `len` in use, in insertion order. An attribute is its name cell
//! and two value cells, of which `current` is the value.
//!
//! Crash protocol (the holder of the object's lock may die at any instruction):
//! - replacing an attribute's value writes the cell that is not current, publishes it with one
//!   store of `current`, then releases the old cell: a crash leaves the old value or the new one
//!   (and at worst a leaked block).
//! - adding an attribute writes the whole [`Attr`] past the end, then publishes it with one store
//!   of `len`; growth copies into a new array and publishes it as the list does (offset, then
//!   capacity, then length), then frees the old array.
//! - deleting an attribute builds the new array in a fresh block and publishes it the same way,
//!   then releases the removed name and value.
//!
//! # Examples
//! ```
//! # let name = format!("doc-namespace-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::Value;
//! let ns = store.namespace()?;
//! ns.call_method("__setattr__", ("_hidden", 1))?;
//! ns.call_method("__setattr__", ("shown", 2))?;
//! assert_eq!(ns.to_string(), "Namespace(shown=2)"); // names starting with _ are left out
//! assert_eq!(ns.call_method("__getattribute__", ("_hidden",))?, Value::Int(1));
//! # Ok::<(), shmstore::Error>(())
//! ```

use bytemuck::{Pod, Zeroable};

use super::pyargs;
use super::{Ctx, Kwargs, Method, TypeDesc};
use crate::arena::Offset;
use crate::cell::{self, Cell};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::token::{type_ids, Token};
use crate::value::Value;

/// The fixed part of a namespace's body.
///
/// # Examples
/// ```
/// # let name = format!("doc-namespacebod-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::namespace::NamespaceBody;
/// let p = store.namespace_with([("a", 1), ("b", 2)])?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: NamespaceBody = raw.read(Offset::new(body))?;
/// assert_eq!(b.len, 2);
/// assert!(b.cap >= 2 && b.attrs != 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct NamespaceBody {
    /// Attributes in use.
    pub len: u64,
    /// Attributes the array has room for.
    pub cap: u64,
    /// Offset of the attribute array (0 when `cap` is 0).
    pub attrs: u64,
    /// Reserved; zero.
    pub reserved: u64,
}
const _: () = assert!(size_of::<NamespaceBody>() == 32);

/// One attribute.
///
/// # Examples
/// ```
/// # let name = format!("doc-attr-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::cell::Cell;
/// use shmstore::types::namespace::{Attr, NamespaceBody};
/// use shmstore::Value;
/// let p = store.namespace_with([("x", 5)])?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: NamespaceBody = raw.read(Offset::new(body))?;
/// let a: Attr = raw.read(Offset::new(b.attrs))?;
/// assert_eq!(a.name, Cell::scalar(&Value::from("x")).unwrap());
/// assert_eq!(a.values[a.current as usize].as_int(), Some(5));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Attr {
    /// The name (a `str`).
    pub name: Cell,
    /// The value's two cells; `current` says which is the value.
    pub values: [Cell; 2],
    /// 0 or 1.
    pub current: u64,
    /// Reserved; zero.
    pub reserved: u64,
}
const _: () = assert!(size_of::<Attr>() == 64);

const ATTR: u64 = size_of::<Attr>() as u64;
const VALUES_OFF: u64 = 16;
const CURRENT_OFF: u64 = 48;

/// The namespace type.
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::NAMESPACE,
    typeid: "Namespace",
    proxy: "NamespaceProxy",
    methods: &[
        Method {
            name: "__delattr__",
            call: m_delattr,
        },
        Method {
            name: "__getattribute__",
            call: m_getattribute,
        },
        Method {
            name: "__repr__",
            call: m_repr,
        },
        Method {
            name: "__setattr__",
            call: m_setattr,
        },
        Method {
            name: "__str__",
            call: m_repr,
        },
    ],
    drop_body,
    repair,
    str: write_str,
    get_value: snapshot_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

// ---------------------------------------------------------------------------------------------
// Raw access.

fn body(ctx: &Ctx<'_>) -> Result<NamespaceBody> {
    let b: NamespaceBody = ctx.core.arena().read(Offset::new(ctx.body))?;
    if b.len > b.cap {
        return Err(Error::corrupt(
            "namespace length exceeds capacity",
            ctx.body,
        ));
    }
    if b.cap > 0 {
        let bytes = b
            .cap
            .checked_mul(ATTR)
            .ok_or(Error::corrupt("namespace capacity overflows", ctx.body))?;
        ctx.core.arena().check(b.attrs, bytes, 8)?;
    }
    Ok(b)
}

#[inline]
fn attr_off(b: &NamespaceBody, i: u64) -> u64 {
    b.attrs + i * ATTR
}

fn read_attr(ctx: &Ctx<'_>, b: &NamespaceBody, i: u64) -> Result<Attr> {
    let a: Attr = ctx.core.arena().read(Offset::new(attr_off(b, i)))?;
    if a.current > 1 {
        return Err(Error::corrupt(
            "namespace: bad current index",
            attr_off(b, i),
        ));
    }
    Ok(a)
}

fn attrs(ctx: &Ctx<'_>, b: &NamespaceBody) -> Result<Vec<Attr>> {
    (0..b.len).map(|i| read_attr(ctx, b, i)).collect()
}

fn value_cell(a: &Attr) -> Cell {
    a.values[a.current as usize & 1]
}

fn load_value(ctx: &Ctx<'_>, b: &NamespaceBody, i: u64, a: &Attr) -> Result<Value> {
    let at = attr_off(b, i) + VALUES_OFF + a.current * cell::CELL_SIZE as u64;
    cell::load(ctx.core, &value_cell(a), at)
}

fn load_name(ctx: &Ctx<'_>, b: &NamespaceBody, i: u64, a: &Attr) -> Result<String> {
    match cell::load(ctx.core, &a.name, attr_off(b, i))? {
        Value::Str(s) => Ok(s),
        _ => Err(Error::corrupt(
            "namespace: name is not a str",
            attr_off(b, i),
        )),
    }
}

/// The index of attribute `name`, if present. Names of up to 14 bytes compare without a copy.
fn find(ctx: &Ctx<'_>, b: &NamespaceBody, name: &str) -> Result<Option<(u64, Attr)>> {
    for i in 0..b.len {
        let a = read_attr(ctx, b, i)?;
        if cell::eq_str(ctx.core, &a.name, attr_off(b, i), name)? {
            return Ok(Some((i, a)));
        }
    }
    Ok(None)
}

/// Publishes a new attribute array: offset first, then capacity (never larger than the array),
/// then length.
fn publish(ctx: &Ctx<'_>, arr: u64, cap: u64, len: u64) -> Result<()> {
    let a = ctx.core.arena();
    a.store_u64(ctx.body + 8, cap.min(a.load_u64(ctx.body + 8)?))?;
    a.store_u64(ctx.body + 16, arr)?;
    a.store_u64(ctx.body + 8, cap)?;
    a.store_u64(ctx.body, len)
}

fn missing(name: &str) -> Error {
    Error::AttributeError(format!("'Namespace' object has no attribute '{name}'"))
}

// ---------------------------------------------------------------------------------------------
// Creation and the type's hooks.

/// Creates a namespace with `attrs` (in order; a repeated name keeps its last value).
///
/// # Errors
/// `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for a dead or foreign proxy value.
///
/// # Examples
/// ```
/// # let name = format!("doc-nscreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::namespace;
/// use shmstore::{NamespaceProxy, Value};
/// let core = store.core();
/// let attrs = [("x".to_string(), Value::Int(1)), ("x".to_string(), Value::Int(2))];
/// let t = namespace::create(core, &attrs)?; // one reference: ours
/// let ns = NamespaceProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(ns.get("x")?, Value::Int(2)); // the last value kept
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(core: &Core, attrs: &[(String, Value)]) -> Result<Token> {
    let body = core.alloc(size_of::<NamespaceBody>() as u64)?;
    core.arena()
        .write(Offset::new(body), NamespaceBody::zeroed())?;
    let token = core
        .create_object(type_ids::NAMESPACE, body)
        .inspect_err(|_| {
            let _ = core.free(body);
        })?;
    if attrs.is_empty() {
        return Ok(token);
    }
    // Fill it through the ordinary path, under its lock (nobody else can name it yet).
    let filled = crate::dispatch::with_object(core, &token, |ctx| {
        for (k, v) in attrs {
            set(ctx, k, v)?;
        }
        Ok(())
    });
    match filled {
        Ok(()) => Ok(token),
        Err(e) => {
            crate::dispatch::release(core, &token);
            Err(e)
        }
    }
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    for a in attrs(ctx, &b)? {
        cell::release(ctx.core, &a.name, &mut ctx.released)?;
        cell::release(ctx.core, &value_cell(&a), &mut ctx.released)?;
    }
    if b.cap > 0 {
        ctx.core.free(b.attrs)?;
    }
    ctx.core.free(ctx.body)
}

/// Every mutation publishes with single stores, so a body that passes the checks is valid.
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    let b = body(ctx)?;
    attrs(ctx, &b).map(|_| ())
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    let mut items = Vec::new();
    for (name, v) in get_all(ctx)? {
        if !name.starts_with('_') {
            items.push(format!("{name}={}", v.repr()));
        }
    }
    items.sort();
    out.push_str("Namespace(");
    out.push_str(&items.join(", "));
    out.push(')');
    Ok(())
}

fn snapshot_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    Ok(Value::Dict(
        get_all(ctx)?
            .into_iter()
            .map(|(k, v)| (Value::Str(k), v))
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Typed operations.

/// `getattr(ns, name)`.
///
/// # Errors
/// `AttributeError("'Namespace' object has no attribute 'x'")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-nsget-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::namespace;
/// use shmstore::{Error, Value};
/// let ns = store.namespace_with([("x", 1)])?;
/// let (core, t) = (store.core(), ns.token());
/// assert_eq!(with_object(core, &t, |ctx| namespace::get(ctx, "x"))?, Value::Int(1));
/// assert_eq!(
///     with_object(core, &t, |ctx| namespace::get(ctx, "y")),
///     Err(Error::AttributeError("'Namespace' object has no attribute 'y'".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn get(ctx: &mut Ctx<'_>, name: &str) -> Result<Value> {
    let b = body(ctx)?;
    match find(ctx, &b, name)? {
        Some((i, a)) => load_value(ctx, &b, i, &a),
        None => Err(missing(name)),
    }
}

/// `setattr(ns, name, v)`.
///
/// # Errors
/// `OutOfMemory` (the namespace is unchanged).
///
/// # Examples
/// ```
/// # let name = format!("doc-nsset-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::namespace;
/// use shmstore::Value;
/// let ns = store.namespace()?;
/// with_object(store.core(), &ns.token(), |ctx| namespace::set(ctx, "done", &Value::Bool(true)))?;
/// assert_eq!(ns.get("done")?, Value::Bool(true));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn set(ctx: &mut Ctx<'_>, name: &str, v: &Value) -> Result<()> {
    let mut b = body(ctx)?;
    if let Some((i, a)) = find(ctx, &b, name)? {
        let next = 1 - a.current;
        let at = attr_off(&b, i);
        let new = cell::store(ctx.core, v)?;
        ctx.core.arena().write(
            Offset::new(at + VALUES_OFF + next * cell::CELL_SIZE as u64),
            new,
        )?;
        ctx.core.arena().store_u64(at + CURRENT_OFF, next)?;
        let old = value_cell(&a);
        if old.owns_resources() {
            cell::release(ctx.core, &old, &mut ctx.released)?;
        }
        return Ok(());
    }
    let name_cell = cell::store(ctx.core, &Value::Str(name.to_owned()))?;
    let value = match cell::store(ctx.core, v) {
        Ok(c) => c,
        Err(e) => {
            cell::release(ctx.core, &name_cell, &mut ctx.released)?;
            return Err(e);
        }
    };
    if b.len == b.cap {
        if let Err(e) = grow(ctx, &mut b) {
            cell::release(ctx.core, &name_cell, &mut ctx.released)?;
            cell::release(ctx.core, &value, &mut ctx.released)?;
            return Err(e);
        }
    }
    ctx.core.arena().write(
        Offset::new(attr_off(&b, b.len)),
        Attr {
            name: name_cell,
            values: [value, Cell::default()],
            current: 0,
            reserved: 0,
        },
    )?;
    ctx.core.arena().store_u64(ctx.body, b.len + 1)
}

fn grow(ctx: &Ctx<'_>, b: &mut NamespaceBody) -> Result<()> {
    let cap = (b.cap * 2).max(4);
    let off = ctx.core.alloc(cap * ATTR)?;
    if b.len > 0 {
        ctx.core.arena().copy_within(b.attrs, off, b.len * ATTR)?;
    }
    let old = (b.cap > 0).then_some(b.attrs);
    publish(ctx, off, cap, b.len)?;
    if let Some(old) = old {
        ctx.core.free(old)?;
    }
    b.attrs = off;
    b.cap = cap;
    Ok(())
}

/// `delattr(ns, name)`.
///
/// # Errors
/// `AttributeError("'Namespace' object has no attribute 'x'")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-nsdel-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::namespace;
/// let ns = store.namespace_with([("x", 1), ("y", 2)])?;
/// let (core, t) = (store.core(), ns.token());
/// with_object(core, &t, |ctx| namespace::del(ctx, "x"))?;
/// assert!(!ns.contains("x")?);
/// assert!(with_object(core, &t, |ctx| namespace::del(ctx, "x")).is_err()); // gone
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn del(ctx: &mut Ctx<'_>, name: &str) -> Result<()> {
    let b = body(ctx)?;
    let Some((at, gone)) = find(ctx, &b, name)? else {
        return Err(missing(name));
    };
    let kept: Vec<Attr> = attrs(ctx, &b)?
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i as u64 != at)
        .map(|(_, a)| a)
        .collect();
    let n = kept.len() as u64;
    let (off, cap) = if n == 0 {
        (0, 0)
    } else {
        let off = ctx.core.alloc(n * ATTR)?;
        ctx.core.arena().copy_in(off, bytemuck::cast_slice(&kept))?;
        (off, n)
    };
    publish(ctx, off, cap, n)?;
    if b.cap > 0 {
        ctx.core.free(b.attrs)?;
    }
    cell::release(ctx.core, &gone.name, &mut ctx.released)?;
    cell::release(ctx.core, &value_cell(&gone), &mut ctx.released)
}

/// Every attribute, in insertion order.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-nsgetall-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::namespace;
/// use shmstore::Value;
/// let ns = store.namespace_with([("b", 1), ("a", 2)])?;
/// let all = with_object(store.core(), &ns.token(), |ctx| namespace::get_all(ctx))?;
/// assert_eq!(all, vec![("b".to_string(), Value::Int(1)), ("a".to_string(), Value::Int(2))]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn get_all(ctx: &mut Ctx<'_>) -> Result<Vec<(String, Value)>> {
    let b = body(ctx)?;
    let mut out = Vec::with_capacity(b.len as usize);
    for i in 0..b.len {
        let a = read_attr(ctx, &b, i)?;
        out.push((load_name(ctx, &b, i, &a)?, load_value(ctx, &b, i, &a)?));
    }
    Ok(out)
}

/// True if attribute `name` is set.
///
/// # Errors
/// `Corrupt` only.
///
/// # Examples
/// ```
/// # let name = format!("doc-nscontains-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::namespace;
/// let ns = store.namespace_with([("x", 1)])?;
/// let (core, t) = (store.core(), ns.token());
/// assert!(with_object(core, &t, |ctx| namespace::contains(ctx, "x"))?);
/// assert!(!with_object(core, &t, |ctx| namespace::contains(ctx, "y"))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn contains(ctx: &mut Ctx<'_>, name: &str) -> Result<bool> {
    let b = body(ctx)?;
    Ok(find(ctx, &b, name)?.is_some())
}

// ---------------------------------------------------------------------------------------------
// Handlers (`object`'s slot wrappers; `__repr__` is a Python method of `Namespace`).

fn m_getattribute(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [name] = pyargs::wrapper("__getattribute__", a, k)?;
    get(ctx, pyargs::attr_name(name)?)
}

fn m_setattr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [name, v] = pyargs::wrapper("__setattr__", a, k)?;
    set(ctx, pyargs::attr_name(name)?, v)?;
    Ok(Value::None)
}

fn m_delattr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    let [name] = pyargs::wrapper("__delattr__", a, k)?;
    del(ctx, pyargs::attr_name(name)?)?;
    Ok(Value::None)
}

fn m_repr(ctx: &mut Ctx<'_>, a: &[Value], k: Kwargs<'_>) -> Result<Value> {
    pyargs::function::<0>("Namespace.__repr__", a, k, [])?;
    let mut s = String::new();
    write_str(ctx, &mut s)?;
    Ok(Value::Str(s))
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
}
