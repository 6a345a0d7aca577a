//! Interprocess locks that survive the death of their holder.
//!
//! Every object in the arena is guarded by a lock stored in the arena itself, beside the object.
//! This module supplies the *raw* lock: a few bytes at a fixed address, formatted once by the
//! creator and then locked and unlocked through raw pointers by every process that maps the arena,
//! whatever address it maps it at. Like `lock_api`'s `RawMutex`, the raw lock knows nothing about the
//! data it guards; the typed guard lives in the layers above.
//!
//! Two traits keep the implementation swappable: [`RawLock`] (the mutex) and [`RawCondvar`] (a
//! condition variable that waits on one kind of [`RawLock`]). Two implementations pass the same
//! conformance suite (below): [`PthreadMutex`] (a process-shared, robust, error-checking POSIX
//! mutex) with [`PthreadCondvar`], and [`FutexLock`] (a bare futex word holding the owner's
//! thread id; dead owners found by a liveness check when a waiter's sleep slice runs out) with
//! [`FutexCondvar`]. Both condition variables are the same process-shared futex design.
//! `table::ObjLock` picks one; callers that go through the traits do not change.
//!
//! # The recovery protocol
//!
//! A process may die at any instruction, including while it holds a lock. The next locker is then
//! told so: [`lock`](RawLock::lock) (and every other way of taking the lock) returns
//! [`Acquired::OwnerDied`] instead of [`Acquired::Clean`], and the caller *holds* the lock. The
//! guarded data may be half-written. The caller, in this order (LMDB's order):
//!
//! 1. repairs the guarded data (or marks the object broken),
//! 2. calls [`make_consistent`](RawLock::make_consistent),
//! 3. calls [`unlock`](RawLock::unlock) as usual.
//!
//! If it unlocks without step 2, the lock becomes permanently unusable and every later attempt
//! fails with [`Error::Corrupt`](crate::error::Error::Corrupt). If the repairer itself dies before step 2, the next locker gets
//! `OwnerDied` again and repairs again, so repairs must be idempotent.
//!
//! # Caveats
//!
//! - **fork**: a child forked while one of its parent's threads holds a lock does not hold it;
//!   the parent's thread still does. Never unlock in the child a lock taken before `fork`.
//! - **Relocking** by the thread that already holds a pthread lock is an error (`EDEADLK`), not a
//!   deadlock; unlocking a lock the caller does not hold is an error (`EPERM`).
//! - **Condition variables**: waits may wake spuriously; wait in a loop that rechecks the
//!   predicate. [`PthreadCondvar`] is a futex, not a `pthread_cond_t`, because glibc's condition
//!   variable can block `notify_all` forever after a waiter is killed mid-wait.
//! - **Platforms**: Linux (glibc or musl). Timed waits measure time on `CLOCK_MONOTONIC`, so
//!   setting the wall clock neither shortens nor lengthens them.
//!
//! # Examples
//! ```
//! use shmstore::arena::Arena;
//! use shmstore::sync::{Acquired, FutexLock, RawLock};
//! let mem = Arena::heap(64); // in real use, bytes of a mapped segment
//! let lock = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
//! // SAFETY (each block below): `lock` points at SIZE aligned bytes of `mem`, which outlives
//! // every use; `init` formats them once, before any other use; nothing else writes them.
//! unsafe { FutexLock::init(lock)? };
//! // A thread takes the lock and ends without releasing it: its holder is dead.
//! let addr = lock as usize;
//! let taken = std::thread::spawn(move || unsafe { FutexLock::lock(addr as *mut u8) });
//! assert_eq!(taken.join().unwrap()?, Acquired::Clean);
//! // The next locker is told, and holds the lock: repair, mark consistent, unlock.
//! assert_eq!(unsafe { FutexLock::lock(lock)? }, Acquired::OwnerDied);
//! unsafe { FutexLock::make_consistent(lock)? };
//! unsafe { FutexLock::unlock(lock)? };
//! assert_eq!(unsafe { FutexLock::lock(lock)? }, Acquired::Clean);
//! unsafe { FutexLock::unlock(lock)? };
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::time::Duration;

use crate::error::Result;

pub mod barrier;
pub mod futex;
pub mod pthread;
pub mod word;

pub use futex::{FutexCondvar, FutexLock};
pub use pthread::{LockHolder, PthreadCondvar, PthreadMutex};

/// What taking a robust lock found.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::{Acquired, PthreadMutex, RawLock};
/// let mem = Arena::heap(64);
/// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
/// // SAFETY: `m` is SIZE aligned bytes of `mem`, formatted once here and used only below,
/// // by this thread, which holds the lock when it unlocks.
/// unsafe {
///     PthreadMutex::init(m)?;
///     assert_eq!(PthreadMutex::lock(m)?, Acquired::Clean);
///     PthreadMutex::unlock(m)?;
/// }
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "OwnerDied means the guarded data must be repaired and make_consistent called"]
pub enum Acquired {
    /// The lock was free, or its previous holder released it normally.
    Clean,
    /// The previous holder died holding the lock. The caller now holds it, must repair the guarded
    /// data, then call [`RawLock::make_consistent`] before [`RawLock::unlock`].
    OwnerDied,
}

