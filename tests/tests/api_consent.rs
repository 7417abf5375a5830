//! edX's consent API as edx-platform's client and edX's own tests call it: query-string GET,
//! JSON and form POST and DELETE, the `JWT` scheme, edX's parameter precedence and errors.

use e2e_tests::api::{lms, operator, send, token, Server};
use e2e_tests::{consent_required, World};
use reqwest::Method;
use serde_json::{json, Value};

const PATH: &str = "/consent/api/v1/data_sharing_consent";
const COURSE: &str = "edX+DemoX";

async fn world(pool: sqlx::PgPool) -> (Server, World, String) {
    let world = World::new(pool.clone(), consent_required()).await;
    world.learner(7).await;
    let server = Server::start(pool).await;
    server.settle().await;
    (server, world, token("learner7", &[]))
}

fn query(world: &World, course: &str) -> String {
    let customer = world.customer.to_string();
    let pairs = [
        ("username", "learner7"),
        ("enterprise_customer_uuid", customer.as_str()),
        ("course_id", course),
    ];
    format!("{PATH}?{}", serde_urlencoded::to_string(pairs).unwrap())
}

fn record(world: &World, exists: bool, provided: bool, required: bool) -> Value {
    json!({
        "username": "learner7",
        "enterprise_customer_uuid": world.customer.to_string(),
        "exists": exists,
        "consent_provided": provided,
        "consent_required": required,
        "course_id": COURSE,
    })
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn grant_and_refuse_round_trip_in_edx_forms(pool: sqlx::PgPool) {
    let (server, world, learner) = world(pool).await;

    let (status, body) = server.get(&query(&world, COURSE), &learner).await;
    assert_eq!((status, body), (200, record(&world, false, false, true)));

    // edX's own tests POST form-encoded bodies.
    let form = [
        ("username", "learner7".to_string()),
        ("enterprise_customer_uuid", world.customer.to_string()),
        ("course_id", COURSE.to_string()),
    ];
    let (status, body) = send(server.request(Method::POST, PATH, &learner).form(&form)).await;
    assert_eq!((status, body), (200, record(&world, true, true, false)));

    // A run of the course answers from the course-level record.
    let (_, body) = server
        .get(&query(&world, "course-v1:edX+DemoX+Demo_Course"), &learner)
        .await;
    assert_eq!(body["consent_provided"], true);

    // edx-platform's client DELETEs with a JSON body.
    let json_body = json!({
        "username": "learner7",
        "enterprise_customer_uuid": world.customer.to_string(),
        "course_id": COURSE,
    });
    let (status, body) = send(
        server
            .request(Method::DELETE, PATH, &learner)
            .json(&json_body),
    )
    .await;
    assert_eq!((status, body), (200, record(&world, true, false, true)));

    // Refusing again changes nothing.
    let (status, body) =
        send(server.request(Method::DELETE, &query(&world, COURSE), &learner)).await;
    assert_eq!((status, body), (200, record(&world, true, false, true)));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn missing_parameters_are_named_in_edx_error_shape(pool: sqlx::PgPool) {
    let (server, world, learner) = world(pool).await;
    let path = format!("{PATH}?username=learner7");
    let (status, body) = server.get(&path, &learner).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "Some required parameter(s) missing: enterprise_customer_uuid, course_id or program_uuid"})
    );
    let bad_uuid = format!("{PATH}?username=learner7&enterprise_customer_uuid=nope&course_id=x");
    let (status, body) = server.get(&bad_uuid, &learner).await;
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("enterprise_customer_uuid"));
    // Nothing was written by the refused requests.
    let (status, body) = server.get(&query(&world, COURSE), &learner).await;
    assert_eq!((status, body), (200, record(&world, false, false, true)));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn post_takes_the_body_before_the_query_string(pool: sqlx::PgPool) {
    let (server, world, _) = world(pool).await;
    // The query names another course; the body's course wins for POST.
    let path = format!(
        "{PATH}?username=learner7&enterprise_customer_uuid={}&course_id=Other+Course",
        world.customer
    );
    let body = json!({"course_id": COURSE});
    let (status, answer) = server.post(&path, &operator(), &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["course_id"], COURSE);
    assert_eq!(answer["consent_provided"], true);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn only_staff_the_lms_or_the_learner_named_may_act(pool: sqlx::PgPool) {
    let (server, world, _) = world(pool).await;
    let path = query(&world, COURSE);
    let other = token(
        "learner8",
        &[&format!("enterprise_learner:{}", world.customer)],
    );
    let admin = token("admin", &[&format!("enterprise_admin:{}", world.customer)]);
    for forbidden in [&other, &admin] {
        let (status, _) = server.get(&path, forbidden).await;
        assert_eq!(status, 403);
        let (status, _) = send(server.request(Method::POST, &path, forbidden)).await;
        assert_eq!(status, 403);
    }
    let (status, _) = server.get(&path, &lms()).await;
    assert_eq!(status, 200);
    let (status, _) = server.get(&path, &operator()).await;
    assert_eq!(status, 200);

    let (status, body) = send(server.client.get(server.url(&path))).await;
    assert_eq!(status, 401);
    assert_eq!(body["status"], 401);
    let bearer = server.client.get(server.url(&path)).header(
        "Authorization",
        format!("Bearer {}", token("learner7", &[])),
    );
    assert_eq!(send(bearer).await.0, 200);
    let forged = server
        .client
        .get(server.url(&path))
        .header("Authorization", "JWT eyJhbGciOiJIUzI1NiJ9.e30.bad");
    assert_eq!(send(forged).await.0, 401);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_unknown_customer_requires_nothing(pool: sqlx::PgPool) {
    let (server, _, learner) = world(pool).await;
    let other = uuid::Uuid::new_v4();
    let path =
        format!("{PATH}?username=learner7&enterprise_customer_uuid={other}&course_id=edX%2BDemoX");
    let (status, body) = server.get(&path, &learner).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["exists"].clone(),
            body["consent_provided"].clone(),
            body["consent_required"].clone()
        ),
        (json!(false), json!(false), json!(false))
    );
}
