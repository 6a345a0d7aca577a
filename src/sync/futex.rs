//! A robust lock on a bare futex word holding its owner's thread id.
//!
//! [`FutexLock`] takes one compare-and-swap to lock and one plain store to unlock when nobody
//! waits, against glibc's robust mutex, which also maintains the thread's robust list on every
//! lock and unlock and gives the lock back with a second atomic read-modify-write. The store is
//! enough because waiters count themselves in a word of their own and pay for the ordering with
//! a cross-process memory barrier before they sleep ([`barrier`](super::barrier)).
//! The kernel does not tell anyone when its holder dies (its robust list is glibc's), so a waiter
//! finds out itself: it sleeps on the futex in slices of [`SLICE`], and when a slice runs out it
//! asks whether the owner still lives. A dead owner's lock is taken over and reported as
//! [`Acquired::OwnerDied`], as a robust pthread mutex reports `EOWNERDEAD`.
//!
//! [`FutexCondvar`] is the condition variable that waits on it: the same two-word futex condition
//! variable as [`PthreadCondvar`](super::PthreadCondvar), unlocking and relocking a `FutexLock`.
//!
//! # The bytes
//!
//! ```text
//! 0   state    u32  owner's tid | INCONSISTENT (bit 30); 0 = free;
//!                   INCONSISTENT alone = not recoverable
//! 4   tid      u32  the owner the two fields below describe (0: none)
//! 8   pid      u32  the owner's process id
//! 12  waiters  u32  threads that may sleep on `state` (each counts itself while it waits)
//! 16  start    u64  the owner's process start time (clock ticks since boot; 0 if unknown)
//! ```
//!
//! Protocol. Only the owner writes `tid`, `pid` and `start`: right after taking the lock it
//! writes `pid` and `start`, then `tid` (Release); before giving the lock back it clears `tid`. So
//! a reader that finds `tid` equal to the owner in `state`, before and after reading `pid` and
//! `start`, has the owner's process. A crash between taking the lock and writing the record
//! leaves `tid` naming nobody or a previous holder: the record is then ignored.
//!
//! - **Lock**: compare-and-swap `state` from 0 to our tid (Acquire). Contended, after a short
//!   spin: add one to `waiters`, run the heavy barrier ([`barrier::heavy`](super::barrier::heavy)),
//!   look at `state` again, and `FUTEX_WAIT_BITSET` (shared, not private; absolute
//!   `CLOCK_MONOTONIC` deadline) while `state` keeps the value seen, at most `SLICE` at a time.
//!   When a slice (or the whole timeout) runs out, check the owner's liveness; a dead owner's
//!   `state` is swapped (compare-and-swap from the exact value seen) to our tid | INCONSISTENT.
//!   The waiter takes one back from `waiters` however it stops waiting.
//! - **Unlock**: check we own it, clear `tid`, store 0 in `state` (Release), then read
//!   `waiters`; if it is not 0, `FUTEX_WAKE` one waiter. Only the holder changes `state` while
//!   it is held (a takeover needs the holder dead), so a plain store loses nothing. The store
//!   and the load are ordered by the waiters' heavy barrier: a process that could not register
//!   for it ([`barrier::light`](super::barrier::light) false) exchanges `state` instead, a full
//!   barrier of its own. Unlocking with INCONSISTENT set stores "not recoverable" instead and
//!   wakes every waiter, which then fail with `Error::Corrupt`, as pthread's `ENOTRECOVERABLE`.
//! - **make_consistent**: clears INCONSISTENT.
//!
//! # Liveness, and what it cannot see
//!
//! The owner is dead when no thread has its tid (`kill(tid, 0)` gives `ESRCH`), when that thread
//! is a zombie (`/proc/<tid>/stat`), or, with a record, when the recorded process is gone (or a
//! newer process has its pid: the start time differs) or the tid is not one of its threads
//! (`tgkill(pid, tid, 0)`). Residual risks, all needing a holder to die first:
//!
//! - a dead owner whose tid was reused, before its record was written, by a live thread of
//!   another process is taken for alive: waiters wait until that thread ends (the kernel hands
//!   out pids and tids cyclically, so reuse takes a full turn of `pid_max`);
//! - a dead owner is noticed only when a waiter's slice runs out: up to `SLICE` late;
//! - a waiter killed while it waits leaves `waiters` one too high: later unlocks of that lock
//!   make a `FUTEX_WAKE` system call that wakes nobody, until an unlocking process has seen
//!   that for [`PHANTOM_AGE`](super::barrier::PHANTOM_AGE) with the count unchanged and clears
//!   it (`barrier::woke`; a live waiter it clears by mistake counts itself again when it next
//!   wakes, so it misses at most the wake-ups of one slice);
//! - a waiter whose heavy barrier fails (no `membarrier(2)` for it) may sleep through a
//!   plain-store unlock: it sleeps in slices of [`SHORT_SLICE`](super::barrier::SHORT_SLICE)
//!   instead, and looks again after each;
//! - [`try_lock`](RawLock::try_lock) and zero timeouts check liveness without the record's
//!   cross-checks being any weaker, but each busy answer costs a `kill` system call.
//!
//! The tid is cached per thread and forgotten in a child after `fork` (a `pthread_atfork`
//! handler); a process made by a raw `clone` that skips atfork handlers and then takes locks
//! without `exec` would use its parent's tid.
//!
//! # Examples
//! ```
//! use shmstore::arena::Arena;
//! use shmstore::sync::{Acquired, FutexLock, LockHolder, RawLock};
//! let mem = Arena::heap(64);
//! let l = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
//! // SAFETY: `l` is SIZE aligned bytes of `mem`, formatted once by `init`; this thread unlocks
//! // only what it holds.
//! unsafe {
//!     FutexLock::init(l)?;
//!     assert_eq!(FutexLock::lock(l)?, Acquired::Clean); // one compare-and-swap
//! }
//! let word = mem.atomic_u32(0)?.load(std::sync::atomic::Ordering::Relaxed);
//! assert_eq!(FutexLock::holder(word), LockHolder::Thread(shmstore::process::current_tid()));
//! // SAFETY: as above.
//! unsafe { FutexLock::unlock(l)? };
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::cell::Cell;
use std::ffi::c_int;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

