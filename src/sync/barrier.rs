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

use std::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

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

/// The waiter count's bits of a lock's waiter word; the bits above are the word's *clearing
/// generation*, which a releaser advances when it clears a count only dead waiters held.
///
/// Clears of one lock are at least [`PHANTOM_AGE`] apart, so the 8-bit generation comes back
/// to a value after 77 s of them at the soonest. A waiter stopped across exactly 256 clears
/// would take itself for still counted, and its take-back would remove another waiter's count:
/// that waiter then misses the wake-ups of one slice, as any waiter taken for dead does.
pub const COUNT_MASK: u32 = (1 << 24) - 1;
/// One clearing generation, in the waiter word.
const GENERATION_ONE: u32 = COUNT_MASK + 1;

/// The waiters counted in the waiter word `word` (its clearing generation masked off).
#[inline]
pub fn waiter_count(word: u32) -> u32 {
    word & COUNT_MASK
}

/// Whether a waiter is counted on the lock whose waiter word is `waiters`, read after
/// [`give_back`].
#[inline]
pub(crate) fn anyone_waiting(waiters: &AtomicU32) -> bool {
    // SeqCst: pairs with `Waiting::count`.
    waiter_count(waiters.load(Ordering::SeqCst)) != 0
}

/// A thread counted among a lock's waiters from [`Waiting::count`] until dropped, however its
/// wait ends.
pub(crate) struct Waiting<'a> {
    waiters: &'a AtomicU32,
    /// The clearing generation this thread counted itself in; `None` before it has.
    counted: Option<u32>,
    barrier: bool,
}

impl<'a> Waiting<'a> {
    /// Not counted yet, on the lock whose waiter word is `waiters`.
    pub(crate) fn new(waiters: &'a AtomicU32) -> Waiting<'a> {
        Waiting {
            waiters,
            counted: None,
            barrier: false,
        }
    }

    /// Whether this thread must (re)count itself before it sleeps: it has not yet, or [`woke`]
    /// has since cleared the count, taking this live waiter for a dead one (the generation
    /// moved on). A waiter asks each time it wakes, so a mistaken clearing costs it at most the
    /// slice it was asleep in.
    pub(crate) fn must_count(&self) -> bool {
        self.counted.map_or(true, |generation| {
            self.waiters.load(Ordering::Relaxed) & !COUNT_MASK != generation
        })
    }

    /// Counts this thread among the waiters, then runs the heavy barrier. After it, a release
    /// whose store the caller's next look at the lock word does not see will see the count.
    pub(crate) fn count(&mut self) {
        // SeqCst: pairs with a barrier-less release's SeqCst exchange and load.
        let before = self.waiters.fetch_add(1, Ordering::SeqCst);
        self.counted = Some(before & !COUNT_MASK);
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
        if let Some(generation) = self.counted {
            // Relaxed: the count only decides whether a release calls FUTEX_WAKE. Only in the
            // generation this thread counted itself in: a clearing since took its count away
            // already, and the count now is other waiters'.
            let _ = self
                .waiters
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                    (w & !COUNT_MASK == generation && waiter_count(w) != 0).then(|| w - 1)
                });
        }
    }
}

/// How long a lock's waiter count must stay the same, with every wake this process made on it
/// waking nobody, before a releaser takes the count for dead waiters' and clears it: three sleep
/// slices. A live waiter sleeps on the futex but for a few microseconds per slice, so it would
/// have been woken by one of those wakes.
pub const PHANTOM_AGE: Duration = Duration::from_millis(300);

/// Past this, a suspect's record is not trusted; it is started again. A lock released so
/// seldom keeps its system call, a rare one.
const STALE_AGE: Duration = Duration::from_secs(3);

/// A lock whose wakes found nobody asleep: the address of its waiter word, the word then
/// (count and clearing generation), when this process first saw that, and [`MISSED`] then.
#[derive(Clone, Copy)]
struct Suspect {
    waiters: usize,
    word: u32,
    since: Instant,
    missed: u64,
}

/// This process's suspects, a few at a time (a lock that does not fit is tracked once a record
/// goes stale or is cleared).
static SUSPECTS: std::sync::Mutex<[Option<Suspect>; 8]> = std::sync::Mutex::new([None; 8]);
/// Whether `SUSPECTS` may hold anything: a wake that woke someone then looks, otherwise not.
static ANY_SUSPECT: AtomicBool = AtomicBool::new(false);
/// Wakes that woke someone while `SUSPECTS` was busy, so that no record heard of them: a record
/// made before one is not trusted.
static MISSED: AtomicU64 = AtomicU64::new(0);

