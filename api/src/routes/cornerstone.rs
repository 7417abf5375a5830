//! Cornerstone's routes, at edX's paths and with edX's answers:
//! - the catalog pull, `GET /cornerstone/course-list?ciid=<customer uuid>` (the endpoint itself
//!   is the Cornerstone channel's, in `transmitters`), for a channel worker (the identity
//!   Cornerstone is given), an operator, or an administrator of the customer the `ciid` names;
//! - a learner's launch parameters, `POST
//!   /integrated_channels/api/v1/cornerstone/save-learner-information`, which completions are
//!   later pushed with: from the learner (their own launch) or from the LMS relaying it
//!   (`lms_service`, naming the learner).

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Input;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::ids::{CustomerId, LearnerId};
use domain::membership::MembershipState;
use serde::Deserialize;
use std::collections::HashMap;
use transmitters::cornerstone::{course_list, Pull};
use transmitters::cornerstone_launch::{record, Launch, LaunchError};
use utoipa::ToSchema;
use uuid::Uuid;

#[utoipa::path(get, path = "/cornerstone/course-list", tag = "channels",
    params(("ciid" = Uuid, Query, description = "The enterprise customer's uuid"),
           ("If-Modified-Since" = Option<String>, Header)),
    responses((status = 200, description = "The pending course objects (edX's Cornerstone mapping)"),
              (status = 400, description = "`{\"message\": ...}` without a valid ciid"),
              (status = 403, body = crate::error::Problem),
              (status = 404, description = "No active Cornerstone configuration for the ciid")),
    security(("jwt" = [])))]
/// The pending content of the customer's Cornerstone configuration; rows count as sent once
/// the answer was delivered.
pub async fn cornerstone_course_list(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let customer = query.get("ciid").and_then(|c| Uuid::try_parse(c).ok());
    let allowed = match customer {
        Some(customer) => principal.require_channel_reader(CustomerId(customer)),
        // Without a valid ciid the endpoint answers edX's 400 and reveals nothing.
        None => Ok(()),
    };
    if let Err(e) = allowed {
        return e.into_response();
    }
    let pull = Pull::new(state.pool.clone(), state.store.clone());
    course_list(State(pull), Query(query), headers).await
}

/// What Cornerstone appends to a course launch, relayed by the learner's browser or the LMS
/// (edX's body, with `username` added for the LMS).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnerLaunch {
    /// The course key launched (e.g. `edX+DemoX`).
    #[serde(rename = "courseKey")]
    pub course_key: String,
    #[serde(rename = "enterpriseUUID")]
    pub enterprise_uuid: Uuid,
    /// The learner's id at Cornerstone.
    #[serde(rename = "userGuid")]
    pub user_guid: String,
    /// The path of the learner's progress API at the Cornerstone base URL.
    #[serde(rename = "callbackUrl")]
    pub callback_url: String,
    #[serde(rename = "sessionToken")]
    pub session_token: String,
    /// Cornerstone's subdomain: picks the configuration whose base URL is on it.
    pub subdomain: String,
    /// Cornerstone's host name, sent along at launch; not needed here.
    #[serde(default)]
    pub fqdn: Option<String>,
    /// The learner, when the LMS relays the launch; a learner posting their own leaves it out.
    #[serde(default)]
    pub username: Option<String>,
}

/// edX's 404 shape on this route.
fn not_found(text: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": text })),
    )
        .into_response()
}

#[utoipa::path(post, path = "/integrated_channels/api/v1/cornerstone/save-learner-information",
    tag = "channels",
    request_body = LearnerLaunch,
    responses((status = 200, description = "Recorded"),
              (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem),
              (status = 404, description = "`{\"error\": ...}`: the user is not linked to the customer, or no active Cornerstone configuration has the subdomain"),
              (status = 503, body = crate::error::Problem, description = "The service has no secrets key to seal the session token with")),
    security(("jwt" = [])))]
/// Records a learner's Cornerstone launch parameters; the latest launch per learner and course
/// wins. The session token is kept sealed, never in the log.
pub async fn save_learner_information(
    State(state): State<AppState>,
    principal: Principal,
    Input(body): Input<LearnerLaunch>,
) -> ApiResult<Response> {
    let customer = CustomerId(body.enterprise_uuid);
    let username = if principal.require_lms().is_ok() {
        body.username
            .clone()
            .ok_or_else(|| ApiError::field("username", "required when the LMS relays a launch"))?
    } else {
        principal.require_member_of(customer)?;
        if body
            .username
            .as_ref()
            .is_some_and(|u| *u != principal.username)
        {
            return Err(ApiError::Forbidden(
                "a learner records only their own launches".into(),
            ));
        }
        principal.username.clone()
    };
    let secrets = state.secrets.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "the service runs without a secrets key: launches cannot be kept".into(),
        )
    })?;
    let not_linked = "The user is not linked to this enterprise customer.";
    let Some(learner) = store::directory::find_by_username(&state.pool, &username).await? else {
        return Ok(not_found(not_linked));
    };
    let learner: LearnerId = learner.id();
    let memberships = crate::routes::lms::memberships(&state, learner).await?;
    if !matches!(
        memberships.membership(customer),
        Some(MembershipState::Linked { .. })
    ) {
        return Ok(not_found(not_linked));
    }
    let launch = Launch {
        customer_id: customer.0,
        learner_id: learner.0,
        course_key: body.course_key,
        user_guid: body.user_guid,
        callback_url: body.callback_url,
        session_token: body.session_token,
        subdomain: body.subdomain,
        at: chrono::Utc::now(),
    };
    match record(&state.store, &secrets, &launch).await {
        Ok(config) => {
            tracing::info!(customer = %customer.0, learner = %learner.0, %config, "Cornerstone launch recorded");
            Ok(StatusCode::OK.into_response())
        }
        Err(LaunchError::NoConfiguration(_)) => Ok(not_found(
            "No active Cornerstone configuration of this enterprise customer has this subdomain.",
        )),
        Err(LaunchError::Invalid(invalid)) => Err(invalid.into()),
        Err(LaunchError::Store(failure)) => Err(failure.into()),
    }
}
