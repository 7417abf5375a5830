//! The learners read model: customers' memberships from the membership events, with the
//! directory's columns joined when read.

use domain::ids::{CustomerId, LearnerId};
use domain::membership::{
    membership_stream_id, LearnerMemberships, MembershipCommand, MembershipEvent,
};
use e2e_tests::{customer, meta};
use projections::read_models::learners::{
    memberships_of_customer, memberships_of_learner, Learners, MembershipFilter, MembershipRow,
    MembershipStatus,
};
use projections::runner::{catch_up, RunnerOptions};
use projections::Projection;
use sqlx::PgPool;
use store::directory::LmsUser;
use store::services::learners;
use store::EventStore;

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

async fn register(store: &EventStore, n: i64) -> LearnerId {
    let user = LmsUser {
        lms_user_id: n,
        username: format!("learner{n}"),
        email: format!("learner{n}@example.com"),
        sso_ids: Vec::new(),
    };
    learners::register(store, &user, &meta())
        .await
        .unwrap()
        .learner_id
}

async fn membership(store: &EventStore, command: MembershipCommand) {
    let stream = membership_stream_id(command.learner_id());
    store
        .execute::<LearnerMemberships>(&stream, command, &(), &meta())
        .await
        .unwrap();
}

async fn link(store: &EventStore, learner_id: LearnerId, customer_id: CustomerId, activate: bool) {
    let command = MembershipCommand::LinkLearner {
        learner_id,
        customer_id,
        activate,
    };
    membership(store, command).await;
}

async fn all_of(pool: &PgPool, customer: CustomerId) -> Vec<MembershipRow> {
    let (total, rows) =
        memberships_of_customer(pool, customer, &MembershipFilter::default(), 1, 100)
            .await
            .unwrap();
    assert_eq!(total as usize, rows.len());
    rows
}