/// After a release's `FUTEX_WAKE` on the lock whose waiter word is `waiters` woke `woken`
/// threads: clears a count that only dead waiters hold.
///
/// A waiter killed while it waits cannot take itself back from the count, and every later
/// release of the lock would then make a system call that wakes nobody. A dead thread never
/// sleeps on a futex, but a live waiter does, all of each slice but the few microseconds between
/// two. So when the waiter word has stayed the same for [`PHANTOM_AGE`] and every wake this
/// process made on the lock in that time woke nobody, the count is taken for dead waiters' and
/// cleared: a compare-and-swap from the word seen to a count of 0 in the next clearing
/// generation.
///
/// A live waiter taken for dead (stopped by `SIGSTOP` or a debugger, or awake at each of those
/// wakes) notices the new generation when it next wakes, at the latest when its slice runs out,
/// and counts itself again ([`Waiting::must_count`]); until then a release may skip its
/// wake-up. Its own take-back only counts in its generation. Wakes by other processes are not
/// seen here; each process judges by its own.
pub(crate) fn woke(waiters: &AtomicU32, woken: usize) {
    // SeqCst: pairs with the store of `true` in `track`. A wake that reads `false` here came
    // before any record of this lock began, so no record needs to hear of it.
    if woken != 0 && !ANY_SUSPECT.load(Ordering::SeqCst) {
        return;
    }
    // `try_lock`: best effort. Another thread of this process is tracking a wake (its own
    // system call was the slow part), or held the table when this process was forked from its
    // parent, where nobody will give it back: never wait for it.
    let mut suspects = match SUSPECTS.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            if woken != 0 {
                MISSED.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
    };
    track(&mut *suspects, waiters, woken, || {
        (Instant::now(), MISSED.load(Ordering::SeqCst))
    });
    ANY_SUSPECT.store(suspects.iter().any(Option::is_some), Ordering::SeqCst);
}

/// Forgets the suspects whose waiter words lie in `[start, start + len)`: memory about to be
/// unmapped, so that a lock mapped at the same address later starts with no history.
pub(crate) fn forget_range(start: usize, len: usize) {
    if !ANY_SUSPECT.load(Ordering::SeqCst) {
        return;
    }
    // `try_lock`, as in `woke`: a child forked while another thread held the table must not
    // wait for it. Busy, every record is voided instead (as a missed live wake voids them).
    let mut suspects = match SUSPECTS.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            MISSED.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    forget_in(&mut *suspects, start, len);
    ANY_SUSPECT.store(suspects.iter().any(Option::is_some), Ordering::SeqCst);
}

/// [`forget_range`] in `suspects`.
fn forget_in(suspects: &mut [Option<Suspect>], start: usize, len: usize) {
    for s in suspects.iter_mut() {
        if s.is_some_and(|s| s.waiters.wrapping_sub(start) < len) {
            *s = None;
        }
    }
}

