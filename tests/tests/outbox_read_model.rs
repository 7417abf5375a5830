//! The integration outbox: commands through the store, then the projection, then the queue as
//! workers see it. Learner rules (consent, audit, membership, grade changes per channel),
//! content rules (coalescing, scope changes, remote holdings), configuration lifecycle, the
//! worker functions (claim, complete, fail, dead letter, requeue, SKIP LOCKED), and rebuild.

use chrono::{Duration as Days, Utc};
use domain::channel::{
    channel_stream_id, Channel, ChannelCommand, ChannelConfiguration, ChannelSettings, SapUserType,
};
use domain::completion::{completion_stream_id, Completion, CompletionCommand, LmsFact};
use domain::consent::{
    consent_stream_id, Action, Consent, ConsentCommand, ConsentSource, ConsentSubject,
};
use domain::content::{discovery, ContentCommand, ContentItem, ContentMetadata, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::{customer_stream_id, ConsentPolicy, Customer, CustomerCommand};
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CatalogId, ChannelConfigId, CourseKey, CourseRunId, LearnerId};
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipCommand};
use e2e_tests::{consent_not_required, consent_required, meta, project, World, RUN};
use projections::read_models::outbox::{
    claim, complete, complete_many, fail, items_of_config, pending_counts, remote_content, requeue,
    FailOutcome, ItemAction, ItemKind, ItemStatus, Outbox, OutboxItem,
};
use projections::runner::RunnerOptions;
use projections::Projection;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

/// The fixture's course run under another key (of the course the key names) and title.
fn run(key: &str, title: &str) -> ContentMetadata {
    let doc: Value =
        serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json")).unwrap();
    let mut metadata = discovery::from_discovery(ContentType::CourseRun, &doc).unwrap();
    metadata.key = key.to_string();
    metadata.course_key = domain::ids::course_key_of_run(key).map(|k| k.0);
    metadata.title = title.to_string();
    metadata
}

async fn publish(world: &World, metadata: ContentMetadata) {
    let stream = domain::content::content_stream_id(metadata.content_type, &metadata.key);
    let at = Utc::now();
    world
        .store
        .execute::<ContentItem>(
            &stream,
            ContentCommand::PublishContent { metadata, at },
            &(),
            &meta(),
        )
        .await
        .unwrap();
}

async fn retire(world: &World, key: &str) {
    let stream = domain::content::content_stream_id(ContentType::CourseRun, key);
    let retire = ContentCommand::RetireContent {
        content_type: ContentType::CourseRun,
        key: key.to_string(),
        at: Utc::now(),
    };
    world
        .store
        .execute::<ContentItem>(&stream, retire, &(), &meta())
        .await
        .unwrap();
}

async fn customer_command(world: &World, command: CustomerCommand) {
    world
        .store
        .execute::<Customer>(&customer_stream_id(world.customer), command, &(), &meta())
        .await
        .unwrap();
}

async fn add_catalog(world: &World, filter: Value) -> CatalogId {
    let catalog_id = CatalogId(Uuid::new_v4());
    let add = CustomerCommand::AddCatalog {
        catalog_id,
        title: "Filtered".into(),
        content_filter: filter,
        enabled_course_modes: vec![CourseMode::Verified],
        publish_audit_enrollment_urls: false,
    };
    customer_command(world, add).await;
    catalog_id
}

async fn set_filter(world: &World, catalog_id: CatalogId, filter: Value) {
    let update = CustomerCommand::UpdateCatalog {
        catalog_id,
        title: None,
        content_filter: Some(filter),
        enabled_course_modes: None,
        publish_audit_enrollment_urls: None,
    };
    customer_command(world, update).await;
}

fn settings(channel: Channel) -> ChannelSettings {
    match channel {
        Channel::Sap => ChannelSettings::Sap {
            base_url: "https://sap.example.com/".into(),
            company_id: "acme".into(),
            user_id: "api".into(),
            user_type: SapUserType::User,
            provider_id: "EDX".into(),
            additional_locales: Vec::new(),
            transmit_total_hours: false,
            prevent_self_submit_grades: false,
        },
        Channel::Degreed2 => ChannelSettings::Degreed2 {
            base_url: "https://degreed.example.com".into(),
            token_fetch_base_url: None,
        },
        Channel::Csod => ChannelSettings::Csod {
            base_url: "https://csod.example.com".into(),
        },
        Channel::Xapi => ChannelSettings::Xapi {
            endpoint: "https://lrs.example.com".into(),
            version: "1.0.3".into(),
        },
    }
}

/// Creates an active configuration of the world's customer.
async fn configure(world: &World, channel: Channel, catalogs: Vec<CatalogId>) -> Uuid {
    let config_id = ChannelConfigId(Uuid::new_v4());
    let create = ChannelCommand::CreateChannelConfiguration {
        config_id,
        customer_id: world.customer,
        display_name: format!("{channel} test"),
        active: true,
        dry_run: false,
        catalogs_to_transmit: catalogs,
        transmission_chunk_size: 1,
        disable_learner_data: false,
        idp_id: None,
        settings: settings(channel),
        secrets: Default::default(),
    };
    channel_command(world, config_id.0, create).await;
    config_id.0
}

