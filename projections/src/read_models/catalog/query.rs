//! The catalog read model's queries: containment (edX's `contains_content_items`), a catalog's
//! content page by page, one item within a catalog, and the customers' catalogs.

use domain::content::ContentType;
use domain::course_mode::CourseMode;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// One item of a catalog, as the catalog APIs return it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentRow {
    /// `course`, `courserun` or `program`.
    pub content_type: String,
    /// Course key, course-run key or program uuid.
    pub content_key: String,
    /// The item's [`ContentMetadata`] as JSON.
    pub metadata: Value,
}

/// A customer's catalog and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogRow {
    pub catalog_id: Uuid,
    pub customer_id: Uuid,
    pub title: String,
    pub content_filter: Value,
    pub enabled_course_modes: Vec<CourseMode>,
    pub publish_audit_enrollment_urls: bool,
}

/// Whether any of the catalogs `catalogs` (a SQL expression yielding catalog ids, over `$1`)
/// holds any of the keys `$2`. A key stands for the item with that key of any type, for the
/// published runs of the course it names, and for the course of the published run it names.
fn contains_sql(catalogs: &str) -> String {
    format!(
        "WITH keys AS (SELECT DISTINCT unnest($2::text[]) AS key),
         wanted (content_type, content_key) AS (
             SELECT t.content_type, keys.key
               FROM keys CROSS JOIN (VALUES ('course'), ('courserun'), ('program')) AS t (content_type)
             UNION
             SELECT 'courserun', run.content_key
               FROM catalog_content run JOIN keys ON run.course_key = keys.key
              WHERE run.content_type = 'courserun' AND run.published
             UNION
             SELECT 'course', run.course_key
               FROM catalog_content run JOIN keys ON run.content_key = keys.key
              WHERE run.content_type = 'courserun' AND run.published AND run.course_key IS NOT NULL
         )
         SELECT EXISTS (
             SELECT 1 FROM catalog_membership m JOIN wanted USING (content_type, content_key)
              WHERE m.catalog_id IN ({catalogs})
         )"
    )
}

fn requested_keys(course_run_ids: &[String], program_uuids: &[String]) -> Vec<String> {
    course_run_ids
        .iter()
        .chain(program_uuids)
        .cloned()
        .collect()
}

/// edX's `contains_content_items` on catalogs: true when **any** of the requested items is in
/// **any** of `catalog_ids`; false when nothing is requested.
///
/// "Any", not "all": enterprise-catalog's `EnterpriseCatalog.contains_content_keys` (what both
/// its catalog and customer `contains_content_items` endpoints call, and what edx-enterprise's
/// `catalog_contains_course` asks through its client) builds one query
/// `content_key IN keys OR parent_content_key IN keys OR content_key IN parents(keys)` over the
/// catalog's content and answers `.exists()`; the customer endpoint answers true as soon as one
/// catalog does. (An earlier implementation looped over the keys and required every one; the
/// current one replaced it.)
/// Like upstream, `course_run_ids` and `program_uuids` are one list of keys: a course key is
/// accepted among the run ids, and is held when the course or one of its runs is a member; a
/// run is held when it or its course is a member (a run never published has no known course and
/// must be a member itself, as upstream needs its metadata to find the parent).
pub async fn contains_content_items(
    pool: &PgPool,
    catalog_ids: &[Uuid],
    course_run_ids: &[String],
    program_uuids: &[String],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&contains_sql("SELECT unnest($1::uuid[])"))
        .bind(catalog_ids)
        .bind(requested_keys(course_run_ids, program_uuids))
        .fetch_one(pool)
        .await
}

/// [`contains_content_items`] over every catalog of the customer (enterprise-catalog's
/// `enterprise-customer/{uuid}/contains_content_items`: any catalog holding any item).
pub async fn customer_contains_content_items(
    pool: &PgPool,
    customer_id: Uuid,
    course_run_ids: &[String],
    program_uuids: &[String],
) -> Result<bool, sqlx::Error> {
    customer_contains(
        pool,
        customer_id,
        requested_keys(course_run_ids, program_uuids),
    )
    .await
}

/// Whether any catalog of the customer holds the course or one of its runs (edX's
/// `EnterpriseCustomer.catalog_contains_course`, which the consent read model's
/// `consent_required` asks). A run key is accepted too, with the same meaning as in
/// [`contains_content_items`].
pub async fn customer_contains_course<'e>(
    conn: impl PgExecutor<'e>,
    customer_id: Uuid,
    course_key: &str,
) -> Result<bool, sqlx::Error> {
    customer_contains(conn, customer_id, vec![course_key.to_string()]).await
}

/// The SQL of [`customer_contains_course`]: a statement over `$1` (the customer) and `$2` (the
/// keys, `text[]`) answering one boolean, for queries that embed it as a subquery.
pub fn customer_contains_sql() -> String {
    contains_sql("SELECT catalog_id FROM catalog_catalogs WHERE customer_id = $1")
}

async fn customer_contains<'e>(
    conn: impl PgExecutor<'e>,
    customer_id: Uuid,
    keys: Vec<String>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&customer_contains_sql())
        .bind(customer_id)
        .bind(keys)
        .fetch_one(conn)
        .await
}

/// The catalog's count, then one item of the page (NULLs when the page is empty).
type PageTuple = (i64, Option<String>, Option<String>, Option<Value>);

