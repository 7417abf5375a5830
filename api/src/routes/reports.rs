//! A customer's learner progress report (administrators of the customer), from the enrollments
//! read model: `/api/v1/customers/{customer_uuid}/reports/progress` as paginated JSON and
//! `.../progress.csv` streamed, columns in edX's `progress_v3` order.
//!
//! Filters: `enrolled_from` (inclusive) and `enrolled_until` (exclusive), RFC 3339 instants;
//! `course_key`; `consent_granted_only`. The CSV is read in chunks by keyset, so an export of
//! any size holds no transaction and little memory; it is not a snapshot (see
//! [`ReportChunks`]).

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Params, PathParams};
use crate::page::{Page, PageRequest, RequestUrl};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::ids::CustomerId;
use futures_util::StreamExt;
use projections::read_models::enrollments::{
    self as report_query, ReportChunks, ReportFilter, ReportRow, REPORT_COLUMNS,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// The read model the report comes from.
const READ_MODEL: &str = "enrollments";
/// Rows per query of a CSV export.
const CSV_CHUNK: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    customer_uuid: Uuid,
}

/// The report's filters and page, as text so a malformed one is named.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Enrolled at or after this instant (RFC 3339).
    pub enrolled_from: Option<String>,
    /// Enrolled before this instant (RFC 3339).
    pub enrolled_until: Option<String>,
    /// Only enrollments in runs of this course.
    pub course_key: Option<String>,
    /// `true` keeps only enrollments whose consent is granted.
    pub consent_granted_only: Option<String>,
    pub page: Option<String>,
    pub page_size: Option<String>,
    pub min_position: Option<String>,
}

fn instant(field: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::field(
                        field,
                        "must be an RFC 3339 instant such as 2026-01-31T00:00:00Z",
                    )
                })
        })
        .transpose()
}

fn number(field: &str, value: Option<&str>) -> ApiResult<Option<u32>> {
    value
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| ApiError::field(field, "must be a positive integer"))
        })
        .transpose()
}

impl ReportQuery {
    fn filter(&self) -> ApiResult<ReportFilter> {
        let enrolled_from = instant("enrolled_from", self.enrolled_from.as_deref())?;
        let enrolled_until = instant("enrolled_until", self.enrolled_until.as_deref())?;
        if let (Some(from), Some(until)) = (enrolled_from, enrolled_until) {
            if from >= until {
                return Err(ApiError::field(
                    "enrolled_until",
                    "must be after enrolled_from",
                ));
            }
        }
        let consent_granted_only = match self.consent_granted_only.as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => {
                return Err(ApiError::field(
                    "consent_granted_only",
                    "must be true or false",
                ))
            }
        };
        if let Some(key) = &self.course_key {
            domain::validate::text("course_key", key, 255)?;
        }
        Ok(ReportFilter {
            enrolled_from,
            enrolled_until,
            course_key: self.course_key.clone(),
            consent_granted_only,
        })
    }

    fn page(&self) -> ApiResult<PageRequest> {
        Ok(PageRequest {
            page: number("page", self.page.as_deref())?,
            page_size: number("page_size", self.page_size.as_deref())?,
        })
    }
}

/// One row of the report, keys and order as edX's `progress_v3`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressRow {
    pub enrollment_id: Uuid,
    pub enterprise_enrollment_id: Uuid,
    pub is_consent_granted: bool,
    pub user_current_enrollment_mode: String,
    pub enrollment_date: DateTime<Utc>,
    pub unenrollment_date: Option<DateTime<Utc>>,
    pub offer_type: Option<String>,
    pub coupon_code: Option<String>,
    pub coupon_name: Option<String>,
    pub course_key: Option<String>,
    pub courserun_key: String,
    pub course_title: Option<String>,
    pub course_pacing_type: Option<String>,
    pub course_start_date: Option<DateTime<Utc>>,
    pub course_end_date: Option<DateTime<Utc>>,
    pub has_passed: bool,
    pub progress_status: String,
    pub passed_date: Option<DateTime<Utc>>,
    pub current_grade: Option<f64>,
    pub letter_grade: Option<String>,
    pub enterprise_user_id: Uuid,
    pub user_email: Option<String>,
    pub user_username: Option<String>,
    pub enterprise_name: Option<String>,
    pub enterprise_customer_uuid: Uuid,
    pub created: DateTime<Utc>,
}

