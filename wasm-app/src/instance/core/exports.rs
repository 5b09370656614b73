//! A core instance's ABI exports, looked up once at instantiation, and the
//! errors that name what is missing or mistyped.

use wasm_abi::sig;
use wasmtime::{Instance, Memory, Store, TypedFunc, WasmParams, WasmResults};

use crate::error::{Error, Result};
use crate::host::HostState;
use crate::instance::AbiSupport;

/// An export looked up at instantiation: the typed function, or why not.
pub(super) type Export<P, R> = std::result::Result<TypedFunc<P, R>, ExportError>;

#[derive(Debug, Clone)]
pub(super) enum ExportError {
    Missing,
    WrongType(String),
}

/// The ABI's exports, each resolved once per instance; calls then cost no
/// name lookup.
pub(super) struct Exports {
    pub memory: Option<Memory>,
    pub allocate: Export<i32, i32>,
    pub deallocate: Export<i32, i32>,
    pub last_error: Export<(), i32>,
    pub answer: Export<(), i32>,
    pub greet_c: Export<i32, i32>,
    pub greet_rust: Export<(i32, i32), i32>,
    pub process: Export<(i32, i32, i32, i32), i32>,
}

/// Entry points that pass data through guest memory.
#[derive(Debug, Clone, Copy)]
pub(super) enum Entry {
    GreetC,
    GreetRust,
    Process,
    /// An export of the generic call (checked by the caller).
    Named,
}

impl Exports {
    pub(super) fn resolve(instance: &Instance, store: &mut Store<HostState>) -> Self {
        Exports {
            memory: instance.get_memory(&mut *store, wasm_abi::MEMORY),
            allocate: lookup(instance, store, wasm_abi::ALLOCATE),
            deallocate: lookup(instance, store, wasm_abi::DEALLOCATE),
            last_error: lookup(instance, store, wasm_abi::LAST_ERROR),
            answer: lookup(instance, store, wasm_abi::ANSWER_FN),
            greet_c: lookup(instance, store, wasm_abi::GREET_C),
            greet_rust: lookup(instance, store, wasm_abi::GREET_RUST),
            process: lookup(instance, store, wasm_abi::PROCESS_ARROW),
        }
    }

    pub(super) fn require_memory(&self) -> Result<Memory> {
        self.memory.ok_or_else(|| Error::MissingExport {
            name: wasm_abi::MEMORY.into(),
            expected: "(memory)".into(),
        })
    }

    /// Checks, before any allocation, that the instance has what an ABI
    /// call needs: the entry point with its type, memory and the allocator
    /// pair.
    pub(super) fn require(&self, entry: Entry) -> Result<()> {
        match entry {
            Entry::GreetC => {
                resolved(&self.greet_c, wasm_abi::GREET_C, sig::I32_TO_I32).map(drop)?
            }
            Entry::GreetRust => {
                resolved(&self.greet_rust, wasm_abi::GREET_RUST, sig::PAIR_TO_I32).map(drop)?
            }
            Entry::Process => {
                resolved(&self.process, wasm_abi::PROCESS_ARROW, sig::QUAD_TO_I32).map(drop)?
            }
            Entry::Named => {}
        }
        self.require_memory()?;
        resolved(&self.allocate, wasm_abi::ALLOCATE, sig::I32_TO_I32)?;
        resolved(&self.deallocate, wasm_abi::DEALLOCATE, sig::I32_TO_I32)?;
        Ok(())
    }

    /// Which of the ABI's exports this instance has with the right type.
    pub(super) fn support(&self) -> AbiSupport {
        let alloc = self.memory.is_some() && self.allocate.is_ok() && self.deallocate.is_ok();
        AbiSupport {
            answer: self.answer.is_ok(),
            greeter_c: alloc && self.greet_c.is_ok(),
            greeter_rust: alloc && self.greet_rust.is_ok(),
            arrow: alloc && self.process.is_ok(),
            last_error: self.last_error.is_ok(),
        }
    }
}

/// Looks up export `name` with type `P -> R`.
pub(super) fn lookup<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Export<P, R> {
    let Some(func) = instance.get_func(&mut *store, name) else {
        return Err(ExportError::Missing);
    };
    func.typed::<P, R>(&*store)
        .map_err(|_| ExportError::WrongType(format!("{}", func.ty(&*store))))
}

/// The export, or the error that names what is missing or mistyped.
pub(super) fn resolved<P: WasmParams, R: WasmResults>(
    export: &Export<P, R>,
    name: &str,
    expected: &str,
) -> Result<TypedFunc<P, R>> {
    match export {
        Ok(f) => Ok(f.clone()),
        Err(ExportError::Missing) => Err(Error::MissingExport {
            name: name.into(),
            expected: expected.into(),
        }),
        Err(ExportError::WrongType(found)) => Err(Error::WrongSignature {
            name: name.into(),
            expected: expected.into(),
            found: found.clone(),
        }),
    }
}
