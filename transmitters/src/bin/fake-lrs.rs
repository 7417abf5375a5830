//! A fake xAPI LRS to run by hand: `fake-lrs --bind 127.0.0.1:8089 --key k --secret s`.
//! Accepts statements as `transmitters::fakes::xapi` describes and logs each one it stores.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use transmitters::fakes::{serve, xapi::FakeLrs};

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_LRS_BIND", default_value = "127.0.0.1:8089")]
    bind: SocketAddr,
    /// The Basic-auth user the LRS accepts.
    #[arg(long, env = "FAKE_LRS_KEY", default_value = "key")]
    key: String,
    /// The Basic-auth password the LRS accepts.
    #[arg(long, env = "FAKE_LRS_SECRET", default_value = "secret")]
    secret: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let lrs = FakeLrs::new(&args.key, &args.secret);
    let running = serve(lrs.router(), args.bind).await?;
    println!("fake LRS on {}/statements", running.url());
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let received = lrs.received();
        for statement in &received[seen..] {
            println!("{}", statement.statement);
        }
        seen = received.len();
    }
}
