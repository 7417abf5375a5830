//! Enrollments: one stream per customer x learner x course run, whatever the concurrency.

use domain::course_mode::CourseMode;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::CourseRunId;
use e2e_tests::{customer, learner, meta, stream_length};
use sqlx::PgPool;
use std::sync::Arc;
use store::EventStore;

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn thirty_two_concurrent_identical_enrollments_give_one_enrollment(pool: PgPool) {
    let store = Arc::new(EventStore::new(pool.clone()));
    let (c, l) = (customer(), learner());
    let run = CourseRunId("course-v1:edX+DemoX+Demo_Course".into());
    let stream = enrollment_stream_id(c, l, &run);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (store, stream, run) = (store.clone(), stream.clone(), run.clone());
        tasks.spawn(async move {
            let enroll = EnrollmentCommand::Enroll {
                customer_id: c,
                learner_id: l,
                course_run_id: run,
                mode: CourseMode::Verified,
                source: EnrollmentSource::EnterpriseApi,
                redemption_id: None,
                at: chrono::Utc::now(),
            };
            store
                .execute::<Enrollment>(&stream, enroll, &(), &meta())
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result
            .unwrap()
            .expect("every identical enrollment succeeds or is a no-op");
    }
    assert_eq!(stream_length(&pool, &stream).await, 1);
    let streams: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'enrollment'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(streams, 1);
}
