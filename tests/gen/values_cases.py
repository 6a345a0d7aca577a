"""Generates tests/values_python.rs: Value, Array and Namespace methods against CPython.

Run: python3 tests/gen/values_cases.py > tests/values_python.rs && cargo fmt
Each case starts from a fresh referent, calls one method, and records repr(result) and the
referent's state afterwards (its repr; for a namespace also repr(vars(ns))), or the exception's
type and message. The referents are CPython's own: `multiprocessing.managers.Value` and
`Namespace`, and `array.array` (what `SyncManager.Array` makes).

Where shmstore's semantics are chosen to differ, the expectation still comes from a CPython
run, of the implementation that defines that behaviour:
- an Array's length is fixed, so a slice assignment of another number of items is checked
  against `multiprocessing.Array` (ctypes: "Can only assign sequence of same size") for a
  plain slice and `array.array` for an extended one; any iterable may be assigned (it is
  converted with `array.array(typecode, items)`).
- an Array slice reads as a list (`array.array` returns an array).
- `Value.add(n)` is shmstore's atomic `v.value += n`: its expectation is Python's `+=`.
"""
import array
import ctypes
import multiprocessing.managers as managers
import sys

S = slice

INT_CODES = "bBhHiIqQ"
CTYPES = {"b": ctypes.c_byte, "B": ctypes.c_ubyte, "h": ctypes.c_short, "H": ctypes.c_ushort,
          "i": ctypes.c_int, "I": ctypes.c_uint, "q": ctypes.c_longlong, "Q": ctypes.c_ulonglong,
          "f": ctypes.c_float, "d": ctypes.c_double}


def limits(tc):
    n = array.array(tc).itemsize * 8
    return (-(2 ** (n - 1)), 2 ** (n - 1) - 1) if tc.islower() else (0, 2 ** n - 1)


# ------------------------------------------------------------------------------------------
# Value

VALUE_BASES = [("i", 5), (None, "x"), ("d", 2.5), (None, None), (None, [1, "two"]),
               (None, "a string longer than fourteen bytes")]
VALUE_CASES = [
    ("get", ()), ("get", (1,)), ("get", (1, 2)), ("get", (), {"value": 1}),
    ("set", (7,)), ("set", ("long string value, longer than inline",)), ("set", ((1, 2),)),
    ("set", ()), ("set", (1, 2)), ("set", (), {"value": 3}), ("set", (3,), {"value": 3}),
    ("set", (), {"x": 3}),
    ("__getattribute__", ("value",)), ("__getattribute__", ("_typecode",)),
    ("__getattribute__", ("_value",)), ("__getattribute__", ("x",)),
    ("__getattribute__", (1,)), ("__getattribute__", ()), ("__getattribute__", ("a", "b")),
    ("__getattribute__", (), {"name": "value"}),
    ("__setattr__", ("value", 9)), ("__setattr__", ("value",)), ("__setattr__", (1, 2)),
    ("__setattr__", ("value", 1, 2)),
    ("__repr__", ()), ("__str__", ()), ("__repr__", (1,)),
    ("add", (1,)), ("add", (1.5,)), ("add", (True,)), ("add", ("a",)), ("add", (None,)),
    ("add", ([3],)), ("add", ((3,),)), ("add", (2 ** 62,)),
]


def value_add(v, n):
    x = v.get()
    x += n
    if isinstance(x, int) and not -2 ** 63 <= x < 2 ** 63:
        raise OverflowError("int too large to convert to a 64-bit int")
    v.set(x)
    return x


def value_outcome(base, method, args, kwargs):
    v = managers.Value(*base)
    try:
        if method == "add":
            r = value_add(v, *args)
        else:
            r = getattr(v, method)(*args, **kwargs)
        return ok(r, repr(v))
    except Exception as e:  # noqa: BLE001 - the exception is the expected outcome
        return err(e)


# ------------------------------------------------------------------------------------------
# Array

ARRAY_BASES = {tc: [1, 2, 3, 4, 5] for tc in INT_CODES}
ARRAY_BASES["f"] = [0.5, 1.5, -2.25]
ARRAY_BASES["d"] = [0.1, 1e300, -0.0]


