//! The batch's SQL: the current rows of the keys it reads, one query per table; then what the
//! fold changed, one statement per table. A customer's name and a course run's metadata also
//! reach the report rows the batch does not hold: one `UPDATE` for all the customers (and one
//! for all the runs) the batch changed, run before the rows it holds are written (those carry
//! the same change, folded in order with the rest).
//!
//! Those `UPDATE`s repeat their keys as `= ANY($1)`, which the planner answers from the index:
//! joined to `UNNEST` alone, it hashed the keys and scanned the whole report (it guesses ten
//! keys, and a small table while a rebuild fills it).

use super::fold::{Batch, Completion, Coupon, Redemption, Report, Run, StoredRow, Table};
use super::input::Needs;
use crate::copy::CopyRows;
use crate::projection::{column, WriteMode};
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::PgConnection;
use uuid::Uuid;

/// The tables a fold fills with many rows, with the columns every write of them fills.
const CONSENTS: &str = "enrollments_consents (customer_id, learner_id, course_key, granted)";
const COMPLETIONS: &str = "enrollments_completions
    (customer_id, learner_id, course_run_id, has_passed, progress_status, passed_date,
     current_grade, letter_grade)";
const REPORT: &str = "enrollments_report
    (enrollment_id, customer_id, learner_id, course_run_id, consent_key, redemption_id,
     enrollment_source, saved_for_later, is_consent_granted, user_current_enrollment_mode,
     enrollment_date, unenrollment_date, offer_type, coupon_code, coupon_name, course_key,
     course_title, course_pacing_type, course_start_date, course_end_date, has_passed,
     progress_status, passed_date, current_grade, letter_grade, enterprise_name, created)";

/// Three columns of keys, as `UNNEST` takes them.
fn columns3<A: Clone, B: Clone, C: Clone>(keys: &FxHashSet<(A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, c) in keys {
        columns.0.push(a.clone());
        columns.1.push(b.clone());
        columns.2.push(c.clone());
    }
    columns
}

impl Batch {
    /// The current rows of every key `needs` names, one query per table.
    pub(super) async fn load(conn: &mut PgConnection, needs: &Needs) -> Result<Self, sqlx::Error> {
        let mut report = Report::default();
        for row in load_report(conn, needs).await? {
            report.insert(row, false);
        }
        let customers: Vec<(Uuid, String)> = if needs.customers.load.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT customer_id, name FROM enrollments_customers WHERE customer_id = ANY($1)",
            )
            .bind(needs.customers.load.iter().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?
        };
        let runs = if needs.runs.load.is_empty() {
            Vec::new()
        } else {
            let rows: Vec<(String, Run)> = sqlx::query_as::<_, RunRow>(
                "SELECT course_run_id, course_key, title, pacing_type, start_date, end_date
                   FROM enrollments_course_runs WHERE course_run_id = ANY($1)",
            )
            .bind(needs.runs.load.iter().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| (r.course_run_id, r.run))
            .collect();
            rows
        };
        let consents: Vec<(Uuid, Uuid, String, bool)> = if needs.consents.load.is_empty() {
            Vec::new()
        } else {
            let (customers, learners, keys) = columns3(&needs.consents.load);
            sqlx::query_as(
                "SELECT c.customer_id, c.learner_id, c.course_key, c.granted
                   FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS k (customer_id, learner_id, key)
                   JOIN enrollments_consents c ON c.customer_id = k.customer_id
                    AND c.learner_id = k.learner_id AND c.course_key = k.key",
            )
            .bind(customers)
            .bind(learners)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?
        };
        let completions = if needs.completions.load.is_empty() {
            Vec::new()
        } else {
            let (customers, learners, runs) = columns3(&needs.completions.load);
            sqlx::query_as::<_, CompletionRow>(
                "SELECT c.customer_id, c.learner_id, c.course_run_id, c.has_passed,
                        c.progress_status, c.passed_date, c.current_grade, c.letter_grade
                   FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS k (customer_id, learner_id, run)
                   JOIN enrollments_completions c ON c.customer_id = k.customer_id
                    AND c.learner_id = k.learner_id AND c.course_run_id = k.run",
            )
            .bind(customers)
            .bind(learners)
            .bind(runs)
            .fetch_all(&mut *conn)
            .await?
        };
        let redemptions = if needs.redemptions.load.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as::<_, RedemptionRow>(
                "SELECT redemption_id, coupon_id, code, reversed FROM enrollments_redemptions
                  WHERE redemption_id = ANY($1)",
            )
            .bind(needs.redemptions.load.iter().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?
        };
        // The coupons read by redemptions, and by the enrollments naming a redemption loaded.
        let mut coupon_ids: FxHashSet<Uuid> = needs.coupons.load.clone();
        coupon_ids.extend(redemptions.iter().map(|r| r.redemption.coupon_id));
        let coupons: Vec<CouponRow> = if coupon_ids.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT coupon_id, name, offer_type FROM enrollments_coupons
                  WHERE coupon_id = ANY($1)",
            )
            .bind(coupon_ids.into_iter().collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?
        };
        Ok(Self {
            report,
            customers: Table::loaded(customers),
            runs: Table::loaded(runs),
            run_keys: FxHashMap::default(),
            consents: Table::loaded(consents.into_iter().map(|(c, l, k, g)| ((c, l, k), g))),
            coupons: Table::loaded(coupons.into_iter().map(|r| (r.coupon_id, r.coupon))),
            redemptions: Table::loaded(
                redemptions
                    .into_iter()
                    .map(|r| (r.redemption_id, r.redemption)),
            ),
            completions: Table::loaded(
                completions
                    .into_iter()
                    .map(|r| ((r.customer_id, r.learner_id, r.course_run_id), r.completion)),
            ),
        })
    }
}