impl Acquired {
    /// Whether the previous holder died holding the lock.
    ///
    /// # Examples
    /// ```
    /// use shmstore::sync::Acquired;
    /// assert!(Acquired::OwnerDied.owner_died());
    /// assert!(!Acquired::Clean.owner_died());
    /// ```
    #[inline]
    pub fn owner_died(self) -> bool {
        self == Acquired::OwnerDied
    }
}

/// A raw interprocess lock: `SIZE` bytes at a fixed address in shared memory.
///
/// The lock is reached only through raw pointers, because it lives in memory that other processes
/// write: no `&` or `&mut` to its bytes is ever formed.
///
/// # Safety
///
/// **For implementers.** An implementation must provide mutual exclusion across every thread of every process that maps
/// the bytes, at any address: between a successful return from a locking function and the matching
/// [`unlock`](Self::unlock), no other thread in any process returns success from a locking
/// function. A lock must synchronize-with the previous unlock (acquire/release), so data written
/// under the lock is visible to the next holder. When the holder dies (its thread or process
/// exits), the next locker must get [`Acquired::OwnerDied`], never a deadlock. The bytes must hold
/// no pointers or process-local handles.
///
/// **For callers: the pointer contract.** Every function takes `ptr`, which must satisfy, for the whole call:
///
/// - `ptr` is non-null, aligned to [`ALIGN`](Self::ALIGN), and valid for reads and writes of
///   [`SIZE`](Self::SIZE) bytes;
/// - the memory stays mapped for as long as any thread of any process holds the lock or is
///   blocked in one of these functions on it;
/// - except in [`init`](Self::init), the bytes were formatted by `init`, exactly once, before any
///   thread of any process used them, and have not been re-formatted since;
/// - the bytes are written only by these functions (never copied, moved, zeroed or overwritten
///   while they may be in use).
///
/// Individual functions add their own conditions (holding the lock, for instance).
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::{Acquired, FutexLock, PthreadMutex, RawLock};
/// // Code over the trait works with either lock.
/// fn count_to<L: RawLock>(n: u64) -> shmstore::Result<u64> {
///     let mem = Arena::heap(64);
///     let lock = mem.raw_ptr(0, L::SIZE as u64, L::ALIGN as u64)?;
///     // SAFETY: `lock` is SIZE aligned bytes of `mem`, which outlives the scope below (every
///     // thread is joined in it); formatted once, then used only through `L`.
///     unsafe { L::init(lock)? };
///     let (addr, total) = (lock as usize, std::sync::atomic::AtomicU64::new(0));
///     std::thread::scope(|s| {
///         for _ in 0..4 {
///             s.spawn(|| -> shmstore::Result<()> {
///                 for _ in 0..n {
///                     // SAFETY: as above; this thread holds the lock when it unlocks.
///                     unsafe {
///                         assert_eq!(L::lock(addr as *mut u8)?, Acquired::Clean);
///                         let v = total.load(std::sync::atomic::Ordering::Relaxed);
///                         total.store(v + 1, std::sync::atomic::Ordering::Relaxed);
///                         L::unlock(addr as *mut u8)?;
///                     }
///                 }
///                 Ok(())
///             });
///         }
///     });
///     Ok(total.into_inner())
/// }
/// assert_eq!(count_to::<FutexLock>(1000)?, 4000);
/// assert_eq!(count_to::<PthreadMutex>(1000)?, 4000);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub unsafe trait RawLock {
    /// Number of bytes the lock occupies.
    const SIZE: usize;
    /// Alignment, in bytes, that the lock's address must have.
    const ALIGN: usize;
    /// Names this lock's byte format. The header folds it (with `SIZE`) into the arena's format
    /// word, so that builds with different lock implementations refuse each other's arenas
    /// instead of misreading their locks.
    const FORMAT: u32;

    /// Formats the bytes at `ptr` as an unlocked, process-shared, robust lock.
    ///
    /// # Errors
    ///
    /// [`Error::Os`](crate::error::Error::Os) if the system refuses to create the lock.
    ///
    /// # Safety
    ///
    /// - `ptr` is non-null, aligned to `ALIGN` and valid for writes of `SIZE` bytes;
    /// - no thread of any process uses the lock at `ptr` during or before this call (it is called
    ///   exactly once, by the creator, before the lock is published).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{PthreadMutex, RawLock};
    /// let mem = Arena::heap(64);
    /// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
    /// // SAFETY: fresh, aligned bytes of `mem`, formatted once before any use.
    /// unsafe { PthreadMutex::init(m)? };
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn init(ptr: *mut u8) -> Result<()>;

    /// Blocks until the calling thread holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Os`](crate::error::Error::Os) with `EDEADLK` if the calling thread already holds
    /// the lock (where the implementation detects it), [`Error::Corrupt`](crate::error::Error::Corrupt)
    /// if the lock was made unrecoverable (unlocked after `OwnerDied` without
    /// `make_consistent`), `Error::Os` for any other failure. On error the lock is not taken.
    ///
    /// # Safety
    ///
    /// - the pointer contract of [`RawLock`] holds.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{Acquired, PthreadMutex, RawLock};
    /// use shmstore::Error;
    /// let mem = Arena::heap(64);
    /// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
    /// // SAFETY: `m` is SIZE aligned bytes of `mem`, formatted once by `init`; this thread holds
    /// // the lock when it unlocks.
    /// unsafe {
    ///     PthreadMutex::init(m)?;
    ///     assert_eq!(PthreadMutex::lock(m)?, Acquired::Clean);
    ///     // The error-checking mutex refuses to be taken twice by its holder.
    ///     assert!(matches!(PthreadMutex::lock(m), Err(Error::Os { .. })));
    ///     PthreadMutex::unlock(m)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn lock(ptr: *mut u8) -> Result<Acquired>;

    /// Takes the lock if it is free, without blocking; `Ok(None)` if another thread holds it.
    ///
    /// # Errors
    ///
    /// As [`lock`](Self::lock).
    ///
    /// # Safety
    ///
    /// - the pointer contract of [`RawLock`] holds.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{Acquired, FutexLock, RawLock};
    /// let mem = Arena::heap(64);
    /// let l = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
    /// let addr = l as usize;
    /// // SAFETY: `l` is SIZE aligned bytes of `mem` (which outlives the other thread), formatted
    /// // once by `init`; each thread unlocks only what it holds.
    /// unsafe {
    ///     FutexLock::init(l)?;
    ///     assert_eq!(FutexLock::try_lock(l)?, Some(Acquired::Clean));
    ///     let other = std::thread::spawn(move || FutexLock::try_lock(addr as *mut u8)).join().unwrap();
    ///     assert_eq!(other?, None); // held here: the other thread does not wait
    ///     FutexLock::unlock(l)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn try_lock(ptr: *mut u8) -> Result<Option<Acquired>>;

    /// Blocks until the calling thread holds the lock, or for at most `timeout`.
    ///
    /// Any `timeout` is valid: zero only tries, and huge ones (up to `Duration::MAX`) wait as good
    /// as forever.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::error::Error::Timeout) if `timeout` ran out; otherwise as
    /// [`lock`](Self::lock).
    ///
    /// # Safety
    ///
    /// - the pointer contract of [`RawLock`] holds.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{FutexLock, RawLock};
    /// use shmstore::Error;
    /// let mem = Arena::heap(64);
    /// let l = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
    /// let addr = l as usize;
    /// // SAFETY: as for `try_lock`: formatted once, `mem` outlives the other thread, each thread
    /// // unlocks only what it holds.
    /// unsafe {
    ///     FutexLock::init(l)?;
    ///     let _ = FutexLock::lock_timeout(l, Duration::from_secs(1))?;
    ///     let other = std::thread::spawn(move || {
    ///         FutexLock::lock_timeout(addr as *mut u8, Duration::from_millis(10))
    ///     });
    ///     assert_eq!(other.join().unwrap(), Err(Error::Timeout));
    ///     FutexLock::unlock(l)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn lock_timeout(ptr: *mut u8, timeout: Duration) -> Result<Acquired>;

    /// Marks a lock taken with [`Acquired::OwnerDied`] as consistent again, after its guarded data
    /// was repaired. The caller still holds the lock and unlocks it as usual.
    ///
    /// # Errors
    ///
    /// `Error::Os` (`EINVAL` for pthread) if the lock is not in the owner-died state.
    ///
    /// # Safety
    ///
    /// - the pointer contract of [`RawLock`] holds;
    /// - the calling thread holds the lock, taken with `Acquired::OwnerDied`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{Acquired, PthreadMutex, RawLock};
    /// let mem = Arena::heap(64);
    /// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
    /// let addr = m as usize;
    /// // SAFETY: `m` is SIZE aligned bytes of `mem`, formatted once; the thread that dies holding
    /// // the lock never unlocks it, and this thread unlocks only after it took it.
    /// unsafe {
    ///     PthreadMutex::init(m)?;
    ///     let taken = std::thread::spawn(move || PthreadMutex::lock(addr as *mut u8));
    ///     assert_eq!(taken.join().unwrap()?, Acquired::Clean);
    ///     assert_eq!(PthreadMutex::lock(m)?, Acquired::OwnerDied); // its holder's thread ended
    ///     // ... repair what the lock guards, then:
    ///     PthreadMutex::make_consistent(m)?;
    ///     PthreadMutex::unlock(m)?;
    ///     assert_eq!(PthreadMutex::lock(m)?, Acquired::Clean);
    ///     PthreadMutex::unlock(m)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn make_consistent(ptr: *mut u8) -> Result<()>;

    /// Releases the lock.
    ///
    /// # Errors
    ///
    /// `Error::Os` (`EPERM` for pthread) if the calling thread does not hold the lock, where the
    /// implementation detects it.
    ///
    /// # Safety
    ///
    /// - the pointer contract of [`RawLock`] holds;
    /// - the calling thread holds the lock (an implementation that cannot detect a violation may
    ///   release another thread's lock and so break mutual exclusion).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{PthreadMutex, RawLock};
    /// use shmstore::Error;
    /// let mem = Arena::heap(64);
    /// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
    /// // SAFETY: `m` is SIZE aligned bytes of `mem`, formatted once; the second unlock is the
    /// // misuse the error-checking mutex detects (EPERM), not one that breaks exclusion.
    /// unsafe {
    ///     PthreadMutex::init(m)?;
    ///     let _ = PthreadMutex::lock(m)?;
    ///     PthreadMutex::unlock(m)?;
    ///     assert!(matches!(PthreadMutex::unlock(m), Err(Error::Os { .. })));
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn unlock(ptr: *mut u8) -> Result<()>;
}

