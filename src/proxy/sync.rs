//! Proxies of the synchronization types — `LockProxy`, `RLockProxy`, `SemaphoreProxy`,
//! `BoundedSemaphoreProxy`, `ConditionProxy`, `EventProxy`, `BarrierProxy` — their RAII guards,
//! and the `Store` factories.
//!
//! Every blocking call takes an `Option<Duration>` timeout (`None`: no limit) where Python takes
//! float seconds; `call_method` takes Python's arguments.

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::sync_common::deadline_of;
use crate::types::{barrier, condition, event, lock, rlock, semaphore, Ctx};

/// Something with `acquire` and `release`: every lock-like proxy, so that
/// [`AcquireGuard`] can release any of them.
///
/// # Examples
/// ```
/// # let name = format!("doc-acquire-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::Acquire;
/// // One function for every lock-like proxy.
/// fn try_once<P: Acquire>(p: &P) -> shmstore::Result<bool> {
///     let got = p.acquire(false, None)?;
///     if got {
///         p.release()?;
///     }
///     Ok(got)
/// }
/// assert!(try_once(&store.lock()?)?);
/// assert!(try_once(&store.rlock()?)?);
/// assert!(!try_once(&store.semaphore(0)?)?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub trait Acquire {
    /// `acquire(blocking, timeout)`: true if acquired. `timeout` `None` waits without limit; a
    /// non-blocking call must not give one.
    ///
    /// # Errors
    /// `ValueError` for a timeout on a non-blocking call; `StaleHandle`, `Corrupt`, `Os`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-acquire-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// use shmstore::Acquire;
    /// let sem = store.semaphore(1)?;
    /// assert!(Acquire::acquire(&sem, true, Some(Duration::from_millis(10)))?);
    /// assert!(!Acquire::acquire(&sem, true, Some(Duration::from_millis(10)))?); // timed out
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool>;

    /// `release()`.
    ///
    /// # Errors
    /// The type's Python error for a release without a matching acquire.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-release-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Acquire, Error};
    /// let lock = store.lock()?;
    /// assert!(Acquire::acquire(&lock, true, None)?);
    /// Acquire::release(&lock)?;
    /// assert_eq!(
    ///     Acquire::release(&lock),
    ///     Err(Error::RuntimeError("release unlocked lock".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    fn release(&self) -> Result<()>;
}

/// A held lock, semaphore unit or condition lock, released when dropped (errors on that
/// release are ignored; [`AcquireGuard::release`] reports them). Derefs to the proxy, so a
/// condition's guard can `wait` and `notify`.
///
/// # Examples
/// ```
/// # let name = format!("doc-acquireguard-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let cond = store.condition()?;
/// let held = cond.acquire_guard()?; // derefs to the proxy
/// assert!(held.is_owned()?);
/// assert_eq!(held.notify(1)?, 0); // nobody waits
/// drop(held);
/// assert!(!cond.is_owned()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct AcquireGuard<'a, P: Acquire> {
    proxy: &'a P,
    armed: bool,
}

impl<P: Acquire> AcquireGuard<'_, P> {
    /// Releases now, reporting a failed release.
    ///
    /// # Errors
    /// As the proxy's `release`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-release-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let lock = store.lock()?;
    /// let held = lock.acquire_guard()?;
    /// held.release()?; // released now, errors reported
    /// assert!(!lock.locked()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn release(mut self) -> Result<()> {
        self.armed = false;
        self.proxy.release()
    }
}

impl<P: Acquire> Deref for AcquireGuard<'_, P> {
    type Target = P;
    fn deref(&self) -> &P {
        self.proxy
    }
}

impl<P: Acquire> Drop for AcquireGuard<'_, P> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.proxy.release();
        }
    }
}

impl<P: Acquire> std::fmt::Debug for AcquireGuard<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcquireGuard")
    }
}

/// The check every typed `acquire` makes, as Python's.
#[inline]
fn check_blocking(blocking: bool, timeout: Option<Duration>) -> Result<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(_) if !blocking => Err(non_blocking_timeout()),
        Some(_) => Ok(deadline_of(timeout)),
    }
}

#[cold]
fn non_blocking_timeout() -> Error {
    Error::ValueError("can't specify a timeout for a non-blocking call".into())
}

