//! # shmstore
//!
//! Python's `multiprocessing.Manager` objects — lists, dicts, values, queues, locks — shared
//! between processes on one host through one memory-mapped arena, with no server process in the
//! middle. A proxy calls its referent's methods in place, under the referent's robust
//! interprocess lock; refcounts in the arena free an object when its last proxy in any process
//! is gone.
//!
//! ```
//! use shmstore::{Error, Slice, Store, Value};
//! # let name = format!("doc-crate-{}", std::process::id());
//! let store = Store::create(&name, 1 << 20)?;
//! let l = store.list(0..10)?;
//! assert_eq!(l.call_method("__len__", ())?, Value::Int(10));
//! assert_eq!(
//!     l.call_method("__getitem__", (Slice::new(2, 7),))?,
//!     Value::from(vec![2, 3, 4, 5, 6])
//! );
//! assert_eq!(
//!     l.call_method("__getitem__", (20,)),
//!     Err(Error::IndexError("list index out of range".into()))
//! );
//! assert_eq!(l.to_string(), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
//!
//! // Another process would call Store::open(&name); a token passes an object to it as text.
//! let other = Store::open(&name)?;
//! let again = other.attach(&l.token().to_string().parse()?)?;
//! assert_eq!(again.call_method("__len__", ())?, Value::Int(10));
//! # Ok::<(), Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Doc examples compile without warnings, as the crate does.
#![doc(test(attr(deny(warnings))))]

// Test-only crash points (`failpoint!`), declared first so every module can use the macro.
#[macro_use]
pub mod failpoint;

// Raw layers: the only modules with `unsafe`.
pub mod arena;
mod fork;
pub mod header;
pub mod process;
pub mod procs;
pub mod segment;
pub mod sync;
pub mod table;

// Safe layers, bottom up.
pub mod alloc;
pub mod cell;
mod check;
pub mod core;
pub mod dispatch;
mod error;
mod inspect;
pub mod pool;
mod proxy;
mod store;
mod token;
pub mod types;
mod value;

pub use cell::Scalar;
pub use check::{CheckReport, RepairReport};
pub use dispatch::MethodId;
pub use error::{Error, Result};
pub use inspect::{ObjectInfo, SizeClass};
pub use pool::{AsyncResult, IMapIterator, Pool, PoolBuilder, StartMethod};
pub use procs::{ProcInfo, Reclaimed};
pub use proxy::{
    Acquire, AcquireGuard, ArrayGuard, ArrayInit, ArrayProxy, AsProxy, BarrierProxy,
    BoundedSemaphoreProxy, ConditionProxy, DictProxy, DictView, EventProxy, IntoArgs,
    JoinableQueueProxy, ListProxy, ListView, LockProxy, NamespaceProxy, NamespaceView, Proxy,
    QueueProxy, RLockProxy, SemaphoreProxy, SetProxy, SetView, TypedValueProxy, UserProxy,
    ValueProxy, ValueView,
};
pub use store::{Stats, Store, StoreBuilder};
pub use sync::LockHolder;
pub use token::{type_ids, Token};
pub use types::htable::KeyRef;
pub use types::user::{register, UserMethod, UserMethodKw, UserType};
pub use value::{Slice, SliceIndices, SliceIter, Value, MAX_DEPTH};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
