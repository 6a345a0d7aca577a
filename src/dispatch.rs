//! The static dispatch table: (type id, method id) → handler, the same in every process that
//! links this crate. A method name resolves to a [`MethodId`] once; calls by id do no string
//! work. Also the two paths every call shares: locking an object (with recovery when its last
//! holder died) and releasing references (freeing objects whose last reference went).
//!
//! # Examples
//! ```
//! use shmstore::dispatch::{type_desc, MethodId};
//! use shmstore::type_ids;
//! let list = type_desc(type_ids::LIST)?;
//! assert_eq!((list.typeid, list.proxy), ("list", "ListProxy"));
//! let append = MethodId::resolve(type_ids::LIST, "append")?; // once
//! assert_eq!(append.name(), "append");
//! assert!(MethodId::resolve(type_ids::LIST, "push").is_err());
//! # Ok::<(), shmstore::Error>(())
//! ```

use crate::core::Core;
use crate::error::{Error, Result};
use crate::proxy::Handle;
use crate::sync::Acquired;
use crate::table::{LockGuard, SlotWords};
use crate::token::{type_ids, Token};
use crate::types::{self, Ctx, FastHooks, Kwargs, TypeDesc};
use crate::value::Value;

static TYPES: &[&TypeDesc] = &[
    &types::list::DESC,
    &types::dict::DESC,
    &types::set::DESC,
    &types::queue::QUEUE_DESC,
    &types::queue::JOINABLE_DESC,
    &types::value::DESC,
    &types::array::DESC,
    &types::namespace::DESC,
    &types::lock::DESC,
    &types::rlock::DESC,
    &types::semaphore::SEMAPHORE_DESC,
    &types::semaphore::BOUNDED_DESC,
    &types::condition::DESC,
    &types::event::DESC,
    &types::barrier::DESC,
];

/// The descriptor of type `id`. Every user-registered type (ids from
/// [`type_ids::FIRST_USER`]) shares one descriptor, whose hooks find the type's registration;
/// its methods are resolved and called through [`MethodId::resolve_in`] and [`call`].
///
/// # Errors
/// `Corrupt` for a type id this build does not know.
///
/// # Examples
/// ```
/// use shmstore::dispatch::type_desc;
/// use shmstore::type_ids;
/// let q = type_desc(type_ids::QUEUE)?;
/// assert_eq!(q.typeid, "Queue");
/// assert!(q.method_index("put").is_some());
/// assert!(type_desc(200).is_err()); // Corrupt: no such type id
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn type_desc(id: u16) -> Result<&'static TypeDesc> {
    if id >= type_ids::FIRST_USER {
        return Ok(&types::user::DESC);
    }
    by_id()
        .get(usize::from(id))
        .copied()
        .flatten()
        .ok_or_else(|| Error::corrupt("unknown type id", u64::from(id)))
}

/// The whole of a method name of up to 16 bytes as two words and a length, without a call to
/// `memcmp` or a loop over its bytes (two overlapping loads for 4 to 16 bytes): two names get
/// the same key exactly when they are equal. `None` for a longer name. For a string literal
/// the compiler works the key out at compile time.
#[inline(always)]
fn name_key(name: &[u8]) -> Option<(u64, u64, usize)> {
    let n = name.len();
    let w8 = |at: usize| {
        name.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_le_bytes)
    };
    let w4 = |at: usize| {
        name.get(at..at + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map(|w| u64::from(u32::from_le_bytes(w)))
    };
    let (a, b) = match n {
        8..=16 => (w8(0)?, w8(n - 8)?),
        4..=7 => (w4(0)? | w4(n - 4)? << 32, 0),
        0..=3 => {
            let mut a = 0u64;
            for (i, &c) in name.iter().enumerate() {
                a |= u64::from(c) << (8 * i);
            }
            (a, 0)
        }
        _ => return None,
    };
    Some((a, b, n))
}

/// [`name_key`] at compile time (a `const fn`: the same key, byte by byte), for the tables
/// of [`NAMES`]. `None` for a name over 16 bytes.
const fn name_key_const(name: &[u8]) -> Option<(u64, u64, usize)> {
    const fn word(name: &[u8], at: usize, len: usize) -> u64 {
        let mut w = 0u64;
        let mut i = 0;
        while i < len {
            w |= (name[at + i] as u64) << (8 * i);
            i += 1;
        }
        w
    }
    let n = name.len();
    let (a, b) = match n {
        8..=16 => (word(name, 0, 8), word(name, n - 8, 8)),
        4..=7 => (word(name, 0, 4) | word(name, n - 4, 4) << 32, 0),
        0..=3 => (word(name, 0, n), 0),
        _ => return None,
    };
    Some((a, b, n))
}

/// Slots of a type's name table: a power of two, several times the methods a type has, so
/// that a multiplier putting every name in a slot of its own is found in a few hundred tries
/// at most.
const NAME_SLOTS: usize = 256;
/// The most methods a built-in type may have (more fail the build: a slot holds an index
/// plus one in a byte, and the multiplier's search would take long).
const MAX_METHODS: usize = 64;

/// A built-in type's method names as a collision-free hash table, built at compile time:
/// `slots[slot_of(key, mult)]` is the method's index plus one (0: no method), and
/// `NAME_KEYS[base + index]` the method name's [`name_key`] (the length in the third word),
/// compared in full, so a name that is not the method's is never taken for it.
struct NameTable {
    mult: u64,
    base: usize,
    slots: [u8; NAME_SLOTS],
}

/// The slot of a name's key in a table of [`NAME_SLOTS`] with multiplier `mult`.
#[inline(always)]
const fn slot_of(a: u64, b: u64, n: usize, mult: u64) -> usize {
    ((a ^ b.rotate_left(29) ^ (n as u64) << 58).wrapping_mul(mult)
        >> (64 - NAME_SLOTS.trailing_zeros())) as usize
}

/// The length word of a key for a name over 16 bytes (no name's key equals it).
const LONG: u64 = u64::MAX;

