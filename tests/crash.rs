//! A child killed with SIGKILL at an exact step inside a critical section — a list append, a
//! list's growth, an insert and a sort rebuilding the array, a dict growing its table, the
//! allocator in the middle of an allocation, the object table taking a slot — leaves a store
//! that the next caller takes over: the lock is retaken, `check` is clean, every operation the
//! child completed is there, and once every object is dropped the memory in use is exactly what
//! it was before, plus the one block the interrupted operation had allocated and not yet
//! published, whose size each test names exactly — a leak that the mark and sweep,
//! `Store::repair`, then gives back, which each test checks too.
//!
//! The child stops at a named failpoint (the `failpoints` feature, src/failpoint.rs): the parent
//! passes its name in `SHMSTORE_FAILPOINT`; the child keeps the variable unset while it does its
//! completed operations (reporting each as an `OP` line) and sets it just before the operation
//! it is to die in; the failpoint prints `FAILPOINT <name>` and blocks until the parent kills it.
//!
//! A child killed at each step of dropping a handle (`procs::drop_reference`), taking a reference
//! (a lookup) or creating an object gives back exactly the references it held: none twice, none
//! leaked; the object it held the last reference to, or had just created, is freed.
//!
//! A child killed while holding 1,000 proxies is `tests/processes.rs`,
//! `references_of_a_killed_process_holding_1000_proxies_are_reclaimed`.
//!
//! Run with `cargo test --features failpoints --test crash`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use common::{spawn_env, unique, Cleanup};
use shmstore::failpoint::ENV;
use shmstore::{DictProxy, ListProxy, Store, Value, ValueProxy};

fn op(what: impl std::fmt::Display) {
    common::signal(&format!("OP {what}"));
}

