//! The one error type users match on.
//!
//! Variants named after Python exceptions carry Python's own message and display it alone, as
//! `str(exc)` does in Python (`KeyError` displays the `repr` of the missing key). The others carry
//! the figures that explain them: requested and available bytes, the bad offset, the stale
//! generation.

use crate::value::Value;

/// Everything that can go wrong in shmstore.
///
/// # Examples
/// ```
/// # let name = format!("doc-error-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Error, Value};
/// let d = store.dict([("a", 1)])?;
/// match d.get_item("b") {
///     Err(Error::KeyError(key)) => assert_eq!(key, Value::from("b")),
///     other => panic!("{other:?}"),
/// }
/// // Python's exceptions display as Python's str(exc) does.
/// assert_eq!(d.get_item("b").unwrap_err().to_string(), "'b'");
/// assert_eq!(Error::Full.to_string(), "queue is full");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Python's `IndexError`, e.g. "list index out of range".
    #[error("{0}")]
    IndexError(String),
    /// Python's `KeyError`, carrying the missing key; displays its `repr`.
    #[error("{}", .0.repr())]
    KeyError(Value),
    /// Python's `ValueError`, e.g. "list.remove(x): x not in list".
    #[error("{0}")]
    ValueError(String),
    /// Python's `TypeError`: wrong number or type of arguments, unhashable or unorderable values.
    #[error("{0}")]
    TypeError(String),
    /// Python's `AttributeError`: an unknown method or attribute.
    #[error("{0}")]
    AttributeError(String),
    /// Python's `RuntimeError`, e.g. "release unlocked lock".
    #[error("{0}")]
    RuntimeError(String),
    /// Python's `OverflowError`, e.g. "signed char is greater than maximum" (a number that does
    /// not fit a typed array's element, or an integer sum beyond 64 bits).
    #[error("{0}")]
    OverflowError(String),
    /// Python's `queue.Empty`.
    #[error("queue is empty")]
    Empty,
    /// Python's `queue.Full`.
    #[error("queue is full")]
    Full,
    /// A blocking call's timeout ran out.
    #[error("timed out")]
    Timeout,
    /// Python's `threading.BrokenBarrierError`.
    #[error("barrier is broken")]
    BrokenBarrier,
    /// No segment (or no bound object) of that name.
    #[error("not found: {0}")]
    NotFound(String),
    /// A segment (or a bound name) of that name exists already.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A segment or object name that no POSIX system accepts.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The caller may not open the segment.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The arena has no free block large enough.
    #[error("out of shared memory: requested {requested} bytes, {available} free")]
    OutOfMemory {
        /// Bytes asked for (including block overhead).
        requested: usize,
        /// Bytes free in the arena (possibly fragmented).
        available: usize,
    },
    /// Every object slot is in use.
    #[error("object table full: {capacity} slots in use")]
    TableFull {
        /// Number of slots in the table.
        capacity: u32,
    },
    /// The handle names an object that was freed (its slot now has another generation).
    #[error("stale handle: slot {slot} generation {expected}, slot now has generation {found}")]
    StaleHandle {
        /// Slot of the handle.
        slot: u32,
        /// Generation the handle was made for.
        expected: u32,
        /// Generation the slot has now.
        found: u32,
    },
    /// Something read from shared memory fails a check: a bad offset, length, tag or count.
    #[error("corrupt arena: {what} at offset {offset:#x}")]
    Corrupt {
        /// What was wrong.
        what: &'static str,
        /// Where in the arena.
        offset: u64,
    },
    /// The segment is a shmstore arena of another format (another version or build).
    #[error("incompatible segment format: expected {expected:#018x}, found {found:#018x}")]
    Incompatible {
        /// The format word of this build.
        expected: u64,
        /// The format word in the segment.
        found: u64,
    },
    /// A lock's holder died; the lock was taken over and the object repaired.
    /// Returned only in the opt-in `OwnerDied` mode.
    #[error("the previous holder of the lock died; the object was recovered")]
    OwnerDied,
    /// An operating-system call failed.
    #[error("{op} failed: {}", std::io::Error::from_raw_os_error(*.errno))]
    Os {
        /// The call that failed.
        op: &'static str,
        /// `errno` it left.
        errno: i32,
    },
}

impl Error {
    /// The `errno` of the last failed system call, as an [`Error::Os`].
    #[cold]
    pub(crate) fn last_os(op: &'static str) -> Error {
        Error::Os {
            op,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }

    /// A corrupt-arena error.
    #[cold]
    pub(crate) fn corrupt(what: &'static str, offset: u64) -> Error {
        Error::Corrupt { what, offset }
    }

    /// A `TypeError` with a formatted message.
    #[cold]
    pub(crate) fn type_error(msg: impl Into<String>) -> Error {
        Error::TypeError(msg.into())
    }

    /// The Python exception name of this error (`"IndexError"`, `"KeyError"`, …), or the Rust
    /// variant name for shmstore's own errors.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{Error, Value};
    /// assert_eq!(Error::KeyError(Value::from("k")).kind(), "KeyError");
    /// assert_eq!(Error::BrokenBarrier.kind(), "BrokenBarrierError");
    /// assert_eq!(Error::Full.kind(), "Full");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::IndexError(_) => "IndexError",
            Error::KeyError(_) => "KeyError",
            Error::ValueError(_) => "ValueError",
            Error::TypeError(_) => "TypeError",
            Error::AttributeError(_) => "AttributeError",
            Error::RuntimeError(_) => "RuntimeError",
            Error::OverflowError(_) => "OverflowError",
            Error::Empty => "Empty",
            Error::Full => "Full",
            Error::Timeout => "Timeout",
            Error::BrokenBarrier => "BrokenBarrierError",
            Error::NotFound(_) => "NotFound",
            Error::AlreadyExists(_) => "AlreadyExists",
            Error::InvalidName { .. } => "InvalidName",
            Error::PermissionDenied(_) => "PermissionDenied",
            Error::OutOfMemory { .. } => "OutOfMemory",
            Error::TableFull { .. } => "TableFull",
            Error::StaleHandle { .. } => "StaleHandle",
            Error::Corrupt { .. } => "Corrupt",
            Error::Incompatible { .. } => "Incompatible",
            Error::OwnerDied => "OwnerDied",
            Error::Os { .. } => "Os",
        }
    }
}

/// Shorthand for results with [`Error`].
///
/// # Examples
/// ```
/// fn first(l: &shmstore::ListProxy) -> shmstore::Result<shmstore::Value> {
///     l.get(0)
/// }
/// # let name = format!("doc-result-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// assert_eq!(first(&store.list(["a"])?)?, shmstore::Value::from("a"));
/// assert!(first(&store.list(Vec::<i64>::new())?).is_err());
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
