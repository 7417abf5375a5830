//! edX's `enterprise-course-enrollment/` routes: the enterprise enrollments of a customer (or
//! of one of its learners) with edX's `with_additional_fields` columns, and POST
//! `{username, course_id}` that records the enterprise enrollment of an offer redemption for the
//! learner's active customer (source `offer_redemption`).

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, Params};
use crate::page::{Page, PageRequest, RequestUrl};
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::enrollment::EnrollmentSource;
use domain::ids::{CourseRunId, CustomerId};
use projections::read_models::enrollments::{self as enrollments_model, ReportFilter, ReportRow};
use serde::{Deserialize, Serialize};
use store::services::enrollments::{enroll, EnrollRequest};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const PATH: &str = "/enterprise/api/v1/enterprise-course-enrollment/";
const READ_MODELS: &[&str] = &["enrollments"];

/// edX's enterprise enrollment with its additional fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnterpriseCourseEnrollment {
    pub id: Uuid,
    /// The learner's pseudonymous id.
    pub enterprise_customer_user: Uuid,
    pub enterprise_customer: Uuid,
    pub course_id: String,
    pub created: DateTime<Utc>,
    pub enrollment_date: DateTime<Utc>,
    pub unenrolled_at: Option<DateTime<Utc>>,
    pub enrollment_track: String,
    pub user_email: Option<String>,
    pub course_start: Option<DateTime<Utc>>,
    pub course_end: Option<DateTime<Utc>>,
    pub saved_for_later: bool,
    pub source: String,
}

impl From<ReportRow> for EnterpriseCourseEnrollment {
    fn from(row: ReportRow) -> Self {
        Self {
            id: row.enterprise_enrollment_id,
            enterprise_customer_user: row.enterprise_user_id.0,
            enterprise_customer: row.enterprise_customer_uuid.0,
            course_id: row.courserun_key,
            created: row.created,
            enrollment_date: row.enrollment_date,
            unenrolled_at: row.unenrollment_date,
            enrollment_track: row.user_current_enrollment_mode,
            user_email: row.user_email,
            course_start: row.course_start_date,
            course_end: row.course_end_date,
            saved_for_later: row.saved_for_later,
            source: row.enrollment_source,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EnrollmentListQuery {
    pub enterprise_customer: Uuid,
    /// Only this learner's enrollments.
    pub username: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub min_position: Option<i64>,
}

#[utoipa::path(get, path = PATH, tag = "enterprise",
    params(EnrollmentListQuery),
    responses((status = 200, body = Page<EnterpriseCourseEnrollment>), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// A customer's enterprise enrollments, oldest first; a learner may read their own.
pub async fn list_enrollments(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Params(query): Params<EnrollmentListQuery>,
) -> ApiResult<Json<Page<EnterpriseCourseEnrollment>>> {
    let customer = CustomerId(query.enterprise_customer);
    let own = query.username.as_deref() == Some(principal.username.as_str());
    if !(principal.admin_of(customer) || own && principal.member_of(customer)) {
        return Err(ApiError::Forbidden(
            "reading these enrollments needs an administrator of the customer or the learner"
                .into(),
        ));
    }
    let page = PageRequest {
        page: query.page,
        page_size: query.page_size,
    };
    let (number, size) = page.resolve()?;
    min_position.wait(&state.pool, READ_MODELS).await?;
    let (count, rows) = match &query.username {
        Some(username) => {
            let Some(learner) = store::directory::find_by_username(&state.pool, username).await?
            else {
                return Ok(Json(Page::new(&url, page, 0, Vec::new())?));
            };
            let rows =
                enrollments_model::enrollments_of_learner(&state.pool, customer, learner.id())
                    .await?;
            page.slice(rows)?
        }
        None => {
            enrollments_model::report(
                &state.pool,
                customer,
                &ReportFilter::default(),
                number,
                size,
            )
            .await?
        }
    };
    let results: Vec<EnterpriseCourseEnrollment> = rows.into_iter().map(Into::into).collect();
    Ok(Json(Page::new(&url, page, count, results)?))
}

/// edX's POST body (JSON or form-encoded).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordEnrollment {
    pub username: String,
    pub course_id: String,
}

#[utoipa::path(post, path = PATH, tag = "enterprise",
    request_body(content = RecordEnrollment, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = RecordEnrollment), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Records the enterprise enrollment of a learner's offer redemption, for the learner's active
/// customer (the LMS or operators).
pub async fn record_enrollment(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    Input(body): Input<RecordEnrollment>,
) -> ApiResult<Response> {
    principal.require_lms()?;
    let learner = store::directory::find_by_username(&state.pool, &body.username)
        .await?
        .ok_or_else(|| ApiError::field("username", "no learner with this username is known"))?
        .id();
    let customer = crate::routes::lms::memberships(&state, learner)
        .await?
        .active_customer()
        .ok_or_else(|| {
            ApiError::Unprocessable("the learner has no active enterprise customer".into())
        })?;
    let request = EnrollRequest {
        customer_id: customer,
        learner_id: learner,
        course_run_id: CourseRunId(body.course_id.clone()),
        mode: None,
        source: EnrollmentSource::OfferRedemption,
    };
    let meta = metadata(&principal, &key)?;
    let appended =
        enroll(&state.store, &request, &meta)
            .await
            .map_err(|e| match ApiError::from(e) {
                ApiError::BadRequest { detail, .. } => ApiError::field("course_id", detail),
                other => other,
            })?;
    Ok((
        StatusCode::CREATED,
        Written::from(&appended).headers(),
        Json(body),
    )
        .into_response())
}
