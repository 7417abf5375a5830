//! Binary `COPY` rows (`projections::copy`): values of every type the folds write come back as
//! written, across chunks, and a malformed row fails the copy and leaves nothing.

use chrono::{DateTime, TimeZone, Utc};
use projections::copy::CopyRows;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const TABLE: &str = "CREATE TABLE copied (id uuid, n integer, name text, ok boolean,
    grade double precision, at timestamptz, doc jsonb)";

type Row = (
    Uuid,
    i32,
    Option<String>,
    bool,
    Option<f64>,
    DateTime<Utc>,
    Value,
);

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn rows_come_back_as_written_across_chunks(pool: PgPool) {
    sqlx::query(TABLE).execute(&pool).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 28, 5, 0, 0).unwrap();
    // Enough rows for several chunks.
    let rows: Vec<Row> = (0..20_000)
        .map(|n| {
            (
                Uuid::new_v4(),
                n,
                (n % 3 != 0).then(|| format!("learner {n} — é")),
                n % 2 == 0,
                (n % 5 != 0).then_some(f64::from(n) / 7.0),
                at + chrono::Duration::microseconds(i64::from(n)),
                json!({"n": n, "tags": ["a", "b"]}),
            )
        })
        .collect();

    let mut conn = pool.acquire().await.unwrap();
    let mut copy = CopyRows::start(&mut conn, "copied (id, n, name, ok, grade, at, doc)", 7)
        .await
        .unwrap();
    for (id, n, name, ok, grade, at, doc) in &rows {
        copy.row()
            .value(id)
            .value(n)
            .value(name.as_deref())
            .value(ok)
            .value(grade)
            .value(at)
            .value(doc);
        copy.send_full().await.unwrap();
    }
    assert_eq!(copy.finish().await.unwrap(), 20_000);

    let back: Vec<Row> =
        sqlx::query_as("SELECT id, n, name, ok, grade, at, doc FROM copied ORDER BY n")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(back, rows);
}

#[sqlx::test(migrator = "store::db::MIGRATOR")]
async fn a_row_with_a_value_missing_fails_the_copy_and_writes_nothing(pool: PgPool) {
    sqlx::query(TABLE).execute(&pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    let mut copy = CopyRows::start(&mut tx, "copied (id, n)", 2).await.unwrap();
    copy.row().value(Uuid::new_v4()).value(1_i32);
    copy.row().value(Uuid::new_v4());
    let error = copy.finish().await.expect_err("a row is short of a value");
    assert!(
        error
            .to_string()
            .contains("a COPY row of 1 values where the table takes 2"),
        "{error}"
    );
    drop(tx);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM copied")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}
