//! Redeeming coupon codes: limits under concurrency, consent, and the enrollment it ends in.

use domain::consent::{Action, Consent, ConsentCommand, ConsentSource, ConsentSubject};
use domain::coupon::CouponUsage;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentSource};
use domain::ids::CourseRunId;
use e2e_tests::{
    consent_not_required, consent_required, coupon_services, meta, stream_length, World, RUN,
};
use sqlx::PgPool;
use std::sync::Arc;
use store::error::FailureKind;
use store::services::redemption::{redeem, RedemptionError};

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn thirty_two_concurrent_redemptions_of_one_single_use_code_give_exactly_one(pool: PgPool) {
    let world = Arc::new(World::new(pool.clone(), consent_not_required()).await);
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let mut learners = Vec::new();
    for n in 0..32 {
        learners.push(world.learner(1000 + n).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for learner in learners.clone() {
        let (world, code) = (world.clone(), code.clone());
        tasks.spawn(async move {
            redeem(
                &world.store,
                &coupon_services(),
                world.redeem_request(&code, learner),
                &meta(),
            )
            .await
        });
    }
    let (mut redeemed, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => redeemed += 1,
            Err(e) => {
                assert_eq!(e.kind(), FailureKind::Conflict, "{e}");
                refused += 1;
            }
        }
    }
    assert_eq!((redeemed, refused), (1, 31));
    let redemptions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CodeRedeemed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(redemptions, 1);
    let enrollments: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT payload FROM events WHERE event_type = 'Enrolled'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(enrollments.len(), 1);
    assert_eq!(enrollments[0]["Enrolled"]["source"], "offer_redemption");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_multi_use_code_stops_at_its_maximum_under_concurrency(pool: PgPool) {
    let world = Arc::new(World::new(pool.clone(), consent_not_required()).await);
    let code = world
        .coupon(CouponUsage::MultiUse { max_uses: 5 }, 1)
        .await
        .remove(0);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..16 {
        let learner = world.learner(2000 + n).await;
        let (world, code) = (world.clone(), code.clone());
        tasks.spawn(async move {
            redeem(
                &world.store,
                &coupon_services(),
                world.redeem_request(&code, learner),
                &meta(),
            )
            .await
        });
    }
    let mut redeemed = 0;
    while let Some(result) = tasks.join_next().await {
        redeemed += usize::from(result.unwrap().is_ok());
    }
    assert_eq!(redeemed, 5);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn redemption_without_required_consent_is_refused_and_writes_nothing(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let learner = world.learner(7).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();

    let err = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, learner),
        &meta(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RedemptionError::ConsentRequired), "{err}");
    assert!(err.to_string().contains("consent is required"));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, after);

    // Once the learner grants consent for the course (any run resolves to it), it goes through.
    let grant = ConsentCommand {
        customer_id: world.customer,
        learner_id: learner,
        subject: ConsentSubject::for_course_id(RUN),
        source: ConsentSource::CodeRedemption,
        action: Action::Grant,
    };
    let stream = domain::consent::consent_stream_id(world.customer, learner, &grant.subject);
    world
        .store
        .execute::<Consent>(&stream, grant, &(), &meta())
        .await
        .unwrap();
    redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, learner),
        &meta(),
    )
    .await
    .unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn redeeming_again_for_the_same_run_reuses_the_first_redemption(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let code = world
        .coupon(CouponUsage::MultiUse { max_uses: 3 }, 1)
        .await
        .remove(0);
    let learner = world.learner(8).await;
    let first = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, learner),
        &meta(),
    )
    .await
    .unwrap();
    let again = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, learner),
        &meta(),
    )
    .await
    .unwrap();
    assert_eq!(first.redemption_id, again.redemption_id);
    let redemptions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CodeRedeemed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(redemptions, 1);

    let run = CourseRunId(RUN.into());
    let (enrollment, _) = world
        .store
        .load::<Enrollment>(&enrollment_stream_id(world.customer, learner, &run))
        .await
        .unwrap();
    assert_eq!(enrollment.source(), Some(EnrollmentSource::OfferRedemption));
    assert_eq!(enrollment.redemption_id(), Some(first.redemption_id));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_downgrade_is_refused_before_the_code_is_used(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let learner = world.learner(9).await;
    // Enrolled in verified already: a redemption in audit would be a downgrade, refused in the
    // checks before the code is used.
    let mut verified = world.redeem_request(&code, learner);
    let paid = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    verified.code = paid;
    redeem(&world.store, &coupon_services(), verified, &meta())
        .await
        .unwrap();
    let mut audit = world.redeem_request(&code, learner);
    audit.mode = domain::course_mode::CourseMode::Audit;
    let err = redeem(&world.store, &coupon_services(), audit, &meta())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::ForbiddenTransition, "{err}");
    let redemptions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CodeRedeemed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(redemptions, 1, "the downgrade used no code");
    let run = CourseRunId(RUN.into());
    assert_eq!(
        stream_length(&pool, &enrollment_stream_id(world.customer, learner, &run)).await,
        1
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn unknown_codes_and_runs_outside_the_catalog_are_refused(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let learner = world.learner(10).await;
    let unknown = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request("NOSUCHCODE", learner),
        &meta(),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.kind(), FailureKind::NotFound);
    let mut elsewhere = world.redeem_request(&code, learner);
    elsewhere.course_run_id = CourseRunId("course-v1:Other+Course+Run".into());
    let err = redeem(&world.store, &coupon_services(), elsewhere, &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RedemptionError::CourseNotInCatalog(_)),
        "{err}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn redeeming_the_same_code_again_after_enrolling_never_reverses_it(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let learner = world.learner(11).await;
    let first = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, learner),
        &meta(),
    )
    .await
    .unwrap();
    // The same code again, now asking for audit: answered as done, nothing reversed or written.
    let mut audit = world.redeem_request(&code, learner);
    audit.mode = domain::course_mode::CourseMode::Audit;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let again = redeem(&world.store, &coupon_services(), audit, &meta())
        .await
        .unwrap();
    assert_eq!(again.redemption_id, first.redemption_id);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, after);
    let other = world.learner(12).await;
    let err = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, other),
        &meta(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.kind(),
        FailureKind::Conflict,
        "the single use is still spent: {err}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_code_is_not_spent_on_an_enrollment_that_already_holds(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let codes = world.coupon(CouponUsage::SingleUse, 2).await;
    let learner = world.learner(13).await;
    redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&codes[0], learner),
        &meta(),
    )
    .await
    .unwrap();
    let err = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&codes[1], learner),
        &meta(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RedemptionError::AlreadyEnrolled), "{err}");
    let redemptions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CodeRedeemed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(redemptions, 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_learner_not_linked_to_the_customer_is_refused(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let stranger = store::services::learners::register(
        &world.store,
        &store::directory::LmsUser {
            lms_user_id: 99,
            username: "stranger".into(),
            email: "stranger@example.org".into(),
            sso_ids: Vec::new(),
        },
        &meta(),
    )
    .await
    .unwrap()
    .learner_id;
    let err = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, stranger),
        &meta(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RedemptionError::NotLinked), "{err}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_replayed_idempotency_key_never_enrolls_another_learner(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let codes = world.coupon(CouponUsage::SingleUse, 2).await;
    let (a, b) = (world.learner(21).await, world.learner(22).await);
    let keyed = meta().with_idempotency_key("redeem-1").unwrap();
    redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&codes[0], a),
        &keyed,
    )
    .await
    .unwrap();
    let err = redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&codes[1], b),
        &keyed,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RedemptionError::IdempotencyKeyReused),
        "{err}"
    );
    let run = CourseRunId(RUN.into());
    assert_eq!(
        stream_length(&pool, &enrollment_stream_id(world.customer, b, &run)).await,
        0
    );
}
