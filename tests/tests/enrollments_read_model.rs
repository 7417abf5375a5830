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

/// Every row of the projection's tables, as text, in a stable order.
async fn dump(pool: &PgPool, projection: &dyn Projection) -> Vec<String> {
    let mut rows = Vec::new();
    for table in projection.tables() {
        let mut table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT '{table}: ' || to_jsonb(t)::text FROM {table} t ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        rows.append(&mut table_rows);
    }
    rows
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

    let incremental = dump(&pool, &Enrollments).await;
    assert!(incremental.len() >= 12);
    projections::rebuild::into_fresh_tables(&pool, &Enrollments, RunnerOptions::default())
        .await
        .unwrap();
    assert_eq!(dump(&pool, &Enrollments).await, incremental);
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
