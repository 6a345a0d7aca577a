//! The hash table under `dict` and `set`: CPython's compact dict, kept in arena blocks.
//!
//! ```text
//! body (HashBody, 16 bytes)   table: offset of the table block, 0 while the table is empty
//! table block                 TableHdr (64 bytes)
//!                             index:   `size` u32 slots (size = 1 << log2_size, at least 8):
//!                                      EMPTY, DUMMY (a deleted key was here) or an entry number
//!                             entries: `cap` entries in insertion order, each
//!                                      hash u64 | live u64 (1 live, 0 deleted) | key cell
//!                                      | value cell (dict only)
//! ```
//!
//! Lookups probe the index with CPython's perturbed recurrence (`i = 5i + 1 + perturb`,
//! `perturb >>= 5`), which visits every slot, and stop at an EMPTY slot; `filled` (slots not
//! EMPTY) never exceeds `cap`, which is two thirds of `size`, so an EMPTY slot always exists and a
//! probe is bounded even over corrupt data (a probe longer than the table is `Corrupt`). Hashes
//! are [`Value::hash_with_key`] with the segment's key ([`Core::hash_key`]): the same in every
//! process, unpredictable to whoever chooses the keys.
//!
//! The entries (and their `live` flags) up to `nentries` are the truth; the index, `live` and
//! `filled` are derived from them and [`repair`] rebuilds them after a holder died.
//!
//! Crash protocol (the holder of the object's lock may die at any instruction):
//! - insert: the key and value cells are stored and the entry written whole past `nentries`;
//!   one store of `nentries` publishes it; then the index slot, `filled` and `live` are stored.
//!   A crash before the publishing store leaves the old table and at worst leaked cell blocks; a
//!   crash after it leaves a derived field stale, which `repair` recomputes.
//! - replace a value: the new cell is stored, written over the old one, then the old cell's
//!   blocks are released (as `list.__setitem__` does).
//! - delete: one store of the entry's `live` flag unpublishes it; then its index slot becomes
//!   DUMMY, dead entries at the end are trimmed off `nentries`, `live` is decremented, and only
//!   then are the cells released.
//! - growth and compaction: a new block is built (live entries copied in order, a fresh index),
//!   published with one store of `body.table`, and the old block freed afterwards. The cells move
//!   bitwise: ownership passes with the publishing store.
//! - clear: `body.table` is set to 0 first, then the cells are released and the block freed.
//!   A crash leaks, never corrupts.
//!
//! Lock-free readers ([`lookup_racy`], [`len_racy`]): every mutation above, and `repair`, runs
//! inside a write on the slot's sequence (`Table::write_begin`, odd while it writes; a compound
//! method such as `update` opens one around all of its steps), so an optimistic reader sees the
//! table before a write or after it, never in between — including a block freed by growth or
//! `clear` and reused meanwhile, whose words it may read but whose answer the sequence check
//! drops. A holder that dies leaves the sequence odd until `repair` (readers take the lock
//! meanwhile). The reader only copies words with bounds-checked atomic loads and bounds its
//! probe, so garbage can cost it an answer (it takes the lock), never memory safety.
//!
//! # Examples
//! ```
//! # let name = format!("doc-htable-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::arena::Offset;
//! use shmstore::types::htable::{HashBody, TableHdr};
//! let d = store.dict((0..10).map(|i| (i, i * i)))?;
//! let body = store.objects()?[0].body;
//! let raw = shmstore::segment::open(&name)?;
//! let b: HashBody = raw.read(Offset::new(body))?;
//! let t: TableHdr = raw.read(Offset::new(b.table))?;
//! assert_eq!(t.live, 10);
//! assert!(t.filled <= 1 << t.log2_size);
//! d.remove(3)?;
//! let t: TableHdr = raw.read(Offset::new(b.table))?;
//! assert_eq!((t.live, t.nentries), (9, 10)); // a deleted entry keeps its place in the order
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::{Pod, Zeroable};

use super::Ctx;
use crate::arena::{Arena, Offset};
use crate::cell::{self, Cell, CELL_SIZE};
use crate::core::Core;
use crate::error::{Error, Result};
use crate::token::Token;
use crate::value::Value;

/// The body of a dict or set.
///
/// # Examples
/// ```
/// # let name = format!("doc-hashbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::htable::{HashBody, TableHdr};
/// let p = store.dict([("a", 1), ("b", 2)])?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: HashBody = raw.read(Offset::new(body))?;
/// let t: TableHdr = raw.read(Offset::new(b.table))?;
/// assert_eq!(t.live, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct HashBody {
    /// Offset of the table block; 0 while the table is empty.
    pub table: u64,
    /// Reserved; zero.
    pub reserved: u64,
}
const _: () = assert!(size_of::<HashBody>() == 16);

/// The header of a table block.
///
/// # Examples
/// ```
/// # let name = format!("doc-tablehdr-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::types::htable::{HashBody, TableHdr};
/// let p = store.set([1, 2, 3])?;
/// p.discard(2)?;
/// let body = store.objects()?.iter().find(|o| o.slot == p.token().slot).map_or(0, |o| o.body);
/// let raw = shmstore::segment::open(&name)?; // the store's segment, mapped raw
/// let b: HashBody = raw.read(Offset::new(body))?;
/// let t: TableHdr = raw.read(Offset::new(b.table))?;
/// assert_eq!((t.nentries, t.live), (3, 2)); // the deleted entry stays until a rebuild
/// assert!(t.cap <= (1 << t.log2_size) * 2 / 3);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TableHdr {
    /// log2 of the number of index slots.
    pub log2_size: u64,
    /// Room for entries: two thirds of the index slots.
    pub cap: u64,
    /// Entries written (live or deleted), in insertion order.
    pub nentries: u64,
    /// Live entries (derived).
    pub live: u64,
    /// Index slots that are not EMPTY (derived).
    pub filled: u64,
    /// Reserved; zero.
    pub reserved: [u64; 3],
}
const _: () = assert!(size_of::<TableHdr>() == 64);

/// The fixed part of an entry; the key cell (and for a dict the value cell) follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct EntryHead {
    hash: u64,
    live: u64,
}
const _: () = assert!(size_of::<EntryHead>() == 16);

const HDR: u64 = size_of::<TableHdr>() as u64;
const HEAD: u64 = size_of::<EntryHead>() as u64;
const CELL: u64 = CELL_SIZE as u64;
const F_NENTRIES: u64 = 16;
const F_LIVE: u64 = 24;
const F_FILLED: u64 = 32;
/// `reserved[0]`: offset of a value cell being replaced in place (0: none).
const F_JOURNAL: u64 = 40;
/// `reserved[1..3]`: that cell's old contents, restored by `repair`.
const F_JOURNAL_CELL: u64 = 48;

const EMPTY: u32 = u32::MAX;
const DUMMY: u32 = u32::MAX - 1;
const MIN_LOG2: u64 = 3;
/// Largest index: 2**30 slots, so entry numbers stay clear of EMPTY and DUMMY.
const MAX_LOG2: u64 = 30;

/// What an entry holds: a dict's entries carry a value cell, a set's do not.
///
/// # Examples
/// ```
/// use shmstore::types::htable::{Shape, DICT, SET};
/// assert_eq!(DICT, Shape { values: true }); // key and value cells
/// assert!(!SET.values); // key cells only
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// True for a dict.
    pub values: bool,
}

/// A dict's entries: key and value.
pub const DICT: Shape = Shape { values: true };
/// A set's entries: key only.
pub const SET: Shape = Shape { values: false };

impl Shape {
    #[inline]
    const fn esize(self) -> u64 {
        HEAD + CELL + if self.values { CELL } else { 0 }
    }
}

/// Python's `USABLE_FRACTION`: entries a table of `size` slots holds.
#[inline]
const fn usable(size: u64) -> u64 {
    (size << 1) / 3
}

/// [`usable`] of each index size up to `2**MAX_LOG2`, by log2 (a lookup, not a division).
/// (`u32`: at most `2**31 / 3`).
const USABLE_OF_LOG2: [u32; MAX_LOG2 as usize + 1] = {
    let mut t = [0; MAX_LOG2 as usize + 1];
    let mut l = 0;
    while l <= MAX_LOG2 as usize {
        t[l] = usable(1 << l) as u32;
        l += 1;
    }
    t
};

/// The smallest index (log2) whose table holds `n` entries.
fn log2_for(n: u64) -> Result<u64> {
    (MIN_LOG2..=MAX_LOG2)
        .find(|&l| usable(1 << l) >= n)
        .ok_or(Error::OutOfMemory {
            requested: usize::MAX,
            available: 0,
        })
}

fn block_size(shape: Shape, log2: u64) -> u64 {
    let size = 1u64 << log2;
    HDR + size * 4 + usable(size) * shape.esize()
}

/// A validated table block.
///
/// # Examples
/// ```
/// # let name = format!("doc-htabletable-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// let core = store.core();
/// let empty = store.dict::<_, i64, i64>([])?;
/// assert!(with_object(core, &empty.token(), |ctx| htable::open(ctx, DICT))?.is_none()); // no block yet
/// let d = store.dict([(1, 2)])?;
/// assert!(with_object(core, &d.token(), |ctx| htable::open(ctx, DICT))?.is_some());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Table {
    off: u64,
    // The header's counts, validated by `open_at`.
    cap: u64,
    nentries: u64,
    live: u64,
    filled: u64,
    size: u64,
    index: u64,
    entries: u64,
    esize: u64,
}

impl Table {
    #[inline]
    fn entry(&self, ix: u64) -> u64 {
        self.entries + ix * self.esize
    }
    #[inline]
    fn key_off(&self, ix: u64) -> u64 {
        self.entry(ix) + HEAD
    }
    #[inline]
    fn val_off(&self, ix: u64) -> u64 {
        self.entry(ix) + HEAD + CELL
    }
    #[inline]
    fn slot_off(&self, i: u64) -> u64 {
        self.index + 4 * i
    }
}

/// The segment's hash key, folded to the mixer's 64 bits.
///
/// # Examples
/// ```
/// # let name = format!("doc-segkey-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::htable::seg_key;
/// let core = store.core();
/// let [a, b] = core.hash_key();
/// assert_eq!(seg_key(core), a ^ b.rotate_left(32));
/// // Every process attached to the store folds the same key.
/// assert_eq!(seg_key(shmstore::Store::open(&name)?.core()), seg_key(core));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn seg_key(core: &Core) -> u64 {
    key_of(core.hash_key())
}

/// The 64-bit key [`seg_key`] derives from a segment's two-word hash key.
pub(crate) fn key_of([a, b]: [u64; 2]) -> u64 {
    a ^ b.rotate_left(32)
}

/// The hash of `key` in this segment.
///
/// # Errors
/// `TypeError("unhashable type: 'list'")`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablehash-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::htable::{hash, seg_key};
/// use shmstore::{Error, Value};
/// let core = store.core();
/// let k = Value::from("key");
/// assert_eq!(hash(core, &k)?, k.hash_with_key(seg_key(core))?);
/// assert_eq!(hash(core, &Value::Int(1))?, hash(core, &Value::Float(1.0))?); // 1 == 1.0
/// assert!(matches!(hash(core, &Value::List(vec![])), Err(Error::TypeError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn hash(core: &Core, key: &Value) -> Result<u64> {
    // An int or str key from the attachment's precomputed states: one multiply fewer.
    key.hash_with_seeds(core.hash_seed(), core.kind_seeds())
}

