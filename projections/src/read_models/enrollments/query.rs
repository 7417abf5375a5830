//! The queries of the progress report: a page, a stream of chunks for CSV, a learner's
//! enrollments. They join the learner directory for the personal columns.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::ids::{CustomerId, LearnerId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The CSV columns of the progress report, in `progress_v3` order (edx-enterprise-data's
/// `EnterpriseLearnerEnrollmentSerializer`), restricted to the columns the events can give.
/// [`ReportRow::csv_record`] gives a row's values in this order.
pub const REPORT_COLUMNS: &[&str] = &[
    "enrollment_id",
    "enterprise_enrollment_id",
    "is_consent_granted",
    "user_current_enrollment_mode",
    "enrollment_date",
    "unenrollment_date",
    "offer_type",
    "coupon_code",
    "coupon_name",
    "course_key",
    "courserun_key",
    "course_title",
    "course_pacing_type",
    "course_start_date",
    "course_end_date",
    "has_passed",
    "progress_status",
    "passed_date",
    "current_grade",
    "letter_grade",
    "enterprise_user_id",
    "user_email",
    "user_username",
    "enterprise_name",
    "enterprise_customer_uuid",
    "created",
];

/// Which enrollments of a customer the report holds; the default holds them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Enrolled at or after this instant.
    pub enrolled_from: Option<DateTime<Utc>>,
    /// Enrolled before this instant (exclusive, so consecutive ranges do not overlap).
    pub enrolled_until: Option<DateTime<Utc>>,
    /// Only enrollments in runs of this course.
    pub course_key: Option<String>,
    /// Only enrollments whose consent is granted (edX's legacy report kept only those).
    pub consent_granted_only: bool,
}

/// One row of the progress report, the personal columns joined from the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
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
    pub enterprise_user_id: LearnerId,
    /// From the directory; `None` once the learner is erased.
    pub user_email: Option<String>,
    /// From the directory; `None` once the learner is erased.
    pub user_username: Option<String>,
    pub enterprise_name: Option<String>,
    pub enterprise_customer_uuid: CustomerId,
    pub created: DateTime<Utc>,
    /// Not a report column: the enrollment's source (edX's `EnterpriseEnrollmentSource` slug).
    pub enrollment_source: String,
    /// Not a report column: on the learner's "saved for later" list (set by an unenrollment).
    pub saved_for_later: bool,
}

impl ReportRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let id: Uuid = row.try_get("enrollment_id")?;
        Ok(Self {
            enrollment_id: id,
            enterprise_enrollment_id: id,
            is_consent_granted: row.try_get("is_consent_granted")?,
            user_current_enrollment_mode: row.try_get("user_current_enrollment_mode")?,
            enrollment_date: row.try_get("enrollment_date")?,
            unenrollment_date: row.try_get("unenrollment_date")?,
            offer_type: row.try_get("offer_type")?,
            coupon_code: row.try_get("coupon_code")?,
            coupon_name: row.try_get("coupon_name")?,
            course_key: row.try_get("course_key")?,
            courserun_key: row.try_get("course_run_id")?,
            course_title: row.try_get("course_title")?,
            course_pacing_type: row.try_get("course_pacing_type")?,
            course_start_date: row.try_get("course_start_date")?,
            course_end_date: row.try_get("course_end_date")?,
            has_passed: row.try_get("has_passed")?,
            progress_status: row.try_get("progress_status")?,
            passed_date: row.try_get("passed_date")?,
            current_grade: row.try_get("current_grade")?,
            letter_grade: row.try_get("letter_grade")?,
            enterprise_user_id: LearnerId(row.try_get("learner_id")?),
            user_email: row.try_get("user_email")?,
            user_username: row.try_get("user_username")?,
            enterprise_name: row.try_get("enterprise_name")?,
            enterprise_customer_uuid: CustomerId(row.try_get("customer_id")?),
            created: row.try_get("created")?,
            enrollment_source: row.try_get("enrollment_source")?,
            saved_for_later: row.try_get("saved_for_later")?,
        })
    }

    /// The row's values in [`REPORT_COLUMNS`] order, as CSV fields: empty for a missing value,
    /// `true`/`false`, instants in RFC 3339 UTC to the second.
    pub fn csv_record(&self) -> Vec<String> {
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let maybe = |t: Option<DateTime<Utc>>| t.map(instant).unwrap_or_default();
        vec![
            self.enrollment_id.to_string(),
            self.enterprise_enrollment_id.to_string(),
            self.is_consent_granted.to_string(),
            self.user_current_enrollment_mode.clone(),
            instant(self.enrollment_date),
            maybe(self.unenrollment_date),
            text(&self.offer_type),
            text(&self.coupon_code),
            text(&self.coupon_name),
            text(&self.course_key),
            self.courserun_key.clone(),
            text(&self.course_title),
            text(&self.course_pacing_type),
            maybe(self.course_start_date),
            maybe(self.course_end_date),
            self.has_passed.to_string(),
            self.progress_status.clone(),
            maybe(self.passed_date),
            self.current_grade
                .map(|g| g.to_string())
                .unwrap_or_default(),
            text(&self.letter_grade),
            self.enterprise_user_id.to_string(),
            text(&self.user_email),
            text(&self.user_username),
            text(&self.enterprise_name),
            self.enterprise_customer_uuid.to_string(),
            instant(self.created),
        ]
    }
}

