//! `UserProxy<T>`: the typed proxy of a user-registered type, and the `Store::user` factory.

use std::marker::PhantomData;
use std::sync::Arc;

use bytemuck::Pod;

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::user;

/// A proxy of a user-registered type whose referent is a `T` (see [`crate::UserType`]).
///
/// Besides what every proxy has (`call_method` by name, `get_value`, `token`, `Display`,
/// `Debug`), it reads and writes the `T` itself: [`Self::get`], [`Self::set`] and
/// [`Self::with_lock`], which hands the closure the `T` in place in the arena.
///
/// # Examples
/// ```
/// # let name = format!("doc-userproxy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{UserProxy, UserType, Value};
/// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
/// #[repr(C)]
/// struct Stats {
///     count: u64,
///     total: f64,
/// }
/// shmstore::register(UserType::<Stats>::new("DocStats").method("record", |s, args| {
///     s.count += 1;
///     s.total += f64::try_from(args.first().cloned().unwrap_or(Value::None))?;
///     Ok(Value::None)
/// }))?;
/// let p: UserProxy<Stats> = store.user("DocStats", Stats { count: 0, total: 0.0 })?;
/// p.call_method("record", (2.5,))?;
/// p.call_method("record", (1.5,))?;
/// let s = p.get()?;
/// assert_eq!((s.count, s.total), (2, 4.0));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct UserProxy<T: Pod> {
    h: Arc<Handle>,
    _t: PhantomData<fn() -> T>,
}
proxy_common!(impl[T: Pod] UserProxy<T> {
    tag: "user",
    setup: r#"shmstore::register(shmstore::UserType::<u64>::new("DocTally").method("bump", |n, _| {
    *n += 1;
    Ok(shmstore::Value::from(*n))
}))?;"#,
    new: r#"store.user("DocTally", 41u64)?"#,
    call: ("bump", "()", "[]" => "Value::Int(42)"),
    kw: r#"assert_eq!(
    p.call_method_kw("bump", (), &[("by", Value::Int(2))]),
    Err(shmstore::Error::TypeError("DocTally.bump() takes no keyword arguments".into()))
);"#,
    value: "Value::bytes(41u64.to_ne_bytes())",
    str: r#"assert_eq!(p.to_str()?, "<DocTally object>");"#,
    typeid: "DocTally",
});

impl<T: Pod> Clone for UserProxy<T> {
    fn clone(&self) -> Self {
        UserProxy {
            h: self.h.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Pod> From<UserProxy<T>> for Proxy {
    fn from(p: UserProxy<T>) -> Proxy {
        Proxy { h: p.h }
    }
}

/// Succeeds when the referent is of a user type this process registered, in the same way as
/// the store, for the Rust type `T`.
impl<T: Pod> TryFrom<Proxy> for UserProxy<T> {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<UserProxy<T>> {
        let t = p.h.token;
        if t.type_id < type_ids::FIRST_USER {
            return Err(Error::TypeError(format!(
                "expected a user-type proxy, got a '{}' proxy",
                p.typeid()
            )));
        }
        let reg = user::registration(&p.h.core, t.type_id)?;
        if !reg.is::<T>() {
            return Err(Error::TypeError(format!(
                "user type '{}' does not store a {}",
                reg.typeid(),
                std::any::type_name::<T>()
            )));
        }
        Ok(UserProxy {
            h: p.h,
            _t: PhantomData,
        })
    }
}

impl<T: Pod> UserProxy<T> {
    /// The typeid the type was registered under (`"Counter"`).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-typeid-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// shmstore::register(shmstore::UserType::<u32>::new("DocFlag"))?;
    /// let p = store.user("DocFlag", 0u32)?;
    /// assert_eq!(p.typeid(), "DocFlag");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn typeid(&self) -> &'static str {
        self.h.token.typeid()
    }

    /// A copy of the referent.
    ///
    /// # Errors
    /// `StaleHandle`/`Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-get-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// shmstore::register(shmstore::UserType::<[i32; 2]>::new("DocXY"))?;
    /// let p = store.user("DocXY", [3, 4])?;
    /// assert_eq!(p.get()?, [3, 4]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn get(&self) -> Result<T> {
        self.with_lock(|t| *t)
    }

    /// Replaces the referent.
    ///
    /// # Errors
    /// `StaleHandle`/`Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// shmstore::register(shmstore::UserType::<[i32; 2]>::new("DocXY"))?;
    /// let p = store.user("DocXY", [0, 0])?;
    /// p.set([5, 6])?;
    /// assert_eq!(p.get()?, [5, 6]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn set(&self, value: T) -> Result<()> {
        self.with_lock(|t| *t = value)
    }

    /// Runs `f` on the referent in place in the arena, with its lock held: several reads and
    /// writes form one atomic step, and nothing is copied.
    ///
    /// # Errors
    /// `StaleHandle`/`Corrupt` only.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-user-withlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// shmstore::register(shmstore::UserType::<[u64; 2]>::new("DocPair"))?;
    /// let p = store.user("DocPair", [1u64, 2])?;
    /// let sum = p.with_lock(|pair| {
    ///     pair.swap(0, 1);
    ///     pair[0] + pair[1]
    /// })?;
    /// assert_eq!((sum, p.get()?), (3, [2, 1]));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, |ctx| {
            let t = ctx
                .core
                .arena()
                .slice_mut::<T>(ctx.body, 1)?
                .first_mut()
                .ok_or(Error::corrupt("empty user-type body", ctx.body))?;
            Ok(f(t))
        })
    }
}

impl Store {
    /// A new shared object of the user type registered as `typeid` (see
    /// [`crate::register`]), holding `init` — CPython's `manager.Counter(…)`.
    ///
    /// # Errors
    /// `NotFound` if this process has not registered `typeid`; `TypeError` if it registered
    /// it for another Rust type, or differently from the store (another process registered
    /// other methods); `TableFull` when the store already holds 64 user types;
    /// `OutOfMemory`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-user-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{UserType, Value};
    /// shmstore::register(
    ///     UserType::<u64>::new("DocTally").method("bump", |n, _| {
    ///         *n += 1;
    ///         Ok(Value::from(*n))
    ///     }),
    /// )?;
    /// let t = store.user("DocTally", 41u64)?;
    /// assert_eq!(t.call_method("bump", ())?, Value::Int(42));
    /// assert_eq!(format!("{t:?}").split(" at ").next(), Some("<AutoProxy[DocTally] object, typeid 'DocTally'"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn user<T: Pod>(&self, typeid: &str, init: T) -> Result<UserProxy<T>> {
        let reg = user::registered_as::<T>(typeid)?;
        let h = self.make(|core| user::create(core, reg, &init))?;
        Ok(UserProxy { h, _t: PhantomData })
    }
}
