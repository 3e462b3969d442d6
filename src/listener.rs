//! The gRPC listener's connections: at most `--max-connections` open at once (one past it
//! is closed as soon as it is accepted), and each must send the start of HTTP/2 within
//! `--handshake-timeout-ms`, or it is closed: a client that opens connections and sends
//! half a preface holds nothing for long. HTTP/2 has no such deadline of its own in the
//! transport (hyper waits for a preface forever); keepalive pings only start once the
//! connection is up.
//!
//! The deadline counts the first bytes of the connection, which on a plaintext
//! connection are the preface itself. Over TLS those bytes are the TLS handshake, which
//! tonic's own TLS handshake timeout bounds (set to the same value).
//!
//! [`Connections`] is generic over the accepted stream: TCP connections (`--listen
//! HOST:PORT`) and Unix domain socket connections (`--listen unix:PATH`) get the same limit
//! and the same deadline.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures_util::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpStream, UnixStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tonic::transport::server::Connected;

use crate::{core::Limit, metrics::LIMIT_HITS};

/// The bytes of the HTTP/2 client preface (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`).
const PREFACE_BYTES: usize = 24;

/// A stream the listener accepts: TCP or Unix.
pub(crate) trait Accepted: AsyncRead + AsyncWrite + Connected + Unpin {
    /// Who connected, for the log line of a refused connection.
    fn peer(&self) -> String;
}

impl Accepted for TcpStream {
    fn peer(&self) -> String {
        self.peer_addr()
            .map_or_else(|_| "unknown".to_owned(), |a| a.to_string())
    }
}

impl Accepted for UnixStream {
    fn peer(&self) -> String {
        // A Unix client's address is usually unnamed; its credentials say who it is.
        match self.peer_cred() {
            Ok(cred) => format!(
                "uid {} pid {}",
                cred.uid(),
                cred.pid().map_or_else(|| "?".to_owned(), |p| p.to_string())
            ),
            Err(_) => "unknown".to_owned(),
        }
    }
}

/// The accepted connections of the gRPC listener, each with its deadline and its place
/// under the connection limit.
pub(crate) struct Connections<I> {
    incoming: I,
    places: Arc<Semaphore>,
    handshake_timeout: Duration,
    count_refusals: bool,
}

impl<I> Connections<I> {
    /// Connections from `incoming`: at most `max` open at once, each given
    /// `handshake_timeout` to start HTTP/2. Refusals are counted in
    /// `chanlayer_limit_hits_total` when `count_refusals`.
    pub(crate) fn new(
        incoming: I,
        max: usize,
        handshake_timeout: Duration,
        count_refusals: bool,
    ) -> Self {
        Self {
            incoming,
            places: Arc::new(Semaphore::new(max)),
            handshake_timeout,
            count_refusals,
        }
    }
}

impl<I, S> Stream for Connections<I>
where
    I: Stream<Item = io::Result<S>> + Unpin,
    S: Accepted,
{
    type Item = io::Result<Connection<S>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let stream = match Pin::new(&mut self.incoming).poll_next(cx) {
                Poll::Ready(Some(Ok(stream))) => stream,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            match Arc::clone(&self.places).try_acquire_owned() {
                Ok(place) => {
                    return Poll::Ready(Some(Ok(Connection {
                        stream,
                        _place: place,
                        preface: Some(Preface {
                            deadline: Box::pin(tokio::time::sleep(self.handshake_timeout)),
                            left: PREFACE_BYTES,
                        }),
                    })));
                }
                Err(_) => {
                    // Closed at once: the client sees its connection reset, not a hang.
                    if self.count_refusals {
                        ::metrics::counter!(LIMIT_HITS, "limit" => Limit::Connections.name())
                            .increment(1);
                    }
                    tracing::debug!(
                        peer = %stream.peer(),
                        "connection refused: the listener holds --max-connections"
                    );
                    drop(stream);
                }
            }
        }
    }
}

/// The deadline of a connection that has not yet sent its first bytes.
struct Preface {
    deadline: Pin<Box<Sleep>>,
    left: usize,
}

/// One accepted connection: a stream that holds its place under the limit until it
/// closes, and fails its reads once the handshake deadline passes without the preface.
pub(crate) struct Connection<S> {
    stream: S,
    _place: OwnedSemaphorePermit,
    preface: Option<Preface>,
}

impl<S: Accepted> AsyncRead for Connection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(preface) = &mut this.preface else {
            return read;
        };
        match &read {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() - before;
                preface.left = preface.left.saturating_sub(got);
                if preface.left == 0 || got == 0 {
                    this.preface = None;
                }
            }
            Poll::Ready(Err(_)) => this.preface = None,
            Poll::Pending => {
                if preface.deadline.as_mut().poll(cx).is_ready() {
                    this.preface = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within the handshake timeout",
                    )));
                }
            }
        }
        read
    }
}

impl<S: Accepted> AsyncWrite for Connection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl<S: Accepted> Connected for Connection<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