/// Reads and validates the table of the body at `ctx.body`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htableopen-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, SET};
/// let s = store.set([1, 2])?;
/// let (core, t) = (store.core(), s.token());
/// assert!(with_object(core, &t, |ctx| htable::open(ctx, SET))?.is_some());
/// s.clear()?; // clearing frees the block
/// assert!(with_object(core, &t, |ctx| htable::open(ctx, SET))?.is_none());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn open(ctx: &Ctx<'_>, shape: Shape) -> Result<Option<Table>> {
    let off = ctx.core.arena().load_u64(ctx.body)?;
    if off == 0 {
        return Ok(None);
    }
    open_at(ctx.core, shape, off).map(Some)
}

#[inline]
fn open_at(core: &Core, shape: Shape, off: u64) -> Result<Table> {
    // The five counted words (the journal words are read only by `repair` and a replacement).
    let [log2_size, cap, nentries, live, filled]: [u64; 5] = core.arena().read(Offset::new(off))?;
    if !header_ok([log2_size, cap, nentries, live, filled]) {
        return Err(bad_header(log2_size, off));
    }
    let size = 1u64 << log2_size;
    core.arena().check(off, block_size(shape, log2_size), 16)?;
    let index = off + HDR;
    Ok(Table {
        off,
        cap,
        nentries,
        live,
        filled,
        size,
        index,
        entries: index + size * 4,
        esize: shape.esize(),
    })
}

/// The header's checks, as one branch-free test: the size is in range, `cap` is its usable
/// fraction, `live <= nentries <= cap` and `filled <= cap`.
#[inline]
fn header_ok([log2_size, cap, nentries, live, filled]: [u64; 5]) -> bool {
    // Out of range wraps to a huge value; the shift is masked so it cannot overflow, and a size
    // it computes for a bad `log2_size` is never used (the range test fails).
    let in_range = log2_size.wrapping_sub(MIN_LOG2) <= MAX_LOG2 - MIN_LOG2;
    let size = 1u64 << (log2_size & 63);
    in_range & (cap == usable(size)) & (nentries <= cap) & (live <= nentries) & (filled <= cap)
}

#[cold]
fn bad_header(log2_size: u64, off: u64) -> Error {
    if (MIN_LOG2..=MAX_LOG2).contains(&log2_size) {
        Error::corrupt("hash table counts inconsistent", off)
    } else {
        Error::corrupt("hash table size out of range", off)
    }
}

#[inline]
fn slot(core: &Core, t: &Table, i: u64) -> Result<u32> {
    core.arena().read(Offset::<u32>::new(t.slot_off(i)))
}

#[inline]
fn set_slot(core: &Core, t: &Table, i: u64, v: u32) -> Result<()> {
    core.arena().write(Offset::<u32>::new(t.slot_off(i)), v)
}

#[inline]
fn head(core: &Core, t: &Table, ix: u64) -> Result<EntryHead> {
    let e: EntryHead = core.arena().read(Offset::new(t.entry(ix)))?;
    if e.live > 1 {
        return Err(Error::corrupt("bad entry flag", t.entry(ix)));
    }
    Ok(e)
}

#[inline]
fn read_cell(core: &Core, off: u64) -> Result<Cell> {
    core.arena().read(Offset::new(off))
}

#[inline]
fn store_hdr(core: &Core, t: &Table, field: u64, v: u64) -> Result<()> {
    core.arena().store_u64(t.off + field, v)
}

/// Where a key is, or where it would go.
///
/// # Examples
/// ```
/// use shmstore::types::htable::Probe;
/// // What a lookup records: the entry it found and the index slot that led there, or the free
/// // slot a new key would take.
/// let hit = Probe::Found { slot: 5, ix: 0 };
/// let miss = Probe::Missing { slot: 2 };
/// let slot = |p: Probe| match p {
///     Probe::Found { slot, .. } | Probe::Missing { slot } => slot,
/// };
/// assert_eq!((slot(hit), slot(miss)), (5, 2));
/// ```
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// The key is entry `ix`, indexed from slot `slot`.
    Found {
        /// Index slot.
        slot: u64,
        /// Entry number.
        ix: u64,
    },
    /// The key is absent; `slot` is the first free (EMPTY or DUMMY) slot on its probe path.
    Missing {
        /// Index slot.
        slot: u64,
    },
}

/// Walks the probe sequence of `hash`, calling `visit(slot, content)` until it says stop.
#[inline]
fn walk<R>(t: &Table, hash: u64, mut visit: impl FnMut(u64) -> Result<Option<R>>) -> Result<R> {
    let (size, index) = (t.size, t.index);
    let mask = size - 1;
    let mut perturb = hash;
    let mut i = hash & mask;
    // After 13 shifts `perturb` is 0 and the recurrence i -> 5i + 1 (mod size) cycles through
    // every slot, so size + 16 steps reach every slot, an EMPTY one included.
    for _ in 0..size + 16 {
        if let Some(r) = visit(i)? {
            return Ok(r);
        }
        perturb >>= 5;
        i = (i.wrapping_mul(5).wrapping_add(perturb).wrapping_add(1)) & mask;
    }
    Err(Error::corrupt("hash index has no empty slot", index))
}

/// A table block's index and published entries, seen through one bounds-checked slice while the
/// caller holds the object's lock (no writer can change them meanwhile; nothing is written
/// while the view lives).
struct View<'a> {
    index: &'a [u32],
    entries: &'a [u64],
    /// Words per entry.
    words: usize,
    /// Offset of the index (for error reports).
    index_off: u64,
    /// Offset of the entries.
    entries_off: u64,
}

impl<'a> View<'a> {
    /// The index and the first `nentries` entries of the block at `off` whose index has
    /// `2**log2` slots: one bounds check for both (the header was validated by the caller).
    #[inline(always)]
    fn new(a: &'a Arena, shape: Shape, off: u64, log2: u64, nentries: u64) -> Result<View<'a>> {
        let size = 1u64 << log2;
        let words = shape.esize() / 8;
        let index_off = off + HDR;
        // Index (4 bytes a slot, a multiple of 8 since size >= 8) and entries, as words.
        let all: &[u64] = a.slice(index_off, size / 2 + usable(size) * words)?;
        // Cannot panic: `all` holds `size / 2` words and more.
        let (index, entries) = all.split_at((size / 2) as usize);
        let entries = entries
            .get(..(nentries * words) as usize)
            .ok_or_else(|| Error::corrupt("hash table counts inconsistent", off))?;
        Ok(View {
            // Cannot panic: a `u64` is two `u32`s, and aligned for them.
            index: bytemuck::cast_slice(index),
            entries,
            words: words as usize,
            index_off,
            entries_off: index_off + size * 4,
        })
    }

    /// Looks `key` (whose hash is `hash`, and whose cell is `inline` if it is stored inline) up.
    /// A key cell is compared as raw words when it can be ([`cell::eq_inline`]) and loaded only
    /// when that cannot decide.
    #[inline(always)]
    fn probe(&self, core: &Core, hash: u64, key: &Value, inline: Option<&Cell>) -> Result<Probe> {
        // `walk`'s recurrence, written out so that the loop body is inlined.
        let size = self.index.len() as u64;
        let mask = size.wrapping_sub(1);
        let mut perturb = hash;
        let mut i = hash & mask;
        let mut free = None;
        for _ in 0..size + 16 {
            // `i` is masked by `size - 1`: always in the index.
            let Some(&content) = self.index.get(i as usize) else {
                return Err(Error::corrupt(
                    "hash index slot out of range",
                    self.index_off,
                ));
            };
            match content {
                EMPTY => {
                    return Ok(Probe::Missing {
                        slot: free.unwrap_or(i),
                    })
                }
                DUMMY => {
                    free.get_or_insert(i);
                }
                ix => {
                    let ix = u64::from(ix);
                    let e = ix as usize * self.words;
                    let Some(&[h, live, k0, k1]) = self.entries.get(e..e + 4) else {
                        return Err(Error::corrupt(
                            "index slot past the entries",
                            self.index_off + 4 * i,
                        ));
                    };
                    if live > 1 {
                        return Err(Error::corrupt("bad entry flag", self.entry_off(ix)));
                    }
                    if live == 1 && h == hash {
                        let c = Cell::from_words([k0, k1]);
                        let same = match inline.and_then(|s| cell::eq_inline(&c, s, key)) {
                            Some(same) => same,
                            None => cell::eq(core, &c, self.entry_off(ix) + HEAD, key)?,
                        };
                        if same {
                            return Ok(Probe::Found { slot: i, ix });
                        }
                    }
                }
            }
            perturb >>= 5;
            i = (i.wrapping_mul(5).wrapping_add(perturb).wrapping_add(1)) & mask;
        }
        Err(Error::corrupt(
            "hash index has no empty slot",
            self.index_off,
        ))
    }

    #[inline]
    fn entry_off(&self, ix: u64) -> u64 {
        self.entries_off + ix * (self.words as u64 * 8)
    }
}

/// Looks `key` (whose hash is `hash`) up in `t`, a table of `shape`.
#[inline]
fn probe(core: &Core, shape: Shape, t: &Table, hash: u64, key: &Value) -> Result<Probe> {
    let log2 = u64::from(t.size.trailing_zeros());
    let v = View::new(core.arena(), shape, t.off, log2, t.nentries)?;
    v.probe(core, hash, key, Cell::scalar(key).as_ref())
}

/// The first free slot on the probe path of `hash` (for placing an entry known to be absent).
fn free_slot(core: &Core, t: &Table, hash: u64) -> Result<u64> {
    walk(t, hash, |i| {
        Ok(matches!(slot(core, t, i)?, EMPTY | DUMMY).then_some(i))
    })
}

/// The slot that indexes entry `ix`.
fn slot_of(core: &Core, t: &Table, hash: u64, ix: u64) -> Result<u64> {
    walk(t, hash, |i| match slot(core, t, i)? {
        EMPTY => Err(Error::corrupt("entry missing from the index", t.entry(ix))),
        s if u64::from(s) == ix => Ok(Some(i)),
        _ => Ok(None),
    })
}

/// The result of a lookup: the key's hash, the table (if any) and where the key is.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablefind-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let core = store.core();
/// let key = Value::from("a");
/// let f = with_object(core, &d.token(), |ctx| htable::find(ctx, DICT, &key))?;
/// assert!(f.found());
/// assert_eq!(f.hash, htable::hash(core, &key)?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Find {
    /// The key's hash.
    pub hash: u64,
    t: Option<Table>,
    probe: Option<Probe>,
}

