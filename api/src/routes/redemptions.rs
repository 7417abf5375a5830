//! A learner redeems a coupon code, `POST /api/v1/customers/{customer_uuid}/coupons/redemptions`:
//! the code buys a seat in a course run of the coupon's catalog and enrolls the learner (the
//! process and its compensation are in `store::services::redemption`). The learner is the
//! caller: the token's username, found in the learner directory. Each refusal has its status.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, PathParams};
use crate::routes::coupons::{coupon_of, services, CustomerPath};
use crate::written::{metadata, LOG_POSITION};
use crate::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use domain::course_mode::CourseMode;
use domain::ids::{CourseRunId, CustomerId};
use serde::{Deserialize, Serialize};
use store::directory;
use store::services::redemption::{self, RedeemRequest, RedemptionError};
use uuid::Uuid;

/// A learner's redemption: the code, the course run and the mode it buys.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeem {
    pub code: String,
    pub course_run_id: String,
    #[schema(value_type = String, example = "verified")]
    pub mode: CourseMode,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redeemed {
    pub coupon_uuid: Uuid,
    pub redemption_uuid: Uuid,
    /// The global position of the enrollment the redemption made (absent when it already
    /// stood).
    pub position: Option<i64>,
}

/// The status and detail of a refused redemption.
fn redemption_error(err: RedemptionError) -> ApiError {
    let message = err.to_string();
    match err {
        RedemptionError::UnknownCode => ApiError::NotFound(message),
        RedemptionError::UnknownLearner => ApiError::NotFound(message),
        RedemptionError::NotLinked => ApiError::Forbidden(message),
        RedemptionError::AlreadyEnrolled | RedemptionError::IdempotencyKeyReused => {
            ApiError::Conflict(message)
        }
        RedemptionError::CustomerInactive
        | RedemptionError::CatalogRemoved
        | RedemptionError::ConsentRequired => ApiError::Unprocessable(message),
        RedemptionError::CourseNotInCatalog(_) => ApiError::field("course_run_id", message),
        RedemptionError::ModeNotOffered(_) => ApiError::field("mode", message),
        RedemptionError::Coupon(e) => e.into(),
        RedemptionError::Enrollment(e) => e.into(),
        RedemptionError::Store(f) => f.into(),
    }
}

#[utoipa::path(post, path = "/api/v1/customers/{customer_uuid}/coupons/redemptions", tag = "coupons",
    params(CustomerPath, ("Idempotency-Key" = Option<String>, Header)),
    request_body = Redeem,
    responses(
        (status = 201, body = Redeemed),
        (status = 400, body = crate::error::Problem, description = "A malformed body, a run not in the coupon's catalog or a mode it does not offer"),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem, description = "Not a learner of this customer"),
        (status = 404, body = crate::error::Problem, description = "Unknown code or learner"),
        (status = 409, body = crate::error::Problem, description = "Used up, already redeemed, already enrolled"),
        (status = 422, body = crate::error::Problem, description = "Outside the validity period, reserved for another learner, consent not granted, inactive customer"),
    ),
    security(("jwt" = [])))]
/// Redeems a code for the calling learner and enrolls them in the course run.
pub async fn redeem(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    PathParams(path): PathParams<CustomerPath>,
    request: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<Redeemed>)> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_member_of(customer)?;
    let Input(body) = Input::<Redeem>::from_request(request, &()).await?;
    domain::validate::text("course_run_id", &body.course_run_id, 255)?;
    let learner = directory::find_by_username(&state.pool, &principal.username)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                "no learner with this token's username is known: the LMS registers learners first"
                    .into(),
            )
        })?;
    // A code of another customer's coupon is unknown here.
    let unknown = || ApiError::NotFound("no coupon of this customer has this code".into());
    let coupon_id = redemption::coupon_of_code(&state.store, &body.code)
        .await?
        .ok_or_else(unknown)?;
    coupon_of(&state, customer, coupon_id.0)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => unknown(),
            other => other,
        })?;
    let request = RedeemRequest {
        code: body.code,
        learner_id: learner.id(),
        course_run_id: CourseRunId(body.course_run_id),
        mode: body.mode,
    };
    let done = redemption::redeem(
        &state.store,
        &services(),
        request,
        &metadata(&principal, &key)?,
    )
    .await
    .map_err(redemption_error)?;
    let mut headers = HeaderMap::new();
    if let Some(position) = done.position {
        headers.insert(LOG_POSITION, HeaderValue::from(position));
    }
    Ok((
        StatusCode::CREATED,
        headers,
        Json(Redeemed {
            coupon_uuid: done.coupon_id.0,
            redemption_uuid: done.redemption_id,
            position: done.position,
        }),
    ))
}
