//! [`WordLock`]: an ownerless, process-shared lock on one futex word, for the store's `Lock`
//! type (Python's `threading.Lock` semantics: any thread of any process may release it).
//!
//! Uncontended, `acquire` is one compare-and-swap and `release` one exchange — the object's own
//! lock is not taken, so a `Lock` costs what a bare mutex costs.
//!
//! # The bytes
//!
//! ```text
//! 0   state      u32  0 = unlocked; else the acquiring process's pid | WAITERS (bit 31)
//! 4   rec_pid    u32  the process the record below describes (0: none)
//! 8   rec_start  u64  that process's start time (clock ticks since boot; 0 if unknown)
//! ```
//!
//! Protocol.
//! - **Acquire**: compare-and-swap `state` from 0 to our pid (Acquire), then write the record:
//!   `rec_start`, then `rec_pid` (Release). Contended: set WAITERS and `FUTEX_WAIT` on `state`
//!   (shared, absolute `CLOCK_MONOTONIC` deadline) at most [`SLICE`] at a time; when a slice —
//!   or, for a call that does not wait or whose timeout ran out, the attempt — ends with the
//!   lock still held, ask whether the holder process lives, and take a dead holder's lock over
//!   (compare-and-swap from the exact value seen), keeping WAITERS.
//! - **Release** (by anyone): clear `rec_pid`, exchange `state` with 0 (Release); 0 before means
//!   it was not locked; WAITERS before means `FUTEX_WAKE` one sleeper.
//!
//! The record lets the liveness check tell a reused pid from the holder: it is used only when
//! `rec_pid` equals the pid in `state`, read before and after the start time. A holder that dies
//! between its compare-and-swap and its record is checked by pid alone; a releaser that runs
//! meanwhile, or a later holder, makes the stale record name another pid, so it is ignored.
//!
//! The holder is a *process*: a thread that acquires and ends leaves the lock held, as Python's
//! `Lock` does; the lock is taken over only when the whole process is gone. A pid is below 2^22
//! on Linux (`PID_MAX_LIMIT`); a word whose pid bits name no process (a scribble) reads as a dead
//! holder.
//!
//! # Examples
//! ```
//! use std::sync::atomic::Ordering;
//! use shmstore::arena::Arena;
//! use shmstore::sync::word::{Got, WordLock};
//! let a = Arena::heap(16);
//! let lock = a.words::<WordLock>(0)?;
//! assert_eq!(lock.acquire(true, None)?, Got::Taken);
//! // The state word holds the acquiring process's pid; the record beside it names the same one.
//! assert_eq!(a.atomic_u32(0)?.load(Ordering::Relaxed), std::process::id());
//! assert_eq!(a.atomic_u32(4)?.load(Ordering::Relaxed), std::process::id());
//! assert!(lock.release()?);
//! assert_eq!(a.load_u64(0)?, 0); // state and rec_pid cleared
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::pthread::{futex_wait, futex_wake};
use crate::arena::AtomicWords;
use crate::error::{Error, Result};
use crate::process::ProcId;

/// Longest sleep between two looks at the holder's liveness.
pub const SLICE: Duration = Duration::from_millis(100);

const WAITERS: u32 = 0x8000_0000;
const PID_MASK: u32 = 0x3fff_ffff;

/// The words of an ownerless process-shared lock (see the module notes), viewed in place in the
/// arena with [`Arena::words`](crate::arena::Arena::words). All zero is an unlocked lock.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::word::{Got, WordLock};
/// let a = Arena::heap(16);
/// let lock = a.words::<WordLock>(0)?;
/// assert_eq!(lock.acquire(true, None)?, Got::Taken);
/// assert_eq!(lock.acquire(false, None)?, Got::Busy); // not reentrant
/// assert!(lock.release()?);
/// assert!(!lock.locked());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct WordLock {
    state: AtomicU32,
    rec_pid: AtomicU32,
    rec_start: AtomicU64,
}
// SAFETY: `repr(C)`, atomic integers only, no padding (4 + 4 + 8).
unsafe impl AtomicWords for WordLock {}
const _: () = assert!(std::mem::size_of::<WordLock>() == 16);

