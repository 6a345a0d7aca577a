//! User-registered types: the analog of CPython's `BaseManager.register(typeid, callable,
//! exposed=...)`.
//!
//! A user type is a `#[repr(C)]` [`Pod`] struct `T` and a table of named methods: plain `fn`
//! pointers that run on `&mut T` in place in the arena, with the object's lock held. A process
//! registers it once ([`register`]); every process that uses the type registers the same
//! [`UserType`] — the same code, since no `fn` pointer is ever stored in the arena, only the
//! type's name and fingerprint. (Types with heap data, archived with rkyv, are not supported:
//! a user type is plain data.)
//!
//! # Type ids
//! The object table stores a 16-bit type id per object. Processes may register their types in
//! any order, so a user type's id comes from the store, not from the process: each store keeps
//! a *user-type table* — [`USER_TYPES_CAP`] entries of [`UserTypeEntry`], allocated the first
//! time a user type is used in the store, its offset in the header word [`USER_TYPES_OFF`]
//! (`Header::reserved[0]`; the copy of the header a `Core` keeps from attach time does not see
//! it, so it is always read from the arena). Entry `i` gives type id `FIRST_USER + i` its typeid
//! and fingerprint. Each process caches (store, id) → registration; entries never change once
//! published, so the cache never goes stale.
//!
//! # Fingerprints
//! FNV-1a (stable across builds and platforms) over the typeid, `size_of::<T>()`,
//! `align_of::<T>()`, `std::any::type_name::<T>()` and the sorted method names. A process whose
//! registration of a typeid has another fingerprint than the store's entry is refused with a
//! `TypeError` when it creates, attaches, looks up or calls such an object. A process that has
//! not registered the type at all may still attach, hold, store, bind and drop such objects —
//! freeing one needs no registration — but calls give `NotFound`.
//!
//! # Crash protocol
//! - The table: under the arena lock, a zeroed block is allocated, then published with one store
//!   of its offset in the header. A crash before the store leaks the block; after, the table is
//!   whole (all zero: every entry free).
//! - An entry: under the arena lock, written whole with `used` 0, then `used` set to 1 with a
//!   second write; a crash before that leaves a free entry (overwritten by the next taker).
//!   Entries are never removed (a store has room for [`USER_TYPES_CAP`] user types).
//! - A body is the bytes of `T`. Methods mutate it in place; a holder that dies mid-method
//!   leaves whatever it wrote. Every bit pattern is a valid `T` (`Pod`), so nothing unsound
//!   follows; a type with invariants across fields gives a repair hook ([`UserType::repair`]),
//!   which the next locker runs. User methods are opaque to the library, so the lock-free read
//!   path planned for built-in types does not apply to them.
//!
//! # Examples
//! ```
//! # let name = format!("doc-user-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::{UserType, Value};
//! // Declared the same way in every process that uses it:
//! shmstore::register(UserType::<[u32; 2]>::new("DocMinMax").method("see", |mm, args| {
//!     let x = u32::try_from(i64::try_from(args.first().cloned().unwrap_or(Value::None))?)
//!         .map_err(|_| shmstore::Error::ValueError("out of range".into()))?;
//!     mm[0] = mm[0].min(x);
//!     mm[1] = mm[1].max(x);
//!     Ok(Value::None)
//! }))?;
//! let mm = store.user("DocMinMax", [u32::MAX, 0])?;
//! for x in [5, 2, 9] {
//!     mm.call_method("see", (x,))?;
//! }
//! assert_eq!(mm.get()?, [2, 9]);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use bytemuck::{Pod, Zeroable};
use parking_lot::{Mutex, RwLock};

use super::{Ctx, Kwargs, TypeDesc};
use crate::arena::{Arena, Offset};
use crate::core::Core;
use crate::error::{Error, Result};
pub use crate::header::USER_TYPES_OFF;
use crate::token::{self, type_ids, Token};
use crate::value::Value;

/// A method of a user type: the referent in place, and Python's positional arguments.
///
/// # Examples
/// ```
/// # let name = format!("doc-usermethod-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{UserMethod, UserType, Value};
/// let double: UserMethod<i64> = |n, _args| {
///     *n *= 2;
///     Ok(Value::Int(*n))
/// };
/// shmstore::register(UserType::<i64>::new("DocDoubler").method("double", double))?;
/// assert_eq!(store.user("DocDoubler", 21i64)?.call_method("double", ())?, Value::Int(42));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type UserMethod<T> = fn(&mut T, &[Value]) -> Result<Value>;

/// A method of a user type that also takes keyword arguments.
///
/// # Examples
/// ```
/// # let name = format!("doc-usermethodkw-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::bind_args;
/// use shmstore::{UserMethodKw, UserType, Value};
/// // add(n, times=1)
/// let add: UserMethodKw<i64> = |total, args, kwargs| {
///     let [n, times] = bind_args("add", args, kwargs, ["n", "times"], 1)?;
///     let n = n.map_or(Ok(0), i64::try_from)?;
///     let times = times.map_or(Ok(1), i64::try_from)?;
///     *total += n * times;
///     Ok(Value::Int(*total))
/// };
/// shmstore::register(UserType::<i64>::new("DocTotal").method_kw("add", add))?;
/// let t = store.user("DocTotal", 0i64)?;
/// assert_eq!(t.call_method_kw("add", (5,), &[("times", Value::Int(3))])?, Value::Int(15));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub type UserMethodKw<T> = fn(&mut T, &[Value], Kwargs<'_>) -> Result<Value>;

