//! The HTTP side of the enterprise learning service.
//!
//! - [`config`]: command-line flags and environment (the binary's `--help`).
//! - [`app`]: the router; tests build it on a pool of their own.
//!
//! The binary (`src/main.rs`) parses the configuration, sets up logging, connects, migrates and
//! serves until SIGTERM or Ctrl-C.

pub mod config;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::PgPool;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
}

/// The service's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(state)
}

/// The process is up.
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: the database answers. The answer also shows how far each read model
/// is behind the log, and the error that stopped one, if any.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match projections::status::all(&state.pool).await {
        Ok(statuses) => {
            let projections: Vec<Value> = statuses
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "lag_events": s.lag_events,
                        "lag_seconds": s.lag_seconds,
                        "last_error": s.last_error,
                    })
                })
                .collect();
            let body = json!({"status": "ready", "database": "ok", "projections": projections});
            (StatusCode::OK, Json(body))
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn ready_says_unavailable_when_the_database_is_gone() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_millis(200))
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let response = app(AppState { pool })
            .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn health_answers_without_the_database() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let response = app(AppState { pool })
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
