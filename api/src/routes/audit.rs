//! Consent history for auditors (and operators), read from the log itself:
//!
//! - `/api/v1/audit/consent/history`: every grant, decline and revocation, oldest first, with
//!   when it was recorded, the pseudonymous actor, the source and the correlation;
//! - `/api/v1/audit/consent/state`: each consent record as it stood at `as_of` (its last event
//!   recorded at or before that instant).
//!
//! Both select by learner (`learner_uuid` or `username`, resolved in the learner directory)
//! and/or customer (`customer_uuid`); `as_of` (RFC 3339) bounds the history too. Answers name
//! learners by id only: the log holds no personal data and neither does its audit.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::page::{Page, PageRequest, RequestUrl};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Which records, and the instant; text so a malformed value is named.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub learner_uuid: Option<String>,
    /// The learner's LMS username, looked up in the learner directory.
    pub username: Option<String>,
    pub customer_uuid: Option<String>,
    /// RFC 3339; the state at this instant, the history up to it. Now when absent.
    pub as_of: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
    pub min_position: Option<String>,
}

/// The checked selection.
struct Selection {
    learner: Option<Uuid>,
    customer: Option<Uuid>,
    as_of: Option<DateTime<Utc>>,
    page: PageRequest,
}

fn uuid(field: &str, value: Option<&str>) -> ApiResult<Option<Uuid>> {
    value
        .map(|v| Uuid::parse_str(v).map_err(|_| ApiError::field(field, "must be a UUID")))
        .transpose()
}

fn number(field: &str, value: Option<&str>) -> ApiResult<Option<u32>> {
    value
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| ApiError::field(field, "must be a positive integer"))
        })
        .transpose()
}

impl AuditQuery {
    async fn select(&self, state: &AppState) -> ApiResult<Selection> {
        let as_of = self
            .as_of
            .as_deref()
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::field(
                            "as_of",
                            "must be an RFC 3339 instant such as 2026-01-31T12:00:00Z",
                        )
                    })
            })
            .transpose()?;
        let page = PageRequest {
            page: number("page", self.page.as_deref())?,
            page_size: number("page_size", self.page_size.as_deref())?,
        };
        page.resolve()?;
        let customer = uuid("customer_uuid", self.customer_uuid.as_deref())?;
        let by_id = uuid("learner_uuid", self.learner_uuid.as_deref())?;
        if by_id.is_some() && self.username.is_some() {
            return Err(ApiError::field(
                "username",
                "give learner_uuid or username, not both",
            ));
        }
        let learner = match &self.username {
            Some(username) => Some(
                store::directory::find_by_username(&state.pool, username)
                    .await?
                    .ok_or_else(|| {
                        ApiError::NotFound(format!("no learner has the username '{username}'"))
                    })?
                    .learner_id,
            ),
            None => by_id,
        };
        if learner.is_none() && customer.is_none() {
            return Err(ApiError::field(
                "learner_uuid",
                "give learner_uuid, username or customer_uuid",
            ));
        }
        Ok(Selection {
            learner,
            customer,
            as_of,
            page,
        })
    }
}

/// The consent events of the selection: `$1` learner, `$2` customer, `$3` instant.
const CONSENT_EVENTS: &str = "FROM events e
    WHERE e.aggregate_type = 'consent'
      AND ($1::text IS NULL OR e.payload -> e.event_type ->> 'learner_id' = $1)
      AND ($2::text IS NULL OR e.payload -> e.event_type ->> 'customer_id' = $2)
      AND ($3::timestamptz IS NULL OR e.recorded_at <= $3)";

const EVENT_COLUMNS: &str = "e.global_position, e.recorded_at, e.event_type,
    e.payload -> e.event_type ->> 'customer_id', e.payload -> e.event_type ->> 'learner_id',
    e.payload -> e.event_type -> 'subject', e.payload -> e.event_type ->> 'source',
    e.metadata ->> 'actor', e.metadata ->> 'correlation_id'";

