//! `NamespaceProxy`: attributes by name, and the `Store::namespace` factories.

use std::sync::Arc;

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::{namespace, Ctx};
use crate::value::Value;

/// A proxy of a shared `Namespace` (CPython's `NamespaceProxy`): attributes set, read and
/// deleted by name — typed [`get`](Self::get), [`set`](Self::set), [`del`](Self::del), or
/// `call_method("__getattribute__", ("x",))` and friends as CPython's proxy calls them.
///
/// # Examples
/// ```
/// # let name = format!("doc-namespacepro-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let ns = store.namespace()?;
/// ns.set("status", "running")?;
/// ns.set("done", 0)?;
/// assert_eq!(ns.to_string(), "Namespace(done=0, status='running')");
/// ns.del("status")?;
/// assert!(!ns.contains("status")?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct NamespaceProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::NAMESPACE; NamespaceProxy {
    tag: "ns",
    new: r#"store.namespace_with([("x", 1)])?"#,
    call: ("__getattribute__", r#"("x",)"#, r#"[Value::from("x")]"# => "Value::Int(1)"),
    kw: r#"assert_eq!(
    p.call_method_kw("__setattr__", ("y", 2), &[("z", Value::Int(3))]),
    Err(shmstore::Error::TypeError("wrapper __setattr__() takes no keyword arguments".into()))
);"#,
    value: r#"Value::dict_from_pairs([("x", 1)])?"#,
    str: r#"assert_eq!(p.to_str()?, "Namespace(x=1)");"#,
    typeid: "Namespace",
});

impl From<NamespaceProxy> for Proxy {
    fn from(p: NamespaceProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for NamespaceProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<NamespaceProxy> {
        Ok(NamespaceProxy {
            h: p.into_handle_of(type_ids::NAMESPACE)?,
        })
    }
}

impl NamespaceProxy {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `ns.name`.
    ///
    /// # Errors
    /// `AttributeError("'Namespace' object has no attribute 'x'")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let ns = store.namespace_with([("x", 1)])?;
    /// assert_eq!(ns.get("x")?, Value::Int(1));
    /// assert_eq!(
    ///     ns.get("y"),
    ///     Err(Error::AttributeError("'Namespace' object has no attribute 'y'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self, name: &str) -> Result<Value> {
        self.with(|c| namespace::get(c, name))
    }

    /// `ns.name = v`.
    ///
    /// # Errors
    /// `OutOfMemory` (the namespace is unchanged).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let ns = store.namespace()?;
    /// ns.set("x", 1)?;
    /// ns.set("x", "one")?;
    /// assert_eq!(ns.get("x")?, Value::from("one"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, name: &str, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| namespace::set(c, name, &v))
    }

    /// `del ns.name`.
    ///
    /// # Errors
    /// `AttributeError("'Namespace' object has no attribute 'x'")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-del-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let ns = store.namespace_with([("x", 1)])?;
    /// ns.del("x")?;
    /// assert_eq!(
    ///     ns.del("x"),
    ///     Err(Error::AttributeError("'Namespace' object has no attribute 'x'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn del(&self, name: &str) -> Result<()> {
        self.with(|c| namespace::del(c, name))
    }

    /// `hasattr(ns, name)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ns = store.namespace_with([("x", 1)])?;
    /// assert!(ns.contains("x")?);
    /// assert!(!ns.contains("y")?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn contains(&self, name: &str) -> Result<bool> {
        self.with(|c| namespace::contains(c, name))
    }

    /// Every attribute with its value, in the order they were first set (`vars(ns)`).
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-attrs-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let ns = store.namespace()?;
    /// ns.set("b", 2)?;
    /// ns.set("a", 1)?;
    /// assert_eq!(
    ///     ns.attrs()?,
    ///     [("b".to_string(), Value::Int(2)), ("a".to_string(), Value::Int(1))]
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn attrs(&self) -> Result<Vec<(String, Value)>> {
        self.with(namespace::get_all)
    }

    /// Runs `f` with the namespace's lock held: several operations as one atomic step.
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-nslock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ns = store.namespace()?;
    /// ns.set("hits", 1)?;
    /// ns.with_lock(|n| {
    ///     let h = i64::try_from(n.get("hits")?)?;
    ///     n.set("hits", h + 1)
    /// })?;
    /// assert_eq!(ns.to_string(), "Namespace(hits=2)");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(
        &self,
        f: impl FnOnce(&mut NamespaceView<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        self.with(|ctx| f(&mut NamespaceView { ctx }))
    }
}

