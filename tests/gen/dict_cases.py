"""Generates the dict and set method cases checked against CPython's own results.

Run:
    python3 tests/gen/dict_cases.py dict > tests/gen/dict_cases.rs
    python3 tests/gen/dict_cases.py set > tests/gen/set_cases.rs

Each case starts from a fresh container made from a named base, calls one method with the given
arguments, and records repr(result) and the container's repr afterwards — or the exception's
type, message and the container afterwards (a failed update keeps what it did before failing).

Sets: shmstore iterates a set in insertion order, CPython in hash order, so set results and set
states are recorded in a canonical form (element reprs sorted), and the Rust side canonicalizes
the same way. Set operands (`s | x`, `s <= x`) are given as lists, which shmstore takes for sets;
here they are turned into sets before CPython's operator runs.
"""
import operator
import sys

LONG = 'long string of more than fourteen bytes'

DICT_BASES = {
    "base": {1: 'a', 'b': 2.5, None: [1, 2], (1, 2): 'tuple', LONG: LONG, 3.5: {'n': 1}, b'x': None},
    "empty": {},
}
D = {'b': 9, 'c': 3}
DICT_CASES = [
    ("base", "__len__", (), {}), ("base", "__len__", (1,), {}),
    ("base", "__getitem__", (1,), {}), ("base", "__getitem__", (1.0,), {}), ("base", "__getitem__", (True,), {}),
    ("base", "__getitem__", ('b',), {}), ("base", "__getitem__", ((1, 2),), {}), ("base", "__getitem__", (LONG,), {}),
    ("base", "__getitem__", (b'x',), {}), ("base", "__getitem__", (None,), {}), ("base", "__getitem__", ('zz',), {}),
    ("base", "__getitem__", ((1, 3),), {}), ("base", "__getitem__", ([1],), {}), ("base", "__getitem__", ({},), {}),
    ("base", "__getitem__", ((1, [2]),), {}), ("base", "__getitem__", (), {}),
    ("base", "__contains__", (1,), {}), ("base", "__contains__", (3.5,), {}), ("base", "__contains__", ('zz',), {}),
    ("base", "__contains__", ([1],), {}), ("base", "__contains__", (None,), {}),
    ("base", "__setitem__", (1, 'new'), {}), ("base", "__setitem__", ('new', 1), {}),
    ("base", "__setitem__", (True, 'x'), {}), ("base", "__setitem__", (LONG, [LONG]), {}),
    ("base", "__setitem__", ([1], 2), {}), ("base", "__setitem__", ((1, [2]), 3), {}), ("base", "__setitem__", (1,), {}),
    ("base", "__delitem__", (1,), {}), ("base", "__delitem__", (LONG,), {}), ("base", "__delitem__", ('zz',), {}),
    ("base", "__delitem__", ([1],), {}), ("base", "__delitem__", (), {}),
    ("base", "__iter__", (), {}), ("base", "__iter__", (1,), {}), ("base", "__reversed__", (), {}),
    ("base", "__reversed__", (1,), {}), ("base", "__repr__", (), {}), ("base", "__str__", (), {}),
    ("empty", "__repr__", (), {}), ("empty", "__iter__", (), {}),
    ("base", "__or__", (D,), {}), ("base", "__or__", (1,), {}), ("base", "__or__", ([('x', 1)],), {}), ("base", "__or__", (), {}),
    ("base", "__ror__", (D,), {}), ("base", "__ror__", (1,), {}),
    ("base", "__ior__", (D,), {}), ("base", "__ior__", ([('x', 1)],), {}), ("base", "__ior__", (1,), {}),
    ("base", "__ior__", ([1],), {}), ("base", "__ior__", (), {}),
    ("base", "clear", (), {}), ("base", "clear", (1,), {}), ("base", "copy", (), {}), ("base", "copy", (1,), {}),
    ("base", "fromkeys", ([1, 2],), {}), ("base", "fromkeys", ([1, 2, 1.0], 0), {}), ("base", "fromkeys", ('ab',), {}),
    ("base", "fromkeys", (), {}), ("base", "fromkeys", (1,), {}), ("base", "fromkeys", ([[1]],), {}),
    ("base", "fromkeys", ([1],), {"value": 1}), ("base", "fromkeys", ({'k': 1},), {}),
    ("base", "get", (1,), {}), ("base", "get", ('zz',), {}), ("base", "get", ('zz', 5), {}), ("base", "get", (3.5, 5), {}),
    ("base", "get", (), {}), ("base", "get", (1, 2, 3), {}), ("base", "get", ([1],), {}), ("base", "get", (1,), {"default": 2}),
    ("base", "items", (), {}), ("base", "keys", (), {}), ("base", "values", (), {}), ("base", "items", (1,), {}),
    ("empty", "items", (), {}),
    ("base", "pop", (1,), {}), ("base", "pop", ('zz',), {}), ("base", "pop", ('zz', 0), {}), ("base", "pop", (LONG, 0), {}),
    ("base", "pop", (), {}), ("base", "pop", (1, 2, 3), {}), ("base", "pop", ([1],), {}), ("base", "pop", (), {"k": 1}),
    ("base", "popitem", (), {}), ("base", "popitem", (1,), {}), ("empty", "popitem", (), {}),
    ("base", "setdefault", ('b',), {}), ("base", "setdefault", ('new',), {}), ("base", "setdefault", ('new', 7), {}),
    ("base", "setdefault", (), {}), ("base", "setdefault", ([1], 2), {}), ("base", "setdefault", (1, 2, 3), {}),
    ("base", "update", ({'b': 0, 'z': 1},), {}), ("base", "update", ([('z', 1), ('y', 2)],), {}),
    ("base", "update", (['ab', 'cd'],), {}), ("base", "update", ([1],), {}), ("base", "update", ([(1, 2, 3)],), {}),
    ("base", "update", (1,), {}), ("base", "update", ({}, {}), {}), ("base", "update", (), {"x": 1}),
    ("base", "update", ({'b': 0},), {"c": 3}), ("base", "update", ([('q', 2), ([3], 4)],), {}),
    ("base", "update", ('xy',), {}), ("base", "update", ([('q', 1), 5],), {}), ("empty", "update", ((('a', 1), ['b', 2]),), {}),
    ("base", "nosuch", (), {}),
]