/// The [`NameTable`] key of a method name: its [`name_key`], or [`LONG`] for a name over 16
/// bytes (which has no slot: it is found by the table's search).
const fn method_key(name: &str) -> (u64, u64, u64) {
    match name_key_const(name.as_bytes()) {
        Some((a, b, n)) => (a, b, n as u64),
        None => (0, 0, LONG),
    }
}

/// How many methods the built-in types have in all.
const ALL_METHODS: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < TYPES.len() {
        n += TYPES[i].methods.len();
        i += 1;
    }
    n
};

/// The keys of every built-in type's methods, type after type in [`TYPES`]' order, each type's
/// in its method order ([`NameTable::base`] is where a type's start).
const NAME_KEYS: [(u64, u64, u64); ALL_METHODS] = {
    let mut keys = [(0, 0, 0); ALL_METHODS];
    let mut at = 0;
    let mut i = 0;
    while i < TYPES.len() {
        let m = TYPES[i].methods;
        let mut j = 0;
        while j < m.len() {
            keys[at] = method_key(m[j].name);
            at += 1;
            j += 1;
        }
        i += 1;
    }
    keys
};

/// The name table of `desc`, whose keys start at `base` in [`NAME_KEYS`]: the first
/// multiplier (of a fixed sequence) under which every method name of up to 16 bytes lands in a
/// slot of its own. Fails the build for more than [`MAX_METHODS`] methods, or no such
/// multiplier among the first 100,000.
const fn name_table(desc: &TypeDesc, base: usize) -> NameTable {
    let m = desc.methods;
    assert!(
        m.len() <= MAX_METHODS,
        "too many methods for the name table"
    );
    let mut seed: u64 = 0;
    while seed < 100_000 {
        let mult = (0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0xbf58_476d_1ce4_e5b9)) | 1;
        let mut slots = [0u8; NAME_SLOTS];
        let mut ok = true;
        let mut i = 0;
        while i < m.len() {
            let (a, b, n) = NAME_KEYS[base + i];
            if n == LONG {
                i += 1;
                continue;
            }
            let s = slot_of(a, b, n as usize, mult);
            if slots[s] != 0 {
                ok = false;
                break;
            }
            slots[s] = i as u8 + 1;
            i += 1;
        }
        if ok {
            return NameTable { mult, base, slots };
        }
        seed += 1;
    }
    panic!("no collision-free multiplier for a type's method names")
}

/// The name tables of [`TYPES`], in its order, built at compile time. (Constants, not
/// statics: a typed proxy's `call_method` is compiled in the caller's crate, where a constant's
/// contents are known and a lookup of a string literal folds to its result, and a static's are
/// not.)
const NAMES: [NameTable; TYPES.len()] = {
    const EMPTY: NameTable = NameTable {
        mult: 0,
        base: 0,
        slots: [0; NAME_SLOTS],
    };
    let mut t = [EMPTY; TYPES.len()];
    let mut base = 0;
    let mut i = 0;
    while i < TYPES.len() {
        t[i] = name_table(TYPES[i], base);
        base += TYPES[i].methods.len();
        i += 1;
    }
    t
};

/// A built-in type id's position in [`TYPES`] (and [`NAMES`]); `u8::MAX` for no type.
const NAME_POS: [u8; type_ids::FIRST_USER as usize] = {
    let mut t = [u8::MAX; type_ids::FIRST_USER as usize];
    let mut i = 0;
    while i < TYPES.len() {
        t[TYPES[i].id as usize] = i as u8;
        i += 1;
    }
    t
};

/// The index of method `name` on built-in type `type_id`, from the type's name table built at
/// compile time: a hash of the name's whole content (up to 16 bytes), one slot and a compare of
/// the key, so a hit is never a wrong index. For a string literal and a type known at compile
/// time (a typed proxy's `call_method`), every step works on constants and the compiler folds
/// the lookup to the index. `None` for a name not in the table (no such method, a name over
/// 16 bytes) and for a user-registered type.
#[inline(always)]
fn static_index(type_id: u16, name: &str) -> Option<u16> {
    let pos = *NAME_POS.get(usize::from(type_id))?;
    let t = NAMES.get(usize::from(pos))?;
    let (a, b, n) = name_key(name.as_bytes())?;
    let i = usize::from(*t.slots.get(slot_of(a, b, n, t.mult))?).checked_sub(1)?;
    let k = NAME_KEYS.get(t.base.checked_add(i)?)?;
    (k.0 == a && k.1 == b && k.2 == n as u64).then_some(i as u16)
}

/// `TYPES` indexed by type id, built at compile time: every call looks its type up, so this is
/// one index into a constant table (which the compiler folds away where the id is a constant,
/// as in the typed proxies' `call_method`).
static BY_ID: [Option<&TypeDesc>; type_ids::FIRST_USER as usize] = {
    let mut t: [Option<&TypeDesc>; type_ids::FIRST_USER as usize] =
        [None; type_ids::FIRST_USER as usize];
    let mut i = 0;
    while i < TYPES.len() {
        // An id beyond the table fails the build (an index out of bounds in a constant).
        t[TYPES[i].id as usize] = Some(TYPES[i]);
        i += 1;
    }
    t
};

#[inline(always)]
fn by_id() -> &'static [Option<&'static TypeDesc>; type_ids::FIRST_USER as usize] {
    &BY_ID
}

/// A resolved method: calls through it skip the name lookup.
///
/// # Examples
/// ```
/// # let name = format!("doc-methodid-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::MethodId;
/// use shmstore::{type_ids, Value};
/// let l = store.list(Vec::<i64>::new())?;
/// let append = MethodId::resolve(type_ids::LIST, "append")?;
/// for i in 0..3 {
///     l.call_id(append, &[Value::Int(i)], &[])?; // no name lookup per call
/// }
/// assert_eq!(l.len()?, 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MethodId {
    type_id: u16,
    index: u16,
    /// For a user-registered type, the serial of the registration the index belongs to
    /// (process-local); 0 for the built-in types.
    user: u32,
}

