"""Generates tests/sync_python.rs: the synchronization types' methods against CPython's.

Run: python3 tests/gen/sync_cases.py > tests/sync_python.rs
Each scenario makes a fresh threading object and calls a sequence of methods on it (none of them
blocks for long), recording repr(result) or the exception's type and message — what
`proxy._callmethod(name, args, kwds)` would report, as a manager's server calls the referent's
method with the arguments as given.
"""
import sys
import threading

NAN = float('nan')

# (constructor, ctor arg, [(method, args, kwargs)])
SCENARIOS = [
    ("Lock", 0, [("release", (), {})]),
    ("Lock", 0, [("acquire", (), {}), ("acquire", (False,), {}), ("acquire", (0,), {}),
                 ("acquire", (True, 0), {}), ("acquire", (True, 0.01), {}),
                 ("acquire", (), {"blocking": False}), ("acquire", (), {"timeout": 0}),
                 ("release", (), {}), ("release", (), {})]),
    ("Lock", 0, [("acquire", (False, 1), {}), ("acquire", (False, 0), {}), ("acquire", (True, -2), {}),
                 ("acquire", (), {"timeout": -1.5}), ("acquire", (True, NAN), {}),
                 ("acquire", (True, 'x'), {}), ("acquire", ('',), {}), ("acquire", (2.5,), {}),
                 ("acquire", (1, 2, 3), {}), ("acquire", (), {"x": 1}),
                 ("acquire", (1,), {"blocking": 1}), ("release", (1,), {}),
                 ("acquire", (True, -1), {}), ("release", (), {}), ("acquire", (False, -1), {}),
                 ("release", (), {}), ("acquire", (True, True), {}), ("release", (), {})]),
    ("Lock", 0, [("__enter__", (), {}), ("__exit__", (None, None, None), {}), ("__exit__", (), {}),
                 ("__enter__", (1,), {}), ("__exit__", (), {})]),
    ("RLock", 0, [("release", (), {})]),
    ("RLock", 0, [("acquire", (), {}), ("acquire", (), {}), ("acquire", (False,), {}),
                  ("acquire", (True, 0), {}), ("release", (), {}), ("release", (), {}),
                  ("release", (), {}), ("release", (), {})]),
    ("RLock", 0, [("acquire", (False, 1), {}), ("acquire", (True, -2), {}),
                  ("acquire", (1, 2, 3), {}), ("acquire", (), {"x": 1}), ("release", (1,), {}),
                  ("__enter__", (), {}), ("__exit__", (None, None, None), {}), ("__exit__", (), {})]),
    ("Semaphore", 2, [("acquire", (), {}), ("acquire", (), {}), ("acquire", (False,), {}),
                      ("acquire", (True, 0), {}), ("acquire", (True, -2), {}),
                      ("acquire", (True, 0.01), {}), ("acquire", (None,), {}), ("acquire", ('',), {}),
                      ("release", (), {}), ("release", (2,), {}), ("acquire", (), {}),
                      ("acquire", (), {}), ("acquire", (), {}), ("acquire", (False,), {}),
                      ("release", (True,), {}), ("acquire", (1.5,), {}),
                      ("acquire", (), {"blocking": 0})]),
    ("Semaphore", 2, [("acquire", (False, 1), {}), ("acquire", (False, 0), {}),
                      ("acquire", (1, 2, 3), {}), ("acquire", (), {"x": 1}),
                      ("acquire", (True,), {"blocking": 1}), ("release", (0,), {}),
                      ("release", ('a',), {}), ("release", (None,), {}),
                      ("release", (0.5,), {}), ("release", (), {"n": 0}), ("release", (1, 2), {}),
                      ("release", (), {"m": 1}), ("acquire", (True, 'x'), {}), ("acquire", (), {}),
                      ("acquire", (True, 'x'), {}), ("acquire", (False, None), {})]),
    # Python adds 1.5 to the value before range(1.5) fails; shmstore refuses it unchanged.
    ("Semaphore", 0, [("release", (1.5,), {})]),
    ("Semaphore", 0, [("acquire", (False,), {}), ("acquire", (True, 0), {}),
                      ("release", (3,), {}), ("acquire", (), {}), ("acquire", (), {}),
                      ("acquire", (), {}), ("acquire", (False,), {})]),
    ("BoundedSemaphore", 1, [("release", (), {}), ("acquire", (), {}), ("release", (2,), {}),
                             ("release", (), {}), ("release", (), {}), ("release", (0,), {}),
                             ("release", (1, 2), {}), ("acquire", (1, 2, 3), {}),
                             ("acquire", (False, 1), {})]),
    ("BoundedSemaphore", 3, [("acquire", (), {}), ("acquire", (), {}), ("release", (3,), {}),
                             ("release", (2,), {}), ("acquire", (), {}), ("acquire", (), {}),
                             ("acquire", (), {}), ("acquire", (False,), {}), ("release", (3,), {})]),
    ("Condition", 0, [("wait", (), {}), ("wait", (0,), {}), ("notify", (), {}),
                      ("notify_all", (), {}), ("release", (), {}), ("wait", (1, 2), {}),
                      ("notify", (1, 2), {}), ("notify_all", (1,), {}), ("wait", (), {"x": 1}),
                      ("release", (1,), {}), ("acquire", (1, 2, 3), {}),
                      ("acquire", (False, 1), {}), ("__exit__", (), {})]),
    ("Condition", 0, [("acquire", (), {}), ("notify", (), {}), ("notify", (-1,), {}),
                      ("notify", ('a',), {}), ("notify", (1.5,), {}), ("notify", (0,), {}),
                      ("notify", (), {"n": 3}), ("notify_all", (), {}), ("wait", (0,), {}),
                      ("wait", (-1,), {}), ("wait", (0.01,), {}), ("wait", ('x',), {}),
                      ("wait", (), {"timeout": 0}), ("acquire", (False,), {}),
                      ("release", (), {}), ("release", (), {}), ("release", (), {}),
                      ("__enter__", (), {}), ("__enter__", (), {}), ("__exit__", (), {}),
                      ("__exit__", (None, None, None), {}), ("__exit__", (), {})]),
    ("Event", 0, [("is_set", (), {}), ("wait", (0,), {}), ("wait", (-1,), {}),
                  ("wait", (0.01,), {}), ("wait", ('x',), {}), ("wait", (), {"timeout": 0}),
                  ("set", (), {}), ("is_set", (), {}), ("wait", (), {}), ("wait", ('x',), {}),
                  ("wait", (0,), {}), ("set", (), {}), ("clear", (), {}), ("is_set", (), {}),
                  ("clear", (), {}), ("set", (1,), {}), ("is_set", (1,), {}),
                  ("clear", (1,), {}), ("wait", (1, 2), {}), ("wait", (), {"x": 1}),
                  ("set", (), {"x": 1})]),
    ("Barrier", 1, [("wait", (), {}), ("wait", (None,), {}), ("wait", (0,), {}),
                    ("wait", ('x',), {}), ("wait", (), {"timeout": 5}),
                    ("__getattribute__", ('parties',), {}),
                    ("__getattribute__", ('n_waiting',), {}),
                    ("__getattribute__", ('broken',), {}), ("__getattribute__", ('foo',), {}),
                    ("__getattribute__", (1,), {}), ("__getattribute__", (), {}),
                    ("__getattribute__", ('a', 'b'), {}), ("abort", (), {}),
                    ("__getattribute__", ('broken',), {}), ("wait", (), {}), ("reset", (), {}),
                    ("__getattribute__", ('broken',), {}), ("wait", (), {}), ("abort", (1,), {}),
                    ("reset", (1,), {}), ("wait", (1, 2), {}), ("wait", (), {"x": 1})]),
    ("Barrier", 2, [("wait", (0.01,), {}), ("__getattribute__", ('broken',), {}),
                    ("wait", (), {}), ("reset", (), {}), ("__getattribute__", ('broken',), {}),
                    ("wait", (-1,), {}), ("reset", (), {}), ("wait", ('x',), {}),
                    ("__getattribute__", ('n_waiting',), {}),
                    ("__getattribute__", ('broken',), {}), ("wait", (0,), {}), ("reset", (), {}),
                    ("reset", (), {}), ("__getattribute__", ('broken',), {})]),
]