/// One page of a catalog's content and the catalog's total count: its members and the
/// published runs of its member courses, ordered by `(content_type, content_key)` so that pages
/// are stable. `page` counts from 1; a `page` below 1 is the first and a `page_size` below 1 is
/// taken as 1. An unknown catalog has no content.
pub async fn catalog_content(
    pool: &PgPool,
    catalog_id: Uuid,
    page: i64,
    page_size: i64,
) -> Result<(i64, Vec<ContentRow>), sqlx::Error> {
    let page_size = page_size.max(1);
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    let rows: Vec<PageTuple> = sqlx::query_as(
        "WITH content AS (
             SELECT m.content_type, m.content_key
               FROM catalog_membership m
              WHERE m.catalog_id = $1
             UNION
             SELECT run.content_type, run.content_key
               FROM catalog_membership m
               JOIN catalog_content run
                 ON run.content_type = 'courserun' AND run.course_key = m.content_key
                    AND run.published
              WHERE m.catalog_id = $1 AND m.content_type = 'course'
         ),
         page AS (
             SELECT c.content_type, c.content_key, c.metadata
               FROM content JOIN catalog_content c USING (content_type, content_key)
              ORDER BY c.content_type, c.content_key
              LIMIT $2 OFFSET $3
         )
         SELECT (SELECT count(*) FROM content), page.content_type, page.content_key, page.metadata
           FROM (SELECT 1) AS one LEFT JOIN page ON true
          ORDER BY page.content_type, page.content_key",
    )
    .bind(catalog_id)
    .bind(page_size)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = rows.first().map_or(0, |row| row.0);
    let items = rows
        .into_iter()
        .filter_map(|(_, content_type, content_key, metadata)| {
            Some(ContentRow {
                content_type: content_type?,
                content_key: content_key?,
                metadata: metadata?,
            })
        })
        .collect();
    Ok((total, items))
}

/// One course, run or program within a catalog (edX's `enterprise_catalogs/{uuid}/courses/..`,
/// `course_runs/..`, `programs/..`): `None` when it is not published or not in the catalog. A
/// run is in the catalog when it or its course is a member.
pub async fn content_detail(
    pool: &PgPool,
    catalog_id: Uuid,
    content_type: ContentType,
    key: &str,
) -> Result<Option<ContentRow>, sqlx::Error> {
    let row: Option<(String, String, Value)> = sqlx::query_as(
        "SELECT c.content_type, c.content_key, c.metadata
           FROM catalog_content c
          WHERE c.content_type = $2 AND c.content_key = $3 AND c.published
            AND EXISTS (
                SELECT 1 FROM catalog_membership m
                 WHERE m.catalog_id = $1
                   AND ((m.content_type = c.content_type AND m.content_key = c.content_key)
                        OR (c.content_type = 'courserun' AND m.content_type = 'course'
                            AND m.content_key = c.course_key)))",
    )
    .bind(catalog_id)
    .bind(content_type.as_str())
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(content_type, content_key, metadata)| ContentRow {
        content_type,
        content_key,
        metadata,
    }))
}

type CatalogTuple = (Uuid, Uuid, String, Value, Value, bool);

const CATALOG_COLUMNS: &str = "catalog_id, customer_id, title, content_filter, \
                               enabled_course_modes, publish_audit_enrollment_urls";

fn catalog_row(row: CatalogTuple) -> Result<CatalogRow, sqlx::Error> {
    let (catalog_id, customer_id, title, content_filter, modes, publish) = row;
    Ok(CatalogRow {
        catalog_id,
        customer_id,
        title,
        content_filter,
        enabled_course_modes: serde_json::from_value(modes)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        publish_audit_enrollment_urls: publish,
    })
}

/// The customer's catalogs, in the order they were added.
pub async fn catalogs_of_customer(
    pool: &PgPool,
    customer_id: Uuid,
) -> Result<Vec<CatalogRow>, sqlx::Error> {
    let rows: Vec<CatalogTuple> = sqlx::query_as(&format!(
        "SELECT {CATALOG_COLUMNS} FROM catalog_catalogs
          WHERE customer_id = $1 ORDER BY added_at, catalog_id"
    ))
    .bind(customer_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(catalog_row).collect()
}

/// One catalog, `None` when unknown or removed.
pub async fn catalog(pool: &PgPool, catalog_id: Uuid) -> Result<Option<CatalogRow>, sqlx::Error> {
    let row: Option<CatalogTuple> = sqlx::query_as(&format!(
        "SELECT {CATALOG_COLUMNS} FROM catalog_catalogs WHERE catalog_id = $1"
    ))
    .bind(catalog_id)
    .fetch_optional(pool)
    .await?;
    row.map(catalog_row).transpose()
}

/// A page of catalogs of the customers `among` (`None`: every customer), oldest first, and how
/// many there are in all.
pub async fn catalogs(
    pool: &PgPool,
    among: Option<&[Uuid]>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<CatalogRow>), sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM catalog_catalogs WHERE $1::uuid[] IS NULL OR customer_id = ANY($1)",
    )
    .bind(among)
    .fetch_one(pool)
    .await?;
    let rows: Vec<CatalogTuple> = sqlx::query_as(&format!(
        "SELECT {CATALOG_COLUMNS} FROM catalog_catalogs
          WHERE $1::uuid[] IS NULL OR customer_id = ANY($1)
          ORDER BY added_at, catalog_id LIMIT $2 OFFSET $3"
    ))
    .bind(among)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let rows = rows
        .into_iter()
        .map(catalog_row)
        .collect::<Result<_, _>>()?;
    Ok((count, rows))
}