async fn channel_command(world: &World, config_id: Uuid, command: ChannelCommand) {
    let stream = channel_stream_id(ChannelConfigId(config_id));
    world
        .store
        .execute::<ChannelConfiguration>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

/// An update of a configuration's catalogs or learner data switch, the rest unchanged.
fn update_config(
    config_id: Uuid,
    catalogs_to_transmit: Option<Vec<CatalogId>>,
    disable_learner_data: Option<bool>,
) -> ChannelCommand {
    ChannelCommand::UpdateChannelConfiguration {
        config_id: ChannelConfigId(config_id),
        display_name: None,
        dry_run: None,
        catalogs_to_transmit,
        transmission_chunk_size: None,
        disable_learner_data,
        idp_id: None,
        settings: None,
    }
}

async fn consent(world: &World, learner: LearnerId, action: Action) {
    let subject = ConsentSubject::Course(CourseKey("edX+DemoX".into()));
    let stream = consent_stream_id(world.customer, learner, &subject);
    let command = ConsentCommand {
        customer_id: world.customer,
        learner_id: learner,
        subject,
        source: ConsentSource::Api,
        action,
    };
    world
        .store
        .execute::<Consent>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

async fn enroll(world: &World, learner: LearnerId, mode: CourseMode) {
    let command = EnrollmentCommand::Enroll {
        customer_id: world.customer,
        learner_id: learner,
        course_run_id: CourseRunId(RUN.into()),
        mode,
        source: EnrollmentSource::CustomerAdmin,
        redemption_id: None,
        at: Utc::now(),
    };
    let stream = enrollment_stream_id(world.customer, learner, &CourseRunId(RUN.into()));
    world
        .store
        .execute::<Enrollment>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

async fn fact(world: &World, learner: LearnerId, mode: CourseMode, fact: LmsFact) {
    let run = CourseRunId(RUN.into());
    let command = CompletionCommand {
        customer_id: world.customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode,
        at: Utc::now(),
        fact,
    };
    let stream = completion_stream_id(world.customer, learner, &run);
    world
        .store
        .execute::<Completion>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

fn grade(percent: f64) -> LmsFact {
    LmsFact::RecordGrade {
        percent,
        passed: true,
        passed_at: Some(Utc::now() - Days::days(1)),
    }
}

/// Enrolls the learner in verified mode and completes the course with a passing grade.
async fn complete_course(world: &World, learner: LearnerId) {
    enroll(world, learner, CourseMode::Verified).await;
    fact(world, learner, CourseMode::Verified, grade(0.9)).await;
}

async fn unlink(world: &World, learner: LearnerId) {
    let command = MembershipCommand::UnlinkLearner {
        learner_id: learner,
        customer_id: world.customer,
        is_relinkable: true,
    };
    world
        .store
        .execute::<LearnerMemberships>(&membership_stream_id(learner), command, &(), &meta())
        .await
        .unwrap();
}

async fn items(pool: &PgPool, config_id: Uuid, kind: ItemKind) -> Vec<OutboxItem> {
    items_of_config(pool, config_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|item| item.kind == kind)
        .collect()
}

async fn learner_rows(pool: &PgPool, config_id: Uuid) -> Vec<OutboxItem> {
    project(pool, &Outbox::default()).await;
    items(pool, config_id, ItemKind::Learner).await
}

async fn content_rows(pool: &PgPool, config_id: Uuid) -> Vec<OutboxItem> {
    project(pool, &Outbox::default()).await;
    items(pool, config_id, ItemKind::Content).await
}

fn statuses(rows: &[OutboxItem]) -> Vec<ItemStatus> {
    rows.iter().map(|row| row.status).collect()
}

/// Claims everything due for `owner` and confirms it all.
async fn send_all(pool: &PgPool, owner: &str) -> Vec<OutboxItem> {
    let claimed = claim(pool, owner, 100, LEASE).await.unwrap();
    for item in &claimed {
        assert!(complete(pool, item.item_id, owner).await.unwrap());
    }
    claimed
}

// Learner rows ----------------------------------------------------------------------------------

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn granted_consent_queues_a_pending_completion(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    consent(&world, learner, Action::Grant).await;
    complete_course(&world, learner).await;

    let rows = learner_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Pending]);
    let row = &rows[0];
    assert_eq!(row.action, ItemAction::Completion);
    assert_eq!(row.learner_id, Some(learner.0));
    assert_eq!(row.course_run_id.as_deref(), Some(RUN));
    assert_eq!(row.payload["grade"], "Pass");
    assert_eq!(row.payload["percent"], 0.9);
    assert_eq!(row.payload["progress_status"], "Passed");
    assert_eq!(row.payload["course_key"], "edX+DemoX");
    assert_eq!(row.payload["mode"], "verified");
    assert!(row.payload["completed_at"].is_string());
    assert_eq!((row.attempts, row.version), (0, 1));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn declined_consent_queues_nothing(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    consent(&world, learner, Action::Decline).await;
    complete_course(&world, learner).await;

    assert!(learner_rows(&pool, config).await.is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn declining_while_the_row_is_held_cancels_it(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Held]
    );

    consent(&world, learner, Action::Decline).await;
    let rows = learner_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Cancelled]);
    assert_eq!(rows[0].cancel_reason.as_deref(), Some("consent declined"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn revoked_consent_cancels_pending_learner_row(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    consent(&world, learner, Action::Grant).await;
    complete_course(&world, learner).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending]
    );

    consent(&world, learner, Action::Revoke).await;
    let rows = learner_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Cancelled]);
    assert_eq!(rows[0].cancel_reason.as_deref(), Some("consent revoked"));
    // Nothing left to claim but the content row the configuration queued.
    let claimed = claim(&pool, "w", 10, LEASE).await.unwrap();
    assert!(claimed.iter().all(|item| item.kind == ItemKind::Content));
}

