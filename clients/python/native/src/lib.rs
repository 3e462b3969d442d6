//! `chanlayer_native`: the native transport of the chanlayer Python client.
//!
//! The pure-Python transport spends most of its time in grpc.aio: about 100 µs of client CPU
//! per stream frame, plus the layer's own bookkeeping of every operation in Python. This
//! extension moves both into Rust and keeps what is left in Python to a few calls per
//! message:
//!
//! - [`Connection`] (one per asyncio event loop) owns a tonic channel to the server, makes
//!   unary calls with request and response bodies passed through as bytes, and is the
//!   bridge back into the loop: tasks on a tokio runtime push their completions into one
//!   queue and write a byte to a socket pair that the loop watches (`loop.add_reader`). The
//!   loop then drains the queue in one call, so one wakeup resolves every future that
//!   completed since the last one. The tokio side never takes the GIL.
//! - [`Engine`] (one per session stream) is the session's state machine: operations waiting
//!   for their in-order acknowledgement, receives multiplexed on the stream, per-channel
//!   waiters and prefetch buffers (with their deadlines), standing demand on specific
//!   channels, and what survives a reconnection. It runs on the loop's thread, under the
//!   GIL, when Python calls it or when the connection drains a frame of events. A lone
//!   operation is written at once; operations queued while others await their
//!   acknowledgement go out as one frame per loop iteration.
//!
//! Reconnection (backoff, resume tokens, restoring memberships) stays in Python
//! (`chanlayer._native_session`), which drives the engine; the semantics are those of the
//! pure-Python session, described in `chanlayer._session`.
//!
//! The gRPC stubs, message types and connection settings are those of the server crate
//! (`chanlayer::proto`, `chanlayer::client`).

mod connection;
mod engine;
mod runtime;
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
