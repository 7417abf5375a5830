//! Appending and loading, conflicts, idempotency keys.

use domain::consent::{
    Action, Consent, ConsentCommand, ConsentEvent, ConsentSource, ConsentState, ConsentSubject,
};
use domain::ids::CourseKey;
use e2e_tests::{customer, learner, meta};
use sqlx::PgPool;
use std::sync::Arc;
use store::error::FailureKind;
use store::EventStore;

fn grant(c: domain::ids::CustomerId, l: domain::ids::LearnerId, action: Action) -> ConsentCommand {
    ConsentCommand {
        customer_id: c,
        learner_id: l,
        subject: ConsentSubject::Course(CourseKey("edX+DemoX".into())),
        source: ConsentSource::Api,
        action,
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn appended_events_load_back_into_the_aggregate(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, l) = (customer(), learner());
    let command = grant(c, l, Action::Grant);
    let id = domain::consent::consent_stream_id(c, l, &command.subject);

    let first = store
        .execute::<Consent>(&id, command, &(), &meta())
        .await
        .unwrap();
    assert_eq!(first.sequence, 1);
    assert_eq!(first.event_types, vec!["ConsentGranted"]);
    let revoked = store
        .execute::<Consent>(&id, grant(c, l, Action::Revoke), &(), &meta())
        .await
        .unwrap();
    assert_eq!(revoked.sequence, 2);
    assert!(revoked.position > first.position);

    let (consent, sequence) = store.load::<Consent>(&id).await.unwrap();
    assert_eq!(sequence, 2);
    assert_eq!(consent.state(), ConsentState::NotGranted);

    let (payload, metadata): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "SELECT payload, metadata FROM events WHERE aggregate_id = $1 AND sequence = 1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let event: ConsentEvent = serde_json::from_value(payload).unwrap();
    assert!(matches!(event, ConsentEvent::ConsentGranted { learner_id, .. } if learner_id == l));
    assert_eq!(metadata["actor"], "test");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_domain_refusal_appends_nothing_and_says_why(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, l) = (customer(), learner());
    let command = grant(c, l, Action::Revoke);
    let id = domain::consent::consent_stream_id(c, l, &command.subject);
    let err = store
        .execute::<Consent>(&id, command, &(), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::ForbiddenTransition);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn concurrent_commands_on_one_stream_are_retried_not_duplicated(pool: PgPool) {
    let store = Arc::new(EventStore::new(pool.clone()));
    let (c, l) = (customer(), learner());
    let id = domain::consent::consent_stream_id(c, l, &grant(c, l, Action::Grant).subject);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (store, id) = (store.clone(), id.clone());
        tasks.spawn(async move {
            store
                .execute::<Consent>(&id, grant(c, l, Action::Grant), &(), &meta())
                .await
        });
    }
    let mut appended = 0;
    while let Some(result) = tasks.join_next().await {
        if result.unwrap().unwrap().position.is_some() {
            appended += 1;
        }
    }
    assert_eq!(appended, 1, "exactly one of 32 identical grants appends");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_repeated_idempotency_key_returns_the_first_outcome_and_appends_nothing(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, l) = (customer(), learner());
    let id = domain::consent::consent_stream_id(c, l, &grant(c, l, Action::Grant).subject);
    let keyed = meta().with_idempotency_key("grant-42").unwrap();

    let first = store
        .execute::<Consent>(&id, grant(c, l, Action::Grant), &(), &keyed)
        .await
        .unwrap();
    // A revocation in between: the repeated grant must not grant again.
    store
        .execute::<Consent>(&id, grant(c, l, Action::Revoke), &(), &meta())
        .await
        .unwrap();
    let again = store
        .execute::<Consent>(&id, grant(c, l, Action::Grant), &(), &keyed)
        .await
        .unwrap();

    assert!(again.replayed);
    assert_eq!(
        (again.sequence, again.position, again.event_types.clone()),
        (first.sequence, first.position, first.event_types)
    );
    let (consent, sequence) = store.load::<Consent>(&id).await.unwrap();
    assert_eq!(sequence, 2);
    assert_eq!(consent.state(), ConsentState::NotGranted);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn concurrent_requests_with_one_idempotency_key_append_once(pool: PgPool) {
    let store = Arc::new(EventStore::new(pool.clone()));
    let (c, l) = (customer(), learner());
    let id = domain::consent::consent_stream_id(c, l, &grant(c, l, Action::Grant).subject);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, id) = (store.clone(), id.clone());
        tasks.spawn(async move {
            let keyed = meta().with_idempotency_key("same-request").unwrap();
            store
                .execute::<Consent>(&id, grant(c, l, Action::Grant), &(), &keyed)
                .await
                .unwrap()
        });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = tasks.join_next().await {
        outcomes.push(result.unwrap());
    }
    let positions: std::collections::HashSet<_> =
        outcomes.iter().filter_map(|o| o.position).collect();
    assert_eq!(
        positions.len(),
        1,
        "every caller sees the one appended event"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn events_cannot_be_edited_or_deleted(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (c, l) = (customer(), learner());
    let id = domain::consent::consent_stream_id(c, l, &grant(c, l, Action::Grant).subject);
    store
        .execute::<Consent>(&id, grant(c, l, Action::Grant), &(), &meta())
        .await
        .unwrap();
    let update = sqlx::query("UPDATE events SET event_type = 'X'")
        .execute(&pool)
        .await;
    assert!(update
        .unwrap_err()
        .to_string()
        .contains("events are immutable"));
    let delete = sqlx::query("DELETE FROM events").execute(&pool).await;
    assert!(delete
        .unwrap_err()
        .to_string()
        .contains("events are immutable"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_unreachable_database_is_reported_as_unavailable(pool: PgPool) {
    pool.close().await;
    let store = EventStore::new(pool);
    let (c, l) = (customer(), learner());
    let id = domain::consent::consent_stream_id(c, l, &grant(c, l, Action::Grant).subject);
    let err = store
        .execute::<Consent>(&id, grant(c, l, Action::Grant), &(), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Unavailable, "{err}");
}