impl Find {
    /// True if the key was found.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-htablefound-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::dispatch::with_object;
    /// use shmstore::types::htable::{self, SET};
    /// use shmstore::Value;
    /// let s = store.set([1])?;
    /// let (core, t) = (store.core(), s.token());
    /// assert!(with_object(core, &t, |ctx| htable::find(ctx, SET, &Value::Int(1)))?.found());
    /// assert!(!with_object(core, &t, |ctx| htable::find(ctx, SET, &Value::Int(2)))?.found());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn found(&self) -> bool {
        matches!(self.probe, Some(Probe::Found { .. }))
    }

    #[inline]
    fn hit(&self) -> Option<(Table, u64, u64)> {
        match (self.t, self.probe) {
            (Some(t), Some(Probe::Found { slot, ix })) => Some((t, slot, ix)),
            _ => None,
        }
    }
}

/// Looks `key` up.
///
/// # Errors
/// `TypeError` for an unhashable key; `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablefindfn-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::{Error, Value};
/// let d = store.dict([("k", "v")])?;
/// let (core, t) = (store.core(), d.token());
/// let v = with_object(core, &t, |ctx| {
///     let f = htable::find(ctx, DICT, &Value::from("k"))?;
///     htable::value(ctx, &f)
/// })?;
/// assert_eq!(v, Some(Value::from("v")));
/// let unhashable = with_object(core, &t, |ctx| htable::find(ctx, DICT, &Value::List(vec![])));
/// assert!(matches!(unhashable, Err(Error::TypeError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn find(ctx: &Ctx<'_>, shape: Shape, key: &Value) -> Result<Find> {
    let hash = hash(ctx.core, key)?;
    let t = open(ctx, shape)?;
    let probe = match &t {
        Some(t) => Some(probe(ctx.core, shape, t, hash, key)?),
        None => None,
    };
    Ok(Find { hash, t, probe })
}

/// Looks `key` up and returns its value cell (a dict; a set: its key cell) with the cell's
/// offset, or `None` when absent: [`find`] + [`value_cell`] for a read, without building the
/// [`Find`] a mutation needs.
///
/// # Errors
/// `TypeError` for an unhashable key; `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablelookup-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::{cell, Value};
/// let d = store.dict([("k", 7)])?;
/// let v = with_object(store.core(), &d.token(), |ctx| {
///     match htable::lookup(ctx, DICT, &Value::from("k"))? {
///         Some((c, at)) => cell::load(ctx.core, &c, at).map(Some),
///         None => Ok(None),
///     }
/// })?;
/// assert_eq!(v, Some(Value::Int(7)));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn lookup(ctx: &Ctx<'_>, shape: Shape, key: &Value) -> Result<Option<(Cell, u64)>> {
    let core = ctx.core;
    let hash = hash(core, key)?;
    let a = core.arena();
    let off = a.load_u64(ctx.body)?;
    if off == 0 {
        return Ok(None);
    }
    // What `open_at` checks: the header's counts, and the block inside the arena and 16-aligned
    // (the header here, the index and entries by the view's slice).
    let h: [u64; 5] = a.read(Offset::new(off))?;
    if !header_ok(h) {
        return Err(bad_header(h[0], off));
    }
    if off % 16 != 0 {
        return Err(Error::corrupt("misaligned offset", off));
    }
    let v = View::new(a, shape, off, h[0], h[2])?;
    match v.probe(core, hash, key, Cell::scalar(key).as_ref())? {
        Probe::Found { ix, .. } => {
            // The value cell (a set: the key cell), in words from the entry's start.
            let w = if shape.values { 4 } else { 2 };
            let at = ix as usize * v.words + w;
            // Found: the entry's words are in the view.
            let Some(&[w0, w1]) = v.entries.get(at..at + 2) else {
                return Err(Error::corrupt(
                    "index slot past the entries",
                    v.entry_off(ix),
                ));
            };
            Ok(Some((
                Cell::from_words([w0, w1]),
                v.entry_off(ix) + 8 * w as u64,
            )))
        }
        Probe::Missing { .. } => Ok(None),
    }
}

/// Live entries.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablelen-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, SET};
/// let s = store.set(["a", "b", "a"])?;
/// assert_eq!(with_object(store.core(), &s.token(), |ctx| htable::len(ctx, SET))?, 2);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len(ctx: &Ctx<'_>, shape: Shape) -> Result<u64> {
    Ok(open(ctx, shape)?.map_or(0, |t| t.live))
}

/// Slots an optimistic lookup visits before it leaves the answer to the locked path (a chain
/// this long is rare at two-thirds load; a garbage index cannot keep a reader looping).
const RACY_PROBES: u64 = 64;

/// A lookup key prepared for [`lookup_racy`]: an inline scalar (None, bool, int, float, or a
/// str or bytes of at most 14 bytes), its cell and its hash in this segment.
///
/// # Examples
/// ```
/// # let name = format!("doc-racykey-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::htable::RacyKey;
/// use shmstore::Value;
/// let core = store.core();
/// assert!(RacyKey::new(core, &Value::Int(7)).is_some());
/// assert!(RacyKey::new(core, &Value::from("short")).is_some());
/// // A key stored in a block, or an unhashable one: only the locked path looks it up.
/// assert!(RacyKey::new(core, &Value::from("a key longer than one cell")).is_none());
/// assert!(RacyKey::new(core, &Value::List(vec![])).is_none());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RacyKey<'v> {
    hash: u64,
    cell: Cell,
    /// The key when it is a number, for equality with a stored number of another kind
    /// (`1 == 1.0 == True`); a copy, so the prepared key borrows nothing.
    num: Num,
    _key: PhantomData<&'v Value>,
}

/// A numeric key's value (what [`cell::eq_inline`] needs besides the cells).
#[derive(Clone, Copy, Debug)]
enum Num {
    /// Not a number: a stored cell of other bits is a different key.
    No,
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Num {
    /// `None` for a NaN.
    #[inline(always)]
    fn of(key: &Value) -> Option<Num> {
        Some(match *key {
            Value::Int(i) => Num::Int(i),
            Value::Bool(b) => Num::Bool(b),
            Value::Float(f) if f.is_nan() => return None,
            Value::Float(f) => Num::Float(f),
            _ => Num::No,
        })
    }
}

impl<'v> RacyKey<'v> {
    /// The prepared key, or `None` when `key` is not an inline scalar (its lookup then takes the
    /// lock), or is a NaN (unequal even to its own bits: the locked path compares it).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-racykeynew-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::types::htable::RacyKey;
    /// use shmstore::Value;
    /// let k = Value::Float(2.0);
    /// assert!(RacyKey::new(store.core(), &k).is_some());
    /// assert!(RacyKey::new(store.core(), &Value::Tuple(vec![k])).is_none()); // a block
    /// assert!(RacyKey::new(store.core(), &Value::Float(f64::NAN)).is_none());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline(always)]
    pub fn new(core: &Core, key: &'v Value) -> Option<RacyKey<'v>> {
        RacyKey::of_value(core, key)
    }

    /// [`RacyKey::new`] of any lifetime: the prepared key is a copy and borrows nothing.
    #[inline(always)]
    pub(crate) fn of_value(core: &Core, key: &Value) -> Option<RacyKey<'v>> {
        // Inlined into the caller, so a key of a known kind (the typed proxies' `i64`) folds to
        // its one arm and the caller's `Value` needs no drop call.
        Some(RacyKey {
            num: Num::of(key)?,
            cell: Cell::scalar(key)?,
            hash: hash(core, key).ok()?,
            _key: PhantomData,
        })
    }

    /// The prepared key of `Value::Str(s)` without building the `Value` (no `String`): the
    /// same cell and hash, or `None` for a str too long for a cell.
    #[inline(always)]
    pub(crate) fn of_str(core: &Core, s: &str) -> Option<RacyKey<'v>> {
        Some(RacyKey {
            num: Num::No,
            cell: Cell::short_str(s)?,
            hash: core.hash_str(s),
            _key: PhantomData,
        })
    }

    /// The key `v` with a hash chosen by the caller (tests: collisions on purpose).
    #[cfg(test)]
    fn with_hash(v: &'v Value, hash: u64) -> RacyKey<'v> {
        RacyKey {
            hash,
            cell: Cell::scalar(v).unwrap(),
            num: Num::of(v).unwrap(),
            _key: PhantomData,
        }
    }

    /// Whether the stored inline cell `c`, of the key's hash, is the key. Equal bits are equal
    /// (a NaN key is never prepared); other bits are another key unless both are numbers of
    /// different kinds (`1 == 1.0`), which [`cell::eq_inline`] decides. `None`: `c` lives in a
    /// block or is a bad cell, and only the locked path can tell.
    #[inline(always)]
    fn is(&self, c: [u64; 2]) -> Option<bool> {
        if c == self.cell.to_words() {
            return Some(true);
        }
        self.is_other_bits(c)
    }

    #[cold]
    #[inline(never)]
    fn is_other_bits(&self, c: [u64; 2]) -> Option<bool> {
        // `eq_inline` reads the value only for a number (and a NaN, excluded): a key that is
        // not a number is unequal to every other inline cell, as it is to `None`'s.
        let v = match self.num {
            Num::No => Value::None,
            Num::Bool(b) => Value::Bool(b),
            Num::Int(i) => Value::Int(i),
            Num::Float(f) => Value::Float(f),
        };
        cell::eq_inline(&Cell::from_words(c), &self.cell, &v)
    }
}

/// A dict or set key passed by reference: the typed proxies' `*_borrowed` methods
/// ([`DictProxy::get_borrowed`](crate::DictProxy::get_borrowed),
/// [`SetProxy::contains_borrowed`](crate::SetProxy::contains_borrowed), …) take one, and look
/// up a key stored inline (None, bool, int, float, a str of at most 14 bytes) without building
/// a [`Value`]: a `&str` key costs no `String`, so such a lookup allocates nothing. Keys of any
/// other kind (a long str, a tuple, …) are turned into a `Value` for the locked path, as the
/// `impl Into<Value>` methods do.
///
/// Implemented for `str`, `String`, [`Value`], `bool`, the integer types a `Value` converts
/// from (`u64` and `usize` saturate at `i64::MAX`, as `Value::from` does), `f32`, `f64`, and
/// references to any of them; sealed: the hash and cell of a key must be exactly those of its
/// `Value`.
///
/// # Examples
/// ```
/// # let name = format!("doc-keyref-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{KeyRef, Value};
/// let d = store.dict([("apple", 1), ("pear", 2)])?;
/// let keys = [String::from("apple"), String::from("plum")];
/// assert_eq!(d.get_borrowed(&keys[0])?, Some(Value::Int(1))); // no String is built
/// assert_eq!(d.get_borrowed(keys[1].as_str())?, None);
/// assert_eq!("apple".to_value(), Value::from("apple")); // what the locked path is given
/// let ints = store.dict([(1, "one")])?;
/// assert_eq!(ints.get_borrowed(true)?, Some(Value::from("one"))); // True == 1
/// assert_eq!(ints.get_borrowed(&Value::Float(1.0))?, Some(Value::from("one")));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub trait KeyRef: sealed::Sealed {
    /// The key prepared for a lock-free probe of a table in `core`'s segment, or `None` when it
    /// is not stored inline (or is a NaN): only the locked path looks those up.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-keyrefracy-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::KeyRef;
    /// let core = store.core();
    /// assert!("short".racy_key(core).is_some());
    /// assert!("a str too long for one cell".racy_key(core).is_none());
    /// assert!(f64::NAN.racy_key(core).is_none());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    fn racy_key(&self, core: &Core) -> Option<RacyKey<'static>>;