/// An instance of the read model inserts the learner inputs whose keys it never inserted and
/// upserts the others; another instance, which has inserted none, meets the first one's rows
/// with its inserts and upserts them instead.
#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn inputs_one_instance_inserted_are_updated_by_another(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    let (first, second) = (Outbox::default(), Outbox::default());
    let granted = || async {
        sqlx::query_scalar::<_, bool>("SELECT granted FROM outbox_consents WHERE learner_id = $1")
            .bind(learner.0)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    consent(&world, learner, Action::Grant).await;
    project(&pool, &first).await;
    assert!(granted().await);

    // The same instance again: the key is one it inserted, so the row is upserted.
    consent(&world, learner, Action::Revoke).await;
    project(&pool, &first).await;
    assert!(!granted().await);

    // Another instance: its insert meets the row, and the flush upserts it.
    consent(&world, learner, Action::Grant).await;
    complete_course(&world, learner).await;
    project(&pool, &second).await;
    assert!(granted().await);
    assert_eq!(
        statuses(&items(&pool, config, ItemKind::Learner).await),
        [ItemStatus::Pending]
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn consent_arriving_later_releases_the_held_row(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    let held = learner_rows(&pool, config).await;
    assert_eq!(statuses(&held), [ItemStatus::Held]);
    // A held row is not claimed.
    send_all(&pool, "w").await;
    assert_eq!(
        statuses(&items(&pool, config, ItemKind::Learner).await),
        [ItemStatus::Held]
    );

    consent(&world, learner, Action::Grant).await;
    let released = learner_rows(&pool, config).await;
    assert_eq!(statuses(&released), [ItemStatus::Pending]);
    assert_eq!(released[0].item_id, held[0].item_id);
    let claimed = claim(&pool, "w", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].item_id, held[0].item_id);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn externally_managed_consent_needs_no_grant(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending]
    );
    // A revocation does not gate what the customer's own consent process covers.
    consent(&world, learner, Action::Grant).await;
    consent(&world, learner, Action::Revoke).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending]
    );
}

/// The customer update that changes only the consent policy.
fn policy(policy: ConsentPolicy) -> CustomerCommand {
    CustomerCommand::UpdateCustomer {
        name: None,
        slug: None,
        consent: Some(policy),
        enable_audit_enrollment: None,
        enable_audit_data_reporting: None,
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn consent_policy_change_holds_or_releases_open_rows(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    customer_command(&world, policy(consent_required())).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Held]
    );
    customer_command(&world, policy(consent_not_required())).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending]
    );
}

/// Rows held and released within one batch (nothing is projected between the commands): a
/// completion held for want of consent, then the grant; in a later batch, a completion after
/// the customer stopped requesting consent is pending at once; in a third, a pending row the
/// consent-policy change holds, then the grant. The batch reads its gates and held rows when it
/// begins, and again after a customer event.
#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_grant_in_the_batch_that_held_the_row_releases_it(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let waiting = world.learner(1).await;
    assert!(learner_rows(&pool, config).await.is_empty());
    complete_course(&world, waiting).await;
    consent(&world, waiting, Action::Grant).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending]
    );

    customer_command(&world, policy(consent_not_required())).await;
    let early = world.learner(2).await;
    complete_course(&world, early).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending, ItemStatus::Pending]
    );
    customer_command(&world, policy(consent_required())).await;
    consent(&world, early, Action::Grant).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending, ItemStatus::Pending]
    );
}

/// Completions queued, then cancelled by an unlink or a revocation, all within one batch: the
/// batch writes the rows it queued before a learner's rows are cancelled.
#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rows_queued_then_cancelled_within_a_batch_end_cancelled(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let (unlinked, revoking) = (world.learner(1).await, world.learner(2).await);
    assert!(learner_rows(&pool, config).await.is_empty());

    consent(&world, unlinked, Action::Grant).await;
    complete_course(&world, unlinked).await;
    unlink(&world, unlinked).await;
    consent(&world, revoking, Action::Grant).await;
    complete_course(&world, revoking).await;
    consent(&world, revoking, Action::Revoke).await;
    let rows = learner_rows(&pool, config).await;
    assert_eq!(
        statuses(&rows),
        [ItemStatus::Cancelled, ItemStatus::Cancelled]
    );
    let mut reasons: Vec<_> = rows
        .iter()
        .map(|row| (row.learner_id, row.cancel_reason.as_deref()))
        .collect();
    reasons.sort();
    let mut expected = vec![
        (Some(unlinked.0), Some("learner unlinked")),
        (Some(revoking.0), Some("consent revoked")),
    ];
    expected.sort();
    assert_eq!(reasons, expected);
}

/// A customer deactivated and reactivated within one batch: a completion while it is inactive
/// queues nothing, one after it is active again is queued. The batch reads the live
/// configurations once, and again after a customer event.
#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn completions_follow_the_customer_deactivated_and_reactivated_within_a_batch(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let (inactive, active) = (world.learner(1).await, world.learner(2).await);
    assert!(learner_rows(&pool, config).await.is_empty());

    customer_command(&world, CustomerCommand::DeactivateCustomer).await;
    complete_course(&world, inactive).await;
    customer_command(&world, CustomerCommand::ReactivateCustomer).await;
    complete_course(&world, active).await;
    let rows = learner_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Pending]);
    assert_eq!(rows[0].learner_id, Some(active.0));
}