/// A raw interprocess condition variable that waits on locks of type [`Lock`](Self::Lock).
///
/// # Safety
///
/// **For implementers.** A wait must release the lock and start waiting atomically with respect to every notifier that
/// holds the lock (a notification sent by a thread holding the lock, after the waiter started
/// waiting, is not lost to that waiter), and must hold the lock again when it returns `Ok`. The
/// bytes must hold no pointers or process-local handles.
///
/// **For callers: the pointer contract.** `cond` satisfies the pointer contract of [`RawLock`] with this trait's `SIZE`, `ALIGN` and
/// `init`; where a function also takes `mutex`, it satisfies the contract of `Self::Lock`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shmstore::arena::Arena;
/// use shmstore::sync::{FutexCondvar, FutexLock, RawCondvar, RawLock};
/// let mem = Arena::heap(256);
/// let (l, c) = (mem.raw_ptr(0, 64, 8)?, mem.raw_ptr(64, FutexCondvar::SIZE as u64, FutexCondvar::ALIGN as u64)?);
/// let flag = mem.atomic_u32(128)?; // the predicate, guarded by the lock
/// let (la, ca) = (l as usize, c as usize);
/// // SAFETY: `l` and `c` are disjoint, aligned byte ranges of `mem` (which outlives the scope),
/// // each formatted once; every wait holds the lock, and the same lock for every waiter.
/// unsafe {
///     FutexLock::init(l)?;
///     FutexCondvar::init(c)?;
///     std::thread::scope(|s| {
///         s.spawn(move || -> shmstore::Result<()> {
///             let _ = FutexLock::lock(la as *mut u8)?;
///             flag.store(1, std::sync::atomic::Ordering::Relaxed);
///             FutexCondvar::notify_all(ca as *mut u8)?;
///             FutexLock::unlock(la as *mut u8)
///         });
///         let _ = FutexLock::lock(l)?;
///         while flag.load(std::sync::atomic::Ordering::Relaxed) == 0 {
///             let _ = FutexCondvar::wait_timeout(c, l, Duration::from_secs(5))?;
///         }
///         FutexLock::unlock(l)
///     })?;
/// }
/// # Ok::<(), shmstore::Error>(())
/// ```
pub unsafe trait RawCondvar {
    /// The kind of lock this condition variable waits on.
    type Lock: RawLock;
    /// Number of bytes the condition variable occupies.
    const SIZE: usize;
    /// Alignment, in bytes, that its address must have.
    const ALIGN: usize;

