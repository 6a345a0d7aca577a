//! The object table's raw layer: fixed slots, each with the referent's robust lock, atomic
//! refcount, generation, type id and body offset; and the arena lock.
//!
//! ```text
//! slot (SLOT_SIZE bytes, 64-aligned)
//! 0         robust process-shared lock (ObjLock::SIZE bytes)
//! META+0    refs       u64  refcount (low 32 bits) | marker (high 32 bits), see RefCount
//! META+8    generation u32  bumped under the arena lock when the slot is freed
//! META+12   kind       u32  type id (low 16 bits) | state (high 16 bits): FREE, LIVE
//! META+16   seq        u32  write sequence (odd while a writer is inside), for lock-free reads
//! META+20   reserved   u32  zero
//! META+24   body       u64  offset of the body; for a free slot, the next free slot + 1
//! ```
//!
//! The refcount is +1 Relaxed, -1 Release with an Acquire fence before freeing. Its word's high
//! half, the marker, names the process-table entry (+ 1) whose handle take or drop last
//! changed the count and has not finished yet: with it, a reclaimer can tell whether a process
//! killed inside one had changed the count already (`procs`, "Handles' references").
//!
//! Protocol. Slots are taken and given back only under the arena lock. Taking one: pop it from
//! the free list (or take the next never-used slot and initialize its lock), write refcount 1,
//! the body and the kind LIVE — `kind` last, so a crash before it leaves a FREE slot off the
//! list, which the next taker of the arena lock (it finds the dead holder) puts back
//! ([`Table::relink_lost_slots`]). Freeing one: the caller has seen the refcount reach zero, so
//! no proxy anywhere names the slot; under the arena lock, and only if the slot still holds
//! that object, it writes kind FREE, bumps the generation, links the slot into the free list (a
//! crash before the link leaves a FREE slot off the list, put back the same way); then it frees
//! the body, which nothing names any more (a crash leaves blocks for the mark and sweep). A
//! token that names the old generation is then refused as stale.
//!
//! All fields are reached as atomics, so a reader that holds no lock (attach, a seqlock read)
//! never races a plain write.
//!
//! The write sequence (`seq`) is the slot's seqlock, for types with lock-free readers (list,
//! value). Only the holder of the object's lock writes it: a mutation makes it odd before its
//! first write to the body ([`Table::write_begin`]: store, then a Release fence) and even again
//! after its last ([`SeqWrite`]'s drop: Release store). An optimistic reader reads it (Acquire),
//! reads the body with atomic loads, fences (Acquire) and reads it again; an odd or changed value
//! discards what it read. A writer that dies leaves it odd, so readers take the lock, whose
//! `OwnerDied` repair makes it even again ([`Table::seq_repair`]).
//!
//! # Examples
//! ```
//! # let name = format!("doc-table-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::table::{Table, STATE_LIVE};
//! let l = store.list([1])?;
//! let h = store.header();
//! let raw = shmstore::segment::open(&name)?;
//! let table = Table::new(&raw, h.table_off, h.table_slots as u32);
//! let t = l.token();
//! assert_eq!(table.type_and_state(t.slot)?, (shmstore::type_ids::LIST, STATE_LIVE));
//! assert_eq!(table.check_live(t.slot, t.generation)?, shmstore::type_ids::LIST);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::arena::{Arena, AtomicWords, Pinned};
use crate::error::{Error, Result};
use crate::header::{SLOT_FREE_OFF, SLOT_UNUSED_OFF};
use crate::sync::{Acquired, FutexCondvar, FutexLock, RawCondvar, RawLock};

/// The lock type stored in every slot and for the arena: the futex lock, which measured about
/// twice as fast uncontended as glibc's robust mutex (`cargo bench --bench ops -- lock`) and
/// passes the same conformance and crash tests. `PthreadMutex`/`PthreadCondvar` are drop-in
/// replacements (the format word then refuses arenas of the other kind).
///
/// # Examples
/// ```
/// use shmstore::sync::RawLock;
/// use shmstore::table::{ObjLock, LOCK_BYTES};
/// assert_eq!(<ObjLock as RawLock>::SIZE, LOCK_BYTES);
/// ```
pub type ObjLock = FutexLock;
/// The condition variable that blocking types keep in their bodies.
///
/// # Examples
/// ```
/// use shmstore::sync::RawCondvar;
/// use shmstore::table::{ObjCondvar, COND_BYTES};
/// assert_eq!(<ObjCondvar as RawCondvar>::SIZE as u64, COND_BYTES);
/// ```
pub type ObjCondvar = FutexCondvar;
/// Bytes of a condition variable (align 4; types keep them 8-aligned).
pub const COND_BYTES: u64 = <ObjCondvar as RawCondvar>::SIZE as u64;
const COND_ALIGN: u64 = <ObjCondvar as RawCondvar>::ALIGN as u64;

const LOCK_SIZE: u64 = <ObjLock as RawLock>::SIZE as u64;
const LOCK_ALIGN: u64 = <ObjLock as RawLock>::ALIGN as u64;
const META: u64 = LOCK_SIZE.div_ceil(8) * 8;
const META_SIZE: u64 = 32;
/// Bytes per slot.
pub const SLOT_SIZE: u64 = (META + META_SIZE).div_ceil(64) * 64;
/// Bytes of a lock.
pub const LOCK_BYTES: usize = LOCK_SIZE as usize;
/// Where a slot's body offset lies, from the slot's start (for tools reading a segment raw).
///
/// # Examples
/// ```
/// # let name = format!("doc-bodyat-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::table::{BODY_AT, SLOT_SIZE};
/// let l = store.list([1])?;
/// let slot_off = store.header().table_off + u64::from(l.token().slot) * SLOT_SIZE;
/// let raw = shmstore::segment::open(&name)?;
/// assert_eq!(raw.load_u64(slot_off + BODY_AT)?, store.objects()?[0].body);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub const BODY_AT: u64 = META + 24;
const _: () = assert!(LOCK_ALIGN <= 64 && 64 % LOCK_ALIGN == 0);

