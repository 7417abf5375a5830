//! Consent state: the current data sharing consent of each customer x learner x course key (or
//! program), and the answer edX's consent API gives (`exists`, `consent_provided`,
//! `consent_required`).
//!
//! edX's rules (`consent/mixins.py`):
//! - `consent_required`: not granted, and the customer enforces consent `at_enrollment` (consent
//!   enabled and not `externally_managed`), and one of the customer's catalogs contains the
//!   course. `externally_managed` never requires it here.
//! - `exists`: a consent record exists, or the learner has an enterprise enrollment in the course.
//! - A course-run id resolves to its course key: one course-level record answers every run.
//! - A program is granted when every course in it is granted, exists when any course's record
//!   exists, and requires consent when any course requires it (edX's `ProxyDataSharingConsent`).
//!   A program whose courses are unknown is neither granted nor required.
//! - An unknown customer: nothing exists, nothing is provided, nothing is required.
//!
//! A batch folds into the rows it leaves (the last word per key wins) and writes each table in
//! one statement; a rebuild from the empty tables with one read of the log folds the whole log
//! so, writing each table once.

use crate::copy::CopyRows;
use crate::projection::{column, decode, in_key_order, ApplyError, Fold, Projection, WriteMode};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::consent::{ConsentEvent, ConsentSubject};
use domain::content::{ContentEvent, ContentType};
use domain::customer::{ConsentEnforcement, ConsentPolicy, CustomerEvent};
use domain::enrollment::EnrollmentEvent;
use domain::ids::{course_key_of_run, CourseKey, CustomerId, LearnerId};
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::{PgConnection, PgPool};
use std::sync::LazyLock;
use store::log::LoggedEvent;
use uuid::Uuid;

/// The consent read model.
pub struct ConsentProjection;

/// The records table and the columns every write of it fills.
const RECORDS: &str = "consent_records
    (customer_id, learner_id, subject_type, subject_key, granted, source, updated_at)";

/// The enterprise enrollments table and its columns.
const ENROLLMENTS: &str = "consent_enrollments (customer_id, learner_id, course_key)";

#[async_trait]
impl Projection for ConsentProjection {
    fn name(&self) -> &'static str {
        "consent"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "consent_records",
            "consent_customers",
            "consent_enrollments",
            "consent_programs",
        ]
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&["consent", "customer", "enrollment", "content_item"])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event])
            .await
            .map_err(|(_, error)| error)
    }

    /// Folds the batch into the rows it leaves behind (the last word per key wins, as it would
    /// event by event), then writes each table in one statement.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        let mut changes = Changes::default();
        for (index, event) in events.iter().enumerate() {
            changes.add(event).map_err(|error| (index, error))?;
        }
        changes
            .write_tables(conn, WriteMode::Upsert)
            .await
            .map_err(|error| (0, error.into()))
    }

    fn fold_from_zero(&self) -> Option<Box<dyn Fold>> {
        Some(Box::<Changes>::default())
    }
}

/// The whole log's changes from the empty tables: the same last word per key, written once.
#[async_trait]
impl Fold for Changes {
    fn apply(&mut self, events: &[&LoggedEvent]) -> Result<(), (usize, ApplyError)> {
        for (index, event) in events.iter().enumerate() {
            self.add(event).map_err(|error| (index, error))?;
        }
        Ok(())
    }

    fn held(&self) -> usize {
        self.records.len() + self.customers.len() + self.enrollments.len() + self.programs.len()
    }

    async fn write(self: Box<Self>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        (*self).write_tables(conn, WriteMode::Insert).await
    }
}

