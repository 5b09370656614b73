//! The greeter ABIs against every greeter guest: `wasm_module1` (Rust),
//! `wasm_module_c` (C) and `wasm_component_greeter` (a component, whose one
//! WIT `greet` serves both ABIs), which must behave the same.

mod common;

use wasm_app::{Error, Module, Plugin, StringAbi};
use wasmtime::{Engine, Instance, Linker, Store, TypedFunc, WasmParams, WasmResults};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::WasiCtxBuilder;

fn expected(name: &str) -> String {
    format!("Hello World, {name}!")
}

#[test]
fn answer_is_42() {
    for (module, loaded) in common::greeter_modules() {
        let mut p = Plugin::new(loaded);
        assert_eq!(p.answer().expect("answer"), 42, "module {module}");
    }
}

#[test]
fn both_abis_greet_ascii_multibyte_empty_and_64k_names() {
    let long: String = "Zoë世界🦀".chars().cycle().take(64 * 1024).collect();
    assert!(long.len() > 64 * 1024);
    for (module, loaded) in common::greeter_modules() {
        let mut p = Plugin::new(loaded);
        for name in ["Rust", "Zoë", "世界", "🦀 crab", "", long.as_str()] {
            for abi in [StringAbi::C, StringAbi::Rust] {
                let got = p
                    .greet(abi, name)
                    .unwrap_or_else(|e| panic!("module {module}, abi {abi}: {e}"));
                assert_eq!(
                    got,
                    expected(name),
                    "module {module}, abi {abi}, name of {} bytes",
                    name.len()
                );
            }
        }
    }
}

#[test]
fn nul_in_c_name_is_refused_before_calling_the_guest() {
    for (module, loaded) in common::greeter_modules() {
        let mut p = Plugin::new(loaded);
        match p.greet(StringAbi::C, "a\0b") {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("NUL"), "module {module}: {m}"),
            other => panic!("module {module}: expected InvalidArgument, got {other:?}"),
        }
        // The Rust ABI carries lengths, so NUL is just a character there.
        assert_eq!(
            p.greet(StringAbi::Rust, "a\0b").expect("greet"),
            expected("a\0b"),
            "module {module}"
        );
    }
}

#[test]
fn many_calls_do_not_grow_guest_memory() {
    for (module, loaded) in common::greeter_modules() {
        let mut p = Plugin::new(loaded);
        // Warm up: the guest allocator reaches its working size.
        for _ in 0..1_000 {
            p.greet(StringAbi::Rust, "warm").expect("greet");
            p.greet(StringAbi::C, "warm").expect("greet");
        }
        let before = p.memory_size().expect("guest");
        assert!(before > 0, "module {module}: memory size unknown");
        for i in 0..50_000 {
            let name = if i % 2 == 0 { "Rust" } else { "Zoë世界" };
            assert_eq!(
                p.greet(StringAbi::Rust, name).expect("rust greet"),
                expected(name),
                "module {module}"
            );
            assert_eq!(
                p.greet(StringAbi::C, name).expect("c greet"),
                expected(name),
                "module {module}"
            );
        }
        let after = p.memory_size().expect("guest");
        // For a component, `memory_size` is its largest memory as the
        // limiter saw it grow: a leak grows it all the same.
        assert_eq!(
            before, after,
            "module {module}: guest memory grew over 100 000 calls: a leak"
        );
    }
}

/// Instantiates `loaded` with wasmtime directly, to reach the raw exports
/// (`wasm_deallocate`, ...) the public API keeps private. `None` for a
/// component: it has no allocator exports (the canonical ABI moves its
/// strings), so the raw-ABI tests below do not apply to it.
fn raw_instance(module: &str, loaded: &Module) -> Option<(Store<WasiP1Ctx>, Instance)> {
    if loaded.is_component() {
        return None;
    }
    // The module's name is the path it was loaded from.
    let engine = &Engine::default();
    let core = wasmtime::Module::from_file(engine, loaded.name())
        .unwrap_or_else(|e| panic!("module {module}: {e}"));
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |s| s).expect("link WASI");
    let mut store = Store::new(engine, WasiCtxBuilder::new().build_p1());
    let instance = linker
        .instantiate(&mut store, &core)
        .unwrap_or_else(|e| panic!("module {module}: {e}"));
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, wasm_abi::INITIALIZE) {
        init.call(&mut store, ()).expect("_initialize");
    }
    Some((store, instance))
}

