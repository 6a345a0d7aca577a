//! `check`: walks and validates everything in a store, reporting what is wrong without changing
//! anything — the allocator's block chain and free lists, the object table and its free-slot
//! list, every live object's body (read in full under its lock), the name directory and the
//! process table.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::alloc::Heap;
use crate::core::Core;
use crate::dispatch;
use crate::error::{Error, Result};
use crate::header::{NameEntry, SLOT_FREE_OFF};
use crate::procs;
use crate::table::{STATE_FREE, STATE_LIVE};
use crate::token::Token;

/// How long `check` waits for an object's lock before reporting it as held.
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// What [`crate::Store::check`] found.
///
/// # Examples
/// ```
/// # let name = format!("doc-checkreport-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let report = store.check()?;
/// assert!(report.is_ok());
/// assert_eq!((report.objects, report.busy), (0, 0));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every problem found, in words (empty when the store is sound).
    pub problems: Vec<String>,
    /// Objects live.
    pub objects: u64,
    /// Allocator blocks walked.
    pub blocks: u64,
    /// Objects whose lock was held by a live process for the whole wait (not read).
    pub busy: u64,
}

impl CheckReport {
    /// True when nothing is wrong.
    ///
    /// # Examples
    /// ```
    /// use shmstore::CheckReport;
    /// assert!(CheckReport::default().is_ok());
    /// let bad = CheckReport { problems: vec!["slot 3: bad refcount".into()], ..CheckReport::default() };
    /// assert!(!bad.is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn note(out: &mut CheckReport, r: Result<()>, what: impl FnOnce() -> String) {
    if let Err(e) = r {
        out.problems.push(format!("{}: {e}", what()));
    }
}

/// Walks the whole store.
///
/// # Errors
/// Only when the allocator's header itself is unusable; every other finding is in the report.
pub fn check(core: &Core) -> Result<CheckReport> {
    let mut out = CheckReport::default();
    let (in_use, alloc_report) = {
        let _g = core.lock_arena()?;
        let heap = Heap::open(core.arena(), core.header().alloc_off)?;
        let report = heap.check()?;
        let blocks = heap.blocks().unwrap_or_default();
        let in_use: HashSet<u64> = blocks.iter().filter(|b| b.2).map(|b| b.0).collect();
        (in_use, report)
    };
    out.blocks = alloc_report.blocks;
    out.problems.extend(
        alloc_report
            .problems
            .into_iter()
            .map(|p| format!("allocator: {p}")),
    );

    // The object table.
    let table = core.table();
    let used = table.used_slots()?;
    let mut live = Vec::new();
    let mut free = 0u64;
    for slot in 0..used {
        let (ty, state) = table.type_and_state(slot)?;
        match state {
            STATE_FREE => free += 1,
            STATE_LIVE => {
                let generation = table.generation(slot)?.load(Ordering::Acquire);
                let rc = table.refcount(slot)?.load(Ordering::Acquire);
                let body = table.body(slot)?.load(Ordering::Acquire);
                if dispatch::type_desc(ty).is_err() {
                    out.problems
                        .push(format!("slot {slot}: unknown type id {ty}"));
                    continue;
                }
                if rc == 0 {
                    out.problems
                        .push(format!("slot {slot}: live object with refcount 0"));
                }
                if !in_use.contains(&body) {
                    out.problems.push(format!(
                        "slot {slot}: body {body:#x} is not an allocated block"
                    ));
                    continue;
                }
                live.push(Token {
                    store: core.store_id(),
                    type_id: ty,
                    slot,
                    generation,
                });
            }
            other => out.problems.push(format!("slot {slot}: bad state {other}")),
        }
    }
    out.objects = live.len() as u64;

    // The free-slot list: every link a free slot, no cycle, all free slots on it.
    let mut on_list = 0u64;
    let mut link = core
        .arena()
        .atomic_u32(SLOT_FREE_OFF)?
        .load(Ordering::Relaxed);
    while link != 0 {
        if on_list > u64::from(used) {
            out.problems.push("free-slot list has a cycle".into());
            break;
        }
        let slot = link - 1;
        match table.type_and_state(slot) {
            Ok((_, STATE_FREE)) => {}
            Ok(_) => {
                out.problems.push(format!(
                    "free-slot list names slot {slot}, which is not free"
                ));
                break;
            }
            Err(e) => {
                out.problems.push(format!("free-slot list: {e}"));
                break;
            }
        }
        on_list += 1;
        link = match table.body(slot) {
            Ok(b) => b.load(Ordering::Relaxed) as u32,
            Err(_) => break,
        };
    }
    if on_list != free {
        out.problems.push(format!(
            "{free} free slots but {on_list} on the free-slot list (the others leak until a rebuild)"
        ));
    }

    // Every live object, read in full under its lock.
    for t in &live {
        match dispatch::validate(core, t, LOCK_WAIT) {
            Ok(()) => {}
            Err(Error::Timeout) => out.busy += 1,
            Err(e) => out.problems.push(format!("object in slot {}: {e}", t.slot)),
        }
    }

    // The name directory.
    for i in 0..core.header().names_cap {
        let r = (|| {
            let off = core.name_entry_off(i)?;
            let e: NameEntry = core.arena().read(crate::arena::Offset::new(off))?;
            if e.used == 0 {
                return Ok(());
            }
            if e.used != 1 || e.name_len as usize > e.name.len() {
                return Err(Error::corrupt("bad name entry", off));
            }
            table
                .check_live(e.slot, e.generation)
                .map(|_| ())
                .map_err(|_| Error::corrupt("name bound to a dead object", off))
        })();
        note(&mut out, r, || format!("name entry {i}"));
    }

    // The process table.
    match procs::list(core) {
        Ok(ps) => {
            for p in ps.iter().filter(|p| !p.alive) {
                out.problems.push(format!(
                    "process {} is dead but still attached, holding {} references (run reclaim)",
                    p.pid, p.references
                ));
            }
        }
        Err(e) => out.problems.push(format!("process table: {e}")),
    }
    Ok(out)
}

