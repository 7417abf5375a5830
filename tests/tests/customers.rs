//! Customer slugs are unique across customers, through the slug registry.

use domain::customer::{customer_stream_id, Customer, CustomerCommand, CustomerError};
use domain::ids::CustomerId;
use e2e_tests::{consent_required, customer, meta};
use sqlx::PgPool;
use store::error::{CommandError, FailureKind};
use store::services::customers::{execute, CustomerServiceError};
use store::EventStore;

fn create(id: CustomerId, slug: &str) -> CustomerCommand {
    CustomerCommand::CreateCustomer {
        customer_id: id,
        name: "Acme".into(),
        slug: slug.into(),
        consent: consent_required(),
        enable_audit_enrollment: false,
        enable_audit_data_reporting: false,
    }
}

fn rename(slug: &str) -> CustomerCommand {
    CustomerCommand::UpdateCustomer {
        name: None,
        slug: Some(slug.into()),
        consent: None,
        enable_audit_enrollment: None,
        enable_audit_data_reporting: None,
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_slug_taken_by_one_customer_is_refused_to_another(pool: PgPool) {
    let store = EventStore::new(pool);
    let (a, b) = (customer(), customer());
    execute(&store, a, create(a, "acme"), &meta())
        .await
        .unwrap();
    let err = execute(&store, b, create(b, "acme"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Conflict, "{err}");
    let (second, _) = store
        .load::<Customer>(&customer_stream_id(b))
        .await
        .unwrap();
    assert!(!second.is_created());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn renaming_frees_the_old_slug(pool: PgPool) {
    let store = EventStore::new(pool);
    let (a, b) = (customer(), customer());
    execute(&store, a, create(a, "acme"), &meta())
        .await
        .unwrap();
    execute(&store, a, rename("acme-corp"), &meta())
        .await
        .unwrap();
    let (renamed, _) = store
        .load::<Customer>(&customer_stream_id(a))
        .await
        .unwrap();
    assert_eq!(renamed.slug(), "acme-corp");
    execute(&store, b, create(b, "acme"), &meta())
        .await
        .unwrap();
    let err = execute(&store, b, rename("acme-corp"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Conflict);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_refused_creation_releases_the_slug_it_claimed(pool: PgPool) {
    let store = EventStore::new(pool);
    let (a, b) = (customer(), customer());
    // A blank name is refused by the customer after the slug was claimed.
    let mut bad = create(a, "acme");
    if let CustomerCommand::CreateCustomer { name, .. } = &mut bad {
        name.clear();
    }
    let err = execute(&store, a, bad, &meta()).await.unwrap_err();
    assert!(
        matches!(err, CustomerServiceError::Customer(CommandError::Domain(CustomerError::Invalid(ref i))) if i.field == "name"),
        "{err}"
    );
    execute(&store, b, create(b, "acme"), &meta())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_malformed_slug_is_a_validation_error_on_the_slug_field(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let a = customer();
    let err = execute(&store, a, create(a, "Not A Slug"), &meta())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Validation);
    assert!(
        matches!(err, CustomerServiceError::Customer(CommandError::Domain(CustomerError::Invalid(ref i))) if i.field == "slug")
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn concurrent_identical_creations_keep_the_slug_held(pool: PgPool) {
    let store = std::sync::Arc::new(EventStore::new(pool));
    let a = customer();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move { execute(&store, a, create(a, "acme"), &meta()).await });
    }
    let mut created = 0;
    while let Some(outcome) = tasks.join_next().await {
        created += usize::from(outcome.unwrap().is_ok());
    }
    assert_eq!(created, 1);
    let b = customer();
    let err = execute(&store, b, create(b, "acme"), &meta())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        FailureKind::Conflict,
        "the slug must still be held: {err}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_refused_creation_with_an_idempotency_key_still_releases_its_slug(pool: PgPool) {
    let store = EventStore::new(pool);
    let (a, b) = (customer(), customer());
    let mut bad = create(a, "acme");
    if let CustomerCommand::CreateCustomer { name, .. } = &mut bad {
        name.clear();
    }
    let keyed = meta().with_idempotency_key("create-acme").unwrap();
    execute(&store, a, bad, &keyed).await.unwrap_err();
    execute(&store, b, create(b, "acme"), &meta())
        .await
        .unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn racing_renames_leave_only_the_final_slug_held(pool: PgPool) {
    let store = std::sync::Arc::new(EventStore::new(pool));
    let a = customer();
    execute(&store, a, create(a, "origin"), &meta())
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for slug in ["first", "second", "third"] {
        let store = store.clone();
        tasks.spawn(async move { execute(&store, a, rename(slug), &meta()).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        outcome.unwrap().unwrap();
    }
    let (renamed, _) = store
        .load::<Customer>(&customer_stream_id(a))
        .await
        .unwrap();
    for slug in ["origin", "first", "second", "third"] {
        let probe = customer();
        let outcome = execute(&store, probe, create(probe, slug), &meta()).await;
        assert_eq!(
            outcome.is_ok(),
            slug != renamed.slug(),
            "{slug}: only the customer's slug stays held"
        );
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_create_addressed_to_another_customer_is_refused(pool: PgPool) {
    let store = EventStore::new(pool);
    let (a, b) = (customer(), customer());
    let err = execute(&store, a, create(b, "acme"), &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CustomerServiceError::Customer(CommandError::Domain(CustomerError::Invalid(ref i))) if i.field == "customer_id")
    );
}
