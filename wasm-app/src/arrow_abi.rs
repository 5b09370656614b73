//! The Arrow ABI call: two IPC streams in (metadata, data), one out.
//!
//! The data path, and the copies left on it:
//! 1. the host encodes batches as a list of parts ([`encode_parts`]): headers
//!    plus slices of the arrays' own buffers, no copy;
//! 2. the parts are copied once, straight into an input area in guest memory
//!    (guest memory is separate from the host's: this copy stays). The area
//!    is kept for the next call ([`Lent`](crate::memory::Lent)), so a stream
//!    of batches costs no allocate/free pair per batch;
//! 3. the guest decodes in place: the area is 64-byte aligned and so is every
//!    buffer in the stream, so its arrays point into the area (no copy);
//! 4. the guest computes and encodes its result: one copy into an exactly
//!    sized output (`wasm-module2`'s `Output`), since the result must be one
//!    contiguous area;
//! 5. the host copies the result out of guest memory into a 64-byte aligned
//!    [`Buffer`] (the guest frees the area, and its memory may move when it
//!    grows, so arrays cannot point into it) and decodes it without a copy.
//!    The host allocation is recycled ([`BufferPool`](crate::pool::BufferPool))
//!    once the caller drops the result, which spares the page faults of a
//!    fresh large allocation on every batch.
//!
//! [`encode_parts`]: crate::transport::encode_parts

use arrow::buffer::Buffer;

use crate::component::missing_world;
use crate::error::{Error, Result};
use crate::guest::{Entry, Guest, LentSlot};
use crate::memory::Frame;

impl Guest {
    /// Calls `wasm_memory_process_data_arrow` (a component's WIT `process`)
    /// with raw IPC stream bytes and returns the raw IPC stream bytes of the
    /// result (empty when the guest returned an empty payload, e.g. for a
    /// flush of a stateless command).
    pub fn process_arrow_raw(&mut self, meta: &[u8], data: &[u8]) -> Result<Buffer> {
        self.process_arrow_parts(meta, &[data])
    }

    /// As [`Guest::process_arrow_raw`], with the data stream given as parts
    /// to be concatenated (e.g. from [`encode_parts`](crate::transport::encode_parts)):
    /// they are copied straight into guest memory, never joined on the host.
    pub fn process_arrow_parts<P: AsRef<[u8]>>(
        &mut self,
        meta: &[u8],
        data: &[P],
    ) -> Result<Buffer> {
        let data_len = data
            .iter()
            .try_fold(0u64, |n, p| n.checked_add(p.as_ref().len() as u64))
            .unwrap_or(u64::MAX);
        let limit = self.limits().max_memory;
        let total = (meta.len() as u64).saturating_add(data_len);
        if total > limit || data_len > i32::MAX as u64 || meta.len() > i32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "{total} bytes of input do not fit the module's memory limit of {}",
                crate::policy::format_size(limit.min(i32::MAX as u64))
            )));
        }
        let data_len = data_len as u32;
        if self.is_component() {
            // WIT `process`: the canonical ABI copies both lists in and the
            // result out; `Err(message)` is the guest's reported error.
            let joined;
            let data: &[u8] = match data {
                [] => &[],
                [one] => one.as_ref(),
                parts => {
                    joined = parts
                        .iter()
                        .flat_map(|p| p.as_ref())
                        .copied()
                        .collect::<Vec<u8>>();
                    &joined
                }
            };
            return self
                .call_component("process", |c| match &c.arrow {
                    Ok(a) => Ok(a.call_process(&mut c.store, meta, data)),
                    Err(why) => Err(missing_world("arrow-processor", "process", why)),
                })?
                .map(Buffer::from)
                .map_err(|message| Error::GuestReported {
                    message: Some(crate::error::guest_text(message.as_bytes())),
                });
        }
        self.require(Entry::Process)?;
        self.arm()?;
        let meta_ptr = self.lend(LentSlot::Meta, meta.len() as u32)?;
        self.write(meta_ptr, &[meta])?;
        // With no data the guest does not look at the pointer.
        let data_ptr = match data_len {
            0 => 0,
            n => {
                let ptr = self.lend(LentSlot::Data, n)?;
                self.write(ptr, data)?;
                ptr
            }
        };
        let mut frame = Frame::new(self);
        let ret = frame.guest.exports_process((
            meta_ptr as i32,
            meta.len() as i32,
            data_ptr as i32,
            data_len as i32,
        ))?;
        let (ptr, len) = Guest::take_pair(&mut frame, ret, "Arrow result pair")?;
        let out = frame.guest.copy_out(ptr, len, "Arrow result")?;
        frame.finish()?;
        Ok(out)
    }
}
