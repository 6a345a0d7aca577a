//! The facade: create or open a store, make shared objects, name them, attach to them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alloc::Heap;
use crate::arena::{Arena, Offset};
use crate::cell::CELL_SIZE;
use crate::check::{CheckReport, RepairReport};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::header::{
    self, Header, Layout, NameEntry, ALLOC_OFF, ATTACH_OFF, FLAG_KEEP, LOCK_OFF, MAGIC,
    MAX_BOUND_NAME, NAMES_OFF, STATE_CLOSED, STATE_INIT, STATE_READY,
};
use crate::procs::{ProcInfo, Reclaimed};
use crate::proxy::{AsProxy, Handle, Proxy};
use crate::segment;
use crate::table::{self, LOCK_BYTES, SLOT_SIZE};
use crate::token::Token;

/// The format word of this build.
pub(crate) const FORMAT: u64 = header::format_word(LOCK_BYTES, SLOT_SIZE as usize, CELL_SIZE);

/// How long `open` waits for a segment whose creator is still initializing it.
const INIT_WAIT: Duration = Duration::from_secs(2);

/// Figures about a store, from [`Store::stats`].
///
/// # Examples
/// ```
/// # let name = format!("doc-stats-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let before = store.stats()?;
/// let l = store.list(0..100)?;
/// let after = store.stats()?;
/// assert_eq!(after.objects_live, before.objects_live + 1);
/// assert!(after.bytes_in_use > before.bytes_in_use);
/// drop(l); // the last reference: the list is freed
/// assert_eq!(store.stats()?, before);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stats {
    /// Segment size in bytes.
    pub size: u64,
    /// Bytes the allocator manages.
    pub heap_bytes: u64,
    /// Bytes in allocated blocks (headers included).
    pub bytes_in_use: u64,
    /// Bytes in free blocks.
    pub bytes_free: u64,
    /// Blocks allocated.
    pub blocks_in_use: u64,
    /// Objects live.
    pub objects_live: u64,
    /// Object slots in the table.
    pub object_slots: u64,
    /// Processes attached.
    pub processes_attached: u32,
    /// Locks recovered from holders that died.
    pub repairs: u64,
}

/// Options for creating a store; see [`Store::builder`].
///
/// # Examples
/// ```
/// # let name = format!("doc-builder-{}", std::process::id());
/// use shmstore::Store;
/// let store = Store::builder().mode(0o600).max_objects(128).create(&name, 1 << 20)?;
/// assert_eq!(store.stats()?.object_slots, 128);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StoreBuilder {
    mode: u32,
    keep: bool,
    max_objects: Option<u64>,
}

impl Default for StoreBuilder {
    fn default() -> Self {
        StoreBuilder {
            mode: 0o600,
            keep: false,
            max_objects: None,
        }
    }
}

impl StoreBuilder {
    /// Permission bits of the segment (default 0o600).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-mode-{}", std::process::id());
    /// use std::os::unix::fs::PermissionsExt;
    /// let store = shmstore::Store::builder().mode(0o640).create(&name, 1 << 20)?;
    /// let perms = std::fs::metadata(format!("/dev/shm/{}", store.name()))?.permissions();
    /// assert_eq!(perms.mode() & 0o777, 0o640);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Keep the segment when the last process detaches (remove it with [`Store::remove`]).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-keep-{}", std::process::id());
    /// use shmstore::Store;
    /// let store = Store::builder().keep(true).create(&name, 1 << 20)?;
    /// store.bind("answer", &store.value(42)?)?;
    /// drop(store); // the last process detaches: the segment stays
    /// let again = Store::open(&name)?;
    /// assert_eq!(again.lookup("answer")?.get_value()?, shmstore::Value::Int(42));
    /// drop(again);
    /// Store::remove(&name)?; // gone only now
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Number of object slots (default: one per KiB of segment, at least 64).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-maxobj-{}", std::process::id());
    /// use shmstore::Error;
    /// let store = shmstore::Store::builder().max_objects(2).create(&name, 1 << 20)?;
    /// let _a = store.list([1])?;
    /// let _b = store.list([2])?;
    /// assert_eq!(store.list([3]).map(|_| ()), Err(Error::TableFull { capacity: 2 }));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn max_objects(mut self, n: u64) -> Self {
        self.max_objects = Some(n.max(1));
        self
    }

    /// Creates the store `name` of `size` bytes.
    ///
    /// # Errors
    /// `AlreadyExists`, `InvalidName`, `ValueError` for a size too small, `Os`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-bcreate-{}", std::process::id());
    /// use shmstore::{Error, Store};
    /// let store = Store::builder().create(&name, 1 << 20)?;
    /// assert_eq!(store.stats()?.size, 1 << 20);
    /// assert!(matches!(Store::builder().create(&name, 1 << 20), Err(Error::AlreadyExists(_))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn create(self, name: &str, size: usize) -> Result<Store> {
        let layout = Layout::for_size(size, self.max_objects, SLOT_SIZE)?;
        let arena = segment::create(name, size, self.mode)?;
        match init(&arena, &layout, self.keep) {
            Ok(hdr) => {
                let core = Core::new_unattached(arena, hdr, name.to_owned());
                let idx = {
                    let _g = core.lock_arena()?;
                    crate::procs::register(&core)?
                };
                Ok(Store::attached(core.into_attached(idx)))
            }
            Err(e) => {
                let _ = segment::unlink(name);
                Err(e)
            }
        }
    }
}

