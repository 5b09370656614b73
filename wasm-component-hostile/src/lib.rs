//! A hostile component for `wasm-app/tests/component_hostile.rs`: the
//! `greeter` world, where `greet(name)` misbehaves as `name` says:
//!
//! - `loop`: spins forever (the host's timeout must stop it);
//! - `bomb`: allocates until something gives (the memory limit must);
//! - `trap`: panics, which traps (`panic = "abort"`);
//! - `passwd`: tries to read `/etc/passwd`; with no preopened directory this
//!   must fail, and the error text is returned instead of the data;
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
            _ => format!("Hello World, {name}!"),
        }
    }
}

export!(Hostile);
