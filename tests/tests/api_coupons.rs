//! The coupon routes over HTTP: create, list with usage, codes, assignment to emails,
//! revocation, a learner's redemption; the role x tenant matrix; bad input changing nothing.

use e2e_tests::api::{admin_of, learner_of, operator, send, Server};
use e2e_tests::{consent_not_required, World, RUN};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn world(pool: sqlx::PgPool) -> (Server, World) {
    let world = World::new(pool.clone(), consent_not_required()).await;
    world.learner(7).await;
    world.learner(8).await;
    let server = Server::start(pool).await;
    server.settle().await;
    (server, world)
}

fn base(world: &World) -> String {
    format!("/api/v1/customers/{}/coupons", world.customer)
}

fn new_coupon(world: &World, count: usize) -> Value {
    let now = chrono::Utc::now();
    json!({
        "catalog_uuid": world.catalog.0,
        "name": "Q3 seats",
        "code_count": count,
        "usage": {"type": "single_use"},
        "benefit": {"type": "percentage", "value": 100.0},
        "valid_from": (now - chrono::Duration::days(1)).to_rfc3339(),
        "valid_until": (now + chrono::Duration::days(30)).to_rfc3339(),
    })
}

async fn create(server: &Server, world: &World, count: usize) -> String {
    let (status, body) = server
        .post(
            &base(world),
            &admin_of(world.customer),
            &new_coupon(world, count),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["position"].as_i64().is_some(), "{body}");
    body["coupon_uuid"].as_str().unwrap().to_string()
}

async fn codes(server: &Server, world: &World, coupon: &str) -> Vec<Value> {
    let (status, body) = server
        .get(
            &format!("{}/{coupon}/codes?page_size=500", base(world)),
            &admin_of(world.customer),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"].as_array().unwrap().clone()
}

async fn coupon_events(server: &Server) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'coupon'")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn codes_are_assigned_to_emails_revoked_and_redeemed(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    let admin = admin_of(world.customer);
    let coupon = create(&server, &world, 3).await;
    let listed = codes(&server, &world, &coupon).await;
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|c| c["state"] == "available"));

    // One registered learner, one email the directory has never seen.
    let assign = json!({"emails": ["learner7@example.com", "newcomer@example.org"]});
    let path = format!("{}/{coupon}/assignments", base(&world));
    let (status, body) = server.post(&path, &admin, &assign).await;
    assert_eq!(status, 200, "{body}");
    let assignments = body["assignments"].as_array().unwrap();
    assert_eq!(assignments.len(), 2);
    let code7 = assignments[0]["code"].as_str().unwrap().to_string();
    let code_new = assignments[1]["code"].as_str().unwrap().to_string();
    assert_ne!(code7, code_new);
    let invited = store::directory::find_by_email(&server.pool, "newcomer@example.org")
        .await
        .unwrap()
        .expect("the unknown email became an invited learner");
    assert!(!invited.is_registered());
    let listed = codes(&server, &world, &coupon).await;
    let row = |code: &str| listed.iter().find(|c| c["code"] == code).unwrap().clone();
    assert_eq!(row(&code7)["state"], "assigned");
    assert_eq!(row(&code7)["assigned_email"], "learner7@example.com");
    assert_eq!(
        row(&code_new)["assigned_learner_uuid"],
        json!(invited.learner_id)
    );

    // Assigning again answers the codes already held and writes nothing.
    let before = coupon_events(&server).await;
    let (status, again) = server.post(&path, &admin, &assign).await;
    assert_eq!(status, 200);
    assert_eq!(again["assignments"], body["assignments"]);
    assert_eq!(coupon_events(&server).await, before);

    // Revoking frees the code; revoking again is refused.
    let revoke = format!("{}/{coupon}/codes/{code_new}/assignment", base(&world));
    let (status, _) = server.delete(&revoke, &admin).await;
    assert_eq!(status, 200);
    assert_eq!(
        row_state(&codes(&server, &world, &coupon).await, &code_new),
        "available"
    );
    let (status, body) = server.delete(&revoke, &admin).await;
    assert_eq!(status, 422, "{body}");

    // The learner the code is reserved for redeems it; another learner may not.
    let redeem = format!("{}/redemptions", base(&world));
    let learner8 = learner_of("learner8", world.customer);
    let request = json!({"code": code7, "course_run_id": RUN, "mode": "verified"});
    let (status, body) = server.post(&redeem, &learner8, &request).await;
    assert_eq!(status, 422, "{body}");
    let learner7 = learner_of("learner7", world.customer);
    let (status, first) = server.post(&redeem, &learner7, &request).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["coupon_uuid"], coupon);
    assert!(first["position"].as_i64().is_some());
    // The same redemption again is answered with the first one.
    let (status, second) = server.post(&redeem, &learner7, &request).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["redemption_uuid"], first["redemption_uuid"]);
    assert_eq!(
        row_state(&codes(&server, &world, &coupon).await, &code7),
        "used_up"
    );

    // Usage per coupon.
    let (status, usage) = server.get(&base(&world), &admin).await;
    assert_eq!(status, 200);
    assert_eq!(usage["count"], 1);
    let coupon_usage = &usage["results"][0];
    assert_eq!(coupon_usage["coupon_uuid"], coupon);
    assert_eq!(coupon_usage["code_count"], 3);
    assert_eq!(coupon_usage["redemptions"], 1);
    assert_eq!(coupon_usage["assigned"], 1);
}

