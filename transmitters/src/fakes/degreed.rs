//! A strict fake of Degreed's API v2, as edX's `degreed2` client uses it.
//!
//! - `POST /oauth/token`: form body with `grant_type=client_credentials`, the configured
//!   `client_id` and `client_secret`, and every scope edX asks for (else 401 or 403); answers
//!   `{"access_token", "token_type": "bearer", "expires_in"}`. [`FakeDegreed::revoke_tokens`]
//!   makes every token issued so far answer 401.
//! - every other call needs a live `Authorization: Bearer` token (401) and, with a body,
//!   `Content-Type: application/json` (406: "We only accept JSON").
//! - `POST /api/v2/content/courses`: JSON:API `data.type` `content/courses` and the attributes
//!   with their types (`title`, `external-id`, `url`... strings; `duration` integer;
//!   `obsolete` boolean); 409 when the external id exists; 201 with the new Degreed id.
//! - `GET /api/v2/content/courses?filter[external_id]=`: `{"data": [...]}`.
//! - `PATCH` and `DELETE /api/v2/content/courses/{id}`: 404 for an unknown id.
//! - `POST /api/v2/completions`: attributes `user-id` (a known email, else 400 `Invalid user
//!   identifier`), `user-identifier-type` `Email`, `content-id`, `content-id-type`
//!   `externalId`, `content-type` `course`, `completed-at` string or null, `percentile`
//!   number or null; 201.

use super::{play, stall, Faults};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

/// A request the fake accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub idempotency_key: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct State_ {
    tokens: HashSet<String>,
    token_requests: usize,
    /// Degreed id -> attributes.
    courses: HashMap<String, Value>,
    completions: Vec<Value>,
    received: Vec<Received>,
    known_users: HashSet<String>,
}

/// The fake: credentials, faults, what it holds.
#[derive(Clone)]
pub struct FakeDegreed {
    client_id: String,
    client_secret: String,
    expires_in: u64,
    pub faults: Faults,
    state: Arc<Mutex<State_>>,
}

impl FakeDegreed {
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            expires_in: 3600,
            faults: Faults::default(),
            state: Arc::default(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v2/content/courses", post(create).get(search))
            .route("/api/v2/content/courses/{id}", patch(update).delete(delete))
            .route("/api/v2/completions", post(completions))
            .route("/health", get(|| async { "ok" }))
            .with_state(self.clone())
    }

    /// Lets completions for this email through.
    pub fn know_user(&self, email: &str) {
        self.lock().known_users.insert(email.to_string());
    }

    /// Every token issued so far stops working (as after a key rotation).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    /// The courses Degreed holds, by external id.
    pub fn courses(&self) -> HashMap<String, Value> {
        self.lock()
            .courses
            .values()
            .map(|a| {
                (
                    a["external-id"].as_str().unwrap_or_default().to_string(),
                    a.clone(),
                )
            })
            .collect()
    }

    pub fn completions(&self) -> Vec<Value> {
        self.lock().completions.clone()
    }

    /// Every accepted API request (token requests aside).
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The checks every API call shares: a fault to play, the bearer token, a JSON body.
    async fn guard(&self, headers: &HeaderMap, body: Option<&str>) -> Result<Value, Box<Response>> {
        if let Some(response) = play(self.faults.next()).await {
            return Err(Box::new(response));
        }
        self.check(headers, body)
    }

    /// The bearer token and the JSON body.
    fn check(&self, headers: &HeaderMap, body: Option<&str>) -> Result<Value, Box<Response>> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !token.is_some_and(|t| self.lock().tokens.contains(t)) {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "Invalid API key.",
            )));
        }
        let Some(body) = body else {
            return Ok(Value::Null);
        };
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(Box::new(error(
                StatusCode::NOT_ACCEPTABLE,
                "not-acceptable",
                "We only accept JSON",
            )));
        }
        serde_json::from_str(body).map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "The body is not JSON.",
            ))
        })
    }

    fn accept(&self, method: &str, path: String, body: &Value, headers: &HeaderMap) {
        self.lock().received.push(Received {
            method: method.into(),
            path,
            body: body.clone(),
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            at: Instant::now(),
        });
    }
}

/// A JSON:API error answer.
fn error(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({"errors": [{
        "id": Uuid::new_v4().to_string(), "code": code, "status": status.as_u16(),
        "title": status.canonical_reason().unwrap_or_default(), "detail": detail,
    }]});
    (status, Json(body)).into_response()
}

async fn token(
    State(fake): State<FakeDegreed>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(response) = play(fake.faults.next()).await {
        return response;
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "unsupported grant_type",
        );
    }
    if field("client_id") != fake.client_id || field("client_secret") != fake.client_secret {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid-client",
            "Invalid client credentials.",
        );
    }
    let scopes: HashSet<&str> = field("scope").split(',').collect();
    if !crate::degreed::SCOPES
        .split(',')
        .all(|s| scopes.contains(s))
    {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The key lacks the requested scopes.",
        );
    }
    let token = Uuid::new_v4().simple().to_string();
    let mut state = fake.lock();
    state.tokens.insert(token.clone());
    state.token_requests += 1;
    Json(json!({
        "access_token": token, "token_type": "bearer", "expires_in": fake.expires_in,
        "refresh_token": Uuid::new_v4().simple().to_string(),
    }))
    .into_response()
}

