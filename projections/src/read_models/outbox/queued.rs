//! Learner rows a batch has queued and not written yet.
//!
//! Each completion row needs the version of its decision (`outbox_learner_targets`), then the
//! row itself (`outbox_items`): two statements per row and configuration, one after the other,
//! were most of the statements of a rebuild's outbox. The batch holds the rows instead and
//! writes them together, at the end of the batch or before a statement that reads or changes
//! learner rows among which they would be: [`QueuedRows::flush_for`] a learner (a consent
//! answer, a membership change), [`QueuedRows::flush`] everything (a configuration or customer
//! event).
//!
//! Written together, the rows of one configuration and subject leave what they would have left
//! one after the other:
//! - completions: each takes the next version of its target; the first inserts the open row
//!   (or updates the one it finds) and each next one updates it, so the row keeps the first's
//!   creation and first attempt time and takes the last's id, version, payload, status and
//!   update time;
//! - registrations: the first is inserted unless its id or an open row of its subject exists;
//!   each next one then meets it and does nothing.

use super::{item_id, ItemKind};
use crate::projection::{column, in_key_order};
use chrono::{DateTime, Utc};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::hash_map::Entry;
use uuid::Uuid;

/// The action of a queued learner row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LearnerAction {
    /// A completion or grade change: a new version of its target each time.
    Completion,
    /// An enrollment's registration: version 1, sent once.
    Registration,
}

impl LearnerAction {
    fn as_str(self) -> &'static str {
        match self {
            LearnerAction::Completion => "completion",
            LearnerAction::Registration => "registration",
        }
    }
}

/// A learner row for one configuration, as the batch queued it.
pub(super) struct Queued {
    pub(super) config_id: Uuid,
    pub(super) customer: Uuid,
    pub(super) learner: Uuid,
    pub(super) run: String,
    pub(super) key: String,
    pub(super) action: LearnerAction,
    pub(super) subject: String,
    pub(super) payload: Value,
    pub(super) status: &'static str,
    pub(super) at: DateTime<Utc>,
}

/// The rows a batch queued, in order, and the learners they are of.
#[derive(Default)]
pub(super) struct QueuedRows {
    rows: Vec<Queued>,
    learners: FxHashSet<(Uuid, Uuid)>,
}

impl QueuedRows {
    pub(super) fn push(&mut self, row: Queued) {
        self.learners.insert((row.customer, row.learner));
        self.rows.push(row);
    }

    /// Writes the rows out if one of them is a row of the learner with the customer.
    pub(super) async fn flush_for(
        &mut self,
        conn: &mut PgConnection,
        customer: Uuid,
        learner: Uuid,
    ) -> Result<(), sqlx::Error> {
        if self.learners.contains(&(customer, learner)) {
            self.flush(conn).await?;
        }
        Ok(())
    }

    /// Writes every row held (see the module doc).
    pub(super) async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.learners.clear();
        let rows = std::mem::take(&mut self.rows);
        let (completions, registrations): (Vec<Queued>, Vec<Queued>) = rows
            .into_iter()
            .partition(|row| row.action == LearnerAction::Completion);
        write_completions(conn, completions).await?;
        write_registrations(conn, registrations).await
    }
}

/// A completion's target: configuration, learner, course run.
type Target = (Uuid, Uuid, String);

/// One row per configuration and subject, as the rows queued for it leave it: the first's
/// time, the last's values, and the version of the last.
struct Collapsed {
    first_at: DateTime<Utc>,
    last: Queued,
    version: i32,
}

