//! The catalog read model: content and catalogs through the store, then the projection, then its
//! queries. Filter semantics, membership following filter and content changes, retirement,
//! removal, pagination, `contains_content_items`, rebuild equal to incremental catch-up, and one
//! batch (and the fold of a rebuild) equal to one event at a time.

use domain::content::{discovery, ContentCommand, ContentItem, ContentMetadata, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::{customer_stream_id, Customer, CustomerCommand};
use domain::ids::{CatalogId, CustomerId};
use e2e_tests::{consent_required, meta};
use projections::read_models::catalog::{self, CatalogProjection, ContentRow};
use projections::runner::{catch_up, RunnerOptions};
use projections::Projection;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::Arc;
use store::EventStore;
use uuid::Uuid;

const COURSE: &str = "edX+DemoX";
const RUN: &str = "course-v1:edX+DemoX+Demo_Course";
const PROGRAM: &str = "52ad909b-c57d-4ff1-bab3-999813a2479b";

fn fixture(content_type: ContentType) -> ContentMetadata {
    let text = match content_type {
        ContentType::Course => include_str!("../../fixtures/discovery/course.json"),
        ContentType::CourseRun => include_str!("../../fixtures/discovery/course_run.json"),
        ContentType::Program => include_str!("../../fixtures/discovery/program.json"),
    };
    let doc: Value = serde_json::from_str(text).expect("fixture JSON");
    discovery::from_discovery(content_type, &doc).expect("fixture parses")
}

/// The fixture's run under another key, of the course its key names.
fn run(key: &str) -> ContentMetadata {
    let mut metadata = fixture(ContentType::CourseRun);
    metadata.key = key.to_string();
    metadata.course_key = domain::ids::course_key_of_run(key).map(|k| k.0);
    metadata
}

/// The fixture's run under another key, with another first paid seat price.
fn priced_run(key: &str, price: f64) -> ContentMetadata {
    let mut metadata = run(key);
    metadata.first_enrollable_paid_seat_price = Some(price);
    metadata
}

struct Fixture {
    pool: PgPool,
    store: EventStore,
}

impl Fixture {
    fn new(pool: PgPool) -> Self {
        let store = EventStore::new(pool.clone());
        Self { pool, store }
    }

    async fn publish(&self, metadata: ContentMetadata) {
        let stream = domain::content::content_stream_id(metadata.content_type, &metadata.key);
        let at = chrono::Utc::now();
        self.store
            .execute::<ContentItem>(
                &stream,
                ContentCommand::PublishContent { metadata, at },
                &(),
                &meta(),
            )
            .await
            .expect("publishing content");
    }

    async fn retire(&self, content_type: ContentType, key: &str) {
        let stream = domain::content::content_stream_id(content_type, key);
        let retire = ContentCommand::RetireContent {
            content_type,
            key: key.to_string(),
            at: chrono::Utc::now(),
        };
        self.store
            .execute::<ContentItem>(&stream, retire, &(), &meta())
            .await
            .expect("retiring content");
    }

    async fn customer(&self) -> CustomerId {
        let id = CustomerId(Uuid::new_v4());
        let create = CustomerCommand::CreateCustomer {
            customer_id: id,
            name: "Acme".into(),
            slug: format!("acme-{}", &id.0.simple().to_string()[..8]),
            consent: consent_required(),
            enable_audit_enrollment: false,
            enable_audit_data_reporting: false,
        };
        store::services::customers::execute(&self.store, id, create, &meta())
            .await
            .expect("creating the customer");
        id
    }

    async fn customer_command(&self, customer: CustomerId, command: CustomerCommand) {
        self.store
            .execute::<Customer>(&customer_stream_id(customer), command, &(), &meta())
            .await
            .expect("customer command");
    }

    async fn add_catalog(&self, customer: CustomerId, filter: Value) -> Uuid {
        let catalog_id = CatalogId(Uuid::new_v4());
        let add = CustomerCommand::AddCatalog {
            catalog_id,
            title: "Catalog".into(),
            content_filter: filter,
            enabled_course_modes: vec![CourseMode::Audit, CourseMode::Verified],
            publish_audit_enrollment_urls: false,
        };
        self.customer_command(customer, add).await;
        catalog_id.0
    }

    async fn set_filter(&self, customer: CustomerId, catalog: Uuid, filter: Value) {
        let update = CustomerCommand::UpdateCatalog {
            catalog_id: CatalogId(catalog),
            title: None,
            content_filter: Some(filter),
            enabled_course_modes: None,
            publish_audit_enrollment_urls: None,
        };
        self.customer_command(customer, update).await;
    }

    /// Waits until every committed event is past the log's horizon, then catches up.
    async fn project(&self) {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("counting events");
        e2e_tests::read_log(&self.pool, count as usize).await;
        catch_up(&self.pool, &CatalogProjection, RunnerOptions::default())
            .await
            .expect("catching up");
    }

    /// A catalog's whole content as (type, key) pairs, in the query's order.
    async fn content(&self, catalog: Uuid) -> Vec<(String, String)> {
        let (total, rows) = catalog::catalog_content(&self.pool, catalog, 1, 1000)
            .await
            .expect("catalog content");
        assert_eq!(total as usize, rows.len());
        rows.into_iter()
            .map(|row| (row.content_type, row.content_key))
            .collect()
    }

    async fn contains(&self, catalog: Uuid, runs: &[&str], programs: &[&str]) -> bool {
        let strings = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        catalog::contains_content_items(&self.pool, &[catalog], &strings(runs), &strings(programs))
            .await
            .expect("contains_content_items")
    }
}

fn item(content_type: &str, key: &str) -> (String, String) {
    (content_type.to_string(), key.to_string())
}

async fn publish_course_run_and_program(f: &Fixture) {
    f.publish(fixture(ContentType::Course)).await;
    f.publish(fixture(ContentType::CourseRun)).await;
    f.publish(fixture(ContentType::Program)).await;
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_empty_filter_admits_every_published_item(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let before = f.add_catalog(customer, json!({})).await;
    publish_course_run_and_program(&f).await;
    let after = f.add_catalog(customer, json!({})).await;
    f.project().await;

    let everything = vec![
        item("course", COURSE),
        item("courserun", RUN),
        item("program", PROGRAM),
    ];
    assert_eq!(f.content(before).await, everything);
    assert_eq!(f.content(after).await, everything);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_equality_filter_admits_only_items_with_that_value(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let programs = f
        .add_catalog(customer, json!({"content_type": "program"}))
        .await;
    let instructor_paced = f
        .add_catalog(customer, json!({"pacing_type": "instructor_paced"}))
        .await;
    let mut self_paced = run("course-v1:edX+DemoX+Self");
    self_paced.pacing_type = Some("self_paced".into());
    publish_course_run_and_program(&f).await;
    f.publish(self_paced).await;
    f.project().await;

    assert_eq!(f.content(programs).await, vec![item("program", PROGRAM)]);
    assert_eq!(
        f.content(instructor_paced).await,
        vec![item("courserun", RUN)],
        "the self-paced run and the items without a pacing type are left out"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_list_admits_items_with_any_of_its_values_and_an_empty_list_admits_nothing(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let any_of = f
        .add_catalog(customer, json!({"content_type": ["courserun", "program"]}))
        .await;
    let none = f.add_catalog(customer, json!({"content_type": []})).await;
    let seat_types = f
        .add_catalog(customer, json!({"seat_types": ["verified", "masters"]}))
        .await;
    publish_course_run_and_program(&f).await;
    f.project().await;

    assert_eq!(
        f.content(any_of).await,
        vec![item("courserun", RUN), item("program", PROGRAM)]
    );
    assert!(f.content(none).await.is_empty());
    assert_eq!(
        f.content(seat_types).await,
        vec![item("courserun", RUN)],
        "a list field matches when any of its elements is listed"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_key_list_admits_a_course_with_all_its_runs(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let by_course = f.add_catalog(customer, json!({"key": [COURSE]})).await;
    let by_run = f.add_catalog(customer, json!({"key": [RUN]})).await;
    publish_course_run_and_program(&f).await;
    f.publish(run("course-v1:edX+DemoX+2025")).await;
    f.publish(run("course-v1:MITx+6.00x+2025")).await;
    f.project().await;

    assert_eq!(
        f.content(by_course).await,
        vec![
            item("course", COURSE),
            item("courserun", "course-v1:edX+DemoX+2025"),
            item("courserun", RUN),
        ]
    );
    assert_eq!(f.content(by_run).await, vec![item("courserun", RUN)]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn numeric_comparisons_accept_a_string_bound(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let cheap = f
        .add_catalog(
            customer,
            json!({"first_enrollable_paid_seat_price__lte": "100"}),
        )
        .await;
    let dear = f
        .add_catalog(
            customer,
            json!({"first_enrollable_paid_seat_price__gt": 100}),
        )
        .await;
    f.publish(priced_run("course-v1:edX+DemoX+Cheap", 49.0))
        .await;
    f.publish(priced_run("course-v1:edX+DemoX+Edge", 100.0))
        .await;
    f.publish(fixture(ContentType::CourseRun)).await; // 149
    f.publish(fixture(ContentType::Program)).await; // no price: fails every comparison
    f.project().await;

    assert_eq!(
        f.content(cheap).await,
        vec![
            item("courserun", "course-v1:edX+DemoX+Cheap"),
            item("courserun", "course-v1:edX+DemoX+Edge"),
        ]
    );
    assert_eq!(f.content(dear).await, vec![item("courserun", RUN)]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn membership_follows_a_filter_update(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let catalog = f
        .add_catalog(customer, json!({"content_type": "course"}))
        .await;
    publish_course_run_and_program(&f).await;
    f.project().await;
    assert_eq!(
        f.content(catalog).await,
        vec![item("course", COURSE), item("courserun", RUN)]
    );

    f.set_filter(customer, catalog, json!({"content_type": "program"}))
        .await;
    f.project().await;
    assert_eq!(f.content(catalog).await, vec![item("program", PROGRAM)]);
    assert!(!f.contains(catalog, &[COURSE], &[]).await);

    let rename = CustomerCommand::UpdateCatalog {
        catalog_id: CatalogId(catalog),
        title: Some("Programs".into()),
        content_filter: None,
        enabled_course_modes: Some(vec![CourseMode::Verified]),
        publish_audit_enrollment_urls: Some(true),
    };
    f.customer_command(customer, rename).await;
    f.project().await;
    let row = catalog::catalog(&f.pool, catalog)
        .await
        .unwrap()
        .expect("the catalog");
    assert_eq!(row.title, "Programs");
    assert_eq!(row.content_filter, json!({"content_type": "program"}));
    assert_eq!(row.enabled_course_modes, vec![CourseMode::Verified]);
    assert!(row.publish_audit_enrollment_urls);
    assert_eq!(row.customer_id, customer.0);
    assert_eq!(f.content(catalog).await, vec![item("program", PROGRAM)]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_content_update_moves_the_item_out_of_and_into_a_catalog(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let cheap = f
        .add_catalog(
            customer,
            json!({"first_enrollable_paid_seat_price__lte": 100}),
        )
        .await;
    let key = "course-v1:edX+DemoX+Moving";
    f.publish(priced_run(key, 50.0)).await;
    f.project().await;
    assert_eq!(f.content(cheap).await, vec![item("courserun", key)]);

    f.publish(priced_run(key, 150.0)).await;
    f.project().await;
    assert!(f.content(cheap).await.is_empty());

    f.publish(priced_run(key, 75.0)).await;
    f.project().await;
    let (_, rows) = catalog::catalog_content(&f.pool, cheap, 1, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].metadata["first_enrollable_paid_seat_price"],
        json!(75.0)
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_retired_item_leaves_every_catalog_until_published_again(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let all = f.add_catalog(customer, json!({})).await;
    let courses = f.add_catalog(customer, json!({"key": [COURSE]})).await;
    publish_course_run_and_program(&f).await;
    f.retire(ContentType::CourseRun, RUN).await;
    f.retire(ContentType::Program, PROGRAM).await;
    f.project().await;

    assert_eq!(f.content(all).await, vec![item("course", COURSE)]);
    assert_eq!(
        f.content(courses).await,
        vec![item("course", COURSE)],
        "a retired run is not held through its course either"
    );
    assert!(!f.contains(all, &[RUN], &[PROGRAM]).await);
    assert_eq!(
        catalog::content_detail(&f.pool, courses, ContentType::CourseRun, RUN)
            .await
            .unwrap(),
        None
    );

    f.publish(fixture(ContentType::CourseRun)).await;
    f.project().await;
    assert_eq!(
        f.content(all).await,
        vec![item("course", COURSE), item("courserun", RUN)]
    );
    assert!(f.contains(all, &[RUN], &[]).await);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_removed_catalog_holds_nothing_and_leaves_the_customer(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let kept = f
        .add_catalog(customer, json!({"content_type": "program"}))
        .await;
    let removed = f.add_catalog(customer, json!({})).await;
    publish_course_run_and_program(&f).await;
    f.project().await;
    let ids =
        |rows: Vec<catalog::CatalogRow>| rows.into_iter().map(|r| r.catalog_id).collect::<Vec<_>>();
    assert_eq!(
        ids(catalog::catalogs_of_customer(&f.pool, customer.0)
            .await
            .unwrap()),
        vec![kept, removed]
    );

    let remove = CustomerCommand::RemoveCatalog {
        catalog_id: CatalogId(removed),
    };
    f.customer_command(customer, remove).await;
    f.project().await;

    assert!(f.content(removed).await.is_empty());
    assert!(!f.contains(removed, &[RUN], &[]).await);
    assert_eq!(catalog::catalog(&f.pool, removed).await.unwrap(), None);
    assert_eq!(
        ids(catalog::catalogs_of_customer(&f.pool, customer.0)
            .await
            .unwrap()),
        vec![kept]
    );
    assert!(
        !catalog::customer_contains_course(&f.pool, customer.0, COURSE)
            .await
            .unwrap(),
        "only the removed catalog held the course"
    );
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM catalog_membership WHERE catalog_id = $1")
            .bind(removed)
            .fetch_one(&f.pool)
            .await
            .unwrap();
    assert_eq!(members, 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn catalog_content_comes_in_stable_pages_with_the_total(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let catalog = f
        .add_catalog(customer, json!({"content_type": "courserun"}))
        .await;
    let keys: Vec<String> = (1..=5)
        .map(|n| format!("course-v1:edX+DemoX+R{n}"))
        .collect();
    for key in keys.iter().rev() {
        f.publish(run(key)).await;
    }
    f.publish(fixture(ContentType::Course)).await;
    f.project().await;

    let mut seen = Vec::new();
    for page in 1..=3 {
        let (total, rows) = catalog::catalog_content(&f.pool, catalog, page, 2)
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert_eq!(rows.len(), if page < 3 { 2 } else { 1 });
        seen.extend(rows.into_iter().map(|r: ContentRow| r.content_key));
    }
    assert_eq!(seen, keys, "pages follow (content_type, content_key)");
    let (total, beyond) = catalog::catalog_content(&f.pool, catalog, 4, 2)
        .await
        .unwrap();
    assert_eq!(
        (total, beyond.len()),
        (5, 0),
        "a page past the end is empty but counts"
    );
    let (total, none) = catalog::catalog_content(&f.pool, Uuid::new_v4(), 1, 2)
        .await
        .unwrap();
    assert_eq!((total, none.len()), (0, 0));
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn contains_content_items_is_true_when_any_requested_item_is_in_a_catalog(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let courses = f
        .add_catalog(customer, json!({"content_type": "course"}))
        .await;
    let runs = f
        .add_catalog(customer, json!({"content_type": "courserun"}))
        .await;
    let programs = f
        .add_catalog(customer, json!({"content_type": "program"}))
        .await;
    publish_course_run_and_program(&f).await;
    f.publish(run("course-v1:MITx+6.00x+2025")).await;
    f.project().await;

    let other_run = "course-v1:MITx+6.00x+2025";
    assert!(
        f.contains(courses, &[RUN], &[]).await,
        "a run is held through its course"
    );
    assert!(f.contains(courses, &[COURSE], &[]).await);
    assert!(
        !f.contains(courses, &[other_run], &[]).await,
        "a published run whose course is not a member"
    );
    assert!(
        f.contains(runs, &[COURSE], &[]).await,
        "a course key is held when one of its runs is"
    );
    assert!(f.contains(programs, &[], &[PROGRAM]).await);
    assert!(
        f.contains(programs, &[PROGRAM], &[]).await,
        "run ids and program uuids are one list of keys, as upstream"
    );
    assert!(
        f.contains(
            programs,
            &[RUN, "course-v1:Nobody+Nothing+Never"],
            &[PROGRAM]
        )
        .await,
        "any requested item held is enough"
    );
    assert!(!f.contains(programs, &[RUN], &[]).await);
    assert!(
        !f.contains(programs, &[], &[]).await,
        "nothing requested: false"
    );
    assert!(
        !f.contains(courses, &["course-v1:edX+DemoX+Unpublished"], &[])
            .await,
        "a run never published has no known course"
    );
    let several = catalog::contains_content_items(
        &f.pool,
        &[programs, courses],
        &[other_run.to_string(), RUN.to_string()],
        &[],
    )
    .await
    .unwrap();
    assert!(several, "any of the catalogs");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn customer_queries_look_at_every_catalog_of_that_customer_only(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let other = f.customer().await;
    f.add_catalog(customer, json!({"content_type": "program"}))
        .await;
    f.add_catalog(customer, json!({"key": ["course-v1:MITx+6.00x+2025"]}))
        .await;
    f.add_catalog(other, json!({})).await;
    publish_course_run_and_program(&f).await;
    f.publish(run("course-v1:MITx+6.00x+2025")).await;
    f.project().await;

    let contains = |runs: &[&str], programs: &[&str]| {
        let runs: Vec<String> = runs.iter().map(|k| k.to_string()).collect();
        let programs: Vec<String> = programs.iter().map(|k| k.to_string()).collect();
        let pool = f.pool.clone();
        async move {
            catalog::customer_contains_content_items(&pool, customer.0, &runs, &programs)
                .await
                .unwrap()
        }
    };
    assert!(contains(&[], &[PROGRAM]).await);
    assert!(contains(&["course-v1:MITx+6.00x+2025"], &[]).await);
    assert!(
        !contains(&[RUN], &[]).await,
        "only the other customer's catalog holds it"
    );
    assert!(contains(&[RUN], &[PROGRAM]).await);

    let holds = |course: &'static str| {
        let pool = f.pool.clone();
        async move {
            catalog::customer_contains_course(&pool, customer.0, course)
                .await
                .unwrap()
        }
    };
    assert!(
        holds("MITx+6.00x").await,
        "one of the course's runs is held"
    );
    assert!(!holds(COURSE).await);
    assert!(
        catalog::customer_contains_course(&f.pool, other.0, COURSE)
            .await
            .unwrap(),
        "the other customer's catalog holds everything"
    );
    let mut tx = f.pool.begin().await.unwrap();
    assert!(
        catalog::customer_contains_course(&mut *tx, other.0, RUN)
            .await
            .unwrap(),
        "usable inside a transaction; a run key is accepted"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn content_detail_finds_an_item_of_the_catalog_and_a_run_through_its_course(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let courses = f
        .add_catalog(customer, json!({"content_type": "course"}))
        .await;
    publish_course_run_and_program(&f).await;
    f.project().await;

    let detail = |content_type, key: &'static str| {
        let pool = f.pool.clone();
        async move {
            catalog::content_detail(&pool, courses, content_type, key)
                .await
                .unwrap()
        }
    };
    let course = detail(ContentType::Course, COURSE)
        .await
        .expect("the course");
    assert_eq!(course.metadata["title"], json!("edX Demonstration Course"));
    let run = detail(ContentType::CourseRun, RUN)
        .await
        .expect("the run, through its course");
    assert_eq!(run.content_type, "courserun");
    assert_eq!(run.metadata["key"], json!(RUN));
    assert_eq!(detail(ContentType::Program, PROGRAM).await, None);
    assert_eq!(
        detail(ContentType::Course, RUN).await,
        None,
        "the type must match"
    );
}

/// Every row of the read model's tables, ordered, as text.
async fn dump(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("catalog_content", "content_type, content_key"),
        ("catalog_catalogs", "catalog_id"),
        (
            "catalog_membership",
            "catalog_id, content_type, content_key",
        ),
    ] {
        let text: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY {order}"))
                .fetch_all(pool)
                .await
                .unwrap();
        rows.extend(text.into_iter().map(|row| format!("{table}: {row}")));
    }
    rows
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rebuilding_into_fresh_tables_gives_the_incremental_tables(pool: PgPool) {
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let all = f.add_catalog(customer, json!({})).await;
    let cheap = f
        .add_catalog(
            customer,
            json!({"first_enrollable_paid_seat_price__lte": "100"}),
        )
        .await;
    f.project().await;
    publish_course_run_and_program(&f).await;
    f.publish(priced_run("course-v1:edX+DemoX+Cheap", 10.0))
        .await;
    f.project().await;
    f.set_filter(customer, all, json!({"key": [COURSE]})).await;
    f.publish(priced_run("course-v1:edX+DemoX+Cheap", 500.0))
        .await;
    f.project().await;
    f.retire(ContentType::Program, PROGRAM).await;
    let removed = f
        .add_catalog(customer, json!({"content_type": "program"}))
        .await;
    f.project().await;
    f.customer_command(
        customer,
        CustomerCommand::RemoveCatalog {
            catalog_id: CatalogId(removed),
        },
    )
    .await;
    f.set_filter(
        customer,
        cheap,
        json!({"first_enrollable_paid_seat_price__gte": 100}),
    )
    .await;
    f.project().await;

    let incremental = dump(&f.pool).await;
    assert!(
        incremental.len() > 6,
        "the scenario leaves content, catalogs and members"
    );
    projections::rebuild::into_fresh_tables(&f.pool, &CatalogProjection, RunnerOptions::default())
        .await
        .expect("rebuilding");
    assert_eq!(dump(&f.pool).await, incremental);
    projections::rebuild::in_place(&f.pool, &CatalogProjection, RunnerOptions::default())
        .await
        .expect("rebuilding in place");
    assert_eq!(dump(&f.pool).await, incremental);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn one_batch_gives_the_membership_of_one_event_at_a_time(pool: PgPool) {
    // Within one batch: first publications (whose membership a batch writes at its end), an
    // update of one of them, a catalog added and one changed after them, a retirement and a
    // publication again, a removed catalog.
    let f = Fixture::new(pool);
    let customer = f.customer().await;
    let all = f.add_catalog(customer, json!({})).await;
    let cheap = f
        .add_catalog(
            customer,
            json!({"first_enrollable_paid_seat_price__lte": "100"}),
        )
        .await;
    publish_course_run_and_program(&f).await;
    f.publish(priced_run("course-v1:edX+DemoX+Cheap", 10.0))
        .await;
    f.publish(priced_run("course-v1:edX+DemoX+Dear", 500.0))
        .await;
    f.publish(priced_run("course-v1:edX+DemoX+Cheap", 200.0))
        .await;
    let programs = f
        .add_catalog(customer, json!({"content_type": "program"}))
        .await;
    f.publish(priced_run("course-v1:edX+DemoX+Later", 50.0))
        .await;
    f.set_filter(customer, all, json!({"key": [COURSE]})).await;
    f.set_filter(
        customer,
        cheap,
        json!({"first_enrollable_paid_seat_price__gte": 100}),
    )
    .await;
    f.publish(priced_run("course-v1:edX+DemoX+Last", 20.0))
        .await;
    f.retire(ContentType::CourseRun, "course-v1:edX+DemoX+Dear")
        .await;
    f.publish(priced_run("course-v1:edX+DemoX+Dear", 90.0))
        .await;
    f.customer_command(
        customer,
        CustomerCommand::RemoveCatalog {
            catalog_id: CatalogId(programs),
        },
    )
    .await;
    f.publish(priced_run("course-v1:edX+DemoX+Final", 5.0))
        .await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    e2e_tests::read_log(&f.pool, count as usize).await;
    let one_at_a_time = RunnerOptions {
        batch_size: 1,
        ..RunnerOptions::default()
    };
    catch_up(&f.pool, &CatalogProjection, one_at_a_time)
        .await
        .expect("catching up one event at a time");
    let incremental = dump(&f.pool).await;
    assert!(
        f.content(cheap).await.len() >= 2,
        "the catalog of dear runs holds them"
    );

    projections::rebuild::in_place(&f.pool, &CatalogProjection, RunnerOptions::default())
        .await
        .expect("rebuilding in one batch");
    assert_eq!(dump(&f.pool).await, incremental);
    // With one read of the log, the read model is folded and its membership computed at the end.
    let catalog: Arc<dyn Projection> = Arc::new(CatalogProjection);
    projections::rebuild::in_place_together(&f.pool, &[catalog], RunnerOptions::default(), None)
        .await
        .expect("rebuilding from a fold");
    assert_eq!(dump(&f.pool).await, incremental);
}
