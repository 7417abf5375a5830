//! What the benchmark programs share: the raw insert baseline they measure themselves against,
//! and a driver that runs a number of operations over a number of tasks.
//!
//! The baseline is one-row INSERT statements (each its own transaction) into `raw_events`, a
//! table shaped like `events` with its defaults and indexes but none of its triggers: the most
//! the machine can append, which every write-path figure is divided by.

use sqlx::PgPool;
use std::time::Instant;
use uuid::Uuid;

/// Creates the baseline's table beside `events`.
pub async fn create_raw_table(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS raw_events (LIKE events INCLUDING DEFAULTS INCLUDING INDEXES)",
    )
    .execute(pool)
    .await?;
    // No trigger fills the hash chain here (LIKE copies no triggers): the column stays empty.
    sqlx::query("ALTER TABLE raw_events ALTER COLUMN hash DROP NOT NULL")
        .execute(pool)
        .await
        .map(|_| ())
}

/// Runs `total` operations over `level` tasks and returns operations per second.
pub async fn rate<F, Fut>(
    total: usize,
    level: usize,
    op: F,
) -> Result<f64, Box<dyn std::error::Error>>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..level {
        let op = op.clone();
        let share = total / level + usize::from(worker < total % level);
        tasks.spawn(async move {
            for i in 0..share {
                op(i).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Raw inserts per second at `level` concurrent connections, over `total` inserts.
pub async fn raw_insert_rate(
    pool: &PgPool,
    total: usize,
    level: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let (payload, metadata) = sample_event();
    let pool = pool.clone();
    rate(total, level, move |_| {
        raw_insert(pool.clone(), payload.clone(), metadata.clone())
    })
    .await
}

async fn raw_insert(
    pool: PgPool,
    payload: serde_json::Value,
    metadata: serde_json::Value,
) -> Result<(), String> {
    sqlx::query(
        "INSERT INTO raw_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('consent', $1, 1, 'ConsentGranted', '1.0', $2, $3)",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(payload)
    .bind(metadata)
    .execute(&pool)
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// A payload and metadata of the size a real consent grant has.
fn sample_event() -> (serde_json::Value, serde_json::Value) {
    let payload = serde_json::json!({"ConsentGranted": {
        "customer_id": Uuid::new_v4(), "learner_id": Uuid::new_v4(),
        "subject": {"course": "edX+DemoX"}, "source": "consent_page"}});
    let metadata = serde_json::json!({"actor": "bench", "correlation_id": Uuid::now_v7()});
    (payload, metadata)
}

/// Latency percentiles of samples in microseconds: (p50, p99) in milliseconds.
pub fn percentiles(samples: &mut [u64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize] as f64 / 1e3;
    (at(0.50), at(0.99))
}