    /// Formats the bytes at `cond` as a process-shared condition variable with no waiters.
    ///
    /// # Errors
    ///
    /// [`Error::Os`](crate::error::Error::Os) if the system refuses to create it.
    ///
    /// # Safety
    ///
    /// As [`RawLock::init`], with this trait's `SIZE` and `ALIGN`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{PthreadCondvar, RawCondvar};
    /// let mem = Arena::heap(64);
    /// let c = mem.raw_ptr(0, PthreadCondvar::SIZE as u64, PthreadCondvar::ALIGN as u64)?;
    /// // SAFETY: fresh, aligned bytes of `mem`, formatted once before any use.
    /// unsafe { PthreadCondvar::init(c)? };
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn init(cond: *mut u8) -> Result<()>;

    /// Releases `mutex`, waits for a notification, and takes `mutex` again. May also wake
    /// spuriously: callers wait in a loop that rechecks their predicate.
    ///
    /// Returns what retaking `mutex` found: [`Acquired::OwnerDied`] if a holder of `mutex` died
    /// holding it while this thread waited (repair, then `make_consistent`, as for a lock). A
    /// caller that took `mutex` with `OwnerDied` calls `make_consistent` before it waits: the wait
    /// unlocks `mutex`, which would otherwise make it unrecoverable.
    ///
    /// # Errors
    ///
    /// `Error::Corrupt` if `mutex` was made unrecoverable; `Error::Os` on misuse (`EPERM` if the
    /// caller does not hold `mutex`). After an error the caller must not assume it holds `mutex`.
    ///
    /// # Safety
    ///
    /// - the pointer contracts hold for `cond` and `mutex`;
    /// - the calling thread holds `mutex`;
    /// - every thread waiting on `cond` at the same time waits with the same `mutex`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{Acquired, FutexCondvar, FutexLock, RawCondvar, RawLock};
    /// let mem = Arena::heap(256);
    /// let l = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
    /// let c = mem.raw_ptr(64, FutexCondvar::SIZE as u64, FutexCondvar::ALIGN as u64)?;
    /// let ready = mem.atomic_u32(128)?;
    /// let (la, ca) = (l as usize, c as usize);
    /// // SAFETY: disjoint, aligned ranges of `mem` (which outlives the scope), formatted once; the
    /// // waiter holds the lock, and the notifier takes the same lock.
    /// unsafe {
    ///     FutexLock::init(l)?;
    ///     FutexCondvar::init(c)?;
    ///     std::thread::scope(|s| {
    ///         let _ = FutexLock::lock(l)?;
    ///         s.spawn(move || -> shmstore::Result<()> {
    ///             let _ = FutexLock::lock(la as *mut u8)?; // waits until the wait below lets go
    ///             ready.store(1, std::sync::atomic::Ordering::Relaxed);
    ///             FutexCondvar::notify_one(ca as *mut u8)?;
    ///             FutexLock::unlock(la as *mut u8)
    ///         });
    ///         while ready.load(std::sync::atomic::Ordering::Relaxed) == 0 {
    ///             assert_eq!(FutexCondvar::wait(c, l)?, Acquired::Clean);
    ///         }
    ///         FutexLock::unlock(l)
    ///     })?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn wait(cond: *mut u8, mutex: *mut u8) -> Result<Acquired>;