    /// The key as a [`Value`] (for the locked path, and a `KeyError`).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{KeyRef, Value};
    /// assert_eq!(7u8.to_value(), Value::Int(7));
    /// assert_eq!(u64::MAX.to_value(), Value::Int(i64::MAX)); // saturates, as Value::from
    /// assert_eq!(String::from("k").to_value(), Value::from("k"));
    /// ```
    fn to_value(&self) -> Value;
}

mod sealed {
    /// Keeps [`super::KeyRef`] to the implementations below.
    pub trait Sealed {}
}

impl<T: KeyRef + ?Sized> sealed::Sealed for &T {}
impl<T: KeyRef + ?Sized> KeyRef for &T {
    #[inline(always)]
    fn racy_key(&self, core: &Core) -> Option<RacyKey<'static>> {
        (**self).racy_key(core)
    }
    #[inline]
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl sealed::Sealed for str {}
impl KeyRef for str {
    #[inline(always)]
    fn racy_key(&self, core: &Core) -> Option<RacyKey<'static>> {
        RacyKey::of_str(core, self)
    }
    #[inline]
    fn to_value(&self) -> Value {
        Value::from(self)
    }
}

impl sealed::Sealed for String {}
impl KeyRef for String {
    #[inline(always)]
    fn racy_key(&self, core: &Core) -> Option<RacyKey<'static>> {
        self.as_str().racy_key(core)
    }
    #[inline]
    fn to_value(&self) -> Value {
        self.as_str().to_value()
    }
}

impl sealed::Sealed for Value {}
impl KeyRef for Value {
    #[inline(always)]
    fn racy_key(&self, core: &Core) -> Option<RacyKey<'static>> {
        match self {
            // The same key as a `&str` (one function to inline, not `Value`'s whole match).
            Value::Str(s) => RacyKey::of_str(core, s),
            v => RacyKey::of_value(core, v),
        }
    }
    #[inline]
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// Keys whose `Value` is a scalar built without allocating: prepared from that `Value`, which
/// is then known to the compiler and folds away.
macro_rules! key_ref_scalar {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl KeyRef for $t {
            #[inline(always)]
            fn racy_key(&self, core: &Core) -> Option<RacyKey<'static>> {
                let v = Value::from(*self);
                let k = RacyKey::of_value(core, &v);
                v.discard(); // a number: no drop call
                k
            }
            #[inline]
            fn to_value(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
key_ref_scalar!(bool, i8, i16, i32, i64, u8, u16, u32, u64, usize, f32, f64);

/// The header words of the table block at `off`, read racily and validated as `open_at` does
/// (`None`: not a valid header, torn or damaged, or a block of `shape` that would not fit in
/// the arena).
#[inline]
fn racy_header(a: &Arena, shape: Shape, off: u64) -> Option<[u64; 5]> {
    let h = a.load_words_racy::<5>(off)?;
    if !header_ok(h) {
        return None;
    }
    a.check(off, block_size(shape, h[0]), 16).ok()?;
    Some(h)
}

/// Looks `key` up in the dict or set whose body is at `body` without the lock, for
/// [`dispatch::read_optimistic`](crate::dispatch::read_optimistic), which validates the result
/// against the slot's write sequence. Every word is read with a bounds-checked relaxed atomic
/// load ([`Arena::load_words_racy`]), nothing is decoded, and the probe is bounded.
///
/// `Some(Some(cell))`: the key is present, and `cell` is a copy of its value cell (a set: of its
/// key cell), to decode only once the read is validated ([`Cell::inline_value`]).
/// `Some(None)`: the key is absent. `None`: no answer without the lock — words that are not a
/// valid table (a torn read or damage, which the locked path reports), a key of equal hash
/// that lives in a block (only [`cell::eq`] can compare it), or a probe longer than
/// 64 slots.
///
/// Equality is the locked lookup's ([`cell::eq_inline`]): `1`, `1.0` and `True` find each other.
///
/// # Examples
/// ```
/// # let name = format!("doc-lookupracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::htable::{lookup_racy, RacyKey, DICT};
/// use shmstore::Value;
/// let d = store.dict([(1, "one"), (2, "two")])?;
/// let (core, t) = (store.core(), d.token());
/// let get = |k: Value| {
///     let k = RacyKey::new(core, &k).expect("an inline key");
///     read_optimistic(core, &t, |a, body| lookup_racy(a, body, DICT, &k))
/// };
/// let hit = get(Value::Float(1.0)).expect("no writer").expect("1.0 == 1");
/// assert_eq!(hit.inline_value(), Some(Value::from("one")));
/// assert_eq!(get(Value::Int(3)), Some(None)); // absent
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn lookup_racy(a: &Arena, body: u64, shape: Shape, key: &RacyKey<'_>) -> Option<Option<Cell>> {
    Some(probe_racy(a, body, shape, key)?.map(|(_, c)| Cell::from_words(c)))
}

/// The probe of [`lookup_racy`]: `Some(None)` for an absent key, `Some(Some((e, cell)))` for
/// the live entry at offset `e` whose value cell (a set's: key cell) holds the words `cell`,
/// `None` when the lock must answer.
///
/// Only the header words the probe uses are checked (`log2_size`, `cap`, `nentries`), with the
/// block's bounds: the sequence check drops a torn read, and the derived counts (`live`,
/// `filled`) are the locked path's to check.
#[inline(always)]
pub(crate) fn probe_racy(
    a: &Arena,
    body: u64,
    shape: Shape,
    key: &RacyKey<'_>,
) -> Option<Option<(u64, [u64; 2])>> {
    // The value cell is an entry's last two words (a set's key cell, for a set).
    Some(if shape.values {
        probe_words::<DICT_WORDS>(a, body, key)?.map(last_cell)
    } else {
        probe_words::<SET_WORDS>(a, body, key)?.map(last_cell)
    })
}

/// An entry's offset and its last cell's words, from [`probe_words`]' answer.
#[inline(always)]
fn last_cell<const W: usize>((e, w): (u64, &[AtomicU64; W])) -> (u64, [u64; 2]) {
    use std::sync::atomic::Ordering::Relaxed;
    (e, [w[W - 2].load(Relaxed), w[W - 1].load(Relaxed)])
}

/// An entry's size in 8-byte words: a dict's (head, key cell, value cell) and a set's.
const DICT_WORDS: usize = (HEAD + 2 * CELL) as usize / 8;
const SET_WORDS: usize = (HEAD + CELL) as usize / 8;
const _: () = assert!(8 * DICT_WORDS as u64 == DICT.esize() && 8 * SET_WORDS as u64 == SET.esize());
// EMPTY and DUMMY are no entry number: past every table's `cap`.
const _: () = assert!(usable(1 << MAX_LOG2) < DUMMY as u64 && DUMMY < EMPTY);

/// [`probe_racy`] for a table whose entries are `W` words: `Some(Some((e, entry)))` for the live
/// entry at offset `e` whose key is `key`, with the entry's words in place.
///
/// The table is read through two windows ([`Arena::words_slice`]), the index and the entries
/// up to `cap`, each bounds- and alignment-checked once: with the header words, the whole
/// block as the locked path's `open_at` checks it (a table that does not fit in the arena is
/// damage, which the locked path reports, even where the slots a probe visits would fit).
/// Inside them, a slot is one index check away and an entry number's check against
/// `nentries` is the entries window's own index check. Every word is still an atomic load of
/// a word that may be racing, and every one that is used is validated (entry numbers, the
/// `live` flag, the key cell).
#[inline(always)]
fn probe_words<'a, const W: usize>(
    a: &'a Arena,
    body: u64,
    key: &RacyKey<'_>,
) -> Option<Option<(u64, &'a [AtomicU64; W])>> {
    use std::sync::atomic::Ordering::Relaxed;
    let toff = a.load_u64_racy(body).ok()?;
    if toff == 0 {
        return Some(None);
    }
    let [log2, cap, nentries] = a.load_words_racy::<3>(toff)?;
    // The size's range on its own branch: the compiler then knows `size <= 2**30` below, so
    // neither window's length can overflow and `usable` is a table lookup. The block is
    // 16-aligned (`open_at`'s check); `nentries <= cap` is the entries window's `get` below.
    if !(MIN_LOG2..=MAX_LOG2).contains(&log2) {
        return None;
    }
    let size = 1u32 << log2;
    let cap_ok = USABLE_OF_LOG2[log2 as usize];
    if (cap != u64::from(cap_ok)) | (toff & 15 != 0) {
        return None;
    }
    // No overflow: `size` is at most 2**30 and `toff` was just read from inside the arena.
    let index_off = toff + HDR;
    let entries_off = index_off + u64::from(size) * 4;
    // `cap_ok`, equal to `cap`, whose bound the compiler knows; the index and entries are
    // adjacent, so one bounds check covers both windows.
    let (index, entries) = a
        .words_slices::<AtomicU32, [AtomicU64; W]>(index_off, size, cap_ok)
        .ok()?;
    let entries = entries.get(..usize::try_from(nentries).ok()?)?;
    let mask = u64::from(size) - 1;
    let mut perturb = key.hash;
    let mut i = key.hash & mask;
    // Bounded by `RACY_PROBES`: the probe stops at an EMPTY slot, and a longer one (or a
    // garbage index that has none) leaves the answer to the lock.
    for _ in 0..RACY_PROBES {
        let ix = index.get(i as usize)?.load(Relaxed);
        // An entry number first: the window's index check is `ix < nentries`, which EMPTY and
        // DUMMY (above any `cap`) fail, so the common slot costs one test.
        if let Some(e) = entries.get(ix as usize) {
            // The entry's head first; its key cell only when its hash is the key's.
            if e[0].load(Relaxed) == key.hash {
                match e[1].load(Relaxed) {
                    0 => {}
                    1 => {
                        if key.is([e[2].load(Relaxed), e[3].load(Relaxed)])? {
                            return Some(Some((entries_off + u64::from(ix) * 8 * W as u64, e)));
                        }
                        // An unequal key of equal hash (a collision): probe on.
                    }
                    // A bad flag: the locked path reports it.
                    _ => return None,
                }
            }
        } else if ix == EMPTY {
            return Some(None);
        } else if ix != DUMMY {
            // An entry number past `nentries`: damage, for the lock to report.
            return None;
        }
        perturb >>= 5;
        i = (i.wrapping_mul(5).wrapping_add(perturb).wrapping_add(1)) & mask;
    }
    None
}

/// `d[key] = new` for a key already present whose value is None, a bool, an int or a float of
/// `new`'s kind, for [`dispatch::write_fast`](crate::dispatch::write_fast) (which holds the
/// lock and the write): the payload word is the only word that changes, and one 8-byte store
/// replaces it, so a crash leaves the old value or the new one and no journal is needed.
/// `None`, having written nothing, for anything else (a new key, another kind, a block-stored
/// key or value, words that fail a check): [`set_item`] does those.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablesetfast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::Cell;
/// use shmstore::dispatch::write_fast;
/// use shmstore::types::htable::{set_value_fast, RacyKey};
/// use shmstore::Value;
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// let (core, t) = (store.core(), d.token());
/// let k = Value::from("b");
/// let key = RacyKey::new(core, &k).unwrap();
/// let twenty = Cell::scalar(&Value::Int(20)).unwrap();
/// assert_eq!(write_fast(core, &t, |a, body| set_value_fast(a, body, &key, twenty)), Some(()));
/// assert_eq!(d.get("b")?, Some(Value::Int(20)));
/// let c = Value::from("c");
/// let absent = RacyKey::new(core, &c).unwrap();
/// assert_eq!(write_fast(core, &t, |a, body| set_value_fast(a, body, &absent, twenty)), None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set_value_fast(a: &Arena, body: u64, key: &RacyKey<'_>, new: Cell) -> Option<()> {
    if !new.is_word_scalar() {
        return None;
    }
    let (_, e) = probe_words::<DICT_WORDS>(a, body, key)??;
    // The value cell: the entry's last two words, in the window the probe checked.
    new.replace_word_scalar(e.last_chunk::<2>()?)
}