async fn audit_completion(pool: &PgPool, reporting: bool) -> Vec<OutboxItem> {
    let world = World::new(pool.clone(), consent_not_required()).await;
    if reporting {
        let update = CustomerCommand::UpdateCustomer {
            name: None,
            slug: None,
            consent: None,
            enable_audit_enrollment: Some(true),
            enable_audit_data_reporting: Some(true),
        };
        customer_command(&world, update).await;
    }
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    enroll(&world, learner, CourseMode::Audit).await;
    // An audit learner completes by finishing every unit (the run has no upgrade deadline).
    let units = LmsFact::RecordIncompleteUnits { count: 0 };
    fact(&world, learner, CourseMode::Audit, units).await;
    learner_rows(pool, config).await
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn audit_enrollment_is_not_sent_without_audit_reporting(pool: PgPool) {
    assert!(audit_completion(&pool, false).await.is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn audit_enrollment_is_sent_with_audit_reporting(pool: PgPool) {
    let rows = audit_completion(&pool, true).await;
    assert_eq!(statuses(&rows), [ItemStatus::Pending]);
    assert_eq!(rows[0].payload["grade"], "Audit");
    assert_eq!(rows[0].payload["mode"], "audit");
    assert_eq!(rows[0].payload["percent"], Value::Null);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn unlinked_learner_cancels_pending_row_and_queues_nothing_more(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Pending]
    );

    unlink(&world, learner).await;
    let rows = learner_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Cancelled]);
    assert_eq!(rows[0].cancel_reason.as_deref(), Some("learner unlinked"));

    // A later grade change of the unlinked learner queues nothing.
    fact(&world, learner, CourseMode::Verified, grade(0.95)).await;
    assert_eq!(
        statuses(&learner_rows(&pool, config).await),
        [ItemStatus::Cancelled]
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn grade_change_is_sent_again_to_degreed_but_not_to_sap(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let sap = configure(&world, Channel::Sap, vec![]).await;
    let degreed = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    project(&pool, &Outbox::default()).await;
    send_all(&pool, "w").await;

    fact(&world, learner, CourseMode::Verified, grade(0.95)).await;
    let sap_rows = learner_rows(&pool, sap).await;
    assert_eq!(statuses(&sap_rows), [ItemStatus::Sent]);
    let degreed_rows = learner_rows(&pool, degreed).await;
    assert_eq!(
        statuses(&degreed_rows),
        [ItemStatus::Sent, ItemStatus::Pending]
    );
    let resend = &degreed_rows[1];
    assert_eq!(resend.payload["percent"], 0.95);
    assert_eq!(resend.version, 2);
    assert_ne!(resend.item_id, degreed_rows[0].item_id);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn grade_change_before_sending_updates_the_pending_row(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let sap = configure(&world, Channel::Sap, vec![]).await;
    let degreed = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    fact(&world, learner, CourseMode::Verified, grade(0.95)).await;

    let degreed_rows = learner_rows(&pool, degreed).await;
    assert_eq!(statuses(&degreed_rows), [ItemStatus::Pending]);
    assert_eq!(degreed_rows[0].payload["percent"], 0.95);
    // SAP sends the completion as it was decided, once.
    let sap_rows = learner_rows(&pool, sap).await;
    assert_eq!(statuses(&sap_rows), [ItemStatus::Pending]);
    assert_eq!(sap_rows[0].payload["percent"], 0.9);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn disabled_learner_data_cancels_and_queues_no_completions(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let first = world.learner(1).await;
    complete_course(&world, first).await;
    let disable = update_config(config, None, Some(true));
    channel_command(&world, config, disable).await;
    let second = world.learner(2).await;
    complete_course(&world, second).await;

    let rows = learner_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Cancelled]);
    assert_eq!(rows[0].learner_id, Some(first.0));
}

// Content rows ----------------------------------------------------------------------------------

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn content_in_scope_is_created_once_with_the_latest_metadata(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let created = content_rows(&pool, config).await;
    assert_eq!(statuses(&created), [ItemStatus::Pending]);
    assert_eq!(created[0].action, ItemAction::Create);
    assert_eq!(created[0].content_type.as_deref(), Some("courserun"));
    assert_eq!(created[0].content_key.as_deref(), Some(RUN));

    publish(&world, run(RUN, "Renamed")).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Pending]);
    assert_eq!(rows[0].action, ItemAction::Create);
    assert_eq!(rows[0].payload["title"], "Renamed");
    // A new decision, a new idempotency key: the old one was never sent.
    assert_ne!(rows[0].item_id, created[0].item_id);

    let claimed = claim(&pool, "w", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].action, claimed[0].channel.as_str()),
        (ItemAction::Create, "DEGREED2")
    );
}

