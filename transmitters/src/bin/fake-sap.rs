//! A fake SAP SuccessFactors Learning to run by hand:
//! `fake-sap --bind 127.0.0.1:8091 --client-id id --client-secret s --company-id acme
//! --api-user admin --inactive EMP7`.
//! Checks requests as `transmitters::fakes::sap` describes and prints what it accepted.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use transmitters::fakes::{sap::FakeSap, serve};

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKE_SAP_BIND", default_value = "127.0.0.1:8091")]
    bind: SocketAddr,
    /// The OAuth client id the fake accepts (Basic auth of the token request).
    #[arg(long, env = "FAKE_SAP_CLIENT_ID", default_value = "client")]
    client_id: String,
    /// The OAuth client secret the fake accepts.
    #[arg(long, env = "FAKE_SAP_CLIENT_SECRET", default_value = "secret")]
    client_secret: String,
    /// The company id token scopes must name.
    #[arg(long, env = "FAKE_SAP_COMPANY_ID", default_value = "company")]
    company_id: String,
    /// The API user: admin calls need a token issued for this user id.
    #[arg(long, env = "FAKE_SAP_API_USER", default_value = "admin")]
    api_user: String,
    /// SAP user ids that are inactive (their learning events are refused; searchStudent
    /// lists them).
    #[arg(long = "inactive")]
    inactive: Vec<String>,
    /// Seconds between two accepted course imports (a sooner one answers 429); 0 for none.
    #[arg(long, default_value_t = 0)]
    course_interval: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut fake = FakeSap::new(
        &args.client_id,
        &args.client_secret,
        &args.company_id,
        &args.api_user,
    );
    if args.course_interval > 0 {
        fake = fake.with_course_interval(Duration::from_secs(args.course_interval));
    }
    for user in &args.inactive {
        fake.deactivate(user);
    }
    let running = serve(fake.router(), args.bind).await?;
    println!("fake SAP SuccessFactors on {}/", running.url());
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