#[derive(sqlx::FromRow)]
struct RunRow {
    course_run_id: String,
    #[sqlx(flatten)]
    run: Run,
}

#[derive(sqlx::FromRow)]
struct CompletionRow {
    customer_id: Uuid,
    learner_id: Uuid,
    course_run_id: String,
    #[sqlx(flatten)]
    completion: Completion,
}

#[derive(sqlx::FromRow)]
struct RedemptionRow {
    redemption_id: Uuid,
    #[sqlx(flatten)]
    redemption: Redemption,
}

#[derive(sqlx::FromRow)]
struct CouponRow {
    coupon_id: Uuid,
    #[sqlx(flatten)]
    coupon: Coupon,
}

/// The report rows of the enrollments, customers x learners and redemptions `needs` names, in
/// one query (a row reached by two keys comes twice).
async fn load_report(
    conn: &mut PgConnection,
    needs: &Needs,
) -> Result<Vec<StoredRow>, sqlx::Error> {
    if needs.ids.is_empty() && needs.learners.is_empty() && needs.redemption_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (customers, learners): (Vec<Uuid>, Vec<Uuid>) = needs.learners.iter().copied().unzip();
    sqlx::query_as(
        "SELECT r.* FROM enrollments_report r WHERE r.enrollment_id = ANY($1)
         UNION ALL
         SELECT r.* FROM UNNEST($2::uuid[], $3::uuid[]) AS k (customer_id, learner_id)
           JOIN enrollments_report r
             ON r.customer_id = k.customer_id AND r.learner_id = k.learner_id
         UNION ALL
         SELECT r.* FROM enrollments_report r WHERE r.redemption_id = ANY($4)",
    )
    .bind(needs.ids.iter().collect::<Vec<_>>())
    .bind(customers)
    .bind(learners)
    .bind(needs.redemption_ids.iter().collect::<Vec<_>>())
    .fetch_all(conn)
    .await
}

impl Batch {
    /// Writes what the fold changed (upserts, or plain inserts into a fold's empty tables:
    /// `mode`): the inputs, the rows of the customers and runs changed, then the report rows
    /// held (last, so their values win over the set-based updates).
    pub(super) async fn write(
        self,
        conn: &mut PgConnection,
        mode: WriteMode,
    ) -> Result<(), sqlx::Error> {
        write_customers(conn, self.customers, mode).await?;
        write_runs(conn, self.runs, self.run_keys, mode).await?;
        write_consents(conn, self.consents, mode).await?;
        write_coupons(conn, self.coupons, mode).await?;
        write_redemptions(conn, self.redemptions, mode).await?;
        write_completions(conn, self.completions, mode).await?;
        write_report(conn, self.report, mode).await
    }
}

