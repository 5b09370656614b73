//! The Arrow processor as a component: `wit/arrow-processor.wit`, world
//! `arrow-processor`. Every command is `wasm-module2`'s, through
//! [`wasm_module2::process_buffer`]; only the transport differs.

wit_bindgen::generate!({
    path: "../wit",
    world: "arrow-processor",
});

struct Processor;

impl Guest for Processor {
    fn process(meta: Vec<u8>, data: Vec<u8>) -> Result<Vec<u8>, String> {
        // The canonical ABI already copied the list into this `Vec`: decode
        // it where it lies (arrow copies a buffer only if it is misaligned).
        let data = (!data.is_empty()).then(|| wasm_module2::Buffer::from_vec(data));
        wasm_module2::process_buffer(&meta, data)
    }
}

export!(Processor);
