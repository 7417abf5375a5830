//! The global log reader: commit-safe order, never skipping an event of a slower transaction.

use domain::consent::{Action, Consent, ConsentCommand, ConsentSource, ConsentSubject};
use domain::ids::CourseKey;
use e2e_tests::{customer, learner, meta, read_log};
use sqlx::{PgPool, Postgres, Transaction};
use store::log::{self, LogPosition};
use store::EventStore;

async fn insert(tx: &mut Transaction<'_, Postgres>, stream: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('test', $1, 1, 'Tested', '1.0', '{}', '{}') RETURNING global_position",
    )
    .bind(stream)
    .fetch_one(&mut **tx)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn out_of_order_commits_are_both_read_in_order(pool: PgPool) {
    // A takes the lower position, B the higher; B commits first.
    let mut a = pool.begin().await.unwrap();
    let position_a = insert(&mut a, "a").await;
    let mut b = pool.begin().await.unwrap();
    let position_b = insert(&mut b, "b").await;
    assert!(position_a < position_b);
    b.commit().await.unwrap();

    // B is committed, but A (older) is in flight: taking B now would let a reader's position
    // pass A, so the reader waits for A.
    let early = log::read_after(&pool, LogPosition::default(), 100)
        .await
        .unwrap();
    assert!(
        early.is_empty(),
        "nothing is readable while an older transaction is in flight"
    );

    a.commit().await.unwrap();
    let events = read_log(&pool, 2).await;
    let streams: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(streams, vec!["a", "b"]);
    assert_eq!(events[0].position.global_position, position_a);
    assert_eq!(events[1].position.global_position, position_b);
    assert!(events[0].position < events[1].position);

    // Resuming after A returns exactly B.
    let rest = log::read_after(&pool, events[0].position, 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].aggregate_id, "b");
    assert!(log::read_after(&pool, events[1].position, 100)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_rolled_back_transaction_leaves_a_harmless_hole(pool: PgPool) {
    let mut rolled_back = pool.begin().await.unwrap();
    insert(&mut rolled_back, "gone").await;
    let mut kept = pool.begin().await.unwrap();
    insert(&mut kept, "kept").await;
    kept.commit().await.unwrap();
    rolled_back.rollback().await.unwrap();

    let events = read_log(&pool, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].aggregate_id, "kept");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_log_returns_every_command_event_with_the_position_the_command_reported(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let mut reported = Vec::new();
    for _ in 0..5 {
        let (c, l) = (customer(), learner());
        let command = ConsentCommand {
            customer_id: c,
            learner_id: l,
            subject: ConsentSubject::Course(CourseKey("edX+DemoX".into())),
            source: ConsentSource::ConsentPage,
            action: Action::Grant,
        };
        let id = domain::consent::consent_stream_id(c, l, &command.subject);
        let appended = store
            .execute::<Consent>(&id, command, &(), &meta())
            .await
            .unwrap();
        reported.push(appended.position.unwrap());
    }
    read_log(&pool, reported.len()).await;
    // Read in small batches, as a projection does.
    let mut seen = Vec::new();
    let mut after = LogPosition::default();
    loop {
        let batch = log::read_after(&pool, after, 2).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        seen.extend(batch.iter().map(|e| e.position.global_position));
        assert!(batch
            .iter()
            .all(|e| e.event_type == "ConsentGranted" && e.aggregate_type == "consent"));
    }
    assert_eq!(seen, reported);
    assert_eq!(log::head(&pool).await.unwrap(), after);
}
