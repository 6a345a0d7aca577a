//! `QueueProxy` and `JoinableQueueProxy`: the typed proxies of shared queues, and the
//! `Store::queue` / `Store::joinable_queue` factories.
//!
//! Both referents are Python's `queue.Queue` (as in CPython's `SyncManager`), so both proxies
//! have the same methods; they differ in their typeid (`'Queue'`, `'JoinableQueue'`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::{queue, Ctx};
use crate::value::Value;

/// A timeout as a deadline: None (or one too far to represent) waits without limit.
#[inline]
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|d| Instant::now().checked_add(d))
}

/// The conversions and queue methods of both queue proxies. `$ctor` and `$tag` are for the doc
/// examples: the `Store` factory's name and the store name's suffix.
macro_rules! queue_proxy {
    ($ty:ident, $type_id:expr, $ctor:literal, $tag:literal) => {
        impl From<$ty> for Proxy {
            fn from(p: $ty) -> Proxy {
                Proxy { h: p.h }
            }
        }

        impl TryFrom<Proxy> for $ty {
            type Error = Error;
            fn try_from(p: Proxy) -> Result<$ty> {
                Ok($ty {
                    h: p.into_handle_of($type_id)?,
                })
            }
        }

        impl $ty {
            #[inline]
            fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
                dispatch::with_object(&self.h.core, &self.h.token, f)
            }

            /// `q.put(v)`: appends `v`, waiting as long as it takes while the queue is full.
            /// Proxies in `v` keep their referents alive until the item is got.
            ///
            /// # Errors
            /// `OutOfMemory` (the queue is unchanged); `StaleHandle`/`NotFound` for a dead or
            /// foreign proxy in `v`.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-put-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Value;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put("job")?;
            /// q.put(vec![1, 2])?;
            /// assert_eq!(q.qsize()?, 2);
            /// assert_eq!(q.get()?, Value::from("job"));
            /// assert_eq!(q.get()?, Value::from(vec![1, 2]));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn put(&self, v: impl Into<Value>) -> Result<()> {
                self.put_with(v, true, None)
            }

            /// `q.put(v, timeout=t)`: waits at most `timeout` (None: without limit) for room.
            ///
            /// # Errors
            /// `Full` when the timeout runs out first; as [`Self::put`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-putt-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use std::time::Duration;
            /// use shmstore::Error;
            #[doc = concat!("let q = store.", $ctor, "(1)?; // room for one item")]
            /// q.put_timeout("a", Some(Duration::from_millis(10)))?;
            /// assert_eq!(q.put_timeout("b", Some(Duration::from_millis(10))), Err(Error::Full));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn put_timeout(
                &self,
                v: impl Into<Value>,
                timeout: Option<Duration>,
            ) -> Result<()> {
                self.put_with(v, true, timeout)
            }

            /// `q.put(v, block, timeout)`, as Python's: with `block` false, fails at once when
            /// the queue is full.
            ///
            /// # Errors
            /// `Full`; as [`Self::put`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-putw-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Error;
            #[doc = concat!("let q = store.", $ctor, "(1)?;")]
            /// q.put_with("a", true, None)?;
            /// assert_eq!(q.put_with("b", false, None), Err(Error::Full)); // full: fails at once
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn put_with(
                &self,
                v: impl Into<Value>,
                block: bool,
                timeout: Option<Duration>,
            ) -> Result<()> {
                let v = v.into();
                let d = deadline(timeout);
                self.with(|c| queue::put(c, &v, block, d))
            }

            /// `q.put_nowait(v)`.
            ///
            /// # Errors
            /// `Full` when the queue is full; as [`Self::put`].
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-putn-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Error;
            #[doc = concat!("let q = store.", $ctor, "(1)?;")]
            /// q.put_nowait("a")?;
            /// assert_eq!(q.put_nowait("b"), Err(Error::Full));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn put_nowait(&self, v: impl Into<Value>) -> Result<()> {
                self.put_with(v, false, None)
            }

            /// `q.get()`: removes and returns the oldest item, waiting as long as it takes while
            /// the queue is empty. Proxies in the item lose the queue's reference (use
            /// [`Self::get_with_proxies`] to keep them alive).
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-get-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Value;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// std::thread::scope(|s| {
            ///     s.spawn(|| q.put("done"));
            ///     // Waits until the other thread has put the item.
            ///     assert_eq!(q.get(), Ok(Value::from("done")));
            /// });
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn get(&self) -> Result<Value> {
                self.get_with(true, None)
            }

            /// `q.get(timeout=t)`: waits at most `timeout` (None: without limit) for an item.
            ///
            /// # Errors
            /// `Empty` when the timeout runs out first.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-gett-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use std::time::Duration;
            /// use shmstore::{Error, Value};
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put(1)?;
            /// assert_eq!(q.get_timeout(Some(Duration::from_millis(10)))?, Value::Int(1));
            /// assert_eq!(q.get_timeout(Some(Duration::from_millis(10))), Err(Error::Empty));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn get_timeout(&self, timeout: Option<Duration>) -> Result<Value> {
                self.get_with(true, timeout)
            }

            /// `q.get(block, timeout)`, as Python's: with `block` false, fails at once when the
            /// queue is empty.
            ///
            /// # Errors
            /// `Empty`.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-getw-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::{Error, Value};
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put(1)?;
            /// assert_eq!(q.get_with(true, None)?, Value::Int(1));
            /// assert_eq!(q.get_with(false, None), Err(Error::Empty)); // empty: fails at once
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<Value> {
                let d = deadline(timeout);
                self.with(|c| queue::get(c, block, d))
            }

            /// `q.get_nowait()`.
            ///
            /// # Errors
            /// `Empty` when the queue is empty.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-getn-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::{Error, Value};
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put("x")?;
            /// assert_eq!(q.get_nowait()?, Value::from("x"));
            /// assert_eq!(q.get_nowait(), Err(Error::Empty));
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn get_nowait(&self) -> Result<Value> {
                self.get_with(false, None)
            }

            /// As [`Self::get_with`], and the references the queue held for the proxies in the
            /// item are handed over as live proxies (in the order the item holds them), so the
            /// referents outlive the get even if no one else holds them.
            ///
            /// # Errors
            /// `Empty`.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-gwp-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::{ListProxy, Value};
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put(Value::from(&store.list([1, 2])?))?; // the list's only proxy is gone after this line
            /// let (item, proxies) = q.get_with_proxies(true, None)?;
            /// assert_eq!(item.type_name(), "list"); // a proxy value
            /// let l = ListProxy::try_from(proxies.into_iter().next().unwrap())?;
            /// assert_eq!(l.len()?, 2); // still alive: the queue's reference was handed over
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn get_with_proxies(
                &self,
                block: bool,
                timeout: Option<Duration>,
            ) -> Result<(Value, Vec<Proxy>)> {
                let d = deadline(timeout);
                let (v, refs) = self.with(|c| queue::take(c, block, d))?;
                let proxies = refs
                    .into_iter()
                    .map(|t| Proxy {
                        h: Handle::adopt(self.h.core.clone(), t),
                    })
                    .collect();
                Ok((v, proxies))
            }

            /// `q.qsize()`.
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-qs-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put(1)?;
            /// q.put(2)?;
            /// assert_eq!(q.qsize()?, 2);
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn qsize(&self) -> Result<usize> {
                self.with(|c| queue::qsize(c).map(|n| n as usize))
            }

            /// `q.empty()`.
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-em-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// assert!(q.empty()?);
            /// q.put(1)?;
            /// assert!(!q.empty()?);
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn empty(&self) -> Result<bool> {
                self.with(queue::empty)
            }

            /// `q.full()`: the queue is bounded and holds `maxsize` items.
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-fu-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            #[doc = concat!("let q = store.", $ctor, "(1)?;")]
            /// assert!(!q.full()?);
            /// q.put(1)?;
            /// assert!(q.full()?);
            /// assert!(!store.queue(0)?.full()?); // an unbounded queue is never full
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            #[inline]
            pub fn full(&self) -> Result<bool> {
                self.with(queue::full)
            }

            /// `q.maxsize`: 0 for an unbounded queue.
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-ms-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            #[doc = concat!("assert_eq!(store.", $ctor, "(5)?.maxsize()?, 5);")]
            #[doc = concat!("assert_eq!(store.", $ctor, "(0)?.maxsize()?, 0); // unbounded")]
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn maxsize(&self) -> Result<usize> {
                self.with(|c| queue::maxsize(c).map(|n| n as usize))
            }

            /// `q.task_done()`: marks one item put earlier as processed.
            ///
            /// # Errors
            /// `ValueError("task_done() called too many times")`.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-td-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use shmstore::Error;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put("job")?;
            /// q.get()?;
            /// q.task_done()?; // the job is processed
            /// assert_eq!(
            ///     q.task_done(),
            ///     Err(Error::ValueError("task_done() called too many times".into()))
            /// );
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn task_done(&self) -> Result<()> {
                self.with(queue::task_done)
            }

            /// `q.join()`: waits until every item put has been marked done.
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-jn-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put("job")?;
            /// std::thread::scope(|s| {
            ///     s.spawn(|| {
            ///         let _job = q.get()?;
            ///         q.task_done()
            ///     });
            ///     q.join() // returns once the worker marked the job done
            /// })?;
            /// assert_eq!(q.qsize()?, 0);
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn join(&self) -> Result<()> {
                self.with(|c| queue::join(c, None)).map(|_| ())
            }

            /// `q.join()` waiting at most `timeout` (None: without limit): true when every
            /// item was marked done, false when the timeout ran out first.
            ///
            /// # Errors
            /// `Corrupt` only.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("# let name = format!(\"doc-jt-", $tag, "-{}\", std::process::id());")]
            /// # let store = shmstore::Store::create(&name, 1 << 20)?;
            /// use std::time::Duration;
            #[doc = concat!("let q = store.", $ctor, "(0)?;")]
            /// q.put("job")?;
            /// assert!(!q.join_timeout(Some(Duration::from_millis(10)))?); // not done yet
            /// q.get()?;
            /// q.task_done()?;
            /// assert!(q.join_timeout(Some(Duration::ZERO))?);
            /// # Ok::<(), shmstore::Error>(())
            /// ```
            pub fn join_timeout(&self, timeout: Option<Duration>) -> Result<bool> {
                let d = deadline(timeout);
                self.with(|c| queue::join(c, d))
            }
        }
    };
}

