//! The segment header: what identifies an arena as ours, and where its parts lie.
//!
//! ```text
//! 0      Header (256 bytes, written once by the creator before `state` becomes READY)
//! 256    counters: state, attach count, slot free list, objects live, repairs (atomics)
//! 512    the arena lock (robust, process-shared)
//! 1024   allocator header
//! 4096   name directory: `names_cap` entries of 64 bytes
//! …      process table: `procs_cap` entries of 64 bytes (see `procs`)
//! …      object table: `table_slots` slots of SLOT_SIZE bytes, 64-aligned
//! …      heap (allocator blocks) up to the end of the segment
//! ```
//!
//! The format word mixes the layout version with the object lock's byte format and the sizes of
//! the structures it holds (LMDB's trick), so a build with another lock, slot size or header
//! size refuses to share a segment (`Error::Incompatible`) instead of corrupting it.
//!
//! Crash protocol: the creator fills everything while `state` is INIT (0, what `ftruncate` left),
//! then stores READY with `Release`. An opener that sees INIT waits a bounded time for READY; a
//! creator that died mid-initialization leaves a segment that opens as `Corrupt` and can be
//! removed with `shmstore rm`. `state` becomes CLOSED, under the arena lock, when the last process
//! detaches and unlinks the name; an opener that maps a CLOSED segment (it raced the unlink) gets
//! `NotFound`.
//!
//! # Examples
//! ```
//! # let name = format!("doc-header-{}", std::process::id());
//! # let store = shmstore::Store::create(&name, 1 << 20)?;
//! use shmstore::header::{read_checked, MAGIC, NAMES_OFF};
//! let raw = shmstore::segment::open(&name)?;
//! let h = read_checked(&raw, store.header().format)?;
//! assert_eq!(h.magic, MAGIC);
//! assert!(h.names_off == NAMES_OFF && h.names_off < h.procs_off && h.table_off < h.heap_start);
//! # Ok::<(), shmstore::Error>(())
//! ```

use bytemuck::{Pod, Zeroable};

use crate::arena::{Arena, Offset};
use crate::error::{Error, Result};

/// `b"SHMSTORE"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMSTORE");
/// Layout version: bump on any change to the arena's layout (3: a `Lock` body is a futex word;
/// 4: locks count their waiters in a word of their own and are released by a plain store;
/// 5: a slot's refcount is a 64-bit word with a drop marker, a process entry records the handle
/// drop in progress, and holdings rows are never moved; 6: a lock's waiter word keeps its count
/// in the low 24 bits and a clearing generation above, `sync::barrier::COUNT_MASK`; 7: a dict or
/// set entry's stored hash has no finalizer after its last fold). The format
/// word holds it in its top byte, beside the object lock's format ([`format_word`]).
pub const LAYOUT_VERSION: u64 = 7;

/// Fixed part of the header, immutable after initialization.
///
/// # Examples
/// ```
/// # let name = format!("doc-header-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::header::{Header, MAGIC};
/// // The same header, read from the raw segment as any process maps it.
/// let raw = shmstore::segment::open(&name)?;
/// let h: Header = raw.read(Offset::new(0))?;
/// assert_eq!(h, store.header());
/// assert_eq!(h.magic, MAGIC);
/// assert_eq!(h.size, raw.len());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`format_word`] of the creating build.
    pub format: u64,
    /// Segment size in bytes.
    pub size: u64,
    /// Random id, part of every token.
    pub store_id: u64,
    /// Key of the keyed hash used by dicts and sets (drawn at creation).
    pub hash_key: [u64; 2],
    /// Creation time, ns since the Unix epoch.
    pub created_ns: u64,
    /// Pid of the creator.
    pub creator_pid: u32,
    /// [`FLAG_KEEP`], …
    pub flags: u32,
    /// Offset of the arena lock.
    pub lock_off: u64,
    /// Offset of the allocator header.
    pub alloc_off: u64,
    /// Offset of the name directory.
    pub names_off: u64,
    /// Entries in the name directory.
    pub names_cap: u64,
    /// Offset of the object table.
    pub table_off: u64,
    /// Slots in the object table.
    pub table_slots: u64,
    /// Start of the heap.
    pub heap_start: u64,
    /// End of the heap.
    pub heap_end: u64,
    /// Offset of the process table.
    pub procs_off: u64,
    /// Entries in the process table.
    pub procs_cap: u64,
    /// `reserved[0]` ([`USER_TYPES_OFF`]): offset of the user-type table, 0 until the first
    /// user-registered type is used in the store. The only header word written after
    /// initialization: once, under the arena lock (see `types::user`). The rest: zero.
    pub reserved: [u64; 14],
}
const _: () = assert!(size_of::<Header>() == 256);