/// The number of live entries of the dict or set (a table of `shape`) whose body is at `body`,
/// read without the lock for [`dispatch::read_optimistic`](crate::dispatch::read_optimistic):
/// `None` when the header read is not a valid one, or describes a block that does not fit in
/// the arena (torn, or damage the locked path reports).
///
/// # Examples
/// ```
/// # let name = format!("doc-htablelenracy-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::read_optimistic;
/// use shmstore::types::htable::{len_racy, SET};
/// let s = store.set([1, 2, 3])?;
/// let (core, t) = (store.core(), s.token());
/// assert_eq!(read_optimistic(core, &t, |a, body| len_racy(a, body, SET)), Some(3));
/// s.clear()?; // no table block at all
/// assert_eq!(read_optimistic(core, &t, |a, body| len_racy(a, body, SET)), Some(0));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn len_racy(a: &Arena, body: u64, shape: Shape) -> Option<u64> {
    let [toff] = a.load_words_racy::<1>(body)?;
    if toff == 0 {
        return Some(0);
    }
    racy_header(a, shape, toff).map(|[_, _, _, live, _]| live)
}

/// Opens a write on the object's sequence (see `Table::write_begin`) for one mutation: an
/// optimistic reader ([`lookup_racy`], [`len_racy`]) that overlaps it retries or takes the lock.
/// Nested writes share the outer one, so a compound method (an `update`) opens one around all
/// of its steps and readers see it whole. An object still being built (`create`, whose context
/// has no slot) has no readers and opens none.
#[inline]
pub(crate) fn writing<'a>(ctx: &Ctx<'a>) -> Result<Option<crate::table::SeqWrite<'a>>> {
    if ctx.slot == UNPUBLISHED {
        return Ok(None);
    }
    ctx.core.table().write_begin(ctx.slot).map(Some)
}

/// The slot of a context whose object is not yet in the table (see [`create`]).
/// `Ctx::slot` of a body no slot names (yet, or any more): its writes open no seqlock.
pub(crate) const UNPUBLISHED: u32 = u32::MAX;

/// The value cell of a found key (dicts only), with its offset.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablevaluecell-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::{self, Cell};
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::Value;
/// let d = store.dict([("n", 5)])?;
/// let (c, v) = with_object(store.core(), &d.token(), |ctx| {
///     let f = htable::find(ctx, DICT, &Value::from("n"))?;
///     let (c, at) = htable::value_cell(ctx, &f)?.expect("found");
///     Ok((c, cell::load(ctx.core, &c, at)?))
/// })?;
/// assert_eq!(c, Cell::scalar(&Value::Int(5)).unwrap()); // an int lives in its cell
/// assert_eq!(v, Value::Int(5));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn value_cell(ctx: &Ctx<'_>, f: &Find) -> Result<Option<(Cell, u64)>> {
    match f.hit() {
        Some((t, _, ix)) => {
            let at = t.val_off(ix);
            Ok(Some((read_cell(ctx.core, at)?, at)))
        }
        None => Ok(None),
    }
}

/// The value of a found key (dicts only).
///
/// # Examples
/// ```
/// # let name = format!("doc-htablevalue-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::Value;
/// let d = store.dict([("a", vec![1, 2])])?;
/// let (core, t) = (store.core(), d.token());
/// let lookup = |k: &str| {
///     let k = Value::from(k);
///     with_object(core, &t, |ctx| {
///         let f = htable::find(ctx, DICT, &k)?;
///         htable::value(ctx, &f)
///     })
/// };
/// assert_eq!(lookup("a")?, Some(Value::List(vec![Value::Int(1), Value::Int(2)])));
/// assert_eq!(lookup("b")?, None);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn value(ctx: &Ctx<'_>, f: &Find) -> Result<Option<Value>> {
    match value_cell(ctx, f)? {
        Some((c, at)) => cell::load(ctx.core, &c, at).map(Some),
        None => Ok(None),
    }
}

/// Replaces the value of a found key (dicts only); false if the key was not found.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablereplace-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (core, t) = (store.core(), d.token());
/// let replace = |k: &str| {
///     let k = Value::from(k);
///     with_object(core, &t, |ctx| {
///         let f = htable::find(ctx, DICT, &k)?;
///         htable::replace_value(ctx, &f, &Value::Int(10))
///     })
/// };
/// assert!(replace("a")?);
/// assert!(!replace("b")?); // not found: nothing inserted
/// assert_eq!(d.to_string(), "{'a': 10}");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn replace_value(ctx: &mut Ctx<'_>, f: &Find, v: &Value) -> Result<bool> {
    let Some((t, _, ix)) = f.hit() else {
        return Ok(false);
    };
    let _w = writing(ctx)?;
    let at = t.val_off(ix);
    let new = cell::store(ctx.core, v)?;
    let old = read_cell(ctx.core, at)?;
    // A 16-byte cell is two stores: journal the old cell first (published by one store of the
    // cell's offset), so `repair` rolls a torn write back.
    let a = ctx.core.arena();
    a.write(Offset::new(t.off + F_JOURNAL_CELL), old)?;
    a.store_u64(t.off + F_JOURNAL, at)?;
    a.write(Offset::new(at), new)?;
    failpoint!("htable.replace.before_journal_clear");
    a.store_u64(t.off + F_JOURNAL, 0)?;
    if old.owns_resources() {
        cell::release(ctx.core, &old, &mut ctx.released)?;
    }
    Ok(true)
}

/// Builds an empty table block with `2**log2` slots (not yet published).
fn new_table(core: &Core, shape: Shape, log2: u64) -> Result<Table> {
    let off = core.alloc(block_size(shape, log2))?;
    let size = 1u64 << log2;
    core.arena().write(
        Offset::new(off),
        TableHdr {
            log2_size: log2,
            cap: usable(size),
            nentries: 0,
            live: 0,
            filled: 0,
            reserved: [0; 3],
        },
    )?;
    core.arena().fill(off + HDR, size * 4, 0xff)?;
    open_at(core, shape, off)
}

/// Moves the live entries into a new table with room for `need` entries, publishes it and frees
/// the old block.
fn resize(ctx: &Ctx<'_>, shape: Shape, old: Option<&Table>, need: u64) -> Result<Table> {
    let _w = writing(ctx)?;
    let core = ctx.core;
    let mut t = new_table(core, shape, log2_for(need)?)?;
    let moved = (|| {
        let mut n = 0;
        if let Some(old) = old {
            for ix in 0..old.nentries {
                let e = head(core, old, ix)?;
                if e.live == 0 {
                    continue;
                }
                if n >= t.cap {
                    return Err(Error::corrupt("more live entries than counted", old.off));
                }
                core.arena()
                    .copy_within(old.entry(ix), t.entry(n), t.esize)?;
                let i = free_slot(core, &t, e.hash)?;
                set_slot(core, &t, i, n as u32)?;
                n += 1;
            }
        }
        Ok(n)
    })();
    let n = match moved {
        Ok(n) => n,
        Err(e) => {
            let _ = core.free(t.off);
            return Err(e);
        }
    };
    for field in [F_NENTRIES, F_LIVE, F_FILLED] {
        store_hdr(core, &t, field, n)?;
    }
    t.nentries = n;
    t.live = n;
    t.filled = n;
    failpoint!("htable.grow.before_publish");
    core.arena().store_u64(ctx.body, t.off)?;
    if let Some(old) = old {
        core.free(old.off)?;
    }
    Ok(t)
}

/// Makes room for `extra` more entries (one resize, for a bulk insert).
///
/// # Errors
/// `OutOfMemory`; `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablereserve-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, TableHdr, DICT};
/// let d = store.dict([(0, 0)])?;
/// let cap = with_object(store.core(), &d.token(), |ctx| {
///     htable::reserve(ctx, DICT, 1000)?;
///     let a = ctx.core.arena();
///     let hdr: TableHdr = a.read(Offset::new(a.load_u64(ctx.body)?))?;
///     Ok(hdr.cap)
/// })?;
/// assert!(cap >= 1001);
/// assert_eq!(d.len()?, 1); // the entries are unchanged
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn reserve(ctx: &Ctx<'_>, shape: Shape, extra: u64) -> Result<()> {
    let _w = writing(ctx)?;
    let t = open(ctx, shape)?;
    let (live, room) = t.map_or((0, 0), |t| (t.live, t.cap - t.nentries.max(t.filled)));
    if room < extra {
        resize(ctx, shape, t.as_ref(), live.saturating_add(extra))?;
    }
    Ok(())
}

/// Inserts `key` (with `value` for a dict), which `f` found missing.
///
/// # Errors
/// `OutOfMemory` (nothing changed); `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htableinsert-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let (k, v) = (Value::from("b"), Value::Int(2));
/// let inserted = with_object(store.core(), &d.token(), |ctx| {
///     let f = htable::find(ctx, DICT, &k)?;
///     if f.found() {
///         return Ok(false);
///     }
///     htable::insert(ctx, DICT, &f, &k, Some(&v))?; // reuses the lookup's probe
///     Ok(true)
/// })?;
/// assert!(inserted);
/// assert_eq!(d.to_string(), "{'a': 1, 'b': 2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn insert(
    ctx: &mut Ctx<'_>,
    shape: Shape,
    f: &Find,
    key: &Value,
    value: Option<&Value>,
) -> Result<()> {
    let _w = writing(ctx)?;
    let core = ctx.core;
    let (t, slot) = match (f.t, f.probe) {
        (Some(t), Some(Probe::Missing { slot }))
            if t.nentries < t.cap && (t.filled < t.cap || slot_is(core, &t, slot, DUMMY)?) =>
        {
            (t, slot)
        }
        (_, Some(Probe::Found { .. })) => {
            return Err(Error::corrupt("insert of a key already present", ctx.body))
        }
        (t, _) => {
            // Grow to about twice the live entries (CPython's GROWTH_RATE), which also
            // compacts a table full of deleted entries.
            let live = t.map_or(0, |t| t.live);
            let t = resize(ctx, shape, t.as_ref(), live.saturating_mul(2).max(live + 1))?;
            let slot = free_slot(core, &t, f.hash)?;
            (t, slot)
        }
    };
    let kc = cell::store(core, key)?;
    let vc = match value {
        Some(v) if shape.values => match cell::store(core, v) {
            Ok(c) => Some(c),
            Err(e) => {
                cell::release(core, &kc, &mut ctx.released)?;
                return Err(e);
            }
        },
        _ => None,
    };
    let ix = t.nentries;
    let a = core.arena();
    a.write(
        Offset::new(t.entry(ix)),
        EntryHead {
            hash: f.hash,
            live: 1,
        },
    )?;
    a.write(Offset::new(t.key_off(ix)), kc)?;
    if shape.values {
        a.write(Offset::new(t.val_off(ix)), vc.unwrap_or_default())?;
    }
    // Publish.
    store_hdr(core, &t, F_NENTRIES, ix + 1)?;
    let was_empty = slot_is(core, &t, slot, EMPTY)?;
    set_slot(core, &t, slot, ix as u32)?;
    if was_empty {
        store_hdr(core, &t, F_FILLED, t.filled + 1)?;
    }
    store_hdr(core, &t, F_LIVE, t.live + 1)
}

