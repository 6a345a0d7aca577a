//! Read-only views of a store for tools such as `shmstore stat`: the header, the allocator by
//! size class, and the object table slot by slot.
//!
//! Nothing here changes the arena. Each view is a snapshot taken under the arena lock (which
//! every change to the allocator and to which slots are live happens under), so it is consistent
//! in itself; refcounts and lock holders are atomics read on the way and may have moved by the
//! time the caller looks. No object lock is taken, so a store whose objects are busy (or whose
//! holders died) can still be inspected.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use crate::alloc::{AllocStats, Heap};
use crate::error::Result;
use crate::header::Header;
use crate::store::Store;
use crate::sync::LockHolder;
use crate::table::ObjLock;
use crate::table::STATE_LIVE;

/// One live object of the object table, from [`Store::objects`].
///
/// # Examples
/// ```
/// # let name = format!("doc-objectinfo-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// let d = store.dict([("a", 1)])?;
/// let info = &store.objects()?[0];
/// assert_eq!(info.type_id, shmstore::type_ids::DICT);
/// assert_eq!(info.generation, d.token().generation);
/// assert!(info.body_size.is_some());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Object-table slot.
    pub slot: u32,
    /// The slot's generation (part of the object's token).
    pub generation: u32,
    /// Type id (see [`crate::type_ids`]).
    pub type_id: u16,
    /// CPython's typeid for the type (`"list"`, `"dict"`, …; `"user"` for a user-registered
    /// type this process has not met in the store).
    pub typeid: &'static str,
    /// References held, by proxies in every process and by bound names.
    pub refcount: u32,
    /// Offset of the object's body.
    pub body: u64,
    /// Usable bytes of the body's block — the body alone, not the blocks it points to (a list's
    /// item array, a string's bytes). `None` when the body offset is not an allocated block,
    /// which [`Store::check`] reports as damage.
    pub body_size: Option<u64>,
    /// Who holds the object's lock now.
    pub lock: LockHolder,
}

/// Allocator blocks of one size class, from [`Store::size_classes`].
///
/// # Examples
/// ```
/// # let name = format!("doc-sizeclass-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// for c in store.size_classes()? {
///     assert!(c.max_block.is_power_of_two());
///     assert!(c.blocks_in_use > 0 || c.free_blocks > 0);
/// }
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SizeClass {
    /// Largest block size in the class (headers included): classes are powers of two, a class
    /// `n` holding blocks of `n / 2 + 1 ..= n` bytes (the smallest block is 32 bytes).
    pub max_block: u64,
    /// Blocks in use.
    pub blocks_in_use: u64,
    /// Their bytes, headers included.
    pub bytes_in_use: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Their bytes, headers included.
    pub bytes_free: u64,
}

/// Bytes of an allocator block header (a payload's usable size plus this is its block size).
const BLOCK_HEADER: u64 = 16;