async fn write_customers(
    conn: &mut PgConnection,
    customers: Table<Uuid, String>,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(Uuid, String)> = customers.into_written();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "WITH input AS (
             INSERT INTO enrollments_customers (customer_id, name)
             SELECT * FROM UNNEST($1::uuid[], $2::text[])
             {})
         UPDATE enrollments_report r SET enterprise_name = u.name
           FROM UNNEST($1::uuid[], $2::text[]) AS u (customer_id, name)
          WHERE r.customer_id = ANY($1) AND r.customer_id = u.customer_id
            AND r.enterprise_name IS DISTINCT FROM u.name",
        mode.on_conflict("ON CONFLICT (customer_id) DO UPDATE SET name = EXCLUDED.name")
    ))
    .bind(column(&rows, |r| r.0))
    .bind(column(&rows, |r| r.1.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_runs(
    conn: &mut PgConnection,
    runs: Table<String, Run>,
    report_keys: FxHashMap<String, Option<String>>,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, Run)> = runs.into_written();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "WITH input AS (
             INSERT INTO enrollments_course_runs
                    (course_run_id, course_key, title, pacing_type, start_date, end_date)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                                  $5::timestamptz[], $6::timestamptz[])
             {})
         UPDATE enrollments_report r
            SET course_key = coalesce(u.report_key, r.course_key), course_title = u.title,
                course_pacing_type = u.pacing_type, course_start_date = u.start_date,
                course_end_date = u.end_date
           FROM UNNEST($1::text[], $7::text[], $3::text[], $4::text[], $5::timestamptz[],
                       $6::timestamptz[])
                AS u (course_run_id, report_key, title, pacing_type, start_date, end_date)
          WHERE r.course_run_id = ANY($1) AND r.course_run_id = u.course_run_id",
        mode.on_conflict(
            "ON CONFLICT (course_run_id) DO UPDATE
                 SET course_key = EXCLUDED.course_key, title = EXCLUDED.title,
                     pacing_type = EXCLUDED.pacing_type, start_date = EXCLUDED.start_date,
                     end_date = EXCLUDED.end_date"
        )
    ))
    .bind(column(&rows, |r| r.0.as_str()))
    .bind(column(&rows, |r| r.1.course_key.as_deref()))
    .bind(column(&rows, |r| r.1.title.as_str()))
    .bind(column(&rows, |r| r.1.pacing_type.as_deref()))
    .bind(column(&rows, |r| r.1.start_date))
    .bind(column(&rows, |r| r.1.end_date))
    .bind(column(&rows, |r| {
        report_keys.get(&r.0).and_then(Option::as_deref)
    }))
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_consents(
    conn: &mut PgConnection,
    consents: Table<(Uuid, Uuid, String), bool>,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let rows = consents.into_written();
    if mode == WriteMode::Insert {
        let mut copy = CopyRows::start(conn, CONSENTS, 4).await?;
        for ((customer, learner, course_key), granted) in &rows {
            copy.row()
                .value(customer)
                .value(learner)
                .value(course_key)
                .value(granted);
            copy.send_full().await?;
        }
        copy.finish().await?;
        return Ok(());
    }
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {CONSENTS}
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[])
         ON CONFLICT (customer_id, learner_id, course_key) DO UPDATE
            SET granted = EXCLUDED.granted"
    ))
    .bind(column(&rows, |r| r.0 .0))
    .bind(column(&rows, |r| r.0 .1))
    .bind(column(&rows, |r| r.0 .2.as_str()))
    .bind(column(&rows, |r| r.1))
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_coupons(
    conn: &mut PgConnection,
    coupons: Table<Uuid, Coupon>,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let rows = coupons.into_written();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO enrollments_coupons (coupon_id, name, offer_type)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[])
         {}",
        mode.on_conflict(
            "ON CONFLICT (coupon_id) DO UPDATE
                 SET name = EXCLUDED.name, offer_type = EXCLUDED.offer_type"
        )
    ))
    .bind(column(&rows, |r| r.0))
    .bind(column(&rows, |r| r.1.name.as_str()))
    .bind(column(&rows, |r| r.1.offer_type.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_redemptions(
    conn: &mut PgConnection,
    redemptions: Table<Uuid, Redemption>,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let rows = redemptions.into_written();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO enrollments_redemptions (redemption_id, coupon_id, code, reversed)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[])
         {}",
        mode.on_conflict(
            "ON CONFLICT (redemption_id) DO UPDATE
                 SET coupon_id = EXCLUDED.coupon_id, code = EXCLUDED.code,
                     reversed = EXCLUDED.reversed"
        )
    ))
    .bind(column(&rows, |r| r.0))
    .bind(column(&rows, |r| r.1.coupon_id))
    .bind(column(&rows, |r| r.1.code.as_str()))
    .bind(column(&rows, |r| r.1.reversed))
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_completions(
    conn: &mut PgConnection,
    completions: Table<(Uuid, Uuid, String), Completion>,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let rows = completions.into_written();
    if mode == WriteMode::Insert {
        let mut copy = CopyRows::start(conn, COMPLETIONS, 8).await?;
        for ((customer, learner, run), c) in &rows {
            copy.row()
                .value(customer)
                .value(learner)
                .value(run)
                .value(c.has_passed)
                .value(c.progress_status.as_str())
                .value(c.passed_date)
                .value(c.current_grade)
                .value(c.letter_grade.as_str());
            copy.send_full().await?;
        }
        copy.finish().await?;
        return Ok(());
    }
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {COMPLETIONS}
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[], $5::text[],
                              $6::timestamptz[], $7::float8[], $8::text[])
         ON CONFLICT (customer_id, learner_id, course_run_id) DO UPDATE
            SET has_passed = EXCLUDED.has_passed, progress_status = EXCLUDED.progress_status,
                passed_date = EXCLUDED.passed_date, current_grade = EXCLUDED.current_grade,
                letter_grade = EXCLUDED.letter_grade"
    ))
    .bind(column(&rows, |r| r.0 .0))
    .bind(column(&rows, |r| r.0 .1))
    .bind(column(&rows, |r| r.0 .2.as_str()))
    .bind(column(&rows, |r| r.1.has_passed))
    .bind(column(&rows, |r| r.1.progress_status.as_str()))
    .bind(column(&rows, |r| r.1.passed_date))
    .bind(column(&rows, |r| r.1.current_grade))
    .bind(column(&rows, |r| r.1.letter_grade.as_str()))
    .execute(conn)
    .await?;
    Ok(())
}

