//! What the transports hand back to the event loop's thread: [`Completion`]s of calls and
//! streams, and the [`Failure`] a call or a stream ended with. A leaf: the connection, the
//! wire, the session state machine and the engine all use it, and it uses none of them.

use bytes::Bytes;
use chanlayer_proto::{reason, v1 as pb};
use pyo3::prelude::*;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Why a call or a stream failed: a status as Python's `RemoteError` takes it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The canonical status code number.
    pub(crate) code: i32,
    /// The `ErrorInfo` reason of the chanlayer domain, or "".
    pub(crate) reason: String,
    /// The status message.
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn from_status(status: &Status) -> Self {
        let reason = status
            .get_details_error_info()
            .filter(|info| info.domain == reason::DOMAIN || info.domain.is_empty())
            .map(|info| info.reason)
            .unwrap_or_default();
        Self {
            code: status.code() as i32,
            reason,
            message: status.message().to_owned(),
        }
    }

    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code: code as i32,
            reason: String::new(),
            message: message.into(),
        }
    }

    /// `(code, reason, message)`, what Python's `RemoteError` is built from.
    pub(crate) fn to_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok((self.code, self.reason.as_str(), self.message.as_str())
            .into_pyobject(py)?
            .into_any())
    }
}

/// Something that finished on the runtime and must be handled on the loop's thread.
pub(crate) enum Completion {
    /// A unary call ended.
    Call {
        id: u64,
        result: Result<Bytes, Failure>,
    },
    /// A `wait_ready` ended: true when the server is reachable.
    Ready { id: u64, ok: bool },
    /// A frame of session events.
    Frame {
        engine: u64,
        generation: u64,
        events: Vec<pb::SessionEvent>,
    },
    /// A session stream ended (`None`: cleanly).
    Ended {
        engine: u64,
        generation: u64,
        failure: Option<Failure>,
    },
}