/// A consent record's key: customer, learner, subject type and key.
type RecordKey = (Uuid, Uuid, &'static str, String);
/// A consent record's state: granted, source, when.
type RecordState = (bool, String, DateTime<Utc>);

/// What a batch of events leaves in each table.
#[derive(Default)]
struct Changes {
    records: FxHashMap<RecordKey, RecordState>,
    customers: FxHashMap<Uuid, (bool, &'static str)>,
    enrollments: FxHashSet<(Uuid, Uuid, String)>,
    programs: FxHashMap<String, Vec<String>>,
}

impl Changes {
    fn add(&mut self, event: &LoggedEvent) -> Result<(), ApplyError> {
        match event.aggregate_type.as_str() {
            "consent" => self.consent(decode(event)?, event.recorded_at),
            "customer" => self.customer(decode(event)?),
            "enrollment" => self.enrollment(decode(event)?),
            "content_item" => self.content(decode(event)?),
            _ => {}
        }
        Ok(())
    }

    fn consent(&mut self, event: ConsentEvent, at: DateTime<Utc>) {
        let (customer_id, learner_id, subject, source, granted) = match event {
            ConsentEvent::ConsentGranted {
                customer_id,
                learner_id,
                subject,
                source,
            } => (customer_id, learner_id, subject, source, true),
            ConsentEvent::ConsentDeclined {
                customer_id,
                learner_id,
                subject,
                source,
            }
            | ConsentEvent::ConsentRevoked {
                customer_id,
                learner_id,
                subject,
                source,
            } => (customer_id, learner_id, subject, source, false),
        };
        let (subject_type, subject_key) = subject_parts(&subject);
        let source = serde_json::to_value(source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.records.insert(
            (customer_id.0, learner_id.0, subject_type, subject_key),
            (granted, source, at),
        );
    }

    fn customer(&mut self, event: CustomerEvent) {
        let (customer_id, policy) = match event {
            CustomerEvent::CustomerCreated {
                customer_id,
                consent,
                ..
            } => (customer_id, consent),
            CustomerEvent::CustomerUpdated {
                customer_id,
                consent: Some(consent),
                ..
            } => (customer_id, consent),
            _ => return,
        };
        self.customers.insert(
            customer_id.0,
            (policy.enable_data_sharing_consent, enforcement_name(policy)),
        );
    }

    fn enrollment(&mut self, event: EnrollmentEvent) {
        if let EnrollmentEvent::Enrolled {
            customer_id,
            learner_id,
            course_run_id,
            ..
        } = event
        {
            let course_key = course_key_of_run(&course_run_id.0).map_or(course_run_id.0, |k| k.0);
            self.enrollments
                .insert((customer_id.0, learner_id.0, course_key));
        }
    }

    fn content(&mut self, event: ContentEvent) {
        let (ContentEvent::ContentPublished { metadata }
        | ContentEvent::ContentUpdated { metadata }) = event
        else {
            return;
        };
        if metadata.content_type == ContentType::Program {
            self.programs.insert(
                metadata.key.clone(),
                course_keys(&metadata.program_course_keys),
            );
        }
    }

    async fn write_tables(
        self,
        conn: &mut PgConnection,
        mode: WriteMode,
    ) -> Result<(), sqlx::Error> {
        let records = in_key_order(self.records);
        match mode {
            WriteMode::Insert => {
                let mut rows = CopyRows::start(conn, RECORDS, 7).await?;
                for ((customer, learner, subject_type, key), (granted, source, at)) in &records {
                    rows.row()
                        .value(customer)
                        .value(learner)
                        .value(subject_type)
                        .value(key)
                        .value(granted)
                        .value(source)
                        .value(at);
                    rows.send_full().await?;
                }
                rows.finish().await?;
            }
            WriteMode::Upsert if !records.is_empty() => {
                sqlx::query(&format!(
                    "INSERT INTO {RECORDS}
                     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[],
                                          $5::bool[], $6::text[], $7::timestamptz[])
                     ON CONFLICT (customer_id, learner_id, subject_type, subject_key) DO UPDATE
                        SET granted = EXCLUDED.granted, source = EXCLUDED.source,
                            updated_at = EXCLUDED.updated_at"
                ))
                .bind(column(&records, |((customer, ..), _)| *customer))
                .bind(column(&records, |((_, learner, ..), _)| *learner))
                .bind(column(&records, |((.., subject_type, _), _)| *subject_type))
                .bind(column(&records, |((.., key), _)| key.as_str()))
                .bind(column(&records, |(_, (granted, ..))| *granted))
                .bind(column(&records, |(_, (_, source, _))| source.as_str()))
                .bind(column(&records, |(_, (.., at))| *at))
                .execute(&mut *conn)
                .await?;
            }
            WriteMode::Upsert => {}
        }
        if !self.customers.is_empty() {
            let (ids, (enabled, enforce)): (Vec<Uuid>, (Vec<bool>, Vec<&str>)) =
                self.customers.into_iter().unzip();
            sqlx::query(&format!(
                "INSERT INTO consent_customers
                        (customer_id, enable_data_sharing_consent, enforce_data_sharing_consent)
                 SELECT * FROM UNNEST($1::uuid[], $2::bool[], $3::text[])
                 {}",
                mode.on_conflict(
                    "ON CONFLICT (customer_id) DO UPDATE
                        SET enable_data_sharing_consent = EXCLUDED.enable_data_sharing_consent,
                            enforce_data_sharing_consent = EXCLUDED.enforce_data_sharing_consent"
                )
            ))
            .bind(ids)
            .bind(enabled)
            .bind(enforce)
            .execute(&mut *conn)
            .await?;
        }
        let mut enrollments: Vec<_> = self.enrollments.into_iter().collect();
        enrollments.sort_unstable();
        match mode {
            WriteMode::Insert => {
                let mut rows = CopyRows::start(conn, ENROLLMENTS, 3).await?;
                for (customer, learner, course_key) in &enrollments {
                    rows.row().value(customer).value(learner).value(course_key);
                    rows.send_full().await?;
                }
                rows.finish().await?;
            }
            WriteMode::Upsert if !enrollments.is_empty() => {
                sqlx::query(&format!(
                    "INSERT INTO {ENROLLMENTS}
                     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[])
                     ON CONFLICT DO NOTHING"
                ))
                .bind(column(&enrollments, |(customer, ..)| *customer))
                .bind(column(&enrollments, |(_, learner, _)| *learner))
                .bind(column(&enrollments, |(.., course_key)| course_key.as_str()))
                .execute(&mut *conn)
                .await?;
            }
            WriteMode::Upsert => {}
        }
        if !self.programs.is_empty() {
            let (uuids, keys): (Vec<String>, Vec<serde_json::Value>) = self
                .programs
                .into_iter()
                .map(|(uuid, keys)| (uuid, serde_json::json!(keys)))
                .unzip();
            sqlx::query(&format!(
                "INSERT INTO consent_programs (program_uuid, course_keys)
                 SELECT * FROM UNNEST($1::text[], $2::jsonb[])
                 {}",
                mode.on_conflict(
                    "ON CONFLICT (program_uuid) DO UPDATE SET course_keys = EXCLUDED.course_keys"
                )
            ))
            .bind(uuids)
            .bind(keys)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

fn subject_parts(subject: &ConsentSubject) -> (&'static str, String) {
    match subject {
        ConsentSubject::Course(key) => ("course", key.0.clone()),
        ConsentSubject::Program(uuid) => ("program", uuid.to_string()),
    }
}

fn enforcement_name(policy: ConsentPolicy) -> &'static str {
    match policy.enforce_data_sharing_consent {
        ConsentEnforcement::AtEnrollment => "at_enrollment",
        ConsentEnforcement::ExternallyManaged => "externally_managed",
    }
}

/// A program's courses as course keys (discovery sometimes lists run ids), without repeats.
fn course_keys(keys: &[String]) -> Vec<String> {
    let mut courses: Vec<String> = keys
        .iter()
        .map(|k| course_key_of_run(k).map_or_else(|| k.clone(), |c| c.0))
        .collect();
    courses.sort();
    courses.dedup();
    courses
}

/// What the consent API is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentQuery {
    /// A course key or a course-run id (resolved to its course key).
    Course(String),
    Program(Uuid),
}

/// edX's serialized consent answer, without the echoed request parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsentAnswer {
    pub exists: bool,
    pub consent_provided: bool,
    pub consent_required: bool,
}

/// The consent answer for a customer x learner x course or program (see the module doc).
pub async fn answer(
    pool: &PgPool,
    customer: CustomerId,
    learner: LearnerId,
    query: &ConsentQuery,
) -> Result<ConsentAnswer, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let policy: Option<(bool, String)> = sqlx::query_as(
        "SELECT enable_data_sharing_consent, enforce_data_sharing_consent
           FROM consent_customers WHERE customer_id = $1",
    )
    .bind(customer.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((enabled, enforce)) = policy else {
        return Ok(ConsentAnswer::default());
    };
    let enforces = enabled && enforce == "at_enrollment";
    match query {
        ConsentQuery::Course(course_id) => {
            let key = course_key_of_run(course_id).unwrap_or_else(|| CourseKey(course_id.clone()));
            course_answer(&mut conn, customer, learner, &key.0, enforces).await
        }
        ConsentQuery::Program(uuid) => {
            let keys = program_course_keys(&mut *conn, *uuid).await?;
            if keys.is_empty() {
                return Ok(ConsentAnswer::default());
            }
            let mut program = ConsentAnswer {
                exists: false,
                consent_provided: true,
                consent_required: false,
            };
            for key in &keys {
                let child = course_answer(&mut conn, customer, learner, key, enforces).await?;
                program.exists |= child.exists;
                program.consent_provided &= child.consent_provided;
                program.consent_required |= child.consent_required;
            }
            Ok(program)
        }
    }
}

/// The course keys of a program as the consent read model knows them; empty when the program
/// is unknown.
pub async fn program_course_keys<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    program: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    let keys: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT course_keys FROM consent_programs WHERE program_uuid = $1")
            .bind(program.to_string())
            .fetch_optional(executor)
            .await?;
    Ok(keys
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

async fn course_answer(
    conn: &mut PgConnection,
    customer: CustomerId,
    learner: LearnerId,
    course_key: &str,
    enforces: bool,
) -> Result<ConsentAnswer, sqlx::Error> {
    let (record, enrolled): (Option<bool>, bool) = sqlx::query_as(
        "SELECT (SELECT granted FROM consent_records
                  WHERE customer_id = $1 AND learner_id = $2
                    AND subject_type = 'course' AND subject_key = $3),
                EXISTS (SELECT 1 FROM consent_enrollments
                         WHERE customer_id = $1 AND learner_id = $2 AND course_key = $3)",
    )
    .bind(customer.0)
    .bind(learner.0)
    .bind(course_key)
    .fetch_one(&mut *conn)
    .await?;
    let granted = record == Some(true);
    let required = !granted
        && enforces
        && super::catalog::customer_contains_course(&mut *conn, customer.0, course_key).await?;
    Ok(ConsentAnswer {
        exists: record.is_some() || enrolled,
        consent_provided: granted,
        consent_required: required,
    })
}

/// One consent record as the read model holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecordRow {
    /// `course` or `program`.
    pub subject_type: String,
    /// The course key or program uuid.
    pub subject_key: String,
    pub granted: bool,
}

