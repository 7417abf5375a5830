//! Verify: the checks an auditor runs on the log, each problem listed with its stream and
//! position.
//!
//! 1. Hash chains: every event's `hash` equals the hash of its predecessor's and its own
//!    content (`events_chain_hash`, the function the insert trigger uses). An edited event
//!    fails its own check; a deleted one breaks its successor's.
//! 2. Sequences: every stream counts 1, 2, 3 ... without gaps.
//! 3. Global positions: unique, and the log reader returns each settled event exactly once.
//! 4. Payloads: every event the log reader returns decodes, after upcasting, into its
//!    aggregate's event type, and names the same event type.
//! 5. Read models: a fresh rebuild into a scratch schema, up to each read model's checkpoint,
//!    holds the same rows as the live tables.
//!
//! Checks 1 to 4 read one snapshot (a repeatable-read transaction), so writers appending
//! meanwhile neither hide nor invent problems.

use crate::cli::VerifyArgs;
use crate::error::{ToolError, EXIT_PROBLEMS};
use cqrs_es::DomainEvent;
use projections::Projection;
use serde::de::DeserializeOwned;
use sqlx::{Connection, PgConnection, PgPool};
use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use store::log::{LogPosition, LoggedEvent};

/// One thing wrong with the log or a read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub check: &'static str,
    /// `aggregate_type/aggregate_id#sequence`, or the read model's table.
    pub place: String,
    pub position: Option<i64>,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<10} {}", self.check, self.place)?;
        if let Some(position) = self.position {
            write!(f, " (global position {position})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

const DEFAULT_READ_MODELS: &[&str] = &["catalog", "consent", "learners", "enrollments"];

pub async fn run(pool: &PgPool, args: &VerifyArgs) -> Result<ExitCode, ToolError> {
    let read_models = read_models(&args.read_models)?;
    let mut problems = check_log(pool).await?;
    for projection in &read_models {
        problems.extend(check_read_model(pool, projection.as_ref()).await?);
    }
    if problems.is_empty() {
        println!(
            "ok: hash chains, sequences, global positions and payloads hold; read models equal \
             a fresh rebuild ({})",
            names(&read_models)
        );
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            println!("{problem}");
        }
        eprintln!("{} problem(s) found", problems.len());
        Ok(ExitCode::from(EXIT_PROBLEMS))
    }
}

fn names(read_models: &[Arc<dyn Projection>]) -> String {
    if read_models.is_empty() {
        return "none compared".into();
    }
    read_models
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_models(asked: &[String]) -> Result<Vec<Arc<dyn Projection>>, ToolError> {
    let asked: Vec<String> = asked.iter().map(|s| s.trim().to_string()).collect();
    match asked.as_slice() {
        [] => crate::rebuild::choose(
            &DEFAULT_READ_MODELS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            false,
        ),
        [one] if one == "all" => crate::rebuild::choose(&[], true),
        [one] if one == "none" => Ok(Vec::new()),
        names => crate::rebuild::choose(names, false),
    }
}

/// Checks 1 to 4 on one snapshot of the log.
pub async fn check_log(pool: &PgPool) -> Result<Vec<Problem>, ToolError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut problems = chains_and_sequences(&mut tx).await?;
    problems.extend(unique_positions(&mut tx).await?);
    problems.extend(reader_and_payloads(&mut tx).await?);
    tx.commit().await?;
    Ok(problems)
}

async fn chains_and_sequences(conn: &mut PgConnection) -> Result<Vec<Problem>, ToolError> {
    let rows: Vec<(String, String, i64, i64, bool, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, global_position, chained, step
           FROM (SELECT aggregate_type, aggregate_id, sequence, global_position,
                        coalesce(hash = events_chain_hash(lag(hash) OVER w, aggregate_type,
                                     aggregate_id, sequence, event_type, event_version, payload,
                                     metadata), false) AS chained,
                        sequence - coalesce(lag(sequence) OVER w, 0) AS step
                   FROM events
                 WINDOW w AS (PARTITION BY aggregate_type, aggregate_id ORDER BY sequence)) c
          WHERE NOT chained OR step <> 1
          ORDER BY global_position",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut problems = Vec::new();
    for (aggregate_type, aggregate_id, sequence, position, chained, step) in rows {
        let place = format!("{aggregate_type}/{aggregate_id}#{sequence}");
        if step != 1 {
            problems.push(Problem {
                check: "sequence",
                place: place.clone(),
                position: Some(position),
                detail: if step == sequence {
                    format!("the stream starts at sequence {sequence}, not 1")
                } else {
                    format!("{} event(s) missing before it", step - 1)
                },
            });
        }
        if !chained {
            problems.push(Problem {
                check: "hash",
                place,
                position: Some(position),
                detail: "the stored hash does not match the event's content and its \
                         predecessor's hash: the event, or the one before it, was changed or \
                         removed"
                    .into(),
            });
        }
    }
    Ok(problems)
}

async fn unique_positions(conn: &mut PgConnection) -> Result<Vec<Problem>, ToolError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT global_position, count(*) FROM events GROUP BY global_position
          HAVING count(*) > 1 ORDER BY global_position",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(position, count)| Problem {
            check: "position",
            place: "events".into(),
            position: Some(position),
            detail: format!("{count} events share this global position"),
        })
        .collect())
}