impl From<ReportRow> for ProgressRow {
    fn from(r: ReportRow) -> Self {
        Self {
            enrollment_id: r.enrollment_id,
            enterprise_enrollment_id: r.enterprise_enrollment_id,
            is_consent_granted: r.is_consent_granted,
            user_current_enrollment_mode: r.user_current_enrollment_mode,
            enrollment_date: r.enrollment_date,
            unenrollment_date: r.unenrollment_date,
            offer_type: r.offer_type,
            coupon_code: r.coupon_code,
            coupon_name: r.coupon_name,
            course_key: r.course_key,
            courserun_key: r.courserun_key,
            course_title: r.course_title,
            course_pacing_type: r.course_pacing_type,
            course_start_date: r.course_start_date,
            course_end_date: r.course_end_date,
            has_passed: r.has_passed,
            progress_status: r.progress_status,
            passed_date: r.passed_date,
            current_grade: r.current_grade,
            letter_grade: r.letter_grade,
            enterprise_user_id: r.enterprise_user_id.0,
            user_email: r.user_email,
            user_username: r.user_username,
            enterprise_name: r.enterprise_name,
            enterprise_customer_uuid: r.enterprise_customer_uuid.0,
            created: r.created,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/reports/progress", tag = "reports",
    params(CustomerPath, ReportQuery),
    responses(
        (status = 200, body = Page<ProgressRow>),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// One page of the customer's progress report, oldest enrollment first.
pub async fn progress(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    PathParams(path): PathParams<CustomerPath>,
    Params(query): Params<ReportQuery>,
) -> ApiResult<Json<Page<ProgressRow>>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let filter = query.filter()?;
    let page = query.page()?;
    let (number, size) = page.resolve()?;
    min_position.wait(&state.pool, &[READ_MODEL]).await?;
    let (count, rows) = report_query::report(&state.pool, customer, &filter, number, size).await?;
    let rows = rows.into_iter().map(ProgressRow::from).collect();
    Ok(Json(Page::new(&url, page, count, rows)?))
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/reports/progress.csv", tag = "reports",
    params(CustomerPath, ReportQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String, description = "A header line, then one line per enrollment, columns in progress_v3 order"),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// The customer's whole progress report as CSV, streamed.
pub async fn progress_csv(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    PathParams(path): PathParams<CustomerPath>,
    Params(query): Params<ReportQuery>,
) -> ApiResult<Response> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let filter = query.filter()?;
    for (field, value) in [("page", &query.page), ("page_size", &query.page_size)] {
        if value.is_some() {
            return Err(ApiError::field(
                field,
                "the CSV export holds the whole report; it is not paginated",
            ));
        }
    }
    min_position.wait(&state.pool, &[READ_MODEL]).await?;
    let chunks = report_query::report_stream(customer, filter, CSV_CHUNK);
    let header = csv_line(REPORT_COLUMNS.iter().copied());
    let rows = futures_util::stream::unfold(Some((chunks, state.pool.clone())), next_lines);
    let body = futures_util::stream::once(async move { Ok(Bytes::from(header)) }).chain(rows);
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"progress-{}.csv\"", customer.0),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

type Export = Option<(ReportChunks, PgPool)>;

/// The CSV lines of the next chunk; after a failure the stream ends with the error, so the
/// client sees a broken transfer rather than a silently short file.
async fn next_lines(export: Export) -> Option<(Result<Bytes, std::io::Error>, Export)> {
    let (mut chunks, pool) = export?;
    match chunks.next_chunk(&pool).await {
        Ok(Some(rows)) => {
            let mut text = String::new();
            for row in &rows {
                text.push_str(&csv_line(row.csv_record().iter().map(String::as_str)));
            }
            Some((Ok(Bytes::from(text)), Some((chunks, pool))))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "progress report export failed");
            Some((Err(std::io::Error::other("the report export failed")), None))
        }
    }
}

/// One RFC 4180 line: fields with a comma, a quote or a line break are quoted, quotes doubled.
fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (i, field) in fields.enumerate() {
        if i > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        let line = csv_line(["a", "b,c", "say \"hi\"", "two\nlines", ""].into_iter());
        assert_eq!(line, "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn filters_name_the_field_at_fault() {
        let bad = ReportQuery {
            enrolled_from: Some("yesterday".into()),
            ..ReportQuery::default()
        };
        assert!(bad
            .filter()
            .unwrap_err()
            .to_string()
            .contains("enrolled_from"));
        let reversed = ReportQuery {
            enrolled_from: Some("2026-02-01T00:00:00Z".into()),
            enrolled_until: Some("2026-01-01T00:00:00Z".into()),
            ..ReportQuery::default()
        };
        assert!(reversed
            .filter()
            .unwrap_err()
            .to_string()
            .contains("enrolled_until"));
        let flag = ReportQuery {
            consent_granted_only: Some("maybe".into()),
            ..ReportQuery::default()
        };
        assert!(flag
            .filter()
            .unwrap_err()
            .to_string()
            .contains("consent_granted_only"));
    }
}
