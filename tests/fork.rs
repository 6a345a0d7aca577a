//! Proxies inherited through `fork()` count as the child's references (as CPython's proxies
//! incref after a fork): parent and child can each drop theirs, in either order, and the
//! referent is freed exactly when both are gone.
//!
//! One test in this binary, so the fork happens with as few threads around as possible.

mod common;

use common::{unique, Cleanup};
use shmstore::{Store, Value};

fn fork_child(body: impl FnOnce() -> bool) -> libc::pid_t {
    // SAFETY: fork has no preconditions; the child runs `body` (library calls only) and leaves
    // with `_exit`, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(false);
        // SAFETY: `_exit` ends the child at once, without running the parent's atexit hooks.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

fn wait(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

#[test]
fn fork_with_live_proxies_keeps_refcounts_exact() {
    use std::io::{Read, Write};
    let name = unique("fork");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let base = store.stats().unwrap();

    // 1. The parent drops first: the child's inherited proxy keeps the list alive.
    let l = store.list([1, 2, 3]).unwrap();
    let (mut rx, mut tx) = pipe();
    let lc = l.clone();
    // The closure runs only in the child; in the parent it is dropped unrun, closing `rx` and
    // the clone (which shares `l`'s reference, so no count changes).
    let child = fork_child(move || {
        let l = lc;
        let mut b = [0u8; 1];
        if rx.read_exact(&mut b).is_err() {
            return false;
        }
        // The parent has dropped its proxy by now.
        let ok = l.len().ok() == Some(3) && l.append(4).is_ok();
        drop(l);
        ok
    });
    let during = store.stats().unwrap();
    assert_eq!(during.processes_attached, 2, "the child counts as attached");
    drop(l);
    tx.write_all(b"g").unwrap();
    assert!(wait(child), "child failed");
    let after = store.stats().unwrap();
    assert_eq!(
        after.objects_live, base.objects_live,
        "freed when both dropped"
    );
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.processes_attached, 1);

    // 2. The child drops first: the parent's proxy still works, and its drop frees.
    let l = store.list(vec![Value::from("x"); 5]).unwrap();
    let l2 = l.clone();
    let child = fork_child(move || {
        let ok = l2.len().ok() == Some(5);
        drop(l2);
        ok
    });
    assert!(wait(child));
    assert_eq!(l.len().unwrap(), 5);
    assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 1);
    drop(l);
    assert_eq!(store.stats().unwrap().objects_live, base.objects_live);
}
