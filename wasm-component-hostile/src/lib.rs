//! A hostile component for `wasm-app/tests/component_hostile.rs`: the
//! `greeter` world, where `greet(name)` misbehaves as `name` says:
//!
//! - `loop`: spins forever (the host's timeout must stop it);
//! - `bomb`: allocates until something gives (the memory limit must);
//! - `trap`: panics, which traps (`panic = "abort"`);
//! - `passwd`: tries to read `/etc/passwd`; with no preopened directory this
//!   must fail, and the error text is returned instead of the data;
//! - `sleep`: sleeps for 2^64-1 ns (584 years: WASI's
//!   `monotonic-clock.subscribe-duration`, then `pollable.block`);
//! - `files:PATH`: opens `PATH` up to 10 000 times, keeping every file
//!   open: returns how many it opened and the error that stopped it;
//! - anything else: greets like the real greeter.

wit_bindgen::generate!({
    path: "../wit",
    world: "greeter",
});

struct Hostile;

impl Guest for Hostile {
    fn answer() -> i32 {
        42
    }

    fn greet(name: String) -> String {
        match name.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile component traps on purpose"),
            "passwd" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => text,
                Err(e) => format!("error: {e}"),
            },
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_nanos(u64::MAX));
                "woke up".into()
            }
            _ if name.starts_with("files:") => {
                let path = &name["files:".len()..];
                let mut kept = Vec::new();
                while kept.len() < 10_000 {
                    match std::fs::File::open(path) {
                        Ok(f) => kept.push(f),
                        Err(e) => return format!("{} {e}", kept.len()),
                    }
                }
                format!("{} ok", kept.len())
            }
            _ => format!("Hello World, {name}!"),
        }
    }
}

export!(Hostile);
