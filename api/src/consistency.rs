//! Reading one's own writes: a command answers with the global position it reached; a query
//! given `?min_position=N` waits (bounded) until the read models it reads have applied event N.
//!
//! A projection has applied event N when its checkpoint is at or past N's place in the log,
//! which is ordered by (transaction id, global position), not by global position alone.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// How long a query waits for the read models before answering 503.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The `min_position` query parameter, read on its own so every query route takes it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinPosition(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::field("query", e.to_string()))?;
        match pairs.iter().find(|(k, _)| k == "min_position") {
            None => Ok(Self(None)),
            Some((_, value)) => value
                .parse::<i64>()
                .ok()
                .filter(|p| *p > 0)
                .map(|p| Self(Some(p)))
                .ok_or_else(|| {
                    ApiError::field(
                        "min_position",
                        "must be a global position (a positive integer)",
                    )
                }),
        }
    }
}

impl MinPosition {
    /// Waits until every projection in `projections` has applied the event at the position.
    pub async fn wait(self, pool: &PgPool, projections: &[&str]) -> Result<(), ApiError> {
        let Some(position) = self.0 else {
            return Ok(());
        };
        let deadline = Instant::now() + MAX_WAIT;
        loop {
            let (exists, reached): (bool, i64) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1),
                        (SELECT count(*) FROM events e JOIN projection_checkpoints c
                                ON c.name = ANY($2)
                          WHERE e.global_position = $1
                            AND (e.transaction_id, e.global_position)
                                <= (c.transaction_id, c.global_position))",
            )
            .bind(position)
            .bind(projections)
            .fetch_one(pool)
            .await?;
            if !exists {
                return Err(ApiError::field(
                    "min_position",
                    format!("no event has global position {position}"),
                ));
            }
            if reached as usize == projections.len() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ApiError::Unavailable(format!(
                    "the read models have not reached position {position} within {} s; retry",
                    MAX_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