impl MethodId {
    /// Resolves `name` on type `type_id`.
    ///
    /// # Errors
    /// `AttributeError("'list' object has no attribute 'x'")` for an unknown name.
    /// `TypeError` for a user-registered type, whose methods depend on the store: use
    /// [`MethodId::resolve_in`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::dispatch::MethodId;
    /// use shmstore::{type_ids, Error};
    /// assert_eq!(MethodId::resolve(type_ids::DICT, "keys")?.name(), "keys");
    /// assert_eq!(
    ///     MethodId::resolve(type_ids::DICT, "push"),
    ///     Err(Error::AttributeError("'dict' object has no attribute 'push'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn resolve(type_id: u16, name: &str) -> Result<MethodId> {
        if type_id >= type_ids::FIRST_USER {
            return Err(Error::type_error(
                "methods of user-registered types are resolved per store (MethodId::resolve_in)",
            ));
        }
        let desc = type_desc(type_id)?;
        // The type's name table (built at compile time) first; the table's search for a name
        // over 16 bytes and to report an unknown one.
        if let Some(index) = static_index(type_id, name) {
            return Ok(MethodId {
                type_id,
                index,
                user: 0,
            });
        }
        MethodId::resolve_slow(desc, name)
    }

    /// [`MethodId::resolve`] of a name not in the type's name table: the table's search.
    #[cold]
    #[inline(never)]
    fn resolve_slow(desc: &TypeDesc, name: &str) -> Result<MethodId> {
        match desc.method_index(name) {
            Some(i) => Ok(MethodId {
                type_id: desc.id,
                index: i as u16,
                user: 0,
            }),
            None => Err(Error::AttributeError(format!(
                "'{}' object has no attribute '{name}'",
                desc.typeid
            ))),
        }
    }

    /// Resolves `name` on the referent `token` names in the store `core` is attached to: a
    /// built-in type as [`MethodId::resolve`], a user-registered type through its registration
    /// in this process.
    ///
    /// # Errors
    /// `AttributeError("'Counter' object has no attribute 'x'")` for an unknown name;
    /// `NotFound` for a user type this process has not registered, `TypeError` for one it
    /// registered differently from the store.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-resolvein-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::dispatch::MethodId;
    /// let l = store.list([1])?;
    /// let m = MethodId::resolve_in(store.core(), &l.token(), "append")?;
    /// assert_eq!(m.name(), "append");
    /// assert!(matches!(
    ///     MethodId::resolve_in(store.core(), &l.token(), "push"),
    ///     Err(shmstore::Error::AttributeError(_))
    /// ));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn resolve_in(core: &Core, token: &Token, name: &str) -> Result<MethodId> {
        if token.type_id < type_ids::FIRST_USER {
            return MethodId::resolve(token.type_id, name);
        }
        let reg = types::user::registration(core, token.type_id)?;
        Ok(MethodId {
            type_id: token.type_id,
            index: reg.method_index(name)?,
            user: reg.serial(),
        })
    }

    /// The method's name.
    ///
    /// # Examples
    /// ```
    /// use shmstore::dispatch::MethodId;
    /// let m = MethodId::resolve(shmstore::type_ids::EVENT, "is_set")?;
    /// assert_eq!(m.name(), "is_set");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn name(&self) -> &'static str {
        if self.user != 0 {
            return types::user::method_name(self.user, self.index);
        }
        type_desc(self.type_id)
            .ok()
            .and_then(|d| d.methods.get(usize::from(self.index)))
            .map_or("?", |m| m.name)
    }
}

/// Runs `f` on the object `token` names, with its lock held. A dead holder's state is repaired
/// first (and counted). References `f` released are dropped after the lock is let go.
///
/// # Examples
/// ```
/// # let name = format!("doc-withobject-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::list;
/// use shmstore::Value;
/// let l = store.list([1, 2])?;
/// // Several typed operations under one take of the list's lock.
/// let last = with_object(store.core(), &l.token(), |ctx| {
///     list::append(ctx, &Value::Int(3))?;
///     list::get(ctx, -1)
/// })?;
/// assert_eq!(last, Value::Int(3));
/// assert_eq!(l.len()?, 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn with_object<R>(
    core: &Core,
    token: &Token,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<R>,
) -> Result<R> {
    with_object_timeout(core, token, None, f)
}

/// [`with_object`], waiting at most `timeout` (None: forever) for the object's lock.
///
/// # Errors
/// `Timeout` when the lock stays held; otherwise as `f`.
///
/// # Examples
/// ```
/// # let name = format!("doc-withobjtimeout-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::{lock_object, with_object_timeout};
/// use shmstore::types::list;
/// use shmstore::Error;
/// let l = store.list([1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// let wait = Some(Duration::from_millis(20));
/// assert_eq!(with_object_timeout(core, &t, wait, |ctx| list::len(ctx))?, 2);
/// // While this thread holds the list's lock, another one gives up after the timeout.
/// let held = lock_object(core, &t)?;
/// let other = std::thread::scope(|s| {
///     s.spawn(|| with_object_timeout(core, &t, wait, |ctx| list::len(ctx))).join().unwrap()
/// });
/// assert_eq!(other, Err(Error::Timeout));
/// drop(held);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn with_object_timeout<R>(
    core: &Core,
    token: &Token,
    timeout: Option<std::time::Duration>,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<R>,
) -> Result<R> {
    let (guard, mut ctx, died) = lock_ctx_died(core, token, timeout)?;
    if died && core.reports_owner_died() {
        // Repaired and consistent; the caller asked to be told instead of going on.
        drop(guard);
        let _ = crate::procs::reclaim(core);
        return Err(Error::OwnerDied);
    }
    let out = f(&mut ctx);
    drop(guard);
    if !ctx.released.is_empty() {
        release_all(core, std::mem::take(&mut ctx.released));
    }
    if core.take_reclaim_request() {
        let _ = crate::procs::reclaim(core);
    }
    out
}

