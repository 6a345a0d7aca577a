//! Process and thread identity that survives pid reuse, and liveness checks.
//!
//! A process is named by its pid and its start time (field 22 of `/proc/<pid>/stat`, clock ticks
//! since boot): a pid reused by a later process has another start time, so a record left by a
//! dead process is never mistaken for a live one. Zombies (killed, not yet reaped) count as
//! dead: they will never run again.
//!
//! # Examples
//! ```
//! use shmstore::process::{current_pid, ProcId};
//! let me = ProcId::current();
//! assert_eq!(me.pid, current_pid());
//! assert!(me.is_alive());
//! // A record of a process that has exited never passes for a live one.
//! let mut child = std::process::Command::new("true").spawn()?;
//! let pid = child.id();
//! child.wait()?;
//! assert!(!ProcId { pid, pad: 0, start: 0 }.is_alive());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;

use bytemuck::{Pod, Zeroable};

/// A process, as recorded in the arena.
///
/// # Examples
/// ```
/// use shmstore::process::ProcId;
/// let me = ProcId::current();
/// assert_eq!(me.pid, std::process::id());
/// assert!(me.start > 0); // clock ticks since boot, from /proc
/// assert!(ProcId::default().is_none());
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct ProcId {
    /// Process id; 0 means "nobody".
    pub pid: u32,
    /// Reserved; zero.
    pub pad: u32,
    /// Start time in clock ticks since boot (0 if unknown).
    pub start: u64,
}
const _: () = assert!(size_of::<ProcId>() == 16);

/// (pid << 32) of the process `CACHED_START` belongs to; refreshed after a fork.
static CACHED_PID: AtomicU64 = AtomicU64::new(0);
static CACHED_START: AtomicU64 = AtomicU64::new(0);

/// Reads (state, start time) from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u8, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // `rest` starts at field 3 (state); start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// This process's pid, cached: `getpid` is a system call (about 120 ns here) and lock paths ask
/// for it on every acquire. A `pthread_atfork` child handler forgets it, so a forked child
/// reads its own.
static PID: AtomicU32 = AtomicU32::new(0);
static FORGET_ON_FORK: Once = Once::new();

extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// This process's pid, cached (`getpid` is a system call) and forgotten in a fork child.
///
/// # Examples
/// ```
/// assert_eq!(shmstore::process::current_pid(), std::process::id());
/// ```
#[inline]
pub fn current_pid() -> u32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    fetch_pid()
}

/// [`current_pid`]'s first call in a process: asks the kernel and remembers.
#[cold]
#[inline(never)]
fn fetch_pid() -> u32 {
    FORGET_ON_FORK.call_once(|| {
        // SAFETY: `forget_pid` is an `extern "C" fn()` that only stores to an atomic (safe in a
        // forked child); it lives for the whole process.
        unsafe {
            libc::pthread_atfork(None, None, Some(forget_pid));
        }
    });
    let p = std::process::id();
    PID.store(p, Ordering::Relaxed);
    p
}

impl ProcId {
    /// This process.
    ///
    /// # Examples
    /// ```
    /// use shmstore::process::ProcId;
    /// assert_eq!(ProcId::current(), ProcId::current()); // the same start time each time
    /// ```
    #[inline]
    pub fn current() -> ProcId {
        let pid = current_pid();
        if CACHED_PID.load(Ordering::Acquire) != u64::from(pid) {
            return ProcId::fetch(pid);
        }
        ProcId {
            pid,
            pad: 0,
            start: CACHED_START.load(Ordering::Relaxed),
        }
    }

    /// [`ProcId::current`]'s first call in a process (or after a fork): reads the start time
    /// from `/proc` and remembers it.
    #[cold]
    #[inline(never)]
    fn fetch(pid: u32) -> ProcId {
        let start = stat(pid).map_or(0, |(_, s)| s);
        CACHED_START.store(start, Ordering::Relaxed);
        CACHED_PID.store(u64::from(pid), Ordering::Release);
        ProcId { pid, pad: 0, start }
    }

    /// True for the "nobody" value.
    ///
    /// # Examples
    /// ```
    /// use shmstore::process::ProcId;
    /// assert!(ProcId::default().is_none());
    /// assert!(!ProcId::current().is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.pid == 0
    }

    /// True while the process runs: it exists, is not a zombie, and started when recorded.
    ///
    /// # Examples
    /// ```
    /// use shmstore::process::ProcId;
    /// let me = ProcId::current();
    /// assert!(me.is_alive());
    /// // The same pid with another start time is another (earlier) process: not alive.
    /// assert!(!ProcId { start: me.start - 1, ..me }.is_alive());
    /// assert!(!ProcId::default().is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        if self.pid == 0 || self.pid > i32::MAX as u32 {
            return false;
        }
        // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
        let r = unsafe { libc::kill(self.pid as libc::pid_t, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            return false;
        }
        match stat(self.pid) {
            Some((state, start)) => {
                !matches!(state, b'Z' | b'X') && (self.start == 0 || start == self.start)
            }
            // No /proc: kill said it exists.
            None => true,
        }
    }
}

