//! Short reasons for failed SNS attempts: the service's error code when SNS
//! answered (`NotFound`, `Throttling`, `InvalidParameter`...), a fixed word
//! for the common transport failures, otherwise the innermost cause. Never
//! the request, the URL or the credentials.

use super::request::Reason;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use std::borrow::Cow;
use std::error::Error as StdError;

pub fn of_sdk_error<E>(e: &SdkError<E>) -> Reason
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match e {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => Cow::Owned(code.to_owned()),
            None => Cow::Owned(format!("http_{}", service.raw().status().as_u16())),
        },
        SdkError::TimeoutError(_) => Cow::Borrowed("timeout"),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Cow::Borrowed("timeout"),
        SdkError::DispatchFailure(_) => transport(e, "connect_failed"),
        SdkError::ResponseError(_) => transport(e, "response_error"),
        SdkError::ConstructionFailure(_) => Cow::Borrowed("construction_failure"),
        _ => Cow::Borrowed("sdk_error"),
    }
}

/// The code SNS gave a failed entry of a `PublishBatch`.
pub fn of_batch_entry(code: &str) -> Reason {
    if code.is_empty() {
        Cow::Borrowed("batch_entry_failed")
    } else {
        Cow::Owned(code.to_owned())
    }
}

fn transport(e: &(dyn StdError + 'static), kind: &str) -> Reason {
    let mut root = e;
    while let Some(source) = root.source() {
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return Cow::Borrowed("connection_refused")
                }
                std::io::ErrorKind::ConnectionReset => return Cow::Borrowed("connection_reset"),
                std::io::ErrorKind::TimedOut => return Cow::Borrowed("timeout"),
                _ => {}
            }
        }
        root = source;
    }
    Cow::Owned(format!("{kind}: {root}"))
}
