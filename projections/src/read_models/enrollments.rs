//! Enrollments and the learner progress report: one row per enterprise enrollment (customer x
//! learner x course run) with every `progress_v3` column the events can give.
//!
//! Tables (migration `20261127000012_enrollments.sql`): `enrollments_report`, the rows; and the
//! inputs the projection keeps to fill them, since it reads only its own tables:
//! `enrollments_customers` (names), `enrollments_course_runs` (run metadata),
//! `enrollments_consents` (course consent), `enrollments_coupons` and `enrollments_redemptions`,
//! `enrollments_completions` (the latest completion decision).
//!
//! The rules, column by column:
//! - `enrollment_id` and `enterprise_enrollment_id`: the enrollment stream id; `created`: when
//!   `Enrolled` was recorded; `enrollment_date`: the `Enrolled` event's `at` (kept on re-enrollment);
//!   `user_current_enrollment_mode`: the enrolled mode, then each `ModeChanged`;
//!   `unenrollment_date`: set by `Unenrolled`, cleared by `Reenrolled` (as edX's `unenrolled_at`).
//! - `enterprise_name`: the customer's name (`CustomerCreated`, `CustomerUpdated`).
//! - `course_key`, `course_title`, `course_pacing_type`, `course_start_date`, `course_end_date`:
//!   the course run's published metadata (kept after a retirement). Until the run is published,
//!   `course_key` is the one the run id encodes and the others are empty.
//! - `is_consent_granted`: the customer x learner x course key consent record is granted (the key
//!   a run resolves to, as the consent aggregate files it); a decline or a revocation makes it
//!   false; a program consent does not count for a course.
//! - `coupon_code`, `coupon_name`, `offer_type`: from the redemption named by the enrollment, while
//!   it is not reversed. `offer_type` is the coupon benefit's type as ecommerce (django-oscar)
//!   spells it: `Percentage` or `Absolute`.
//! - `has_passed`, `progress_status`, `passed_date`, `current_grade`, `letter_grade`: the latest
//!   completion decision (`CourseCompleted`, then `CompletionGradeChanged`): passed when its grade
//!   is `Pass`, `letter_grade` the grade label (`Pass`, `Fail`, `Audit`), `current_grade` its
//!   percent in [0, 1], `passed_date` its `completed_at` when passed. Before any decision:
//!   not passed, `In Progress`, the rest empty. LMS facts before a decision are not shown.
//! - `enterprise_user_id`, `enterprise_customer_uuid`: the learner and customer ids.
//! - `user_email`, `user_username`: joined from the learner directory when read, never stored;
//!   an erased learner reads with them empty.
//!
//! Inputs may arrive before or after the enrollment: `Enrolled` fills its row from the input
//! tables, and an input that changes later updates the rows it concerns.

use crate::projection::{decode, ApplyError, Projection};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::completion::{CompletionEvent, GradeLabel, ProgressStatus};
use domain::consent::{ConsentEvent, ConsentSubject};
use domain::content::{ContentEvent, ContentType};
use domain::coupon::{CouponBenefit, CouponEvent};
use domain::customer::CustomerEvent;
use domain::enrollment::EnrollmentEvent;
use domain::ids::{course_key_of_run, CustomerId, LearnerId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use store::log::LoggedEvent;
use uuid::Uuid;

/// The read model of enrollments and the progress report (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Enrollments;

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

#[async_trait]
impl Projection for Enrollments {
    fn name(&self) -> &'static str {
        "enrollments"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "enrollments_report",
            "enrollments_customers",
            "enrollments_course_runs",
            "enrollments_consents",
            "enrollments_coupons",
            "enrollments_redemptions",
            "enrollments_completions",
        ]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        // Events this read model never uses are skipped before decoding: a rebuild reads the
        // whole log, most of which is not about enrollments.
        let wanted = match event.aggregate_type.as_str() {
            "enrollment" | "consent" => true,
            "customer" => matches!(
                event.event_type.as_str(),
                "CustomerCreated" | "CustomerUpdated"
            ),
            // Courses' and programs' metadata (told by a look into the payload) is never
            // decoded; anything else is, so a malformed payload still stops the projection.
            "content_item" => {
                let path = format!("/{}/metadata/content_type", event.event_type);
                let item = event.payload.pointer(&path).and_then(|t| t.as_str());
                matches!(
                    event.event_type.as_str(),
                    "ContentPublished" | "ContentUpdated"
                ) && item != Some(ContentType::Course.as_str())
                    && item != Some(ContentType::Program.as_str())
            }
            "coupon" => matches!(
                event.event_type.as_str(),
                "CouponCreated" | "CodeRedeemed" | "RedemptionReversed"
            ),
            "completion" => matches!(
                event.event_type.as_str(),
                "CourseCompleted" | "CompletionGradeChanged"
            ),
            _ => false,
        };
        if !wanted {
            return Ok(());
        }
        match event.aggregate_type.as_str() {
            "enrollment" => apply_enrollment(conn, event).await,
            "customer" => apply_customer(conn, decode(event)?).await,
            "content_item" => apply_content(conn, decode(event)?).await,
            "consent" => apply_consent(conn, decode(event)?).await,
            "coupon" => apply_coupon(conn, decode(event)?).await,
            "completion" => apply_completion(conn, decode(event)?).await,
            _ => Ok(()),
        }
    }
}