/// The body offset of the live object `token` names, read without its lock, for the typed
/// proxies of `lockless` types (which then touch only atomics in the body). The proxy's
/// reference keeps the object, and so the body, alive.
///
/// # Errors
/// `StaleHandle` for a freed object; `Corrupt` for a slot of another type.
///
/// # Examples
/// ```
/// # let name = format!("doc-bodyunlocked-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::body_unlocked;
/// use shmstore::sync::word::WordLock;
/// let lk = store.lock()?;
/// let core = store.core();
/// // A Lock's body is its lock word, read here without the object's lock.
/// let word = core.arena().words::<WordLock>(body_unlocked(core, &lk.token())?)?;
/// assert!(!word.locked());
/// assert!(lk.acquire(true, None)?);
/// assert_eq!(word.holder(), std::process::id());
/// lk.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn body_unlocked(core: &Core, token: &Token) -> Result<u64> {
    let words = core.table().slot(token.slot)?;
    if words.check_live(token.slot, token.generation)? != token.type_id {
        return Err(Error::corrupt("object type changed", u64::from(token.slot)));
    }
    Ok(words.body.load(std::sync::atomic::Ordering::Acquire))
}

/// Runs `f` on the object `token` names without taking its lock, for `lockless` types, whose
/// handlers touch only atomics in the body (a `Lock`'s futex word). The proxy's reference keeps
/// the object alive; its liveness and type are checked as for a locked call.
///
/// # Errors
/// `StaleHandle` for a freed object; `Corrupt` for a slot of another type; otherwise as `f`.
///
/// # Examples
/// ```
/// # let name = format!("doc-withlockless-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object_lockless;
/// use shmstore::types::lock;
/// let lk = store.lock()?;
/// let core = store.core();
/// let got = with_object_lockless(core, &lk.token(), |ctx| lock::acquire(ctx, false, None))?;
/// assert!(got);
/// assert!(lk.locked()?);
/// // A type that keeps its state under the object's lock is refused.
/// let l = store.list([1])?;
/// assert!(with_object_lockless(core, &l.token(), |_| Ok(())).is_err());
/// # lk.release()?;
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn with_object_lockless<R>(
    core: &Core,
    token: &Token,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<R>,
) -> Result<R> {
    let table = core.table();
    let words = table.slot(token.slot)?;
    let ty = words.check_live(token.slot, token.generation)?;
    let desc = type_desc(ty)?;
    if ty != token.type_id || !desc.lockless {
        return Err(Error::corrupt("object type changed", u64::from(token.slot)));
    }
    let mut ctx = Ctx {
        core,
        slot: token.slot,
        body: words.body.load(std::sync::atomic::Ordering::Acquire),
        lock_off: table.lock_off(token.slot)?,
        repair: desc.repair,
        released: Vec::new(),
    };
    let out = f(&mut ctx);
    if !ctx.released.is_empty() {
        release_all(core, std::mem::take(&mut ctx.released));
    }
    out
}

/// Attempts of an optimistic read before it gives up and the caller takes the lock: enough to
/// outlast a short write on another core (a reader that falls back to the lock under contention
/// holds writers up), few enough that a writer that died mid-write costs a reader microseconds
/// once before the locked path repairs it.
const OPTIMISTIC_TRIES: u32 = 64;

/// How many times [`write_fast`] looks again at a lock another thread holds before leaving the
/// write to the general path: about as long as a short write holds it on another core.
const FAST_SPINS: u32 = 64;

/// Reads the object `token` names without taking its lock: `read` gets the arena and the
/// body's offset, reads with [`Arena::load_u64_racy`](crate::arena::Arena::load_u64_racy) and
/// returns a plain copy (no references into the arena). The slot's write sequence is read
/// before and after (see `table`); `read`'s result is returned only if no write was open or
/// happened meanwhile, so it is exactly what a locked read would have returned at some instant.
///
/// `None` tells the caller to take the lock: a write kept the sequence odd or changing for
/// every attempt (a writer that died mid-write keeps it odd until the lock's repair), the
/// object is not the live one `token` names, or `read` itself gave up (`None` from a valid
/// snapshot: a value it cannot copy without the lock, or data the locked path must report as
/// corrupt). A torn read never surfaces: its result is dropped by the sequence check.
///
/// # Examples
/// ```
/// # let name = format!("doc-readoptimistic-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::list;
/// let l = store.list([1, 2, 3])?;
/// let t = l.token();
/// assert_eq!(read_optimistic(store.core(), &t, list::len_racy), Some(3));
/// drop(l); // freed: the slot no longer holds the object the token names
/// assert_eq!(read_optimistic(store.core(), &t, list::len_racy), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn read_optimistic<R>(
    core: &Core,
    token: &Token,
    read: impl Fn(&crate::arena::Arena, u64) -> Option<R>,
) -> Option<R> {
    read_optimistic_at(core, core.table().slot(token.slot).ok()?, token, read)
}

/// [`read_optimistic`] on the slot's words the caller already found (a proxy pins its slot
/// once: [`Table::pin_slot`](crate::table::Table::pin_slot)).
///
/// # Examples
/// ```
/// # let name = format!("doc-readoptat-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic_at;
/// use shmstore::types::list;
/// let l = store.list([1, 2, 3])?;
/// let (core, t) = (store.core(), l.token());
/// let words = core.table().slot(t.slot)?;
/// assert_eq!(read_optimistic_at(core, words, &t, list::len_racy), Some(3));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline(always)]
pub fn read_optimistic_at<R>(
    core: &Core,
    words: &SlotWords,
    token: &Token,
    read: impl Fn(&crate::arena::Arena, u64) -> Option<R>,
) -> Option<R> {
    use std::sync::atomic::{fence, Ordering};
    for _ in 0..OPTIMISTIC_TRIES {
        // Acquire: pairs with the Release store that closed the last write, so the body reads
        // below see everything it wrote.
        let s = words.seq.load(Ordering::Acquire);
        if s & 1 == 0 {
            if !words.is_live_as(token.generation, token.type_id) {
                return None;
            }
            let r = read(core.arena(), words.body.load(Ordering::Relaxed));
            // Acquire fence: if any load above saw a write made after a writer's Release fence
            // (`write_begin`), the re-read below sees that writer's odd (or later) sequence.
            fence(Ordering::Acquire);
            if words.seq.load(Ordering::Relaxed) == s {
                return r;
            }
        }
        std::hint::spin_loop();
    }
    None
}

