//! The allocator: blocks of the arena handed out and taken back by offset.
//!
//! Every process maps the arena at its own address, so the allocator stores nothing but offsets and
//! sizes, and all of its state lives in the arena: an [`AllocHeader`] at an offset the caller picks,
//! and a header in front of every block of the heap region `[start, end)`. A process that opens the
//! arena later continues where the others left off. The caller holds the arena lock around every
//! call; the allocator does no synchronization of its own.
//!
//! # Block layout
//! ```text
//! block b (16-aligned)       in use                         free
//! b + 0   size | flags       size | IN_USE                  size
//! b + 8   prev_size          size of the block before b     (same)
//! b + 16  payload            caller's bytes (offset b + 16)  next: block offset of the next free block
//! b + 24                                                     prev: block offset of the previous one
//! ```
//! Sizes count the 16-byte header and are multiples of 16, at least 32 (header plus two links), so
//! an allocation of `n` bytes takes `max(32, round_up(n + 16, 16))`. The first block's `prev_size`
//! is 0. The last 16 bytes of the heap hold an *epilogue*: a header of size 0 marked in use whose
//! `prev_size` is the size of the last block, so every block has a successor to check against.
//!
//! The boundary tag that coalescing needs (where does the previous block start?) is the
//! `prev_size` word in the *next* block's header, kept for every block, not only free ones. That
//! costs no footer, which lets a free block be 32 bytes, and it lets [`Heap::free`] check an offset
//! from both sides: the block's size must lead to a header whose `prev_size` names it back, and its
//! `prev_size` must lead to a header of that size. Double frees, interior and stray offsets fail
//! these checks and give [`Error::Corrupt`] before anything is written.
//!
//! # Free lists
//! Free blocks sit on doubly linked lists (offsets; [`NIL`] ends a list), one per bin, so any free
//! block is unlinked in O(1) when a neighbour is freed and the two coalesce. Neighbouring free
//! blocks are always merged at once, so no two free blocks are adjacent.
//! - Bins 0..64 are exact classes for block sizes 32, 48, …, 1040.
//! - Bins 64..192 split every power of two from 1024 up into four (TLSF's second level); the last
//!   bin also takes every block of 2^42 bytes and more.
//!
//! A bitmap of non-empty bins finds the first bin that can serve a request in a few word
//! operations, so the small path never scans. A small request takes the head of its exact class or
//! of the first non-empty bin above it and splits off the rest when the rest can be a block. A large
//! request first looks at a few blocks of its own bin for the best fit, then takes the head of the
//! first non-empty bin above, and only when nothing above exists walks its own bin to the end.
//!
//! # Crashes
//! A process may be killed at any instruction while it holds the arena lock. The block chain (the
//! `size | flags` words from `start` to the epilogue) is the truth; free lists, bitmap, `prev_size`
//! words and statistics are derived from it. Every operation sets a dirty word in the header
//! before its first write and clears it after its last, and changes the chain with single aligned
//! 8-byte stores ordered so that the chain is valid after each one. A call that finds the dirty word
//! set first rebuilds everything derived from the chain ([`Heap::rebuild`] with every in-use block
//! kept). What each step leaves is listed beside [`AllocHeader`]. At worst a block stays in use that
//! nobody holds; a mark-and-sweep [`Heap::rebuild`] given the reachable blocks reclaims it.
//!
//! # Corruption
//! Every word read from the arena is checked before use: block sizes against the heap bounds and
//! alignment, list links against the heap and against the link back (which also rules out
//! cycles), every walk bounded. A failed check gives [`Error::Corrupt`], never a panic, an endless
//! loop or a write outside the header and the heap. When it happens in the middle of an operation
//! the dirty word stays set, so the next call rebuilds lists, bitmap and statistics from the
//! chain; only a chain that no longer leads from `start` to the epilogue stays an error until
//! someone repairs the arena. [`Heap::check`] reports everything it finds without changing
//! anything.
//!
//! # Examples
//! ```
//! use shmstore::alloc::Heap;
//! use shmstore::arena::Arena;
//! let arena = Arena::heap(1 << 16);
//! let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
//! let a = heap.alloc(100)?;
//! let b = heap.alloc(100)?;
//! heap.free(a)?;
//! heap.free(b)?; // coalesces with `a` and the rest: one free block again
//! let s = heap.stats()?;
//! assert_eq!((s.blocks_in_use, s.free_blocks), (0, 1));
//! assert!(heap.check()?.is_ok());
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::mem::{offset_of, size_of};

use bytemuck::{Pod, Zeroable};

use crate::arena::{Arena, Offset};
use crate::error::{Error, Result};

/// Bytes of a block header; a payload starts this far after its block.
const BLOCK_HEADER: u64 = 16;
/// Alignment of blocks, payloads and block sizes.
const ALIGN: u64 = 16;
/// The smallest block: a header and the two free-list links.
const MIN_BLOCK: u64 = 32;
/// Flag in a header's first word: the block is in use.
const IN_USE: u64 = 1;
/// The low bits of a header's first word, which hold flags rather than size.
const FLAG_BITS: u64 = ALIGN - 1;
/// Offset of the `next` link in a free block.
const NEXT: u64 = 16;
/// Offset of the `prev` link in a free block.
const PREV: u64 = 24;
/// The end of a free list.
pub const NIL: u64 = u64::MAX;

/// Exact size classes: block sizes 32, 48, …, 1040.
const NSMALL: usize = 64;
/// The largest block size with an exact class.
const SMALL_MAX: u64 = MIN_BLOCK + (NSMALL as u64 - 1) * ALIGN;
/// Powers of two with their own four bins, from 2^10 up.
const LEVELS: usize = 32;
/// Bins per power of two.
const SUBBINS: usize = 4;
/// `log2` of the first power of two with large bins.
const FIRST_LEVEL: u32 = 10;
/// Number of free lists.
pub const NBINS: usize = NSMALL + LEVELS * SUBBINS;
/// Words of the bitmap of non-empty bins.
const BITMAP_WORDS: usize = NBINS / 64;
/// How many blocks of its own bin a large request looks at before it tries the bins above.
const BEST_FIT_PROBES: u64 = 16;
/// Layout version, part of the magic word.
const VERSION: u64 = 1;
/// The magic word: "shmalloc" mixed with the layout version and the shape of the header, so two
/// builds with different layouts refuse each other's heaps instead of corrupting them.
const MAGIC: u64 = u64::from_le_bytes(*b"shmalloc")
    ^ (VERSION << 8)
    ^ ((NBINS as u64) << 16)
    ^ (ALLOC_HEADER_SIZE << 32);

/// The allocator's header, at an offset the caller reserves [`ALLOC_HEADER_SIZE`] bytes at.
///
/// # Protocol
/// Every field is written only by the holder of the arena lock. `magic`, `start` and `end` are
/// written once by [`Heap::init`] (`magic` last, so a crash during `init` leaves no heap that
/// [`Heap::open`] accepts); everything else changes inside operations bracketed by `dirty`.
///
/// What a crash leaves, step by step. The dirty word is set in all of these, so the next call
/// first rebuilds the derived data from the chain (the *repair*); "leak" means a block stays in
/// use that no one holds, which only [`Heap::rebuild`] with the reachable set reclaims.
/// - **alloc**: *1.* when the chosen free block is split, the remainder's header is written inside
///   it and the successor's `prev_size` updated: the chain still skips the remainder, so the
///   header is invisible; the repair rewrites `prev_size`. *2.* the block leaves its list (the
///   remainder takes its place there when it falls in the same bin): lists and chain disagree —
///   the repair rebuilds the lists. *3.* the block's `size | IN_USE` word is stored: one store
///   turns it into a block in use and makes the remainder a block of the chain. The block leaks
///   if the caller dies before it has the offset.
/// - **free**: *1.* the block's `IN_USE` bit is cleared: a free, unlisted block — the repair lists
///   it. *2.* free neighbours leave their lists (or one keeps its place for the merged block):
///   free blocks side by side — the repair merges them. *3.* the merged size is stored at the first
///   of them: one store merges them in the chain. *4.* it goes on its list; `prev_size` and the
///   statistics are updated. Before step 1 the block is still in use (a leak); after it, the
///   caller's offset is no longer a live block.
/// - **realloc**: growing in place takes the next free block off its list, writes the remainder's
///   header and stores the new `size | IN_USE` (alloc's steps); shrinking writes the remainder's
///   header, stores the new size, then releases the remainder (free's steps 2–4); moving allocates
///   the new block, copies, then frees the old one, so a crash in between leaks one of them.
/// - **rebuild** (and the repair): first checks that the chain walks from `start` to the epilogue,
///   changing nothing if not; then clears the lists and walks again, clearing `IN_USE` on blocks
///   to free, storing merged sizes and pushing them on lists. Every store leaves a valid chain,
///   and the dirty word stays set until the end, so a crash means the next call rebuilds again.
///
/// The chain changes only by single aligned 8-byte stores, each of which leaves it walkable from
/// `start` to the epilogue; a block's `IN_USE` store comes after it left its list and a freed
/// block goes on a list only after its `IN_USE` bit is clear. Whatever the crash, the repair sees
/// every block in use that anyone may hold as in use, so no block is handed out twice.
///
/// # Examples
/// ```
/// use shmstore::alloc::{AllocHeader, Heap, ALLOC_HEADER_SIZE};
/// use shmstore::arena::{Arena, Offset};
/// let arena = Arena::heap(1 << 16);
/// Heap::init(&arena, 0, 2048, 1 << 16)?;
/// let h: AllocHeader = arena.read(Offset::new(0))?;
/// assert_eq!((h.start, h.end, h.dirty), (2048, 1 << 16, 0));
/// assert_eq!(h.free_blocks, 1);
/// assert_eq!(std::mem::size_of::<AllocHeader>() as u64, ALLOC_HEADER_SIZE);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct AllocHeader {
    /// Format word ("shmalloc" mixed with the layout version and sizes): set last by `init`,
    /// checked by `open`.
    pub magic: u64,
    /// Offset of the first block.
    pub start: u64,
    /// End of the heap region (exclusive); the epilogue occupies its last 16 bytes.
    pub end: u64,
    /// Nonzero while an operation is in progress: a set word at the start of a call means a
    /// process died inside one.
    pub dirty: u64,
    /// Sum of the sizes (headers included) of blocks in use.
    pub bytes_in_use: u64,
    /// Sum of the sizes of free blocks.
    pub bytes_free: u64,
    /// Number of blocks in use.
    pub blocks_in_use: u64,
    /// Number of free blocks.
    pub free_blocks: u64,
    /// Bit `i` is set when bin `i` is non-empty.
    pub bitmap: [u64; BITMAP_WORDS],
    /// Heads of the exact size classes (block offsets, [`NIL`] when empty).
    pub small_heads: [u64; NSMALL],
    /// Heads of the large bins; `repr(C)` makes them follow `small_heads`, one array of heads.
    pub large_heads: [u64; LEVELS * SUBBINS],
    /// Keeps the size a multiple of 16.
    pub reserved: u64,
}

