//! A fake Degreed (API v2) to run by hand:
//! `fake-degreed --bind 127.0.0.1:8090 --client-id id --client-secret s --user a@example.com`.
//! Checks requests as `transmitters::fakes::degreed` describes and prints what it accepted.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use transmitters::fakes::{degreed::FakeDegreed, serve};

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_DEGREED_BIND", default_value = "127.0.0.1:8090")]
    bind: SocketAddr,
    /// The OAuth client id the fake accepts.
    #[arg(long, env = "FAKE_DEGREED_CLIENT_ID", default_value = "client")]
    client_id: String,
    /// The OAuth client secret the fake accepts.
    #[arg(long, env = "FAKE_DEGREED_CLIENT_SECRET", default_value = "secret")]
    client_secret: String,
    /// Emails of the users the fake knows (completions for others answer 400).
    #[arg(long = "user")]
    users: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let fake = FakeDegreed::new(&args.client_id, &args.client_secret);
    for user in &args.users {
        fake.know_user(user);
    }
    let running = serve(fake.router(), args.bind).await?;
    println!("fake Degreed on {}", running.url());
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let received = fake.received();
        for request in &received[seen..] {
            println!("{} {} {}", request.method, request.path, request.body);
        }
        seen = received.len();
    }
}
