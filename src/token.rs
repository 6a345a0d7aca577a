//! Tokens: the plain-data name of a referent, valid in every process attached to its store.
//!
//! A token is what Python's managers call a `Token` (typeid, address, id): here the store's
//! random id, the referent's type id, its object-table slot and the slot's generation. It holds no
//! reference by itself; `Store::attach` turns it into a proxy (which does), and refuses a token
//! whose object was freed (`StaleHandle`) or that belongs to another store (`NotFound`).

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Type ids of the built-in referent types. Stable: they are stored in the arena.
///
/// # Examples
/// ```
/// # let name = format!("doc-typeids-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::type_ids;
/// assert_eq!(store.list([1])?.token().type_id, type_ids::LIST);
/// assert_eq!(store.event()?.token().type_id, type_ids::EVENT);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub mod type_ids {
    /// `list`
    pub const LIST: u16 = 1;
    /// `dict`
    pub const DICT: u16 = 2;
    /// `Value`
    pub const VALUE: u16 = 3;
    /// `Array`
    pub const ARRAY: u16 = 4;
    /// `Namespace`
    pub const NAMESPACE: u16 = 5;
    /// `Queue`
    pub const QUEUE: u16 = 6;
    /// `JoinableQueue`
    pub const JOINABLE_QUEUE: u16 = 7;
    /// `Lock`
    pub const LOCK: u16 = 8;
    /// `RLock`
    pub const RLOCK: u16 = 9;
    /// `Semaphore`
    pub const SEMAPHORE: u16 = 10;
    /// `BoundedSemaphore`
    pub const BOUNDED_SEMAPHORE: u16 = 11;
    /// `Condition`
    pub const CONDITION: u16 = 12;
    /// `Event`
    pub const EVENT: u16 = 13;
    /// `Barrier`
    pub const BARRIER: u16 = 14;
    /// `set`
    pub const SET: u16 = 15;
    /// First id free for user-registered types.
    pub const FIRST_USER: u16 = 256;
}

/// CPython's typeid and proxy class name for a type id.
pub fn type_names(type_id: u16) -> (&'static str, &'static str) {
    use type_ids::*;
    match type_id {
        LIST => ("list", "ListProxy"),
        DICT => ("dict", "DictProxy"),
        VALUE => ("Value", "ValueProxy"),
        ARRAY => ("Array", "ArrayProxy"),
        NAMESPACE => ("Namespace", "NamespaceProxy"),
        QUEUE => ("Queue", "AutoProxy[Queue]"),
        JOINABLE_QUEUE => ("JoinableQueue", "AutoProxy[JoinableQueue]"),
        LOCK => ("Lock", "AcquirerProxy"),
        RLOCK => ("RLock", "AcquirerProxy"),
        SEMAPHORE => ("Semaphore", "AcquirerProxy"),
        BOUNDED_SEMAPHORE => ("BoundedSemaphore", "AcquirerProxy"),
        CONDITION => ("Condition", "ConditionProxy"),
        EVENT => ("Event", "EventProxy"),
        BARRIER => ("Barrier", "BarrierProxy"),
        SET => ("set", "SetProxy"),
        _ => ("user", "Proxy"),
    }
}

/// Names of user-registered types as this process learned them, per store: (store id, type id,
/// typeid, proxy class). Process-local, because each store numbers its user types itself (see
/// `types::user`), which fills this table when it first meets a type in a store. Never shrinks;
/// a handful of entries per store.
static USER_NAMES: parking_lot::RwLock<Vec<(u64, u16, &'static str, &'static str)>> =
    parking_lot::RwLock::new(Vec::new());

/// Records the typeid and proxy class of user type `type_id` in store `store`.
pub(crate) fn note_user_type(store: u64, type_id: u16, typeid: &'static str, class: &'static str) {
    let mut names = USER_NAMES.write();
    if !names.iter().any(|&(s, t, _, _)| s == store && t == type_id) {
        names.push((store, type_id, typeid, class));
    }
}

/// CPython's typeid and proxy class name of type `type_id` in store `store`: as
/// [`type_names`], and for a user-registered type the name it was registered under
/// (`("Counter", "AutoProxy[Counter]")`) once this process has met it in that store.
pub fn names_in(store: u64, type_id: u16) -> (&'static str, &'static str) {
    if type_id < type_ids::FIRST_USER {
        return type_names(type_id);
    }
    USER_NAMES
        .read()
        .iter()
        .find(|&&(s, t, _, _)| s == store && t == type_id)
        .map_or(("user", "Proxy"), |&(_, _, typeid, class)| (typeid, class))
}

