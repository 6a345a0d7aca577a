//! Proxies stored inside containers: they keep their referents alive, read back as
//! `Value::Proxy(token)`, attach to live proxies, and release their reference when removed or
//! when the container is freed.

mod common;

use common::{unique, Cleanup};
use shmstore::{ListProxy, Store, Value};

#[test]
fn a_proxy_in_a_list_keeps_its_referent_alive_and_is_released_with_it() {
    let name = unique("nested");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let base = store.stats().unwrap();

    let inner = store.list(["x", "y"]).unwrap();
    let outer = store
        .list(vec![Value::from(&inner), Value::from(1)])
        .unwrap();
    let token = inner.token();
    drop(inner);
    // The outer list's reference keeps the inner one alive.
    assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 2);
    let got = outer.get(0).unwrap();
    assert_eq!(got, Value::Proxy(token));
    let again: ListProxy = store.attach(&token).unwrap().try_into().unwrap();
    assert_eq!(again.to_string(), "['x', 'y']");
    assert!(outer
        .to_string()
        .starts_with("[<ListProxy object, typeid 'list' at 0x"));
    // get_value returns the handle, not a copy of the inner list.
    assert_eq!(
        outer.get_value().unwrap(),
        Value::List(vec![Value::Proxy(token), Value::Int(1)])
    );
    drop(again);

    // Removing the item drops the reference: the inner list is freed.
    outer.pop(0).unwrap();
    assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 1);
    assert!(store.attach(&token).is_err());

    // Nested inside a tuple inside a list; freed with the container.
    let a = store.list([1]).unwrap();
    let b = store.list([2]).unwrap();
    outer
        .append(Value::Tuple(vec![Value::from(&a), Value::from(&b)]))
        .unwrap();
    drop((a, b));
    assert_eq!(store.stats().unwrap().objects_live, base.objects_live + 3);
    drop(outer);
    let end = store.stats().unwrap();
    assert_eq!(end.objects_live, base.objects_live);
    assert_eq!(end.bytes_in_use, base.bytes_in_use);
}

#[test]
fn a_chain_of_nested_lists_is_freed_without_recursion_limits() {
    let name = unique("chain");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 8 << 20).unwrap();
    let base = store.stats().unwrap();
    let mut head = store.list(Vec::<Value>::new()).unwrap();
    for _ in 0..2000 {
        head = store.list(vec![Value::from(&head)]).unwrap();
    }
    assert_eq!(
        store.stats().unwrap().objects_live,
        base.objects_live + 2001
    );
    drop(head);
    assert_eq!(store.stats().unwrap().objects_live, base.objects_live);
    assert_eq!(store.stats().unwrap().bytes_in_use, base.bytes_in_use);
}

#[test]
fn proxies_of_dead_objects_or_other_stores_are_refused() {
    let name = unique("nestbad");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let other_name = unique("nestbad2");
    let _c2 = Cleanup(other_name.clone());
    let other = Store::create(&other_name, 1 << 20).unwrap();
    let foreign = other.list([1]).unwrap();
    let l = store.list([0]).unwrap();
    assert!(matches!(
        l.append(&foreign),
        Err(shmstore::Error::NotFound(_))
    ));
    let gone = store.list([1]).unwrap();
    let t = gone.token();
    drop(gone);
    assert!(matches!(
        l.append(Value::Proxy(t)),
        Err(shmstore::Error::StaleHandle { .. })
    ));
    assert_eq!(l.len().unwrap(), 1);
}