/// Entry point for child processes (run by the tests below, not on its own).
#[test]
#[ignore = "entry point for the child processes of this file's tests"]
fn child_main() {
    let Some((role, args)) = common::child_role() else {
        return;
    };
    // Disarmed while the completed operations run; `arm` sets it again.
    let fp = std::env::var(ENV).expect("child: no failpoint named");
    std::env::remove_var(ENV);
    let arm = || std::env::set_var(ENV, &fp);
    if role == "reclaim" {
        // Dies inside the reclaim its open runs.
        arm();
        let _s = Store::open(&args[0]);
        common::signal("MISSED");
        return;
    }
    let store = Store::open(&args[0]).expect("child: open");
    let list = || ListProxy::try_from(store.lookup("l").unwrap()).unwrap();
    match role.as_str() {
        "append" => {
            let l = list();
            for i in 5..10 {
                l.append(i).unwrap();
                op(format!("append {i}"));
            }
            l.set(0, -1).unwrap();
            op("set 0 -1");
            arm();
            // len == cap: grows (completes), writes the cell, dies before publishing the length.
            let _ = l.append(10);
        }
        "grow" => {
            let l = list();
            for i in 8..16 {
                l.append(i).unwrap();
                op(format!("append {i}"));
            }
            arm();
            let _ = l.append(16);
        }
        "insert" => {
            let l = list();
            l.insert(0, 100).unwrap();
            op("insert 0 100");
            l.insert(3, 101).unwrap();
            op("insert 3 101");
            arm();
            let _ = l.insert(1, 102);
        }
        "sort" => {
            let l = list();
            l.append(4).unwrap();
            op("append 4");
            l.sort(false).unwrap();
            op("sort");
            l.append(2).unwrap();
            op("append 2");
            arm();
            let _ = l.sort(true);
        }
        "dict" => {
            let d = DictProxy::try_from(store.lookup("d").unwrap()).unwrap();
            for k in 0..20i64 {
                d.insert(k, k * 10).unwrap();
                op(format!("insert {k}"));
            }
            arm();
            // Every insert that completes is reported; the one that grows the table dies.
            for k in 20..100_000i64 {
                d.insert(k, k * 10).unwrap();
                op(format!("insert {k}"));
            }
        }
        "alloc" => {
            let l = list();
            l.append("x".repeat(100)).unwrap();
            op("append x*100");
            l.append(3).unwrap();
            op("append 3");
            arm();
            // The string's block: dies inside the allocator, holding the arena and list locks.
            let _ = l.append("y".repeat(100));
        }
        "set" => {
            let l = list();
            l.append(5).unwrap();
            op("append 5");
            arm();
            // A 100-byte string over an int: journaled, the cell written, dies before the
            // journal is cleared.
            let _ = l.set(1, "x".repeat(100));
        }
        "value" => {
            let v = ValueProxy::try_from(store.lookup("v").unwrap()).unwrap();
            v.set(7).unwrap();
            op("set 7");
            arm();
            // The new cell (owning a block) written to the copy that is not current; dies
            // before publishing it.
            let _ = v.set("y".repeat(100));
        }
        "replace" => {
            let d = DictProxy::try_from(store.lookup("d").unwrap()).unwrap();
            d.insert("c", 3).unwrap();
            op("insert c 3");
            arm();
            // A 100-byte string over the int of an existing key: journaled, the cell written,
            // dies before the journal is cleared.
            let _ = d.insert("a", "x".repeat(100));
        }
        "take" => {
            let l = list();
            l.append(3).unwrap();
            op("append 3");
            arm();
            // Body and array allocated, then dies creating the list: taking its slot (holding
            // the arena lock), or before its reference is recorded, by the failpoint armed.
            let _ = store.list([7, 8, 9]);
        }
        "drop" => {
            // Two handles of its own; dies dropping one of them.
            let a = list();
            let b = list();
            a.append(1).unwrap();
            op("append 1");
            arm();
            drop(b);
            drop(a);
        }
        "drop_last" => {
            // Takes over the binding's reference: its handle is the last one.
            let a = list();
            store.unbind("l").unwrap();
            op("unbind l");
            arm();
            drop(a);
        }
        "take_ref" => {
            let a = list();
            a.append(1).unwrap();
            op("append 1");
            arm();
            // A second reference of its own: dies taking it.
            let _b = list();
        }
        "fork" => {
            let a = list();
            let b = list();
            a.append(1).unwrap();
            op("append 1");
            // Dies in the fork handler, the first of its two references taken for the fork's
            // child and not yet recorded in the child's entry.
            arm();
            // SAFETY: the child only exits, without touching anything the fork could have left
            // locked.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: `_exit` is async-signal-safe.
                unsafe { libc::_exit(0) };
            }
            drop((a, b));
        }
        other => panic!("unknown role {other}"),
    }
    common::signal("MISSED");
}

/// The blocks in use now: payload offset → usable bytes.
fn blocks_in_use(name: &str) -> BTreeMap<u64, u64> {
    let raw = shmstore::segment::open(name).unwrap();
    let hdr: shmstore::header::Header = raw.read(shmstore::arena::Offset::new(0)).unwrap();
    let heap = shmstore::alloc::Heap::open(&raw, hdr.alloc_off).unwrap();
    heap.blocks()
        .unwrap()
        .into_iter()
        .filter(|b| b.2)
        .map(|b| (b.0, b.1))
        .collect()
}

/// The usable bytes an allocation of `request` bytes gets (a block is 16-byte granular, at
/// least 32 bytes with its header).
fn usable(request: u64) -> u64 {
    request.max(16).div_ceil(16) * 16
}

