//! Replays the fuzz targets' committed inputs on stable Rust, without the fuzzer: every file in
//! `tests/fuzz_corpus/<target>/` (small seeds) and `tests/fuzz_regressions/<target>/` (inputs
//! that once found a bug) goes through the same function the fuzz target runs
//! (`tests/fuzz_logic/mod.rs`), which panics on a failed invariant.

mod fuzz_logic;

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut n = 0;
    for dir in ["fuzz_corpus", "fuzz_regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = std::fs::read(&p).expect("read an input");
            eprintln!("replaying {}", p.display());
            f(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for {target}");
}

#[test]
fn dispatch_inputs() {
    replay("dispatch", fuzz_logic::dispatch);
}

#[test]
fn ops_model_inputs() {
    replay("ops_model", fuzz_logic::ops_model);
}

#[test]
fn arena_bytes_inputs() {
    replay("arena_bytes", fuzz_logic::arena_bytes);
}

#[test]
fn alloc_inputs() {
    replay("alloc", fuzz_logic::alloc);
}

/// Runs each target on a few thousand pseudo-random inputs, so `cargo test` exercises them
/// beyond the corpus even without the fuzzer.
#[test]
fn random_inputs() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..200 {
        let len = (next() % 600) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match i % 4 {
            0 => fuzz_logic::dispatch(&data),
            1 => fuzz_logic::ops_model(&data),
            2 => fuzz_logic::arena_bytes(&data),
            _ => fuzz_logic::alloc(&data),
        }
    }
}