fn func<P: WasmParams, R: WasmResults>(
    store: &mut Store<WasiP1Ctx>,
    instance: &Instance,
    name: &str,
) -> TypedFunc<P, R> {
    instance
        .get_typed_func::<P, R>(store, name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn deallocate_refuses_unknown_pointers_and_double_frees() {
    for (module, loaded) in common::greeter_modules() {
        let Some((mut store, instance)) = raw_instance(module, &loaded) else {
            continue; // a component: no raw ABI exports
        };
        let alloc = func::<i32, i32>(&mut store, &instance, wasm_abi::ALLOCATE);
        let free = func::<i32, i32>(&mut store, &instance, wasm_abi::DEALLOCATE);
        let mut call = |f: &TypedFunc<i32, i32>, arg| {
            f.call(&mut store, arg)
                .unwrap_or_else(|e| panic!("module {module}: {e}"))
        };

        let a = call(&alloc, 100);
        let b = call(&alloc, 0);
        assert!(
            a != 0 && b != 0 && a != b,
            "module {module}: {a:#x}, {b:#x}"
        );
        assert_eq!(a % 64, 0, "module {module}: {a:#x} not 64-byte aligned");
        for unknown in [0, 12_345, a + 64, a + 1] {
            assert_eq!(
                call(&free, unknown),
                wasm_abi::DEALLOC_UNKNOWN,
                "module {module}: unknown pointer {unknown:#x}"
            );
        }
        assert_eq!(call(&free, a), wasm_abi::DEALLOC_OK, "module {module}");
        assert_eq!(
            call(&free, a),
            wasm_abi::DEALLOC_UNKNOWN,
            "module {module}: double free"
        );
        // Nothing was corrupted: the other area is still live, once.
        assert_eq!(call(&free, b), wasm_abi::DEALLOC_OK, "module {module}");
        assert_eq!(call(&free, b), wasm_abi::DEALLOC_UNKNOWN, "module {module}");
    }
}

/// Names the host API cannot send (bad UTF-8, no NUL within the area) are
/// refused with a message from `wasm_last_error`.
#[test]
fn malformed_names_are_refused_with_a_message() {
    for (module, loaded) in common::greeter_modules() {
        let Some((mut store, instance)) = raw_instance(module, &loaded) else {
            continue; // a component: no raw ABI exports
        };
        let alloc = func::<i32, i32>(&mut store, &instance, wasm_abi::ALLOCATE);
        let free = func::<i32, i32>(&mut store, &instance, wasm_abi::DEALLOCATE);
        let greet_c = func::<i32, i32>(&mut store, &instance, wasm_abi::GREET_C);
        let greet_rust = func::<(i32, i32), i32>(&mut store, &instance, wasm_abi::GREET_RUST);
        let last_error = func::<(), i32>(&mut store, &instance, wasm_abi::LAST_ERROR);
        let memory = instance
            .get_memory(&mut store, wasm_abi::MEMORY)
            .expect("memory");
        let put = |store: &mut Store<WasiP1Ctx>, bytes: &[u8]| {
            let p = alloc.call(&mut *store, bytes.len() as i32).expect("alloc");
            memory.write(&mut *store, p as usize, bytes).expect("write");
            p
        };
        let message = |store: &mut Store<WasiP1Ctx>| {
            let pair_ptr = last_error.call(&mut *store, ()).expect("last_error");
            let mut pair = [0u8; 8];
            memory
                .read(&*store, pair_ptr as usize, &mut pair)
                .expect("pair");
            let pair = wasm_abi::Pair::from_bytes(pair);
            let mut text = vec![0u8; pair.len as usize];
            memory
                .read(&*store, pair.ptr as usize, &mut text)
                .expect("message");
            assert_eq!(free.call(&mut *store, pair.ptr as i32).unwrap(), 0);
            assert_eq!(free.call(&mut *store, pair_ptr).unwrap(), 0);
            String::from_utf8(text).expect("UTF-8 message")
        };

        let bad = put(&mut store, b"Zo\xc3(\0");
        assert_eq!(greet_c.call(&mut store, bad).unwrap(), 0, "module {module}");
        let m = message(&mut store);
        assert!(m.contains("UTF-8"), "module {module}: {m}");
        assert_eq!(
            greet_rust.call(&mut store, (bad, 4)).unwrap(),
            0,
            "module {module}"
        );
        let m = message(&mut store);
        assert!(m.contains("UTF-8"), "module {module}: {m}");
        // A 3-byte area with no terminator: the greeter must stop at its end.
        let no_nul = put(&mut store, b"abc");
        assert_eq!(
            greet_c.call(&mut store, no_nul).unwrap(),
            0,
            "module {module}"
        );
        let m = message(&mut store);
        assert!(m.contains("NUL"), "module {module}: {m}");
        // Lengths past the area are refused too.
        assert_eq!(
            greet_rust.call(&mut store, (no_nul, 4)).unwrap(),
            0,
            "module {module}"
        );
        assert!(!message(&mut store).is_empty(), "module {module}");
        for p in [bad, no_nul] {
            assert_eq!(free.call(&mut store, p).unwrap(), 0, "module {module}");
        }
    }
}
