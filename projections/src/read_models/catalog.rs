//! The catalog read model (projection `catalog`): the metadata of every course, course run and
//! program, the customers' catalogs, and which content each catalog holds.
//!
//! Tables:
//! - `catalog_content`: one row per content item ever published, with its metadata, its filter
//!   view ([`ContentMetadata::filter_view`]) and `published` (false once retired; the last
//!   metadata is kept). `course_key` is a run's course, a course's own key, NULL for programs.
//! - `catalog_catalogs`: one row per catalog of a customer, with its `content_filter`.
//! - `catalog_membership`: the published items a catalog's filter admits.
//!
//! Rules:
//! - `ContentPublished` / `ContentUpdated` store the item as published and evaluate it against
//!   every catalog's filter: it joins the catalogs that now admit it and leaves the others.
//! - `ContentRetired` marks the item unpublished; it leaves every catalog.
//! - `CatalogAdded` stores the catalog and evaluates every published item against its filter;
//!   `CatalogUpdated` changes the settings it carries, and a new filter re-evaluates every
//!   published item; `CatalogRemoved` drops the catalog and its membership.
//! - Filters are evaluated here, in Rust, with [`domain::catalog_filter`]: `{}` admits
//!   everything; every entry must hold; `"field": value` is equality and `"field": [..]` any-of
//!   (an empty list admits nothing); `field__lte`/`__gte`/`__lt`/`__gt` compare numbers (the
//!   bound may be a numeric string); `"key": [..]` lists content keys and admits a run whose
//!   course is listed; a missing field fails its entry. A stored filter that no longer parses
//!   stops the projection (it was validated when the catalog was added).
//! - A catalog's content is its members plus the published runs of member courses (discovery
//!   indexes courses; edX answers a run through its course). The queries add those runs; they
//!   are not membership rows, so a run published later belongs at once to its course's catalogs.
//!
//! Other customer events and other aggregates are ignored. The queries read only these tables.

use crate::projection::{decode, ApplyError, Projection};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog_filter::{self, ContentFilter};
use domain::content::{ContentEvent, ContentMetadata, ContentType};
use domain::course_mode::CourseMode;
use domain::customer::CustomerEvent;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool};
use store::log::LoggedEvent;
use uuid::Uuid;

/// The catalog projection (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogProjection;

const TABLES: &[&str] = &["catalog_content", "catalog_catalogs", "catalog_membership"];

/// The customer events this read model reads; the customer's other events are not decoded.
const CATALOG_EVENTS: &[&str] = &["CatalogAdded", "CatalogUpdated", "CatalogRemoved"];

/// Published items read at a time when a catalog's filter is evaluated against all of them.
const EVALUATION_BATCH: i64 = 1000;

#[async_trait]
impl Projection for CatalogProjection {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        match event.aggregate_type.as_str() {
            "content_item" => apply_content(conn, decode(event)?).await,
            "customer" if CATALOG_EVENTS.contains(&event.event_type.as_str()) => {
                apply_catalog(conn, decode(event)?, event.recorded_at).await
            }
            _ => Ok(()),
        }
    }
}

