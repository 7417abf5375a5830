//! The channel configuration routes over HTTP: create, list, update, deactivate with
//! write-only secrets; transmission status and requeue from the outbox; the role x tenant
//! matrix; bad input changing nothing; a service without a secrets key.

use e2e_tests::api::{admin_of, channel_worker, learner_of, operator, send, Server};
use e2e_tests::{consent_not_required, World, RUN};
use projections::read_models::outbox::queue;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const CLIENT_SECRET: &str = "cs-Very-Secret-9f3a1c";
const ROTATED_SECRET: &str = "cs-Rotated-Secret-77b2e0";

fn base(world: &World) -> String {
    format!("/api/v1/customers/{}/channels", world.customer)
}

fn new_channel(secrets: Value) -> Value {
    json!({
        "display_name": "Cornerstone",
        "settings": {"channel": "CSOD", "base_url": "https://acme.csod.example.com/"},
        "secrets": secrets,
    })
}

fn credentials() -> Value {
    json!({"client_id": "acme-client", "client_secret": CLIENT_SECRET})
}

async fn channel_events(server: &Server) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'channel_configuration'")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

async fn stored_secrets(server: &Server) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM secrets")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

/// Whether any event payload or metadata holds `text`.
async fn in_the_log(server: &Server, text: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
                         WHERE payload::text LIKE '%' || $1 || '%'
                            OR metadata::text LIKE '%' || $1 || '%')",
    )
    .bind(text)
    .fetch_one(&server.pool)
    .await
    .unwrap()
}

async fn world(pool: sqlx::PgPool) -> (Server, World) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let server = Server::start(pool).await;
    server.settle().await;
    (server, world)
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn configurations_are_created_changed_and_deactivated_without_showing_secrets(
    pool: sqlx::PgPool,
) {
    let (server, world) = world(pool).await;
    let admin = admin_of(world.customer);
    let (status, created) = server
        .post(&base(&world), &admin, &new_channel(credentials()))
        .await;
    assert_eq!(status, 201, "{created}");
    let config = created["config_uuid"].as_str().unwrap().to_string();
    let position = created["position"].as_i64().unwrap();
    assert!(!created.to_string().contains(CLIENT_SECRET));

    let (status, list) = server
        .get(&format!("{}?min_position={position}", base(&world)), &admin)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["count"], 1);
    let view = &list["results"][0];
    assert_eq!(view["config_uuid"], config);
    assert_eq!(view["channel"], "CSOD");
    assert_eq!(view["active"], true);
    assert_eq!(view["transmission_chunk_size"], 500);
    assert_eq!(view["secrets_set"], json!(["client_id", "client_secret"]));
    assert!(!list.to_string().contains(CLIENT_SECRET));

    let one = format!("{}/{config}", base(&world));
    let (status, body) = server
        .patch(
            &one,
            &admin,
            &json!({"display_name": "CSOD EU", "transmission_chunk_size": 100,
                    "secrets": {"client_secret": ROTATED_SECRET}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, view) = server.get(&one, &admin).await;
    assert_eq!(view["display_name"], "CSOD EU");
    assert_eq!(view["transmission_chunk_size"], 100);
    assert!(!view.to_string().contains(ROTATED_SECRET));

    let (status, _) = server
        .post(&format!("{one}/deactivate"), &admin, &json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, view) = server.get(&one, &admin).await;
    assert_eq!(view["active"], false);

    // The secrets are stored, encrypted, and referenced from the log only.
    assert_eq!(stored_secrets(&server).await, 3);
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM secrets
          WHERE position(convert_to($1, 'UTF8') in ciphertext) > 0
             OR position(convert_to($2, 'UTF8') in ciphertext) > 0",
    )
    .bind(CLIENT_SECRET)
    .bind(ROTATED_SECRET)
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    for secret in [CLIENT_SECRET, ROTATED_SECRET, "acme-client"] {
        assert!(!in_the_log(&server, secret).await, "{secret} is in the log");
    }
    let (configuration, _) = load_config(&server, &config).await;
    let boxed = store::secrets::SecretBox::from_hex(e2e_tests::api::SECRETS_KEY).unwrap();
    let rotated = configuration.secret("client_secret").unwrap();
    assert_eq!(
        boxed.get(&server.pool, rotated).await.unwrap(),
        ROTATED_SECRET
    );
}