/// The course attribute rules of the module doc.
fn check_course(body: &Value, with_id: bool) -> Result<Value, String> {
    let data = &body["data"];
    if data["type"] != "content/courses" {
        return Err("data.type must be content/courses".into());
    }
    if with_id && !data["id"].is_string() {
        return Err("data.id must be a string".into());
    }
    let attributes = &data["attributes"];
    for field in [
        "title",
        "external-id",
        "duration-type",
        "cost-unit-type",
        "language",
    ] {
        if attributes[field].as_str().is_none_or(str::is_empty) {
            return Err(format!("attributes.{field} must be a non-empty string"));
        }
    }
    for field in ["summary", "url", "image-url", "difficulty", "video-url"] {
        if !(attributes[field].is_string() || attributes[field].is_null()) {
            return Err(format!("attributes.{field} must be a string or null"));
        }
    }
    if !attributes["duration"].is_i64() {
        return Err("attributes.duration must be an integer".into());
    }
    if !attributes["obsolete"].is_boolean() {
        return Err("attributes.obsolete must be a boolean".into());
    }
    if !attributes["cost-units"].is_number() {
        return Err("attributes.cost-units must be a number".into());
    }
    if attributes["summary"]
        .as_str()
        .is_some_and(|s| s.chars().count() > 2000)
    {
        return Err("attributes.summary is longer than 2000 characters".into());
    }
    Ok(attributes.clone())
}

async fn create(State(fake): State<FakeDegreed>, headers: HeaderMap, body: String) -> Response {
    let fault = fake.faults.next();
    let stall_for = stall(&fault);
    if let Some(response) = play(fault).await {
        return response;
    }
    let body = match fake.check(&headers, Some(&body)) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let attributes = match check_course(&body, false) {
        Ok(attributes) => attributes,
        Err(detail) => return error(StatusCode::BAD_REQUEST, "bad-request", &detail),
    };
    let id = {
        let mut state = fake.lock();
        let external = &attributes["external-id"];
        if state
            .courses
            .values()
            .any(|a| a["external-id"] == *external)
        {
            return error(
                StatusCode::CONFLICT,
                "conflict",
                "Resource conflict. You cannot use the same ExternalID or URL to identify multiple resources",
            );
        }
        let id = Uuid::new_v4().simple().to_string()[..8].to_string();
        state.courses.insert(id.clone(), attributes.clone());
        id
    };
    fake.accept("POST", "/api/v2/content/courses".into(), &body, &headers);
    if let Some(wait) = stall_for {
        tokio::time::sleep(wait).await;
    }
    (
        StatusCode::CREATED,
        Json(json!({"data": {"id": id, "type": "content/courses", "attributes": attributes}})),
    )
        .into_response()
}

async fn search(
    State(fake): State<FakeDegreed>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(response) = fake.guard(&headers, None).await {
        return *response;
    }
    let Some(external) = query.get("filter[external_id]") else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "filter[external_id] is required",
        );
    };
    let data: Vec<Value> = fake
        .lock()
        .courses
        .iter()
        .filter(|(_, a)| a["external-id"].as_str() == Some(external))
        .map(|(id, a)| json!({"id": id, "type": "content/courses", "attributes": a}))
        .collect();
    Json(json!({"data": data, "links": {}})).into_response()
}

async fn update(
    State(fake): State<FakeDegreed>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body = match fake.guard(&headers, Some(&body)).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let attributes = match check_course(&body, true) {
        Ok(attributes) => attributes,
        Err(detail) => return error(StatusCode::BAD_REQUEST, "bad-request", &detail),
    };
    if body["data"]["id"] != id.as_str() {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "data.id differs from the URL's id",
        );
    }
    {
        let mut state = fake.lock();
        let Some(course) = state.courses.get_mut(&id) else {
            return error(StatusCode::NOT_FOUND, "not-found", "No such course.");
        };
        *course = attributes;
    }
    fake.accept(
        "PATCH",
        format!("/api/v2/content/courses/{id}"),
        &body,
        &headers,
    );
    Json(body).into_response()
}

async fn delete(
    State(fake): State<FakeDegreed>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = fake.guard(&headers, None).await {
        return *response;
    }
    if fake.lock().courses.remove(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "not-found", "No such course.");
    }
    fake.accept(
        "DELETE",
        format!("/api/v2/content/courses/{id}"),
        &Value::Null,
        &headers,
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn completions(
    State(fake): State<FakeDegreed>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body = match fake.guard(&headers, Some(&body)).await {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let a = &body["data"]["attributes"];
    let problems = [
        (
            a["user-identifier-type"] == "Email",
            "user-identifier-type must be Email",
        ),
        (
            a["content-id-type"] == "externalId",
            "content-id-type must be externalId",
        ),
        (a["content-type"] == "course", "content-type must be course"),
        (a["content-id"].is_string(), "content-id must be a string"),
        (a["user-id"].is_string(), "user-id must be a string"),
        (
            a["completed-at"].is_string() || a["completed-at"].is_null(),
            "completed-at must be a string or null",
        ),
        (
            a["percentile"].is_number() || a["percentile"].is_null(),
            "percentile must be a number or null",
        ),
    ];
    if let Some((_, problem)) = problems.iter().find(|(ok, _)| !ok) {
        return error(StatusCode::BAD_REQUEST, "bad-request", problem);
    }
    let user = a["user-id"].as_str().unwrap_or_default();
    if !fake.lock().known_users.contains(user) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &format!("Invalid user identifier: {user}"),
        );
    }
    fake.lock().completions.push(body.clone());
    fake.accept("POST", "/api/v2/completions".into(), &body, &headers);
    (StatusCode::CREATED, Json(json!({"data": {"type": "completions", "id": Uuid::new_v4().simple().to_string(), "attributes": a}}))).into_response()
}
