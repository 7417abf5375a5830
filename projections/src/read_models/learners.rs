//! Learners: the memberships of every customer, one row per customer x learner (edX's
//! `EnterpriseCustomerUser` rows and `PendingEnterpriseCustomerUser` invitations), built from the
//! `learner_membership` events.
//!
//! Table `learners_memberships` (migration `20261127000011_learners.sql`). The rules:
//! - `PendingLinkRequested`: the row is `pending`, inactive, relinkable;
//! - `PendingLinkCancelled`: the row is deleted (edX deletes the pending record; the aggregate
//!   forgets it too, so a later invitation starts a new row);
//! - `LearnerLinked`: `linked`, active as the event says, relinkable (a link re-uses an unlinked
//!   row, as edX does);
//! - `MembershipActivated` / `MembershipDeactivated`: `linked`, active or not;
//! - `LearnerUnlinked`: `unlinked`, inactive, `is_relinkable` as the event says.
//!
//! `created_at` is the `recorded_at` of the event that created the row, `updated_at` that of the
//! latest event that changed it. No personal data is stored: the queries join the learner
//! directory (`learners`: LMS user id, username, email) when they read, so an erased learner
//! reads with those columns empty.
//!
//! A batch is applied in memory: the rows of the memberships it touches are loaded in one
//! query, its events folded over them in log order (so the outcome is that of applying them
//! one by one), and what changed is written back in one upsert and one delete. A rebuild from
//! the empty table with one read of the log folds the whole log that way, reading nothing back
//! ([`FromZero`]).

use crate::copy::CopyRows;
use crate::projection::{column, decode, in_key_order, ApplyError, Fold, Projection, WriteMode};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{CustomerId, LearnerId};
use domain::membership::MembershipEvent;
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::fmt;
use std::str::FromStr;
use store::log::LoggedEvent;
use uuid::Uuid;

/// The read model of customers' learners (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Learners;

/// The aggregate type whose events the read model reads.
const MEMBERSHIP: &str = "learner_membership";

/// Where a membership stands, as the table spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipStatus {
    /// Invited by email before registering; registration links it.
    Pending,
    /// A member (active or not).
    Linked,
    /// Unlinked (edX's soft delete).
    Unlinked,
}

impl MembershipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Linked => "linked",
            Self::Unlinked => "unlinked",
        }
    }
}

impl fmt::Display for MembershipStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MembershipStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "linked" => Ok(Self::Linked),
            "unlinked" => Ok(Self::Unlinked),
            other => Err(format!("unknown membership state '{other}'")),
        }
    }
}

/// Which of a customer's memberships to list; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipFilter {
    pub state: Option<MembershipStatus>,
    pub active: Option<bool>,
    /// The learner's username, matched exactly but case-insensitively (usernames are unique
    /// in the directory, so this finds one learner, as edX's `username` filter does).
    pub username: Option<String>,
}

/// One membership, with the learner's directory entry joined at read time.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipRow {
    pub customer_id: CustomerId,
    pub learner_id: LearnerId,
    pub state: MembershipStatus,
    pub active: bool,
    pub is_relinkable: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// From the directory: `None` for a learner known only by email (pending).
    pub lms_user_id: Option<i64>,
    /// From the directory: `None` once the learner is erased.
    pub username: Option<String>,
    /// From the directory: `None` once the learner is erased.
    pub email: Option<String>,
}

impl MembershipRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let state: String = row.try_get("state")?;
        Ok(Self {
            customer_id: CustomerId(row.try_get("customer_id")?),
            learner_id: LearnerId(row.try_get("learner_id")?),
            state: state
                .parse()
                .map_err(|e: String| sqlx::Error::ColumnDecode {
                    index: "state".into(),
                    source: e.into(),
                })?,
            active: row.try_get("active")?,
            is_relinkable: row.try_get("is_relinkable")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            lms_user_id: row.try_get("lms_user_id")?,
            username: row.try_get("username")?,
            email: row.try_get("email")?,
        })
    }
}

#[async_trait]
impl Projection for Learners {
    fn name(&self) -> &'static str {
        "learners"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["learners_memberships"]
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[MEMBERSHIP])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event])
            .await
            .map_err(|(_, error)| error)
    }

    /// Loads the memberships the batch touches (one query), folds the events over them in log
    /// order, and writes back what changed: one upsert and one delete.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        let decoded = decode_all(events)?;
        if decoded.is_empty() {
            return Ok(());
        }
        let keys = decoded.iter().map(|(e, _)| key_of(e)).collect();
        let mut memberships = Memberships::load(conn, keys)
            .await
            .map_err(|e| (0, e.into()))?;
        for (event, at) in decoded {
            memberships.apply(event, at);
        }
        memberships
            .write(conn, WriteMode::Upsert)
            .await
            .map_err(|e| (0, e.into()))
    }

    fn fold_from_zero(&self) -> Option<Box<dyn Fold>> {
        Some(Box::new(FromZero(Memberships::default())))
    }
}

