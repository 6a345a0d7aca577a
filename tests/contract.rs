//! The core store's contract (issue: "The core store"), line by line.

mod common;

use common::{unique, Cleanup};
use shmstore::header::format_word_for;
use shmstore::{Error, ListProxy, Proxy, Slice, Store, Token, Value};

#[test]
fn seed_transcript() {
    let name = unique("seed");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 64 << 20).unwrap();
    let l = store.list(0..10).unwrap();
    assert_eq!(l.call_method("__len__", ()).unwrap(), Value::Int(10));
    assert_eq!(
        l.call_method("__getitem__", (Slice::new(2, 7),)).unwrap(),
        Value::from(vec![2, 3, 4, 5, 6])
    );
    match l.call_method("__getitem__", (20,)) {
        Err(Error::IndexError(msg)) => assert_eq!(msg, "list index out of range"),
        other => panic!("{other:?}"),
    }
    let copy = l.get_value().unwrap();
    assert_eq!(copy, Value::List((0..10).map(Value::Int).collect()));
    assert_eq!(format!("{l}"), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
    let repr = format!("{l:?}");
    assert!(
        repr.starts_with("<ListProxy object, typeid 'list' at 0x") && repr.ends_with('>'),
        "{repr}"
    );
}

#[test]
fn create_is_exclusive_and_open_of_a_missing_store_is_not_found() {
    let name = unique("excl");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    assert!(matches!(Store::create(&name, 1 << 20), Err(Error::AlreadyExists(n)) if n == name));
    assert!(matches!(
        Store::open(&unique("absent")),
        Err(Error::NotFound(_))
    ));
    drop(store);
}

#[test]
fn bind_lookup_attach_and_typed_conversion() {
    let name = unique("bind");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let other = Store::open(&name).unwrap();
    let l = store.list(["a", "b"]).unwrap();
    store.bind("jobs", &l).unwrap();
    assert!(matches!(
        store.bind("jobs", &l),
        Err(Error::AlreadyExists(_))
    ));
    let p: Proxy = other.lookup("jobs").unwrap();
    assert_eq!(p.typeid(), "list");
    assert_eq!(p.call_method("__len__", ()).unwrap(), Value::Int(2));
    let typed: ListProxy = p.clone().try_into().unwrap();
    typed.append("c").unwrap();
    assert_eq!(l.len().unwrap(), 3);

    let t = l.token();
    let text = t.to_string();
    let parsed: Token = text.parse().unwrap();
    assert_eq!(parsed, t);
    let q = other.attach(&parsed).unwrap();
    assert_eq!(q.to_string(), "['a', 'b', 'c']");
    assert!(matches!(other.lookup("nope"), Err(Error::NotFound(_))));
    assert_eq!(store.names().unwrap(), vec!["jobs".to_string()]);

    // A token of another store is refused.
    let name2 = unique("bind2");
    let _c2 = Cleanup(name2.clone());
    let store2 = Store::create(&name2, 1 << 20).unwrap();
    assert!(matches!(store2.attach(&t), Err(Error::NotFound(_))));
    assert!(matches!(
        "garbage".parse::<Token>(),
        Err(Error::ValueError(_))
    ));
}

#[test]
fn the_referent_is_freed_when_the_last_proxy_and_binding_are_gone() {
    let name = unique("free");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let before = store.stats().unwrap();
    let long = "a string long enough to need its own block";
    let l = store
        .list(vec![Value::from(long), Value::from(vec![1, 2, 3])])
        .unwrap();
    let l2 = l.clone();
    store.bind("x", &l).unwrap();
    let during = store.stats().unwrap();
    assert_eq!(during.objects_live, before.objects_live + 1);
    assert!(during.bytes_in_use > before.bytes_in_use);
    let t = l.token();
    drop(l);
    drop(l2);
    assert_eq!(
        store.stats().unwrap().objects_live,
        1,
        "the binding keeps it"
    );
    store.unbind("x").unwrap();
    let after = store.stats().unwrap();
    assert_eq!(after.objects_live, before.objects_live);
    assert_eq!(after.bytes_in_use, before.bytes_in_use);
    assert_eq!(after.blocks_in_use, before.blocks_in_use);
    // A stale handle: the slot is free (and may be reused); attach refuses it.
    assert!(matches!(store.attach(&t), Err(Error::StaleHandle { .. })));
    let reuse = store.list([1]).unwrap();
    assert_eq!(reuse.token().slot, t.slot, "the slot is reused");
    assert!(matches!(store.attach(&t), Err(Error::StaleHandle { .. })));
}