/// The fast path of the typed proxies' scalar writes: takes the object's lock if it is free
/// this instant, checks that the slot still holds the object, opens a write on its sequence and
/// runs `step` on the arena and the body's offset, with no context, no repair lookup and no
/// reclaim. `step` returns `None`, having written nothing, when it cannot do the job in place
/// (an index out of range, a cell that owns a block, a full array...); the write is then
/// cancelled (`SeqWrite::cancel`), so optimistic readers do not retry for it.
///
/// `None` means nothing was done and the caller takes the general path ([`with_object`]),
/// which waits for a busy lock, repairs what a dead holder left and reports every error.
/// A holder that dies inside `step` leaves the lock to be taken over and the sequence odd, as
/// on the general path, so `step` keeps each type's crash protocol: every state it can be
/// stopped in is one its type's repair accepts.
///
/// # Examples
/// ```
/// # let name = format!("doc-writefast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::{lock_object, write_fast};
/// let l = store.list([1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// // The list's length word, rewritten in place (its first word).
/// assert_eq!(write_fast(core, &t, |a, body| a.store_u64(body, 1).ok()), Some(()));
/// assert_eq!(l.len()?, 1);
/// // While the lock is held, the fast path declines and leaves the work to the general path.
/// let held = lock_object(core, &t)?;
/// let busy = std::thread::scope(|s| s.spawn(|| write_fast(core, &t, |_, _| Some(()))).join().unwrap());
/// assert_eq!(busy, None);
/// drop(held);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn write_fast<R>(
    core: &Core,
    token: &Token,
    step: impl FnOnce(&crate::arena::Arena, u64) -> Option<R>,
) -> Option<R> {
    write_fast_at(core, core.table().slot(token.slot).ok()?, token, step)
}

/// [`write_fast`] on the slot's words the caller already found (a proxy pins its slot once:
/// [`Table::pin_slot`](crate::table::Table::pin_slot)).
///
/// # Examples
/// ```
/// # let name = format!("doc-writefastat-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::write_fast_at;
/// let l = store.list([1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// let words = core.table().slot(t.slot)?;
/// // The list's length word, rewritten in place (its first word).
/// assert_eq!(write_fast_at(core, words, &t, |a, body| a.store_u64(body, 1).ok()), Some(()));
/// assert_eq!(l.len()?, 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline(always)]
pub fn write_fast_at<R>(
    core: &Core,
    words: &SlotWords,
    token: &Token,
    step: impl FnOnce(&crate::arena::Arena, u64) -> Option<R>,
) -> Option<R> {
    let guard = words.try_lock_spin(FAST_SPINS)?;
    if !words.is_live_as(token.generation, token.type_id) {
        guard.unlock();
        return None;
    }
    let w = words.write_begin();
    let r = step(
        core.arena(),
        words.body.load(std::sync::atomic::Ordering::Relaxed),
    );
    if r.is_none() {
        // Declined, having written nothing: readers need not retry.
        w.cancel();
    } else {
        drop(w);
    }
    // Explicitly, not by the guard's drop glue (see `LockGuard::unlock`); a panic in `step`
    // still ends the write and unlocks, through the drops.
    guard.unlock();
    r
}

/// Takes the lock of the object `token` names and builds its context (repairing first what a
/// dead holder left). The guard bounds the lock's life; the context's `released` references
/// are the caller's to drop after the guard.
#[inline]
fn lock_ctx<'a>(
    core: &'a Core,
    token: &Token,
    timeout: Option<std::time::Duration>,
) -> Result<(LockGuard<'a>, Ctx<'a>)> {
    lock_ctx_died(core, token, timeout).map(|(g, c, _)| (g, c))
}

/// [`lock_ctx`], also telling whether the lock was taken over from a dead holder.
#[inline(always)]
fn lock_ctx_died<'a>(
    core: &'a Core,
    token: &Token,
    timeout: Option<std::time::Duration>,
) -> Result<(LockGuard<'a>, Ctx<'a>, bool)> {
    let table = core.table();
    let words = table.slot(token.slot)?;
    let (guard, got) = words.lock(timeout)?;
    let ty = words.check_live(token.slot, token.generation)?;
    if ty != token.type_id {
        return Err(Error::corrupt("object type changed", u64::from(token.slot)));
    }
    let body = words.body.load(std::sync::atomic::Ordering::Relaxed);
    let mut ctx = Ctx {
        core,
        slot: token.slot,
        body,
        lock_off: table.lock_off(token.slot)?,
        repair: repair_by_type,
        released: Vec::new(),
    };
    let died = got == Acquired::OwnerDied;
    if died {
        core.want_reclaim();
        recover(&mut ctx, type_desc(ty)?, &guard)?;
    }
    Ok((guard, ctx, died))
}

/// The repair hook of the type in the context's slot, looked up when a repair is needed (rare)
/// rather than when every context is built.
fn repair_by_type(ctx: &mut Ctx<'_>) -> Result<()> {
    let (ty, _) = ctx.core.table().type_and_state(ctx.slot)?;
    (type_desc(ty)?.repair)(ctx)
}

/// Takes the lock of the object `token` names and keeps it for as long as the returned guard
/// lives, for proxies that hand out views into the body (an array's zero-copy guard). Returns
/// the guard and the body's offset; a dead holder's state is repaired first, as in
/// [`with_object`]. It is for types whose repair releases no references (plain-data bodies),
/// so there is no `released` list to hand back.
///
/// # Errors
/// `StaleHandle` for a freed object; `Os` (`EDEADLK`) if this thread holds the lock already.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockobject-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::lock_object;
/// use shmstore::types::array;
/// let a = store.array([1u32, 2, 3])?;
/// let core = store.core();
/// let (guard, body) = lock_object(core, &a.token())?;
/// // The body stays put (and unchanged) while the guard is held.
/// assert_eq!(array::header(core, body)?.len, 3);
/// drop(guard);
/// a.set(0, 7)?;
/// assert_eq!(a.get(0)?, 7);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn lock_object<'a>(core: &'a Core, token: &Token) -> Result<(LockGuard<'a>, u64)> {
    lock_object_timeout(core, token, None)
}

