//! The tokio runtime of the process: one worker thread does the network I/O of every
//! connection, so the extension adds one busy thread to the Python process, not one per
//! core.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::runtime::{Builder, Handle, Runtime};

/// The runtime and the process it was made in.
static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The runtime's handle, made on first use.
///
/// A child made by `fork()` has the parent's runtime in memory but none of its threads: it
/// gets a runtime of its own, and the parent's is leaked, since dropping it would wait for
/// threads that do not exist in the child.
pub(crate) fn handle() -> std::io::Result<Handle> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock();
    if let Some((owner, runtime)) = &*slot
        && *owner == pid
    {
        return Ok(runtime.handle().clone());
    }
    if let Some((_, inherited)) = slot.take() {
        std::mem::forget(inherited);
    }
    let runtime = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("chanlayer-io")
            .enable_all()
            .build()?,
    );
    let handle = runtime.handle().clone();
    *slot = Some((pid, runtime));
    Ok(handle)
}