/// u64, under the arena lock: offset of the user-type table (`Header::reserved[0]`), 0 until a
/// process first uses a user-registered type in the store. Written once, after the table block
/// is allocated and zeroed, so a crash leaves either no table (and a leaked block) or a whole one.
pub const USER_TYPES_OFF: u64 = std::mem::offset_of!(Header, reserved) as u64;

/// Keep the segment when the last process detaches.
pub const FLAG_KEEP: u32 = 1;

/// `state` values.
pub const STATE_INIT: u32 = 0;
/// The segment is initialized and open for attach.
pub const STATE_READY: u32 = 1;
/// The last process detached and unlinked the segment.
pub const STATE_CLOSED: u32 = 2;

/// u32, atomic: [`STATE_INIT`], [`STATE_READY`] or [`STATE_CLOSED`].
pub const STATE_OFF: u64 = 256;
/// u32, changed under the arena lock, read atomically: processes attached.
pub const ATTACH_OFF: u64 = 260;
/// u32, under the arena lock: head of the free-slot list (slot + 1; 0 = empty).
pub const SLOT_FREE_OFF: u64 = 264;
/// u32, under the arena lock: slots never used yet start here.
pub const SLOT_UNUSED_OFF: u64 = 268;
/// u64, atomic: objects live.
pub const LIVE_OFF: u64 = 320;
/// u64, atomic: locks recovered from dead holders.
pub const REPAIRS_OFF: u64 = 384;
/// Where the arena lock lives.
pub const LOCK_OFF: u64 = 512;
/// Where the allocator header lives.
pub const ALLOC_OFF: u64 = 1024;
/// Where the name directory starts.
pub const NAMES_OFF: u64 = 4096;

/// One entry of the name directory (64 bytes). Written under the arena lock: the name and
/// handle first, `used` last, so a crash leaves either no entry or a whole one.
///
/// # Examples
/// ```
/// # let name = format!("doc-nameentry-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::arena::Offset;
/// use shmstore::header::NameEntry;
/// let l = store.list([1])?;
/// store.bind("jobs", &l)?;
/// let raw = shmstore::segment::open(&name)?;
/// let e: NameEntry = raw.read(Offset::new(store.header().names_off))?; // the first entry
/// assert_eq!(&e.name[..e.name_len as usize], b"jobs");
/// assert_eq!((e.used, e.slot, e.generation), (1, l.token().slot, l.token().generation));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct NameEntry {
    /// UTF-8 name bytes, `name_len` of them used.
    pub name: [u8; 48],
    /// Length of the name.
    pub name_len: u32,
    /// Slot of the bound object.
    pub slot: u32,
    /// Its generation.
    pub generation: u32,
    /// Its type id.
    pub type_id: u16,
    /// 1 when the entry is in use.
    pub used: u16,
}
const _: () = assert!(size_of::<NameEntry>() == 64);

/// Longest name for a bound object.
pub const MAX_BOUND_NAME: usize = 48;