/// The proxy boilerplate: struct, `proxy_common!` (the braces are its doc-example table),
/// conversions, `with`.
macro_rules! sync_proxy {
    ($(#[$m:meta])* $ty:ident, $id:expr, $doc:tt) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $ty {
            h: Arc<Handle>,
        }
        proxy_common!(typed $id; $ty $doc);

        impl From<$ty> for Proxy {
            fn from(p: $ty) -> Proxy {
                Proxy { h: p.h }
            }
        }

        impl TryFrom<Proxy> for $ty {
            type Error = Error;
            fn try_from(p: Proxy) -> Result<$ty> {
                Ok($ty {
                    h: p.into_handle_of($id)?,
                })
            }
        }

        impl $ty {
            // (A `Lock` never takes its object's lock: its proxy does not use this.)
            #[allow(dead_code)]
            #[inline]
            fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
                dispatch::with_object(&self.h.core, &self.h.token, f)
            }
        }
    };
}

/// The guard methods every acquirer proxy has. `$tag` and `$new` are for the doc examples: the
/// store name's suffix, and an expression making a proxy with one unit free from `store`.
macro_rules! guard_methods {
    ($ty:ident, $tag:literal, $new:literal) => {
        impl $ty {
            /// Acquires (waiting without limit) and returns a guard that releases on drop.
            ///
            /// # Errors
            /// As [`Acquire::acquire`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-ag-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// # // True when another thread's non-blocking acquire fails.
            /// # fn busy(p: &(impl shmstore::Acquire + Sync)) -> bool {
            /// #     std::thread::scope(|s| s.spawn(|| match p.acquire(false, None) {
            /// #         Ok(true) => p.release().map(|()| false).unwrap(),
            /// #         _ => true,
            /// #     }).join().unwrap())
            /// # }
            #[doc = concat!("let p = ", $new, ";")]
            /// {
            ///     let _held = p.acquire_guard()?;
            ///     assert!(busy(&p)); // another thread cannot take it now
            /// }
            /// assert!(!busy(&p)); // the guard released it when dropped
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn acquire_guard(&self) -> Result<AcquireGuard<'_, $ty>> {
                Acquire::acquire(self, true, None)?;
                Ok(AcquireGuard {
                    proxy: self,
                    armed: true,
                })
            }

            /// Short for [`Self::acquire_guard`].
            ///
            /// # Errors
            /// As [`Acquire::acquire`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-g-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// # // True when another thread's non-blocking acquire fails.
            /// # fn busy(p: &(impl shmstore::Acquire + Sync)) -> bool {
            /// #     std::thread::scope(|s| s.spawn(|| match p.acquire(false, None) {
            /// #         Ok(true) => p.release().map(|()| false).unwrap(),
            /// #         _ => true,
            /// #     }).join().unwrap())
            /// # }
            #[doc = concat!("let p = ", $new, ";")]
            /// let held = p.guard()?;
            /// assert!(busy(&p));
            /// drop(held);
            /// assert!(!busy(&p));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn guard(&self) -> Result<AcquireGuard<'_, $ty>> {
                self.acquire_guard()
            }

            /// Acquires, waiting at most `timeout` (`None`: without limit); a guard if acquired.
            ///
            /// # Errors
            /// As [`Acquire::acquire`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-tg-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use std::time::Duration;
            #[doc = concat!("let p = ", $new, ";")]
            /// let held = p.try_acquire_guard(Some(Duration::from_secs(1)))?;
            /// assert!(held.is_some());
            /// // Another thread gives up after 10 ms: this one holds it.
            /// let other = std::thread::scope(|s| {
            ///     s.spawn(|| p.try_acquire_guard(Some(Duration::from_millis(10))).map(|g| g.is_some()))
            ///         .join()
            ///         .unwrap()
            /// })?;
            /// assert!(!other);
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn try_acquire_guard(
                &self,
                timeout: Option<Duration>,
            ) -> Result<Option<AcquireGuard<'_, $ty>>> {
                Ok(
                    Acquire::acquire(self, true, timeout)?.then_some(AcquireGuard {
                        proxy: self,
                        armed: true,
                    }),
                )
            }

            /// `acquire(blocking, timeout)`: true if acquired.
            ///
            /// # Errors
            /// `ValueError("can't specify a timeout for a non-blocking call")`; `StaleHandle`,
            /// `Corrupt`, `Os`.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-acq-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use std::time::Duration;
            /// use shmstore::Error;
            #[doc = concat!("let p = ", $new, ";")]
            /// assert!(p.acquire(true, None)?); // waits as long as it takes
            /// // Another thread, not blocking, does not get it.
            /// let other = std::thread::scope(|s| s.spawn(|| p.acquire(false, None)).join().unwrap())?;
            /// assert!(!other);
            /// p.release()?;
            /// assert_eq!(
            ///     p.acquire(false, Some(Duration::from_secs(1))),
            ///     Err(Error::ValueError("can't specify a timeout for a non-blocking call".into()))
            /// );
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
                Acquire::acquire(self, blocking, timeout)
            }

            /// `release()`.
            ///
            /// # Errors
            /// The type's Python error for a release without a matching acquire.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-rel-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            #[doc = concat!("let p = ", $new, ";")]
            /// p.acquire(true, None)?;
            /// p.release()?;
            /// // Free again: another thread takes it at once (and gives it back).
            /// let other = std::thread::scope(|s| {
            ///     s.spawn(|| Ok::<_, shmstore::Error>(p.acquire(false, None)? && p.release().is_ok()))
            ///         .join()
            ///         .unwrap()
            /// })?;
            /// assert!(other);
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn release(&self) -> Result<()> {
                Acquire::release(self)
            }
        }
    };
}