def array_cases(tc):
    lo, hi = limits(tc)
    cases = [
        ("__len__", ()), ("__len__", (1,)), ("__len__", (), {"x": 1}),
        ("__getitem__", (0,)), ("__getitem__", (-1,)), ("__getitem__", (2,)),
        ("__getitem__", (5,)), ("__getitem__", (-6,)), ("__getitem__", (100,)),
        ("__getitem__", ("x",)), ("__getitem__", (1.0,)), ("__getitem__", (True,)),
        ("__getitem__", (S(1, 3),)), ("__getitem__", (S(None, None, -1),)),
        ("__getitem__", (S(None, None, 2),)), ("__getitem__", (S(10, 20),)),
        ("__getitem__", (S(None, None, 0),)),
        ("__getitem__", ()), ("__getitem__", (1, 2)), ("__getitem__", (), {"i": 1}),
        ("__setitem__", (0, 7)), ("__setitem__", (-1, 7)), ("__setitem__", (9, 7)),
        ("__setitem__", (-9, 7)), ("__setitem__", ("x", 7)),
        ("__setitem__", (0, "x")), ("__setitem__", (0, None)), ("__setitem__", (0, True)),
        ("__setitem__", (0, 1.5)), ("__setitem__", (0, 0.1)),
        ("__setitem__", (0,)), ("__setitem__", (0, 1, 2)),
        ("__setitem__", (S(0, 2), [8, 9])), ("__setitem__", (S(0, 2), (8, 9))),
        ("__setitem__", (S(0, 2), [8])), ("__setitem__", (S(0, 2), [8, 9, 10])),
        ("__setitem__", (S(None, None, -1), list(range(len(ARRAY_BASES[tc]))))),
        ("__setitem__", (S(None, None, 2), [0])),
        ("__setitem__", (S(0, 2), 5)), ("__setitem__", (S(0, 2), ["a", "b"])),
        ("__setitem__", (S(0, 1), [hi])),
        ("__repr__", ()), ("__str__", ()), ("__repr__", (1,)),
    ]
    if tc in INT_CODES:
        cases += [("__setitem__", (0, hi)), ("__setitem__", (0, lo)),
                  ("__setitem__", (S(0, 2), [1, hi + 1]))]
        if hi < 2 ** 63 - 1:
            cases.append(("__setitem__", (0, hi + 1)))
        if lo > -2 ** 63:
            cases.append(("__setitem__", (0, lo - 1)))
    else:
        cases += [("__setitem__", (0, 1e300)), ("__setitem__", (0, -7))]
    return [c for c in cases if fits_i64(c[1])]


def fits_i64(v):
    """A Value::Int is 64-bit: cases with a larger int cannot be written in Rust."""
    if isinstance(v, bool):
        return True
    if isinstance(v, int):
        return -2 ** 63 <= v < 2 ** 63
    if isinstance(v, (list, tuple)):
        return all(fits_i64(x) for x in v)
    return True


def array_call(tc, a, method, args, kwargs):
    if method == "__setitem__" and len(args) == 2 and isinstance(args[0], slice) and not kwargs:
        s, v = args
        try:
            items = list(v)
        except TypeError:
            return a.__setitem__(s, v)
        n = len(range(*s.indices(len(a))))
        if len(items) != n and s.step in (None, 1):
            c = (CTYPES[tc] * len(a))()
            c[s] = items
            raise AssertionError("ctypes accepted a resizing slice assignment")
        return a.__setitem__(s, array.array(tc, items))
    return getattr(a, method)(*args, **kwargs)


def array_outcome(tc, method, args, kwargs):
    a = array.array(tc, ARRAY_BASES[tc])
    try:
        r = array_call(tc, a, method, args, kwargs)
        if isinstance(r, array.array):
            r = r.tolist()
        return ok(r, repr(a))
    except Exception as e:  # noqa: BLE001
        return err(e)


# ------------------------------------------------------------------------------------------
# Namespace