/// The report rows the fold created (one insert) and those it changed (one upsert). A created
/// row needs no `ON CONFLICT`: the fold checked that neither its id nor its customer x learner x
/// run is taken. A fold's empty tables take every row in one `COPY`.
async fn write_report(
    conn: &mut PgConnection,
    report: Report,
    mode: WriteMode,
) -> Result<(), sqlx::Error> {
    let (created, changed) = report.into_written();
    if mode == WriteMode::Insert {
        return copy_report(conn, created.iter().chain(&changed)).await;
    }
    insert_report(conn, &created, "").await?;
    // The columns an enrollment's events never change (ids, run, consent key, redemption,
    // source, dates of record) are left as they are.
    let update = "ON CONFLICT (enrollment_id) DO UPDATE
            SET saved_for_later = EXCLUDED.saved_for_later,
                is_consent_granted = EXCLUDED.is_consent_granted,
                user_current_enrollment_mode = EXCLUDED.user_current_enrollment_mode,
                unenrollment_date = EXCLUDED.unenrollment_date,
                offer_type = EXCLUDED.offer_type, coupon_code = EXCLUDED.coupon_code,
                coupon_name = EXCLUDED.coupon_name, course_key = EXCLUDED.course_key,
                course_title = EXCLUDED.course_title,
                course_pacing_type = EXCLUDED.course_pacing_type,
                course_start_date = EXCLUDED.course_start_date,
                course_end_date = EXCLUDED.course_end_date, has_passed = EXCLUDED.has_passed,
                progress_status = EXCLUDED.progress_status,
                passed_date = EXCLUDED.passed_date, current_grade = EXCLUDED.current_grade,
                letter_grade = EXCLUDED.letter_grade,
                enterprise_name = EXCLUDED.enterprise_name";
    insert_report(conn, &changed, update).await
}

