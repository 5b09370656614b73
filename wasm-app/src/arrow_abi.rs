//! The Arrow ABI call: two IPC streams in (metadata, data), one out.
//!
//! Copies on this path, and why each stays for now:
//! 1. host encodes batches to IPC bytes (the wire format itself);
//! 2. host copies the bytes into the guest area (guest memory is separate);
//! 3. the guest decodes in place and encodes its result;
//! 4. host copies the result out of guest memory (the area is freed, and
//!    guest memory may move when it grows), then decodes it without a copy.

use crate::component::missing_world;
use crate::error::{Error, Result};
use crate::guest::{Entry, Guest};
use crate::memory::{self, Frame};

impl Guest {
    /// Calls `wasm_memory_process_data_arrow` (a component's WIT `process`)
    /// with raw IPC stream bytes and
    /// returns the raw IPC stream bytes of the result (empty when the guest
    /// returned an empty payload, e.g. for a flush of a stateless command).
    pub fn process_arrow_raw(&mut self, meta: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let limit = self.limits().max_memory;
        if (meta.len() as u64).saturating_add(data.len() as u64) > limit {
            return Err(Error::InvalidArgument(format!(
                "{} bytes of input do not fit the module's memory limit of {}",
                meta.len() + data.len(),
                crate::policy::format_size(limit)
            )));
        }
        if self.is_component() {
            // WIT `process`: the canonical ABI copies both lists in and the
            // result out; `Err(message)` is the guest's reported error.
            return self
                .call_component("process", |c| match &c.arrow {
                    Ok(a) => Ok(a.call_process(&mut c.store, meta, data)),
                    Err(why) => Err(missing_world("arrow-processor", "process", why)),
                })?
                .map_err(|message| Error::GuestReported {
                    message: Some(message),
                });
        }
        self.require(Entry::Process)?;
        self.arm()?;
        let mut frame = Frame::new(self);
        let meta_ptr = frame.alloc_copy(meta)?;
        let data_ptr = frame.alloc_copy(data)?;
        let ret = frame.guest.exports_process((
            meta_ptr as i32,
            meta.len() as i32,
            data_ptr as i32,
            data.len() as i32,
        ))?;
        let (ptr, len) = Guest::take_pair(&mut frame, ret, "Arrow result pair")?;
        let out = memory::slice(frame.guest.memory_bytes(), ptr, len, "Arrow result")?.to_vec();
        frame.finish()?;
        Ok(out)
    }
}