/// The report's columns with the directory's joined; `r` is the report, `d` the directory.
const SELECT_REPORT: &str = "SELECT r.enrollment_id, r.customer_id, r.learner_id, r.course_run_id,
        r.enrollment_source, r.saved_for_later, r.is_consent_granted,
        r.user_current_enrollment_mode, r.enrollment_date, r.unenrollment_date, r.offer_type,
        r.coupon_code, r.coupon_name, r.course_key, r.course_title, r.course_pacing_type,
        r.course_start_date, r.course_end_date, r.has_passed, r.progress_status, r.passed_date,
        r.current_grade, r.letter_grade, r.enterprise_name, r.created,
        d.email AS user_email, d.username AS user_username
   FROM enrollments_report r
   LEFT JOIN learners d ON d.learner_id = r.learner_id";

/// A [`ReportFilter`] in SQL, with `$1` the customer and `$2`..`$5` the filter's fields.
const REPORT_FILTER: &str = "WHERE r.customer_id = $1
    AND ($2::timestamptz IS NULL OR r.enrollment_date >= $2)
    AND ($3::timestamptz IS NULL OR r.enrollment_date < $3)
    AND ($4::text IS NULL OR r.course_key = $4)
    AND (NOT $5::boolean OR r.is_consent_granted)";

/// The report's order: by enrollment date, then id (also the keyset of [`ReportChunks`]).
const REPORT_ORDER: &str = "ORDER BY r.enrollment_date, r.enrollment_id";

/// One page of a customer's progress report, oldest enrollment first, and how many rows match
/// in all. `page` counts from 1 (0 reads as 1); `page_size` is at least 1.
pub async fn report(
    pool: &PgPool,
    customer: CustomerId,
    filter: &ReportFilter,
    page: u32,
    page_size: u32,
) -> Result<(i64, Vec<ReportRow>), sqlx::Error> {
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM enrollments_report r {REPORT_FILTER}"
    ))
    .bind(customer.0)
    .bind(filter.enrolled_from)
    .bind(filter.enrolled_until)
    .bind(filter.course_key.as_deref())
    .bind(filter.consent_granted_only)
    .fetch_one(pool)
    .await?;
    let size = i64::from(page_size.max(1));
    let offset = i64::from(page.max(1) - 1) * size;
    let rows = sqlx::query(&format!(
        "{SELECT_REPORT} {REPORT_FILTER} {REPORT_ORDER} LIMIT $6 OFFSET $7"
    ))
    .bind(customer.0)
    .bind(filter.enrolled_from)
    .bind(filter.enrolled_until)
    .bind(filter.course_key.as_deref())
    .bind(filter.consent_granted_only)
    .bind(size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let rows = rows
        .iter()
        .map(ReportRow::from_row)
        .collect::<Result<_, _>>()?;
    Ok((total, rows))
}

/// Reads a whole report in chunks, for CSV streaming: each chunk is one short query that
/// resumes after the last row of the previous one (keyset on enrollment date and id), so no
/// transaction or connection is held between chunks and the cost per chunk does not grow with
/// the depth reached. The export is not a snapshot: an enrollment recorded meanwhile appears if
/// it sorts after the rows already read.
#[derive(Debug, Clone)]
pub struct ReportChunks {
    customer: CustomerId,
    filter: ReportFilter,
    chunk_size: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
    done: bool,
}

/// The chunked reader of a customer's report (see [`ReportChunks`]); `chunk_size` is at least 1.
pub fn report_stream(customer: CustomerId, filter: ReportFilter, chunk_size: u32) -> ReportChunks {
    ReportChunks {
        customer,
        filter,
        chunk_size: i64::from(chunk_size.max(1)),
        after: None,
        done: false,
    }
}

impl ReportChunks {
    /// The next chunk, in the order of [`report`]; `None` once every row has been read.
    pub async fn next_chunk(
        &mut self,
        pool: &PgPool,
    ) -> Result<Option<Vec<ReportRow>>, sqlx::Error> {
        if self.done {
            return Ok(None);
        }
        let (after_date, after_id) = self.after.unzip();
        let rows = sqlx::query(&format!(
            "{SELECT_REPORT} {REPORT_FILTER}
               AND ($6::timestamptz IS NULL OR (r.enrollment_date, r.enrollment_id) > ($6, $7::uuid))
             {REPORT_ORDER} LIMIT $8"
        ))
        .bind(self.customer.0)
        .bind(self.filter.enrolled_from)
        .bind(self.filter.enrolled_until)
        .bind(self.filter.course_key.as_deref())
        .bind(self.filter.consent_granted_only)
        .bind(after_date)
        .bind(after_id)
        .bind(self.chunk_size)
        .fetch_all(pool)
        .await?;
        let rows: Vec<ReportRow> = rows
            .iter()
            .map(ReportRow::from_row)
            .collect::<Result<_, _>>()?;
        if (rows.len() as i64) < self.chunk_size {
            self.done = true;
        }
        match rows.last() {
            Some(last) => {
                self.after = Some((last.enrollment_date, last.enrollment_id));
                Ok(Some(rows))
            }
            None => Ok(None),
        }
    }
}

/// Every enrollment of a learner with one customer, oldest first.
pub async fn enrollments_of_learner(
    pool: &PgPool,
    customer: CustomerId,
    learner: LearnerId,
) -> Result<Vec<ReportRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT_REPORT} WHERE r.customer_id = $1 AND r.learner_id = $2 {REPORT_ORDER}"
    ))
    .bind(customer.0)
    .bind(learner.0)
    .fetch_all(pool)
    .await?;
    rows.iter().map(ReportRow::from_row).collect()
}
