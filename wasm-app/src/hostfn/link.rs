//! Linking a core module's `wasm_host` imports: each one the module imports
//! and the policy grants, and nothing else.

use std::sync::Arc;

use wasm_abi::host::{self, MODULE};
use wasmtime::{Caller, Extern, Linker, Memory};

use super::{BytesFn, HostFunctions};
use crate::error::{Error, GuestFault, Result};
use crate::host::HostState;
use crate::net::{fetch, Network};
use crate::policy::Policy;
use crate::text::guest_text;

/// Bytes of one request a guest may hand `http_request` (its body included).
const MAX_REQUEST: u32 = 64 << 20;

/// Defines in `linker` every `wasm_host` function `module` imports, after
/// checking that `policy` grants each; the first one it does not is the
/// error, named.
pub(crate) fn link_core(
    linker: &mut Linker<HostState>,
    module: &wasmtime::Module,
    policy: &Policy,
    functions: &HostFunctions,
) -> Result<()> {
    let network = Network::of(policy)?.map(Arc::new);
    let mut seen = std::collections::BTreeSet::new();
    for import in module.imports().filter(|i| i.module() == MODULE) {
        let name = import.name();
        // A name imported twice is defined once; wasmtime checks each
        // import's type against it.
        if !seen.insert(name) {
            continue;
        }
        let shown = guest_text(name.as_bytes());
        let defined = match name {
            host::TAKE => linker.func_wrap(MODULE, host::TAKE, take),
            host::HTTP_REQUEST => {
                let Some(net) = network.clone() else {
                    return Err(Error::PolicyDenied(format!(
                        "the module imports {MODULE}.{shown}, but its policy grants no \
                         network: add allowed-hosts = [\"HOST:PORT\"] or --allow-host HOST:PORT"
                    )));
                };
                linker.func_wrap_async(
                    MODULE,
                    host::HTTP_REQUEST,
                    move |caller: Caller<'_, HostState>, (ptr, len): (i32, i32)| {
                        let net = net.clone();
                        Box::new(async move { http_request(caller, &net, ptr, len).await })
                    },
                )
            }
            host::LOG => {
                granted(policy, name)?;
                linker.func_wrap(MODULE, host::LOG, log)
            }
            _ => {
                let Some(f) = functions.get(name) else {
                    return Err(Error::Instantiate(format!(
                        "the module imports {MODULE}.{shown}, which this host does not offer"
                    )));
                };
                granted(policy, name)?;
                linker.func_wrap(
                    MODULE,
                    name,
                    move |caller: Caller<'_, HostState>, ptr: i32, len: i32| {
                        bytes_call(caller, &f, ptr, len)
                    },
                )
            }
        };
        defined.map_err(|e| Error::Other(anyhow::Error::from(e)))?;
    }
    Ok(())
}

fn granted(policy: &Policy, name: &str) -> Result<()> {
    if policy.host_functions.contains(name) {
        return Ok(());
    }
    let shown = guest_text(name.as_bytes());
    Err(Error::PolicyDenied(format!(
        "the module imports {MODULE}.{shown}, which its policy does not grant: add \
         host-functions = [\"{shown}\"] or --allow-host-fn {shown}"
    )))
}

/// The module's memory: a host function called by a module without one
/// has nowhere to read from.
fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    match caller.get_export(wasm_abi::MEMORY) {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(GuestFault(Error::BadPointer(
            "a host function was called by a module that exports no memory".into(),
        ))
        .into()),
    }
}

/// A copy of the guest's `len` bytes at `ptr`, checked.
fn read(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
    what: &str,
) -> wasmtime::Result<Vec<u8>> {
    let mem = memory(caller)?;
    let bytes = crate::memory::slice(mem.data(&caller), ptr as u32, len as u32, what)
        .map_err(GuestFault)?;
    Ok(bytes.to_vec())
}

fn take(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let Some(bytes) = caller.data_mut().calls.pending.take() else {
        return Ok(host::TAKE_NOTHING);
    };
    if bytes.len() != len as u32 as usize {
        caller.data_mut().calls.pending = Some(bytes);
        return Ok(host::TAKE_NOTHING);
    }
    let mem = memory(&mut caller)?;
    let data = mem.data_mut(&mut caller);
    crate::memory::slice(data, ptr as u32, len as u32, "take target").map_err(GuestFault)?;
    let at = ptr as u32 as usize;
    data[at..at + bytes.len()].copy_from_slice(&bytes);
    Ok(host::TAKE_OK)
}

fn log(mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    // Borrowed, not copied: a guest may pass a line of 4 GiB, of which the
    // limiter keeps 1 KiB and counts the rest.
    let mem = memory(&mut caller)?;
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let line =
        crate::memory::slice(data, ptr as u32, len as u32, "log line").map_err(GuestFault)?;
    Ok(state.calls.log.log(level, line))
}

fn bytes_call(
    mut caller: Caller<'_, HostState>,
    f: &Arc<BytesFn>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i64> {
    let input = read(&mut caller, ptr, len, "host function input")?;
    Ok(caller.data_mut().calls.hold(f(&input)))
}

async fn http_request(
    mut caller: Caller<'_, HostState>,
    net: &Network,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<i64> {
    if len as u32 > MAX_REQUEST {
        let message = format!("a request of {} bytes (at most {MAX_REQUEST})", len as u32);
        return Ok(caller.data_mut().calls.hold(Err(message)));
    }
    let wire = read(&mut caller, ptr, len, "HTTP request")?;
    let result = fetch::http_request(net, &wire).await;
    let calls = &mut caller.data_mut().calls;
    let result = result.map_err(|failure| {
        if let Some(e) = failure.refusal() {
            calls.refusal.record(e);
        }
        failure.message()
    });
    Ok(calls.hold(result))
}