/// Reads the whole log through the log reader: each settled event must come back exactly once,
/// and its payload must decode.
async fn reader_and_payloads(conn: &mut PgConnection) -> Result<Vec<Problem>, ToolError> {
    let mut problems = Vec::new();
    let mut seen: Vec<i64> = Vec::new();
    let mut after = LogPosition::default();
    loop {
        let events = store::log::read_after(&mut *conn, after, 10_000).await?;
        let Some(last) = events.last() else { break };
        if last.position <= after {
            problems.push(Problem {
                check: "reader",
                place: "log".into(),
                position: Some(last.position.global_position),
                detail: "the log reader went backwards".into(),
            });
            break;
        }
        after = last.position;
        for event in &events {
            seen.push(event.position.global_position);
            if let Some(reason) = decode_problem(event) {
                problems.push(Problem {
                    check: "payload",
                    place: format!(
                        "{}/{}#{}",
                        event.aggregate_type, event.aggregate_id, event.sequence
                    ),
                    position: Some(event.position.global_position),
                    detail: reason,
                });
            }
        }
    }
    let settled: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY global_position",
    )
    .fetch_all(&mut *conn)
    .await?;
    seen.sort_unstable();
    for pair in seen.windows(2).filter(|p| p[0] == p[1]) {
        problems.push(Problem {
            check: "reader",
            place: "log".into(),
            position: Some(pair[0]),
            detail: "the log reader returned this event more than once".into(),
        });
    }
    seen.dedup();
    for missing in settled.iter().filter(|p| seen.binary_search(p).is_err()) {
        problems.push(Problem {
            check: "reader",
            place: "log".into(),
            position: Some(*missing),
            detail: "the log reader never returned this event".into(),
        });
    }
    Ok(problems)
}

/// Why an (upcast) event does not decode into its aggregate's events, if it does not.
fn decode_problem(event: &LoggedEvent) -> Option<String> {
    fn check<E: DeserializeOwned + DomainEvent>(event: &LoggedEvent) -> Option<String> {
        match serde_json::from_str::<E>(event.payload.get()) {
            Err(e) => Some(format!(
                "the payload does not decode as {}: {e}",
                event.event_type
            )),
            Ok(decoded) if decoded.event_type() != event.event_type => Some(format!(
                "the event type column says {} but the payload holds {}",
                event.event_type,
                decoded.event_type()
            )),
            Ok(decoded) if decoded.event_version() != event.event_version => Some(format!(
                "version {} after upcasting, but the code writes version {}",
                event.event_version,
                decoded.event_version()
            )),
            Ok(_) => None,
        }
    }
    use domain::*;
    match event.aggregate_type.as_str() {
        "customer" => check::<customer::CustomerEvent>(event),
        "customer_slug" => check::<slug::SlugEvent>(event),
        "channel_configuration" => check::<channel::ChannelEvent>(event),
        "learner_membership" => check::<membership::MembershipEvent>(event),
        "consent" => check::<consent::ConsentEvent>(event),
        "enrollment" => check::<enrollment::EnrollmentEvent>(event),
        "coupon" => check::<coupon::CouponEvent>(event),
        "completion" => check::<completion::CompletionEvent>(event),
        "content_item" => check::<content::ContentEvent>(event),
        other => Some(format!("unknown aggregate type '{other}'")),
    }
}

