//! The invariants of a bare [`Instance`], which [`Plugin`](crate::Plugin)
//! hides: a limit or a bad pointer poisons it, and a poisoned instance
//! refuses every later call.

use crate::error::{Error, Limit};
use crate::string_abi::StringAbi;
use crate::{EngineOptions, Policy, Runtime};

fn instance(wat: &str, policy: Policy) -> super::Instance {
    let rt = Runtime::new(EngineOptions::default()).expect("runtime");
    rt.load_bytes("test", wat.as_bytes(), policy)
        .expect("load")
        .instantiate()
        .expect("instantiate")
}

fn assert_refuses_calls(i: &mut super::Instance) {
    assert!(i.is_poisoned());
    match i.answer() {
        Err(Error::Other(e)) => assert!(e.to_string().contains("unusable"), "{e}"),
        other => panic!("a poisoned instance served a call: {other:?}"),
    }
}

#[test]
fn a_memory_limit_poisons_and_memory_stays_under_it() {
    let max = 4u64 << 20;
    let wat = include_str!("../../tests/hostile/memory_bomb.wat");
    let mut i = instance(wat, Policy::default().with_max_memory(max));
    match i.greet(StringAbi::C, "World") {
        Err(Error::LimitExceeded(Limit::Memory(m))) => assert_eq!(m, max),
        other => panic!("expected the 4 MiB memory limit, got {other:?}"),
    }
    assert!(i.memory_size() as u64 <= max, "{} bytes", i.memory_size());
    assert_refuses_calls(&mut i);
}

/// A bad pointer is found by the host's own check, not by wasmtime: it
/// poisons all the same.
#[test]
fn a_bad_pointer_poisons() {
    let wat = include_str!("../../tests/hostile/pair_out_of_bounds.wat");
    let mut i = instance(wat, Policy::default());
    match i.greet(StringAbi::Rust, "World") {
        Err(Error::BadPointer(_)) => {}
        other => panic!("expected a bad pointer, got {other:?}"),
    }
    assert_refuses_calls(&mut i);
}
