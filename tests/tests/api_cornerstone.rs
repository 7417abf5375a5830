//! `POST /integrated_channels/api/v1/cornerstone/save-learner-information` over HTTP: a
//! learner's own launch and one the LMS relays are recorded with the token sealed; edX's 404s;
//! the role x tenant matrix; bad input recording nothing; a service without a secrets key.

use e2e_tests::api::{admin_of, learner_of, lms, send, Server};
use e2e_tests::{consent_not_required, World};
use reqwest::Method;
use serde_json::{json, Value};

const PATH: &str = "/integrated_channels/api/v1/cornerstone/save-learner-information";
const TOKEN: &str = "csod-Session-Token-5e1b";

async fn world(server: &Server, world: &World) {
    let (status, created) = server
        .post(
            &format!("/api/v1/customers/{}/channels", world.customer),
            &admin_of(world.customer),
            &json!({
                "display_name": "Cornerstone",
                "settings": {"channel": "CSOD", "base_url": "https://acme.csod.example.com/"},
                "secrets": {"client_id": "acme", "client_secret": "acme-secret"},
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    server.settle().await;
}

fn launch(world: &World) -> Value {
    json!({
        "courseKey": "edX+DemoX",
        "enterpriseUUID": world.customer.0,
        "userGuid": "guid-1",
        "callbackUrl": "/services/x/content-online-content-api/v1",
        "sessionToken": TOKEN,
        "subdomain": "acme",
        "fqdn": "acme.csod.example.com",
    })
}

async fn launches(server: &Server) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM cornerstone_launches")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_learner_or_the_lms_records_a_launch(pool: sqlx::PgPool) {
    let w = World::new(pool.clone(), consent_not_required()).await;
    let server = Server::start(pool).await;
    world(&server, &w).await;
    w.learner(1).await;
    w.learner(2).await;

    let (status, body) = server
        .post(PATH, &learner_of("learner1", w.customer), &launch(&w))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut relayed = launch(&w);
    relayed["username"] = json!("learner2");
    let (status, body) = server.post(PATH, &lms(), &relayed).await;
    assert_eq!(status, 200, "{body}");
    // Launching again replaces the learner's launch for the course.
    let (status, _) = server
        .post(PATH, &learner_of("learner1", w.customer), &launch(&w))
        .await;
    assert_eq!(status, 200);
    assert_eq!(launches(&server).await, 2);

    let (guid, sealed): (String, Vec<u8>) = sqlx::query_as(
        "SELECT l.user_guid, l.token_ciphertext FROM cornerstone_launches l
           JOIN learners p ON p.learner_id = l.learner_id WHERE p.username = 'learner1'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(guid, "guid-1");
    assert!(!String::from_utf8_lossy(&sealed).contains(TOKEN));
    let in_log: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE payload::text LIKE '%' || $1 || '%'
                                                OR metadata::text LIKE '%' || $1 || '%')",
    )
    .bind(TOKEN)
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert!(!in_log, "the session token reached the log");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn refusals_answer_as_edx_and_record_nothing(pool: sqlx::PgPool) {
    let w = World::new(pool.clone(), consent_not_required()).await;
    let other = World::new(pool.clone(), consent_not_required()).await;
    let server = Server::start(pool).await;
    world(&server, &w).await;
    w.learner(1).await;
    let own = learner_of("learner1", w.customer);

    let mut elsewhere = launch(&w);
    elsewhere["subdomain"] = json!("globex");
    let (status, body) = server.post(PATH, &own, &elsewhere).await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("Cornerstone"),
        "{body}"
    );

    let (status, body) = server
        .post(PATH, &learner_of("stranger", w.customer), &launch(&w))
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("not linked"),
        "{body}"
    );

    // Another learner's launch, another customer's admin, nobody.
    let mut for_someone_else = launch(&w);
    for_someone_else["username"] = json!("learner2");
    assert_eq!(server.post(PATH, &own, &for_someone_else).await.0, 403);
    assert_eq!(
        server
            .post(PATH, &admin_of(other.customer), &launch(&w))
            .await
            .0,
        403
    );
    assert_eq!(server.anonymous(Method::POST, PATH).await, 401);

    // Bad input names the field.
    let (status, body) = server.post(PATH, &lms(), &launch(&w)).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["field"], "username", "{body}");
    for (field, value) in [
        ("callbackUrl", json!("https://evil.example/progress")),
        ("userGuid", json!("  ")),
        ("courseKey", json!("edX DemoX")),
    ] {
        let mut bad = launch(&w);
        bad[field] = value;
        let (status, body) = server.post(PATH, &own, &bad).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
    let mut unknown = launch(&w);
    unknown["launchedBy"] = json!("me");
    assert_eq!(server.post(PATH, &own, &unknown).await.0, 400);
    assert_eq!(launches(&server).await, 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn without_a_secrets_key_launches_are_refused(pool: sqlx::PgPool) {
    let w = World::new(pool.clone(), consent_not_required()).await;
    w.learner(1).await;
    let server = Server::start_without_secrets(pool).await;
    let (status, body) = send(
        server
            .request(Method::POST, PATH, &learner_of("learner1", w.customer))
            .json(&launch(&w)),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(launches(&server).await, 0);
}