#[inline]
fn slot_is(core: &Core, t: &Table, i: u64, what: u32) -> Result<bool> {
    Ok(slot(core, t, i)? == what)
}

/// Sets `key` to `value` (a set: adds `key`); true if the key was new.
///
/// # Errors
/// `TypeError` for an unhashable key; `OutOfMemory`; `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablesetitem-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT, SET};
/// use shmstore::Value;
/// let core = store.core();
/// let d = store.dict([("a", 1)])?;
/// let new = with_object(core, &d.token(), |ctx| htable::set_item(ctx, DICT, &Value::from("a"), Some(&Value::Int(2))))?;
/// assert!(!new); // replaced
/// assert_eq!(d.get("a")?, Some(Value::Int(2)));
/// let s = store.set::<_, i64>([])?;
/// assert!(with_object(core, &s.token(), |ctx| htable::set_item(ctx, SET, &Value::Int(7), None))?);
/// assert!(s.contains(7)?);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn set_item(
    ctx: &mut Ctx<'_>,
    shape: Shape,
    key: &Value,
    value: Option<&Value>,
) -> Result<bool> {
    let f = find(ctx, shape, key)?;
    if f.found() {
        if let (true, Some(v)) = (shape.values, value) {
            replace_value(ctx, &f, v)?;
        }
        Ok(false)
    } else {
        insert(ctx, shape, &f, key, value)?;
        Ok(true)
    }
}

/// Unpublishes entry `ix` (indexed from `slot`) and releases its cells, returning its key and
/// value when `load` asks for them.
fn delete(
    ctx: &mut Ctx<'_>,
    shape: Shape,
    t: &Table,
    slot: u64,
    ix: u64,
    load: bool,
) -> Result<Option<(Value, Option<Value>)>> {
    let _w = writing(ctx)?;
    let core = ctx.core;
    let kat = t.key_off(ix);
    let kc = read_cell(core, kat)?;
    let vc = if shape.values {
        let at = t.val_off(ix);
        Some((read_cell(core, at)?, at))
    } else {
        None
    };
    let out = if load {
        let k = cell::load(core, &kc, kat)?;
        let v = match vc {
            Some((c, at)) => Some(cell::load(core, &c, at)?),
            None => None,
        };
        Some((k, v))
    } else {
        None
    };
    // Unpublish, then fix the derived fields.
    core.arena().store_u64(t.entry(ix) + 8, 0)?;
    set_slot(core, t, slot, DUMMY)?;
    let mut n = t.nentries;
    while n > 0 && head(core, t, n - 1)?.live == 0 {
        n -= 1;
    }
    if n != t.nentries {
        store_hdr(core, t, F_NENTRIES, n)?;
    }
    store_hdr(core, t, F_LIVE, t.live.saturating_sub(1))?;
    cell::release(core, &kc, &mut ctx.released)?;
    if let Some((c, _)) = vc {
        cell::release(core, &c, &mut ctx.released)?;
    }
    Ok(out)
}

/// Removes the key `f` found; false if it was not found.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htableremove-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, SET};
/// use shmstore::Value;
/// let s = store.set([1, 2])?;
/// let (core, t) = (store.core(), s.token());
/// let remove = |v: i64| {
///     with_object(core, &t, |ctx| {
///         let f = htable::find(ctx, SET, &Value::Int(v))?;
///         htable::remove(ctx, SET, &f)
///     })
/// };
/// assert!(remove(1)?);
/// assert!(!remove(1)?);
/// assert_eq!(s.to_string(), "{2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn remove(ctx: &mut Ctx<'_>, shape: Shape, f: &Find) -> Result<bool> {
    match f.hit() {
        Some((t, slot, ix)) => delete(ctx, shape, &t, slot, ix, false).map(|_| true),
        None => Ok(false),
    }
}

/// Removes the key `f` found and returns copies of its key and value (None if it was not found).
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htabletake-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// use shmstore::Value;
/// let d = store.dict([(1, "one")])?;
/// let taken = with_object(store.core(), &d.token(), |ctx| {
///     let f = htable::find(ctx, DICT, &Value::Float(1.0))?; // 1.0 == 1
///     htable::take(ctx, DICT, &f)
/// })?;
/// assert_eq!(taken, Some((Value::Int(1), Some(Value::from("one"))))); // the stored key
/// assert!(d.is_empty()?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn take(ctx: &mut Ctx<'_>, shape: Shape, f: &Find) -> Result<Option<(Value, Option<Value>)>> {
    match f.hit() {
        Some((t, slot, ix)) => delete(ctx, shape, &t, slot, ix, true),
        None => Ok(None),
    }
}

/// Removes and returns the most recently inserted entry (Python's `dict.popitem`); None when
/// empty.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablepoplast-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, SET};
/// use shmstore::Value;
/// let s = store.set(["x", "y"])?;
/// let (core, t) = (store.core(), s.token());
/// assert_eq!(with_object(core, &t, |ctx| htable::pop_last(ctx, SET))?, Some((Value::from("y"), None)));
/// with_object(core, &t, |ctx| htable::pop_last(ctx, SET))?;
/// assert_eq!(with_object(core, &t, |ctx| htable::pop_last(ctx, SET))?, None); // empty
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn pop_last(ctx: &mut Ctx<'_>, shape: Shape) -> Result<Option<(Value, Option<Value>)>> {
    let Some(t) = open(ctx, shape)? else {
        return Ok(None);
    };
    let mut ix = t.nentries;
    let e = loop {
        if ix == 0 {
            return Ok(None);
        }
        ix -= 1;
        let e = head(ctx.core, &t, ix)?;
        if e.live == 1 {
            break e;
        }
    };
    let slot = slot_of(ctx.core, &t, e.hash, ix)?;
    delete(ctx, shape, &t, slot, ix, true)
}

/// Calls `f(key cell, key offset, value cell and offset)` for each live entry, in order.
///
/// # Examples
/// ```
/// # let name = format!("doc-htableforeach-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// let d = store.dict([("a", 1), ("b", 2), ("c", 3)])?;
/// let total = with_object(store.core(), &d.token(), |ctx| {
///     let mut total = 0;
///     htable::for_each(ctx, DICT, |_key, _at, value| {
///         if let Some((c, at)) = value {
///             total += cell::load(ctx.core, &c, at)?.as_int().unwrap_or(0);
///         }
///         Ok(())
///     })?;
///     Ok(total)
/// })?;
/// assert_eq!(total, 6);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn for_each(
    ctx: &Ctx<'_>,
    shape: Shape,
    mut f: impl FnMut(Cell, u64, Option<(Cell, u64)>) -> Result<()>,
) -> Result<()> {
    let Some(t) = open(ctx, shape)? else {
        return Ok(());
    };
    for ix in 0..t.nentries {
        if head(ctx.core, &t, ix)?.live == 0 {
            continue;
        }
        let kat = t.key_off(ix);
        let vc = if shape.values {
            let at = t.val_off(ix);
            Some((read_cell(ctx.core, at)?, at))
        } else {
            None
        };
        f(read_cell(ctx.core, kat)?, kat, vc)?;
    }
    Ok(())
}

/// Copies of the live keys, in order.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablekeys-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, SET};
/// use shmstore::Value;
/// let s = store.set([3, 1])?;
/// let keys = with_object(store.core(), &s.token(), |ctx| htable::keys(ctx, SET))?;
/// assert_eq!(keys, vec![Value::Int(3), Value::Int(1)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn keys(ctx: &Ctx<'_>, shape: Shape) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for_each(ctx, shape, |k, at, _| {
        out.push(cell::load(ctx.core, &k, at)?);
        Ok(())
    })?;
    Ok(out)
}

/// Copies of the live values (dicts), in order.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablevalues-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable;
/// use shmstore::Value;
/// let d = store.dict([("a", 1), ("b", 2)])?;
/// let values = with_object(store.core(), &d.token(), |ctx| htable::values(ctx))?;
/// assert_eq!(values, vec![Value::Int(1), Value::Int(2)]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn values(ctx: &Ctx<'_>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for_each(ctx, DICT, |_, _, v| {
        if let Some((c, at)) = v {
            out.push(cell::load(ctx.core, &c, at)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Copies of the live (key, value) pairs (dicts), in order.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htableitems-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable;
/// use shmstore::Value;
/// let d = store.dict([("a", 1)])?;
/// let items = with_object(store.core(), &d.token(), |ctx| htable::items(ctx))?;
/// assert_eq!(items, vec![(Value::from("a"), Value::Int(1))]);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn items(ctx: &Ctx<'_>) -> Result<Vec<(Value, Value)>> {
    let mut out = Vec::new();
    for_each(ctx, DICT, |k, kat, v| {
        let val = match v {
            Some((c, at)) => cell::load(ctx.core, &c, at)?,
            None => Value::None,
        };
        out.push((cell::load(ctx.core, &k, kat)?, val));
        Ok(())
    })?;
    Ok(out)
}

/// Empties the table: unpublishes it, then releases every cell and frees the block.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htableclear-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, DICT};
/// let core = store.core();
/// let before = core.alloc_stats()?.blocks_in_use;
/// let d = store.dict([("a string longer than an inline cell", 1)])?;
/// with_object(core, &d.token(), |ctx| htable::clear(ctx, DICT))?;
/// assert!(d.is_empty()?);
/// // The table block and the long key's block are freed; only the body remains.
/// assert_eq!(core.alloc_stats()?.blocks_in_use, before + 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn clear(ctx: &mut Ctx<'_>, shape: Shape) -> Result<()> {
    let _w = writing(ctx)?;
    let Some(t) = open(ctx, shape)? else {
        return Ok(());
    };
    ctx.core.arena().store_u64(ctx.body, 0)?;
    let mut owned = Vec::new();
    for ix in 0..t.nentries {
        if head(ctx.core, &t, ix)?.live == 0 {
            continue;
        }
        owned.push(read_cell(ctx.core, t.key_off(ix))?);
        if shape.values {
            owned.push(read_cell(ctx.core, t.val_off(ix))?);
        }
    }
    for c in owned.iter().filter(|c| c.owns_resources()) {
        cell::release(ctx.core, c, &mut ctx.released)?;
    }
    ctx.core.free(t.off)
}