SET_BASES = {
    "base": [3, 1, 'a', 2.5, None, (1, 2), LONG, b'x'],
    "small": [1, 2, 3],
    "empty": [],
}
ALL = [3, 1, 'a', 2.5, None, (1, 2), LONG, b'x', 99]
SET_CASES = [
    ("base", "__len__", (), {}), ("base", "__len__", (1,), {}),
    ("base", "__contains__", (1,), {}), ("base", "__contains__", (1.0,), {}), ("base", "__contains__", ('zz',), {}),
    ("base", "__contains__", ([1],), {}), ("base", "__contains__", ((1, 2),), {}), ("base", "__contains__", (LONG,), {}),
    ("base", "__contains__", (), {}),
    ("base", "add", (4,), {}), ("base", "add", (1,), {}), ("base", "add", (1.0,), {}), ("base", "add", ([1],), {}),
    ("base", "add", (), {}), ("base", "add", (1, 2), {}), ("base", "add", (), {"x": 1}), ("base", "add", ('x' * 20,), {}),
    ("base", "discard", (1,), {}), ("base", "discard", ('zz',), {}), ("base", "discard", ([1],), {}), ("base", "discard", (), {}),
    ("base", "remove", (1,), {}), ("base", "remove", (LONG,), {}), ("base", "remove", ('zz',), {}), ("base", "remove", ([1],), {}),
    ("base", "pop", (1,), {}), ("empty", "pop", (), {}),
    ("base", "clear", (), {}), ("base", "clear", (1,), {}), ("base", "copy", (), {}), ("base", "copy", (1,), {}),
    ("base", "__iter__", (), {}), ("base", "__iter__", (1,), {}),
    ("base", "union", (), {}), ("base", "union", ([4, 5],), {}), ("base", "union", ([4], (5, 1)), {}),
    ("base", "union", ('xy',), {}), ("base", "union", (1,), {}), ("base", "union", ([[1]],), {}),
    ("base", "union", ([1],), {"x": 2}), ("base", "union", ({'k': 1},), {}),
    ("base", "intersection", ([1],), {"x": 2}), ("base", "difference", ([1],), {"x": 2}),
    ("base", "update", ([1],), {"x": 2}), ("base", "intersection_update", ([1],), {"x": 2}),
    ("base", "difference_update", ([1],), {"x": 2}), ("base", "symmetric_difference_update", ([1],), {"x": 2}),
    ("base", "intersection", ([1, 3, 9],), {}), ("base", "intersection", ([1, 3], [3]), {}), ("base", "intersection", (), {}),
    ("base", "intersection", ([[1]],), {}), ("base", "intersection", (1,), {}), ("base", "intersection", ([1, 1, 3],), {}),
    ("base", "difference", ([1, 3],), {}), ("base", "difference", ([1], [3]), {}), ("base", "difference", ([3, [1]],), {}),
    ("base", "difference", (), {}), ("base", "difference", (1,), {}),
    ("base", "symmetric_difference", ([1, 9, 9],), {}), ("base", "symmetric_difference", (), {}),
    ("base", "symmetric_difference", ([[1]],), {}), ("base", "symmetric_difference", (1,), {}),
    ("base", "update", ([4, 5],), {}), ("base", "update", ([4], [5]), {}), ("base", "update", (), {}),
    ("base", "update", ([4, [1]],), {}), ("base", "update", (1,), {}),
    ("base", "intersection_update", ([1, 3, 9],), {}), ("base", "intersection_update", ([1, 3], [3]), {}),
    ("base", "intersection_update", ([1, [1]],), {}),
    ("base", "intersection_update", ([1, 3], [[1]]), {}), ("base", "intersection_update", (1,), {}),
    ("base", "difference_update", ([1, 3],), {}), ("base", "difference_update", ([1], [3]), {}),
    ("base", "difference_update", ([3, [1]],), {}), ("base", "difference_update", (1,), {}),
    ("base", "symmetric_difference_update", ([1, 9],), {}), ("base", "symmetric_difference_update", ([9, [1]],), {}),
    ("base", "symmetric_difference_update", (1,), {}), ("base", "symmetric_difference_update", (), {}),
    ("base", "issubset", (ALL,), {}), ("base", "issubset", ([1],), {}), ("base", "issubset", ([[1]],), {}),
    ("base", "issubset", (), {}), ("base", "issubset", (1,), {}),
    ("base", "issuperset", ([1, 3],), {}), ("base", "issuperset", ([1, 99],), {}), ("base", "issuperset", ([99, [1]],), {}),
    ("base", "issuperset", ([1, [1]],), {}),
    ("base", "isdisjoint", ([7, 8],), {}), ("base", "isdisjoint", ([7, 1],), {}), ("base", "isdisjoint", ([1, [1]],), {}),
    ("base", "isdisjoint", ([7, [1]],), {}), ("base", "isdisjoint", (1,), {}),
    ("small", "__or__", ([3, 4],), {}), ("small", "__or__", (1,), {}), ("small", "__or__", ([[1]],), {}),
    ("small", "__ror__", ([3, 4],), {}),
    ("small", "__and__", ([3, 4],), {}), ("small", "__and__", (1,), {}), ("small", "__rand__", ([3, 4],), {}),
    ("small", "__sub__", ([3, 4],), {}), ("small", "__sub__", (1,), {}), ("small", "__rsub__", ([3, 4],), {}),
    ("small", "__xor__", ([3, 4],), {}), ("small", "__xor__", (1,), {}), ("small", "__rxor__", ([3, 4],), {}),
    ("small", "__ior__", ([3, 4],), {}), ("small", "__ior__", (1,), {}), ("small", "__ior__", (), {}),
    ("small", "__iand__", ([3, 4],), {}), ("small", "__iand__", (1,), {}),
    ("small", "__isub__", ([3, 4],), {}), ("small", "__isub__", (1,), {}),
    ("small", "__ixor__", ([3, 4],), {}), ("small", "__ixor__", (1,), {}),
    ("small", "__le__", ([1, 2, 3],), {}), ("small", "__le__", ([1, 2],), {}), ("small", "__le__", (1,), {}),
    ("small", "__lt__", ([1, 2, 3],), {}), ("small", "__lt__", ([1, 2, 3, 4],), {}), ("small", "__lt__", (1,), {}),
    ("small", "__ge__", ([1, 2, 3],), {}), ("small", "__ge__", ([1, 4],), {}), ("small", "__ge__", (1,), {}),
    ("small", "__gt__", ([1, 2, 3],), {}), ("small", "__gt__", ([1, 2],), {}), ("small", "__gt__", (1,), {}),
    ("base", "nosuch", (), {}),
]

