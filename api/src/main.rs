//! The service binary: configuration, logging, database, migrations, then the roles it was
//! asked for (HTTP API, projection runners, transmitter workers) until SIGTERM or Ctrl-C.

use api::auth::Verifier;
use api::config::{Command, Config, LogFormat};
use api::{app, AppState};
use clap::Parser;
use projections::runner;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

/// Rebuilds and runners allocate the events of a batch on one thread and free them on
/// another, where the system allocator spent much of a rebuild on its own locks (README,
/// Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let pool = store::db::connect(&config.database_url, config.database_max_connections)
        .await
        .map_err(|e| format!("cannot connect to the database (check DATABASE_URL): {e}"))?;
    store::db::migrate(&pool)
        .await
        .map_err(|e| format!("database migration failed: {e}"))?;
    if let Some(Command::Migrate) = config.command {
        tracing::info!("migrations applied");
        return Ok(());
    }

    let verifier = if config.runs_api() {
        Some(verifier(&config)?)
    } else {
        None
    };

    let secrets = match config.secrets_key.as_deref() {
        Some(key) => Some(
            store::secrets::SecretBox::from_hex(key)
                .map_err(|e| format!("invalid SECRETS_KEY ({e})"))?,
        ),
        None => {
            if config.runs_api() {
                tracing::warn!(
                    "no SECRETS_KEY: channel configurations carrying secrets will be refused"
                );
            }
            None
        }
    };

    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let runners = if config.runs_projections() {
        let runners = runner::spawn_all(&pool, &shutdown);
        tracing::info!(count = runners.len(), "projection runners started");
        runners
    } else {
        Vec::new()
    };
    let workers = if config.runs_workers() {
        let options = transmitters::WorkerOptions {
            workers: config.worker_loops,
            secrets: match config.secrets_key.as_deref() {
                Some(key) => Some(
                    store::secrets::SecretBox::from_hex(key)
                        .map_err(|e| format!("invalid SECRETS_KEY ({e})"))?,
                ),
                None => None,
            },
            lms_domain: config.lms_domain.clone(),
            ..Default::default()
        };
        let (pool, mut shutdown) = (pool.clone(), shutdown.clone());
        tracing::info!(loops = options.workers, "transmitter workers started");
        Some(tokio::spawn(async move {
            let stopping = async move {
                let _ = shutdown.wait_for(|stopping| *stopping).await;
            };
            if let Err(e) = transmitters::run(pool, options, stopping).await {
                tracing::error!(error = %e, "transmitter workers stopped");
            }
        }))
    } else {
        None
    };
    let served = if let Some(verifier) = verifier {
        let state = AppState::new(pool, verifier);
        let state = match secrets {
            Some(secrets) => state.with_secrets(secrets),
            None => state,
        };
        serve(state, config.bind, shutdown.clone()).await
    } else {
        let mut shutdown = shutdown.clone();
        let _ = shutdown.wait_for(|stopping| *stopping).await;
        Ok(())
    };
    for runner in runners {
        let _ = runner.await;
    }
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    served
}

/// The token verifier the configuration asks for.
fn verifier(config: &Config) -> Result<Verifier, String> {
    let pem = match &config.jwt_public_key {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("cannot read the JWT public key {}: {e}", path.display()))?,
        ),
        None => None,
    };
    Verifier::new(
        config.jwt_secret.as_deref(),
        pem.as_deref(),
        config.jwt_issuer.as_deref(),
        config.jwt_audience.as_deref(),
    )
    .map_err(|e| format!("{e} (JWT_SECRET or JWT_PUBLIC_KEY_FILE)"))
}

async fn serve(
    state: AppState,
    bind: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    tracing::info!(%bind, "serving");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// Resolves on SIGTERM or Ctrl-C. In-flight requests then finish, and runners end after their
/// current batch, before the process exits.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