struct Fixture {
    name: String,
    store: Store,
    /// Blocks in use with no object alive (the parent's own process-table holdings).
    empty: BTreeMap<u64, u64>,
    _c: Cleanup,
}

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let name = unique(tag);
        let c = Cleanup(name.clone());
        let store = Store::create(&name, 4 << 20).unwrap();
        // An object made and dropped, so that the parent's holdings block exists.
        drop(store.list([0]).unwrap());
        let empty = blocks_in_use(&name);
        Fixture {
            name,
            store,
            empty,
            _c: c,
        }
    }

    /// Runs `role` in a child that stops at failpoint `fp`, kills it there, and returns the
    /// operations it reported complete.
    fn crash_child(&self, role: &str, fp: &str) -> Vec<String> {
        let mut child = spawn_env(role, &[&self.name], &[(ENV, fp)]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut ops = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            assert!(n > 0, "{role}: child ended before failpoint {fp}");
            let l = line.trim_end();
            if let Some(o) = l.strip_prefix("OP ") {
                ops.push(o.to_owned());
            } else if l == format!("FAILPOINT {fp}") {
                break;
            } else {
                assert_ne!(l, "MISSED", "{role}: the operation did not reach {fp}");
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        ops
    }

    /// After the first call took the lock over: reclaim, then a clean check with `objects`
    /// live objects and this process the only one attached.
    fn assert_recovered(&self, objects: u64) {
        self.store.reclaim().unwrap();
        let r = self.store.check().unwrap();
        assert!(r.is_ok(), "check after the crash: {:?}", r.problems);
        assert_eq!(r.objects, objects);
        assert_eq!(r.busy, 0);
        let procs = self.store.processes().unwrap();
        assert_eq!(procs.len(), 1, "{procs:?}");
        assert!(procs[0].alive && procs[0].pid == std::process::id());
        let s = self.store.stats().unwrap();
        assert_eq!(s.processes_attached, 1);
        assert_eq!(s.objects_live, objects);
    }

    /// With every object dropped: the blocks in use are the empty store's plus exactly the
    /// leaked allocations of `requests` bytes (the interrupted operation's unpublished blocks).
    fn assert_only_leaks(&self, requests: &[u64]) {
        assert_eq!(self.store.stats().unwrap().objects_live, 0);
        let now = blocks_in_use(&self.name);
        for (off, size) in &self.empty {
            assert_eq!(
                now.get(off),
                Some(size),
                "block {off:#x} of the empty store"
            );
        }
        let mut leaked: Vec<u64> = now
            .iter()
            .filter(|(off, _)| !self.empty.contains_key(off))
            .map(|(_, &size)| size)
            .collect();
        leaked.sort_unstable();
        let mut want: Vec<u64> = requests.iter().map(|&r| usable(r)).collect();
        want.sort_unstable();
        assert_eq!(
            leaked.len(),
            want.len(),
            "leaked {leaked:?}, expected {want:?}"
        );
        for (got, want) in leaked.iter().zip(&want) {
            // A free block whose rest would be too small to stand alone is taken whole: 16
            // bytes more.
            assert!(
                *got == *want || *got == *want + 16,
                "leaked {leaked:?}, expected {want:?}"
            );
        }
        let s = self.store.stats().unwrap();
        let empty_bytes: u64 = self.empty.values().map(|u| u + 16).sum();
        let leaked_bytes: u64 = leaked.iter().map(|u| u + 16).sum();
        assert_eq!(s.bytes_in_use, empty_bytes + leaked_bytes);
        assert_eq!(s.blocks_in_use, (self.empty.len() + leaked.len()) as u64);
        let r = self.store.check().unwrap();
        assert!(r.is_ok(), "{:?}", r.problems);
        // Mark and sweep gives the leaked blocks back: memory returns to the empty store's.
        let swept = self.store.repair().unwrap();
        assert_eq!(swept.freed_blocks, leaked.len() as u64);
        let s = self.store.stats().unwrap();
        assert_eq!(s.bytes_in_use, empty_bytes);
        assert_eq!(s.blocks_in_use, self.empty.len() as u64);
        assert_eq!(blocks_in_use(&self.name), self.empty);
        let r = self.store.check().unwrap();
        assert!(r.is_ok(), "{:?}", r.problems);
    }
}

fn ints(v: &[i64]) -> Value {
    Value::from(v.to_vec())
}

/// One list scenario: `initial` bound as "l", the child's `role` killed at `fp`; the child must
/// report `ops`, after which the list must read `expected`; `leaks` are the requests of the
/// blocks the interrupted operation leaves allocated.
fn list_scenario(
    role: &str,
    fp: &str,
    initial: &[i64],
    ops: &[&str],
    expected: Value,
    leaks: &[u64],
) {
    let f = Fixture::new(role);
    let l = f.store.list(initial.to_vec()).unwrap();
    f.store.bind("l", &l).unwrap();
    let repairs = f.store.stats().unwrap().repairs;
    let done = f.crash_child(role, fp);
    assert_eq!(done, ops, "completed operations the child reported");
    // The next call takes the lock over (repairing) and sees every completed operation.
    assert_eq!(l.get_value().unwrap(), expected);
    assert!(
        f.store.stats().unwrap().repairs > repairs,
        "no repair counted"
    );
    f.assert_recovered(1);
    // The list keeps working.
    l.append(1000).unwrap();
    l.insert(0, 1001).unwrap();
    l.reverse().unwrap();
    assert_eq!(l.len().unwrap(), expected_len(&expected) + 2);
    let r = f.store.check().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    f.store.unbind("l").unwrap();
    drop(l);
    f.assert_only_leaks(leaks);
}

fn expected_len(v: &Value) -> usize {
    match v {
        Value::List(items) => items.len(),
        other => panic!("not a list: {other:?}"),
    }
}

#[test]
fn killed_in_an_append_before_the_length_is_published() {
    // The grow the append needed completed; the cell written past the end is an int (no
    // block), so nothing at all leaks.
    list_scenario(
        "append",
        "list.append.before_publish",
        &[0, 1, 2, 3, 4],
        &[
            "append 5", "append 6", "append 7", "append 8", "append 9", "set 0 -1",
        ],
        ints(&[-1, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        &[],
    );
}

#[test]
fn killed_while_growing_a_list_after_allocating_the_new_array() {
    let ops: Vec<String> = (8..16).map(|i| format!("append {i}")).collect();
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    // len 16 == cap 16: the new array has room for 32 cells of 16 bytes.
    list_scenario(
        "grow",
        "list.grow.after_alloc",
        &(0..8).collect::<Vec<_>>(),
        &ops,
        ints(&(0..16).collect::<Vec<_>>()),
        &[32 * 16],
    );
}

#[test]
fn killed_in_an_insert_before_the_rebuilt_array_is_published() {
    // The interrupted insert(1, 102) had built an array of 9 cells.
    list_scenario(
        "insert",
        "list.rebuild.before_publish",
        &[0, 1, 2, 3, 4, 5],
        &["insert 0 100", "insert 3 101"],
        ints(&[100, 0, 1, 101, 2, 3, 4, 5]),
        &[9 * 16],
    );
}

#[test]
fn killed_in_a_sort_before_the_sorted_array_is_published() {
    list_scenario(
        "sort",
        "list.rebuild.before_publish",
        &[5, 3, 9, 1, 7],
        &["append 4", "sort", "append 2"],
        ints(&[1, 3, 4, 5, 7, 9, 2]),
        &[7 * 16],
    );
}

#[test]
fn killed_in_the_middle_of_an_allocation_holding_the_arena_lock() {
    // The block for the 100-byte string was taken off its free list and marked in use; the
    // allocator's dirty word was still set. The next arena lock repairs the heap.
    list_scenario(
        "alloc",
        "alloc.mid",
        &[0, 1, 2],
        &["append x*100", "append 3"],
        Value::List(vec![
            0.into(),
            1.into(),
            2.into(),
            "x".repeat(100).into(),
            3.into(),
        ]),
        &[100],
    );
}

#[test]
fn killed_replacing_a_list_item_before_the_journal_is_cleared() {
    // The journal rolls the item back to the int; the string's block leaks until the sweep.
    list_scenario(
        "set",
        "list.set.before_journal_clear",
        &[0, 1, 2],
        &["append 5"],
        ints(&[0, 1, 2, 5]),
        &[100],
    );
}

#[test]
fn killed_setting_a_value_before_the_new_copy_is_published() {
    let f = Fixture::new("value");
    let v = f.store.value(1).unwrap();
    f.store.bind("v", &v).unwrap();
    let repairs = f.store.stats().unwrap().repairs;
    let done = f.crash_child("value", "value.set.before_publish");
    assert_eq!(done, ["set 7"]);
    // The lock-free read finds the write left open and falls back to the lock, which it takes
    // over: the completed set is there, the interrupted one is not.
    assert_eq!(v.get().unwrap(), Value::Int(7));
    assert!(
        f.store.stats().unwrap().repairs > repairs,
        "no repair counted"
    );
    f.assert_recovered(1);
    // The value keeps working, lock-free reads included.
    v.set("z".repeat(30)).unwrap();
    assert_eq!(v.get().unwrap(), Value::from("z".repeat(30)));
    v.set(8).unwrap();
    assert_eq!(v.get().unwrap(), Value::Int(8));
    f.store.unbind("v").unwrap();
    drop(v);
    f.assert_only_leaks(&[100]);
}

/// The table block `htable` allocates for a dict table of `2**log2` index slots.
fn dict_table_bytes(live: u64) -> u64 {
    // insert grows to max(2 * live, live + 1) entries; the index is the smallest power of two
    // (at least 8) whose two thirds hold them; a block is a 64-byte header, 4 bytes per index
    // slot and 48 bytes per entry (hash, live flag, key cell, value cell).
    let need = (2 * live).max(live + 1);
    let size = (3..)
        .map(|l| 1u64 << l)
        .find(|s| s * 2 / 3 >= need)
        .unwrap();
    64 + size * 4 + size * 2 / 3 * 48
}

#[test]
fn killed_while_a_dict_grows_its_table_before_publishing_it() {
    let f = Fixture::new("dict");
    let d = f.store.dict([("a", 1)]).unwrap();
    f.store.bind("d", &d).unwrap();
    let repairs = f.store.stats().unwrap().repairs;
    let done = f.crash_child("dict", "htable.grow.before_publish");
    assert!(done.len() >= 20, "{done:?}");
    let mut want = vec![(Value::from("a"), Value::from(1))];
    for (i, o) in done.iter().enumerate() {
        assert_eq!(o, &format!("insert {i}"));
        want.push((Value::from(i as i64), Value::from(i as i64 * 10)));
    }
    // The lock is taken over; every completed insert is there (in insertion order), the
    // interrupted one is not.
    let got = d.items().unwrap();
    assert!(f.store.stats().unwrap().repairs > repairs);
    assert_eq!(got, want);
    assert!(!d.contains(done.len() as i64).unwrap());
    f.assert_recovered(1);
    // The dict keeps working, growth included.
    for k in 0..200i64 {
        d.insert(format!("more{k}"), k).unwrap();
    }
    assert_eq!(d.len().unwrap(), want.len() + 200);
    let live = want.len() as u64;
    f.store.unbind("d").unwrap();
    drop(d);
    f.assert_only_leaks(&[dict_table_bytes(live)]);
}

#[test]
fn killed_replacing_a_dict_value_before_the_journal_is_cleared() {
    let f = Fixture::new("replace");
    let d = f.store.dict([("a", 1), ("b", 2)]).unwrap();
    f.store.bind("d", &d).unwrap();
    let repairs = f.store.stats().unwrap().repairs;
    let done = f.crash_child("replace", "htable.replace.before_journal_clear");
    assert_eq!(done, ["insert c 3"]);
    // The lock-free get finds the write left open and falls back to the lock, which it takes
    // over: the journal rolls "a" back to its int.
    assert_eq!(d.get("a").unwrap(), Some(Value::Int(1)));
    assert!(
        f.store.stats().unwrap().repairs > repairs,
        "no repair counted"
    );
    let want: Vec<(Value, Value)> = [("a", 1), ("b", 2), ("c", 3)]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert_eq!(d.items().unwrap(), want);
    f.assert_recovered(1);
    // The dict keeps working.
    d.insert("a", "y".repeat(40)).unwrap();
    d.insert("b", 20).unwrap();
    assert_eq!(d.get("a").unwrap(), Some(Value::from("y".repeat(40))));
    assert_eq!(d.get_borrowed("b").unwrap(), Some(Value::Int(20)));
    f.store.unbind("d").unwrap();
    drop(d);
    f.assert_only_leaks(&[100]);
}

fn take_scenario(reuse_a_freed_slot: bool) {
    let f = Fixture::new("take");
    let l = f.store.list([0, 1, 2]).unwrap();
    f.store.bind("l", &l).unwrap();
    if reuse_a_freed_slot {
        // A freed slot on the free-slot list: the child's take pops it.
        drop(f.store.list([5]).unwrap());
    }
    let slots_used = f.store.stats().unwrap().objects_live;
    let done = f.crash_child("take", "table.take.mid");
    assert_eq!(done, ["append 3"]);
    assert_eq!(l.get_value().unwrap(), ints(&[0, 1, 2, 3]));
    // The next arena lock is taken over: the heap is repaired, the slot put back on the list.
    f.assert_recovered(slots_used);
    let again = f.store.list([4, 5]).unwrap();
    assert_eq!(again.get_value().unwrap(), ints(&[4, 5]));
    let r = f.store.check().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    drop(again);
    f.store.unbind("l").unwrap();
    drop(l);
    // The new list's body (32 bytes) and its array of 3 cells were allocated and never owned.
    f.assert_only_leaks(&[32, 3 * 16]);
}

#[test]
fn killed_taking_a_never_used_slot_of_the_object_table() {
    take_scenario(false);
}

#[test]
fn killed_taking_a_freed_slot_off_the_free_slot_list() {
    take_scenario(true);
}

const DROP_STEPS: [&str; 3] = [
    "handle.drop.after_intent",
    "handle.drop.after_decrement",
    "handle.drop.after_row",
];

/// The refcount of the object `p` names.
fn refcount(store: &Store, p: &ListProxy) -> u32 {
    let slot = p.token().slot;
    let o = store.objects().unwrap();
    o.iter().find(|o| o.slot == slot).unwrap().refcount
}

#[test]
fn killed_dropping_one_of_two_handles_at_each_step() {
    for fp in DROP_STEPS {
        let f = Fixture::new("drop");
        let l = f.store.list([0]).unwrap();
        f.store.bind("l", &l).unwrap();
        let done = f.crash_child("drop", fp);
        assert_eq!(done, ["append 1"], "{fp}");
        // Before the reclaim: the binding's, ours, and the child's (one or two).
        let rc = refcount(&f.store, &l);
        assert!(rc == 3 || rc == 4, "{fp}: refcount {rc}");
        f.assert_recovered(1);
        assert_eq!(refcount(&f.store, &l), 2, "{fp}: the binding's and ours");
        assert_eq!(l.get_value().unwrap(), ints(&[0, 1]));
        f.store.unbind("l").unwrap();
        drop(l);
        f.assert_only_leaks(&[]);
    }
}

#[test]
fn killed_dropping_a_handle_then_a_peer_drops_the_same_object() {
    // The child's decrement landed and marked the slot; our own drop replaces the marker (and
    // says so in the child's entry) before the reclaim.
    for fp in DROP_STEPS {
        let f = Fixture::new("dropmark");
        let l = f.store.list([0]).unwrap();
        f.store.bind("l", &l).unwrap();
        let mine = ListProxy::try_from(f.store.lookup("l").unwrap()).unwrap();
        f.crash_child("drop", fp);
        drop(mine);
        drop(ListProxy::try_from(f.store.lookup("l").unwrap()).unwrap());
        f.assert_recovered(1);
        assert_eq!(refcount(&f.store, &l), 2, "{fp}: the binding's and ours");
        f.store.unbind("l").unwrap();
        drop(l);
        f.assert_only_leaks(&[]);
    }
}

#[test]
fn killed_dropping_the_last_handle_at_each_step_frees_the_object() {
    for fp in DROP_STEPS {
        let f = Fixture::new("droplast");
        let l = f.store.list(["x".repeat(100)]).unwrap();
        f.store.bind("l", &l).unwrap();
        drop(l);
        let done = f.crash_child("drop_last", fp);
        assert_eq!(done, ["unbind l"], "{fp}");
        assert_eq!(f.store.stats().unwrap().objects_live, 1, "{fp}");
        f.assert_recovered(0);
        f.assert_only_leaks(&[]);
    }
}

const TAKE_STEPS: [&str; 2] = ["handle.take.after_increment", "handle.take.after_row"];

#[test]
fn killed_taking_a_reference_at_each_step() {
    for fp in TAKE_STEPS {
        for peer_takes_too in [false, true] {
            let f = Fixture::new("take_ref");
            let l = f.store.list([0]).unwrap();
            f.store.bind("l", &l).unwrap();
            let done = f.crash_child("take_ref", fp);
            assert_eq!(done, ["append 1"], "{fp}");
            // The binding's, ours, the child's first and its second (taken, not yet recorded).
            assert_eq!(refcount(&f.store, &l), 4, "{fp}");
            if peer_takes_too {
                // Our own take replaces the child's marker, and says so in its entry.
                drop(f.store.lookup("l").unwrap());
            }
            f.assert_recovered(1);
            assert_eq!(refcount(&f.store, &l), 2, "{fp}: the binding's and ours");
            f.store.unbind("l").unwrap();
            drop(l);
            f.assert_only_leaks(&[]);
        }
    }
}

/// A child killed at failpoint `fp` while creating a list: `live` objects (when given) before
/// the recovery, and the blocks `leaks` left after it.
fn killed_creating_an_object(tag: &str, fp: &str, live: Option<u64>, leaks: &[u64]) {
    let f = Fixture::new(tag);
    let l = f.store.list([0]).unwrap();
    f.store.bind("l", &l).unwrap();
    let done = f.crash_child("take", fp);
    assert_eq!(done, ["append 3"]);
    if let Some(live) = live {
        assert_eq!(f.store.stats().unwrap().objects_live, live, "{fp}");
    }
    f.assert_recovered(1);
    f.store.unbind("l").unwrap();
    drop(l);
    f.assert_only_leaks(leaks);
}

#[test]
fn killed_creating_an_object_before_it_is_published() {
    // The arena lock is taken over: the slot goes back on the free list. The new list's body
    // (32 bytes) and its array of 3 cells were allocated and never owned.
    killed_creating_an_object("create_pub", "table.take.after_record", None, &[32, 3 * 16]);
}

#[test]
fn killed_creating_an_object_before_its_reference_is_recorded() {
    // Published, with the dead child's reference only: the reclaim frees it.
    killed_creating_an_object("create_row", "handle.create.before_row", Some(2), &[]);
}

#[test]
fn killed_in_the_fork_handler_taking_the_childs_references() {
    let f = Fixture::new("forkprep");
    let l = f.store.list([0]).unwrap();
    f.store.bind("l", &l).unwrap();
    let done = f.crash_child("fork", "handle.take.after_increment");
    assert_eq!(done, ["append 1"]);
    // The binding's, ours, the child's two, and the one the handler took for the fork's child.
    assert_eq!(refcount(&f.store, &l), 5);
    // Two dead entries: the child's own and the FORKING one the handler was filling.
    f.assert_recovered(1);
    assert_eq!(refcount(&f.store, &l), 2, "the binding's and ours");
    f.store.unbind("l").unwrap();
    drop(l);
    f.assert_only_leaks(&[]);
}

#[test]
fn a_reclaimer_killed_at_each_step_leaves_the_dead_entry_exact_for_the_next() {
    // A first child dies in the middle of dropping one of its two references, or of taking a
    // second; a second child dies reclaiming it, at `fp` of the reclaim's own drops.
    let first = [
        ("drop", "handle.drop.after_intent"),
        ("take_ref", "handle.take.after_increment"),
    ];
    for (role, dies_at) in first {
        for fp in DROP_STEPS {
            let f = Fixture::new("reclaimer");
            let l = f.store.list([0]).unwrap();
            f.store.bind("l", &l).unwrap();
            f.crash_child(role, dies_at);
            f.crash_child("reclaim", fp);
            f.assert_recovered(1);
            assert_eq!(
                refcount(&f.store, &l),
                2,
                "{role} {fp}: the binding's and ours"
            );
            f.store.unbind("l").unwrap();
            drop(l);
            f.assert_only_leaks(&[]);
        }
    }
}
