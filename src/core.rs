//! One process's view of an attached arena: the header, the arena lock, the allocator and the
//! object table, put together. Safe code over the raw layers; the types and the dispatcher build
//! on it.
//!
//! Lock order: an object's lock may be held while the arena lock is taken (a method that
//! allocates); the arena lock is a leaf — nothing else is locked while it is held. Two object
//! locks are only ever taken in slot order.
//!
//! # Examples
//! ```
//! # let name = format!("doc-core-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! // What this layer keeps for the store: refcounts, object slots, the allocator.
//! let before = store.stats()?;
//! let l = store.list(["a"; 3])?;
//! let again = store.attach(&l.token())?; // a second reference
//! assert_eq!(store.stats()?.objects_live, before.objects_live + 1);
//! drop(l);
//! drop(again); // the last reference: slot and blocks are given back
//! assert_eq!(store.stats()?, before);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{fence, AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use crate::alloc::{AllocStats, Heap};
use crate::arena::Arena;
use crate::error::{Error, Result};
use crate::header::{self, Header, ATTACH_OFF, LIVE_OFF, REPAIRS_OFF, STATE_OFF};
use crate::proxy::Handle;
use crate::sync::Acquired;
use crate::table::{self, LockGuard, Table};
use crate::token::Token;

thread_local! {
    /// Set by [`Core::make`] for the one [`Core::create_object`] its `create` makes: the core
    /// (its address) and the process-table entry that records the creation.
    static CREATING: std::cell::Cell<Option<(usize, u32)>> = const { std::cell::Cell::new(None) };
}

/// Refcounts above this abort the process, as `Arc` does: a count that could wrap would free a
/// live object.
const MAX_REFCOUNT: u32 = u32::MAX / 2;

/// An attached arena.
///
/// # Examples
/// ```
/// # let name = format!("doc-core-struct-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let core: &shmstore::core::Core = store.core();
/// let l = store.list([1, 2])?;
/// let t = l.token();
/// // The object table names the list's type; the allocator counts its blocks.
/// assert_eq!(core.table().check_live(t.slot, t.generation)?, shmstore::type_ids::LIST);
/// assert!(core.alloc_stats()?.blocks_in_use >= 2); // the body and its cell array
/// assert_eq!(core.objects_live(), 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct Core {
    arena: Arena,
    hdr: Header,
    name: String,
    /// Counted in the header's attach count (detached on drop).
    attached: bool,
    /// This attachment's process-table entry (u32::MAX: none).
    proc_idx: AtomicU32,
    /// The entry made for a fork child, between the fork handlers.
    fork_child: AtomicU32,
    /// The fork handler holds the holdings mutex.
    fork_locked: AtomicBool,
    /// Serializes this attachment's writes to its holdings.
    holdings: parking_lot::Mutex<()>,
    /// A dead lock holder was seen: reclaim when no lock is held.
    reclaim_pending: AtomicBool,
    /// Report a lock taken over from a dead holder as `Error::OwnerDied`.
    report_owner_died: AtomicBool,
    /// The hash mixer's state seeded with this segment's key, computed once.
    hash_seed: u64,
    /// The mixer's states after an int's and a str's kind word (`value::kind_seeds`).
    kind_seeds: (u64, u64),
}

impl Core {
    /// Wraps a validated arena not yet counted as attached (dropping it detaches nothing).
    pub(crate) fn new_unattached(arena: Arena, hdr: Header, name: String) -> Core {
        let hash_seed = crate::value::hash_seed(crate::types::htable::key_of(hdr.hash_key));
        Core {
            hash_seed,
            kind_seeds: crate::value::kind_seeds(hash_seed),
            arena,
            hdr,
            name,
            attached: false,
            proc_idx: AtomicU32::new(u32::MAX),
            fork_child: AtomicU32::new(u32::MAX),
            fork_locked: AtomicBool::new(false),
            holdings: parking_lot::Mutex::new(()),
            reclaim_pending: AtomicBool::new(false),
            report_owner_died: AtomicBool::new(false),
        }
    }

