//! The greeter as a component: `wit/greeter.wit`, world `greeter`.
//!
//! Built for wasm32-wasip1 and turned into a component by
//! `tools/componentize` (see `scripts/build-guests.sh`). Strings cross the
//! boundary by the canonical ABI: no allocator exports, no pairs.

wit_bindgen::generate!({
    path: "../wit",
    world: "greeter",
});

struct Greeter;

impl Guest for Greeter {
    fn answer() -> i32 {
        42
    }

    fn greet(name: String) -> String {
        format!("Hello World, {name}!")
    }
}

export!(Greeter);