/// Every consent record of a learner with a customer (edX's `data_sharing_consent_records`).
pub async fn records_of(
    pool: &PgPool,
    customer: CustomerId,
    learner: LearnerId,
) -> Result<Vec<ConsentRecordRow>, sqlx::Error> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT subject_type, subject_key, granted FROM consent_records
          WHERE customer_id = $1 AND learner_id = $2 ORDER BY subject_type, subject_key",
    )
    .bind(customer.0)
    .bind(learner.0)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(subject_type, subject_key, granted)| ConsentRecordRow {
            subject_type,
            subject_key,
            granted,
        })
        .collect())
}

/// The statement of [`answer_for_username`] for a course, built once.
static COURSE_ANSWER_SQL: LazyLock<String> = LazyLock::new(|| {
    // The learner's record and enrollment are correlated subqueries, so each is one lookup by
    // the whole primary key once the username is resolved: as a join, the planner may read
    // every record of the customer for the course and filter by learner afterwards. OFFSET 0
    // keeps `granted` computed once, as the catalog check depends on it.
    format!(
        "SELECT known, granted, enrolled,
                CASE WHEN enforces AND granted IS NOT TRUE THEN ({contains}) ELSE false END
           FROM (SELECT p.customer_id IS NOT NULL AS known,
                        p.enable_data_sharing_consent
                          AND p.enforce_data_sharing_consent = 'at_enrollment' AS enforces,
                        (SELECT r.granted FROM consent_records r
                          WHERE r.customer_id = $1 AND r.learner_id = l.learner_id
                            AND r.subject_type = 'course' AND r.subject_key = $2[1]) AS granted,
                        EXISTS (SELECT 1 FROM consent_enrollments e
                                 WHERE e.customer_id = $1 AND e.learner_id = l.learner_id
                                   AND e.course_key = $2[1]) AS enrolled
                   FROM (SELECT 1) AS one
                   LEFT JOIN consent_customers p ON p.customer_id = $1
                   LEFT JOIN learners l ON l.username = $3
                 OFFSET 0) AS facts",
        contains = super::catalog::customer_contains_sql()
    )
});