fn random_u64s<const N: usize>() -> [u64; N] {
    let mut bytes = [[0u8; 8]; N];
    if getrandom::fill(bytes.as_flattened_mut()).is_err() {
        // No entropy source: fall back to time and pid, which still tells stores apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t
                ^ (u64::from(std::process::id()) << 32)
                ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .to_le_bytes();
        }
    }
    bytes.map(u64::from_le_bytes)
}

/// Formats a freshly created (zeroed) segment.
fn init(arena: &Arena, layout: &Layout, keep: bool) -> Result<Header> {
    let [store_id, k0, k1] = random_u64s::<3>();
    let hdr = Header {
        magic: MAGIC,
        format: FORMAT,
        size: arena.len(),
        store_id,
        hash_key: [k0, k1],
        created_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        creator_pid: std::process::id(),
        flags: if keep { FLAG_KEEP } else { 0 },
        lock_off: LOCK_OFF,
        alloc_off: ALLOC_OFF,
        names_off: NAMES_OFF,
        names_cap: layout.names_cap,
        table_off: layout.table_off,
        table_slots: layout.table_slots,
        heap_start: layout.heap_start,
        heap_end: layout.heap_end,
        procs_off: layout.procs_off,
        procs_cap: layout.procs_cap,
        reserved: [0; 14],
    };
    arena.write(Offset::new(0), hdr)?;
    table::init_lock(arena, LOCK_OFF)?;
    Heap::init(arena, ALLOC_OFF, layout.heap_start, layout.heap_end)?;
    arena.atomic_u32(ATTACH_OFF)?.store(1, Ordering::Relaxed);
    // Publish: everything above happens before an opener sees READY.
    arena
        .atomic_u32(header::STATE_OFF)?
        .store(STATE_READY, Ordering::Release);
    Ok(hdr)
}

/// A store: one shared-memory arena of objects, attached in this process.
///
/// `Store` is cheap to clone (an `Arc`), `Send` and `Sync`. The process stays attached while any
/// `Store` or proxy of it is alive; the last process to detach removes the segment.
///
/// # Examples
/// ```
/// # let name = format!("doc-store-{}", std::process::id());
/// use shmstore::{Store, Value};
/// let store = Store::create(&name, 1 << 20)?; // this process creates it
/// let counts = store.dict([("a", 0)])?;
/// store.bind("counts", &counts)?;
/// // Another process (or thread) opens it by name and finds the dict by its bound name.
/// let other = Store::open(&name)?;
/// let seen = other.lookup("counts")?;
/// seen.call_method("__setitem__", ("a", 5))?;
/// assert_eq!(counts.get("a")?, Some(Value::Int(5)));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone)]
pub struct Store {
    core: Arc<Core>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.core.name())
            .field("size", &self.core.arena().len())
            .finish()
    }
}

impl Store {
    fn attached(core: Core) -> Store {
        let core = Arc::new(core);
        crate::fork::register(&core);
        Store { core }
    }

