//! `consent-history` against a scripted sequence of grants, declines and revocations.

mod support;

use chrono::{DateTime, Utc};
use domain::consent::{Action, ConsentSource};
use domain::ids::{CustomerId, LearnerId};
use serde_json::Value;
use sqlx::PgPool;
use store::directory::LmsUser;
use store::EventStore;
use support::*;
use uuid::Uuid;

struct Script {
    customer: CustomerId,
    learner: LearnerId,
    /// Global positions of the five events, in order.
    positions: Vec<i64>,
}

/// Ada: grants edX+DemoX, declines edX+Other, revokes edX+DemoX, grants edX+Other, grants
/// edX+DemoX again. Someone else grants edX+DemoX at the same customer in between.
async fn script(pool: &PgPool) -> Script {
    let store = EventStore::new(pool.clone());
    let learner = store::directory::register(
        pool,
        &LmsUser {
            lms_user_id: 7,
            username: "ada".into(),
            email: "Ada@Example.com".into(),
            sso_ids: Vec::new(),
        },
    )
    .await
    .expect("registering")
    .learner_id;
    let other = LearnerId(Uuid::new_v4());
    let customer = CustomerId(Uuid::new_v4());
    let (demo, other_course) = (course("edX+DemoX"), course("edX+Other"));
    let mut positions = Vec::new();
    for (subject, source, action, actor) in [
        (&demo, ConsentSource::ConsentPage, Action::Grant, "learner"),
        (
            &other_course,
            ConsentSource::Api,
            Action::Decline,
            "lms_service",
        ),
        (&demo, ConsentSource::Admin, Action::Revoke, "admin-1"),
        (
            &other_course,
            ConsentSource::Admin,
            Action::Grant,
            "admin-1",
        ),
        (&demo, ConsentSource::ConsentPage, Action::Grant, "learner"),
    ] {
        positions.push(
            consent(
                &store,
                customer,
                learner,
                subject.clone(),
                source,
                action,
                actor,
            )
            .await,
        );
        if positions.len() == 2 {
            consent(
                &store,
                customer,
                other,
                demo.clone(),
                ConsentSource::Api,
                Action::Grant,
                "x",
            )
            .await;
        }
    }
    e2e_tests::read_log(pool, 6).await;
    Script {
        customer,
        learner,
        positions,
    }
}

fn json(output: &std::process::Output) -> Vec<Value> {
    serde_json::from_str(&stdout(output)).expect("JSON output")
}

