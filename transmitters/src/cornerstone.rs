//! Cornerstone OnDemand (channel `CSOD`): Cornerstone pulls the catalog.
//!
//! `GET /cornerstone/course-list?ciid=<customer uuid>` ([`router`], mounted by the API, which
//! adds its authentication) answers the pending content rows of the customer's active
//! Cornerstone configuration as a JSON array of course objects (edX's `DATA_TRANSFORM_MAPPING`,
//! nulls omitted; deletes carry `IsActive: false`):
//! - 400 `{"message": "Cornerstone course list API expects ciid parameter."}` without a valid
//!   `ciid`; 404 `{"message": "No active Cornerstone configuration found for given ciid."}`;
//! - `If-Modified-Since` (HTTP date): an item last modified before it gets that date as its
//!   `LastModifiedUTC`, so Cornerstone, which takes only newer items, takes it;
//! - the rows served are leased while the response is written, and count as sent only once the
//!   whole body was handed to the connection: a dropped response leaves the leases to expire and
//!   the rows are served again;
//! - course keys longer than 50 characters (Cornerstone's limit) are sent as a stable UUID
//!   (UUIDv5 of the key), shorter ones as they are.
//!
//! The workers never send Cornerstone content: they hand such rows back for a day, uncounted.
//!
//! Completions go to Cornerstone's User Progress API with the launch parameters recorded for
//! the learner and course ([`crate::cornerstone_launch`]):
//! `POST {base_url}{callbackUrl}/progress?sessionToken=<token>`, `Authorization: Basic
//! client_id:client_secret`, body a JSON array of one object `{"completionDate", "courseId",
//! "sessionToken", "status", "successStatus", "userGuid"}`:
//! - the token in the query is the configuration's latest (any learner's latest launch), as
//!   edX keeps it on the configuration; the learner's own launch token stays in the body, as
//!   edX leaves it there when the configuration has one;
//! - `courseId` is the course's Cornerstone id (as in the course list); `status` is
//!   `Completed` for a pass or a fail, else `In Progress`; `successStatus` the grade, left out
//!   while in progress; `completionDate` ISO 8601 to the second with `+00:00`;
//! - without a recorded launch a row cannot be built: it is retried (a launch recorded later
//!   lets it through) and dead-lettered in the end, requeueable.

use crate::channel::{Auth, BuildContext, ChannelClient, Planned, Request};
use crate::cornerstone_launch::{latest_token, launches_of};
use crate::degreed::urlencode;
use crate::record::{record, Outcome};
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use domain::channel::ChannelSettings;
use domain::transmission::TransmissionStatus;
use projections::read_models::outbox::{complete, ItemAction, ItemKind, OutboxItem};
use reqwest::Method;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use store::EventStore;
use uuid::Uuid;

pub struct Cornerstone;

/// Longest course id Cornerstone takes.
const COURSE_ID_MAX: usize = 50;
/// How long served rows stay leased while the answer is written.
const SERVE_LEASE: Duration = Duration::from_secs(300);
/// Namespace of the UUIDs that stand for long course keys (fixed: changing it renames every
/// such course at Cornerstone).
const COURSE_NAMESPACE: Uuid = Uuid::from_u128(0x9c1e_8a0e_2f3b_4f55_9a1d_0e5b_6f7c_8d9e);

/// Cornerstone's progress path, appended to a launch's callback URL (edX's global
/// `completion_status_api_path`).
pub const PROGRESS_PATH: &str = "/progress";

#[async_trait]
impl ChannelClient for Cornerstone {
    async fn plan(
        &self,
        context: &BuildContext<'_>,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<Planned>, sqlx::Error> {
        let (content, learners): (Vec<_>, Vec<_>) =
            items.into_iter().partition(|i| i.kind == ItemKind::Content);
        let mut plans = Vec::new();
        if !content.is_empty() {
            plans.push(Planned::Defer {
                items: content,
                after: Duration::from_secs(86_400),
            });
        }
        if !learners.is_empty() {
            plans.extend(completions(context, learners).await?);
        }
        Ok(plans)
    }
}

