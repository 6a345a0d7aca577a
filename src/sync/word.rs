//! [`WordLock`]: an ownerless, process-shared lock on one futex word, for the store's `Lock`
//! type (Python's `threading.Lock` semantics: any thread of any process may release it).
//!
//! Uncontended, `acquire` is one compare-and-swap and `release` one plain store — the object's
//! own lock is not taken, so a `Lock` costs less than a bare pthread mutex. Waiters count
//! themselves in a word of their own and pay for the store's ordering with a cross-process
//! memory barrier before they sleep ([`barrier`](super::barrier)).
//!
//! # The bytes
//!
//! ```text
//! 0   state      u32  0 = unlocked; else the acquiring process's pid
//! 4   rec_pid    u32  the process the record below describes (0: none)
//! 8   rec_start  u64  that process's start time (clock ticks since boot; 0 if unknown)
//! 16  waiters    u32  threads that may sleep on `state` (each counts itself while it waits)
//! 20  pad        u32  zero
//! ```
//!
//! Protocol.
//! - **Acquire**: compare-and-swap `state` from 0 to our pid (Acquire), then write the record:
//!   `rec_start`, then `rec_pid` (Release). Contended, after a short spin: add one to `waiters`,
//!   run the heavy barrier ([`barrier::heavy`](super::barrier::heavy)), look at `state` again,
//!   and `FUTEX_WAIT` on it (shared, absolute `CLOCK_MONOTONIC` deadline) at most [`SLICE`] at
//!   a time; when a slice — or, for a call that does not wait or whose timeout ran out, the
//!   attempt — ends with the lock still held, ask whether the holder process lives, and take a
//!   dead holder's lock over (compare-and-swap from the exact value seen). The waiter takes one
//!   back from `waiters` however it stops waiting.
//! - **Release** (by anyone): a `state` of 0 means it was not locked (an error, nothing
//!   changes); otherwise clear `rec_pid`, store 0 in `state` (Release), then read `waiters` and
//!   `FUTEX_WAKE` one sleeper if it is not 0. A process that could not register for the heavy
//!   barrier exchanges `state` instead. Two releases racing on one acquisition may then both
//!   succeed (multiprocessing's own `Lock.release` checks the count and posts in two steps
//!   too); a release that comes after the lock was given back is always an error.
//!
//! The record lets the liveness check tell a reused pid from the holder: it is used only when
//! `rec_pid` equals the pid in `state`, read before and after the start time. A holder that dies
//! between its compare-and-swap and its record is checked by pid alone; a releaser that runs
//! meanwhile, or a later holder, makes the stale record name another pid, so it is ignored.
//!
//! The holder is a *process*: a thread that acquires and ends leaves the lock held, as Python's
//! `Lock` does; the lock is taken over only when the whole process is gone. A pid is below 2^22
//! on Linux (`PID_MAX_LIMIT`); a word whose pid bits name no process (a scribble) reads as a dead
//! holder. A waiter killed while it waits leaves `waiters` one too high: later releases make a
//! `FUTEX_WAKE` system call that wakes nobody, until a releasing process has seen that for
//! [`PHANTOM_AGE`](super::barrier::PHANTOM_AGE) and clears the count
//! (`barrier::woke`).
//!
//! # Examples
//! ```
//! use std::sync::atomic::Ordering;
//! use shmstore::arena::Arena;
//! use shmstore::sync::word::{Got, WordLock};
//! let a = Arena::heap(24);
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

use super::barrier::{anyone_waiting, give_back, light, waiter_count, woke, Waiting};
use super::pthread::{futex_wait, futex_wake};
use crate::arena::AtomicWords;
use crate::error::{Error, Result};
use crate::process::ProcId;

/// Longest sleep between two looks at the holder's liveness.
pub const SLICE: Duration = Duration::from_millis(100);

const PID_MASK: u32 = 0x3fff_ffff;

