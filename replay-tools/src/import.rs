//! Import: a JSON Lines export loaded into an empty store, in the file's order, in one
//! transaction.
//!
//! The file is read twice: a first pass checks every line and whether its global positions
//! increase line after line, before anything is written; the second inserts in batches. The
//! database's trigger computes each event's hash as it would for any insert; a hash that
//! differs from the file's aborts the whole import. Positions are kept when they increase
//! through the file: in one transaction the log reader orders by position, so the file's order
//! is kept too. Otherwise (the exporting store had writers that committed out of allocation
//! order) the events are numbered anew, in the file's order.

use crate::cli::ImportArgs;
use crate::error::ToolError;
use crate::export::ExportedEvent;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

const BATCH: usize = 2000;

pub async fn run(pool: &PgPool, args: &ImportArgs) -> Result<ExitCode, ToolError> {
    let scan = scan(&args.file)?;
    store::db::migrate(pool)
        .await
        .map_err(|e| ToolError::Failed(format!("cannot apply the migrations: {e}")))?;
    let imported = import(pool, &args.file, scan.positions_increase).await?;
    if scan.positions_increase {
        eprintln!("imported {imported} events, global positions kept");
    } else {
        eprintln!(
            "imported {imported} events; the file's global positions do not increase line \
             after line, so the events were numbered anew in the file's order"
        );
    }
    eprintln!("build the read models with `replay-tools rebuild --all` (or start the service)");
    Ok(ExitCode::SUCCESS)
}

struct Scan {
    positions_increase: bool,
}

fn lines(path: &Path) -> Result<impl Iterator<Item = (usize, std::io::Result<String>)>, ToolError> {
    let file = File::open(path)
        .map_err(|e| ToolError::bad_input(format!("cannot open {}: {e}", path.display())))?;
    Ok(BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !matches!(line, Ok(l) if l.trim().is_empty())))
}

fn parse(
    path: &Path,
    number: usize,
    line: std::io::Result<String>,
) -> Result<ExportedEvent, ToolError> {
    let line = line.map_err(|e| {
        ToolError::bad_input(format!(
            "{}: line {number}: cannot read: {e}",
            path.display()
        ))
    })?;
    let event: ExportedEvent = serde_json::from_str(&line).map_err(|e| {
        ToolError::bad_input(format!(
            "{}: line {number} is not an exported event: {e}\n  import takes the JSON Lines \
             that `replay-tools export` writes",
            path.display()
        ))
    })?;
    if event.sequence < 1 || event.global_position < 1 {
        return Err(ToolError::bad_input(format!(
            "{}: line {number}: sequence and global_position must be positive",
            path.display()
        )));
    }
    Ok(event)
}

/// Checks every line before anything is written.
fn scan(path: &Path) -> Result<Scan, ToolError> {
    let mut previous = 0;
    let mut positions_increase = true;
    for (number, line) in lines(path)? {
        let event = parse(path, number, line)?;
        positions_increase &= event.global_position > previous;
        previous = event.global_position;
    }
    Ok(Scan { positions_increase })
}

async fn import(pool: &PgPool, path: &Path, keep_positions: bool) -> Result<u64, ToolError> {
    let mut tx = pool.begin().await?;
    // No writer may slip an event in between the emptiness check and the import.
    sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let held: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    if let Some(held) = held {
        return Err(ToolError::bad_input(format!(
            "the store already holds events (up to global position {held}): import loads only \
             into an empty store\n  create a new database and import into it"
        )));
    }
    let mut batch: Vec<(usize, ExportedEvent)> = Vec::with_capacity(BATCH);
    let mut imported = 0;
    for (number, line) in lines(path)? {
        batch.push((number, parse(path, number, line)?));
        if batch.len() == BATCH {
            imported += insert(&mut tx, path, &batch, keep_positions).await?;
            batch.clear();
        }
    }
    imported += insert(&mut tx, path, &batch, keep_positions).await?;
    if keep_positions && imported > 0 {
        // New events continue after the imported ones.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('events', 'global_position'),
                           (SELECT max(global_position) FROM events))",
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(imported)
}

/// Inserts one batch in file order and compares the hashes the database computed with the
/// file's.
async fn insert(
    tx: &mut sqlx::PgConnection,
    path: &Path,
    batch: &[(usize, ExportedEvent)],
    keep_positions: bool,
) -> Result<u64, ToolError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let mut columns = Columns::default();
    for (_, e) in batch {
        columns.push(e);
    }
    let position = if keep_positions {
        "u.global_position"
    } else {
        "nextval(pg_get_serial_sequence('events', 'global_position'))"
    };
    // The BEFORE INSERT trigger looks up each event's predecessor in its stream; rows go in
    // the order of the file (WITH ORDINALITY), so it finds those inserted just before.
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, global_position, recorded_at)
         SELECT u.aggregate_type, u.aggregate_id, u.sequence, u.event_type, u.event_version,
                u.payload::jsonb, u.metadata::jsonb, {position}, u.recorded_at
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::bigint[], $9::timestamptz[])
                WITH ORDINALITY
                AS u(aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                     metadata, global_position, recorded_at, n)
          ORDER BY u.n
      RETURNING aggregate_type, aggregate_id, sequence, encode(hash, 'hex')"
    );
    let computed: Vec<(String, String, i64, String)> = sqlx::query_as(&sql)
        .bind(columns.aggregate_types)
        .bind(columns.aggregate_ids)
        .bind(columns.sequences)
        .bind(columns.event_types)
        .bind(columns.event_versions)
        .bind(columns.payloads)
        .bind(columns.metadata)
        .bind(columns.positions)
        .bind(columns.recorded_at)
        .fetch_all(&mut *tx)
        .await
        .map_err(
            |e| match e.as_database_error().and_then(|d| d.constraint()) {
                Some("events_pkey") => ToolError::bad_input(format!(
                    "{}: an event appears twice in the file (same stream and sequence)",
                    path.display()
                )),
                Some("events_global_position_key") => ToolError::bad_input(format!(
                    "{}: a global position appears twice in the file",
                    path.display()
                )),
                _ => ToolError::from(e),
            },
        )?;
    let computed: HashMap<(&str, &str, i64), &str> = computed
        .iter()
        .map(|(t, id, s, h)| ((t.as_str(), id.as_str(), *s), h.as_str()))
        .collect();
    for (number, e) in batch {
        let hash = computed.get(&(
            e.aggregate_type.as_str(),
            e.aggregate_id.as_str(),
            e.sequence,
        ));
        if hash != Some(&e.hash.as_str()) {
            return Err(ToolError::bad_input(format!(
                "{}: line {number}: the hash of {}/{}#{} (global position {}) differs from the \
                 one the database computes: the file was altered, or it starts inside that \
                 stream; nothing was imported",
                path.display(),
                e.aggregate_type,
                e.aggregate_id,
                e.sequence,
                e.global_position
            )));
        }
    }
    Ok(batch.len() as u64)
}

#[derive(Default)]
struct Columns {
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<String>,
    metadata: Vec<String>,
    positions: Vec<i64>,
    recorded_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn push(&mut self, e: &ExportedEvent) {
        self.aggregate_types.push(e.aggregate_type.clone());
        self.aggregate_ids.push(e.aggregate_id.clone());
        self.sequences.push(e.sequence);
        self.event_types.push(e.event_type.clone());
        self.event_versions.push(e.event_version.clone());
        self.payloads.push(e.payload.get().to_string());
        self.metadata.push(e.metadata.get().to_string());
        self.positions.push(e.global_position);
        self.recorded_at.push(e.recorded_at);
    }
}
