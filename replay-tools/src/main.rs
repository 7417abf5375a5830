//! `replay-tools`: consent history, rebuilds, status, export, import and verification of the
//! log. `replay-tools --help` is the manual.

use clap::Parser;
use std::process::ExitCode;

/// Rebuilds and runners allocate the events of a batch on one thread and free them on
/// another, where the system allocator spent much of a rebuild on its own locks (README,
/// Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = replay_tools::cli::Cli::parse();
    match replay_tools::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}