/// A slot's words, viewed in place with one bounds check (see the module's layout).
///
/// # Examples
/// ```
/// # let name = format!("doc-slotwords-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use std::sync::atomic::Ordering;
/// use shmstore::table::SlotWords;
/// let l = store.list([1])?;
/// let t = l.token();
/// let w: &SlotWords = store.core().table().slot(t.slot)?;
/// assert_eq!(w.refcount.load(Ordering::Relaxed), 1);
/// assert_eq!(w.generation.load(Ordering::Relaxed), t.generation);
/// assert_eq!(w.seq.load(Ordering::Relaxed) & 1, 0); // no write open
/// assert_eq!(w.body.load(Ordering::Relaxed), store.objects()?[0].body);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
pub struct SlotWords {
    lock: [AtomicU32; (META / 4) as usize],
    /// Proxies (and containers) holding the object, and the drop marker.
    pub refcount: RefCount,
    /// Bumped when the slot is freed.
    pub generation: AtomicU32,
    /// Type id | state << 16.
    pub kind: AtomicU32,
    /// Write sequence, odd while a writer is inside.
    pub seq: AtomicU32,
    reserved: AtomicU32,
    /// Offset of the body (free slot: next free slot + 1).
    pub body: AtomicU64,
}
// SAFETY: `repr(C)`, only atomic integers (`RefCount` is a transparent `AtomicU64`); META is a
// multiple of 8, so no padding.
unsafe impl AtomicWords for SlotWords {}
const _: () = assert!(std::mem::size_of::<SlotWords>() as u64 == META + META_SIZE);
const _: () = assert!(std::mem::offset_of!(SlotWords, body) as u64 == BODY_AT);

/// Records a creation in a process-table entry: (slot, generation), before the slot is
/// published ([`Table::take_marked`]).
pub(crate) type Record<'r> = &'r dyn Fn(u32, u32) -> Result<()>;

/// A slot's reference count (the low 32 bits of one atomic word) and its drop marker (the high
/// 32 bits): 0, or the process-table entry + 1 of a handle drop that took a reference off with
/// [`RefCount::decrement_marked`] and has not called [`RefCount::clear_marker`] yet.
///
/// Plain increments and decrements keep the marker; only a marked decrement replaces it, after
/// telling the entry it replaces that its drop landed (see `procs`).
///
/// # Examples
/// ```
/// use std::sync::atomic::Ordering;
/// use shmstore::table::RefCount;
/// let rc = RefCount::new(1);
/// assert_eq!(rc.fetch_add(1, Ordering::Relaxed), 1);
/// assert_eq!(rc.decrement_marked(7, |_| {}), Ok(2)); // entry 7 took one off
/// assert_eq!((rc.load(Ordering::Relaxed), rc.marker(Ordering::Relaxed)), (1, 8));
/// assert_eq!(rc.fetch_sub(1, Ordering::Relaxed), Ok(1)); // a plain decrement keeps it
/// assert_eq!(rc.marker(Ordering::Relaxed), 8);
/// rc.clear_marker(7);
/// assert_eq!(rc.marker(Ordering::Relaxed), 0);
/// assert!(rc.fetch_sub(1, Ordering::Relaxed).is_err()); // no reference left to drop
/// ```
#[repr(transparent)]
pub struct RefCount(AtomicU64);

const COUNT_MASK: u64 = u32::MAX as u64;

/// The marker a marked update writes for `entry`, after telling the entry of the marker `m` it
/// replaces, if another, that its operation landed.
#[inline(always)]
fn marking(m: u32, entry: u32, landed: &impl Fn(u32)) -> u32 {
    if m != 0 && m != entry + 1 {
        landed(m - 1);
    }
    entry + 1
}

impl RefCount {
    /// A count of `n` with no marker (for tests and tools; slots live in the arena).
    pub const fn new(n: u32) -> RefCount {
        RefCount(AtomicU64::new(n as u64))
    }

    /// The reference count.
    #[inline]
    pub fn load(&self, order: Ordering) -> u32 {
        self.0.load(order) as u32
    }

    /// The marker: 0, or the entry + 1 of an unfinished marked decrement.
    #[inline]
    pub fn marker(&self, order: Ordering) -> u32 {
        (self.0.load(order) >> 32) as u32
    }

    /// Sets the count to `n` and clears the marker (a slot being taken).
    #[inline]
    pub fn store(&self, n: u32, order: Ordering) {
        self.0.store(u64::from(n), order);
    }

    /// Sets the count to `n` and the marker to `entry + 1` (a slot being taken by a process
    /// that records the creation).
    #[inline]
    pub fn store_marked(&self, n: u32, entry: u32) {
        self.0.store(
            u64::from(n) | (u64::from(entry + 1) << 32),
            Ordering::Relaxed,
        );
    }

    /// Adds `n`, keeping the marker; returns the count before. The caller keeps the count far
    /// below 2^32 (the object table refuses counts above 2^31).
    #[inline]
    pub fn fetch_add(&self, n: u32, order: Ordering) -> u32 {
        self.0.fetch_add(u64::from(n), order) as u32
    }

    /// Takes `n` off, keeping the marker; returns the count before, or `Err(count)` (nothing
    /// changed) when the count is below `n`.
    #[inline]
    pub fn fetch_sub(&self, n: u32, order: Ordering) -> std::result::Result<u32, u32> {
        self.update(order, |c| c.checked_sub(n), |m| m)
    }

    /// Adds one if the count is neither 0 (a dead object) nor above `max`, keeping the marker;
    /// `Err(count)` otherwise.
    #[inline]
    pub fn increment_live(&self, max: u32) -> std::result::Result<(), u32> {
        // Acquire on success: the caller now owns a reference and will read the body.
        self.update(
            Ordering::Acquire,
            |c| (c != 0 && c <= max).then(|| c + 1),
            |m| m,
        )
        .map(|_| ())
    }

    /// [`RefCount::increment_live`] that also sets the marker to `entry + 1`, calling `landed`
    /// first with the entry of a marker it replaces (see [`RefCount::decrement_marked`]).
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use shmstore::table::RefCount;
    /// let rc = RefCount::new(1);
    /// assert_eq!(rc.decrement_marked(2, |_| {}), Ok(1)); // entry 2's drop of the last one
    /// assert_eq!(rc.increment_live_marked(3, 100, |_| {}), Err(0)); // dead: refused
    /// rc.store(1, Ordering::Relaxed);
    /// assert_eq!(rc.increment_live_marked(3, 100, |_| {}), Ok(()));
    /// assert_eq!((rc.load(Ordering::Relaxed), rc.marker(Ordering::Relaxed)), (2, 4));
    /// ```
    #[inline]
    pub fn increment_live_marked(
        &self,
        entry: u32,
        max: u32,
        landed: impl Fn(u32),
    ) -> std::result::Result<(), u32> {
        self.update(
            Ordering::Acquire,
            |c| (c != 0 && c <= max).then(|| c + 1),
            |m| marking(m, entry, &landed),
        )
        .map(|_| ())
    }

