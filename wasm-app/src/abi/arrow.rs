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
//!    The host allocation is recycled ([`BufferPool`](crate::buffer_pool::BufferPool))
//!    once the caller drops the result, which spares the page faults of a
//!    fresh large allocation on every batch.
//!
//! [`encode_parts`]: crate::transport::encode_parts

use arrow::buffer::Buffer;

use crate::error::Result;
use crate::instance::{backend, Backend, Instance};

impl Instance {
    /// Calls the Arrow processor (`wasm_memory_process_data_arrow`, a
    /// component's WIT `process`) with the data stream given as parts to be
    /// concatenated (e.g. from [`encode_parts`](crate::transport::encode_parts)):
    /// they are copied straight into guest memory, never joined on the host.
    /// Returns the raw IPC stream bytes of the result (empty when the guest
    /// returned an empty payload, e.g. for a flush of a stateless command).
    pub(crate) fn process_parts<P: AsRef<[u8]>>(
        &mut self,
        meta: &[u8],
        data: &[P],
    ) -> Result<Buffer> {
        let data_len = self.check_input(meta, data)?;
        self.run(
            async |i| backend!(&mut i.kind, b => b.process(meta, data, data_len, &i.results).await),
        )
    }

    /// The data call and then the flush call (`flush_meta`, no data) of one
    /// command, as one operation under one deadline.
    pub(crate) fn process_with_flush<P: AsRef<[u8]>>(
        &mut self,
        meta: &[u8],
        data: &[P],
        flush_meta: &[u8],
    ) -> Result<(Buffer, Buffer)> {
        let data_len = self.check_input(meta, data)?;
        self.check_input::<&[u8]>(flush_meta, &[])?;
        self.run(async |i| {
            let out =
                backend!(&mut i.kind, b => b.process(meta, data, data_len, &i.results).await)?;
            // The data call's areas go back before the flush call.
            i.release().await?;
            let none: &[&[u8]] = &[];
            let tail =
                backend!(&mut i.kind, b => b.process(flush_meta, none, 0, &i.results).await)?;
            Ok((out, tail))
        })
    }
}
