//! Library errors as gRPC statuses: what a Flight client sees.
//!
//! `UNAVAILABLE` is never used for a function's failure: clients such as
//! RisingWave retry it, and a deterministic failure would be retried
//! forever.

use tonic::Status;

use crate::error::{Error, Limit};

/// A call's failure: a limit, the guest's own error, a trap, ...
pub(crate) fn from_error(e: Error) -> Status {
    let message = format!("{e:#}");
    match e {
        Error::LimitExceeded(Limit::Time(_)) => Status::deadline_exceeded(message),
        Error::LimitExceeded(_) => Status::resource_exhausted(message),
        Error::InvalidArgument(_) => Status::invalid_argument(message),
        Error::PolicyDenied(_) => Status::permission_denied(message),
        _ => Status::internal(message),
    }
}

/// A client's input that cannot be decoded, or is too large.
pub(crate) fn input_error(e: Error) -> Status {
    match e {
        Error::LimitExceeded(Limit::Output(max)) => Status::resource_exhausted(format!(
            "input: a batch larger than the function's limit of {}",
            crate::text::format_size(max)
        )),
        e => Status::invalid_argument(format!("input: {e:#}")),
    }
}