    /// Takes one reference off for process-table entry `entry` and sets the marker to
    /// `entry + 1`, in one compare-and-swap (Release); returns the count before, or `Err(0)`
    /// (nothing changed) when it was 0. When the marker it replaces names another entry,
    /// `landed` is called with that entry first, so that its owner's reclaimer knows its drop
    /// took effect.
    #[inline]
    pub fn decrement_marked(
        &self,
        entry: u32,
        landed: impl Fn(u32),
    ) -> std::result::Result<u32, u32> {
        self.update(
            Ordering::Release,
            |c| c.checked_sub(1),
            |m| marking(m, entry, &landed),
        )
    }

    /// One compare-and-swap loop: the count becomes `step(count)` (`Err(count)`, nothing
    /// changed, when that is `None`) and the marker `mark(marker)`. Returns the count before.
    #[inline(always)]
    fn update(
        &self,
        order: Ordering,
        step: impl Fn(u32) -> Option<u32>,
        mark: impl Fn(u32) -> u32,
    ) -> std::result::Result<u32, u32> {
        let mut w = self.0.load(Ordering::Relaxed);
        loop {
            let c = w as u32;
            let Some(n) = step(c) else {
                return Err(c);
            };
            let m = mark((w >> 32) as u32);
            match self.0.compare_exchange_weak(
                w,
                (u64::from(m) << 32) | u64::from(n),
                order,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(c),
                Err(now) => w = now,
            }
        }
    }

    /// Clears the marker if it still names `entry`, keeping the count.
    #[inline]
    pub fn clear_marker(&self, entry: u32) {
        self.clear_marker_if(|m| m == entry + 1, |_| {});
    }

    /// Clears whatever marker the word holds, after calling `landed` with the entry it names:
    /// the last plain decrement does this before the object is freed, so that a drop whose
    /// marker it was is known to have landed once the slot is reused.
    #[inline]
    pub fn take_marker(&self, landed: impl Fn(u32)) {
        self.clear_marker_if(|m| m != 0, |m| landed(m - 1));
    }

    /// Clears the marker, keeping the count, while `clear` says so of the marker found; calls
    /// `before` with it first.
    #[inline(always)]
    fn clear_marker_if(&self, clear: impl Fn(u32) -> bool, before: impl Fn(u32)) {
        let mut w = self.0.load(Ordering::Relaxed);
        loop {
            let marker = (w >> 32) as u32;
            if !clear(marker) {
                return;
            }
            before(marker);
            match self.0.compare_exchange_weak(
                w,
                w & COUNT_MASK,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }
}

impl SlotWords {
    /// The slot's lock, for the `RawLock` functions.
    #[inline]
    fn lock_ptr(&self) -> *mut u8 {
        self.lock.as_ptr().cast_mut().cast()
    }

    /// Type id and state.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slottypestate-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::{STATE_FREE, STATE_LIVE};
    /// use shmstore::type_ids;
    /// let s = store.set([1])?;
    /// let w = store.core().table().slot(s.token().slot)?;
    /// assert_eq!(w.type_and_state(), (type_ids::SET, STATE_LIVE));
    /// drop(s);
    /// assert_eq!(w.type_and_state().1, STATE_FREE);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn type_and_state(&self) -> (u16, u32) {
        let k = self.kind.load(Ordering::Acquire);
        ((k & 0xffff) as u16, k >> 16)
    }

    /// Checks that the slot holds a live object of generation `generation`; returns its type.
    ///
    /// # Errors
    /// `StaleHandle` if the slot was freed or reused.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slotchecklive-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::{type_ids, Error};
    /// let d = store.dict([("k", 1)])?;
    /// let t = d.token();
    /// let w = store.core().table().slot(t.slot)?;
    /// assert_eq!(w.check_live(t.slot, t.generation)?, type_ids::DICT);
    /// drop(d);
    /// assert!(matches!(w.check_live(t.slot, t.generation), Err(Error::StaleHandle { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn check_live(&self, slot: u32, generation: u32) -> Result<u16> {
        let (ty, state) = self.type_and_state();
        let found = self.generation.load(Ordering::Acquire);
        if state != STATE_LIVE || found != generation {
            return Err(Error::StaleHandle {
                slot,
                expected: generation,
                found,
            });
        }
        Ok(ty)
    }

