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
//!
//! A batch is applied in memory, in four steps, so that its outcome is that of applying its
//! events one by one, in far fewer statements:
//! 1. decode the events the read model uses into [`input::Input`]s (a payload that does not
//!    decode stops the projection at its event);
//! 2. load the current rows of the keys they read ([`input::Needs`]), one query per table: the
//!    report rows of the enrollments, customer x learner pairs and redemptions named; the input
//!    rows an `Enrolled` reads (unless an earlier event of the batch wrote them);
//! 3. fold the inputs over those rows in log order ([`fold`]);
//! 4. write back what changed ([`tables`]), one statement per table. A customer's name and a
//!    course run's metadata may reach any number of report rows: those are updated in SQL, one
//!    statement for all the customers (and one for all the runs) the batch changed, before the
//!    rows held in memory are written.
//!
//! A rebuild from empty tables with one read of the log folds the whole log as one such batch
//! ([`FromZero`]): nothing is loaded, since every row comes from an earlier event, and each
//! table is written once at the end.
//!
//! The queries of the report are in [`query`].

mod fold;
mod input;
mod query;
mod tables;

pub use query::{
    enrollments_of_learner, report, report_stream, ReportChunks, ReportFilter, ReportRow,
    REPORT_COLUMNS,
};

use crate::projection::{ApplyError, Fold, Projection, WriteMode};
use async_trait::async_trait;
use sqlx::PgConnection;
use store::log::LoggedEvent;

/// The read model of enrollments and the progress report (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Enrollments;

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

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[
            "enrollment",
            "customer",
            "content_item",
            "consent",
            "coupon",
            "completion",
        ])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event])
            .await
            .map_err(|(_, error)| error)
    }

    /// Decodes, loads, folds and writes (see the module doc). A database error is put on the
    /// batch's first event: no single event can be blamed for it, and nothing of the batch is
    /// committed.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        let mut inputs = Vec::new();
        for (index, event) in events.iter().enumerate() {
            if let Some(input) = input::decode_input(event).map_err(|error| (index, error))? {
                inputs.push(input);
            }
        }
        if inputs.is_empty() {
            return Ok(());
        }
        let mut batch = fold::Batch::load(conn, &input::Needs::of(&inputs))
            .await
            .map_err(|error| (0, error.into()))?;
        for input in inputs {
            batch.apply(input);
        }
        batch
            .write(conn, WriteMode::Upsert)
            .await
            .map_err(|error| (0, error.into()))
    }

    fn fold_from_zero(&self) -> Option<Box<dyn Fold>> {
        Some(Box::new(FromZero(fold::Batch::default())))
    }
}

/// The log folded from its first event over empty tables: one batch that reads nothing back,
/// since every row it needs comes from an earlier event it folded.
struct FromZero(fold::Batch);

#[async_trait]
impl Fold for FromZero {
    fn apply(&mut self, events: &[&LoggedEvent]) -> Result<(), (usize, ApplyError)> {
        for (index, event) in events.iter().enumerate() {
            if let Some(input) = input::decode_input(event).map_err(|error| (index, error))? {
                self.0.apply(input);
            }
        }
        Ok(())
    }

    fn held(&self) -> usize {
        self.0.held()
    }

    async fn write(self: Box<Self>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.0.write(conn, WriteMode::Insert).await
    }
}
