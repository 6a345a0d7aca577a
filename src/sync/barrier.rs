//! Asymmetric memory barriers between processes, on `membarrier(2)`: a lock's release may be a
//! plain store when its waiters pay for the ordering instead.
//!
//! A sleeping lock has a Dekker race at its release: the releaser stores "free" and then reads
//! whether anyone waits, while a waiter records that it waits and then reads whether the lock is
//! free. Each side needs its store ordered before its load, or both miss the other and the
//! waiter sleeps through the release. The usual answer is a locked read-modify-write at every
//! release (about 6 ns here, a third of an uncontended lock and unlock). This module moves that
//! cost to the waiters, who are about to sleep anyway:
//!
//! - a process that [`light`] reports true for is registered with
//!   `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED`, and may release with a plain store followed by a
//!   compiler-only fence and the load of the waiter count;
//! - a waiter, after recording itself and before reading the lock word, calls [`heavy`]
//!   (`MEMBARRIER_CMD_GLOBAL_EXPEDITED`): every CPU then running a thread of a registered process
//!   executes a full barrier. A releaser's store and load are either both before that barrier
//!   (the waiter then reads "free") or its load is after it (and reads the waiter).
//!
//! This is the pattern of Folly's `asymmetricHeavyBarrier` and of liburcu, across processes.
//! The `membarrier` crate covers only the process-private commands; the system call is made
//! here through `libc`, which has its constants.
//!
//! A process whose kernel or seccomp policy refuses the registration releases with an atomic
//! exchange, as before: [`light`] is false for it. A waiter whose [`heavy`] fails cannot rely on
//! plain-store releases by other processes waking it, so the locks sleep in short slices then
//! (see [`heavy`]).
//!
//! # Examples
//! ```
//! use shmstore::sync::barrier;
//! // On Linux 4.16 and later, without a seccomp policy that forbids membarrier(2):
//! if barrier::light() {
//!     assert!(barrier::heavy());
//! }
//! ```

use std::sync::atomic::{compiler_fence, AtomicU32, AtomicU8, Ordering};
use std::sync::Once;
use std::time::Duration;

use libc::{
    MEMBARRIER_CMD_GLOBAL_EXPEDITED, MEMBARRIER_CMD_QUERY, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
};

const UNKNOWN: u8 = 0;
const LIGHT: u8 = 1;
const HEAVY: u8 = 2;

/// Whether this process is registered (`LIGHT`), cannot be (`HEAVY`), or has not asked yet.
static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static ATFORK: Once = Once::new();

/// Forgets the registration in a child after `fork`: it registers again before its first
/// plain-store release (the kernel keeps the registration with the copied address space, but
/// asking again costs one system call and depends on nothing).
extern "C" fn forget_in_child() {
    // Async-signal-safe: one atomic store.
    STATE.store(UNKNOWN, Ordering::Relaxed);
}

/// Whether this process may release a lock with a plain store: true once it is registered for
/// [`heavy`] barriers (registered on the first call; a few microseconds, once per process).
///
/// # Examples
/// ```
/// // Same answer every time in one process.
/// assert_eq!(shmstore::sync::barrier::light(), shmstore::sync::barrier::light());
/// ```
#[inline]
pub fn light() -> bool {
    match STATE.load(Ordering::Relaxed) {
        LIGHT => true,
        HEAVY => false,
        _ => register(),
    }
}

#[cold]
#[inline(never)]
fn register() -> bool {
    ATFORK.call_once(|| {
        // SAFETY: the handler is a plain `extern "C" fn()` valid for the life of the process; a
        // failure (ENOMEM) only leaves a child to rely on the inherited registration.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
        debug_assert_eq!(rc, 0);
    });
    // SAFETY: membarrier(2) with a query or a registration command reads and writes no memory
    // of ours.
    let supported = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) };
    let wanted =
        i64::from(MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
    let ok = supported >= 0
        && (supported as i64) & wanted == wanted
        // SAFETY: as above.
        && unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
                0,
                0,
            )
        } == 0;
    STATE.store(if ok { LIGHT } else { HEAVY }, Ordering::Relaxed);
    ok
}

/// The waiter's side: after this returns true, every thread of every registered process has
/// executed a full memory barrier since the call began, so a [`light`] releaser's plain store
/// and its following load cannot both have missed the caller's earlier stores. False when the
/// kernel refuses (no `membarrier`, or a seccomp policy): the caller must then not sleep for
/// long on a wake-up from another process.
///
/// About 0.4 µs here; called once per wait that may sleep, never on an uncontended path.
///
/// # Examples
/// ```
/// use shmstore::sync::barrier;
/// // Every call is a barrier of its own: it may be repeated.
/// assert_eq!(barrier::heavy(), barrier::heavy());
/// ```
pub fn heavy() -> bool {
    #[cfg(test)]
    if tests::UNSUPPORTED.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: membarrier(2) reads and writes no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 }
}

