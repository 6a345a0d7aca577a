//! The raw arena: a byte region shared between processes, reached only through checked offsets.
//!
//! This is the one place that turns an offset into a pointer (`Arena::ptr`). Every other module
//! reads and writes the arena through the checked accessors below, which refuse an offset that is
//! out of bounds or misaligned with [`Error::Corrupt`] instead of touching memory.
//!
//! Plain reads and writes (`read`, `write`, `copy_in`, …) are for data guarded by a lock the caller
//! holds; fields that are touched without a lock are reached as atomics (`atomic_u32`,
//! `atomic_u64`). Nothing here forms a `&` or `&mut` to non-atomic shared bytes that outlives a
//! call, except through [`Arena::slice`]/[`Arena::slice_mut`], whose callers hold the object's lock.
//!
//! An arena is backed either by a mapped segment or by a heap buffer (for unit tests, fuzzing and
//! Miri), and behaves the same over both.
//!
//! # Examples
//! ```
//! use shmstore::arena::{Arena, Offset};
//! let a = Arena::heap(64); // or over a mapped segment: shmstore::segment::create
//! a.write(Offset::<u32>::new(8), 7)?;
//! assert_eq!(a.read(Offset::<u32>::new(8))?, 7);
//! // Out of bounds or misaligned: an error, never a stray access.
//! assert!(a.read(Offset::<u32>::new(62)).is_err());
//! assert!(a.read(Offset::<u32>::new(9)).is_err());
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::{AnyBitPattern, NoUninit, Pod};

use crate::error::{Error, Result};

/// A typed offset into the arena. Plain data: it is what shared memory stores instead of pointers.
///
/// # Examples
/// ```
/// use shmstore::arena::Offset;
/// let words: Offset<u64> = Offset::new(64);
/// let second: Offset<u64> = words.byte_add(8)?;
/// assert_eq!(second.raw(), 72);
/// assert_eq!(format!("{second:?}"), "Offset(0x48)");
/// # Ok::<(), shmstore::Error>(())
/// ```
#[repr(transparent)]
pub struct Offset<T> {
    raw: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T> Offset<T> {
    /// The offset `raw` bytes from the start of the arena.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::{Arena, Offset};
    /// let a = Arena::heap(32);
    /// a.write(Offset::new(16), 1.5f64)?;
    /// assert_eq!(a.read(Offset::<f64>::new(16))?, 1.5);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub const fn new(raw: u64) -> Self {
        Offset {
            raw,
            _t: PhantomData,
        }
    }
    /// The number of bytes from the start of the arena.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Offset;
    /// assert_eq!(Offset::<u8>::new(4096).raw(), 4096);
    /// ```
    #[inline]
    pub const fn raw(self) -> u64 {
        self.raw
    }
    /// The same offset, seen as another type.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::{Arena, Offset};
    /// let a = Arena::heap(16);
    /// let as_u64: Offset<u64> = Offset::new(8);
    /// a.write(as_u64, u64::MAX)?;
    /// assert_eq!(a.read(as_u64.cast::<u32>())?, u32::MAX); // the same bytes, read as a u32
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub const fn cast<U>(self) -> Offset<U> {
        Offset::new(self.raw)
    }
    /// `bytes` further on, as another type; `Corrupt` on overflow.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Offset;
    /// let o: Offset<u8> = Offset::new(100);
    /// assert_eq!(o.byte_add::<u32>(28)?.raw(), 128);
    /// assert!(o.byte_add::<u8>(u64::MAX).is_err()); // Corrupt: overflows
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn byte_add<U>(self, bytes: u64) -> Result<Offset<U>> {
        match self.raw.checked_add(bytes) {
            Some(r) => Ok(Offset::new(r)),
            None => Err(Error::corrupt("offset overflows", self.raw)),
        }
    }
}

impl<T> Clone for Offset<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Offset<T> {}
impl<T> PartialEq for Offset<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> Eq for Offset<T> {}
impl<T> std::fmt::Debug for Offset<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Offset({:#x})", self.raw)
    }
}