/// Longest typeid of a user type, in bytes.
pub const MAX_TYPEID: usize = 48;

/// Entries in a store's user-type table: how many user types one store can hold.
pub const USER_TYPES_CAP: u64 = 64;

/// One entry of a store's user-type table (64 bytes). See the module's crash protocol.
///
/// # Examples
/// ```
/// # let name = format!("doc-usertypeentr-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::user::{UserTypeEntry, USER_TYPES_OFF};
/// shmstore::register(shmstore::UserType::<u8>::new("DocByte"))?;
/// let _b = store.user("DocByte", 1u8)?; // the store records the type in its table
/// let raw = shmstore::segment::open(&name)?;
/// let table = raw.load_u64(USER_TYPES_OFF)?; // where the table lies
/// let e: UserTypeEntry = raw.read(Offset::new(table))?;
/// assert_eq!((e.used, &e.name[..e.name_len as usize]), (1, &b"DocByte"[..]));
/// assert_eq!(e.size, 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct UserTypeEntry {
    /// UTF-8 typeid, `name_len` bytes of it used.
    pub name: [u8; MAX_TYPEID],
    /// Length of the typeid.
    pub name_len: u16,
    /// 1 when the entry is in use, 0 when free.
    pub used: u16,
    /// `size_of::<T>()` of the registering build (informational; the fingerprint covers it).
    pub size: u32,
    /// The registration's fingerprint.
    pub fingerprint: u64,
}
const _: () = assert!(size_of::<UserTypeEntry>() == 64);

const ENTRY: u64 = size_of::<UserTypeEntry>() as u64;
const TABLE_BYTES: u64 = USER_TYPES_CAP * ENTRY;
const _: () = assert!(type_ids::FIRST_USER as u64 + USER_TYPES_CAP <= u16::MAX as u64);

// ---------------------------------------------------------------------------------------------
// The user's declaration.

enum UserFn<T> {
    Args(UserMethod<T>),
    Kwargs(UserMethodKw<T>),
}

impl<T> Clone for UserFn<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserFn<T> {}

/// The declaration of a user type: a typeid, the plain-data struct `T` it stores, and its
/// methods by name. Register it with [`register`] in every process that uses it.
///
/// `T` must be `#[repr(C)]` plain data ([`Pod`]) aligned to at most 16 bytes (checked at
/// compile time).
///
/// # Examples
/// ```
/// use bytemuck::{Pod, Zeroable};
/// use shmstore::{UserType, Value};
///
/// #[repr(C)]
/// #[derive(Clone, Copy, Pod, Zeroable)]
/// struct Counter {
///     hits: u64,
/// }
///
/// fn incr(c: &mut Counter, _args: &[Value]) -> shmstore::Result<Value> {
///     c.hits += 1;
///     Ok(Value::from(c.hits))
/// }
///
/// shmstore::register(
///     UserType::<Counter>::new("DocCounter")
///         .method("incr", incr)
///         .method("hits", |c, _| Ok(Value::from(c.hits)))
///         .display(|c| format!("DocCounter(hits={})", c.hits)),
/// )?;
/// # let name = format!("doc-usertype-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let c = store.user("DocCounter", Counter { hits: 0 })?;
/// assert_eq!(c.call_method("incr", ())?, Value::Int(1));
/// c.with_lock(|c| c.hits += 10)?;
/// assert_eq!(c.get()?.hits, 11);
/// assert_eq!(c.to_string(), "DocCounter(hits=11)");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct UserType<T: Pod> {
    typeid: &'static str,
    methods: Vec<(&'static str, UserFn<T>)>,
    display: Option<fn(&T) -> String>,
    to_value: Option<fn(&T) -> Value>,
    repair: Option<fn(&mut T)>,
}

impl<T: Pod> Clone for UserType<T> {
    fn clone(&self) -> Self {
        UserType {
            typeid: self.typeid,
            methods: self.methods.clone(),
            display: self.display,
            to_value: self.to_value,
            repair: self.repair,
        }
    }
}

impl<T: Pod> std::fmt::Debug for UserType<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserType")
            .field("typeid", &self.typeid)
            .field("type", &std::any::type_name::<T>())
            .field("methods", &self.method_names())
            .field("fingerprint", &format_args!("{:#018x}", self.fingerprint()))
            .finish()
    }
}