/// The format word: layout version, the byte format of this build's object lock
/// ([`RawLock::FORMAT`](crate::sync::RawLock::FORMAT) of
/// [`ObjLock`](crate::table::ObjLock)) and the sizes this build gives to the structures in the
/// segment.
///
/// # Examples
/// ```
/// # let name = format!("doc-formatword-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::CELL_SIZE;
/// use shmstore::header::format_word;
/// use shmstore::table::{LOCK_BYTES, SLOT_SIZE};
/// // What this build writes in every segment it creates.
/// assert_eq!(format_word(LOCK_BYTES, SLOT_SIZE as usize, CELL_SIZE), store.header().format);
/// // Another lock size: another format word, so the two builds refuse each other's segments.
/// assert_ne!(format_word(LOCK_BYTES + 8, SLOT_SIZE as usize, CELL_SIZE), store.header().format);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub const fn format_word(lock_size: usize, slot_size: usize, cell_size: usize) -> u64 {
    use crate::sync::RawLock;
    format_word_for(
        lock_size,
        <crate::table::ObjLock as RawLock>::FORMAT,
        slot_size,
        cell_size,
    )
}

/// [`format_word`] for a lock of byte format `lock_format`: two lock implementations of one size
/// give two words, so a build refuses the other's segments instead of misreading its locks.
///
/// # Examples
/// ```
/// use shmstore::header::format_word_for;
/// use shmstore::sync::{FutexLock, PthreadMutex, RawLock};
/// let futex = format_word_for(24, FutexLock::FORMAT, 64, 16);
/// assert_ne!(futex, format_word_for(24, PthreadMutex::FORMAT, 64, 16));
/// ```
pub const fn format_word_for(
    lock_size: usize,
    lock_format: u32,
    slot_size: usize,
    cell_size: usize,
) -> u64 {
    // The lock's four format bytes folded into one: the two implementations' folds differ
    // (checked below), and a future one gets a distinct fold or a new layout version.
    let [a, b, c, d] = lock_format.to_be_bytes();
    (LAYOUT_VERSION << 56)
        | ((a ^ b ^ c ^ d) as u64) << 48
        | ((lock_size as u64 & 0xff) << 40)
        | ((slot_size as u64 & 0xffff) << 24)
        | ((cell_size as u64 & 0xff) << 16)
        | ((size_of::<Header>() as u64 & 0x3ff) << 6)
        | (usize::BITS as u64 & 0x3f)
}

// The two lock implementations' formats fold to different bytes of the format word.
const _: () = {
    use crate::sync::{FutexLock, PthreadMutex, RawLock};
    assert!(
        format_word_for(24, FutexLock::FORMAT, 0, 0)
            != format_word_for(24, PthreadMutex::FORMAT, 0, 0)
    );
};

/// How a segment of a given size is laid out.
///
/// # Examples
/// ```
/// use shmstore::header::{Layout, NAMES_OFF};
/// let l = Layout::for_size(1 << 20, None, 64)?;
/// assert_eq!(l.table_slots, 1024); // one per KiB
/// assert!(NAMES_OFF < l.procs_off && l.procs_off < l.table_off && l.table_off < l.heap_start);
/// assert_eq!(l.heap_end, 1 << 20);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Entries in the name directory.
    pub names_cap: u64,
    /// Offset of the process table.
    pub procs_off: u64,
    /// Entries in the process table.
    pub procs_cap: u64,
    /// Offset of the object table.
    pub table_off: u64,
    /// Slots in the object table.
    pub table_slots: u64,
    /// Start of the heap.
    pub heap_start: u64,
    /// End of the heap.
    pub heap_end: u64,
}

/// Entries in the process table: attachments that can be live at once.
pub const PROCS_CAP: u64 = 256;

/// Smallest segment accepted.
pub const MIN_SIZE: usize = 64 << 10;

