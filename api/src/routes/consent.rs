//! edX's data sharing consent API, `/consent/api/v1/data_sharing_consent`, shaped so that
//! edx-platform's `enterprise_support` client works unchanged:
//!
//! - parameters `username`, `enterprise_customer_uuid` and `course_id` or `program_uuid`,
//!   taken where edX takes them: GET and DELETE from the query string first, then the body;
//!   POST from the body first, then the query string; bodies JSON or form-encoded;
//! - answers `{username, enterprise_customer_uuid, exists, consent_provided, consent_required,
//!   course_id | program_uuid}`; a missing parameter is 400 `{"error": "Some required
//!   parameter(s) missing: ..."}`;
//! - GET reads the consent read model; POST grants when consent is required (for a program:
//!   every course of it) and writes nothing otherwise; DELETE leaves the consent not granted
//!   whatever it was;
//! - staff (operators), the LMS, or the user the request names (edX's `IsStaffOrUserInRequest`).

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::ApiError;
use crate::extract::{body_bytes, Encoding, IdempotencyKey};
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::consent::ConsentSubject;
use domain::consent::{consent_stream_id, Action, Consent, ConsentCommand, ConsentSource};
use domain::ids::{CourseKey, CustomerId, LearnerId};
use projections::read_models::consent::{self as consent_model, ConsentQuery};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

pub const PATH: &str = "/consent/api/v1/data_sharing_consent";

/// The read model the answers come from.
const READ_MODEL: &str = "consent";

/// edX's serialized consent record.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub username: String,
    pub enterprise_customer_uuid: String,
    pub exists: bool,
    pub consent_provided: bool,
    pub consent_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program_uuid: Option<String>,
}

/// edX's error shape for this API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentError {
    pub error: String,
}

/// Why a consent request was refused: in edX's `{"error": ...}` shape where edX answers so,
/// as problem details otherwise.
#[derive(Debug)]
enum Refusal {
    Edx(StatusCode, String),
    Problem(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Edx(status, error) => (status, Json(ConsentError { error })).into_response(),
            Self::Problem(e) => e.into_response(),
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Problem(e)
    }
}

fn edx_error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal::Edx(status, message.into())
}

/// The request's parameters, checked.
struct ConsentParams {
    username: String,
    customer_raw: String,
    customer: CustomerId,
    subject: Subject,
}

enum Subject {
    Course(String),
    Program(String, Uuid),
}

impl ConsentParams {
    fn query(&self) -> ConsentQuery {
        match &self.subject {
            Subject::Course(id) => ConsentQuery::Course(id.clone()),
            Subject::Program(_, uuid) => ConsentQuery::Program(*uuid),
        }
    }
}

/// Parameters from a query string or a body, first source first (edX's `get_request_value`).
fn gather(sources: &[HashMap<String, String>]) -> Result<ConsentParams, Refusal> {
    let get = |name: &str| {
        sources
            .iter()
            .find_map(|s| s.get(name).filter(|v| !v.is_empty()).cloned())
    };
    let username = get("username");
    let customer = get("enterprise_customer_uuid");
    let course_id = get("course_id");
    let program_uuid = get("program_uuid");
    let state = [
        ("username", username.is_some()),
        ("enterprise_customer_uuid", customer.is_some()),
        (
            "course_id or program_uuid",
            course_id.is_some() || program_uuid.is_some(),
        ),
    ];
    let missing: Vec<&str> = state
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(edx_error(
            StatusCode::BAD_REQUEST,
            format!("Some required parameter(s) missing: {}", missing.join(", ")),
        ));
    }
    let (username, customer_raw) = (username.unwrap_or_default(), customer.unwrap_or_default());
    let customer = Uuid::parse_str(&customer_raw)
        .map(CustomerId)
        .map_err(|_| {
            edx_error(
                StatusCode::BAD_REQUEST,
                "enterprise_customer_uuid is not a valid UUID",
            )
        })?;
    let subject = match (course_id, program_uuid) {
        (Some(course_id), _) => {
            if course_id.len() > 255 {
                return Err(edx_error(
                    StatusCode::BAD_REQUEST,
                    "course_id is longer than 255 characters",
                ));
            }
            Subject::Course(course_id)
        }
        (None, Some(raw)) => {
            let uuid = Uuid::parse_str(&raw).map_err(|_| {
                edx_error(StatusCode::BAD_REQUEST, "program_uuid is not a valid UUID")
            })?;
            Subject::Program(raw, uuid)
        }
        (None, None) => unreachable!("checked as missing above"),
    };
    Ok(ConsentParams {
        username,
        customer_raw,
        customer,
        subject,
    })
}

