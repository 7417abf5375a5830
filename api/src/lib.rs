//! The HTTP side of the enterprise learning service.
//!
//! - [`config`]: command-line flags and environment (the binary's `--help`).
//! - [`auth`]: JWT authentication and the role x tenant checks every route makes.
//! - [`error`]: problem-details errors; [`extract`]: body and query extractors that refuse bad
//!   input clearly; [`page`]: DRF-style pagination; [`consistency`]: `min_position` waits;
//!   [`written`]: what commands answer; [`metrics`]: `/metrics`.
//! - [`routes`]: one module per resource; [`app`] assembles them with `/openapi.json`.
//!
//! The binary (`src/main.rs`) parses the configuration, sets up logging, connects, migrates and
//! serves until SIGTERM or Ctrl-C.

pub mod auth;
pub mod config;
pub mod consistency;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod page;
pub mod routes;
pub mod written;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: store::EventStore,
    pub verifier: Arc<auth::Verifier>,
    pub metrics: Arc<metrics::Metrics>,
    /// Encrypts channel credentials; without it, requests carrying secrets are refused (503).
    pub secrets: Option<Arc<store::secrets::SecretBox>>,
}

impl AppState {
    pub fn new(pool: PgPool, verifier: auth::Verifier) -> Self {
        Self {
            store: store::EventStore::new(pool.clone()),
            pool,
            verifier: Arc::new(verifier),
            metrics: Arc::new(metrics::Metrics::default()),
            secrets: None,
        }
    }

    /// The same state, encrypting channel secrets with `secrets`.
    pub fn with_secrets(mut self, secrets: store::secrets::SecretBox) -> Self {
        self.secrets = Some(Arc::new(secrets));
        self
    }
}

/// The service's router, with `/openapi.json`.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = routes::router();
    let openapi = Arc::new(openapi);
    router
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}

/// The OpenAPI document, for tools and tests.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::router().1
}