NS_BASE = [("b", 1), ("a", "x"), ("_h", 3), ("long_attribute_name_x", [1, 2])]
NS_CASES = [
    ("__getattribute__", ("a",)), ("__getattribute__", ("b",)), ("__getattribute__", ("_h",)),
    ("__getattribute__", ("long_attribute_name_x",)), ("__getattribute__", ("q",)),
    ("__getattribute__", (1,)), ("__getattribute__", ()), ("__getattribute__", ("a", "b")),
    ("__getattribute__", (), {"name": "a"}),
    ("__setattr__", ("c", 3.5)), ("__setattr__", ("a", "replaced by a long string value")),
    ("__setattr__", ("_x", 1)), ("__setattr__", ("Z", None)),
    ("__setattr__", ("another_long_attribute_name", (1,))),
    ("__setattr__", (1, 2)), ("__setattr__", ("a",)), ("__setattr__", ("a", 1, 2)),
    ("__setattr__", ("a", 1), {"x": 2}),
    ("__delattr__", ("a",)), ("__delattr__", ("_h",)), ("__delattr__", ("long_attribute_name_x",)),
    ("__delattr__", ("q",)), ("__delattr__", (1,)), ("__delattr__", ()),
    ("__delattr__", (), {"name": "a"}),
    ("__repr__", ()), ("__str__", ()), ("__repr__", (1,)),
]


def ns_outcome(method, args, kwargs):
    ns = managers.Namespace(**dict(NS_BASE))
    try:
        r = getattr(ns, method)(*args, **kwargs)
        return ok(r, repr(ns) + " " + repr(vars(ns)))
    except Exception as e:  # noqa: BLE001
        return err(e)


# ------------------------------------------------------------------------------------------
# Output


def ok(r, state):
    return f"Ok(({rust_str(repr(r))}, {rust_str(state)}))"


def err(e):
    return f"Err(({rust_str(type(e).__name__)}, {rust_str(str(e))}))"


def rust_value(v):
    if v is None:
        return "Value::None"
    if v is True:
        return "Value::Bool(true)"
    if v is False:
        return "Value::Bool(false)"
    if isinstance(v, int):
        return f"Value::Int({v})"
    if isinstance(v, float):
        return f"Value::Float({v!r}_f64)"
    if isinstance(v, str):
        return f"Value::from({rust_str(v)})"
    if isinstance(v, list):
        return "Value::List(vec![" + ", ".join(rust_value(x) for x in v) + "])"
    if isinstance(v, tuple):
        return "Value::Tuple(vec![" + ", ".join(rust_value(x) for x in v) + "])"
    if isinstance(v, slice):
        def o(x):
            return "None" if x is None else f"Some({x})"
        return f"Value::Slice(Slice::from_options({o(v.start)}, {o(v.stop)}, {o(v.step)}))"
    raise TypeError(v)


