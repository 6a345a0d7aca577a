"""Generates tests/queue_python.rs: queue.Queue calls checked against CPython's own results.

Run: python3 tests/gen/queue_cases.py > tests/queue_python.rs && cargo fmt
Each case starts from a fresh queue.Queue(maxsize), runs a script of calls, and records for
every call repr(result) or the exception's type and message, then the queued items at the end.
CPython's manager.Queue() and manager.JoinableQueue() are both queue.Queue, so the same cases
run against both shmstore types.
"""
import queue
import sys

LONG = 'long string of more than fourteen bytes'

# (maxsize, [(method, args, kwargs), ...])
CASES = [
    (0, [("put", (1,), {}), ("put", ('a',), {}), ("qsize", (), {}), ("get", (), {}), ("get", (), {}),
         ("empty", (), {}), ("full", (), {})]),
    (0, [("put", (LONG,), {}), ("put", ([1, (2, 'x')],), {}), ("put", (None,), {}), ("put", (2.5,), {}),
         ("get_nowait", (), {}), ("get", (False,), {}), ("qsize", (), {})]),
    (0, [("get_nowait", (), {})]),
    (0, [("get", (False,), {})]),
    (0, [("get", (), {"block": False}), ("get", (0,), {}), ("get", ('',), {}), ("get", ([],), {})]),
    (0, [("get", (True, 0.01), {})]),
    (0, [("get", (), {"timeout": 0})]),
    (0, [("get", (), {"timeout": 0.02, "block": True})]),
    (0, [("put", (1,), {}), ("get", (True, -1), {})]),
    (0, [("put", (1,), {}), ("get", (False, -1), {})]),
    (0, [("put", (1,), {}), ("get", (True, 'x'), {})]),
    (0, [("put", (1,), {}), ("get", (True, [1]), {})]),
    (0, [("put", (1,), {}), ("get", (True, True), {})]),
    (0, [("put", (1,), {}), ("get", ('yes', 5), {})]),
    (0, [("put", (1, True, -1), {}), ("put", (2, True, 'x'), {}), ("put", (3, False), {}),
         ("put_nowait", (4,), {}), ("full", (), {}), ("qsize", (), {})]),
    (2, [("put", (1,), {}), ("full", (), {}), ("put", (2,), {}), ("full", (), {}), ("qsize", (), {}),
         ("put_nowait", (3,), {}), ("put", (3, False), {}), ("put", (3, True, 0.01), {}),
         ("put", (3,), {"timeout": 0}), ("put", (3, True, -1), {}), ("put", (3, True, 'x'), {}),
         ("put", (3, False, -1), {}), ("get", (), {}), ("put", (3, True, -1), {}), ("full", (), {})]),
    (1, [("put", (1,), {}), ("put", (2,), {"block": 0}), ("put", (), {"item": 2, "block": []})]),
    (1, [("put", (1, 1, 1), {}), ("get", (), {}), ("put", (), {"item": 5, "timeout": 1}),
         ("get_nowait", (), {}), ("get_nowait", (), {})]),
    (3, [("put", (i,), {}) for i in range(3)] + [("get", (), {}), ("put", (3,), {}), ("get", (), {}),
         ("put", (4,), {}), ("full", (), {}), ("qsize", (), {})]),
    (-1, [("put", (1,), {}), ("full", (), {})]),
    (0, [("task_done", (), {})]),
    (0, [("put", (1,), {}), ("put", (2,), {}), ("task_done", (), {}), ("task_done", (), {}),
         ("task_done", (), {}), ("join", (), {})]),
    (0, [("put", (1,), {}), ("get", (), {}), ("task_done", (), {}), ("join", (), {}), ("task_done", (), {})]),
    # Argument errors.
    (0, [("put", (), {})]),
    (0, [("put", (1, 2, 3, 4), {})]),
    (0, [("put", (1,), {"x": 2})]),
    (0, [("put", (1,), {"item": 2})]),
    (0, [("put", (1,), {"item": 2, "x": 3})]),
    (0, [("put", (), {"x": 3})]),
    (0, [("put", (1, 2, 3, 4), {"x": 5})]),
    (0, [("put", (1, 2, 3, 4), {"block": 5})]),
    (0, [("put", (), {"block": True})]),
    (0, [("put_nowait", (), {})]),
    (0, [("put_nowait", (1, 2), {})]),
    (0, [("put_nowait", (), {"item": 7}), ("qsize", (), {})]),
    (0, [("put_nowait", (), {"block": 7})]),
    (0, [("get", (1, 2, 3), {})]),
    (0, [("get", (), {"x": 1, "y": 2})]),
    (0, [("get", (True,), {"block": True})]),
    (0, [("get_nowait", (1,), {})]),
    (0, [("get_nowait", (), {"block": False})]),
    (0, [("qsize", (1,), {})]),
    (0, [("qsize", (), {"x": 1})]),
    (0, [("empty", (1, 2), {})]),
    (0, [("full", (None,), {})]),
    (0, [("task_done", (1,), {})]),
    (0, [("join", (1,), {})]),
]


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
    raise TypeError(v)


