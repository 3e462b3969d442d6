//! The TOML config file of the real binary: its keys are the flags', flags and the
//! environment win over it, and an unknown key or a bad value stops the start-up with a
//! message that names it.

use crate::support;

use std::path::PathBuf;

use support::{Server, ns, start_fails};

/// A config file removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(test: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "chanlayer-config-{test}-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("config written");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn max_message_bytes(server: &Server) -> u64 {
    let client = server.client(&ns("config")).await;
    let session = client.session().await.expect("session");
    session.opened().max_message_bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_sets_what_flags_and_environment_leave_alone() {
    let file = ConfigFile::new(
        "layers",
        "# chanlayer\nmax-message-bytes = 2048\nmax-pending-receives = 7\nlog-format = \"json\"\n\
         metrics-listen = \"127.0.0.1:0\"\n",
    );

    // The file alone.
    let server = Server::start(&["--config", file.path()]);
    assert_eq!(max_message_bytes(&server).await, 2048);
    let client = server.client(&ns("config")).await;
    let session = client.session().await.expect("session");
    assert_eq!(session.opened().max_pending_receives, 7);
    drop(server);

    // The environment wins over the file.
    let server = Server::start_with_env(
        "127.0.0.1:0",
        &["--config", file.path()],
        &[("CHANLAYER_MAX_MESSAGE_BYTES", "4096")],
    );
    assert_eq!(max_message_bytes(&server).await, 4096);
    drop(server);

    // A flag wins over both.
    let server = Server::start_with_env(
        "127.0.0.1:0",
        &["--config", file.path(), "--max-message-bytes", "8192"],
        &[("CHANLAYER_MAX_MESSAGE_BYTES", "4096")],
    );
    assert_eq!(max_message_bytes(&server).await, 8192);
    drop(server);

    // The file can also come from CHANLAYER_CONFIG.
    let server = Server::start_with_env("127.0.0.1:0", &[], &[("CHANLAYER_CONFIG", file.path())]);
    assert_eq!(max_message_bytes(&server).await, 2048);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_can_turn_metrics_off() {
    let file = ConfigFile::new("metrics-off", "metrics-listen = \"off\"\n");
    let server = Server::start_with_env("127.0.0.1:0", &[], &[("CHANLAYER_CONFIG", file.path())]);
    assert!(server.metrics_addr.is_none());
}

#[test]
fn an_unknown_key_stops_the_start_up_naming_it() {
    let file = ConfigFile::new("unknown", "listen = \"127.0.0.1:0\"\nmax-sesions = 10\n");
    let (code, stderr) = start_fails(&["serve", "--config", file.path()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown key `max-sesions`"), "{stderr}");
    assert!(stderr.contains(file.path()), "{stderr}");
}

#[test]
fn a_bad_value_stops_the_start_up_naming_it() {
    for (contents, key) in [
        ("max-message-bytes = 10\n", "max-message-bytes"),
        ("listen = \"nowhere\"\n", "listen"),
        ("shards = \"many\"\n", "shards"),
        ("log-format = \"xml\"\n", "log-format"),
        ("max-sessions = [1, 2]\n", "max-sessions"),
    ] {
        let file = ConfigFile::new("bad", contents);
        let (code, stderr) = start_fails(&["--config", file.path()], &[]);
        assert_eq!(code, 2, "{contents}: {stderr}");
        assert!(stderr.contains(&format!("`{key}`")), "{contents}: {stderr}");
    }
    let file = ConfigFile::new("not-toml", "max-sessions = \n");
    let (code, stderr) = start_fails(&["--config", file.path()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not valid TOML"), "{stderr}");
}

#[test]
fn a_missing_file_stops_the_start_up_naming_it() {
    let (code, stderr) = start_fails(&["--config", "/nonexistent/chanlayer.toml"], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("/nonexistent/chanlayer.toml"), "{stderr}");
}