/// Frees everything the body owns, the body included.
///
/// # Errors
/// `Corrupt`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htabledropbody-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::htable::{self, HashBody, SET};
/// use shmstore::types::Ctx;
/// use shmstore::Value;
/// let core = store.core();
/// let before = core.alloc_stats()?;
/// // A body no object owns yet (what `create` cleans up when filling fails).
/// let size = std::mem::size_of::<HashBody>() as u64;
/// let body = core.alloc(size)?;
/// core.arena().fill(body, size, 0)?;
/// let mut ctx = Ctx { core, slot: u32::MAX, body, lock_off: 0, repair: |_| Ok(()), released: Vec::new() };
/// htable::set_item(&mut ctx, SET, &Value::from("a string that needs a block"), None)?;
/// htable::drop_body(&mut ctx, SET)?;
/// assert_eq!(core.alloc_stats()?, before); // every block given back
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn drop_body(ctx: &mut Ctx<'_>, shape: Shape) -> Result<()> {
    clear(ctx, shape)?;
    ctx.core.free(ctx.body)
}

/// Rebuilds what is derived from the entries — the index, `live`, `filled` — after a holder
/// died mid-operation.
///
/// # Errors
/// `Corrupt` when the table block itself fails its checks.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablerepair-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::dispatch::with_object;
/// use shmstore::types::htable::{self, TableHdr, DICT};
/// use shmstore::Value;
/// let d = store.dict((0..5).map(|i| (i, i * 10)))?;
/// let found = with_object(store.core(), &d.token(), |ctx| {
///     // Wipe the index (all EMPTY), as a holder killed mid-rebuild could leave it.
///     let a = ctx.core.arena();
///     let off = a.load_u64(ctx.body)?;
///     let hdr: TableHdr = a.read(Offset::new(off))?;
///     a.fill(off + 64, 4 << hdr.log2_size, 0xff)?;
///     let lost = htable::find(ctx, DICT, &Value::Int(3))?.found();
///     htable::repair(ctx, DICT)?; // rebuilt from the entries, the truth
///     Ok((lost, htable::find(ctx, DICT, &Value::Int(3))?.found()))
/// })?;
/// assert_eq!(found, (false, true));
/// assert_eq!(d.get(3)?, Some(Value::Int(30)));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn repair(ctx: &mut Ctx<'_>, shape: Shape) -> Result<()> {
    let _w = writing(ctx)?;
    let Some(t) = open(ctx, shape)? else {
        return Ok(());
    };
    let core = ctx.core;
    // Roll back an in-place value replacement a dead holder left half written.
    let at = core.arena().load_u64(t.off + F_JOURNAL)?;
    if at != 0 {
        let first = t.val_off(0);
        let in_entries =
            at >= first && (at - first) % t.esize == 0 && (at - first) / t.esize < t.nentries;
        if in_entries {
            let old: Cell = core.arena().read(Offset::new(t.off + F_JOURNAL_CELL))?;
            core.arena().write(Offset::new(at), old)?;
        }
        core.arena().store_u64(t.off + F_JOURNAL, 0)?;
    }
    core.arena().fill(t.index, t.size * 4, 0xff)?;
    let mut live = 0;
    for ix in 0..t.nentries {
        let e = head(core, &t, ix)?;
        if e.live == 1 {
            let i = free_slot(core, &t, e.hash)?;
            set_slot(core, &t, i, ix as u32)?;
            live += 1;
        }
    }
    store_hdr(core, &t, F_LIVE, live)?;
    store_hdr(core, &t, F_FILLED, live)
}

