//! Operations routes, the OpenAPI document, cross-cutting behaviour (body limit, content type,
//! `min_position`), and the role x tenant matrix over the customer-scoped routes.

use e2e_tests::api::{admin_of, lms, operator, send, token, Server};
use e2e_tests::{consent_required, World, RUN};
use reqwest::Method;
use serde_json::{json, Value};

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn health_readiness_and_metrics(pool: sqlx::PgPool) {
    let server = Server::start(pool).await;
    assert_eq!(send(server.client.get(server.url("/health"))).await.0, 200);
    let (status, ready) = send(server.client.get(server.url("/ready"))).await;
    assert_eq!((status, ready["database"].clone()), (200, json!("ok")));
    let create = json!({"name": "Acme", "slug": "acme"});
    assert_eq!(
        server
            .post(
                "/enterprise/api/v1/enterprise-customer/",
                &operator(),
                &create
            )
            .await
            .0,
        201
    );
    server.settle().await;
    server
        .get("/enterprise/api/v1/enterprise-customer/", &operator())
        .await;
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/enterprise/api/v1/enterprise-customer/",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("projection_lag_events{projection=\"consent\"}"),
        "{text}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_openapi_document_is_valid_and_covers_every_route(pool: sqlx::PgPool) {
    let server = Server::start(pool).await;
    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
    let document: Value = serde_json::from_str(&text).unwrap();
    let expected = [
        ("get", "/consent/api/v1/data_sharing_consent"),
        ("post", "/consent/api/v1/data_sharing_consent"),
        ("delete", "/consent/api/v1/data_sharing_consent"),
        ("get", "/enterprise/api/v1/enterprise-customer/"),
        ("post", "/enterprise/api/v1/enterprise-customer/"),
        ("patch", "/enterprise/api/v1/enterprise-customer/{uuid}/"),
        (
            "get",
            "/enterprise/api/v1/enterprise-customer/{uuid}/contains_content_items/",
        ),
        (
            "post",
            "/enterprise/api/v1/enterprise-customer/{uuid}/course_enrollments/",
        ),
        (
            "post",
            "/enterprise/api/v1/enterprise-customer/{uuid}/unlink_users/",
        ),
        ("get", "/enterprise/api/v1/enterprise-learner/"),
        ("post", "/enterprise/api/v1/enterprise-course-enrollment/"),
        (
            "get",
            "/enterprise/api/v1/enterprise_catalogs/{uuid}/course_runs/{course_id}/",
        ),
        ("post", "/enterprise/api/v1/enterprise_customer_catalog/"),
        (
            "patch",
            "/enterprise/api/v1/enterprise-customer-branding/update-branding/{uuid}/",
        ),
        ("post", "/api/v1/lms/content"),
        ("get", "/metrics"),
        ("get", "/cornerstone/course-list"),
        ("get", "/ready"),
    ];
    for (method, path) in expected {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is missing from the document"
        );
    }
    // Every operation documents its answers, and every authenticated one its security.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    assert!(spec
        .components
        .unwrap()
        .security_schemes
        .contains_key("jwt"));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn bad_requests_are_problems_and_change_nothing(pool: sqlx::PgPool) {
    let server = Server::start(pool).await;
    let path = "/enterprise/api/v1/enterprise-customer/";
    let huge = "x".repeat(9 * 1024 * 1024);
    let response = server
        .request(Method::POST, path, &operator())
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, problem) = send(
        server
            .request(Method::POST, path, &operator())
            .header("Content-Type", "text/plain")
            .body("name=x"),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("Content-Type"))
    );
    let (status, problem) = send(
        server
            .request(Method::POST, path, &operator())
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = server
        .get(&format!("{path}?min_position=999999"), &operator())
        .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("min_position"))
    );
    let (status, _) = server.get(&format!("{path}?page=0"), &operator()).await;
    assert_eq!(status, 400);
    let (status, _) = server
        .post(
            path,
            &operator(),
            &json!({"name": "A", "slug": "a", "uuid": "nope"}),
        )
        .await;
    assert_eq!(status, 400);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert_eq!(count, 0, "refused requests appended events");
    let (status, _) = send(
        server
            .client
            .get(server.url(path))
            .header("Authorization", format!("Token {}", operator())),
    )
    .await;
    assert_eq!(status, 401);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn every_customer_route_checks_role_and_tenant(pool: sqlx::PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    let server = Server::start(pool).await;
    server.settle().await;
    let a = world.customer;
    let catalog = world.catalog.0;
    let base = "/enterprise/api/v1";
    // Routes an administrator of the customer may use; an administrator of another customer
    // and a plain learner may not.
    let admin_routes: Vec<(Method, String, Value)> = vec![
        (
            Method::PATCH,
            format!("{base}/enterprise-customer/{a}/"),
            json!({"name": "X"}),
        ),
        (
            Method::POST,
            format!("{base}/enterprise-customer/{a}/course_enrollments/"),
            json!([{"lms_user_id": 1, "course_run_id": RUN, "course_mode": "verified"}]),
        ),
        (
            Method::POST,
            format!("{base}/enterprise-customer/{a}/unlink_users/"),
            json!({"user_emails": ["a@b.c"]}),
        ),
        (
            Method::GET,
            format!("{base}/enterprise-learner/?enterprise_customer={a}"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("{base}/enterprise-course-enrollment/?enterprise_customer={a}"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("{base}/enterprise_customer_catalog/"),
            json!({"enterprise_customer": a.to_string()}),
        ),
        (
            Method::PATCH,
            format!("{base}/enterprise_customer_catalog/{catalog}/"),
            json!({"title": "X"}),
        ),
        (
            Method::PATCH,
            format!("{base}/enterprise-customer-branding/update-branding/{a}/"),
            json!({"primary_color": "#000000"}),
        ),
    ];
    let member_routes: Vec<(Method, String, Value)> = vec![
        (
            Method::GET,
            format!("{base}/enterprise-customer/{a}/"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("{base}/enterprise-customer/{a}/contains_content_items/?course_run_ids=x"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("{base}/enterprise_catalogs/{catalog}/"),
            Value::Null,
        ),
        (
            Method::GET,
            format!(
                "{base}/enterprise_catalogs/{catalog}/contains_content_items/?course_run_ids=x"
            ),
            Value::Null,
        ),
    ];
    let foreign_admin = admin_of(uuid::Uuid::new_v4());
    let learner = token("lee", &[&format!("enterprise_learner:{a}")]);
    let head = server.event_count().await;
    let call = |method: &Method, path: &str, body: &Value, token: Option<&str>| {
        let mut request = server.client.request(method.clone(), server.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("JWT {token}"));
        }
        if !body.is_null() {
            request = request.json(body);
        }
        request
    };
    for (method, path, body) in admin_routes.iter().chain(&member_routes) {
        assert_eq!(
            send(call(method, path, body, None)).await.0,
            401,
            "{method} {path} without a token"
        );
        assert_eq!(
            send(call(method, path, body, Some(&foreign_admin))).await.0,
            403,
            "{method} {path} as another customer's admin"
        );
        assert_eq!(
            send(call(method, path, body, Some(&lms()))).await.0,
            403,
            "{method} {path} as the LMS"
        );
    }
    for (method, path, body) in &admin_routes {
        assert_eq!(
            send(call(method, path, body, Some(&learner))).await.0,
            403,
            "{method} {path} as a learner"
        );
    }
    for (method, path, body) in &member_routes {
        assert_eq!(
            send(call(method, path, body, Some(&learner))).await.0,
            200,
            "{method} {path} as a learner"
        );
    }
    assert_eq!(server.event_count().await, head, "refused requests wrote");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn the_cornerstone_pull_is_authenticated_per_customer(pool: sqlx::PgPool) {
    let server = Server::start(pool).await;
    let customer = uuid::Uuid::new_v4();
    let path = format!("/cornerstone/course-list?ciid={customer}");
    assert_eq!(send(server.client.get(server.url(&path))).await.0, 401);
    assert_eq!(
        server.get(&path, &admin_of(uuid::Uuid::new_v4())).await.0,
        403
    );
    let worker = token("cornerstone", &["channel_worker"]);
    let (status, body) = server.get(&path, &worker).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"message": "No active Cornerstone configuration found for given ciid."})
        )
    );
    let (status, body) = server.get("/cornerstone/course-list?ciid=x", &worker).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "Cornerstone course list API expects ciid parameter."})
        )
    );
}