async fn apply_content(conn: &mut PgConnection, event: ContentEvent) -> Result<(), ApplyError> {
    match event {
        ContentEvent::ContentPublished { metadata } | ContentEvent::ContentUpdated { metadata } => {
            store_content(conn, &metadata).await?;
            let view = metadata.filter_view();
            let admitting: Vec<Uuid> = catalog_filters(conn)
                .await?
                .into_iter()
                .filter(|(_, filter)| filter.matches(&view))
                .map(|(id, _)| id)
                .collect();
            // Leave the catalogs that no longer admit the item, join those that now do.
            sqlx::query(
                "WITH left_catalogs AS (
                     DELETE FROM catalog_membership
                      WHERE content_type = $1 AND content_key = $2 AND catalog_id <> ALL($3))
                 INSERT INTO catalog_membership (catalog_id, content_type, content_key)
                 SELECT unnest($3::uuid[]), $1, $2
                 ON CONFLICT DO NOTHING",
            )
            .bind(metadata.content_type.as_str())
            .bind(&metadata.key)
            .bind(&admitting)
            .execute(&mut *conn)
            .await?;
        }
        ContentEvent::ContentRetired { content_type, key } => {
            sqlx::query(
                "WITH left_catalogs AS (
                     DELETE FROM catalog_membership WHERE content_type = $1 AND content_key = $2)
                 UPDATE catalog_content SET published = false
                  WHERE content_type = $1 AND content_key = $2",
            )
            .bind(content_type.as_str())
            .bind(&key)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Upserts a published item with its metadata and filter view.
async fn store_content(
    conn: &mut PgConnection,
    metadata: &ContentMetadata,
) -> Result<(), ApplyError> {
    let course_key = match metadata.content_type {
        ContentType::Course => Some(metadata.key.clone()),
        ContentType::CourseRun => metadata.run_course_key(),
        ContentType::Program => None,
    };
    let json = serde_json::to_value(metadata).map_err(|e| ApplyError::Malformed(e.to_string()))?;
    sqlx::query(
        "INSERT INTO catalog_content
                (content_type, content_key, course_key, metadata, filter_view, published)
         VALUES ($1, $2, $3, $4, $5, true)
         ON CONFLICT (content_type, content_key) DO UPDATE
            SET course_key = EXCLUDED.course_key, metadata = EXCLUDED.metadata,
                filter_view = EXCLUDED.filter_view, published = true",
    )
    .bind(metadata.content_type.as_str())
    .bind(&metadata.key)
    .bind(course_key)
    .bind(json)
    .bind(metadata.filter_view())
    .execute(conn)
    .await?;
    Ok(())
}

/// Every catalog's parsed filter.
async fn catalog_filters(
    conn: &mut PgConnection,
) -> Result<Vec<(Uuid, ContentFilter)>, ApplyError> {
    let rows: Vec<(Uuid, Value)> =
        sqlx::query_as("SELECT catalog_id, content_filter FROM catalog_catalogs")
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(id, filter)| Ok((id, parse_filter(id, &filter)?)))
        .collect()
}

/// A stored catalog filter, parsed; one that no longer parses stops the projection reading it
/// (the outbox keeps catalogs too and reads them the same way).
pub(crate) fn parse_filter(catalog_id: Uuid, filter: &Value) -> Result<ContentFilter, ApplyError> {
    catalog_filter::parse(filter)
        .map_err(|e| ApplyError::Malformed(format!("catalog {catalog_id}: {e}")))
}