/// A membership event and when it was recorded.
type Recorded = (MembershipEvent, DateTime<Utc>);

/// The membership events of `events`, decoded.
fn decode_all(events: &[&LoggedEvent]) -> Result<Vec<Recorded>, (usize, ApplyError)> {
    let mut decoded = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if event.aggregate_type == MEMBERSHIP {
            let membership: MembershipEvent = decode(event).map_err(|e| (index, e))?;
            decoded.push((membership, event.recorded_at));
        }
    }
    Ok(decoded)
}

/// The log folded from its first event over the empty table: every membership held, none
/// read back.
struct FromZero(Memberships);

#[async_trait]
impl Fold for FromZero {
    fn apply(&mut self, events: &[&LoggedEvent]) -> Result<(), (usize, ApplyError)> {
        for (event, at) in decode_all(events)? {
            self.0.apply(event, at);
        }
        Ok(())
    }

    fn held(&self) -> usize {
        self.0.rows.len()
    }

    async fn write(self: Box<Self>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.0.write(conn, WriteMode::Insert).await
    }
}

/// A membership's key: customer, learner.
type Key = (Uuid, Uuid);

fn key_of(event: &MembershipEvent) -> Key {
    (event.customer_id().0, event.learner_id().0)
}

/// A membership row without its key.
#[derive(Debug, Clone, PartialEq)]
struct Membership {
    state: MembershipStatus,
    active: bool,
    is_relinkable: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A row of `learners_memberships` as stored.
#[derive(sqlx::FromRow)]
struct StoredMembership {
    customer_id: Uuid,
    learner_id: Uuid,
    state: String,
    active: bool,
    is_relinkable: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The memberships a batch touches: each one's row before the batch, and after the events
/// folded so far (`None`: no row).
#[derive(Default)]
struct Memberships {
    rows: FxHashMap<Key, (Option<Membership>, Option<Membership>)>,
}

impl Memberships {
    /// The current rows of `keys`, in one query.
    async fn load(conn: &mut PgConnection, keys: FxHashSet<Key>) -> Result<Self, sqlx::Error> {
        let (customers, learners): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        let mut rows: FxHashMap<Key, _> = keys.into_iter().map(|k| (k, (None, None))).collect();
        let found: Vec<StoredMembership> = sqlx::query_as(
            "SELECT m.customer_id, m.learner_id, m.state, m.active, m.is_relinkable,
                    m.created_at, m.updated_at
               FROM UNNEST($1::uuid[], $2::uuid[]) AS k (customer_id, learner_id)
               JOIN learners_memberships m
                 ON m.customer_id = k.customer_id AND m.learner_id = k.learner_id",
        )
        .bind(customers)
        .bind(learners)
        .fetch_all(&mut *conn)
        .await?;
        for found in found {
            let state = found
                .state
                .parse()
                .map_err(|e: String| sqlx::Error::ColumnDecode {
                    index: "state".into(),
                    source: e.into(),
                })?;
            let row = Membership {
                state,
                active: found.active,
                is_relinkable: found.is_relinkable,
                created_at: found.created_at,
                updated_at: found.updated_at,
            };
            let key = (found.customer_id, found.learner_id);
            rows.insert(key, (Some(row.clone()), Some(row)));
        }
        Ok(Self { rows })
    }

    /// One event, by the rules of the module doc.
    fn apply(&mut self, event: MembershipEvent, at: DateTime<Utc>) {
        use MembershipEvent as E;
        use MembershipStatus as S;
        let (_, row) = self.rows.entry(key_of(&event)).or_default();
        // (De)activation keeps the flag. The aggregate only emits it for linked memberships;
        // a missing row would still be created, relinkable.
        let kept = row.as_ref().is_none_or(|m| m.is_relinkable);
        let (state, active, is_relinkable) = match event {
            E::PendingLinkRequested { .. } => (S::Pending, false, true),
            E::PendingLinkCancelled { .. } => {
                *row = None;
                return;
            }
            E::LearnerLinked { active, .. } => (S::Linked, active, true),
            E::MembershipActivated { .. } => (S::Linked, true, kept),
            E::MembershipDeactivated { .. } => (S::Linked, false, kept),
            E::LearnerUnlinked { is_relinkable, .. } => (S::Unlinked, false, is_relinkable),
        };
        *row = Some(Membership {
            state,
            active,
            is_relinkable,
            created_at: row.as_ref().map_or(at, |m| m.created_at),
            updated_at: at,
        });
    }