use super::barrier::{anyone_waiting, give_back, light, woke, Waiting};
use super::pthread::{add_saturating, deadline, futex_wait, futex_wake, now, reached};
use super::{Acquired, LockHolder, RawLock};
use crate::error::{Error, Result};
use crate::process::ProcId;

/// A robust, process-shared lock on a futex word that holds its owner's thread id, used through
/// [`RawLock`].
///
/// Never constructed: the lock is the `SIZE` bytes in shared memory that its functions point at.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::{FutexLock, LockHolder, RawLock};
/// let mem = Arena::heap(64);
/// let l = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
/// // SAFETY: aligned bytes of `mem`, formatted once; this thread unlocks what it holds.
/// unsafe {
///     FutexLock::init(l)?;
///     let _ = FutexLock::lock(l)?;
/// }
/// // The first word names the holder: this thread.
/// let word = mem.atomic_u32(0)?.load(std::sync::atomic::Ordering::Relaxed);
/// assert_eq!(FutexLock::holder(word), LockHolder::Thread(shmstore::process::current_tid()));
/// // SAFETY: as above.
/// unsafe { FutexLock::unlock(l)? };
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug)]
pub enum FutexLock {}

impl FutexLock {
    /// Who holds the lock, from its `state` word read without taking it (for tools): the
    /// owner's tid, as in a glibc robust mutex's word (INCONSISTENT is bit 30, as glibc's
    /// `FUTEX_OWNER_DIED`).
    ///
    /// # Examples
    /// ```
    /// use shmstore::sync::{FutexLock, LockHolder};
    /// assert_eq!(FutexLock::holder(0), LockHolder::Free);
    /// assert_eq!(FutexLock::holder(1234), LockHolder::Thread(1234));
    /// assert_eq!(FutexLock::holder(0x4000_0000), LockHolder::OwnerDied); // dead, not yet repaired
    /// ```
    pub fn holder(word: u32) -> LockHolder {
        match (word & TID_MASK, word & INCONSISTENT != 0) {
            (0, false) => LockHolder::Free,
            (0, true) => LockHolder::OwnerDied,
            (tid, _) => LockHolder::Thread(tid),
        }
    }
}

/// The interprocess condition variable paired with [`FutexLock`], used through [`RawCondvar`](super::RawCondvar)
/// (the same futex condition variable as [`PthreadCondvar`](super::PthreadCondvar); see its
/// notes on waiters that die and spurious wake-ups).
///
/// Never constructed: the condition variable is the `SIZE` bytes in shared memory that its
/// functions point at.
///
/// # Examples
/// ```
/// use shmstore::sync::{FutexCondvar, FutexLock, RawCondvar};
/// // It waits on FutexLocks; its bytes are laid out in the arena beside them.
/// fn lock_size<C: RawCondvar>() -> usize {
///     <C::Lock as shmstore::sync::RawLock>::SIZE
/// }
/// assert_eq!(lock_size::<FutexCondvar>(), <FutexLock as shmstore::sync::RawLock>::SIZE);
/// assert!(FutexCondvar::SIZE > 0 && FutexCondvar::ALIGN.is_power_of_two());
/// ```
#[derive(Debug)]
pub enum FutexCondvar {}

/// The bytes of a [`FutexLock`] (see the module's protocol).
#[repr(C)]
struct LockWords {
    state: u32,
    tid: u32,
    pid: u32,
    waiters: u32,
    start: u64,
}
const LOCK_SIZE: usize = size_of::<LockWords>();
const LOCK_ALIGN: usize = align_of::<LockWords>();
const _: () = assert!(LOCK_SIZE == 24 && LOCK_ALIGN == 8);

/// `FTX2`: futex lock with an owner record and a waiter count (format 1 kept a WAITERS bit in
/// `state` and unlocked by compare-and-swap).
const FUTEX_FORMAT: u32 = u32::from_be_bytes(*b"FTX2");
/// Set in `state` while its holder took it from a dead owner and has not made it consistent.
const INCONSISTENT: u32 = 0x4000_0000;
/// The owner's tid (Linux's `PID_MAX_LIMIT` is 2^22).
const TID_MASK: u32 = 0x3fff_ffff;
/// `state` of a lock unlocked without `make_consistent` after `OwnerDied`.
const NOT_RECOVERABLE: u32 = INCONSISTENT;

/// How long a waiter sleeps before it checks that the owner still lives.
pub const SLICE: Duration = Duration::from_millis(100);

/// Loads of `state` a locker spins through before it sleeps.
const SPINS: u32 = 64;

// ---------------------------------------------------------------------------------------------
// Who this thread is.

/// This thread's kernel tid and process, cached.
#[derive(Clone, Copy)]
struct Me {
    tid: u32,
    pid: u32,
    start: u64,
}

thread_local! {
    /// `tid == 0`: not known yet (or forgotten after a fork).
    static ME: Cell<Me> = const { Cell::new(Me { tid: 0, pid: 0, start: 0 }) };
}

static ATFORK: Once = Once::new();

/// Forgets the forking thread's identity in the child (its tid and pid changed).
extern "C" fn forget_me_in_child() {
    // `try_with`: nothing to forget if the thread-local is gone. Async-signal-safe: a store.
    let _ = ME.try_with(|m| {
        m.set(Me {
            tid: 0,
            pid: 0,
            start: 0,
        })
    });
}

/// This thread's identity.
#[inline]
fn me() -> Me {
    let m = ME.with(Cell::get);
    if m.tid != 0 {
        return m;
    }
    learn_me()
}

/// This thread's tid as [`me`] last learned it, 0 when it has not (yet, or since a fork): for
/// `unlock`, where a 0 cannot equal the lock word of a held lock and so takes the slow path,
/// which learns it. One load, where [`me`] copies the whole identity and tests it.
#[inline(always)]
fn my_tid() -> u32 {
    ME.with(|m| m.get().tid)
}

