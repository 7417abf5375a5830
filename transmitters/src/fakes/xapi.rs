//! A strict fake LRS (ADL xAPI 1.0.3, as edX uses it): `POST /statements` with one statement.
//!
//! Checks, in the LRS's order: `X-Experience-API-Version` present and `1.0` or `1.0.x` (else
//! 400), Basic auth with the configured key and secret (else 401), a JSON object body (else
//! 400) with an `actor` carrying exactly one identifier (`mbox` as `mailto:`, `mbox_sha1sum`,
//! `openid` or `account`), a `verb` with an IRI `id` and a `display` language map, an `object`
//! with an IRI `id`, a `result` (when present) whose `score.scaled` is in [-1, 1], `raw`
//! between `min` and `max`, `success` and `completion` booleans, and a `version` starting with
//! `1.0.`. A statement `id`, when given, must be a UUID; the same id again with the same
//! content is accepted once more without storing it twice; with other content it is 409.
//! Success is `200` with the array of the statement's id.

use super::{basic_auth_is, play, stall, Faults};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

/// One statement the fake accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub statement: Value,
    /// The `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<String>,
    /// The `X-Experience-API-Version` header.
    pub version: String,
    pub at: Instant,
}

#[derive(Default)]
struct Store {
    accepted: Vec<Received>,
    /// Every accepted request, repeats of a known id included.
    requests: Vec<Received>,
    by_id: HashMap<Uuid, Value>,
}

/// The fake LRS: its credentials, its faults and what it accepted.
#[derive(Clone)]
pub struct FakeLrs {
    key: String,
    secret: String,
    pub faults: Faults,
    store: Arc<Mutex<Store>>,
}

impl FakeLrs {
    pub fn new(key: &str, secret: &str) -> Self {
        Self {
            key: key.into(),
            secret: secret.into(),
            faults: Faults::default(),
            store: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/statements", post(statements))
            .with_state(self.clone())
    }

    /// The statements stored, one per statement id.
    pub fn received(&self) -> Vec<Received> {
        self.lock().accepted.clone()
    }

    /// Every request answered 200, repeats of a stored statement id included.
    pub fn requests(&self) -> Vec<Received> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "message": message.into() })),
    )
        .into_response()
}

async fn statements(State(lrs): State<FakeLrs>, headers: HeaderMap, body: String) -> Response {
    let fault = lrs.faults.next();
    let stall = stall(&fault);
    if let Some(response) = play(fault).await {
        return response;
    }
    let version = headers
        .get("x-experience-api-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !(version == "1.0" || version.starts_with("1.0.")) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "X-Experience-API-Version missing or unsupported",
        );
    }
    if !basic_auth_is(&headers, &lrs.key, &lrs.secret) {
        return refuse(StatusCode::UNAUTHORIZED, "bad credentials");
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
    let statement: Value = match serde_json::from_str(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the body must be one statement object",
            )
        }
    };
    if let Err(problem) = validate(&statement) {
        return refuse(StatusCode::BAD_REQUEST, problem);
    }
    let id = match statement.get("id") {
        None => Uuid::new_v4(),
        Some(id) => match id.as_str().and_then(|s| Uuid::try_parse(s).ok()) {
            Some(id) => id,
            None => return refuse(StatusCode::BAD_REQUEST, "id must be a UUID"),
        },
    };
    let received = Received {
        statement: statement.clone(),
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        version,
        at: Instant::now(),
    };
    {
        let mut store = lrs.lock();
        match store.by_id.get(&id) {
            Some(known) if *known != statement => {
                return refuse(StatusCode::CONFLICT, "another statement has this id")
            }
            Some(_) => {}
            None => {
                store.by_id.insert(id, statement);
                store.accepted.push(received.clone());
            }
        }
        store.requests.push(received);
    }
    if let Some(wait) = stall {
        tokio::time::sleep(wait).await;
    }
    (StatusCode::OK, Json(vec![id.to_string()])).into_response()
}

fn is_iri(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.starts_with("http://") || s.starts_with("https://"))
}

fn is_language_map(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| !m.is_empty() && m.values().all(Value::is_string))
}

/// The statement rules of the module doc.
pub fn validate(statement: &Value) -> Result<(), String> {
    let actor = statement.get("actor").ok_or("actor is required")?;
    let identifiers = ["mbox", "mbox_sha1sum", "openid", "account"]
        .iter()
        .filter(|k| actor.get(**k).is_some())
        .count();
    if identifiers != 1 {
        return Err("an Agent must carry exactly one identifier".into());
    }
    if let Some(mbox) = actor.get("mbox") {
        if !mbox.as_str().is_some_and(|m| m.starts_with("mailto:")) {
            return Err("mbox must be a mailto: IRI".into());
        }
    }
    if actor.get("name").is_some_and(|n| !n.is_string()) {
        return Err("actor.name must be a string".into());
    }
    let verb = statement.get("verb").ok_or("verb is required")?;
    if !is_iri(&verb["id"]) {
        return Err("verb.id must be an IRI".into());
    }
    if verb.get("display").is_some_and(|d| !is_language_map(d)) {
        return Err("verb.display must be a language map".into());
    }
    let object = statement.get("object").ok_or("object is required")?;
    if !is_iri(&object["id"]) {
        return Err("object.id must be an IRI".into());
    }
    if let Some(definition) = object.get("definition") {
        for field in ["name", "description"] {
            if definition.get(field).is_some_and(|v| !is_language_map(v)) {
                return Err(format!("object.definition.{field} must be a language map"));
            }
        }
    }
    if let Some(result) = statement.get("result") {
        for field in ["success", "completion"] {
            if result.get(field).is_some_and(|v| !v.is_boolean()) {
                return Err(format!("result.{field} must be a boolean"));
            }
        }
        if let Some(score) = result.get("score") {
            if let Some(scaled) = score.get("scaled") {
                if !scaled.as_f64().is_some_and(|s| (-1.0..=1.0).contains(&s)) {
                    return Err("result.score.scaled must be in [-1, 1]".into());
                }
            }
            let number = |f: &str| score.get(f).map(|v| v.as_f64().ok_or(f.to_string()));
            let (raw, min, max) = (number("raw"), number("min"), number("max"));
            let (raw, min, max) = (
                raw.transpose()
                    .map_err(|f| format!("score.{f} must be a number"))?,
                min.transpose()
                    .map_err(|f| format!("score.{f} must be a number"))?,
                max.transpose()
                    .map_err(|f| format!("score.{f} must be a number"))?,
            );
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    return Err("score.min must not exceed score.max".into());
                }
            }
            if raw.is_some_and(|r| min.is_some_and(|m| r < m) || max.is_some_and(|m| r > m)) {
                return Err("score.raw must be between min and max".into());
            }
        }
    }
    if let Some(version) = statement.get("version") {
        if !version.as_str().is_some_and(|v| v.starts_with("1.0.")) {
            return Err("version must start with 1.0.".into());
        }
    }
    Ok(())
}