/// The outbox's membership rows: catalog, content type, content key.
async fn outbox_membership(pool: &PgPool) -> Vec<(Uuid, String, String)> {
    sqlx::query_as(
        "SELECT catalog_id, content_type, content_key FROM outbox_catalog_content
          ORDER BY catalog_id, content_type, content_key",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn membership_is_kept_only_once_the_customer_has_a_configuration(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let filtered = add_catalog(&world, json!({"course_key": ["edX+DemoX"]})).await;
    project(&pool, &Outbox::default()).await;
    assert!(outbox_membership(&pool).await.is_empty());

    // The first configuration evaluates every catalog of the customer, not only the ones it
    // transmits, and from then on catalogs and content keep it up to date.
    configure(&world, Channel::Sap, vec![filtered]).await;
    project(&pool, &Outbox::default()).await;
    let item =
        |catalog: CatalogId, key: &str| (catalog.0, "courserun".to_string(), key.to_string());
    let mut expected = vec![item(world.catalog, RUN), item(filtered, RUN)];
    expected.sort();
    assert_eq!(outbox_membership(&pool).await, expected);

    let other = "course-v1:edX+Other+2025";
    publish(&world, run(other, "Other")).await;
    let narrow = add_catalog(&world, json!({"course_key": ["edX+Other"]})).await;
    project(&pool, &Outbox::default()).await;
    expected.extend([item(world.catalog, other), item(narrow, other)]);
    expected.sort();
    assert_eq!(outbox_membership(&pool).await, expected);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_new_item_is_decided_for_every_configuration_of_its_catalogs(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let narrow = add_catalog(&world, json!({"course_key": ["edX+Other"]})).await;
    let sap = configure(&world, Channel::Sap, vec![narrow]).await;
    let degreed = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    send_all(&pool, "w").await;

    let other = "course-v1:edX+Other+2025";
    publish(&world, run(other, "Other")).await;
    retire(&world, RUN).await;
    let open = |rows: Vec<OutboxItem>| -> Vec<(ItemAction, String)> {
        rows.into_iter()
            .filter(|row| row.status == ItemStatus::Pending)
            .map(|row| (row.action, row.content_key.unwrap()))
            .collect()
    };
    assert_eq!(
        open(content_rows(&pool, sap).await),
        [(ItemAction::Create, other.to_string())]
    );
    let mut degreed_rows = open(content_rows(&pool, degreed).await);
    degreed_rows.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        degreed_rows,
        [
            (ItemAction::Delete, RUN.to_string()),
            (ItemAction::Create, other.to_string())
        ]
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn create_then_delete_before_sending_sends_nothing(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    retire(&world, RUN).await;

    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Cancelled]);
    assert!(claim(&pool, "w", 10, LEASE).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn delete_of_content_the_remote_never_held_is_nothing(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let claimed = claim(&pool, "w", 10, LEASE).await.unwrap();
    let outcome = fail(&pool, claimed[0].item_id, "w", "500", None, 1)
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Dead);

    retire(&world, RUN).await;
    assert_eq!(
        statuses(&content_rows(&pool, config).await),
        [ItemStatus::Dead]
    );
    assert!(claim(&pool, "w", 10, LEASE).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn content_the_remote_holds_is_updated_then_deleted(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    send_all(&pool, "w").await;
    assert_eq!(
        remote_content(&pool, config).await.unwrap(),
        [("courserun".to_string(), RUN.to_string())]
    );

    publish(&world, run(RUN, "Renamed")).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Sent, ItemStatus::Pending]);
    assert_eq!(rows[1].action, ItemAction::Update);
    assert_eq!(rows[1].payload["title"], "Renamed");

    // Retired before the update went out: the open row becomes the delete.
    retire(&world, RUN).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Sent, ItemStatus::Pending]);
    assert_eq!(rows[1].action, ItemAction::Delete);
    let claimed = send_all(&pool, "w").await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].action, ItemAction::Delete);
    assert!(remote_content(&pool, config).await.unwrap().is_empty());
}

/// New metadata the configuration's catalog no longer admits: the item leaves its scope, and
/// the remote that holds it is sent a delete.
#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_update_the_filter_no_longer_admits_deletes_the_item(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let titled = add_catalog(&world, json!({"title": "Kept"})).await;
    let config = configure(&world, Channel::Degreed2, vec![titled]).await;
    let key = "course-v1:edX+Titled+2025";
    publish(&world, run(key, "Kept")).await;
    project(&pool, &Outbox::default()).await;
    send_all(&pool, "w").await;
    assert_eq!(
        remote_content(&pool, config).await.unwrap(),
        [("courserun".to_string(), key.to_string())]
    );

    publish(&world, run(key, "Renamed")).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Sent, ItemStatus::Pending]);
    assert_eq!(rows[1].action, ItemAction::Delete);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn filter_change_moving_content_out_deletes_only_what_the_remote_holds(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let other = "course-v1:edX+Other+2025";
    publish(&world, run(other, "Other")).await;
    let catalog = add_catalog(&world, json!({"course_key": ["edX+DemoX", "edX+Other"]})).await;
    let config = configure(&world, Channel::Sap, vec![catalog]).await;
    project(&pool, &Outbox::default()).await;
    // The first run reaches the remote; the other is still pending.
    let claimed = claim(&pool, "w", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let sent = claimed
        .iter()
        .find(|item| item.content_key.as_deref() == Some(RUN))
        .unwrap();
    let unsent = claimed
        .iter()
        .find(|item| item.content_key.as_deref() == Some(other))
        .unwrap();
    assert!(complete(&pool, sent.item_id, "w").await.unwrap());
    let outcome = fail(&pool, unsent.item_id, "w", "503", Some(Duration::ZERO), 5)
        .await
        .unwrap();
    assert!(matches!(outcome, FailOutcome::Retry { .. }));

    set_filter(&world, catalog, json!({"course_key": ["edX+Nothing"]})).await;
    let rows = content_rows(&pool, config).await;
    let row = |key: &str, status: ItemStatus| {
        rows.iter()
            .find(|item| item.content_key.as_deref() == Some(key) && item.status == status)
            .cloned()
    };
    assert_eq!(
        row(RUN, ItemStatus::Pending).unwrap().action,
        ItemAction::Delete
    );
    let cancelled = row(other, ItemStatus::Cancelled).unwrap();
    assert_eq!(cancelled.attempts, 1);
    assert!(row(other, ItemStatus::Pending).is_none());
    // The world's catalog holds both runs, but this configuration transmits only the filtered one.
    assert_eq!(rows.len(), 3);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn new_catalogs_to_transmit_queue_what_entered_and_what_left(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let empty = add_catalog(&world, json!({"course_key": ["edX+Nothing"]})).await;
    let config = configure(&world, Channel::Degreed2, vec![empty]).await;
    assert!(content_rows(&pool, config).await.is_empty());

    let to = |catalogs| update_config(config, Some(catalogs), None);
    channel_command(&world, config, to(vec![world.catalog])).await;
    assert_eq!(
        statuses(&content_rows(&pool, config).await),
        [ItemStatus::Pending]
    );
    send_all(&pool, "w").await;
    channel_command(&world, config, to(vec![empty])).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Sent, ItemStatus::Pending]);
    assert_eq!(rows[1].action, ItemAction::Delete);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn deactivating_a_configuration_cancels_its_rows_and_reactivating_resends_its_scope(
    pool: PgPool,
) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    project(&pool, &Outbox::default()).await;
    assert_eq!(
        statuses(&items_of_config(&pool, config).await.unwrap()),
        [ItemStatus::Pending, ItemStatus::Pending]
    );

    channel_command(
        &world,
        config,
        ChannelCommand::DeactivateChannelConfiguration,
    )
    .await;
    project(&pool, &Outbox::default()).await;
    let rows = items_of_config(&pool, config).await.unwrap();
    assert_eq!(
        statuses(&rows),
        [ItemStatus::Cancelled, ItemStatus::Cancelled]
    );
    assert!(rows
        .iter()
        .all(|row| row.cancel_reason.as_deref() == Some("configuration deactivated")));
    // Inactive: new content is not queued.
    publish(&world, run("course-v1:edX+Later+2025", "Later")).await;
    assert_eq!(content_rows(&pool, config).await.len(), 1);

    channel_command(
        &world,
        config,
        ChannelCommand::ReactivateChannelConfiguration,
    )
    .await;
    let rows = content_rows(&pool, config).await;
    let pending: Vec<_> = rows
        .iter()
        .filter(|row| row.status == ItemStatus::Pending)
        .map(|row| (row.content_key.clone().unwrap(), row.action))
        .collect();
    assert_eq!(pending.len(), 2);
    assert!(pending
        .iter()
        .all(|(_, action)| *action == ItemAction::Create));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn content_leaving_while_its_create_is_in_flight_is_deleted_after_it(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let create = claim(&pool, "w", 10, LEASE).await.unwrap().remove(0);

    retire(&world, RUN).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Leased, ItemStatus::Pending]);
    assert_eq!(rows[1].action, ItemAction::Delete);
    // The delete waits for the create in flight.
    assert!(claim(&pool, "other", 10, LEASE).await.unwrap().is_empty());

    assert!(complete(&pool, create.item_id, "w").await.unwrap());
    let delete = send_all(&pool, "w").await;
    assert_eq!(delete.len(), 1);
    assert_eq!(delete[0].action, ItemAction::Delete);
    assert!(remote_content(&pool, config).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_delete_whose_create_failed_in_flight_is_not_sent(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let create = claim(&pool, "w", 10, LEASE).await.unwrap().remove(0);
    retire(&world, RUN).await;
    project(&pool, &Outbox::default()).await;

    let outcome = fail(&pool, create.item_id, "w", "timeout", None, 5)
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Superseded);
    assert!(claim(&pool, "w", 10, LEASE).await.unwrap().is_empty());
    let rows = items(&pool, config, ItemKind::Content).await;
    assert_eq!(
        statuses(&rows),
        [ItemStatus::Cancelled, ItemStatus::Cancelled]
    );
}