    /// Options for [`StoreBuilder::create`]: mode, keep, number of object slots.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-sbuilder-{}", std::process::id());
    /// let store = shmstore::Store::builder().max_objects(64).create(&name, 1 << 20)?;
    /// assert_eq!(store.stats()?.object_slots, 64);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// Creates a new store named `name` of `size` bytes (mode 0600).
    ///
    /// # Errors
    /// `AlreadyExists` if the name is taken, `InvalidName`, `ValueError` for a size below 64 KiB.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-create-{}", std::process::id());
    /// let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list(0..3)?;
    /// assert_eq!(l.to_string(), "[0, 1, 2]");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn create(name: &str, size: usize) -> Result<Store> {
        Store::builder().create(name, size)
    }

    /// Attaches to the existing store `name`.
    ///
    /// # Errors
    /// `NotFound` if there is none (or it is closing), `PermissionDenied`, `Corrupt` for a
    /// segment that is not a shmstore arena, `Incompatible` for one of another format.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-open-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Store};
    /// let l = store.list(["shared"])?;
    /// let other = Store::open(&name)?; // as another process would
    /// assert_eq!(other.stats()?.processes_attached, 2);
    /// assert_eq!(other.attach(&l.token())?.to_string(), "['shared']");
    /// assert!(matches!(Store::open("doc-no-such-store"), Err(Error::NotFound(_))));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Store> {
        // A segment that closes under us was unlinked; a new one of that name may exist, so
        // the open is retried a few times before reporting NotFound.
        for _ in 0..3 {
            match open_once(name) {
                Err(Error::NotFound(_)) => continue,
                Ok(core) => {
                    let store = Store::attached(core);
                    // Give back what dead processes held (best effort: the open succeeded).
                    let _ = store.reclaim();
                    return Ok(store);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::NotFound(name.to_owned()))
    }

    /// Removes the segment `name` (processes attached keep their mapping).
    ///
    /// # Errors
    /// `NotFound`, `InvalidName`, `PermissionDenied`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-remove-{}", std::process::id());
    /// use shmstore::{Error, Store};
    /// let store = Store::builder().keep(true).create(&name, 1 << 20)?;
    /// Store::remove(&name)?;
    /// assert!(matches!(Store::open(&name), Err(Error::NotFound(_))));
    /// let l = store.list([1])?; // this process's mapping still works
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn remove(name: &str) -> Result<()> {
        segment::unlink(name)
    }

    /// Opt in to being told: a call that finds its object's lock held by a process that died
    /// repairs the object as always, then returns `Error::OwnerDied` instead of going on (call
    /// again to proceed). Off by default, when recovery is silent and counted in
    /// `stats().repairs`. Applies to every proxy of this attachment, on calls that take the
    /// object's lock (lock-free reads of a consistent object, like `len`, are not told).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-reportownerd-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, Value};
    /// store.report_owner_died(true);
    /// let a = store.array([1u32, 2])?;
    /// // A thread takes the array's lock and ends without letting go: the holder is dead.
    /// std::thread::scope(|s| s.spawn(|| a.lock().map(std::mem::forget)).join().unwrap())?;
    /// assert_eq!(a.call_method("__len__", ()), Err(Error::OwnerDied)); // told once
    /// assert_eq!(a.call_method("__len__", ())?, Value::Int(2)); // then the call proceeds
    /// assert_eq!(store.stats()?.repairs, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn report_owner_died(&self, on: bool) {
        self.core.set_report_owner_died(on);
    }

    /// The store's name.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-name-{}", std::process::id());
    /// let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert_eq!(store.name(), name);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The store's random id, the first part of every token.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-id-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let other = shmstore::Store::open(&name)?;
    /// assert_eq!(store.id(), other.id()); // the same store
    /// let l = store.list([1])?;
    /// assert_eq!(l.token().store, store.id());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn id(&self) -> u64 {
        self.core.store_id()
    }

    /// Creates an object with `create` (a type's `create`) and wraps its reference in a
    /// handle (for the typed factories), recorded so that a crash in between leaks nothing.
    pub(crate) fn make(&self, create: impl FnOnce(&Core) -> Result<Token>) -> Result<Arc<Handle>> {
        self.core.make(create)
    }

    /// The attached arena: the entry point to the store's internal layers (the object table,
    /// the allocator, the dispatcher's `with_object` and the types' typed operations), for tools
    /// and advanced users. Every [`Core`] method is safe and checked: a bad offset or slot is an
    /// error (`Corrupt`, `StaleHandle`), never undefined behaviour. Reference counts taken
    /// through it (`incref`, `create_object`) are the caller's to give back.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-storecore-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::dispatch::with_object;
    /// use shmstore::types::list;
    /// let l = store.list([1, 2, 3])?;
    /// let core = store.core();
    /// assert_eq!(core.name(), name);
    /// assert_eq!(core.store_id(), store.id());
    /// // A typed operation run on the list in place, under its lock.
    /// let n = with_object(core, &l.token(), |ctx| list::len(ctx))?;
    /// assert_eq!(n, 3);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// A new proxy for the object `token` names, holding its own reference.
    ///
    /// # Errors
    /// `NotFound` for a token of another store, `StaleHandle` if the object was freed;
    /// `TypeError` for a user-registered type this process registered differently.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-attach-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, ListProxy, Token};
    /// let l = store.list([1, 2])?;
    /// let text = l.token().to_string(); // sent to another process, say
    /// let p = store.attach(&text.parse::<Token>()?)?;
    /// assert_eq!(ListProxy::try_from(p)?.len()?, 2);
    /// let t = l.token();
    /// drop(l); // the last reference: the list is freed
    /// assert!(matches!(store.attach(&t), Err(Error::StaleHandle { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn attach(&self, token: &Token) -> Result<Proxy> {
        let p = Proxy {
            h: self.core.take_handle(|incref| {
                incref(token)?;
                Ok(*token)
            })?,
        };
        crate::types::user::check(&self.core, token.type_id)?;
        Ok(p)
    }

    fn check_bound_name(name: &str) -> Result<()> {
        if name.is_empty() || name.len() > MAX_BOUND_NAME {
            return Err(Error::InvalidName {
                name: name.to_owned(),
                reason: "object names are 1 to 48 bytes",
            });
        }
        Ok(())
    }

    fn name_entries(&self) -> impl Iterator<Item = Result<(u64, NameEntry)>> + '_ {
        (0..self.core.header().names_cap).map(move |i| {
            let off = self.core.name_entry_off(i)?;
            Ok((off, self.core.arena().read(Offset::<NameEntry>::new(off))?))
        })
    }

    fn entry_matches(e: &NameEntry, name: &str) -> bool {
        e.used == 1
            && e.name_len as usize == name.len()
            && e.name.get(..name.len()) == Some(name.as_bytes())
    }

    /// Binds `name` to the object `proxy` refers to; the binding holds a reference, so the
    /// object lives until [`Store::unbind`] even with no proxy left.
    ///
    /// # Errors
    /// `AlreadyExists` if the name is bound, `InvalidName`, `TableFull` when the directory is
    /// full.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-bind-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// store.bind("results", &store.dict([("n", 1)])?)?; // the name keeps it alive
    /// assert_eq!(store.lookup("results")?.to_string(), "{'n': 1}");
    /// assert_eq!(
    ///     store.bind("results", &store.list([0])?),
    ///     Err(Error::AlreadyExists("results".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn bind<P: AsProxy>(&self, name: &str, proxy: &P) -> Result<()> {
        Self::check_bound_name(name)?;
        let token = proxy.token();
        let _g = self.core.lock_arena()?;
        let mut free = None;
        for e in self.name_entries() {
            let (off, e) = e?;
            if Self::entry_matches(&e, name) {
                return Err(Error::AlreadyExists(name.to_owned()));
            }
            if e.used != 1 && free.is_none() {
                free = Some(off);
            }
        }
        let off = free.ok_or(Error::TableFull {
            capacity: self.core.header().names_cap as u32,
        })?;
        self.core.incref(token.slot)?;
        let mut entry = NameEntry {
            name: [0; 48],
            name_len: name.len() as u32,
            slot: token.slot,
            generation: token.generation,
            type_id: token.type_id,
            used: 0,
        };
        entry.name[..name.len()].copy_from_slice(name.as_bytes());
        let arena = self.core.arena();
        arena.write(Offset::new(off), entry)?;
        // Publish with one store of `used`.
        entry.used = 1;
        arena.write(Offset::new(off), entry)
    }

    /// Removes the binding `name`, dropping its reference.
    ///
    /// # Errors
    /// `NotFound` if the name is not bound.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-unbind-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let before = store.stats()?.objects_live;
    /// store.bind("tmp", &store.list([1])?)?;
    /// store.unbind("tmp")?; // the binding held the last reference: the list is freed
    /// assert_eq!(store.stats()?.objects_live, before);
    /// assert_eq!(store.unbind("tmp"), Err(Error::NotFound("tmp".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn unbind(&self, name: &str) -> Result<()> {
        Self::check_bound_name(name)?;
        let token = {
            let _g = self.core.lock_arena()?;
            let mut found = None;
            for e in self.name_entries() {
                let (off, e) = e?;
                if Self::entry_matches(&e, name) {
                    found = Some((off, e));
                    break;
                }
            }
            let (off, mut e) = found.ok_or_else(|| Error::NotFound(name.to_owned()))?;
            e.used = 0;
            self.core.arena().write(Offset::new(off), e)?;
            Token {
                store: self.core.store_id(),
                type_id: e.type_id,
                slot: e.slot,
                generation: e.generation,
            }
        };
        crate::dispatch::release(&self.core, &token);
        Ok(())
    }

    /// A proxy for the object bound to `name`.
    ///
    /// # Errors
    /// `NotFound` if the name is not bound; `TypeError` for a user-registered type this process
    /// registered differently.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-lookup-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{Error, QueueProxy};
    /// store.bind("jobs", &store.queue(0)?)?;
    /// let jobs = QueueProxy::try_from(store.lookup("jobs")?)?;
    /// jobs.put("work")?;
    /// assert_eq!(store.lookup("nope").map(|_| ()), Err(Error::NotFound("nope".into())));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn lookup(&self, name: &str) -> Result<Proxy> {
        Self::check_bound_name(name)?;
        let h = self.core.take_handle(|incref| {
            let _g = self.core.lock_arena()?;
            let mut found = None;
            for e in self.name_entries() {
                let (_, e) = e?;
                if Self::entry_matches(&e, name) {
                    found = Some(Token {
                        store: self.core.store_id(),
                        type_id: e.type_id,
                        slot: e.slot,
                        generation: e.generation,
                    });
                    break;
                }
            }
            let token = found.ok_or_else(|| Error::NotFound(name.to_owned()))?;
            incref(&token)?;
            Ok(token)
        })?;
        let type_id = h.token.type_id;
        let p = Proxy { h };
        // After the arena lock is let go: the check may take it.
        crate::types::user::check(&self.core, type_id)?;
        Ok(p)
    }

    /// The names bound now, in directory order.
    ///
    /// # Errors
    /// `Corrupt` if the directory fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-names-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// store.bind("b", &store.list([1])?)?;
    /// store.bind("a", &store.list([2])?)?;
    /// let mut names = store.names()?;
    /// names.sort();
    /// assert_eq!(names, ["a", "b"]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn names(&self) -> Result<Vec<String>> {
        let _g = self.core.lock_arena()?;
        let mut out = Vec::new();
        for e in self.name_entries() {
            let (off, e) = e?;
            if e.used == 1 {
                let n = e
                    .name
                    .get(..e.name_len as usize)
                    .ok_or(Error::corrupt("bound name length", off))?;
                out.push(
                    String::from_utf8(n.to_vec())
                        .map_err(|_| Error::corrupt("bound name not utf-8", off))?,
                );
            }
        }
        Ok(out)
    }

    /// Gives back what attached processes that died still held: their references (objects whose
    /// last reference they were are freed) and their attachments. Runs on its own when a store
    /// is opened and after a lock is taken over from a dead holder.
    ///
    /// # Errors
    /// `Corrupt` if the process table fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-reclaim-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// // Nothing to give back while every attached process is alive.
    /// let r = store.reclaim()?;
    /// assert_eq!((r.processes, r.references), (0, 0));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn reclaim(&self) -> Result<Reclaimed> {
        crate::procs::reclaim(&self.core)
    }

    /// Walks and validates the whole store — allocator, object table, every object's body, the
    /// name directory, the process table — and reports what is wrong, changing nothing.
    ///
    /// # Errors
    /// Only when the allocator's header itself is unusable.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-check-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let _l = store.list(["x"; 10])?;
    /// let report = store.check()?;
    /// assert!(report.is_ok(), "{:?}", report.problems);
    /// assert_eq!(report.objects, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        crate::check::check(&self.core)
    }

    /// Mark and sweep: frees every allocated block that nothing reaches (what a process killed
    /// in the middle of an operation can leak) and puts free object slots a crash left off the
    /// free list back on it. Takes every object's lock in turn, so it waits for (at most half a
    /// second per object) and then holds up the store's users; meant for `shmstore check
    /// --repair` and for after a crash.
    ///
    /// # Errors
    /// `Timeout` if an object stays locked by a live process (nothing is changed), `Corrupt` if
    /// the allocator's block chain is broken.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-repair-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let _d = store.dict([("k", "v")])?;
    /// let r = store.repair()?; // a sound store: nothing leaked, nothing to relink
    /// assert_eq!((r.freed_blocks, r.slots_relinked), (0, 0));
    /// assert!(store.check()?.is_ok());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn repair(&self) -> Result<RepairReport> {
        crate::check::repair(&self.core)
    }

    /// Maps the store `name` for inspection without joining it: no attach count, no
    /// process-table entry, no reclaim — what tools like `shmstore stat` use, so that looking
    /// at a store never changes who is attached. Proxies made through such a store work, but
    /// their references are not recorded for crash recovery.
    ///
    /// # Errors
    /// As [`Store::open`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-openunattach-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Store;
    /// let _l = store.list([1])?;
    /// let view = Store::open_unattached(&name)?;
    /// assert_eq!(view.stats()?.processes_attached, 1); // only `store` counts
    /// assert_eq!(view.objects()?.len(), 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn open_unattached(name: &str) -> Result<Store> {
        let arena = segment::open(name)?;
        if arena.len() < header::MIN_SIZE as u64 {
            return Err(Error::corrupt("segment smaller than a header", 0));
        }
        match arena.atomic_u32(header::STATE_OFF)?.load(Ordering::Acquire) {
            STATE_READY => {}
            STATE_CLOSED => return Err(Error::NotFound(name.to_owned())),
            _ => return Err(Error::corrupt("segment not initialized", header::STATE_OFF)),
        }
        let hdr = header::read_checked(&arena, FORMAT)?;
        Ok(Store::attached(Core::new_unattached(
            arena,
            hdr,
            name.to_owned(),
        )))
    }

    /// The process table: attached processes, alive or dead, and the references each holds.
    ///
    /// # Errors
    /// `Corrupt` if the process table fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-processes-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let _l = store.list([1])?;
    /// let procs = store.processes()?;
    /// assert_eq!(procs.len(), 1);
    /// assert_eq!(procs[0].pid, std::process::id());
    /// assert!(procs[0].alive);
    /// assert_eq!(procs[0].references, 1); // the list proxy's
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn processes(&self) -> Result<Vec<ProcInfo>> {
        crate::procs::list(&self.core)
    }

    /// Figures about the store: memory, objects, processes, repairs.
    ///
    /// # Errors
    /// `Corrupt` if the allocator's header fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-stats-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.stats()?;
    /// assert_eq!(s.size, 1 << 20);
    /// assert_eq!(s.objects_live, 0);
    /// assert_eq!(s.processes_attached, 1);
    /// assert_eq!(s.bytes_in_use + s.bytes_free, s.heap_bytes);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        let a = self.core.alloc_stats()?;
        Ok(Stats {
            size: self.core.arena().len(),
            heap_bytes: a.heap_bytes,
            bytes_in_use: a.bytes_in_use,
            bytes_free: a.bytes_free,
            blocks_in_use: a.blocks_in_use,
            objects_live: self.core.objects_live(),
            object_slots: self.core.header().table_slots,
            processes_attached: self.core.attach_count(),
            repairs: self.core.repairs(),
        })
    }
}

