//! The gRPC listener on a Unix domain socket (`--listen unix:PATH`), for a sidecar that
//! shares a volume with its gateway instead of a loopback port.
//!
//! What a production start-up and shutdown do with the socket file:
//!
//! - A file already at the path is replaced only when it is a socket that nothing listens
//!   on (a connection to it is refused, `ECONNREFUSED`): what a previous run killed before
//!   it could clean up leaves behind. A socket some process accepts connections on is
//!   refused ("another server is listening on it"), and so is anything that is not a
//!   socket (a regular file, a directory, ...): it is never removed.
//! - The socket is created under the process's umask, then set to `--listen-mode` (0660
//!   by default) with chmod before the first connection is accepted. Connecting needs
//!   write permission on the file; the directory's own permissions apply too.
//! - At a clean shutdown (and when the start-up fails after binding) the file is removed,
//!   unless another file has taken its place meanwhile.

use std::{
    fs::Permissions,
    io::{self, ErrorKind},
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tokio::net::UnixListener;

/// The socket file this process created, removed when dropped if it is still the same
/// file: a socket with the same device, inode and change time (an inode number alone may
/// be reused by a file made after this one was removed).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    identity: Identity,
}

#[derive(Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &std::fs::Metadata) -> Option<Self> {
        meta.file_type().is_socket().then(|| Self {
            dev: meta.dev(),
            ino: meta.ino(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if Identity::of(&meta).as_ref() == Some(&self.identity) => {
                match std::fs::remove_file(&self.path) {
                    Ok(()) => tracing::info!(path = %self.path.display(), "socket file removed"),
                    Err(error) => tracing::warn!(
                        path = %self.path.display(), %error, "cannot remove the socket file"
                    ),
                }
            }
            // Gone already, or replaced by another process's file: not ours to remove.
            _ => {}
        }
    }
}

/// Binds a Unix listener at `path` with permissions `mode`; see the module docs for what
/// happens to a file already there. The error says what to do about it.
pub(crate) fn bind(path: &Path, mode: u32) -> io::Result<(UnixListener, SocketFile)> {
    clear_stale(path)?;
    let listener = UnixListener::bind(path).map_err(|error| {
        let directory = path.parent().filter(|d| !d.as_os_str().is_empty());
        match (error.kind(), directory) {
            (ErrorKind::NotFound, Some(dir)) => io::Error::new(
                ErrorKind::NotFound,
                format!("{error}: the directory {} must exist", dir.display()),
            ),
            (ErrorKind::PermissionDenied, Some(dir)) => io::Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{error}: the server's user must be able to create files in {}",
                    dir.display()
                ),
            ),
            _ => error,
        }
    })?;
    let chmod = std::fs::set_permissions(path, Permissions::from_mode(mode));
    let meta = std::fs::symlink_metadata(path)?;
    let file = SocketFile {
        path: path.to_owned(),
        identity: Identity::of(&meta).ok_or_else(|| {
            io::Error::other(format!("{} is not a socket after binding", path.display()))
        })?,
    };
    // A failed chmod drops `file`, which removes the socket.
    chmod.map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot set the socket's permissions to {mode:04o}: {error}"),
        )
    })?;
    Ok((listener, file))
}

/// Removes a socket file that nothing listens on; refuses a live socket and any other
/// kind of file.
fn clear_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket (a {}); chanlayer only replaces a stale socket \
                 file, so remove it or choose another path",
                path.display(),
                kind_of(&meta.file_type())
            ),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            ErrorKind::AddrInUse,
            format!(
                "another server is listening on {} (it accepted a connection); stop it or \
                 choose another path",
                path.display()
            ),
        )),
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale socket file (nothing listens on it)");
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot remove the stale socket file {}: {e}",
                        path.display()
                    ),
                )),
            }
        }
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io::Error::new(
            error.kind(),
            format!(
                "{} is a socket, and connecting to it to see whether a server listens failed \
                 with: {error}; it is left in place",
                path.display()
            ),
        )),
    }
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_fifo() {
        "named pipe"
    } else if file_type.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("chanlayer-uds-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = temp_dir("stale");
        let path = dir.join("s.sock");
        // A socket file whose listener is gone: what a killed server leaves.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let (listener, file) = bind(&path, 0o600).expect("replaces the stale file");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let error = bind(&path, 0o600).expect_err("a live socket");
        assert_eq!(error.kind(), ErrorKind::AddrInUse);
        assert!(error.to_string().contains("another server"), "{error}");
        drop(listener);
        drop(file);
        assert!(!path.exists(), "removed when dropped");
        std::fs::write(&path, b"data").unwrap();
        let error = bind(&path, 0o600).expect_err("a regular file");
        assert!(
            error.to_string().contains("not a socket (a regular file)"),
            "{error}"
        );
        assert!(path.exists(), "never removed");
        let error = bind(&dir.join("missing/s.sock"), 0o600).expect_err("no directory");
        assert!(error.to_string().contains("must exist"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_replaced_file_is_not_removed() {
        let dir = temp_dir("replaced");
        let path = dir.join("s.sock");
        let (listener, file) = bind(&path, 0o660).expect("binds");
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(file);
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
