//! The process table: who is attached, and which references each attachment holds, so that the
//! references of a process that dies are given back.
//!
//! ```text
//! entry (64 bytes)                                  holdings block (HOLDING bytes per row)
//! 0   proc    ProcId (pid, start time)              slot + 1   u32   (0: empty row)
//! 16  state   u32  FREE | LIVE | FORKING | RECLAIM   generation u32
//! 20  intent generation u32                         count      u32   references held
//! 24  table   u64  holdings block | log2(rows) << 56  reserved   u32
//! 32  reclaimer ProcId (who is reclaiming a dead entry)
//! 48  rows    u64  rows with a key | rows with a count << 32
//! 56  intent  u64  slot + 1 | row count before << 32 | TAKE (bit 62) | LANDED (bit 63)
//! ```
//!
//! Protocol. An entry is taken (FREE → LIVE) and given back (→ FREE) under the arena lock. Its
//! holdings are written only by the attachment that owns it (its threads serialize on a
//! process-local mutex), and read by others only once the owner is dead. A reference a handle
//! takes or drops is settled exactly when its process dies at any step; every other change
//! makes a crash leak, never free twice.
//!
//! Handles' references. The entry has one *intent* (slot, generation, the slot's row count
//! before, TAKE or drop, LANDED), written before the refcount changes and cleared after the
//! row has changed. The refcount changes in one compare-and-swap that also writes the entry
//! into the slot's refcount word as its *marker* ([`RefCount`](crate::table::RefCount));
//! whoever replaces or clears another entry's marker first sets LANDED in that entry's intent
//! (`drop_landed`), and the owner clears its own marker before its intent. So the reclaimer
//! of a dead entry with an intent knows whether the refcount changed (its marker, or LANDED)
//! and whether the row did (its count against the one recorded), and evens them out:
//! - taking (`Core::take_handle` for `lookup` and `attach`, `Core::make` for every factory,
//!   whose creation is recorded before the slot is published, with the creator as the new
//!   word's marker): a landed increment not yet in the row is written to the row, and so given
//!   back with the others (an object the dead process had just made is freed);
//! - dropping (`drop_reference`): a landed decrement the row still counts is taken off the
//!   row, and an object the dead process had taken the last reference off is freed (freeing
//!   commits when the slot is given back, before the body is freed: see `dispatch::destroy`);
//! - the fork handler takes the child's references one by one, each recorded in the child's
//!   entry in the same way;
//! - a reclaimer drops a dead entry's references one by one in the same way, recorded in the
//!   dead entry (which it has claimed): a reclaimer killed on the way leaves it exact for the
//!   next.
//!
//! What can still leak on a kill: a queue item's references between the queue and the row of
//! the process that took it, and the blocks of a body whose freeing was under way (the mark and
//! sweep, `Store::repair`, gives those back).
//!
//! The rest:
//! - a new row: the key is written with count 0, then the count; a row whose count falls to 0
//!   keeps its key (and is reused for the same slot), so rows never move: growth and shrinking
//!   rebuild the table without them;
//! - growth: a new block is filled, then published with one store of `table` (offset and size in
//!   one word), then the old block is freed;
//! - reclaiming a dead entry: the reclaimer marks it RECLAIM with its own identity (a second
//!   reclaimer skips it unless that reclaimer is dead too), settles its operation in progress,
//!   and drops its references as above; a crash leaves the rest for the next reclaimer.
//!
//! Fork: the prepare handler copies the parent's entry into a FORKING entry (taking one reference
//! per held reference), which the child claims by writing its own identity and LIVE. A failed
//! fork leaves the FORKING entry, owned by the parent's identity, to be reclaimed when the parent
//! is gone.
//!
//! # Examples
//! ```
//! # let name = format!("doc-procs-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::procs::LIVE;
//! let _l = store.list([1])?;
//! let other = shmstore::Store::open(&name)?; // a second attachment, as another process's
//! let procs = store.processes()?;
//! assert_eq!(procs.len(), 2);
//! assert!(procs.iter().all(|p| p.state == LIVE && p.alive));
//! assert_eq!(procs.iter().map(|p| p.references).sum::<u64>(), 1); // the list proxy's
//! drop(other);
//! assert_eq!(store.processes()?.len(), 1);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::sync::atomic::{AtomicU32, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::arena::Offset;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::process::ProcId;
use crate::token::Token;