/// Bytes the caller reserves (16-aligned) for the allocator's header.
pub const ALLOC_HEADER_SIZE: u64 = size_of::<AllocHeader>() as u64;
const _: () = assert!(ALLOC_HEADER_SIZE == 1632 && ALLOC_HEADER_SIZE % ALIGN == 0);
const _: () = assert!(ALLOC_HEADER_SIZE <= 2048);
const _: () = assert!(NBINS % 64 == 0);
const _: () = assert!(
    offset_of!(AllocHeader, large_heads) == offset_of!(AllocHeader, small_heads) + NSMALL * 8
);

const H_MAGIC: u64 = offset_of!(AllocHeader, magic) as u64;
const H_START: u64 = offset_of!(AllocHeader, start) as u64;
const H_END: u64 = offset_of!(AllocHeader, end) as u64;
const H_DIRTY: u64 = offset_of!(AllocHeader, dirty) as u64;
const H_BYTES_IN_USE: u64 = offset_of!(AllocHeader, bytes_in_use) as u64;
const H_BYTES_FREE: u64 = offset_of!(AllocHeader, bytes_free) as u64;
const H_BLOCKS_IN_USE: u64 = offset_of!(AllocHeader, blocks_in_use) as u64;
const H_FREE_BLOCKS: u64 = offset_of!(AllocHeader, free_blocks) as u64;
const H_BITMAP: u64 = offset_of!(AllocHeader, bitmap) as u64;
const H_HEADS: u64 = offset_of!(AllocHeader, small_heads) as u64;

/// The bin of a free block of `size` bytes (`size >= MIN_BLOCK`).
#[inline]
fn bin_of(size: u64) -> usize {
    if size <= SMALL_MAX {
        ((size / ALIGN) as usize).saturating_sub(2)
    } else {
        // size > 1040, so its top bit is at least bit 10.
        let level = 63 - size.leading_zeros();
        let index = (level - FIRST_LEVEL) as usize;
        if index >= LEVELS {
            NBINS - 1
        } else {
            let sub = ((size >> (level - 2)) & 3) as usize;
            NSMALL + index * SUBBINS + sub
        }
    }
}

/// The block size that serves a request of `size` bytes, `None` if it overflows.
#[inline]
fn block_size(size: u64) -> Option<u64> {
    let raw = size.checked_add(BLOCK_HEADER + ALIGN - 1)?;
    Some((raw & !(ALIGN - 1)).max(MIN_BLOCK))
}

/// Why `[hdr, hdr + ALLOC_HEADER_SIZE)` and `[start, end)` cannot hold a heap in an arena of
/// `len` bytes, or `None` when they can.
fn geometry_problem(len: u64, hdr: u64, start: u64, end: u64) -> Option<&'static str> {
    if hdr % ALIGN != 0 || start % ALIGN != 0 || end % ALIGN != 0 {
        return Some("allocator header and heap bounds must be 16-byte aligned");
    }
    if hdr.checked_add(ALLOC_HEADER_SIZE).map_or(true, |e| e > len) || end > len {
        return Some("allocator header or heap lies outside the arena");
    }
    if start >= end || end - start < MIN_BLOCK + BLOCK_HEADER {
        return Some("heap too small for one block");
    }
    if hdr < end && start < hdr + ALLOC_HEADER_SIZE {
        return Some("allocator header overlaps the heap");
    }
    None
}

/// Exact allocation statistics, as kept in the header.
///
/// # Examples
/// ```
/// use shmstore::alloc::Heap;
/// use shmstore::arena::Arena;
/// let arena = Arena::heap(1 << 16);
/// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
/// heap.alloc(100)?;
/// let s = heap.stats()?;
/// assert_eq!((s.blocks_in_use, s.bytes_in_use), (1, 128)); // 100 + header, rounded to 16
/// assert_eq!(s.bytes_in_use + s.bytes_free, s.heap_bytes);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllocStats {
    /// Bytes of all blocks (the heap region less the 16-byte epilogue).
    pub heap_bytes: u64,
    /// Bytes of blocks in use, headers included.
    pub bytes_in_use: u64,
    /// Bytes of free blocks, headers included; `bytes_in_use + bytes_free == heap_bytes`.
    pub bytes_free: u64,
    /// Number of blocks in use.
    pub blocks_in_use: u64,
    /// Number of free blocks.
    pub free_blocks: u64,
    /// Size of the largest free block, header included (0 when none is free).
    pub largest_free: u64,
}

/// What [`Heap::check`] found.
///
/// # Examples
/// ```
/// use shmstore::alloc::Heap;
/// use shmstore::arena::Arena;
/// let arena = Arena::heap(1 << 16);
/// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
/// heap.alloc(10)?;
/// let report = heap.check()?;
/// assert!(report.is_ok());
/// assert_eq!((report.blocks, report.free_blocks), (2, 1));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// One line per problem found (at most [`CheckReport::MAX_PROBLEMS`], then a count of the
    /// rest).
    pub problems: Vec<String>,
    /// Blocks walked in the chain.
    pub blocks: u64,
    /// Free blocks among them.
    pub free_blocks: u64,
}

impl CheckReport {
    /// Problems listed one by one before the rest are only counted.
    pub const MAX_PROBLEMS: usize = 64;

    /// True when no problem was found.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let a = heap.alloc(64)?;
    /// arena.store_u64(a - 16, 0xbad0)?; // scribble over the block's header
    /// assert!(!heap.check()?.is_ok());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Collects problems up to a cap.
struct Problems {
    list: Vec<String>,
    more: u64,
}

impl Problems {
    fn push(&mut self, msg: impl FnOnce() -> String) {
        if self.list.len() < CheckReport::MAX_PROBLEMS {
            self.list.push(msg());
        } else {
            self.more += 1;
        }
    }
    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.list.push(format!("… and {} more problems", self.more));
        }
        self.list
    }
}

/// What [`Heap::rebuild`] reclaimed.
///
/// # Examples
/// ```
/// use shmstore::alloc::Heap;
/// use shmstore::arena::Arena;
/// let arena = Arena::heap(1 << 16);
/// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
/// let keep = heap.alloc(32)?;
/// heap.alloc(32)?; // leaked: nothing reaches it
/// let r = heap.rebuild(&mut |off| off == keep)?;
/// assert_eq!((r.freed_blocks, r.freed_bytes), (1, 48));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildReport {
    /// Blocks that were in use and are free now.
    pub freed_blocks: u64,
    /// Their bytes, headers included.
    pub freed_bytes: u64,
}

/// A view of the allocator whose header sits at a given offset of an arena.
///
/// Cheap to make ([`Heap::open`] reads three words) and to drop; it caches only the heap bounds,
/// which never change after [`Heap::init`]. The caller holds the arena lock while it uses it.
///
/// # Examples
/// ```
/// use shmstore::alloc::Heap;
/// use shmstore::arena::Arena;
/// let arena = Arena::heap(1 << 16);
/// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?; // header at 0, blocks in [2048, 64 KiB)
/// let a = heap.alloc(100)?;
/// arena.copy_in(a, b"payload")?;
/// let a = heap.realloc(a, 5000)?; // contents kept
/// let mut out = [0u8; 7];
/// arena.copy_out(a, &mut out)?;
/// assert_eq!(&out, b"payload");
/// heap.free(a)?;
/// assert_eq!(heap.stats()?.blocks_in_use, 0);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct Heap<'a> {
    arena: &'a Arena,
    hdr: u64,
    start: u64,
    /// Offset of the epilogue header: `end - 16`. Blocks lie in `[start, last)`.
    last: u64,
    /// Test-only fault injection: the number of arena writes left before a simulated crash.
    #[cfg(test)]
    crash_after: std::cell::Cell<Option<u64>>,
}

impl std::fmt::Debug for Heap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("hdr", &format_args!("{:#x}", self.hdr))
            .field("start", &format_args!("{:#x}", self.start))
            .field("end", &format_args!("{:#x}", self.last + BLOCK_HEADER))
            .finish()
    }
}