async fn apply_enrollment(conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
    let id = Uuid::parse_str(&event.aggregate_id)
        .map_err(|e| ApplyError::Malformed(format!("enrollment stream id: {e}")))?;
    let update = |sql: &'static str| sqlx::query(sql).bind(id);
    match decode::<EnrollmentEvent>(event)? {
        EnrollmentEvent::Enrolled {
            customer_id,
            learner_id,
            course_run_id,
            mode,
            source,
            redemption_id,
            at,
        } => {
            // The key the consent aggregate files this run's consent under.
            let ConsentSubject::Course(consent_key) =
                ConsentSubject::for_course_id(&course_run_id.0)
            else {
                return Err(ApplyError::Malformed(format!(
                    "course run '{course_run_id}' gives no course consent key"
                )));
            };
            sqlx::query(
                "INSERT INTO enrollments_report
                    (enrollment_id, customer_id, learner_id, course_run_id, consent_key,
                     redemption_id, enrollment_source, user_current_enrollment_mode,
                     enrollment_date, created, is_consent_granted, offer_type, coupon_code,
                     coupon_name, course_key, course_title, course_pacing_type, course_start_date,
                     course_end_date, has_passed, progress_status, passed_date, current_grade,
                     letter_grade, enterprise_name)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                        coalesce(cs.granted, false), cp.offer_type, rd.code, cp.name,
                        coalesce(run.course_key, $11), run.title, run.pacing_type, run.start_date,
                        run.end_date, coalesce(cm.has_passed, false),
                        coalesce(cm.progress_status, 'In Progress'), cm.passed_date,
                        cm.current_grade, cm.letter_grade, cu.name
                   FROM (SELECT) AS one
                   LEFT JOIN enrollments_consents cs
                          ON cs.customer_id = $2 AND cs.learner_id = $3 AND cs.course_key = $5
                   LEFT JOIN enrollments_redemptions rd
                          ON rd.redemption_id = $6 AND NOT rd.reversed
                   LEFT JOIN enrollments_coupons cp ON cp.coupon_id = rd.coupon_id
                   LEFT JOIN enrollments_course_runs run ON run.course_run_id = $4
                   LEFT JOIN enrollments_completions cm
                          ON cm.customer_id = $2 AND cm.learner_id = $3 AND cm.course_run_id = $4
                   LEFT JOIN enrollments_customers cu ON cu.customer_id = $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(customer_id.0)
            .bind(learner_id.0)
            .bind(&course_run_id.0)
            .bind(&consent_key.0)
            .bind(redemption_id)
            .bind(source.as_str())
            .bind(mode.as_str())
            .bind(at)
            .bind(event.recorded_at)
            .bind(course_key_of_run(&course_run_id.0).map(|k| k.0))
            .execute(&mut *conn)
            .await?;
        }
        EnrollmentEvent::ModeChanged { to, .. } => {
            update(
                "UPDATE enrollments_report SET user_current_enrollment_mode = $2
                  WHERE enrollment_id = $1",
            )
            .bind(to.as_str())
            .execute(&mut *conn)
            .await?;
        }
        EnrollmentEvent::Unenrolled { at, .. } => {
            update(
                "UPDATE enrollments_report SET unenrollment_date = $2, saved_for_later = true
                  WHERE enrollment_id = $1",
            )
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        EnrollmentEvent::Reenrolled { .. } => {
            update(
                "UPDATE enrollments_report SET unenrollment_date = NULL, saved_for_later = false
                  WHERE enrollment_id = $1",
            )
            .execute(&mut *conn)
            .await?;
        }
        EnrollmentEvent::SavedForLater { saved, .. } => {
            update("UPDATE enrollments_report SET saved_for_later = $2 WHERE enrollment_id = $1")
                .bind(saved)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn apply_customer(conn: &mut PgConnection, event: CustomerEvent) -> Result<(), ApplyError> {
    let (customer, name) = match event {
        CustomerEvent::CustomerCreated {
            customer_id, name, ..
        }
        | CustomerEvent::CustomerUpdated {
            customer_id,
            name: Some(name),
            ..
        } => (customer_id, name),
        _ => return Ok(()),
    };
    sqlx::query(
        "WITH input AS (
             INSERT INTO enrollments_customers (customer_id, name) VALUES ($1, $2)
             ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name)
         UPDATE enrollments_report SET enterprise_name = $2
          WHERE customer_id = $1 AND enterprise_name IS DISTINCT FROM $2",
    )
    .bind(customer.0)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_content(conn: &mut PgConnection, event: ContentEvent) -> Result<(), ApplyError> {
    let (ContentEvent::ContentPublished { metadata } | ContentEvent::ContentUpdated { metadata }) =
        event
    else {
        return Ok(());
    };
    if metadata.content_type != ContentType::CourseRun {
        return Ok(());
    }
    sqlx::query(
        "WITH input AS (
             INSERT INTO enrollments_course_runs
                    (course_run_id, course_key, title, pacing_type, start_date, end_date)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (course_run_id) DO UPDATE
                SET course_key = EXCLUDED.course_key, title = EXCLUDED.title,
                    pacing_type = EXCLUDED.pacing_type, start_date = EXCLUDED.start_date,
                    end_date = EXCLUDED.end_date)
         UPDATE enrollments_report
            SET course_key = coalesce($2, course_key), course_title = $3,
                course_pacing_type = $4, course_start_date = $5, course_end_date = $6
          WHERE course_run_id = $1",
    )
    .bind(&metadata.key)
    .bind(metadata.run_course_key())
    .bind(&metadata.title)
    .bind(&metadata.pacing_type)
    .bind(metadata.start)
    .bind(metadata.end)
    .execute(conn)
    .await?;
    Ok(())
}

async fn apply_consent(conn: &mut PgConnection, event: ConsentEvent) -> Result<(), ApplyError> {
    let (customer, learner, subject, granted) = match event {
        ConsentEvent::ConsentGranted {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, true),
        ConsentEvent::ConsentDeclined {
            customer_id,
            learner_id,
            subject,
            ..
        }
        | ConsentEvent::ConsentRevoked {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, false),
    };
    let ConsentSubject::Course(course_key) = subject else {
        return Ok(());
    };
    sqlx::query(
        "WITH input AS (
             INSERT INTO enrollments_consents (customer_id, learner_id, course_key, granted)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (customer_id, learner_id, course_key) DO UPDATE
                SET granted = EXCLUDED.granted)
         UPDATE enrollments_report SET is_consent_granted = $4
          WHERE customer_id = $1 AND learner_id = $2 AND consent_key = $3
            AND is_consent_granted <> $4",
    )
    .bind(customer.0)
    .bind(learner.0)
    .bind(&course_key.0)
    .bind(granted)
    .execute(conn)
    .await?;
    Ok(())
}

/// The coupon benefit's type, as ecommerce (django-oscar's `Benefit.type`) spells it.
fn offer_type(benefit: CouponBenefit) -> &'static str {
    match benefit {
        CouponBenefit::Percentage { .. } => "Percentage",
        CouponBenefit::Absolute { .. } => "Absolute",
    }
}

async fn apply_coupon(conn: &mut PgConnection, event: CouponEvent) -> Result<(), ApplyError> {
    match event {
        CouponEvent::CouponCreated {
            coupon_id,
            name,
            benefit,
            ..
        } => {
            sqlx::query(
                "INSERT INTO enrollments_coupons (coupon_id, name, offer_type) VALUES ($1, $2, $3)
                 ON CONFLICT (coupon_id) DO UPDATE
                    SET name = EXCLUDED.name, offer_type = EXCLUDED.offer_type",
            )
            .bind(coupon_id.0)
            .bind(name)
            .bind(offer_type(benefit))
            .execute(conn)
            .await?;
        }
        CouponEvent::CodeRedeemed {
            coupon_id,
            code,
            redemption_id,
            ..
        } => {
            // The redemption is recorded before its enrollment, so rows rarely need it now; an
            // enrollment recorded first (a replay of a resumed redemption) still gets it.
            sqlx::query(
                "WITH input AS (
                     INSERT INTO enrollments_redemptions (redemption_id, coupon_id, code)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (redemption_id) DO UPDATE
                        SET coupon_id = EXCLUDED.coupon_id, code = EXCLUDED.code,
                            reversed = false)
                 UPDATE enrollments_report
                    SET coupon_code = $3,
                        coupon_name = (SELECT name FROM enrollments_coupons WHERE coupon_id = $2),
                        offer_type =
                            (SELECT offer_type FROM enrollments_coupons WHERE coupon_id = $2)
                  WHERE redemption_id = $1",
            )
            .bind(redemption_id)
            .bind(coupon_id.0)
            .bind(code)
            .execute(conn)
            .await?;
        }
        CouponEvent::RedemptionReversed { redemption_id, .. } => {
            sqlx::query(
                "WITH input AS (
                     UPDATE enrollments_redemptions SET reversed = true WHERE redemption_id = $1)
                 UPDATE enrollments_report
                    SET coupon_code = NULL, coupon_name = NULL, offer_type = NULL
                  WHERE redemption_id = $1",
            )
            .bind(redemption_id)
            .execute(conn)
            .await?;
        }
        CouponEvent::CodeAssigned { .. } | CouponEvent::CodeAssignmentRevoked { .. } => {}
    }
    Ok(())
}