impl<T: Pod> UserType<T> {
    /// A user type named `typeid` (CPython's `register(typeid, …)`), with no methods yet.
    ///
    /// A `T` aligned to more than 16 bytes (the arena's block alignment) does not compile:
    /// ```compile_fail
    /// #[repr(C, align(32))]
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    /// struct Wide {
    ///     x: [u8; 32],
    /// }
    /// let _ = shmstore::UserType::<Wide>::new("Wide");
    /// ```
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-new-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::UserType;
    /// let t = UserType::<[u8; 16]>::new("DocId"); // no methods yet
    /// assert_eq!(t.typeid(), "DocId");
    /// shmstore::register(t)?;
    /// assert_eq!(store.user("DocId", [7u8; 16])?.get()?, [7; 16]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn new(typeid: &'static str) -> UserType<T> {
        const {
            assert!(
                align_of::<T>() <= 16,
                "user types are aligned to at most 16 bytes (the arena's block alignment)"
            )
        };
        UserType {
            typeid,
            methods: Vec::new(),
            display: None,
            to_value: None,
            repair: None,
        }
    }

    /// Exposes method `name`, taking positional arguments (keyword arguments are refused with
    /// CPython's `TypeError: Counter.incr() takes no keyword arguments`).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-method-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, UserType, Value};
    /// shmstore::register(UserType::<u32>::new("DocHits").method("hit", |n, _| {
    ///     *n += 1;
    ///     Ok(Value::from(*n))
    /// }))?;
    /// let h = store.user("DocHits", 0u32)?;
    /// assert_eq!(h.call_method("hit", ())?, Value::Int(1));
    /// assert_eq!(
    ///     h.call_method_kw("hit", (), &[("x", Value::Int(1))]),
    ///     Err(Error::TypeError("DocHits.hit() takes no keyword arguments".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn method(mut self, name: &'static str, f: UserMethod<T>) -> Self {
        self.methods.push((name, UserFn::Args(f)));
        self
    }

    /// Exposes method `name`, taking positional and keyword arguments (see
    /// [`crate::types::bind_args`] for Python's binding rules).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-methodkw-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{UserType, Value};
    /// shmstore::register(UserType::<u64>::new("DocSet").method_kw("set", |x, args, kwargs| {
    ///     let v = kwargs.iter().find(|(k, _)| *k == "value").map(|(_, v)| v).or(args.first());
    ///     *x = v.and_then(Value::as_int).unwrap_or(0) as u64;
    ///     Ok(Value::None)
    /// }))?;
    /// let p = store.user("DocSet", 0u64)?;
    /// p.call_method_kw("set", (), &[("value", Value::Int(7))])?;
    /// assert_eq!(p.get()?, 7);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn method_kw(mut self, name: &'static str, f: UserMethodKw<T>) -> Self {
        self.methods.push((name, UserFn::Kwargs(f)));
        self
    }

    /// Python's `str()` of the referent. Default: the repr of [`Self::to_value`]'s value if
    /// given, else `<Counter object>`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-display-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::UserType;
    /// shmstore::register(UserType::<[i32; 2]>::new("DocPoint").display(|p| format!("Point({}, {})", p[0], p[1])))?;
    /// assert_eq!(store.user("DocPoint", [1, -2])?.to_string(), "Point(1, -2)");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn display(mut self, f: fn(&T) -> String) -> Self {
        self.display = Some(f);
        self
    }

    /// The referent as a [`Value`], for `get_value`. Default: `Value::Bytes` of `T`'s bytes.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-tovalue-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{UserType, Value};
    /// shmstore::register(UserType::<[i32; 2]>::new("DocVec2").to_value(|p| Value::from((p[0], p[1]))))?;
    /// let p = store.user("DocVec2", [3, 4])?;
    /// assert_eq!(p.get_value()?, Value::from((3, 4)));
    /// assert_eq!(p.to_string(), "(3, 4)"); // the default display follows
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn to_value(mut self, f: fn(&T) -> Value) -> Self {
        self.to_value = Some(f);
        self
    }

    /// Brings a referent back to a valid state after a process died inside one of its
    /// methods (run by the next process to take its lock). Default: nothing — every bit
    /// pattern of `T` is valid.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-repair-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::UserType;
    /// // A range whose invariant, lo <= hi, a holder killed mid-update can leave broken.
    /// shmstore::register(UserType::<[i64; 2]>::new("DocRange").repair(|r| r[1] = r[1].max(r[0])))?;
    /// let r = store.user("DocRange", [0i64, 10])?;
    /// // A child process takes the lock, moves `lo` past `hi`, and is killed before it moves `hi`.
    /// // SAFETY: this program is single-threaded when it forks; the child only uses the store,
    /// // then dies.
    /// match unsafe { libc::fork() } {
    ///     0 => {
    ///         let _ = r.with_lock(|x| {
    ///             x[0] = 20;
    ///             // SAFETY: raise has no preconditions.
    ///             unsafe { libc::raise(libc::SIGKILL) };
    ///         });
    ///         unreachable!("killed while holding the lock");
    ///     }
    ///     child => {
    ///         let mut status = 0;
    ///         // SAFETY: `child` is this process's child; `status` is a valid out-pointer.
    ///         assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    ///     }
    /// }
    /// // The next locker found the holder dead and ran the repair before its own call.
    /// assert_eq!(r.get()?, [20, 20]);
    /// assert_eq!(store.stats()?.repairs, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn repair(mut self, f: fn(&mut T)) -> Self {
        self.repair = Some(f);
        self
    }

    /// The typeid.
    ///
    /// # Examples
    /// ```
    /// use shmstore::UserType;
    /// assert_eq!(UserType::<u8>::new("Flag").typeid(), "Flag");
    /// ```
    pub fn typeid(&self) -> &'static str {
        self.typeid
    }

    /// The method names, sorted.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{UserType, Value};
    /// let t = UserType::<u8>::new("Flag")
    ///     .method("set", |f, _| { *f = 1; Ok(Value::None) })
    ///     .method("clear", |f, _| { *f = 0; Ok(Value::None) });
    /// assert_eq!(t.method_names(), ["clear", "set"]);
    /// ```
    pub fn method_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.methods.iter().map(|m| m.0).collect();
        names.sort_unstable();
        names
    }

    /// The fingerprint the store compares between processes: typeid, size and alignment of
    /// `T`, `std::any::type_name::<T>()` and the sorted method names.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{UserType, Value};
    /// let a = UserType::<u32>::new("Counter").method("incr", |n, _| { *n += 1; Ok(Value::None) });
    /// let b = UserType::<u64>::new("Counter").method("incr", |n, _| { *n += 1; Ok(Value::None) });
    /// assert_ne!(a.fingerprint(), b.fingerprint()); // another T: another fingerprint
    /// assert_eq!(a.fingerprint(), a.clone().fingerprint());
    /// ```
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        h.bytes(b"shmstore user type v1");
        h.str(self.typeid);
        h.u64(size_of::<T>() as u64);
        h.u64(align_of::<T>() as u64);
        h.str(std::any::type_name::<T>());
        for name in self.method_names() {
            h.str(name);
        }
        h.0
    }

    fn body(arena: &Arena, body: u64) -> Result<&mut T> {
        arena
            .slice_mut::<T>(body, 1)?
            .first_mut()
            .ok_or(Error::corrupt("empty user-type body", body))
    }
}

