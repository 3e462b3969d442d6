//! What a command prints: its [`Report`] (text for a person, or JSON), or its [`Failure`]
//! as one line on stderr with the exit code that says what kind of failure it was.

use std::{fmt::Write as _, io::Write as _, process::ExitCode};

use serde_json::{Value, json};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::metrics::code_label;

/// The server refused or failed the call, or `status` found it not serving.
pub const EXIT_REFUSED: u8 = 1;
/// A bad flag or bad input; nothing was sent (clap uses the same code).
pub const EXIT_USAGE: u8 = 2;
/// The server cannot be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// What a command found.
pub struct Report {
    /// The text for a person.
    pub human: String,
    /// The machine output.
    pub json: Value,
    /// False when the command worked but what it found is a failure (a server that is not
    /// serving): the report is printed and the exit code is [`EXIT_REFUSED`].
    pub ok: bool,
}

impl Report {
    /// A report of a command that worked.
    pub fn new(human: String, json: Value) -> Self {
        Self {
            human,
            json,
            ok: true,
        }
    }

    /// Prints the report on stdout.
    pub fn print(self, json: bool) -> ExitCode {
        let mut out = std::io::stdout().lock();
        let written = if json {
            writeln!(out, "{}", self.json)
        } else {
            write!(out, "{}", self.human)
        };
        // A closed pipe (`chanlayer group big | head`) is not an error of the command.
        drop(written);
        if self.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
pub struct Failure {
    exit: u8,
    line: String,
    json: Value,
}

impl Failure {
    /// Bad input: nothing was sent.
    pub fn usage(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            exit: EXIT_USAGE,
            json: json!({ "error": { "kind": "usage", "message": message } }),
            line: message,
        }
    }

    /// The server cannot be reached at `url`.
    pub fn unreachable(url: &str, cause: &str) -> Self {
        Self {
            exit: EXIT_UNREACHABLE,
            line: format!("cannot reach the server at {url}: {cause}"),
            json: json!({
                "error": { "kind": "unreachable", "target": url, "message": cause }
            }),
        }
    }

    /// A call answered with `status`. A status the transport made up (unavailable or
    /// timed out, without the `ErrorInfo` every chanlayer refusal carries) means the
    /// server could not be reached.
    pub fn status(status: &Status, url: &str) -> Self {
        let reason = status.get_details_error_info().map(|info| info.reason);
        let code = code_label(status.code());
        if reason.is_none()
            && matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
            )
        {
            let cause = match std::error::Error::source(status) {
                Some(source) => super::connect::cause(source),
                None => status.message().to_owned(),
            };
            return Self::unreachable(url, &format!("{code}: {cause}"));
        }
        let mut line = match &reason {
            Some(reason) => format!("{code} ({reason}): {}", status.message()),
            None => format!("{code}: {}", status.message()),
        };
        if status.code() == Code::Unimplemented && reason.is_none() {
            line.push_str(" (is the target chanlayer's gRPC port?)");
        }
        if status.code() == Code::Unauthenticated {
            line.push_str(" (give the token with --token, --token-file or CHANLAYER_AUTH_TOKEN)");
        }
        Self {
            exit: EXIT_REFUSED,
            line,
            json: json!({
                "error": {
                    "kind": "status",
                    "code": code,
                    "reason": reason,
                    "message": status.message(),
                }
            }),
        }
    }

    /// A call of the typed client failed.
    pub fn client(error: chanlayer_client::ClientError, url: &str) -> Self {
        match error {
            chanlayer_client::ClientError::Status(status) => Self::status(&status, url),
            other => Self::unreachable(url, &other.to_string()),
        }
    }

    /// Prints the error line on stderr (and the JSON error on stdout with `--json`).
    pub fn print(self, json: bool) -> ExitCode {
        if json {
            println!("{}", self.json);
        }
        eprintln!("chanlayer: error: {}", self.line);
        ExitCode::from(self.exit)
    }
}

/// Aligned `name  value` lines.
#[derive(Default)]
pub struct Lines(Vec<(String, String)>);

impl Lines {
    /// Adds a line.
    pub fn add(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        self.0.push((name.to_owned(), value.to_string()));
        self
    }

    /// The lines, values aligned.
    pub fn render(&self) -> String {
        let width = self.0.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, value) in &self.0 {
            let _ = writeln!(out, "{name:<width$}  {value}");
        }
        out
    }
}

/// `n thing` or `n things`.
pub fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// A size in bytes, in binary units above 1 KiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return count(n, "byte");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration given in milliseconds: `850 ms`, `12.3 s`, `4m 05s`, `2h 03m`, `3d 04h`.
pub fn millis(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    seconds(ms / 1_000)
}

/// A duration given in seconds: `42s`, `4m 05s`, `2h 03m`, `3d 04h`.
pub fn seconds(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(1000), "1000 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(millis(850), "850 ms");
        assert_eq!(millis(12_345), "12.3 s");
        assert_eq!(millis(245_000), "4m 05s");
        assert_eq!(seconds(7_380), "2h 03m");
        assert_eq!(seconds(3 * 86_400 + 4 * 3_600), "3d 04h");
    }

    #[test]
    fn a_refusal_names_its_code_and_reason() {
        use tonic_types::{ErrorDetails, StatusExt};
        let status = Status::with_error_details(
            Code::ResourceExhausted,
            "channel \"x\" is full",
            ErrorDetails::with_error_info("CHANNEL_FULL", "chanlayer.dev", []),
        );
        let failure = Failure::status(&status, "http://127.0.0.1:1");
        assert_eq!(failure.exit, EXIT_REFUSED);
        assert_eq!(
            failure.line,
            "RESOURCE_EXHAUSTED (CHANNEL_FULL): channel \"x\" is full"
        );
        assert_eq!(failure.json["error"]["reason"], "CHANNEL_FULL");
        let lost = Failure::status(
            &Status::unavailable("connection reset"),
            "http://127.0.0.1:1",
        );
        assert_eq!(lost.exit, EXIT_UNREACHABLE);
    }
}
