//! The enrollments read model and the progress report: each column's rule, inputs recorded
//! before and after the enrollment, filters, pages, chunks and rebuild.

use chrono::{DateTime, TimeZone, Utc};
use domain::completion::{Completion, CompletionCommand, LmsFact};
use domain::consent::{Action, Consent, ConsentCommand, ConsentSource, ConsentSubject};
use domain::content::{discovery, ContentCommand, ContentItem, ContentType};
use domain::coupon::{Coupon, CouponBenefit, CouponCommand, CouponUsage};
use domain::course_mode::CourseMode;
use domain::customer::CustomerCommand;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CourseKey, CourseRunId, CustomerId, LearnerId};
use e2e_tests::{
    consent_not_required, consent_required, coupon_services, customer, meta, World, RUN,
};
use projections::read_models::enrollments::{
    enrollments_of_learner, report, report_stream, Enrollments, ReportFilter, ReportRow,
    REPORT_COLUMNS,
};
use projections::runner::{catch_up, RunnerOptions};
use projections::Projection;
use sqlx::PgPool;
use std::sync::Arc;
use store::EventStore;
use uuid::Uuid;

/// Catches the projection up with every event committed so far. The log's horizon is
/// cluster-wide (a transaction of a test running in parallel holds it back), so this repeats
/// until the projection has applied the newest event, for up to a minute.
async fn settle(pool: &PgPool, projection: &dyn Projection) {
    let newest: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, global_position FROM events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reached = catch_up(pool, projection, RunnerOptions::default())
            .await
            .expect("catching up");
        if newest
            .is_none_or(|(tx, pos)| (reached.transaction_id, reached.global_position) >= (tx, pos))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the projection did not catch up in 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// 2025-01-`day` at 09:00 UTC.
fn day(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, day, 9, 0, 0).unwrap()
}

fn run(id: &str) -> CourseRunId {
    CourseRunId(id.into())
}

async fn enroll(
    store: &EventStore,
    customer_id: CustomerId,
    learner_id: LearnerId,
    run_id: &str,
    at: DateTime<Utc>,
    redemption_id: Option<Uuid>,
) {
    let command = EnrollmentCommand::Enroll {
        customer_id,
        learner_id,
        course_run_id: run(run_id),
        mode: CourseMode::Verified,
        source: EnrollmentSource::CustomerAdmin,
        redemption_id,
        at,
    };
    enrollment(store, command).await;
}

