//! The `chanlayer` binary: the server (`chanlayer`, `chanlayer serve`), or one of the
//! operator's commands that talk to a running server (`chanlayer status`, ...).

use std::process::ExitCode;

use chanlayer::{
    cli,
    config::{Cli, Command, LogFormat, ServeArgs},
    server, shutdown,
};
use tracing_subscriber::EnvFilter;

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let mut cli = Cli::load();
    match cli.command.take() {
        Some(Command::Operate(operation)) => cli::run(operation),
        Some(Command::Serve(args)) => serve(args),
        None => serve(cli.serve),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    init_tracing(args.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.worker_threads {
        runtime.worker_threads(usize::from(threads));
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(serve_on_runtime(args)),
        Err(error) => {
            tracing::error!(%error, "cannot start the runtime");
            ExitCode::FAILURE
        }
    }
}

async fn serve_on_runtime(args: ServeArgs) -> ExitCode {
    let listener = match server::bind(&args).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match server::run(listener, args, shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
