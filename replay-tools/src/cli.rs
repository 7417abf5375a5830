//! The command line: every subcommand and flag. The doc comments are the `--help` manual.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use uuid::Uuid;

/// Tools for auditors and operators of the enterprise learning service, working directly on its
/// PostgreSQL database. Every subcommand has its own --help.
#[derive(Debug, Parser)]
#[command(name = "replay-tools", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// PostgreSQL connection URL, e.g. postgres://user:password@host:5432/enterprise.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  verify found problems (each listed with its stream and position)
  2  bad usage or bad input: a malformed instant, an unknown learner, a bad import file, an
     import into a store that already holds events; nothing was changed
  3  the database is unreachable or failed: bad URL, server down, database or migrations missing";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consent timeline (grants, declines, revocations) of a learner, a customer or a course,
    /// replayed from the event log, not read from a read model.
    ///
    /// Each entry gives the time the event was recorded, its global position, the customer,
    /// the learner (pseudonymous learner id), the subject (course key or program), the source,
    /// and the actor and correlation id of the command. Filters combine (all must hold); at
    /// least one is required. With --as-of, prints instead the consent in force at that
    /// instant: per customer x learner x subject, the last answer recorded at or before it.
    /// After a learner's personal data is erased, their timeline still replays by
    /// --learner-id (the log never held their name or email).
    #[command(after_help = EXIT_CODES)]
    ConsentHistory(ConsentHistoryArgs),

    /// Rebuilds read models from the log: empties their tables and applies every event again
    /// (or, with --fresh-tables, builds copies beside the live tables and swaps them in at the
    /// end, so readers keep the old tables meanwhile). Shows progress, events/s and time left.
    ///
    /// Read models: catalog, consent, customers, learners, enrollments, outbox, transmissions.
    /// In place, the read models named are rebuilt together, reading the log once for all of
    /// them. Consent, learners, enrollments and the catalog fold the log in memory and write
    /// each table once at the end (in place, their readers wait for those last seconds).
    /// Rebuilding the outbox queues again everything still due, under the same idempotency keys.
    #[command(after_help = EXIT_CODES)]
    Rebuild(RebuildArgs),

    /// Every projection's position and lag, the outbox depth per channel configuration, and
    /// dead letters.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),

    /// Writes events as JSON Lines (one event per line, in log order), for archiving or moving
    /// to another store. Each line holds the stored event as it is (payload and metadata not
    /// upcast) with its global position, recorded time and hash.
    #[command(after_help = EXIT_CODES)]
    Export(ExportArgs),

    /// Loads a JSON Lines export into an empty store, in the file's order, in one transaction.
    ///
    /// Applies the migrations first, refuses a store that already holds events, and checks
    /// every event's hash as the database recomputes it against the file's: a difference (an
    /// altered file, or an export that starts inside a stream) aborts the import and changes
    /// nothing. Global positions and recorded times are kept; when the file's positions do not
    /// increase line after line (writers whose transactions committed out of allocation order),
    /// the events get new positions in the file's order instead. The read models are not built:
    /// run `rebuild --all` afterwards, or start the service.
    #[command(after_help = EXIT_CODES)]
    Import(ImportArgs),

    /// Checks the log: every stream's hash chain, sequences without gaps, every global
    /// position unique and returned exactly once by the log reader, every payload decodes with
    /// the current upcasters, and read models equal a fresh rebuild. Exit code 0 only when all
    /// hold; each problem is listed with its stream and position.
    ///
    /// The fresh rebuild goes into a scratch schema up to each read model's own checkpoint,
    /// so the live read models keep serving. By default it compares catalog, consent, learners
    /// and enrollments; the outbox is compared only when named (--read-models outbox), because
    /// the transmitter workers update its rows after the projection wrote them.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    Table,
    /// One JSON array.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("filter").required(true).multiple(true))]
pub struct ConsentHistoryArgs {
    /// The learner, by learner id (works after erasure).
    #[arg(long, group = "filter", conflicts_with_all = ["username", "email"])]
    pub learner_id: Option<Uuid>,
    /// The learner, by LMS username (looked up in the learner directory).
    #[arg(long, group = "filter", conflicts_with = "email")]
    pub username: Option<String>,
    /// The learner, by email (looked up in the learner directory, case-insensitive).
    #[arg(long, group = "filter")]
    pub email: Option<String>,
    /// Only this customer (its UUID).
    #[arg(long, group = "filter")]
    pub customer: Option<Uuid>,
    /// Only this course (a course key such as edX+DemoX, or any of its run ids) or program
    /// (its UUID).
    #[arg(long, group = "filter")]
    pub course: Option<String>,
    /// Print the consent in force at this instant instead of the timeline: RFC 3339 with an
    /// offset, e.g. 2026-03-01T12:00:00Z or 2026-03-01T13:00:00+01:00.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The read models to rebuild (catalog, consent, customers, learners, enrollments, outbox,
    /// transmissions).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub projections: Vec<String>,
    /// Rebuild every read model: together, reading the log once; with --fresh-tables one after
    /// the other.
    #[arg(long)]
    pub all: bool,
    /// Build into fresh tables and swap them in at the end, instead of emptying the live ones.
    #[arg(long)]
    pub fresh_tables: bool,
    /// Events applied per transaction. Each transaction has fixed work of its own (reading what
    /// its events touch, planning its statements, committing), so larger batches rebuild
    /// faster, up to a point: past about 50,000 each read model waits on long reads of the log
    /// (README, Performance).
    #[arg(long, default_value_t = projections::runner::BATCH_SIZE,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch_size: i64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format (table or json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only events at or after this global position.
    #[arg(long)]
    pub from_position: Option<i64>,
    /// Only events at or before this global position.
    #[arg(long)]
    pub to_position: Option<i64>,
    /// Only this stream (its aggregate id).
    #[arg(long)]
    pub stream: Option<String>,
    /// Only events whose payload names this customer (its UUID): the customer's own stream,
    /// its consents, memberships, enrollments, coupons, channels and completions.
    #[arg(long)]
    pub customer: Option<Uuid>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The JSON Lines file written by `export`.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Read models to compare with a fresh rebuild: names separated by commas, `all`, or
    /// `none`. Default: catalog, consent, learners and enrollments.
    #[arg(long, value_delimiter = ',')]
    pub read_models: Vec<String>,
}