sync_proxy!(
    /// A proxy of a shared `Lock` (CPython's `AcquirerProxy` of a `threading.Lock`). Any
    /// process may release it, whoever acquired it.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let lock = store.lock()?;
    /// {
    ///     let _held = lock.acquire_guard()?;
    ///     assert!(lock.locked()?);
    ///     assert!(!lock.acquire(true, Some(Duration::from_millis(1)))?);
    /// }
    /// assert!(!lock.locked()?);
    /// assert_eq!(
    ///     lock.release(),
    ///     Err(shmstore::Error::RuntimeError("release unlocked lock".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    LockProxy,
    type_ids::LOCK,
    {
        tag: "lock",
        new: "store.lock()?",
        call: ("acquire", "(false,)", "[Value::Bool(false)]" => "Value::Bool(true)"),
        kw: r#"assert_eq!(p.call_method_kw("acquire", (), &[("timeout", Value::Float(0.01))])?, Value::Bool(true));
// Held now: a non-blocking acquire fails.
assert_eq!(p.call_method_kw("acquire", (), &[("blocking", Value::Bool(false))])?, Value::Bool(false));"#,
        value: "Value::Bool(false)",
        str: r#"assert!(p.to_str()?.starts_with("<unlocked _thread.lock object at 0x"));"#,
        typeid: "Lock",
    }
);
guard_methods!(LockProxy, "lock", "store.lock()?");

impl Acquire for LockProxy {
    #[inline]
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = check_blocking(blocking, timeout)?;
        lock::acquire_at(&self.h.core, self.h.fixed_body()?, blocking, deadline)
    }
    #[inline]
    fn release(&self) -> Result<()> {
        lock::release_at(&self.h.core, self.h.fixed_body()?)
    }
}

impl LockProxy {
    /// True while the lock is held (by anyone).
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-locked-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let lock = store.lock()?;
    /// assert!(!lock.locked()?);
    /// let _held = lock.acquire_guard()?;
    /// assert!(lock.locked()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn locked(&self) -> Result<bool> {
        dispatch::with_object_lockless(&self.h.core, &self.h.token, lock::locked)
    }
}

sync_proxy!(
    /// A proxy of a shared `Semaphore` (CPython's `AcquirerProxy` of a
    /// `threading.Semaphore`). Any process may release a unit.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-sem-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let sem = store.semaphore(2)?;
    /// let a = sem.acquire_guard()?;
    /// let b = sem.acquire_guard()?;
    /// assert!(!sem.acquire(false, None)?);
    /// drop((a, b));
    /// assert_eq!(sem.value()?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    SemaphoreProxy,
    type_ids::SEMAPHORE,
    {
        tag: "sem",
        new: "store.semaphore(1)?",
        call: ("acquire", "(false,)", "[Value::Bool(false)]" => "Value::Bool(true)"),
        kw: r#"assert_eq!(p.call_method_kw("acquire", (), &[("timeout", Value::Float(0.01))])?, Value::Bool(true));
// No unit left: a non-blocking acquire fails.
assert_eq!(p.call_method_kw("acquire", (), &[("blocking", Value::Bool(false))])?, Value::Bool(false));"#,
        value: "Value::Int(1)",
        str: r#"let s = p.to_str()?;
assert!(s.starts_with("<threading.Semaphore at 0x") && s.ends_with(": value=1>"));"#,
        typeid: "Semaphore",
    }
);
guard_methods!(SemaphoreProxy, "sem", "store.semaphore(1)?");