/// The name of a referent in a store: plain data, printable and parsable, so it can be handed to
/// another process as text (`token.to_string()` / `s.parse::<Token>()`).
///
/// # Examples
/// ```
/// # let name = format!("doc-token-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Token, type_ids};
/// let l = store.list([1])?;
/// let t: Token = l.token();
/// assert_eq!((t.store, t.type_id), (store.id(), type_ids::LIST));
/// let text = t.to_string(); // "shm:<store id>:1:<slot>:<generation>"
/// assert!(text.starts_with("shm:"));
/// assert_eq!(text.parse::<Token>()?, t);
/// assert!("shm:nonsense".parse::<Token>().is_err());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// Random id of the store the referent lives in (drawn when the segment is created).
    pub store: u64,
    /// Type id of the referent (see [`type_ids`]).
    pub type_id: u16,
    /// Object-table slot.
    pub slot: u32,
    /// Generation of the slot when the referent was created.
    pub generation: u32,
}

impl Token {
    /// CPython's typeid of the referent (`'list'`, `'dict'`, `'Queue'`, …).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-typeid-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert_eq!(store.dict([(1, 2)])?.token().typeid(), "dict");
    /// assert_eq!(store.joinable_queue(0)?.token().typeid(), "JoinableQueue");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn typeid(&self) -> &'static str {
        self.names().0
    }

    /// CPython's typeid and proxy class name of the referent (see `names_in`).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-names-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert_eq!(store.array([1u8])?.token().names(), ("Array", "ArrayProxy"));
    /// assert_eq!(store.lock()?.token().names(), ("Lock", "AcquirerProxy"));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn names(&self) -> (&'static str, &'static str) {
        names_in(self.store, self.type_id)
    }

    /// The repr CPython gives a proxy: `<ListProxy object, typeid 'list' at 0x…>`; the address is
    /// the referent's slot and generation, the same in every process.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-proxyrepr-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let t = store.list([1])?.token();
    /// assert_eq!(
    ///     t.proxy_repr(),
    ///     format!("<ListProxy object, typeid 'list' at {:#x}>", (u64::from(t.slot) << 32) | u64::from(t.generation))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn proxy_repr(&self) -> String {
        let (typeid, class) = self.names();
        format!(
            "<{class} object, typeid '{typeid}' at {:#x}>",
            (u64::from(self.slot) << 32) | u64::from(self.generation)
        )
    }
}

/// `shm:<store id, 16 hex digits>:<type id>:<slot>:<generation>`.
impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shm:{:016x}:{}:{}:{}",
            self.store, self.type_id, self.slot, self.generation
        )
    }
}

impl FromStr for Token {
    type Err = Error;

    fn from_str(s: &str) -> Result<Token, Error> {
        let bad = || Error::ValueError(format!("invalid token {s:?}"));
        let mut parts = s.split(':');
        if parts.next() != Some("shm") {
            return Err(bad());
        }
        let store = parts
            .next()
            .filter(|p| p.len() == 16)
            .and_then(|p| u64::from_str_radix(p, 16).ok())
            .ok_or_else(bad)?;
        let type_id = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let slot = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let generation = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Token {
            store,
            type_id,
            slot,
            generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_text_round_trips_and_rejects_junk() {
        let t = Token {
            store: 0xdead_beef_0123_4567,
            type_id: type_ids::LIST,
            slot: 42,
            generation: 7,
        };
        let s = t.to_string();
        assert_eq!(s, "shm:deadbeef01234567:1:42:7");
        assert_eq!(s.parse::<Token>(), Ok(t));
        for junk in [
            "",
            "shm",
            "shm:1:1:1:1",
            "shm:deadbeef01234567:1:42",
            "shm:deadbeef01234567:1:42:7:9",
            "xyz:deadbeef01234567:1:42:7",
            "shm:deadbeef01234567:x:42:7",
            "shm:deadbeef01234567:1:-1:7",
        ] {
            assert!(
                matches!(junk.parse::<Token>(), Err(Error::ValueError(_))),
                "{junk}"
            );
        }
        assert_eq!(
            t.proxy_repr(),
            "<ListProxy object, typeid 'list' at 0x2a00000007>"
        );
    }
}