    /// True if the slot holds a live object of generation `generation` and type `type_id`:
    /// [`SlotWords::check_live`] and the type check of the fast paths, in two comparisons.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slotislive-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::type_ids;
    /// let d = store.dict([("k", 1)])?;
    /// let t = d.token();
    /// let w = store.core().table().slot(t.slot)?;
    /// assert!(w.is_live_as(t.generation, type_ids::DICT));
    /// assert!(!w.is_live_as(t.generation, type_ids::LIST));
    /// drop(d);
    /// assert!(!w.is_live_as(t.generation, type_ids::DICT));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn is_live_as(&self, generation: u32, type_id: u16) -> bool {
        let kind = self.kind.load(Ordering::Acquire);
        let found = self.generation.load(Ordering::Acquire);
        kind == u32::from(type_id) | (STATE_LIVE << 16) && found == generation
    }

    /// Takes the slot's lock, waiting at most `timeout` (None: forever).
    ///
    /// # Errors
    /// `Timeout`, `Corrupt` for an unrecoverable lock, `Os` (`EDEADLK`) when this thread holds it.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slotlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::time::Duration;
    /// use shmstore::sync::Acquired;
    /// use shmstore::Error;
    /// let l = store.list([1])?;
    /// let w = store.core().table().slot(l.token().slot)?;
    /// let (guard, got) = w.lock(None)?;
    /// assert_eq!(got, Acquired::Clean);
    /// let other = std::thread::scope(|s| {
    ///     s.spawn(|| w.lock(Some(Duration::from_millis(20))).map(|_| ())).join().unwrap()
    /// });
    /// assert_eq!(other, Err(Error::Timeout)); // held by this thread
    /// drop(guard);
    /// assert_eq!(l.len()?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self, timeout: Option<Duration>) -> Result<(LockGuard<'_>, Acquired)> {
        let p = self.lock_ptr();
        // SAFETY: `p` is the slot's lock, in bounds and aligned (the view was checked), and was
        // initialized by `init_lock` when the slot was first taken; a slot that was never taken
        // is never named by a live token, and its zeroed lock is a free futex lock.
        let got = unsafe {
            match timeout {
                None => <ObjLock as RawLock>::lock(p),
                Some(t) => <ObjLock as RawLock>::lock_timeout(p, t),
            }
        }?;
        Ok((
            LockGuard {
                lock: p,
                _arena: PhantomData,
            },
            got,
        ))
    }

    /// Takes the slot's lock only if it is free this instant (see
    /// [`FutexLock::try_lock_free`](crate::sync::FutexLock::try_lock_free)): `None` when it is
    /// held, contended, or was left by a dead holder; [`SlotWords::lock`] handles those.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slottrylockfree-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// let w = store.core().table().slot(l.token().slot)?;
    /// let guard = w.try_lock_free().expect("free");
    /// assert!(w.try_lock_free().is_none()); // held
    /// drop(guard);
    /// assert!(w.try_lock_free().is_some());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn try_lock_free(&self) -> Option<LockGuard<'_>> {
        let p = self.lock_ptr();
        // SAFETY: as in `lock`: the slot's initialized lock, in bounds and aligned.
        unsafe { ObjLock::try_lock_free(p) }.then_some(LockGuard {
            lock: p,
            _arena: PhantomData,
        })
    }

    /// [`SlotWords::try_lock_free`], spinning up to `spins` times while another thread holds
    /// the lock (see [`FutexLock::try_lock_spin`](crate::sync::FutexLock::try_lock_spin)).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slottrylockspin-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// let w = store.core().table().slot(l.token().slot)?;
    /// let guard = w.try_lock_spin(16).expect("free");
    /// assert!(w.try_lock_spin(16).is_none()); // held by this thread
    /// drop(guard);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline(always)]
    pub fn try_lock_spin(&self, spins: u32) -> Option<LockGuard<'_>> {
        let p = self.lock_ptr();
        // SAFETY: as in `lock`: the slot's initialized lock, in bounds and aligned.
        unsafe { ObjLock::try_lock_spin(p, spins) }.then_some(LockGuard {
            lock: p,
            _arena: PhantomData,
        })
    }

    /// odd until the returned guard is dropped. Nested writes share the outer one.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-slotwritebegin-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::sync::atomic::Ordering;
    /// let l = store.list([1])?;
    /// let w = store.core().table().slot(l.token().slot)?;
    /// let before = w.seq.load(Ordering::Acquire);
    /// {
    ///     let (_lock, _) = w.lock(None)?;
    ///     let _outer = w.write_begin();
    ///     let inner = w.write_begin(); // nested: shares the outer write
    ///     drop(inner);
    ///     assert_eq!(w.seq.load(Ordering::Relaxed), before + 1); // still odd
    /// }
    /// assert_eq!(w.seq.load(Ordering::Acquire), before + 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn write_begin(&self) -> SeqWrite<'_> {
        let seq = &self.seq;
        // Relaxed: only the lock holder writes `seq`; the lock ordered us after the last writer.
        let v = seq.load(Ordering::Relaxed);
        if v & 1 != 0 {
            return SeqWrite { seq, end: None };
        }
        seq.store(v.wrapping_add(1), Ordering::Relaxed);
        // Release fence: a reader whose loads see any write after this point also sees the odd
        // value when it re-reads `seq` (after its Acquire fence).
        std::sync::atomic::fence(Ordering::Release);
        SeqWrite {
            seq,
            end: Some(v.wrapping_add(2)),
        }
    }
}

/// Slot state: not in use.
pub const STATE_FREE: u32 = 0;
/// Slot state: holds a live object.
pub const STATE_LIVE: u32 = 1;

/// A held robust lock in the arena; unlocks when dropped.
///
/// Not `Send`: the lock belongs to the thread that took it (its word names that thread).
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::table::{init_lock, lock_at, try_lock_at};
/// let arena = Arena::heap(64);
/// init_lock(&arena, 0)?;
/// let (guard, _) = lock_at(&arena, 0, None)?;
/// let other = std::thread::scope(|s| s.spawn(|| try_lock_at(&arena, 0).map(|g| g.is_some())).join().unwrap())?;
/// assert!(!other); // held
/// drop(guard); // unlocks
/// assert!(try_lock_at(&arena, 0)?.is_some());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    /// The lock, checked in bounds and aligned when it was taken.
    lock: *mut u8,
    _arena: PhantomData<&'a Arena>,
}

impl Drop for LockGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: 1. `lock` points at an initialized lock in the mapped arena, checked when it
        // was taken, and the arena outlives `'a`; 2. this guard's existence proves the calling
        // thread holds it.
        let _ = unsafe { <ObjLock as RawLock>::unlock(self.lock) };
    }
}

impl LockGuard<'_> {
    /// Unlocks now, as dropping the guard does, always inlined: the drop glue of a guard
    /// dropped on several paths of a large function is otherwise left out of line (a call and
    /// a copy of the thread's identity, about 20 instructions, on every fast write).
    #[inline(always)]
    pub(crate) fn unlock(self) {
        let lock = self.lock;
        std::mem::forget(self);
        // SAFETY: as in `drop`: an initialized lock this thread holds, unlocked once (the guard
        // is forgotten, so its drop does not unlock again).
        let _ = unsafe { <ObjLock as RawLock>::unlock(lock) };
    }

    /// Marks the lock consistent after repairing what a dead holder left.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::Acquired;
    /// use shmstore::table::{init_lock, lock_at};
    /// let arena = Arena::heap(64);
    /// init_lock(&arena, 0)?;
    /// // A thread takes the lock and ends without letting go.
    /// std::thread::scope(|s| s.spawn(|| lock_at(&arena, 0, None).map(std::mem::forget)).join().unwrap())?;
    /// let (guard, got) = lock_at(&arena, 0, None)?;
    /// assert_eq!(got, Acquired::OwnerDied);
    /// // ... repair what the lock guards, then:
    /// guard.make_consistent()?;
    /// drop(guard);
    /// assert_eq!(lock_at(&arena, 0, None)?.1, Acquired::Clean);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn make_consistent(&self) -> Result<()> {
        // SAFETY: as in `drop`: an initialized lock this thread holds.
        unsafe { <ObjLock as RawLock>::make_consistent(self.lock) }
    }
}

/// Marks the lock at `off`, which the caller holds, consistent after a dead holder's repair.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::table::{init_lock, lock_at, make_consistent_at};
/// let arena = Arena::heap(64);
/// init_lock(&arena, 0)?;
/// std::thread::scope(|s| s.spawn(|| lock_at(&arena, 0, None).map(std::mem::forget)).join().unwrap())?;
/// let (guard, got) = lock_at(&arena, 0, None)?;
/// assert!(got.owner_died());
/// make_consistent_at(&arena, 0)?; // the same, by offset
/// drop(guard);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn make_consistent_at(arena: &Arena, off: u64) -> Result<()> {
    let p = arena.raw_ptr(off, LOCK_SIZE, LOCK_ALIGN)?;
    // SAFETY: an initialized lock the calling thread holds (taken with OwnerDied).
    unsafe { <ObjLock as RawLock>::make_consistent(p) }
}

