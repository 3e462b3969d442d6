//! `chanlayer_native`: the native transport of the chanlayer Python client.
//!
//! The pure-Python transport spends most of its time in grpc.aio: about 100 µs of client CPU
//! per stream frame, plus the layer's own bookkeeping of every operation in Python. This
//! extension moves both into Rust and keeps what is left in Python to a few calls per
//! message:
//!
//! - [`Connection`] (one per asyncio event loop) makes unary calls (request and response
//!   bodies passed through as bytes) and carries the session streams, in one of two ways:
//!   - direct (plaintext targets, the default): HTTP/2 (`h2`) over a non-blocking socket
//!     that the connection registers with the loop (`loop.add_reader`), polled on the loop's
//!     own thread ([`wire`]): a round trip is one write, one wakeup and one read;
//!   - threaded (TLS): a tonic channel on one tokio thread; completions are queued and the
//!     loop is woken through a socket pair it watches. The tokio side never takes the GIL.
//!
//!   Either way the completions of one wakeup are handled in one call, so one wakeup
//!   resolves every future that completed since the last one.
//! - [`Engine`] (one per session stream) runs the session's state machine (`session`, pure
//!   Rust with unit tests; the engine is its PyO3 glue): operations waiting
//!   for their in-order acknowledgement, receives multiplexed on the stream, per-channel
//!   waiters and prefetch buffers (with their deadlines), standing demand on specific
//!   channels, and what survives a reconnection. It runs on the loop's thread, under the
//!   GIL, when Python calls it or when the connection hands it a frame of events. A lone
//!   operation is written at once; operations queued while others await their
//!   acknowledgement go out as one frame per loop iteration.
//!
//! Reconnection (backoff, resume tokens, restoring memberships) stays in Python
//! (`chanlayer._native`), which drives the engine; the semantics are those of the
//! pure-Python session, described in `chanlayer._session`.
//!
//! The gRPC stubs, message types and session framing policy are those of `chanlayer-proto`,
//! the connection settings those of `chanlayer-client`; the extension does not depend on the
//! server.

mod completion;
mod connection;
mod engine;
mod runtime;
mod session;
mod wire;

use pyo3::prelude::*;

pub use connection::Connection;
pub use engine::Engine;

/// The extension module.
#[pymodule]
fn chanlayer_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Connection>()?;
    m.add_class::<Engine>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