impl Acquire for SemaphoreProxy {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = check_blocking(blocking, timeout)?;
        self.with(|c| semaphore::acquire(c, blocking, deadline))
    }
    fn release(&self) -> Result<()> {
        self.with(|c| semaphore::release(c, 1))
    }
}

impl SemaphoreProxy {
    /// `release(n)`: returns `n` units.
    ///
    /// # Errors
    /// `ValueError("n must be one or more")` for 0.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-releasen-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let sem = store.semaphore(0)?;
    /// sem.release_n(3)?;
    /// assert_eq!(sem.value()?, 3);
    /// assert_eq!(sem.release_n(0), Err(Error::ValueError("n must be one or more".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<()> {
        self.with(|c| semaphore::release(c, n as u64))
    }

    /// Free units now.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-value-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let sem = store.semaphore(2)?;
    /// let _one = sem.acquire_guard()?;
    /// assert_eq!(sem.value()?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn value(&self) -> Result<usize> {
        self.with(semaphore::value).map(|v| v as usize)
    }
}

sync_proxy!(
    /// A proxy of a shared `BoundedSemaphore` (CPython's `AcquirerProxy` of a
    /// `threading.BoundedSemaphore`): releasing above the initial value is a `ValueError`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-bsem-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let sem = store.bounded_semaphore(1)?;
    /// assert_eq!(
    ///     sem.release(),
    ///     Err(shmstore::Error::ValueError("Semaphore released too many times".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    BoundedSemaphoreProxy,
    type_ids::BOUNDED_SEMAPHORE,
    {
        tag: "bsem",
        new: "store.bounded_semaphore(1)?",
        call: ("acquire", "(false,)", "[Value::Bool(false)]" => "Value::Bool(true)"),
        kw: r#"assert_eq!(p.call_method_kw("acquire", (), &[("timeout", Value::Float(0.01))])?, Value::Bool(true));
// No unit left: a non-blocking acquire fails.
assert_eq!(p.call_method_kw("acquire", (), &[("blocking", Value::Bool(false))])?, Value::Bool(false));"#,
        value: "Value::Int(1)",
        str: r#"let s = p.to_str()?;
assert!(s.starts_with("<threading.BoundedSemaphore at 0x") && s.ends_with(": value=1/1>"));"#,
        typeid: "BoundedSemaphore",
    }
);
guard_methods!(BoundedSemaphoreProxy, "bsem", "store.bounded_semaphore(1)?");

impl Acquire for BoundedSemaphoreProxy {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = check_blocking(blocking, timeout)?;
        self.with(|c| semaphore::acquire(c, blocking, deadline))
    }
    fn release(&self) -> Result<()> {
        self.with(|c| semaphore::release(c, 1))
    }
}

impl BoundedSemaphoreProxy {
    /// `release(n)`: returns `n` units.
    ///
    /// # Errors
    /// `ValueError("Semaphore released too many times")` above the initial value,
    /// `ValueError("n must be one or more")` for 0.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-releasen-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let sem = store.bounded_semaphore(2)?;
    /// sem.acquire(true, None)?;
    /// sem.acquire(true, None)?;
    /// sem.release_n(2)?;
    /// assert_eq!(
    ///     sem.release_n(1),
    ///     Err(Error::ValueError("Semaphore released too many times".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn release_n(&self, n: usize) -> Result<()> {
        self.with(|c| semaphore::release(c, n as u64))
    }

    /// Free units now.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-value-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let sem = store.bounded_semaphore(3)?;
    /// let _g = sem.acquire_guard()?;
    /// assert_eq!(sem.value()?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn value(&self) -> Result<usize> {
        self.with(semaphore::value).map(|v| v as usize)
    }
}