/// What keeps the arena's bytes alive.
enum Backing {
    Map(#[allow(dead_code)] memmap2::MmapRaw),
    Heap(#[allow(dead_code)] Box<[u128]>),
}

/// A `repr(C)` struct made only of `AtomicU32`/`AtomicU64` fields (arrays of them included),
/// which [`Arena::words`] may view in place.
///
/// # Safety
/// Implementors must be `repr(C)` and contain nothing but atomic integers, with no padding: any
/// bit pattern is then a valid value and every access is atomic.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
/// use shmstore::arena::{Arena, AtomicWords};
/// #[repr(C)]
/// struct Counters {
///     hits: AtomicU64,
///     misses: AtomicU32,
///     spare: AtomicU32,
/// }
/// // SAFETY: `repr(C)`, atomic integers only, no padding (8 + 4 + 4).
/// unsafe impl AtomicWords for Counters {}
/// let a = Arena::heap(64);
/// let c = a.words::<Counters>(16)?;
/// c.hits.fetch_add(2, Ordering::Relaxed);
/// c.misses.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(a.load_u64(16)?, 2);
/// assert_eq!(a.atomic_u32(24)?.load(Ordering::Relaxed), 1);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub unsafe trait AtomicWords: Sized {}

// SAFETY: an array of `AtomicU64` is `N` atomics with no padding, valid for every bit pattern.
unsafe impl<const N: usize> AtomicWords for [AtomicU64; N] {}
// SAFETY: one atomic integer, valid for every bit pattern.
unsafe impl AtomicWords for AtomicU32 {}
// SAFETY: an array of `AtomicU32` is `N` atomics with no padding, valid for every bit pattern.
unsafe impl<const N: usize> AtomicWords for [AtomicU32; N] {}

/// Where [`Arena::pin`] found a `T`: [`Arena::pinned`] gets it back with one comparison, from
/// the same arena only. A handle pins its object's slot once, so each call skips the slot
/// table's bounds arithmetic.
pub struct Pinned<T> {
    base: usize,
    off: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Pinned<T> {
    /// A `Pinned` that no arena finds (for a handle whose slot failed its check).
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::AtomicU64;
    /// use shmstore::arena::{Arena, Pinned};
    /// assert!(Arena::heap(64).pinned(Pinned::<[AtomicU64; 1]>::NOWHERE).is_none());
    /// ```
    pub const NOWHERE: Pinned<T> = Pinned {
        base: 0,
        off: 0,
        _t: PhantomData,
    };
}

impl<T> Clone for Pinned<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Pinned<T> {}

impl<T> std::fmt::Debug for Pinned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pinned({:#x})", self.off)
    }
}

/// A shared byte region addressed by offsets.
///
/// # Examples
/// ```
/// use shmstore::arena::Arena;
/// let a = Arena::heap(100);
/// assert_eq!(a.len(), 112); // rounded up to 16
/// a.store_u64(0, 42)?;
/// assert_eq!(a.load_u64(0)?, 42);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub struct Arena {
    base: NonNull<u8>,
    len: u64,
    _backing: Backing,
}

impl Drop for Arena {
    fn drop(&mut self) {
        // The locks in these bytes are gone with them: a lock mapped here later has no history
        // of dead waiters (`sync::barrier::woke`).
        crate::sync::barrier::forget_range(self.base.as_ptr() as usize, self.len as usize);
    }
}

// SAFETY: the arena is a region of plain bytes meant to be shared by many threads and processes;
// all access goes through raw pointers (never long-lived references) or atomics, and mutation of
// non-atomic data is serialized by the interprocess locks stored in the arena.
unsafe impl Send for Arena {}
// SAFETY: as for `Send`; no method hands out a reference that permits unsynchronized mutation.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena over a mapped segment.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let map = memmap2::MmapOptions::new().len(4096).map_anon()?;
    /// let a = Arena::from_map(memmap2::MmapRaw::from(map))?;
    /// a.store_u64(4088, 1)?;
    /// assert_eq!(a.len(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_map(map: memmap2::MmapRaw) -> Result<Arena> {
        let len = map.len() as u64;
        let base = NonNull::new(map.as_mut_ptr()).ok_or(Error::corrupt("null mapping", 0))?;
        if (base.as_ptr() as usize) % 16 != 0 {
            return Err(Error::corrupt("mapping not 16-byte aligned", 0));
        }
        Ok(Arena {
            base,
            len,
            _backing: Backing::Map(map),
        })
    }

    /// A zeroed arena of `len` bytes on the heap (rounded up to 16), for tests and fuzzing.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(64);
    /// assert_eq!(a.load_u64(56)?, 0); // zeroed
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn heap(len: usize) -> Arena {
        let words = len.div_ceil(16);
        let mut buf = vec![0u128; words].into_boxed_slice();
        let base = NonNull::new(buf.as_mut_ptr().cast::<u8>()).unwrap_or(NonNull::dangling());
        Arena {
            base,
            len: (words * 16) as u64,
            _backing: Backing::Heap(buf),
        }
    }