/// FNV-1a, 64-bit: a fingerprint that is the same in every build and on every platform.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }
    /// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Registrations: the declaration with `T` erased.

/// What the registry calls on a registration without knowing `T`.
trait Ops: Send + Sync {
    fn call(
        &self,
        arena: &Arena,
        body: u64,
        index: u16,
        args: &[Value],
        kwargs: Kwargs<'_>,
    ) -> Result<Value>;
    fn write_str(&self, arena: &Arena, body: u64, out: &mut String) -> Result<()>;
    fn value(&self, arena: &Arena, body: u64) -> Result<Value>;
    fn repair(&self, arena: &Arena, body: u64) -> Result<()>;
}

impl<T: Pod> Ops for UserType<T> {
    fn call(
        &self,
        arena: &Arena,
        body: u64,
        index: u16,
        args: &[Value],
        kwargs: Kwargs<'_>,
    ) -> Result<Value> {
        let &(name, f) = self.methods.get(usize::from(index)).ok_or(Error::corrupt(
            "method index out of range",
            u64::from(index),
        ))?;
        let t = Self::body(arena, body)?;
        match f {
            UserFn::Args(f) if kwargs.is_empty() => f(t, args),
            UserFn::Args(_) => Err(Error::TypeError(format!(
                "{}.{name}() takes no keyword arguments",
                self.typeid
            ))),
            UserFn::Kwargs(f) => f(t, args, kwargs),
        }
    }

    fn write_str(&self, arena: &Arena, body: u64, out: &mut String) -> Result<()> {
        let t = Self::body(arena, body)?;
        match (self.display, self.to_value) {
            (Some(f), _) => out.push_str(&f(t)),
            (None, Some(f)) => f(t).write_repr(out),
            (None, None) => {
                out.push('<');
                out.push_str(self.typeid);
                out.push_str(" object>");
            }
        }
        Ok(())
    }

    fn value(&self, arena: &Arena, body: u64) -> Result<Value> {
        let t = Self::body(arena, body)?;
        Ok(match self.to_value {
            Some(f) => f(t),
            None => Value::Bytes(bytemuck::bytes_of(t).to_vec()),
        })
    }

    fn repair(&self, arena: &Arena, body: u64) -> Result<()> {
        if let Some(f) = self.repair {
            f(Self::body(arena, body)?);
        }
        Ok(())
    }
}

/// A registered user type, kept for the life of the process.
///
/// # Examples
/// ```
/// # let name = format!("doc-registration-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::user::registration;
/// use shmstore::{UserType, Value};
/// fn bump(n: &mut u64, _: &[Value]) -> shmstore::Result<Value> {
///     *n += 1;
///     Ok(Value::Int(*n as i64))
/// }
/// shmstore::register(UserType::<u64>::new("DocRegCounter").method("bump", bump))?;
/// let c = store.user("DocRegCounter", 0u64)?;
/// let reg = registration(store.core(), c.token().type_id)?;
/// assert_eq!(reg.typeid(), "DocRegCounter");
/// assert_eq!(reg.method_index("bump")?, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct Registration {
    serial: u32,
    typeid: &'static str,
    class: &'static str,
    fingerprint: u64,
    size: usize,
    rust_type: TypeId,
    rust_name: &'static str,
    /// Sorted; a method's index is its position here and in `ops`'s table.
    names: Vec<&'static str>,
    ops: Box<dyn Ops>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("typeid", &self.typeid)
            .field("type", &self.rust_name)
            .field("methods", &self.names)
            .field("fingerprint", &format_args!("{:#018x}", self.fingerprint))
            .finish()
    }
}

