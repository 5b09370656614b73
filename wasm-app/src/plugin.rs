//! [`Plugin`]: a module ready to serve calls, that survives its own
//! failures.
//!
//! A plugin keeps one instance and reuses it across calls (exports already
//! resolved, guest state kept). When a call fails in a way that leaves the
//! instance untrustworthy (trap, limit, bad pointer, exit), the instance is
//! dropped and the next call gets a fresh one: the host never aborts and
//! never calls into a broken instance again.

use std::path::Path;

use arrow::array::RecordBatch;

use crate::error::{Error, Result};
use crate::hostfn::HostFunctions;
use crate::instance::{AbiSupport, Instance};
use crate::module::Module;
use crate::policy::Policy;
use crate::runtime::Runtime;
use crate::string_abi::StringAbi;
use crate::transport::{self, Table};

/// A loaded module plus its current instance.
///
/// A call on a plugin without a live instance (the first, or the one after
/// a call that poisoned it) first makes one, `_initialize` included, under
/// its own timeout: such a call may take up to twice the policy's timeout.
/// [`Plugin::instantiate`] pays that up front.
///
/// ```no_run
/// use wasm_app::{Plugin, Policy};
///
/// let mut plugin = Plugin::from_file("module.wasm", Policy::default())?;
/// let out: Vec<u8> = plugin.call("reverse", b"hello")?;
/// # Ok::<(), wasm_app::Error>(())
/// ```
pub struct Plugin {
    module: Module,
    instance: Option<Instance>,
}

impl Plugin {
    /// Wraps `module`; the first call instantiates it.
    pub fn new(module: Module) -> Self {
        Plugin {
            module,
            instance: None,
        }
    }

    /// Loads a `.wasm` or `.wat` file (core module or component) under
    /// `policy`, with a process-wide [`Runtime`] and the default cache of
    /// compiled modules. Use [`Runtime::load`] to choose the engine options.
    pub fn from_file(path: impl AsRef<Path>, policy: Policy) -> Result<Self> {
        let rt = Runtime::shared(&policy)?;
        Ok(Plugin::new(rt.load(path, policy)?))
    }

    /// As [`Plugin::from_file`], from the module's bytes; `name` is used in
    /// messages.
    pub fn from_bytes(name: &str, bytes: &[u8], policy: Policy) -> Result<Self> {
        Self::from_bytes_with(name, bytes, policy, &HostFunctions::new())
    }

    /// As [`Plugin::from_file`], offering the embedder's `functions` to the
    /// module; each is usable only where `policy` grants it.
    pub fn from_file_with(
        path: impl AsRef<Path>,
        policy: Policy,
        functions: &HostFunctions,
    ) -> Result<Self> {
        let rt = Runtime::shared(&policy)?;
        Ok(Plugin::new(rt.load_with(path, policy, functions)?))
    }

    /// As [`Plugin::from_file_with`], from the module's bytes.
    pub fn from_bytes_with(
        name: &str,
        bytes: &[u8],
        policy: Policy,
        functions: &HostFunctions,
    ) -> Result<Self> {
        let rt = Runtime::shared(&policy)?;
        Ok(Plugin::new(
            rt.load_bytes_with(name, bytes, policy, functions)?,
        ))
    }

    /// The module behind this plugin.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Makes sure an instance is live, creating it now rather than at the
    /// next call (to pay instantiation up front, or to see that it works).
    pub fn instantiate(&mut self) -> Result<()> {
        self.instance().map(drop)
    }

    /// Whether an instance is currently alive (none before the first call,
    /// none after a call that poisoned it).
    pub fn has_instance(&self) -> bool {
        self.instance.is_some()
    }

    /// Size of the live instance's (largest) linear memory in bytes, if an
    /// instance is alive.
    pub fn memory_size(&self) -> Option<usize> {
        self.instance.as_ref().map(Instance::memory_size)
    }

    /// What the module implements of this project's ABIs (instantiates it).
    pub fn abi_support(&mut self) -> Result<AbiSupport> {
        self.instance().map(|i| i.abi_support())
    }

