//! edX's `enterprise-customer/` routes over HTTP: CRUD, the role x tenant matrix, bad input,
//! `contains_content_items`, `course_enrollments` and `unlink_users`.

use e2e_tests::api::{admin_of, operator, send, send_at, token, Server};
use e2e_tests::{consent_required, World, RUN};
use reqwest::Method;
use serde_json::json;

const BASE: &str = "/enterprise/api/v1/enterprise-customer";

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn operators_create_admins_see_and_update_their_own(pool: sqlx::PgPool) {
    let server = Server::start(pool).await;
    let create =
        json!({"name": "Acme", "slug": "acme", "enforce_data_sharing_consent": "at_enrollment"});
    let response = server
        .request(Method::POST, &format!("{BASE}/"), &operator())
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let position: i64 = response.headers()["x-log-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let acme: serde_json::Value = response.json().await.unwrap();
    assert_eq!(acme["slug"], "acme");
    assert_eq!(acme["enable_data_sharing_consent"], true);
    let id = acme["uuid"].as_str().unwrap().to_string();

    let (status, other) = server
        .post(
            &format!("{BASE}/"),
            &operator(),
            &json!({"name": "Other", "slug": "other"}),
        )
        .await;
    assert_eq!(status, 201);
    let other_id = other["uuid"].as_str().unwrap().to_string();

    // Reads wait for the read model when asked to.
    let (status, page) = server
        .get(&format!("{BASE}/?min_position={position}"), &operator())
        .await;
    assert_eq!(status, 200);
    assert!(page["count"].as_i64().unwrap() >= 1);
    server.settle().await;
    let (_, page) = server.get(&format!("{BASE}/"), &operator()).await;
    assert_eq!(page["count"], 2);

    let admin = admin_of(&id);
    let (_, mine) = server.get(&format!("{BASE}/"), &admin).await;
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["results"][0]["uuid"], id.as_str());
    assert_eq!(server.get(&format!("{BASE}/{id}/"), &admin).await.0, 200);
    assert_eq!(
        server.get(&format!("{BASE}/{other_id}/"), &admin).await.0,
        403
    );
    let learner = token("lee", &[&format!("enterprise_learner:{id}")]);
    assert_eq!(server.get(&format!("{BASE}/{id}/"), &learner).await.0, 200);

    let patch = |token: &str, body: serde_json::Value| {
        server
            .request(Method::PATCH, &format!("{BASE}/{id}/"), token)
            .json(&body)
    };
    let (status, renamed) = send(patch(&admin, json!({"name": "Acme Corp"}))).await;
    assert_eq!((status, renamed["name"].clone()), (200, json!("Acme Corp")));
    assert_eq!(send(patch(&learner, json!({"name": "x"}))).await.0, 403);
    assert_eq!(send(patch(&admin, json!({"active": false}))).await.0, 403);
    assert_eq!(
        send(
            server
                .request(Method::PATCH, &format!("{BASE}/{other_id}/"), &admin)
                .json(&json!({"name": "x"}))
        )
        .await
        .0,
        403
    );

    let (status, problem) = send(patch(&admin, json!({"nmae": "typo"}))).await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("nmae"),
        "{problem}"
    );
    let (status, problem) = send(patch(&admin, json!({"slug": "Not A Slug"}))).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("slug"))
    );
    let (status, _) = send(patch(&admin, json!({"slug": "other"}))).await;
    assert_eq!(status, 409);

    assert_eq!(
        send(server.request(Method::DELETE, &format!("{BASE}/{id}/"), &admin))
            .await
            .0,
        403
    );
    let (status, _, position) =
        send_at(server.request(Method::DELETE, &format!("{BASE}/{id}/"), &operator())).await;
    assert_eq!(status, 204);
    let after = format!("{BASE}/{id}/?min_position={}", position.unwrap());
    let (_, gone) = server.get(&after, &admin).await;
    assert_eq!(gone["active"], false);
    assert_eq!(gone["name"], "Acme Corp");

    assert_eq!(
        send(server.client.get(server.url(&format!("{BASE}/"))))
            .await
            .0,
        401
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn admins_enroll_and_unlink_their_learners(pool: sqlx::PgPool) {
    let world = World::new(pool.clone(), consent_required()).await;
    world.learner(7).await;
    let server = Server::start(pool).await;
    server.settle().await;
    let id = world.customer.to_string();
    let admin = admin_of(&id);

    let contains = format!(
        "{BASE}/{id}/contains_content_items/?course_run_ids={}",
        RUN.replace('+', "%2B")
    );
    assert_eq!(
        server.get(&contains, &admin).await,
        (200, json!({"contains_content_items": true}))
    );
    let absent = format!("{BASE}/{id}/contains_content_items/?course_run_ids=course-v1:X%2BY%2BZ");
    assert_eq!(
        server.get(&absent, &admin).await.1["contains_content_items"],
        false
    );
    assert_eq!(
        server
            .get(&format!("{BASE}/{id}/contains_content_items/"), &admin)
            .await
            .0,
        400
    );

    let path = format!("{BASE}/{id}/course_enrollments/");
    let unknown = json!([
        {"lms_user_id": 7, "course_run_id": RUN, "course_mode": "verified"},
        {"user_email": "nobody@example.com", "course_run_id": RUN, "course_mode": "verified"},
    ]);
    let (status, problem) = server.post(&path, &admin, &unknown).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("[1]"))
    );
    let head = server.event_count().await;

    let other_admin = admin_of(uuid::Uuid::new_v4());
    let good = json!([{"lms_user_id": 7, "course_run_id": RUN, "course_mode": "verified"}]);
    assert_eq!(server.post(&path, &other_admin, &good).await.0, 403);
    assert_eq!(
        server.event_count().await,
        head,
        "refused requests wrote nothing"
    );

    // A bad item refuses the whole request, the good one before it included.
    let mixed = json!([
        {"lms_user_id": 7, "course_run_id": RUN, "course_mode": "verified"},
        {"lms_user_id": 7, "course_run_id": "course-v1:No+Such+Run", "course_mode": "verified"},
    ]);
    let (status, problem) = server.post(&path, &admin, &mixed).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("course_run_id"))
    );
    let leave_unknown = json!([{"lms_user_id": 7, "course_run_id": RUN, "course_mode": "verified", "is_active": false}]);
    assert_eq!(server.post(&path, &admin, &leave_unknown).await.0, 404);
    assert_eq!(
        server.event_count().await,
        head,
        "refused requests wrote nothing"
    );

    let (status, enrolled) = server.post(&path, &admin, &good).await;
    assert_eq!(status, 201, "{enrolled}");
    assert_eq!(enrolled[0]["course_mode"], "verified");
    let not_offered =
        json!([{"lms_user_id": 7, "course_run_id": RUN, "course_mode": "professional"}]);
    let (status, problem) = server.post(&path, &admin, &not_offered).await;
    assert_eq!(
        (status, problem["errors"][0]["field"].clone()),
        (400, json!("course_mode"))
    );

    let unlink = format!("{BASE}/{id}/unlink_users/");
    let (status, _) = server
        .post(
            &unlink,
            &admin,
            &json!({"user_emails": ["learner7@example.com"]}),
        )
        .await;
    assert_eq!(status, 200);
    // An unlinked learner cannot be enrolled any more.
    assert_eq!(server.post(&path, &admin, &good).await.0, 422);
}
