//! edX's learner, enrollment, catalog and branding routes over HTTP, with their role x tenant
//! checks and bad input.

use e2e_tests::api::{admin_of, lms, operator, send, send_at, token, Server};
use e2e_tests::{consent_required, World, RUN};
use reqwest::Method;
use serde_json::json;

const API: &str = "/enterprise/api/v1";

async fn setup(pool: sqlx::PgPool) -> (Server, World) {
    let world = World::new(pool.clone(), consent_required()).await;
    world.learner(7).await;
    let server = Server::start(pool).await;
    server.settle().await;
    (server, world)
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn learners_read_their_memberships_as_edx_serializes_them(pool: sqlx::PgPool) {
    let (server, world) = setup(pool).await;
    let learner = token("learner7", &[]);
    let consent = json!({"username": "learner7", "enterprise_customer_uuid": world.customer.to_string(),
                         "course_id": "edX+DemoX"});
    let (status, _, position) = send_at(
        server
            .request(
                Method::POST,
                "/consent/api/v1/data_sharing_consent",
                &learner,
            )
            .json(&consent),
    )
    .await;
    assert_eq!(status, 200);
    let path = format!(
        "{API}/enterprise-learner/?username=learner7&min_position={}",
        position.unwrap()
    );
    let (status, page) = server.get(&path, &learner).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["count"], 1);
    let item = &page["results"][0];
    assert_eq!(
        item["enterprise_customer"]["uuid"],
        world.customer.to_string()
    );
    assert_eq!(item["user"]["username"], "learner7");
    assert_eq!(item["user"]["email"], "learner7@example.com");
    assert_eq!(item["user_id"], 7);
    assert_eq!(
        item["data_sharing_consent_records"][0]["consent_provided"],
        true
    );
    assert_eq!(
        item["data_sharing_consent_records"][0]["course_id"],
        "edX+DemoX"
    );

    // Another learner, or an administrator of another customer, sees nothing of it.
    let other = token("learner8", &[]);
    let (status, page) = server
        .get(
            &format!("{API}/enterprise-learner/?username=learner7"),
            &other,
        )
        .await;
    assert_eq!((status, page["count"].clone()), (200, json!(0)));
    let foreign = admin_of(uuid::Uuid::new_v4());
    let by_customer = format!(
        "{API}/enterprise-learner/?enterprise_customer={}",
        world.customer
    );
    assert_eq!(server.get(&by_customer, &foreign).await.0, 403);
    let (status, page) = server.get(&by_customer, &admin_of(world.customer)).await;
    assert_eq!((status, page["count"].clone()), (200, json!(1)));
    assert_eq!(
        server
            .get(&format!("{API}/enterprise-learner/"), &operator())
            .await
            .0,
        400
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_lms_records_offer_enrollments_and_admins_list_them(pool: sqlx::PgPool) {
    let (server, world) = setup(pool).await;
    let path = format!("{API}/enterprise-course-enrollment/");
    let form = [("username", "learner7"), ("course_id", RUN)];
    assert_eq!(
        send(
            server
                .request(Method::POST, &path, &admin_of(world.customer))
                .form(&form)
        )
        .await
        .0,
        403
    );
    let (status, body, position) =
        send_at(server.request(Method::POST, &path, &lms()).form(&form)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"username": "learner7", "course_id": RUN}));
    let unknown_run = [
        ("username", "learner7"),
        ("course_id", "course-v1:No+Such+Run"),
    ];
    let (status, problem) = send(
        server
            .request(Method::POST, &path, &lms())
            .form(&unknown_run),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("course_id"))
    );

    let list = format!(
        "{path}?enterprise_customer={}&min_position={}",
        world.customer,
        position.unwrap()
    );
    let (status, page) = server.get(&list, &admin_of(world.customer)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["course_id"], RUN);
    assert_eq!(page["results"][0]["source"], "offer_redemption");
    assert_eq!(page["results"][0]["enrollment_track"], "verified");
    assert_eq!(
        server.get(&list, &admin_of(uuid::Uuid::new_v4())).await.0,
        403
    );
    let own = format!(
        "{path}?enterprise_customer={}&username=learner7",
        world.customer
    );
    let learner = token(
        "learner7",
        &[&format!("enterprise_learner:{}", world.customer)],
    );
    assert_eq!(server.get(&own, &learner).await.1["count"], 1);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn catalogs_and_branding_are_read_by_members_and_changed_by_admins(pool: sqlx::PgPool) {
    let (server, world) = setup(pool).await;
    let admin = admin_of(world.customer);
    let catalog = world.catalog.0;
    let (status, page) = server
        .get(&format!("{API}/enterprise_catalogs/"), &admin)
        .await;
    assert_eq!((status, page["count"].clone()), (200, json!(1)));
    let (status, detail) = server
        .get(&format!("{API}/enterprise_catalogs/{catalog}/"), &admin)
        .await;
    assert_eq!(status, 200);
    assert!(detail["count"].as_i64().unwrap() >= 1, "{detail}");
    let run = format!("{API}/enterprise_catalogs/{catalog}/course_runs/{RUN}/");
    let (status, item) = server.get(&run, &admin).await;
    assert_eq!(
        (status, item["content_type"].clone()),
        (200, json!("courserun"))
    );
    let missing = format!(
        "{API}/enterprise_catalogs/{catalog}/programs/{}/",
        uuid::Uuid::new_v4()
    );
    assert_eq!(server.get(&missing, &admin).await.0, 404);
    let foreign = admin_of(uuid::Uuid::new_v4());
    assert_eq!(server.get(&run, &foreign).await.0, 403);
    let (_, foreign_page) = server
        .get(&format!("{API}/enterprise_catalogs/"), &foreign)
        .await;
    assert_eq!(foreign_page["count"], 0);

    // A new catalog with a filter that holds nothing of the fixture.
    let create = json!({"enterprise_customer": world.customer.to_string(), "title": "Narrow",
                        "content_filter": {"key": ["Other+Course"]}});
    let (status, created, position) = send_at(
        server
            .request(
                Method::POST,
                &format!("{API}/enterprise_customer_catalog/"),
                &admin,
            )
            .json(&create),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let narrow = created["uuid"].as_str().unwrap().to_string();
    let contains = format!(
        "{API}/enterprise_catalogs/{narrow}/contains_content_items/?course_run_ids={}&min_position={}",
        RUN.replace('+', "%2B"),
        position.unwrap()
    );
    assert_eq!(
        server.get(&contains, &admin).await.1["contains_content_items"],
        false
    );
    let patch = server
        .request(
            Method::PATCH,
            &format!("{API}/enterprise_customer_catalog/{narrow}/"),
            &admin,
        )
        .json(&json!({"content_filter": {}}));
    let (status, _, position) = send_at(patch).await;
    assert_eq!(status, 200);
    let contains = format!(
        "{API}/enterprise_catalogs/{narrow}/contains_content_items/?course_run_ids={}&min_position={}",
        RUN.replace('+', "%2B"),
        position.unwrap()
    );
    assert_eq!(
        server.get(&contains, &admin).await.1["contains_content_items"],
        true
    );
    let bad_filter = json!({"enterprise_customer": world.customer.to_string(), "content_filter": {"key": "not a list"}});
    let (status, problem) = server
        .post(
            &format!("{API}/enterprise_customer_catalog/"),
            &admin,
            &bad_filter,
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let learner = token(
        "learner7",
        &[&format!("enterprise_learner:{}", world.customer)],
    );
    assert_eq!(
        server
            .post(
                &format!("{API}/enterprise_customer_catalog/"),
                &learner,
                &create
            )
            .await
            .0,
        403
    );

    let branding = format!(
        "{API}/enterprise-customer-branding/update-branding/{}/",
        world.customer
    );
    let (status, body, position) = send_at(
        server
            .request(Method::PATCH, &branding, &admin)
            .json(&json!({"primary_color": "#112233"})),
    )
    .await;
    assert_eq!(
        (status, body["primary_color"].clone()),
        (200, json!("#112233"))
    );
    let bad = server
        .request(Method::PATCH, &branding, &admin)
        .json(&json!({"primary_color": "blue"}));
    let (status, problem) = send(bad).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("primary_color"))
    );
    assert_eq!(
        send(
            server
                .request(Method::PATCH, &branding, &foreign)
                .json(&json!({"primary_color": "#000000"}))
        )
        .await
        .0,
        403
    );
    let slug = body["enterprise_slug"].as_str().unwrap().to_string();
    let read = format!(
        "{API}/enterprise-customer-branding/{slug}/?min_position={}",
        position.unwrap()
    );
    let (status, read) = server.get(&read, &learner).await;
    assert_eq!(
        (status, read["primary_color"].clone()),
        (200, json!("#112233"))
    );
}