/// [`answer`] for a learner named by LMS username (the consent API's key; an unknown username
/// is a learner without records). A course is answered in one statement, the catalog check
/// included (run only when consent is enforced and not granted): the consent API is the LMS's
/// hottest call.
pub async fn answer_for_username(
    pool: &PgPool,
    customer: CustomerId,
    username: &str,
    query: &ConsentQuery,
) -> Result<ConsentAnswer, sqlx::Error> {
    let course_id = match query {
        ConsentQuery::Course(course_id) => course_id,
        ConsentQuery::Program(_) => {
            let learner: Option<Uuid> =
                sqlx::query_scalar("SELECT learner_id FROM learners WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await?;
            let learner = LearnerId(learner.unwrap_or(Uuid::nil()));
            return answer(pool, customer, learner, query).await;
        }
    };
    let key = course_key_of_run(course_id).unwrap_or_else(|| CourseKey(course_id.clone()));
    let (known, granted, enrolled, required): (bool, Option<bool>, bool, bool) =
        sqlx::query_as(&COURSE_ANSWER_SQL)
            .bind(customer.0)
            .bind(vec![key.0])
            .bind(username)
            .fetch_one(pool)
            .await?;
    if !known {
        return Ok(ConsentAnswer::default());
    }
    let provided = granted == Some(true);
    Ok(ConsentAnswer {
        exists: granted.is_some() || enrolled,
        consent_provided: provided,
        consent_required: required,
    })
}