/// Entry state: unused.
pub const FREE: u32 = 0;
/// Entry state: an attached process.
pub const LIVE: u32 = 1;
/// Entry state: made for a child by the fork handler, not yet claimed.
pub const FORKING: u32 = 2;
/// Entry state: the owner died and a reclaimer is giving its references back.
pub const RECLAIM: u32 = 3;

/// One process-table entry.
///
/// # Examples
/// ```
/// use shmstore::procs::{ProcEntry, FREE};
/// let e = ProcEntry::default();
/// assert_eq!(e.state, FREE);
/// assert_eq!(std::mem::size_of::<ProcEntry>(), 64);
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ProcEntry {
    /// The attached process.
    pub proc: ProcId,
    /// FREE, LIVE, FORKING or RECLAIM.
    pub state: u32,
    /// The generation of the object whose handle take or drop is in progress (the intent).
    pub intent_generation: u32,
    /// Holdings block offset | log2(rows) << 56; 0 when there is none.
    pub table: u64,
    /// Who is reclaiming the entry (state RECLAIM).
    pub reclaimer: ProcId,
    /// Holdings rows with a key (low half) and with a count (high half); the intent: the handle
    /// take or drop in progress, slot + 1 | the row's count before << 32 | TAKE (bit 62) |
    /// LANDED (bit 63).
    pub reserved: [u64; 2],
}
const _: () = assert!(size_of::<ProcEntry>() == 64);

const HOLDING: u64 = 16;
const STATE_AT: u64 = 16;
const TABLE_AT: u64 = 24;
/// `reserved[0]`: rows with a key | rows with a count << 32 (for sizing; reclaim does not rely
/// on it).
const USED_AT: u64 = 48;
const OFF_MASK: u64 = (1 << 56) - 1;
const MIN_ROWS_LOG2: u64 = 4;
const MAX_ROWS_LOG2: u64 = 30;

/// What a process-table entry says, for tools and stats.
///
/// # Examples
/// ```
/// # let name = format!("doc-procinfo-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let me = &store.processes()?[0];
/// assert_eq!((me.pid, me.state, me.alive), (std::process::id(), shmstore::procs::LIVE, true));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// Entry index.
    pub index: u32,
    /// Process id.
    pub pid: u32,
    /// LIVE, FORKING or RECLAIM.
    pub state: u32,
    /// Whether the process runs.
    pub alive: bool,
    /// References it holds.
    pub references: u64,
}

/// What a reclaim gave back.
///
/// # Examples
/// ```
/// # let name = format!("doc-reclaimed-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let r: shmstore::Reclaimed = store.reclaim()?;
/// assert_eq!(r, shmstore::Reclaimed::default()); // no dead process
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Dead attachments removed.
    pub processes: u64,
    /// References dropped.
    pub references: u64,
}

fn entry_off(core: &Core, i: u32) -> Result<u64> {
    let h = core.header();
    if u64::from(i) >= h.procs_cap {
        return Err(Error::corrupt("process entry out of range", u64::from(i)));
    }
    Ok(h.procs_off + u64::from(i) * size_of::<ProcEntry>() as u64)
}

fn state(core: &Core, i: u32) -> Result<&AtomicU32> {
    core.arena().atomic_u32(entry_off(core, i)? + STATE_AT)
}

fn read(core: &Core, i: u32) -> Result<ProcEntry> {
    core.arena().read(Offset::new(entry_off(core, i)?))
}

/// The holdings block an entry's `table` word names: (offset, rows), checked against the arena.
fn table_of(core: &Core, table: u64, i: u32) -> Result<Option<(u64, u64)>> {
    let Some((off, rows)) = decode_table(table, i)? else {
        return Ok(None);
    };
    core.arena().check(off, rows * HOLDING, 16)?;
    Ok(Some((off, rows)))
}

/// An entry's `table` word: (offset, rows), its size checked (not its place in the arena).
fn decode_table(table: u64, i: u32) -> Result<Option<(u64, u64)>> {
    if table == 0 {
        return Ok(None);
    }
    let log2 = table >> 56;
    let off = table & OFF_MASK;
    if !(MIN_ROWS_LOG2..=MAX_ROWS_LOG2).contains(&log2) {
        return Err(Error::corrupt("holdings table size", u64::from(i)));
    }
    Ok(Some((off, 1u64 << log2)))
}

