//! A bound on the files and directories a guest holds open at once
//! (`max-open-files`): wasmtime-wasi has none, and every file a guest opens
//! and never closes is a file descriptor of the host process.
//!
//! The WASI implementation keeps each open file or directory as one
//! [`Descriptor`] in the store's [`ResourceTable`] (a granted directory
//! too): the count of those is the bound's measure, exact whatever the
//! guest closes or renumbers. The host's own `path_open` (core modules) and
//! `descriptor.open-at` (components) shadow WASI's: at the bound they fail
//! *in the guest*, with `EMFILE` (preview 1) or `quota` (WASI 0.2, which has
//! no "too many open files"), and otherwise call WASI's own.

use anyhow::Context;
use wasmtime::component::Resource;
use wasmtime::{AsContextMut, Caller, Extern};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p1::types::Errno;
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as p2, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
use wasmtime_wasi::{ResourceTable, WasiView};

use crate::host::ComponentState;
use crate::host::HostState;

/// Files, directories and sockets open in `table`: each one a file
/// descriptor of the host.
fn open_descriptors(table: &mut ResourceTable) -> usize {
    table
        .iter_mut()
        .filter(|e| e.is::<Descriptor>() || e.is::<TcpSocket>() || e.is::<UdpSocket>())
        .count()
}

/// Whether a component holds `max-open-files` descriptors already (files,
/// directories and sockets together).
pub(crate) fn at_open_limit(state: &mut ComponentState) -> bool {
    open_descriptors(state.ctx().table) >= state.max_open_files
}

/// Parameters of preview 1's `path_open`: dir fd, lookup flags, path
/// (ptr, len), open flags, rights (base, inheriting), fd flags, result ptr.
type PathOpenArgs = (i32, i32, i32, i32, i32, i64, i64, i32, i32);

/// Shadows WASI preview 1's `path_open` in `linker` with the bounded one.
pub(crate) fn bound_core(linker: &mut wasmtime::Linker<HostState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    linker
        .func_wrap_async(
            "wasi_snapshot_preview1",
            "path_open",
            |mut caller: Caller<'_, HostState>, args: PathOpenArgs| {
                Box::new(async move {
                    let state = caller.data_mut();
                    let open = open_descriptors(WasiView::ctx(&mut state.wasi).table);
                    if open >= state.max_open_files {
                        return Ok(Errno::Mfile as i32);
                    }
                    // What wiggle's own binding does around the call.
                    let fuel = caller.as_context_mut().hostcall_fuel();
                    let export = caller.get_export("memory");
                    let (mut memory, state) = match &export {
                        Some(Extern::Memory(m)) => {
                            let (mem, state) = m.data_and_store_mut(&mut caller);
                            (wiggle::GuestMemory::Unshared(mem), state)
                        }
                        Some(Extern::SharedMemory(m)) => {
                            (wiggle::GuestMemory::Shared(m.data()), caller.data_mut())
                        }
                        _ => wasmtime::bail!("missing required memory export"),
                    };
                    state.wasi.set_hostcall_fuel(fuel);
                    let (fd, flags, path, len, oflags, base, inherit, fdflags, out) = args;
                    p1::path_open(
                        &mut state.wasi,
                        &mut memory,
                        fd,
                        flags,
                        path,
                        len,
                        oflags,
                        base,
                        inherit,
                        fdflags,
                        out,
                    )
                    .await
                })
            },
        )
        .map_err(anyhow::Error::from)
        .context("cannot bound WASI's path_open")?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The WASI 0.2 filesystem interface, as `wasmtime_wasi::p2` links it.
const P2_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Parameters of WASI 0.2's `descriptor.open-at`.
type OpenAtArgs = (
    Resource<Descriptor>,
    PathFlags,
    String,
    OpenFlags,
    DescriptorFlags,
);

/// Shadows WASI 0.2's `descriptor.open-at` in `linker` with the bounded one.
pub(crate) fn bound_component(
    linker: &mut wasmtime::component::Linker<ComponentState>,
) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(P2_TYPES)
        .and_then(|mut types| {
            types.func_wrap_async(
                "[method]descriptor.open-at",
                |mut store, (dir, path_flags, path, oflags, flags): OpenAtArgs| {
                    Box::new(async move {
                        let state: &mut ComponentState = store.data_mut();
                        if at_open_limit(state) {
                            return Ok((Err(ErrorCode::Quota),));
                        }
                        let mut fs = state.filesystem();
                        match HostDescriptor::open_at(&mut fs, dir, path_flags, path, oflags, flags)
                            .await
                        {
                            Ok(fd) => Ok((Ok(fd),)),
                            Err(e) => Ok((Err(p2::Host::convert_error_code(&mut fs, e)?),)),
                        }
                    })
                },
            )
        })
        .map_err(anyhow::Error::from)
        .context("cannot bound WASI's descriptor.open-at")?;
    linker.allow_shadowing(false);
    Ok(())
}