    /// Size in bytes.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// assert_eq!(Arena::heap(4096).len(), 4096);
    /// ```
    #[inline]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the arena has no bytes.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// assert!(Arena::heap(0).is_empty());
    /// assert!(!Arena::heap(1).is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the first byte, for display only (the `at 0x…` of a proxy's repr).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// assert_eq!(a.base_addr() % 16, 0); // 16-byte aligned
    /// ```
    pub fn base_addr(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// The one function that turns an offset into a pointer: checks that `[off, off + size)` lies
    /// inside the arena and that `off` is a multiple of `align`, which must be a power of two
    /// (as every Rust alignment is; any other `align`, 0 included, is refused).
    #[inline]
    fn ptr(&self, off: u64, size: u64, align: u64) -> Result<*mut u8> {
        // `off + size <= len` as `off <= len - size`: no overflow to test, and for a constant
        // `size` one subtraction of a constant. Alignment by a mask, not `%`: an alignment known
        // only at run time (a plain-data element's) would otherwise cost a division.
        match self.len.checked_sub(size) {
            Some(room)
                if off <= room && align.is_power_of_two() && off & align.wrapping_sub(1) == 0 =>
            {
                // SAFETY: `off + size <= len`, so `base + off` stays inside (or one past the end
                // of) the region this arena owns.
                Ok(unsafe { self.base.as_ptr().add(off as usize) })
            }
            _ => Err(self.bad(off, size, align)),
        }
    }

    #[cold]
    fn bad(&self, off: u64, size: u64, align: u64) -> Error {
        if !align.is_power_of_two() {
            Error::corrupt("alignment not a power of two", align)
        } else if off & (align - 1) != 0 {
            Error::corrupt("misaligned offset", off)
        } else {
            let _ = size;
            Error::corrupt("offset out of bounds", off)
        }
    }

    /// Checks that `[off, off + size)` is inside the arena and `off` is aligned to `align` (a
    /// power of two; any other `align` is an error).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(64);
    /// assert!(a.check(56, 8, 8).is_ok());
    /// assert!(a.check(60, 8, 4).is_err()); // runs past the end
    /// assert!(a.check(4, 8, 8).is_err()); // misaligned
    /// assert!(a.check(0, 8, 0).is_err() && a.check(12, 4, 3).is_err()); // not a power of two
    /// ```
    #[inline]
    pub fn check(&self, off: u64, size: u64, align: u64) -> Result<()> {
        self.ptr(off, size, align).map(|_| ())
    }

    /// Reads a plain value. The caller holds the lock that guards it.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::{Arena, Offset};
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Pair {
    ///     a: u32,
    ///     b: u32,
    /// }
    /// let arena = Arena::heap(64);
    /// arena.write(Offset::new(8), Pair { a: 1, b: 2 })?;
    /// let p: Pair = arena.read(Offset::new(8))?;
    /// assert_eq!((p.a, p.b), (1, 2));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn read<T: AnyBitPattern>(&self, off: Offset<T>) -> Result<T> {
        let p = self.ptr(off.raw, size_of::<T>() as u64, align_of::<T>() as u64)?;
        // SAFETY: 1. `p` is in bounds and aligned for `T` (checked by `ptr`); 2. every bit pattern
        // is a valid `T` (`AnyBitPattern`); 3. writers of these bytes hold the same lock as we do.
        Ok(unsafe { p.cast::<T>().read() })
    }

    /// Writes a plain value. The caller holds the lock that guards it.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::{Arena, Offset};
    /// let a = Arena::heap(32);
    /// a.write(Offset::new(0), [1u16, 2, 3, 4])?;
    /// assert_eq!(a.read(Offset::<[u16; 4]>::new(0))?, [1, 2, 3, 4]);
    /// assert!(a.write(Offset::new(30), 0u32).is_err());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn write<T: NoUninit>(&self, off: Offset<T>, v: T) -> Result<()> {
        let p = self.ptr(off.raw, size_of::<T>() as u64, align_of::<T>() as u64)?;
        // SAFETY: 1. `p` is in bounds and aligned for `T`; 2. `T` has no drop glue or padding
        // (`NoUninit`), so writing it leaves plain bytes; 3. the caller holds the guarding lock.
        unsafe { p.cast::<T>().write(v) };
        Ok(())
    }

