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
#[derive(Clone)]
pub struct NamespaceProxy {
    h: Arc<Handle>,
}
proxy_common!(NamespaceProxy {
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
    #[inline]
    pub fn get(&self, name: &str) -> Result<Value> {
        self.with(|c| namespace::get(c, name))
    }

    /// `ns.name = v`.
    ///
    /// # Errors
    /// `OutOfMemory` (the namespace is unchanged).
    #[inline]
    pub fn set(&self, name: &str, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| namespace::set(c, name, &v))
    }

    /// `del ns.name`.
    ///
    /// # Errors
    /// `AttributeError("'Namespace' object has no attribute 'x'")`.
    pub fn del(&self, name: &str) -> Result<()> {
        self.with(|c| namespace::del(c, name))
    }

    /// `hasattr(ns, name)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn contains(&self, name: &str) -> Result<bool> {
        self.with(|c| namespace::contains(c, name))
    }

    /// Every attribute with its value, in the order they were first set (`vars(ns)`).
    ///
    /// # Errors
    /// `Corrupt` only.
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
pub struct NamespaceView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl NamespaceView<'_, '_> {
    /// `ns.name`.
    ///
    /// # Errors
    /// `AttributeError`.
    pub fn get(&mut self, name: &str) -> Result<Value> {
        namespace::get(self.ctx, name)
    }
    /// `ns.name = v`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn set(&mut self, name: &str, v: impl Into<Value>) -> Result<()> {
        namespace::set(self.ctx, name, &v.into())
    }
    /// `del ns.name`.
    ///
    /// # Errors
    /// `AttributeError`.
    pub fn del(&mut self, name: &str) -> Result<()> {
        namespace::del(self.ctx, name)
    }
    /// `hasattr(ns, name)`.
    ///
    /// # Errors
    /// `Corrupt` only.
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
        let token = namespace::create(self.core(), &attrs)?;
        Ok(NamespaceProxy {
            h: self.adopt(token),
        })
    }
}