/// Formats the condition variable at `off` (its object is not yet published).
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::table::{cond_notify, init_cond};
/// let arena = Arena::heap(64);
/// init_cond(&arena, 8)?;
/// cond_notify(&arena, 8, true)?; // nobody waits: nothing happens
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn init_cond(arena: &Arena, off: u64) -> Result<()> {
    let p = arena.raw_ptr(off, COND_BYTES, COND_ALIGN)?;
    // SAFETY: in bounds and aligned (checked); nobody can wait on it yet, as the object that
    // holds it is not published.
    unsafe { <ObjCondvar as RawCondvar>::init(p) }
}

/// Waits on the condvar at `cond_off`, releasing the lock at `lock_off` (which the caller holds)
/// meanwhile and holding it again on return. Returns how the lock was retaken and whether the
/// wait timed out. Wake-ups may be spurious: callers loop on their condition.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shmstore::arena::Arena;
/// use shmstore::table::{cond_notify, cond_wait, init_cond, init_lock, lock_at};
/// let arena = Arena::heap(128);
/// init_lock(&arena, 0)?;
/// init_cond(&arena, 64)?;
/// let ready = arena.atomic_u32(96)?;
/// std::thread::scope(|s| {
///     let (guard, _) = lock_at(&arena, 0, None)?;
///     s.spawn(|| -> shmstore::Result<()> {
///         let _g = lock_at(&arena, 0, None)?; // waits until the wait below lets go
///         ready.store(1, std::sync::atomic::Ordering::Relaxed);
///         cond_notify(&arena, 64, false)
///     });
///     while ready.load(std::sync::atomic::Ordering::Relaxed) == 0 {
///         let _ = cond_wait(&arena, 64, 0, Some(Duration::from_secs(5)))?;
///     }
///     drop(guard);
///     Ok::<(), shmstore::Error>(())
/// })?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn cond_wait(
    arena: &Arena,
    cond_off: u64,
    lock_off: u64,
    timeout: Option<Duration>,
) -> Result<(Acquired, bool)> {
    let c = arena.raw_ptr(cond_off, COND_BYTES, COND_ALIGN)?;
    let m = arena.raw_ptr(lock_off, LOCK_SIZE, LOCK_ALIGN)?;
    // SAFETY: 1. both point at initialized objects in the mapped arena (checked offsets; the
    // condvar was initialized with its object, the lock with its slot); 2. the caller holds the
    // lock, as the wait requires, and made it consistent if it was taken with OwnerDied.
    unsafe {
        match timeout {
            None => <ObjCondvar as RawCondvar>::wait(c, m).map(|a| (a, false)),
            Some(t) => <ObjCondvar as RawCondvar>::wait_timeout(c, m, t),
        }
    }
}

/// Wakes one waiter (or all) of the condvar at `off`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shmstore::arena::Arena;
/// use shmstore::table::{cond_notify, cond_wait, init_cond, init_lock, lock_at};
/// let arena = Arena::heap(128);
/// init_lock(&arena, 0)?;
/// init_cond(&arena, 64)?;
/// let (guard, _) = lock_at(&arena, 0, None)?;
/// cond_notify(&arena, 64, true)?; // before the wait: not remembered
/// let (_, timed_out) = cond_wait(&arena, 64, 0, Some(Duration::from_millis(5)))?;
/// assert!(timed_out);
/// drop(guard);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn cond_notify(arena: &Arena, off: u64, all: bool) -> Result<()> {
    let c = arena.raw_ptr(off, COND_BYTES, COND_ALIGN)?;
    // SAFETY: an initialized condvar in the mapped arena (checked offset).
    unsafe {
        if all {
            <ObjCondvar as RawCondvar>::notify_all(c)
        } else {
            <ObjCondvar as RawCondvar>::notify_one(c)
        }
    }
}

/// Formats the lock at `off` (the creator does this once per lock, before anyone can see it).
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::Acquired;
/// use shmstore::table::{init_lock, lock_at};
/// let arena = Arena::heap(64);
/// init_lock(&arena, 0)?;
/// assert_eq!(lock_at(&arena, 0, None)?.1, Acquired::Clean);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn init_lock(arena: &Arena, off: u64) -> Result<()> {
    let p = arena.raw_ptr(off, LOCK_SIZE, LOCK_ALIGN)?;
    // SAFETY: 1. `p` is in bounds and aligned (checked); 2. no other thread or process uses this
    // lock yet: the caller is the creator of the segment, or holds the arena lock while taking a
    // never-used slot, which no token can name yet.
    unsafe { <ObjLock as RawLock>::init(p) }
}

/// Takes the lock at `off`, waiting at most `timeout` (None: forever).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shmstore::arena::Arena;
/// use shmstore::table::{init_lock, lock_at};
/// use shmstore::Error;
/// let arena = Arena::heap(64);
/// init_lock(&arena, 0)?;
/// let _held = lock_at(&arena, 0, None)?;
/// let other = std::thread::scope(|s| {
///     s.spawn(|| lock_at(&arena, 0, Some(Duration::from_millis(10))).map(|_| ())).join().unwrap()
/// });
/// assert_eq!(other, Err(Error::Timeout));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn lock_at(
    arena: &Arena,
    off: u64,
    timeout: Option<Duration>,
) -> Result<(LockGuard<'_>, Acquired)> {
    let p = arena.raw_ptr(off, LOCK_SIZE, LOCK_ALIGN)?;
    // SAFETY: `p` is in bounds and aligned, and points at a lock initialized by `init_lock`
    // before its offset was published (the arena lock at creation, a slot's lock when the slot
    // was first taken).
    let got = unsafe {
        match timeout {
            None => <ObjLock as RawLock>::lock(p),
            Some(t) => <ObjLock as RawLock>::lock_timeout(p, t),
        }
    }?;
    Ok((
        LockGuard {
            lock: p,
            _arena: PhantomData,
        },
        got,
    ))
}

/// Tries to take the lock at `off` without waiting.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::table::{init_lock, try_lock_at};
/// let arena = Arena::heap(64);
/// init_lock(&arena, 0)?;
/// let first = try_lock_at(&arena, 0)?;
/// assert!(first.is_some());
/// let second = std::thread::scope(|s| s.spawn(|| try_lock_at(&arena, 0).map(|g| g.is_some())).join().unwrap())?;
/// assert!(!second);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn try_lock_at(arena: &Arena, off: u64) -> Result<Option<(LockGuard<'_>, Acquired)>> {
    let p = arena.raw_ptr(off, LOCK_SIZE, LOCK_ALIGN)?;
    // SAFETY: as in `lock_at`.
    let got = unsafe { <ObjLock as RawLock>::try_lock(p) }?;
    Ok(got.map(|a| {
        (
            LockGuard {
                lock: p,
                _arena: PhantomData,
            },
            a,
        )
    }))
}