async fn apply_catalog(
    conn: &mut PgConnection,
    event: CustomerEvent,
    recorded_at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let modes = |modes: &[CourseMode]| {
        serde_json::to_value(modes).map_err(|e| ApplyError::Malformed(e.to_string()))
    };
    match event {
        CustomerEvent::CatalogAdded {
            customer_id,
            catalog_id,
            title,
            content_filter,
            enabled_course_modes,
            publish_audit_enrollment_urls,
        } => {
            let filter = parse_filter(catalog_id.0, &content_filter)?;
            sqlx::query(
                "INSERT INTO catalog_catalogs (catalog_id, customer_id, title, content_filter,
                        enabled_course_modes, publish_audit_enrollment_urls, added_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (catalog_id) DO UPDATE
                    SET customer_id = EXCLUDED.customer_id, title = EXCLUDED.title,
                        content_filter = EXCLUDED.content_filter,
                        enabled_course_modes = EXCLUDED.enabled_course_modes,
                        publish_audit_enrollment_urls = EXCLUDED.publish_audit_enrollment_urls,
                        added_at = EXCLUDED.added_at",
            )
            .bind(catalog_id.0)
            .bind(customer_id.0)
            .bind(&title)
            .bind(&content_filter)
            .bind(modes(&enabled_course_modes)?)
            .bind(publish_audit_enrollment_urls)
            .bind(recorded_at)
            .execute(&mut *conn)
            .await?;
            evaluate_catalog(conn, catalog_id.0, &filter).await
        }
        CustomerEvent::CatalogUpdated {
            customer_id,
            catalog_id,
            title,
            content_filter,
            enabled_course_modes,
            publish_audit_enrollment_urls,
        } => {
            let filter = match &content_filter {
                Some(f) => Some(parse_filter(catalog_id.0, f)?),
                None => None,
            };
            let modes = enabled_course_modes.as_deref().map(modes).transpose()?;
            let updated = sqlx::query(
                "UPDATE catalog_catalogs
                    SET title = COALESCE($3, title),
                        content_filter = COALESCE($4, content_filter),
                        enabled_course_modes = COALESCE($5, enabled_course_modes),
                        publish_audit_enrollment_urls =
                            COALESCE($6, publish_audit_enrollment_urls)
                  WHERE catalog_id = $1 AND customer_id = $2",
            )
            .bind(catalog_id.0)
            .bind(customer_id.0)
            .bind(title)
            .bind(content_filter)
            .bind(modes)
            .bind(publish_audit_enrollment_urls)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            match filter {
                Some(filter) if updated > 0 => evaluate_catalog(conn, catalog_id.0, &filter).await,
                _ => Ok(()),
            }
        }
        CustomerEvent::CatalogRemoved {
            customer_id,
            catalog_id,
        } => {
            sqlx::query(
                "WITH removed AS (
                     DELETE FROM catalog_catalogs WHERE catalog_id = $1 AND customer_id = $2
                     RETURNING catalog_id)
                 DELETE FROM catalog_membership WHERE catalog_id IN (SELECT catalog_id FROM removed)",
            )
            .bind(catalog_id.0)
            .bind(customer_id.0)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Replaces a catalog's membership with the published items its filter admits, reading the
/// items in key order a batch at a time.
async fn evaluate_catalog(
    conn: &mut PgConnection,
    catalog_id: Uuid,
    filter: &ContentFilter,
) -> Result<(), ApplyError> {
    sqlx::query("DELETE FROM catalog_membership WHERE catalog_id = $1")
        .bind(catalog_id)
        .execute(&mut *conn)
        .await?;
    if filter.matches_everything() {
        sqlx::query(
            "INSERT INTO catalog_membership (catalog_id, content_type, content_key)
             SELECT $1, content_type, content_key FROM catalog_content WHERE published",
        )
        .bind(catalog_id)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    let mut after = (String::new(), String::new());
    loop {
        let items: Vec<(String, String, Value)> = sqlx::query_as(
            "SELECT content_type, content_key, filter_view FROM catalog_content
              WHERE published AND (content_type, content_key) > ($1, $2)
              ORDER BY content_type, content_key
              LIMIT $3",
        )
        .bind(&after.0)
        .bind(&after.1)
        .bind(EVALUATION_BATCH)
        .fetch_all(&mut *conn)
        .await?;
        let Some((last_type, last_key, _)) = items.last() else {
            return Ok(());
        };
        after = (last_type.clone(), last_key.clone());
        let (types, keys): (Vec<&str>, Vec<&str>) = items
            .iter()
            .filter(|(_, _, view)| filter.matches(view))
            .map(|(t, k, _)| (t.as_str(), k.as_str()))
            .unzip();
        sqlx::query(
            "INSERT INTO catalog_membership (catalog_id, content_type, content_key)
             SELECT $1, t, k FROM unnest($2::text[], $3::text[]) AS item (t, k)
             ON CONFLICT DO NOTHING",
        )
        .bind(catalog_id)
        .bind(&types)
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    }
}

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

async fn customer_contains<'e>(
    conn: impl PgExecutor<'e>,
    customer_id: Uuid,
    keys: Vec<String>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&contains_sql(
        "SELECT catalog_id FROM catalog_catalogs WHERE customer_id = $1",
    ))
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