fn row_state(codes: &[Value], code: &str) -> String {
    codes.iter().find(|c| c["code"] == code).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_repeated_create_with_the_same_key_makes_one_coupon(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    let admin = admin_of(world.customer);
    let post = || {
        server
            .request(Method::POST, &base(&world), &admin)
            .header("Idempotency-Key", "create-q3-seats")
            .json(&new_coupon(&world, 2))
    };
    let (status, first) = send(post()).await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = send(post()).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(first["coupon_uuid"], second["coupon_uuid"]);
    assert_eq!(first["position"], second["position"]);
    let (_, usage) = server.get(&base(&world), &admin).await;
    assert_eq!(usage["count"], 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn every_route_checks_role_and_tenant(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    let coupon = create(&server, &world, 2).await;
    let code = codes(&server, &world, &coupon).await[0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let other_admin = admin_of(Uuid::new_v4());
    let learner = learner_of("learner7", world.customer);
    let admin_routes = [
        (Method::POST, base(&world)),
        (Method::GET, base(&world)),
        (Method::GET, format!("{}/{coupon}/codes", base(&world))),
        (
            Method::POST,
            format!("{}/{coupon}/assignments", base(&world)),
        ),
        (
            Method::DELETE,
            format!("{}/{coupon}/codes/{code}/assignment", base(&world)),
        ),
    ];
    for (method, path) in &admin_routes {
        assert_eq!(server.anonymous(method.clone(), path).await, 401, "{path}");
        for forbidden in [&other_admin, &learner] {
            let (status, body) = send(
                server
                    .request(method.clone(), path, forbidden)
                    .json(&json!({})),
            )
            .await;
            assert_eq!(status, 403, "{method} {path}: {body}");
            assert_eq!(body["status"], 403);
        }
    }
    // Codes are shown to administrators of the customer and operators only.
    let (status, _) = server
        .get(&format!("{}/{coupon}/codes", base(&world)), &operator())
        .await;
    assert_eq!(status, 200);

    // Redemption is for learners of the customer.
    let redeem = format!("{}/redemptions", base(&world));
    let request = json!({"code": code, "course_run_id": RUN, "mode": "verified"});
    let stranger = learner_of("learner7", Uuid::new_v4());
    let (status, _) = server.post(&redeem, &stranger, &request).await;
    assert_eq!(status, 403);
    assert_eq!(server.anonymous(Method::POST, &redeem).await, 401);
    // A token whose username the directory does not know.
    let unknown = learner_of("nobody", world.customer);
    let (status, body) = server.post(&redeem, &unknown, &request).await;
    assert_eq!(status, 404, "{body}");
    // A coupon of this customer is not reachable through another customer's path.
    let elsewhere = Uuid::new_v4();
    let (status, _) = server
        .get(
            &format!("/api/v1/customers/{elsewhere}/coupons/{coupon}/codes"),
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

    let mut cases = Vec::new();
    let mut zero = new_coupon(&world, 0);
    cases.push((zero.clone(), "code_count"));
    zero["code_count"] = json!(1);
    zero["catalog_uuid"] = json!(Uuid::new_v4());
    cases.push((zero.clone(), "catalog_uuid"));
    let mut reversed = new_coupon(&world, 1);
    reversed["valid_until"] = reversed["valid_from"].clone();
    cases.push((reversed, "valid_until"));
    let mut unknown = new_coupon(&world, 1);
    unknown["price"] = json!(10);
    cases.push((unknown, "price"));
    let mut bad_date = new_coupon(&world, 1);
    bad_date["valid_from"] = json!("next tuesday");
    cases.push((bad_date, "valid_from"));
    for (body, field) in cases {
        let (status, answer) = server.post(&base(&world), &admin, &body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            field_of(&answer) == field || answer["detail"].as_str().unwrap().contains(field),
            "expected {field}: {answer}"
        );
    }
    assert_eq!(coupon_events(&server).await, 0);

    let coupon = create(&server, &world, 2).await;
    let events = coupon_events(&server).await;
    let assign = format!("{}/{coupon}/assignments", base(&world));
    // A malformed email after a good new one: nothing is assigned, no one is invited.
    let (status, body) = server
        .post(
            &assign,
            &admin,
            &json!({"emails": ["fresh@example.org", "not-an-email"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field_of(&body), "emails[1]");
    // More emails than free codes.
    let (status, body) = server
        .post(
            &assign,
            &admin,
            &json!({"emails": ["a@example.org", "b@example.org", "c@example.org"]}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // A code the coupon does not have, after a good one.
    let good = codes(&server, &world, &coupon).await[0]["code"].clone();
    let (status, body) = server
        .post(
            &assign,
            &admin,
            &json!({"emails": ["a@example.org", "b@example.org"], "codes": [good, "NOPE"]}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("emails[1]"));
    assert_eq!(coupon_events(&server).await, events);
    for email in ["fresh@example.org", "a@example.org", "b@example.org"] {
        assert!(store::directory::find_by_email(&server.pool, email)
            .await
            .unwrap()
            .is_none());
    }

    // Malformed path and redemption bodies.
    let (status, body) = server
        .get(&format!("{}/not-a-uuid/codes", base(&world)), &admin)
        .await;
    assert_eq!(status, 400);
    assert_eq!(field_of(&body), "coupon_uuid", "{body}");
    let redeem = format!("{}/redemptions", base(&world));
    let learner = learner_of("learner7", world.customer);
    let (status, body) = server
        .post(
            &redeem,
            &learner,
            &json!({"code": good, "course_run_id": RUN, "mode": "platinum"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field_of(&body), "mode");
    let (status, _) = server
        .post(
            &redeem,
            &learner,
            &json!({"code": "NO-SUCH-CODE", "course_run_id": RUN, "mode": "verified"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = server
        .post(
            &redeem,
            &learner,
            &json!({"code": good, "course_run_id": "course-v1:Other+X+Y", "mode": "verified"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(field_of(&body), "course_run_id");
    assert_eq!(coupon_events(&server).await, events);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn each_redemption_refusal_has_its_status(pool: sqlx::PgPool) {
    let (server, world) = world(pool).await;
    // A learner the LMS registered but the customer never linked.
    let user = store::directory::LmsUser {
        lms_user_id: 9,
        username: "learner9".into(),
        email: "learner9@example.com".into(),
        sso_ids: Vec::new(),
    };
    store::services::learners::register(&world.store, &user, &e2e_tests::meta())
        .await
        .unwrap();
    let coupon = create(&server, &world, 2).await;
    let code = codes(&server, &world, &coupon).await[0]["code"].clone();
    let redeem = format!("{}/redemptions", base(&world));
    let request = json!({"code": code, "course_run_id": RUN, "mode": "verified"});

    let (status, body) = server
        .post(&redeem, &learner_of("learner9", world.customer), &request)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = server
        .post(&redeem, &learner_of("learner7", world.customer), &request)
        .await;
    assert_eq!(status, 201, "{body}");
    // The single-use code is spent.
    let (status, body) = server
        .post(&redeem, &learner_of("learner8", world.customer), &request)
        .await;
    assert_eq!(status, 409, "{body}");

    // A coupon not yet valid.
    let mut later = new_coupon(&world, 1);
    let now = chrono::Utc::now();
    later["valid_from"] = json!((now + chrono::Duration::days(5)).to_rfc3339());
    later["valid_until"] = json!((now + chrono::Duration::days(9)).to_rfc3339());
    let (status, body) = server
        .post(&base(&world), &admin_of(world.customer), &later)
        .await;
    assert_eq!(status, 201, "{body}");
    let later_code =
        codes(&server, &world, body["coupon_uuid"].as_str().unwrap()).await[0]["code"].clone();
    let (status, body) = server
        .post(
            &redeem,
            &learner_of("learner8", world.customer),
            &json!({"code": later_code, "course_run_id": RUN, "mode": "verified"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}