/// One attempt at attaching: map, wait for READY, validate, count the attach under the lock.
fn open_once(name: &str) -> Result<Core> {
    let arena = segment::open(name)?;
    if arena.len() < header::MIN_SIZE as u64 {
        return Err(Error::corrupt("segment smaller than a header", 0));
    }
    let state = arena.atomic_u32(header::STATE_OFF)?;
    let start = Instant::now();
    loop {
        match state.load(Ordering::Acquire) {
            STATE_READY => break,
            STATE_CLOSED => return Err(Error::NotFound(name.to_owned())),
            STATE_INIT if start.elapsed() < INIT_WAIT => {
                std::thread::sleep(Duration::from_millis(1))
            }
            STATE_INIT => {
                return Err(Error::corrupt(
                    "segment never finished initializing (its creator died?)",
                    header::STATE_OFF,
                ))
            }
            _ => return Err(Error::corrupt("bad segment state", header::STATE_OFF)),
        }
    }
    let hdr = header::read_checked(&arena, FORMAT)?;
    let core = Core::new_unattached(arena, hdr, name.to_owned());
    let idx = {
        let _g = core.lock_arena()?;
        if core.state()?.load(Ordering::Acquire) != STATE_READY {
            return Err(Error::NotFound(name.to_owned()));
        }
        let idx = crate::procs::register(&core)?;
        core.counter_u32(ATTACH_OFF)?.fetch_add(1, Ordering::AcqRel);
        idx
    };
    Ok(core.into_attached(idx))
}