impl Registration {
    /// This process's serial number of the registration (1, 2, …).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-regserial-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::types::user::registration;
    /// use shmstore::UserType;
    /// shmstore::register(UserType::<u32>::new("DocFirst"))?;
    /// shmstore::register(UserType::<u32>::new("DocSecond"))?;
    /// let (a, b) = (store.user("DocFirst", 0u32)?, store.user("DocSecond", 0u32)?);
    /// let core = store.core();
    /// // Numbered in this process's order of registration.
    /// assert_eq!(registration(core, a.token().type_id)?.serial(), 1);
    /// assert_eq!(registration(core, b.token().type_id)?.serial(), 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The typeid.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-regtypeid-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::types::user::registration;
    /// use shmstore::UserType;
    /// shmstore::register(UserType::<[f32; 2]>::new("DocPair"))?;
    /// let p = store.user("DocPair", [1.0f32, 2.0])?;
    /// assert_eq!(registration(store.core(), p.token().type_id)?.typeid(), "DocPair");
    /// assert_eq!(p.token().typeid(), "DocPair");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn typeid(&self) -> &'static str {
        self.typeid
    }

    /// The index of method `name`.
    ///
    /// # Errors
    /// `AttributeError("'Counter' object has no attribute 'x'")`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-regmethodindex-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::types::user::registration;
    /// use shmstore::{Error, UserType, Value};
    /// fn get(n: &mut i64, _: &[Value]) -> shmstore::Result<Value> {
    ///     Ok(Value::Int(*n))
    /// }
    /// fn inc(n: &mut i64, _: &[Value]) -> shmstore::Result<Value> {
    ///     *n += 1;
    ///     Ok(Value::None)
    /// }
    /// shmstore::register(UserType::<i64>::new("DocIdx").method("inc", inc).method("get", get))?;
    /// let c = store.user("DocIdx", 0i64)?;
    /// let reg = registration(store.core(), c.token().type_id)?;
    /// assert_eq!((reg.method_index("get")?, reg.method_index("inc")?), (0, 1)); // sorted by name
    /// assert!(matches!(reg.method_index("dec"), Err(Error::AttributeError(_))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn method_index(&self, name: &str) -> Result<u16> {
        match self.names.binary_search(&name) {
            Ok(i) => Ok(i as u16),
            Err(_) => Err(Error::AttributeError(format!(
                "'{}' object has no attribute '{name}'",
                self.typeid
            ))),
        }
    }

    /// Calls method `index` on the referent `ctx` holds locked.
    ///
    /// # Errors
    /// `TypeError` for keyword arguments to a method that takes none; the method's own errors.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-regcall-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::dispatch::with_object;
    /// use shmstore::types::user::registration;
    /// use shmstore::{UserType, Value};
    /// fn add(n: &mut i64, args: &[Value]) -> shmstore::Result<Value> {
    ///     *n += args.first().and_then(Value::as_int).unwrap_or(1);
    ///     Ok(Value::Int(*n))
    /// }
    /// shmstore::register(UserType::<i64>::new("DocAdder").method("add", add))?;
    /// let c = store.user("DocAdder", 10i64)?;
    /// let (core, t) = (store.core(), c.token());
    /// let reg = registration(core, t.type_id)?;
    /// let add = reg.method_index("add")?;
    /// let v = with_object(core, &t, |ctx| reg.call(ctx, add, &[Value::Int(5)], &[]))?;
    /// assert_eq!(v, Value::Int(15));
    /// assert_eq!(c.get()?, 15);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn call(
        &self,
        ctx: &mut Ctx<'_>,
        index: u16,
        args: &[Value],
        kwargs: Kwargs<'_>,
    ) -> Result<Value> {
        self.ops
            .call(ctx.core.arena(), ctx.body, index, args, kwargs)
    }

    /// Whether this registration stores a `T`.
    pub(crate) fn is<T: 'static>(&self) -> bool {
        self.rust_type == TypeId::of::<T>()
    }
}

/// Registrations, by serial − 1.
static REGISTRY: RwLock<Vec<&'static Registration>> = RwLock::new(Vec::new());

/// (store id, type id) → registration, and (store id, serial) → type id, as learned from each
/// store's user-type table.
#[derive(Default)]
struct Bindings {
    by_id: HashMap<(u64, u16), &'static Registration>,
    by_serial: HashMap<(u64, u32), u16>,
}

static BINDINGS: LazyLock<RwLock<Bindings>> = LazyLock::new(Default::default);

/// Strings kept for the life of the process (typeids read from stores, proxy class names).
static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);

fn intern(s: &str) -> &'static str {
    let mut set = INTERNED.lock();
    if let Some(&k) = set.get(s) {
        return k;
    }
    let k: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(k);
    k
}

fn class_name(typeid: &str) -> &'static str {
    intern(&format!("AutoProxy[{typeid}]"))
}

/// Registers a user type in this process (CPython's `BaseManager.register`). Every process that
/// creates, attaches or calls objects of the type registers the same declaration; a store
/// refuses a process whose registration has another fingerprint (see
/// [`UserType::fingerprint`]). Registering the same declaration again is a no-op.
///
/// # Errors
/// `InvalidName` for a typeid that is empty or longer than 48 bytes, `ValueError` for a method
/// name given twice, `AlreadyExists` if the typeid is registered already with another
/// declaration.
///
/// # Examples
/// ```
/// # let name = format!("doc-register-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Error, UserType};
/// shmstore::register(UserType::<u16>::new("DocPort"))?;
/// shmstore::register(UserType::<u16>::new("DocPort"))?; // the same declaration again: fine
/// assert!(matches!(
///     shmstore::register(UserType::<u32>::new("DocPort")), // another declaration
///     Err(Error::AlreadyExists(_))
/// ));
/// assert_eq!(store.user("DocPort", 8080u16)?.get()?, 8080);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn register<T: Pod>(user_type: UserType<T>) -> Result<()> {
    let typeid = user_type.typeid;
    if typeid.is_empty() || typeid.len() > MAX_TYPEID {
        return Err(Error::InvalidName {
            name: typeid.to_owned(),
            reason: "user typeids are 1 to 48 bytes",
        });
    }
    let mut ut = user_type;
    ut.methods.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = ut.methods.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::ValueError(format!(
            "method '{}' given twice for user type '{typeid}'",
            w[0].0
        )));
    }
    let fingerprint = ut.fingerprint();
    let mut reg = REGISTRY.write();
    if let Some(old) = reg.iter().find(|r| r.typeid == typeid) {
        if old.fingerprint == fingerprint && old.rust_type == TypeId::of::<T>() {
            return Ok(());
        }
        return Err(Error::AlreadyExists(format!(
            "user type '{typeid}' is registered already with another declaration"
        )));
    }
    let serial =
        u32::try_from(reg.len() + 1).map_err(|_| Error::TableFull { capacity: u32::MAX })?;
    let names = ut.methods.iter().map(|m| m.0).collect();
    // Kept for the life of the process: method ids and proxies refer to it by `&'static`.
    let leaked: &'static Registration = Box::leak(Box::new(Registration {
        serial,
        typeid,
        class: class_name(typeid),
        fingerprint,
        size: size_of::<T>(),
        rust_type: TypeId::of::<T>(),
        rust_name: std::any::type_name::<T>(),
        names,
        ops: Box::new(ut),
    }));
    reg.push(leaked);
    Ok(())
}