/// A query string or a body as flat parameters; JSON values that are not strings are kept in
/// their JSON spelling.
fn flatten(encoding: Encoding, bytes: &[u8]) -> Result<HashMap<String, String>, Refusal> {
    if bytes.is_empty() {
        return Ok(HashMap::new());
    }
    match encoding {
        Encoding::Form => serde_urlencoded::from_bytes(bytes)
            .map_err(|e| edx_error(StatusCode::BAD_REQUEST, format!("malformed form body: {e}"))),
        Encoding::Json => {
            let value: Value = serde_json::from_slice(bytes).map_err(|e| {
                edx_error(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}"))
            })?;
            let Value::Object(map) = value else {
                return Err(edx_error(
                    StatusCode::BAD_REQUEST,
                    "the JSON body must be an object",
                ));
            };
            Ok(map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect())
        }
    }
}

async fn params(method: &Method, request: Request) -> Result<ConsentParams, Refusal> {
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or("")).map_err(|e| {
            edx_error(
                StatusCode::BAD_REQUEST,
                format!("malformed query string: {e}"),
            )
        })?;
    let (encoding, bytes) = body_bytes(request).await?;
    let body = flatten(encoding, &bytes)?;
    if method == Method::POST {
        gather(&[body, query])
    } else {
        gather(&[query, body])
    }
}