    /// Marks the arena as counted in the attach count, with process-table entry `idx`.
    pub(crate) fn into_attached(mut self, idx: u32) -> Core {
        self.attached = true;
        self.proc_idx.store(idx, Ordering::Relaxed);
        self
    }

    /// Records a reference this attachment took (after the refcount was incremented), so that
    /// it is given back if this process dies.
    pub(crate) fn hold(&self, token: &Token) {
        let idx = self.proc_idx.load(Ordering::Relaxed);
        if idx != u32::MAX {
            let _g = self.holdings.lock();
            // A failure (no room for the holdings table) only means the reference would leak
            // if this process died; the reference itself is good.
            let _ = crate::procs::hold(self, idx, token);
        }
    }

    /// Runs `create` (a type's `create`, which calls [`Core::create_object`] once) and wraps the
    /// new object's reference in a handle, with the creation recorded in this attachment's
    /// process-table entry from before the slot is published until the reference is in its row
    /// (`procs`, "Handles' references"): a process killed in between leaves its reclaimer what
    /// it needs to free the object.
    pub(crate) fn make(
        self: &Arc<Core>,
        create: impl FnOnce(&Core) -> Result<Token>,
    ) -> Result<Arc<Handle>> {
        let idx = self.proc_idx.load(Ordering::Relaxed);
        if idx == u32::MAX {
            return Ok(Handle::adopt(self.clone(), create(self)?));
        }
        let _g = self.holdings.lock();
        let me = Arc::as_ptr(self) as usize;
        CREATING.with(|c| c.set(Some((me, idx))));
        let made = create(self);
        CREATING.with(|c| c.set(None));
        let token = match made {
            Ok(t) => t,
            Err(e) => {
                let _ = crate::procs::abandon_intent(self, idx);
                return Err(e);
            }
        };
        failpoint!("handle.create.before_row");
        // A failure only means the reference would leak if this process died.
        let _ = crate::procs::finish_take(self, idx, &token);
        Ok(Handle::adopt_recorded(self.clone(), token))
    }

    /// Takes a reference to the live object `token` names for a handle, recorded as
    /// [`Core::make`] records a creation; `find` runs first and may name the token (a lookup
    /// under the arena lock it takes): the increment happens inside it, through `incref`.
    pub(crate) fn take_handle(
        self: &Arc<Core>,
        find: impl FnOnce(&dyn Fn(&Token) -> Result<()>) -> Result<Token>,
    ) -> Result<Arc<Handle>> {
        let idx = self.proc_idx.load(Ordering::Relaxed);
        if idx == u32::MAX {
            let token = find(&|t| self.incref_token(t))?;
            return Ok(Handle::adopt(self.clone(), token));
        }
        let _g = self.holdings.lock();
        let token = find(&|t| self.incref_token_for(t, Some(idx)))?;
        let _ = crate::procs::finish_take(self, idx, &token);
        Ok(Handle::adopt_recorded(self.clone(), token))
    }

    /// Drops a reference this attachment holds (a handle's), freeing the object if it was the
    /// last, so that a reclaimer can finish the drop exactly if this process dies inside it
    /// (`procs::drop_reference`).
    pub(crate) fn drop_reference(&self, token: &Token) {
        let idx = self.proc_idx.load(Ordering::Relaxed);
        if idx == u32::MAX {
            crate::dispatch::release(self, token);
            return;
        }
        let _g = self.holdings.lock();
        match crate::procs::drop_reference(self, idx, token) {
            Ok(true) => {}
            // Never recorded (no room for the row when it was taken): dropped unrecorded.
            Ok(false) => crate::dispatch::release(self, token),
            // Damage (a refcount already 0, a table out of the arena): `check` reports it; the
            // drop has done what it could.
            Err(_) => {}
        }
    }

    /// Fork handler, parent side before the fork: holds the holdings mutex across the fork and
    /// makes the child's process-table entry.
    pub(crate) fn prepare_fork(&self) {
        std::mem::forget(self.holdings.lock());
        self.fork_locked.store(true, Ordering::Relaxed);
        let idx = self.proc_idx.load(Ordering::Relaxed);
        if idx == u32::MAX {
            return;
        }
        if let Ok(child) = crate::procs::prepare_fork(self, idx) {
            self.fork_child.store(child, Ordering::Relaxed);
        }
    }

