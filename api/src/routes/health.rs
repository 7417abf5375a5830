//! Liveness and readiness: `/health` answers while the process runs; `/ready` while the
//! database answers, with each read model's lag and the error that stopped one, if any.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up")))]
/// The process is up.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, description = "The database answers; read-model lag"),
              (status = 503, description = "The database is unreachable")))]
/// The process can serve: the database answers. The answer also shows how far each read model
/// is behind the log, and the error that stopped one, if any.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
