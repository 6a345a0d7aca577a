//! Shared helpers for the integration tests: unique segment names and child processes.
//!
//! A child is this same test binary re-run with `--exact child_main --ignored`, the role and its
//! arguments in environment variables. Each test file defines that `child_main` entry point and
//! dispatches on the role. Children report through their exit status and through lines on
//! stdout (`READY`, …), which the parent reads — never through sleeps.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A segment name unique to this process and call, short enough for every POSIX system.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag.chars().take(12).collect();
    format!("t{}-{tag}-{n}", std::process::id())
}

/// Removes a segment when dropped (tests that keep it, or fail midway, leave nothing behind).
pub struct Cleanup(pub String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = shmstore::Store::remove(&self.0);
    }
}

const ROLE: &str = "SHMSTORE_TEST_ROLE";
const ARGS: &str = "SHMSTORE_TEST_ARGS";

/// A child process that is killed if the test lets go of it early (a failed assertion), so no
/// test leaves processes behind.
pub struct ChildGuard(pub Child);

impl std::ops::Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}
impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}
impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts this test binary as a child playing `role` with `args`; its stdout is piped.
pub fn spawn(role: &str, args: &[&str]) -> ChildGuard {
    spawn_env(role, args, &[])
}

/// [`spawn`] with extra environment variables for the child (a failpoint's name, say).
pub fn spawn_env(role: &str, args: &[&str], env: &[(&str, &str)]) -> ChildGuard {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child_main",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(ARGS, args.join("\u{1f}"))
    .envs(env.iter().copied())
    .stdout(Stdio::piped());
    ChildGuard(cmd.spawn().expect("spawn child"))
}

/// Waits for a child and asserts it succeeded.
pub fn expect_success(mut child: ChildGuard, what: &str) {
    let status = child.wait().expect("wait");
    assert!(status.success(), "{what}: child failed with {status}");
}

/// Reads the child's stdout until a line equal to `marker`; false if it ended first.
pub fn wait_for_line(out: &mut BufReader<ChildStdout>, marker: &str) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.trim_end() == marker => return true,
            Ok(_) => {}
        }
    }
}

/// Reads lines until one starting with `prefix`; returns the rest of it.
pub fn read_value(out: &mut BufReader<ChildStdout>, prefix: &str) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {
                if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                    return Some(rest.to_owned());
                }
            }
        }
    }
}

/// In a child: the role and its arguments, if this process is a child.
pub fn child_role() -> Option<(String, Vec<String>)> {
    let role = std::env::var(ROLE).ok()?;
    let args = std::env::var(ARGS)
        .unwrap_or_default()
        .split('\u{1f}')
        .map(str::to_owned)
        .collect();
    Some((role, args))
}

/// In a child of role `worker`: the store its first argument names, opened, and the
/// arguments; `None` in the parent.
pub fn worker_store() -> Option<(shmstore::Store, Vec<String>)> {
    let (role, args) = child_role()?;
    assert_eq!(role, "worker");
    let store = shmstore::Store::open(&args[0]).expect("child: open");
    Some((store, args))
}

/// Prints a marker line for the parent and flushes it.
pub fn signal(marker: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A newline first: the test harness may have left "test child_main ... " unfinished.
    let _ = writeln!(out, "\n{marker}");
    let _ = out.flush();
}

/// A small deterministic generator (xorshift64), for reproducible kill points and choices.
pub fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}