def rust_str(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def args_of(case):
    method, args = case[0], case[1]
    kwargs = case[2] if len(case) > 2 else {}
    return method, args, kwargs


def case_line(subject, method, args, kwargs, o):
    kw = ", ".join(f"({rust_str(k)}, {rust_value(v)})" for k, v in kwargs.items())
    return (f"        ({subject}, {rust_str(method)}, vec![{', '.join(rust_value(a) for a in args)}], "
            f"vec![{kw}], {o}),\n")


out = sys.stdout
out.write("// @generated by tests/gen/values_cases.py from CPython " + sys.version.split()[0]
          + "; do not edit.\n")
out.write("//! Value, Array and Namespace methods against CPython's results: value and state\n"
          "//! afterwards, or exception and message.\n\n")
out.write("mod common;\n\nuse shmstore::{Proxy, Slice, Store, Value};\n\n")
out.write("pub type Outcome = Result<(&'static str, &'static str), (&'static str, &'static str)>;\n")
out.write("pub type Case<S> = (S, &'static str, Vec<Value>, Vec<(&'static str, Value)>, Outcome);\n\n")

out.write("/// (typecode, initial value) of each Value case.\n")
out.write("pub fn value_cases() -> Vec<Case<(Value, Value)>> {\n    vec![\n")
for base in VALUE_BASES:
    for case in VALUE_CASES:
        m, a, k = args_of(case)
        subject = f"({rust_value(base[0])}, {rust_value(base[1])})"
        out.write(case_line(subject, m, a, k, value_outcome(base, m, a, k)))
out.write("    ]\n}\n\n")

out.write("/// (typecode, initial elements) of each Array case.\n")
out.write("pub fn array_cases() -> Vec<Case<(&'static str, Vec<Value>)>> {\n    vec![\n")
for tc, init in ARRAY_BASES.items():
    for case in array_cases(tc):
        m, a, k = args_of(case)
        subject = f"({rust_str(tc)}, vec![{', '.join(rust_value(x) for x in init)}])"
        out.write(case_line(subject, m, a, k, array_outcome(tc, m, a, k)))
out.write("    ]\n}\n\n")

out.write("/// The attributes every Namespace case starts from, in order.\n")
out.write("pub fn ns_base() -> Vec<(&'static str, Value)> {\n    vec![")
out.write(", ".join(f"({rust_str(k)}, {rust_value(v)})" for k, v in NS_BASE))
out.write("]\n}\n\n")
out.write("pub fn ns_cases() -> Vec<Case<()>> {\n    vec![\n")
for case in NS_CASES:
    m, a, k = args_of(case)
    out.write(case_line("()", m, a, k, ns_outcome(m, a, k)))
out.write("    ]\n}\n")

out.write('''
fn check(p: &Proxy, state: &dyn Fn() -> String, what: &str, args: &[Value], kwargs: &[(&str, Value)], want: &Outcome) -> Option<String> {
    let got = p.call_method_kw(what, args, kwargs);
    let after = state();
    let ok = match (&got, want) {
        (Ok(v), Ok((r, s))) => v.repr() == *r && after == *s,
        (Err(e), Err((kind, msg))) => e.kind() == *kind && e.to_string() == *msg,
        _ => false,
    };
    (!ok).then(|| format!("{what}{args:?} {kwargs:?}: got {got:?} / state {after}, want {want:?}"))
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} mismatches:\\n{}", failures.len(), failures.join("\\n"));
}

#[test]
fn value_methods_match_cpython() {
    let name = common::unique("pyvalue");
    let _c = common::Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let mut failures = Vec::new();
    for ((tc, init), what, args, kwargs, want) in value_cases() {
        let p: Proxy = store.value_with_typecode(tc, init).unwrap().into();
        let state = || p.to_string();
        failures.extend(check(&p, &state, what, &args, &kwargs, &want));
    }
    report(failures);
}

/// A typed array of the Rust type for `tc`, as a dynamic proxy.
fn make_array(store: &Store, tc: &str, init: &[Value]) -> Proxy {
    let ints = || init.iter().map(|v| i64::try_from(v).unwrap());
    let floats = || init.iter().map(|v| f64::try_from(v).unwrap());
    match tc {
        "b" => store.array_from_iter(ints().map(|x| x as i8)).unwrap().into(),
        "B" => store.array_from_iter(ints().map(|x| x as u8)).unwrap().into(),
        "h" => store.array_from_iter(ints().map(|x| x as i16)).unwrap().into(),
        "H" => store.array_from_iter(ints().map(|x| x as u16)).unwrap().into(),
        "i" => store.array_from_iter(ints().map(|x| x as i32)).unwrap().into(),
        "I" => store.array_from_iter(ints().map(|x| x as u32)).unwrap().into(),
        "q" => store.array_from_iter(ints()).unwrap().into(),
        "Q" => store.array_from_iter(ints().map(|x| x as u64)).unwrap().into(),
        "f" => store.array_from_iter(floats().map(|x| x as f32)).unwrap().into(),
        "d" => store.array_from_iter(floats()).unwrap().into(),
        other => panic!("no Rust type for typecode {other}"),
    }
}

#[test]
fn array_methods_match_cpython() {
    let name = common::unique("pyarray");
    let _c = common::Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let mut failures = Vec::new();
    for ((tc, init), what, args, kwargs, want) in array_cases() {
        let p = make_array(&store, tc, &init);
        let state = || p.to_string();
        failures.extend(check(&p, &state, what, &args, &kwargs, &want).map(|f| format!("{tc}: {f}")));
    }
    report(failures);
}

#[test]
fn namespace_methods_match_cpython() {
    let name = common::unique("pyns");
    let _c = common::Cleanup(name.clone());
    let store = Store::create(&name, 4 << 20).unwrap();
    let mut failures = Vec::new();
    for ((), what, args, kwargs, want) in ns_cases() {
        let p: Proxy = store.namespace_with(ns_base()).unwrap().into();
        let state = || format!("{} {}", p, p.get_value().unwrap().repr());
        failures.extend(check(&p, &state, what, &args, &kwargs, &want));
    }
    report(failures);
}
''')
