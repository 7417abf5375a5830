//! The learner directory and memberships: invitations by email, registration, erasure.

use domain::ids::CustomerId;
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipState};
use e2e_tests::{customer, meta};
use sqlx::PgPool;
use store::directory::{self, DirectoryError, LmsUser};
use store::services::learners;
use store::EventStore;

fn user(n: i64, email: &str) -> LmsUser {
    LmsUser {
        lms_user_id: n,
        username: format!("user{n}"),
        email: email.into(),
        sso_ids: vec![("acme-idp".into(), format!("EMP{n}"))],
    }
}

async fn memberships(store: &EventStore, learner: domain::ids::LearnerId) -> LearnerMemberships {
    store
        .load::<LearnerMemberships>(&membership_stream_id(learner))
        .await
        .unwrap()
        .0
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_email_invitation_becomes_a_membership_when_the_learner_registers(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (a, b): (CustomerId, CustomerId) = (customer(), customer());
    let (invited, _) = learners::link_by_email(&store, a, "Ada@Example.com", &meta())
        .await
        .unwrap();
    learners::link_by_email(&store, b, "ada@example.com", &meta())
        .await
        .unwrap();
    assert_eq!(
        memberships(&store, invited).await.membership(a),
        Some(MembershipState::Pending)
    );

    let registered = learners::register(&store, &user(41, "ada@example.com"), &meta())
        .await
        .unwrap();
    assert_eq!(registered.learner_id, invited);
    assert!(registered.claimed_invitation);
    let linked = memberships(&store, invited).await;
    assert!(matches!(
        linked.membership(a),
        Some(MembershipState::Linked { .. })
    ));
    assert!(matches!(
        linked.membership(b),
        Some(MembershipState::Linked { .. })
    ));
    assert_eq!(
        linked.active_customer(),
        Some(b),
        "the latest invitation becomes active"
    );

    // No email or username in any event. (Search for the whole values: random uuids in the
    // payloads may well contain the letters of a short name.)
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE payload::text ILIKE '%ada@example.com%' OR metadata::text ILIKE '%ada@example.com%'
             OR payload::text LIKE '%user41%' OR metadata::text LIKE '%user41%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn linking_a_registered_learner_makes_that_customer_the_only_active_one(pool: PgPool) {
    let store = EventStore::new(pool);
    let (a, b) = (customer(), customer());
    let learner = learners::register(&store, &user(1, "grace@example.com"), &meta())
        .await
        .unwrap()
        .learner_id;
    learners::link_by_email(&store, a, "grace@example.com", &meta())
        .await
        .unwrap();
    learners::link_by_email(&store, b, "grace@example.com", &meta())
        .await
        .unwrap();
    let state = memberships(&store, learner).await;
    assert_eq!(state.active_customer(), Some(b));
    assert_eq!(
        state.membership(a),
        Some(MembershipState::Linked { active: false })
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn registering_again_updates_the_directory_and_keeps_the_learner_id(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let first = learners::register(&store, &user(5, "old@example.com"), &meta())
        .await
        .unwrap();
    let mut changed = user(5, "new@example.com");
    changed.username = "renamed".into();
    let again = learners::register(&store, &changed, &meta()).await.unwrap();
    assert_eq!(first.learner_id, again.learner_id);
    let record = directory::find_by_username(&pool, "renamed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.email.as_deref(), Some("new@example.com"));
    assert_eq!(
        directory::sso_id(&pool, first.learner_id, "acme-idp")
            .await
            .unwrap()
            .as_deref(),
        Some("EMP5")
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_username_of_another_learner_is_refused(pool: PgPool) {
    let store = EventStore::new(pool);
    learners::register(&store, &user(1, "one@example.com"), &meta())
        .await
        .unwrap();
    let mut clash = user(2, "two@example.com");
    clash.username = "user1".into();
    let err = learners::register(&store, &clash, &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, learners::LearnerServiceError::Directory(DirectoryError::UsernameTaken(ref u)) if u == "user1"),
        "{err}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn malformed_emails_are_refused_with_the_field(pool: PgPool) {
    let store = EventStore::new(pool);
    let err = learners::register(&store, &user(3, "not-an-email"), &meta())
        .await
        .unwrap_err();
    assert!(
        matches!(err, learners::LearnerServiceError::Directory(DirectoryError::Invalid(ref i)) if i.field == "email")
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn erasure_blanks_personal_data_and_the_log_still_loads(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let a = customer();
    let learner = learners::register(&store, &user(9, "erase@example.com"), &meta())
        .await
        .unwrap()
        .learner_id;
    learners::link_by_email(&store, a, "erase@example.com", &meta())
        .await
        .unwrap();
    assert!(directory::erase(&pool, learner).await.unwrap());
    let record = directory::find(&pool, learner).await.unwrap().unwrap();
    assert_eq!(
        (record.lms_user_id, record.username, record.email),
        (None, None, None)
    );
    assert_eq!(
        directory::sso_id(&pool, learner, "acme-idp").await.unwrap(),
        None
    );
    assert_eq!(
        memberships(&store, learner).await.active_customer(),
        Some(a)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn concurrent_reports_of_one_new_lms_user_give_one_learner(pool: PgPool) {
    let store = std::sync::Arc::new(EventStore::new(pool.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            learners::register(&store, &user(77, "race@example.com"), &meta()).await
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(outcome) = tasks.join_next().await {
        ids.insert(outcome.unwrap().expect("every report succeeds").learner_id);
    }
    assert_eq!(ids.len(), 1);
}