/// The progress requests of learner rows (see the module doc).
async fn completions(
    context: &BuildContext<'_>,
    items: Vec<OutboxItem>,
) -> Result<Vec<Planned>, sqlx::Error> {
    let unbuildable = |items, reason: &str| {
        Ok(vec![Planned::Unbuildable {
            items,
            reason: reason.into(),
        }])
    };
    let ChannelSettings::Csod { base_url } = &context.config.settings else {
        return unbuildable(items, "not a Cornerstone configuration");
    };
    let (Some(user), Some(password)) = (
        context.config.secret("client_id"),
        context.config.secret("client_secret"),
    ) else {
        return unbuildable(items, "the configuration has no client id and secret");
    };
    let Some(secrets) = context.secrets else {
        return unbuildable(items, "no secrets key to open the launch tokens with");
    };
    let config = context.config.config_id.0;
    let wanted: Vec<(Uuid, String)> = items
        .iter()
        .filter_map(|i| Some((i.learner_id?, i.payload["course_key"].as_str()?.to_string())))
        .collect();
    let customer = context.config.customer_id.0;
    let launches = launches_of(context.pool, secrets, customer, &wanted).await?;
    let latest = latest_token(context.pool, secrets, config).await?;
    let mut plans = Vec::new();
    for item in items {
        let key = item.payload["course_key"].as_str().unwrap_or_default();
        let launch = item
            .learner_id
            .and_then(|learner| launches.get(&(learner, key.to_string())));
        let Some(launch) = launch else {
            plans.push(Planned::Unbuildable {
                items: vec![item],
                reason: "no Cornerstone launch is recorded for this learner and course".into(),
            });
            continue;
        };
        let token = latest.as_ref().unwrap_or(&launch.session_token);
        let request = Request {
            method: Method::POST,
            url: format!(
                "{base_url}{}{PROGRESS_PATH}?sessionToken={}",
                launch.callback_url,
                urlencode(token)
            ),
            headers: vec![("Idempotency-Key".into(), item.item_id.to_string())],
            auth: Auth::Basic {
                user: user.to_string(),
                password: password.to_string(),
            },
            body: crate::channel::Body::Json(progress(
                &item,
                key,
                &launch.user_guid,
                &launch.session_token,
            )),
            private: vec![
                launch.user_guid.clone(),
                launch.session_token.clone(),
                token.clone(),
            ],
        };
        plans.push(Planned::Send {
            items: vec![item],
            request,
        });
    }
    Ok(plans)
}

/// The progress body of a learner row: an array of one object (keys sorted).
pub fn progress(
    item: &OutboxItem,
    course_key: &str,
    user_guid: &str,
    session_token: &str,
) -> Value {
    let grade = item.payload["grade"].as_str();
    let in_progress = !matches!(grade, Some("Pass" | "Fail"));
    let completion_date = item.payload["completed_at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| {
            at.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%S+00:00")
                .to_string()
        });
    let mut progress = Map::new();
    progress.insert("completionDate".into(), json!(completion_date));
    progress.insert("courseId".into(), json!(course_id(course_key)));
    progress.insert("sessionToken".into(), json!(session_token));
    progress.insert(
        "status".into(),
        json!(if in_progress {
            "In Progress"
        } else {
            "Completed"
        }),
    );
    if grade != Some("In Progress") {
        progress.insert("successStatus".into(), json!(grade));
    }
    progress.insert("userGuid".into(), json!(user_guid));
    json!([Value::Object(progress)])
}

/// Cornerstone's id of a course key.
pub fn course_id(key: &str) -> String {
    if key.chars().count() <= COURSE_ID_MAX {
        key.to_string()
    } else {
        Uuid::new_v5(&COURSE_NAMESPACE, key.as_bytes()).to_string()
    }
}

/// The course object of a content row (nulls omitted).
pub fn course_object(item: &OutboxItem, last_modified: DateTime<Utc>) -> Value {
    let metadata = &item.payload;
    let text = |field: &str| metadata[field].as_str().filter(|s| !s.is_empty());
    let key = text("key")
        .or(item.content_key.as_deref())
        .unwrap_or_default();
    let title = text("title").unwrap_or(key);
    let description = text("full_description")
        .filter(|d| d.chars().count() <= 10_000)
        .or_else(|| text("short_description"))
        .unwrap_or(title);
    let mut course = Map::new();
    course.insert("ID".into(), json!(course_id(key)));
    course.insert("Title".into(), json!(title));
    course.insert("Description".into(), json!(description));
    if let Some(image) = text("image_url") {
        course.insert("Thumbnail".into(), json!(image));
    }
    if let Some(url) = text("enrollment_url") {
        course.insert("URL".into(), json!(url));
    }
    course.insert("IsActive".into(), json!(item.action != ItemAction::Delete));
    course.insert(
        "LastModifiedUTC".into(),
        json!(last_modified.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
    );
    if let Some(hours) = metadata["estimated_hours"].as_f64() {
        let minutes = (hours * 60.0).round() as i64;
        course.insert(
            "Duration".into(),
            json!(format!("{:02}:{:02}:00", minutes / 60, minutes % 60)),
        );
    }
    let partners: Vec<Value> = metadata["partners"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .map(|name| json!({"Name": name.chars().take(500).collect::<String>()}))
                .collect()
        })
        .unwrap_or_default();
    course.insert(
        "Partners".into(),
        if partners.is_empty() {
            json!([{"Name": "edX: edX Inc"}])
        } else {
            Value::Array(partners)
        },
    );
    course.insert("Languages".into(), json!(["en-US"]));
    course.insert("Subjects".into(), json!(["Industry Specific"]));
    course.insert("IsMobile".into(), json!(true));
    Value::Object(course)
}