/// Copies `rows` into the report (a fold's empty table).
async fn copy_report(
    conn: &mut PgConnection,
    rows: impl Iterator<Item = &StoredRow>,
) -> Result<(), sqlx::Error> {
    let mut copy = CopyRows::start(conn, REPORT, 27).await?;
    for r in rows {
        copy.row()
            .value(r.enrollment_id)
            .value(r.customer_id)
            .value(r.learner_id)
            .value(r.course_run_id.as_str())
            .value(r.consent_key.as_str())
            .value(r.redemption_id)
            .value(r.enrollment_source.as_str())
            .value(r.saved_for_later)
            .value(r.is_consent_granted)
            .value(r.user_current_enrollment_mode.as_str())
            .value(r.enrollment_date)
            .value(r.unenrollment_date)
            .value(r.offer_type.as_deref())
            .value(r.coupon_code.as_deref())
            .value(r.coupon_name.as_deref())
            .value(r.course_key.as_deref())
            .value(r.course_title.as_deref())
            .value(r.course_pacing_type.as_deref())
            .value(r.course_start_date)
            .value(r.course_end_date)
            .value(r.has_passed)
            .value(r.progress_status.as_str())
            .value(r.passed_date)
            .value(r.current_grade)
            .value(r.letter_grade.as_deref())
            .value(r.enterprise_name.as_deref())
            .value(r.created);
        copy.send_full().await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Inserts `rows` into the report, with `conflict` as the `ON CONFLICT` clause (or none).
async fn insert_report(
    conn: &mut PgConnection,
    rows: &[StoredRow],
    conflict: &str,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {REPORT}
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                              $6::uuid[], $7::text[], $8::bool[], $9::bool[], $10::text[],
                              $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[],
                              $15::text[], $16::text[], $17::text[], $18::text[],
                              $19::timestamptz[], $20::timestamptz[], $21::bool[], $22::text[],
                              $23::timestamptz[], $24::float8[], $25::text[], $26::text[],
                              $27::timestamptz[])
         {conflict}"
    );
    sqlx::query(&sql)
        .bind(column(rows, |r| r.enrollment_id))
        .bind(column(rows, |r| r.customer_id))
        .bind(column(rows, |r| r.learner_id))
        .bind(column(rows, |r| r.course_run_id.as_str()))
        .bind(column(rows, |r| r.consent_key.as_str()))
        .bind(column(rows, |r| r.redemption_id))
        .bind(column(rows, |r| r.enrollment_source.as_str()))
        .bind(column(rows, |r| r.saved_for_later))
        .bind(column(rows, |r| r.is_consent_granted))
        .bind(column(rows, |r| r.user_current_enrollment_mode.as_str()))
        .bind(column(rows, |r| r.enrollment_date))
        .bind(column(rows, |r| r.unenrollment_date))
        .bind(column(rows, |r| r.offer_type.as_deref()))
        .bind(column(rows, |r| r.coupon_code.as_deref()))
        .bind(column(rows, |r| r.coupon_name.as_deref()))
        .bind(column(rows, |r| r.course_key.as_deref()))
        .bind(column(rows, |r| r.course_title.as_deref()))
        .bind(column(rows, |r| r.course_pacing_type.as_deref()))
        .bind(column(rows, |r| r.course_start_date))
        .bind(column(rows, |r| r.course_end_date))
        .bind(column(rows, |r| r.has_passed))
        .bind(column(rows, |r| r.progress_status.as_str()))
        .bind(column(rows, |r| r.passed_date))
        .bind(column(rows, |r| r.current_grade))
        .bind(column(rows, |r| r.letter_grade.as_deref()))
        .bind(column(rows, |r| r.enterprise_name.as_deref()))
        .bind(column(rows, |r| r.created))
        .execute(conn)
        .await?;
    Ok(())
}