sync_proxy!(
    /// A proxy of a shared `RLock` (CPython's `AcquirerProxy` of a `threading.RLock`): owned by
    /// a process and thread, which may acquire it again; only the owner releases it.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-rlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let r = store.rlock()?;
    /// let outer = r.acquire_guard()?;
    /// let inner = r.acquire_guard()?;
    /// assert_eq!(r.count()?, 2);
    /// drop((inner, outer));
    /// assert_eq!(
    ///     r.release(),
    ///     Err(shmstore::Error::RuntimeError("cannot release un-acquired lock".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    RLockProxy,
    type_ids::RLOCK,
    {
        tag: "rlock",
        new: "store.rlock()?",
        call: ("acquire", "(false,)", "[Value::Bool(false)]" => "Value::Bool(true)"),
        kw: r#"assert_eq!(p.call_method_kw("acquire", (), &[("timeout", Value::Float(0.01))])?, Value::Bool(true));
// The owner may take it again.
assert_eq!(p.call_method_kw("acquire", (), &[("blocking", Value::Bool(false))])?, Value::Bool(true));
assert_eq!(p.count()?, 2);"#,
        value: "Value::Int(0)",
        str: r#"let s = p.to_str()?;
assert!(s.starts_with("<unlocked _thread.RLock object owner=0 count=0 at 0x"));"#,
        typeid: "RLock",
    }
);
guard_methods!(RLockProxy, "rlock", "store.rlock()?");

impl Acquire for RLockProxy {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = check_blocking(blocking, timeout)?;
        self.with(|c| rlock::acquire(c, blocking, deadline))
    }
    fn release(&self) -> Result<()> {
        self.with(rlock::release)
    }
}

impl RLockProxy {
    /// The recursion count (0 when free).
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-count-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let r = store.rlock()?;
    /// assert_eq!(r.count()?, 0);
    /// let a = r.acquire_guard()?;
    /// let b = r.acquire_guard()?;
    /// assert_eq!(r.count()?, 2);
    /// drop((b, a));
    /// assert_eq!(r.count()?, 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn count(&self) -> Result<usize> {
        self.with(rlock::count).map(|n| n as usize)
    }

    /// True when the calling thread owns it.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isowned-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let r = store.rlock()?;
    /// let _held = r.acquire_guard()?;
    /// assert!(r.is_owned()?);
    /// // Another thread does not own it.
    /// let there = std::thread::scope(|s| s.spawn(|| r.is_owned()).join().unwrap())?;
    /// assert!(!there);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_owned(&self) -> Result<bool> {
        self.with(rlock::is_owned)
    }
}

sync_proxy!(
    /// A proxy of a shared `Condition` (CPython's `ConditionProxy`), whose lock is an RLock.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-cond-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let cond = store.condition()?;
    /// let held = cond.acquire_guard()?;
    /// assert!(!held.wait(Some(Duration::from_millis(1)))?); // nobody notifies: times out
    /// assert_eq!(held.notify(1)?, 0);
    /// drop(held);
    /// assert_eq!(
    ///     cond.notify_all(),
    ///     Err(shmstore::Error::RuntimeError("cannot notify on un-acquired lock".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    ConditionProxy,
    type_ids::CONDITION,
    {
        tag: "cond",
        new: "store.condition()?",
        call: ("acquire", "(false,)", "[Value::Bool(false)]" => "Value::Bool(true)"),
        kw: r#"assert_eq!(p.call_method("acquire", ())?, Value::Bool(true));
// Nobody notifies: the wait times out.
assert_eq!(p.call_method_kw("wait", (), &[("timeout", Value::Float(0.01))])?, Value::Bool(false));
assert_eq!(p.call_method_kw("notify", (), &[("n", Value::Int(2))])?, Value::None);"#,
        value: "Value::Int(0)",
        str: r#"let s = p.to_str()?;
assert!(s.starts_with("<Condition(<unlocked _thread.RLock object owner=0 count=0 at 0x"));
assert!(s.ends_with(">, 0)>")); // no waiters"#,
        typeid: "Condition",
    }
);
guard_methods!(ConditionProxy, "cond", "store.condition()?");

impl Acquire for ConditionProxy {
    fn acquire(&self, blocking: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = check_blocking(blocking, timeout)?;
        self.with(|c| condition::acquire(c, blocking, deadline))
    }
    fn release(&self) -> Result<()> {
        self.with(condition::release)
    }
}

