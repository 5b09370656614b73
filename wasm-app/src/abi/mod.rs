//! The ABIs, written once over both backends ([`crate::instance`]): the
//! greeter's two string ABIs, the Arrow processor, and the generic call.

pub(crate) mod arrow;
pub(crate) mod bytes;
pub(crate) mod greeter;