#[cold]
#[inline(never)]
fn learn_me() -> Me {
    ATFORK.call_once(|| {
        // SAFETY: the handler is a plain `extern "C" fn()` that stays valid for the life of the
        // process; a failure (ENOMEM) only leaves the cache unreset in children, see below.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_me_in_child)) };
        debug_assert_eq!(rc, 0);
    });
    let p = ProcId::current();
    let m = Me {
        tid: crate::process::current_tid(),
        pid: p.pid,
        start: p.start,
    };
    // Every kernel tid is at least 1 and below 2^22.
    if m.tid != 0 && m.tid & !TID_MASK == 0 {
        let _ = ME.try_with(|c| c.set(m));
    }
    m
}

// ---------------------------------------------------------------------------------------------
// The words.

/// The five atomics of the lock at `ptr`.
struct Words<'a> {
    state: &'a AtomicU32,
    tid: &'a AtomicU32,
    pid: &'a AtomicU32,
    waiters: &'a AtomicU32,
    start: &'a AtomicU64,
}

/// The words of the lock at `ptr`.
///
/// # Safety
///
/// - `ptr` satisfies the pointer contract of [`RawLock`] for [`FutexLock`] for `'a`.
#[inline]
unsafe fn words<'a>(ptr: *mut u8) -> Words<'a> {
    let w = ptr.cast::<LockWords>();
    // SAFETY: 1. `ptr` is valid for SIZE bytes and 8-aligned for 'a (caller's contract); 2. every
    // field is only ever accessed atomically, by every process (the protocol above).
    unsafe {
        Words {
            state: AtomicU32::from_ptr(std::ptr::addr_of_mut!((*w).state)),
            tid: AtomicU32::from_ptr(std::ptr::addr_of_mut!((*w).tid)),
            pid: AtomicU32::from_ptr(std::ptr::addr_of_mut!((*w).pid)),
            waiters: AtomicU32::from_ptr(std::ptr::addr_of_mut!((*w).waiters)),
            start: AtomicU64::from_ptr(std::ptr::addr_of_mut!((*w).start)),
        }
    }
}

impl Words<'_> {
    /// Writes the owner record, right after taking the lock.
    #[inline]
    fn record(&self, me: Me) {
        // Relaxed: ordered before the `tid` store by its Release.
        self.pid.store(me.pid, Ordering::Relaxed);
        self.start.store(me.start, Ordering::Relaxed);
        // Release: a reader that sees our tid here (Acquire) sees our pid and start.
        self.tid.store(me.tid, Ordering::Release);
    }

    /// The process of `owner`, if the record describes it.
    fn owner_process(&self, owner: u32) -> Option<ProcId> {
        if self.tid.load(Ordering::Acquire) != owner {
            return None;
        }
        let p = ProcId {
            pid: self.pid.load(Ordering::Relaxed),
            pad: 0,
            start: self.start.load(Ordering::Relaxed),
        };
        // Acquire fence, then the re-read: the record was not rewritten while we read it (the
        // owner clears `tid` before another holder can write it).
        std::sync::atomic::fence(Ordering::Acquire);
        (self.tid.load(Ordering::Relaxed) == owner && p.pid != 0).then_some(p)
    }
}

// ---------------------------------------------------------------------------------------------
// Liveness.

