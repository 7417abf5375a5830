//! The transmission audit read model: attempts recorded through the `transmission` aggregate,
//! then the projection, then the queries per item and per configuration.

use chrono::Utc;
use domain::channel::Channel;
use domain::ids::{ChannelConfigId, CustomerId, LearnerId};
use domain::transmission::{
    transmission_stream_id, Attempt, Transmission, TransmissionAction, TransmissionCommand,
    TransmissionStatus,
};
use e2e_tests::{meta, project};
use projections::read_models::transmissions::{
    attempts_of_config, attempts_of_item, item, status_counts_of_config, AttemptFilter,
    Transmissions,
};
use sqlx::PgPool;
use uuid::Uuid;

fn attempt(
    config: Uuid,
    item_id: Uuid,
    number: u32,
    status: TransmissionStatus,
    http_status: Option<u16>,
    excerpt: Option<&str>,
) -> Attempt {
    Attempt {
        item_id,
        config_id: ChannelConfigId(config),
        customer_id: CustomerId(Uuid::from_u128(1)),
        channel: Channel::Xapi,
        action: TransmissionAction::Completion,
        learner_id: Some(LearnerId(Uuid::from_u128(2))),
        attempt: number,
        status,
        http_status,
        excerpt: excerpt.map(str::to_string),
        duration_ms: 12,
        at: Utc::now(),
    }
}

async fn record(store: &store::EventStore, attempt: Attempt) {
    let stream = transmission_stream_id(attempt.item_id);
    store
        .execute::<Transmission>(
            &stream,
            TransmissionCommand::RecordAttempt(attempt),
            &(),
            &meta(),
        )
        .await
        .expect("recording the attempt");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn every_attempt_is_audited_per_item_and_per_configuration(pool: PgPool) {
    let store = store::EventStore::new(pool.clone());
    let (config, other_config) = (Uuid::new_v4(), Uuid::new_v4());
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    use TransmissionStatus::*;
    record(
        &store,
        attempt(config, a, 1, Failed, Some(503), Some("busy")),
    )
    .await;
    record(
        &store,
        attempt(config, a, 2, Sent, Some(200), Some("[\"ok\"]")),
    )
    .await;
    record(&store, attempt(config, b, 1, Failed, Some(500), None)).await;
    project(&pool, &Transmissions).await;
    record(&store, attempt(config, b, 2, DeadLettered, Some(500), None)).await;
    record(&store, attempt(other_config, c, 1, DryRun, None, None)).await;
    project(&pool, &Transmissions).await;

    let of_a = attempts_of_item(&pool, a).await.unwrap();
    let statuses: Vec<_> = of_a.iter().map(|x| x.status.as_str()).collect();
    assert_eq!(statuses, ["failed", "sent"]);
    assert_eq!(of_a[0].http_status, Some(503));
    assert_eq!(of_a[0].excerpt.as_deref(), Some("busy"));
    assert_eq!(of_a[1].attempt, 2);
    assert_eq!(of_a[1].duration_ms, 12);

    let item_a = item(&pool, a).await.unwrap().expect("item a");
    assert_eq!((item_a.attempts, item_a.last_status.as_str()), (2, "sent"));
    assert!(item_a.first_sent_at.is_some());
    // b's attempts came in two batches: the counts add up.
    let item_b = item(&pool, b).await.unwrap().expect("item b");
    assert_eq!(
        (item_b.attempts, item_b.last_status.as_str()),
        (2, "dead_lettered")
    );
    assert_eq!(item_b.first_sent_at, None);

    let page = attempts_of_config(
        &pool,
        config,
        &AttemptFilter {
            limit: 3,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let items: Vec<Uuid> = page.iter().map(|x| x.item_id).collect();
    assert_eq!(items, [b, b, a], "newest first, only this configuration's");
    let next = attempts_of_config(
        &pool,
        config,
        &AttemptFilter {
            limit: 3,
            before: Some(page[2].position),
            status: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].status, "failed");
    let failed = attempts_of_config(
        &pool,
        config,
        &AttemptFilter {
            limit: 10,
            status: Some("failed".into()),
            before: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(failed.len(), 2);

    let counts = status_counts_of_config(&pool, config).await.unwrap();
    assert_eq!(
        counts,
        [("dead_lettered".to_string(), 1), ("sent".to_string(), 1)]
    );
    let other = status_counts_of_config(&pool, other_config).await.unwrap();
    assert_eq!(other, [("dry_run".to_string(), 1)]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_audit_holds_no_token_and_no_email(pool: PgPool) {
    let store = store::EventStore::new(pool.clone());
    let (config, id) = (Uuid::new_v4(), Uuid::new_v4());
    let body =
        r#"{"access_token": "s3cr3t-token", "detail": "Invalid user identifier: ann@example.com"}"#;
    record(
        &store,
        attempt(
            config,
            id,
            1,
            TransmissionStatus::Failed,
            Some(400),
            Some(body),
        ),
    )
    .await;
    project(&pool, &Transmissions).await;
    let excerpt = attempts_of_item(&pool, id).await.unwrap()[0]
        .excerpt
        .clone()
        .unwrap();
    assert!(!excerpt.contains("s3cr3t"), "{excerpt}");
    assert!(!excerpt.contains("ann@example.com"), "{excerpt}");
    assert!(excerpt.contains("Invalid user identifier"), "{excerpt}");
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%s3cr3t%' OR payload::text LIKE '%ann@%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(logged, 0);
}