/// How [`WordLock::acquire`] got the lock, or that it did not.
///
/// # Examples
/// ```
/// use std::sync::atomic::Ordering;
/// use shmstore::arena::Arena;
/// use shmstore::sync::word::{Got, WordLock};
/// let a = Arena::heap(16);
/// let lock = a.words::<WordLock>(0)?;
/// // A word naming a pid no process can have: its holder is dead, and the lock is taken over.
/// a.atomic_u32(0)?.store(0x3fff_0000, Ordering::Relaxed);
/// assert_eq!(lock.acquire(false, None)?, Got::FromDead);
/// assert_eq!(lock.holder(), std::process::id());
/// assert_eq!(lock.acquire(false, None)?, Got::Busy);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    /// Taken.
    Taken,
    /// Taken over from a holder process that had died.
    FromDead,
    /// Not taken: held all along (a non-blocking call, or the timeout ran out).
    Busy,
}

impl WordLock {
    /// True while someone holds the lock.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(16);
    /// let lock = a.words::<WordLock>(0)?;
    /// assert!(!lock.locked());
    /// lock.acquire(true, None)?;
    /// assert!(lock.locked());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & PID_MASK != 0
    }

    /// The pid of the process holding the lock (0: unlocked).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(16);
    /// let lock = a.words::<WordLock>(0)?;
    /// assert_eq!(lock.holder(), 0);
    /// lock.acquire(true, None)?;
    /// assert_eq!(lock.holder(), std::process::id());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn holder(&self) -> u32 {
        self.state.load(Ordering::Relaxed) & PID_MASK
    }

    /// Takes the lock only if it is free this instant: one compare-and-swap, no waiting and no
    /// takeover of a dead holder (false then, as for a held lock; [`WordLock::acquire`] does
    /// those). `call_method`'s fast path.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(16);
    /// let lock = a.words::<WordLock>(0)?;
    /// assert!(lock.try_acquire_free());
    /// assert!(!lock.try_acquire_free()); // held
    /// assert_eq!(lock.holder(), std::process::id());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn try_acquire_free(&self) -> bool {
        let me = ProcId::current();
        me.pid & !PID_MASK == 0 && me.pid != 0 && self.try_take(&me, 0, 0)
    }

    /// Releases the lock, whoever holds it, only if no waiter sleeps on it: one
    /// compare-and-swap and no wake-up to do (so nothing can fail once it is released). False,
    /// with the lock unchanged (held or not), otherwise: [`WordLock::release`] does the rest.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(16);
    /// let lock = a.words::<WordLock>(0)?;
    /// assert!(!lock.try_release_uncontended()); // not held
    /// lock.acquire(true, None)?;
    /// assert!(lock.try_release_uncontended());
    /// assert_eq!(lock.holder(), 0);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn try_release_uncontended(&self) -> bool {
        let s = self.state.load(Ordering::Relaxed);
        if s & PID_MASK == 0 || s & WAITERS != 0 {
            return false;
        }
        // As in `release`: the record is cleared first. If the exchange below fails, the lock
        // is held meanwhile with no record, which only makes a waiter's liveness check
        // conservative (pid alone); `release` then clears it again.
        self.rec_pid.store(0, Ordering::Relaxed);
        // Release: the next holder sees everything written while the lock was held.
        self.state
            .compare_exchange(s, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock if its state is still `free` (no holder): one compare-and-swap.
    #[inline]
    fn try_take(&self, me: &ProcId, free: u32, waiters: u32) -> bool {
        // Acquire: synchronizes with the Release of the last release.
        if self
            .state
            .compare_exchange(free, me.pid | waiters, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.record(me);
            return true;
        }
        false
    }

    #[inline]
    fn record(&self, me: &ProcId) {
        self.rec_start.store(me.start, Ordering::Relaxed);
        // Release: a reader that sees our pid here (Acquire) sees our start time.
        self.rec_pid.store(me.pid, Ordering::Release);
    }

    /// Takes the lock, waiting for it unless `blocking` is false, at most until `deadline`
    /// (None: without limit).
    ///
    /// # Errors
    /// `Os` for a failed wait; `Corrupt` for a pid that cannot be stored in the word.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::{Got, WordLock};
    /// let a = Arena::heap(16);
    /// let lock = a.words::<WordLock>(0)?;
    /// assert_eq!(lock.acquire(true, None)?, Got::Taken);
    /// // Held (by this process): a timed acquire gives up at its deadline.
    /// let start = Instant::now();
    /// let deadline = Some(start + Duration::from_millis(20));
    /// assert_eq!(lock.acquire(true, deadline)?, Got::Busy);
    /// assert!(start.elapsed() >= Duration::from_millis(20));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn acquire(&self, blocking: bool, deadline: Option<Instant>) -> Result<Got> {
        let me = ProcId::current();
        if me.pid & !PID_MASK != 0 || me.pid == 0 {
            return Err(Error::corrupt(
                "pid does not fit a lock word",
                u64::from(me.pid),
            ));
        }
        if self.try_take(&me, 0, 0) {
            return Ok(Got::Taken);
        }
        self.acquire_slow(&me, blocking, deadline)
    }

    #[cold]
    fn acquire_slow(&self, me: &ProcId, blocking: bool, deadline: Option<Instant>) -> Result<Got> {
        // Once this thread has slept, it takes the lock with WAITERS set: others may still sleep.
        let mut slept = false;
        let mut spins = if blocking { 64 } else { 0 };
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & PID_MASK == 0 {
                // (A WAITERS bit with no holder is only left by a scribble: taken over as free.)
                if self.try_take(me, s, if slept { WAITERS } else { s & WAITERS }) {
                    return Ok(Got::Taken);
                }
                continue;
            }
            if spins > 0 {
                spins -= 1;
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            let expired = !blocking || deadline.is_some_and(|d| d <= now);
            if expired {
                // One look at the holder before giving up.
                return Ok(if self.take_from_dead(me, s) {
                    Got::FromDead
                } else {
                    Got::Busy
                });
            }
            if s & WAITERS == 0
                && self
                    .state
                    .compare_exchange(s, s | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let slice_end = now + SLICE;
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            let ts = super::pthread::deadline(until.saturating_duration_since(now))?;
            let rc = futex_wait(&self.state, s | WAITERS, Some(&ts));
            slept = true;
            match rc {
                0 | libc::EAGAIN | libc::EINTR => {}
                libc::ETIMEDOUT => {
                    if self.take_from_dead(me, s | WAITERS) {
                        return Ok(Got::FromDead);
                    }
                }
                errno => {
                    return Err(Error::Os {
                        op: "futex_wait",
                        errno,
                    })
                }
            }
        }
    }

    /// Takes the lock over if the state is still `seen` and its holder process is dead.
    fn take_from_dead(&self, me: &ProcId, seen: u32) -> bool {
        let pid = seen & PID_MASK;
        if pid == 0 || self.holder_alive(pid) {
            return false;
        }
        if self
            .state
            .compare_exchange(
                seen,
                me.pid | (seen & WAITERS),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.record(me);
            return true;
        }
        false
    }

    /// Whether process `pid`, which the state names, lives (with its start time when the
    /// record describes it).
    fn holder_alive(&self, pid: u32) -> bool {
        let start = if self.rec_pid.load(Ordering::Acquire) == pid {
            let start = self.rec_start.load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if self.rec_pid.load(Ordering::Relaxed) == pid {
                start
            } else {
                0
            }
        } else {
            0
        };
        ProcId { pid, pad: 0, start }.is_alive()
    }

    /// Releases the lock, whoever holds it. False if it was not locked (nothing changes then).
    ///
    /// # Errors
    /// `Os` for a failed wake-up.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::{Got, WordLock};
    /// let a = Arena::heap(16);
    /// let lock = a.words::<WordLock>(0)?;
    /// lock.acquire(true, None)?;
    /// // Any thread may release it, not only the one that took it.
    /// let released = std::thread::scope(|s| s.spawn(|| lock.release()).join().unwrap())?;
    /// assert!(released);
    /// assert!(!lock.release()?); // not locked: nothing to do
    /// assert_eq!(lock.acquire(false, None)?, Got::Taken);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn release(&self) -> Result<bool> {
        if self.state.load(Ordering::Relaxed) & PID_MASK == 0 {
            return Ok(false);
        }
        self.rec_pid.store(0, Ordering::Relaxed);
        // Release: the next holder sees everything written while the lock was held.
        let prev = self.state.swap(0, Ordering::Release);
        if prev & WAITERS != 0 {
            futex_wake(&self.state, 1)?;
        }
        Ok(prev & PID_MASK != 0)
    }
}
