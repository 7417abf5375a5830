//! A generated event log of a realistic mix, for the benchmarks (`bench-projections`,
//! `bench-consent-history`): customers with two catalogs (one in ten with an SAP SuccessFactors
//! channel configuration), course runs, and learners who are linked, consent, enroll, get a
//! grade and complete. Rows go straight into `events`, many per
//! statement, which is far faster than commands and gives the same log.

use chrono::Utc;
use cqrs_es::DomainEvent;
use domain::channel::{ChannelEvent, ChannelSettings, SapUserType};
use domain::completion::{CompletionEvent, GradeLabel, ProgressStatus};
use domain::consent::{ConsentEvent, ConsentSource, ConsentSubject};
use domain::content::{discovery, ContentEvent, ContentMetadata, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::{ConsentEnforcement, ConsentPolicy, CustomerEvent};
use domain::enrollment::{EnrollmentEvent, EnrollmentSource};
use domain::ids::{CatalogId, ChannelConfigId, CourseKey, CourseRunId, CustomerId, LearnerId};
use domain::membership::MembershipEvent;
use sqlx::PgPool;
use store::log::LogPosition;
use uuid::Uuid;

/// One generated event: aggregate type, stream id, sequence, event type, payload.
pub type Row = (String, String, i64, String, serde_json::Value);

/// Inserts generated rows in one statement (metadata names the actor `bench`) and wakes the
/// runners as the event store does after its commits; returns the last position written.
pub async fn insert(pool: &PgPool, rows: &[Row]) -> Result<LogPosition, sqlx::Error> {
    let (mut types, mut ids, mut sequences, mut event_types, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (aggregate_type, id, sequence, event_type, payload) in rows {
        types.push(aggregate_type.clone());
        ids.push(id.clone());
        sequences.push(*sequence);
        event_types.push(event_type.clone());
        payloads.push(payload.clone());
    }
    let (tx, pos): (i64, i64) = sqlx::query_as(
        "WITH inserted AS (
            INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
            SELECT t, i, s, e, '1.0', p, '{\"actor\": \"bench\"}'::jsonb
              FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[]) AS u(t, i, s, e, p)
            RETURNING transaction_id, global_position)
         SELECT max(transaction_id::text::bigint), max(global_position) FROM inserted",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(payloads)
    .fetch_one(pool)
    .await?;
    // Wake the runners as the event store does after its commits.
    sqlx::query("SELECT pg_notify('events', '')")
        .execute(pool)
        .await?;
    Ok(LogPosition {
        transaction_id: tx,
        global_position: pos,
    })
}

/// Generates a realistic log: per customer two catalogs, and for one customer in ten an active
/// SAP SuccessFactors configuration transmitting them (content and learner data); course runs
/// with their courses; learners who are linked, consent, enroll, get a grade and complete.
pub struct Generator {
    template: ContentMetadata,
    customers: Vec<(CustomerId, Vec<CatalogId>)>,
    runs: Vec<String>,
    learners: u64,
    buffer: Vec<Row>,
}

impl Default for Generator {
    fn default() -> Self {
        Self::new()
    }
}

impl Generator {
    pub fn new() -> Self {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json"))
                .expect("fixture");
        let template =
            discovery::from_discovery(ContentType::CourseRun, &doc).expect("fixture parses");
        Self {
            template,
            customers: Vec::new(),
            runs: Vec::new(),
            learners: 0,
            buffer: Vec::new(),
        }
    }

    pub fn next_chunk(&mut self, size: usize) -> Vec<Row> {
        while self.buffer.len() < size {
            self.step();
        }
        self.buffer.drain(..size).collect()
    }

    fn push<E: DomainEvent>(&mut self, aggregate_type: &str, id: String, sequence: i64, event: E) {
        let payload = serde_json::to_value(&event).expect("events serialize");
        self.buffer.push((
            aggregate_type.to_string(),
            id,
            sequence,
            event.event_type(),
            payload,
        ));
    }

    /// One learner's story, with a new customer every 2,000 learners and a new run every 100.
    fn step(&mut self) {
        if self.learners.is_multiple_of(2000) {
            self.add_customer();
        }
        if self.learners.is_multiple_of(100) {
            self.add_run();
        }
        self.learners += 1;
        let n = self.learners as usize;
        let (customer, _) = self.customers[n % self.customers.len()].clone();
        let learner = LearnerId(Uuid::new_v4());
        let run = CourseRunId(self.runs[n % self.runs.len()].clone());
        let key = run.course_key().unwrap_or_else(|| CourseKey(run.0.clone()));
        let membership = domain::membership::membership_stream_id(learner);
        self.push(
            "learner_membership",
            membership,
            1,
            MembershipEvent::LearnerLinked {
                learner_id: learner,
                customer_id: customer,
                active: true,
            },
        );
        let subject = ConsentSubject::Course(key);
        let consent = domain::consent::consent_stream_id(customer, learner, &subject);
        self.push(
            "consent",
            consent,
            1,
            ConsentEvent::ConsentGranted {
                customer_id: customer,
                learner_id: learner,
                subject,
                source: ConsentSource::ConsentPage,
            },
        );
        let enrollment = domain::enrollment::enrollment_stream_id(customer, learner, &run);
        let mode = if n.is_multiple_of(4) {
            CourseMode::Audit
        } else {
            CourseMode::Verified
        };
        self.push(
            "enrollment",
            enrollment,
            1,
            EnrollmentEvent::Enrolled {
                customer_id: customer,
                learner_id: learner,
                course_run_id: run.clone(),
                mode,
                source: EnrollmentSource::EnterpriseApi,
                redemption_id: None,
                at: Utc::now(),
            },
        );
        let completion = domain::completion::completion_stream_id(customer, learner, &run);
        let percent = (n % 100) as f64 / 100.0;
        let passed = percent >= 0.5;
        self.push(
            "completion",
            completion.clone(),
            1,
            CompletionEvent::GradeChanged {
                customer_id: customer,
                learner_id: learner,
                course_run_id: run.clone(),
                percent,
                passed,
                passed_at: passed.then(Utc::now),
            },
        );
        if passed {
            self.push(
                "completion",
                completion,
                2,
                CompletionEvent::CourseCompleted {
                    customer_id: customer,
                    learner_id: learner,
                    course_run_id: run,
                    grade: GradeLabel::Pass,
                    percent: Some(percent),
                    completed_at: Utc::now(),
                    progress_status: ProgressStatus::Passed,
                },
            );
        }
    }

    fn add_customer(&mut self) {
        let customer = CustomerId(Uuid::new_v4());
        let stream = domain::customer::customer_stream_id(customer);
        let consent = ConsentPolicy {
            enable_data_sharing_consent: true,
            enforce_data_sharing_consent: ConsentEnforcement::AtEnrollment,
        };
        self.push(
            "customer",
            stream.clone(),
            1,
            CustomerEvent::CustomerCreated {
                customer_id: customer,
                name: format!("Customer {}", self.customers.len()),
                slug: format!("customer-{}", self.customers.len()),
                consent,
                enable_audit_enrollment: false,
                enable_audit_data_reporting: false,
            },
        );
        let mut catalogs = Vec::new();
        for (i, filter) in [serde_json::json!({}), serde_json::json!({"content_type": "courserun", "pacing_type": ["instructor_paced", "self_paced"]})].into_iter().enumerate() {
            let catalog = CatalogId(Uuid::new_v4());
            self.push("customer", stream.clone(), 2 + i as i64, CustomerEvent::CatalogAdded { customer_id: customer, catalog_id: catalog, title: format!("Catalog {i}"), content_filter: filter, enabled_course_modes: vec![CourseMode::Audit, CourseMode::Verified], publish_audit_enrollment_urls: false });
            catalogs.push(catalog);
        }
        if self.customers.len().is_multiple_of(10) {
            self.add_configuration(customer);
        }
        self.customers.push((customer, catalogs));
    }

    fn add_configuration(&mut self, customer: CustomerId) {
        let config_id = ChannelConfigId(Uuid::new_v4());
        let settings = ChannelSettings::Sap {
            base_url: "https://sap.example.com/".into(),
            company_id: format!("company-{}", self.customers.len()),
            user_id: "api".into(),
            user_type: SapUserType::User,
            provider_id: "EDX".into(),
            additional_locales: Vec::new(),
            transmit_total_hours: false,
            prevent_self_submit_grades: false,
        };
        self.push(
            "channel_configuration",
            domain::channel::channel_stream_id(config_id),
            1,
            ChannelEvent::ChannelConfigurationCreated {
                config_id,
                customer_id: customer,
                display_name: "SuccessFactors".into(),
                active: true,
                dry_run: false,
                catalogs_to_transmit: Vec::new(),
                transmission_chunk_size: 1,
                disable_learner_data: false,
                idp_id: None,
                settings,
                secrets: Default::default(),
            },
        );
    }

    fn add_run(&mut self) {
        let n = self.runs.len();
        let mut run = self.template.clone();
        run.key = format!("course-v1:Org{}+Course{n}+Run", n % 50);
        run.course_key = Some(format!("Org{}+Course{n}", n % 50));
        run.title = format!("Course {n}");
        let stream = domain::content::content_stream_id(ContentType::CourseRun, &run.key);
        self.runs.push(run.key.clone());
        self.push(
            "content_item",
            stream,
            1,
            ContentEvent::ContentPublished { metadata: run },
        );
    }
}
