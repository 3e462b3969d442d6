//! The one mapping from hub and engine errors to gRPC statuses: a canonical code plus a
//! `google.rpc.ErrorInfo` with an UPPER_SNAKE_CASE reason, which is what clients match on.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{core::CoreError, hub::HubError, proto::v1::ErrorDetail};

/// The `ErrorInfo.domain` of every chanlayer error.
pub const ERROR_DOMAIN: &str = crate::proto::reason::DOMAIN;

/// The code and reason of an error.
pub fn classify(error: &HubError) -> (Code, &'static str) {
    match error {
        HubError::Core(core) => match core {
            CoreError::InvalidChannelName { .. } => (Code::InvalidArgument, "INVALID_CHANNEL_NAME"),
            CoreError::InvalidGroupName { .. } => (Code::InvalidArgument, "INVALID_GROUP_NAME"),
            CoreError::InvalidNamespace { .. } => (Code::InvalidArgument, "INVALID_NAMESPACE"),
            CoreError::InvalidClientPrefix { .. } => {
                (Code::InvalidArgument, "INVALID_CLIENT_PREFIX")
            }
            CoreError::ChannelFull { .. } => (Code::ResourceExhausted, "CHANNEL_FULL"),
            CoreError::MessageTooLarge { .. } => (Code::ResourceExhausted, "MESSAGE_TOO_LARGE"),
            CoreError::InvalidCapacityRule { .. } => {
                (Code::InvalidArgument, "INVALID_CAPACITY_RULE")
            }
            CoreError::LimitExceeded { .. } => (Code::ResourceExhausted, "LIMIT_EXCEEDED"),
        },
        HubError::ClientPrefixInUse { .. } => (Code::AlreadyExists, "CLIENT_PREFIX_IN_USE"),
        HubError::TooManyPendingReceives { .. } => {
            (Code::ResourceExhausted, "TOO_MANY_PENDING_RECEIVES")
        }
        HubError::DuplicateReceiveId { .. } => (Code::AlreadyExists, "DUPLICATE_RECEIVE_ID"),
        HubError::TooManySessions { .. } => (Code::ResourceExhausted, "TOO_MANY_SESSIONS"),
        HubError::ShuttingDown => (Code::Unavailable, "SHUTTING_DOWN"),
    }
}

/// A status with an `ErrorInfo` detail.
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new()),
    )
}

/// The status of a hub error.
pub fn to_status(error: &HubError) -> Status {
    let (code, reason) = classify(error);
    status(code, reason, error.to_string())
}

impl From<HubError> for Status {
    fn from(error: HubError) -> Self {
        to_status(&error)
    }
}

/// The in-stream form of a hub error.
pub fn to_detail(error: &HubError) -> ErrorDetail {
    let (code, reason) = classify(error);
    ErrorDetail {
        code: code as i32,
        reason: reason.to_owned(),
        message: error.to_string(),
    }
}

/// An invalid request field that never reached the engine.
pub fn invalid_argument(reason: &str, message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_error_info() {
        let err = HubError::Core(CoreError::ChannelFull {
            channel: "c".into(),
            capacity: 1,
        });
        let status = to_status(&err);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "CHANNEL_FULL");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(to_detail(&err).code, 8);
    }
}