/// The words of an ownerless process-shared lock (see the module notes), viewed in place in the
/// arena with [`Arena::words`](crate::arena::Arena::words). All zero is an unlocked lock.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::word::{Got, WordLock};
/// let a = Arena::heap(24);
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
    waiters: AtomicU32,
    pad: AtomicU32,
}
// SAFETY: `repr(C)`, atomic integers only, no padding (4 + 4 + 8 + 4 + 4).
unsafe impl AtomicWords for WordLock {}
const _: () = assert!(std::mem::size_of::<WordLock>() == 24);

/// How [`WordLock::acquire`] got the lock, or that it did not.
///
/// # Examples
/// ```
/// use std::sync::atomic::Ordering;
/// use shmstore::arena::Arena;
/// use shmstore::sync::word::{Got, WordLock};
/// let a = Arena::heap(24);
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
    /// let a = Arena::heap(24);
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
    /// let a = Arena::heap(24);
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
    /// let a = Arena::heap(24);
    /// let lock = a.words::<WordLock>(0)?;
    /// assert!(lock.try_acquire_free());
    /// assert!(!lock.try_acquire_free()); // held
    /// assert_eq!(lock.holder(), std::process::id());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn try_acquire_free(&self) -> bool {
        let me = ProcId::current();
        me.pid & !PID_MASK == 0 && me.pid != 0 && self.try_take(&me, 0)
    }

    /// Releases the lock, whoever holds it, only if no waiter is counted on it: one plain store
    /// (an exchange without the heavy barrier) and no wake-up to do, so nothing can fail once
    /// it is released. A waiter that counts itself in the meantime is woken if it can be (if the
    /// wake-up fails, it looks again when its sleep slice ends). False, with the lock unchanged,
    /// when it is not held or has waiters: [`WordLock::release`] does the rest.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(24);
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
        if s & PID_MASK == 0 || waiter_count(self.waiters.load(Ordering::Relaxed)) != 0 {
            return false;
        }
        // As in `release`: the record is cleared first.
        self.rec_pid.store(0, Ordering::Relaxed);
        give_back(&self.state, 0, light());
        if anyone_waiting(&self.waiters) {
            // Best effort, as documented: the waiter's slice bounds the delay.
            if let Ok(n) = futex_wake(&self.state, 1) {
                woke(&self.waiters, n);
            }
        }
        true
    }

    /// Takes the lock if its state is still `free` (no holder): one compare-and-swap.
    #[inline]
    fn try_take(&self, me: &ProcId, free: u32) -> bool {
        // Acquire: synchronizes with the Release of the last release.
        if self
            .state
            .compare_exchange(free, me.pid, Ordering::Acquire, Ordering::Relaxed)
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
    /// let a = Arena::heap(24);
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
        if self.try_take(&me, 0) {
            return Ok(Got::Taken);
        }
        self.acquire_slow(&me, blocking, deadline)
    }

    #[cold]
    fn acquire_slow(&self, me: &ProcId, blocking: bool, deadline: Option<Instant>) -> Result<Got> {
        let mut waiting = Waiting::new(&self.waiters);
        let mut spins = if blocking { 64 } else { 0 };
        loop {
            // SeqCst: after `count`, pairs with a barrier-less release's SeqCst exchange.
            let s = self.state.load(Ordering::SeqCst);
            if s & PID_MASK == 0 {
                // (High bits with no holder are only left by a scribble: taken over as free.)
                if self.try_take(me, s) {
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
            if waiting.must_count() {
                waiting.count();
                continue; // look at `state` again, after the barrier
            }
            let slice_end = now + waiting.slice(SLICE);
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            let ts = super::pthread::deadline(until.saturating_duration_since(now))?;
            match futex_wait(&self.state, s, Some(&ts)) {
                0 | libc::EAGAIN | libc::EINTR => {}
                libc::ETIMEDOUT => {
                    #[cfg(test)]
                    if self.state.load(Ordering::Relaxed) == 0 {
                        tests::SLICES_ENDED_FREE.with(|c| c.set(c.get() + 1));
                    }
                    if self.take_from_dead(me, s) {
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
            .compare_exchange(seen, me.pid, Ordering::Acquire, Ordering::Relaxed)
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
    /// let a = Arena::heap(24);
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
        let prev = give_back(&self.state, 0, light());
        if anyone_waiting(&self.waiters) {
            woke(&self.waiters, futex_wake(&self.state, 1)?);
        }
        // The exchange (no heavy barrier here) tells whether another release came first.
        Ok(prev.map_or(true, |p| p & PID_MASK != 0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::{Got, WordLock};
    use crate::sync::barrier::waiter_count;
    use crate::sync::test_support::{
        fork_child, kill_child, signal_child, wait_child, wait_for, wait_until_asleep,
        wait_until_stopped, Exit, SharedPage,
    };

    thread_local! {
        /// Times this thread's sleep slice ran out and it found the lock free: the symptom of a
        /// lost wake-up (a release that saw no waiter while one slept).
        pub(super) static SLICES_ENDED_FREE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// The lock at the start of the page and a counter after it.
    #[derive(Clone, Copy)]
    struct Ptrs(*mut u8);
    // SAFETY: they point into a process-shared page, usable from any thread and child.
    unsafe impl Send for Ptrs {}
    unsafe impl Sync for Ptrs {}

    impl Ptrs {
        fn lock(self) -> &'static WordLock {
            // SAFETY: offset 0 of a page-aligned shared page that the test keeps mapped; all zero
            // (an unlocked lock) when mapped; `WordLock` is atomics only.
            unsafe { &*self.0.cast::<WordLock>() }
        }
        fn counter(self) -> &'static AtomicU64 {
            // SAFETY: offset 64 of the same page, 8-aligned, only ever accessed atomically.
            unsafe { AtomicU64::from_ptr(self.0.add(64).cast()) }
        }
    }

    impl Ptrs {
        /// The waiters counted on the lock (its clearing generation masked off).
        fn count(self) -> u32 {
            waiter_count(self.lock().waiters.load(Ordering::Relaxed))
        }

        /// Waits until the waiter process `child` has counted itself on the lock and sleeps on
        /// its futex (a real signal: its `/proc` state), giving up after 10 s.
        fn wait_until_child_sleeps(self, child: libc::pid_t) {
            wait_for("a waiter to count itself", || self.count() != 0);
            assert!(wait_until_asleep(child as u32));
        }

        /// With the lock held here (and again on return): releases and takes it back every
        /// 20 ms, each release waking nobody, until the count is cleared; that takes at least
        /// `PHANTOM_AGE`.
        fn cycle_until_cleared(self) {
            let start = Instant::now();
            while self.count() != 0 {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "the count stayed"
                );
                assert_eq!(self.lock().release(), Ok(true));
                assert_eq!(self.lock().acquire(true, None), Ok(Got::Taken));
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(start.elapsed() >= crate::sync::barrier::PHANTOM_AGE);
        }

        /// With the lock held here: a child sleeps on it, and this release (a plain store when
        /// `barrier::light`) wakes it before its slice runs out.
        fn release_wakes_a_sleeping_child(self) {
            let p = self;
            let child = fork_child(move || {
                SLICES_ENDED_FREE.with(|c| c.set(0));
                let deadline = Some(Instant::now() + Duration::from_secs(10));
                if p.lock().acquire(true, deadline) != Ok(Got::Taken) {
                    return 1;
                }
                if SLICES_ENDED_FREE.with(|c| c.get()) != 0 {
                    return 2;
                }
                i32::from(p.lock().release() != Ok(true)) * 3
            });
            p.wait_until_child_sleeps(child);
            assert_eq!(p.lock().release(), Ok(true));
            assert_eq!(wait_child(child), Exit::Code(0));
        }
    }

    /// A child sleeps on a held lock; the parent's release (a plain store when
    /// `barrier::light`) wakes it before its slice runs out.
    #[test]
    fn a_release_wakes_a_sleeper_in_another_process() {
        let page = SharedPage::new();
        let p = Ptrs(page.at(0));
        for _ in 0..3 {
            assert_eq!(p.lock().acquire(true, None), Ok(Got::Taken));
            p.release_wakes_a_sleeping_child();
        }
        assert_eq!(p.count(), 0);
    }

    /// A waiter process killed while it sleeps leaves the count one too high; releases that
    /// wake nobody for `PHANTOM_AGE` clear it, and a later sleeper is still woken by a release.
    #[test]
    fn a_killed_waiters_count_is_cleared_by_releases() {
        let page = SharedPage::new();
        let p = Ptrs(page.at(0));
        assert_eq!(p.lock().acquire(true, None), Ok(Got::Taken));
        let child = fork_child(move || i32::from(p.lock().acquire(true, None).is_err()));
        p.wait_until_child_sleeps(child);
        assert_eq!(kill_child(child), Exit::Signal(libc::SIGKILL));
        assert_eq!(p.count(), 1);
        p.cycle_until_cleared();
        // A live sleeper is counted again, and woken by the release, not by its slice.
        p.release_wakes_a_sleeping_child();
        assert_eq!(p.count(), 0);
    }

    /// A live waiter taken for dead: stopped (`SIGSTOP`) while it sleeps, it wakes nobody, so
    /// the releases clear its count. Continued, it finds the generation moved when it next
    /// wakes, counts itself again, and is woken by a release; its take-back leaves the count
    /// at 0, not below.
    #[test]
    fn a_stopped_waiter_taken_for_dead_counts_itself_again() {
        let page = SharedPage::new();
        let p = Ptrs(page.at(0));
        assert_eq!(p.lock().acquire(true, None), Ok(Got::Taken));
        let child = fork_child(move || {
            let deadline = Some(Instant::now() + Duration::from_secs(10));
            let ok = p.lock().acquire(true, deadline) == Ok(Got::Taken);
            i32::from(!ok || p.lock().release() != Ok(true))
        });
        p.wait_until_child_sleeps(child);
        signal_child(child, libc::SIGSTOP);
        assert!(wait_until_stopped(child as u32));
        p.cycle_until_cleared();
        signal_child(child, libc::SIGCONT);
        // Within a slice of waking, the child counts itself again.
        p.wait_until_child_sleeps(child);
        assert_eq!(p.lock().release(), Ok(true));
        assert_eq!(wait_child(child), Exit::Code(0));
        assert_eq!(p.count(), 0);
    }

    /// Processes hammer one lock with critical sections that yield the CPU, half of them
    /// releasing through `try_release_uncontended`: no increment is lost, no waiter's slice
    /// runs out on a free lock, and the waiter count returns to 0.
    #[test]
    fn processes_sharing_a_lock_lose_no_update_and_no_wake_up() {
        const PROCS: u32 = 3;
        const ROUNDS: u64 = 3_000;
        let page = SharedPage::new();
        let p = Ptrs(page.at(0));
        let children: Vec<_> = (0..PROCS)
            .map(|_| {
                fork_child(move || {
                    SLICES_ENDED_FREE.with(|c| c.set(0));
                    for i in 0..ROUNDS {
                        if p.lock().acquire(true, None) != Ok(Got::Taken) {
                            return 1;
                        }
                        // A read and a write, not an atomic add: only the lock keeps them whole.
                        let v = p.counter().load(Ordering::Relaxed);
                        if i % 4 == 0 {
                            std::thread::yield_now();
                        }
                        p.counter().store(v + 1, Ordering::Relaxed);
                        let released = i % 2 == 0 && p.lock().try_release_uncontended();
                        if !released && p.lock().release() != Ok(true) {
                            return 2;
                        }
                    }
                    i32::from(SLICES_ENDED_FREE.with(|c| c.get()) != 0) * 3
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
        assert_eq!(p.count(), 0);
        assert!(!p.lock().locked());
    }
}