/// Creates an object of `type_id` with an empty table, fills it with `fill` (which runs on the
/// object before anyone else can see it), and registers it.
///
/// # Errors
/// What `fill` returns; `OutOfMemory`, `TableFull`.
///
/// # Examples
/// ```
/// # let name = format!("doc-htablecreate-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::types::htable::{self, SET};
/// use shmstore::{type_ids, SetProxy, Value};
/// let core = store.core();
/// let t = htable::create(core, SET, type_ids::SET, |ctx| htable::repair(ctx, SET), |ctx| {
///     for i in 0..3 {
///         htable::set_item(ctx, SET, &Value::Int(i), None)?;
///     }
///     Ok(())
/// })?; // one reference: ours
/// let s = SetProxy::try_from(store.attach(&t)?)?;
/// shmstore::dispatch::release(core, &t); // the proxy holds its own
/// assert_eq!(s.to_string(), "{0, 1, 2}");
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(
    core: &Core,
    shape: Shape,
    type_id: u16,
    repair: fn(&mut Ctx<'_>) -> Result<()>,
    fill: impl FnOnce(&mut Ctx<'_>) -> Result<()>,
) -> Result<Token> {
    let body = core.alloc(size_of::<HashBody>() as u64)?;
    let mut ctx = Ctx {
        core,
        slot: UNPUBLISHED,
        body,
        lock_off: 0,
        repair,
        released: Vec::new(),
    };
    let built = core
        .arena()
        .write(Offset::new(body), HashBody::zeroed())
        .and_then(|()| fill(&mut ctx))
        .and_then(|()| core.create_object(type_id, body));
    if built.is_err() {
        let _ = drop_body(&mut ctx, shape);
    }
    crate::dispatch::release_all(core, ctx.released);
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A borrowed str key's cell and hash are its `Value`'s, for every length a cell holds
    /// inline (and none past it), so `get_borrowed("k")` finds what `get("k")` finds.
    #[test]
    fn borrowed_str_keys_prepare_as_their_values() {
        let store = crate::Store::create(
            &format!("t{}-borrowed-str-keys", std::process::id()),
            1 << 20,
        )
        .unwrap();
        let core = store.core();
        let text = "abcdefghijklmnopqrstuvwxyz\u{e9}\u{20ac}";
        for start in 0..4 {
            for end in start..=text.len() {
                let Some(s) = text.get(start..end) else {
                    continue; // not on a char boundary
                };
                let v = Value::from(s);
                assert_eq!(Cell::short_str(s), Cell::scalar(&v), "{s:?}");
                let (b, o) = (s.racy_key(core), RacyKey::new(core, &v));
                assert_eq!(b.is_some(), s.len() <= 14, "{s:?}");
                if let (Some(b), Some(o)) = (b, o) {
                    assert_eq!((b.hash, b.cell), (o.hash, o.cell), "{s:?}");
                }
            }
        }
    }

    /// The attachment's precomputed int and str hashes are `Value::hash_with_seed`'s, which the
    /// locked paths and every other key kind use: a key hashed one way is found the other way.
    #[test]
    fn precomputed_int_and_str_hashes_are_the_values_hashes() {
        let store =
            crate::Store::create(&format!("t{}-kind-seeds", std::process::id()), 1 << 20).unwrap();
        let core = store.core();
        let seed = core.hash_seed();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut ints = vec![0, 1, -1, i64::MIN, i64::MAX];
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ints.push(x as i64);
        }
        for i in ints {
            let want = Value::Int(i).hash_with_seed(seed).unwrap();
            assert_eq!(core.hash_int(i), want, "{i}");
            assert_eq!(hash(core, &Value::Int(i)).unwrap(), want, "{i}");
            // 1 == 1.0 == True: equal keys hash alike whichever path hashes them.
            if i.unsigned_abs() < 1 << 53 {
                assert_eq!(hash(core, &Value::Float(i as f64)).unwrap(), want, "{i}");
            }
        }
        assert_eq!(hash(core, &Value::Bool(true)).unwrap(), core.hash_int(1));
        let text = "abcdefghijklmnopqrstuvwxyz0123456789\u{e9}\u{20ac}";
        for end in (0..=text.len()).filter(|&e| text.is_char_boundary(e)) {
            let s = &text[..end];
            let want = Value::from(s).hash_with_seed(seed).unwrap();
            assert_eq!(core.hash_str(s), want, "{s:?}");
            assert_eq!(hash(core, &Value::from(s)).unwrap(), want, "{s:?}");
        }
    }

    const BODY: u64 = 0;
    const TOFF: u64 = 64;

    /// A heap arena holding a dict body at 0 and a table block of 8 slots at 64 whose entry `ix`
    /// has hash `ix` (so it sits in index slot `ix`), key `Int(ix)` and value `Int(10 * ix)`.
    fn heap_dict(n: u64) -> Arena {
        let a = Arena::heap(512);
        a.store_u64(BODY, TOFF).unwrap();
        let hdr = [3, usable(8), n, n, n];
        for (i, w) in hdr.iter().enumerate() {
            a.store_u64(TOFF + 8 * i as u64, *w).unwrap();
        }
        a.fill(TOFF + HDR, 8 * 4, 0xff).unwrap();
        let entries = TOFF + HDR + 8 * 4;
        for ix in 0..n {
            let e = entries + ix * DICT.esize();
            let k = Cell::scalar(&Value::Int(ix as i64)).unwrap();
            let v = Cell::scalar(&Value::Int(10 * ix as i64)).unwrap();
            a.write(Offset::new(e), EntryHead { hash: ix, live: 1 })
                .unwrap();
            a.write(Offset::new(e + HEAD), k).unwrap();
            a.write(Offset::new(e + HEAD + CELL), v).unwrap();
            a.write(Offset::<u32>::new(TOFF + HDR + 4 * ix), ix as u32)
                .unwrap();
        }
        a
    }

    fn key(v: &Value, hash: u64) -> RacyKey<'_> {
        RacyKey::with_hash(v, hash)
    }

    fn get(a: &Arena, body: u64, k: i64) -> Option<Option<Value>> {
        let v = Value::Int(k);
        lookup_racy(a, body, DICT, &key(&v, k as u64)).map(|c| c.and_then(|c| c.inline_value()))
    }

    #[test]
    fn racy_lookup_reads_a_sound_table() {
        let a = heap_dict(4);
        assert_eq!(get(&a, BODY, 2), Some(Some(Value::Int(20))));
        assert_eq!(get(&a, BODY, 5), Some(None)); // slot 5 is EMPTY
        let f = Value::Float(3.0); // 3.0 == 3, hashed alike
        let c = lookup_racy(&a, BODY, DICT, &key(&f, 3)).unwrap().unwrap();
        assert_eq!(c.inline_value(), Some(Value::Int(30)));
        let s = Value::from("3"); // an inline key of another kind: not equal
        assert_eq!(lookup_racy(&a, BODY, DICT, &key(&s, 3)), Some(None));
        let t = Value::Bool(true); // True == 1
        let c = lookup_racy(&a, BODY, DICT, &key(&t, 1)).unwrap().unwrap();
        assert_eq!(c.inline_value(), Some(Value::Int(10)));
        let f = Value::Float(2.5); // a number of equal hash and another value: a collision
        assert_eq!(lookup_racy(&a, BODY, DICT, &key(&f, 2)), Some(None));
        // A NaN is unequal even to itself: never prepared, the locked path compares it.
        assert!(Num::of(&Value::Float(f64::NAN)).is_none());
        assert_eq!(len_racy(&a, BODY, DICT), Some(4));
        // No table block: empty.
        a.store_u64(BODY, 0).unwrap();
        assert_eq!(get(&a, BODY, 2), Some(None));
        assert_eq!(len_racy(&a, BODY, DICT), Some(0));
    }

    #[test]
    fn racy_lookup_gives_up_on_corrupt_words_without_panicking() {
        let w = |a: &Arena, off: u64, v: u64| a.store_u64(off, v).unwrap();
        // Each damage, applied to a sound table: the lookup (and `len_racy`, for the header)
        // says "take the lock" instead of answering, panicking or looping.
        let header_damage: [(u64, u64); 7] = [
            (0, 0),        // log2_size below the minimum
            (0, 31),       // above the maximum
            (0, u64::MAX), // wraps
            (8, 6),        // cap is not two thirds of the size
            (16, 6),       // more entries than room
            (24, 5),       // more live entries than entries
            (32, 6),       // more filled slots than room
        ];
        for (field, v) in header_damage {
            let a = heap_dict(4);
            w(&a, TOFF + field, v);
            // The lookup reads only `log2_size`, `cap` and `nentries` (the counts it does not
            // use are the locked path's to check).
            if field < 24 {
                assert_eq!(get(&a, BODY, 2), None, "header word {field} = {v}");
            }
            assert_eq!(len_racy(&a, BODY, DICT), None, "header word {field} = {v}");
        }
        // The body's table offset past the end, inside the last word, misaligned.
        for off in [u64::MAX, 512, 508, TOFF + 4] {
            let a = heap_dict(4);
            w(&a, BODY, off);
            assert_eq!(get(&a, BODY, 2), None, "table at {off}");
            assert_eq!(len_racy(&a, BODY, DICT), None, "table at {off}");
        }
        // The body itself out of bounds.
        assert_eq!(get(&heap_dict(4), 600, 2), None);
        // An index slot naming an entry past `nentries`.
        let a = heap_dict(4);
        a.write(Offset::<u32>::new(TOFF + HDR + 4 * 2), 4u32)
            .unwrap();
        assert_eq!(get(&a, BODY, 2), None);
        // A bad `live` flag.
        let a = heap_dict(4);
        let entries = TOFF + HDR + 8 * 4;
        w(&a, entries + 2 * DICT.esize() + 8, 7);
        assert_eq!(get(&a, BODY, 2), None);
        // An index with no EMPTY slot (all DUMMY): the probe is bounded.
        let a = heap_dict(4);
        a.fill(TOFF + HDR, 8 * 4, 0xff).unwrap();
        for i in 0..8 {
            a.write(Offset::<u32>::new(TOFF + HDR + 4 * i), DUMMY)
                .unwrap();
        }
        assert_eq!(get(&a, BODY, 2), None);
        // The whole table moved 8 bytes on: 8-aligned but not 16-aligned, which the locked
        // path refuses, so the lookup does not answer either; moved 16 bytes on, it does.
        for (by, found) in [(8, None), (16, Some(Some(Value::Int(20))))] {
            let a = heap_dict(4);
            a.copy_within(TOFF, TOFF + by, block_size(DICT, 3)).unwrap();
            w(&a, BODY, TOFF + by);
            assert_eq!(get(&a, BODY, 2), found, "table at {}", TOFF + by);
        }
        // A header claiming 16 slots: the index fits in the arena, the entries up to `cap` do
        // not (the locked path reports it, even though slots a probe visits fit).
        let a = heap_dict(4);
        w(&a, TOFF, 4);
        w(&a, TOFF + 8, usable(16));
        assert!(TOFF + HDR + 16 * 4 + 4 * DICT.esize() <= a.len());
        assert!(TOFF + block_size(DICT, 4) > a.len());
        assert_eq!(get(&a, BODY, 2), None);
        // A sound header claiming 2**30 slots: the index runs off the arena.
        let a = heap_dict(0);
        w(&a, TOFF, MAX_LOG2);
        w(&a, TOFF + 8, usable(1 << MAX_LOG2));
        assert_eq!(get(&a, BODY, 2), None);
        assert_eq!(len_racy(&a, BODY, DICT), None);
        // A key of equal hash stored in a block: only the locked path can compare it.
        let a = heap_dict(4);
        let block_key: Cell = bytemuck::cast([6u64 | (20 << 32), 256]); // STR, 20 bytes at 256
        a.write(Offset::new(entries + 2 * DICT.esize() + HEAD), block_key)
            .unwrap();
        assert_eq!(get(&a, BODY, 2), None);
        // A bad bool key cell of equal hash, against a numeric key.
        let a = heap_dict(4);
        let bad_bool: Cell = bytemuck::cast([1u64, 2]);
        a.write(Offset::new(entries + 2 * DICT.esize() + HEAD), bad_bool)
            .unwrap();
        assert_eq!(get(&a, BODY, 2), None);
    }

    #[test]
    fn racy_lookup_over_garbage_terminates() {
        // Arenas of pseudo-random words, with a few plausible headers planted: every lookup
        // ends (bounded probe) and nothing panics.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..200 {
            let a = Arena::heap(4096);
            for off in (0..4096).step_by(8) {
                let v = match next() % 4 {
                    0 => next() % 4096,
                    1 => u64::from(u32::MAX - (next() % 2) as u32),
                    2 => next() % 8,
                    _ => next(),
                };
                a.store_u64(off, v).unwrap();
            }
            let toff = (next() % 4000) & !15;
            let log2 = 3 + next() % 3;
            for (i, v) in [log2, usable(1 << log2), next() % 6, next() % 4, next() % 6]
                .iter()
                .enumerate()
            {
                a.store_u64(toff + 8 * i as u64, *v).unwrap();
            }
            a.store_u64(0, toff).unwrap();
            for k in 0..20 {
                let v = Value::Int(k);
                let hash = if round % 2 == 0 { next() } else { k as u64 };
                let body = if k % 5 == 0 { next() % 4200 } else { 0 };
                let _ = lookup_racy(&a, body, DICT, &key(&v, hash));
                let _ = lookup_racy(&a, body, SET, &key(&v, hash));
                let _ = len_racy(&a, body, DICT);
                let _ = len_racy(&a, body, SET);
            }
        }
    }

    #[test]
    fn sizes_follow_cpython() {
        assert_eq!(usable(8), 5);
        assert_eq!(log2_for(0).unwrap(), 3);
        assert_eq!(log2_for(5).unwrap(), 3);
        assert_eq!(log2_for(6).unwrap(), 4);
        assert_eq!(log2_for(11).unwrap(), 5);
        assert!(log2_for(u64::MAX).is_err());
        assert!(usable(1 << MAX_LOG2) < u64::from(DUMMY));
    }

    #[test]
    fn probe_sequence_visits_every_slot() {
        for log2 in MIN_LOG2..12 {
            let size = 1u64 << log2;
            let t = Table {
                off: 0,
                cap: 0,
                nentries: 0,
                live: 0,
                filled: 0,
                size,
                index: 0,
                entries: 0,
                esize: 32,
            };
            for hash in [0, 1, u64::MAX, 0xdead_beef_1234_5678] {
                let mut seen = vec![false; size as usize];
                let r: Result<()> = walk(&t, hash, |i| {
                    seen[i as usize] = true;
                    Ok(None)
                });
                assert!(r.is_err());
                assert!(seen.iter().all(|&s| s), "log2 {log2} hash {hash:#x}");
            }
        }
    }

    /// A holder that died half-way through an insert (entry published, index slot and counts
    /// not yet stored) and half-way through a delete (entry unpublished, slot and count not yet
    /// updated): the derived state is stale until `repair` rebuilds it.
    #[test]
    fn repair_rolls_back_a_torn_value_replacement() {
        let name = format!("htjournal-{}", std::process::id());
        let store = crate::Store::create(&name, 1 << 20).unwrap();
        let d = store.dict([(1, 10), (2, 20)]).unwrap();
        let token = crate::AsProxy::token(&d);
        crate::dispatch::with_object(store.core(), &token, |ctx| {
            let core = ctx.core;
            let t = open(ctx, DICT)?.unwrap();
            let f = find(ctx, DICT, &Value::Int(2))?;
            let Some((_, _, ix)) = f.hit() else {
                panic!("2 missing")
            };
            let at = t.val_off(ix);
            // A holder killed inside `d[2] = …`: journal published, the cell half written.
            let old = read_cell(core, at)?;
            core.arena()
                .write(Offset::new(t.off + F_JOURNAL_CELL), old)?;
            core.arena().store_u64(t.off + F_JOURNAL, at)?;
            core.arena().store_u64(at, 0xff)?;
            repair(ctx, DICT)?;
            assert_eq!(
                value(ctx, &find(ctx, DICT, &Value::Int(2))?)?,
                Some(Value::Int(20))
            );
            assert_eq!(core.arena().load_u64(t.off + F_JOURNAL)?, 0);
            Ok(())
        })
        .unwrap();
        assert_eq!(d.get(2).unwrap(), Some(Value::Int(20)));
    }

    #[test]
    fn repair_rebuilds_what_a_dead_holder_left_half_done() {
        let name = format!("htrepair-{}", std::process::id());
        let store = crate::Store::create(&name, 1 << 20).unwrap();
        let d = store.dict((0..20).map(|i| (i, i * 10))).unwrap();
        let token = crate::AsProxy::token(&d);
        crate::dispatch::with_object(store.core(), &token, |ctx| {
            let core = ctx.core;
            let t = open(ctx, DICT)?.unwrap();
            // Half an insert of key 7: its slot was never stored, nor the counts.
            let f = find(ctx, DICT, &Value::Int(7))?;
            let Some((_, slot7, _)) = f.hit() else {
                panic!("7 missing")
            };
            set_slot(core, &t, slot7, EMPTY)?;
            store_hdr(core, &t, F_LIVE, t.live - 1)?;
            // Half a delete of key 3: unpublished, nothing else.
            let f = find(ctx, DICT, &Value::Int(3))?;
            let Some((_, _, ix3)) = f.hit() else {
                panic!("3 missing")
            };
            core.arena().store_u64(t.entry(ix3) + 8, 0)?;
            // Stale: 7 is iterated but not found.
            assert!(!find(ctx, DICT, &Value::Int(7))?.found());
            repair(ctx, DICT)?;
            assert_eq!(len(ctx, DICT)?, 19);
            for i in 0..20 {
                let f = find(ctx, DICT, &Value::Int(i))?;
                assert_eq!(
                    value(ctx, &f)?,
                    (i != 3).then_some(Value::Int(i * 10)),
                    "key {i}"
                );
            }
            let t = open(ctx, DICT)?.unwrap();
            assert_eq!(t.filled, 19);
            Ok(())
        })
        .unwrap();
        d.insert(3, "back").unwrap();
        assert_eq!(d.keys().unwrap().last(), Some(&Value::Int(3)));
        assert_eq!(d.len().unwrap(), 20);
    }
}
