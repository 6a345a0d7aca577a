//! The `arena_bytes` target: see `arena_bytes` in tests/fuzz_logic/mod.rs (shared with tests/fuzz_replay.rs).
#![no_main]

#[path = "../../tests/fuzz_logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::arena_bytes(data));