/// A proxy of a shared `Queue` (CPython's `manager.Queue()`, a `queue.Queue`).
///
/// # Examples
/// ```
/// # let name = format!("doc-queue-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Error, Value};
/// let q = store.queue(2)?;
/// q.put("job")?;
/// q.put(7)?;
/// assert_eq!(q.put_nowait(8), Err(Error::Full));
/// assert_eq!(q.get()?, Value::from("job"));
/// assert_eq!(q.call_method("get_nowait", ())?, Value::Int(7));
/// assert_eq!(q.get_timeout(Some(std::time::Duration::from_millis(10))), Err(Error::Empty));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct QueueProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::QUEUE; QueueProxy {
    tag: "queue",
    new: "store.queue(0)?",
    call: ("put", r#"("job",)"#, r#"[Value::from("job")]"# => "Value::None"),
    kw: r#"assert_eq!(p.call_method_kw("put", ("job",), &[("block", Value::Bool(false))])?, Value::None);
assert_eq!(p.call_method_kw("get", (), &[("timeout", Value::Float(1.0))])?, Value::from("job"));
assert_eq!(p.call_method_kw("get", (), &[("timeout", Value::Float(0.01))]), Err(shmstore::Error::Empty));"#,
    value: "Value::List(vec![])",
    str: r#"assert!(p.to_str()?.starts_with("<queue.Queue object at 0x"));"#,
    typeid: "Queue",
});
queue_proxy!(QueueProxy, type_ids::QUEUE, "queue", "q");