fn registered(typeid: &str) -> Option<&'static Registration> {
    REGISTRY.read().iter().find(|r| r.typeid == typeid).copied()
}

/// The registration of typeid `typeid` for Rust type `T`.
///
/// # Errors
/// `NotFound` if this process has not registered `typeid`, `TypeError` if it registered it
/// for another Rust type.
pub(crate) fn registered_as<T: Pod>(typeid: &str) -> Result<&'static Registration> {
    let reg = registered(typeid).ok_or_else(|| not_registered(typeid))?;
    if !reg.is::<T>() {
        return Err(Error::TypeError(format!(
            "user type '{typeid}' is registered for {}, not {}",
            reg.rust_name,
            std::any::type_name::<T>()
        )));
    }
    Ok(reg)
}

#[cold]
fn not_registered(typeid: &str) -> Error {
    Error::NotFound(format!(
        "user type '{typeid}' is not registered in this process (shmstore::register)"
    ))
}

/// The name of method `index` of registration `serial`.
pub(crate) fn method_name(serial: u32, index: u16) -> &'static str {
    REGISTRY
        .read()
        .get((serial as usize).wrapping_sub(1))
        .and_then(|r| r.names.get(usize::from(index)))
        .copied()
        .unwrap_or("?")
}

// ---------------------------------------------------------------------------------------------
// The store's user-type table.

/// An entry as read from a store.
struct Known {
    name: &'static str,
    fingerprint: u64,
    size: u32,
}

/// The table's offset (0: none yet). The caller holds the arena lock.
fn table_off(arena: &Arena) -> Result<u64> {
    let off = arena.load_u64(USER_TYPES_OFF)?;
    if off != 0 {
        arena.check(off, TABLE_BYTES, 16)?;
    }
    Ok(off)
}

/// Entry `i` of the table at `table` (None: free). The caller holds the arena lock.
fn read_entry(arena: &Arena, table: u64, i: u64) -> Result<Option<(u64, UserTypeEntry)>> {
    let off = table + i * ENTRY;
    let e: UserTypeEntry = arena.read(Offset::new(off))?;
    match e.used {
        0 => Ok(None),
        1 if usize::from(e.name_len) <= MAX_TYPEID => Ok(Some((off, e))),
        _ => Err(Error::corrupt("bad user-type table entry", off)),
    }
}

fn entry_name(off: u64, e: &UserTypeEntry) -> Result<&str> {
    e.name
        .get(..usize::from(e.name_len))
        .and_then(|n| std::str::from_utf8(n).ok())
        .ok_or(Error::corrupt("user-type name is not UTF-8", off))
}

fn mismatch(store: &Core, reg: &Registration, known: &Known) -> Error {
    Error::TypeError(format!(
        "user type '{}' is registered differently in this process than in store '{}': \
         fingerprint {:#018x} here ({}, {} bytes, methods [{}]), {:#018x} in the store \
         ({} bytes); every process must register the same type with the same methods",
        reg.typeid,
        store.name(),
        reg.fingerprint,
        reg.rust_name,
        reg.size,
        reg.names.join(", "),
        known.fingerprint,
        known.size,
    ))
}

fn remember(core: &Core, id: u16, name: &'static str, reg: Option<&'static Registration>) {
    let store = core.store_id();
    token::note_user_type(
        store,
        id,
        name,
        reg.map_or_else(|| class_name(name), |r| r.class),
    );
    if let Some(reg) = reg {
        let mut b = BINDINGS.write();
        b.by_id.insert((store, id), reg);
        b.by_serial.insert((store, reg.serial), id);
    }
}

/// Reads the store's entry for user type `id` and matches it with this process's registration
/// (None: not registered here).
#[cold]
fn learn(core: &Core, id: u16) -> Result<Option<&'static Registration>> {
    let known = {
        let _g = core.lock_arena()?;
        let arena = core.arena();
        let table = table_off(arena)?;
        let i = u64::from(id.wrapping_sub(type_ids::FIRST_USER));
        if table == 0 || id < type_ids::FIRST_USER || i >= USER_TYPES_CAP {
            return Err(Error::corrupt(
                "user type id not in the store",
                u64::from(id),
            ));
        }
        let (off, e) = read_entry(arena, table, i)?.ok_or(Error::corrupt(
            "user type id not in the store",
            u64::from(id),
        ))?;
        Known {
            name: intern(entry_name(off, &e)?),
            fingerprint: e.fingerprint,
            size: e.size,
        }
    };
    match registered(known.name) {
        None => {
            remember(core, id, known.name, None);
            Ok(None)
        }
        Some(reg) if reg.fingerprint == known.fingerprint => {
            remember(core, id, known.name, Some(reg));
            Ok(Some(reg))
        }
        Some(reg) => {
            remember(core, id, known.name, None);
            Err(mismatch(core, reg, &known))
        }
    }
}

