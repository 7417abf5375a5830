//! A fake Cornerstone User Progress API to run by hand:
//! `fake-cornerstone --bind 127.0.0.1:8092 --key k --secret s --session-token t`.
//! Accepts progress records as `transmitters::fakes::cornerstone` describes (at any path ending
//! in `/progress`) and prints each one it accepts.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use transmitters::fakes::{cornerstone::FakeCornerstone, serve};

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_CSOD_BIND", default_value = "127.0.0.1:8092")]
    bind: SocketAddr,
    /// The Basic-auth user accepted (the configuration's `client_id`).
    #[arg(long, env = "FAKE_CSOD_KEY", default_value = "key")]
    key: String,
    /// The Basic-auth password accepted (the configuration's `client_secret`).
    #[arg(long, env = "FAKE_CSOD_SECRET", default_value = "secret")]
    secret: String,
    /// A session token to honour (as a launch would have issued it); repeatable.
    #[arg(long = "session-token", default_value = "session")]
    session_tokens: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let fake = FakeCornerstone::new(&args.key, &args.secret);
    for token in &args.session_tokens {
        fake.issue_token(token);
    }
    let running = serve(fake.router(), args.bind).await?;
    println!(
        "fake Cornerstone on {}/<callback path>/progress",
        running.url()
    );
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let received = fake.received();
        for record in &received[seen..] {
            println!("{} {}", record.path, record.record);
        }
        seen = received.len();
    }
}