def rust_str(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def run(maxsize, script):
    q = queue.Queue(maxsize)
    outs = []
    for method, args, kwargs in script:
        try:
            r = getattr(q, method)(*args, **kwargs)
            outs.append(f"Ok({rust_str(repr(r))})")
        except Exception as e:  # noqa: BLE001 - the exception is the expected outcome
            outs.append(f"Err(({rust_str(type(e).__name__)}, {rust_str(str(e))}))")
    return outs, repr(list(q.queue))


out = sys.stdout
out.write("// @generated by tests/gen/queue_cases.py from CPython " + sys.version.split()[0] + "; do not edit.\n")
out.write("//! Queue methods against CPython's queue.Queue: each call's result or exception and message,\n")
out.write("//! and the items queued at the end, for both Queue and JoinableQueue.\n\n")
out.write("mod common;\n\nuse shmstore::{Error, Store, Value};\n\n")
out.write("type Outcome = Result<&'static str, (&'static str, &'static str)>;\n")
out.write("type Call = (&'static str, Vec<Value>, Vec<(&'static str, Value)>, Outcome);\n\n")
out.write("fn cases() -> Vec<(i64, Vec<Call>, &'static str)> {\n    vec![\n")
for maxsize, script in CASES:
    outs, after = run(maxsize, script)
    out.write(f"        ({maxsize}, vec![\n")
    for (method, args, kwargs), o in zip(script, outs):
        kw = ", ".join(f"({rust_str(k)}, {rust_value(v)})" for k, v in kwargs.items())
        out.write(f"            ({rust_str(method)}, vec![{', '.join(rust_value(a) for a in args)}], vec![{kw}], {o}),\n")
    out.write(f"        ], {rust_str(after)}),\n")
out.write("    ]\n}\n")
out.write('''
/// Python's `str(exc)` of one of our errors: queue.Empty and queue.Full carry no message.
fn py_message(e: &Error) -> String {
    match e {
        Error::Empty | Error::Full => String::new(),
        e => e.to_string(),
    }
}

fn run(store: &Store, joinable: bool) {
    let mut failures = Vec::new();
    for (n, (maxsize, script, after)) in cases().into_iter().enumerate() {
        // CPython treats a negative maxsize as unbounded, as 0.
        let maxsize = maxsize.max(0) as usize;
        let proxy: shmstore::Proxy = if joinable {
            store.joinable_queue(maxsize).unwrap().into()
        } else {
            store.queue(maxsize).unwrap().into()
        };
        for (method, args, kwargs, want) in &script {
            let got = proxy.call_method_kw(method, args.as_slice(), kwargs);
            let ok = match (&got, want) {
                (Ok(v), Ok(r)) => v.repr() == *r,
                (Err(e), Err((kind, msg))) => e.kind() == *kind && py_message(e) == *msg,
                _ => false,
            };
            if !ok {
                failures.push(format!("case {n}: {method}{args:?} {kwargs:?}: got {got:?}, want {want:?}"));
            }
        }
        let items = proxy.get_value().unwrap().repr();
        if items != after {
            failures.push(format!("case {n}: items {items}, want {after}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\\n{}", failures.len(), failures.join("\\n"));
}

#[test]
fn queue_methods_match_cpython() {
    let name = common::unique("qpy");
    let _c = common::Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    run(&store, false);
    assert_eq!(store.stats().unwrap().objects_live, 0);
}

#[test]
fn joinable_queue_methods_match_cpython() {
    let name = common::unique("jqpy");
    let _c = common::Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    run(&store, true);
    assert_eq!(store.stats().unwrap().objects_live, 0);
}
''')