// The queue -------------------------------------------------------------------------------------

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn claim_leases_due_rows_and_only_the_owner_completes_them(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;

    let claimed = claim(&pool, "a", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let item = &claimed[0];
    assert_eq!(item.status, ItemStatus::Leased);
    assert_eq!(item.lease_owner.as_deref(), Some("a"));
    assert!(item.lease_expires_at.unwrap() > Utc::now() + Days::seconds(50));
    assert!(claim(&pool, "b", 10, LEASE).await.unwrap().is_empty());

    assert!(!complete(&pool, item.item_id, "b").await.unwrap());
    assert!(complete(&pool, item.item_id, "a").await.unwrap());
    assert!(!complete(&pool, item.item_id, "a").await.unwrap());
    let rows = items(&pool, config, ItemKind::Content).await;
    assert_eq!(statuses(&rows), [ItemStatus::Sent]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn claim_leaves_rows_whose_configuration_is_unknown_unleased(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    sqlx::query("DELETE FROM outbox_configs WHERE config_id = $1")
        .bind(config)
        .execute(&pool)
        .await
        .unwrap();

    assert!(claim(&pool, "a", 10, LEASE).await.unwrap().is_empty());
    // The queue's own readers join the configuration too: look at the row itself.
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT status, lease_owner FROM outbox_items WHERE config_id = $1")
            .bind(config)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, [("pending".to_string(), None)]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn complete_many_completes_only_the_rows_the_owner_holds(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let other = "course-v1:edX+Other+2025";
    publish(&world, run(other, "Other")).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let mine = claim(&pool, "a", 1, LEASE).await.unwrap();
    let theirs = claim(&pool, "b", 1, LEASE).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (1, 1));
    let both = [mine[0].item_id, theirs[0].item_id];

    let mut tx = pool.begin().await.unwrap();
    let done = complete_many(&mut tx, "a", &both).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(done, [mine[0].item_id]);
    let rows = content_rows(&pool, config).await;
    let status_of = |id: Uuid| rows.iter().find(|r| r.item_id == id).unwrap().status;
    assert_eq!(status_of(mine[0].item_id), ItemStatus::Sent);
    assert_eq!(status_of(theirs[0].item_id), ItemStatus::Leased);
    let held = remote_content(&pool, config).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(Some(&held[0].1), mine[0].content_key.as_ref());

    // Already sent rows are not completed again; the other owner completes its own.
    let mut tx = pool.begin().await.unwrap();
    let done = complete_many(&mut tx, "b", &both).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(done, [theirs[0].item_id]);
    assert_eq!(remote_content(&pool, config).await.unwrap().len(), 2);
    let mut tx = pool.begin().await.unwrap();
    assert!(complete_many(&mut tx, "a", &both).await.unwrap().is_empty());
    assert!(complete_many(&mut tx, "a", &[]).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn expired_leases_are_claimed_again(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;

    let first = claim(&pool, "a", 10, Duration::ZERO).await.unwrap();
    let again = claim(&pool, "b", 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].item_id, first[0].item_id);
    assert!(!complete(&pool, first[0].item_id, "a").await.unwrap());
    assert_eq!(
        fail(&pool, first[0].item_id, "a", "late", None, 5)
            .await
            .unwrap(),
        FailOutcome::NotLeased
    );
    assert!(complete(&pool, again[0].item_id, "b").await.unwrap());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn failures_back_off_then_dead_letter_and_requeue_brings_them_back(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let id = claim(&pool, "w", 1, LEASE).await.unwrap()[0].item_id;

    // Backoff: 10 s after the first failure, jittered into its upper half.
    let before = Utc::now();
    let FailOutcome::Retry { next_attempt_at } =
        fail(&pool, id, "w", "502", None, 3).await.unwrap()
    else {
        panic!("expected a retry");
    };
    assert!(next_attempt_at >= before + Days::seconds(4));
    assert!(next_attempt_at <= Utc::now() + Days::seconds(11));
    assert!(claim(&pool, "w", 1, LEASE).await.unwrap().is_empty());
    let row = &items(&pool, config, ItemKind::Content).await[0];
    assert_eq!((row.attempts, row.last_error.as_deref()), (1, Some("502")));

    // Retry-After wins over the backoff.
    sqlx::query("UPDATE outbox_items SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    claim(&pool, "w", 1, LEASE).await.unwrap();
    let FailOutcome::Retry { next_attempt_at } =
        fail(&pool, id, "w", "429", Some(Duration::from_secs(120)), 3)
            .await
            .unwrap()
    else {
        panic!("expected a retry");
    };
    assert!(next_attempt_at >= before + Days::seconds(119));

    sqlx::query("UPDATE outbox_items SET next_attempt_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    claim(&pool, "w", 1, LEASE).await.unwrap();
    assert_eq!(
        fail(&pool, id, "w", "500", None, 3).await.unwrap(),
        FailOutcome::Dead
    );
    assert!(claim(&pool, "w", 1, LEASE).await.unwrap().is_empty());
    let row = &items(&pool, config, ItemKind::Content).await[0];
    assert_eq!((row.status, row.attempts), (ItemStatus::Dead, 3));

    assert!(requeue(&pool, id).await.unwrap());
    assert!(!requeue(&pool, id).await.unwrap());
    let row = &items(&pool, config, ItemKind::Content).await[0];
    assert_eq!((row.status, row.attempts), (ItemStatus::Pending, 0));
    assert_eq!(claim(&pool, "w", 1, LEASE).await.unwrap()[0].item_id, id);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn requeue_refuses_a_row_whose_subject_has_a_newer_open_row(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let id = claim(&pool, "w", 1, LEASE).await.unwrap()[0].item_id;
    fail(&pool, id, "w", "500", None, 1).await.unwrap();
    publish(&world, run(RUN, "Renamed")).await;
    let rows = content_rows(&pool, config).await;
    assert_eq!(statuses(&rows), [ItemStatus::Dead, ItemStatus::Pending]);

    assert!(!requeue(&pool, id).await.unwrap());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn concurrent_claimers_get_disjoint_rows(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    for n in 0..39 {
        publish(&world, run(&format!("course-v1:edX+C{n}+2025"), "Course")).await;
    }
    let config = configure(&world, Channel::Csod, vec![]).await;
    project(&pool, &Outbox::default()).await;
    assert_eq!(items(&pool, config, ItemKind::Content).await.len(), 40);

    let mut seen = HashSet::new();
    loop {
        let (a, b) = tokio::join!(claim(&pool, "a", 7, LEASE), claim(&pool, "b", 7, LEASE));
        let (a, b) = (a.unwrap(), b.unwrap());
        if a.is_empty() && b.is_empty() {
            break;
        }
        for item in a.iter().chain(&b) {
            assert!(seen.insert(item.item_id), "claimed twice: {}", item.item_id);
        }
    }
    assert_eq!(seen.len(), 40);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn pending_counts_count_rows_per_configuration_and_status(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let sap = configure(&world, Channel::Sap, vec![]).await;
    let degreed = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    project(&pool, &Outbox::default()).await;
    let counts: Vec<_> = pending_counts(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.config_id, c.status, c.count))
        .collect();
    let mut expected = vec![
        (sap, ItemStatus::Held, 1),
        (sap, ItemStatus::Pending, 1),
        (degreed, ItemStatus::Held, 1),
        (degreed, ItemStatus::Pending, 1),
    ];
    expected.sort_by_key(|(config, status, _)| (*config, status.as_str()));
    assert_eq!(counts, expected);
}

// Rebuild ---------------------------------------------------------------------------------------

/// Every table of the projection, as JSON rows in a stable order.
async fn dump(pool: &PgPool) -> Vec<(String, Value)> {
    let mut tables = Vec::new();
    for table in Outbox::default().tables() {
        let rows: Value = sqlx::query_scalar(&format!(
            "SELECT COALESCE(json_agg(t ORDER BY t::text), '[]') FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        tables.push((table.to_string(), rows));
    }
    tables
}

/// The tables after catching up on the whole log one event per batch.
async fn one_event_at_a_time(pool: &PgPool) -> Vec<(String, Value)> {
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    e2e_tests::read_log(pool, committed as usize).await;
    let one_by_one = RunnerOptions {
        batch_size: 1,
        ..RunnerOptions::default()
    };
    projections::runner::catch_up(pool, &Outbox::default(), one_by_one)
        .await
        .unwrap();
    dump(pool).await
}

/// A world with every kind of input: configurations, content in and out of scope, learners with
/// and without consent, a grade change, a retirement.
async fn busy_world(pool: &PgPool) -> World {
    let world = World::new(pool.clone(), consent_required()).await;
    let filtered = add_catalog(&world, json!({"course_key": ["edX+Other"]})).await;
    configure(&world, Channel::Sap, vec![filtered]).await;
    configure(&world, Channel::Degreed2, vec![]).await;
    publish(&world, run("course-v1:edX+Other+2025", "Other")).await;
    publish(&world, run("course-v1:edX+Gone+2025", "Gone")).await;
    retire(&world, "course-v1:edX+Gone+2025").await;
    let consenting = world.learner(1).await;
    consent(&world, consenting, Action::Grant).await;
    complete_course(&world, consenting).await;
    fact(&world, consenting, CourseMode::Verified, grade(0.95)).await;
    let waiting = world.learner(2).await;
    complete_course(&world, waiting).await;
    world
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuild_gives_the_same_tables_as_incremental_catch_up(pool: PgPool) {
    busy_world(&pool).await;
    // Incremental: event by event. The rebuild applies the log in one batch.
    let incremental = one_event_at_a_time(&pool).await;
    let rows = |table: &str| {
        incremental
            .iter()
            .find(|(name, _)| name == table)
            .and_then(|(_, rows)| rows.as_array())
            .map_or(0, Vec::len)
    };
    assert!(rows("outbox_items") >= 6 && rows("outbox_consents") == 1);

    projections::rebuild::into_fresh_tables(&pool, &Outbox::default(), RunnerOptions::default())
        .await
        .unwrap();
    assert_eq!(dump(&pool).await, incremental);
}

/// Content events between catalog and configuration events: a batch decides the items its
/// content events changed together, before a catalog or configuration event and before an
/// item changes again. One batch must leave what one event at a time leaves.
#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn content_decided_in_one_batch_as_one_event_at_a_time(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let other = add_catalog(&world, json!({"course_key": ["edX+Other"]})).await;
    configure(&world, Channel::Degreed2, vec![other]).await;
    publish(&world, run("course-v1:edX+Other+2025", "Other")).await;
    publish(&world, run("course-v1:edX+Kept+2025", "Kept")).await;
    // Moves the first item out of the scope, after its creation was decided.
    set_filter(&world, other, json!({"course_key": ["edX+Kept"]})).await;
    publish(&world, run("course-v1:edX+Kept+2025", "Kept again")).await;
    retire(&world, "course-v1:edX+Kept+2025").await;
    publish(&world, run("course-v1:edX+Kept+2025", "Kept once more")).await;
    configure(&world, Channel::Sap, vec![]).await;
    publish(&world, run("course-v1:edX+Late+2025", "Late")).await;

    let incremental = one_event_at_a_time(&pool).await;
    let content_rows = incremental
        .iter()
        .find(|(name, _)| name == "outbox_items")
        .and_then(|(_, rows)| rows.as_array())
        .map_or(0, Vec::len);
    assert!(content_rows >= 4, "the scenario queues and cancels content");

    projections::rebuild::in_place(&pool, &Outbox::default(), RunnerOptions::default())
        .await
        .unwrap();
    assert_eq!(dump(&pool).await, incremental);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuild_forgets_what_was_sent_and_queues_it_again_under_the_same_ids(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    let learner = world.learner(1).await;
    complete_course(&world, learner).await;
    project(&pool, &Outbox::default()).await;
    let sent: HashSet<Uuid> = send_all(&pool, "w")
        .await
        .iter()
        .map(|item| item.item_id)
        .collect();
    assert_eq!(sent.len(), 2);

    projections::rebuild::into_fresh_tables(&pool, &Outbox::default(), RunnerOptions::default())
        .await
        .unwrap();
    let rows = items_of_config(&pool, config).await.unwrap();
    assert!(rows.iter().all(|row| row.status == ItemStatus::Pending));
    let requeued: HashSet<Uuid> = rows.iter().map(|row| row.item_id).collect();
    assert_eq!(requeued, sent);
    assert!(remote_content(&pool, config).await.unwrap().is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_failure_racing_a_newer_row_is_superseded(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let config = configure(&world, Channel::Degreed2, vec![]).await;
    project(&pool, &Outbox::default()).await;
    let leased = claim(&pool, "w", 1, LEASE).await.unwrap().remove(0);

    // The projection queues a newer row for the subject and has not committed yet when the
    // worker reports the failure: the worker waits on the open-row index, then finds the row.
    let mut projection = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO outbox_items
         SELECT (SELECT gen_random_uuid()) AS item_id, config_id, customer_id, kind, action,
                subject, version + 1, present, content_type, content_key, learner_id,
                course_run_id, course_key, payload, 'pending', 0, next_attempt_at, NULL, NULL,
                NULL, NULL, created_at, updated_at
           FROM outbox_items WHERE item_id = $1",
    )
    .bind(leased.item_id)
    .execute(&mut *projection)
    .await
    .unwrap();
    let worker = {
        let pool = pool.clone();
        tokio::spawn(async move { fail(&pool, leased.item_id, "w", "503", None, 5).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    projection.commit().await.unwrap();

    assert_eq!(worker.await.unwrap().unwrap(), FailOutcome::Superseded);
    let rows = items(&pool, config, ItemKind::Content).await;
    assert_eq!(
        statuses(&rows),
        [ItemStatus::Cancelled, ItemStatus::Pending]
    );
}
