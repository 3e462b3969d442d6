//! What keeps one call's failure to that call: a panic while handling a call or a Session
//! frame becomes an `INTERNAL` status for it (logged), instead of unwinding through the
//! connection's task and cutting every other call it carries; and a request too large to
//! decode gets a reason ([`FrameLimitLayer`]).

use std::{
    any::Any,
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::FutureExt;
use http::{Request, Response};
use tonic::{Code, Status, body::Body};
use tower_layer::Layer;
use tower_service::Service;

use crate::grpc::status::{internal_error, request_too_large};

/// The text of a panic's payload.
fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Runs `f`; a panic becomes the `INTERNAL` status of `what` (what the server was doing).
pub(crate) fn catch<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, Status> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        tracing::error!(panic = panic_text(&*panic), "panicked while {what}");
        internal_error(what)
    })
}

/// Runs a call's handler; a panic becomes its `INTERNAL` status.
pub(crate) async fn guarded<T>(
    what: &str,
    handler: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            tracing::error!(panic = panic_text(&*panic), "panicked while {what}");
            Err(internal_error(what))
        }
    }
}

/// A tower layer that gives a reason to the refusal of a unary request too large to
/// decode: the transport answers it with an `OUT_OF_RANGE` status and no details before
/// the service sees the request; this turns it into `RESOURCE_EXHAUSTED` /
/// `MESSAGE_TOO_LARGE` naming the `message_bytes` limit. (A Session stream's frames are
/// decoded by the service, which ends the stream with `FRAME_TOO_LARGE`.)
#[derive(Clone, Copy, Default)]
pub(crate) struct FrameLimitLayer;

impl<S> Layer<S> for FrameLimitLayer {
    type Service = FrameLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrameLimit { inner }
    }
}

/// The service of [`FrameLimitLayer`].
#[derive(Clone)]
pub(crate) struct FrameLimit<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for FrameLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            // Only the decoder answers OUT_OF_RANGE: the server's own refusals never do.
            match Status::from_header_map(response.headers()) {
                Some(status)
                    if status.code() == Code::OutOfRange && status.details().is_empty() =>
                {
                    Ok(request_too_large(status.message()).into_http())
                }
                _ => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    fn is_internal_error(status: &Status) -> bool {
        status.code() == Code::Internal
            && status
                .get_details_error_info()
                .is_some_and(|info| info.reason == "INTERNAL_ERROR")
    }

    #[test]
    fn a_panic_becomes_an_internal_status_with_a_reason() {
        assert_eq!(catch("adding", || 1 + 1).unwrap(), 2);
        let status = catch("applying a frame", || -> u32 { panic!("boom") }).unwrap_err();
        assert!(is_internal_error(&status), "{status:?}");
        assert!(status.message().contains("applying a frame"));
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal() {
        let ok: Result<u32, Status> = guarded("serving", async { Ok(3) }).await;
        assert_eq!(ok.unwrap(), 3);
        let refused: Result<u32, Status> =
            guarded("serving", async { Err(Status::not_found("x")) }).await;
        assert_eq!(refused.unwrap_err().code(), Code::NotFound);
        fn explode() -> u32 {
            panic!("boom")
        }
        let panicked: Result<u32, Status> = guarded("serving Send", async { Ok(explode()) }).await;
        assert!(is_internal_error(&panicked.unwrap_err()));
    }
}