impl<'a> Heap<'a> {
    fn new(arena: &'a Arena, hdr: u64, start: u64, end: u64) -> Heap<'a> {
        Heap {
            arena,
            hdr,
            start,
            last: end - BLOCK_HEADER,
            #[cfg(test)]
            crash_after: std::cell::Cell::new(None),
        }
    }

    /// Formats `[start, end)` of `arena` as a heap holding one free block, with its header at
    /// `hdr` (which needs [`ALLOC_HEADER_SIZE`] bytes outside the heap).
    ///
    /// # Errors
    /// [`Error::ValueError`] when `hdr`, `start` or `end` is not 16-byte aligned, a region lies
    /// outside the arena, the two overlap, or the heap is too small for one block.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// use shmstore::Error;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// assert_eq!(heap.stats()?.free_blocks, 1);
    /// assert!(matches!(Heap::init(&arena, 0, 1000, 4096), Err(Error::ValueError(_)))); // overlaps
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn init(arena: &'a Arena, hdr: u64, start: u64, end: u64) -> Result<Heap<'a>> {
        if let Some(why) = geometry_problem(arena.len(), hdr, start, end) {
            return Err(Error::ValueError(why.to_owned()));
        }
        let heap = Heap::new(arena, hdr, start, end);
        // Clear a previous heap's magic before anything else, so a crash part-way through leaves
        // a header `open` refuses.
        heap.set_h(H_MAGIC, 0)?;
        let mut h = AllocHeader::zeroed();
        h.start = start;
        h.end = end;
        h.small_heads = [NIL; NSMALL];
        h.large_heads = [NIL; LEVELS * SUBBINS];
        arena.write(Offset::<AllocHeader>::new(hdr), h)?;
        let size = heap.last - start;
        heap.put(start, size)?;
        heap.put(start + 8, 0)?;
        heap.put(heap.last, IN_USE)?;
        heap.put(heap.last + 8, size)?;
        heap.push(start, size)?;
        heap.set_h(H_BYTES_FREE, size)?;
        heap.set_h(H_FREE_BLOCKS, 1)?;
        heap.set_h(H_MAGIC, MAGIC)?;
        Ok(heap)
    }

    /// Opens the heap whose header [`Heap::init`] wrote at `hdr`, in this or any other process.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the header is out of the arena, its magic word is wrong (no heap, or
    /// one of another layout), or its bounds do not describe a heap inside the arena.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let a = Heap::init(&arena, 0, 2048, 1 << 16)?.alloc(8)?;
    /// // Later, or in another process mapping the same bytes:
    /// let heap = Heap::open(&arena, 0)?;
    /// assert_eq!(heap.usable_size(a)?, 16);
    /// assert!(Heap::open(&arena, 4096).is_err()); // no heap header there
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn open(arena: &'a Arena, hdr: u64) -> Result<Heap<'a>> {
        arena.check(hdr, ALLOC_HEADER_SIZE, ALIGN)?;
        if arena.load_u64(hdr + H_MAGIC)? != MAGIC {
            return Err(Error::corrupt("allocator header has a bad magic word", hdr));
        }
        let start = arena.load_u64(hdr + H_START)?;
        let end = arena.load_u64(hdr + H_END)?;
        if let Some(why) = geometry_problem(arena.len(), hdr, start, end) {
            return Err(Error::corrupt(why, hdr));
        }
        Ok(Heap::new(arena, hdr, start, end))
    }

    /// Allocates a block with at least `size` usable bytes and returns its payload offset
    /// (16-aligned). `size` 0 gives a minimal block.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when no free block is large enough (`requested` is `size`,
    /// `available` the free bytes, possibly fragmented); [`Error::Corrupt`] when the heap's
    /// structures fail a check (the next call then repairs what it can).
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// use shmstore::Error;
    /// let arena = Arena::heap(4096);
    /// let heap = Heap::init(&arena, 0, 2048, 4096)?;
    /// let a = heap.alloc(24)?;
    /// assert_eq!(a % 16, 0);
    /// assert!(matches!(heap.alloc(10_000), Err(Error::OutOfMemory { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn alloc(&self, size: u64) -> Result<u64> {
        self.repair_if_dirty()?;
        let Some(need) = block_size(size).filter(|&n| n <= self.last - self.start) else {
            return Err(self.out_of_memory(size));
        };
        self.begin()?;
        let Some((b, have)) = self.find(need)? else {
            self.end()?;
            return Err(self.out_of_memory(size));
        };
        self.take(b, have, need)?;
        failpoint!("alloc.mid");
        self.end()?;
        Ok(b + BLOCK_HEADER)
    }

    /// Allocates like [`Heap::alloc`] and zeroes every usable byte of the block.
    ///
    /// # Errors
    /// As [`Heap::alloc`].
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let a = heap.alloc(64)?;
    /// arena.fill(a, 64, 0xff)?;
    /// heap.free(a)?;
    /// let b = heap.alloc_zeroed(64)?; // the same block again, cleared
    /// assert_eq!(arena.slice::<u8>(b, 64)?, [0u8; 64]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn alloc_zeroed(&self, size: u64) -> Result<u64> {
        let off = self.alloc(size)?;
        let usable = self.usable_size(off)?;
        self.arena.fill(off, usable, 0)?;
        Ok(off)
    }

    /// Frees the block whose payload is at `off`, merging it with free neighbours.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `off` is not the payload of a block in use (a double free, an
    /// interior or stray offset), found before anything is written; or when the heap's structures
    /// fail a check while freeing.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// use shmstore::Error;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let a = heap.alloc(40)?;
    /// heap.free(a)?;
    /// assert!(matches!(heap.free(a), Err(Error::Corrupt { .. }))); // a double free is refused
    /// assert!(heap.check()?.is_ok());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn free(&self, off: u64) -> Result<()> {
        self.repair_if_dirty()?;
        let (b, size) = self.live_block(off)?;
        self.begin()?;
        self.put(b, size)?;
        self.bump(H_BYTES_IN_USE, size.wrapping_neg())?;
        self.bump(H_BLOCKS_IN_USE, u64::MAX)?;
        self.release(b, size)?;
        self.end()
    }