type EventRow = (
    i64,
    DateTime<Utc>,
    String,
    Option<String>,
    Option<String>,
    Option<Value>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// One grant, decline or revocation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentEntry {
    /// The event's global position in the log.
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    /// `granted`, `declined` or `revoked`.
    pub action: String,
    pub customer_uuid: Option<String>,
    pub learner_uuid: Option<String>,
    /// `{"course": "<course key>"}` or `{"program": "<uuid>"}`.
    #[schema(value_type = Object)]
    pub subject: Option<Value>,
    /// `consent_page`, `api`, `admin` or `code_redemption`.
    pub source: Option<String>,
    /// The pseudonymous principal who acted.
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
}

fn action(event_type: &str) -> String {
    match event_type {
        "ConsentGranted" => "granted",
        "ConsentDeclined" => "declined",
        "ConsentRevoked" => "revoked",
        other => other,
    }
    .to_string()
}

impl From<EventRow> for ConsentEntry {
    fn from(row: EventRow) -> Self {
        let (position, recorded_at, event_type, customer, learner, subject, source, actor, corr) =
            row;
        Self {
            position,
            recorded_at,
            action: action(&event_type),
            customer_uuid: customer,
            learner_uuid: learner,
            subject,
            source,
            actor,
            correlation_id: corr,
        }
    }
}

/// A consent record as it stood at an instant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentAsOf {
    /// `granted` or `not_granted` (declined or revoked).
    pub state: String,
    /// The event that set the state.
    pub last: ConsentEntry,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentStates {
    pub as_of: DateTime<Utc>,
    pub records: Page<ConsentAsOf>,
}

#[utoipa::path(get, path = "/api/v1/audit/consent/history", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = Page<ConsentEntry>),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// Every grant, decline and revocation of the selected learner and/or customer, oldest first.
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Params(query): Params<AuditQuery>,
) -> ApiResult<Json<Page<ConsentEntry>>> {
    principal.require_auditor()?;
    let selection = query.select(&state).await?;
    // The log is always current: waiting only checks that the position exists.
    min_position.wait(&state.pool, &[]).await?;
    let (limit, offset) = selection.page.limit_offset()?;
    let learner = selection.learner.map(|l| l.to_string());
    let customer = selection.customer.map(|c| c.to_string());
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) {CONSENT_EVENTS}"))
        .bind(&learner)
        .bind(&customer)
        .bind(selection.as_of)
        .fetch_one(&state.pool)
        .await?;
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} {CONSENT_EVENTS}
          ORDER BY e.recorded_at, e.global_position LIMIT $4 OFFSET $5"
    ))
    .bind(&learner)
    .bind(&customer)
    .bind(selection.as_of)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let entries = rows.into_iter().map(ConsentEntry::from).collect();
    Ok(Json(Page::new(&url, selection.page, count, entries)?))
}

#[utoipa::path(get, path = "/api/v1/audit/consent/state", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, body = ConsentStates),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// Each consent record of the selection as it stood at `as_of` (now by default); a record with
/// no event by then is not listed (never asked).
pub async fn state_as_of(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Params(query): Params<AuditQuery>,
) -> ApiResult<Json<ConsentStates>> {
    principal.require_auditor()?;
    let mut selection = query.select(&state).await?;
    min_position.wait(&state.pool, &[]).await?;
    let as_of = *selection.as_of.get_or_insert_with(Utc::now);
    let (limit, offset) = selection.page.limit_offset()?;
    let learner = selection.learner.map(|l| l.to_string());
    let customer = selection.customer.map(|c| c.to_string());
    let latest = format!(
        "SELECT DISTINCT ON (e.aggregate_id) {EVENT_COLUMNS} {CONSENT_EVENTS}
          ORDER BY e.aggregate_id, e.sequence DESC"
    );
    let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM ({latest}) latest"))
        .bind(&learner)
        .bind(&customer)
        .bind(as_of)
        .fetch_one(&state.pool)
        .await?;
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT * FROM ({latest}) latest ORDER BY 1 LIMIT $4 OFFSET $5"
    ))
    .bind(&learner)
    .bind(&customer)
    .bind(as_of)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let records = rows
        .into_iter()
        .map(|row| {
            let last = ConsentEntry::from(row);
            let state = if last.action == "granted" {
                "granted"
            } else {
                "not_granted"
            };
            ConsentAsOf {
                state: state.to_string(),
                last,
            }
        })
        .collect();
    Ok(Json(ConsentStates {
        as_of,
        records: Page::new(&url, selection.page, count, records)?,
    }))
}