# Operators: CPython wants set operands; shmstore takes lists for sets.
BINOPS = {
    "__or__": operator.or_, "__and__": operator.and_, "__sub__": operator.sub, "__xor__": operator.xor,
    "__le__": operator.le, "__lt__": operator.lt, "__ge__": operator.ge, "__gt__": operator.gt,
}
RBINOPS = {"__ror__": operator.or_, "__rand__": operator.and_, "__rsub__": operator.sub, "__rxor__": operator.xor}
IOPS = {"__ior__": operator.ior, "__iand__": operator.iand, "__isub__": operator.isub, "__ixor__": operator.ixor}
SET_RESULTS = {"copy", "union", "intersection", "difference", "symmetric_difference", "__iter__",
               "__or__", "__and__", "__sub__", "__xor__", "__ror__", "__rand__", "__rsub__", "__rxor__",
               "__ior__", "__iand__", "__isub__", "__ixor__"}


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
    if isinstance(v, bytes):
        return f"Value::bytes(*b{rust_str(v.decode('ascii'))})"
    if isinstance(v, list):
        return "Value::List(vec![" + ", ".join(rust_value(x) for x in v) + "])"
    if isinstance(v, tuple):
        return "Value::Tuple(vec![" + ", ".join(rust_value(x) for x in v) + "])"
    if isinstance(v, dict):
        return "Value::Dict(vec![" + ", ".join(f"({rust_value(k)}, {rust_value(x)})" for k, x in v.items()) + "])"
    raise TypeError(v)