/// Takes a free entry for `proc` in state `st`. The caller holds the arena lock.
fn take_entry(core: &Core, proc: ProcId, st: u32) -> Result<u32> {
    let cap = core.header().procs_cap as u32;
    for i in 0..cap {
        if state(core, i)?.load(Ordering::Acquire) == FREE {
            let off = entry_off(core, i)?;
            core.arena().write(
                Offset::new(off),
                ProcEntry {
                    proc,
                    state: FREE,
                    ..ProcEntry::default()
                },
            )?;
            state(core, i)?.store(st, Ordering::Release);
            return Ok(i);
        }
    }
    Err(Error::TableFull { capacity: cap })
}

/// Registers this process's new attachment, with an empty holdings table of the smallest size
/// (made now, so that memory figures taken after attaching do not move when proxies come and
/// go); returns its entry. The caller holds the arena lock.
pub(crate) fn register(core: &Core) -> Result<u32> {
    let heap = crate::alloc::Heap::open(core.arena(), core.header().alloc_off)?;
    let table = heap.alloc_zeroed((1 << MIN_ROWS_LOG2) * HOLDING)?;
    match take_entry(core, ProcId::current(), LIVE) {
        Ok(i) => {
            core.arena()
                .atomic_u64(entry_off(core, i)? + TABLE_AT)?
                .store(table | (MIN_ROWS_LOG2 << 56), Ordering::Release);
            Ok(i)
        }
        Err(e) => {
            heap.free(table)?;
            Err(e)
        }
    }
}

/// Frees the entry of a detaching attachment (whose holdings are all zero by now, or are being
/// dropped with the segment). The caller holds the arena lock.
pub(crate) fn unregister(core: &Core, i: u32) -> Result<()> {
    let table = table_of(core, table_word(core, i)?, i)?;
    state(core, i)?.store(FREE, Ordering::Release);
    if let Some((off, _)) = table {
        let heap = crate::alloc::Heap::open(core.arena(), core.header().alloc_off)?;
        heap.free(off)?;
    }
    Ok(())
}

/// One holdings row: slot + 1 (0: empty), generation, count, reserved.
type Row = [AtomicU32; 4];
const KEY: usize = 0;
const GEN: usize = 1;
const COUNT: usize = 2;
const _: () = assert!(size_of::<Row>() as u64 == HOLDING);

/// An entry's holdings table, checked against the arena once.
struct Rows<'a> {
    rows: &'a [Row],
}