    /// Writes the rows that changed (one insert, as `mode` says) and deletes the rows that went
    /// (one delete).
    async fn write(self, conn: &mut PgConnection, mode: WriteMode) -> Result<(), sqlx::Error> {
        let (mut changed, mut gone) = (Vec::new(), Vec::new());
        for (key, (before, after)) in self.rows {
            match after {
                Some(row) if before.as_ref() != Some(&row) => changed.push((key, row)),
                None if before.is_some() => gone.push(key),
                _ => {}
            }
        }
        let changed = in_key_order(changed);
        if !gone.is_empty() {
            sqlx::query(
                "DELETE FROM learners_memberships m
                  USING UNNEST($1::uuid[], $2::uuid[]) AS k (customer_id, learner_id)
                  WHERE m.customer_id = k.customer_id AND m.learner_id = k.learner_id",
            )
            .bind(gone.iter().map(|k| k.0).collect::<Vec<_>>())
            .bind(gone.iter().map(|k| k.1).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        match mode {
            WriteMode::Insert => {
                let mut rows = CopyRows::start(conn, MEMBERSHIPS, 7).await?;
                for ((customer, learner), m) in &changed {
                    rows.row()
                        .value(customer)
                        .value(learner)
                        .value(m.state.as_str())
                        .value(m.active)
                        .value(m.is_relinkable)
                        .value(m.created_at)
                        .value(m.updated_at);
                    rows.send_full().await?;
                }
                rows.finish().await?;
            }
            WriteMode::Upsert if !changed.is_empty() => {
                sqlx::query(&format!(
                    "INSERT INTO {MEMBERSHIPS}
                     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[],
                                          $5::bool[], $6::timestamptz[], $7::timestamptz[])
                     ON CONFLICT (customer_id, learner_id) DO UPDATE
                        SET state = EXCLUDED.state, active = EXCLUDED.active,
                            is_relinkable = EXCLUDED.is_relinkable,
                            created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at"
                ))
                .bind(column(&changed, |(k, _)| k.0))
                .bind(column(&changed, |(k, _)| k.1))
                .bind(column(&changed, |(_, m)| m.state.as_str()))
                .bind(column(&changed, |(_, m)| m.active))
                .bind(column(&changed, |(_, m)| m.is_relinkable))
                .bind(column(&changed, |(_, m)| m.created_at))
                .bind(column(&changed, |(_, m)| m.updated_at))
                .execute(&mut *conn)
                .await?;
            }
            WriteMode::Upsert => {}
        }
        Ok(())
    }
}

/// The memberships table and the columns every write of it fills.
const MEMBERSHIPS: &str = "learners_memberships
    (customer_id, learner_id, state, active, is_relinkable, created_at, updated_at)";

/// The membership columns and the directory's, for both queries.
const SELECT_ROWS: &str = "SELECT m.customer_id, m.learner_id, m.state, m.active, m.is_relinkable,
        m.created_at, m.updated_at, d.lms_user_id, d.username, d.email
   FROM learners_memberships m
   LEFT JOIN learners d ON d.learner_id = m.learner_id";

/// The filter of [`memberships_of_customer`], with `$1` the customer.
const CUSTOMER_FILTER: &str = "WHERE m.customer_id = $1
    AND ($2::text IS NULL OR m.state = $2)
    AND ($3::boolean IS NULL OR m.active = $3)
    AND ($4::text IS NULL OR lower(d.username) = lower($4))";

/// One page of a customer's memberships and how many match in all, in edX's order: active
/// first, then the most recently changed. `page` counts from 1 (0 reads as 1); `page_size` is
/// at least 1.
pub async fn memberships_of_customer(
    pool: &PgPool,
    customer: CustomerId,
    filter: &MembershipFilter,
    page: u32,
    page_size: u32,
) -> Result<(i64, Vec<MembershipRow>), sqlx::Error> {
    let state = filter.state.map(MembershipStatus::as_str);
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM learners_memberships m
           LEFT JOIN learners d ON d.learner_id = m.learner_id {CUSTOMER_FILTER}"
    ))
    .bind(customer.0)
    .bind(state)
    .bind(filter.active)
    .bind(filter.username.as_deref())
    .fetch_one(pool)
    .await?;
    let size = i64::from(page_size.max(1));
    let offset = i64::from(page.max(1) - 1) * size;
    let rows = sqlx::query(&format!(
        "{SELECT_ROWS} {CUSTOMER_FILTER}
          ORDER BY m.active DESC, m.updated_at DESC, m.learner_id
          LIMIT $5 OFFSET $6"
    ))
    .bind(customer.0)
    .bind(state)
    .bind(filter.active)
    .bind(filter.username.as_deref())
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let rows = rows
        .iter()
        .map(MembershipRow::from_row)
        .collect::<Result<_, _>>()?;
    Ok((total, rows))
}

/// Every membership of one learner (pending and unlinked ones included), the active one first.
pub async fn memberships_of_learner(
    pool: &PgPool,
    learner: LearnerId,
) -> Result<Vec<MembershipRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT_ROWS} WHERE m.learner_id = $1
          ORDER BY m.active DESC, m.updated_at DESC, m.customer_id"
    ))
    .bind(learner.0)
    .fetch_all(pool)
    .await?;
    rows.iter().map(MembershipRow::from_row).collect()
}