    /// Calls `export` with `input` bytes and returns its output bytes: any
    /// export following the pair ABI (core module) or taking and returning
    /// `list<u8>` or `string` (component); see [`wasm_abi`]'s generic call.
    ///
    /// An empty input is lent like any other (as (0, 0) if the guest's
    /// allocator answers 0 for 0 bytes). The output is at most the
    /// policy's output limit (a component's result is copied out of its
    /// memory before that check: at most its memory's worth, or twice that
    /// for a string re-encoded to UTF-8). A guest's own error is
    /// [`Error::GuestReported`], and leaves the instance usable.
    pub fn call(&mut self, export: &str, input: impl AsRef<[u8]>) -> Result<Vec<u8>> {
        self.with_instance(|i| i.call_bytes(export, input.as_ref()))
    }

    /// [`Plugin::call`] with text in and out; output that is not UTF-8 is
    /// [`Error::BadString`].
    pub fn call_str(&mut self, export: &str, input: &str) -> Result<String> {
        let out = self.call(export, input)?;
        String::from_utf8(out).map_err(|e| {
            Error::BadString(format!(
                "the output of `{export}` is not UTF-8: {}",
                e.utf8_error()
            ))
        })
    }

    /// `answer()` of the greeter ABI.
    pub fn answer(&mut self) -> Result<i32> {
        self.with_instance(|i| i.answer())
    }

    /// The greeter through `abi` (a component: its WIT `greet`).
    pub fn greet(&mut self, abi: StringAbi, name: &str) -> Result<String> {
        self.with_instance(|i| i.greet(abi, name))
    }

    /// Runs the Arrow command `command` (no configuration) over one batch,
    /// then its flush call; returns every batch the guest produced.
    pub fn process(&mut self, command: &str, batch: &RecordBatch) -> Result<Vec<RecordBatch>> {
        let input = Table {
            schema: batch.schema(),
            batches: vec![batch.clone()],
        };
        Ok(self
            .process_table(command, &[], &input)?
            .map(|t| t.batches)
            .unwrap_or_default())
    }

    /// Runs an Arrow command with its configuration over `input` in one
    /// call, then the flush call, and returns everything the guest
    /// produced. Both calls are one operation, under one deadline, on one
    /// instance that sees all the data, so a stateful command gives one
    /// result and needs no merge call (see [`pipeline`](crate::pipeline) for
    /// several instances).
    ///
    /// Returns `None` when the guest produced no stream at all.
    pub fn process_table(
        &mut self,
        command: &str,
        config: &[(String, String)],
        input: &Table,
    ) -> Result<Option<Table>> {
        let meta = transport::encode_meta(command, config)?;
        let flush_meta = transport::encode_protocol_meta(command, config, wasm_abi::meta::FLUSH)?;
        let data = transport::encode_parts(&input.schema, &input.batches)?;

        let (out, tail) =
            self.with_instance(|i| i.process_with_flush(&meta, &data, &flush_meta))?;
        let max = self.module.policy().limits.output_limit();
        let mut result = transport::decode_result(out, max)?;
        if let Some(t) = transport::decode_result(tail, max)? {
            match &mut result {
                None => result = Some(t),
                Some(r) if r.schema == t.schema => r.batches.extend(t.batches),
                Some(r) => {
                    return Err(Error::Other(anyhow::anyhow!(
                        "the flush call returned schema {}, unlike the data call's {}",
                        crate::text::schema_text(&t.schema),
                        crate::text::schema_text(&r.schema)
                    )))
                }
            }
        }
        Ok(result)
    }

    /// One raw Arrow ABI call: IPC stream bytes in, IPC stream bytes out,
    /// unchecked (decode them with [`transport::decode_stream`]).
    #[doc(hidden)]
    pub fn process_ipc(&mut self, meta: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        self.with_instance(|i| i.process_parts(meta, &[data]))
            .map(|b| b.to_vec())
    }

    /// The live instance, creating it if needed.
    pub(crate) fn instance(&mut self) -> Result<&mut Instance> {
        if self.instance.as_ref().is_none_or(Instance::is_poisoned) {
            self.instance = None;
            self.instance = Some(self.module.instantiate()?);
        }
        match self.instance.as_mut() {
            Some(i) => Ok(i),
            None => unreachable!("instance was just created"),
        }
    }

    /// Runs `f` on the instance; drops the instance if `f` poisoned it.
    pub(crate) fn with_instance<R>(
        &mut self,
        f: impl FnOnce(&mut Instance) -> Result<R>,
    ) -> Result<R> {
        let result = f(self.instance()?);
        let poisoned = match &result {
            Err(e) => e.poisons_instance(),
            Ok(_) => false,
        };
        if poisoned || self.instance.as_ref().is_some_and(Instance::is_poisoned) {
            self.instance = None;
        }
        result
    }
}
