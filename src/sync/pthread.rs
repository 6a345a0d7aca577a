//! The robust lock and condition variable on POSIX threads.
//!
//! [`PthreadMutex`] is a `pthread_mutex_t` made `PTHREAD_PROCESS_SHARED` (usable from every
//! process that maps it), `PTHREAD_MUTEX_ROBUST` (the kernel marks it when its holder dies, and the
//! next locker gets `EOWNERDEAD`) and `PTHREAD_MUTEX_ERRORCHECK` (relocking by the holder gives
//! `EDEADLK` instead of a deadlock; unlocking by another thread gives `EPERM`). glibc supports the
//! three together (its `PTHREAD_MUTEX_ROBUST_ERRORCHECK_NP` kind); a robust mutex already stores
//! its holder's thread id, so the error checks cost one comparison.
//!
//! [`PthreadCondvar`], the condition variable that waits on a [`PthreadMutex`], is *not* a
//! `pthread_cond_t`: glibc's (2.36 here) is not robust to a waiter that dies mid-wait. After one
//! such death a later `notify_one` was lost and `notify_all` blocked forever (the notifier waits
//! for the dead waiter to leave its group; test
//! `condvar_waiter_killed_while_waiting_blocks_no_notification`). It is two words and a futex
//! instead (see `CondWords`), which the kernel cleans up when a waiter dies.
//!
//! # Timeouts
//!
//! A timeout becomes an absolute deadline on `CLOCK_MONOTONIC` (so setting the wall clock changes
//! nothing), computed with nanosecond carry and saturating at the largest `time_t`: any
//! `Duration`, from zero to `Duration::MAX`, is valid. Timed locks use `pthread_mutex_clocklock`
//! (glibc 2.30 and later), looked up at run time so that the binary still loads on an older glibc
//! or on musl; there, they fall back to `pthread_mutex_timedlock` on `CLOCK_REALTIME` in slices of
//! at most a second, each rechecked against the monotonic deadline, so a wall-clock jump can make a
//! wait at most a second longer and never shorter.
//!
//! The lookup (`dlsym`) is not async-signal-safe; [`PthreadMutex::init`] and [`resolve_symbols`]
//! do it ahead of time, so a child forked from a multithreaded process does not do it itself.
//!
//! # Errors
//!
//! `EINTR` is retried. `ENOTRECOVERABLE` (a lock unlocked after `EOWNERDEAD` without
//! `make_consistent`, which this library never does) becomes
//! `Error::Corrupt { what: "lock not recoverable", .. }`. Every other `errno` becomes
//! `Error::Os { op, errno }`, `op` naming the pthread call.
//!
//! glibc's `pthread_mutex_trylock` leaves a not-recoverable robust mutex's lock word taken when
//! it reports `ENOTRECOVERABLE` (so every later `lock` would hang); `try_lock` undoes that (see
//! `undo_notrecoverable_trylock`).
//!
//! # Examples
//! ```
//! use shmstore::arena::Arena;
//! use shmstore::sync::{LockHolder, PthreadMutex, RawLock};
//! let mem = Arena::heap(64);
//! let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
//! // SAFETY: aligned bytes of `mem`, formatted once; this thread unlocks what it holds.
//! unsafe {
//!     PthreadMutex::init(m)?;
//!     let _ = PthreadMutex::lock(m)?;
//! }
//! let word = mem.atomic_u32(0)?.load(std::sync::atomic::Ordering::Relaxed);
//! assert_eq!(PthreadMutex::holder(word), LockHolder::Thread(shmstore::process::current_tid()));
//! // SAFETY: as above.
//! unsafe { PthreadMutex::unlock(m)? };
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::ffi::{c_int, c_void};
use std::mem::{align_of, size_of, MaybeUninit};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Acquired, RawLock};
use crate::error::{Error, Result};

/// A process-shared, robust, error-checking `pthread_mutex_t`, used through [`RawLock`].
///
/// Never constructed: the lock is the `SIZE` bytes in shared memory that its functions point at.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// use shmstore::sync::{Acquired, PthreadMutex, RawLock};
/// let mem = Arena::heap(64);
/// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
/// // SAFETY: aligned bytes of `mem`, formatted once; this thread unlocks what it holds.
/// unsafe {
///     PthreadMutex::init(m)?;
///     assert_eq!(PthreadMutex::try_lock(m)?, Some(Acquired::Clean));
///     PthreadMutex::unlock(m)?;
/// }
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug)]
pub enum PthreadMutex {}

/// The interprocess condition variable paired with [`PthreadMutex`], used through [`RawCondvar`](super::RawCondvar):
/// a notification counter and a waiter count, slept on with a process-shared futex, timed on
/// `CLOCK_MONOTONIC`. Linux only.
///
/// Never constructed: the condition variable is the `SIZE` bytes in shared memory that its
/// functions point at.
///
/// # Waiters that die
///
/// A waiter killed mid-wait absorbs no notification and blocks no notifier (the kernel drops it
/// from the futex queue); it only leaves the waiter count one too high, which makes later
/// notifications try a wake-up call that finds nobody. A waiter whose *mutex* holder dies gets
/// [`Acquired::OwnerDied`] from its wait. Waits may wake spuriously (in particular, a
/// `notify_one` can wake a waiter whose wait began after the notification was sent): wait in a
/// loop that rechecks the predicate.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use shmstore::arena::Arena;
/// use shmstore::sync::{Acquired, PthreadCondvar, PthreadMutex, RawCondvar, RawLock};
/// let mem = Arena::heap(128);
/// let m = mem.raw_ptr(0, PthreadMutex::SIZE as u64, PthreadMutex::ALIGN as u64)?;
/// let c = mem.raw_ptr(64, PthreadCondvar::SIZE as u64, PthreadCondvar::ALIGN as u64)?;
/// // SAFETY: disjoint, aligned ranges of `mem`, formatted once; this thread holds the mutex
/// // while it waits and when it unlocks.
/// unsafe {
///     PthreadMutex::init(m)?;
///     PthreadCondvar::init(c)?;
///     let _ = PthreadMutex::lock(m)?;
///     let got = PthreadCondvar::wait_timeout(c, m, Duration::from_millis(5))?;
///     assert_eq!(got, (Acquired::Clean, true)); // timed out
///     PthreadMutex::unlock(m)?;
/// }
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug)]
pub enum PthreadCondvar {}

const MUTEX_SIZE: usize = size_of::<libc::pthread_mutex_t>();
const MUTEX_ALIGN: usize = align_of::<libc::pthread_mutex_t>();

