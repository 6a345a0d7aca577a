//! `get_as::<T>()` (list items and values read as `i64`, `f64` or `bool` with no `Value` in
//! between) answers exactly what `T::try_from(get())` answers, for every kind of stored value.
//! (That it is never torn by a writer in another process is tested in `tests/seqlock.rs`.)

use proptest::prelude::*;
use shmstore::{Error, Scalar, Store, Value};

fn store(tag: &str) -> Store {
    let name = format!("scalar-get-{tag}-{}", std::process::id());
    Store::create(&name, 4 << 20).expect("create")
}

/// Every kind a list item can hold: scalars (the lock-free path) and values that are not
/// (a string in a block, containers, a bad conversion).
fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        "[a-z]{0,30}".prop_map(Value::from),
        proptest::collection::vec(any::<i64>(), 0..3).prop_map(Value::from),
    ]
}

/// Equal answers, comparing floats by bits (NaN == NaN) and errors by kind.
fn same<T: Scalar + std::fmt::Debug + Copy>(
    a: &Result<T, Error>,
    b: &Result<T, Error>,
    bits: impl Fn(T) -> u64,
) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => bits(*x) == bits(*y),
        (Err(x), Err(y)) => std::mem::discriminant(x) == std::mem::discriminant(y),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn list_and_value_get_as_agree_with_try_from(items in proptest::collection::vec(any_value(), 1..12)) {
        let s = store("agree");
        let l = s.list(items.clone()).expect("list");
        let n = items.len() as i64;
        for i in -n - 1..=n {
            let via = |_: ()| l.get(i);
            let int_ref = via(()).and_then(i64::try_from);
            let float_ref = via(()).and_then(f64::try_from);
            let bool_ref = via(()).and_then(bool::try_from);
            prop_assert!(same(&l.get_as::<i64>(i), &int_ref, |x| x as u64), "i64 at {}", i);
            prop_assert!(same(&l.get_as::<f64>(i), &float_ref, f64::to_bits), "f64 at {}", i);
            prop_assert!(same(&l.get_as::<bool>(i), &bool_ref, u64::from), "bool at {}", i);
        }
        for item in items {
            let v = s.value(item.clone()).expect("value");
            let int_ref = i64::try_from(item.clone());
            let float_ref = f64::try_from(item.clone());
            let bool_ref = bool::try_from(item);
            prop_assert!(same(&v.get_as::<i64>(), &int_ref, |x| x as u64));
            prop_assert!(same(&v.get_as::<f64>(), &float_ref, f64::to_bits));
            prop_assert!(same(&v.get_as::<bool>(), &bool_ref, u64::from));
        }
    }
}

/// Equal optional answers (a missing key on both sides, or [`same`]).
fn same_opt<T: Scalar + std::fmt::Debug + Copy>(
    a: &Result<Option<T>, Error>,
    b: &Result<Option<T>, Error>,
    bits: impl Fn(T) -> u64 + Copy,
) -> bool {
    match (a, b) {
        (Ok(None), Ok(None)) => true,
        (Ok(Some(x)), Ok(Some(y))) => bits(*x) == bits(*y),
        (Err(x), Err(y)) => std::mem::discriminant(x) == std::mem::discriminant(y),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `DictProxy::get_as` answers what `get` then `T::try_from` answers, for keys present
    /// (int and short str, every kind of value) and missing.
    #[test]
    fn dict_get_as_agrees_with_get(items in proptest::collection::vec(any_value(), 1..12)) {
        let s = store("dict");
        let d = s
            .dict(items.iter().enumerate().flat_map(|(i, v)| {
                [(Value::Int(i as i64), v.clone()), (Value::from(format!("k{i}")), v.clone())]
            }))
            .expect("dict");
        let n = items.len() as i64;
        for i in 0..=n {
            let skey = format!("k{i}");
            for key in [Value::Int(i), Value::from(skey.as_str())] {
                let got = d.get(key.clone());
                let int_ref = got.clone().and_then(|v| v.map(i64::try_from).transpose());
                let float_ref = got.clone().and_then(|v| v.map(f64::try_from).transpose());
                let bool_ref = got.and_then(|v| v.map(bool::try_from).transpose());
                prop_assert!(same_opt(&d.get_as::<i64>(&key), &int_ref, |x| x as u64), "i64 {:?}", key);
                prop_assert!(same_opt(&d.get_as::<f64>(&key), &float_ref, f64::to_bits), "f64 {:?}", key);
                prop_assert!(same_opt(&d.get_as::<bool>(&key), &bool_ref, u64::from), "bool {:?}", key);
            }
            prop_assert!(same_opt(&d.get_as::<i64>(skey.as_str()), &d.get(skey.as_str()).and_then(|v| v.map(i64::try_from).transpose()), |x| x as u64));
        }
    }
}
