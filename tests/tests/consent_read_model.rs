//! The consent read model and edX's consent answer, rule by rule.

use domain::consent::{Action, Consent, ConsentCommand, ConsentSource, ConsentSubject};
use domain::content::{discovery, ContentCommand, ContentItem, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::ConsentPolicy;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CourseRunId, LearnerId};
use e2e_tests::{consent_not_required, consent_required, meta, World, RUN};
use projections::read_models::catalog::CatalogProjection;
use projections::read_models::consent::{answer, ConsentAnswer, ConsentProjection, ConsentQuery};
use projections::runner::RunnerOptions;
use sqlx::PgPool;
use uuid::Uuid;

async fn project(pool: &PgPool) {
    e2e_tests::project(pool, &ConsentProjection).await;
    e2e_tests::project(pool, &CatalogProjection).await;
}

async fn consent(world: &World, learner: LearnerId, course_id: &str, action: Action) {
    let command = ConsentCommand {
        customer_id: world.customer,
        learner_id: learner,
        subject: ConsentSubject::for_course_id(course_id),
        source: ConsentSource::ConsentPage,
        action,
    };
    let stream = domain::consent::consent_stream_id(world.customer, learner, &command.subject);
    world
        .store
        .execute::<Consent>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

async fn ask(world: &World, learner: LearnerId, query: ConsentQuery) -> ConsentAnswer {
    answer(world.store.pool(), world.customer, learner, &query)
        .await
        .unwrap()
}

fn course(id: &str) -> ConsentQuery {
    ConsentQuery::Course(id.to_string())
}

const fn answer_of(exists: bool, consent_provided: bool, consent_required: bool) -> ConsentAnswer {
    ConsentAnswer {
        exists,
        consent_provided,
        consent_required,
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn never_asked_consent_is_required_for_a_course_in_a_catalog(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(1).await;
    project(&pool).await;
    assert_eq!(
        ask(&world, learner, course("edX+DemoX")).await,
        answer_of(false, false, true)
    );
    assert_eq!(
        ask(&world, learner, course(RUN)).await,
        answer_of(false, false, true)
    );
    assert_eq!(
        ask(&world, learner, course("Other+Course")).await,
        answer_of(false, false, false),
        "not in any catalog"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_grant_for_the_course_answers_for_every_run(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(1).await;
    consent(
        &world,
        learner,
        "course-v1:edX+DemoX+Another_Run",
        Action::Grant,
    )
    .await;
    project(&pool).await;
    assert_eq!(
        ask(&world, learner, course(RUN)).await,
        answer_of(true, true, false)
    );
    assert_eq!(
        ask(&world, learner, course("edX+DemoX")).await,
        answer_of(true, true, false)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn declined_and_revoked_consent_exist_and_are_required_again(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let (declining, revoking) = (world.learner(1).await, world.learner(2).await);
    consent(&world, declining, RUN, Action::Decline).await;
    consent(&world, revoking, RUN, Action::Grant).await;
    consent(&world, revoking, RUN, Action::Revoke).await;
    project(&pool).await;
    assert_eq!(
        ask(&world, declining, course(RUN)).await,
        answer_of(true, false, true)
    );
    assert_eq!(
        ask(&world, revoking, course(RUN)).await,
        answer_of(true, false, true)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn externally_managed_or_disabled_consent_is_never_required(pool: PgPool) {
    let external = World::new(pool.clone(), consent_not_required()).await;
    let disabled = World::new(
        pool.clone(),
        ConsentPolicy {
            enable_data_sharing_consent: false,
            ..consent_required()
        },
    )
    .await;
    let learner = external.learner(1).await;
    project(&pool).await;
    assert_eq!(
        ask(&external, learner, course(RUN)).await,
        answer_of(false, false, false)
    );
    assert_eq!(
        ask(&disabled, learner, course(RUN)).await,
        answer_of(false, false, false)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_enterprise_enrollment_makes_the_record_exist(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(1).await;
    let run = CourseRunId(RUN.into());
    let enroll = EnrollmentCommand::Enroll {
        customer_id: world.customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode: CourseMode::Audit,
        source: EnrollmentSource::Manual,
        redemption_id: None,
        at: chrono::Utc::now(),
    };
    let stream = enrollment_stream_id(world.customer, learner, &run);
    world
        .store
        .execute::<Enrollment>(&stream, enroll, &(), &meta())
        .await
        .unwrap();
    project(&pool).await;
    assert_eq!(
        ask(&world, learner, course("edX+DemoX")).await,
        answer_of(true, false, true)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_program_is_granted_only_when_every_course_is(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(1).await;
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/discovery/program.json")).unwrap();
    let mut program = discovery::from_discovery(ContentType::Program, &doc).unwrap();
    program.program_course_keys = vec!["edX+DemoX".into(), "edX+Other".into()];
    let uuid = Uuid::parse_str(&program.key).unwrap();
    let stream = domain::content::content_stream_id(ContentType::Program, &program.key);
    let publish = ContentCommand::PublishContent {
        metadata: program,
        at: chrono::Utc::now(),
    };
    world
        .store
        .execute::<ContentItem>(&stream, publish, &(), &meta())
        .await
        .unwrap();

    consent(&world, learner, "edX+DemoX", Action::Grant).await;
    project(&pool).await;
    // edX+Other is in no catalog, so it requires nothing, but it is not granted either.
    assert_eq!(
        ask(&world, learner, ConsentQuery::Program(uuid)).await,
        answer_of(true, false, false)
    );
    consent(&world, learner, "edX+Other", Action::Grant).await;
    project(&pool).await;
    assert_eq!(
        ask(&world, learner, ConsentQuery::Program(uuid)).await,
        answer_of(true, true, false)
    );
    consent(&world, learner, "edX+DemoX", Action::Revoke).await;
    project(&pool).await;
    assert_eq!(
        ask(&world, learner, ConsentQuery::Program(uuid)).await,
        answer_of(true, false, true)
    );
    let unknown = ConsentQuery::Program(Uuid::new_v4());
    assert_eq!(
        ask(&world, learner, unknown).await,
        answer_of(false, false, false)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_unknown_customer_requires_nothing(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(1).await;
    project(&pool).await;
    let nobody = domain::ids::CustomerId(Uuid::new_v4());
    let got = answer(&pool, nobody, learner, &course(RUN)).await.unwrap();
    assert_eq!(got, answer_of(false, false, false));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilding_the_consent_read_model_gives_the_same_rows(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    for n in 1..=5 {
        let learner = world.learner(n).await;
        consent(&world, learner, RUN, Action::Grant).await;
        if n % 2 == 0 {
            consent(&world, learner, RUN, Action::Revoke).await;
        }
    }
    project(&pool).await;
    let dump = |pool: PgPool| async move {
        let rows: Vec<(Uuid, String, bool, String)> = sqlx::query_as(
            "SELECT learner_id, subject_key, granted, source FROM consent_records ORDER BY learner_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let customers: Vec<(Uuid, bool, String)> =
            sqlx::query_as("SELECT * FROM consent_customers ORDER BY customer_id")
                .fetch_all(&pool)
                .await
                .unwrap();
        (rows, customers)
    };
    let incremental = dump(pool.clone()).await;
    projections::rebuild::into_fresh_tables(&pool, &ConsentProjection, RunnerOptions::default())
        .await
        .unwrap();
    assert_eq!(dump(pool.clone()).await, incremental);
    assert_eq!(incremental.0.len(), 5);
}