    /// Fork handler, after the fork: in the child, switches to the child's entry. Returns true
    /// if `prepare_fork` locked the holdings mutex, which the caller then unlocks.
    pub(crate) fn after_fork(&self, in_child: bool) -> bool {
        let child = self.fork_child.swap(u32::MAX, Ordering::Relaxed);
        if in_child && child != u32::MAX && crate::procs::claim(self, child).is_ok() {
            self.proc_idx.store(child, Ordering::Relaxed);
        }
        self.fork_locked.swap(false, Ordering::Relaxed)
    }

    /// The holdings mutex, for the fork handler to unlock after the fork.
    pub(crate) fn holdings_mutex(&self) -> &parking_lot::Mutex<()> {
        &self.holdings
    }

    /// Asks for a reclaim once no lock is held (a dead lock holder was seen).
    pub(crate) fn want_reclaim(&self) {
        self.reclaim_pending.store(true, Ordering::Relaxed);
    }

    /// Whether a lock taken over from a dead holder is reported as `Error::OwnerDied`.
    pub(crate) fn reports_owner_died(&self) -> bool {
        self.report_owner_died.load(Ordering::Relaxed)
    }

    /// Sets [`Core::reports_owner_died`].
    pub(crate) fn set_report_owner_died(&self, on: bool) {
        self.report_owner_died.store(on, Ordering::Relaxed);
    }

    /// Takes the pending-reclaim request.
    pub(crate) fn take_reclaim_request(&self) -> bool {
        self.reclaim_pending.load(Ordering::Relaxed)
            && self.reclaim_pending.swap(false, Ordering::Relaxed)
    }