#[test]
fn out_of_memory_is_an_error_after_which_the_store_works() {
    let name = unique("oom");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 256 << 10).unwrap();
    let l = store.list(Vec::<Value>::new()).unwrap();
    let big = Value::bytes(vec![7u8; 4096]);
    let mut n = 0;
    let err = loop {
        match l.append(big.clone()) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 1000, "a 256 KiB arena cannot hold 1000 blocks of 4 KiB");
    };
    match err {
        Error::OutOfMemory {
            requested,
            available,
        } => {
            assert!(
                requested >= 4096 || available < 4096 * 2,
                "{requested} {available}"
            )
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    assert_eq!(
        l.len().unwrap(),
        n,
        "a failed append leaves the list unchanged"
    );
    // Free some and go on.
    for _ in 0..10 {
        l.pop(-1).unwrap();
    }
    l.append(big.clone()).unwrap();
    assert_eq!(l.len().unwrap(), n - 9);
    assert_eq!(l.get(-1).unwrap(), big);
    let small = store.list([1, 2, 3]).unwrap();
    assert_eq!(small.len().unwrap(), 3);
}

#[test]
fn corrupt_foreign_and_truncated_segments_are_refused() {
    // A foreign segment: right size, wrong magic.
    let name = unique("foreign");
    let _c = Cleanup(name.clone());
    let arena = shmstore::segment::create(&name, 1 << 20, 0o600).unwrap();
    arena.store_u64(0, 0x1234_5678).unwrap();
    arena
        .atomic_u32(shmstore::header::STATE_OFF)
        .unwrap()
        .store(1, std::sync::atomic::Ordering::Release);
    assert!(matches!(Store::open(&name), Err(Error::Corrupt { .. })));
    drop(arena);

    // A truncated segment (smaller than a header).
    let name = unique("trunc");
    let _c2 = Cleanup(name.clone());
    let small = shmstore::segment::create(&name, 4096, 0o600).unwrap();
    assert!(matches!(Store::open(&name), Err(Error::Corrupt { .. })));
    drop(small);

    // Another format: a real store whose format word is changed.
    let name = unique("format");
    let _c3 = Cleanup(name.clone());
    let store = Store::builder().keep(true).create(&name, 1 << 20).unwrap();
    drop(store);
    let raw = shmstore::segment::open(&name).unwrap();
    let fmt = raw.load_u64(8).unwrap();
    raw.store_u64(8, fmt ^ (1 << 48)).unwrap();
    assert!(matches!(
        Store::open(&name),
        Err(Error::Incompatible { .. })
    ));
    // A build whose object lock has another byte format, of the same size: refused too.
    use shmstore::sync::{FutexLock, PthreadMutex, RawLock};
    use shmstore::table::{LOCK_BYTES, SLOT_SIZE};
    let (slot, cell) = (SLOT_SIZE as usize, shmstore::cell::CELL_SIZE);
    assert_eq!(
        fmt,
        format_word_for(LOCK_BYTES, FutexLock::FORMAT, slot, cell)
    );
    let other = format_word_for(LOCK_BYTES, PthreadMutex::FORMAT, slot, cell);
    raw.store_u64(8, other).unwrap();
    assert!(matches!(
        Store::open(&name),
        Err(Error::Incompatible { found, .. }) if found == other
    ));
    // And a header whose table offsets point outside the segment.
    raw.store_u64(8, fmt).unwrap();
    raw.store_u64(96, u64::MAX - 7).unwrap(); // table_off
    assert!(matches!(Store::open(&name), Err(Error::Corrupt { .. })));
}

#[test]
fn segment_is_mode_0600_and_gone_after_the_last_detach() {
    use std::os::unix::fs::PermissionsExt;
    let name = unique("mode");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let path = format!("/dev/shm/{name}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let other = Store::open(&name).unwrap();
    assert_eq!(store.stats().unwrap().processes_attached, 2);
    let l = other.list([1]).unwrap();
    drop(other);
    // The proxy keeps `other`'s attachment alive.
    assert_eq!(store.stats().unwrap().processes_attached, 2);
    drop(l);
    assert_eq!(store.stats().unwrap().processes_attached, 1);
    drop(store);
    assert!(!std::path::Path::new(&path).exists());
    assert!(matches!(Store::open(&name), Err(Error::NotFound(_))));

    let kept = unique("keep");
    let _c2 = Cleanup(kept.clone());
    drop(
        Store::builder()
            .keep(true)
            .mode(0o640)
            .create(&kept, 1 << 20)
            .unwrap(),
    );
    let again = Store::open(&kept).unwrap();
    let mode = std::fs::metadata(format!("/dev/shm/{kept}"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    drop(again);
    Store::remove(&kept).unwrap();
}

#[test]
fn invalid_names_are_refused() {
    for bad in ["", "a/b", &"x".repeat(31)] {
        assert!(
            matches!(Store::create(bad, 1 << 20), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(Store::open(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    let name = unique("small");
    assert!(matches!(
        Store::create(&name, 1000),
        Err(Error::ValueError(_))
    ));
}

#[test]
fn store_and_proxies_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    check::<ListProxy>();
    check::<Proxy>();
    check::<Error>();
}

#[test]
fn errors_display_python_messages() {
    assert_eq!(
        Error::IndexError("list index out of range".into()).to_string(),
        "list index out of range"
    );
    assert_eq!(Error::KeyError(Value::from("k")).to_string(), "'k'");
    let e: Box<dyn std::error::Error> = Box::new(Error::Empty);
    assert!(!e.to_string().is_empty());
}

#[test]
fn unknown_methods_and_bad_arguments_are_typed_errors() {
    let name = unique("attr");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let l = store.list([1, 2]).unwrap();
    assert_eq!(
        l.call_method("nope", ()),
        Err(Error::AttributeError(
            "'list' object has no attribute 'nope'".into()
        ))
    );
    assert!(matches!(
        l.call_method("append", ()),
        Err(Error::TypeError(_))
    ));
    assert!(matches!(
        l.call_method_kw("pop", (), &[("bogus", Value::Int(1))]),
        Err(Error::TypeError(_))
    ));
    // Resolved once, called by id.
    let id = l.method_id("__len__").unwrap();
    assert_eq!(l.call_id(id, &[], &[]).unwrap(), Value::Int(2));
    let p: Proxy = store.attach(&l.token()).unwrap();
    assert_eq!(p.call_method("__len__", ()).unwrap(), Value::Int(2));
}