/// An open write on an object's seqlock (see the module notes); ends when dropped.
///
/// # Examples
/// ```
/// # let name = format!("doc-seqwrite-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::table::Table;
/// let l = store.list([1, 2])?;
/// let h = store.header();
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
/// let slot = l.token().slot;
/// let seq = table.seq(slot)?;
/// let before = seq.load(std::sync::atomic::Ordering::Acquire);
/// {
///     let (_lock, _) = table.lock(slot, None)?;
///     let _w = table.write_begin(slot)?;
///     assert_eq!(seq.load(std::sync::atomic::Ordering::Relaxed) & 1, 1); // odd: a write is open
/// }
/// assert_eq!(seq.load(std::sync::atomic::Ordering::Acquire), before + 2); // even, and new
/// # Ok::<(), shmstore::Error>(())
/// ```
#[must_use = "the write ends when the guard is dropped"]
pub struct SeqWrite<'a> {
    seq: &'a AtomicU32,
    /// The even value to store at the end; `None` if an enclosing write already made the
    /// sequence odd (it ends the write).
    end: Option<u32>,
}

impl Drop for SeqWrite<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(v) = self.end {
            // Release: a reader that sees this value sees every write made under it.
            self.seq.store(v, Ordering::Release);
        }
    }
}

impl SeqWrite<'_> {
    /// Ends a write that changed nothing, putting the sequence back to its value before the
    /// write: an optimistic reader that started before it and re-reads the old value read
    /// unchanged data, so it need not retry. Only for writes that wrote nothing at all.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-seqcancel-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::sync::atomic::Ordering;
    /// let l = store.list([1])?;
    /// let w = store.core().table().slot(l.token().slot)?;
    /// let before = w.seq.load(Ordering::Acquire);
    /// let (_lock, _) = w.lock(None)?;
    /// w.write_begin().cancel(); // nothing written after all
    /// assert_eq!(w.seq.load(Ordering::Acquire), before);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn cancel(mut self) {
        if let Some(v) = self.end.take() {
            // Release: as for the end of a write.
            self.seq.store(v.wrapping_sub(2), Ordering::Release);
        }
    }
}

/// The object table of an arena.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::table::{Table, SLOT_SIZE};
/// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
/// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
/// let table = Table::new(&arena, 4096, 4);
/// let (slot, generation) = table.take(1, 0x1000)?;
/// assert_eq!((slot, generation), (0, 1));
/// assert_eq!(table.check_live(slot, 1)?, 1);
/// table.give_back(slot)?;
/// assert!(table.check_live(slot, 1).is_err()); // a token of the old generation is stale
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Table<'a> {
    arena: &'a Arena,
    off: u64,
    slots: u32,
}