/// [`lock_object`], waiting at most `timeout` for the lock (`Timeout` when it stays held).
///
/// # Errors
/// As [`lock_object`], and `Timeout`.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockobjtimeout-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::{lock_object, lock_object_timeout};
/// use shmstore::Error;
/// let a = store.array([0u8; 4])?;
/// let (core, t) = (store.core(), a.token());
/// let held = lock_object(core, &t)?;
/// let other = std::thread::scope(|s| {
///     s.spawn(|| lock_object_timeout(core, &t, Some(Duration::from_millis(20))).map(|(_, b)| b))
///         .join()
///         .unwrap()
/// });
/// assert_eq!(other, Err(Error::Timeout));
/// drop(held);
/// assert!(lock_object_timeout(core, &t, Some(Duration::from_millis(20))).is_ok());
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn lock_object_timeout<'a>(
    core: &'a Core,
    token: &Token,
    timeout: Option<std::time::Duration>,
) -> Result<(LockGuard<'a>, u64)> {
    let (guard, ctx) = lock_ctx(core, token, timeout)?;
    let body = ctx.body;
    Ok((guard, body))
}

#[cold]
fn recover(ctx: &mut Ctx<'_>, desc: &TypeDesc, guard: &LockGuard<'_>) -> Result<()> {
    (desc.repair)(ctx)?;
    // A write the holder left open (any type with lock-free readers) is over: the repair made
    // the object consistent again.
    ctx.core.table().seq_repair(ctx.slot)?;
    ctx.core.note_repair();
    guard.make_consistent()
}

/// Calls method `mid` on the object with Python's positional and keyword arguments.
///
/// # Examples
/// ```
/// # let name = format!("doc-dispatchcall-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::{call, MethodId};
/// use shmstore::Value;
/// let l = store.list([3, 1, 2])?;
/// let (core, t) = (store.core(), l.token());
/// let sort = MethodId::resolve(t.type_id, "sort")?;
/// call(core, &t, sort, &[], &[("reverse", Value::Bool(true))])?;
/// let getitem = MethodId::resolve(t.type_id, "__getitem__")?;
/// assert_eq!(call(core, &t, getitem, &[Value::Int(0)], &[])?, Value::Int(3));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn call(
    core: &Core,
    token: &Token,
    mid: MethodId,
    args: &[Value],
    kwargs: Kwargs<'_>,
) -> Result<Value> {
    // The fast answers first (a built-in type's lock-free read or in-place scalar write);
    // `call_general` checks everything again and reports every error.
    // (Keyword arguments always take the general path, which binds them.)
    if mid.type_id == token.type_id && token.type_id < type_ids::FIRST_USER && kwargs.is_empty() {
        if let Ok(desc) = type_desc(token.type_id) {
            let m = usize::from(mid.index);
            if m < desc.methods.len() {
                if let Some(v) = desc.hooks.read.and_then(|f| f(core, token, m, args)) {
                    return Ok(v);
                }
                if let Some(v) = desc.hooks.write.and_then(|f| f(core, token, m, args)) {
                    return Ok(v);
                }
            }
        }
    }
    call_general(core, token, mid, args, kwargs)
}

/// The fast hooks of built-in type `id`, at compile time ([`FastHooks::NONE`] for a type
/// without any, or an id that is not a built-in type's); the same as its descriptor's (a test
/// checks it).
pub(crate) const fn builtin_hooks(id: u16) -> FastHooks {
    match id {
        type_ids::LIST => types::list::FAST_HOOKS,
        type_ids::DICT => types::dict::FAST_HOOKS,
        type_ids::VALUE => types::value::FAST_HOOKS,
        type_ids::ARRAY => types::array::FAST_HOOKS,
        type_ids::LOCK => types::lock::FAST_HOOKS,
        _ => FastHooks::NONE,
    }
}

/// Calls method `name` by name, as the proxies' `call_method_kw`: [`MethodId::resolve_in`]
/// then [`call`], with a shortcut for a built-in type: the method's index from the type's name
/// table ([`static_index`]), then `fast`'s answer (the proxy's: [`fast_builtin`] or a typed
/// proxy's own), then the general path. `static_type` is the type id a typed proxy knows at
/// compile time (`None` for the dynamic `Proxy`): inlined with that constant and a string
/// literal, the lookup folds to the index and `fast` to the one method's fast path.
#[inline(always)]
pub(crate) fn call_by_name(
    h: &Handle,
    static_type: Option<u16>,
    fast: &impl crate::proxy::CallFast,
    name: &str,
    args: &[Value],
    kwargs: Kwargs<'_>,
) -> Result<Value> {
    let (core, token) = (&*h.core, &h.token);
    let type_id = match static_type {
        Some(id) if id == token.type_id => Some(id),
        Some(_) => None,
        None => Some(token.type_id),
    };
    if let Some(type_id) = type_id {
        if let Some(index) = static_index(type_id, name) {
            if kwargs.is_empty() {
                if let Some(v) = fast.fast_by_index(usize::from(index), args) {
                    return Ok(v);
                }
            }
            let mid = MethodId {
                type_id,
                index,
                user: 0,
            };
            return call_general(core, token, mid, args, kwargs);
        }
    }
    call_by_name_slow(core, token, name, args, kwargs)
}

/// The fast answer to method `m` of built-in type `type_id` on the object `h` holds, for
/// [`call_by_name`]: `None` to take the general path. Lists, values and arrays answer on the
/// handle's pinned slot (`Handle::read_optimistic`/`write_fast`), a `Lock` on the body offset
/// the handle looked up once (`Handle::fixed_body`), other types through their descriptor's
/// [`FastHooks`]. Inlined with a constant `type_id` (a typed proxy's), the `match` goes.
#[inline(always)]
pub(crate) fn fast_builtin(h: &Handle, type_id: u16, m: usize, args: &[Value]) -> Option<Value> {
    match type_id {
        type_ids::LIST => types::list::fast_call(h, m, args),
        type_ids::VALUE => types::value::fast_call(h, m, args),
        type_ids::ARRAY => types::array::fast_call(h, m, args),
        type_ids::LOCK => types::lock::fast_fixed(&h.core, h.fixed_body().ok()?, m, args),
        _ => {
            let hooks = builtin_hooks(type_id);
            let (core, token) = (&*h.core, &h.token);
            if let Some(v) = hooks.read.and_then(|f| f(core, token, m, args)) {
                return Some(v);
            }
            hooks.write.and_then(|f| f(core, token, m, args))
        }
    }
}