    /// Resizes the block at `off` to at least `new_size` usable bytes, keeping its contents up to
    /// the smaller of the two sizes, and returns its (possibly new) payload offset. It shrinks in
    /// place, grows in place into a free next block when that suffices, and otherwise moves.
    ///
    /// # Errors
    /// [`Error::Corrupt`] as [`Heap::free`] for `off`; [`Error::OutOfMemory`] when no block fits
    /// `new_size`, in which case the old block is untouched and still in use.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let a = heap.alloc(16)?;
    /// arena.store_u64(a, 77)?;
    /// let b = heap.realloc(a, 1024)?;
    /// assert!(heap.usable_size(b)? >= 1024);
    /// assert_eq!(arena.load_u64(b)?, 77);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn realloc(&self, off: u64, new_size: u64) -> Result<u64> {
        self.repair_if_dirty()?;
        let (b, cur) = self.live_block(off)?;
        let Some(need) = block_size(new_size).filter(|&n| n <= self.last - self.start) else {
            return Err(self.out_of_memory(new_size));
        };
        if need <= cur {
            if cur - need >= MIN_BLOCK {
                self.begin()?;
                self.shrink(b, cur, need)?;
                self.end()?;
            }
            return Ok(off);
        }
        let next = b + cur;
        if next < self.last {
            let w = self.load(next)?;
            if w & FLAG_BITS == 0 && w >= MIN_BLOCK && w <= self.last - next && cur + w >= need {
                self.begin()?;
                self.grow(b, cur, next, w, need)?;
                self.end()?;
                return Ok(off);
            }
        }
        self.begin()?;
        let Some((nb, have)) = self.find(need)? else {
            self.end()?;
            return Err(self.out_of_memory(new_size));
        };
        self.take(nb, have, need)?;
        let new_off = nb + BLOCK_HEADER;
        self.arena
            .copy_within(off, new_off, (cur - BLOCK_HEADER).min(new_size))?;
        self.put(b, cur)?;
        self.bump(H_BYTES_IN_USE, cur.wrapping_neg())?;
        self.bump(H_BLOCKS_IN_USE, u64::MAX)?;
        self.release(b, cur)?;
        self.end()?;
        Ok(new_off)
    }

    /// The usable bytes of the block in use at `off` (at least what was asked for).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `off` is not the payload of a block in use, or when an interrupted
    /// operation needs a repair that fails.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let a = heap.alloc(20)?;
    /// assert_eq!(heap.usable_size(a)?, 32); // 20 rounded up to a 48-byte block, less its header
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn usable_size(&self, off: u64) -> Result<u64> {
        self.repair_if_dirty()?;
        let (_, size) = self.live_block(off)?;
        Ok(size - BLOCK_HEADER)
    }

    /// The exact statistics kept in the header, and the largest free block.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when an interrupted operation needs a repair that fails, or a free list
    /// walked for the largest block is broken.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let s = heap.stats()?;
    /// assert_eq!((s.blocks_in_use, s.free_blocks), (0, 1));
    /// assert_eq!(s.largest_free, s.bytes_free);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn stats(&self) -> Result<AllocStats> {
        self.repair_if_dirty()?;
        Ok(AllocStats {
            heap_bytes: self.last - self.start,
            bytes_in_use: self.h(H_BYTES_IN_USE)?,
            bytes_free: self.h(H_BYTES_FREE)?,
            blocks_in_use: self.h(H_BLOCKS_IN_USE)?,
            free_blocks: self.h(H_FREE_BLOCKS)?,
            largest_free: self.largest_free()?,
        })
    }

    /// Every block from start to end as (payload offset, usable size, in use).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the block sizes do not chain from the start of the heap to its end.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let a = heap.alloc(16)?;
    /// let blocks = heap.blocks()?;
    /// assert_eq!(blocks[0], (a, 16, true));
    /// assert!(!blocks[1].2); // the rest of the heap, free
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn blocks(&self) -> Result<Vec<(u64, u64, bool)>> {
        let mut out = Vec::new();
        self.walk(|b, w| {
            out.push((
                b + BLOCK_HEADER,
                (w & !FLAG_BITS) - BLOCK_HEADER,
                w & IN_USE != 0,
            ));
        })?;
        Ok(out)
    }

    /// Checks the whole heap without changing it: the block chain, `prev_size` words, that no
    /// two free blocks touch, the statistics, every free list (links both ways, each free block on
    /// the list of its size exactly once) and the bitmap. Terminates on any arena contents.
    ///
    /// # Errors
    /// [`Error::Corrupt`] only when the header itself is unusable (bad magic, or bounds that differ
    /// from the ones this heap was opened with); every other finding is a line of the report.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// for n in [10, 200, 3000] {
    ///     heap.alloc(n)?;
    /// }
    /// assert!(heap.check()?.is_ok(), "{:?}", heap.check()?.problems);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        self.check_header()?;
        let mut p = Problems {
            list: Vec::new(),
            more: 0,
        };
        if self.h(H_DIRTY)? != 0 {
            p.push(|| "an operation was interrupted; the next call repairs the heap".to_owned());
        }
        // The chain. Each step advances at least MIN_BLOCK bytes, so the walk is bounded.
        let mut free: Vec<(u64, u64)> = Vec::new();
        let (mut b, mut prev, mut prev_free) = (self.start, 0u64, false);
        let (mut used_bytes, mut used_blocks, mut free_bytes, mut blocks) =
            (0u64, 0u64, 0u64, 0u64);
        let mut chain_ok = true;
        while b < self.last {
            let w = self.load(b)?;
            let size = w & !FLAG_BITS;
            if w & FLAG_BITS & !IN_USE != 0 {
                p.push(|| format!("block {b:#x} has unknown flags {:#x}", w & FLAG_BITS));
            }
            if size < MIN_BLOCK || size > self.last - b {
                p.push(|| format!("block {b:#x} has a bad size {size:#x}; the chain ends here"));
                chain_ok = false;
                break;
            }
            let ps = self.load(b + 8)?;
            if ps != prev {
                p.push(|| {
                    format!("block {b:#x} records prev_size {ps:#x}, the previous is {prev:#x}")
                });
            }
            if w & IN_USE != 0 {
                used_bytes += size;
                used_blocks += 1;
                prev_free = false;
            } else {
                if prev_free {
                    p.push(|| format!("free block {b:#x} follows a free block (not coalesced)"));
                }
                free_bytes += size;
                free.push((b, size));
                prev_free = true;
            }
            blocks += 1;
            prev = size;
            b += size;
        }
        if chain_ok {
            let w = self.load(self.last)?;
            if w != IN_USE {
                p.push(|| format!("epilogue {:#x} holds {w:#x}", self.last));
            }
            let ps = self.load(self.last + 8)?;
            if ps != prev {
                p.push(|| {
                    format!("epilogue records prev_size {ps:#x}, the last block is {prev:#x}")
                });
            }
            let stats = [
                ("bytes_in_use", H_BYTES_IN_USE, used_bytes),
                ("bytes_free", H_BYTES_FREE, free_bytes),
                ("blocks_in_use", H_BLOCKS_IN_USE, used_blocks),
                ("free_blocks", H_FREE_BLOCKS, free.len() as u64),
            ];
            for (name, field, walked) in stats {
                let kept = self.h(field)?;
                if kept != walked {
                    p.push(|| format!("{name} is {kept}, the blocks add up to {walked}"));
                }
            }
        }
        // The lists. A node is accepted only if the walk found a free block there and it was not
        // seen before, so every list walk ends within `free.len()` steps.
        let mut seen = vec![false; free.len()];
        for bin in 0..NBINS {
            let head = self.head(bin)?;
            let marked = (self.h(H_BITMAP + 8 * (bin / 64) as u64)? >> (bin % 64)) & 1 != 0;
            if marked != (head != NIL) {
                p.push(|| format!("bitmap bit {bin} is {marked} but the list head is {head:#x}"));
            }
            let (mut cur, mut back) = (head, NIL);
            while cur != NIL {
                let Ok(i) = free.binary_search_by_key(&cur, |&(o, _)| o) else {
                    p.push(|| format!("list {bin} links to {cur:#x}, which is not a free block"));
                    break;
                };
                if seen[i] {
                    p.push(|| format!("free block {cur:#x} is listed twice (list {bin})"));
                    break;
                }
                seen[i] = true;
                let size = free[i].1;
                if bin_of(size) != bin {
                    p.push(|| format!("free block {cur:#x} of size {size:#x} is on list {bin}"));
                }
                let pl = self.load(cur + PREV)?;
                if pl != back {
                    p.push(|| format!("free block {cur:#x} links back to {pl:#x}, not {back:#x}"));
                }
                back = cur;
                cur = self.load(cur + NEXT)?;
            }
        }
        for (i, &(off, _)) in free.iter().enumerate() {
            if !seen[i] {
                p.push(|| format!("free block {off:#x} is on no list"));
            }
        }
        Ok(CheckReport {
            problems: p.finish(),
            blocks,
            free_blocks: free.len() as u64,
        })
    }

    /// Mark-and-sweep recovery: keeps in use each block in use whose payload offset `live` calls
    /// reachable, frees every other block, and rebuilds the free lists (coalescing), bitmap,
    /// `prev_size` words and statistics from the block chain alone. This also repairs free lists,
    /// statistics and boundary tags that are corrupt, as long as the block sizes chain from start
    /// to end. `live` is called once per block in use, in address order.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the block sizes do not chain from start to end; nothing is changed
    /// then.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// let live: Vec<u64> = (0..3).map(|_| heap.alloc(64)).collect::<Result<_, _>>()?;
    /// // Only the first is reachable: the sweep frees the other two.
    /// let r = heap.rebuild(&mut |off| off == live[0])?;
    /// assert_eq!(r.freed_blocks, 2);
    /// assert_eq!(heap.stats()?.blocks_in_use, 1);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn rebuild(&self, live: &mut dyn FnMut(u64) -> bool) -> Result<RebuildReport> {
        self.check_header()?;
        self.walk(|_, _| ())?;
        self.begin()?;
        for i in 0..BITMAP_WORDS as u64 {
            self.set_h(H_BITMAP + 8 * i, 0)?;
        }
        for bin in 0..NBINS as u64 {
            self.set_h(H_HEADS + 8 * bin, NIL)?;
        }
        let mut report = RebuildReport::default();
        let (mut used_bytes, mut used_blocks, mut free_bytes, mut free_blocks) = (0, 0, 0, 0);
        // `run` is the free run being gathered: (its first block, its size so far).
        let mut run: Option<(u64, u64)> = None;
        let mut prev = 0;
        let mut b = self.start;
        while b < self.last {
            let w = self.load(b)?;
            let size = w & !FLAG_BITS;
            if size < MIN_BLOCK || size > self.last - b {
                return Err(Error::corrupt("block size changed during rebuild", b));
            }
            let keep = w & IN_USE != 0 && live(b + BLOCK_HEADER);
            if keep {
                if let Some((r, rsize)) = run.take() {
                    self.put(r + 8, prev)?;
                    self.put(r, rsize)?;
                    self.push(r, rsize)?;
                    free_bytes += rsize;
                    free_blocks += 1;
                    prev = rsize;
                }
                self.put(b + 8, prev)?;
                used_bytes += size;
                used_blocks += 1;
                prev = size;
            } else {
                if w & IN_USE != 0 {
                    report.freed_blocks += 1;
                    report.freed_bytes += size;
                    self.put(b, size)?;
                }
                run = Some(match run {
                    Some((r, rsize)) => (r, rsize + size),
                    None => (b, size),
                });
            }
            b += size;
        }
        if let Some((r, rsize)) = run {
            self.put(r + 8, prev)?;
            self.put(r, rsize)?;
            self.push(r, rsize)?;
            free_bytes += rsize;
            free_blocks += 1;
            prev = rsize;
        }
        self.put(self.last, IN_USE)?;
        self.put(self.last + 8, prev)?;
        self.set_h(H_BYTES_IN_USE, used_bytes)?;
        self.set_h(H_BLOCKS_IN_USE, used_blocks)?;
        self.set_h(H_BYTES_FREE, free_bytes)?;
        self.set_h(H_FREE_BLOCKS, free_blocks)?;
        self.end()?;
        Ok(report)
    }

    // ----- the operations' parts -----

    /// Runs the repair when a process died inside an operation (every operation does this
    /// first on its own; the arena lock's recovery calls it at once).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the block sizes no longer chain from start to end.
    ///
    /// # Examples
    /// ```
    /// use shmstore::alloc::Heap;
    /// use shmstore::arena::Arena;
    /// let arena = Arena::heap(1 << 16);
    /// let heap = Heap::init(&arena, 0, 2048, 1 << 16)?;
    /// heap.alloc(64)?;
    /// heap.repair_if_dirty()?; // nothing was interrupted: nothing to do
    /// assert!(heap.check()?.is_ok());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn repair_if_dirty(&self) -> Result<()> {
        if self.h(H_DIRTY)? != 0 {
            self.repair()?;
        }
        Ok(())
    }

    #[cold]
    fn repair(&self) -> Result<()> {
        self.rebuild(&mut |_| true).map(|_| ())
    }

    /// Marks an operation in progress (before its first write).
    #[inline]
    fn begin(&self) -> Result<()> {
        self.set_h(H_DIRTY, 1)
    }

    /// Marks the operation complete (after its last write).
    #[inline]
    fn end(&self) -> Result<()> {
        self.set_h(H_DIRTY, 0)
    }

    #[cold]
    fn out_of_memory(&self, size: u64) -> Error {
        let free = self.h(H_BYTES_FREE).unwrap_or(0);
        Error::OutOfMemory {
            requested: usize::try_from(size).unwrap_or(usize::MAX),
            available: usize::try_from(free).unwrap_or(usize::MAX),
        }
    }

    /// Checks that the header still says what this heap was opened with.
    fn check_header(&self) -> Result<()> {
        if self.h(H_MAGIC)? != MAGIC {
            return Err(Error::corrupt(
                "allocator header has a bad magic word",
                self.hdr,
            ));
        }
        if self.h(H_START)? != self.start || self.h(H_END)? != self.last + BLOCK_HEADER {
            return Err(Error::corrupt("allocator header bounds changed", self.hdr));
        }
        Ok(())
    }

    /// Walks the chain from start to the epilogue, calling `f(block, first word)` for each block.
    fn walk(&self, mut f: impl FnMut(u64, u64)) -> Result<()> {
        let mut b = self.start;
        while b < self.last {
            let w = self.load(b)?;
            let size = w & !FLAG_BITS;
            if size < MIN_BLOCK || size > self.last - b || w & FLAG_BITS & !IN_USE != 0 {
                return Err(Error::corrupt(
                    "block sizes do not chain to the end of the heap",
                    b,
                ));
            }
            f(b, w);
            b += size;
        }
        Ok(())
    }

    /// Validates `off` as the payload of a block in use; returns (block, size).
    fn live_block(&self, off: u64) -> Result<(u64, u64)> {
        if off % ALIGN != 0 || off < self.start + BLOCK_HEADER || off - BLOCK_HEADER >= self.last {
            return Err(Error::corrupt("offset is not a block of the heap", off));
        }
        let b = off - BLOCK_HEADER;
        let w = self.load(b)?;
        if w & FLAG_BITS != IN_USE {
            return Err(Error::corrupt("block is not in use (double free?)", off));
        }
        let size = w & !FLAG_BITS;
        if size < MIN_BLOCK || size > self.last - b || self.load(b + size + 8)? != size {
            return Err(Error::corrupt("not a block: its size is inconsistent", off));
        }
        let ps = self.load(b + 8)?;
        let prev_ok = if b == self.start {
            ps == 0
        } else {
            ps % ALIGN == 0
                && ps >= MIN_BLOCK
                && ps <= b - self.start
                && (self.load(b - ps)? & !FLAG_BITS) == ps
        };
        if !prev_ok {
            return Err(Error::corrupt(
                "not a block: its prev_size is inconsistent",
                off,
            ));
        }
        Ok((b, size))
    }

    /// Finds a free block of at least `need` bytes: (block, its size).
    #[inline]
    fn find(&self, need: u64) -> Result<Option<(u64, u64)>> {
        let bin = bin_of(need);
        let above = if bin < NSMALL {
            // Every block of an exact class has the class's size.
            bin
        } else {
            if let Some(hit) = self.best_in_bin(bin, need, BEST_FIT_PROBES)? {
                return Ok(Some(hit));
            }
            bin + 1
        };
        if let Some(j) = self.first_nonempty(above)? {
            let b = self.head(j)?;
            if b == NIL {
                return Err(Error::corrupt("bitmap marks an empty free list", self.hdr));
            }
            // bin_of is monotonic, so a block in a bin above `bin` (or in `bin`'s exact class)
            // is at least `need` bytes.
            let size = self.listed(b, j)?;
            return Ok(Some((b, size)));
        }
        if bin >= NSMALL {
            return self.best_in_bin(bin, need, self.max_blocks());
        }
        Ok(None)
    }

    /// The smallest block of at least `need` bytes among the first `limit` blocks of `bin`.
    fn best_in_bin(&self, bin: usize, need: u64, limit: u64) -> Result<Option<(u64, u64)>> {
        let mut best: Option<(u64, u64)> = None;
        self.scan_bin(bin, limit, |b, size| {
            if size >= need && best.map_or(true, |(_, s)| size < s) {
                best = Some((b, size));
                return size == need;
            }
            false
        })?;
        Ok(best)
    }

    /// Calls `f(block, size)` for the first `limit` blocks of list `bin`, each validated, until `f`
    /// returns true.
    #[inline]
    fn scan_bin(&self, bin: usize, limit: u64, mut f: impl FnMut(u64, u64) -> bool) -> Result<()> {
        let (mut cur, mut back) = (self.head(bin)?, NIL);
        let mut steps = 0;
        while cur != NIL && steps < limit {
            let size = self.listed(cur, bin)?;
            // Back links are checked at every step, which rules out cycles.
            if self.load(cur + PREV)? != back {
                return Err(Error::corrupt("free list links back wrongly", cur));
            }
            if f(cur, size) {
                break;
            }
            back = cur;
            cur = self.load(cur + NEXT)?;
            steps += 1;
        }
        Ok(())
    }

    /// The first non-empty bin at or above `from`.
    #[inline]
    fn first_nonempty(&self, from: usize) -> Result<Option<usize>> {
        let mut word = from / 64;
        let mut mask = u64::MAX.checked_shl((from % 64) as u32).unwrap_or(0);
        while word < BITMAP_WORDS {
            let bits = self.h(H_BITMAP + 8 * word as u64)? & mask;
            if bits != 0 {
                return Ok(Some(word * 64 + bits.trailing_zeros() as usize));
            }
            word += 1;
            mask = u64::MAX;
        }
        Ok(None)
    }

    /// The size of the largest free block.
    fn largest_free(&self) -> Result<u64> {
        for word in (0..BITMAP_WORDS).rev() {
            let bits = self.h(H_BITMAP + 8 * word as u64)?;
            if bits == 0 {
                continue;
            }
            let bin = word * 64 + 63 - bits.leading_zeros() as usize;
            if bin < NSMALL {
                return Ok(MIN_BLOCK + bin as u64 * ALIGN);
            }
            let mut largest = 0;
            self.scan_bin(bin, self.max_blocks(), |_, size| {
                largest = largest.max(size);
                false
            })?;
            return Ok(largest);
        }
        Ok(0)
    }

    /// More blocks than the heap can hold: a bound for list walks.
    fn max_blocks(&self) -> u64 {
        (self.last - self.start) / MIN_BLOCK + 1
    }

    /// Validates `b` as a free block that may be on list `bin`; returns its size.
    #[inline]
    fn listed(&self, b: u64, bin: usize) -> Result<u64> {
        if b % ALIGN != 0 || b < self.start || b >= self.last {
            return Err(Error::corrupt("free-list link outside the heap", b));
        }
        let size = self.load(b)?;
        if size & FLAG_BITS != 0 {
            return Err(Error::corrupt("free list holds a block in use", b));
        }
        if size < MIN_BLOCK || size > self.last - b || bin_of(size) != bin {
            return Err(Error::corrupt(
                "free list holds a block of the wrong size",
                b,
            ));
        }
        Ok(size)
    }

    /// Turns the free block `b` of `have` bytes into a block in use of `need` bytes, splitting
    /// off the rest as a free block when it can be one.
    #[inline]
    fn take(&self, b: u64, have: u64, need: u64) -> Result<()> {
        if self.load(b + have + 8)? != have {
            return Err(Error::corrupt("free block does not match its neighbour", b));
        }
        let rest = have - need;
        if rest >= MIN_BLOCK {
            let r = b + need;
            self.put(r + 8, need)?;
            self.put(r, rest)?;
            self.put(b + have + 8, rest)?;
            if bin_of(rest) == bin_of(have) {
                // The common split of a large block: the rest takes its place on the list.
                self.replace(b, have, r)?;
            } else {
                self.unlink(b, have)?;
                self.push(r, rest)?;
            }
            self.put(b, need | IN_USE)?;
            self.bump(H_BYTES_IN_USE, need)?;
            self.bump(H_BYTES_FREE, need.wrapping_neg())?;
        } else {
            self.unlink(b, have)?;
            self.put(b, have | IN_USE)?;
            self.bump(H_BYTES_IN_USE, have)?;
            self.bump(H_BYTES_FREE, have.wrapping_neg())?;
            self.bump(H_FREE_BLOCKS, u64::MAX)?;
        }
        self.bump(H_BLOCKS_IN_USE, 1)
    }

    /// Shrinks the block in use `b` from `cur` to `need` bytes; the rest becomes free.
    fn shrink(&self, b: u64, cur: u64, need: u64) -> Result<()> {
        let r = b + need;
        let rest = cur - need;
        self.put(r + 8, need)?;
        self.put(r, rest)?;
        self.put(b + cur + 8, rest)?;
        self.put(b, need | IN_USE)?;
        self.bump(H_BYTES_IN_USE, rest.wrapping_neg())?;
        self.release(r, rest)
    }

    /// Grows the block in use `b` of `cur` bytes to `need` bytes into the free block `next` of
    /// `size` bytes that follows it.
    fn grow(&self, b: u64, cur: u64, next: u64, size: u64, need: u64) -> Result<()> {
        if self.load(next + size + 8)? != size {
            return Err(Error::corrupt(
                "free block does not match its neighbour",
                next,
            ));
        }
        self.unlink(next, size)?;
        let total = cur + size;
        let rest = total - need;
        if rest >= MIN_BLOCK {
            let r = b + need;
            self.put(r + 8, need)?;
            self.put(r, rest)?;
            self.put(b + total + 8, rest)?;
            self.put(b, need | IN_USE)?;
            self.push(r, rest)?;
            self.bump(H_BYTES_IN_USE, need - cur)?;
            self.bump(H_BYTES_FREE, (need - cur).wrapping_neg())
        } else {
            self.put(b + total + 8, total)?;
            self.put(b, total | IN_USE)?;
            self.bump(H_BYTES_IN_USE, size)?;
            self.bump(H_BYTES_FREE, size.wrapping_neg())?;
            self.bump(H_FREE_BLOCKS, u64::MAX)
        }
    }

    /// Puts the free, unlisted block `b` of `size` bytes (its `IN_USE` bit already clear) on a
    /// list, merged with its free neighbours, and counts it free.
    fn release(&self, b: u64, size: u64) -> Result<()> {
        let next = b + size;
        let mut next_size = 0;
        if next < self.last {
            let w = self.load(next)?;
            if w & IN_USE == 0 {
                if w & FLAG_BITS != 0 || w < MIN_BLOCK || w > self.last - next {
                    return Err(Error::corrupt("free neighbour has a bad size", next));
                }
                next_size = w;
            }
        }
        let mut prev_size = 0;
        if b != self.start {
            let ps = self.load(b + 8)?;
            if ps % ALIGN != 0 || ps < MIN_BLOCK || ps > b - self.start {
                return Err(Error::corrupt("block has a bad prev_size", b));
            }
            let w = self.load(b - ps)?;
            if w & IN_USE == 0 {
                if w != ps {
                    return Err(Error::corrupt("free neighbour has a bad size", b - ps));
                }
                prev_size = ps;
            }
        }
        let first = b - prev_size;
        let total = prev_size + size + next_size;
        let bin = bin_of(total);
        if prev_size != 0 && bin_of(prev_size) == bin {
            // The previous block grows and stays where it is on its list.
            if next_size != 0 {
                self.unlink(next, next_size)?;
            }
            self.put(first, total)?;
        } else if prev_size == 0 && next_size != 0 && bin_of(next_size) == bin {
            // The freed block takes the next block's place on its list.
            self.replace(next, next_size, b)?;
            self.put(b, total)?;
        } else {
            if next_size != 0 {
                self.unlink(next, next_size)?;
            }
            if prev_size != 0 {
                self.unlink(first, prev_size)?;
            }
            if total != size {
                self.put(first, total)?;
            }
            self.push(first, total)?;
        }
        self.put(first + total + 8, total)?;
        let merged = u64::from(prev_size != 0) + u64::from(next_size != 0);
        self.bump(H_BYTES_FREE, size)?;
        self.bump(H_FREE_BLOCKS, 1u64.wrapping_sub(merged))
    }

    /// The links of the free block `b` on list `bin`, checked both ways: (next, prev).
    #[inline]
    fn links(&self, b: u64, bin: usize) -> Result<(u64, u64)> {
        let next = self.load(b + NEXT)?;
        let prev = self.load(b + PREV)?;
        if next != NIL {
            self.listed(next, bin)?;
            if self.load(next + PREV)? != b {
                return Err(Error::corrupt("free list links back wrongly", next));
            }
        }
        if prev != NIL {
            self.listed(prev, bin)?;
            if self.load(prev + NEXT)? != b {
                return Err(Error::corrupt("free list links forward wrongly", prev));
            }
        } else if self.head(bin)? != b {
            return Err(Error::corrupt("free block is not on its list", b));
        }
        Ok((next, prev))
    }

    /// Takes the free block `b` of `size` bytes off its list.
    #[inline]
    fn unlink(&self, b: u64, size: u64) -> Result<()> {
        let bin = bin_of(size);
        let (next, prev) = self.links(b, bin)?;
        if next != NIL {
            self.put(next + PREV, prev)?;
        }
        if prev != NIL {
            self.put(prev + NEXT, next)
        } else {
            self.set_h(H_HEADS + 8 * bin as u64, next)?;
            if next == NIL {
                self.mark(bin, false)?;
            }
            Ok(())
        }
    }

    /// Puts block `new` in the place of the free block `old` of `size` bytes on its list (`new`
    /// will be a free block of the same bin).
    #[inline]
    fn replace(&self, old: u64, size: u64, new: u64) -> Result<()> {
        let bin = bin_of(size);
        let (next, prev) = self.links(old, bin)?;
        self.put(new + NEXT, next)?;
        self.put(new + PREV, prev)?;
        if next != NIL {
            self.put(next + PREV, new)?;
        }
        if prev != NIL {
            self.put(prev + NEXT, new)
        } else {
            self.set_h(H_HEADS + 8 * bin as u64, new)
        }
    }

    /// Pushes the free block `b` of `size` bytes on the front of its list.
    #[inline]
    fn push(&self, b: u64, size: u64) -> Result<()> {
        let bin = bin_of(size);
        let head = self.head(bin)?;
        if head != NIL {
            self.listed(head, bin)?;
        }
        self.put(b + NEXT, head)?;
        self.put(b + PREV, NIL)?;
        if head != NIL {
            self.put(head + PREV, b)?;
        }
        self.set_h(H_HEADS + 8 * bin as u64, b)?;
        self.mark(bin, true)
    }

    /// Sets or clears bin `bin`'s bit in the bitmap.
    #[inline]
    fn mark(&self, bin: usize, nonempty: bool) -> Result<()> {
        let field = H_BITMAP + 8 * (bin / 64) as u64;
        let w = self.h(field)?;
        let bit = 1u64 << (bin % 64);
        let new = if nonempty { w | bit } else { w & !bit };
        if new != w {
            self.set_h(field, new)?;
        }
        Ok(())
    }

    // ----- words of the arena -----

    #[inline]
    fn head(&self, bin: usize) -> Result<u64> {
        self.h(H_HEADS + 8 * bin as u64)
    }

    /// Adds `delta` (two's complement) to a header counter.
    #[inline]
    fn bump(&self, field: u64, delta: u64) -> Result<()> {
        let v = self.h(field)?;
        self.set_h(field, v.wrapping_add(delta))
    }

    #[inline]
    fn h(&self, field: u64) -> Result<u64> {
        self.arena.load_u64(self.hdr + field)
    }

    #[inline]
    fn set_h(&self, field: u64, v: u64) -> Result<()> {
        self.put(self.hdr + field, v)
    }

    #[inline]
    fn load(&self, off: u64) -> Result<u64> {
        self.arena.load_u64(off)
    }

    /// Every write of allocator state goes through here (tests kill the "process" at one of them).
    #[inline]
    fn put(&self, off: u64, v: u64) -> Result<()> {
        #[cfg(test)]
        if let Some(n) = self.crash_after.get() {
            if n == 0 {
                return Err(Error::Os {
                    op: "simulated crash",
                    errno: 0,
                });
            }
            self.crash_after.set(Some(n - 1));
        }
        self.arena.store_u64(off, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const GUARD: u64 = 64;
    const GUARD_BYTE: u8 = 0xa5;

    /// An arena holding guard bytes, the header, guard bytes, the heap, guard bytes.
    struct Fixture {
        arena: Arena,
        hdr: u64,
        start: u64,
        end: u64,
    }

    impl Fixture {
        fn new(heap_len: u64) -> Fixture {
            let hdr = GUARD;
            let start = hdr + ALLOC_HEADER_SIZE + GUARD;
            let end = start + heap_len;
            let arena = Arena::heap((end + GUARD) as usize);
            arena.fill(0, arena.len(), GUARD_BYTE).unwrap();
            Heap::init(&arena, hdr, start, end).unwrap();
            Fixture {
                arena,
                hdr,
                start,
                end,
            }
        }

        fn heap(&self) -> Heap<'_> {
            Heap::open(&self.arena, self.hdr).unwrap()
        }

        fn guards_intact(&self) -> bool {
            let ranges = [
                (0, self.hdr),
                (self.hdr + ALLOC_HEADER_SIZE, self.start),
                (self.end, self.arena.len()),
            ];
            ranges.iter().all(|&(a, b)| {
                let mut buf = vec![0u8; (b - a) as usize];
                self.arena.copy_out(a, &mut buf).unwrap();
                buf.iter().all(|&x| x == GUARD_BYTE)
            })
        }
    }

    fn assert_clean(heap: &Heap<'_>) {
        let report = heap.check().unwrap();
        assert!(report.is_ok(), "{:#?}", report.problems);
    }

    fn is_corrupt<T>(r: Result<T>) -> bool {
        matches!(r, Err(Error::Corrupt { .. }))
    }

    // ----- unit tests -----

    #[test]
    fn bins_are_monotonic_and_cover_every_size() {
        assert_eq!(bin_of(32), 0);
        assert_eq!(bin_of(SMALL_MAX), NSMALL - 1);
        assert_eq!(bin_of(SMALL_MAX + 16), NSMALL);
        assert_eq!(bin_of(2048), NSMALL + SUBBINS);
        assert_eq!(bin_of(!15u64), NBINS - 1);
        let mut last = 0;
        for size in (32..1 << 20).step_by(16) {
            let bin = bin_of(size);
            assert!(bin >= last && bin < NBINS);
            last = bin;
        }
    }

    #[test]
    fn init_formats_one_free_block() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let stats = heap.stats().unwrap();
        assert_eq!(
            stats,
            AllocStats {
                heap_bytes: 4096 - 16,
                bytes_in_use: 0,
                bytes_free: 4096 - 16,
                blocks_in_use: 0,
                free_blocks: 1,
                largest_free: 4096 - 16,
            }
        );
        assert_eq!(
            heap.blocks().unwrap(),
            vec![(fx.start + 16, 4096 - 32, false)]
        );
        assert_clean(&heap);
        assert!(fx.guards_intact());
    }

    #[test]
    fn init_rejects_bad_geometry() {
        let arena = Arena::heap(8192);
        let bad = [
            (8, 2048, 4096),      // misaligned header
            (0, 2056, 4096),      // misaligned start
            (0, 2048, 4100),      // misaligned end
            (0, 2048, 8208),      // heap beyond the arena
            (8192 - 16, 0, 4096), // header beyond the arena
            (0, 1024, 4096),      // overlap
            (0, 4096, 4096 + 32), // too small
            (0, 4096, 2048),      // reversed
            (!15u64, 0, 4096),    // overflow
        ];
        for (hdr, start, end) in bad {
            let r = Heap::init(&arena, hdr, start, end);
            assert!(
                matches!(r, Err(Error::ValueError(_))),
                "{hdr} {start} {end}"
            );
        }
        assert!(
            Heap::init(&arena, 4096, 0, 4096).is_ok(),
            "header after the heap"
        );
        assert!(
            Heap::init(&arena, 0, 2048, 2048 + 48).is_ok(),
            "smallest heap"
        );
    }

    #[test]
    fn open_checks_magic_and_bounds_and_continues_the_state() {
        let fx = Fixture::new(4096);
        let a = fx.heap().alloc(100).unwrap();
        // Another "process" opens the same arena and carries on.
        let other = Heap::open(&fx.arena, fx.hdr).unwrap();
        assert_eq!(other.usable_size(a).unwrap(), 112);
        other.free(a).unwrap();
        assert_eq!(fx.heap().stats().unwrap().blocks_in_use, 0);

        assert!(is_corrupt(Heap::open(&fx.arena, fx.hdr + 16)));
        assert!(is_corrupt(Heap::open(&fx.arena, fx.arena.len())));
        assert!(is_corrupt(Heap::open(&fx.arena, 3)));
        fx.arena
            .store_u64(fx.hdr + H_END, fx.arena.len() + 16)
            .unwrap();
        assert!(is_corrupt(Heap::open(&fx.arena, fx.hdr)));
        fx.arena.store_u64(fx.hdr + H_END, fx.end).unwrap();
        fx.arena.store_u64(fx.hdr + H_MAGIC, 0).unwrap();
        assert!(is_corrupt(Heap::open(&fx.arena, fx.hdr)));
    }

    #[test]
    fn alloc_gives_aligned_disjoint_blocks() {
        let fx = Fixture::new(8192);
        let heap = fx.heap();
        let mut got = Vec::new();
        for size in [0, 1, 15, 16, 17, 100, 1000, 1024, 1025, 2000] {
            let off = heap.alloc(size).unwrap();
            assert_eq!(off % 16, 0);
            assert!(off >= fx.start + 16 && off + size <= fx.end - 16);
            let usable = heap.usable_size(off).unwrap();
            assert!(usable >= size && usable >= 16 && usable < size.max(16) + 16);
            got.push((off, usable));
        }
        got.sort_unstable();
        assert!(got.windows(2).all(|w| w[0].0 + w[0].1 < w[1].0));
        assert_eq!(
            heap.usable_size(got[0].0).unwrap(),
            16,
            "size 0 gives a minimal block"
        );
        assert_clean(&heap);
    }

    #[test]
    fn small_classes_reuse_freed_blocks_exactly() {
        let fx = Fixture::new(8192);
        let heap = fx.heap();
        let a = heap.alloc(40).unwrap();
        let b = heap.alloc(40).unwrap();
        let c = heap.alloc(40).unwrap();
        heap.free(b).unwrap();
        assert_eq!(heap.alloc(33).unwrap(), b, "same class, same block");
        heap.free(b).unwrap();
        let d = heap.alloc(10).unwrap();
        assert_eq!(
            d, b,
            "the 64-byte hole is the smallest that serves a 32-byte block"
        );
        assert_eq!(heap.usable_size(d).unwrap(), 16);
        let e = heap.alloc(0).unwrap();
        assert_eq!(e, b + 32, "the split-off half went to the 32-byte class");
        for off in [a, c, d, e] {
            heap.free(off).unwrap();
        }
        assert_eq!(heap.blocks().unwrap().len(), 1);
        assert_clean(&heap);
    }

    #[test]
    fn large_requests_take_the_best_fit_of_their_bin() {
        let fx = Fixture::new(64 << 10);
        let heap = fx.heap();
        // Free blocks of 4000, 3000 and 3500 bytes (all in the 2048..4096 range), kept apart.
        let mut keep = Vec::new();
        let mut holes = Vec::new();
        for size in [4000 - 16, 3000 - 16, 3500 - 16] {
            holes.push(heap.alloc(size).unwrap());
            keep.push(heap.alloc(16).unwrap());
        }
        for &h in &holes {
            heap.free(h).unwrap();
        }
        assert_eq!(heap.alloc(3400 - 16).unwrap(), holes[2]);
        assert_eq!(heap.alloc(2900 - 16).unwrap(), holes[1]);
        assert_clean(&heap);
    }

    #[test]
    fn alloc_zeroed_zeroes_reused_memory() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let a = heap.alloc(200).unwrap();
        fx.arena.fill(a, 200, 0xff).unwrap();
        heap.free(a).unwrap();
        let b = heap.alloc_zeroed(200).unwrap();
        assert_eq!(a, b);
        let mut buf = vec![1u8; heap.usable_size(b).unwrap() as usize];
        fx.arena.copy_out(b, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 0));
        assert!(matches!(
            heap.alloc_zeroed(1 << 20),
            Err(Error::OutOfMemory { .. })
        ));
    }

    #[test]
    fn free_coalesces_with_both_neighbours() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let offs: Vec<u64> = (0..5).map(|_| heap.alloc(100).unwrap()).collect();
        heap.free(offs[1]).unwrap();
        heap.free(offs[3]).unwrap();
        assert_eq!(heap.stats().unwrap().free_blocks, 3);
        heap.free(offs[2]).unwrap(); // merges 1, 2 and 3
        let stats = heap.stats().unwrap();
        assert_eq!(stats.free_blocks, 2);
        assert_eq!(stats.blocks_in_use, 2);
        assert_eq!(heap.alloc(3 * 128 - 16).unwrap(), offs[1]);
        assert_clean(&heap);
    }

    #[test]
    fn free_refuses_what_is_not_a_live_block() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let a = heap.alloc(100).unwrap();
        let b = heap.alloc(300).unwrap();
        fx.arena.fill(b, 300, 0).unwrap();
        heap.free(a).unwrap();
        let before = heap.stats().unwrap();
        let blocks = heap.blocks().unwrap();
        let bad = [
            a,           // double free
            b + 16,      // interior pointer (zeroed payload)
            b + 32,      // interior pointer
            b + 8,       // misaligned
            fx.start,    // the first block's header
            0,           // before the heap
            fx.hdr,      // the allocator header
            fx.end - 16, // the epilogue
            fx.end,      // past the heap
            fx.arena.len() + 4096,
            !15u64,
        ];
        for off in bad {
            assert!(is_corrupt(heap.free(off)), "{off:#x}");
            assert!(is_corrupt(heap.usable_size(off)), "{off:#x}");
            assert!(is_corrupt(heap.realloc(off, 10)), "{off:#x}");
        }
        assert_eq!(heap.stats().unwrap(), before);
        assert_eq!(heap.blocks().unwrap(), blocks);
        assert_clean(&heap);
        // An interior pointer whose bytes look like a header in use is still refused.
        fx.arena.store_u64(b + 64, 64 | IN_USE).unwrap();
        assert!(is_corrupt(heap.free(b + 80)));
        assert_clean(&heap);
        heap.free(b).unwrap();
        assert_clean(&heap);
        assert!(fx.guards_intact());
    }

    #[test]
    fn realloc_shrinks_and_grows_in_place_and_moves() {
        let fx = Fixture::new(8192);
        let heap = fx.heap();
        let a = heap.alloc(500).unwrap();
        let pattern: Vec<u8> = (0..500).map(|i| i as u8).collect();
        fx.arena.copy_in(a, &pattern).unwrap();
        // Shrink in place: the tail becomes free and merges with the free rest of the heap.
        assert_eq!(heap.realloc(a, 100).unwrap(), a);
        assert_eq!(heap.usable_size(a).unwrap(), 112);
        assert_eq!(heap.stats().unwrap().free_blocks, 1);
        // Grow in place into the free block that follows.
        assert_eq!(heap.realloc(a, 1000).unwrap(), a);
        let mut buf = vec![0u8; 100];
        fx.arena.copy_out(a, &mut buf).unwrap();
        assert_eq!(buf, pattern[..100]);
        // A small shrink keeps the block.
        assert_eq!(heap.realloc(a, 990).unwrap(), a);
        assert_eq!(heap.usable_size(a).unwrap(), 1008);
        // Move when the next block is in use.
        let fence = heap.alloc(10).unwrap();
        let b = heap.realloc(a, 2000).unwrap();
        assert_ne!(b, a);
        fx.arena.copy_out(b, &mut buf).unwrap();
        assert_eq!(buf, pattern[..100]);
        assert!(is_corrupt(heap.free(a)), "the old block is free");
        heap.free(fence).unwrap();
        heap.free(b).unwrap();
        assert_eq!(heap.blocks().unwrap().len(), 1);
        assert_clean(&heap);
    }

    #[test]
    fn realloc_out_of_memory_leaves_the_block_untouched() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let a = heap.alloc(1000).unwrap();
        let _fence = heap.alloc(16).unwrap();
        fx.arena.fill(a, 1000, 7).unwrap();
        let before = heap.stats().unwrap();
        match heap.realloc(a, 3100) {
            Err(Error::OutOfMemory {
                requested,
                available,
            }) => {
                assert_eq!(requested, 3100);
                assert_eq!(available as u64, before.bytes_free);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            heap.realloc(a, u64::MAX),
            Err(Error::OutOfMemory { .. })
        ));
        assert_eq!(heap.stats().unwrap(), before);
        let mut buf = vec![0u8; 1000];
        fx.arena.copy_out(a, &mut buf).unwrap();
        assert!(buf.iter().all(|&x| x == 7));
        assert_eq!(heap.usable_size(a).unwrap(), 1008);
        assert_clean(&heap);
    }

    #[test]
    fn out_of_memory_reports_figures_and_the_heap_stays_usable() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let mut offs = Vec::new();
        loop {
            match heap.alloc(200) {
                Ok(off) => offs.push(off),
                Err(Error::OutOfMemory {
                    requested,
                    available,
                }) => {
                    assert_eq!(requested, 200);
                    assert_eq!(available as u64, heap.stats().unwrap().bytes_free);
                    assert!(available < 216);
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(matches!(
            heap.alloc(u64::MAX),
            Err(Error::OutOfMemory { .. })
        ));
        assert!(matches!(
            heap.alloc(u64::MAX - 20),
            Err(Error::OutOfMemory { .. })
        ));
        assert_clean(&heap);
        heap.free(offs[3]).unwrap();
        assert_eq!(heap.alloc(200).unwrap(), offs[3]);
        for off in offs {
            heap.free(off).unwrap();
        }
        assert_eq!(heap.stats().unwrap().free_blocks, 1);
        assert_clean(&heap);
    }

    #[test]
    fn stats_are_exact() {
        let fx = Fixture::new(16384);
        let heap = fx.heap();
        let a = heap.alloc(100).unwrap(); // 128
        let b = heap.alloc(5000).unwrap(); // 5024
        let c = heap.alloc(0).unwrap(); // 32
        heap.free(a).unwrap();
        let stats = heap.stats().unwrap();
        assert_eq!(stats.heap_bytes, 16384 - 16);
        assert_eq!(stats.bytes_in_use, 5024 + 32);
        assert_eq!(stats.bytes_free, stats.heap_bytes - 5024 - 32);
        assert_eq!(stats.blocks_in_use, 2);
        assert_eq!(stats.free_blocks, 2);
        assert_eq!(stats.largest_free, stats.bytes_free - 128);
        heap.free(b).unwrap(); // merges with a's block; c still parts it from the rest
        let after = heap.stats().unwrap();
        assert_eq!(after.free_blocks, 2);
        assert_eq!(after.largest_free, stats.largest_free);
        heap.free(c).unwrap();
        assert_eq!(heap.stats().unwrap().largest_free, stats.heap_bytes);
    }

    #[test]
    fn check_reports_damage_without_changing_anything() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let a = heap.alloc(100).unwrap();
        let b = heap.alloc(100).unwrap();
        let _c = heap.alloc(100).unwrap();
        heap.free(b).unwrap();
        let fb = b - 16;
        let damage: [(u64, u64); 6] = [
            (fb + NEXT, a - 16),        // link to a block in use
            (fb + PREV, 0x10),          // link outside the heap
            (fx.hdr + H_BYTES_FREE, 1), // statistics
            (fb + 8, 48),               // prev_size
            (a - 16, 0),                // a block size: the chain breaks
            (fx.hdr + H_BITMAP, 0),     // bitmap
        ];
        for (off, v) in damage {
            let old = fx.arena.load_u64(off).unwrap();
            fx.arena.store_u64(off, v).unwrap();
            let report = heap.check().unwrap();
            assert!(!report.is_ok(), "damage at {off:#x} went unseen");
            assert_eq!(fx.arena.load_u64(off).unwrap(), v);
            fx.arena.store_u64(off, old).unwrap();
            assert_clean(&heap);
        }
        fx.arena.store_u64(fx.hdr + H_MAGIC, 1).unwrap();
        assert!(is_corrupt(heap.check()));
    }

    #[test]
    fn check_terminates_on_cyclic_lists() {
        let fx = Fixture::new(8192);
        let heap = fx.heap();
        let offs: Vec<u64> = (0..8).map(|_| heap.alloc(40).unwrap()).collect();
        for i in (0..8).step_by(2) {
            heap.free(offs[i]).unwrap();
        }
        // Make the last node of the 48-byte class point back to the head.
        let head = heap.head(bin_of(64)).unwrap();
        let mut cur = head;
        while fx.arena.load_u64(cur + NEXT).unwrap() != NIL {
            cur = fx.arena.load_u64(cur + NEXT).unwrap();
        }
        fx.arena.store_u64(cur + NEXT, head).unwrap();
        assert!(!heap.check().unwrap().is_ok());
        // alloc and free notice the bad list, and the call after repairs it.
        for _ in 0..8 {
            let _ = heap.alloc(40);
        }
        heap.rebuild(&mut |_| true).unwrap();
        assert_clean(&heap);
    }

    #[test]
    fn rebuild_repairs_lists_and_statistics() {
        let fx = Fixture::new(8192);
        let heap = fx.heap();
        let offs: Vec<u64> = (0..10).map(|i| heap.alloc(50 * i).unwrap()).collect();
        for i in (0..10).step_by(3) {
            heap.free(offs[i]).unwrap();
        }
        let blocks = heap.blocks().unwrap();
        let stats = heap.stats().unwrap();
        for bin in 0..NBINS as u64 {
            fx.arena
                .store_u64(fx.hdr + H_HEADS + 8 * bin, 0x1234)
                .unwrap();
        }
        fx.arena.store_u64(fx.hdr + H_BYTES_IN_USE, 77).unwrap();
        fx.arena.store_u64(offs[1] - 8, 12345).unwrap(); // a prev_size
        assert!(!heap.check().unwrap().is_ok());
        let report = heap.rebuild(&mut |_| true).unwrap();
        assert_eq!(report, RebuildReport::default());
        assert_clean(&heap);
        assert_eq!(heap.blocks().unwrap(), blocks);
        assert_eq!(heap.stats().unwrap(), stats);
    }

    #[test]
    fn rebuild_frees_unreachable_blocks() {
        let fx = Fixture::new(8192);
        let heap = fx.heap();
        let offs: Vec<u64> = (0..6).map(|_| heap.alloc(100).unwrap()).collect();
        let keep = [offs[0], offs[3]];
        let mut asked = Vec::new();
        let report = heap
            .rebuild(&mut |off| {
                asked.push(off);
                keep.contains(&off)
            })
            .unwrap();
        assert_eq!(asked, offs);
        assert_eq!(report.freed_blocks, 4);
        assert_eq!(report.freed_bytes, 4 * 128);
        let stats = heap.stats().unwrap();
        assert_eq!(stats.blocks_in_use, 2);
        assert_eq!(stats.free_blocks, 2, "1-2 merged, 4-5 merged with the rest");
        assert_clean(&heap);
    }

    #[test]
    fn rebuild_refuses_a_broken_chain_and_changes_nothing() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let a = heap.alloc(100).unwrap();
        let _b = heap.alloc(100).unwrap();
        fx.arena.store_u64(a - 16, 4096 | IN_USE).unwrap();
        let mut before = vec![0u8; fx.arena.len() as usize];
        fx.arena.copy_out(0, &mut before).unwrap();
        assert!(is_corrupt(heap.rebuild(&mut |_| false)));
        assert!(is_corrupt(heap.blocks()));
        let mut after = vec![0u8; fx.arena.len() as usize];
        fx.arena.copy_out(0, &mut after).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn an_interrupted_operation_is_repaired_by_the_next_call() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        let a = heap.alloc(100).unwrap();
        let b = heap.alloc(100).unwrap();
        // A process died after unlinking a free block and clearing b's IN_USE bit.
        fx.arena.store_u64(fx.hdr + H_DIRTY, 1).unwrap();
        for bin in 0..NBINS as u64 {
            fx.arena.store_u64(fx.hdr + H_HEADS + 8 * bin, NIL).unwrap();
        }
        fx.arena.store_u64(b - 16, 128).unwrap();
        let report = heap.check().unwrap();
        assert!(report.problems[0].contains("interrupted"), "{report:?}");
        let other = Heap::open(&fx.arena, fx.hdr).unwrap();
        let c = other.alloc(100).unwrap();
        assert_eq!(c, b);
        assert_eq!(other.usable_size(a).unwrap(), 112);
        assert_clean(&other);
    }

    #[test]
    fn simulated_crash_stops_all_writes() {
        let fx = Fixture::new(4096);
        let heap = fx.heap();
        heap.crash_after.set(Some(0));
        assert!(matches!(heap.alloc(10), Err(Error::Os { .. })));
        heap.crash_after.set(None);
        assert_clean(&heap);
    }

    // ----- property tests -----

    #[derive(Debug, Clone)]
    enum Op {
        Alloc(u64),
        Zeroed(u64),
        Free(usize),
        Realloc(usize, u64),
    }

    fn size() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..48, 0u64..1100, 0u64..6000]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => size().prop_map(Op::Alloc),
            1 => size().prop_map(Op::Zeroed),
            3 => any::<usize>().prop_map(Op::Free),
            2 => (any::<usize>(), size()).prop_map(|(i, s)| Op::Realloc(i, s)),
        ]
    }

    /// A block the test holds: payload offset, bytes written, the pattern's seed.
    #[derive(Debug, Clone, Copy)]
    struct Live {
        off: u64,
        len: u64,
        seed: u8,
    }

    fn pattern(len: u64, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[derive(Default)]
    struct Model {
        live: Vec<Live>,
        seed: u8,
    }

    impl Model {
        fn fill(&mut self, arena: &Arena, off: u64, len: u64) {
            self.seed = self.seed.wrapping_add(1);
            arena.copy_in(off, &pattern(len, self.seed)).unwrap();
            self.live.push(Live {
                off,
                len,
                seed: self.seed,
            });
        }

        /// Applies `op`; the heap's error, if any, after checking what an OOM must leave.
        fn apply(&mut self, heap: &Heap<'_>, arena: &Arena, op: &Op) -> Result<()> {
            let oom = |requested: u64, e: Error| {
                if let Error::OutOfMemory {
                    requested: r,
                    available,
                } = e
                {
                    assert_eq!(r as u64, requested);
                    assert_eq!(available as u64, heap.h(H_BYTES_FREE).unwrap());
                    Ok(())
                } else {
                    Err(e)
                }
            };
            match *op {
                Op::Alloc(size) | Op::Zeroed(size) => {
                    let r = if matches!(op, Op::Zeroed(_)) {
                        heap.alloc_zeroed(size)
                    } else {
                        heap.alloc(size)
                    };
                    match r {
                        Ok(off) => {
                            if matches!(op, Op::Zeroed(_)) {
                                let mut buf = vec![1u8; size as usize];
                                arena.copy_out(off, &mut buf).unwrap();
                                assert!(buf.iter().all(|&x| x == 0));
                            }
                            self.fill(arena, off, size);
                            Ok(())
                        }
                        Err(e) => oom(size, e),
                    }
                }
                Op::Free(i) if !self.live.is_empty() => {
                    let l = self.live.swap_remove(i % self.live.len());
                    heap.free(l.off)
                }
                Op::Realloc(i, size) if !self.live.is_empty() => {
                    let i = i % self.live.len();
                    let l = self.live[i];
                    match heap.realloc(l.off, size) {
                        Ok(off) => {
                            let keep = l.len.min(size);
                            let mut buf = vec![0u8; keep as usize];
                            arena.copy_out(off, &mut buf).unwrap();
                            assert_eq!(buf, pattern(l.len, l.seed)[..keep as usize]);
                            self.live.swap_remove(i);
                            self.fill(arena, off, size);
                            Ok(())
                        }
                        Err(e) => {
                            self.live.swap_remove(i);
                            oom(size, e)?;
                            self.live.push(l);
                            Ok(())
                        }
                    }
                }
                Op::Free(_) | Op::Realloc(..) => Ok(()),
            }
        }

        /// Everything the model knows holds in the heap.
        fn verify(&self, fx: &Fixture, heap: &Heap<'_>) {
            assert_clean(heap);
            assert!(fx.guards_intact());
            for l in &self.live {
                let mut buf = vec![0u8; l.len as usize];
                fx.arena.copy_out(l.off, &mut buf).unwrap();
                assert_eq!(buf, pattern(l.len, l.seed), "contents of {:#x}", l.off);
            }
            let blocks = heap.blocks().unwrap();
            let used: BTreeSet<u64> = blocks.iter().filter(|b| b.2).map(|b| b.0).collect();
            let held: BTreeSet<u64> = self.live.iter().map(|l| l.off).collect();
            assert_eq!(used, held);
            for l in &self.live {
                assert!(heap.usable_size(l.off).unwrap() >= l.len);
            }
            let stats = heap.stats().unwrap();
            assert_eq!(stats.bytes_in_use + stats.bytes_free, stats.heap_bytes);
            assert_eq!(stats.blocks_in_use, self.live.len() as u64);
            let in_use: u64 = blocks.iter().filter(|b| b.2).map(|b| b.1 + 16).sum();
            assert_eq!(stats.bytes_in_use, in_use);
            let free: Vec<u64> = blocks.iter().filter(|b| !b.2).map(|b| b.1 + 16).collect();
            assert_eq!(stats.free_blocks, free.len() as u64);
            assert_eq!(stats.largest_free, free.iter().copied().max().unwrap_or(0));
        }

        fn free_all(&mut self, heap: &Heap<'_>) {
            for l in self.live.drain(..) {
                heap.free(l.off).unwrap();
            }
        }
    }

    fn assert_one_free_block(fx: &Fixture, heap: &Heap<'_>) {
        assert_eq!(
            heap.blocks().unwrap(),
            vec![(fx.start + 16, fx.end - fx.start - 32, false)]
        );
        assert_clean(heap);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_operations_match_the_model(ops in proptest::collection::vec(op(), 1..200)) {
            let fx = Fixture::new(24 << 10);
            let heap = fx.heap();
            let mut model = Model::default();
            for op in &ops {
                model.apply(&heap, &fx.arena, op).unwrap();
                model.verify(&fx, &heap);
            }
            model.free_all(&heap);
            assert_one_free_block(&fx, &heap);
        }

        #[test]
        fn rebuild_frees_what_was_forgotten(
            ops in proptest::collection::vec(op(), 1..120),
            forget in proptest::collection::vec(any::<bool>(), 64),
        ) {
            let fx = Fixture::new(24 << 10);
            let heap = fx.heap();
            let mut model = Model::default();
            for op in &ops {
                model.apply(&heap, &fx.arena, op).unwrap();
            }
            let (mut kept, mut lost) = (Vec::new(), Vec::new());
            for (i, l) in model.live.iter().enumerate() {
                if forget[i % forget.len()] { lost.push(*l) } else { kept.push(*l) }
            }
            let lost_bytes: u64 = lost.iter().map(|l| heap.usable_size(l.off).unwrap() + 16).sum();
            model.live = kept;
            let held: BTreeSet<u64> = model.live.iter().map(|l| l.off).collect();
            let report = heap.rebuild(&mut |off| held.contains(&off)).unwrap();
            prop_assert_eq!(report.freed_blocks, lost.len() as u64);
            prop_assert_eq!(report.freed_bytes, lost_bytes);
            model.verify(&fx, &heap);
            model.apply(&heap, &fx.arena, &Op::Alloc(100)).unwrap();
            model.verify(&fx, &heap);
            model.free_all(&heap);
            assert_one_free_block(&fx, &heap);
        }

        #[test]
        fn a_crash_at_any_write_leaks_at_most_and_is_repaired(
            ops in proptest::collection::vec(op(), 1..80),
            fatal in op(),
            writes in 0u64..40,
            after in proptest::collection::vec(op(), 0..20),
        ) {
            let fx = Fixture::new(24 << 10);
            let mut model = Model::default();
            {
                let heap = fx.heap();
                for op in &ops {
                    model.apply(&heap, &fx.arena, op).unwrap();
                }
                // The process dies after `writes` writes into the heap's state.
                heap.crash_after.set(Some(writes));
                let target = match fatal {
                    Op::Free(i) | Op::Realloc(i, _) if !model.live.is_empty() => {
                        Some(model.live.swap_remove(i % model.live.len()))
                    }
                    _ => None,
                };
                let r = match fatal {
                    Op::Alloc(s) => heap.alloc(s).map(|_| ()),
                    Op::Zeroed(s) => heap.alloc_zeroed(s).map(|_| ()),
                    Op::Free(_) => target.map_or(Ok(()), |l| heap.free(l.off)),
                    Op::Realloc(_, s) => target.map_or(Ok(()), |l| heap.realloc(l.off, s).map(|_| ())),
                };
                if let Err(e) = r {
                    prop_assert!(matches!(e, Error::Os { .. } | Error::OutOfMemory { .. }), "{e:?}");
                }
            }
            // Another process carries on: what it finds is a heap with at most leaked blocks.
            let heap = fx.heap();
            let _ = heap.check().unwrap();
            heap.stats().unwrap(); // repairs
            assert_clean(&heap);
            assert!(fx.guards_intact());
            let used: BTreeSet<u64> =
                heap.blocks().unwrap().iter().filter(|b| b.2).map(|b| b.0).collect();
            for l in &model.live {
                prop_assert!(used.contains(&l.off));
            }
            prop_assert!(used.len() <= model.live.len() + 2);
            for op in &after {
                model.apply(&heap, &fx.arena, op).unwrap();
            }
            let held: BTreeSet<u64> = model.live.iter().map(|l| l.off).collect();
            heap.rebuild(&mut |off| held.contains(&off)).unwrap();
            model.verify(&fx, &heap);
            model.free_all(&heap);
            assert_one_free_block(&fx, &heap);
        }

        #[test]
        fn corrupt_bytes_never_panic_or_escape_the_heap(
            ops in proptest::collection::vec(op(), 1..60),
            damage in proptest::collection::vec((0u8..4, any::<u64>(), any::<u64>()), 1..6),
            tail in proptest::collection::vec(op(), 0..30),
        ) {
            let fx = Fixture::new(16 << 10);
            let heap = fx.heap();
            let mut model = Model::default();
            for op in &ops {
                model.apply(&heap, &fx.arena, op).unwrap();
            }
            let blocks = heap.blocks().unwrap();
            for &(kind, at, value) in &damage {
                let off = match kind {
                    0 => fx.hdr + 8 * (at % (ALLOC_HEADER_SIZE / 8)),
                    1 | 2 => {
                        let b = blocks[(at % blocks.len() as u64) as usize].0 - 16;
                        b + 8 * ((at >> 32) % 4)
                    }
                    _ => fx.start + 8 * (at % ((fx.end - fx.start) / 8)),
                };
                let old = fx.arena.load_u64(off).unwrap();
                let new = if kind == 2 { old ^ (1 << (value % 64)) } else { value };
                fx.arena.store_u64(off, new).unwrap();
            }
            let _ = heap.check();
            let _ = Heap::open(&fx.arena, fx.hdr).map(|h| h.check());
            for l in &model.live {
                let _ = heap.usable_size(l.off);
            }
            // Allocations may land on damaged blocks, so writes go only through the allocator.
            for op in &tail {
                let _ = match *op {
                    Op::Alloc(s) => heap.alloc(s).map(|_| ()),
                    Op::Zeroed(s) => heap.alloc_zeroed(s).map(|_| ()),
                    Op::Free(i) if !model.live.is_empty() => heap.free(model.live[i % model.live.len()].off),
                    Op::Realloc(i, s) if !model.live.is_empty() => {
                        heap.realloc(model.live[i % model.live.len()].off, s).map(|_| ())
                    }
                    _ => Ok(()),
                };
                let _ = heap.stats();
            }
            let _ = heap.blocks();
            let _ = heap.check();
            if heap.rebuild(&mut |_| true).is_ok() {
                // Whatever the damage, a chain that walks rebuilds into a consistent heap.
                let report = heap.check().unwrap();
                prop_assert!(report.is_ok(), "{:#?}", report.problems);
            }
            let _ = heap.alloc(10);
            prop_assert!(fx.guards_intact());
        }
    }
}
