//! A module ready to serve calls, that survives its own failures.
//!
//! A [`Plugin`] keeps one instance and reuses it across calls (exports
//! already resolved, guest state kept). When a call fails in a way that
//! leaves the instance untrustworthy (trap, limit, bad pointer, exit), the
//! instance is dropped and the next call gets a fresh one: the host never
//! aborts and never calls into a broken instance again.

use crate::engine::LoadedModule;
use crate::error::{Error, Result};
use crate::greeter::StringAbi;
use crate::guest::Guest;
use crate::transport::{self, Table};

/// A loaded module plus its current instance.
pub struct Plugin {
    module: LoadedModule,
    guest: Option<Guest>,
}

impl Plugin {
    /// Wraps `module`; the first call instantiates it.
    pub fn new(module: LoadedModule) -> Self {
        Plugin {
            module,
            guest: None,
        }
    }

    /// The module behind this plugin.
    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    /// The live instance, creating it if needed.
    pub fn guest(&mut self) -> Result<&mut Guest> {
        if self.guest.as_ref().is_none_or(Guest::is_poisoned) {
            self.guest = None;
            self.guest = Some(self.module.instantiate()?);
        }
        match self.guest.as_mut() {
            Some(g) => Ok(g),
            None => unreachable!("instance was just created"),
        }
    }

    /// Runs `f` on the instance; drops the instance if `f` poisoned it.
    pub fn with_guest<R>(&mut self, f: impl FnOnce(&mut Guest) -> Result<R>) -> Result<R> {
        let result = f(self.guest()?);
        let poisoned = match &result {
            Err(e) => e.poisons_instance(),
            Ok(_) => false,
        };
        if poisoned || self.guest.as_ref().is_some_and(Guest::is_poisoned) {
            self.guest = None;
        }
        result
    }

    /// Whether an instance is currently alive (for tests and stats).
    pub fn has_instance(&self) -> bool {
        self.guest.is_some()
    }

    /// `answer()`.
    pub fn answer(&mut self) -> Result<i32> {
        self.with_guest(|g| g.answer())
    }

    /// The greeter through `abi`.
    pub fn greet(&mut self, abi: StringAbi, name: &str) -> Result<String> {
        self.with_guest(|g| g.greet(abi, name))
    }

    /// Runs an Arrow command over `input` in one call, then the flush call,
    /// and returns everything the guest produced. Both calls are one
    /// operation, under one deadline, on one instance that sees all the
    /// data, so a stateful command gives one result and needs no merge call
    /// (see [`pipeline`](crate::pipeline) for several).
    ///
    /// Returns `None` when the guest produced no stream at all.
    pub fn process(
        &mut self,
        command: &str,
        config: &[(String, String)],
        input: &Table,
    ) -> Result<Option<Table>> {
        let meta = transport::encode_meta(command, config).map_err(Error::Other)?;
        let mut flush_config = config.to_vec();
        flush_config.retain(|(k, _)| k != wasm_abi::meta::FLUSH && k != wasm_abi::meta::MERGE);
        flush_config.push((wasm_abi::meta::FLUSH.into(), "true".into()));
        let flush_meta = transport::encode_meta(command, &flush_config).map_err(Error::Other)?;
        let data = transport::encode_parts(&input.schema, &input.batches).map_err(Error::Other)?;

        let (out, tail) = self.with_guest(|g| g.process_with_flush(&meta, &data, &flush_meta))?;
        let max = self.module.policy().limits.output_limit();
        let mut result = decode(out, max)?;
        if let Some(t) = decode(tail, max)? {
            match &mut result {
                None => result = Some(t),
                Some(r) if r.schema == t.schema => r.batches.extend(t.batches),
                Some(r) => {
                    return Err(Error::Other(anyhow::anyhow!(
                        "the flush call returned schema {:?}, unlike the data call's {:?}",
                        t.schema,
                        r.schema
                    )))
                }
            }
        }
        Ok(result)
    }
}

/// Decodes a guest result bounded by `max_output` (see
/// [`transport::decode_stream`]).
fn decode(bytes: arrow::buffer::Buffer, max_output: u64) -> Result<Option<Table>> {
    transport::decode_stream(bytes, max_output).map_err(|e| match e {
        Error::Other(e) => {
            Error::Other(e.context("the guest returned an invalid Arrow IPC stream"))
        }
        e => e,
    })
}
