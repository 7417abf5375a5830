//! Consent history for auditors over HTTP: every grant and revocation with time, actor and
//! source, by learner or customer; the state as of an instant; roles and malformed queries.

use e2e_tests::api::{admin_of, auditor, learner_of, operator, send, token, Server};
use e2e_tests::{consent_required, World};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const CONSENT: &str = "/consent/api/v1/data_sharing_consent";
const HISTORY: &str = "/api/v1/audit/consent/history";
const STATE: &str = "/api/v1/audit/consent/state";

/// learner7 grants consent for a course through the consent API, then revokes it.
async fn world(pool: sqlx::PgPool) -> (Server, World, Uuid) {
    let world = World::new(pool.clone(), consent_required()).await;
    let learner = world.learner(7).await;
    let server = Server::start(pool).await;
    server.settle().await;
    let body = json!({
        "username": "learner7",
        "enterprise_customer_uuid": world.customer.to_string(),
        "course_id": "edX+DemoX",
    });
    let learner_token = token("learner7", &[]);
    let (status, granted) = server.post(CONSENT, &learner_token, &body).await;
    assert_eq!((status, &granted["consent_provided"]), (200, &json!(true)));
    let (status, _) = send(
        server
            .request(Method::DELETE, CONSENT, &learner_token)
            .json(&body),
    )
    .await;
    assert_eq!(status, 200);
    (server, world, learner.0)
}

fn actions(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_history_lists_every_answer_with_time_actor_and_source(pool: sqlx::PgPool) {
    let (server, world, learner) = world(pool).await;
    let by_learner = format!("{HISTORY}?learner_uuid={learner}");
    let (status, page) = server.get(&by_learner, &auditor()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(actions(&page), ["granted", "revoked"]);
    let grant = &page["results"][0];
    assert_eq!(grant["source"], "api");
    assert_eq!(grant["learner_uuid"], learner.to_string());
    assert_eq!(grant["customer_uuid"], world.customer.to_string());
    assert_eq!(grant["subject"], json!({"course": "edX+DemoX"}));
    let actor = grant["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("user:") && !actor.contains("learner7"),
        "{actor}"
    );
    assert!(grant["recorded_at"].is_string());

    for query in [
        "username=learner7".to_string(),
        format!("customer_uuid={}", world.customer),
        format!("customer_uuid={}&learner_uuid={learner}", world.customer),
    ] {
        let (status, page) = server.get(&format!("{HISTORY}?{query}"), &operator()).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(actions(&page), ["granted", "revoked"], "{query}");
    }
    let (_, page) = server
        .get(
            &format!("{HISTORY}?customer_uuid={}", Uuid::new_v4()),
            &auditor(),
        )
        .await;
    assert_eq!(page["count"], 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_state_is_given_as_of_any_instant(pool: sqlx::PgPool) {
    let (server, _, learner) = world(pool).await;
    let (_, page) = server
        .get(&format!("{HISTORY}?learner_uuid={learner}"), &auditor())
        .await;
    let granted_at = page["results"][0]["recorded_at"]
        .as_str()
        .unwrap()
        .to_string();
    let state_at = |instant: &str| {
        let query = serde_urlencoded::to_string([
            ("learner_uuid", learner.to_string()),
            ("as_of", instant.to_string()),
        ])
        .unwrap();
        format!("{STATE}?{query}")
    };

    let (status, now) = server
        .get(&format!("{STATE}?learner_uuid={learner}"), &auditor())
        .await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["records"]["count"], 1);
    assert_eq!(now["records"]["results"][0]["state"], "not_granted");
    assert_eq!(now["records"]["results"][0]["last"]["action"], "revoked");

    let (_, then) = server.get(&state_at(&granted_at), &auditor()).await;
    assert_eq!(then["records"]["results"][0]["state"], "granted", "{then}");

    let (_, before) = server
        .get(&state_at("2000-01-01T00:00:00Z"), &auditor())
        .await;
    assert_eq!(before["records"]["count"], 0, "{before}");
    // The history up to the grant holds the grant alone.
    let query =
        serde_urlencoded::to_string([("learner_uuid", learner.to_string()), ("as_of", granted_at)])
            .unwrap();
    let (_, page) = server.get(&format!("{HISTORY}?{query}"), &auditor()).await;
    assert_eq!(actions(&page), ["granted"]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn only_auditors_and_operators_read_the_history(pool: sqlx::PgPool) {
    let (server, world, learner) = world(pool).await;
    for route in [HISTORY, STATE] {
        let url = format!("{route}?learner_uuid={learner}");
        assert_eq!(server.anonymous(Method::GET, &url).await, 401);
        for forbidden in [
            admin_of(world.customer),
            learner_of("learner7", world.customer),
            token("lms", &["lms_service"]),
        ] {
            let (status, body) = server.get(&url, &forbidden).await;
            assert_eq!(status, 403, "{url}: {body}");
        }
        for allowed in [auditor(), operator()] {
            assert_eq!(server.get(&url, &allowed).await.0, 200);
        }
    }
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn malformed_queries_are_named(pool: sqlx::PgPool) {
    let (server, _, learner) = world(pool).await;
    let cases = [
        (format!("learner_uuid={learner}&as_of=last+week"), "as_of"),
        ("learner_uuid=nope".to_string(), "learner_uuid"),
        ("customer_uuid=nope".to_string(), "customer_uuid"),
        (String::new(), "learner_uuid"),
        (
            format!("learner_uuid={learner}&username=learner7"),
            "username",
        ),
        (format!("learner_uuid={learner}&page_size=0"), "page_size"),
    ];
    for route in [HISTORY, STATE] {
        for (query, field) in &cases {
            let url = format!("{route}?{query}");
            let (status, body) = server.get(&url, &auditor()).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert_eq!(body["errors"][0]["field"], *field, "{url}: {body}");
        }
        let (status, body) = server
            .get(&format!("{route}?username=nobody"), &auditor())
            .await;
        assert_eq!(status, 404, "{body}");
    }
}
