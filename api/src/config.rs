//! Configuration from flags and environment variables; the doc comments are `--help`.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;

/// The enterprise learning service: enterprise customers, learners, consent, enrollments,
/// coupons and completions, kept as events in PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Config {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// Most connections the service opens to PostgreSQL.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 32)]
    pub database_max_connections: u32,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Run the HTTP API. Without any role flag, the process runs every role.
    #[arg(long)]
    pub api: bool,

    /// Run the projection runners that keep the read models up to date (one leader per
    /// projection across all processes; the others stand by).
    #[arg(long)]
    pub projections: bool,

    /// Run the transmitter workers that drain the integration outbox into the customers'
    /// systems (any number of processes may; they share the rows through leases).
    #[arg(long)]
    pub workers: bool,

    /// Worker loops in this process (with --workers, or when every role runs).
    #[arg(long, env = "WORKER_LOOPS", default_value_t = 2)]
    pub worker_loops: usize,

    /// The LMS's domain, as xAPI activity ids and course URLs name it.
    #[arg(long, env = "LMS_DOMAIN", default_value = "localhost")]
    pub lms_domain: String,

    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Shared secret of HS256 JWTs (edx-platform's JWT_SECRET_KEY). Give this or
    /// --jwt-public-key. Prefer the environment variable: flags show in process lists.
    #[arg(
        long,
        env = "JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "jwt_public_key"
    )]
    pub jwt_secret: Option<String>,

    /// PEM file of the RSA public key that checks RS256 JWTs (edx-platform's public JWK).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key: Option<std::path::PathBuf>,

    /// Required `iss` of tokens (e.g. https://lms.example.com/oauth2). Unchecked when absent.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of tokens. Unchecked when absent.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Key that encrypts channel credentials at rest: 64 hexadecimal characters (32 bytes).
    /// Without it, requests that carry channel secrets are refused. Prefer the environment
    /// variable: flags show in process lists.
    #[arg(long, env = "SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Config {
    /// No role was chosen: every role runs.
    fn all_roles(&self) -> bool {
        !(self.api || self.projections || self.workers)
    }

    /// Whether this process runs the HTTP API.
    pub fn runs_api(&self) -> bool {
        self.api || self.all_roles()
    }

    /// Whether this process runs the projection runners.
    pub fn runs_projections(&self) -> bool {
        self.projections || self.all_roles()
    }

    /// Whether this process runs the transmitter workers.
    pub fn runs_workers(&self) -> bool {
        self.workers || self.all_roles()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations, then serve HTTP (what runs without a subcommand).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }

    #[test]
    fn every_role_runs_unless_some_are_chosen() {
        let parse = |flags: &[&str]| {
            let mut args = vec!["enterprise-service", "--database-url", "x"];
            args.extend_from_slice(flags);
            let config = Config::try_parse_from(args).unwrap();
            (
                config.runs_api(),
                config.runs_projections(),
                config.runs_workers(),
            )
        };
        assert_eq!(parse(&[]), (true, true, true));
        assert_eq!(parse(&["--api"]), (true, false, false));
        assert_eq!(parse(&["--projections"]), (false, true, false));
        assert_eq!(parse(&["--workers"]), (false, false, true));
        assert_eq!(parse(&["--api", "--projections"]), (true, true, false));
    }

    #[test]
    fn the_server_takes_a_bind_address() {
        let args = [
            "enterprise-service",
            "--database-url",
            "postgres://x",
            "--bind",
            "0.0.0.0:9000",
        ];
        let config = Config::try_parse_from(args).unwrap();
        assert_eq!(config.bind.port(), 9000);
        assert!(config.command.is_none());
        let bad = [
            "enterprise-service",
            "--database-url",
            "x",
            "--bind",
            "nope",
        ];
        assert!(Config::try_parse_from(bad).is_err());
    }
}