def make(ctor, arg):
    if ctor in ("Lock", "RLock", "Condition", "Event"):
        return getattr(threading, ctor)()
    return getattr(threading, ctor)(arg)


def rust_value(v):
    if v is None:
        return "Value::None"
    if isinstance(v, bool):
        return f"Value::Bool({'true' if v else 'false'})"
    if isinstance(v, int):
        return f"Value::Int({v})"
    if isinstance(v, float):
        if v != v:
            return "Value::Float(f64::NAN)"
        return f"Value::Float({v!r}_f64)"
    if isinstance(v, str):
        return f"Value::from({rust_str(v)})"
    raise TypeError(v)


def rust_str(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def outcome(obj, name, args, kwargs):
    try:
        r = getattr(obj, name)(*args, **kwargs)
        return f"Ok({rust_str(repr(r))})"
    except threading.BrokenBarrierError:
        return 'Err(("BrokenBarrierError", ""))'
    except Exception as e:  # noqa: BLE001 - every exception is an expected outcome
        return f"Err(({rust_str(type(e).__name__)}, {rust_str(str(e))}))"


def main():
    out = sys.stdout
    ver = ".".join(map(str, sys.version_info[:3]))
    out.write(f"// @generated by tests/gen/sync_cases.py from CPython {ver}; do not edit.\n")
    out.write("//! The synchronization types' methods against CPython's results, called through\n")
    out.write("//! `call_method` as a manager's server calls the referent's methods.\n\n")
    out.write("use shmstore::Value;\n\n")
    out.write("pub type Outcome = Result<&'static str, (&'static str, &'static str)>;\n")
    out.write("pub type Step = (&'static str, Vec<Value>, Vec<(&'static str, Value)>, Outcome);\n\n")
    out.write("pub fn scenarios() -> Vec<(&'static str, usize, Vec<Step>)> {\n    vec![\n")
    for ctor, arg, steps in SCENARIOS:
        obj = make(ctor, arg)
        out.write(f"        ({rust_str(ctor)}, {arg}, vec![\n")
        for name, args, kwargs in steps:
            res = outcome(obj, name, args, kwargs)
            a = ", ".join(rust_value(x) for x in args)
            k = ", ".join(f"({rust_str(key)}, {rust_value(v)})" for key, v in kwargs.items())
            out.write(f"            ({rust_str(name)}, vec![{a}], vec![{k}], {res}),\n")
        out.write("        ]),\n")
    out.write("    ]\n}\n")


main()
