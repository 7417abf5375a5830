//! Export: events as JSON Lines, one stored event per line in log order, for archiving or for
//! moving to another store (see [`crate::import`]).
//!
//! Payload and metadata are written as the database's own text of the stored jsonb, not
//! re-encoded and not upcast, so an import stores exactly the same values and the database
//! recomputes exactly the same hashes.

use crate::cli::ExportArgs;
use crate::error::ToolError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::PgPool;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExportedEvent {
    pub global_position: i64,
    pub recorded_at: DateTime<Utc>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Box<RawValue>,
    pub metadata: Box<RawValue>,
    /// The event's hash in its stream's chain, in hex.
    pub hash: String,
}

type Row = (
    i64,
    i64,
    DateTime<Utc>,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
);

const PAGE: i64 = 5000;

pub async fn run(pool: &PgPool, args: &ExportArgs) -> Result<ExitCode, ToolError> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(File::create(path).map_err(|e| {
            ToolError::bad_input(format!("cannot create {}: {e}", path.display()))
        })?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let written = export(pool, args, &mut out).await?;
    out.flush()?;
    eprintln!("exported {written} events");
    Ok(ExitCode::SUCCESS)
}

/// Writes the matching events to `out`; returns how many.
pub async fn export(
    pool: &PgPool,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<u64, ToolError> {
    // One snapshot for the whole export: the horizon and the pages stay consistent.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut sql = String::from(
        "SELECT e.transaction_id::text::bigint, e.global_position, e.recorded_at,
                e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                e.payload::text, e.metadata::text, encode(e.hash, 'hex')
           FROM events e
          WHERE (e.transaction_id, e.global_position) > ($1::bigint::text::xid8, $2)
            AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
    );
    if args.from_position.is_some() {
        sql += " AND e.global_position >= $4";
    }
    if args.to_position.is_some() {
        sql += " AND e.global_position <= $5";
    }
    if args.stream.is_some() {
        sql += " AND e.aggregate_id = $6";
    }
    if args.customer.is_some() {
        sql += " AND (e.payload -> e.event_type ->> 'customer_id') = $7";
    }
    sql += " ORDER BY e.transaction_id, e.global_position LIMIT $3";
    let (mut after_tx, mut after_pos) = (0i64, 0i64);
    let mut written = 0;
    loop {
        let rows: Vec<Row> = sqlx::query_as(&sql)
            .bind(after_tx)
            .bind(after_pos)
            .bind(PAGE)
            .bind(args.from_position.unwrap_or(0))
            .bind(args.to_position.unwrap_or(i64::MAX))
            .bind(args.stream.clone().unwrap_or_default())
            .bind(args.customer.map(|c| c.to_string()).unwrap_or_default())
            .fetch_all(&mut *tx)
            .await?;
        let Some(last) = rows.last() else { break };
        (after_tx, after_pos) = (last.0, last.1);
        for row in rows {
            let (_, position, recorded_at, aggregate_type, aggregate_id, sequence) =
                (row.0, row.1, row.2, row.3, row.4, row.5);
            let raw = |text: String| {
                RawValue::from_string(text).map_err(|e| {
                    ToolError::Failed(format!("stored JSON at position {position}: {e}"))
                })
            };
            let line = ExportedEvent {
                global_position: position,
                recorded_at,
                aggregate_type,
                aggregate_id,
                sequence,
                event_type: row.6,
                event_version: row.7,
                payload: raw(row.8)?,
                metadata: raw(row.9)?,
                hash: row.10,
            };
            serde_json::to_writer(&mut *out, &line)
                .map_err(|e| ToolError::Failed(format!("cannot write the export: {e}")))?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    tx.commit().await?;
    Ok(written)
}