/// The registration of user type `id` in the store `core` is attached to.
///
/// # Errors
/// `NotFound` if this process has not registered the type, `TypeError` if it registered it
/// differently from the store, `Corrupt` for an id the store does not know.
///
/// # Examples
/// ```
/// # let name = format!("doc-registrationfn-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::user::registration;
/// use shmstore::UserType;
/// shmstore::register(UserType::<u8>::new("DocByte"))?;
/// let b = store.user("DocByte", 1u8)?;
/// let reg = registration(store.core(), b.token().type_id)?;
/// assert_eq!(reg.typeid(), "DocByte");
/// // User types get ids of their own, from FIRST_USER up (the store's table records them).
/// assert!(b.token().type_id >= shmstore::type_ids::FIRST_USER);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn registration(core: &Core, id: u16) -> Result<&'static Registration> {
    if let Some(&r) = BINDINGS.read().by_id.get(&(core.store_id(), id)) {
        return Ok(r);
    }
    match learn(core, id)? {
        Some(r) => Ok(r),
        None => Err(not_registered(token::names_in(core.store_id(), id).0)),
    }
}

/// Checks an object of type `id` about to be handed out by attach or lookup: a user type this
/// process registered differently from the store is refused. Built-in types and user types not
/// registered here pass.
///
/// # Errors
/// `TypeError` for a differing registration, `Corrupt` for an id the store does not know.
pub(crate) fn check(core: &Core, id: u16) -> Result<()> {
    if id < type_ids::FIRST_USER || BINDINGS.read().by_id.contains_key(&(core.store_id(), id)) {
        return Ok(());
    }
    learn(core, id).map(|_| ())
}

/// The id of `reg` in the store `core` is attached to, entering it in the store's user-type
/// table if it is not there yet.
///
/// # Errors
/// `TypeError` if the store has the typeid with another fingerprint, `TableFull` when the
/// table is full, `OutOfMemory`.
fn bind(core: &Core, reg: &'static Registration) -> Result<u16> {
    if let Some(&id) = BINDINGS
        .read()
        .by_serial
        .get(&(core.store_id(), reg.serial))
    {
        return Ok(id);
    }
    let id = core.with_heap(|heap| {
        let arena = core.arena();
        let mut table = table_off(arena)?;
        let mut free = None;
        if table != 0 {
            for i in 0..USER_TYPES_CAP {
                match read_entry(arena, table, i)? {
                    None => {
                        free.get_or_insert(i);
                    }
                    Some((off, e)) if entry_name(off, &e)? == reg.typeid => {
                        if e.fingerprint != reg.fingerprint {
                            let known = Known {
                                name: reg.typeid,
                                fingerprint: e.fingerprint,
                                size: e.size,
                            };
                            return Err(mismatch(core, reg, &known));
                        }
                        return Ok(i);
                    }
                    Some(_) => {}
                }
            }
        } else {
            let off = heap.alloc_zeroed(TABLE_BYTES)?;
            // Publish the whole (all-free) table with one store.
            arena.store_u64(USER_TYPES_OFF, off)?;
            table = off;
            free = Some(0);
        }
        let i = free.ok_or(Error::TableFull {
            capacity: USER_TYPES_CAP as u32,
        })?;
        let mut e = UserTypeEntry {
            name: [0; MAX_TYPEID],
            name_len: reg.typeid.len() as u16,
            used: 0,
            size: u32::try_from(reg.size).unwrap_or(u32::MAX),
            fingerprint: reg.fingerprint,
        };
        if let Some(dst) = e.name.get_mut(..reg.typeid.len()) {
            dst.copy_from_slice(reg.typeid.as_bytes());
        }
        let off = table + i * ENTRY;
        arena.write(Offset::new(off), e)?;
        // Publish with a second write that sets `used`.
        e.used = 1;
        arena.write(Offset::new(off), e)?;
        Ok(i)
    })?;
    // `id` < USER_TYPES_CAP, so the sum fits (asserted beside the constants).
    let id = type_ids::FIRST_USER + id as u16;
    remember(core, id, reg.typeid, Some(reg));
    Ok(id)
}

/// Creates an object of user type `reg` holding `init`.
///
/// # Errors
/// As `bind`; `OutOfMemory`, `TableFull` for the object.
pub(crate) fn create<T: Pod>(core: &Core, reg: &'static Registration, init: &T) -> Result<Token> {
    let id = bind(core, reg)?;
    let bytes = bytemuck::bytes_of(init);
    let body = core.alloc(bytes.len() as u64)?;
    let made = core
        .arena()
        .copy_in(body, bytes)
        .and_then(|()| core.create_object(id, body));
    if made.is_err() {
        let _ = core.free(body);
    }
    made
}

// ---------------------------------------------------------------------------------------------
// The descriptor every user type shares (methods go through `Registration`).

/// The descriptor of every user type. Its hooks find the object's registration through its
/// type id; freeing needs none (a body is one block).
pub static DESC: TypeDesc = TypeDesc {
    id: type_ids::FIRST_USER,
    typeid: "user",
    proxy: "AutoProxy",
    methods: &[],
    drop_body,
    repair,
    str: write_str,
    get_value,
    lockless: false,
    hooks: super::FastHooks::NONE,
};

