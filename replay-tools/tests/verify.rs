//! `verify` on an intact log, and on logs tampered with in SQL; `rebuild` and `status`.

mod support;

use sqlx::{Connection, PgPool};
use support::*;

/// Runs `sql` with triggers off (`session_replication_role = replica`), as someone with
/// direct database access could: the immutability trigger does not stop it.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    let changed = sqlx::query(sql)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert!(changed > 0, "the tampering changed nothing: {sql}");
    tx.commit().await.unwrap();
}

async fn revocation(pool: &PgPool) -> (String, i64) {
    sqlx::query_as(
        "SELECT aggregate_id, global_position FROM events WHERE event_type = 'ConsentRevoked'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_intact_log_verifies_and_a_two_event_command_is_chained(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    assert_exit(&replay(&url, &["rebuild", "--all"]), 0);
    let out = replay(&url, &["verify", "--read-models", "all"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("ok"), "{}", stdout(&out));

    // The completion's two events, appended by one command, chain to each other.
    let chained: Vec<(i64, bool, bool)> = sqlx::query_as(
        "SELECT sequence, hash = events_chain_hash(lag(hash) OVER w, aggregate_type,
                    aggregate_id, sequence, event_type, event_version, payload, metadata),
                lag(hash) OVER w IS NOT NULL
           FROM events WHERE aggregate_type = 'completion'
         WINDOW w AS (PARTITION BY aggregate_id ORDER BY sequence)
          ORDER BY sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(chained, vec![(1, true, false), (2, true, true)]);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_edited_payload_is_reported_with_its_stream_and_position(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    let (stream, position) = revocation(&pool).await;
    tamper(
        &pool,
        "UPDATE events SET payload = jsonb_set(payload, '{ConsentRevoked,source}', '\"consent_page\"')
          WHERE event_type = 'ConsentRevoked'",
    )
    .await;
    let out = replay(&url, &["verify", "--read-models", "none"]);
    assert_exit(&out, 1);
    let report = stdout(&out);
    assert!(
        report.contains(&format!("consent/{stream}#2 (global position {position})")),
        "{report}"
    );
    assert!(report.starts_with("hash"), "{report}");
    assert_eq!(report.lines().count(), 1, "{report}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_deleted_event_leaves_a_gap_and_breaks_the_chain(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    let (stream, _) = revocation(&pool).await;
    // Deleting the revocation leaves a gap before the next grant and breaks its chain.
    tamper(
        &pool,
        "DELETE FROM events WHERE event_type = 'ConsentRevoked'",
    )
    .await;
    let out = replay(&url, &["verify", "--read-models", "none"]);
    assert_exit(&out, 1);
    let report = stdout(&out);
    assert!(
        report.contains(&format!("sequence   consent/{stream}#3")),
        "{report}"
    );
    assert!(
        report.contains(&format!("hash       consent/{stream}#3")),
        "{report}"
    );
    assert_eq!(report.lines().count(), 2, "{report}");
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn an_edit_with_a_recomputed_hash_breaks_the_next_link(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    let (stream, position) = revocation(&pool).await;
    // The first grant is edited and its own hash recomputed: its check passes, but the
    // revocation after it was chained to the original.
    tamper(
        &pool,
        &format!(
            "UPDATE events SET payload = jsonb_set(payload, '{{ConsentGranted,source}}', '\"admin\"'),
                    hash = events_chain_hash(NULL, aggregate_type, aggregate_id, sequence,
                             event_type, event_version,
                             jsonb_set(payload, '{{ConsentGranted,source}}', '\"admin\"'), metadata)
              WHERE aggregate_id = '{stream}' AND sequence = 1"
        ),
    )
    .await;
    let out = replay(&url, &["verify", "--read-models", "none"]);
    assert_exit(&out, 1);
    let report = stdout(&out);
    assert_eq!(
        report.trim_end(),
        format!(
            "hash       consent/{stream}#2 (global position {position}): the stored hash does \
             not match the event's content and its predecessor's hash: the event, or the one \
             before it, was changed or removed"
        ),
        "{report}"
    );
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_read_model_that_differs_from_a_fresh_rebuild_is_reported(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    assert_exit(&replay(&url, &["rebuild", "consent"]), 0);
    assert_exit(&replay(&url, &["verify", "--read-models", "consent"]), 0);
    let deleted = sqlx::query(
        "DELETE FROM consent_records WHERE ctid = (SELECT min(ctid) FROM consent_records)",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(deleted, 1);
    let out = replay(&url, &["verify", "--read-models", "consent"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("consent: table consent_records"),
        "{}",
        stdout(&out)
    );
    // The scratch schema is gone.
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'verify_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(left, 0);
    // A rebuild into fresh tables repairs it.
    assert_exit(&replay(&url, &["rebuild", "consent", "--fresh-tables"]), 0);
    assert_exit(&replay(&url, &["verify", "--read-models", "consent"]), 0);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn status_shows_every_projection_and_its_lag(pool: PgPool) {
    rich_log(&pool).await;
    let url = url_of(&pool);
    assert_exit(&replay(&url, &["rebuild", "catalog", "consent"]), 0);
    let out = replay(&url, &["status", "--format", "json"]);
    assert_exit(&out, 0);
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["catalog", "consent"]);
    assert!(status["projections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["lag_events"] == 0));
    assert!(status["outbox"].is_array());
    let out = replay(&url, &["status"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("lag_events"), "{}", stdout(&out));
}
