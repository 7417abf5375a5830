//! Where every projection stands, the outbox depth per channel configuration, dead letters.

use crate::cli::{Format, StatusArgs};
use crate::error::ToolError;
use crate::output::{self, Tabular};
use chrono::{DateTime, Utc};
use projections::read_models::outbox::{pending_counts, ItemStatus};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use uuid::Uuid;

#[derive(Debug, Serialize)]
struct Projection {
    name: String,
    global_position: i64,
    lag_events: i64,
    lag_seconds: f64,
    updated_at: DateTime<Utc>,
    last_error: Option<String>,
}

impl Tabular for Projection {
    const HEADERS: &'static [&'static str] = &[
        "projection",
        "position",
        "lag_events",
        "lag_seconds",
        "last_error",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.global_position.to_string(),
            self.lag_events.to_string(),
            format!("{:.1}", self.lag_seconds),
            self.last_error.clone().unwrap_or_default(),
        ]
    }
}

/// Outbox rows of one channel configuration by status. `depth` is what still has to go out
/// (pending, held for consent, leased); `dead` are the dead letters.
#[derive(Debug, Default, Serialize)]
struct Outbox {
    config_id: Uuid,
    depth: i64,
    pending: i64,
    held: i64,
    leased: i64,
    dead: i64,
    sent: i64,
    cancelled: i64,
}

impl Tabular for Outbox {
    const HEADERS: &'static [&'static str] = &[
        "channel_config",
        "depth",
        "pending",
        "held",
        "leased",
        "dead_letters",
        "sent",
        "cancelled",
    ];

    fn cells(&self) -> Vec<String> {
        [
            self.depth,
            self.pending,
            self.held,
            self.leased,
            self.dead,
            self.sent,
            self.cancelled,
        ]
        .iter()
        .fold(vec![self.config_id.to_string()], |mut cells, n| {
            cells.push(n.to_string());
            cells
        })
    }
}

pub async fn run(pool: &PgPool, args: &StatusArgs) -> Result<ExitCode, ToolError> {
    let projections: Vec<Projection> = projections::status::all(pool)
        .await?
        .into_iter()
        .map(|s| Projection {
            name: s.name,
            global_position: s.position.global_position,
            lag_events: s.lag_events,
            lag_seconds: s.lag_seconds,
            updated_at: s.updated_at,
            last_error: s.last_error,
        })
        .collect();
    let mut outbox: BTreeMap<Uuid, Outbox> = BTreeMap::new();
    for count in pending_counts(pool).await? {
        let row = outbox.entry(count.config_id).or_insert_with(|| Outbox {
            config_id: count.config_id,
            ..Outbox::default()
        });
        let n = count.count;
        match count.status {
            ItemStatus::Pending => row.pending += n,
            ItemStatus::Held => row.held += n,
            ItemStatus::Leased => row.leased += n,
            ItemStatus::Dead => row.dead += n,
            ItemStatus::Sent => row.sent += n,
            ItemStatus::Cancelled => row.cancelled += n,
        }
        row.depth = row.pending + row.held + row.leased;
    }
    let outbox: Vec<Outbox> = outbox.into_values().collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let both = serde_json::json!({ "projections": projections, "outbox": outbox });
            serde_json::to_writer_pretty(&mut out, &both)
                .map_err(|e| ToolError::Failed(format!("cannot write JSON: {e}")))?;
            writeln!(out)?;
        }
        format => {
            output::write(&mut out, format, &projections)?;
            writeln!(out)?;
            output::write(&mut out, format, &outbox)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
