//! The Arrow processor as a component: `wit/arrow-processor.wit`, world
//! `arrow-processor`. Every command is `wasm-module2`'s, through
//! [`wasm_module2::process_bytes`]; only the transport differs.

wit_bindgen::generate!({
    path: "../wit",
    world: "arrow-processor",
});

struct Processor;

impl Guest for Processor {
    fn process(meta: Vec<u8>, data: Vec<u8>) -> Result<Vec<u8>, String> {
        wasm_module2::process_bytes(&meta, &data)
    }
}

export!(Processor);
