//! A strict fake of SAP SuccessFactors Learning, as edX's `sap_success_factors` client uses
//! it. Errors answer in OData's shape, `{"error": {"code", "message"}}`.
//!
//! - `POST /learning/oauth-api/rest/v1/token`: Basic auth with the configured client id and
//!   secret (else 401); a JSON body `{"grant_type": "client_credentials", "scope": {"userId",
//!   "companyId", "userType": "admin"|"user", "resourceType": "learning_public_api"}}` with the
//!   configured company (else 400); answers `{"access_token", "expires_in": 1800,
//!   "token_type": "Bearer"}`. A token acts as its `userId`; [`FakeSap::revoke_tokens`] makes
//!   every token issued so far answer 401.
//! - every other call needs a live `Authorization: Bearer` token (401), and a body needs
//!   `Content-Type: application/json` (415). The admin calls (courses, `OCNLearningEvents`,
//!   `searchStudent`) need the API user's token (403).
//! - `POST .../ocn/v1/OcnCourses`: `ocnCourses`, 1 to 1,000 courses, each with exactly the OCN
//!   fields and their types (strings, locale arrays, one launch point or more, integer epoch
//!   milliseconds, `revisionNumber` integer, `price` array); answers the echo with
//!   `@odata.context`. With [`FakeSap::with_course_interval`], a second import within that time
//!   answers 429 with `Retry-After` (SAP's OCN rate limit).
//! - `POST .../current-user/item/learning-event` (on the learner's own token: `userID` must be
//!   the token's user, `courseCompleted` the string `"true"` or `"false"`) and `POST
//!   .../learningevent-service/v1/OCNLearningEvents` (admin token, `courseCompleted` boolean):
//!   `userID`, `courseID`, `providerID` strings, `completedTimestamp` integer milliseconds not in
//!   the future, `grade` string, `totalHours` and `creditHours` numbers, nothing else; a
//!   deactivated user ([`FakeSap::deactivate`]) answers 400 "The user account is inactive".
//! - `GET /learning/odatav4/searchStudent/v1/Students?$filter=criteria/isActive eq False&
//!   $select=studentID&$count=true&$top=N&$skip=M`: the deactivated users in pages, with
//!   `@odata.count`.

mod checks;

use super::{basic_auth_is, play, stall, Faults};
use crate::sap::{
    ADMIN_COMPLETION_PATH, COURSES_PATH, LEARNER_COMPLETION_PATH, RESOURCE_TYPE,
    SEARCH_STUDENT_PATH, TOKEN_PATH,
};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use checks::{check_course, check_event};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A request the fake accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub body: Value,
    /// The user the bearer token was issued for.
    pub token_user: String,
    pub idempotency_key: Option<String>,
    pub at: Instant,
}

#[derive(Default)]
struct State_ {
    /// Token -> the user it acts as.
    tokens: HashMap<String, String>,
    /// The `userId` of every token issued, in order.
    token_users: Vec<String>,
    /// courseID -> the latest course imported.
    courses: BTreeMap<String, Value>,
    last_import: Option<Instant>,
    inactive: BTreeSet<String>,
    received: Vec<Received>,
}

/// The fake: credentials, faults, what it holds.
#[derive(Clone)]
pub struct FakeSap {
    client_id: String,
    client_secret: String,
    company_id: String,
    api_user: String,
    provider_id: String,
    course_interval: Option<Duration>,
    pub faults: Faults,
    state: Arc<Mutex<State_>>,
}

