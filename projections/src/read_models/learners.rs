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

use crate::projection::{decode, ApplyError, Projection};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{CustomerId, LearnerId};
use domain::membership::MembershipEvent;
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

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        if event.aggregate_type != MEMBERSHIP {
            return Ok(());
        }
        let decoded: MembershipEvent = decode(event)?;
        let customer = decoded.customer_id().0;
        let learner = decoded.learner_id().0;
        let at = event.recorded_at;
        use MembershipEvent as E;
        use MembershipStatus as S;
        match decoded {
            E::PendingLinkRequested { .. } => {
                upsert(conn, customer, learner, S::Pending, false, true, at).await?
            }
            E::PendingLinkCancelled { .. } => {
                sqlx::query(
                    "DELETE FROM learners_memberships WHERE customer_id = $1 AND learner_id = $2",
                )
                .bind(customer)
                .bind(learner)
                .execute(&mut *conn)
                .await?;
            }
            E::LearnerLinked { active, .. } => {
                upsert(conn, customer, learner, S::Linked, active, true, at).await?
            }
            E::MembershipActivated { .. } => set_active(conn, customer, learner, true, at).await?,
            E::MembershipDeactivated { .. } => {
                set_active(conn, customer, learner, false, at).await?
            }
            E::LearnerUnlinked { is_relinkable, .. } => {
                upsert(
                    conn,
                    customer,
                    learner,
                    S::Unlinked,
                    false,
                    is_relinkable,
                    at,
                )
                .await?
            }
        }
        Ok(())
    }
}

/// Sets the whole state of a membership, creating the row if it is new.
async fn upsert(
    conn: &mut PgConnection,
    customer: Uuid,
    learner: Uuid,
    state: MembershipStatus,
    active: bool,
    is_relinkable: bool,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO learners_memberships
                (customer_id, learner_id, state, active, is_relinkable, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (customer_id, learner_id) DO UPDATE
            SET state = EXCLUDED.state, active = EXCLUDED.active,
                is_relinkable = EXCLUDED.is_relinkable, updated_at = EXCLUDED.updated_at",
    )
    .bind(customer)
    .bind(learner)
    .bind(state.as_str())
    .bind(active)
    .bind(is_relinkable)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Activates or deactivates a linked membership. The aggregate only emits these for linked
/// memberships; the upsert keeps the row right even if the row were somehow missing.
async fn set_active(
    conn: &mut PgConnection,
    customer: Uuid,
    learner: Uuid,
    active: bool,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO learners_memberships
                (customer_id, learner_id, state, active, is_relinkable, created_at, updated_at)
         VALUES ($1, $2, 'linked', $3, true, $4, $4)
         ON CONFLICT (customer_id, learner_id) DO UPDATE
            SET state = 'linked', active = EXCLUDED.active, updated_at = EXCLUDED.updated_at",
    )
    .bind(customer)
    .bind(learner)
    .bind(active)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

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
