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
    // The child inherits these and must drop them all (as a child that exits normally would);
    // the Options let the child take them while the parent keeps its own.
    let mut store = Some(Store::create(&name, 1 << 20).unwrap());
    let st = |s: &Option<Store>| s.as_ref().unwrap().stats().unwrap();
    let base = st(&store);

    // 1. The parent drops first: the child's inherited proxy keeps the list alive.
    let mut l = Some(store.as_ref().unwrap().list([1, 2, 3]).unwrap());
    let (mut rx, mut tx) = pipe();
    let child = fork_child(|| {
        let mut b = [0u8; 1];
        if rx.read_exact(&mut b).is_err() {
            return false;
        }
        // The parent has dropped its proxy by now: ours alone keeps the list.
        let l = l.take().unwrap();
        let ok = l.len().ok() == Some(3) && l.append(4).is_ok() && l.len().ok() == Some(4);
        drop(l);
        drop(store.take());
        ok
    });
    let during = st(&store);
    assert_eq!(during.processes_attached, 2, "the child counts as attached");
    drop(l.take());
    tx.write_all(b"g").unwrap();
    assert!(wait(child), "child failed");
    let after = st(&store);
    assert_eq!(
        after.objects_live, base.objects_live,
        "freed when both dropped"
    );
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.processes_attached, 1, "the child detached");

    // 2. The child drops first: the parent's proxy still works, and its drop frees.
    let mut l = Some(
        store
            .as_ref()
            .unwrap()
            .list(vec![Value::from("a string that needs a block"); 5])
            .unwrap(),
    );
    let child = fork_child(|| {
        let l = l.take().unwrap();
        let ok = l.len().ok() == Some(5);
        drop(l);
        drop(store.take());
        ok
    });
    assert!(wait(child));
    let l = l.take().unwrap();
    assert_eq!(l.len().unwrap(), 5);
    assert_eq!(st(&store).objects_live, base.objects_live + 1);
    drop(l);
    let end = st(&store);
    assert_eq!(end.objects_live, base.objects_live);
    assert_eq!(end.bytes_in_use, base.bytes_in_use);
    assert_eq!(end.processes_attached, 1);
}
