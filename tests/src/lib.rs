//! Helpers shared by the end-to-end tests in `tests/`: each test gets a fresh, migrated
//! database from `#[sqlx::test(migrator = "store::db::MIGRATOR")]`, which needs `DATABASE_URL`
//! and fails when PostgreSQL cannot be reached.

use domain::ids::{CustomerId, LearnerId};
use store::CommandMetadata;
use uuid::Uuid;

pub mod api;

pub fn meta() -> CommandMetadata {
    CommandMetadata::new("test")
}

pub fn customer() -> CustomerId {
    CustomerId(Uuid::new_v4())
}

pub fn learner() -> LearnerId {
    LearnerId(Uuid::new_v4())
}

/// Reads the global log from the start until it holds `count` events, polling for up to ten
/// seconds. PostgreSQL's transaction horizon is cluster-wide, so a transaction held open by a
/// test running in parallel delays what this database's reader may take; waiting is the
/// reader's contract, not a workaround.
pub async fn read_log(pool: &sqlx::PgPool, count: usize) -> Vec<store::log::LoggedEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = store::log::read_after(pool, store::log::LogPosition::default(), 100_000)
            .await
            .expect("reading the log");
        if events.len() >= count {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log shows {} of {count} events after 10 s",
            events.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The course run of the discovery fixture, `course-v1:edX+DemoX+Demo_Course`.
pub const RUN: &str = "course-v1:edX+DemoX+Demo_Course";

/// A store-level world for process tests: a customer with one catalog holding everything, the
/// fixture's course run published.
pub struct World {
    pub store: store::EventStore,
    pub customer: CustomerId,
    pub catalog: domain::ids::CatalogId,
}

impl World {
    pub async fn new(pool: sqlx::PgPool, consent: domain::customer::ConsentPolicy) -> Self {
        use domain::content::{discovery, ContentCommand, ContentItem, ContentType};
        use domain::customer::{Customer, CustomerCommand};
        let store = store::EventStore::new(pool);
        let customer = self::customer();
        let slug = format!("acme-{}", &customer.0.simple().to_string()[..8]);
        let create = CustomerCommand::CreateCustomer {
            customer_id: customer,
            name: "Acme".into(),
            slug,
            consent,
            enable_audit_enrollment: false,
            enable_audit_data_reporting: false,
        };
        store::services::customers::execute(&store, customer, create, &meta())
            .await
            .expect("creating the customer");
        let catalog = domain::ids::CatalogId(Uuid::new_v4());
        let add = CustomerCommand::AddCatalog {
            catalog_id: catalog,
            title: "All Content".into(),
            content_filter: serde_json::json!({}),
            enabled_course_modes: vec![
                domain::course_mode::CourseMode::Audit,
                domain::course_mode::CourseMode::Verified,
            ],
            publish_audit_enrollment_urls: false,
        };
        let stream = domain::customer::customer_stream_id(customer);
        store
            .execute::<Customer>(&stream, add, &(), &meta())
            .await
            .expect("adding the catalog");
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/discovery/course_run.json"))
                .expect("fixture JSON");
        let metadata = discovery::from_discovery(ContentType::CourseRun, &doc).expect("fixture");
        let publish = ContentCommand::PublishContent {
            metadata,
            at: chrono::Utc::now(),
        };
        store
            .execute::<ContentItem>(
                &domain::content::content_stream_id(ContentType::CourseRun, RUN),
                publish,
                &(),
                &meta(),
            )
            .await
            .expect("publishing the course run");
        Self {
            store,
            customer,
            catalog,
        }
    }

    /// Registers a learner with the LMS user id `n` and links them to the world's customer.
    pub async fn learner(&self, n: i64) -> LearnerId {
        let email = format!("learner{n}@example.com");
        let user = store::directory::LmsUser {
            lms_user_id: n,
            username: format!("learner{n}"),
            email: email.clone(),
            sso_ids: Vec::new(),
        };
        let learner = store::services::learners::register(&self.store, &user, &meta())
            .await
            .expect("registering a learner")
            .learner_id;
        store::services::learners::link_by_email(&self.store, self.customer, &email, &meta())
            .await
            .expect("linking the learner");
        learner
    }

    /// Creates a coupon of `count` codes on the world's catalog and returns its codes.
    pub async fn coupon(&self, usage: domain::coupon::CouponUsage, count: usize) -> Vec<String> {
        use domain::coupon::{Coupon, CouponBenefit, CouponCommand};
        let coupon_id = domain::ids::CouponId(Uuid::new_v4());
        let now = chrono::Utc::now();
        let create = CouponCommand::CreateCoupon {
            coupon_id,
            customer_id: self.customer,
            catalog_id: self.catalog,
            name: "Seats".into(),
            code_count: count,
            usage,
            benefit: CouponBenefit::Percentage { value: 100.0 },
            valid_from: now - chrono::Duration::days(1),
            valid_until: now + chrono::Duration::days(30),
            email_domains: Vec::new(),
        };
        let stream = domain::coupon::coupon_stream_id(coupon_id);
        self.store
            .execute::<Coupon>(&stream, create, &coupon_services(), &meta())
            .await
            .expect("creating the coupon");
        let (coupon, _) = self
            .store
            .load::<Coupon>(&stream)
            .await
            .expect("loading the coupon");
        coupon.codes().map(str::to_string).collect()
    }

    /// A request to redeem `code` for the fixture's run in verified mode.
    pub fn redeem_request(
        &self,
        code: &str,
        learner: LearnerId,
    ) -> store::services::redemption::RedeemRequest {
        store::services::redemption::RedeemRequest {
            code: code.to_string(),
            learner_id: learner,
            course_run_id: domain::ids::CourseRunId(RUN.into()),
            mode: domain::course_mode::CourseMode::Verified,
        }
    }
}

/// Coupon services with the service's CSPRNG code generator.
pub fn coupon_services() -> domain::coupon::CouponServices {
    domain::coupon::CouponServices {
        codes: Box::new(store::codes::OsRngCodes),
    }
}

/// A consent policy that never requires consent (externally managed).
pub fn consent_not_required() -> domain::customer::ConsentPolicy {
    domain::customer::ConsentPolicy {
        enable_data_sharing_consent: true,
        enforce_data_sharing_consent: domain::customer::ConsentEnforcement::ExternallyManaged,
    }
}

/// A consent policy that requires consent at enrollment.
pub fn consent_required() -> domain::customer::ConsentPolicy {
    domain::customer::ConsentPolicy {
        enable_data_sharing_consent: true,
        enforce_data_sharing_consent: domain::customer::ConsentEnforcement::AtEnrollment,
    }
}

/// How many events a stream holds.
pub async fn stream_length(pool: &sqlx::PgPool, stream: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(stream)
        .fetch_one(pool)
        .await
        .expect("counting events")
}

/// Brings a projection up to every event committed so far: waits until the log reader may take
/// them all (see [`read_log`]), then catches up.
pub async fn project(pool: &sqlx::PgPool, projection: &dyn projections::Projection) {
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .expect("counting events");
    read_log(pool, committed as usize).await;
    projections::runner::catch_up(
        pool,
        projection,
        projections::runner::RunnerOptions::default(),
    )
    .await
    .expect("catching up");
}

/// Every row of the projection's tables, as text, in a stable order: two read models built from
/// the same log compare equal.
pub async fn dump_tables(
    pool: &sqlx::PgPool,
    projection: &dyn projections::Projection,
) -> Vec<String> {
    let mut rows = Vec::new();
    for table in projection.tables() {
        let mut table_rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT '{table}: ' || to_jsonb(t)::text FROM {table} t ORDER BY 1"
        ))
        .fetch_all(pool)
        .await
        .expect("reading a read model's table");
        rows.append(&mut table_rows);
    }
    rows
}
