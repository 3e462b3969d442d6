//! Bearer-token authentication: a tower layer in front of every gRPC service. With a
//! token configured, each call but those of `grpc.health.v1.Health` (which Kubernetes
//! probes make without credentials) must carry `authorization: Bearer <token>`; any other
//! call is refused with UNAUTHENTICATED and an `ErrorInfo` reason (`TOKEN_MISSING` or
//! `TOKEN_INVALID`), and counted in `chanlayer_auth_failures_total`.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::{Code, body::Body};
use tower_layer::Layer;
use tower_service::Service;

use crate::{grpc::status::status, metrics::AUTH_FAILURES, proto::reason};

/// The path prefix of the health service, which needs no token.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// The layer; a pass-through without a token.
#[derive(Clone, Default)]
pub(crate) struct AuthLayer {
    token: Option<Arc<[u8]>>,
}

impl AuthLayer {
    /// Requires `token` on every call but health; `None` requires nothing.
    pub(crate) fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(|t| Arc::from(t.into_bytes())),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone)]
pub(crate) struct Auth<S> {
    inner: S,
    token: Option<Arc<[u8]>>,
}

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Missing,
    Invalid,
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check(token: &[u8], request: &Request<Body>) -> Result<(), Refusal> {
    if request.uri().path().starts_with(HEALTH_PREFIX) {
        return Ok(());
    }
    let Some(value) = request.headers().get(http::header::AUTHORIZATION) else {
        return Err(Refusal::Missing);
    };
    let value = value.as_bytes();
    let presented = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii(),
        _ => return Err(Refusal::Invalid),
    };
    if same(presented, token) {
        Ok(())
    } else {
        Err(Refusal::Invalid)
    }
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for Auth<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if let Some(token) = &self.token
            && let Err(refusal) = check(token, &request)
        {
            let (reason, label, message) = match refusal {
                Refusal::Missing => (
                    reason::TOKEN_MISSING,
                    "missing",
                    "this server requires a bearer token: send `authorization: Bearer <token>`",
                ),
                Refusal::Invalid => (
                    reason::TOKEN_INVALID,
                    "invalid",
                    "the bearer token is not the one this server accepts",
                ),
            };
            metrics::counter!(AUTH_FAILURES, "reason" => label).increment(1);
            let response = status(Code::Unauthenticated, reason, message).into_http();
            return Box::pin(async move { Ok(response) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, auth: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder().uri(path);
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(Body::empty()).expect("request")
    }

    #[test]
    fn tokens_are_checked_except_for_health() {
        let token = b"s3cret";
        let send = "/chanlayer.v1.ChannelLayerService/Send";
        assert_eq!(check(token, &request(send, None)), Err(Refusal::Missing));
        assert_eq!(
            check(token, &request(send, Some("Bearer nope"))),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            check(token, &request(send, Some("Basic s3cret"))),
            Err(Refusal::Invalid)
        );
        assert_eq!(check(token, &request(send, Some("Bearer s3cret"))), Ok(()));
        assert_eq!(check(token, &request(send, Some("bearer s3cret"))), Ok(()));
        assert_eq!(
            check(token, &request("/grpc.health.v1.Health/Check", None)),
            Ok(())
        );
    }
}
