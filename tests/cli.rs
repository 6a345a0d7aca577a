//! The `shmstore` tool, driven as a separate process against real stores made here.

mod common;

use std::io::BufReader;
use std::process::{Command, Output};

use common::{spawn, unique, wait_for_line, Cleanup};
use serde_json::Value as Json;
use shmstore::{Store, Value};

/// Child roles: this test binary re-run by `common::spawn`.
#[test]
#[ignore]
fn child_main() {
    let Some((role, args)) = common::child_role() else {
        return;
    };
    match role.as_str() {
        // args: store, n — take n proxies (half new lists, half attached to "jobs"), then wait
        // to be killed.
        "hoard" => {
            let store = Store::open(&args[0]).unwrap();
            let n: usize = args[1].parse().unwrap();
            let jobs = store.lookup("jobs").unwrap();
            let mut keep = Vec::new();
            for i in 0..n {
                if i % 2 == 0 {
                    keep.push(shmstore::Proxy::from(store.list([i as i64]).unwrap()));
                } else {
                    keep.push(store.attach(&jobs.token()).unwrap());
                }
            }
            common::signal("HOARDING");
            loop {
                std::thread::park();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmstore"))
        .args(args)
        .output()
        .expect("run shmstore")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited by a signal")
}

#[test]
fn ls_lists_the_store_and_its_json_parses() {
    let name = unique("ls");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 2 << 20).unwrap();
    let _l = store.list(0..10).unwrap();
    let _d = store.dict([("k", 1)]).unwrap();

    let o = run(&["ls"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{name} not listed:\n{}", stdout(&o)));
    assert!(line.contains("2.0 MiB"), "{line}");

    let o = run(&["ls", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let all = json(&o);
    let e = all
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {all}"));
    let st = store.stats().unwrap();
    assert_eq!(e["size"], 2 << 20);
    assert_eq!(e["objects"], 2);
    assert_eq!(e["processes"], 1);
    assert_eq!(e["bytes_in_use"], st.bytes_in_use);
    assert!(e.get("error").is_none(), "{e}");
    // Looking did not join the store.
    assert_eq!(store.stats().unwrap().processes_attached, 1);
}

#[test]
fn stat_shows_header_objects_processes_and_bound_names() {
    let name = unique("stat");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 2 << 20).unwrap();
    let l = store.list(0..10).unwrap();
    let d = store.dict([("k", 1)]).unwrap();
    store.bind("jobs", &l).unwrap();
    store.bind("settings", &d).unwrap();
    let me = std::process::id();

    let o = run(&["stat", &name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "names (2)",
        "  jobs",
        "  settings",
        &format!("pid {me}"),
        "alive",
        "objects (2)",
        &format!("{:016x}", store.id()),
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }

    // The list's lock is held by this thread while the tool looks.
    let s = l
        .with_lock(|_| Ok(json(&run(&["stat", "--json", &name]))))
        .unwrap();
    assert_eq!(s["names"], serde_json::json!(["jobs", "settings"]));
    assert_eq!(s["header"]["size"], 2 << 20);
    assert_eq!(s["header"]["creator_pid"], me);
    assert_eq!(s["header"]["store_id"], format!("{:016x}", store.id()));
    let procs = s["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(procs[0]["pid"], me);
    assert_eq!(procs[0]["alive"], true);
    let objs = s["objects"].as_array().unwrap();
    let list = objs
        .iter()
        .find(|o| o["slot"] == l.token().slot)
        .expect("list in the object table");
    assert_eq!(list["type"], "list");
    assert_eq!(list["refcount"], 2, "the proxy and the binding");
    assert!(list["body_size"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(list["lock_owner"], shmstore::process::current_tid());
    let dict = objs.iter().find(|o| o["slot"] == d.token().slot).unwrap();
    assert_eq!(dict["type"], "dict");
    assert_eq!(dict["lock"], "free");
    let a = &s["allocator"];
    let in_use: u64 = a["size_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bytes_in_use"].as_u64().unwrap())
        .sum();
    assert_eq!(a["bytes_in_use"], in_use);
    assert_eq!(a["bytes_in_use"], store.stats().unwrap().bytes_in_use);
}

#[test]
fn check_exits_0_on_a_sound_store_and_1_with_a_report_on_a_scribbled_body() {
    let name = unique("check");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 2 << 20).unwrap();
    let l = store
        .list(vec![Value::from("a long string needing a block"), 1.into()])
        .unwrap();

    let o = run(&["check", &name]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("ok: 1 objects"), "{}", stdout(&o));
    let r = json(&run(&["check", "--json", &name]));
    assert_eq!(r["ok"], true);
    assert_eq!(r["problems"], serde_json::json!([]));

    // Scribble over the list's body: its length beyond its capacity (as tests/check.rs).
    let raw = shmstore::segment::open(&name).unwrap();
    let hdr = store.header();
    let slot = l.token().slot;
    let slot_off = hdr.table_off + u64::from(slot) * shmstore::table::SLOT_SIZE;
    let body = raw.load_u64(slot_off + shmstore::table::BODY_AT).unwrap();
    let saved = raw.load_u64(body).unwrap();
    raw.store_u64(body, 1 << 40).unwrap();

    let o = run(&["check", &name]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|p| p.starts_with("problem:") && p.contains(&format!("slot {slot}"))),
        "{text}"
    );
    assert!(text.contains("DAMAGED"), "{text}");
    let o = run(&["check", "--json", &name]);
    assert_eq!(code(&o), 1);
    let r = json(&o);
    assert_eq!(r["ok"], false);
    assert!(!r["problems"].as_array().unwrap().is_empty());

    raw.store_u64(body, saved).unwrap();
    assert_eq!(code(&run(&["check", &name])), 0);
}

#[test]
fn reclaim_gives_back_what_a_killed_child_held() {
    let name = unique("reclaim");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 8 << 20).unwrap();
    let l = store.list([1, 2, 3]).unwrap();
    store.bind("jobs", &l).unwrap();
    let base = store.stats().unwrap();

    let mut child = spawn("hoard", &[&name, "100"]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert!(wait_for_line(&mut out, "HOARDING"), "child did not start");
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();

    // stat shows the dead process and what it still holds.
    let s = json(&run(&["stat", "--json", &name]));
    let dead = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("the child is still in the process table")
        .clone();
    assert_eq!(dead["alive"], false);
    assert_eq!(dead["references"], 101, "50 lists, 50 attached, the lookup");
    assert!(stdout(&run(&["stat", &name])).contains("DEAD"));
    assert_eq!(
        code(&run(&["check", &name])),
        1,
        "a dead attachment is reported"
    );

    let o = run(&["reclaim", "--json", &name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["processes"], 1);
    assert_eq!(r["references"], 101);
    assert_eq!(r["objects_freed"], 50);
    let after = store.stats().unwrap();
    assert_eq!(after.bytes_in_use, base.bytes_in_use);
    assert_eq!(after.objects_live, base.objects_live);
    assert_eq!(after.processes_attached, 1);
    assert!(r["bytes_freed"].as_u64().is_some_and(|b| b > 0));
    assert_eq!(l.len().unwrap(), 3);

    let o = run(&["reclaim", &name]);
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).starts_with("reclaimed 0 dead processes and 0 references"),
        "{}",
        stdout(&o)
    );
    assert_eq!(code(&run(&["check", &name])), 0);
}

#[test]
fn rm_removes_the_store_and_a_second_rm_is_not_found() {
    let name = unique("rm");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();

    let o = run(&["rm", &name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(matches!(
        Store::open_unattached(&name),
        Err(shmstore::Error::NotFound(_))
    ));
    // The attached process keeps working on its mapping.
    assert_eq!(store.list([1]).unwrap().len().unwrap(), 1);

    let o = run(&["rm", &name]);
    assert_eq!(code(&o), 2);
    assert_eq!(stderr(&o), format!("shmstore: error: not found: {name}\n"));
    let o = run(&["rm", "--json", &name]);
    assert_eq!(code(&o), 2);
    assert_eq!(json(&o)["kind"], "NotFound");
}

#[test]
fn rm_refuses_a_segment_that_is_not_ours_unless_forced() {
    let name = unique("notours");
    let _c = Cleanup(name.clone());
    let seg = shmstore::segment::create(&name, 4096, 0o600).unwrap();
    seg.copy_in(0, b"NOTOURS!").unwrap();

    let o = run(&["rm", &name]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("is not a shmstore segment"),
        "{}",
        stderr(&o)
    );
    assert!(shmstore::segment::open(&name).is_ok(), "still there");
    assert!(
        !stdout(&run(&["ls"])).contains(&name),
        "ls lists only our segments"
    );
    assert_eq!(code(&run(&["rm", "--force", &name])), 0);
    assert!(shmstore::segment::open(&name).is_err());
}

#[test]
fn a_missing_store_or_bad_usage_exits_2_with_one_line() {
    let name = unique("missing");
    for cmd in ["stat", "check", "reclaim", "rm"] {
        let o = run(&[cmd, &name]);
        assert_eq!(code(&o), 2, "{cmd}");
        assert!(o.stdout.is_empty(), "{cmd}: {}", stdout(&o));
        assert_eq!(
            stderr(&o),
            format!("shmstore: error: not found: {name}\n"),
            "{cmd}"
        );
    }
    let o = run(&["stat", "bad/name"]);
    assert_eq!(code(&o), 2);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid name"));
    // Usage errors: clap's message, status 2, no panic. (No arguments at all runs the demo.)
    for args in [&["frobnicate"][..], &["stat"]] {
        let o = run(args);
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

#[test]
fn check_repair_frees_a_leaked_block_and_then_reports_a_sound_store() {
    let name = unique("clirepair");
    let _c = Cleanup(name.clone());
    let store = Store::create(&name, 1 << 20).unwrap();
    let _l = store.list(["kept"]).unwrap();
    let base = store.stats().unwrap().bytes_in_use;
    let raw = shmstore::segment::open(&name).unwrap();
    let heap = shmstore::alloc::Heap::open(&raw, shmstore::header::ALLOC_OFF).unwrap();
    heap.alloc(500).unwrap();
    let o = run(&["check", &name, "--repair", "--json"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let j = json(&o);
    assert_eq!(j["repaired"]["blocks_freed"], 1);
    assert_eq!(store.stats().unwrap().bytes_in_use, base);
    assert_eq!(_l.get(0).unwrap(), Value::from("kept"));
}

#[test]
fn the_demo_counts_words_across_processes_and_agrees_with_one_process() {
    let o = run(&[
        "demo",
        "--workers",
        "2",
        "--lines",
        "4000",
        "--chunk",
        "500",
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("counts identical to the single-process run"),
        "{out}"
    );
    assert!(out.contains("top words of"), "{out}");
}
