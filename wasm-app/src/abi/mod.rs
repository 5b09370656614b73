//! The ABIs, written once over both backends ([`crate::instance`]): the
//! greeter's two string ABIs, the Arrow processor, and the generic call.

pub(crate) mod arrow;
pub(crate) mod bytes;
pub(crate) mod greeter;

use crate::error::{Error, Result};
use crate::instance::Instance;

impl Instance {
    /// The total length of the data parts, or why this input cannot be
    /// passed.
    pub(crate) fn check_input<P: AsRef<[u8]>>(&self, meta: &[u8], data: &[P]) -> Result<u32> {
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
        Ok(data_len as u32)
    }
}