impl ConditionProxy {
    /// `wait(timeout)`: releases the lock (which the calling thread must hold), waits to be
    /// notified at most `timeout`, takes the lock back; true if notified.
    ///
    /// # Errors
    /// `RuntimeError("cannot wait on un-acquired lock")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-wait-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// use shmstore::Value;
    /// let cond = store.condition()?;
    /// let ready = store.value(false)?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| -> shmstore::Result<()> {
    ///         let _g = cond.acquire_guard()?;
    ///         ready.set(true)?;
    ///         cond.notify(1).map(|_| ())
    ///     });
    ///     let _g = cond.acquire_guard()?;
    ///     while ready.get()? != Value::Bool(true) {
    ///         cond.wait(Some(Duration::from_secs(5)))?; // lets go of the lock while it waits
    ///     }
    ///     Ok::<(), shmstore::Error>(())
    /// })?;
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_of(timeout);
        self.with(|c| condition::wait(c, deadline))
    }

    /// `wait_for(predicate, timeout)`: waits until `predicate()` is true (checked with the lock
    /// held, first before waiting), at most `timeout`; returns the predicate's last value.
    ///
    /// # Errors
    /// As [`Self::wait`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-waitfor-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let cond = store.condition()?;
    /// let items = store.list(Vec::<i64>::new())?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| -> shmstore::Result<()> {
    ///         let _g = cond.acquire_guard()?;
    ///         items.append(1)?;
    ///         cond.notify_all().map(|_| ())
    ///     });
    ///     let _g = cond.acquire_guard()?;
    ///     let got = cond.wait_for(|| items.len().is_ok_and(|n| n > 0), Some(Duration::from_secs(5)))?;
    ///     assert!(got);
    ///     Ok::<(), shmstore::Error>(())
    /// })?;
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let deadline = deadline_of(timeout);
        let mut result = predicate();
        while !result {
            let left = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    Some(left)
                }
                None => None,
            };
            self.wait(left)?;
            result = predicate();
        }
        Ok(result)
    }

    /// `notify(n)`: wakes up to `n` waiters, the longest waiting first; returns how many.
    ///
    /// # Errors
    /// `RuntimeError("cannot notify on un-acquired lock")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-notify-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let cond = store.condition()?;
    /// let held = cond.acquire_guard()?;
    /// assert_eq!(held.notify(1)?, 0); // no waiter to wake
    /// drop(held);
    /// assert_eq!(
    ///     cond.notify(1),
    ///     Err(Error::RuntimeError("cannot notify on un-acquired lock".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn notify(&self, n: usize) -> Result<usize> {
        self.with(|c| condition::notify(c, n as u64))
            .map(|k| k as usize)
    }

    /// `notify_all()`: wakes every waiter; returns how many.
    ///
    /// # Errors
    /// `RuntimeError("cannot notify on un-acquired lock")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-notifyall-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let cond = store.condition()?;
    /// let woken = std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| -> shmstore::Result<bool> {
    ///         let _g = cond.acquire_guard()?;
    ///         cond.wait(Some(Duration::from_secs(5)))
    ///     });
    ///     // Wait until the other thread waits, then wake it.
    ///     while cond.waiters()? == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     let _g = cond.acquire_guard()?;
    ///     assert_eq!(cond.notify_all()?, 1);
    ///     drop(_g);
    ///     waiter.join().unwrap()
    /// })?;
    /// assert!(woken);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn notify_all(&self) -> Result<usize> {
        self.with(|c| condition::notify(c, u64::MAX))
            .map(|k| k as usize)
    }

    /// Waiters not yet notified.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-waiters-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let cond = store.condition()?;
    /// assert_eq!(cond.waiters()?, 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn waiters(&self) -> Result<usize> {
        self.with(condition::waiters).map(|k| k as usize)
    }

    /// True when the calling thread holds the condition's lock.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isowned-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let cond = store.condition()?;
    /// assert!(!cond.is_owned()?);
    /// let _held = cond.acquire_guard()?;
    /// assert!(cond.is_owned()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_owned(&self) -> Result<bool> {
        self.with(condition::is_owned)
    }
}

sync_proxy!(
    /// A proxy of a shared `Event` (CPython's `EventProxy`).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-event-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let ev = store.event()?;
    /// assert!(!ev.wait(Some(Duration::ZERO))?);
    /// ev.set()?;
    /// assert!(ev.is_set()? && ev.wait(None)?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    EventProxy,
    type_ids::EVENT,
    {
        tag: "event",
        new: "store.event()?",
        call: ("wait", "(0,)", "[Value::Int(0)]" => "Value::Bool(false)"),
        kw: r#"p.set()?;
assert_eq!(p.call_method_kw("wait", (), &[("timeout", Value::Float(1.0))])?, Value::Bool(true));"#,
        value: "Value::Bool(false)",
        str: r#"let s = p.to_str()?;
assert!(s.starts_with("<threading.Event at 0x") && s.ends_with(": unset>"));"#,
        typeid: "Event",
    }
);

impl EventProxy {
    /// `set()`: sets the flag and wakes every waiter, in every process.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-set-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ev = store.event()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| ev.set());
    ///     assert_eq!(ev.wait(None), Ok(true)); // woken by the other thread's set
    /// });
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn set(&self) -> Result<()> {
        self.with(event::set)
    }

