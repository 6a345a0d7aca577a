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
    let meta = hdr.table_off
        + u64::from(slot) * shmstore::table::SLOT_SIZE
        + shmstore::table::LOCK_BYTES.div_ceil(8) as u64 * 8;
    let body = raw.load_u64(meta + 16).unwrap();
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