/// Check 5 for one read model: a fresh rebuild in a scratch schema, brought to the live
/// checkpoint while that checkpoint is locked (the live runner waits), then compared table by
/// table. The scratch schema is dropped in every case.
pub async fn check_read_model(
    pool: &PgPool,
    projection: &dyn Projection,
) -> Result<Vec<Problem>, ToolError> {
    let name = projection.name();
    let schema = format!("verify_{name}_{}", std::process::id());
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *conn)
        .await?;
    let outcome = compare(&mut conn, projection, &schema).await;
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *conn)
        .await;
    let problems = outcome?;
    dropped?;
    Ok(problems)
}

async fn compare(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> Result<Vec<Problem>, ToolError> {
    let name = projection.name();
    for table in projection.tables() {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    // Most of the log is applied in batches of their own; only the tail is applied while the
    // live checkpoint is locked.
    let target = live_checkpoint(&mut *conn, name, false).await?;
    let mut reached = LogPosition::default();
    loop {
        let mut tx = conn.begin().await?;
        let step = apply_until(&mut tx, projection, schema, reached, target).await?;
        tx.commit().await?;
        match step {
            Applied::Reached(position) => reached = position,
            Applied::Done(position) => {
                reached = position;
                break;
            }
            Applied::Poison(problem) => return Ok(vec![problem]),
        }
    }
    let mut tx = conn.begin().await?;
    let target = live_checkpoint(&mut tx, name, true).await?;
    loop {
        match apply_until(&mut tx, projection, schema, reached, target).await? {
            Applied::Reached(position) => reached = position,
            Applied::Done(_) => break,
            Applied::Poison(problem) => return Ok(vec![problem]),
        }
    }
    let mut problems = Vec::new();
    for table in projection.tables() {
        let (missing, extra): (i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM (SELECT * FROM {schema}.{table}
                                           EXCEPT ALL SELECT * FROM public.{table}) d),
                    (SELECT count(*) FROM (SELECT * FROM public.{table}
                                           EXCEPT ALL SELECT * FROM {schema}.{table}) d)"
        ))
        .fetch_one(&mut *tx)
        .await?;
        if missing > 0 || extra > 0 {
            problems.push(Problem {
                check: "read model",
                place: format!("{name}: table {table}"),
                position: Some(target.global_position),
                detail: format!(
                    "differs from a fresh rebuild up to the same position: {missing} row(s) \
                     missing or different, {extra} row(s) extra or different; run \
                     `replay-tools rebuild {name}`"
                ),
            });
        }
    }
    tx.rollback().await?;
    Ok(problems)
}

async fn live_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    lock: bool,
) -> Result<LogPosition, ToolError> {
    let sql = if lock {
        "SELECT transaction_id::text::bigint, global_position FROM projection_checkpoints
          WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT transaction_id::text::bigint, global_position FROM projection_checkpoints
          WHERE name = $1"
    };
    let row: Option<(i64, i64)> = sqlx::query_as(sql).bind(name).fetch_optional(conn).await?;
    Ok(
        row.map_or_else(LogPosition::default, |(transaction_id, global_position)| {
            LogPosition {
                transaction_id,
                global_position,
            }
        }),
    )
}

enum Applied {
    /// Applied a batch; more may follow.
    Reached(LogPosition),
    /// Nothing more up to the target.
    Done(LogPosition),
    Poison(Problem),
}

const BATCH: i64 = 5000;

/// Applies, in the scratch schema, one batch of the events after `from` up to `target`.
async fn apply_until(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
    from: LogPosition,
    target: LogPosition,
) -> Result<Applied, ToolError> {
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(&mut *conn)
        .await?;
    let mut events = store::log::read_after(&mut *conn, from, BATCH).await?;
    events.retain(|e| e.position <= target);
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(Applied::Done(from));
    };
    let refs: Vec<&LoggedEvent> = events.iter().collect();
    if let Err((index, error)) = projection.apply_batch(conn, &refs).await {
        let event = &events[index.min(events.len() - 1)];
        return Ok(Applied::Poison(Problem {
            check: "read model",
            place: format!(
                "{}: event {}/{}#{}",
                projection.name(),
                event.aggregate_type,
                event.aggregate_id,
                event.sequence
            ),
            position: Some(event.position.global_position),
            detail: format!("a fresh rebuild cannot apply it: {error}"),
        }));
    }
    sqlx::query("SET LOCAL search_path TO public")
        .execute(&mut *conn)
        .await?;
    Ok(if last < target {
        Applied::Reached(last)
    } else {
        Applied::Done(last)
    })
}