async fn enrollment(store: &EventStore, command: EnrollmentCommand) {
    let key = command.key();
    let stream = enrollment_stream_id(key.customer_id, key.learner_id, &key.course_run_id);
    store
        .execute::<Enrollment>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

async fn consent(
    store: &EventStore,
    customer_id: CustomerId,
    learner_id: LearnerId,
    subject: ConsentSubject,
    action: Action,
) {
    let stream = domain::consent::consent_stream_id(customer_id, learner_id, &subject);
    let command = ConsentCommand {
        customer_id,
        learner_id,
        subject,
        source: ConsentSource::Api,
        action,
    };
    store
        .execute::<Consent>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

fn course(key: &str) -> ConsentSubject {
    ConsentSubject::Course(CourseKey(key.into()))
}

async fn fact(
    store: &EventStore,
    customer_id: CustomerId,
    learner_id: LearnerId,
    run_id: &str,
    at: DateTime<Utc>,
    fact: LmsFact,
) {
    let stream = domain::completion::completion_stream_id(customer_id, learner_id, &run(run_id));
    let command = CompletionCommand {
        customer_id,
        learner_id,
        course_run_id: run(run_id),
        mode: CourseMode::Verified,
        at,
        fact,
    };
    store
        .execute::<Completion>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

fn passing_grade(percent: f64) -> LmsFact {
    LmsFact::RecordGrade {
        percent,
        passed: true,
        passed_at: Some(day(20)),
    }
}

/// Publishes a course run built from the discovery fixture with another key and title.
async fn publish_run(store: &EventStore, key: &str, title: &str) {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json")).unwrap();
    doc["key"] = key.into();
    doc["title"] = title.into();
    doc["pacing_type"] = "self_paced".into();
    doc["start"] = "2025-02-01T00:00:00Z".into();
    doc["end"] = "2025-06-30T00:00:00Z".into();
    let metadata = discovery::from_discovery(ContentType::CourseRun, &doc).unwrap();
    let publish = ContentCommand::PublishContent {
        metadata,
        at: Utc::now(),
    };
    let stream = domain::content::content_stream_id(ContentType::CourseRun, key);
    store
        .execute::<ContentItem>(&stream, publish, &(), &meta())
        .await
        .unwrap();
}

async fn create_customer(store: &EventStore, customer_id: CustomerId, name: &str) {
    let create = CustomerCommand::CreateCustomer {
        customer_id,
        name: name.into(),
        slug: format!("c-{}", &customer_id.0.simple().to_string()[..8]),
        consent: consent_required(),
        enable_audit_enrollment: false,
        enable_audit_data_reporting: false,
    };
    store::services::customers::execute(store, customer_id, create, &meta())
        .await
        .unwrap();
}

async fn rename_customer(store: &EventStore, customer_id: CustomerId, name: &str) {
    let update = CustomerCommand::UpdateCustomer {
        name: Some(name.into()),
        slug: None,
        consent: None,
        enable_audit_enrollment: None,
        enable_audit_data_reporting: None,
    };
    store::services::customers::execute(store, customer_id, update, &meta())
        .await
        .unwrap();
}

/// The one enrollment of a learner with a customer.
async fn row(pool: &PgPool, customer: CustomerId, learner: LearnerId) -> ReportRow {
    let mut rows = enrollments_of_learner(pool, customer, learner)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one enrollment expected");
    rows.remove(0)
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_enrollment_takes_the_inputs_recorded_before_it(pool: PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(1).await;
    consent(
        &world.store,
        world.customer,
        learner,
        course("edX+DemoX"),
        Action::Grant,
    )
    .await;
    fact(
        &world.store,
        world.customer,
        learner,
        RUN,
        day(21),
        passing_grade(0.9),
    )
    .await;
    enroll(&world.store, world.customer, learner, RUN, day(3), None).await;
    settle(&pool, &Enrollments).await;

    let r = row(&pool, world.customer, learner).await;
    let stream = enrollment_stream_id(world.customer, learner, &run(RUN));
    assert_eq!(r.enrollment_id.to_string(), stream);
    assert_eq!(r.enterprise_enrollment_id, r.enrollment_id);
    assert!(r.is_consent_granted);
    assert_eq!(r.user_current_enrollment_mode, "verified");
    assert_eq!(r.enrollment_date, day(3));
    assert_eq!(r.unenrollment_date, None);
    assert_eq!(
        (r.course_key.as_deref(), r.courserun_key.as_str()),
        (Some("edX+DemoX"), RUN)
    );
    assert_eq!(r.course_title.as_deref(), Some("edX Demonstration Course"));
    assert_eq!(r.course_pacing_type.as_deref(), Some("instructor_paced"));
    assert_eq!(
        r.course_start_date,
        Some(Utc.with_ymd_and_hms(2013, 2, 5, 5, 0, 0).unwrap())
    );
    assert_eq!(
        r.course_end_date,
        Some(Utc.with_ymd_and_hms(3000, 12, 31, 18, 0, 0).unwrap())
    );
    assert!(
        r.has_passed,
        "a completion recorded before the enrollment counts"
    );
    assert_eq!(r.letter_grade.as_deref(), Some("Pass"));
    assert_eq!(
        (r.enterprise_user_id, r.enterprise_customer_uuid),
        (learner, world.customer)
    );
    assert_eq!(r.user_email.as_deref(), Some("learner1@example.com"));
    assert_eq!(r.user_username.as_deref(), Some("learner1"));
    assert_eq!(r.enterprise_name.as_deref(), Some("Acme"));
    assert_eq!(
        (r.coupon_code, r.coupon_name, r.offer_type),
        (None, None, None)
    );
    assert_eq!(r.enrollment_source, "customer_admin");
    let recorded: DateTime<Utc> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE aggregate_id = $1 AND event_type = 'Enrolled'",
    )
    .bind(&stream)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        r.created, recorded,
        "created is when the enrollment was recorded"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn inputs_recorded_after_the_enrollment_update_its_row(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (acme, learner) = (customer(), e2e_tests::learner());
    let late_run = "course-v1:Acme+Late+2025";
    enroll(&store, acme, learner, late_run, day(3), None).await;
    settle(&pool, &Enrollments).await;
    let before = row(&pool, acme, learner).await;
    assert_eq!(
        before.course_key.as_deref(),
        Some("Acme+Late"),
        "the key the run id encodes"
    );
    assert_eq!(
        (before.course_title.clone(), before.enterprise_name.clone()),
        (None, None)
    );
    assert!(!before.is_consent_granted);
    assert!(!before.has_passed);
    assert_eq!(before.progress_status, "In Progress");
    assert_eq!(before.user_email, None, "no directory entry");

    create_customer(&store, acme, "Acme Late").await;
    publish_run(&store, late_run, "Late Course").await;
    consent(&store, acme, learner, course("Acme+Late"), Action::Grant).await;
    fact(&store, acme, learner, late_run, day(21), passing_grade(0.8)).await;
    settle(&pool, &Enrollments).await;
    let after = row(&pool, acme, learner).await;
    assert_eq!(after.enterprise_name.as_deref(), Some("Acme Late"));
    assert_eq!(after.course_title.as_deref(), Some("Late Course"));
    assert_eq!(after.course_pacing_type.as_deref(), Some("self_paced"));
    assert_eq!(
        after.course_start_date,
        Some(Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap())
    );
    assert_eq!(
        after.course_end_date,
        Some(Utc.with_ymd_and_hms(2025, 6, 30, 0, 0, 0).unwrap())
    );
    assert!(after.is_consent_granted);
    assert!(after.has_passed);

    rename_customer(&store, acme, "Acme Renamed").await;
    publish_run(&store, late_run, "Late Course, Second Edition").await;
    settle(&pool, &Enrollments).await;
    let renamed = row(&pool, acme, learner).await;
    assert_eq!(renamed.enterprise_name.as_deref(), Some("Acme Renamed"));
    assert_eq!(
        renamed.course_title.as_deref(),
        Some("Late Course, Second Edition")
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn consent_counts_when_granted_for_the_course_and_not_when_declined_revoked_or_for_a_program(
    pool: PgPool,
) {
    let world = World::new(pool.clone(), consent_required()).await;
    let (granted, declined, program_only) = (
        world.learner(1).await,
        world.learner(2).await,
        world.learner(3).await,
    );
    for learner in [granted, declined, program_only] {
        enroll(&world.store, world.customer, learner, RUN, day(3), None).await;
    }
    // The old-style id of another run of the same course shares the course's consent.
    enroll(
        &world.store,
        world.customer,
        granted,
        "edX/DemoX/2014",
        day(4),
        None,
    )
    .await;
    consent(
        &world.store,
        world.customer,
        granted,
        course("edX+DemoX"),
        Action::Grant,
    )
    .await;
    consent(
        &world.store,
        world.customer,
        declined,
        course("edX+DemoX"),
        Action::Decline,
    )
    .await;
    let program = ConsentSubject::Program(Uuid::new_v4());
    consent(
        &world.store,
        world.customer,
        program_only,
        program,
        Action::Grant,
    )
    .await;
    consent(
        &world.store,
        world.customer,
        program_only,
        course("edX+Other"),
        Action::Grant,
    )
    .await;
    consent(
        &world.store,
        customer(),
        program_only,
        course("edX+DemoX"),
        Action::Grant,
    )
    .await;
    settle(&pool, &Enrollments).await;

    let granted_rows = enrollments_of_learner(&pool, world.customer, granted)
        .await
        .unwrap();
    assert_eq!(granted_rows.len(), 2);
    assert!(granted_rows.iter().all(|r| r.is_consent_granted));
    assert!(
        !row(&pool, world.customer, declined)
            .await
            .is_consent_granted
    );
    assert!(
        !row(&pool, world.customer, program_only)
            .await
            .is_consent_granted,
        "neither a program, another course nor another customer grants this course"
    );

    consent(
        &world.store,
        world.customer,
        granted,
        course("edX+DemoX"),
        Action::Revoke,
    )
    .await;
    settle(&pool, &Enrollments).await;
    let revoked = enrollments_of_learner(&pool, world.customer, granted)
        .await
        .unwrap();
    assert!(revoked.iter().all(|r| !r.is_consent_granted));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_coupon_redemption_fills_the_coupon_columns(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let learner = world.learner(1).await;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    store::services::redemption::redeem(
        &world.store,
        &coupon_services(),
        world.redeem_request(&code, learner),
        &meta(),
    )
    .await
    .unwrap();
    settle(&pool, &Enrollments).await;

    let r = row(&pool, world.customer, learner).await;
    assert_eq!(r.coupon_code.as_deref(), Some(code.as_str()));
    assert_eq!(r.coupon_name.as_deref(), Some("Seats"));
    assert_eq!(r.offer_type.as_deref(), Some("Percentage"));
    assert_eq!(r.enrollment_source, "offer_redemption");
}

/// Creates a coupon of one code with `benefit` and redeems it for `learner` in `RUN` straight on
/// the coupon stream; returns the redemption id and the code.
async fn redeem_on_coupon(
    world: &World,
    learner: LearnerId,
    benefit: CouponBenefit,
) -> (Uuid, Uuid, String) {
    let coupon_id = domain::ids::CouponId(Uuid::new_v4());
    let stream = domain::coupon::coupon_stream_id(coupon_id);
    let create = CouponCommand::CreateCoupon {
        coupon_id,
        customer_id: world.customer,
        catalog_id: world.catalog,
        name: "Fixed discount".into(),
        code_count: 1,
        usage: CouponUsage::SingleUse,
        benefit,
        valid_from: Utc::now() - chrono::Duration::days(1),
        valid_until: Utc::now() + chrono::Duration::days(1),
        email_domains: Vec::new(),
    };
    world
        .store
        .execute::<Coupon>(&stream, create, &coupon_services(), &meta())
        .await
        .unwrap();
    let (coupon, _) = world.store.load::<Coupon>(&stream).await.unwrap();
    let code = coupon.codes().next().unwrap().to_string();
    let redemption_id = Uuid::new_v4();
    let redeem = CouponCommand::RedeemCode {
        code: code.clone(),
        learner_id: learner,
        email_domain: None,
        course_run_id: run(RUN),
        redemption_id,
        at: Utc::now(),
    };
    world
        .store
        .execute::<Coupon>(&stream, redeem, &coupon_services(), &meta())
        .await
        .unwrap();
    (coupon_id.0, redemption_id, code)
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_reversed_redemption_blanks_the_coupon_columns(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let learner = world.learner(1).await;
    let benefit = CouponBenefit::Absolute { value: 50.0 };
    let (coupon_id, redemption_id, code) = redeem_on_coupon(&world, learner, benefit).await;
    enroll(
        &world.store,
        world.customer,
        learner,
        RUN,
        day(3),
        Some(redemption_id),
    )
    .await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, world.customer, learner).await;
    assert_eq!(r.coupon_code.as_deref(), Some(code.as_str()));
    assert_eq!(r.coupon_name.as_deref(), Some("Fixed discount"));
    assert_eq!(r.offer_type.as_deref(), Some("Absolute"));

    let reverse = CouponCommand::ReverseRedemption {
        redemption_id,
        reason: "enrollment_refused".into(),
    };
    let stream = domain::coupon::coupon_stream_id(domain::ids::CouponId(coupon_id));
    world
        .store
        .execute::<Coupon>(&stream, reverse, &coupon_services(), &meta())
        .await
        .unwrap();
    settle(&pool, &Enrollments).await;
    let r = row(&pool, world.customer, learner).await;
    assert_eq!(
        (r.coupon_code, r.coupon_name, r.offer_type),
        (None, None, None)
    );

    // An enrollment naming a reversed redemption shows no coupon either.
    let other = world.learner(2).await;
    enroll(
        &world.store,
        world.customer,
        other,
        RUN,
        day(4),
        Some(redemption_id),
    )
    .await;
    settle(&pool, &Enrollments).await;
    assert_eq!(row(&pool, world.customer, other).await.coupon_code, None);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_completion_fills_the_grade_columns_and_a_grade_change_updates_them(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let learner = world.learner(1).await;
    let c = world.customer;
    enroll(&world.store, c, learner, RUN, day(3), None).await;
    fact(&world.store, c, learner, RUN, day(21), passing_grade(0.92)).await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, c, learner).await;
    assert!(r.has_passed);
    assert_eq!(r.progress_status, "Passed");
    assert_eq!(r.passed_date, Some(day(21)));
    assert_eq!(r.current_grade, Some(0.92));
    assert_eq!(r.letter_grade.as_deref(), Some("Pass"));

    fact(&world.store, c, learner, RUN, day(22), passing_grade(0.95)).await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, c, learner).await;
    assert_eq!((r.current_grade, r.has_passed), (Some(0.95), true));

    // A failing certificate turns the reported grade into a failure.
    let failing = LmsFact::RecordCertificate {
        percent: 0.4,
        passing: false,
        created_at: Some(day(23)),
    };
    fact(&world.store, c, learner, RUN, day(23), failing).await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, c, learner).await;
    assert!(!r.has_passed);
    assert_eq!(r.progress_status, "Failed");
    assert_eq!(r.passed_date, None);
    assert_eq!(r.current_grade, Some(0.4));
    assert_eq!(r.letter_grade.as_deref(), Some("Fail"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn unenrolling_dates_the_row_and_reenrolling_clears_the_date(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let learner = world.learner(1).await;
    let c = world.customer;
    enroll(&world.store, c, learner, RUN, day(3), None).await;
    let unenroll = EnrollmentCommand::Unenroll {
        customer_id: c,
        learner_id: learner,
        course_run_id: run(RUN),
        at: day(5),
    };
    enrollment(&world.store, unenroll).await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, c, learner).await;
    assert_eq!(r.unenrollment_date, Some(day(5)));
    assert!(r.saved_for_later);

    let upgrade = EnrollmentCommand::Enroll {
        customer_id: c,
        learner_id: learner,
        course_run_id: run(RUN),
        mode: CourseMode::Professional,
        source: EnrollmentSource::EnterpriseApi,
        redemption_id: None,
        at: day(7),
    };
    enrollment(&world.store, upgrade).await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, c, learner).await;
    assert_eq!(r.unenrollment_date, None);
    assert!(!r.saved_for_later);
    assert_eq!(r.user_current_enrollment_mode, "professional");
    assert_eq!(
        r.enrollment_date,
        day(3),
        "the first enrollment's date stays"
    );
    assert_eq!(r.enrollment_source, "customer_admin");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn erasing_a_learner_blanks_the_personal_columns(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let learner = world.learner(1).await;
    enroll(&world.store, world.customer, learner, RUN, day(3), None).await;
    settle(&pool, &Enrollments).await;
    assert_eq!(
        row(&pool, world.customer, learner)
            .await
            .user_username
            .as_deref(),
        Some("learner1")
    );

    assert!(store::directory::erase(&pool, learner).await.unwrap());
    let r = row(&pool, world.customer, learner).await;
    assert_eq!((r.user_email, r.user_username), (None, None));
    assert_eq!(r.enterprise_user_id, learner);
    let personal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns
          WHERE table_name LIKE 'enrollments\\_%'
            AND column_name IN ('user_email', 'user_username', 'email', 'username')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(personal, 0, "the read model never stores personal data");
}

/// Four enrollments of the world's customer on days 1 to 4 (learners 1 to 4; learners 1 and 3
/// granted consent; learner 4 in another course), and one of another customer.
async fn report_world(pool: &PgPool) -> (World, Vec<LearnerId>) {
    let world = World::new(pool.clone(), consent_required()).await;
    let mut learners = Vec::new();
    for n in 1..=4 {
        let learner = world.learner(n).await;
        let run_id = if n == 4 {
            "course-v1:edX+Other+2025"
        } else {
            RUN
        };
        enroll(
            &world.store,
            world.customer,
            learner,
            run_id,
            day(n as u32),
            None,
        )
        .await;
        if n % 2 == 1 {
            consent(
                &world.store,
                world.customer,
                learner,
                course("edX+DemoX"),
                Action::Grant,
            )
            .await;
        }
        learners.push(learner);
    }
    enroll(&world.store, customer(), learners[0], RUN, day(2), None).await;
    settle(pool, &Enrollments).await;
    (world, learners)
}

async fn learners_in(pool: &PgPool, customer: CustomerId, filter: &ReportFilter) -> Vec<LearnerId> {
    let (total, rows) = report(pool, customer, filter, 1, 100).await.unwrap();
    assert_eq!(total as usize, rows.len());
    rows.into_iter().map(|r| r.enterprise_user_id).collect()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn report_filters_select_by_enrollment_date_course_and_consent(pool: PgPool) {
    let (world, l) = report_world(&pool).await;
    let c = world.customer;
    assert_eq!(learners_in(&pool, c, &ReportFilter::default()).await, l);
    let dates = ReportFilter {
        enrolled_from: Some(day(2)),
        enrolled_until: Some(day(4)),
        ..Default::default()
    };
    assert_eq!(
        learners_in(&pool, c, &dates).await,
        vec![l[1], l[2]],
        "from inclusive, until exclusive"
    );
    let demo = ReportFilter {
        course_key: Some("edX+DemoX".into()),
        ..Default::default()
    };
    assert_eq!(learners_in(&pool, c, &demo).await, l[..3].to_vec());
    let consenting = ReportFilter {
        consent_granted_only: true,
        ..Default::default()
    };
    assert_eq!(learners_in(&pool, c, &consenting).await, vec![l[0], l[2]]);
    let all = ReportFilter {
        enrolled_from: Some(day(1)),
        enrolled_until: Some(day(3)),
        course_key: Some("edX+DemoX".into()),
        consent_granted_only: true,
    };
    assert_eq!(learners_in(&pool, c, &all).await, vec![l[0]]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn report_pages_and_chunks_read_every_row_once_in_enrollment_order(pool: PgPool) {
    let (world, l) = report_world(&pool).await;
    let c = world.customer;
    let filter = ReportFilter::default();
    let mut paged = Vec::new();
    for page in 1..=3 {
        let (total, rows) = report(&pool, c, &filter, page, 3).await.unwrap();
        assert_eq!(total, 4);
        paged.extend(rows.into_iter().map(|r| r.enterprise_user_id));
    }
    assert_eq!(paged, l);
    let (_, first) = report(&pool, c, &filter, 0, 3).await.unwrap();
    assert_eq!(first.len(), 3, "page 0 reads as page 1");

    for chunk_size in [1, 2, 3, 4, 10] {
        let mut chunks = report_stream(c, filter.clone(), chunk_size);
        let mut streamed = Vec::new();
        while let Some(rows) = chunks.next_chunk(&pool).await.unwrap() {
            assert!(!rows.is_empty() && rows.len() <= chunk_size as usize);
            streamed.extend(rows.into_iter().map(|r| r.enterprise_user_id));
        }
        assert_eq!(streamed, l, "chunks of {chunk_size}");
        assert_eq!(chunks.next_chunk(&pool).await.unwrap(), None);
    }
    let consenting = ReportFilter {
        consent_granted_only: true,
        ..Default::default()
    };
    let mut chunks = report_stream(c, consenting, 1);
    let mut streamed = Vec::new();
    while let Some(rows) = chunks.next_chunk(&pool).await.unwrap() {
        streamed.extend(rows.into_iter().map(|r| r.enterprise_user_id));
    }
    assert_eq!(streamed, vec![l[0], l[2]], "chunks apply the filter");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_learners_enrollments_are_those_with_the_customer_asked(pool: PgPool) {
    let (world, l) = report_world(&pool).await;
    let rows = enrollments_of_learner(&pool, world.customer, l[0])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].enterprise_customer_uuid, world.customer);
    assert!(
        enrollments_of_learner(&pool, world.customer, e2e_tests::learner())
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn report_columns_follow_the_progress_v3_order() {
    let progress_v3 = "enrollment_id, enterprise_enrollment_id, is_consent_granted, paid_by, \
        user_current_enrollment_mode, enrollment_date, unenrollment_date, \
        unenrollment_end_within_date, is_refunded, seat_delivery_method, offer_id, offer_name, \
        offer_type, coupon_code, coupon_name, contract_id, course_list_price, amount_learner_paid, \
        course_key, courserun_key, course_title, course_pacing_type, course_start_date, \
        course_end_date, course_duration_weeks, course_max_effort, course_min_effort, \
        course_primary_program, primary_program_type, course_primary_subject, has_passed, \
        last_activity_date, progress_status, passed_date, current_grade, letter_grade, \
        enterprise_user_id, user_email, user_account_creation_date, user_country_code, \
        user_username, user_first_name, user_last_name, enterprise_name, \
        enterprise_customer_uuid, enterprise_sso_uid, created, course_api_url, \
        total_learning_time_hours, is_subsidy, course_product_line, budget_id, \
        enterprise_flex_group_name, enterprise_flex_group_uuid, course_progress, \
        course_passing_grade";
    let order: Vec<&str> = progress_v3.split(", ").collect();
    let positions: Vec<usize> = REPORT_COLUMNS
        .iter()
        .map(|c| {
            order
                .iter()
                .position(|o| o == c)
                .expect("a progress_v3 column")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in progress_v3 order"
    );
    assert_eq!(REPORT_COLUMNS.len(), 26);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_csv_record_gives_the_values_in_column_order(pool: PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let learner = world.learner(1).await;
    enroll(&world.store, world.customer, learner, RUN, day(3), None).await;
    settle(&pool, &Enrollments).await;
    let r = row(&pool, world.customer, learner).await;
    let record = r.csv_record();
    assert_eq!(record.len(), REPORT_COLUMNS.len());
    let value = |column: &str| {
        let i = REPORT_COLUMNS.iter().position(|c| *c == column).unwrap();
        record[i].as_str()
    };
    assert_eq!(value("enrollment_id"), r.enrollment_id.to_string());
    assert_eq!(value("enrollment_date"), "2025-01-03T09:00:00Z");
    assert_eq!(value("unenrollment_date"), "");
    assert_eq!(value("is_consent_granted"), "false");
    assert_eq!(value("courserun_key"), RUN);
    assert_eq!(value("user_email"), "learner1@example.com");
    assert_eq!(value("enterprise_name"), "Acme");
    assert_eq!(
        value("enterprise_customer_uuid"),
        world.customer.to_string()
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilding_into_fresh_tables_gives_the_rows_of_incremental_catch_up(pool: PgPool) {
    // Caught up in several steps, so incremental batches differ from the rebuild's one pass.
    let (world, l) = report_world(&pool).await;
    let c = world.customer;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    consent(&world.store, c, l[1], course("edX+DemoX"), Action::Grant).await;
    let other_run = "course-v1:edX+Other+2025";
    let request = store::services::redemption::RedeemRequest {
        course_run_id: run(other_run),
        ..world.redeem_request(&code, l[1])
    };
    publish_run(&world.store, other_run, "Other").await;
    consent(&world.store, c, l[1], course("edX+Other"), Action::Grant).await;
    store::services::redemption::redeem(&world.store, &coupon_services(), request, &meta())
        .await
        .unwrap();
    settle(&pool, &Enrollments).await;
    fact(&world.store, c, l[0], RUN, day(21), passing_grade(0.7)).await;
    rename_customer(&world.store, c, "Acme Renamed").await;
    consent(&world.store, c, l[0], course("edX+DemoX"), Action::Revoke).await;
    let unenroll = EnrollmentCommand::Unenroll {
        customer_id: c,
        learner_id: l[2],
        course_run_id: run(RUN),
        at: day(9),
    };
    enrollment(&world.store, unenroll).await;
    settle(&pool, &Enrollments).await;

    let incremental = e2e_tests::dump_tables(&pool, &Enrollments).await;
    assert!(incremental.len() >= 12);
    projections::rebuild::into_fresh_tables(&pool, &Enrollments, RunnerOptions::default())
        .await
        .unwrap();
    assert_eq!(
        e2e_tests::dump_tables(&pool, &Enrollments).await,
        incremental
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn unknown_aggregates_are_ignored_and_an_enrollment_that_does_not_decode_stops_the_projection(
    pool: PgPool,
) {
    let insert = |aggregate_type: &'static str, event_type: &'static str| {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES ($1, gen_random_uuid()::text, 1, $2, '1.0', '{\"Nonsense\": 1}', '{}')",
        )
        .bind(aggregate_type)
        .bind(event_type)
    };
    insert("not_an_aggregate_here", "Whatever")
        .execute(&pool)
        .await
        .unwrap();
    insert("customer", "BrandingSet")
        .execute(&pool)
        .await
        .unwrap();
    settle(&pool, &Enrollments).await;

    insert("enrollment", "Enrolled")
        .execute(&pool)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let err = loop {
        match catch_up(&pool, &Enrollments, RunnerOptions::default()).await {
            Err(err) => break err,
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the event was never applied"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    assert!(
        matches!(err, projections::runner::RunnerError::Poison { ref event_type, .. } if event_type == "Enrolled"),
        "{err}"
    );
}

/// A small deterministic pseudo-random source (xorshift), so a history is the same every run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.roll(items.len())].clone()
    }
}

/// One event for the log: aggregate type, stream id, payload.
type RawEvent = (&'static str, String, serde_json::Value);

/// The ids an episode of a raw history is about.
struct Cast {
    customers: [CustomerId; 2],
    learners: [LearnerId; 2],
    coupons: [Uuid; 2],
    redemptions: [Uuid; 3],
    /// Enrollment stream ids that are not the ones their events' keys give.
    stray_ids: [String; 2],
}

impl Cast {
    fn new() -> Self {
        Self {
            customers: [customer(), customer()],
            learners: [e2e_tests::learner(), e2e_tests::learner()],
            coupons: [Uuid::new_v4(), Uuid::new_v4()],
            redemptions: [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()],
            stray_ids: [Uuid::new_v4().to_string(), Uuid::new_v4().to_string()],
        }
    }
}

/// `count` events of every kind the read model reads, in any order: inputs before and after
/// enrollments, enrollments whose stream id is not the one their key gives, updates of
/// enrollments that do not exist, reversals of unknown redemptions... In episodes of 4 to 33
/// events about a new cast each (so a later event rarely hides an earlier one's effect), over
/// the same 4 runs (two of one course, one whose id gives no course key).
fn raw_history(seed: u64, count: usize) -> Vec<RawEvent> {
    use domain::completion::{CompletionEvent, GradeLabel, ProgressStatus};
    use domain::consent::ConsentEvent;
    use domain::content::ContentEvent;
    use domain::coupon::CouponEvent;
    use domain::customer::CustomerEvent;
    use domain::enrollment::EnrollmentEvent;
    let runs = [
        "course-v1:Raw+A+1",
        "course-v1:Raw+A+2",
        "course-v1:Raw+B+1",
        "raw-run-of-no-course",
    ];
    let course_keys = ["Raw+A", "Raw+B", "raw-run-of-no-course", "Raw+C"];
    let template: serde_json::Value =
        serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json")).unwrap();
    let mut dice = Dice(seed);
    let mut cast = Cast::new();
    let mut episode_left = 0;
    let mut events = Vec::new();
    for n in 0..count {
        if episode_left == 0 {
            cast = Cast::new();
            episode_left = 4 + dice.roll(30);
        }
        episode_left -= 1;
        let at = day(1) + chrono::Duration::minutes(n as i64);
        let customer_id = dice.pick(&cast.customers);
        let learner_id = dice.pick(&cast.learners);
        let course_run_id = run(dice.pick(&runs));
        let enrollment_id = if dice.roll(5) == 0 {
            dice.pick(&cast.stray_ids)
        } else {
            enrollment_stream_id(customer_id, learner_id, &course_run_id)
        };
        let coupon_id = domain::ids::CouponId(dice.pick(&cast.coupons));
        let redemption_id = dice.pick(&cast.redemptions);
        let subject = match dice.roll(5) {
            0 => ConsentSubject::Program(Uuid::nil()),
            _ => course(dice.pick(&course_keys)),
        };
        let stream = format!("raw-{}", Uuid::new_v4());
        let event = match dice.roll(16) {
            0..=2 => {
                let event = EnrollmentEvent::Enrolled {
                    customer_id,
                    learner_id,
                    course_run_id,
                    mode: dice.pick(&[CourseMode::Audit, CourseMode::Verified]),
                    source: dice.pick(&[EnrollmentSource::Manual, EnrollmentSource::EnterpriseApi]),
                    redemption_id: [None, Some(redemption_id)][dice.roll(2)],
                    at,
                };
                ("enrollment", enrollment_id, serde_json::to_value(event))
            }
            3 => {
                let event = match dice.roll(4) {
                    0 => EnrollmentEvent::ModeChanged {
                        customer_id,
                        learner_id,
                        course_run_id,
                        from: CourseMode::Audit,
                        to: dice.pick(&[CourseMode::Verified, CourseMode::Professional]),
                        at,
                    },
                    1 => EnrollmentEvent::Unenrolled {
                        customer_id,
                        learner_id,
                        course_run_id,
                        at,
                    },
                    2 => EnrollmentEvent::Reenrolled {
                        customer_id,
                        learner_id,
                        course_run_id,
                        at,
                    },
                    _ => EnrollmentEvent::SavedForLater {
                        customer_id,
                        learner_id,
                        course_run_id,
                        saved: dice.roll(2) == 0,
                    },
                };
                ("enrollment", enrollment_id, serde_json::to_value(event))
            }
            4 => {
                let event = match dice.roll(3) {
                    0 => CustomerEvent::CustomerCreated {
                        customer_id,
                        name: format!("Customer {n}"),
                        slug: format!("customer-{n}"),
                        consent: consent_required(),
                        enable_audit_enrollment: false,
                        enable_audit_data_reporting: false,
                    },
                    1 => CustomerEvent::CustomerUpdated {
                        customer_id,
                        name: Some(format!("Renamed {n}")),
                        slug: None,
                        consent: None,
                        enable_audit_enrollment: None,
                        enable_audit_data_reporting: None,
                    },
                    _ => CustomerEvent::CustomerUpdated {
                        customer_id,
                        name: None,
                        slug: Some(format!("slug-{n}")),
                        consent: None,
                        enable_audit_enrollment: None,
                        enable_audit_data_reporting: None,
                    },
                };
                ("customer", stream, serde_json::to_value(event))
            }
            5 | 6 => {
                let mut doc = template.clone();
                doc["key"] = course_run_id.0.clone().into();
                doc["title"] = format!("Title {n}").into();
                doc["start"] = at.to_rfc3339().into();
                let mut metadata = discovery::from_discovery(ContentType::CourseRun, &doc).unwrap();
                metadata.course_key = (dice.roll(2) == 0).then(|| "Raw+Other".to_string());
                let event = if dice.roll(2) == 0 {
                    ContentEvent::ContentPublished { metadata }
                } else {
                    ContentEvent::ContentUpdated { metadata }
                };
                ("content_item", stream, serde_json::to_value(event))
            }
            7..=9 => {
                let source = ConsentSource::Api;
                let event = match dice.roll(3) {
                    0 | 1 => ConsentEvent::ConsentGranted {
                        customer_id,
                        learner_id,
                        subject,
                        source,
                    },
                    _ => ConsentEvent::ConsentRevoked {
                        customer_id,
                        learner_id,
                        subject,
                        source,
                    },
                };
                ("consent", stream, serde_json::to_value(event))
            }
            10..=12 => {
                let code = format!("CODE{n}");
                let event = match dice.roll(3) {
                    0 => CouponEvent::CouponCreated {
                        coupon_id,
                        customer_id,
                        catalog_id: domain::ids::CatalogId(Uuid::nil()),
                        name: format!("Coupon {n}"),
                        usage: CouponUsage::SingleUse,
                        benefit: [
                            CouponBenefit::Percentage { value: 10.0 },
                            CouponBenefit::Absolute { value: 5.0 },
                        ][dice.roll(2)],
                        valid_from: at,
                        valid_until: at,
                        email_domains: Vec::new(),
                        codes: vec![code],
                    },
                    1 => CouponEvent::CodeRedeemed {
                        coupon_id,
                        customer_id,
                        catalog_id: domain::ids::CatalogId(Uuid::nil()),
                        code,
                        redemption_id,
                        learner_id,
                        course_run_id,
                        at,
                    },
                    _ => CouponEvent::RedemptionReversed {
                        coupon_id,
                        customer_id,
                        code,
                        redemption_id,
                        learner_id,
                        course_run_id,
                        reason: "test".into(),
                    },
                };
                ("coupon", stream, serde_json::to_value(event))
            }
            _ => {
                let grade = dice.pick(&[GradeLabel::Pass, GradeLabel::Fail, GradeLabel::Audit]);
                let percent = [None, Some(n as f64 / count as f64)][dice.roll(2)];
                let status = dice.pick(&[ProgressStatus::Passed, ProgressStatus::InProgress]);
                let event = if dice.roll(2) == 0 {
                    CompletionEvent::CourseCompleted {
                        customer_id,
                        learner_id,
                        course_run_id,
                        grade,
                        percent,
                        completed_at: at,
                        progress_status: status,
                    }
                } else {
                    CompletionEvent::CompletionGradeChanged {
                        customer_id,
                        learner_id,
                        course_run_id,
                        grade,
                        percent,
                        completed_at: at,
                        progress_status: status,
                    }
                };
                ("completion", stream, serde_json::to_value(event))
            }
        };
        let (aggregate_type, stream, payload) = event;
        events.push((aggregate_type, stream, payload.unwrap()));
    }
    events
}

/// Every index of the read model's tables, as PostgreSQL would create it.
async fn index_definitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes
          WHERE schemaname = 'public' AND tablename = ANY ($1) ORDER BY indexdef",
    )
    .bind(Enrollments.tables())
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_fold_from_zero_meeting_a_poison_event_leaves_the_rebuild_stopped_before_it(
    pool: PgPool,
) {
    let history = raw_history(0x51ed_270b_2e1f_9a3c, 120);
    append_raw(&pool, &history[..60]).await;
    append_raw(
        &pool,
        &[(
            "enrollment",
            Uuid::new_v4().to_string(),
            serde_json::json!({"Enrolled": {"not": "an enrollment"}}),
        )],
    )
    .await;
    append_raw(&pool, &history[60..]).await;
    // The reader takes events only behind every open transaction of the cluster, where tests
    // run in parallel.
    e2e_tests::read_log(&pool, history.len() + 1).await;
    // The rows of the events before the poison one, applied one at a time.
    let mut step = 0;
    while projections::runner::run_batch(&pool, &Enrollments, "enrollments", None, 1)
        .await
        .is_ok()
    {
        step += 1;
        assert!(step < 200, "the poison event was never met");
    }
    let expected = e2e_tests::dump_tables(&pool, &Enrollments).await;
    assert!(
        expected.len() > 10,
        "{} rows before the poison event",
        expected.len()
    );

    let together: Vec<Arc<dyn Projection>> = vec![Arc::new(Enrollments)];
    let options = RunnerOptions {
        batch_size: 7,
        ..RunnerOptions::default()
    };
    let err = projections::rebuild::in_place_together(&pool, &together, options, None)
        .await
        .unwrap_err();
    match &err {
        projections::runner::RunnerError::Poison { event_type, .. } => {
            assert_eq!(event_type, "Enrolled");
        }
        other => panic!("expected a poison error, got {other}"),
    }
    assert_eq!(e2e_tests::dump_tables(&pool, &Enrollments).await, expected);
}

/// Appends `events` straight to the log in one transaction, each recorded a millisecond after
/// the previous one.
async fn append_raw(pool: &PgPool, events: &[RawEvent]) {
    let mut tx = pool.begin().await.unwrap();
    let start = Utc::now();
    for (n, (aggregate_type, stream, payload)) in events.iter().enumerate() {
        let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata, recorded_at)
             VALUES ($1, $2, $3, $4, '1.0', $5, '{}', $6)",
        )
        .bind(aggregate_type)
        .bind(stream)
        .bind(1_000 + n as i64)
        .bind(event_type)
        .bind(payload)
        .bind(start + chrono::Duration::milliseconds(n as i64))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn batches_of_any_size_give_the_rows_of_one_event_at_a_time(pool: PgPool) {
    let (world, l) = report_world(&pool).await;
    let c = world.customer;
    let code = world.coupon(CouponUsage::SingleUse, 1).await.remove(0);
    let other_run = "course-v1:edX+Other+2025";
    publish_run(&world.store, other_run, "Other").await;
    consent(&world.store, c, l[1], course("edX+Other"), Action::Grant).await;
    let request = store::services::redemption::RedeemRequest {
        course_run_id: run(other_run),
        ..world.redeem_request(&code, l[1])
    };
    store::services::redemption::redeem(&world.store, &coupon_services(), request, &meta())
        .await
        .unwrap();
    fact(&world.store, c, l[0], RUN, day(21), passing_grade(0.7)).await;
    rename_customer(&world.store, c, "Acme Renamed").await;
    consent(&world.store, c, l[0], course("edX+DemoX"), Action::Revoke).await;
    publish_run(&world.store, RUN, "Demo, Second Edition").await;
    append_raw(&pool, &raw_history(0x2545_f491_4f6c_dd1d, 600)).await;
    settle(&pool, &Enrollments).await;

    let mut dumps = Vec::new();
    for batch_size in [1, 7, 1000] {
        let options = RunnerOptions {
            batch_size,
            ..RunnerOptions::default()
        };
        projections::rebuild::in_place(&pool, &Enrollments, options)
            .await
            .unwrap();
        dumps.push((
            batch_size,
            e2e_tests::dump_tables(&pool, &Enrollments).await,
        ));
    }
    // Rebuilt together with one read of the log: the whole log folded in memory, each table
    // written once, its indexes dropped and built again around the writes.
    let indexes = index_definitions(&pool).await;
    let together: Vec<Arc<dyn Projection>> = vec![Arc::new(Enrollments)];
    let options = RunnerOptions {
        batch_size: 50,
        ..RunnerOptions::default()
    };
    projections::rebuild::in_place_together(&pool, &together, options, None)
        .await
        .unwrap();
    let folded = e2e_tests::dump_tables(&pool, &Enrollments).await;
    assert_eq!(index_definitions(&pool).await, indexes);
    assert!(indexes.len() > 7, "{indexes:#?}");

    let (_, one_by_one) = &dumps[0];
    let report_rows = one_by_one
        .iter()
        .filter(|r| r.starts_with("enrollments_report:"))
        .count();
    assert!(report_rows >= 50, "{report_rows} report rows");
    let folded = ("folded from zero".to_string(), &folded);
    let batches = dumps[1..]
        .iter()
        .map(|(size, rows)| (format!("batches of {size}"), rows));
    for (how, rows) in batches.chain([folded]) {
        let first_difference = one_by_one.iter().zip(rows).find(|(a, b)| a != b);
        assert!(
            rows == one_by_one,
            "{how}: {} rows for {}, first difference {first_difference:#?}",
            rows.len(),
            one_by_one.len()
        );
    }
}