/// Thread state letter from `/proc/<path>/stat`, if readable.
pub(super) fn thread_state(path: &str) -> Option<u8> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = text.get(text.rfind(')')? + 1..)?;
    rest.split_ascii_whitespace().next()?.bytes().next()
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Whether the owner `owner` (a tid) of the lock whose words are `w` is certainly dead.
#[cold]
#[inline(never)]
fn owner_is_dead(w: &Words<'_>, owner: u32) -> bool {
    let tid = owner as libc::pid_t;
    // SAFETY: signal 0 sends nothing; it checks that a task with this id exists.
    if unsafe { libc::kill(tid, 0) } != 0 && errno() == libc::ESRCH {
        return true;
    }
    // A zombie (a thread-group leader that exited) never runs again. `/proc/<tid>` exists for
    // every thread, listed or not.
    if matches!(
        thread_state(&format!("/proc/{owner}/stat")),
        Some(b'Z' | b'X')
    ) {
        return true;
    }
    // The tid lives; it is the owner unless the owner's process is gone and the tid now names
    // another thread. Only a consistent record can say so.
    if let Some(p) = w.owner_process(owner) {
        if !p.is_alive() {
            return true;
        }
        // SAFETY: signal 0 sends nothing; it checks that thread `tid` belongs to process `pid`.
        let rc = unsafe { libc::syscall(libc::SYS_tgkill, p.pid as libc::pid_t, tid, 0) };
        if rc != 0 && errno() == libc::ESRCH {
            return true;
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Locking.

#[cold]
fn corrupt() -> Error {
    Error::corrupt("lock not recoverable", 0)
}

#[cold]
fn os(op: &'static str, errno: c_int) -> Error {
    Error::Os { op, errno }
}

/// How long the slow path may wait.
enum Wait {
    /// Not at all: report a held lock (after checking its owner lives).
    No,
    /// Until the deadline (absolute, `CLOCK_MONOTONIC`).
    Until(libc::timespec),
    /// For ever.
    Forever,
}

/// The slow path of every way to lock: the lock was not free at the first attempt.
/// `Ok(None)`: held by a live owner and the wait is over (`Wait::No`) — `Timeout` is the
/// caller's to report for a deadline.
///
/// # Safety
///
/// - `ptr` satisfies the pointer contract of [`RawLock`] for [`FutexLock`].
#[cold]
#[inline(never)]
unsafe fn lock_slow(ptr: *mut u8, wait: Wait) -> Result<Option<Acquired>> {
    // SAFETY: the caller's contract.
    let w = unsafe { words(ptr) };
    let me = me();
    let mut waiting = Waiting::new(w.waiters);
    let mut spins = if matches!(wait, Wait::No) { 0 } else { SPINS };
    loop {
        // SeqCst: after `count`, pairs with a barrier-less unlock's SeqCst exchange.
        let s = w.state.load(Ordering::SeqCst);
        if s == 0 {
            // Acquire: synchronizes with the previous holder's Release in unlock.
            if w.state
                .compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                w.record(me);
                return Ok(Some(Acquired::Clean));
            }
            continue;
        }
        let owner = s & TID_MASK;
        if owner == 0 {
            // Only INCONSISTENT (or stray high bits) set: not recoverable.
            return Err(corrupt());
        }
        if owner == me.tid {
            return Err(os("futex_lock", libc::EDEADLK));
        }
        if spins > 0 {
            spins -= 1;
            std::hint::spin_loop();
            continue;
        }
        let deadline = match &wait {
            Wait::No => {
                return take_over_if_dead(&w, s, me).map(|a| a.map(|()| Acquired::OwnerDied));
            }
            Wait::Until(d) => {
                let t = now(libc::CLOCK_MONOTONIC)?;
                if reached(t, *d) {
                    if take_over_if_dead(&w, s, me)?.is_some() {
                        return Ok(Some(Acquired::OwnerDied));
                    }
                    return Ok(None);
                }
                Some(*d)
            }
            Wait::Forever => None,
        };
        if waiting.must_count() {
            waiting.count();
            continue; // look at `state` again, after the barrier
        }
        let slice_end = add_saturating(now(libc::CLOCK_MONOTONIC)?, waiting.slice(SLICE));
        let until = match deadline {
            Some(d) if reached(slice_end, d) => d,
            _ => slice_end,
        };
        match futex_wait(w.state, s, Some(&until)) {
            0 | libc::EAGAIN | libc::EINTR => {}
            libc::ETIMEDOUT => {
                let s = w.state.load(Ordering::Relaxed);
                #[cfg(test)]
                if s == 0 {
                    tests::SLICES_ENDED_FREE.with(|c| c.set(c.get() + 1));
                }
                if s & TID_MASK == owner && take_over_if_dead(&w, s, me)?.is_some() {
                    return Ok(Some(Acquired::OwnerDied));
                }
            }
            rc => return Err(os("futex(FUTEX_WAIT_BITSET)", rc)),
        }
    }
}

/// If the owner in `s` (the value just read from `state`) is dead, takes the lock from it and
/// returns `Some(())`; `None` if it lives or the state changed meanwhile.
fn take_over_if_dead(w: &Words<'_>, s: u32, me: Me) -> Result<Option<()>> {
    let owner = s & TID_MASK;
    if owner == 0 || owner == me.tid || !owner_is_dead(w, owner) {
        return Ok(None);
    }
    let new = me.tid | INCONSISTENT;
    // Acquire: what the dead owner wrote before dying is visible to the repair.
    if w.state
        .compare_exchange(s, new, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Ok(None);
    }
    w.record(me);
    Ok(Some(()))
}

/// Wakes one waiter of the lock at `ptr`.
///
/// # Safety
///
/// - `ptr` satisfies the pointer contract of [`RawLock`] for [`FutexLock`].
#[cold]
#[inline(never)]
unsafe fn wake_one(ptr: *mut u8) -> Result<()> {
    // SAFETY: the caller's contract.
    let w = unsafe { words(ptr) };
    woke(w.waiters, futex_wake(w.state, 1)?);
    Ok(())
}

/// The slow path of unlock: an inconsistent lock, or a caller that does not hold the lock.
///
/// # Safety
///
/// - `ptr` satisfies the pointer contract of [`RawLock`] for [`FutexLock`].
#[cold]
#[inline(never)]
unsafe fn unlock_slow(ptr: *mut u8) -> Result<()> {
    // SAFETY: the caller's contract.
    let w = unsafe { words(ptr) };
    let me = me();
    let s = w.state.load(Ordering::Relaxed);
    if s & TID_MASK != me.tid {
        return Err(os("futex_unlock", libc::EPERM));
    }
    w.tid.store(0, Ordering::Relaxed);
    let to = if s & INCONSISTENT != 0 {
        NOT_RECOVERABLE
    } else {
        0
    };
    // An exchange (`light` false): the slow path does not rely on the waiters' heavy barrier.
    give_back(w.state, to, false);
    if !anyone_waiting(w.waiters) {
        return Ok(());
    }
    // Every waiter must see "not recoverable"; otherwise one takes the lock.
    woke(
        w.waiters,
        futex_wake(w.state, if to == 0 { 1 } else { c_int::MAX })?,
    );
    Ok(())
}

impl FutexLock {
    /// Takes the lock only if it is free this instant: one compare-and-swap, no spinning, no
    /// sleep, no recovery. `false` when it is held, has waiters, or was left by a dead owner or
    /// unrecoverable; the caller then takes the general path ([`RawLock::lock`]), which waits
    /// and reports `OwnerDied`. It is the first step of the typed proxies' fast paths.
    ///
    /// # Safety
    ///
    /// As [`RawLock::try_lock`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{FutexLock, RawLock};
    /// let mem = Arena::heap(64);
    /// let lock = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
    /// // SAFETY: `lock` is SIZE aligned bytes of `mem`, formatted once here and used only by
    /// // this thread, which unlocks only what it holds.
    /// unsafe {
    ///     FutexLock::init(lock)?;
    ///     assert!(FutexLock::try_lock_free(lock));
    ///     assert!(!FutexLock::try_lock_free(lock)); // held (even by this thread)
    ///     FutexLock::unlock(lock)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub unsafe fn try_lock_free(ptr: *mut u8) -> bool {
        let me = me();
        // SAFETY: the caller's contract.
        let w = unsafe { words(ptr) };
        // Acquire: synchronizes with the previous holder's Release in unlock.
        if w.state
            .compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            w.record(me);
            return true;
        }
        false
    }

    /// [`FutexLock::try_lock_free`], and if another thread holds the lock, up to `spins` more
    /// tries as it becomes free (a pause between looks): a short write under contention then
    /// stays on the fast path instead of the general one, which holds the lock longer. `false`
    /// when this thread holds it, or it is still held after the spins; never sleeps, never
    /// recovers a dead owner's lock (the general path does).
    ///
    /// # Safety
    ///
    /// As [`RawLock::try_lock`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::{FutexLock, RawLock};
    /// let mem = Arena::heap(64);
    /// let lock = mem.raw_ptr(0, FutexLock::SIZE as u64, FutexLock::ALIGN as u64)?;
    /// // SAFETY: `lock` is SIZE aligned bytes of `mem`, formatted once here and used only by
    /// // this thread, which unlocks only what it holds.
    /// unsafe {
    ///     FutexLock::init(lock)?;
    ///     assert!(FutexLock::try_lock_spin(lock, 8));
    ///     assert!(!FutexLock::try_lock_spin(lock, 8)); // held by this thread: no spinning
    ///     FutexLock::unlock(lock)?;
    /// }
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline(always)]
    pub unsafe fn try_lock_spin(ptr: *mut u8, spins: u32) -> bool {
        // SAFETY: the caller's contract.
        if unsafe { Self::try_lock_free(ptr) } {
            return true;
        }
        // SAFETY: the caller's contract.
        unsafe { try_lock_spin_slow(ptr, spins) }
    }
}

