//! The one mapping from hub and engine errors to gRPC statuses: a canonical code plus a
//! `google.rpc.ErrorInfo` with an UPPER_SNAKE_CASE reason, which is what clients match on.
//! The reason, the code's family and the limit come from the error itself
//! ([`HubError::reason`], [`HubError::category`], [`HubError::limit`]); a refusal at a
//! limit names it in the `ErrorInfo` metadata (`limit`), so that neither clients nor the
//! metrics read message text.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use std::collections::HashMap;

use crate::{
    core::{Category, LIMIT_METADATA_KEY, Limit},
    hub::HubError,
    proto::{reason, v1::ErrorDetail},
};

/// The `ErrorInfo.domain` of every chanlayer error.
pub(crate) const ERROR_DOMAIN: &str = crate::proto::reason::DOMAIN;

/// The status code of an error's family.
fn code(category: Category) -> Code {
    match category {
        Category::InvalidArgument => Code::InvalidArgument,
        Category::ResourceExhausted => Code::ResourceExhausted,
        Category::AlreadyExists => Code::AlreadyExists,
        Category::Unavailable => Code::Unavailable,
        Category::FailedPrecondition => Code::FailedPrecondition,
    }
}

/// A status with an `ErrorInfo` detail.
pub(crate) fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    status_with(code, reason, None, message)
}

/// A status with an `ErrorInfo` detail that names the limit it hit, if any.
fn status_with(
    code: Code,
    reason: &str,
    limit: Option<Limit>,
    message: impl Into<String>,
) -> Status {
    let metadata: HashMap<String, String> = limit
        .map(|limit| (LIMIT_METADATA_KEY.to_owned(), limit.name().to_owned()))
        .into_iter()
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// The status of a hub error.
pub(crate) fn to_status(error: &HubError) -> Status {
    status_with(
        code(error.category()),
        error.reason(),
        error.limit(),
        error.to_string(),
    )
}

impl From<HubError> for Status {
    fn from(error: HubError) -> Self {
        to_status(&error)
    }
}

/// The in-stream form of a hub error.
pub(crate) fn to_detail(error: &HubError) -> ErrorDetail {
    ErrorDetail {
        code: code(error.category()) as i32,
        reason: error.reason().to_owned(),
        message: error.to_string(),
    }
}

/// The status of a Session frame larger than the server decodes, from the `OUT_OF_RANGE`
/// status (with no reason) that the transport's decoder gives: a `RESOURCE_EXHAUSTED`
/// naming the limit, as every other refusal at a limit does.
pub(crate) fn frame_too_large(decoder: &str) -> Status {
    status_with(
        Code::ResourceExhausted,
        reason::FRAME_TOO_LARGE,
        Some(Limit::MessageBytes),
        format!(
            "a frame of the Session stream is larger than this server decodes ({decoder}); \
             a frame carries at most --max-message-bytes plus 1 MiB: split its operations \
             over several frames"
        ),
    )
}

/// The status of a unary request larger than the server decodes: its message is too
/// large, so it is refused as one (`MESSAGE_TOO_LARGE`), which clients already map to
/// their `MessageTooLarge`.
pub(crate) fn request_too_large(decoder: &str) -> Status {
    status_with(
        Code::ResourceExhausted,
        reason::MESSAGE_TOO_LARGE,
        Some(Limit::MessageBytes),
        format!(
            "the request is larger than this server decodes ({decoder}): its message is too large"
        ),
    )
}

/// The status that ends a Session stream whose inbound side failed with `error`.
pub(crate) fn inbound_failed(error: &Status) -> Status {
    match error.code() {
        Code::OutOfRange | Code::ResourceExhausted => frame_too_large(error.message()),
        Code::Internal => status(
            Code::InvalidArgument,
            reason::INVALID_FRAME,
            format!(
                "a frame of the Session stream cannot be decoded: {}",
                error.message()
            ),
        ),
        code => status(
            code,
            reason::STREAM_BROKEN,
            format!(
                "the Session stream's requests broke off: {}",
                error.message()
            ),
        ),
    }
}

/// The status of a call whose handling panicked: the call ends with it, and the server
/// keeps serving.
pub(crate) fn internal_error(what: &str) -> Status {
    status(
        Code::Internal,
        reason::INTERNAL_ERROR,
        format!("the server failed while {what}; the failure is in its log"),
    )
}

/// An invalid request field that never reached the engine.
pub(crate) fn invalid_argument(reason: &str, message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CoreError;

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
        assert!(info.metadata.is_empty(), "a full channel is not a limit");
    }

    #[test]
    fn a_refusal_at_a_limit_names_the_limit() {
        let err = HubError::Core(CoreError::LimitExceeded {
            namespace: "my-namespaces".into(),
            limit: Limit::ChannelsPerNamespace,
            what: "channels".into(),
            max: 1,
        });
        let status = to_status(&err);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "LIMIT_EXCEEDED");
        assert_eq!(
            info.metadata.get(LIMIT_METADATA_KEY).map(String::as_str),
            Some("channels_per_namespace")
        );
        let sessions = to_status(&HubError::TooManySessions { limit: 1 });
        let info = sessions.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.metadata[LIMIT_METADATA_KEY], "sessions");
    }
}