/// What [`crate::Store::repair`] did.
///
/// # Examples
/// ```
/// # let name = format!("doc-repairreport-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let r = store.repair()?;
/// assert_eq!(r, shmstore::RepairReport::default()); // nothing to do on a sound store
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Allocated blocks no object, process entry or table reached, now free.
    pub freed_blocks: u64,
    /// Their bytes.
    pub freed_bytes: u64,
    /// Free slots that were missing from the free-slot list, now on it again.
    pub slots_relinked: u64,
    /// Live objects no reference named (their last holder was killed before freeing them), now
    /// freed.
    pub objects_freed: u64,
}

/// Frees the live objects no reference names (a freer killed before freeing them); then mark
/// and sweep: with every object's lock and then the arena lock held (so nothing is
/// half-published), marks every block reachable from the object table, the process table and
/// the user-type table, and rebuilds the allocator with the rest free; relinks free slots that a
/// crash left off the free-slot list.
///
/// Marking is conservative: every 8-aligned word of a reachable block that falls inside an
/// allocated block marks it. Plain data that happens to look like an offset only keeps a block
/// alive (a leak, never a loss); every offset the library stores is a plain 8-aligned word,
/// except the process table's holdings word, which is decoded explicitly.
///
/// # Errors
/// `Timeout` when an object's lock stays held by a live process (the store is busy; nothing was
/// changed), `Corrupt` when the block chain itself is broken.
pub fn repair(core: &Core) -> Result<RepairReport> {
    let table = core.table();
    let used = table.used_slots()?;
    // 0. Objects whose refcount reached 0 and whose freer was killed before giving the slot
    // back (a handle drop's marker names a process whose reclaimer does that: left to it). A
    // freer that is only slow finds the slot given back, and stops: the slot is the commit
    // point of freeing.
    let mut objects_freed = 0;
    for slot in 0..used {
        let (ty, state) = table.type_and_state(slot)?;
        let rc = table.refcount(slot)?;
        if state == STATE_LIVE
            && rc.load(Ordering::Acquire) == 0
            && rc.marker(Ordering::Acquire) == 0
        {
            let t = Token {
                store: core.store_id(),
                type_id: ty,
                slot,
                generation: table.generation(slot)?.load(Ordering::Acquire),
            };
            if dispatch::type_desc(ty).is_ok() {
                dispatch::free_unreferenced(core, &t);
                objects_freed += 1;
            }
        }
    }
    // 1. Every live object's lock, in slot order (the lock order), repairing dead holders' state.
    let mut guards = Vec::new();
    let mut roots = Vec::new();
    for slot in 0..used {
        let (ty, state) = table.type_and_state(slot)?;
        if state != STATE_LIVE {
            continue;
        }
        let t = Token {
            store: core.store_id(),
            type_id: ty,
            slot,
            generation: table.generation(slot)?.load(Ordering::Acquire),
        };
        let (g, body) = dispatch::lock_object_timeout(core, &t, Some(LOCK_WAIT))?;
        guards.push(g);
        roots.push(body);
    }
    // 2. The arena lock, last: it is a leaf.
    let _arena = core.lock_arena()?;
    let heap = Heap::open(core.arena(), core.header().alloc_off)?;
    let blocks: Vec<(u64, u64)> = heap
        .blocks()?
        .into_iter()
        .filter(|b| b.2)
        .map(|b| (b.0, b.1))
        .collect();
    roots.extend(procs::holdings_blocks(core)?);
    let user_types = core.arena().load_u64(crate::header::USER_TYPES_OFF)?;
    if user_types != 0 {
        roots.push(user_types);
    }
    // 3. Mark.
    let find = |w: u64| -> Option<usize> {
        // The block whose header or payload contains `w` (blocks are in address order).
        let w16 = w.saturating_add(16);
        let i = blocks.partition_point(|&(p, _)| p <= w16).checked_sub(1)?;
        let &(p, len) = blocks.get(i)?;
        (w16 >= p && w < p + len).then_some(i)
    };
    let mut marked = vec![false; blocks.len()];
    let mut work: Vec<usize> = roots.iter().filter_map(|&r| find(r)).collect();
    while let Some(i) = work.pop() {
        match marked.get_mut(i) {
            Some(m) if !*m => *m = true,
            _ => continue,
        }
        let Some(&(p, len)) = blocks.get(i) else {
            continue;
        };
        for w in core.arena().slice::<u64>(p, len / 8)? {
            if let Some(j) = find(*w) {
                if marked.get(j) == Some(&false) {
                    work.push(j);
                }
            }
        }
    }
    // 4. Sweep.
    let live: HashSet<u64> = blocks
        .iter()
        .zip(&marked)
        .filter(|(_, m)| **m)
        .map(|(b, _)| b.0)
        .collect();
    let rebuilt = heap.rebuild(&mut |off| live.contains(&off))?;
    // 5. The free-slot list: every free slot on it, exactly once.
    let mut report = RepairReport {
        freed_blocks: rebuilt.freed_blocks,
        freed_bytes: rebuilt.freed_bytes,
        slots_relinked: 0,
        objects_freed,
    };
    let mut on_list = HashSet::new();
    let head = core.arena().atomic_u32(SLOT_FREE_OFF)?;
    let mut link = head.load(Ordering::Relaxed);
    while link != 0 && on_list.len() <= used as usize {
        let slot = link - 1;
        if !matches!(table.type_and_state(slot), Ok((_, STATE_FREE))) || !on_list.insert(slot) {
            break;
        }
        link = table.body(slot)?.load(Ordering::Relaxed) as u32;
    }
    let free: Vec<u32> = (0..used)
        .filter(|&s| matches!(table.type_and_state(s), Ok((_, STATE_FREE))))
        .collect();
    if free.len() != on_list.len() || link != 0 {
        report.slots_relinked = free.len().saturating_sub(on_list.len()) as u64;
        let mut next = 0u64;
        for &s in free.iter().rev() {
            table.body(s)?.store(next, Ordering::Relaxed);
            next = u64::from(s) + 1;
        }
        head.store(next as u32, Ordering::Release);
    }
    drop(guards);
    Ok(report)
}