/// A proxy of a shared `JoinableQueue` (CPython's `manager.JoinableQueue()`): a queue whose
/// `join` waits until every item put was marked done with `task_done`.
///
/// # Examples
/// ```
/// # let name = format!("doc-jqueue-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let q = store.joinable_queue(0)?;
/// q.put(1)?;
/// q.get()?;
/// assert!(!q.join_timeout(Some(std::time::Duration::ZERO))?);
/// q.task_done()?;
/// q.join()?;
/// assert!(q.task_done().is_err()); // ValueError: task_done() called too many times
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct JoinableQueueProxy {
    h: Arc<Handle>,
}
proxy_common!(typed crate::type_ids::JOINABLE_QUEUE; JoinableQueueProxy {
    tag: "jqueue",
    new: "store.joinable_queue(0)?",
    call: ("put", r#"("job",)"#, r#"[Value::from("job")]"# => "Value::None"),
    kw: r#"assert_eq!(p.call_method_kw("put", ("job",), &[("block", Value::Bool(false))])?, Value::None);
assert_eq!(p.call_method_kw("get", (), &[("timeout", Value::Float(1.0))])?, Value::from("job"));
assert_eq!(p.call_method_kw("get", (), &[("timeout", Value::Float(0.01))]), Err(shmstore::Error::Empty));"#,
    value: "Value::List(vec![])",
    str: r#"assert!(p.to_str()?.starts_with("<queue.Queue object at 0x"));"#,
    typeid: "JoinableQueue",
});
queue_proxy!(
    JoinableQueueProxy,
    type_ids::JOINABLE_QUEUE,
    "joinable_queue",
    "jq"
);

impl Store {
    /// A new shared `Queue` holding at most `maxsize` items (0: unbounded), as CPython's
    /// `manager.Queue(maxsize)`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-queue-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let q = store.queue(2)?;
    /// q.put("a")?;
    /// assert_eq!((q.qsize()?, q.maxsize()?), (1, 2));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn queue(&self, maxsize: usize) -> Result<QueueProxy> {
        let h = self.make(|core| queue::create(core, type_ids::QUEUE, maxsize as u64))?;
        Ok(QueueProxy { h })
    }

    /// A new shared `JoinableQueue` holding at most `maxsize` items (0: unbounded), as CPython's
    /// `manager.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-joinablequeu-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let q = store.joinable_queue(0)?;
    /// q.put("job")?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?; // every item put was marked done
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn joinable_queue(&self, maxsize: usize) -> Result<JoinableQueueProxy> {
        let h = self.make(|core| queue::create(core, type_ids::JOINABLE_QUEUE, maxsize as u64))?;
        Ok(JoinableQueueProxy { h })
    }
}