const fn round_up(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

impl Layout {
    /// Lays out `size` bytes with `slots` object slots (None: one per KiB, between 64 and
    /// 4,194,304) of `slot_size` bytes.
    ///
    /// # Errors
    /// `ValueError` when the size is below [`MIN_SIZE`] or the tables leave too little heap.
    ///
    /// # Examples
    /// ```
    /// use shmstore::header::{Layout, MIN_SIZE};
    /// let l = Layout::for_size(1 << 20, Some(100), 64)?;
    /// assert_eq!(l.table_slots, 100);
    /// assert_eq!(l.heap_start, l.table_off + 100 * 64);
    /// assert!(Layout::for_size(MIN_SIZE - 1, None, 64).is_err());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn for_size(size: usize, slots: Option<u64>, slot_size: u64) -> Result<Layout> {
        if size < MIN_SIZE {
            return Err(Error::ValueError(format!(
                "segment size {size} is below the minimum of {MIN_SIZE} bytes"
            )));
        }
        let size = size as u64;
        let names_cap = (size / (256 << 10)).clamp(64, 4096);
        let table_slots = slots.unwrap_or((size / 1024).clamp(64, 1 << 22));
        let procs_off = round_up(NAMES_OFF + names_cap * 64, 64);
        let procs_cap = PROCS_CAP;
        let table_off = round_up(procs_off + procs_cap * 64, 64);
        let heap_start = table_slots
            .checked_mul(slot_size)
            .and_then(|t| t.checked_add(table_off))
            .map(|e| round_up(e, 64))
            .ok_or_else(|| Error::ValueError("too many object slots".into()))?;
        let heap_end = size & !15;
        if heap_start.saturating_add(16 << 10) > heap_end {
            return Err(Error::ValueError(format!(
                "segment size {size} leaves no heap after {table_slots} object slots"
            )));
        }
        Ok(Layout {
            names_cap,
            procs_off,
            procs_cap,
            table_off,
            table_slots,
            heap_start,
            heap_end,
        })
    }
}

/// Reads and validates the header of a mapped segment.
///
/// # Errors
/// `Corrupt` if it is not a shmstore arena or its table offsets do not fit the mapping,
/// `Incompatible` if it was made by a build with another format word.
///
/// # Examples
/// ```
/// # let name = format!("doc-readchecked-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::header::read_checked;
/// use shmstore::Error;
/// let raw = shmstore::segment::open(&name)?;
/// let format = store.header().format;
/// assert_eq!(read_checked(&raw, format)?, store.header());
/// assert!(matches!(read_checked(&raw, format ^ 1), Err(Error::Incompatible { .. })));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn read_checked(arena: &Arena, format: u64) -> Result<Header> {
    if arena.len() < MIN_SIZE as u64 {
        return Err(Error::corrupt("segment smaller than a header", 0));
    }
    let h: Header = arena.read(Offset::new(0))?;
    if h.magic != MAGIC {
        return Err(Error::corrupt("bad magic: not a shmstore segment", 0));
    }
    if h.format != format {
        return Err(Error::Incompatible {
            expected: format,
            found: h.format,
        });
    }
    if h.size != arena.len() {
        return Err(Error::corrupt("header size differs from segment size", 16));
    }
    let ok = h.lock_off == LOCK_OFF
        && h.alloc_off == ALLOC_OFF
        && h.names_off == NAMES_OFF
        && h.names_cap <= 1 << 20
        && NAMES_OFF.checked_add(h.names_cap * 64) <= Some(h.procs_off)
        && h.procs_cap <= 1 << 16
        && h.procs_off % 64 == 0
        && h.procs_off.checked_add(h.procs_cap * 64) <= Some(h.table_off)
        && h.table_off % 64 == 0
        && h.table_slots <= 1 << 32
        && h.heap_start % 16 == 0
        && h.heap_start < h.heap_end
        && h.heap_end <= h.size;
    if !ok {
        return Err(Error::corrupt("header table offsets out of range", 64));
    }
    Ok(h)
}