impl Store {
    /// The segment header as read when the store was opened: size, format word, store id,
    /// creator, creation time and where each table lies.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-header-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let h = store.header();
    /// assert_eq!(h.size, 1 << 20);
    /// assert_eq!(h.store_id, store.id());
    /// assert_eq!(h.creator_pid, std::process::id());
    /// assert_eq!(&h.magic.to_le_bytes(), b"SHMSTORE");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn header(&self) -> Header {
        *self.core().header()
    }

    /// The allocator's exact figures, including the free-block count and the largest free
    /// block that [`Store::stats`] leaves out.
    ///
    /// # Errors
    /// `Corrupt` if the allocator's header or a free list fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-allocstats-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let _l = store.list(0..10)?;
    /// let a = store.alloc_stats()?;
    /// assert!(a.blocks_in_use >= 1);
    /// assert!(a.largest_free <= a.bytes_free);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn alloc_stats(&self) -> Result<AllocStats> {
        self.core().alloc_stats()
    }

    /// Allocator use by size class (powers of two of the block size), smallest first; only
    /// classes with a block appear. Walks every block under the arena lock: a tool's call, not
    /// a hot path.
    ///
    /// # Errors
    /// `Corrupt` if the block chain does not walk from the start of the heap to its end.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-sizeclasses-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let _s = store.value("x".repeat(100))?; // a string too long for a cell: a block of its own
    /// let classes = store.size_classes()?;
    /// assert!(classes.windows(2).all(|w| w[0].max_block < w[1].max_block));
    /// let used: u64 = classes.iter().map(|c| c.bytes_in_use).sum();
    /// assert_eq!(used, store.stats()?.bytes_in_use);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn size_classes(&self) -> Result<Vec<SizeClass>> {
        let blocks = self.core().with_heap(|h| h.blocks())?;
        let mut classes: BTreeMap<u64, SizeClass> = BTreeMap::new();
        for (_, usable, in_use) in blocks {
            let size = usable.saturating_add(BLOCK_HEADER);
            let max_block = size.checked_next_power_of_two().unwrap_or(u64::MAX);
            let c = classes.entry(max_block).or_insert(SizeClass {
                max_block,
                ..SizeClass::default()
            });
            if in_use {
                c.blocks_in_use += 1;
                c.bytes_in_use += size;
            } else {
                c.free_blocks += 1;
                c.bytes_free += size;
            }
        }
        Ok(classes.into_values().collect())
    }

    /// Every live object in the object table, in slot order, with its refcount, body size and
    /// lock holder. Takes no object lock, so it works on a store whose objects are busy.
    ///
    /// # Errors
    /// `Corrupt` if the block chain or a table offset fails a check.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-objects-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::LockHolder;
    /// let l = store.list([1, 2])?;
    /// let objs = store.objects()?;
    /// assert_eq!(objs.len(), 1);
    /// assert_eq!((objs[0].slot, objs[0].typeid, objs[0].refcount), (l.token().slot, "list", 1));
    /// assert_eq!(objs[0].lock, LockHolder::Free);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn objects(&self) -> Result<Vec<ObjectInfo>> {
        let core = self.core();
        let _g = core.lock_arena()?;
        let sizes: HashMap<u64, u64> = Heap::open(core.arena(), core.header().alloc_off)?
            .blocks()?
            .into_iter()
            .filter(|b| b.2)
            .map(|b| (b.0, b.1))
            .collect();
        let table = core.table();
        let mut out = Vec::new();
        for slot in 0..table.used_slots()? {
            let (type_id, state) = table.type_and_state(slot)?;
            if state != STATE_LIVE {
                continue;
            }
            let body = table.body(slot)?.load(Ordering::Acquire);
            let word = core
                .arena()
                .atomic_u32(table.lock_off(slot)?)?
                .load(Ordering::Relaxed);
            out.push(ObjectInfo {
                slot,
                generation: table.generation(slot)?.load(Ordering::Acquire),
                type_id,
                typeid: crate::token::names_in(core.store_id(), type_id).0,
                refcount: table.refcount(slot)?.load(Ordering::Acquire),
                body,
                body_size: sizes.get(&body).copied(),
                lock: ObjLock::holder(word),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_size_classes_describe_what_was_made() {
        let name = format!("inspect-{}", std::process::id());
        let store = Store::create(&name, 1 << 20).unwrap();
        let l = store.list(0..100).unwrap();
        let objs = store.objects().unwrap();
        assert_eq!(objs.len(), 1);
        let o = &objs[0];
        assert_eq!((o.slot, o.typeid, o.refcount), (l.token().slot, "list", 1));
        assert!(o.body_size.is_some_and(|s| s > 0));
        assert_eq!(o.lock, LockHolder::Free);
        let held = l
            .with_lock(|_| Ok(store.objects().unwrap()[0].lock))
            .unwrap();
        assert_eq!(held, LockHolder::Thread(crate::process::current_tid()));

        let classes = store.size_classes().unwrap();
        let a = store.alloc_stats().unwrap();
        let sum = |f: fn(&SizeClass) -> u64| classes.iter().map(f).sum::<u64>();
        assert_eq!(sum(|c| c.bytes_in_use), a.bytes_in_use);
        assert_eq!(sum(|c| c.blocks_in_use), a.blocks_in_use);
        assert_eq!(sum(|c| c.bytes_free), a.bytes_free);
        assert_eq!(sum(|c| c.free_blocks), a.free_blocks);
        assert!(classes.windows(2).all(|w| w[0].max_block < w[1].max_block));
        assert_eq!(store.header().size, 1 << 20);
        drop(l);
        assert!(store.objects().unwrap().is_empty());
    }
}