    /// `clear()`.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-clear-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ev = store.event()?;
    /// ev.set()?;
    /// ev.clear()?;
    /// assert!(!ev.is_set()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.with(event::clear)
    }

    /// `is_set()`.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-isset-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ev = store.event()?;
    /// assert!(!ev.is_set()?);
    /// ev.set()?;
    /// assert!(ev.is_set()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_set(&self) -> Result<bool> {
        self.with(event::is_set)
    }

    /// `wait(timeout)`: true once set, false if `timeout` ran out first.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`, `Os`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-wait-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let ev = store.event()?;
    /// assert!(!ev.wait(Some(Duration::from_millis(10)))?); // timed out
    /// ev.set()?;
    /// assert!(ev.wait(Some(Duration::from_millis(10)))?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = deadline_of(timeout);
        self.with(|c| event::wait(c, deadline))
    }
}

sync_proxy!(
    /// A proxy of a shared `Barrier` (CPython's `BarrierProxy`).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-barrier-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let b = store.barrier(2)?;
    /// assert_eq!(b.parties()?, 2);
    /// // Alone at a barrier of two: the timeout breaks it.
    /// assert_eq!(b.wait(Some(Duration::from_millis(1))), Err(shmstore::Error::BrokenBarrier));
    /// assert!(b.broken()?);
    /// b.reset()?;
    /// assert!(!b.broken()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    BarrierProxy,
    type_ids::BARRIER,
    {
        tag: "barrier",
        new: "store.barrier(1)?",
        call: ("wait", "()", "[]" => "Value::Int(0)"),
        kw: r#"// One party: the wait returns at once, with arrival index 0.
assert_eq!(p.call_method_kw("wait", (), &[("timeout", Value::Float(1.0))])?, Value::Int(0));"#,
        value: r#"Value::dict_from_pairs([
    ("parties", Value::Int(1)),
    ("n_waiting", Value::Int(0)),
    ("broken", Value::Bool(false)),
])?"#,
        str: r#"let s = p.to_str()?;
assert!(s.starts_with("<threading.Barrier at 0x") && s.ends_with(": waiters=0/1>"));"#,
        typeid: "Barrier",
    }
);

impl BarrierProxy {
    /// `wait(timeout)` (`None`: the barrier's default timeout, if it has one): returns this
    /// party's arrival index, `0..parties`.
    ///
    /// # Errors
    /// `BrokenBarrier` if the barrier is or gets broken (aborted, reset, or a timeout ran out).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-wait-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let b = store.barrier(2)?;
    /// let mut arrivals = std::thread::scope(|s| {
    ///     let other = s.spawn(|| b.wait(None));
    ///     let mine = b.wait(None)?; // returns once both parties have arrived
    ///     Ok::<_, shmstore::Error>(vec![mine, other.join().unwrap()?])
    /// })?;
    /// arrivals.sort();
    /// assert_eq!(arrivals, [0, 1]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        self.with(|c| barrier::wait(c, timeout)).map(|i| i as usize)
    }

    /// `abort()`: breaks the barrier.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-abort-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let b = store.barrier(2)?;
    /// b.abort()?;
    /// assert!(b.broken()?);
    /// assert_eq!(b.wait(None), Err(Error::BrokenBarrier));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn abort(&self) -> Result<()> {
        self.with(barrier::abort)
    }

    /// `reset()`: back to empty; waiters inside get `BrokenBarrier`.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-reset-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let b = store.barrier(2)?;
    /// b.abort()?;
    /// b.reset()?;
    /// assert!(!b.broken()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn reset(&self) -> Result<()> {
        self.with(barrier::reset)
    }

    /// The `parties` attribute.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-parties-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert_eq!(store.barrier(3)?.parties()?, 3);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn parties(&self) -> Result<usize> {
        self.with(barrier::parties).map(|n| n as usize)
    }

    /// The `n_waiting` attribute.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-nwaiting-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let b = store.barrier(2)?;
    /// assert_eq!(b.n_waiting()?, 0);
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| b.wait(None));
    ///     while b.n_waiting()? == 0 {
    ///         std::thread::yield_now(); // until the other thread waits
    ///     }
    ///     assert_eq!(b.n_waiting()?, 1);
    ///     b.wait(None)?;
    ///     other.join().unwrap().map(|_| ())
    /// })?;
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn n_waiting(&self) -> Result<usize> {
        self.with(barrier::n_waiting).map(|n| n as usize)
    }

    /// The `broken` attribute.
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-broken-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// let b = store.barrier(2)?;
    /// assert!(!b.broken()?);
    /// let _ = b.wait(Some(Duration::from_millis(1))); // alone: times out, breaking it
    /// assert!(b.broken()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn broken(&self) -> Result<bool> {
        self.with(barrier::broken)
    }

    /// The default timeout given to [`Store::barrier_with`].
    ///
    /// # Errors
    /// `StaleHandle`, `Corrupt`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-defaulttimeo-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// assert_eq!(store.barrier(2)?.default_timeout()?, None);
    /// let b = store.barrier_with(2, Some(Duration::from_millis(5)))?;
    /// assert_eq!(b.default_timeout()?, Some(Duration::from_millis(5)));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn default_timeout(&self) -> Result<Option<Duration>> {
        self.with(barrier::default_timeout)
    }
}