async fn load_config(
    server: &Server,
    config: &str,
) -> (domain::channel::ChannelConfiguration, i64) {
    store::EventStore::new(server.pool.clone())
        .load::<domain::channel::ChannelConfiguration>(config)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn transmissions_show_their_status_and_a_dead_row_is_requeued(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    let admin = admin_of(world.customer);
    let (status, created) = server
        .post(&base(&world), &admin, &new_channel(credentials()))
        .await;
    assert_eq!(status, 201, "{created}");
    let config = created["config_uuid"].as_str().unwrap().to_string();
    let status_path = format!(
        "{}/{config}/transmissions?min_position={}",
        base(&world),
        created["position"]
    );
    let (status, body) = server.get(&status_path, &admin).await;
    assert_eq!(status, 200, "{body}");
    // The catalog holds the published course run: one content row is queued.
    assert_eq!(body["counts"]["pending"], 1, "{body}");
    assert_eq!(body["items"]["results"][0]["content_key"], RUN);

    // A worker fails it for good.
    let claimed = queue::claim(&server.pool, "w", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let item = claimed[0].item_id;
    queue::fail(&server.pool, item, "w", "HTTP 500 from the LMS", None, 1)
        .await
        .unwrap();
    let (_, body) = server
        .get(
            &format!("{}/{config}/transmissions?status=dead", base(&world)),
            &admin,
        )
        .await;
    assert_eq!(body["counts"]["dead"], 1, "{body}");
    assert_eq!(body["items"]["count"], 1);
    assert_eq!(
        body["items"]["results"][0]["last_error"],
        "HTTP 500 from the LMS"
    );

    let requeue = format!("{}/{config}/transmissions/{item}/requeue", base(&world));
    let (status, body) = server.post(&requeue, &channel_worker(), &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = server
        .get(&format!("{}/{config}/transmissions", base(&world)), &admin)
        .await;
    assert_eq!(body["counts"]["pending"], 1, "{body}");
    assert_eq!(body["counts"]["dead"], 0);
    // A pending row cannot be requeued.
    let (status, _) = server.post(&requeue, &admin, &json!({})).await;
    assert_eq!(status, 409);
    // A row of this configuration is not reachable through another one.
    let other = format!(
        "{}/{}/transmissions/{item}/requeue",
        base(&world),
        Uuid::new_v4()
    );
    let (status, _) = server.post(&other, &admin, &json!({})).await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn every_route_checks_role_and_tenant(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    let (_, created) = server
        .post(
            &base(&world),
            &admin_of(world.customer),
            &new_channel(credentials()),
        )
        .await;
    let config = created["config_uuid"].as_str().unwrap().to_string();
    let one = format!("{}/{config}", base(&world));
    let item = Uuid::new_v4();
    let other_admin = admin_of(Uuid::new_v4());
    let learner = learner_of("learner7", world.customer);
    let admin_only = [
        (Method::POST, base(&world)),
        (Method::PATCH, one.clone()),
        (Method::POST, format!("{one}/deactivate")),
    ];
    let readers = [
        (Method::GET, base(&world)),
        (Method::GET, one.clone()),
        (Method::GET, format!("{one}/transmissions")),
        (Method::POST, format!("{one}/transmissions/{item}/requeue")),
    ];
    for (method, path) in admin_only.iter().chain(&readers) {
        assert_eq!(server.anonymous(method.clone(), path).await, 401, "{path}");
        for forbidden in [&other_admin, &learner] {
            let (status, _) = send(
                server
                    .request(method.clone(), path, forbidden)
                    .json(&json!({})),
            )
            .await;
            assert_eq!(status, 403, "{method} {path}");
        }
    }
    // Channel workers read and requeue, but do not configure.
    for (method, path) in &admin_only {
        let (status, _) = send(
            server
                .request(method.clone(), path, &channel_worker())
                .json(&json!({})),
        )
        .await;
        assert_eq!(status, 403, "{method} {path}");
    }
    for (method, path) in &readers[..3] {
        let (status, _) = send(server.request(method.clone(), path, &channel_worker())).await;
        assert_eq!(status, 200, "{method} {path}");
    }
    let (status, _) = server.get(&one, &operator()).await;
    assert_eq!(status, 200);
    // Another customer's path does not reach this configuration.
    let elsewhere = Uuid::new_v4();
    let (status, _) = server
        .get(
            &format!("/api/v1/customers/{elsewhere}/channels/{config}"),
            &admin_of(elsewhere),
        )
        .await;
    assert_eq!(status, 404);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn bad_input_is_refused_naming_the_field_and_writes_nothing(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    let admin = admin_of(world.customer);
    let field_of = |body: &Value| {
        body["errors"][0]["field"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let with = |key: &str, value: Value| {
        let mut body = new_channel(credentials());
        body[key] = value;
        body
    };
    let cases = [
        (with("display_name", json!("")), "display_name"),
        (
            with("transmission_chunk_size", json!(0)),
            "transmission_chunk_size",
        ),
        (
            with("catalogs_to_transmit", json!([Uuid::new_v4()])),
            "catalogs_to_transmit",
        ),
        (with("idp_id", json!("unknown-idp")), "idp_id"),
        (
            with("secrets", json!({"password": "hunter2-secret"})),
            "secrets",
        ),
        (
            with(
                "settings",
                json!({"channel": "CSOD", "base_url": "not a url"}),
            ),
            "base_url",
        ),
        (with("colour", json!("blue")), "colour"),
    ];
    for (body, field) in cases {
        let (status, answer) = server.post(&base(&world), &admin, &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert!(
            field_of(&answer).starts_with(field),
            "expected {field}: {answer}"
        );
        assert!(!answer.to_string().contains(CLIENT_SECRET));
    }
    assert_eq!(channel_events(&server).await, 0);
    assert_eq!(stored_secrets(&server).await, 0);
    assert!(!in_the_log(&server, "hunter2-secret").await);

    // An update refused after its secrets were checked stores none of them.
    let (_, created) = server
        .post(&base(&world), &admin, &new_channel(json!({})))
        .await;
    let one = format!(
        "{}/{}",
        base(&world),
        created["config_uuid"].as_str().unwrap()
    );
    let events = channel_events(&server).await;
    let (status, body) = server
        .patch(
            &one,
            &admin,
            &json!({"settings": {"channel": "XAPI", "endpoint": "https://lrs.example.com/", "version": "1.0.3"},
                    "secrets": {"client_secret": ROTATED_SECRET}}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(channel_events(&server).await, events);
    assert_eq!(stored_secrets(&server).await, 0);
    let (status, body) = server
        .get(&format!("{one}/transmissions?status=lost"), &admin)
        .await;
    assert_eq!(status, 400);
    assert_eq!(field_of(&body), "status");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn without_a_secrets_key_secrets_are_refused_and_nothing_is_written(pool: sqlx::PgPool) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    let server = Server::start_without_secrets(pool).await;
    let admin = admin_of(world.customer);
    let (status, body) = server
        .post(&base(&world), &admin, &new_channel(credentials()))
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("SECRETS_KEY"));
    assert_eq!(channel_events(&server).await, 0);
    assert_eq!(stored_secrets(&server).await, 0);
    // A configuration without secrets needs no key.
    let (status, body) = server
        .post(&base(&world), &admin, &new_channel(json!({})))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_openapi_document_describes_the_coupon_channel_report_and_audit_routes(
    pool: sqlx::PgPool,
) {
    let server = Server::start(pool).await;
    let (status, doc) = send(server.client.get(server.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    let customer = "/api/v1/customers/{customer_uuid}";
    let expected = [
        (format!("{customer}/coupons"), vec!["get", "post"]),
        (
            format!("{customer}/coupons/{{coupon_uuid}}/codes"),
            vec!["get"],
        ),
        (
            format!("{customer}/coupons/{{coupon_uuid}}/assignments"),
            vec!["post"],
        ),
        (
            format!("{customer}/coupons/{{coupon_uuid}}/codes/{{code}}/assignment"),
            vec!["delete"],
        ),
        (format!("{customer}/coupons/redemptions"), vec!["post"]),
        (format!("{customer}/channels"), vec!["get", "post"]),
        (
            format!("{customer}/channels/{{config_uuid}}"),
            vec!["get", "patch"],
        ),
        (
            format!("{customer}/channels/{{config_uuid}}/deactivate"),
            vec!["post"],
        ),
        (
            format!("{customer}/channels/{{config_uuid}}/transmissions"),
            vec!["get"],
        ),
        (
            format!("{customer}/channels/{{config_uuid}}/transmissions/{{item_uuid}}/requeue"),
            vec!["post"],
        ),
        (format!("{customer}/reports/progress"), vec!["get"]),
        (format!("{customer}/reports/progress.csv"), vec!["get"]),
        ("/api/v1/audit/consent/history".to_string(), vec!["get"]),
        ("/api/v1/audit/consent/state".to_string(), vec!["get"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            let operation = &doc["paths"][&path][method];
            assert!(operation.is_object(), "{method} {path} is not described");
            assert!(
                operation["security"].is_array(),
                "{method} {path} has no security"
            );
        }
    }
    // The configuration as answered has no field for secret values.
    let view = &doc["components"]["schemas"]["ChannelView"]["properties"];
    assert!(view["secrets_set"].is_object());
    assert!(view["secrets"].is_null());
}