/// [`fast_builtin`] for a typed proxy of built-in type `type_id` (a constant): a list's and a
/// value's steps inlined into the caller (`types::list::fast_call_inline`,
/// `types::value::fast_call_inline`), as the typed calls are, so that for a string literal's
/// method only that method's step is left; the other types as [`fast_builtin`].
#[inline(always)]
pub(crate) fn fast_builtin_typed(
    h: &Handle,
    type_id: u16,
    m: usize,
    args: &[Value],
) -> Option<Value> {
    match type_id {
        type_ids::LIST => types::list::fast_call_inline(h, m, args),
        type_ids::VALUE => types::value::fast_call_inline(h, m, args),
        _ => fast_builtin(h, type_id, m, args),
    }
}

/// [`call_by_name`] of a name not in its type's name table, or on a user-registered type.
#[inline(never)]
fn call_by_name_slow(
    core: &Core,
    token: &Token,
    name: &str,
    args: &[Value],
    kwargs: Kwargs<'_>,
) -> Result<Value> {
    let mid = MethodId::resolve_in(core, token, name)?;
    call(core, token, mid, args, kwargs)
}

/// [`call`] on the general path: checks, user types, the object's lock.
#[inline(never)]
fn call_general(
    core: &Core,
    token: &Token,
    mid: MethodId,
    args: &[Value],
    kwargs: Kwargs<'_>,
) -> Result<Value> {
    if mid.type_id != token.type_id {
        return Err(Error::type_error(format!(
            "method {} is not a method of '{}'",
            mid.name(),
            token.typeid()
        )));
    }
    if token.type_id >= type_ids::FIRST_USER {
        let reg = types::user::registration(core, token.type_id)?;
        if reg.serial() != mid.user {
            return Err(Error::type_error(format!(
                "method {} is not a method of '{}'",
                mid.name(),
                token.typeid()
            )));
        }
        return with_object(core, token, |ctx| reg.call(ctx, mid.index, args, kwargs));
    }
    let desc = type_desc(token.type_id)?;
    let m = desc
        .methods
        .get(usize::from(mid.index))
        .ok_or_else(|| Error::corrupt("method index out of range", 0))?;
    if desc.lockless {
        return with_object_lockless(core, token, |ctx| (m.call)(ctx, args, kwargs));
    }
    with_object(core, token, |ctx| (m.call)(ctx, args, kwargs))
}

/// Reads the whole referent under its lock (waiting at most `wait`), checking every offset,
/// length and tag on the way: what `check` does per object.
///
/// # Errors
/// `Timeout` if the lock stays held, `Corrupt` for what fails a check.
///
/// # Examples
/// ```
/// # let name = format!("doc-validate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::time::Duration;
/// use shmstore::dispatch::validate;
/// let d = store.dict([("a", vec![1, 2]), ("b", vec![3])])?;
/// validate(store.core(), &d.token(), Duration::from_secs(1))?; // every offset and tag checks out
/// let t = d.token();
/// drop(d);
/// assert!(validate(store.core(), &t, Duration::from_secs(1)).is_err()); // freed
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn validate(core: &Core, token: &Token, wait: std::time::Duration) -> Result<()> {
    let desc = type_desc(token.type_id)?;
    with_object_timeout(core, token, Some(wait), |ctx| {
        (desc.get_value)(ctx).map(|_| ())
    })
}

/// Python's `str()` of the referent.
///
/// # Examples
/// ```
/// # let name = format!("doc-strof-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::str_of;
/// let d = store.dict([("a", 1)])?;
/// assert_eq!(str_of(store.core(), &d.token())?, "{'a': 1}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn str_of(core: &Core, token: &Token) -> Result<String> {
    let desc = type_desc(token.type_id)?;
    with_object(core, token, |ctx| {
        let mut s = String::new();
        (desc.str)(ctx, &mut s)?;
        Ok(s)
    })
}

/// A deep copy of the referent.
///
/// # Examples
/// ```
/// # let name = format!("doc-dispvalueof-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::value_of;
/// use shmstore::Value;
/// let l = store.list([1, 2])?;
/// assert_eq!(value_of(store.core(), &l.token())?, Value::List(vec![Value::Int(1), Value::Int(2)]));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn value_of(core: &Core, token: &Token) -> Result<Value> {
    let desc = type_desc(token.type_id)?;
    with_object(core, token, |ctx| (desc.get_value)(ctx))
}

/// Drops one reference to each object in `tokens`, freeing every object whose last reference
/// this was — and, in turn, what those held (iteratively, so deep nesting cannot overflow the
/// stack). Errors are ignored: a reference that cannot be dropped is at worst a leak that
/// `reclaim` recovers.
///
/// # Examples
/// ```
/// # let name = format!("doc-releaseall-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::release_all;
/// let core = store.core();
/// let (a, b) = (store.list([1])?, store.dict([("k", 2)])?);
/// let tokens = vec![a.token(), b.token()];
/// for t in &tokens {
///     core.incref_token(t)?; // a reference of our own on each
/// }
/// drop((a, b));
/// assert_eq!(core.objects_live(), 2); // kept alive by our references
/// release_all(core, tokens);
/// assert_eq!(core.objects_live(), 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn release_all(core: &Core, mut tokens: Vec<Token>) {
    while let Some(t) = tokens.pop() {
        if let Ok(true) = core.decref(t.slot) {
            let _ = destroy(core, &t, &mut tokens);
        }
    }
}

/// Drops one reference (a proxy's); frees the object if it was the last.
///
/// # Examples
/// ```
/// # let name = format!("doc-disprelease-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::release;
/// let core = store.core();
/// let l = store.list([1])?;
/// let t = l.token();
/// core.incref_token(&t)?;
/// release(core, &t); // not the last reference: nothing is freed
/// assert_eq!(l.len()?, 1);
/// drop(l); // the last: freed
/// assert_eq!(core.objects_live(), 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn release(core: &Core, token: &Token) {
    if let Ok(true) = core.decref(token.slot) {
        free_unreferenced(core, token);
    }
}