#[utoipa::path(get, path = PATH, tag = "consent",
    params(
        ("username" = String, Query, description = "The learner's LMS username"),
        ("enterprise_customer_uuid" = Uuid, Query),
        ("course_id" = Option<String>, Query, description = "A course key or course-run id"),
        ("program_uuid" = Option<Uuid>, Query),
        ("min_position" = Option<i64>, Query, description = "Wait until the read model has applied this global position"),
    ),
    responses(
        (status = 200, body = ConsentRecord),
        (status = 400, body = ConsentError, description = "Missing or malformed parameters"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// The consent record of a learner for a course or program of a customer.
pub async fn get_consent(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    request: Request,
) -> Response {
    let params = match params(&Method::GET, request).await {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(e) = authorize(&principal, &params) {
        return e.into_response();
    }
    if let Err(e) = min_position.wait(&state.pool, &[READ_MODEL]).await {
        return e.into_response();
    }
    answer(&state, &params, Written::default()).await
}

#[utoipa::path(post, path = PATH, tag = "consent",
    request_body(content = ConsentRecord, description = "username, enterprise_customer_uuid, course_id | program_uuid; JSON or form-encoded; also taken from the query string"),
    responses(
        (status = 200, body = ConsentRecord),
        (status = 400, body = ConsentError), (status = 404, body = ConsentError, description = "Unknown username"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// Grants consent where it is required (for a program: every course of it).
pub async fn post_consent(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    request: Request,
) -> Response {
    write(state, principal, key, Method::POST, request).await
}

#[utoipa::path(delete, path = PATH, tag = "consent",
    params(
        ("username" = String, Query), ("enterprise_customer_uuid" = Uuid, Query),
        ("course_id" = Option<String>, Query), ("program_uuid" = Option<Uuid>, Query),
    ),
    responses(
        (status = 200, body = ConsentRecord),
        (status = 400, body = ConsentError), (status = 404, body = ConsentError, description = "Unknown username"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// Leaves the consent not granted (revokes a grant, declines when never asked).
pub async fn delete_consent(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    request: Request,
) -> Response {
    write(state, principal, key, Method::DELETE, request).await
}

fn authorize(principal: &Principal, params: &ConsentParams) -> Result<(), ApiError> {
    if principal.is_staff_or(&params.username) || principal.require_lms().is_ok() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only staff, the LMS or the learner named in the request may use this record".into(),
        ))
    }
}

async fn learner(state: &AppState, username: &str) -> Result<Option<LearnerId>, ApiError> {
    Ok(store::directory::find_by_username(&state.pool, username)
        .await?
        .map(|record| record.id()))
}

async fn answer(state: &AppState, params: &ConsentParams, written: Written) -> Response {
    let result = consent_model::answer_for_username(
        &state.pool,
        params.customer,
        &params.username,
        &params.query(),
    )
    .await;
    match result {
        Ok(answer) => {
            let (course_id, program_uuid) = match &params.subject {
                Subject::Course(id) => (Some(id.clone()), None),
                Subject::Program(raw, _) => (None, Some(raw.clone())),
            };
            let record = ConsentRecord {
                username: params.username.clone(),
                enterprise_customer_uuid: params.customer_raw.clone(),
                exists: answer.exists,
                consent_provided: answer.consent_provided,
                consent_required: answer.consent_required,
                course_id,
                program_uuid,
            };
            (written.headers(), Json(record)).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn write(
    state: AppState,
    principal: Principal,
    key: IdempotencyKey,
    method: Method,
    request: Request,
) -> Response {
    let params = match params(&method, request).await {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(e) = authorize(&principal, &params) {
        return e.into_response();
    }
    let written = match record(&state, &principal, &key, &method, &params).await {
        Ok(Some(written)) => written,
        Ok(None) => {
            return edx_error(
                StatusCode::NOT_FOUND,
                format!(
                    "no learner with username '{}' is known: the LMS registers learners first",
                    params.username
                ),
            )
            .into_response()
        }
        Err(e) => return e.into_response(),
    };
    // Answer with the record as it now stands: wait for the read model to apply the write.
    if let Err(e) = MinPosition(written.position)
        .wait(&state.pool, &[READ_MODEL])
        .await
    {
        return e.into_response();
    }
    answer(&state, &params, written).await
}

/// Carries out a POST or DELETE; `None` when the learner is unknown.
async fn record(
    state: &AppState,
    principal: &Principal,
    key: &IdempotencyKey,
    method: &Method,
    params: &ConsentParams,
) -> Result<Option<Written>, ApiError> {
    let Some(learner) = learner(state, &params.username).await? else {
        return Ok(None);
    };
    let metadata = metadata(principal, key)?;
    let action = if method == Method::POST {
        let answer =
            consent_model::answer(&state.pool, params.customer, learner, &params.query()).await?;
        if !answer.consent_required {
            return Ok(Some(Written::default()));
        }
        Action::Grant
    } else {
        Action::Refuse
    };
    let subjects: Vec<ConsentSubject> = match &params.subject {
        Subject::Course(id) => vec![ConsentSubject::for_course_id(id)],
        Subject::Program(_, uuid) => consent_model::program_course_keys(&state.pool, *uuid)
            .await?
            .into_iter()
            .map(|key| ConsentSubject::Course(CourseKey(key)))
            .collect(),
    };
    let mut written = Written::default();
    for subject in subjects {
        let stream = consent_stream_id(params.customer, learner, &subject);
        let command = ConsentCommand {
            customer_id: params.customer,
            learner_id: learner,
            subject,
            source: ConsentSource::Api,
            action,
        };
        let appended = state
            .store
            .execute::<Consent>(&stream, command, &(), &metadata)
            .await?;
        written = written.then(Written::from(&appended));
    }
    Ok(Some(written))
}
