//! What this process holds, so that a `fork()` child's inherited proxies count as its own.
//!
//! CPython's proxies incref their referents after a fork (`BaseProxy._after_fork`). Here every
//! live handle is counted in a process-wide registry, and a `pthread_atfork` prepare handler —
//! run in the parent just before the fork, with the registry locked so no thread is halfway
//! through changing it — adds one reference per held handle and one attach per attached store.
//! Parent and child then each own the references they drop, so counts stay exact. If `fork`
//! itself fails, those references leak (they are returned by `Store::reclaim`-style recovery).
//! `posix_spawn` (what `std::process::Command` uses) runs no atfork handlers, so spawning a
//! program takes no references.

use std::sync::{Arc, Once, Weak};

use parking_lot::Mutex;

use crate::core::Core;

struct Entry {
    core: Weak<Core>,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the three handlers are `extern "C"` functions with no arguments, as
        // pthread_atfork requires; they stay valid for the life of the process (static code).
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(after_parent), Some(after_child));
        }
    });
}

fn find(reg: &mut [Entry], core: &Core) -> Option<usize> {
    reg.iter().position(|e| std::ptr::eq(e.core.as_ptr(), core))
}

/// Records a newly attached store.
pub(crate) fn register(core: &Arc<Core>) {
    install();
    REGISTRY.lock().push(Entry {
        core: Arc::downgrade(core),
    });
}

/// Forgets a store that is detaching.
pub(crate) fn unregister(core: &Core) {
    let mut reg = REGISTRY.lock();
    if let Some(i) = find(&mut reg, core) {
        reg.swap_remove(i);
    }
}

extern "C" fn prepare() {
    // Locked here, unlocked in the after handlers (in both parent and child), so the child
    // never inherits a registry some other thread was in the middle of changing.
    let reg = REGISTRY.lock();
    for e in reg.iter() {
        // A store whose last strong reference is being dropped by another thread is skipped:
        // that thread is about to detach it, and the child has no such thread.
        if e.core.strong_count() == 0 {
            continue;
        }
        // SAFETY: the entry is still registered and we hold the registry lock. `Core::drop`
        // unregisters first (blocking on this lock) before any field is dropped, and the
        // `Weak` keeps the allocation, so the `Core` behind the pointer is whole for as long as
        // this lock is held. Only shared access follows.
        let core = unsafe { &*e.core.as_ptr() };
        core.prepare_fork();
    }
    std::mem::forget(reg);
}

fn after(in_child: bool) {
    // SAFETY: `prepare` locked the registry in this thread and forgot the guard; the fork
    // copied that state to the child, where this thread is the only one. The registry is
    // still locked, so every registered Core is whole (see `prepare`).
    let reg = unsafe { &*REGISTRY.data_ptr() };
    for e in reg.iter() {
        // SAFETY: as in `prepare` (a Core whose drop began meanwhile is blocked in
        // `unregister`, fields whole).
        let core = unsafe { &*e.core.as_ptr() };
        if core.after_fork(in_child) {
            // SAFETY: `Core::prepare_fork` locked this mutex in this thread and forgot the
            // guard (`after_fork` returned true), so this thread holds it.
            unsafe { core.holdings_mutex().force_unlock() };
        }
    }
    // SAFETY: `prepare` locked the registry in this thread and forgot the guard; unlocking
    // once balances it, in the parent and in the child alike.
    unsafe { REGISTRY.force_unlock() };
}

extern "C" fn after_parent() {
    after(false);
}

extern "C" fn after_child() {
    after(true);
}
