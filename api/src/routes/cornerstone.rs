//! Cornerstone's catalog pull, `GET /cornerstone/course-list?ciid=<customer uuid>` (edX's path
//! and answers; the endpoint itself is the Cornerstone channel's, in `transmitters`). Here it
//! gets the service's authentication: a channel worker (the identity Cornerstone is given), an
//! operator, or an administrator of the customer the `ciid` names.

use crate::auth::Principal;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use domain::ids::CustomerId;
use std::collections::HashMap;
use transmitters::cornerstone::{course_list, Pull};
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
