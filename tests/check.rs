//! `Store::check` walks everything and reports damage without changing anything; a sound store
//! passes.

mod common;

use common::{unique, Cleanup};
use shmstore::{Store, Value};

#[test]
fn a_sound_store_passes_and_scribbled_bodies_are_reported() {
    let name = unique("check");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let l = store
        .list(vec![
            Value::from("a long string needing a block"),
            Value::from(1),
        ])
        .unwrap();
    let d = store.dict([("k", 1), ("j", 2)]).unwrap();
    store.bind("l", &l).unwrap();
    let r = store.check().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.objects, 2);

    // Scribble over the list's body: its length beyond its capacity.
    let tool = Store::open_unattached(&name).unwrap();
    let attached = store.stats().unwrap().processes_attached;
    let raw = shmstore::segment::open(&name).unwrap();
    let slot = l.token().slot;
    let hdr: shmstore::header::Header = raw.read(shmstore::arena::Offset::new(0)).unwrap();
    let slot_off = hdr.table_off + u64::from(slot) * shmstore::table::SLOT_SIZE;
    let body = raw.load_u64(slot_off + shmstore::table::BODY_AT).unwrap();
    raw.store_u64(body, 1 << 40).unwrap();
    let r = tool.check().unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains(&format!("slot {slot}"))),
        "{:?}",
        r.problems
    );
    assert!(matches!(l.len(), Err(shmstore::Error::Corrupt { .. })));
    // The tool did not join the store.
    assert_eq!(store.stats().unwrap().processes_attached, attached);
    assert_eq!(d.len().unwrap(), 2, "other objects are unaffected");
    // Put it back; the store is sound again.
    raw.store_u64(body, 2).unwrap();
    assert!(tool.check().unwrap().is_ok());
}

#[test]
fn repair_frees_leaked_blocks_and_relinks_lost_slots_keeping_everything_live() {
    let name = unique("repair");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let l = store
        .list(vec![
            Value::from("a long string needing a block"),
            Value::from(vec![1, 2]),
        ])
        .unwrap();
    let d = store
        .dict([("key", "a value long enough to own a block")])
        .unwrap();
    let q = store.queue(0).unwrap();
    q.put(Value::from("queued and long enough for a block"))
        .unwrap();
    let base = store.stats().unwrap();

    // Leak two blocks the way a killed process would: allocated, reachable from nothing.
    let raw = shmstore::segment::open(&name).unwrap();
    let heap = shmstore::alloc::Heap::open(&raw, shmstore::header::ALLOC_OFF).unwrap();
    heap.alloc(100).unwrap();
    heap.alloc(3000).unwrap();
    // Lose a free slot: free an object, then cut the free-slot list.
    let gone = store.list([1]).unwrap();
    drop(gone);
    raw.atomic_u32(shmstore::header::SLOT_FREE_OFF)
        .unwrap()
        .store(0, std::sync::atomic::Ordering::Relaxed);
    assert!(!store.check().unwrap().is_ok(), "the lost slot is reported");
    assert!(store.stats().unwrap().bytes_in_use > base.bytes_in_use);

    let r = store.repair().unwrap();
    assert_eq!(r.freed_blocks, 2);
    assert_eq!(r.slots_relinked, 1);
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // Everything live is intact.
    assert_eq!(l.to_string(), "['a long string needing a block', [1, 2]]");
    assert_eq!(
        d.get("key").unwrap(),
        Some(Value::from("a value long enough to own a block"))
    );
    assert_eq!(
        q.get().unwrap(),
        Value::from("queued and long enough for a block")
    );
    // The relinked slot is used again.
    let again = store.list([2]).unwrap();
    assert_eq!(again.len().unwrap(), 1);
    assert_eq!(store.repair().unwrap(), shmstore::RepairReport::default());
}
