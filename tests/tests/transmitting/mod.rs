//! Helpers shared by the transmitter tests: worker options for tests, LMS facts (consent,
//! enrollment, passing grade), projecting, reading rows and the audit.

#![allow(dead_code)]

use chrono::{Duration as Days, Utc};
use domain::completion::{completion_stream_id, Completion, CompletionCommand, LmsFact};
use domain::consent::{
    consent_stream_id, Action, Consent, ConsentCommand, ConsentSource, ConsentSubject,
};
use domain::course_mode::CourseMode;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CourseKey, CourseRunId, LearnerId};
use e2e_tests::{meta, project, World, RUN};
use projections::read_models::consent::ConsentProjection;
use projections::read_models::outbox::{items_of_config, ItemKind, Outbox, OutboxItem};
use projections::read_models::transmissions::{attempts_of_item, Transmissions};
use sqlx::PgPool;
use std::time::Duration;
use store::secrets::SecretBox;
use transmitters::WorkerOptions;
use uuid::Uuid;

pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn secret_box() -> SecretBox {
    SecretBox::from_hex(KEY_HEX).unwrap()
}

pub fn options() -> WorkerOptions {
    WorkerOptions {
        request_timeout: Duration::from_millis(500),
        lease: Duration::from_secs(30),
        secrets: Some(secret_box()),
        lms_domain: "lms.example.com".into(),
        config_ttl: Duration::ZERO,
        ..WorkerOptions::default()
    }
}

pub async fn consent(world: &World, learner: LearnerId, action: Action) {
    let subject = ConsentSubject::Course(CourseKey("edX+DemoX".into()));
    let command = ConsentCommand {
        customer_id: world.customer,
        learner_id: learner,
        subject: subject.clone(),
        source: ConsentSource::Api,
        action,
    };
    world
        .store
        .execute::<Consent>(
            &consent_stream_id(world.customer, learner, &subject),
            command,
            &(),
            &meta(),
        )
        .await
        .unwrap();
}

/// Enrolls the learner (verified) and records a passing grade of `percent`.
pub async fn complete_course(world: &World, learner: LearnerId, percent: f64) {
    let run = CourseRunId(RUN.into());
    let enroll = EnrollmentCommand::Enroll {
        customer_id: world.customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode: CourseMode::Verified,
        source: EnrollmentSource::CustomerAdmin,
        redemption_id: None,
        at: Utc::now(),
    };
    world
        .store
        .execute::<Enrollment>(
            &enrollment_stream_id(world.customer, learner, &run),
            enroll,
            &(),
            &meta(),
        )
        .await
        .unwrap();
    let grade = CompletionCommand {
        customer_id: world.customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode: CourseMode::Verified,
        at: Utc::now(),
        fact: LmsFact::RecordGrade {
            percent,
            passed: true,
            passed_at: Some(Utc::now() - Days::days(1)),
        },
    };
    world
        .store
        .execute::<Completion>(
            &completion_stream_id(world.customer, learner, &run),
            grade,
            &(),
            &meta(),
        )
        .await
        .unwrap();
}

/// `n` learners (LMS ids from `first`) who consent and complete the course.
pub async fn completing_learners(world: &World, first: i64, n: i64) -> Vec<LearnerId> {
    let mut learners = Vec::new();
    for id in first..first + n {
        let learner = world.learner(id).await;
        consent(world, learner, Action::Grant).await;
        complete_course(world, learner, 0.8).await;
        learners.push(learner);
    }
    learners
}

pub async fn project_all(pool: &PgPool) {
    project(pool, &ConsentProjection).await;
    project(pool, &Outbox::default()).await;
}

pub async fn learner_rows(pool: &PgPool, config: Uuid) -> Vec<OutboxItem> {
    items_of_config(pool, config)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.kind == ItemKind::Learner)
        .collect()
}

/// The audit statuses of an item, in order.
pub async fn audit(pool: &PgPool, item: Uuid) -> Vec<String> {
    project(pool, &Transmissions).await;
    attempts_of_item(pool, item)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.status)
        .collect()
}

/// Makes every pending row due now, as if its backoff had passed.
pub async fn time_passes(pool: &PgPool) {
    sqlx::query("UPDATE outbox_items SET next_attempt_at = now() WHERE status = 'pending'")
        .execute(pool)
        .await
        .unwrap();
}

/// A channel configuration to create for the world's customer.
pub struct NewConfig<'a> {
    pub settings: domain::channel::ChannelSettings,
    /// Secrets by name, stored encrypted with [`secret_box`].
    pub secrets: &'a [(&'a str, &'a str)],
    pub chunk_size: u32,
    pub dry_run: bool,
    pub idp_id: Option<&'a str>,
}

/// Creates an active configuration of the world's customer; returns its id.
pub async fn configure(world: &World, config: NewConfig<'_>) -> Uuid {
    use domain::channel::{channel_stream_id, ChannelCommand, ChannelConfiguration};
    let secrets = secret_box();
    let mut refs = std::collections::BTreeMap::new();
    for (name, value) in config.secrets {
        let reference = secrets.put(world.store.pool(), value).await.unwrap();
        refs.insert(name.to_string(), reference);
    }
    let config_id = domain::ids::ChannelConfigId(Uuid::new_v4());
    let create = ChannelCommand::CreateChannelConfiguration {
        config_id,
        customer_id: world.customer,
        display_name: config.settings.channel().as_str().into(),
        active: true,
        dry_run: config.dry_run,
        catalogs_to_transmit: vec![],
        transmission_chunk_size: config.chunk_size,
        disable_learner_data: false,
        idp_id: config.idp_id.map(str::to_string),
        settings: config.settings,
        secrets: refs,
    };
    world
        .store
        .execute::<ChannelConfiguration>(&channel_stream_id(config_id), create, &(), &meta())
        .await
        .unwrap();
    config_id.0
}