async fn recorded_at(pool: &PgPool, position: i64) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT recorded_at FROM events WHERE global_position = $1")
        .bind(position)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_timeline_lists_every_answer_in_order_with_source_and_actor(pool: PgPool) {
    let s = script(&pool).await;
    let url = url_of(&pool);
    let out = replay(
        &url,
        &["consent-history", "--username", "ada", "--format", "json"],
    );
    assert_exit(&out, 0);
    let entries = json(&out);
    let seen: Vec<(&str, &str, &str, &str, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["subject"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["position"].as_i64().unwrap(),
            )
        })
        .collect();
    let p = &s.positions;
    assert_eq!(
        seen,
        vec![
            (
                "granted",
                "course:edX+DemoX",
                "consent_page",
                "learner",
                p[0]
            ),
            ("declined", "course:edX+Other", "api", "lms_service", p[1]),
            ("revoked", "course:edX+DemoX", "admin", "admin-1", p[2]),
            ("granted", "course:edX+Other", "admin", "admin-1", p[3]),
            (
                "granted",
                "course:edX+DemoX",
                "consent_page",
                "learner",
                p[4]
            ),
        ]
    );
    for e in &entries {
        assert_eq!(e["learner_id"], s.learner.0.to_string());
        assert_eq!(e["customer_id"], s.customer.0.to_string());
    }

    // The same learner by email (any case), narrowed to one course given by a run id.
    let out = replay(
        &url,
        &[
            "consent-history",
            "--email",
            "ada@example.com",
            "--course",
            "course-v1:edX+DemoX+2026",
            "--format",
            "csv",
        ],
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("position,recorded_at,event,"),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[2].contains(",revoked,"), "{text}");

    // The customer's timeline holds the other learner's grant as well.
    let customer = s.customer.0.to_string();
    let out = replay(
        &url,
        &[
            "consent-history",
            "--customer",
            &customer,
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(json(&out).len(), 6);

    let out = replay(&url, &["consent-history", "--username", "ada"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 6, "{}", stdout(&out));
    assert!(stdout(&out).contains("revoked"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn as_of_answers_what_was_in_force_at_each_instant(pool: PgPool) {
    let s = script(&pool).await;
    let url = url_of(&pool);
    let learner = s.learner.0.to_string();
    let state_at = |at: String| {
        let out = replay(
            &url,
            &[
                "consent-history",
                "--learner-id",
                &learner,
                "--as-of",
                &at,
                "--format",
                "json",
            ],
        );
        assert_exit(&out, 0);
        json(&out)
            .iter()
            .map(|r| {
                (
                    r["subject"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                    r["event"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let first = recorded_at(&pool, s.positions[0]).await;
    let before = first - chrono::Duration::microseconds(1);
    assert_eq!(state_at(at(before)), vec![]);
    let demo = "course:edX+DemoX".to_string();
    let other = "course:edX+Other".to_string();
    let row = |s: &String, st: &str, ev: &str| (s.clone(), st.to_string(), ev.to_string());
    assert_eq!(state_at(at(first)), vec![row(&demo, "granted", "granted")]);
    let expected = [
        vec![
            row(&demo, "granted", "granted"),
            row(&other, "not_granted", "declined"),
        ],
        vec![
            row(&demo, "not_granted", "revoked"),
            row(&other, "not_granted", "declined"),
        ],
        vec![
            row(&demo, "not_granted", "revoked"),
            row(&other, "granted", "granted"),
        ],
        vec![
            row(&demo, "granted", "granted"),
            row(&other, "granted", "granted"),
        ],
    ];
    for (i, want) in expected.iter().enumerate() {
        let mut got = state_at(at(recorded_at(&pool, s.positions[i + 1]).await));
        got.sort();
        assert_eq!(&got, want, "after event {}", i + 2);
    }
    // An instant with another offset means the same moment.
    let revoked = recorded_at(&pool, s.positions[2]).await;
    let shifted = revoked
        .with_timezone(&chrono::FixedOffset::east_opt(3600 * 5).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    let mut got = state_at(shifted);
    got.sort();
    assert_eq!(got, expected[1]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_erased_learner_replays_pseudonymously_by_learner_id(pool: PgPool) {
    let s = script(&pool).await;
    let url = url_of(&pool);
    assert!(store::directory::erase(&pool, s.learner).await.unwrap());
    let learner = s.learner.0.to_string();
    let out = replay(
        &url,
        &[
            "consent-history",
            "--learner-id",
            &learner,
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(json(&out).len(), 5);
    // Neither her username nor her email (a bare "ada" would also match the hex of an id).
    let text = stdout(&out).to_lowercase();
    assert!(
        !text.contains("\"ada\"") && !text.contains("ada@example.com"),
        "{text}"
    );
    let out = replay(&url, &["consent-history", "--username", "ada"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("unknown learner"), "{}", stderr(&out));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn bad_input_exits_with_2_and_an_unreachable_database_with_3(pool: PgPool) {
    script(&pool).await;
    let url = url_of(&pool);
    let out = replay(
        &url,
        &[
            "consent-history",
            "--username",
            "ada",
            "--as-of",
            "2026-03-01",
        ],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    let out = replay(&url, &["consent-history", "--username", "nobody"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("unknown learner"), "{}", stderr(&out));

    let stranger = Uuid::new_v4().to_string();
    let out = replay(&url, &["consent-history", "--learner-id", &stranger]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("unknown learner"), "{}", stderr(&out));

    // No filter at all is a usage error.
    assert_exit(&replay(&url, &["consent-history"]), 2);
    assert_exit(&replay(&url, &["rebuild", "no_such_model"]), 2);

    let missing = store::db::with_database(&url, "no_such_database_for_replay_tools");
    let out = replay(&missing, &["status"]);
    assert_exit(&out, 3);
    assert!(
        stderr(&out).contains("the database exists"),
        "{}",
        stderr(&out)
    );

    // A database without the service's tables: the answer says to migrate.
    let name = format!("replay_bare_{}", Uuid::new_v4().simple());
    let bare = create_database(&pool, &name).await;
    let out = replay(&bare, &["consent-history", "--learner-id", &stranger]);
    drop_database(&pool, &name).await;
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("migrate"), "{}", stderr(&out));
}