// Pinned for the platforms we ship on; the header's format word records them.
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
const _: () = assert!(MUTEX_SIZE == 40 && MUTEX_ALIGN == 8);
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "aarch64"))]
const _: () = assert!(MUTEX_SIZE == 48 && MUTEX_ALIGN == 8);
// Everywhere: it fits a 64-byte slot at 8- or 16-byte alignment.
const _: () = assert!(MUTEX_SIZE <= 64);
const _: () = assert!(MUTEX_ALIGN.is_power_of_two() && MUTEX_ALIGN <= 16);

/// `PTRB`: pthread, robust (and error-checking), format 1.
const PTHREAD_FORMAT: u32 = u32::from_be_bytes(*b"PTRB");

const NANOS_PER_SEC: u32 = 1_000_000_000;

/// The error for a failed lock-taking call returning `rc`.
#[cold]
#[inline(never)]
fn lock_error(op: &'static str, rc: c_int) -> Error {
    if rc == libc::ENOTRECOVERABLE {
        Error::corrupt("lock not recoverable", 0)
    } else {
        Error::Os { op, errno: rc }
    }
}

/// `Ok` if `rc` is 0, else the `Error::Os` for `op`.
#[inline]
fn check(op: &'static str, rc: c_int) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(lock_error(op, rc))
    }
}

/// What a lock-taking call's `rc` means, `None` for `EINTR` (retry) and `ETIMEDOUT`'s own arm.
#[inline]
fn acquired(op: &'static str, rc: c_int) -> Option<Result<Acquired>> {
    match rc {
        0 => Some(Ok(Acquired::Clean)),
        libc::EOWNERDEAD => Some(Ok(Acquired::OwnerDied)),
        libc::EINTR => None,
        libc::ETIMEDOUT => Some(Err(Error::Timeout)),
        rc => Some(Err(lock_error(op, rc))),
    }
}

// ---------------------------------------------------------------------------------------------
// Time.

/// The current time on `clock`.
pub(super) fn now(clock: libc::clockid_t) -> Result<libc::timespec> {
    let mut ts = MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `ts` is writable; `clock` is a clock every Linux has.
    let rc = unsafe { libc::clock_gettime(clock, ts.as_mut_ptr()) };
    if rc != 0 {
        return Err(Error::last_os("clock_gettime"));
    }
    // SAFETY: clock_gettime succeeded, so it wrote `ts`.
    Ok(unsafe { ts.assume_init() })
}

// `tv_nsec` is i64 on some targets and i32 on others: the conversions are not useless everywhere.
#[allow(clippy::useless_conversion)]
/// `t + d`, carrying nanoseconds into seconds and saturating at the largest `time_t` (with
/// `tv_nsec` still below one second, so that the result is always a valid `timespec`).
pub(super) fn add_saturating(t: libc::timespec, d: Duration) -> libc::timespec {
    let mut out = t;
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    // Both terms are below 1e9, so the sum (below 2e9) fits any `tv_nsec` type (at least i32).
    let nsec = i64::from(t.tv_nsec) + i64::from(d.subsec_nanos());
    let (carry, nsec) = if nsec >= i64::from(NANOS_PER_SEC) {
        (1, nsec - i64::from(NANOS_PER_SEC))
    } else {
        (0, nsec)
    };
    match t
        .tv_sec
        .checked_add(secs)
        .and_then(|s| s.checked_add(carry))
    {
        Some(sec) => {
            out.tv_sec = sec;
            // `nsec` is in 0..1e9 (the input's was), so the cast cannot truncate.
            out.tv_nsec = nsec as _;
        }
        None => {
            out.tv_sec = libc::time_t::MAX;
            out.tv_nsec = (NANOS_PER_SEC - 1) as _;
        }
    }
    out
}

/// `a - b` as a `Duration`, zero if `a <= b`.
#[allow(clippy::useless_conversion)] // as above
fn sub_saturating(a: libc::timespec, b: libc::timespec) -> Duration {
    if (a.tv_sec, a.tv_nsec) <= (b.tv_sec, b.tv_nsec) {
        return Duration::ZERO;
    }
    let (mut sec, mut nsec) = (
        i128::from(a.tv_sec) - i128::from(b.tv_sec),
        i64::from(a.tv_nsec) - i64::from(b.tv_nsec),
    );
    if nsec < 0 {
        sec -= 1;
        nsec += i64::from(NANOS_PER_SEC);
    }
    // `sec >= 0` here, `nsec` in 0..1e9.
    Duration::new(
        u64::try_from(sec).unwrap_or(u64::MAX),
        u32::try_from(nsec).unwrap_or(0),
    )
}

/// Whether `t` is at or past `deadline`.
pub(super) fn reached(t: libc::timespec, deadline: libc::timespec) -> bool {
    (t.tv_sec, t.tv_nsec) >= (deadline.tv_sec, deadline.tv_nsec)
}

/// The deadline `timeout` from now on `CLOCK_MONOTONIC`.
pub(super) fn deadline(timeout: Duration) -> Result<libc::timespec> {
    Ok(add_saturating(now(libc::CLOCK_MONOTONIC)?, timeout))
}

// ---------------------------------------------------------------------------------------------
// pthread_mutex_clocklock, looked up at run time.

/// `int pthread_mutex_clocklock(pthread_mutex_t *, clockid_t, const struct timespec *)`.
type ClockLock = unsafe extern "C" fn(
    *mut libc::pthread_mutex_t,
    libc::clockid_t,
    *const libc::timespec,
) -> c_int;

/// The address of `pthread_mutex_clocklock`, or one of the two markers below.
static CLOCKLOCK: AtomicUsize = AtomicUsize::new(UNRESOLVED);
const UNRESOLVED: usize = 0;
/// No code lives at address 1.
const ABSENT: usize = 1;

/// Looks up the symbols the timed calls use, so that later calls (for instance in a child forked
/// from a multithreaded process, where `dlsym` could deadlock) need no lookup. Idempotent and
/// cheap; [`PthreadMutex::init`] calls it, and a process that only opens an arena should call it
/// once before it forks.
///
/// # Examples
/// ```
/// // Before forking from a multithreaded process that only opened an arena:
/// shmstore::sync::pthread::resolve_symbols();
/// shmstore::sync::pthread::resolve_symbols(); // idempotent
/// ```
pub fn resolve_symbols() {
    let _ = clocklock();
}

/// `pthread_mutex_clocklock`, if this C library has it.
fn clocklock() -> Option<ClockLock> {
    let mut addr = CLOCKLOCK.load(Ordering::Relaxed);
    if addr == UNRESOLVED {
        // SAFETY: the symbol name is a valid C string; RTLD_DEFAULT searches the global scope.
        let p: *mut c_void =
            unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"pthread_mutex_clocklock".as_ptr()) };
        addr = if p.is_null() { ABSENT } else { p as usize };
        // Relaxed: every thread computes the same value and nothing else is published with it.
        CLOCKLOCK.store(addr, Ordering::Relaxed);
    }
    if addr == ABSENT {
        None
    } else {
        // SAFETY: `addr` is what dlsym returned for glibc's `pthread_mutex_clocklock`, whose C
        // prototype `ClockLock` matches.
        Some(unsafe { std::mem::transmute::<usize, ClockLock>(addr) })
    }
}