fn grade_label(grade: GradeLabel) -> &'static str {
    match grade {
        GradeLabel::Pass => "Pass",
        GradeLabel::Fail => "Fail",
        GradeLabel::Audit => "Audit",
    }
}

fn progress_status(status: ProgressStatus) -> &'static str {
    match status {
        ProgressStatus::Passed => "Passed",
        ProgressStatus::Failed => "Failed",
        ProgressStatus::InProgress => "In Progress",
    }
}

async fn apply_completion(
    conn: &mut PgConnection,
    event: CompletionEvent,
) -> Result<(), ApplyError> {
    let (CompletionEvent::CourseCompleted {
        customer_id,
        learner_id,
        course_run_id,
        grade,
        percent,
        completed_at,
        progress_status: status,
    }
    | CompletionEvent::CompletionGradeChanged {
        customer_id,
        learner_id,
        course_run_id,
        grade,
        percent,
        completed_at,
        progress_status: status,
    }) = event
    else {
        return Ok(());
    };
    let passed = grade == GradeLabel::Pass;
    sqlx::query(
        "WITH input AS (
             INSERT INTO enrollments_completions
                    (customer_id, learner_id, course_run_id, has_passed, progress_status,
                     passed_date, current_grade, letter_grade)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (customer_id, learner_id, course_run_id) DO UPDATE
                SET has_passed = EXCLUDED.has_passed, progress_status = EXCLUDED.progress_status,
                    passed_date = EXCLUDED.passed_date, current_grade = EXCLUDED.current_grade,
                    letter_grade = EXCLUDED.letter_grade)
         UPDATE enrollments_report
            SET has_passed = $4, progress_status = $5, passed_date = $6, current_grade = $7,
                letter_grade = $8
          WHERE customer_id = $1 AND learner_id = $2 AND course_run_id = $3",
    )
    .bind(customer_id.0)
    .bind(learner_id.0)
    .bind(&course_run_id.0)
    .bind(passed)
    .bind(progress_status(status))
    .bind(passed.then_some(completed_at))
    .bind(percent)
    .bind(grade_label(grade))
    .execute(conn)
    .await?;
    Ok(())
}

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