impl Store {
    /// A new shared `Lock`, unlocked.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-lock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let lock = store.lock()?;
    /// let held = lock.acquire_guard()?;
    /// assert!(lock.locked()?);
    /// drop(held);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockProxy> {
        let h = self.make(lock::create)?;
        Ok(LockProxy { h })
    }

    /// A new shared `RLock`, free.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-rlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let r = store.rlock()?;
    /// let _a = r.acquire_guard()?;
    /// let _b = r.acquire_guard()?; // the owner again
    /// assert_eq!(r.count()?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn rlock(&self) -> Result<RLockProxy> {
        let h = self.make(rlock::create)?;
        Ok(RLockProxy { h })
    }

    /// A new shared `Semaphore` with `value` free units.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`; `ValueError` above `i64::MAX`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-semaphore-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let sem = store.semaphore(3)?;
    /// let _g = sem.acquire_guard()?;
    /// assert_eq!(sem.value()?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn semaphore(&self, value: usize) -> Result<SemaphoreProxy> {
        let h = self.make(|core| semaphore::create(core, type_ids::SEMAPHORE, value as u64))?;
        Ok(SemaphoreProxy { h })
    }

    /// A new shared `BoundedSemaphore` with `value` free units, never more.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`; `ValueError` above `i64::MAX`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-boundedsemap-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let sem = store.bounded_semaphore(1)?;
    /// assert!(sem.release().is_err()); // never above 1
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn bounded_semaphore(&self, value: usize) -> Result<BoundedSemaphoreProxy> {
        let h =
            self.make(|core| semaphore::create(core, type_ids::BOUNDED_SEMAPHORE, value as u64))?;
        Ok(BoundedSemaphoreProxy { h })
    }

    /// A new shared `Condition` (its lock an RLock).
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-condition-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let cond = store.condition()?;
    /// let _held = cond.acquire_guard()?;
    /// assert!(cond.is_owned()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn condition(&self) -> Result<ConditionProxy> {
        let h = self.make(condition::create)?;
        Ok(ConditionProxy { h })
    }

    /// A new shared `Event`, clear.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-event-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let ev = store.event()?;
    /// assert!(!ev.is_set()?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn event(&self) -> Result<EventProxy> {
        let h = self.make(event::create)?;
        Ok(EventProxy { h })
    }

    /// A new shared `Barrier` for `parties` parties, without a default timeout.
    ///
    /// # Errors
    /// `ValueError("parties must be >= 1")`, `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-barrier-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// assert_eq!(store.barrier(1)?.wait(None)?, 0); // one party: no waiting
    /// assert_eq!(
    ///     store.barrier(0).map(|_| ()),
    ///     Err(Error::ValueError("parties must be >= 1".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy> {
        self.barrier_with(parties, None)
    }

    /// A new shared `Barrier` whose `wait` without a timeout uses `timeout`, as
    /// `Barrier(parties, timeout=…)`.
    ///
    /// # Errors
    /// `ValueError("parties must be >= 1")`, `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-barrierwith-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// use shmstore::Error;
    /// let b = store.barrier_with(2, Some(Duration::from_millis(5)))?;
    /// assert_eq!(b.wait(None), Err(Error::BrokenBarrier)); // the default timeout ran out
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn barrier_with(&self, parties: usize, timeout: Option<Duration>) -> Result<BarrierProxy> {
        let h = self.make(|core| barrier::create(core, parties as u64, timeout))?;
        Ok(BarrierProxy { h })
    }
}
