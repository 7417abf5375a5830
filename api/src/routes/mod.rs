//! The routes, one module per resource; [`router`] mounts them all and collects their OpenAPI
//! descriptions, so the document covers every route by construction.

pub mod catalogs;
pub mod consent;
pub mod customers;
pub mod enrollments;
pub mod health;
pub mod learners;
pub mod lms;

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
        .split_for_parts()
}
