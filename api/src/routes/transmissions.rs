//! Transmission status of a channel configuration, from the outbox read model, under
//! `/api/v1/customers/{customer_uuid}/channels/{config_uuid}/transmissions`: counts per status
//! and the rows with their errors; and the requeue of one dead or cancelled row.
//! Administrators of the customer, operators and channel workers.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, PathParams};
use crate::page::{Page, PageRequest, RequestUrl};
use crate::routes::channels::{config_of, ConfigPath, READ_MODEL};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::ids::CustomerId;
use projections::read_models::outbox::queue::{self, ItemStatus, OutboxItem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemPath {
    customer_uuid: Uuid,
    config_uuid: Uuid,
    item_uuid: Uuid,
}

/// Query parameters of the transmission status.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TransmissionQuery {
    /// Only rows in this status: `pending`, `held`, `leased`, `sent`, `failed` (pending after a
    /// failed attempt), `dead` or `cancelled`.
    pub status: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub min_position: Option<i64>,
}

/// Rows of a configuration per status.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct StatusCounts {
    pub pending: usize,
    pub held: usize,
    pub leased: usize,
    pub sent: usize,
    /// Pending again after a failed attempt (also counted in `pending`).
    pub failed: usize,
    pub dead: usize,
    pub cancelled: usize,
}

/// One outbox row.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransmissionRow {
    pub item_uuid: Uuid,
    pub kind: &'static str,
    pub action: &'static str,
    pub status: &'static str,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub cancel_reason: Option<String>,
    pub content_type: Option<String>,
    pub content_key: Option<String>,
    pub learner_uuid: Option<Uuid>,
    pub course_run_id: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

impl TransmissionRow {
    fn of(item: &OutboxItem) -> Self {
        Self {
            item_uuid: item.item_id,
            kind: item.kind.as_str(),
            action: item.action.as_str(),
            status: item.status.as_str(),
            attempts: item.attempts,
            next_attempt_at: item.next_attempt_at,
            last_error: item.last_error.clone(),
            cancel_reason: item.cancel_reason.clone(),
            content_type: item.content_type.clone(),
            content_key: item.content_key.clone(),
            learner_uuid: item.learner_id,
            course_run_id: item.course_run_id.clone(),
            created: item.created_at,
            updated: item.updated_at,
        }
    }
}

fn failed(item: &OutboxItem) -> bool {
    item.status == ItemStatus::Pending && item.attempts > 0
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransmissionStatus {
    pub config_uuid: Uuid,
    pub counts: StatusCounts,
    pub items: Page<TransmissionRow>,
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/channels/{config_uuid}/transmissions", tag = "channels",
    params(ConfigPath, TransmissionQuery),
    responses(
        (status = 200, body = TransmissionStatus),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// What a configuration transmitted and has yet to: counts per status and the rows, oldest
/// first, with their errors.
pub async fn transmissions(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    PathParams(path): PathParams<ConfigPath>,
    Params(query): Params<TransmissionQuery>,
) -> ApiResult<Json<TransmissionStatus>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_channel_reader(customer)?;
    let page = PageRequest {
        page: query.page,
        page_size: query.page_size,
    };
    let (limit, offset) = page.limit_offset()?;
    const STATUSES: [&str; 7] = [
        "pending",
        "held",
        "leased",
        "sent",
        "failed",
        "dead",
        "cancelled",
    ];
    if let Some(status) = &query.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ApiError::field(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    config_of(&state, customer, path.config_uuid).await?;
    min_position.wait(&state.pool, &[READ_MODEL]).await?;
    let items = queue::items_of_config(&state.pool, path.config_uuid).await?;
    let mut counts = StatusCounts::default();
    for item in &items {
        let slot = match item.status {
            ItemStatus::Pending => &mut counts.pending,
            ItemStatus::Held => &mut counts.held,
            ItemStatus::Leased => &mut counts.leased,
            ItemStatus::Sent => &mut counts.sent,
            ItemStatus::Dead => &mut counts.dead,
            ItemStatus::Cancelled => &mut counts.cancelled,
        };
        *slot += 1;
        if failed(item) {
            counts.failed += 1;
        }
    }
    let chosen: Vec<&OutboxItem> = items
        .iter()
        .filter(|item| match query.status.as_deref() {
            None => true,
            Some("failed") => failed(item),
            Some(status) => item.status.as_str() == status,
        })
        .collect();
    let count = chosen.len() as i64;
    let rows = chosen
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(TransmissionRow::of)
        .collect();
    Ok(Json(TransmissionStatus {
        config_uuid: path.config_uuid,
        counts,
        items: Page::new(&url, page, count, rows)?,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Requeued {
    pub item_uuid: Uuid,
    pub status: &'static str,
}

#[utoipa::path(post, path = "/api/v1/customers/{customer_uuid}/channels/{config_uuid}/transmissions/{item_uuid}/requeue", tag = "channels",
    params(ItemPath),
    responses(
        (status = 200, body = Requeued),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "The row is neither dead nor cancelled, or a newer row of its subject is queued"),
    ),
    security(("jwt" = [])))]
/// Puts a dead or cancelled row back in the queue, due now.
pub async fn requeue(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(path): PathParams<ItemPath>,
) -> ApiResult<Json<Requeued>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_channel_reader(customer)?;
    config_of(&state, customer, path.config_uuid).await?;
    let owner: Option<Uuid> =
        sqlx::query_scalar("SELECT config_id FROM outbox_items WHERE item_id = $1")
            .bind(path.item_uuid)
            .fetch_optional(&state.pool)
            .await?;
    if owner != Some(path.config_uuid) {
        return Err(ApiError::NotFound(format!(
            "configuration {} has no transmission {}",
            path.config_uuid, path.item_uuid
        )));
    }
    if !queue::requeue(&state.pool, path.item_uuid).await? {
        return Err(ApiError::Conflict(
            "only a dead or cancelled row can be requeued, and only while no newer row of its \
             subject is queued"
                .into(),
        ));
    }
    Ok(Json(Requeued {
        item_uuid: path.item_uuid,
        status: ItemStatus::Pending.as_str(),
    }))
}