async fn write_completions(conn: &mut PgConnection, rows: Vec<Queued>) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let target = |row: &Queued| (row.config_id, row.learner, row.run.clone());
    let mut counts: FxHashMap<Target, i32> = FxHashMap::default();
    for row in &rows {
        *counts.entry(target(row)).or_default() += 1;
    }
    // Each target once, raised by the number of its rows: the last row, the one that stays,
    // takes the version the target reaches.
    let counts = in_key_order(counts);
    let reached: Vec<(Uuid, Uuid, String, i32)> = sqlx::query_as(
        "INSERT INTO outbox_learner_targets (config_id, learner_id, course_run_id, version)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int[])
         ON CONFLICT (config_id, learner_id, course_run_id) DO UPDATE
            SET version = outbox_learner_targets.version + EXCLUDED.version
         RETURNING config_id, learner_id, course_run_id, version",
    )
    .bind(column(&counts, |((config, _, _), _)| *config))
    .bind(column(&counts, |((_, learner, _), _)| *learner))
    .bind(column(&counts, |((_, _, run), _)| run.as_str()))
    .bind(column(&counts, |(_, count)| *count))
    .fetch_all(&mut *conn)
    .await?;
    let reached: FxHashMap<Target, i32> = reached
        .into_iter()
        .map(|(config, learner, run, version)| ((config, learner, run), version))
        .collect();

    let mut collapsed: FxHashMap<Target, Collapsed> = FxHashMap::default();
    for row in rows {
        match collapsed.entry(target(&row)) {
            Entry::Occupied(mut c) => c.get_mut().last = row,
            Entry::Vacant(entry) => {
                // RETURNING gives every target, inserted or updated.
                let version = *reached.get(entry.key()).ok_or(sqlx::Error::RowNotFound)?;
                entry.insert(Collapsed {
                    first_at: row.at,
                    last: row,
                    version,
                });
            }
        }
    }
    insert_rows(
        conn,
        in_key_order(collapsed)
            .into_iter()
            .map(|(_, c)| c)
            .collect(),
        "ON CONFLICT (config_id, kind, subject) WHERE status IN ('pending', 'held') DO UPDATE
            SET item_id = EXCLUDED.item_id, version = EXCLUDED.version,
                payload = EXCLUDED.payload, status = EXCLUDED.status,
                updated_at = EXCLUDED.updated_at",
    )
    .await
}

async fn write_registrations(
    conn: &mut PgConnection,
    rows: Vec<Queued>,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut first: FxHashMap<(Uuid, String), Collapsed> = FxHashMap::default();
    for row in rows {
        first
            .entry((row.config_id, row.subject.clone()))
            .or_insert_with(|| Collapsed {
                first_at: row.at,
                last: row,
                version: 1,
            });
    }
    insert_rows(
        conn,
        in_key_order(first).into_iter().map(|(_, c)| c).collect(),
        "ON CONFLICT DO NOTHING",
    )
    .await
}

/// Inserts the rows into the queue with `conflict` as the `ON CONFLICT` clause.
async fn insert_rows(
    conn: &mut PgConnection,
    rows: Vec<Collapsed>,
    conflict: &str,
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows
        .iter()
        .map(|c| {
            item_id(
                c.last.config_id,
                ItemKind::Learner,
                &c.last.subject,
                c.version,
            )
        })
        .collect();
    sqlx::query(&format!(
        "INSERT INTO outbox_items (item_id, config_id, customer_id, kind, action, subject,
                version, present, learner_id, course_run_id, course_key, payload, status,
                attempts, next_attempt_at, created_at, updated_at)
         SELECT id, config_id, customer_id, 'learner', action, subject, version, true,
                learner_id, course_run_id, course_key, payload, status, 0, first_at, first_at,
                last_at
           FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[],
                       $7::uuid[], $8::text[], $9::text[], $10::jsonb[], $11::text[],
                       $12::timestamptz[], $13::timestamptz[])
             AS r (id, config_id, customer_id, action, subject, version, learner_id,
                   course_run_id, course_key, payload, status, first_at, last_at)
         {conflict}"
    ))
    .bind(ids)
    .bind(column(&rows, |c| c.last.config_id))
    .bind(column(&rows, |c| c.last.customer))
    .bind(column(&rows, |c| c.last.action.as_str()))
    .bind(column(&rows, |c| c.last.subject.as_str()))
    .bind(column(&rows, |c| c.version))
    .bind(column(&rows, |c| c.last.learner))
    .bind(column(&rows, |c| c.last.run.as_str()))
    .bind(column(&rows, |c| c.last.key.as_str()))
    .bind(column(&rows, |c| &c.last.payload))
    .bind(column(&rows, |c| c.last.status))
    .bind(column(&rows, |c| c.first_at))
    .bind(column(&rows, |c| c.last.at))
    .execute(conn)
    .await?;
    Ok(())
}
