//! Process and thread identity that survives pid reuse, and liveness checks.
//!
//! A process is named by its pid and its start time (field 22 of `/proc/<pid>/stat`, clock ticks
//! since boot): a pid reused by a later process has another start time, so a record left by a
//! dead process is never mistaken for a live one. Zombies (killed, not yet reaped) count as
//! dead: they will never run again.

use std::sync::atomic::{AtomicU64, Ordering};

use bytemuck::{Pod, Zeroable};

/// A process, as recorded in the arena.
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

impl ProcId {
    /// This process.
    pub fn current() -> ProcId {
        let pid = std::process::id();
        if CACHED_PID.load(Ordering::Acquire) != u64::from(pid) {
            let start = stat(pid).map_or(0, |(_, s)| s);
            CACHED_START.store(start, Ordering::Relaxed);
            CACHED_PID.store(u64::from(pid), Ordering::Release);
        }
        ProcId {
            pid,
            pad: 0,
            start: CACHED_START.load(Ordering::Relaxed),
        }
    }

    /// True for the "nobody" value.
    pub fn is_none(&self) -> bool {
        self.pid == 0
    }

    /// True while the process runs: it exists, is not a zombie, and started when recorded.
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
pub fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    (unsafe { libc::gettid() }) as u32
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