/// Locks `m` with an absolute `CLOCK_MONOTONIC` deadline; returns the pthread result.
///
/// # Safety
///
/// - `m` satisfies the pointer contract of [`RawLock`] for [`PthreadMutex`].
unsafe fn timed_lock(m: *mut libc::pthread_mutex_t, deadline: &libc::timespec) -> c_int {
    match clocklock() {
        // SAFETY: 1. `m` points to an initialized mutex (caller's contract); 2. `deadline` is a
        // valid timespec (add_saturating keeps tv_nsec below 1e9).
        Some(f) => unsafe { f(m, libc::CLOCK_MONOTONIC, deadline) },
        // SAFETY: as for this function.
        None => unsafe { timed_lock_realtime(m, deadline) },
    }
}

/// The fallback: `pthread_mutex_timedlock` on `CLOCK_REALTIME`, in slices of at most a second,
/// each rechecked against the monotonic `deadline`.
///
/// # Safety
///
/// - `m` satisfies the pointer contract of [`RawLock`] for [`PthreadMutex`].
#[cold]
unsafe fn timed_lock_realtime(m: *mut libc::pthread_mutex_t, deadline: &libc::timespec) -> c_int {
    loop {
        let (mono, real) = match (now(libc::CLOCK_MONOTONIC), now(libc::CLOCK_REALTIME)) {
            (Ok(mono), Ok(real)) => (mono, real),
            _ => return libc::EINVAL,
        };
        let slice = sub_saturating(*deadline, mono).min(Duration::from_secs(1));
        let until = add_saturating(real, slice);
        // SAFETY: 1. `m` points to an initialized mutex (caller's contract); 2. `until` is valid.
        let rc = unsafe { libc::pthread_mutex_timedlock(m, &until) };
        if rc != libc::ETIMEDOUT {
            return rc;
        }
        match now(libc::CLOCK_MONOTONIC) {
            Ok(t) if !reached(t, *deadline) => continue,
            _ => return libc::ETIMEDOUT,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A glibc bug.

/// Releases the lock word that glibc's `pthread_mutex_trylock` leaves taken when it reports
/// `ENOTRECOVERABLE`.
///
/// glibc (2.36 here; seen by `unrepaired_lock_is_reported_corrupt`) takes a robust mutex's futex
/// word with a compare-and-swap, finds the mutex not recoverable, and releases the word only
/// `if (oldval == id)`, where `oldval` is the swap's old value, 0: so the word keeps the caller's
/// thread id. The mutex is not on the thread's robust list, so nothing ever releases it: every
/// later `lock` in every process blocks forever instead of failing, and `unlock` crashes.
/// `pthread_mutex_lock` and the timed locks release the word unconditionally and are not
/// affected.
///
/// This puts the word back to 0 (and wakes any thread that started waiting on it) if, and only
/// if, it still holds this thread's id; a glibc without the bug leaves it 0, and this does
/// nothing. The mutex's owner field still says "not recoverable", so later lockers fail as they
/// should.
///
/// # Safety
///
/// - `ptr` satisfies the pointer contract of [`RawLock`] for [`PthreadMutex`];
/// - this thread's `pthread_mutex_trylock` on `ptr` just returned `ENOTRECOVERABLE` (so this thread
///   cannot legitimately hold the mutex: it would have got `EDEADLK`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[cold]
unsafe fn undo_notrecoverable_trylock(ptr: *mut u8) {
    const FUTEX_WAITERS: u32 = 0x8000_0000;
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as u32;
    // SAFETY: 1. `ptr` is valid and aligned to 8 for the whole call (caller's contract); 2. every
    // glibc `pthread_mutex_t` begins with its futex word, `int __lock`, which glibc and the kernel
    // change only with atomic operations.
    let word = unsafe { AtomicU32::from_ptr(ptr.cast()) };
    let mut w = word.load(Ordering::Relaxed);
    while w & FUTEX_TID_MASK == tid {
        // Release: pairs with the next locker's acquire, as an unlock does.
        match word.compare_exchange_weak(w, 0, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => {
                if w & FUTEX_WAITERS != 0 {
                    // SAFETY: a FUTEX_WAKE on a valid, aligned futex word; process-shared, so
                    // not FUTEX_PRIVATE.
                    unsafe {
                        libc::syscall(libc::SYS_futex, ptr, libc::FUTEX_WAKE, c_int::MAX);
                    }
                }
                return;
            }
            Err(now) => w = now,
        }
    }
}

/// Other C libraries do not have glibc's bug.
///
/// # Safety
///
/// None needed; kept `unsafe` to match the glibc version.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
unsafe fn undo_notrecoverable_trylock(_ptr: *mut u8) {}

// ---------------------------------------------------------------------------------------------
// The mutex attribute object, destroyed on every path.

struct MutexAttr(MaybeUninit<libc::pthread_mutexattr_t>);

impl MutexAttr {
    fn new() -> Result<MutexAttr> {
        let mut raw = MaybeUninit::uninit();
        // SAFETY: the pointer is to writable storage for a pthread_mutexattr_t.
        check("pthread_mutexattr_init", unsafe {
            libc::pthread_mutexattr_init(raw.as_mut_ptr())
        })?;
        Ok(MutexAttr(raw))
    }
    fn ptr(&mut self) -> *mut libc::pthread_mutexattr_t {
        self.0.as_mut_ptr()
    }
}

impl Drop for MutexAttr {
    fn drop(&mut self) {
        // SAFETY: `new` initialized the attribute (a failed `new` returns no MutexAttr).
        unsafe { libc::pthread_mutexattr_destroy(self.ptr()) };
    }
}

// ---------------------------------------------------------------------------------------------
// The mutex.

// SAFETY: a process-shared robust pthread mutex gives mutual exclusion across processes with
// acquire/release ordering, reports a dead holder with EOWNERDEAD (the kernel walks the holder's
// robust list when it exits), and holds no pointers (glibc keeps the robust-list links as
// offsets from each thread's own list head, written only while the thread holds the mutex).
impl PthreadMutex {
    /// Who holds the lock, read from its first word without taking it — for tools such as
    /// `shmstore stat`, never for synchronization (the answer may be stale at once).
    ///
    /// On glibc a robust mutex's first word is the robust-futex word the kernel's robust-list
    /// protocol defines: the holder's thread id in the low 30 bits, `FUTEX_OWNER_DIED` (bit 30)
    /// once the kernel has found the holder dead. `word` is that word, loaded atomically.
    /// Elsewhere (musl keeps its type word first) the holder is not known and this gives
    /// [`LockHolder::Unknown`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::sync::{LockHolder, PthreadMutex};
    /// assert_eq!(PthreadMutex::holder(0), LockHolder::Free);
    /// assert_eq!(PthreadMutex::holder(42), LockHolder::Thread(42));
    /// assert_eq!(PthreadMutex::holder(0x4000_0000), LockHolder::OwnerDied);
    /// ```
    pub fn holder(word: u32) -> LockHolder {
        if !cfg!(all(target_os = "linux", target_env = "gnu")) {
            return LockHolder::Unknown;
        }
        const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
        const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
        match (word & FUTEX_TID_MASK, word & FUTEX_OWNER_DIED != 0) {
            (0, false) => LockHolder::Free,
            (0, true) => LockHolder::OwnerDied,
            (tid, _) => LockHolder::Thread(tid),
        }
    }
}

/// What [`PthreadMutex::holder`] read.
///
/// # Examples
/// ```
/// # let name = format!("doc-lockholder-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::LockHolder;
/// let a = store.array([0u8; 4])?;
/// let held = a.lock()?;
/// let info = store.objects()?;
/// assert_eq!(info[0].lock, LockHolder::Thread(shmstore::process::current_tid()));
/// drop(held);
/// assert_eq!(store.objects()?[0].lock, LockHolder::Free);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder {
    /// Nobody holds the lock.
    Free,
    /// Held by the thread with this kernel thread id.
    Thread(u32),
    /// Its holder died holding it; the next locker repairs the object.
    OwnerDied,
    /// This platform's lock layout does not tell.
    Unknown,
}

unsafe impl RawLock for PthreadMutex {
    const SIZE: usize = MUTEX_SIZE;
    const ALIGN: usize = MUTEX_ALIGN;
    const FORMAT: u32 = PTHREAD_FORMAT;

    unsafe fn init(ptr: *mut u8) -> Result<()> {
        resolve_symbols();
        let mut attr = MutexAttr::new()?;
        // SAFETY: `attr` is an initialized attribute object.
        check("pthread_mutexattr_setpshared", unsafe {
            libc::pthread_mutexattr_setpshared(attr.ptr(), libc::PTHREAD_PROCESS_SHARED)
        })?;
        // SAFETY: as above.
        check("pthread_mutexattr_setrobust", unsafe {
            libc::pthread_mutexattr_setrobust(attr.ptr(), libc::PTHREAD_MUTEX_ROBUST)
        })?;
        // SAFETY: as above.
        check("pthread_mutexattr_settype", unsafe {
            libc::pthread_mutexattr_settype(attr.ptr(), libc::PTHREAD_MUTEX_ERRORCHECK)
        })?;
        // SAFETY: 1. `ptr` is aligned and valid for SIZE bytes, the size and alignment of a
        // pthread_mutex_t (caller's contract); 2. nothing uses the lock yet (caller's contract);
        // 3. `attr` is initialized.
        check("pthread_mutex_init", unsafe {
            libc::pthread_mutex_init(ptr.cast(), attr.ptr())
        })
    }

    #[inline]
    unsafe fn lock(ptr: *mut u8) -> Result<Acquired> {
        loop {
            // SAFETY: `ptr` points to an initialized mutex (caller's contract).
            let rc = unsafe { libc::pthread_mutex_lock(ptr.cast()) };
            if let Some(r) = acquired("pthread_mutex_lock", rc) {
                return r;
            }
        }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut u8) -> Result<Option<Acquired>> {
        loop {
            // SAFETY: `ptr` points to an initialized mutex (caller's contract).
            let rc = unsafe { libc::pthread_mutex_trylock(ptr.cast()) };
            match rc {
                libc::EBUSY => return Ok(None),
                libc::EINTR => continue,
                libc::ENOTRECOVERABLE => {
                    // SAFETY: `ptr` points to an initialized mutex (caller's contract), and this
                    // thread's trylock just reported it not recoverable.
                    unsafe { undo_notrecoverable_trylock(ptr) };
                    return Err(lock_error("pthread_mutex_trylock", rc));
                }
                rc => return acquired("pthread_mutex_trylock", rc).transpose(),
            }
        }
    }

    unsafe fn lock_timeout(ptr: *mut u8, timeout: Duration) -> Result<Acquired> {
        // An uncontended lock needs no clock.
        // SAFETY: the caller's contract is this function's.
        if let Some(a) = unsafe { Self::try_lock(ptr) }? {
            return Ok(a);
        }
        let deadline = deadline(timeout)?;
        loop {
            // SAFETY: `ptr` points to an initialized mutex (caller's contract).
            let rc = unsafe { timed_lock(ptr.cast(), &deadline) };
            if let Some(r) = acquired("pthread_mutex_clocklock", rc) {
                return r;
            }
        }
    }

    unsafe fn make_consistent(ptr: *mut u8) -> Result<()> {
        // SAFETY: `ptr` points to an initialized mutex the caller holds (caller's contract).
        check("pthread_mutex_consistent", unsafe {
            libc::pthread_mutex_consistent(ptr.cast())
        })
    }

    #[inline]
    unsafe fn unlock(ptr: *mut u8) -> Result<()> {
        // SAFETY: `ptr` points to an initialized mutex (caller's contract); error checking turns
        // an unlock by a non-holder into EPERM.
        check("pthread_mutex_unlock", unsafe {
            libc::pthread_mutex_unlock(ptr.cast())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The condition variable.

/// The bytes of a [`PthreadCondvar`].
///
/// Protocol: `seq` counts notifications (wrapping); `waiters` counts threads between the start
/// and the end of a wait (wrapping; a waiter that dies mid-wait leaves it one too high, which
/// costs later notifiers a needless wake-up call and nothing else). Both are touched only
/// atomically, by any process, with or without the mutex.
///
/// A waiter, holding the mutex: increments `waiters`, reads `seq`, unlocks the mutex, sleeps in
/// `FUTEX_WAIT` while `seq` still has the value read, relocks the mutex, decrements `waiters`.
/// A notifier: increments `seq`, then wakes one or all sleepers if `waiters` is not zero. Both
/// sides use `SeqCst`, so either the waiter reads the new `seq` (and does not sleep) or the
/// notifier reads the waiter's count (and wakes it): no wake-up is lost, whether or not the
/// notifier holds the mutex. A waiter that dies is dropped from the futex queue by the kernel,
/// so it never absorbs a wake-up meant for a live one. A crash at any step leaves both words
/// valid.
#[repr(C)]
struct CondWords {
    seq: u32,
    waiters: u32,
}

const COND_SIZE: usize = size_of::<CondWords>();
const COND_ALIGN: usize = align_of::<CondWords>();
const _: () = assert!(COND_SIZE == 8 && COND_ALIGN == 4);

/// The two words of the condition variable at `cond`.
///
/// # Safety
///
/// - `cond` satisfies the pointer contract of [`RawCondvar`] for [`PthreadCondvar`] for `'a`.
unsafe fn cond_words<'a>(cond: *mut u8) -> (&'a AtomicU32, &'a AtomicU32) {
    let w = cond.cast::<CondWords>();
    // SAFETY: 1. `cond` is valid for SIZE bytes and aligned to 4 for 'a (caller's contract);
    // 2. the words are only ever accessed atomically (the protocol above), by every process.
    unsafe {
        (
            AtomicU32::from_ptr(std::ptr::addr_of_mut!((*w).seq)),
            AtomicU32::from_ptr(std::ptr::addr_of_mut!((*w).waiters)),
        )
    }
}

/// Sleeps while `*word == expected`, until woken or `deadline` (absolute, `CLOCK_MONOTONIC`).
/// Returns 0 when woken (possibly spuriously), `EAGAIN` if `*word != expected`, `ETIMEDOUT`, or
/// another errno.
pub(super) fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<&libc::timespec>,
) -> c_int {
    let timeout = deadline.map_or(std::ptr::null(), |d| d as *const libc::timespec);
    // SAFETY: 1. `word` is a valid, aligned futex word; 2. `timeout` is null or a valid
    // timespec, read as an absolute CLOCK_MONOTONIC time by FUTEX_WAIT_BITSET (without
    // FUTEX_CLOCK_REALTIME); 3. not FUTEX_PRIVATE_FLAG: the word is shared between processes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            timeout,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if rc == 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    }
}

/// Wakes up to `n` threads sleeping on `word`, in any process.
pub(super) fn futex_wake(word: &AtomicU32, n: c_int) -> Result<usize> {
    // SAFETY: `word` is a valid, aligned futex word; not FUTEX_PRIVATE_FLAG (shared).
    let rc = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
    // The number of threads woken, or -1 with errno.
    usize::try_from(rc).map_err(|_| Error::last_os("futex(FUTEX_WAKE)"))
}

/// The shared body of every condition variable's `wait` and `wait_timeout`, whatever lock `L`
/// it waits on: returns what relocking found and whether `deadline` passed.
///
/// # Safety
///
/// As [`RawCondvar::wait`], with `mutex` a lock of type `L`.
pub(super) unsafe fn cond_wait_until<L: RawLock>(
    cond: *mut u8,
    mutex: *mut u8,
    deadline: Option<&libc::timespec>,
) -> Result<(Acquired, bool)> {
    // SAFETY: `cond` satisfies the pointer contract (caller's contract).
    let (seq, waiters) = unsafe { cond_words(cond) };
    // SeqCst (both): the Dekker pairing with `notify`, see `CondWords`.
    waiters.fetch_add(1, Ordering::SeqCst);
    let expected = seq.load(Ordering::SeqCst);
    // SAFETY: the caller holds `mutex` (caller's contract).
    if let Err(e) = unsafe { L::unlock(mutex) } {
        waiters.fetch_sub(1, Ordering::Relaxed);
        return Err(e);
    }
    let mut timed_out = false;
    let slept = loop {
        match futex_wait(seq, expected, deadline) {
            0 | libc::EAGAIN => break Ok(()),
            libc::ETIMEDOUT => {
                timed_out = true;
                break Ok(());
            }
            libc::EINTR => continue,
            rc => {
                break Err(Error::Os {
                    op: "futex(FUTEX_WAIT_BITSET)",
                    errno: rc,
                })
            }
        }
    };
    // Relock whatever happened, so that the caller holds the mutex on return.
    // SAFETY: `mutex` satisfies the pointer contract (caller's contract).
    let relocked = unsafe { L::lock(mutex) };
    waiters.fetch_sub(1, Ordering::Relaxed);
    let acquired = relocked?;
    slept?;
    Ok((acquired, timed_out))
}

/// Formats a condition variable (any lock's): no notifications, no waiters.
///
/// # Safety
///
/// As [`RawCondvar::init`].
pub(super) unsafe fn cond_init(cond: *mut u8) {
    // SAFETY: `cond` is valid for writes of SIZE bytes, aligned, unused (caller's contract).
    unsafe {
        cond.cast::<CondWords>()
            .write(CondWords { seq: 0, waiters: 0 });
    }
}

/// Wakes up to `n` waiters of the condition variable at `cond` (any lock's).
///
/// # Safety
///
/// As [`RawCondvar::notify_one`].
pub(super) unsafe fn cond_notify(cond: *mut u8, n: c_int) -> Result<()> {
    // SAFETY: `cond` satisfies the pointer contract (caller's contract).
    let (seq, waiters) = unsafe { cond_words(cond) };
    seq.fetch_add(1, Ordering::SeqCst);
    if waiters.load(Ordering::SeqCst) == 0 {
        return Ok(());
    }
    futex_wake(seq, n).map(|_| ())
}

/// Bytes of a condition variable.
pub(super) const COND_BYTES: usize = COND_SIZE;
/// Alignment of a condition variable.
pub(super) const COND_ALIGNMENT: usize = COND_ALIGN;

/// Implements [`RawCondvar`] for `$cv` over the lock `$lock`: the two-counter futex condition
/// variable of this file (`cond_init`, `cond_wait_until`, `cond_notify`), which only needs the
/// lock's own unlock and lock entry points. Both lock kinds use it.
macro_rules! futex_condvar {
    ($cv:ty, $lock:ty) => {
        // SAFETY: a wait reads `seq` while holding the lock and sleeps only while `seq` keeps
        // that value, so a notifier that takes the lock after the waiter released it (and so
        // increments `seq` after the read) either prevents the sleep or wakes it (see
        // `CondWords`); the wait relocks before returning `Ok`. The bytes are two counters.
        unsafe impl $crate::sync::RawCondvar for $cv {
            type Lock = $lock;
            const SIZE: usize = $crate::sync::pthread::COND_BYTES;
            const ALIGN: usize = $crate::sync::pthread::COND_ALIGNMENT;

            unsafe fn init(cond: *mut u8) -> $crate::error::Result<()> {
                // SAFETY: the caller's contract is this function's.
                unsafe { $crate::sync::pthread::cond_init(cond) };
                Ok(())
            }

            unsafe fn wait(
                cond: *mut u8,
                mutex: *mut u8,
            ) -> $crate::error::Result<$crate::sync::Acquired> {
                // SAFETY: the caller's contract is this function's.
                unsafe { $crate::sync::pthread::cond_wait_until::<$lock>(cond, mutex, None) }
                    .map(|(a, _)| a)
            }

            unsafe fn wait_timeout(
                cond: *mut u8,
                mutex: *mut u8,
                timeout: ::std::time::Duration,
            ) -> $crate::error::Result<($crate::sync::Acquired, bool)> {
                let deadline = $crate::sync::pthread::deadline(timeout)?;
                // SAFETY: the caller's contract is this function's.
                unsafe {
                    $crate::sync::pthread::cond_wait_until::<$lock>(cond, mutex, Some(&deadline))
                }
            }

            unsafe fn notify_one(cond: *mut u8) -> $crate::error::Result<()> {
                // SAFETY: the caller's contract is this function's.
                unsafe { $crate::sync::pthread::cond_notify(cond, 1) }
            }

            unsafe fn notify_all(cond: *mut u8) -> $crate::error::Result<()> {
                // SAFETY: the caller's contract is this function's.
                unsafe { $crate::sync::pthread::cond_notify(cond, ::std::ffi::c_int::MAX) }
            }
        }
    };
}
pub(super) use futex_condvar;

futex_condvar!(PthreadCondvar, PthreadMutex);

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sync::test_support::{fork_child, kill_child, wait_child, Exit, Pipe, SharedPage};
    use crate::sync::RawCondvar;

    /// Long enough that correct code never hits it; short enough that broken code fails instead of
    /// hanging.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// Offsets in the shared page: the mutex, the condition variable, a flag.
    const MUTEX: usize = 0;
    const COND: usize = 64;
    const FLAG: usize = 128;

    struct Shared {
        page: SharedPage,
    }

    impl Shared {
        fn new() -> Shared {
            let page = SharedPage::new();
            // SAFETY: the offsets are 64-aligned, at least SIZE bytes apart, inside the page, and
            // nothing uses them yet.
            unsafe {
                PthreadMutex::init(page.at(MUTEX)).unwrap();
                PthreadCondvar::init(page.at(COND)).unwrap();
            }
            Shared { page }
        }
        fn m(&self) -> *mut u8 {
            self.page.at(MUTEX)
        }
        fn c(&self) -> *mut u8 {
            self.page.at(COND)
        }
        fn flag(&self) -> &AtomicU32 {
            // SAFETY: FLAG is 4-aligned, inside the page, which outlives `self`, and is only ever
            // accessed atomically.
            unsafe { AtomicU32::from_ptr(self.page.at(FLAG).cast()) }
        }
    }

    /// Lets the raw pointers cross into a scoped thread.
    #[derive(Clone, Copy)]
    struct Ptrs(*mut u8, *mut u8);
    // SAFETY: they point to process-shared pthread objects, built to be used from any thread.
    unsafe impl Send for Ptrs {}
    impl Ptrs {
        fn of(s: &Shared) -> Ptrs {
            Ptrs(s.m(), s.c())
        }
        fn m(self) -> *mut u8 {
            self.0
        }
        fn c(self) -> *mut u8 {
            self.1
        }
    }

    fn ts(sec: libc::time_t, nsec: i64) -> libc::timespec {
        // SAFETY: an all-zero timespec is valid (some targets have private padding fields).
        let mut t: libc::timespec = unsafe { std::mem::zeroed() };
        t.tv_sec = sec;
        t.tv_nsec = nsec as _;
        t
    }

    #[allow(clippy::unnecessary_cast)] // `tv_nsec` is not i64 everywhere
    fn parts(t: libc::timespec) -> (libc::time_t, i64) {
        (t.tv_sec, t.tv_nsec as i64)
    }

    #[test]
    fn timespec_arithmetic_carries_and_saturates() {
        let t = ts(100, 999_999_999);
        assert_eq!(parts(add_saturating(t, Duration::ZERO)), (100, 999_999_999));
        assert_eq!(parts(add_saturating(t, Duration::from_nanos(1))), (101, 0));
        assert_eq!(
            parts(add_saturating(t, Duration::from_millis(50))),
            (101, 49_999_999)
        );
        assert_eq!(
            parts(add_saturating(t, Duration::new(2, 999_999_999))),
            (103, 999_999_998)
        );
        let max = (libc::time_t::MAX, 999_999_999);
        assert_eq!(parts(add_saturating(t, Duration::MAX)), max);
        assert_eq!(
            parts(add_saturating(
                ts(libc::time_t::MAX, 5),
                Duration::from_nanos(999_999_999)
            )),
            max
        );
        assert_eq!(
            parts(add_saturating(
                ts(libc::time_t::MAX - 1, 5),
                Duration::new(1, 0)
            )),
            (libc::time_t::MAX, 5)
        );
        assert_eq!(sub_saturating(ts(5, 0), ts(6, 0)), Duration::ZERO);
        assert_eq!(sub_saturating(ts(5, 0), ts(5, 0)), Duration::ZERO);
        assert_eq!(
            sub_saturating(ts(6, 1), ts(5, 2)),
            Duration::from_nanos(999_999_999)
        );
        assert!(reached(ts(5, 1), ts(5, 1)) && !reached(ts(5, 0), ts(5, 1)));
    }

    #[test]
    fn sizes_are_pinned() {
        assert_eq!(PthreadMutex::SIZE, size_of::<libc::pthread_mutex_t>());
        assert_eq!((PthreadCondvar::SIZE, PthreadCondvar::ALIGN), (8, 4));
    }

    #[test]
    fn relocking_by_the_holder_is_an_error_not_a_deadlock() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        let edeadlk = Error::Os {
            op: "pthread_mutex_lock",
            errno: libc::EDEADLK,
        };
        // SAFETY: the mutex is initialized and outlives the test.
        unsafe {
            assert_eq!(PthreadMutex::lock(p.m()), Ok(Acquired::Clean));
            assert_eq!(PthreadMutex::lock(p.m()), Err(edeadlk));
            assert!(matches!(
                PthreadMutex::try_lock(p.m()),
                Err(Error::Os {
                    errno: libc::EDEADLK,
                    ..
                }) | Ok(None)
            ));
            assert!(matches!(
                PthreadMutex::lock_timeout(p.m(), PATIENCE),
                Err(Error::Os {
                    errno: libc::EDEADLK,
                    ..
                })
            ));
            // Another thread may not unlock it.
            let other =
                std::thread::scope(|sc| sc.spawn(move || PthreadMutex::unlock(p.m())).join());
            assert!(matches!(
                other,
                Ok(Err(Error::Os {
                    errno: libc::EPERM,
                    ..
                }))
            ));
            // Consistent already: nothing to make consistent.
            assert!(matches!(
                PthreadMutex::make_consistent(p.m()),
                Err(Error::Os {
                    errno: libc::EINVAL,
                    ..
                })
            ));
            PthreadMutex::unlock(p.m()).unwrap();
            assert!(matches!(
                PthreadMutex::unlock(p.m()),
                Err(Error::Os {
                    errno: libc::EPERM,
                    ..
                })
            ));
        }
    }

    /// Runs `waiter` in a scoped thread while this thread holds the mutex; releases it once the
    /// waiter is blocked (or has finished), and returns the waiter's result.
    fn while_held<T: Send>(p: Ptrs, waiter: impl FnOnce() -> T + Send) -> T {
        // SAFETY: the mutex is initialized and outlives the call; this thread unlocks what it holds.
        unsafe { assert_eq!(PthreadMutex::lock(p.m()), Ok(Acquired::Clean)) };
        std::thread::scope(|sc| {
            let t = sc.spawn(waiter);
            // SAFETY: as above.
            let word = unsafe { AtomicU32::from_ptr(p.m().cast()) };
            while word.load(Ordering::Relaxed) & 0x8000_0000 == 0 && !t.is_finished() {
                std::thread::yield_now();
            }
            // SAFETY: as above.
            unsafe { PthreadMutex::unlock(p.m()).unwrap() };
            t.join().unwrap()
        })
    }

    #[test]
    fn lock_timeout_duration_max_blocks_and_is_woken() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        // SAFETY: the mutex is initialized and outlives the test.
        let r = while_held(p, move || unsafe {
            PthreadMutex::lock_timeout(p.m(), Duration::MAX)
        });
        assert_eq!(r, Ok(Acquired::Clean));
        // SAFETY: this thread holds it (the waiter thread ended holding it: it is now owner-dead).
        unsafe {
            assert_eq!(PthreadMutex::lock(p.m()), Ok(Acquired::OwnerDied));
            PthreadMutex::make_consistent(p.m()).unwrap();
            PthreadMutex::unlock(p.m()).unwrap();
        }
    }

    #[test]
    fn realtime_fallback_times_out_and_locks() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        let timed = move |timeout: Duration| {
            let start = Instant::now();
            // SAFETY: the mutex is initialized and outlives the test.
            let rc = unsafe { timed_lock_realtime(p.m().cast(), &deadline(timeout).unwrap()) };
            (rc, start.elapsed())
        };
        // Blocks (with a saturated deadline) until released, then takes the lock, and its thread
        // ends holding it.
        assert_eq!(while_held(p, move || timed(Duration::MAX).0), 0);
        assert_eq!(timed(Duration::ZERO).0, libc::EOWNERDEAD);
        // SAFETY: this thread holds the mutex, taken with EOWNERDEAD.
        unsafe { PthreadMutex::make_consistent(p.m()).unwrap() };
        // Held by this thread: another thread times out after the full timeout.
        let timeout = Duration::from_millis(50);
        let (rc, waited) =
            std::thread::scope(|sc| sc.spawn(move || timed(timeout)).join().unwrap());
        assert_eq!(rc, libc::ETIMEDOUT);
        assert!(waited >= timeout, "{waited:?}");
        // SAFETY: this thread holds the mutex.
        unsafe { PthreadMutex::unlock(p.m()).unwrap() };
    }

    #[test]
    fn clocklock_is_found_on_this_glibc() {
        resolve_symbols();
        if cfg!(target_env = "gnu") {
            assert!(clocklock().is_some());
        }
    }

    /// A child waits for FLAG under the mutex; the parent sets it and notifies.
    fn waiter_child(s: &Shared, waiting: &Pipe) -> libc::pid_t {
        let p = Ptrs::of(s);
        let flag = s.flag();
        fork_child(move || {
            // SAFETY: the mutex and condition variable are initialized in the shared page; the
            // child holds the mutex while it waits and unlocks it at the end.
            unsafe {
                if PthreadMutex::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                waiting.send(1);
                let deadline = Instant::now() + PATIENCE;
                while flag.load(Ordering::Relaxed) == 0 {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match PthreadCondvar::wait_timeout(p.c(), p.m(), left) {
                        Ok((Acquired::Clean, false)) => {}
                        Ok((Acquired::Clean, true)) => return 2,
                        Ok((Acquired::OwnerDied, _)) => return 3,
                        Err(_) => return 4,
                    }
                }
                if PthreadMutex::unlock(p.m()).is_err() {
                    return 5;
                }
            }
            0
        })
    }

    /// Sets FLAG under the mutex and notifies.
    fn set_flag_and_notify(s: &Shared, all: bool) {
        // SAFETY: the mutex and condition variable are initialized; this thread unlocks what it
        // holds.
        unsafe {
            assert_eq!(
                PthreadMutex::lock_timeout(s.m(), PATIENCE),
                Ok(Acquired::Clean)
            );
            s.flag().store(1, Ordering::Relaxed);
            if all {
                PthreadCondvar::notify_all(s.c()).unwrap();
            } else {
                PthreadCondvar::notify_one(s.c()).unwrap();
            }
            PthreadMutex::unlock(s.m()).unwrap();
        }
    }

    #[test]
    fn condvar_notify_one_wakes_a_waiter_in_another_process() {
        let s = Shared::new();
        let waiting = Pipe::new();
        let child = waiter_child(&s, &waiting);
        assert_eq!(waiting.recv(), Some(1));
        // Taking the mutex succeeds only once the child waits (its wait released it).
        set_flag_and_notify(&s, false);
        assert_eq!(wait_child(child), Exit::Code(0));
    }

    #[test]
    fn condvar_notify_all_wakes_every_waiter() {
        let s = Shared::new();
        let waiting = Pipe::new();
        let a = waiter_child(&s, &waiting);
        assert_eq!(waiting.recv(), Some(1));
        let b = waiter_child(&s, &waiting);
        assert_eq!(waiting.recv(), Some(1));
        set_flag_and_notify(&s, true);
        assert_eq!(wait_child(a), Exit::Code(0));
        assert_eq!(wait_child(b), Exit::Code(0));
    }

    #[test]
    fn condvar_wait_timeout_times_out() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        // SAFETY: the objects are initialized; this thread holds the mutex around the waits.
        unsafe {
            assert_eq!(PthreadMutex::lock(p.m()), Ok(Acquired::Clean));
            assert_eq!(
                PthreadCondvar::wait_timeout(p.c(), p.m(), Duration::ZERO),
                Ok((Acquired::Clean, true))
            );
            for timeout in [Duration::from_millis(50), Duration::from_nanos(999_999_999)] {
                let start = Instant::now();
                // A spurious wake-up returns early without timing out: wait again.
                loop {
                    let left = timeout.saturating_sub(start.elapsed());
                    let r = PthreadCondvar::wait_timeout(p.c(), p.m(), left);
                    if r == Ok((Acquired::Clean, true)) {
                        break;
                    }
                    assert_eq!(r, Ok((Acquired::Clean, false)));
                }
                assert!(start.elapsed() >= timeout);
            }
            // Still held after timing out.
            PthreadMutex::unlock(p.m()).unwrap();
        }
    }

    #[test]
    fn condvar_wait_timeout_duration_max_is_woken() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        let flag = s.flag();
        std::thread::scope(|sc| {
            // SAFETY: the objects are initialized; the waiter holds the mutex around its waits.
            let waiter = sc.spawn(move || unsafe {
                assert_eq!(PthreadMutex::lock(p.m()), Ok(Acquired::Clean));
                flag.store(1, Ordering::Relaxed); // "I hold it and am about to wait"
                while flag.load(Ordering::Relaxed) != 2 {
                    let r = PthreadCondvar::wait_timeout(p.c(), p.m(), Duration::MAX);
                    assert_eq!(r, Ok((Acquired::Clean, false)));
                }
                PthreadMutex::unlock(p.m()).unwrap();
            });
            while flag.load(Ordering::Relaxed) != 1 {
                std::thread::yield_now();
            }
            // Locking succeeds once the waiter waits.
            // SAFETY: as above.
            unsafe {
                assert_eq!(PthreadMutex::lock(p.m()), Ok(Acquired::Clean));
                flag.store(2, Ordering::Relaxed);
                PthreadCondvar::notify_one(p.c()).unwrap();
                PthreadMutex::unlock(p.m()).unwrap();
            }
            waiter.join().unwrap();
        });
    }

    /// A waiter's mutex is taken by a process that then dies holding it: the wait reports it.
    #[test]
    fn condvar_wait_reports_owner_died() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        let flag = s.flag();
        let waiting = Pipe::new();
        let waiter = fork_child(|| {
            // SAFETY: the objects are initialized in the shared page; the child holds the mutex
            // around its waits.
            unsafe {
                if PthreadMutex::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                waiting.send(1);
                let deadline = Instant::now() + PATIENCE;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match PthreadCondvar::wait_timeout(p.c(), p.m(), left) {
                        Ok((Acquired::Clean, false)) if flag.load(Ordering::Relaxed) == 0 => {}
                        Ok((Acquired::OwnerDied, false)) => break,
                        Ok(_) => return 2,
                        Err(_) => return 3,
                    }
                }
                // Repair (nothing to repair here), then mark consistent, then unlock.
                if PthreadMutex::make_consistent(p.m()).is_err()
                    || PthreadMutex::unlock(p.m()).is_err()
                {
                    return 4;
                }
            }
            0
        });
        assert_eq!(waiting.recv(), Some(1));
        let killer = fork_child(|| {
            // SAFETY: as above; this child dies holding the mutex on purpose.
            unsafe {
                if PthreadMutex::lock(p.m()) != Ok(Acquired::Clean) {
                    return 1;
                }
                flag.store(1, Ordering::Relaxed);
                if PthreadCondvar::notify_all(p.c()).is_err() {
                    return 2;
                }
            }
            0 // exits holding the mutex
        });
        assert_eq!(wait_child(killer), Exit::Code(0));
        assert_eq!(wait_child(waiter), Exit::Code(0));
        // SAFETY: the mutex is initialized; this thread unlocks what it holds.
        unsafe {
            assert_eq!(
                PthreadMutex::lock_timeout(p.m(), PATIENCE),
                Ok(Acquired::Clean)
            );
            PthreadMutex::unlock(p.m()).unwrap();
        }
    }

    /// A waiter killed while waiting must not absorb or block later notifications.
    ///
    /// Regression: on glibc 2.36's `pthread_cond_t`, with waiters D (then killed) and X, a
    /// `notify_one` woke X; a later waiter L missed the next `notify_one` (it went to D's group),
    /// and `notify_all` then blocked *forever*, waiting for D to leave its group.
    #[test]
    fn condvar_waiter_killed_while_waiting_blocks_no_notification() {
        let s = Shared::new();
        let p = Ptrs::of(&s);
        let flag = s.flag();
        let waiting = Pipe::new();
        // A child that waits until FLAG >= `at_least`, then exits 0; 2 if it timed out.
        let waiter = |at_least: u32| {
            fork_child(|| {
                // SAFETY: the objects are initialized in the shared page; the child holds the
                // mutex around its waits.
                unsafe {
                    if PthreadMutex::lock(p.m()) != Ok(Acquired::Clean) {
                        return 1;
                    }
                    waiting.send(1);
                    let deadline = Instant::now() + PATIENCE;
                    while flag.load(Ordering::Relaxed) < at_least {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match PthreadCondvar::wait_timeout(p.c(), p.m(), left) {
                            Ok((Acquired::Clean, false)) => {}
                            _ => return 2,
                        }
                    }
                    if PthreadMutex::unlock(p.m()).is_err() {
                        return 3;
                    }
                }
                0
            })
        };
        // Returns once the newest waiter waits: it held the mutex until its wait released it.
        let until_waiting = || {
            assert_eq!(waiting.recv(), Some(1));
            // SAFETY: the mutex is initialized; this thread unlocks what it holds.
            unsafe {
                assert_eq!(
                    PthreadMutex::lock_timeout(p.m(), PATIENCE),
                    Ok(Acquired::Clean)
                );
                PthreadMutex::unlock(p.m()).unwrap();
            }
        };
        let notify = |value: u32, all: bool| {
            // SAFETY: the objects are initialized; this thread unlocks what it holds.
            unsafe {
                assert_eq!(
                    PthreadMutex::lock_timeout(p.m(), PATIENCE),
                    Ok(Acquired::Clean)
                );
                flag.store(value, Ordering::Relaxed);
                if all {
                    PthreadCondvar::notify_all(p.c()).unwrap();
                } else {
                    PthreadCondvar::notify_one(p.c()).unwrap();
                }
                PthreadMutex::unlock(p.m()).unwrap();
            }
        };
        let doomed = waiter(u32::MAX);
        until_waiting();
        let x = waiter(1);
        until_waiting();
        assert_eq!(kill_child(doomed), Exit::Signal(libc::SIGKILL));
        notify(1, false);
        assert_eq!(wait_child(x), Exit::Code(0));
        let late = waiter(2);
        until_waiting();
        notify(2, false);
        assert_eq!(wait_child(late), Exit::Code(0));
        let (a, b) = (waiter(3), waiter(3));
        until_waiting();
        until_waiting();
        notify(3, true);
        assert_eq!(wait_child(a), Exit::Code(0));
        assert_eq!(wait_child(b), Exit::Code(0));
    }
}