impl FakeSap {
    /// A fake accepting these client credentials for `company_id`, whose API user (the one
    /// admin calls must come from) is `api_user`; the provider is `EDX`.
    pub fn new(client_id: &str, client_secret: &str, company_id: &str, api_user: &str) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            company_id: company_id.into(),
            api_user: api_user.into(),
            provider_id: domain::channel::default_sap_provider_id(),
            course_interval: None,
            faults: Faults::default(),
            state: Arc::default(),
        }
    }

    /// Answers 429 to a course import within `interval` of the previous accepted one.
    pub fn with_course_interval(mut self, interval: Duration) -> Self {
        self.course_interval = Some(interval);
        self
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(&format!("/{TOKEN_PATH}"), post(token))
            .route(&format!("/{COURSES_PATH}"), post(courses))
            .route(&format!("/{LEARNER_COMPLETION_PATH}"), post(learner_event))
            .route(&format!("/{ADMIN_COMPLETION_PATH}"), post(admin_event))
            .route(&format!("/{SEARCH_STUDENT_PATH}"), get(students))
            .route("/health", get(|| async { "ok" }))
            .with_state(self.clone())
    }

    /// Makes a SAP user inactive: their learning events are refused and `searchStudent`
    /// lists them.
    pub fn deactivate(&self, user: &str) {
        self.lock().inactive.insert(user.to_string());
    }

    /// Every token issued so far stops working.
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// The `userId` of every token issued, in order.
    pub fn token_users(&self) -> Vec<String> {
        self.lock().token_users.clone()
    }

    /// The courses SAP holds, by `courseID` (the latest import of each).
    pub fn courses(&self) -> BTreeMap<String, Value> {
        self.lock().courses.clone()
    }

    /// The learning events accepted, on either path.
    pub fn learning_events(&self) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.path.ends_with("learning-event") || r.path.ends_with("OCNLearningEvents"))
            .cloned()
            .collect()
    }

    /// Every accepted API request (token requests aside).
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user of the request's bearer token, and its JSON body if it has one.
    fn check(
        &self,
        headers: &HeaderMap,
        body: Option<&str>,
    ) -> Result<(String, Value), Box<Response>> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let user = token.and_then(|t| self.lock().tokens.get(t).cloned());
        let Some(user) = user else {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "invalid or expired token",
            ));
        };
        let Some(body) = body else {
            return Ok((user, Value::Null));
        };
        if !is_json(headers) {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaType",
                "content-type must be application/json",
            ));
        }
        match serde_json::from_str(body) {
            Ok(value) => Ok((user, value)),
            Err(_) => Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidJson",
                "the body is not JSON",
            )),
        }
    }

    /// [`FakeSap::check`] for the admin calls: the token must be the API user's.
    fn check_admin(
        &self,
        headers: &HeaderMap,
        body: Option<&str>,
    ) -> Result<(String, Value), Box<Response>> {
        let (user, body) = self.check(headers, body)?;
        if user != self.api_user {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "an admin call needs the API user's token",
            ));
        }
        Ok((user, body))
    }

    fn accept(&self, path: &str, method: &str, user: String, body: &Value, headers: &HeaderMap) {
        self.lock().received.push(Received {
            method: method.into(),
            path: path.into(),
            body: body.clone(),
            token_user: user,
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            at: Instant::now(),
        });
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// An OData error answer.
fn error(status: StatusCode, code: &str, message: &str) -> Box<Response> {
    let body = json!({"error": {"code": code, "message": message}});
    Box::new((status, Json(body)).into_response())
}

async fn token(State(fake): State<FakeSap>, headers: HeaderMap, body: String) -> Response {
    if let Some(response) = play(fake.faults.next()).await {
        return response;
    }
    if !basic_auth_is(&headers, &fake.client_id, &fake.client_secret) {
        return *error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "bad client credentials",
        );
    }
    if !is_json(&headers) {
        return *error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "content-type must be application/json",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return *error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not JSON",
        );
    };
    let scope = &body["scope"];
    let problems = [
        (
            body["grant_type"] == "client_credentials",
            "grant_type must be client_credentials",
        ),
        (scope.is_object(), "scope must be an object"),
        (
            scope["userId"].as_str().is_some_and(|u| !u.is_empty()),
            "scope.userId must be a non-empty string",
        ),
        (
            scope["companyId"] == fake.company_id.as_str(),
            "scope.companyId is not this company",
        ),
        (
            scope["userType"] == "admin" || scope["userType"] == "user",
            "scope.userType must be admin or user",
        ),
        (
            scope["resourceType"] == RESOURCE_TYPE,
            "scope.resourceType must be learning_public_api",
        ),
    ];
    if let Some((_, problem)) = problems.iter().find(|(ok, _)| !ok) {
        return *error(StatusCode::BAD_REQUEST, "invalid_request", problem);
    }
    let user = scope["userId"].as_str().unwrap_or_default().to_string();
    let token = Uuid::new_v4().simple().to_string();
    let mut state = fake.lock();
    state.tokens.insert(token.clone(), user.clone());
    state.token_users.push(user);
    Json(json!({"access_token": token, "expires_in": 1800, "token_type": "Bearer"})).into_response()
}

