//! The `ops_model` target: see `ops_model` in tests/fuzz_logic/mod.rs (shared with tests/fuzz_replay.rs).
#![no_main]

#[path = "../../tests/fuzz_logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| logic::ops_model(data));
