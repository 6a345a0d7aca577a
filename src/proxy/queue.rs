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

macro_rules! queue_proxy {
    ($ty:ident, $type_id:expr) => {
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
            #[inline]
            pub fn put(&self, v: impl Into<Value>) -> Result<()> {
                self.put_with(v, true, None)
            }

            /// `q.put(v, timeout=t)`: waits at most `timeout` (None: without limit) for room.
            ///
            /// # Errors
            /// `Full` when the timeout runs out first; as [`Self::put`].
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
            #[inline]
            pub fn get(&self) -> Result<Value> {
                self.get_with(true, None)
            }

            /// `q.get(timeout=t)`: waits at most `timeout` (None: without limit) for an item.
            ///
            /// # Errors
            /// `Empty` when the timeout runs out first.
            pub fn get_timeout(&self, timeout: Option<Duration>) -> Result<Value> {
                self.get_with(true, timeout)
            }

            /// `q.get(block, timeout)`, as Python's: with `block` false, fails at once when the
            /// queue is empty.
            ///
            /// # Errors
            /// `Empty`.
            pub fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<Value> {
                let d = deadline(timeout);
                self.with(|c| queue::get(c, block, d))
            }

            /// `q.get_nowait()`.
            ///
            /// # Errors
            /// `Empty` when the queue is empty.
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
            #[inline]
            pub fn qsize(&self) -> Result<usize> {
                self.with(|c| queue::qsize(c).map(|n| n as usize))
            }

            /// `q.empty()`.
            ///
            /// # Errors
            /// `Corrupt` only.
            #[inline]
            pub fn empty(&self) -> Result<bool> {
                self.with(queue::empty)
            }

            /// `q.full()`: the queue is bounded and holds `maxsize` items.
            ///
            /// # Errors
            /// `Corrupt` only.
            #[inline]
            pub fn full(&self) -> Result<bool> {
                self.with(queue::full)
            }

            /// `q.maxsize`: 0 for an unbounded queue.
            ///
            /// # Errors
            /// `Corrupt` only.
            pub fn maxsize(&self) -> Result<usize> {
                self.with(|c| queue::maxsize(c).map(|n| n as usize))
            }

            /// `q.task_done()`: marks one item put earlier as processed.
            ///
            /// # Errors
            /// `ValueError("task_done() called too many times")`.
            pub fn task_done(&self) -> Result<()> {
                self.with(queue::task_done)
            }

            /// `q.join()`: waits until every item put has been marked done.
            ///
            /// # Errors
            /// `Corrupt` only.
            pub fn join(&self) -> Result<()> {
                self.with(|c| queue::join(c, None)).map(|_| ())
            }

            /// `q.join()` waiting at most `timeout` (None: without limit): true when every
            /// item was marked done, false when the timeout ran out first.
            ///
            /// # Errors
            /// `Corrupt` only.
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
proxy_common!(QueueProxy);
queue_proxy!(QueueProxy, type_ids::QUEUE);

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
proxy_common!(JoinableQueueProxy);
queue_proxy!(JoinableQueueProxy, type_ids::JOINABLE_QUEUE);

impl Store {
    /// A new shared `Queue` holding at most `maxsize` items (0: unbounded), as CPython's
    /// `manager.Queue(maxsize)`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    pub fn queue(&self, maxsize: usize) -> Result<QueueProxy> {
        let token = queue::create(self.core(), type_ids::QUEUE, maxsize as u64)?;
        Ok(QueueProxy {
            h: self.adopt(token),
        })
    }

    /// A new shared `JoinableQueue` holding at most `maxsize` items (0: unbounded), as CPython's
    /// `manager.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`.
    pub fn joinable_queue(&self, maxsize: usize) -> Result<JoinableQueueProxy> {
        let token = queue::create(self.core(), type_ids::JOINABLE_QUEUE, maxsize as u64)?;
        Ok(JoinableQueueProxy {
            h: self.adopt(token),
        })
    }
}