/// [`woke`]'s bookkeeping in `suspects`; `clock` tells the time and [`MISSED`].
fn track(
    suspects: &mut [Option<Suspect>],
    waiters: &AtomicU32,
    woken: usize,
    clock: impl Fn() -> (Instant, u64),
) {
    let addr = std::ptr::from_ref(waiters) as usize;
    let found = suspects
        .iter()
        .position(|s| s.is_some_and(|s| s.waiters == addr));
    let word = waiters.load(Ordering::Relaxed);
    if woken != 0 || waiter_count(word) == 0 {
        // A live sleeper (or nobody counted): the lock's history starts again.
        if let Some(i) = found {
            suspects[i] = None;
        }
        return;
    }
    // The flag first, then the time and the missed wakes (SeqCst): a live wake that read the
    // flag unset came before this record's time.
    ANY_SUSPECT.store(true, Ordering::SeqCst);
    let (now, missed) = clock();
    let record = Some(Suspect {
        waiters: addr,
        word,
        since: now,
        missed,
    });
    let Some(i) = found else {
        // A free place, or a stale record's.
        let stale = |s: &Option<Suspect>| {
            s.map_or(true, |s| {
                now.saturating_duration_since(s.since) >= STALE_AGE
            })
        };
        if let Some(free) = suspects.iter_mut().find(|s| stale(s)) {
            *free = record;
        }
        return;
    };
    let Some(old) = suspects[i] else {
        return;
    };
    let age = now.saturating_duration_since(old.since);
    if old.word != word || old.missed != missed || age >= STALE_AGE {
        // A new count or generation, a live wake no record heard of, or a record too old to
        // trust: the wait starts now.
        suspects[i] = record;
    } else if age >= PHANTOM_AGE {
        let cleared = (word & !COUNT_MASK).wrapping_add(GENERATION_ONE);
        let _ = waiters.compare_exchange(word, cleared, Ordering::SeqCst, Ordering::Relaxed);
        suspects[i] = None;
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
            assert!(w.must_count() && !anyone_waiting(&count));
            w.count();
            assert!(!w.must_count() && anyone_waiting(&count));
            let long = Duration::from_millis(100);
            assert_eq!(w.slice(long), if light() { long } else { SHORT_SLICE });
        }
        assert!(!anyone_waiting(&count));
    }

    /// A count that wakes nobody for `PHANTOM_AGE` is cleared into the next generation; a wake
    /// that woke a sleeper, a changed count, a missed live wake or a record past `STALE_AGE`
    /// starts the wait again; a full table takes a stale record's place; unmapped memory's
    /// records are forgotten. A live waiter cleared by mistake must count itself again, and
    /// its take-back leaves the other waiters' count alone.
    #[test]
    fn a_count_that_wakes_nobody_for_the_phantom_age_is_cleared() {
        let mut table = [None; 2];
        let t = Instant::now();
        let at = |ms: u64| move || (t + Duration::from_millis(ms), 0);
        let count = AtomicU32::new(2);
        track(&mut table, &count, 0, at(0));
        track(&mut table, &count, 0, at(100));
        assert_eq!(count.load(Ordering::Relaxed), 2); // too soon
        track(&mut table, &count, 1, at(400)); // someone was asleep: a live waiter's count
        track(&mut table, &count, 0, at(500));
        assert_eq!(count.load(Ordering::Relaxed), 2);
        count.store(3, Ordering::Relaxed); // a new waiter: the count seen changed
        track(&mut table, &count, 0, at(900));
        track(&mut table, &count, 0, at(1199));
        assert_eq!(count.load(Ordering::Relaxed), 3);
        // A live wake that no record heard of (the table was busy) starts the wait again.
        track(&mut table, &count, 0, move || {
            (t + Duration::from_millis(1300), 1)
        });
        assert_eq!(count.load(Ordering::Relaxed), 3);
        track(&mut table, &count, 0, move || {
            (t + Duration::from_millis(1600), 1)
        });
        assert_eq!(count.load(Ordering::Relaxed), GENERATION_ONE); // cleared, generation 1
        assert_eq!(waiter_count(count.load(Ordering::Relaxed)), 0);
        assert!(table.iter().all(Option::is_none));
        // A record past STALE_AGE is not trusted: it starts again.
        count.fetch_add(1, Ordering::Relaxed);
        track(&mut table, &count, 0, at(2000));
        track(&mut table, &count, 0, at(6000));
        assert_eq!(waiter_count(count.load(Ordering::Relaxed)), 1);
        track(&mut table, &count, 0, at(6300));
        assert_eq!(count.load(Ordering::Relaxed), 2 * GENERATION_ONE);
        // A full table: a new lock waits for a place, then takes a stale one's.
        let (a, b, c) = (AtomicU32::new(1), AtomicU32::new(1), AtomicU32::new(1));
        track(&mut table, &a, 0, at(7000));
        track(&mut table, &b, 0, at(7000));
        track(&mut table, &c, 0, at(7100)); // no place
        track(&mut table, &c, 0, at(7500));
        assert_eq!(c.load(Ordering::Relaxed), 1); // not tracked: not cleared
        track(&mut table, &c, 0, at(10_000)); // takes a stale place
        track(&mut table, &c, 0, at(10_300));
        assert_eq!(waiter_count(c.load(Ordering::Relaxed)), 0);
        // A live waiter whose count was cleared must count itself again; its take-back is
        // only in its own generation.
        let word = AtomicU32::new(0);
        let mut live = Waiting::new(&word);
        live.count();
        assert!(!live.must_count());
        track(&mut table, &word, 0, at(20_000));
        track(&mut table, &word, 0, at(20_300)); // taken for a dead waiter's
        assert!(live.must_count());
        let mut other = Waiting::new(&word);
        other.count(); // a waiter of the new generation
        drop(live); // not counted in this generation: takes nothing
        assert!(anyone_waiting(&word));
        drop(other);
        assert!(!anyone_waiting(&word));
    }

    /// Forgetting a range drops the records of the words inside it only.
    #[test]
    fn unmapped_memory_s_records_are_forgotten() {
        let mut table = [None; 4];
        let t = Instant::now();
        let words = [AtomicU32::new(1), AtomicU32::new(1)];
        for w in &words {
            track(&mut table, w, 0, || (t, 0));
        }
        assert_eq!(table.iter().flatten().count(), 2);
        let addr = |w: &AtomicU32| std::ptr::from_ref(w) as usize;
        forget_in(&mut table, addr(&words[0]), 4);
        let left: Vec<usize> = table.iter().flatten().map(|s| s.waiters).collect();
        assert_eq!(left, [addr(&words[1])]);
        forget_in(&mut table, addr(&words[0]), 8); // both words
        assert!(table.iter().all(Option::is_none));
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