    /// Reads a `u64` at an 8-aligned offset.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.store_u64(8, 0xfeed)?;
    /// assert_eq!(a.load_u64(8)?, 0xfeed);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn load_u64(&self, off: u64) -> Result<u64> {
        self.read(Offset::<u64>::new(off))
    }

    /// Writes a `u64` at an 8-aligned offset.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.store_u64(0, 5)?;
    /// assert!(a.store_u64(12, 5).is_err()); // not 8-aligned
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn store_u64(&self, off: u64, v: u64) -> Result<()> {
        self.write(Offset::<u64>::new(off), v)
    }

    /// The words of a `T` made only of atomics at an offset aligned for `T`: one bounds and
    /// alignment check for every field, where the hot paths would otherwise check each field.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(64);
    /// let lock = a.words::<WordLock>(16)?; // all zero: unlocked
    /// assert!(!lock.locked());
    /// assert!(a.words::<WordLock>(12).is_err()); // misaligned
    /// assert!(a.words::<WordLock>(56).is_err()); // runs past the end
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn words<T: AtomicWords>(&self, off: u64) -> Result<&T> {
        let p = self.ptr(off, size_of::<T>() as u64, align_of::<T>() as u64)?;
        // SAFETY: 1. `p` is in bounds and aligned for `T` (checked); 2. the arena lives as long
        // as `&self`; 3. `T` is made only of atomics (`AtomicWords`' contract), so every bit
        // pattern is valid, and every access to these bytes is atomic.
        Ok(unsafe { &*p.cast::<T>() })
    }

    /// Checks once that a `T` fits at `off` (in bounds, aligned), for [`Arena::pinned`] to find
    /// it again with one comparison instead of the whole check.
    ///
    /// # Errors
    /// `Corrupt` for an offset out of bounds or misaligned.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// use shmstore::sync::word::WordLock;
    /// let a = Arena::heap(64);
    /// let p = a.pin::<WordLock>(16)?;
    /// assert!(std::ptr::eq(a.pinned(p).expect("same arena"), a.words::<WordLock>(16)?));
    /// assert!(a.pin::<WordLock>(12).is_err()); // misaligned
    /// assert!(Arena::heap(64).pinned(p).is_none()); // another arena: not found there
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn pin<T: AtomicWords>(&self, off: u64) -> Result<Pinned<T>> {
        self.words::<T>(off)?;
        Ok(Pinned {
            base: self.base.as_ptr() as usize,
            off: off as usize,
            _t: PhantomData,
        })
    }

    /// The `T` that [`Arena::pin`] checked, if `p` was pinned in this arena (the same mapping:
    /// the same base address and still in bounds); `None` otherwise.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(64);
    /// let p = a.pin::<[AtomicU64; 2]>(8)?;
    /// a.pinned(p).expect("pinned here")[0].store(7, Ordering::Relaxed);
    /// assert_eq!(a.load_u64_racy(8)?, 7);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn pinned<T: AtomicWords>(&self, p: Pinned<T>) -> Option<&T> {
        // No overflow: `pin` checked `off + size` against an arena's length, at most
        // `isize::MAX`.
        if p.base != self.base.as_ptr() as usize || (p.off + size_of::<T>()) as u64 > self.len {
            return None;
        }
        // SAFETY: 1. `p.off + size_of::<T>() <= len` (just checked), so the `T` is in bounds;
        // 2. `pin` checked that `base + off` is aligned for `T` with this same base address, so it
        // still is; 3. the arena lives as long as `&self`; 4. `T` is made only of atomics
        // (`AtomicWords`' contract), so every bit pattern is valid and every access is atomic.
        Some(unsafe { &*self.base.as_ptr().add(p.off).cast::<T>() })
    }

    /// The `AtomicU32` at a 4-aligned offset.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// let counter = a.atomic_u32(4)?;
    /// counter.fetch_add(3, Ordering::Relaxed);
    /// assert_eq!(a.atomic_u32(4)?.load(Ordering::Relaxed), 3);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn atomic_u32(&self, off: u64) -> Result<&AtomicU32> {
        let p = self.ptr(off, 4, 4)?;
        // SAFETY: 1. `p` is in bounds and 4-aligned; 2. the arena lives as long as `&self`;
        // 3. these bytes are only ever accessed atomically (the layout reserves them for that).
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    /// The `AtomicU64` at an 8-aligned offset.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// assert_eq!(a.atomic_u64(8)?.compare_exchange(0, 9, Ordering::AcqRel, Ordering::Acquire), Ok(0));
    /// assert_eq!(a.load_u64(8)?, 9);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn atomic_u64(&self, off: u64) -> Result<&AtomicU64> {
        let p = self.ptr(off, 8, 8)?;
        // SAFETY: as for `atomic_u32`, with 8-byte alignment checked.
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) })
    }

    /// Reads the `u64` at an 8-aligned offset with a `Relaxed` atomic load, for an optimistic
    /// reader that holds no lock while a lock holder may be writing the word with plain stores.
    ///
    /// The value may be stale or belong to a half-finished update: the caller must validate it
    /// (the slot's write sequence, read before and after) before using it. Across processes,
    /// the case this serves, what counts is the hardware's memory model, under which an aligned
    /// 8-byte load is single-copy atomic (x86-64, aarch64); within one process it is the usual
    /// seqlock compromise of racing an atomic load with a plain store.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.store_u64(8, 11)?;
    /// // A seqlock reader would read the sequence before and after, and retry on a change.
    /// assert_eq!(a.load_u64_racy(8)?, 11);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn load_u64_racy(&self, off: u64) -> Result<u64> {
        let p = self.ptr(off, 8, 8)?;
        // SAFETY: 1. `p` is in bounds and 8-aligned (checked); 2. the arena lives as long as
        // `&self`; 3. the load is atomic and its result is only used after validation (above).
        Ok(unsafe { AtomicU64::from_ptr(p.cast()) }.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The `n` bytes (1, 2, 4 or 8) at an offset aligned to `n`, read with one `Relaxed` atomic
    /// load of that width and returned in the low bytes of a native-endian `u64`'s byte array,
    /// for an optimistic reader (see [`Arena::load_u64_racy`]; the caller validates the result
    /// before use). `None` for another width, a misaligned offset or one out of bounds: the
    /// caller takes the lock instead.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.copy_in(4, &7u16.to_ne_bytes())?;
    /// let bits = a.load_bits_racy(4, 2).expect("aligned, in bounds");
    /// assert_eq!(u16::from_ne_bytes([bits[0], bits[1]]), 7);
    /// assert_eq!(a.load_bits_racy(5, 2), None); // misaligned
    /// assert_eq!(a.load_bits_racy(0, 3), None); // no 3-byte load
    /// assert_eq!(a.load_bits_racy(16, 1), None); // out of bounds
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn load_bits_racy(&self, off: u64, n: usize) -> Option<[u8; 8]> {
        use std::sync::atomic::{AtomicU16, AtomicU8, Ordering::Relaxed};
        let p = self.ptr(off, n as u64, n.max(1) as u64).ok()?;
        let mut out = [0u8; 8];
        // SAFETY (each arm): `p` is in bounds and aligned to the load's width (checked above,
        // the width being `n`); the arena outlives the call; the load is atomic, and its result
        // is only used after validation.
        match n {
            1 => out[..1]
                .copy_from_slice(&unsafe { AtomicU8::from_ptr(p) }.load(Relaxed).to_ne_bytes()),
            2 => out[..2].copy_from_slice(
                &unsafe { AtomicU16::from_ptr(p.cast()) }
                    .load(Relaxed)
                    .to_ne_bytes(),
            ),
            4 => out[..4].copy_from_slice(
                &unsafe { AtomicU32::from_ptr(p.cast()) }
                    .load(Relaxed)
                    .to_ne_bytes(),
            ),
            8 => out.copy_from_slice(
                &unsafe { AtomicU64::from_ptr(p.cast()) }
                    .load(Relaxed)
                    .to_ne_bytes(),
            ),
            _ => return None,
        }
        Some(out)
    }

    /// A plain-data `T` of 1, 2, 4 or 8 bytes read with [`Arena::load_bits_racy`] (same rules).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.copy_in(8, &1.5f64.to_ne_bytes())?;
    /// assert_eq!(a.load_pod_racy::<f64>(8), Some(1.5));
    /// assert_eq!(a.load_pod_racy::<i32>(8), Some(0)); // the low half of 1.5's bits
    /// assert_eq!(a.load_pod_racy::<[u8; 3]>(0), None); // not 1, 2, 4 or 8 bytes
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn load_pod_racy<T: Pod>(&self, off: u64) -> Option<T> {
        let n = size_of::<T>();
        let bits = self.load_bits_racy(off, n)?;
        let mut x = T::zeroed();
        bytemuck::bytes_of_mut(&mut x).copy_from_slice(bits.get(..n)?);
        Some(x)
    }

    /// `N` consecutive `u64`s from an 8-aligned offset, each read as by
    /// [`Arena::load_u64_racy`] (same rules), with one bounds check for all of them.
    #[inline]
    pub fn load_words_racy<const N: usize>(&self, off: u64) -> Option<[u64; N]> {
        let p = self.ptr(off, 8 * N as u64, 8).ok()?;
        let mut out = [0u64; N];
        for (i, w) in out.iter_mut().enumerate() {
            // SAFETY: 1. `p + 8i` is in bounds and 8-aligned (the whole range was checked, `p`
            // is 8-aligned and `i < N`); 2. the arena outlives the call; 3. the load is atomic and
            // its result is only used after validation.
            *w = unsafe { AtomicU64::from_ptr(p.add(8 * i).cast()) }
                .load(std::sync::atomic::Ordering::Relaxed);
        }
        Some(out)
    }

    /// `n` consecutive `T`s (atomic words only, see [`AtomicWords`]) from `off`, viewed in place
    /// as one slice: the whole range is bounds- and alignment-checked once, here, and the caller
    /// then reaches any element with the slice's own index check (one comparison, which a
    /// caller's range test often makes redundant) instead of the arena's offset arithmetic for
    /// each word. For an optimistic reader's window (a hash table's index and entries): every
    /// access is still an atomic load of a word that may be racing, so whatever it reads is
    /// untrusted and validated before use. An error for a range out of bounds or a misaligned
    /// `off`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(64);
    /// a.store_u64(16, 7)?;
    /// let w = a.words_slice::<[AtomicU64; 2]>(16, 3)?; // bytes 16..64, checked once
    /// assert_eq!((w.len(), w[0][0].load(Relaxed)), (3, 7));
    /// assert!(w.get(3).is_none()); // past the window: the slice's own check
    /// a.atomic_u32(40)?.store(5, Relaxed);
    /// let slots = a.words_slice::<AtomicU32>(0, 16)?;
    /// assert_eq!(slots[10].load(Relaxed), 5); // byte 40
    /// assert!(a.words_slice::<[AtomicU64; 2]>(16, 4).is_err()); // runs past the end
    /// assert!(a.words_slice::<AtomicU32>(2, 1).is_err()); // misaligned
    /// assert!(a.words_slice::<[AtomicU64; 1]>(8, u32::MAX).is_err()); // out of bounds
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn words_slice<T: AtomicWords>(&self, off: u64, n: u32) -> Result<&[T]> {
        // A `u32` count: for any `T` of less than 4 GiB the length cannot overflow, and the
        // compiler drops this test.
        let Some(len) = u64::from(n).checked_mul(size_of::<T>() as u64) else {
            return Err(Error::corrupt("length overflows", u64::from(n)));
        };
        let p = self.ptr(off, len, align_of::<T>() as u64)?;
        // SAFETY: 1. `[p, p + n * size_of::<T>())` is inside the arena and `p` is aligned for
        // `T` (checked above); 2. `T` is atomic integers only (`AtomicWords`), valid for any
        // bit pattern and only ever accessed atomically, so other processes' writes are no
        // data race and no shared reference is violated; 3. the slice's length in bytes is at
        // most the arena's, which fits in `isize`; 4. the arena outlives `&self`.
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<T>(), n as usize) })
    }

    /// Two windows back to back, as [`Arena::words_slice`] gives one: `na` `A`s from `off`, then
    /// `nb` `B`s right after them, with one bounds check for both (a hash table's index and its
    /// entries, which its block lays out so). An error for a range out of bounds, a misaligned
    /// `off`, or a second window that would not be aligned for `B`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(64);
    /// a.atomic_u32(4)?.store(3, Relaxed);
    /// a.store_u64(16, 9)?;
    /// let (slots, words) = a.words_slices::<AtomicU32, [AtomicU64; 2]>(0, 4, 3)?;
    /// assert_eq!((slots.len(), words.len()), (4, 3));
    /// assert_eq!((slots[1].load(Relaxed), words[0][0].load(Relaxed)), (3, 9));
    /// assert!(a.words_slices::<AtomicU32, [AtomicU64; 2]>(0, 4, 4).is_err()); // past the end
    /// assert!(a.words_slices::<AtomicU32, [AtomicU64; 1]>(0, 3, 1).is_err()); // 2nd misaligned
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn words_slices<A: AtomicWords, B: AtomicWords>(
        &self,
        off: u64,
        na: u32,
        nb: u32,
    ) -> Result<(&[A], &[B])> {
        // `u32` counts: for types of less than 4 GiB nothing here can overflow, and the
        // compiler drops these tests.
        let (Some(la), Some(lb)) = (
            u64::from(na).checked_mul(size_of::<A>() as u64),
            u64::from(nb).checked_mul(size_of::<B>() as u64),
        ) else {
            return Err(Error::corrupt("length overflows", off));
        };
        if la & (align_of::<B>() as u64 - 1) != 0 {
            return Err(Error::corrupt("misaligned second window", off));
        }
        let Some(total) = la.checked_add(lb) else {
            return Err(Error::corrupt("length overflows", off));
        };
        let p = self.ptr(off, total, align_of::<A>().max(align_of::<B>()) as u64)?;
        // SAFETY: 1. `[p, p + la + lb)` is inside the arena, `p` is aligned for `A` and `B` and
        // `la` is a multiple of `B`'s alignment (checked above), so `p + la` is aligned for `B`
        // and both windows lie inside the checked range, without overlapping; 2. `A` and `B` are
        // atomic integers only (`AtomicWords`), valid for any bit pattern and only ever
        // accessed atomically; 3. each length in bytes is at most the arena's, which fits in
        // `isize`; 4. the arena outlives `&self`.
        Ok(unsafe {
            (
                std::slice::from_raw_parts(p.cast::<A>(), na as usize),
                std::slice::from_raw_parts(p.add(la as usize).cast::<B>(), nb as usize),
            )
        })
    }

    /// As [`Arena::load_u64_racy`], for a `u32` at a 4-aligned offset.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.atomic_u32(12)?.store(5, std::sync::atomic::Ordering::Release);
    /// assert_eq!(a.load_u32_racy(12)?, 5);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn load_u32_racy(&self, off: u64) -> Result<u32> {
        let p = self.ptr(off, 4, 4)?;
        // SAFETY: as for `load_u64_racy`, with 4-byte alignment checked.
        Ok(unsafe { AtomicU32::from_ptr(p.cast()) }.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// A raw pointer to `size` bytes at `off` with alignment `align` (a power of two; any other
    /// is an error), for the `sync` layer, which places process-shared pthread objects in the
    /// arena.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(64);
    /// let p = a.raw_ptr(16, 8, 8)?;
    /// assert_eq!(p as usize, a.base_addr() + 16);
    /// assert!(a.raw_ptr(60, 8, 8).is_err());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn raw_ptr(&self, off: u64, size: u64, align: u64) -> Result<*mut u8> {
        self.ptr(off, size, align)
    }

    /// Copies `dst.len()` bytes out of the arena. The caller holds the guarding lock.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.copy_in(2, b"abc")?;
    /// let mut out = [0u8; 3];
    /// a.copy_out(2, &mut out)?;
    /// assert_eq!(&out, b"abc");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn copy_out(&self, off: u64, dst: &mut [u8]) -> Result<()> {
        let p = self.ptr(off, dst.len() as u64, 1)?;
        // SAFETY: 1. the source range is in bounds (checked); 2. `dst` is private memory, so the
        // ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    /// Copies `src` into the arena. The caller holds the guarding lock.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.copy_in(0, &7u64.to_le_bytes())?;
    /// assert_eq!(a.load_u64(0)?, 7);
    /// assert!(a.copy_in(14, b"xyz").is_err());
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn copy_in(&self, off: u64, src: &[u8]) -> Result<()> {
        let p = self.ptr(off, src.len() as u64, 1)?;
        // SAFETY: 1. the destination range is in bounds (checked); 2. `src` is private memory.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
        Ok(())
    }

    /// Moves `len` bytes from `src` to `dst` inside the arena (the ranges may overlap).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.copy_in(0, b"hello")?;
    /// a.copy_within(0, 2, 5)?; // overlapping ranges are fine
    /// let mut out = [0u8; 7];
    /// a.copy_out(0, &mut out)?;
    /// assert_eq!(&out, b"hehello");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn copy_within(&self, src: u64, dst: u64, len: u64) -> Result<()> {
        let s = self.ptr(src, len, 1)?;
        let d = self.ptr(dst, len, 1)?;
        // SAFETY: both ranges are in bounds (checked); `copy` allows overlap.
        unsafe { std::ptr::copy(s, d, len as usize) };
        Ok(())
    }

    /// Sets `len` bytes at `off` to `byte`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(16);
    /// a.fill(0, 8, 0xff)?;
    /// assert_eq!(a.load_u64(0)?, u64::MAX);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn fill(&self, off: u64, len: u64, byte: u8) -> Result<()> {
        let p = self.ptr(off, len, 1)?;
        // SAFETY: the range is in bounds (checked).
        unsafe { std::ptr::write_bytes(p, byte, len as usize) };
        Ok(())
    }

    /// A shared slice of `n` plain values at `off`, valid while the caller holds the lock that
    /// guards them (the borrow of `self` bounds its life; the lock guard must bound it further).
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(32);
    /// a.copy_in(0, bytemuck::cast_slice(&[1u32, 2, 3]))?;
    /// assert_eq!(a.slice::<u32>(0, 3)?, [1, 2, 3]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn slice<T: Pod>(&self, off: u64, n: u64) -> Result<&[T]> {
        let size = n
            .checked_mul(size_of::<T>() as u64)
            .ok_or_else(|| Error::corrupt("length overflows", off))?;
        let p = self.ptr(off, size, align_of::<T>() as u64)?;
        // SAFETY: 1. in bounds and aligned for `T` (checked); 2. any bit pattern is a valid `T`;
        // 3. the caller holds the lock that excludes writers for as long as it uses the slice.
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<T>(), n as usize) })
    }

    /// A mutable slice of `n` plain values at `off`, for the holder of the guarding lock.
    ///
    /// # Examples
    /// ```
    /// use shmstore::arena::Arena;
    /// let a = Arena::heap(32);
    /// a.slice_mut::<u16>(0, 4)?.copy_from_slice(&[9, 8, 7, 6]);
    /// assert_eq!(a.slice::<u16>(0, 4)?, [9, 8, 7, 6]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn slice_mut<T: Pod>(&self, off: u64, n: u64) -> Result<&mut [T]> {
        let size = n
            .checked_mul(size_of::<T>() as u64)
            .ok_or_else(|| Error::corrupt("length overflows", off))?;
        let p = self.ptr(off, size, align_of::<T>() as u64)?;
        // SAFETY: 1. in bounds and aligned (checked); 2. any bit pattern is valid; 3. the caller
        // holds the object's lock, which excludes every other reader and writer of these bytes,
        // and does not create a second slice over them while this one lives.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<T>(), n as usize) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_access_refuses_out_of_bounds_and_misaligned() {
        let a = Arena::heap(64);
        assert!(a.store_u64(56, 7).is_ok());
        assert_eq!(a.load_u64(56), Ok(7));
        assert!(matches!(a.load_u64(60), Err(Error::Corrupt { .. })));
        assert!(matches!(a.load_u64(64), Err(Error::Corrupt { .. })));
        assert!(matches!(
            a.load_u64(u64::MAX - 3),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(a.atomic_u32(2), Err(Error::Corrupt { .. })));
        assert!(a.slice::<u64>(0, u64::MAX / 4).is_err());
        // Every edge of `off + size <= len`: the last fit, one past it, a size beyond the arena.
        assert!(a.load_words_racy::<8>(0).is_some());
        assert!(a.load_words_racy::<8>(8).is_none());
        assert!(a.load_words_racy::<9>(0).is_none());
        assert!(a.load_words_racy::<2>(48).is_some());
        assert!(a.load_words_racy::<2>(56).is_none());
        assert!(a.load_words_racy::<1>(u64::MAX - 7).is_none());
        assert!(a.slice::<u8>(64, 0).is_ok()); // an empty range at the end
        assert!(a.slice::<u8>(65, 0).is_err());
        // Alignment by mask: every power of two up to the arena's, and nothing else.
        for shift in 0..7u32 {
            let align = 1u64 << shift;
            assert!(a.check(0, 1, align).is_ok(), "align {align}");
            assert_eq!(
                a.check(align, 1, align).is_ok(),
                align < 64,
                "align {align}"
            );
            if align > 1 {
                assert!(a.check(align / 2, 1, align).is_err(), "align {align}");
                assert!(a.check(align + 1, 1, align).is_err(), "align {align}");
            }
        }
        for align in [0, 3, 6, 12, u64::MAX] {
            let e = a.check(0, 1, align).unwrap_err();
            assert!(
                e.to_string().contains("alignment not a power of two"),
                "align {align}: {e}"
            );
        }
    }

    #[test]
    fn copies_round_trip() {
        let a = Arena::heap(64);
        a.copy_in(3, b"hello").unwrap();
        let mut out = [0u8; 5];
        a.copy_out(3, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        a.copy_within(3, 10, 5).unwrap();
        a.copy_out(10, &mut out).unwrap();
        assert_eq!(&out, b"hello");
        assert!(a.copy_in(62, b"abc").is_err());
    }
}