async fn courses(State(fake): State<FakeSap>, headers: HeaderMap, body: String) -> Response {
    let fault = fake.faults.next();
    let stall_for = stall(&fault);
    if let Some(response) = play(fault).await {
        return response;
    }
    let (user, body) = match fake.check_admin(&headers, Some(&body)) {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    let courses = match body["ocnCourses"].as_array() {
        Some(courses) if (1..=1000).contains(&courses.len()) => courses.clone(),
        _ => {
            return *error(
                StatusCode::BAD_REQUEST,
                "InvalidData",
                "ocnCourses must hold 1 to 1000 courses",
            )
        }
    };
    if let Some(problem) = courses.iter().enumerate().find_map(|(n, c)| {
        check_course(c, &fake.provider_id)
            .err()
            .map(|e| format!("ocnCourses[{n}]: {e}"))
    }) {
        return *error(StatusCode::BAD_REQUEST, "InvalidData", &problem);
    }
    {
        let mut state = fake.lock();
        if let (Some(interval), Some(last)) = (fake.course_interval, state.last_import) {
            let waited = last.elapsed();
            if waited < interval {
                let retry = (interval - waited).as_secs().max(1);
                let mut response = *error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "OCN course import rate exceeded",
                );
                if let Ok(value) = HeaderValue::from_str(&retry.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
        }
        state.last_import = Some(Instant::now());
        for course in &courses {
            let id = course["courseID"].as_str().unwrap_or_default().to_string();
            state.courses.insert(id, course.clone());
        }
    }
    fake.accept(&format!("/{COURSES_PATH}"), "POST", user, &body, &headers);
    if let Some(wait) = stall_for {
        tokio::time::sleep(wait).await;
    }
    Json(json!({"ocnCourses": courses, "@odata.context": "$metadata#OcnCourses/$entity"}))
        .into_response()
}

async fn learning_event(fake: FakeSap, headers: HeaderMap, body: String, admin: bool) -> Response {
    let fault = fake.faults.next();
    let stall_for = stall(&fault);
    if let Some(response) = play(fault).await {
        return response;
    }
    let checked = if admin {
        fake.check_admin(&headers, Some(&body))
    } else {
        fake.check(&headers, Some(&body))
    };
    let (user, body) = match checked {
        Ok(checked) => checked,
        Err(response) => return *response,
    };
    if let Err(problem) = check_event(&body, &fake.provider_id, admin) {
        return *error(StatusCode::BAD_REQUEST, "InvalidData", &problem);
    }
    let learner = body["userID"].as_str().unwrap_or_default();
    if !admin && learner != user {
        return *error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "userID is not the token's user",
        );
    }
    if fake.lock().inactive.contains(learner) {
        return *error(
            StatusCode::BAD_REQUEST,
            "InvalidData",
            "The user account is inactive.",
        );
    }
    let path = if admin {
        ADMIN_COMPLETION_PATH
    } else {
        LEARNER_COMPLETION_PATH
    };
    fake.accept(&format!("/{path}"), "POST", user, &body, &headers);
    if let Some(wait) = stall_for {
        tokio::time::sleep(wait).await;
    }
    Json(json!({"success": "true", "completion_status": body})).into_response()
}

async fn learner_event(State(fake): State<FakeSap>, headers: HeaderMap, body: String) -> Response {
    learning_event(fake, headers, body, false).await
}

async fn admin_event(State(fake): State<FakeSap>, headers: HeaderMap, body: String) -> Response {
    learning_event(fake, headers, body, true).await
}

async fn students(
    State(fake): State<FakeSap>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = play(fake.faults.next()).await {
        return response;
    }
    let user = match fake.check_admin(&headers, None) {
        Ok((user, _)) => user,
        Err(response) => return *response,
    };
    let field = |name: &str| query.get(name).map(String::as_str);
    let number = |name: &str| field(name).and_then(|v| v.parse::<usize>().ok());
    let (Some(top), Some(skip)) = (number("$top"), number("$skip")) else {
        return *error(
            StatusCode::BAD_REQUEST,
            "InvalidQuery",
            "$top and $skip must be numbers",
        );
    };
    let problems = [
        (
            field("$filter") == Some("criteria/isActive eq False"),
            "$filter must be criteria/isActive eq False",
        ),
        (
            field("$select") == Some("studentID"),
            "$select must be studentID",
        ),
        (field("$count") == Some("true"), "$count must be true"),
        ((1..=1000).contains(&top), "$top must be 1 to 1000"),
    ];
    if let Some((_, problem)) = problems.iter().find(|(ok, _)| !ok) {
        return *error(StatusCode::BAD_REQUEST, "InvalidQuery", problem);
    }
    let inactive: Vec<String> = fake.lock().inactive.iter().cloned().collect();
    let page: Vec<Value> = inactive
        .iter()
        .skip(skip)
        .take(top)
        .map(|id| json!({"studentID": id}))
        .collect();
    let record = json!({"$top": top, "$skip": skip});
    fake.accept(
        &format!("/{SEARCH_STUDENT_PATH}"),
        "GET",
        user,
        &record,
        &headers,
    );
    Json(json!({
        "@odata.metadataEtag": "W/\"8d2a5c0e-0000-0000-0000-000000000000\"",
        "@odata.count": inactive.len(),
        "value": page,
    }))
    .into_response()
}
