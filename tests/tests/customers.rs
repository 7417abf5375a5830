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
