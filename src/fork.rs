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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once, Weak};

use parking_lot::Mutex;

use crate::core::Core;
use crate::header::ATTACH_OFF;

struct Entry {
    core: Weak<Core>,
    /// Handles alive in this process, per slot.
    held: HashMap<u32, u32>,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the three handlers are `extern "C"` functions with no arguments, as
        // pthread_atfork requires; they stay valid for the life of the process (static code).
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(after), Some(after));
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
        held: HashMap::new(),
    });
}

/// Forgets a store that is detaching.
pub(crate) fn unregister(core: &Core) {
    let mut reg = REGISTRY.lock();
    if let Some(i) = find(&mut reg, core) {
        reg.swap_remove(i);
    }
}

/// Counts a new handle on `slot`.
pub(crate) fn hold(core: &Core, slot: u32) {
    let mut reg = REGISTRY.lock();
    if let Some(i) = find(&mut reg, core) {
        *reg[i].held.entry(slot).or_insert(0) += 1;
    }
}

/// Uncounts a handle on `slot`.
pub(crate) fn unhold(core: &Core, slot: u32) {
    let mut reg = REGISTRY.lock();
    if let Some(i) = find(&mut reg, core) {
        if let Some(n) = reg[i].held.get_mut(&slot) {
            *n -= 1;
            if *n == 0 {
                reg[i].held.remove(&slot);
            }
        }
    }
}

extern "C" fn prepare() {
    // Locked here, unlocked in `after` (in both parent and child), so the child never
    // inherits a registry some other thread was in the middle of changing.
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
        if let Ok(a) = core.arena().atomic_u32(ATTACH_OFF) {
            a.fetch_add(1, Ordering::AcqRel);
        }
        let table = core.table();
        for (&slot, &n) in &e.held {
            if let Ok(rc) = table.refcount(slot) {
                // Relaxed: the parent's own references keep each object alive meanwhile.
                rc.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
    std::mem::forget(reg);
}

extern "C" fn after() {
    // SAFETY: `prepare` locked the registry in this thread and forgot the guard; the fork
    // copied that state to the child, where this thread is the only one. Unlocking once
    // balances the lock in both processes.
    unsafe { REGISTRY.force_unlock() };
}