    /// As [`wait`](Self::wait), but waits at most `timeout` (any `Duration`, up to
    /// `Duration::MAX`). Returns what retaking `mutex` found and whether the timeout ran out; in
    /// both cases the caller holds `mutex` again.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait). A timeout is not an error.
    ///
    /// # Safety
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{Acquired, FutexCondvar, FutexLock, RawCondvar, RawLock};
    /// let mem = Arena::heap(128);
    /// let l = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
    /// let c = mem.raw_ptr(64, FutexCondvar::SIZE as u64, FutexCondvar::ALIGN as u64)?;
    /// // SAFETY: disjoint, aligned ranges of `mem`, formatted once; this thread holds the lock
    /// // while it waits and when it unlocks.
    /// unsafe {
    ///     FutexLock::init(l)?;
    ///     FutexCondvar::init(c)?;
    ///     let _ = FutexLock::lock(l)?;
    ///     // Nobody notifies: the wait times out, holding the lock again.
    ///     let got = FutexCondvar::wait_timeout(c, l, Duration::from_millis(10))?;
    ///     assert_eq!(got, (Acquired::Clean, true));
    ///     FutexLock::unlock(l)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn wait_timeout(
        cond: *mut u8,
        mutex: *mut u8,
        timeout: Duration,
    ) -> Result<(Acquired, bool)>;

    /// Wakes at least one thread waiting on `cond`, if there is any.
    ///
    /// # Errors
    ///
    /// `Error::Os` if the system reports a failure (pthread on Linux never does).
    ///
    /// # Safety
    ///
    /// - the pointer contract holds for `cond`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{FutexCondvar, RawCondvar};
    /// let mem = Arena::heap(64);
    /// let c = mem.raw_ptr(0, FutexCondvar::SIZE as u64, FutexCondvar::ALIGN as u64)?;
    /// // SAFETY: aligned bytes of `mem`, formatted once.
    /// unsafe {
    ///     FutexCondvar::init(c)?;
    ///     FutexCondvar::notify_one(c)?; // no waiter: nothing happens
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn notify_one(cond: *mut u8) -> Result<()>;

    /// Wakes every thread waiting on `cond`.
    ///
    /// # Errors
    ///
    /// As [`notify_one`](Self::notify_one).
    ///
    /// # Safety
    ///
    /// - the pointer contract holds for `cond`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{PthreadCondvar, RawCondvar};
    /// let mem = Arena::heap(64);
    /// let c = mem.raw_ptr(0, PthreadCondvar::SIZE as u64, PthreadCondvar::ALIGN as u64)?;
    /// // SAFETY: aligned bytes of `mem`, formatted once.
    /// unsafe {
    ///     PthreadCondvar::init(c)?;
    ///     PthreadCondvar::notify_all(c)?; // no waiter: nothing happens
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    unsafe fn notify_all(cond: *mut u8) -> Result<()>;
}

/// Helpers for tests that run across real processes: a shared page, pipes, `fork`.
#[cfg(test)]
pub(crate) mod test_support {
    use std::fs::File;
    use std::os::fd::FromRawFd;

    use memmap2::{MmapOptions, MmapRaw};

    /// One page of memory shared with every child forked after it was made (a memfd mapped
    /// `MAP_SHARED` through `MmapRaw`, as the real segment is).
    pub(crate) struct SharedPage {
        map: MmapRaw,
        _file: File,
    }

    impl Drop for SharedPage {
        fn drop(&mut self) {
            // As an arena's drop: a page mapped here later starts with no lock history.
            super::barrier::forget_range(self.map.as_ptr() as usize, Self::LEN);
        }
    }

    impl SharedPage {
        pub(crate) const LEN: usize = 4096;

        pub(crate) fn new() -> SharedPage {
            // SAFETY: the name is a valid C string; the flags are valid.
            let fd = unsafe { libc::memfd_create(c"shmstore-sync-test".as_ptr(), 0) };
            assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            let file = unsafe { File::from_raw_fd(fd) };
            file.set_len(Self::LEN as u64).expect("set_len");
            let map = MmapOptions::new()
                .len(Self::LEN)
                .map_raw(&file)
                .expect("map_raw");
            SharedPage { map, _file: file }
        }