async fn one(pool: &PgPool, customer: CustomerId, learner: LearnerId) -> Option<MembershipRow> {
    memberships_of_learner(pool, learner)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.customer_id == customer)
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_invitation_by_email_is_a_pending_membership_known_only_by_its_email(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let acme = customer();
    let (learner, _) = learners::link_by_email(&store, acme, "ada@example.com", &meta())
        .await
        .unwrap();
    settle(&pool, &Learners).await;

    let rows = all_of(&pool, acme).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.learner_id, row.state),
        (learner, MembershipStatus::Pending)
    );
    assert!(!row.active);
    assert!(row.is_relinkable);
    assert_eq!(row.lms_user_id, None);
    assert_eq!(row.username, None);
    assert_eq!(row.email.as_deref(), Some("ada@example.com"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn registration_links_pending_memberships_and_activates_the_latest_invitation(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (a, b) = (customer(), customer());
    let (learner, _) = learners::link_by_email(&store, a, "bo@example.com", &meta())
        .await
        .unwrap();
    learners::link_by_email(&store, b, "bo@example.com", &meta())
        .await
        .unwrap();
    settle(&pool, &Learners).await;
    let pending = one(&pool, a, learner).await.unwrap();

    let user = LmsUser {
        lms_user_id: 77,
        username: "bo".into(),
        email: "bo@example.com".into(),
        sso_ids: Vec::new(),
    };
    learners::register(&store, &user, &meta()).await.unwrap();
    settle(&pool, &Learners).await;

    let rows = memberships_of_learner(&pool, learner).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].customer_id, rows[0].active),
        (b, true),
        "active first"
    );
    assert_eq!((rows[1].customer_id, rows[1].active), (a, false));
    for row in &rows {
        assert_eq!(row.state, MembershipStatus::Linked);
        assert_eq!(row.lms_user_id, Some(77));
        assert_eq!(row.username.as_deref(), Some("bo"));
    }
    let linked = &rows[1];
    assert_eq!(
        linked.created_at, pending.created_at,
        "the pending row becomes the membership"
    );
    assert!(linked.updated_at > pending.updated_at);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn cancelling_a_pending_link_removes_the_membership(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let acme = customer();
    let (learner, _) = learners::link_by_email(&store, acme, "cy@example.com", &meta())
        .await
        .unwrap();
    let cancel = MembershipCommand::UnlinkLearner {
        learner_id: learner,
        customer_id: acme,
        is_relinkable: true,
    };
    membership(&store, cancel).await;
    settle(&pool, &Learners).await;

    assert!(all_of(&pool, acme).await.is_empty());
    assert!(memberships_of_learner(&pool, learner)
        .await
        .unwrap()
        .is_empty());
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn activating_another_customer_deactivates_the_first(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (a, b) = (customer(), customer());
    let learner = register(&store, 1).await;
    link(&store, learner, a, true).await;
    settle(&pool, &Learners).await;
    assert!(one(&pool, a, learner).await.unwrap().active);

    link(&store, learner, b, true).await;
    settle(&pool, &Learners).await;
    assert!(!one(&pool, a, learner).await.unwrap().active);
    assert!(one(&pool, b, learner).await.unwrap().active);

    let activate = MembershipCommand::ActivateMembership {
        learner_id: learner,
        customer_id: a,
    };
    membership(&store, activate).await;
    let deactivate = MembershipCommand::DeactivateMembership {
        learner_id: learner,
        customer_id: a,
    };
    membership(&store, deactivate).await;
    settle(&pool, &Learners).await;
    for customer in [a, b] {
        let row = one(&pool, customer, learner).await.unwrap();
        assert_eq!((row.state, row.active), (MembershipStatus::Linked, false));
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn unlinking_keeps_the_row_inactive_with_its_relinkable_flag(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let acme = customer();
    let (kept, barred) = (register(&store, 1).await, register(&store, 2).await);
    for (learner, is_relinkable) in [(kept, true), (barred, false)] {
        link(&store, learner, acme, true).await;
        let unlink = MembershipCommand::UnlinkLearner {
            learner_id: learner,
            customer_id: acme,
            is_relinkable,
        };
        membership(&store, unlink).await;
    }
    settle(&pool, &Learners).await;
    for (learner, is_relinkable) in [(kept, true), (barred, false)] {
        let row = one(&pool, acme, learner).await.unwrap();
        assert_eq!(row.state, MembershipStatus::Unlinked);
        assert!(!row.active);
        assert_eq!(row.is_relinkable, is_relinkable);
    }

    let unlinked = one(&pool, acme, kept).await.unwrap();
    link(&store, kept, acme, false).await;
    settle(&pool, &Learners).await;
    let relinked = one(&pool, acme, kept).await.unwrap();
    assert_eq!(
        (relinked.state, relinked.active),
        (MembershipStatus::Linked, false)
    );
    assert_eq!(
        relinked.created_at, unlinked.created_at,
        "a relink re-uses the row"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn timestamps_are_those_the_log_recorded(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (a, b) = (customer(), customer());
    let learner = register(&store, 1).await;
    link(&store, learner, a, true).await;
    link(&store, learner, b, true).await;
    settle(&pool, &Learners).await;

    let recorded: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(membership_stream_id(learner))
    .fetch_all(&pool)
    .await
    .unwrap();
    // LearnerLinked(a); then MembershipDeactivated(a), LearnerLinked(b).
    assert_eq!(recorded.len(), 3);
    let row_a = one(&pool, a, learner).await.unwrap();
    assert_eq!(
        (row_a.created_at, row_a.updated_at),
        (recorded[0], recorded[1])
    );
    let row_b = one(&pool, b, learner).await.unwrap();
    assert_eq!(
        (row_b.created_at, row_b.updated_at),
        (recorded[2], recorded[2])
    );
}

/// A customer with: three linked learners (one active), one unlinked, one pending invitation.
async fn mixed_customer(store: &EventStore) -> (CustomerId, Vec<LearnerId>) {
    let acme = customer();
    let mut ids = Vec::new();
    for n in 1..=4 {
        let learner = register(store, n).await;
        link(store, learner, acme, n == 2).await;
        ids.push(learner);
    }
    let unlink = MembershipCommand::UnlinkLearner {
        learner_id: ids[3],
        customer_id: acme,
        is_relinkable: true,
    };
    membership(store, unlink).await;
    let (pending, _) = learners::link_by_email(store, acme, "pending@example.com", &meta())
        .await
        .unwrap();
    ids.push(pending);
    (acme, ids)
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn filters_select_by_state_active_and_username(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (acme, ids) = mixed_customer(&store).await;
    settle(&pool, &Learners).await;
    let learners_of = |filter: MembershipFilter| {
        let pool = pool.clone();
        async move {
            let (total, rows) = memberships_of_customer(&pool, acme, &filter, 1, 100)
                .await
                .unwrap();
            assert_eq!(total as usize, rows.len());
            let mut ids: Vec<LearnerId> = rows.into_iter().map(|r| r.learner_id).collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<LearnerId>| {
        v.sort();
        v
    };

    assert_eq!(
        learners_of(MembershipFilter::default()).await,
        sorted(ids.clone())
    );
    let linked = MembershipFilter {
        state: Some(MembershipStatus::Linked),
        ..Default::default()
    };
    assert_eq!(learners_of(linked).await, sorted(ids[..3].to_vec()));
    let unlinked = MembershipFilter {
        state: Some(MembershipStatus::Unlinked),
        ..Default::default()
    };
    assert_eq!(learners_of(unlinked).await, vec![ids[3]]);
    let pending = MembershipFilter {
        state: Some(MembershipStatus::Pending),
        ..Default::default()
    };
    assert_eq!(learners_of(pending).await, vec![ids[4]]);
    let active = MembershipFilter {
        active: Some(true),
        ..Default::default()
    };
    assert_eq!(learners_of(active).await, vec![ids[1]]);
    let inactive_linked = MembershipFilter {
        state: Some(MembershipStatus::Linked),
        active: Some(false),
        ..Default::default()
    };
    assert_eq!(
        learners_of(inactive_linked).await,
        sorted(vec![ids[0], ids[2]])
    );
    let by_name = MembershipFilter {
        username: Some("LEARNER3".into()),
        ..Default::default()
    };
    assert_eq!(
        learners_of(by_name).await,
        vec![ids[2]],
        "case-insensitive, exact"
    );
    let partial = MembershipFilter {
        username: Some("learner".into()),
        ..Default::default()
    };
    assert!(
        learners_of(partial).await.is_empty(),
        "not a substring match"
    );
    assert!(
        all_of(&pool, customer()).await.is_empty(),
        "another customer has none"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn pages_list_active_first_then_the_most_recently_changed(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (acme, ids) = mixed_customer(&store).await;
    settle(&pool, &Learners).await;
    // Active learner2; then, most recent first: the invitation, the unlink of learner4,
    // learner3, learner1.
    let expected = [ids[1], ids[4], ids[3], ids[2], ids[0]];
    let filter = MembershipFilter::default();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let (total, rows) = memberships_of_customer(&pool, acme, &filter, page, 2)
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert_eq!(rows.len(), if page == 3 { 1 } else { 2 });
        seen.extend(rows.into_iter().map(|r| r.learner_id));
    }
    assert_eq!(seen, expected);
    let (total, beyond) = memberships_of_customer(&pool, acme, &filter, 4, 2)
        .await
        .unwrap();
    assert_eq!((total, beyond.len()), (5, 0));
    let (_, first) = memberships_of_customer(&pool, acme, &filter, 0, 2)
        .await
        .unwrap();
    assert_eq!(first[0].learner_id, expected[0], "page 0 reads as page 1");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_erased_learner_reads_with_empty_personal_columns(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let acme = customer();
    let learner = register(&store, 5).await;
    link(&store, learner, acme, true).await;
    settle(&pool, &Learners).await;
    let before = one(&pool, acme, learner).await.unwrap();
    assert_eq!(before.email.as_deref(), Some("learner5@example.com"));

    assert!(store::directory::erase(&pool, learner).await.unwrap());
    let after = one(&pool, acme, learner).await.unwrap();
    assert_eq!((after.username, after.email), (None, None));
    assert_eq!(
        (after.state, after.active),
        (MembershipStatus::Linked, true)
    );
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns
          WHERE table_name = 'learners_memberships' AND column_name IN ('username', 'email')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 0, "the read model never stores personal data");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_membership_event_that_does_not_decode_stops_the_projection(pool: PgPool) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('learner_membership', 'x', 1, 'LearnerLinked', '1.0',
                 '{\"LearnerLinked\": {\"learner_id\": 42}}', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let err = loop {
        match catch_up(&pool, &Learners, RunnerOptions::default()).await {
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
        matches!(err, projections::runner::RunnerError::Poison { ref event_type, .. } if event_type == "LearnerLinked"),
        "{err}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilding_into_fresh_tables_gives_the_rows_of_incremental_catch_up(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    // Caught up in several steps, so incremental batches differ from the rebuild's one pass.
    let (acme, ids) = mixed_customer(&store).await;
    settle(&pool, &Learners).await;
    let other = customer();
    link(&store, ids[0], other, true).await;
    learners::link_by_email(&store, other, "late@example.com", &meta())
        .await
        .unwrap();
    settle(&pool, &Learners).await;
    let cancel = MembershipCommand::UnlinkLearner {
        learner_id: ids[4],
        customer_id: acme,
        is_relinkable: true,
    };
    membership(&store, cancel).await;
    settle(&pool, &Learners).await;

    let incremental = e2e_tests::dump_tables(&pool, &Learners).await;
    assert!(incremental.len() >= 6);
    projections::rebuild::into_fresh_tables(&pool, &Learners, RunnerOptions::default())
        .await
        .unwrap();
    assert_eq!(e2e_tests::dump_tables(&pool, &Learners).await, incremental);
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
}

/// `count` membership events in any order, the ones the aggregate would refuse included (an
/// activation without a row, a cancellation of a linked row...), in episodes of 2 to 13 events
/// about 2 new customers x 2 new learners each (so a later event rarely hides an earlier one's
/// effect).
fn raw_history(count: usize) -> Vec<MembershipEvent> {
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let (mut customers, mut learners) = (Vec::new(), Vec::new());
    let mut episode_left = 0;
    (0..count)
        .map(|_| {
            if episode_left == 0 {
                customers = vec![customer(), customer()];
                learners = vec![e2e_tests::learner(), e2e_tests::learner()];
                episode_left = 2 + dice.roll(12);
            }
            episode_left -= 1;
            let customer_id = customers[dice.roll(customers.len())];
            let learner_id = learners[dice.roll(learners.len())];
            match dice.roll(7) {
                0 => MembershipEvent::PendingLinkRequested {
                    learner_id,
                    customer_id,
                },
                1 => MembershipEvent::PendingLinkCancelled {
                    learner_id,
                    customer_id,
                },
                2 | 3 => MembershipEvent::LearnerLinked {
                    learner_id,
                    customer_id,
                    active: dice.roll(2) == 0,
                },
                4 => MembershipEvent::MembershipActivated {
                    learner_id,
                    customer_id,
                },
                5 => MembershipEvent::MembershipDeactivated {
                    learner_id,
                    customer_id,
                },
                _ => MembershipEvent::LearnerUnlinked {
                    learner_id,
                    customer_id,
                    is_relinkable: dice.roll(2) == 0,
                },
            }
        })
        .collect()
}

/// Appends `events` straight to the log in one transaction, each recorded a second after the
/// previous one.
async fn append_raw(pool: &PgPool, events: &[MembershipEvent]) {
    let mut tx = pool.begin().await.unwrap();
    let start = chrono::Utc::now();
    for (n, event) in events.iter().enumerate() {
        let payload = serde_json::to_value(event).unwrap();
        let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata, recorded_at)
             VALUES ('learner_membership', $1, $2, $3, '1.0', $4, '{}', $5)",
        )
        .bind(membership_stream_id(event.learner_id()))
        .bind(1_000 + n as i64)
        .bind(event_type)
        .bind(payload)
        .bind(start + chrono::Duration::seconds(n as i64))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn batches_of_any_size_give_the_rows_of_one_event_at_a_time(pool: PgPool) {
    let store = EventStore::new(pool.clone());
    let (acme, ids) = mixed_customer(&store).await;
    link(&store, ids[0], customer(), true).await;
    let relink = MembershipCommand::LinkLearner {
        learner_id: ids[3],
        customer_id: acme,
        activate: true,
    };
    membership(&store, relink).await;
    let cancel = MembershipCommand::UnlinkLearner {
        learner_id: ids[4],
        customer_id: acme,
        is_relinkable: true,
    };
    membership(&store, cancel).await;
    learners::link_by_email(&store, acme, "pending@example.com", &meta())
        .await
        .unwrap();
    append_raw(&pool, &raw_history(400)).await;
    settle(&pool, &Learners).await;

    let mut dumps = Vec::new();
    for batch_size in [1, 7, 1000] {
        let options = RunnerOptions {
            batch_size,
            ..RunnerOptions::default()
        };
        projections::rebuild::in_place(&pool, &Learners, options)
            .await
            .unwrap();
        dumps.push((batch_size, e2e_tests::dump_tables(&pool, &Learners).await));
    }
    let (_, one_by_one) = &dumps[0];
    assert!(one_by_one.len() >= 100, "{} rows", one_by_one.len());
    for (batch_size, rows) in &dumps[1..] {
        let first_difference = one_by_one.iter().zip(rows).find(|(a, b)| a != b);
        assert!(
            rows == one_by_one,
            "batches of {batch_size}: {} rows for {}, first difference {first_difference:#?}",
            rows.len(),
            one_by_one.len()
        );
    }
}