impl<'a> Rows<'a> {
    /// The table `table` (an entry's `table` word) describes, if any.
    fn of(core: &'a Core, table: u64, i: u32) -> Result<Option<Rows<'a>>> {
        let Some((off, n)) = decode_table(table, i)? else {
            return Ok(None);
        };
        // `n` is at most 2^30 (`decode_table`); the slice is checked against the arena (bounds
        // and 16-byte alignment: `Row` is 16 bytes of `AtomicU32`, aligned to 4 only).
        if off % 16 != 0 {
            return Err(Error::corrupt("holdings table alignment", u64::from(i)));
        }
        Ok(Some(Rows {
            rows: core.arena().words_slice::<Row>(off, n as u32)?,
        }))
    }

    /// The row of `slot` (`true`), or the empty row where it would go (`false`); `None` when
    /// every row has another key.
    fn find(&self, slot: u32) -> Option<(&'a Row, bool)> {
        let mask = self.rows.len().wrapping_sub(1);
        let h = (u64::from(slot).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
        for k in 0..self.rows.len() {
            let r = self.rows.get(h.wrapping_add(k) & mask)?;
            let key = r[KEY].load(Ordering::Relaxed);
            if key == slot.wrapping_add(1) {
                return Some((r, true));
            }
            if key == 0 {
                return Some((r, false));
            }
        }
        None
    }
}

/// Entry `i`'s `table` word.
fn table_word(core: &Core, i: u32) -> Result<u64> {
    Ok(core
        .arena()
        .atomic_u64(entry_off(core, i)? + TABLE_AT)?
        .load(Ordering::Acquire))
}

/// Records one more reference to `token` held by entry `i`. The caller has incremented the
/// refcount already and holds this attachment's holdings mutex.
pub(crate) fn hold(core: &Core, i: u32, token: &Token) -> Result<()> {
    let a = core.arena();
    let table = table_word(core, i)?;
    let Some(rows) = Rows::of(core, table, i)? else {
        resize(core, i, table, MIN_ROWS_LOG2)?;
        return hold(core, i, token);
    };
    let eo = entry_off(core, i)?;
    let (used, live) = counts(a.load_u64(eo + USED_AT)?);
    let n_rows = rows.rows.len() as u64;
    match rows.find(token.slot) {
        Some((r, true)) => {
            let n = r[COUNT].load(Ordering::Relaxed);
            if n == 0 {
                // A row left by an earlier reference to this slot: generation first, then the
                // count.
                r[GEN].store(token.generation, Ordering::Relaxed);
                r[COUNT].store(1, Ordering::Release);
                return a.store_u64(eo + USED_AT, pack(used, live + 1));
            }
            r[COUNT].store(n.saturating_add(1), Ordering::Release);
            Ok(())
        }
        // Keep the table at most half full of keys (rows with a count and rows left at 0).
        Some((r, false)) if (used + 1) * 2 <= n_rows => {
            // Key with count 0 first, then the count: a crash in between holds nothing extra.
            r[COUNT].store(0, Ordering::Relaxed);
            r[GEN].store(token.generation, Ordering::Relaxed);
            r[KEY].store(token.slot + 1, Ordering::Release);
            r[COUNT].store(1, Ordering::Release);
            a.store_u64(eo + USED_AT, pack(used + 1, live + 1))
        }
        _ => {
            resize(core, i, table, fitting_log2(live + 1))?;
            hold(core, i, token)
        }
    }
}

/// The `USED_AT` word: rows with a key (low half), rows with a count (high half).
fn counts(w: u64) -> (u64, u64) {
    (w & u64::from(u32::MAX), w >> 32)
}

fn pack(used: u64, live: u64) -> u64 {
    used.min(u64::from(u32::MAX)) | (live.min(u64::from(u32::MAX)) << 32)
}

/// The table size for `live` rows with a count: at most a quarter full.
fn fitting_log2(live: u64) -> u64 {
    (live.max(1) * 4)
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_ROWS_LOG2 as u32) as u64
}

/// Rebuilds the holdings table of entry `i` (whose `table` word is `table`) with 2^`log2`
/// rows, keeping rows whose count is not 0.
fn resize(core: &Core, i: u32, table: u64, log2: u64) -> Result<()> {
    let old = table_of(core, table, i)?;
    if log2 > MAX_ROWS_LOG2 {
        return Err(Error::OutOfMemory {
            requested: usize::MAX,
            available: 0,
        });
    }
    let off = core.with_heap(|h| h.alloc_zeroed((1u64 << log2) * HOLDING))?;
    let new_table = off | (log2 << 56);
    let mut used = 0;
    if let (Some(from), Some(to)) = (Rows::of(core, table, i)?, Rows::of(core, new_table, i)?) {
        for r in from.rows {
            let key = r[KEY].load(Ordering::Relaxed);
            let count = r[COUNT].load(Ordering::Relaxed);
            if key == 0 || count == 0 {
                continue;
            }
            let Some((nr, _)) = to.find(key - 1) else {
                break;
            };
            nr[GEN].store(r[GEN].load(Ordering::Relaxed), Ordering::Relaxed);
            nr[COUNT].store(count, Ordering::Relaxed);
            nr[KEY].store(key, Ordering::Relaxed);
            used += 1;
        }
    }
    // Publish offset and size with one store, then free the old block.
    let eo = entry_off(core, i)?;
    let a = core.arena();
    a.atomic_u64(eo + TABLE_AT)?
        .store(new_table, Ordering::Release);
    a.store_u64(eo + USED_AT, pack(used, used))?;
    if let Some((old_off, _)) = old {
        core.free(old_off)?;
    }
    Ok(())
}

/// The count in entry `i`'s row for `slot` (0 when there is none), and the row.
fn row_count(core: &Core, i: u32, slot: u32) -> Result<(u32, Option<&Row>)> {
    let Some(rows) = Rows::of(core, table_word(core, i)?, i)? else {
        return Ok((0, None));
    };
    match rows.find(slot) {
        Some((r, true)) => Ok((r[COUNT].load(Ordering::Acquire), Some(r))),
        _ => Ok((0, None)),
    }
}

/// The intent word: slot + 1 | count of the slot's row before << 32 | TAKE | LANDED.
const INTENT_AT: u64 = 56;
/// The generation of the intent's object (the entry's `intent_generation`).
const INTENT_GEN_AT: u64 = 20;
const INTENT_COUNT_MAX: u64 = (1 << 30) - 1;
/// The intent is a reference being taken (created, looked up, attached), not dropped.
const TAKE: u64 = 1 << 62;
const LANDED: u64 = 1 << 63;

/// Writes entry `i`'s intent: a reference to (`slot`, `generation`) being taken (`take`) or
/// dropped, whose row counts `before` now. The generation first, then the word (Release). The
/// caller holds this attachment's holdings mutex.
fn intend(core: &Core, i: u32, slot: u32, generation: u32, before: u32, take: bool) -> Result<()> {
    let a = core.arena();
    let eo = entry_off(core, i)?;
    a.atomic_u32(eo + INTENT_GEN_AT)?
        .store(generation, Ordering::Relaxed);
    let kind = if take { TAKE } else { 0 };
    a.atomic_u64(eo + INTENT_AT)?.store(
        u64::from(slot + 1) | (u64::from(before) << 32) | kind,
        Ordering::Release,
    );
    Ok(())
}

fn clear_intent(core: &Core, i: u32) -> Result<()> {
    core.arena()
        .atomic_u64(entry_off(core, i)? + INTENT_AT)?
        .store(0, Ordering::Release);
    Ok(())
}

/// Before a reference to (`slot`, `generation`) is taken for entry `i` with a marked increment:
/// records the intent, with the slot's row count now. `false` when the count is too large to
/// record (the take then goes unrecorded until its row is written, as before layout 5). The
/// caller holds this attachment's holdings mutex.
pub(crate) fn intend_take(core: &Core, i: u32, slot: u32, generation: u32) -> Result<bool> {
    let (before, _) = row_count(core, i, slot)?;
    if u64::from(before) >= INTENT_COUNT_MAX {
        return Ok(false);
    }
    intend(core, i, slot, generation, before, true)?;
    Ok(true)
}

/// After a marked increment for entry `i` (or a creation marked with it): records the
/// reference in the row, then clears the slot's marker and the intent. The caller holds this
/// attachment's holdings mutex.
pub(crate) fn finish_take(core: &Core, i: u32, token: &Token) -> Result<()> {
    let held = hold(core, i, token);
    failpoint!("handle.take.after_row");
    if let Ok(rc) = core.table().refcount(token.slot) {
        rc.clear_marker(i);
    }
    clear_intent(core, i)?;
    held
}

/// Records, under the arena lock inside `Table::take_marked`, the creation of (`slot`,
/// `generation`) for entry `i` (its row for a slot that was free counts 0).
pub(crate) fn intend_create(core: &Core, i: u32, slot: u32, generation: u32) -> Result<()> {
    intend(core, i, slot, generation, 0, true)
}

/// Clears entry `i`'s intent when the operation it records did not happen (a failed take or
/// creation).
pub(crate) fn abandon_intent(core: &Core, i: u32) -> Result<()> {
    clear_intent(core, i)
}

/// Gives up a take whose marked increment must be undone (the slot was reused): the marker
/// first, then the intent — as everywhere, so that no marker outlives its intent (a crash in
/// between leaks the increment on the slot's new object, never drops it twice).
pub(crate) fn abandon_take(core: &Core, i: u32, slot: u32) -> Result<()> {
    core.table().refcount(slot)?.clear_marker(i);
    clear_intent(core, i)
}

/// Tells entry `e`, whose marker a decrement of `slot`'s refcount is replacing (or a last
/// decrement is clearing), that its drop of `slot` took effect, unless its intent is about
/// another slot by now. Any process may call it.
pub(crate) fn drop_landed(core: &Core, e: u32, slot: u32) {
    let Ok(eo) = entry_off(core, e) else { return };
    let Ok(w) = core.arena().atomic_u64(eo + INTENT_AT) else {
        return;
    };
    let x = w.load(Ordering::Acquire);
    if x as u32 == slot.wrapping_add(1) && x & LANDED == 0 {
        let _ = w.compare_exchange(x, x | LANDED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Drops one reference to `token` that entry `i` holds: its row's count and the object's
/// refcount, and frees the object when it was the last reference; `false` (nothing done) when
/// the row does not count it. The caller holds
/// this attachment's holdings mutex.
///
/// Dropping a handle. A process killed at any step leaves what its reclaimer needs to drop the
/// reference exactly once:
/// 1. the intent — slot, generation and the row's count before — is written to the entry;
/// 2. the refcount is decremented with the entry as the word's marker
///    ([`RefCount::decrement_marked`](crate::table::RefCount::decrement_marked));
/// 3. the row's count is decremented (a row at 0 keeps its key: rows never move);
/// 4. on the last reference, the object is freed (its slot given back first);
/// 5. the marker is cleared, then the intent.
///
/// The reclaimer of a dead entry with an intent whose row still has the count before knows the
/// decrement landed when the slot's marker still names the entry, or the intent was marked
/// LANDED by whoever replaced or cleared the marker (`drop_landed`) — every change of a
/// marker other than its owner's own does that first. Then it releases one reference fewer than
/// the row says; and when the count is 0 with the marker still the entry's, the dead process was
/// to free the object, and the reclaimer does.
pub(crate) fn drop_reference(core: &Core, i: u32, token: &Token) -> Result<bool> {
    let a = core.arena();
    let eo = entry_off(core, i)?;
    let rc = core.table().refcount(token.slot)?;
    let (before, row) = row_count(core, i, token.slot)?;
    let Some(row) = row.filter(|_| before != 0 && u64::from(before) <= INTENT_COUNT_MAX) else {
        // Not recorded (a row that could not be written); the caller drops it unrecorded.
        return Ok(false);
    };
    let intent = a.atomic_u64(eo + INTENT_AT)?;
    intend(core, i, token.slot, token.generation, before, false)?;
    failpoint!("handle.drop.after_intent");
    let last = match rc.decrement_marked(i, |e| drop_landed(core, e, token.slot)) {
        Ok(old) => old == 1,
        Err(_) => {
            intent.store(0, Ordering::Release);
            return Err(Error::corrupt("refcount underflow", u64::from(token.slot)));
        }
    };
    failpoint!("handle.drop.after_decrement");
    row[COUNT].store(before - 1, Ordering::Release);
    failpoint!("handle.drop.after_row");
    if last {
        // Acquire: every other holder's writes happen before we free.
        std::sync::atomic::fence(Ordering::Acquire);
        // With the marker still ours: killed before the slot is given back, we leave the
        // reclaimer an object to free; after, nothing it could free twice.
        crate::dispatch::free_unreferenced(core, token);
    }
    // The marker before the intent: a marker left without an intent would be taken for this
    // entry's by its next drop of the slot. (A slot freed and taken again has a marker of its
    // own, which this leaves alone.)
    rc.clear_marker(i);
    intent.store(0, Ordering::Release);
    if before == 1 {
        let (used, live) = counts(a.load_u64(eo + USED_AT)?);
        let live = live.saturating_sub(1);
        a.store_u64(eo + USED_AT, pack(used, live))?;
        let table = table_word(core, i)?;
        if let Some((_, rows)) = table_of(core, table, i)? {
            if rows > 1 << MIN_ROWS_LOG2 && live * 8 < rows {
                resize(core, i, table, fitting_log2(live))?;
            }
        }
    }
    Ok(true)
}

/// A dead entry's take or drop in progress, settled by its reclaimer before the rows are
/// released: an increment that landed and is not in the row is written to it; a decrement that
/// landed takes one off the row that still counts it, and an object the dead process was to
/// free is freed. Then the entry's marker and its intent are cleared.
fn settle_intent(core: &Core, i: u32) -> Result<()> {
    let a = core.arena();
    let eo = entry_off(core, i)?;
    let intent = a.atomic_u64(eo + INTENT_AT)?;
    let x = intent.load(Ordering::Acquire);
    if x == 0 {
        return Ok(());
    }
    let slot = (x as u32).wrapping_sub(1);
    let before = ((x >> 32) & INTENT_COUNT_MAX) as u32;
    let generation = a.atomic_u32(eo + INTENT_GEN_AT)?.load(Ordering::Relaxed);
    let table = core.table();
    let rc = table.refcount(slot)?;
    // The marker first, then the flag: whoever replaces or clears the marker sets the flag
    // before.
    let marked = rc.marker(Ordering::Acquire) == i + 1;
    let landed = marked || intent.load(Ordering::Acquire) & LANDED != 0;
    let live = table.check_live(slot, generation).is_ok();
    let (now, row) = row_count(core, i, slot)?;
    let token = |type_id| Token {
        store: core.store_id(),
        type_id,
        slot,
        generation,
    };
    if x & TAKE != 0 {
        // A reference taken (the increment landed: the object lives on it) and not yet in the
        // row: written to the row, whose references are dropped next, each recorded (so a
        // reclaimer killed from here on leaves the entry exact for the next).
        if landed && live && now == before {
            let (type_id, _) = table.type_and_state(slot)?;
            if hold(core, i, &token(type_id)).is_err() {
                // No room for the row: given back unrecorded.
                rc.clear_marker(i);
                intent.store(0, Ordering::Release);
                crate::dispatch::release(core, &token(type_id));
                return Ok(());
            }
        }
        rc.clear_marker(i);
        intent.store(0, Ordering::Release);
        return Ok(());
    }
    if let Some(row) = row.filter(|_| (landed || !live) && now == before && now != 0) {
        // The refcount lost this reference; the row still counts it.
        row[COUNT].store(now - 1, Ordering::Release);
    }
    if marked && live && rc.load(Ordering::Acquire) == 0 {
        // The dead process took the last reference off and did not get to free the object.
        // The marker stays until the slot is given back: a reclaimer killed before that leaves
        // the next one the same decision.
        let (type_id, _) = table.type_and_state(slot)?;
        crate::dispatch::free_unreferenced(core, &token(type_id));
    }
    rc.clear_marker(i);
    intent.store(0, Ordering::Release);
    Ok(())
}

/// Rows of an entry with a non-zero count: (token, count).
fn holdings(core: &Core, i: u32) -> Result<Vec<(Token, u32)>> {
    let mut out = Vec::new();
    if let Some(rows) = Rows::of(core, table_word(core, i)?, i)? {
        for r in rows.rows {
            let key = r[KEY].load(Ordering::Acquire);
            let count = r[COUNT].load(Ordering::Acquire);
            if key != 0 && count != 0 {
                let slot = key - 1;
                let (type_id, _) = core.table().type_and_state(slot)?;
                let generation = r[GEN].load(Ordering::Relaxed);
                out.push((
                    Token {
                        store: core.store_id(),
                        type_id,
                        slot,
                        generation,
                    },
                    count,
                ));
            }
        }
    }
    Ok(out)
}

/// In the fork handler (parent, before the fork): copies entry `i` into a new FORKING entry,
/// taking one more reference per reference held. Returns the new entry. The caller holds this
/// attachment's holdings mutex.
pub(crate) fn prepare_fork(core: &Core, i: u32) -> Result<u32> {
    let held = holdings(core, i)?;
    let child = {
        let _g = core.lock_arena()?;
        let child = take_entry(core, ProcId::current(), FORKING)?;
        // Counted with the entry: whoever gives it back (the child detaching, a reclaimer)
        // takes the count back.
        core.counter_u32(crate::header::ATTACH_OFF)?
            .fetch_add(1, Ordering::AcqRel);
        child
    };
    let filled = take_for_child(core, child, &held);
    if let Err(e) = filled {
        give_back_entry(core, child)?;
        return Err(e);
    }
    Ok(child)
}

/// Takes the references `held` lists for the FORKING entry `child`, one at a time, each
/// recorded as a take of the child's entry (as a lookup records one): a parent killed in the
/// handler leaves the entry exact for its reclaimer.
fn take_for_child(core: &Core, child: u32, held: &[(Token, u32)]) -> Result<()> {
    for (t, n) in held {
        for _ in 0..*n {
            core.incref_token_for(t, Some(child))?;
            finish_take(core, child, t)?;
        }
    }
    Ok(())
}

/// In the child after a fork: makes the FORKING entry `i` this process's own.
pub(crate) fn claim(core: &Core, i: u32) -> Result<()> {
    let off = entry_off(core, i)?;
    core.arena().write(Offset::new(off), ProcId::current())?;
    state(core, i)?.store(LIVE, Ordering::Release);
    Ok(())
}

/// Every entry in use.
///
/// # Examples
/// ```
/// # let name = format!("doc-procslist-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::procs;
/// let ps = procs::list(store.core())?;
/// assert_eq!(ps.len(), 1);
/// assert_eq!((ps[0].pid, ps[0].state, ps[0].alive), (std::process::id(), procs::LIVE, true));
/// assert_eq!(ps, store.processes()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn list(core: &Core) -> Result<Vec<ProcInfo>> {
    let mut out = Vec::new();
    for i in 0..core.header().procs_cap as u32 {
        let e = read(core, i)?;
        if e.state == FREE {
            continue;
        }
        let references = holdings(core, i)?.iter().map(|h| u64::from(h.1)).sum();
        out.push(ProcInfo {
            index: i,
            pid: e.proc.pid,
            state: e.state,
            alive: e.proc.is_alive(),
            references,
        });
    }
    Ok(out)
}

/// Gives back what dead attachments held: their references (freeing objects whose last
/// reference they were), each dropped as its owner would have dropped it, and their attach
/// counts.
pub(crate) fn reclaim(core: &Core) -> Result<Reclaimed> {
    let me = ProcId::current();
    let mut done = Reclaimed::default();
    for i in 0..core.header().procs_cap as u32 {
        // Claim a dead entry under the arena lock, so two reclaimers never share one.
        {
            let _g = core.lock_arena()?;
            let e = read(core, i)?;
            let dead = match e.state {
                LIVE | FORKING => !e.proc.is_alive(),
                RECLAIM => !e.reclaimer.is_alive(),
                _ => false,
            };
            if !dead {
                continue;
            }
            let off = entry_off(core, i)?;
            core.arena().write(Offset::new(off + 32), me)?;
            state(core, i)?.store(RECLAIM, Ordering::Release);
        }
        done.references += give_back_entry(core, i)?;
        done.processes += 1;
    }
    Ok(done)
}

/// Gives back everything entry `i` (dead, or a FORKING entry its maker gives up) holds: its
/// operation in progress, its rows' references, the entry and its attach count. Returns the
/// references dropped.
fn give_back_entry(core: &Core, i: u32) -> Result<u64> {
    if settle_intent(core, i).is_err() {
        // An intent naming no slot of this store (damage): dropped, so that the rows are still
        // given back.
        clear_intent(core, i)?;
    }
    // After settling, which may have written a row (and grown the table).
    let mut references = 0;
    for (t, n) in holdings(core, i)? {
        // Each reference dropped as its owner would have, recorded in the entry: a reclaimer
        // killed here leaves the next one (which claims the entry again) an exact entry.
        for _ in 0..n {
            if !matches!(drop_reference(core, i, &t), Ok(true)) {
                // The row no longer counts it: never drop what is not recorded.
                break;
            }
        }
        references += u64::from(n);
    }
    let _g = core.lock_arena()?;
    unregister(core, i)?;
    let a = core.counter_u32(crate::header::ATTACH_OFF)?;
    let _ = a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |x| {
        Some(x.saturating_sub(1))
    });
    Ok(references)
}

/// The holdings blocks of every entry in use (roots for a mark and sweep). The caller holds the
/// arena lock.
pub(crate) fn holdings_blocks(core: &Core) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for i in 0..core.header().procs_cap as u32 {
        let e = read(core, i)?;
        if e.state != FREE {
            if let Some((off, _)) = table_of(core, e.table, i)? {
                out.push(off);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn store(tag: &str) -> Store {
        let name = format!("t-procs-{tag}-{}", std::process::id());
        Store::create(&name, 8 << 20).unwrap()
    }

    /// Rows of this process's holdings table.
    fn rows(store: &Store) -> u64 {
        let i = store.processes().unwrap()[0].index;
        let core = store.core();
        table_of(core, table_word(core, i).unwrap(), i)
            .unwrap()
            .map_or(0, |(_, rows)| rows)
    }

    #[test]
    fn threads_taking_and_dropping_references_leave_every_count_exact() {
        let store = store("threads");
        for i in 0..4i64 {
            store
                .bind(&format!("o{i}"), &store.list([i]).unwrap())
                .unwrap();
        }
        std::thread::scope(|s| {
            for t in 0..4usize {
                let store = &store;
                s.spawn(move || {
                    for k in 0..2_000usize {
                        let p = store.lookup(&format!("o{}", (k + t) % 4)).unwrap();
                        let q = store.attach(&p.token()).unwrap();
                        let tmp = store.list([k as i64]).unwrap();
                        drop((p, tmp));
                        drop(q);
                    }
                });
            }
        });
        assert_eq!(store.processes().unwrap()[0].references, 0);
        let objects = store.objects().unwrap();
        assert_eq!(objects.len(), 4, "{objects:?}");
        assert!(objects.iter().all(|o| o.refcount == 1), "{objects:?}");
        let r = store.check().unwrap();
        assert!(r.is_ok(), "{:?}", r.problems);
    }

    #[test]
    fn holdings_grow_with_the_objects_held_and_shrink_when_they_are_dropped() {
        let store = store("grow");
        let first = rows(&store);
        assert_eq!(first, 1 << MIN_ROWS_LOG2);
        let lists: Vec<_> = (0..1_000i64).map(|i| store.list([i]).unwrap()).collect();
        // Two more references to the first list: its row counts 3.
        let again = [
            store.attach(&lists[0].token()).unwrap(),
            store.attach(&lists[0].token()).unwrap(),
        ];
        assert_eq!(store.processes().unwrap()[0].references, 1_002);
        assert!(rows(&store) >= 2_000, "at most half full");
        drop(lists);
        assert_eq!(store.processes().unwrap()[0].references, 2);
        // Mostly empty: rebuilt small, the one row left kept.
        assert!(rows(&store) <= 16, "{} rows", rows(&store));
        drop(again);
        assert_eq!(store.processes().unwrap()[0].references, 0);
        assert_eq!(store.stats().unwrap().objects_live, 0);
    }
}