/// The calling thread's kernel id.
///
/// # Examples
/// ```
/// use shmstore::process::current_tid;
/// let main = current_tid();
/// assert_eq!(main, std::process::id()); // the main thread's id is the pid
/// let other = std::thread::spawn(current_tid).join().unwrap();
/// assert_ne!(other, main);
/// ```
pub fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    (unsafe { libc::gettid() }) as u32
}

/// What [`fork`] returned in the calling process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forked {
    /// In the parent: the child's pid.
    Parent(u32),
    /// In the child.
    Child,
}

/// Forks this process (`fork(2)`).
///
/// Safe to call, but the child of a multi-threaded process has only the calling thread: locks
/// other threads held stay locked in the child forever, so the child must keep to code that
/// takes no lock another thread of the parent could have held (the shmstore fork handlers make
/// the store's own bookkeeping safe). Crate-private: the pool's fork start method is its only
/// caller and documents that caveat.
///
/// # Errors
/// `Os` when the system refuses (`EAGAIN`, `ENOMEM`).
pub(crate) fn fork() -> crate::Result<Forked> {
    // SAFETY: fork has no memory-safety preconditions. The pthread_atfork handlers of
    // `crate::fork` keep the store registries consistent in both processes; what else the
    // child may call is the caller's contract (see above).
    let pid = unsafe { libc::fork() };
    match pid {
        0 => Ok(Forked::Child),
        p if p > 0 => Ok(Forked::Parent(p as u32)),
        _ => Err(crate::Error::last_os("fork")),
    }
}

/// Ends this process at once with `code` (`_exit(2)`): no atexit handlers, no destructors, no
/// flushing of stdio buffers. For a forked child, which must not run its parent's exit hooks.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Reaps the child `pid` if it has ended (`waitpid` with `WNOHANG`): `Some(status)` once it
/// has, `None` while it runs.
///
/// # Errors
/// `Os` (`ECHILD` when `pid` is not a child of this process, or was reaped already).
pub(crate) fn try_wait(pid: u32) -> crate::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        match r {
            0 => return Ok(None),
            r if r > 0 => return Ok(Some(std::process::ExitStatus::from_raw(status))),
            _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return Err(crate::Error::last_os("waitpid")),
        }
    }
}

/// Sends `signal` to the process `pid`.
///
/// # Errors
/// `Os` (`ESRCH` for no such process, `EPERM`), `ValueError` for a pid that names a process
/// group (0, or beyond `i32::MAX`).
pub(crate) fn kill(pid: u32, signal: i32) -> crate::Result<()> {
    if pid == 0 || pid > i32::MAX as u32 {
        return Err(crate::Error::ValueError(format!("bad pid {pid}")));
    }
    // SAFETY: kill has no memory-safety preconditions; a positive pid names one process.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } != 0 {
        return Err(crate::Error::last_os("kill"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = ProcId::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert!(
            !ProcId {
                start: me.start + 1,
                ..me
            }
            .is_alive(),
            "pid reuse is detected"
        );
        assert!(!ProcId::default().is_alive());
        assert!(current_tid() > 0);
    }

    #[test]
    fn kill_and_try_wait_reap_a_child() {
        use std::os::unix::process::ExitStatusExt;
        // Reaped below with waitpid, not through `Child`.
        #[allow(clippy::zombie_processes)]
        let pid = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap()
            .id();
        assert_eq!(try_wait(pid), Ok(None));
        kill(pid, libc::SIGKILL).unwrap();
        let status = loop {
            if let Some(s) = try_wait(pid).unwrap() {
                break s;
            }
            std::thread::yield_now();
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(matches!(
            try_wait(pid),
            Err(crate::Error::Os { op: "waitpid", .. })
        ));
        assert!(matches!(kill(0, 0), Err(crate::Error::ValueError(_))));
    }

    #[test]
    fn a_reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcId {
            pid: child.id(),
            pad: 0,
            start: stat(child.id()).map_or(0, |s| s.1),
        };
        child.wait().unwrap();
        assert!(!id.is_alive());
    }
}