def rust_str(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def canon(v):
    """The canonical repr of a set: element reprs sorted."""
    return "{" + ", ".join(sorted(map(repr, v))) + "}" if v else "set()"


def dict_outcome(base, method, args, kwargs):
    d = dict(DICT_BASES[base])
    try:
        if method == "__or__" and len(args) == 1:
            r = d | args[0]
        elif method == "__ror__" and len(args) == 1:
            r = args[0] | d
        else:
            r = getattr(d, method)(*args, **kwargs)
        if method in ("__iter__", "__reversed__", "items", "keys", "values"):
            r = list(r)
        return f"Ok(({rust_str(repr(r))}, {rust_str(repr(d))}))"
    except Exception as e:  # noqa: BLE001 - the exception is the expected outcome
        return f"Err(({rust_str(type(e).__name__)}, {rust_str(str(e))}, {rust_str(repr(d))}))"


def as_set(x):
    return set(x) if isinstance(x, (list, tuple, str)) else x


def set_outcome(base, method, args, kwargs):
    s = set(SET_BASES[base])
    try:
        if method in BINOPS and len(args) == 1:
            r = BINOPS[method](s, as_set(args[0]))
        elif method in RBINOPS and len(args) == 1:
            r = RBINOPS[method](as_set(args[0]), s)
        elif method in IOPS and len(args) == 1:
            t = IOPS[method](s, as_set(args[0]))
            r, s = t, t
        else:
            r = getattr(s, method)(*args, **kwargs)
        if method == "__iter__":
            r = set(r)
        r = canon(r) if method in SET_RESULTS else repr(r)
        return f"Ok(({rust_str(r)}, {rust_str(canon(s))}))"
    except Exception as e:  # noqa: BLE001 - the exception is the expected outcome
        return f"Err(({rust_str(type(e).__name__)}, {rust_str(str(e))}, {rust_str(canon(s))}))"


def main(kind):
    out = sys.stdout
    out.write(f"// @generated by tests/gen/dict_cases.py {kind} from CPython {sys.version.split()[0]}; do not edit.\n")
    out.write(f"//! {kind} methods against CPython's results: value and container afterwards, or exception,\n")
    out.write("//! message and container afterwards.\n\n")
    out.write("use shmstore::Value;\n\n")
    out.write("/// `Ok((repr of result, repr after))` or `Err((exception, message, repr after))`.\n")
    out.write("pub type Outcome = Result<(&'static str, &'static str), (&'static str, &'static str, &'static str)>;\n\n")
    bases = DICT_BASES if kind == "dict" else SET_BASES
    cases = DICT_CASES if kind == "dict" else SET_CASES
    outcome = dict_outcome if kind == "dict" else set_outcome
    out.write("/// The base containers the cases start from.\n")
    out.write("pub fn base(name: &str) -> Value {\n    match name {\n")
    for name, b in bases.items():
        v = rust_value(b) if kind == "dict" else rust_value(list(b))
        out.write(f"        {rust_str(name)} => {v},\n")
    out.write("        _ => unreachable!(),\n    }\n}\n\n")
    if kind == "set":
        out.write("/// Methods whose result is a set (compared canonically).\n")
        out.write("pub const SET_RESULTS: &[&str] = &[" + ", ".join(rust_str(m) for m in sorted(SET_RESULTS)) + "];\n\n")
    out.write("/// (base, method, args, kwargs, outcome).\n")
    out.write("#[allow(clippy::type_complexity)]\n")
    out.write("pub fn cases() -> Vec<(&'static str, &'static str, Vec<Value>, Vec<(&'static str, Value)>, Outcome)> {\n    vec![\n")
    for base, method, args, kwargs in cases:
        o = outcome(base, method, args, kwargs)
        a = ", ".join(rust_value(x) for x in args)
        kw = ", ".join(f"({rust_str(k)}, {rust_value(v)})" for k, v in kwargs.items())
        out.write(f"        ({rust_str(base)}, {rust_str(method)}, vec![{a}], vec![{kw}], {o}),\n")
    out.write("    ]\n}\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dict")
