#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_app::fuzzing::guest_memory(data));
