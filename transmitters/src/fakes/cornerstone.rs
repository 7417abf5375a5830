//! A strict fake of Cornerstone's User Progress API: `POST {callback path}/progress?sessionToken=`
//! (any path ending in `/progress`), as edX's Cornerstone channel calls it.
//!
//! Checks, in order: Basic auth with the configured key and secret (else 401); a
//! `sessionToken` in the query that a launch issued and that has not expired (else 401
//! `{"message": "session expired"}`); `Content-Type: application/json`; a body that is a JSON
//! array of at least one object, each with string `courseId` and `userGuid`, `status` one of
//! `Completed` and `In Progress`, `completionDate` a string (ISO 8601) or null and
//! `successStatus`, when present, a string or null (else 400). A `Completed` record is sticky:
//! a later `In Progress` for the same user and course is acknowledged but changes nothing, as
//! Cornerstone documents. Success is `200` with `{"status": "success"}`.

use super::{basic_auth_is, play, stall, Faults};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// One progress record the fake accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path (the launch's callback path and `/progress`).
    pub path: String,
    /// The `sessionToken` of the query.
    pub session_token: String,
    /// The record (one element of the body's array).
    pub record: Value,
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
struct Store {
    tokens: HashSet<String>,
    accepted: Vec<Received>,
    /// The latest status per (userGuid, courseId).
    statuses: HashMap<(String, String), String>,
}

/// The fake: its credentials, the session tokens it honours, its faults and what it accepted.
#[derive(Clone)]
pub struct FakeCornerstone {
    key: String,
    secret: String,
    pub faults: Faults,
    store: Arc<Mutex<Store>>,
}

impl FakeCornerstone {
    pub fn new(key: &str, secret: &str) -> Self {
        Self {
            key: key.into(),
            secret: secret.into(),
            faults: Faults::default(),
            store: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(progress).with_state(self.clone())
    }

    /// Honours `token` from now on (a launch issued it).
    pub fn issue_token(&self, token: &str) {
        self.lock().tokens.insert(token.into());
    }

    /// Stops honouring `token` (the session expired).
    pub fn expire_token(&self, token: &str) {
        self.lock().tokens.remove(token);
    }

    /// Every record accepted, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().accepted.clone()
    }

    /// The status Cornerstone keeps for a user and course.
    pub fn status(&self, user_guid: &str, course_id: &str) -> Option<String> {
        self.lock()
            .statuses
            .get(&(user_guid.to_string(), course_id.to_string()))
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

async fn progress(
    State(fake): State<FakeCornerstone>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !uri.path().ends_with("/progress") {
        return refuse(StatusCode::NOT_FOUND, "not found");
    }
    let fault = fake.faults.next();
    let stall = stall(&fault);
    if let Some(response) = play(fault).await {
        return response;
    }
    if !basic_auth_is(&headers, &fake.key, &fake.secret) {
        return refuse(StatusCode::UNAUTHORIZED, "bad credentials");
    }
    let token = query.get("sessionToken").cloned().unwrap_or_default();
    if !fake.lock().tokens.contains(&token) {
        return refuse(StatusCode::UNAUTHORIZED, "session expired");
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json",
        );
    }
    let records = match serde_json::from_str::<Value>(&body) {
        Ok(Value::Array(records)) if !records.is_empty() => records,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON array of progress records",
            )
        }
    };
    if let Some(problem) = records.iter().find_map(|r| validate(r).err()) {
        return refuse(StatusCode::BAD_REQUEST, problem);
    }
    {
        let mut store = fake.lock();
        for record in records {
            let user = record["userGuid"].as_str().unwrap_or_default().to_string();
            let course = record["courseId"].as_str().unwrap_or_default().to_string();
            let status = record["status"].as_str().unwrap_or_default().to_string();
            let kept = store.statuses.entry((user, course)).or_default();
            if kept != "Completed" {
                *kept = status;
            }
            store.accepted.push(Received {
                path: uri.path().to_string(),
                session_token: token.clone(),
                record,
                idempotency_key: headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            });
        }
    }
    if let Some(wait) = stall {
        tokio::time::sleep(wait).await;
    }
    (StatusCode::OK, Json(json!({"status": "success"}))).into_response()
}

/// The record rules of the module doc.
pub fn validate(record: &Value) -> Result<(), String> {
    let object = record.as_object().ok_or("each record must be an object")?;
    for field in ["courseId", "userGuid"] {
        if !object.get(field).is_some_and(Value::is_string) {
            return Err(format!("{field} is required and must be a string"));
        }
    }
    match object.get("status").and_then(Value::as_str) {
        Some("Completed" | "In Progress") => {}
        _ => return Err("status must be 'Completed' or 'In Progress'".into()),
    }
    match object.get("completionDate") {
        Some(Value::Null) | None => {}
        Some(Value::String(date)) if chrono::DateTime::parse_from_rfc3339(date).is_ok() => {}
        Some(_) => return Err("completionDate must be an ISO 8601 date-time or null".into()),
    }
    if object
        .get("successStatus")
        .is_some_and(|s| !(s.is_string() || s.is_null()))
    {
        return Err("successStatus must be a string or null".into());
    }
    Ok(())
}