        /// The address of byte `off`.
        pub(crate) fn at(&self, off: usize) -> *mut u8 {
            assert!(off < Self::LEN);
            // SAFETY: `off` is inside the mapping (checked).
            unsafe { self.map.as_mut_ptr().add(off) }
        }
    }

    /// A pipe; both ends stay open in the process and in every child.
    pub(crate) struct Pipe {
        r: libc::c_int,
        w: libc::c_int,
    }

    impl Pipe {
        pub(crate) fn new() -> Pipe {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors.
            let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
            assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
            Pipe {
                r: fds[0],
                w: fds[1],
            }
        }

        /// Writes one byte; async-signal-safe, for children.
        pub(crate) fn send(&self, b: u8) -> bool {
            loop {
                // SAFETY: `b` is one readable byte; `self.w` is open.
                let n = unsafe { libc::write(self.w, (&b as *const u8).cast(), 1) };
                if n == 1 {
                    return true;
                }
                if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return false;
            }
        }

        /// Reads one byte, blocking; `None` on end of file or error. Async-signal-safe.
        pub(crate) fn recv(&self) -> Option<u8> {
            let mut b = 0u8;
            loop {
                // SAFETY: `b` is one writable byte; `self.r` is open.
                let n = unsafe { libc::read(self.r, (&mut b as *mut u8).cast(), 1) };
                if n == 1 {
                    return Some(b);
                }
                if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return None;
            }
        }
    }

    impl Drop for Pipe {
        fn drop(&mut self) {
            // SAFETY: both descriptors are open and owned by this pipe.
            unsafe {
                libc::close(self.r);
                libc::close(self.w);
            }
        }
    }

