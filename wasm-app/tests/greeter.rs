//! The greeter ABIs against the real `wasm_module1` guest.

mod common;

use wasm_app::{Error, Plugin, StringAbi};

fn expected(name: &str) -> String {
    format!("Hello World, {name}!")
}

#[test]
fn answer_is_42() {
    let mut p = Plugin::new(common::greeter());
    assert_eq!(p.answer().expect("answer"), 42);
}

#[test]
fn both_abis_greet_ascii_multibyte_empty_and_64k_names() {
    let mut p = Plugin::new(common::greeter());
    let long: String = "Zoë世界🦀".chars().cycle().take(64 * 1024).collect();
    assert!(long.len() > 64 * 1024);
    for name in ["Rust", "Zoë", "世界", "🦀 crab", "", long.as_str()] {
        for abi in [StringAbi::C, StringAbi::Rust] {
            let got = p.greet(abi, name).expect("greet");
            assert_eq!(
                got,
                expected(name),
                "abi {abi}, name of {} bytes",
                name.len()
            );
        }
    }
}

#[test]
fn nul_in_c_name_is_refused_before_calling_the_guest() {
    let mut p = Plugin::new(common::greeter());
    match p.greet(StringAbi::C, "a\0b") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("NUL"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // The Rust ABI carries lengths, so NUL is just a character there.
    assert_eq!(
        p.greet(StringAbi::Rust, "a\0b").expect("greet"),
        expected("a\0b")
    );
}

#[test]
fn many_calls_do_not_grow_guest_memory() {
    let mut p = Plugin::new(common::greeter());
    // Warm up: the guest allocator reaches its working size.
    for _ in 0..1_000 {
        p.greet(StringAbi::Rust, "warm").expect("greet");
        p.greet(StringAbi::C, "warm").expect("greet");
    }
    let before = p.guest().expect("guest").memory_size();
    for i in 0..50_000 {
        let name = if i % 2 == 0 { "Rust" } else { "Zoë世界" };
        assert_eq!(
            p.greet(StringAbi::Rust, name).expect("rust greet"),
            expected(name)
        );
        assert_eq!(
            p.greet(StringAbi::C, name).expect("c greet"),
            expected(name)
        );
    }
    let after = p.guest().expect("guest").memory_size();
    assert_eq!(
        before, after,
        "guest memory grew over 100 000 calls: a leak"
    );
}
