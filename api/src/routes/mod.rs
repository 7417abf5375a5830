//! The routes, one module per resource; [`router`] mounts them all and collects their OpenAPI
//! descriptions, so the document covers every route by construction.

pub mod audit;
pub mod channels;
pub mod consent;
pub mod coupons;
pub mod dry_run;
pub mod health;
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
        .routes(routes!(
            consent::get_consent,
            consent::post_consent,
            consent::delete_consent
        ))
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