/// Frees an object whose last reference the caller took off, and drops the references its body
/// held.
pub(crate) fn free_unreferenced(core: &Core, token: &Token) {
    let mut more = Vec::new();
    let _ = destroy(core, token, &mut more);
    release_all(core, more);
}

/// Frees an object no one references any more: its slot, then its body.
///
/// The slot is given back first, under the arena lock and only if it still holds this object:
/// that is the commit point, so two callers never both free one object (a reclaimer finishing
/// a dead process's drop, `repair` freeing an unreferenced object, and a slow freer). A process
/// killed while it frees the body then leaves blocks nothing reaches, which the mark and sweep
/// gives back, never a live slot with a half-freed body.
fn destroy(core: &Core, token: &Token, released: &mut Vec<Token>) -> Result<()> {
    let table = core.table();
    let (ty, _) = table.type_and_state(token.slot)?;
    let desc = type_desc(ty)?;
    let body = table
        .body(token.slot)?
        .load(std::sync::atomic::Ordering::Acquire);
    let lock_off = table.lock_off(token.slot)?;
    if !core.give_back_slot(token)? {
        return Ok(());
    }
    let mut ctx = Ctx {
        core,
        slot: crate::types::htable::UNPUBLISHED,
        body,
        lock_off,
        repair: desc.repair,
        released: std::mem::take(released),
    };
    let freed = (desc.drop_body)(&mut ctx);
    *released = ctx.released;
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keys_are_equal_exactly_for_equal_names() {
        let names = [
            "",
            "a",
            "ab",
            "abc",
            "abd",
            "get",
            "set",
            "pop",
            "wait",
            "waiT",
            "count",
            "index",
            "append",
            "extend",
            "acquire",
            "acquirf",
            "bcquire",
            "acqXire",
            "__len__",
            "__str__",
            "12345678",
            "12345679",
            "__getitem__",
            "__setitem__",
            "__getitem_x",
            "__delitem__",
            "__getattribute__",
            "__getattributx__",
            "_getattribute__",
        ];
        for a in names {
            for b in names {
                let (ka, kb) = (name_key(a.as_bytes()), name_key(b.as_bytes()));
                assert!(ka.is_some() && kb.is_some(), "{a} {b}");
                assert_eq!(ka == kb, a == b, "{a} vs {b}");
            }
        }
        // Longer names are not keyed (and so never cached).
        assert_eq!(name_key(b"a_long_method_name_indeed"), None);
        assert_eq!(name_key(b"_getattribute___"), name_key(b"_getattribute___"));
    }

    #[test]
    fn the_name_tables_find_every_method_and_nothing_else() {
        for (pos, d) in TYPES.iter().enumerate() {
            assert_eq!(
                usize::from(NAME_POS[usize::from(d.id)]),
                pos,
                "{}",
                d.typeid
            );
            for (i, m) in d.methods.iter().enumerate() {
                // The compile-time key is the run-time one.
                assert_eq!(
                    name_key_const(m.name.as_bytes()),
                    name_key(m.name.as_bytes()),
                    "{}",
                    m.name
                );
                let from_runtime = String::from_utf8(m.name.as_bytes().to_vec()).unwrap();
                let want = (m.name.len() <= 16).then_some(i as u16);
                assert_eq!(static_index(d.id, m.name), want, "{}.{}", d.typeid, m.name);
                assert_eq!(static_index(d.id, &from_runtime), want, "{}", m.name);
                // Long names too resolve, by the table's search.
                let mid = MethodId::resolve(d.id, m.name).unwrap();
                assert_eq!((mid.type_id, mid.index), (d.id, i as u16), "{}", m.name);
            }
            // Names that are not methods: none is taken for one (every name of every type
            // tried on this one, and near misses).
            for other in TYPES {
                for m in other.methods {
                    let here = d.method_index(m.name);
                    let got = static_index(d.id, m.name).map(usize::from);
                    assert!(got.is_none() || got == here, "{} on {}", m.name, d.typeid);
                    let mut near = m.name.as_bytes().to_vec();
                    if let Some(c) = near.last_mut() {
                        *c ^= 1;
                    }
                    let near = String::from_utf8(near).unwrap();
                    let got = static_index(d.id, &near).map(usize::from);
                    assert_eq!(got, d.method_index(&near).filter(|_| near.len() <= 16));
                }
            }
            assert_eq!(static_index(d.id, ""), None);
            assert_eq!(static_index(d.id, "no_such_method"), None);
        }
        // No table for a type id that is no built-in type's.
        assert_eq!(static_index(0, "append"), None);
        assert_eq!(static_index(200, "append"), None);
        assert_eq!(static_index(type_ids::FIRST_USER, "append"), None);
        assert_eq!(static_index(u16::MAX, "append"), None);
    }

    #[test]
    fn every_type_is_found_by_its_id_and_ids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for d in TYPES {
            assert!(seen.insert(d.id), "type id {} twice", d.id);
            assert!(std::ptr::eq(type_desc(d.id).unwrap(), *d));
            for w in d.methods.windows(2) {
                assert!(w[0].name < w[1].name, "{}: methods not sorted", d.typeid);
            }
        }
        for d in TYPES {
            // The typed proxies' compile-time hooks are the descriptor's.
            let h = builtin_hooks(d.id);
            assert_eq!(h.read.is_some(), d.hooks.read.is_some(), "{}", d.typeid);
            assert_eq!(h.write.is_some(), d.hooks.write.is_some(), "{}", d.typeid);
            assert_eq!(h.fixed.is_some(), d.hooks.fixed.is_some(), "{}", d.typeid);
            // Only a lockless type's body stays put for a handle's life.
            assert!(h.fixed.is_none() || d.lockless, "{}", d.typeid);
        }
        assert!(matches!(type_desc(0), Err(Error::Corrupt { .. })));
        assert!(matches!(type_desc(200), Err(Error::Corrupt { .. })));
    }
}
