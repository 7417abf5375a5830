//! The routes, one module per resource; [`router`] mounts them all and collects their OpenAPI
//! descriptions, so the document covers every route by construction.

pub mod audit;
pub mod catalogs;
pub mod channels;
pub mod consent;
pub mod cornerstone;
pub mod coupons;
pub mod customers;
pub mod dry_run;
pub mod enrollments;
pub mod health;
pub mod learners;
pub mod lms;
pub mod redemptions;
pub mod reports;
pub mod transmissions;

use crate::AppState;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Enterprise learning service", description = "Enterprise customers, learners, consent, enrollments, coupons, completions and integration channels, kept as events."),
    modifiers(&JwtScheme),
    tags(
        (name = "consent", description = "edX's data sharing consent API"),
        (name = "enterprise", description = "edX's enterprise API (/enterprise/api/v1/)"),
        (name = "catalogs", description = "edX's catalog routes"),
        (name = "lms", description = "Facts the LMS pushes (role lms_service)"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "coupons", description = "A customer's coupons: codes, assignments, redemptions, usage"),
        (name = "channels", description = "Integration channel configurations and their transmissions"),
        (name = "reports", description = "A customer's learner progress report, JSON or CSV"),
        (name = "audit", description = "Consent history for auditors"),
    )
)]
struct ApiDoc;

/// `Authorization: JWT <token>` (or `Bearer <token>`).
struct JwtScheme;

impl Modify for JwtScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "jwt",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "JWT <token> or Bearer <token>: HS256 or RS256, edx-rbac roles in `roles`",
            ))),
        );
    }
}

/// Every route, and the OpenAPI document that describes them.
pub fn router() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(
            consent::get_consent,
            consent::post_consent,
            consent::delete_consent
        ))
        .routes(routes!(
            customers::list_customers,
            customers::create_customer
        ))
        .routes(routes!(
            customers::get_customer,
            customers::update_customer,
            customers::delete_customer
        ))
        .routes(routes!(customers::customer_contains_content_items))
        .routes(routes!(customers::course_enrollments))
        .routes(routes!(customers::unlink_users))
        .routes(routes!(learners::list_learners, learners::link_learner))
        .routes(routes!(
            enrollments::list_enrollments,
            enrollments::record_enrollment
        ))
        .routes(routes!(catalogs::list_catalogs))
        .routes(routes!(catalogs::get_catalog))
        .routes(routes!(catalogs::catalog_contains_content_items))
        .routes(routes!(catalogs::catalog_course))
        .routes(routes!(catalogs::catalog_course_run))
        .routes(routes!(catalogs::catalog_program))
        .routes(routes!(catalogs::create_catalog))
        .routes(routes!(catalogs::update_catalog))
        .routes(routes!(catalogs::get_branding))
        .routes(routes!(catalogs::update_branding))
        .routes(routes!(lms::upsert_learner))
        .routes(routes!(lms::record_enrollment_fact))
        .routes(routes!(lms::record_completion_fact))
        .routes(routes!(lms::upsert_content))
        .routes(routes!(cornerstone::cornerstone_course_list))
        .routes(routes!(cornerstone::save_learner_information))
        .routes(routes!(coupons::create_coupon, coupons::list_coupons))
        .routes(routes!(coupons::list_codes))
        .routes(routes!(coupons::assign_codes))
        .routes(routes!(coupons::revoke_assignment))
        .routes(routes!(redemptions::redeem))
        .routes(routes!(channels::create_channel, channels::list_channels))
        .routes(routes!(channels::get_channel, channels::update_channel))
        .routes(routes!(channels::deactivate_channel))
        .routes(routes!(transmissions::transmissions))
        .routes(routes!(transmissions::requeue))
        .routes(routes!(reports::progress))
        .routes(routes!(reports::progress_csv))
        .routes(routes!(audit::history))
        .routes(routes!(audit::state_as_of))
        .split_for_parts()
}
