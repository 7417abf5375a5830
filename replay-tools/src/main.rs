//! `replay-tools`: consent history, rebuilds, status, export, import and verification of the
//! log. `replay-tools --help` is the manual.

use clap::Parser;
use std::process::ExitCode;

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