    /// The arena.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-arena-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let arena = store.core().arena();
    /// assert_eq!(arena.len(), store.stats()?.size);
    /// assert_eq!(arena.load_u64(0)?, shmstore::header::MAGIC); // the header starts the segment
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The header as read when attaching.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-header-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let h = store.core().header();
    /// assert_eq!(h.magic, shmstore::header::MAGIC);
    /// assert_eq!(h.store_id, store.id());
    /// assert_eq!(h.table_slots, store.stats()?.object_slots);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn header(&self) -> &Header {
        &self.hdr
    }

    /// The segment name.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-name-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert_eq!(store.core().name(), name);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's random id (part of every token).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-storeid-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// assert_eq!(store.core().store_id(), l.token().store);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn store_id(&self) -> u64 {
        self.hdr.store_id
    }

    /// The object table.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-table-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// assert_eq!(u64::from(core.table().capacity()), store.stats()?.object_slots);
    /// let l = store.list([1])?;
    /// assert_eq!(core.table().used_slots()?, 1);
    /// # drop(l);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn table(&self) -> Table<'_> {
        Table::new(&self.arena, self.hdr.table_off, self.hdr.table_slots as u32)
    }

    /// An atomic counter in the header.
    pub(crate) fn counter_u32(&self, off: u64) -> Result<&AtomicU32> {
        self.arena.atomic_u32(off)
    }

    /// Takes the arena lock. What a dead holder left half done is repaired before going on:
    /// the allocator's derived state (if it died inside an operation) and free slots it took
    /// off the free-slot list without publishing them.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-lockarena-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::try_lock_at;
    /// let core = store.core();
    /// let guard = core.lock_arena()?;
    /// // Another thread finds the arena lock held (a non-blocking try fails).
    /// let busy = std::thread::scope(|s| {
    ///     s.spawn(|| try_lock_at(core.arena(), core.header().lock_off).map(|g| g.is_none()))
    ///         .join()
    ///         .unwrap()
    /// })?;
    /// assert!(busy);
    /// drop(guard);
    /// assert!(try_lock_at(core.arena(), core.header().lock_off)?.is_some());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn lock_arena(&self) -> Result<LockGuard<'_>> {
        let (guard, got) = table::lock_at(&self.arena, self.hdr.lock_off, None)?;
        if got == Acquired::OwnerDied {
            self.recover_arena();
            guard.make_consistent()?;
        }
        Ok(guard)
    }

    /// Repairs what a holder of the arena lock left when it died (the caller now holds the
    /// lock). Best effort: a failure here is damage that `check` reports and the next
    /// operation meets as `Corrupt`.
    #[cold]
    fn recover_arena(&self) {
        self.note_repair();
        self.want_reclaim();
        if let Ok(heap) = Heap::open(&self.arena, self.hdr.alloc_off) {
            let _ = heap.repair_if_dirty();
        }
        let _ = self.table().relink_lost_slots();
        // The live-object count moves beside a slot's state, both under this lock: a holder
        // killed between the two left it one off.
        if let (Ok(n), Ok(live)) = (self.table().count_live(), self.arena.atomic_u64(LIVE_OFF)) {
            live.store(n, Ordering::Relaxed);
        }
    }

    /// Counts a lock recovered from a dead holder.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-noterep-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// assert_eq!(core.repairs(), 0);
    /// core.note_repair();
    /// assert_eq!(core.repairs(), 1);
    /// assert_eq!(store.stats()?.repairs, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn note_repair(&self) {
        if let Ok(c) = self.arena.atomic_u64(REPAIRS_OFF) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `f` on the allocator under the arena lock.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-withheap-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// let off = core.alloc(100)?;
    /// // Several allocator calls under one take of the arena lock.
    /// let usable = core.with_heap(|heap| heap.usable_size(off))?;
    /// assert!(usable >= 100);
    /// core.free(off)?;
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_heap<R>(&self, f: impl FnOnce(&Heap<'_>) -> Result<R>) -> Result<R> {
        let _g = self.lock_arena()?;
        let heap = Heap::open(&self.arena, self.hdr.alloc_off)?;
        f(&heap)
    }

    /// Allocates `size` bytes; returns the block's offset (16-aligned).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-alloc-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// let off = core.alloc(100)?;
    /// assert_eq!(off % 16, 0);
    /// core.arena().copy_in(off, b"hello")?;
    /// let mut back = [0u8; 5];
    /// core.arena().copy_out(off, &mut back)?;
    /// assert_eq!(&back, b"hello");
    /// core.free(off)?;
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn alloc(&self, size: u64) -> Result<u64> {
        self.with_heap(|h| h.alloc(size))
    }

    /// Frees a block.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-free-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// let before = core.alloc_stats()?;
    /// let off = core.alloc(1000)?;
    /// assert_eq!(core.alloc_stats()?.blocks_in_use, before.blocks_in_use + 1);
    /// core.free(off)?;
    /// assert_eq!(core.alloc_stats()?.blocks_in_use, before.blocks_in_use);
    /// assert!(core.free(off).is_err()); // a double free is refused
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn free(&self, off: u64) -> Result<()> {
        self.with_heap(|h| h.free(off))
    }

    /// Allocator statistics.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-allocstats-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let s = store.core().alloc_stats()?;
    /// assert_eq!(s.bytes_in_use + s.bytes_free, s.heap_bytes);
    /// assert_eq!(s.heap_bytes, store.stats()?.heap_bytes);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn alloc_stats(&self) -> Result<AllocStats> {
        self.with_heap(|h| h.stats())
    }

    /// Creates a table entry for an object of `type_id` whose body is at `body`; refcount 1.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-createobj-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::types::list::ListBody;
    /// use shmstore::{type_ids, ListProxy};
    /// let core = store.core();
    /// // An all-zero list body is an empty list.
    /// let size = std::mem::size_of::<ListBody>() as u64;
    /// let body = core.alloc(size)?;
    /// core.arena().fill(body, size, 0)?;
    /// let t = core.create_object(type_ids::LIST, body)?; // refcount 1: ours
    /// let l = ListProxy::try_from(store.attach(&t)?)?;
    /// l.append("x")?;
    /// assert_eq!(l.to_string(), "['x']");
    /// shmstore::dispatch::release(core, &t); // our reference back; the proxy keeps the list alive
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn create_object(&self, type_id: u16, body: u64) -> Result<Token> {
        // A creation for a handle (`Core::make`) is recorded in this attachment's entry.
        let me = self as *const Core as usize;
        let entry = CREATING.with(|c| match c.get() {
            Some((core, entry)) if core == me => {
                c.set(None);
                Some(entry)
            }
            _ => None,
        });
        let _g = self.lock_arena()?;
        let record = |slot: u32, generation: u32| match entry {
            Some(e) => crate::procs::intend_create(self, e, slot, generation),
            None => Ok(()),
        };
        let (slot, generation) =
            self.table()
                .take_marked(type_id, body, entry.map(|e| (e, &record as _)))?;
        self.arena
            .atomic_u64(LIVE_OFF)?
            .fetch_add(1, Ordering::Relaxed);
        Ok(Token {
            store: self.hdr.store_id,
            type_id,
            slot,
            generation,
        })
    }

    /// Gives the slot of `token`'s object back if it still holds that object, live, with no
    /// reference left (under the arena lock: the commit point of freeing it); false when it
    /// does not (someone else freed it).
    pub(crate) fn give_back_slot(&self, token: &Token) -> Result<bool> {
        let _g = self.lock_arena()?;
        let t = self.table();
        if t.check_live(token.slot, token.generation).is_err()
            || t.refcount(token.slot)?.load(Ordering::Acquire) != 0
        {
            return Ok(false);
        }
        self.give_back_locked(token.slot)?;
        Ok(true)
    }

    /// Gives slot `slot` back and counts one live object fewer. The caller holds the arena
    /// lock.
    fn give_back_locked(&self, slot: u32) -> Result<()> {
        self.table().give_back(slot)?;
        self.arena
            .atomic_u64(LIVE_OFF)?
            .fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// Gives the slot of a dead object back (its body already freed).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-destroy-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{type_ids, Error};
    /// let core = store.core();
    /// let body = core.alloc(64)?;
    /// let t = core.create_object(type_ids::LIST, body)?;
    /// assert_eq!(core.objects_live(), 1);
    /// assert!(core.decref(t.slot)?); // the last reference: ours to free
    /// core.free(body)?;
    /// core.destroy_slot(t.slot)?;
    /// assert_eq!(core.objects_live(), 0);
    /// assert!(matches!(store.attach(&t), Err(Error::StaleHandle { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn destroy_slot(&self, slot: u32) -> Result<()> {
        let _g = self.lock_arena()?;
        self.give_back_locked(slot)
    }

    /// Adds a reference to an object the caller already holds a reference to.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-incref-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::sync::atomic::Ordering;
    /// let core = store.core();
    /// let l = store.list([1])?;
    /// let slot = l.token().slot;
    /// core.incref(slot)?;
    /// assert_eq!(core.table().refcount(slot)?.load(Ordering::Relaxed), 2);
    /// assert!(!core.decref(slot)?); // not the last: the proxy's remains
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn incref(&self, slot: u32) -> Result<()> {
        // Relaxed: the caller's own reference keeps the object alive, so no other memory needs
        // ordering with this increment (as `Arc::clone`).
        let old = self.table().refcount(slot)?.fetch_add(1, Ordering::Relaxed);
        if old == 0 || old > MAX_REFCOUNT {
            return Err(Error::corrupt(
                "refcount overflow or increment of a dead object",
                u64::from(slot),
            ));
        }
        Ok(())
    }

    /// Adds a reference to the object `token` names if it is still alive; the way in for a
    /// caller that holds no reference yet (attach, lookup, a proxy stored in a container).
    ///
    /// # Errors
    /// `NotFound` for a token of another store, `StaleHandle` if the object is gone.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-increftok-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Error;
    /// let core = store.core();
    /// let l = store.list([1])?;
    /// let t = l.token();
    /// core.incref_token(&t)?; // a reference of our own
    /// drop(l);
    /// assert_eq!(store.attach(&t)?.to_str()?, "[1]"); // still alive: we hold it
    /// shmstore::dispatch::release(core, &t); // the last reference: freed
    /// assert!(matches!(core.incref_token(&t), Err(Error::StaleHandle { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn incref_token(&self, token: &Token) -> Result<()> {
        self.incref_token_for(token, None)
    }

    /// [`Core::incref_token`]; for entry `entry`, recorded: the intent before a marked
    /// increment (the caller holds the holdings mutex and records the row after).
    pub(crate) fn incref_token_for(&self, token: &Token, entry: Option<u32>) -> Result<()> {
        if token.store != self.hdr.store_id {
            return Err(Error::NotFound(format!(
                "token {token} belongs to another store"
            )));
        }
        let t = self.table();
        let ty = t.check_live(token.slot, token.generation)?;
        if ty != token.type_id {
            return Err(Error::type_error(format!(
                "token names a '{}' but the object is a '{}'",
                token.typeid(),
                crate::token::names_in(self.hdr.store_id, ty).0
            )));
        }
        let rc = t.refcount(token.slot)?;
        let entry = match entry {
            Some(e) if crate::procs::intend_take(self, e, token.slot, token.generation)? => Some(e),
            _ => None,
        };
        let taken = match entry {
            Some(e) => rc.increment_live_marked(e, MAX_REFCOUNT, |other| {
                crate::procs::drop_landed(self, other, token.slot)
            }),
            None => rc.increment_live(MAX_REFCOUNT),
        };
        failpoint!("handle.take.after_increment");
        match taken {
            Ok(()) => {}
            Err(c) => {
                if let Some(e) = entry {
                    crate::procs::abandon_intent(self, e)?;
                }
                if c == 0 {
                    let found = t.generation(token.slot)?.load(Ordering::Relaxed);
                    return Err(Error::StaleHandle {
                        slot: token.slot,
                        expected: token.generation,
                        found,
                    });
                }
                return Err(Error::corrupt("refcount overflow", u64::from(token.slot)));
            }
        }
        // The slot may have been freed and reused between the check and the increment: then we
        // incremented somebody else's object, and give the reference back.
        if let Err(e) = t.check_live(token.slot, token.generation) {
            if let Some(entry) = entry {
                crate::procs::abandon_take(self, entry, token.slot)?;
            }
            if let Ok((type_id, _)) = t.type_and_state(token.slot) {
                let now = Token {
                    store: self.hdr.store_id,
                    type_id,
                    slot: token.slot,
                    generation: t.generation(token.slot)?.load(Ordering::Relaxed),
                };
                crate::dispatch::release(self, &now);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Drops a reference; true when it was the last one and the caller must free the object.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-decref-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// let l = store.list([1])?;
    /// let slot = l.token().slot;
    /// core.incref(slot)?;
    /// assert!(!core.decref(slot)?); // the proxy still holds one
    /// assert_eq!(store.objects()?[0].refcount, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn decref(&self, slot: u32) -> Result<bool> {
        // Release: our writes to the object happen before whoever frees it reads it.
        let rc = self.table().refcount(slot)?;
        let Ok(old) = rc.fetch_sub(1, Ordering::Release) else {
            return Err(Error::corrupt("refcount underflow", u64::from(slot)));
        };
        if old == 1 {
            // Acquire: every other holder's writes happen before we free.
            fence(Ordering::Acquire);
            // A handle drop whose marker this is took effect: say so before the slot can be
            // reused (`procs`, "Handles' references").
            rc.take_marker(|e| crate::procs::drop_landed(self, e, slot));
            return Ok(true);
        }
        Ok(false)
    }

    /// Processes attached now.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-attachcnt-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// assert_eq!(store.core().attach_count(), 1);
    /// let other = shmstore::Store::open(&name)?;
    /// assert_eq!(store.core().attach_count(), 2);
    /// drop(other);
    /// assert_eq!(store.core().attach_count(), 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn attach_count(&self) -> u32 {
        self.arena
            .atomic_u32(ATTACH_OFF)
            .map(|a| a.load(Ordering::Acquire))
            .unwrap_or(0)
    }

    /// Objects live now.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-objlive-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// assert_eq!(core.objects_live(), 0);
    /// let (a, b) = (store.list([1])?, store.dict([("k", 1)])?);
    /// assert_eq!(core.objects_live(), 2);
    /// drop((a, b));
    /// assert_eq!(core.objects_live(), 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn objects_live(&self) -> u64 {
        self.arena
            .atomic_u64(LIVE_OFF)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Locks recovered from dead holders so far.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-repairs-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let core = store.core();
    /// assert_eq!(core.repairs(), 0); // no lock holder has died yet
    /// assert_eq!(store.stats()?.repairs, core.repairs());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn repairs(&self) -> u64 {
        self.arena
            .atomic_u64(REPAIRS_OFF)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// The segment's state word.
    pub(crate) fn state(&self) -> Result<&AtomicU32> {
        self.arena.atomic_u32(STATE_OFF)
    }

    /// The hash mixer's state seeded with this segment's key (see
    /// [`Value::hash_with_seed`](crate::Value::hash_with_seed)), computed once per attachment.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-hashseed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::types::htable::{self, seg_key};
    /// use shmstore::Value;
    /// let core = store.core();
    /// let k = Value::from("key");
    /// // The hash a dict or set uses for `k`: as from the folded key, one mixing round cheaper.
    /// assert_eq!(k.hash_with_seed(core.hash_seed())?, k.hash_with_key(seg_key(core))?);
    /// assert_eq!(htable::hash(core, &k)?, k.hash_with_seed(core.hash_seed())?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    /// The mixer's states after an int's and a str's kind word (`value::kind_seeds`).
    #[inline]
    pub(crate) fn kind_seeds(&self) -> (u64, u64) {
        self.kind_seeds
    }

    /// The hash of an int key in this segment's dicts and sets, from the precomputed state.
    #[cfg(test)]
    pub(crate) fn hash_int(&self, i: i64) -> u64 {
        crate::value::hash_int_after_kind(self.kind_seeds.0, i)
    }

    /// The hash of a str key in this segment's dicts and sets, from the precomputed state.
    #[inline]
    pub(crate) fn hash_str(&self, s: &str) -> u64 {
        crate::value::hash_str_after_kind(self.kind_seeds.1, s)
    }

    /// The keyed-hash key drawn at creation.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-core-hashkey-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let key = store.core().hash_key();
    /// assert_eq!(key, store.core().header().hash_key);
    /// // Every process attached to the store hashes with the same key.
    /// assert_eq!(shmstore::Store::open(&name)?.core().hash_key(), key);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn hash_key(&self) -> [u64; 2] {
        self.hdr.hash_key
    }

    /// The name directory entry offset `i`.
    pub(crate) fn name_entry_off(&self, i: u64) -> Result<u64> {
        if i >= self.hdr.names_cap {
            return Err(Error::corrupt("name index out of range", i));
        }
        Ok(self.hdr.names_off + i * size_of::<header::NameEntry>() as u64)
    }
}

impl Core {
    /// Detaches this process's attachment: the last one out closes and unlinks the segment
    /// (unless it was created to be kept). Done under the arena lock, so an opener either
    /// attaches before (and the segment stays) or sees CLOSED after (and reports NotFound).
    fn detach(&self) -> Result<()> {
        let _g = self.lock_arena()?;
        let a = self.arena.atomic_u32(ATTACH_OFF)?;
        // An RMW, not a load and store: a fork handler may add to the count without the lock.
        let prev = a
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |x| {
                Some(x.saturating_sub(1))
            })
            .unwrap_or(0);
        let now = prev.saturating_sub(1);
        let idx = self.proc_idx.swap(u32::MAX, Ordering::Relaxed);
        if idx != u32::MAX {
            crate::procs::unregister(self, idx)?;
        }
        if now == 0 && self.hdr.flags & header::FLAG_KEEP == 0 {
            self.state()?.store(header::STATE_CLOSED, Ordering::Release);
            let _ = crate::segment::unlink(&self.name);
        }
        Ok(())
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Unregister first: the fork handler relies on a registered Core being whole.
        crate::fork::unregister(self);
        if self.attached {
            let _ = self.detach();
        }
    }
}