/// How long a waiter whose heavy barrier failed sleeps before it looks again: a plain-store
/// release in another process may not wake it.
pub const SHORT_SLICE: Duration = Duration::from_millis(2);

/// Gives a lock back: stores `to` in its `state` word (Release), then orders that store before
/// the caller's next load of the waiter count. `light`: [`light`] for this process (a plain
/// store and a compiler fence; the waiters' [`heavy`] barrier orders the hardware); otherwise
/// an exchange, a full barrier of its own. Returns the value `state` held before when it is
/// known (the exchange), `None` after a plain store.
#[inline]
pub(crate) fn give_back(state: &AtomicU32, to: u32, light: bool) -> Option<u32> {
    if light {
        // Release: the next holder sees everything written while the lock was held.
        state.store(to, Ordering::Release);
        // Keeps the caller's load of the waiter count after the store in the compiled code.
        compiler_fence(Ordering::SeqCst);
        None
    } else {
        // SeqCst: pairs with the waiters' SeqCst count without a heavy barrier.
        Some(state.swap(to, Ordering::SeqCst))
    }
}

/// Whether a waiter is counted on the lock whose waiter count is `waiters`, read after
/// [`give_back`].
#[inline]
pub(crate) fn anyone_waiting(waiters: &AtomicU32) -> bool {
    // SeqCst: pairs with `Waiting::count`.
    waiters.load(Ordering::SeqCst) != 0
}

/// A thread counted among a lock's waiters from [`Waiting::count`] until dropped, however its
/// wait ends.
pub(crate) struct Waiting<'a> {
    waiters: &'a AtomicU32,
    counted: bool,
    barrier: bool,
}

impl<'a> Waiting<'a> {
    /// Not counted yet, on the lock whose waiter count is `waiters`.
    pub(crate) fn new(waiters: &'a AtomicU32) -> Waiting<'a> {
        Waiting {
            waiters,
            counted: false,
            barrier: false,
        }
    }

    /// Whether [`Waiting::count`] ran.
    pub(crate) fn counted(&self) -> bool {
        self.counted
    }

    /// Counts this thread among the waiters, then runs the heavy barrier. After it, a release
    /// whose store the caller's next look at the lock word does not see will see the count.
    pub(crate) fn count(&mut self) {
        // SeqCst: pairs with a barrier-less release's SeqCst exchange and load.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        self.counted = true;
        self.barrier = heavy();
    }

    /// How long to sleep before looking again: `long`, or [`SHORT_SLICE`] when the heavy
    /// barrier failed.
    pub(crate) fn slice(&self, long: Duration) -> Duration {
        if self.barrier {
            long
        } else {
            long.min(SHORT_SLICE)
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            // Relaxed: the count only decides whether a release calls FUTEX_WAKE.
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Set in a test process that plays one without `membarrier(2)`.
    pub(crate) static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

    /// Makes this process behave as one whose kernel refuses `membarrier(2)`: it releases by
    /// exchange and its waiters sleep in short slices (for a forked child in a test).
    pub(crate) fn pretend_unsupported() {
        UNSUPPORTED.store(true, Ordering::Relaxed);
        STATE.store(HEAVY, Ordering::Relaxed);
    }

    #[test]
    fn registers_once_and_heavy_works_where_light_does() {
        let first = light();
        assert_eq!(
            STATE.load(Ordering::Relaxed),
            if first { LIGHT } else { HEAVY }
        );
        if first {
            assert!(heavy());
        }
    }

    #[test]
    fn a_waiter_counts_itself_until_dropped() {
        let count = AtomicU32::new(0);
        {
            let mut w = Waiting::new(&count);
            assert!(!w.counted() && !anyone_waiting(&count));
            w.count();
            assert!(w.counted() && anyone_waiting(&count));
            let long = Duration::from_millis(100);
            assert_eq!(w.slice(long), if light() { long } else { SHORT_SLICE });
        }
        assert!(!anyone_waiting(&count));
    }

    #[test]
    fn give_back_stores_and_reports_the_old_state_only_when_it_exchanged() {
        let state = AtomicU32::new(7);
        assert_eq!(give_back(&state, 0, false), Some(7));
        state.store(9, Ordering::Relaxed);
        assert_eq!(give_back(&state, 0, true), None);
        assert_eq!(state.load(Ordering::Relaxed), 0);
    }
}