fn reg_of(ctx: &Ctx<'_>) -> Result<&'static Registration> {
    let (ty, _) = ctx.core.table().type_and_state(ctx.slot)?;
    registration(ctx.core, ty)
}

fn drop_body(ctx: &mut Ctx<'_>) -> Result<()> {
    ctx.core.free(ctx.body)
}

/// Runs the type's repair hook if this process registered the type; otherwise the body is
/// left as it is (valid plain data).
fn repair(ctx: &mut Ctx<'_>) -> Result<()> {
    match reg_of(ctx) {
        Ok(reg) => reg.ops.repair(ctx.core.arena(), ctx.body),
        Err(_) => Ok(()),
    }
}

fn write_str(ctx: &mut Ctx<'_>, out: &mut String) -> Result<()> {
    reg_of(ctx)?.ops.write_str(ctx.core.arena(), ctx.body, out)
}

fn get_value(ctx: &mut Ctx<'_>) -> Result<Value> {
    reg_of(ctx)?.ops.value(ctx.core.arena(), ctx.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Pod, Zeroable)]
    struct P {
        x: u32,
    }

    fn nop(_: &mut P, _: &[Value]) -> Result<Value> {
        Ok(Value::None)
    }

    #[test]
    fn fingerprint_depends_on_methods_not_their_order() {
        let a = UserType::<P>::new("P").method("a", nop).method("b", nop);
        let b = UserType::<P>::new("P").method("b", nop).method("a", nop);
        let c = UserType::<P>::new("P").method("a", nop);
        let d = UserType::<P>::new("Q").method("a", nop).method("b", nop);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_ne!(a.fingerprint(), d.fingerprint());
        // Length prefixes keep ("ab") and ("a", "b") apart.
        let e = UserType::<P>::new("P").method("ab", nop);
        let f = UserType::<P>::new("P").method("a", nop).method("b", nop);
        assert_ne!(e.fingerprint(), f.fingerprint());
    }

    #[test]
    fn register_checks_names_and_conflicts() {
        assert!(matches!(
            register(UserType::<P>::new("")),
            Err(Error::InvalidName { .. })
        ));
        assert!(matches!(
            register(UserType::<P>::new(
                "a-typeid-that-is-much-too-long-for-the-store-table"
            )),
            Err(Error::InvalidName { .. })
        ));
        assert_eq!(
            register(
                UserType::<P>::new("UnitDup")
                    .method("a", nop)
                    .method("a", nop)
            ),
            Err(Error::ValueError(
                "method 'a' given twice for user type 'UnitDup'".into()
            ))
        );
        let t = UserType::<P>::new("UnitP").method("a", nop);
        assert_eq!(register(t.clone()), Ok(()));
        assert_eq!(register(t), Ok(()), "the same declaration again is a no-op");
        assert!(matches!(
            register(UserType::<P>::new("UnitP").method("b", nop)),
            Err(Error::AlreadyExists(_))
        ));
        let reg = registered("UnitP").unwrap();
        assert_eq!(reg.method_index("a"), Ok(0));
        assert_eq!(
            reg.method_index("zz"),
            Err(Error::AttributeError(
                "'UnitP' object has no attribute 'zz'".into()
            ))
        );
        assert_eq!(method_name(reg.serial(), 0), "a");
        assert_eq!(method_name(reg.serial(), 9), "?");
        assert_eq!(method_name(0, 0), "?");
    }

    #[test]
    fn a_scribbled_user_type_table_is_corrupt_not_a_panic() {
        register(UserType::<P>::new("UnitScribble").method("a", nop)).unwrap();
        let name = format!("unit-utab-{}", std::process::id());
        let store = crate::Store::create(&name, 1 << 20).unwrap();
        let core = store.core();
        let reg = registered("UnitScribble").unwrap();
        let token = create(core, reg, &P { x: 1 }).unwrap();
        assert_eq!(token.type_id, type_ids::FIRST_USER);
        let corrupt = |r: Result<Option<&'static Registration>>| {
            assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
        };
        // Ids the table does not hold.
        corrupt(learn(core, type_ids::FIRST_USER + 1));
        corrupt(learn(core, type_ids::FIRST_USER + USER_TYPES_CAP as u16));
        corrupt(learn(core, 3));
        // Entries with a bad `used`, an overlong or non-UTF-8 name.
        let arena = core.arena();
        let table = arena.load_u64(USER_TYPES_OFF).unwrap();
        let off = table + ENTRY;
        let mut e: UserTypeEntry = arena.read(Offset::new(table)).unwrap();
        for (used, len, byte) in [(7, 4, b'x'), (1, 200, b'x'), (1, 4, 0xff)] {
            e.used = used;
            e.name_len = len;
            e.name[0] = byte;
            arena.write(Offset::new(off), e).unwrap();
            corrupt(learn(core, type_ids::FIRST_USER + 1));
        }
        // A table offset out of the arena: learning and binding both refuse it.
        arena.store_u64(USER_TYPES_OFF, arena.len() - 16).unwrap();
        corrupt(learn(core, type_ids::FIRST_USER + 1));
        register(UserType::<P>::new("UnitScribble2")).unwrap();
        let other = registered("UnitScribble2").unwrap();
        assert!(matches!(
            create(core, other, &P { x: 2 }),
            Err(Error::Corrupt { .. })
        ));
        arena.store_u64(USER_TYPES_OFF, table).unwrap();
        crate::dispatch::release(core, &token);
        assert_eq!(core.objects_live(), 0);
    }
}