/// The course-list endpoint's state.
#[derive(Clone)]
pub struct Pull {
    pool: PgPool,
    store: EventStore,
}

impl Pull {
    pub fn new(pool: PgPool, store: EventStore) -> Self {
        Self { pool, store }
    }
}

/// `GET /cornerstone/course-list` (see the module doc).
pub fn router(pool: PgPool) -> Router {
    let store = EventStore::new(pool.clone());
    Router::new()
        .route("/cornerstone/course-list", get(course_list))
        .with_state(Pull { pool, store })
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "message": text }))).into_response()
}

/// The endpoint's handler, for a router that authenticates first (see the module doc).
pub async fn course_list(
    State(pull): State<Pull>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(customer) = query.get("ciid").and_then(|c| Uuid::try_parse(c).ok()) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Cornerstone course list API expects ciid parameter.",
        );
    };
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .map(|at| at.with_timezone(&Utc));
    match serve(&pull, customer, since).await {
        Ok(Some(response)) => response,
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            "No active Cornerstone configuration found for given ciid.",
        ),
        Err(error) => {
            tracing::error!(%error, "serving the Cornerstone course list");
            message(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn serve(
    pull: &Pull,
    customer: Uuid,
    since: Option<DateTime<Utc>>,
) -> Result<Option<Response>, sqlx::Error> {
    let config: Option<Uuid> = sqlx::query_scalar(
        "SELECT config_id FROM outbox_configs
          WHERE customer_id = $1 AND channel = 'CSOD' AND active ORDER BY config_id LIMIT 1",
    )
    .bind(customer)
    .fetch_optional(&pull.pool)
    .await?;
    let Some(config) = config else {
        return Ok(None);
    };
    let owner = format!("cornerstone-pull-{}", Uuid::new_v4().simple());
    let items = lease_content(&pull.pool, config, &owner).await?;
    let courses: Vec<Value> = items
        .iter()
        .map(|item| {
            let modified = match since {
                Some(since) if item.updated_at < since => since,
                _ => item.updated_at,
            };
            course_object(item, modified)
        })
        .collect();
    let bytes = Value::Array(courses).to_string();
    // The rows are settled when the body stream is polled past its only chunk: hyper asks for
    // the next chunk only after the previous one went to the connection.
    let pull = pull.clone();
    let stream = futures_util::stream::unfold(Some(bytes), move |state| {
        let (pull, items, owner) = (pull.clone(), items.clone(), owner.clone());
        async move {
            match state {
                Some(bytes) => Some((Ok::<_, std::io::Error>(bytes), None)),
                None => {
                    settle(&pull, &items, &owner).await;
                    None
                }
            }
        }
    });
    Ok(Some(
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(stream))
            .unwrap_or_default(),
    ))
}

/// Leases every pending content row of the configuration (whatever its next attempt time: the
/// workers hand these rows back for later), deciding create, update or delete against what the
/// remote holds, as the queue's `claim` does.
async fn lease_content(
    pool: &PgPool,
    config: Uuid,
    owner: &str,
) -> Result<Vec<OutboxItem>, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "WITH due AS (
             SELECT item_id FROM outbox_items
              WHERE config_id = $1 AND kind = 'content'
                AND (status = 'pending' OR (status = 'leased' AND lease_expires_at <= now()))
              ORDER BY created_at, item_id
              LIMIT 1000
                FOR UPDATE SKIP LOCKED)
         UPDATE outbox_items i
            SET status = 'leased', lease_owner = $2,
                lease_expires_at = now() + make_interval(secs => $3::float8), updated_at = now(),
                action = CASE
                    WHEN NOT i.present THEN 'delete'
                    WHEN EXISTS (SELECT 1 FROM outbox_remote_content r
                                  WHERE r.config_id = i.config_id
                                    AND r.content_type = i.content_type
                                    AND r.content_key = i.content_key) THEN 'update'
                    ELSE 'create' END
           FROM due WHERE i.item_id = due.item_id
         RETURNING i.item_id",
    )
    .bind(config)
    .bind(owner)
    .bind(SERVE_LEASE.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let leased: Vec<OutboxItem> = projections::read_models::outbox::items_of_config(pool, config)
        .await?
        .into_iter()
        .filter(|i| ids.contains(&i.item_id))
        .collect();
    Ok(leased)
}

/// Records and completes the rows of a delivered answer.
async fn settle(pull: &Pull, items: &[OutboxItem], owner: &str) {
    for item in items {
        let outcome = Outcome {
            status: TransmissionStatus::Sent,
            answer: None,
            note: Some("served in the Cornerstone course list".into()),
            duration: Duration::ZERO,
        };
        if let Err(error) = record(&pull.store, item, &outcome, None).await {
            tracing::warn!(%error, item = %item.item_id, "recording a served row");
            continue;
        }
        if let Err(error) = complete(&pull.pool, item.item_id, owner).await {
            tracing::warn!(%error, item = %item.item_id, "completing a served row");
        }
    }
}