impl<'a> Table<'a> {
    /// The table of `slots` slots at `off`.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-new-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// assert_eq!(table.capacity(), h.table_slots as u32);
    /// assert_eq!(table.refcount(slot)?.load(std::sync::atomic::Ordering::Relaxed), 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn new(arena: &'a Arena, off: u64, slots: u32) -> Table<'a> {
        Table { arena, off, slots }
    }

    /// Number of slots.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// assert_eq!(table.capacity(), 4);
    /// assert!(table.refcount(4).is_err()); // out of range
    /// ```
    pub fn capacity(&self) -> u32 {
        self.slots
    }

    #[inline]
    fn slot_off(&self, slot: u32) -> Result<u64> {
        if slot >= self.slots {
            return Err(Error::corrupt("slot index out of range", u64::from(slot)));
        }
        Ok(self.off + u64::from(slot) * SLOT_SIZE)
    }

    /// Offset of the slot's lock.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// assert_eq!(table.lock_off(2)?, 4096 + 2 * SLOT_SIZE); // the lock leads the slot
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn lock_off(&self, slot: u32) -> Result<u64> {
        self.slot_off(slot)
    }

    /// The slot's words, bounds-checked once.
    ///
    /// # Errors
    /// `Corrupt` for a slot out of range (or a table outside the arena).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-tableslot-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use std::sync::atomic::Ordering;
    /// let table = store.core().table();
    /// let l = store.list([1])?;
    /// let w = table.slot(l.token().slot)?;
    /// assert_eq!(w.refcount.load(Ordering::Relaxed), 1);
    /// assert!(table.slot(table.capacity()).is_err()); // out of range
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn slot(&self, slot: u32) -> Result<&'a SlotWords> {
        self.arena.words(self.slot_off(slot)?)
    }

    /// [`Table::slot`], checked once for [`Arena::pinned`](crate::arena::Arena::pinned) to find
    /// again: a handle pins its slot when it is made.
    ///
    /// # Errors
    /// `Corrupt` for a slot index out of range.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-pinslot-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([1])?;
    /// let core = store.core();
    /// let p = core.table().pin_slot(l.token().slot)?;
    /// let w = core.arena().pinned(p).expect("pinned in this arena");
    /// assert!(std::ptr::eq(w, core.table().slot(l.token().slot)?));
    /// assert!(core.table().pin_slot(u32::MAX).is_err());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn pin_slot(&self, slot: u32) -> Result<Pinned<SlotWords>> {
        self.arena.pin(self.slot_off(slot)?)
    }

    /// The slot's refcount.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-refcount-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// use std::sync::atomic::Ordering;
    /// let rc = table.refcount(slot)?;
    /// assert_eq!(rc.load(Ordering::Relaxed), 1);
    /// let again = l.clone(); // a clone shares this process's reference
    /// assert_eq!(rc.load(Ordering::Relaxed), 1);
    /// store.bind("l", &again)?; // a binding holds its own
    /// assert_eq!(rc.load(Ordering::Relaxed), 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn refcount(&self, slot: u32) -> Result<&'a RefCount> {
        Ok(&self.slot(slot)?.refcount)
    }

    /// The slot's generation.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-generation-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// let g = table.generation(slot)?.load(std::sync::atomic::Ordering::Acquire);
    /// assert_eq!(g, l.token().generation);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn generation(&self, slot: u32) -> Result<&'a AtomicU32> {
        Ok(&self.slot(slot)?.generation)
    }

    /// The slot's kind word (type id | state << 16).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-kind-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// use shmstore::table::STATE_LIVE;
    /// let k = table.kind(slot)?.load(std::sync::atomic::Ordering::Acquire);
    /// assert_eq!(k, u32::from(shmstore::type_ids::LIST) | (STATE_LIVE << 16));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn kind(&self, slot: u32) -> Result<&'a AtomicU32> {
        Ok(&self.slot(slot)?.kind)
    }

    /// The slot's write sequence.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-seq-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// let before = table.seq(slot)?.load(std::sync::atomic::Ordering::Acquire);
    /// l.append(3)?; // a write: the sequence moves on by two
    /// assert_eq!(table.seq(slot)?.load(std::sync::atomic::Ordering::Acquire), before + 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn seq(&self, slot: u32) -> Result<&'a AtomicU32> {
        Ok(&self.slot(slot)?.seq)
    }

    /// Opens a write on the slot's object, whose lock the caller holds: the write sequence
    /// becomes odd until the returned guard is dropped. Nested writes share the outer one.
    ///
    /// # Errors
    /// `Corrupt` for a slot out of range.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// use std::sync::atomic::Ordering;
    /// let (slot, _) = table.take(1, 0)?;
    /// let (_lock, _) = table.lock(slot, None)?;
    /// let w = table.write_begin(slot)?;
    /// assert_eq!(table.seq(slot)?.load(Ordering::Relaxed) & 1, 1);
    /// let inner = table.write_begin(slot)?; // nested: shares the open write
    /// drop(inner);
    /// assert_eq!(table.seq(slot)?.load(Ordering::Relaxed) & 1, 1);
    /// drop(w);
    /// assert_eq!(table.seq(slot)?.load(Ordering::Relaxed) & 1, 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn write_begin(&self, slot: u32) -> Result<SeqWrite<'a>> {
        Ok(self.slot(slot)?.write_begin())
    }

    /// Closes a write that a holder died inside (the sequence is odd): the caller holds the lock,
    /// taken with `OwnerDied`, and has repaired the object.
    ///
    /// # Errors
    /// `Corrupt` for a slot out of range.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// use std::sync::atomic::Ordering;
    /// let (slot, _) = table.take(1, 0)?;
    /// let (_lock, _) = table.lock(slot, None)?;
    /// std::mem::forget(table.write_begin(slot)?); // as a writer that died mid-write leaves it
    /// assert_eq!(table.seq(slot)?.load(Ordering::Relaxed) & 1, 1);
    /// table.seq_repair(slot)?;
    /// assert_eq!(table.seq(slot)?.load(Ordering::Relaxed) & 1, 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn seq_repair(&self, slot: u32) -> Result<()> {
        let seq = self.seq(slot)?;
        let v = seq.load(Ordering::Relaxed);
        if v & 1 != 0 {
            seq.store(v.wrapping_add(1), Ordering::Release);
        }
        Ok(())
    }

    /// The slot's body offset.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-body-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// let body = table.body(slot)?.load(std::sync::atomic::Ordering::Acquire);
    /// assert_eq!(Some(body), store.objects()?.iter().find(|o| o.slot == slot).map(|o| o.body));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn body(&self, slot: u32) -> Result<&'a AtomicU64> {
        Ok(&self.slot(slot)?.body)
    }

    /// Type id and state of a slot.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// use shmstore::table::{STATE_FREE, STATE_LIVE};
    /// let (slot, _) = table.take(7, 0)?;
    /// assert_eq!(table.type_and_state(slot)?, (7, STATE_LIVE));
    /// table.give_back(slot)?;
    /// assert_eq!(table.type_and_state(slot)?.1, STATE_FREE);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn type_and_state(&self, slot: u32) -> Result<(u16, u32)> {
        Ok(self.slot(slot)?.type_and_state())
    }

    /// Checks that `slot` holds a live object of generation `generation`; returns its type id.
    ///
    /// # Errors
    /// `StaleHandle` if the slot was freed or reused.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-checklive-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::table::Table;
    /// let l = store.list([1, 2])?;
    /// let h = store.header();
    /// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
    /// let table = Table::new(&raw, h.table_off, h.table_slots as u32);
    /// let slot = l.token().slot;
    /// use shmstore::Error;
    /// assert_eq!(table.check_live(slot, l.token().generation)?, shmstore::type_ids::LIST);
    /// assert!(matches!(table.check_live(slot, 99), Err(Error::StaleHandle { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn check_live(&self, slot: u32, generation: u32) -> Result<u16> {
        self.slot(slot)?.check_live(slot, generation)
    }

    /// Locks the slot's object.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// use std::time::Duration;
    /// use shmstore::Error;
    /// let (slot, _) = table.take(1, 0)?;
    /// let (_guard, _) = table.lock(slot, None)?;
    /// let other = std::thread::scope(|s| {
    ///     s.spawn(|| table.lock(slot, Some(Duration::from_millis(10))).map(|_| ())).join().unwrap()
    /// });
    /// assert_eq!(other, Err(Error::Timeout));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self, slot: u32, timeout: Option<Duration>) -> Result<(LockGuard<'a>, Acquired)> {
        self.slot(slot)?.lock(timeout)
    }

    /// Takes a slot for a new object of type `type_id` with body `body` and refcount 1.
    /// The caller holds the arena lock. Returns (slot, generation).
    ///
    /// # Errors
    /// `TableFull` when every slot is in use; `Corrupt` if the free list is damaged.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// use shmstore::Error;
    /// for expected in 0..4 {
    ///     assert_eq!(table.take(1, 0)?.0, expected);
    /// }
    /// assert_eq!(table.take(1, 0), Err(Error::TableFull { capacity: 4 }));
    /// table.give_back(2)?;
    /// assert_eq!(table.take(1, 0)?, (2, 2)); // reused, with the next generation
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn take(&self, type_id: u16, body: u64) -> Result<(u32, u32)> {
        self.take_marked(type_id, body, None)
    }

    /// [`Table::take`] for process-table entry `marked.0`, which records the creation with
    /// `marked.1(slot, generation)` before the slot is published, and whose entry the new
    /// refcount word's marker names (see `procs`: a reclaimer then knows whether the dead
    /// creator's object was published).
    ///
    /// # Errors
    /// As [`Table::take`], and `marked.1`'s.
    pub(crate) fn take_marked(
        &self,
        type_id: u16,
        body: u64,
        marked: Option<(u32, Record<'_>)>,
    ) -> Result<(u32, u32)> {
        let head = self.arena.atomic_u32(SLOT_FREE_OFF)?;
        let unused = self.arena.atomic_u32(SLOT_UNUSED_OFF)?;
        let h = head.load(Ordering::Relaxed);
        let slot = if h != 0 {
            let slot = h - 1;
            let (_, state) = self.type_and_state(slot)?;
            if state != STATE_FREE {
                return Err(Error::corrupt(
                    "free-slot list names a live slot",
                    u64::from(slot),
                ));
            }
            let next = self.body(slot)?.load(Ordering::Relaxed);
            if next > u64::from(self.slots) {
                return Err(Error::corrupt(
                    "free-slot link out of range",
                    u64::from(slot),
                ));
            }
            head.store(next as u32, Ordering::Relaxed);
            slot
        } else {
            let n = unused.load(Ordering::Relaxed);
            if n >= self.slots {
                return Err(Error::TableFull {
                    capacity: self.slots,
                });
            }
            init_lock(self.arena, self.slot_off(n)?)?;
            self.generation(n)?.store(1, Ordering::Relaxed);
            unused.store(n + 1, Ordering::Relaxed);
            n
        };
        failpoint!("table.take.mid");
        let rc = self.refcount(slot)?;
        match marked {
            Some((entry, record)) => {
                record(slot, self.generation(slot)?.load(Ordering::Relaxed))?;
                rc.store_marked(1, entry);
                failpoint!("table.take.after_record");
            }
            None => rc.store(1, Ordering::Relaxed),
        }
        // Even (no write open), and never back to a value a reader of the slot's previous
        // object may have read.
        let seq = self.seq(slot)?;
        let v = seq.load(Ordering::Relaxed);
        seq.store(v.wrapping_add(2 - (v & 1)), Ordering::Relaxed);
        self.body(slot)?.store(body, Ordering::Relaxed);
        // Publish last: Release orders the writes above before the slot reads as live.
        self.kind(slot)?
            .store(u32::from(type_id) | (STATE_LIVE << 16), Ordering::Release);
        let generation = self.generation(slot)?.load(Ordering::Relaxed);
        Ok((slot, generation))
    }

    /// Gives a slot back: marks it free, bumps its generation, links it into the free list.
    /// The caller holds the arena lock and has freed the body.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// let (a, _) = table.take(1, 0)?;
    /// table.give_back(a)?;
    /// assert_eq!(table.generation(a)?.load(std::sync::atomic::Ordering::Relaxed), 2);
    /// assert_eq!(table.take(1, 0)?.0, a); // first on the free list
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn give_back(&self, slot: u32) -> Result<()> {
        let head = self.arena.atomic_u32(SLOT_FREE_OFF)?;
        self.kind(slot)?.store(STATE_FREE << 16, Ordering::Release);
        let g = self.generation(slot)?;
        // Generation 0 is never used, so a zeroed token can never match.
        let next = g.load(Ordering::Relaxed).wrapping_add(1).max(1);
        g.store(next, Ordering::Release);
        self.body(slot)?
            .store(u64::from(head.load(Ordering::Relaxed)), Ordering::Relaxed);
        head.store(slot + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Puts every free slot that is missing from the free-slot list back on it, and returns how
    /// many it put back: what a holder of the arena lock leaves when it dies inside [`take`]
    /// (after the slot left the list, before it was published) or [`give_back`] (after the slot
    /// was marked free, before it was linked). The caller holds the arena lock.
    ///
    /// [`take`]: Table::take
    /// [`give_back`]: Table::give_back
    ///
    /// # Errors
    /// `Corrupt` when the list links to a slot that is not free, out of range, or twice (a
    /// cycle); nothing is changed then.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// use std::sync::atomic::Ordering;
    /// use shmstore::header::SLOT_FREE_OFF;
    /// let (a, _) = table.take(1, 0)?;
    /// table.give_back(a)?;
    /// arena.atomic_u32(SLOT_FREE_OFF)?.store(0, Ordering::Relaxed); // as a crash mid-link leaves it
    /// assert_eq!(table.relink_lost_slots()?, 1);
    /// assert_eq!(table.take(1, 0)?.0, a);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn relink_lost_slots(&self) -> Result<u32> {
        let used = self.used_slots()?;
        let head = self.arena.atomic_u32(SLOT_FREE_OFF)?;
        let mut listed = vec![false; used as usize];
        let mut link = head.load(Ordering::Relaxed);
        while link != 0 {
            let slot = link - 1;
            let seen = listed.get_mut(slot as usize).ok_or(Error::corrupt(
                "free-slot link out of range",
                u64::from(slot),
            ))?;
            if *seen || self.type_and_state(slot)?.1 != STATE_FREE {
                return Err(Error::corrupt(
                    "free-slot list has a cycle or a live slot",
                    u64::from(slot),
                ));
            }
            *seen = true;
            link = u32::try_from(self.body(slot)?.load(Ordering::Relaxed))
                .map_err(|_| Error::corrupt("free-slot link out of range", u64::from(slot)))?;
        }
        let mut relinked = 0;
        for (slot, on_list) in (0..used).zip(listed) {
            if !on_list && self.type_and_state(slot)?.1 == STATE_FREE {
                self.body(slot)?
                    .store(u64::from(head.load(Ordering::Relaxed)), Ordering::Relaxed);
                head.store(slot + 1, Ordering::Relaxed);
                relinked += 1;
            }
        }
        Ok(relinked)
    }

    /// Slots ever used (the others are untouched zeroes).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::table::{Table, SLOT_SIZE};
    /// // A zeroed page (the header's slot counters live there), then a table of 4 slots.
    /// let arena = Arena::heap(4096 + 4 * SLOT_SIZE as usize);
    /// let table = Table::new(&arena, 4096, 4);
    /// assert_eq!(table.used_slots()?, 0);
    /// table.take(1, 0)?;
    /// table.take(1, 0)?;
    /// assert_eq!(table.used_slots()?, 2);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn used_slots(&self) -> Result<u32> {
        Ok(self
            .arena
            .atomic_u32(SLOT_UNUSED_OFF)?
            .load(Ordering::Relaxed)
            .min(self.slots))
    }

    /// Slots holding a live object (exact under the arena lock, which every change of a slot's
    /// state holds).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-livecount-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let table = store.core().table();
    /// let (a, _b) = (store.list([1])?, store.dict([(1, 2)])?);
    /// assert_eq!(table.count_live()?, 2);
    /// drop(a);
    /// assert_eq!(table.count_live()?, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn count_live(&self) -> Result<u64> {
        let mut n = 0;
        for slot in 0..self.used_slots()? {
            if self.type_and_state(slot)?.1 == STATE_LIVE {
                n += 1;
            }
        }
        Ok(n)
    }
}