/// A namespace seen under its lock ([`NamespaceProxy::with_lock`]).
///
/// # Examples
/// ```
/// # let name = format!("doc-namespacevie-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let ns = store.namespace_with([("lo", 1), ("hi", 9)])?;
/// // Read two attributes consistently and narrow the range, as one step.
/// ns.with_lock(|n| {
///     let lo = i64::try_from(n.get("lo")?)?;
///     let hi = i64::try_from(n.get("hi")?)?;
///     n.set("lo", (lo + hi) / 2)
/// })?;
/// assert_eq!(ns.to_string(), "Namespace(hi=9, lo=5)");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct NamespaceView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl NamespaceView<'_, '_> {
    /// `ns.name`.
    ///
    /// # Errors
    /// `AttributeError`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let ns = store.namespace_with([("x", 1)])?;
    /// assert_eq!(ns.with_lock(|n| n.get("x"))?, Value::Int(1));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn get(&mut self, name: &str) -> Result<Value> {
        namespace::get(self.ctx, name)
    }
    /// `ns.name = v`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ns = store.namespace()?;
    /// ns.with_lock(|n| {
    ///     n.set("a", 1)?;
    ///     n.set("b", 2)
    /// })?;
    /// assert_eq!(ns.to_string(), "Namespace(a=1, b=2)");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn set(&mut self, name: &str, v: impl Into<Value>) -> Result<()> {
        namespace::set(self.ctx, name, &v.into())
    }
    /// `del ns.name`.
    ///
    /// # Errors
    /// `AttributeError`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-del-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ns = store.namespace_with([("lease", "worker-1")])?;
    /// // Give up the lease only if it is ours.
    /// let released = ns.with_lock(|n| {
    ///     let ours = n.get("lease")? == "worker-1".into();
    ///     if ours {
    ///         n.del("lease")?;
    ///     }
    ///     Ok(ours)
    /// })?;
    /// assert!(released && !ns.contains("lease")?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn del(&mut self, name: &str) -> Result<()> {
        namespace::del(self.ctx, name)
    }
    /// `hasattr(ns, name)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-contains-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ns = store.namespace()?;
    /// // Initialize once, whoever comes first.
    /// ns.with_lock(|n| if n.contains("config")? { Ok(()) } else { n.set("config", "default") })?;
    /// assert!(ns.contains("config")?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn contains(&mut self, name: &str) -> Result<bool> {
        namespace::contains(self.ctx, name)
    }
}

impl Store {
    /// A new, empty shared namespace (CPython's `manager.Namespace()`).
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-ns-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// let ns = store.namespace()?;
    /// ns.call_method("__setattr__", ("b", "x"))?;
    /// ns.set("a", 1)?;
    /// assert_eq!(ns.call_method("__getattribute__", ("b",))?, Value::from("x"));
    /// assert_eq!(ns.to_string(), "Namespace(a=1, b='x')");
    /// assert_eq!(
    ///     ns.get("zz"),
    ///     Err(Error::AttributeError("'Namespace' object has no attribute 'zz'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        self.namespace_with(Vec::<(String, Value)>::new())
    }

    /// A new shared namespace with attributes (CPython's `manager.Namespace(a=1, b='x')`).
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for a dead or foreign proxy value.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-namespacewit-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let ns = store.namespace_with([("a", Value::Int(1)), ("b", Value::from("x"))])?;
    /// assert_eq!(ns.to_string(), "Namespace(a=1, b='x')");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn namespace_with<I, K, V>(&self, attrs: I) -> Result<NamespaceProxy>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        let attrs: Vec<(String, Value)> = attrs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let h = self.make(|core| namespace::create(core, &attrs))?;
        Ok(NamespaceProxy { h })
    }
}