/// [`FutexLock::try_lock_spin`] once the first compare-and-swap failed.
///
/// # Safety
///
/// As [`RawLock::try_lock`].
#[inline(never)]
unsafe fn try_lock_spin_slow(ptr: *mut u8, spins: u32) -> bool {
    let me = me();
    // SAFETY: the caller's contract.
    let w = unsafe { words(ptr) };
    for _ in 0..spins {
        let s = w.state.load(Ordering::Relaxed);
        if s & TID_MASK == me.tid {
            return false; // this thread's own: the general path reports EDEADLK
        }
        // Acquire: synchronizes with the previous holder's Release in unlock.
        if s == 0
            && w.state
                .compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            w.record(me);
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

// SAFETY: `state` changes from free (0) to held (a tid) only by a compare-and-swap with Acquire,
// and back only by its holder's Release store or swap, so at most one thread holds the lock and
// each holder sees what the previous one wrote. A holder that dies is found by every waiter whose slice runs
// out (liveness check) and the lock taken over with `OwnerDied`, never deadlocked. The bytes are
// a state word and an owner record: ids, no pointers.
unsafe impl RawLock for FutexLock {
    const SIZE: usize = LOCK_SIZE;
    const ALIGN: usize = LOCK_ALIGN;
    const FORMAT: u32 = FUTEX_FORMAT;

    unsafe fn init(ptr: *mut u8) -> Result<()> {
        // SAFETY: `ptr` is valid for writes of SIZE bytes, aligned, unused (caller's contract).
        unsafe {
            ptr.cast::<LockWords>().write(LockWords {
                state: 0,
                tid: 0,
                pid: 0,
                waiters: 0,
                start: 0,
            });
        }
        Ok(())
    }

    #[inline]
    unsafe fn lock(ptr: *mut u8) -> Result<Acquired> {
        let me = me();
        // SAFETY: the caller's contract.
        let w = unsafe { words(ptr) };
        // Acquire: synchronizes with the previous holder's Release in unlock.
        if w.state
            .compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            w.record(me);
            return Ok(Acquired::Clean);
        }
        // SAFETY: the caller's contract.
        match unsafe { lock_slow(ptr, Wait::Forever) }? {
            Some(a) => Ok(a),
            None => Err(os("futex_lock", libc::EINVAL)), // unreachable: Forever never gives up
        }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut u8) -> Result<Option<Acquired>> {
        let me = me();
        // SAFETY: the caller's contract.
        let w = unsafe { words(ptr) };
        if w.state
            .compare_exchange(0, me.tid, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            w.record(me);
            return Ok(Some(Acquired::Clean));
        }
        // SAFETY: the caller's contract.
        unsafe { lock_slow(ptr, Wait::No) }
    }

    unsafe fn lock_timeout(ptr: *mut u8, timeout: Duration) -> Result<Acquired> {
        // SAFETY: the caller's contract.
        if let Some(a) = unsafe { Self::try_lock(ptr) }? {
            return Ok(a);
        }
        if timeout.is_zero() {
            return Err(Error::Timeout);
        }
        let d = deadline(timeout)?;
        // SAFETY: the caller's contract.
        unsafe { lock_slow(ptr, Wait::Until(d)) }?.ok_or(Error::Timeout)
    }

    unsafe fn make_consistent(ptr: *mut u8) -> Result<()> {
        // SAFETY: the caller's contract.
        let w = unsafe { words(ptr) };
        let s = w.state.load(Ordering::Relaxed);
        if s & TID_MASK != me().tid {
            return Err(os("futex_make_consistent", libc::EPERM));
        }
        if s & INCONSISTENT == 0 {
            return Err(os("futex_make_consistent", libc::EINVAL));
        }
        // Relaxed: only the holder reads the flag; nobody else writes `state` while it is held.
        w.state.fetch_and(!INCONSISTENT, Ordering::Relaxed);
        Ok(())
    }

    // Always: a few instructions and a store; out of line it costs a call and a copy of the
    // thread's identity in every guard's drop.
    #[inline(always)]
    unsafe fn unlock(ptr: *mut u8) -> Result<()> {
        // SAFETY: the caller's contract.
        let w = unsafe { words(ptr) };
        if w.state.load(Ordering::Relaxed) != my_tid() {
            // SAFETY: the caller's contract.
            return unsafe { unlock_slow(ptr) };
        }
        w.tid.store(0, Ordering::Relaxed);
        // A plain store when this process is registered for the waiters' heavy barrier: only
        // the holder changes `state` while it is held.
        give_back(w.state, 0, light());
        if anyone_waiting(w.waiters) {
            // SAFETY: the caller's contract.
            return unsafe { wake_one(ptr) };
        }
        Ok(())
    }
}

super::pthread::futex_condvar!(FutexCondvar, FutexLock);

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sync::barrier::waiter_count;
    use crate::sync::test_support::{
        fork_child, kill_child, wait_child, wait_for, wait_until_asleep, Exit, Pipe, SharedPage,
    };
    use crate::sync::RawCondvar;

    const PATIENCE: Duration = Duration::from_secs(10);
    const LOCK: usize = 0;
    const COND: usize = 64;
    const FLAG: usize = 128;

    struct Shared {
        page: SharedPage,
    }

    impl Shared {
        fn new() -> Shared {
            let page = SharedPage::new();
            // SAFETY: the offsets are 64-aligned, far enough apart, inside the page, unused.
            unsafe {
                FutexLock::init(page.at(LOCK)).unwrap();
                FutexCondvar::init(page.at(COND)).unwrap();
            }
            Shared { page }
        }
        fn p(&self) -> Ptrs {
            Ptrs(self.page.at(LOCK), self.page.at(COND), self.page.at(FLAG))
        }
    }

    /// The lock, the condition variable and a flag word, for scoped threads and children.
    #[derive(Clone, Copy)]
    struct Ptrs(*mut u8, *mut u8, *mut u8);
    // SAFETY: they point at process-shared objects in a shared page, usable from any thread.
    unsafe impl Send for Ptrs {}
    impl Ptrs {
        fn m(self) -> *mut u8 {
            self.0
        }
        fn c(self) -> *mut u8 {
            self.1
        }
        fn flag(self) -> &'static AtomicU32 {
            // SAFETY: FLAG is 4-aligned, inside a page every test keeps alive while it uses
            // the flag, and only ever accessed atomically.
            unsafe { AtomicU32::from_ptr(self.2.cast()) }
        }
        fn counter(self) -> &'static AtomicU64 {
            // SAFETY: as for `flag` (FLAG is 8-aligned); the tests that use the counter do not
            // use the flag.
            unsafe { AtomicU64::from_ptr(self.2.cast()) }
        }
        fn words(self) -> Words<'static> {
            // SAFETY: as for `flag`: an initialized lock in a page that outlives its use.
            unsafe { words(self.m()) }
        }
    }

    #[test]
    fn sizes_are_pinned() {
        assert_eq!((FutexLock::SIZE, FutexLock::ALIGN), (24, 8));
        assert_eq!((FutexCondvar::SIZE, FutexCondvar::ALIGN), (8, 4));
    }

    #[test]
    fn the_word_holds_the_owner_tid_and_the_record_its_process() {
        let s = Shared::new();
        let p = s.p();
        let tid = crate::process::current_tid();
        // SAFETY: the lock is initialized; this thread unlocks what it holds.
        unsafe {
            assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
            let w = p.words();
            assert_eq!(w.state.load(Ordering::Relaxed), tid);
            assert_eq!(w.owner_process(tid), Some(ProcId::current()));
            FutexLock::unlock(p.m()).unwrap();
            assert_eq!(w.state.load(Ordering::Relaxed), 0);
            assert_eq!(w.owner_process(tid), None);
        }
    }

    #[test]
    fn try_lock_spin_waits_out_another_threads_hold_but_not_its_own() {
        let s = Shared::new();
        let p = s.p();
        let (held, go) = (mpsc::channel(), mpsc::channel::<()>());
        // SAFETY: the lock is initialized and outlives the scope; each thread unlocks only what
        // it holds.
        unsafe {
            std::thread::scope(|sc| {
                let (held_tx, go_rx) = (held.0, go.1);
                sc.spawn(move || {
                    assert!(FutexLock::try_lock_free(p.m()));
                    held_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    FutexLock::unlock(p.m()).unwrap();
                });
                held.1.recv().unwrap();
                assert!(!FutexLock::try_lock_spin(p.m(), 16)); // still held after 16 looks
                go.0.send(()).unwrap();
                // Spins for as long as it takes the holder to let go, then takes it.
                assert!(FutexLock::try_lock_spin(p.m(), u32::MAX));
            });
            // Held by this thread now: no spinning, at once.
            assert!(!FutexLock::try_lock_spin(p.m(), u32::MAX));
            FutexLock::unlock(p.m()).unwrap();
        }
    }

    #[test]
    fn relocking_is_an_error_and_only_the_holder_may_unlock() {
        let s = Shared::new();
        let p = s.p();
        let is = |r: Result<()>, e: c_int| matches!(r, Err(Error::Os { errno, .. }) if errno == e);
        // SAFETY: the lock is initialized and outlives the test; this thread unlocks what it holds.
        unsafe {
            assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
            assert!(is(FutexLock::lock(p.m()).map(|_| ()), libc::EDEADLK));
            assert!(is(FutexLock::try_lock(p.m()).map(|_| ()), libc::EDEADLK));
            assert!(is(
                FutexLock::lock_timeout(p.m(), PATIENCE).map(|_| ()),
                libc::EDEADLK
            ));
            let other = std::thread::scope(|sc| {
                sc.spawn(move || (FutexLock::unlock(p.m()), FutexLock::make_consistent(p.m())))
                    .join()
                    .unwrap()
            });
            assert!(is(other.0, libc::EPERM));
            assert!(is(other.1, libc::EPERM));
            assert!(is(FutexLock::make_consistent(p.m()), libc::EINVAL));
            FutexLock::unlock(p.m()).unwrap();
            assert!(is(FutexLock::unlock(p.m()), libc::EPERM));
        }
    }

    /// A live thread's tid in the word, with a record naming this process but another start
    /// time: the tid was "reused" after the recorded owner died, so the lock is taken over. With
    /// the right start time the owner is alive and the lock stays held.
    #[test]
    fn a_reused_tid_is_told_apart_by_the_record() {
        let s = Shared::new();
        let p = s.p();
        let (tx, rx) = mpsc::channel::<()>();
        let (tid_tx, tid_rx) = mpsc::channel();
        std::thread::scope(|sc| {
            sc.spawn(move || {
                tid_tx.send(crate::process::current_tid()).unwrap();
                let _ = rx.recv(); // lives until the test is done
            });
            let other = tid_rx.recv().unwrap();
            let me = ProcId::current();
            let w = p.words();
            let fake = |start: u64| {
                w.state.store(other, Ordering::Relaxed);
                w.pid.store(me.pid, Ordering::Relaxed);
                w.start.store(start, Ordering::Relaxed);
                w.tid.store(other, Ordering::Release);
            };
            // SAFETY: the lock is initialized; this thread unlocks only what it holds.
            unsafe {
                fake(me.start);
                assert_eq!(FutexLock::try_lock(p.m()), Ok(None));
                assert_eq!(
                    FutexLock::lock_timeout(p.m(), Duration::from_millis(1)),
                    Err(Error::Timeout)
                );
                fake(me.start + 1);
                assert_eq!(FutexLock::try_lock(p.m()), Ok(Some(Acquired::OwnerDied)));
                FutexLock::make_consistent(p.m()).unwrap();
                FutexLock::unlock(p.m()).unwrap();
                assert_eq!(FutexLock::try_lock(p.m()), Ok(Some(Acquired::Clean)));
                FutexLock::unlock(p.m()).unwrap();
            }
            tx.send(()).unwrap();
        });
    }

    /// The tid cached by the forking thread is forgotten in the child: the child locks with its
    /// own tid, so the parent sees the lock held by the child, not by itself.
    #[test]
    fn a_forked_child_locks_with_its_own_tid() {
        let s = Shared::new();
        let p = s.p();
        let held = Pipe::new();
        let release = Pipe::new();
        // SAFETY: the lock is initialized; this thread unlocks what it holds. Filling the cache.
        unsafe {
            assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
            FutexLock::unlock(p.m()).unwrap();
        }
        let child = fork_child(|| {
            // SAFETY: the lock is in the shared page; the child unlocks what it holds.
            unsafe {
                if FutexLock::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                if p.words().state.load(Ordering::Relaxed) != libc::getpid() as u32 {
                    return 2;
                }
                held.send(1);
                release.recv();
                if FutexLock::unlock(p.m()).is_err() {
                    return 3;
                }
            }
            0
        });
        assert_eq!(held.recv(), Some(1));
        // SAFETY: as above.
        unsafe {
            assert_eq!(FutexLock::try_lock(p.m()), Ok(None));
            release.send(1);
            assert_eq!(
                FutexLock::lock_timeout(p.m(), PATIENCE),
                Ok(Acquired::Clean)
            );
            FutexLock::unlock(p.m()).unwrap();
        }
        assert_eq!(wait_child(child), Exit::Code(0));
    }

    thread_local! {
        /// Times this thread's sleep slice ran out and it found the lock free: the symptom of a
        /// lost wake-up (an unlock that saw no waiter while one slept).
        pub(super) static SLICES_ENDED_FREE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// With the lock held by this thread and `counted` waiters already counted: a thread waits
    /// for the lock; once it is counted and asleep on the futex, this thread unlocks, and the
    /// waiter must get the lock from the wake-up, not from its slice running out.
    fn unlock_wakes_a_sleeping_thread(p: Ptrs, counted: u32) {
        std::thread::scope(|sc| {
            let (tid_tx, tid_rx) = mpsc::channel();
            let t = sc.spawn(move || {
                let _ = tid_tx.send(crate::process::current_tid());
                // SAFETY: the lock is initialized; this thread unlocks what it takes.
                unsafe {
                    let r = FutexLock::lock_timeout(p.m(), PATIENCE);
                    let woken = SLICES_ENDED_FREE.with(|c| c.get()) == 0;
                    r == Ok(Acquired::Clean) && FutexLock::unlock(p.m()).is_ok() && woken
                }
            });
            let tid = tid_rx.recv().unwrap();
            wait_for("a waiter to count itself", || {
                waiter_count(p.words().waiters.load(Ordering::Relaxed)) > counted
            });
            assert!(wait_until_asleep(tid));
            // SAFETY: this thread holds the lock (the caller's contract).
            unsafe { FutexLock::unlock(p.m()).unwrap() };
            assert!(t.join().unwrap());
        });
    }

    /// A waiter sleeping on a lock is woken by the unlock (a plain store in this process when
    /// `barrier::light`), not by its slice running out.
    #[test]
    fn a_sleeping_waiter_is_woken_by_unlock() {
        let s = Shared::new();
        let p = s.p();
        for _ in 0..5 {
            // SAFETY: the lock is initialized; each thread unlocks what it holds.
            unsafe {
                assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
                unlock_wakes_a_sleeping_thread(p, 0);
            }
        }
        assert_eq!(waiter_count(p.words().waiters.load(Ordering::Relaxed)), 0);
    }

    /// `rounds` increments of the shared counter under the lock, each a read and a write (not
    /// an atomic add: only the lock keeps them whole), every fourth yielding the CPU while
    /// holding it so that other processes' waiters sleep. 0, or 1/2 for a failed lock/unlock.
    fn hammer(p: Ptrs, rounds: u64) -> i32 {
        for i in 0..rounds {
            // SAFETY: the lock is initialized in the shared page; this process unlocks what it
            // holds.
            if unsafe { FutexLock::lock(p.m()) } != Ok(Acquired::Clean) {
                return 1;
            }
            let v = p.counter().load(Ordering::Relaxed);
            if i % 4 == 0 {
                std::thread::yield_now();
            }
            p.counter().store(v + 1, Ordering::Relaxed);
            // SAFETY: as above.
            if unsafe { FutexLock::unlock(p.m()) }.is_err() {
                return 2;
            }
        }
        0
    }

    /// Processes that release by a plain store and processes without the barrier (releasing by
    /// exchange, sleeping in short slices) share one lock: no update is lost and every waiter
    /// gets the lock (a barrier-less waiter may sleep through a plain-store release, for one
    /// short slice at most).
    #[test]
    fn processes_with_and_without_the_barrier_share_a_lock() {
        const ROUNDS: u64 = 2_000;
        let s = Shared::new();
        let p = s.p();
        let children: Vec<_> = [false, true, true]
            .into_iter()
            .map(|unsupported| {
                fork_child(move || {
                    if unsupported {
                        crate::sync::barrier::tests::pretend_unsupported();
                        if crate::sync::barrier::light() {
                            return 4;
                        }
                    }
                    hammer(p, ROUNDS)
                })
            })
            .collect();
        for c in children {
            assert_eq!(wait_child(c), Exit::Code(0));
        }
        assert_eq!(p.counter().load(Ordering::Relaxed), 3 * ROUNDS);
        assert_eq!(waiter_count(p.words().waiters.load(Ordering::Relaxed)), 0);
        assert_eq!(p.words().state.load(Ordering::Relaxed), 0);
    }

    /// A waiter killed while it sleeps leaves the count one too high; the lock keeps working:
    /// the holder unlocks (waking nobody), and a later waiter is still woken by an unlock. Once
    /// unlocks have woken nobody for `PHANTOM_AGE`, the dead waiter's count is cleared, so
    /// unlocks stop making a system call, and a sleeping waiter is still woken by the next.
    #[test]
    fn a_waiter_killed_while_sleeping_leaves_a_working_lock() {
        let s = Shared::new();
        let p = s.p();
        // SAFETY: the lock is initialized; each thread and process unlocks what it holds.
        unsafe {
            assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
            let child = fork_child(move || match FutexLock::lock(p.m()) {
                Ok(_) => 0,
                Err(_) => 1,
            });
            wait_for("a waiter to count itself", || {
                waiter_count(p.words().waiters.load(Ordering::Relaxed)) != 0
            });
            assert!(wait_until_asleep(child as u32)); // counted, and asleep on the futex
            assert_eq!(kill_child(child), Exit::Signal(libc::SIGKILL));
            assert_eq!(waiter_count(p.words().waiters.load(Ordering::Relaxed)), 1);
            FutexLock::unlock(p.m()).unwrap();
            assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
            unlock_wakes_a_sleeping_thread(p, 1);
            assert_eq!(FutexLock::try_lock(p.m()), Ok(Some(Acquired::Clean)));
            FutexLock::unlock(p.m()).unwrap();
            // The dead waiter's count.
            assert_eq!(waiter_count(p.words().waiters.load(Ordering::Relaxed)), 1);
            // Unlocks that wake nobody, spread over more than PHANTOM_AGE: the count is cleared.
            let start = Instant::now();
            while waiter_count(p.words().waiters.load(Ordering::Relaxed)) != 0 {
                assert!(start.elapsed() < PATIENCE, "the dead waiter's count stayed");
                assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
                FutexLock::unlock(p.m()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(start.elapsed() >= crate::sync::barrier::PHANTOM_AGE);
            // A live waiter is still counted, and woken by an unlock.
            assert_eq!(FutexLock::lock(p.m()), Ok(Acquired::Clean));
            unlock_wakes_a_sleeping_thread(p, 0);
        }
        assert_eq!(waiter_count(p.words().waiters.load(Ordering::Relaxed)), 0);
    }

    /// Processes hammer one lock with critical sections that yield the CPU, so that waiters
    /// really sleep: every increment under the lock is kept (mutual exclusion), no waiter's
    /// slice runs out on a free lock (no lost wake-up across processes), and every waiter
    /// takes itself out of the count.
    #[test]
    fn processes_sharing_a_lock_lose_no_update_and_no_wake_up() {
        const PROCS: u32 = 3;
        const ROUNDS: u64 = 3_000;
        let s = Shared::new();
        let p = s.p();
        let children: Vec<_> = (0..PROCS)
            .map(|_| {
                fork_child(move || {
                    SLICES_ENDED_FREE.with(|c| c.set(0));
                    let code = hammer(p, ROUNDS);
                    if code != 0 {
                        return code;
                    }
                    if SLICES_ENDED_FREE.with(|c| c.get()) != 0 {
                        return 3;
                    }
                    0
                })
            })
            .collect();
        for c in children {
            assert_eq!(wait_child(c), Exit::Code(0));
        }
        assert_eq!(
            p.counter().load(Ordering::Relaxed),
            u64::from(PROCS) * ROUNDS
        );
        assert_eq!(waiter_count(p.words().waiters.load(Ordering::Relaxed)), 0);
        assert_eq!(p.words().state.load(Ordering::Relaxed), 0);
    }

    /// A child waits on the condition variable; the parent sets the flag and notifies.
    #[test]
    fn condvar_notify_wakes_a_waiter_in_another_process() {
        let s = Shared::new();
        let p = s.p();
        let waiting = Pipe::new();
        let child = fork_child(|| {
            // SAFETY: the objects are in the shared page; the child holds the lock around waits.
            unsafe {
                if FutexLock::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                waiting.send(1);
                let deadline = Instant::now() + PATIENCE;
                while p.flag().load(Ordering::Relaxed) == 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match FutexCondvar::wait_timeout(p.c(), p.m(), left) {
                        Ok((Acquired::Clean, false)) => {}
                        _ => return 2,
                    }
                }
                if FutexLock::unlock(p.m()).is_err() {
                    return 3;
                }
            }
            0
        });
        assert_eq!(waiting.recv(), Some(1));
        // SAFETY: the objects are initialized; this thread unlocks what it holds.
        unsafe {
            assert_eq!(
                FutexLock::lock_timeout(p.m(), PATIENCE),
                Ok(Acquired::Clean)
            );
            p.flag().store(1, Ordering::Relaxed);
            FutexCondvar::notify_one(p.c()).unwrap();
            FutexLock::unlock(p.m()).unwrap();
        }
        assert_eq!(wait_child(child), Exit::Code(0));
    }

    /// A waiter's lock is taken by a process that exits holding it: the wait reports OwnerDied.
    #[test]
    fn condvar_wait_reports_owner_died() {
        let s = Shared::new();
        let p = s.p();
        let waiting = Pipe::new();
        let waiter = fork_child(|| {
            // SAFETY: the objects are in the shared page; the child holds the lock around waits.
            unsafe {
                if FutexLock::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                waiting.send(1);
                let deadline = Instant::now() + PATIENCE;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match FutexCondvar::wait_timeout(p.c(), p.m(), left) {
                        Ok((Acquired::Clean, false)) if p.flag().load(Ordering::Relaxed) == 0 => {}
                        Ok((Acquired::OwnerDied, false)) => break,
                        Ok(_) => return 2,
                        Err(_) => return 3,
                    }
                }
                if FutexLock::make_consistent(p.m()).is_err() || FutexLock::unlock(p.m()).is_err() {
                    return 4;
                }
            }
            0
        });
        assert_eq!(waiting.recv(), Some(1));
        let killer = fork_child(|| {
            // SAFETY: as above; this child exits holding the lock on purpose.
            unsafe {
                if FutexLock::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                p.flag().store(1, Ordering::Relaxed);
                if FutexCondvar::notify_all(p.c()).is_err() {
                    return 2;
                }
            }
            0
        });
        // Reaped only after the waiter recovered: a zombie owner is dead too.
        assert_eq!(wait_child(waiter), Exit::Code(0));
        assert_eq!(wait_child(killer), Exit::Code(0));
        // SAFETY: the lock is initialized; this thread unlocks what it holds.
        unsafe {
            assert_eq!(
                FutexLock::lock_timeout(p.m(), PATIENCE),
                Ok(Acquired::Clean)
            );
            FutexLock::unlock(p.m()).unwrap();
        }
    }
}