    /// Forks a child that runs `f` and `_exit`s with its result (101 if it panics). The child never
    /// returns into the test harness. `f` must keep to simple operations: the test binary is
    /// multithreaded and only the forking thread exists in the child.
    pub(crate) fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
        // SAFETY: fork has no preconditions; the child only runs `f` and then `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
            // destructors.
            unsafe { libc::_exit(code) };
        }
        pid
    }

    /// How a child ended.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Exit {
        Code(i32),
        Signal(i32),
    }

    /// Waits for child `pid` to end.
    pub(crate) fn wait_child(pid: libc::pid_t) -> Exit {
        let mut status = 0;
        loop {
            // SAFETY: `status` is writable; `pid` is our child.
            let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
            if rc == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid: {err}");
        }
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        }
    }

    /// Waits (up to 10 s) until task `tid` (a thread of this process or a child) sleeps in the
    /// kernel (`S` in `/proc/<tid>/stat`): for a waiter already counted on a lock, that is its
    /// futex wait (spinning, the barrier and yielding all run). False if it never did.
    pub(crate) fn wait_until_asleep(tid: u32) -> bool {
        wait_until_state(tid, b'S')
    }

    /// Waits (up to 10 s) until task `tid`'s state in `/proc/<tid>/stat` is `state`.
    fn wait_until_state(tid: u32, state: u8) -> bool {
        let path = format!("/proc/{tid}/stat");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if super::futex::thread_state(&path) == Some(state) {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    /// Yields until `cond` holds; panics after 10 s (a child that failed before it got there)
    /// instead of spinning for good.
    pub(crate) fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !cond() {
            assert!(
                std::time::Instant::now() < deadline,
                "waited 10 s for {what}"
            );
            std::thread::yield_now();
        }
    }

    /// Sends child `pid` the signal `sig` (`SIGSTOP`, `SIGCONT`).
    pub(crate) fn signal_child(pid: libc::pid_t, sig: libc::c_int) {
        // SAFETY: `pid` is our child, not yet reaped.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Waits (at most 10 s) until thread `tid` is stopped by a signal.
    pub(crate) fn wait_until_stopped(tid: u32) -> bool {
        wait_until_state(tid, b'T')
    }

    /// Kills child `pid` with SIGKILL and reaps it.
    pub(crate) fn kill_child(pid: libc::pid_t) -> Exit {
        signal_child(pid, libc::SIGKILL);
        wait_child(pid)
    }
}

/// A conformance suite every [`RawLock`] passes, run here against [`PthreadMutex`] and
/// [`FutexLock`].
#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::test_support::{fork_child, kill_child, wait_child, Exit, Pipe, SharedPage};
    use super::{Acquired, FutexLock, PthreadMutex, RawLock};
    use crate::error::Error;

    /// Long enough that a correct lock never hits it; short enough that a broken one fails the
    /// test instead of hanging it.
    const PATIENCE: Duration = Duration::from_secs(10);

    fn new_lock<L: RawLock>(page: &SharedPage) -> *mut u8 {
        assert!(L::SIZE <= 64 && 64 % L::ALIGN == 0);
        let m = page.at(0);
        // SAFETY: the page is mapped, 4096-aligned and at least SIZE long; nothing uses it yet.
        unsafe { L::init(m) }.unwrap();
        m
    }

    /// Runs `f` in another thread of this process and returns its result.
    fn in_other_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| s.spawn(f).join().unwrap())
    }

    /// Lets a raw pointer cross into a scoped thread.
    #[derive(Clone, Copy)]
    struct SendPtr(*mut u8);
    // SAFETY: the pointee is a process-shared lock (or data guarded by it), built to be used from
    // any thread.
    unsafe impl Send for SendPtr {}
    // SAFETY: as above.
    unsafe impl Sync for SendPtr {}

    impl SendPtr {
        /// The pointer. (A method, so that closures capture the whole `SendPtr`, not its field.)
        fn get(self) -> *mut u8 {
            self.0
        }
    }

    fn lock_unlock_clean<L: RawLock>() {
        let page = SharedPage::new();
        let m = SendPtr(new_lock::<L>(&page));
        // SAFETY: `m` satisfies the pointer contract (initialized above, the
        // page outlives the test), and each unlock is by the thread holding the lock.
        unsafe {
            assert_eq!(L::lock(m.get()), Ok(Acquired::Clean));
            let other = in_other_thread(|| L::try_lock(m.get()));
            assert_eq!(other, Ok(None));
            let other = in_other_thread(|| L::lock_timeout(m.get(), Duration::ZERO));
            assert_eq!(other, Err(Error::Timeout));
            L::unlock(m.get()).unwrap();
            assert_eq!(L::try_lock(m.get()), Ok(Some(Acquired::Clean)));
            L::unlock(m.get()).unwrap();
            assert_eq!(
                L::lock_timeout(m.get(), Duration::ZERO),
                Ok(Acquired::Clean)
            );
            L::unlock(m.get()).unwrap();
            assert_eq!(L::lock_timeout(m.get(), Duration::MAX), Ok(Acquired::Clean));
            L::unlock(m.get()).unwrap();
        }
    }

    /// Takes the lock after its holder died, checks `OwnerDied`, repairs, and checks that the next
    /// locker finds it clean.
    fn recover<L: RawLock>(m: *mut u8) {
        // SAFETY: `m` satisfies the pointer contract; the thread holds the lock between lock and
        // unlock.
        unsafe {
            assert_eq!(L::lock_timeout(m, PATIENCE), Ok(Acquired::OwnerDied));
            L::make_consistent(m).unwrap();
            L::unlock(m).unwrap();
            assert_eq!(L::lock_timeout(m, PATIENCE), Ok(Acquired::Clean));
            L::unlock(m).unwrap();
        }
    }

    fn owner_killed_while_holding<L: RawLock>() {
        let page = SharedPage::new();
        let m = new_lock::<L>(&page);
        let held = Pipe::new();
        let never = Pipe::new();
        let child = fork_child(|| {
            // SAFETY: `m` is in the shared page, initialized before the fork.
            if unsafe { L::lock(m) } != Ok(Acquired::Clean) {
                return 1;
            }
            held.send(1);
            never.recv(); // blocks until killed: nobody writes this pipe
            2
        });
        assert_eq!(held.recv(), Some(1));
        assert_eq!(kill_child(child), Exit::Signal(libc::SIGKILL));
        recover::<L>(m);
    }

    fn owner_exits_while_holding<L: RawLock>() {
        let page = SharedPage::new();
        let m = new_lock::<L>(&page);
        // The parent blocks in lock_timeout while the child still holds the lock, if it is quick.
        let held = Pipe::new();
        let child = fork_child(|| {
            // SAFETY: `m` is in the shared page, initialized before the fork.
            match unsafe { L::lock(m) } {
                Ok(Acquired::Clean) => {
                    held.send(1);
                    0 // exits holding the lock
                }
                _ => 1,
            }
        });
        assert_eq!(held.recv(), Some(1));
        recover::<L>(m);
        assert_eq!(wait_child(child), Exit::Code(0));
    }

    fn thread_exits_while_holding<L: RawLock>() {
        let page = SharedPage::new();
        let m = SendPtr(new_lock::<L>(&page));
        // SAFETY: `m` satisfies the pointer contract; the thread ends holding the lock on purpose.
        let r = in_other_thread(|| unsafe { L::lock(m.get()) });
        assert_eq!(r, Ok(Acquired::Clean));
        recover::<L>(m.get());
    }

    fn unrepaired_lock_is_reported_corrupt<L: RawLock>() {
        let page = SharedPage::new();
        let m = SendPtr(new_lock::<L>(&page));
        // SAFETY: `m` satisfies the pointer contract; the thread ends holding the lock on purpose.
        let r = in_other_thread(|| unsafe { L::lock(m.get()) });
        assert_eq!(r, Ok(Acquired::Clean));
        // SAFETY: `m` satisfies the pointer contract; this thread holds the lock when it unlocks.
        unsafe {
            assert_eq!(L::lock(m.get()), Ok(Acquired::OwnerDied));
            L::unlock(m.get()).unwrap(); // without make_consistent
            assert!(matches!(L::lock(m.get()), Err(Error::Corrupt { .. })));
            assert!(matches!(L::try_lock(m.get()), Err(Error::Corrupt { .. })));
            let r = L::lock_timeout(m.get(), PATIENCE);
            assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
            // Failing to lock took nothing: another thread fails the same way, without waiting
            // (regression: glibc's trylock left the lock word taken, so this timed out).
            let r = in_other_thread(|| L::lock_timeout(m.get(), PATIENCE));
            assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
            let r = in_other_thread(|| L::try_lock(m.get()));
            assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
        }
    }

    fn lock_timeout_while_other_process_holds<L: RawLock>() {
        let page = SharedPage::new();
        let m = new_lock::<L>(&page);
        let held = Pipe::new();
        let release = Pipe::new();
        let child = fork_child(|| {
            // SAFETY: `m` is in the shared page, initialized before the fork; the child unlocks
            // only the lock it holds.
            unsafe {
                if L::lock(m) != Ok(Acquired::Clean) {
                    return 1;
                }
                held.send(1);
                release.recv();
                if L::unlock(m).is_err() {
                    return 2;
                }
            }
            0
        });
        assert_eq!(held.recv(), Some(1));
        // SAFETY: `m` satisfies the pointer contract; this thread unlocks only what it holds.
        unsafe {
            assert_eq!(L::try_lock(m), Ok(None));
            assert_eq!(L::lock_timeout(m, Duration::ZERO), Err(Error::Timeout));
            // Sub-second, whole seconds plus nanoseconds, and a nanosecond carry.
            for timeout in [
                Duration::from_millis(50),
                Duration::from_millis(1),
                Duration::new(1, 100_000_000),
                Duration::from_nanos(999_999_999),
            ] {
                let start = Instant::now();
                assert_eq!(L::lock_timeout(m, timeout), Err(Error::Timeout));
                let waited = start.elapsed();
                assert!(
                    waited >= timeout,
                    "timed out after {waited:?} < {timeout:?}"
                );
            }
            release.send(1);
            assert_eq!(L::lock_timeout(m, PATIENCE), Ok(Acquired::Clean));
            L::unlock(m).unwrap();
        }
        assert_eq!(wait_child(child), Exit::Code(0));
    }

    /// 2 processes × 2 threads each add 1 to a plain (non-atomic) counter 100,000 times.
    fn mutual_exclusion<L: RawLock>() {
        const ROUNDS: u64 = 100_000;
        let page = SharedPage::new();
        let m = SendPtr(new_lock::<L>(&page));
        let counter = SendPtr(page.at(64));
        // SAFETY: offset 64 is 8-aligned, inside the page, used by nothing else.
        unsafe { counter.get().cast::<u64>().write(0) };

        let work = move || -> bool {
            for _ in 0..ROUNDS {
                // SAFETY: 1. `m` satisfies the pointer contract; 2. the counter is touched only
                // while holding the lock, so these plain accesses do not race; 3. this thread
                // unlocks only what it holds.
                unsafe {
                    if L::lock(m.get()) != Ok(Acquired::Clean) {
                        return false;
                    }
                    let c = counter.get().cast::<u64>();
                    c.write(c.read() + 1);
                    if L::unlock(m.get()).is_err() {
                        return false;
                    }
                }
            }
            true
        };
        let two_threads = move || -> bool {
            std::thread::scope(|s| {
                let t = s.spawn(work);
                let mine = work();
                t.join().unwrap_or(false) && mine
            })
        };
        let child = fork_child(|| if two_threads() { 0 } else { 1 });
        assert!(two_threads());
        assert_eq!(wait_child(child), Exit::Code(0));
        // SAFETY: every other user of the counter has finished (threads joined, child reaped).
        assert_eq!(unsafe { counter.get().cast::<u64>().read() }, 4 * ROUNDS);
    }

    #[test]
    fn pthread_lock_unlock_clean() {
        lock_unlock_clean::<PthreadMutex>();
    }

    #[test]
    fn pthread_owner_killed_while_holding() {
        owner_killed_while_holding::<PthreadMutex>();
    }

    #[test]
    fn pthread_owner_exits_while_holding() {
        owner_exits_while_holding::<PthreadMutex>();
    }

    #[test]
    fn pthread_thread_exits_while_holding() {
        thread_exits_while_holding::<PthreadMutex>();
    }

    #[test]
    fn pthread_unrepaired_lock_is_reported_corrupt() {
        unrepaired_lock_is_reported_corrupt::<PthreadMutex>();
    }

    #[test]
    fn pthread_lock_timeout_while_other_process_holds() {
        lock_timeout_while_other_process_holds::<PthreadMutex>();
    }

    #[test]
    fn pthread_mutual_exclusion() {
        mutual_exclusion::<PthreadMutex>();
    }

    #[test]
    fn futex_lock_unlock_clean() {
        lock_unlock_clean::<FutexLock>();
    }

    #[test]
    fn futex_owner_killed_while_holding() {
        owner_killed_while_holding::<FutexLock>();
    }

    #[test]
    fn futex_owner_exits_while_holding() {
        owner_exits_while_holding::<FutexLock>();
    }

    #[test]
    fn futex_thread_exits_while_holding() {
        thread_exits_while_holding::<FutexLock>();
    }

    #[test]
    fn futex_unrepaired_lock_is_reported_corrupt() {
        unrepaired_lock_is_reported_corrupt::<FutexLock>();
    }

    #[test]
    fn futex_lock_timeout_while_other_process_holds() {
        lock_timeout_while_other_process_holds::<FutexLock>();
    }

    #[test]
    fn futex_mutual_exclusion() {
        mutual_exclusion::<FutexLock>();
    }
}
