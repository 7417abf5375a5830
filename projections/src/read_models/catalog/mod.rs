//! The catalog read model (projection `catalog`): the metadata of every course, course run and
//! program, the customers' catalogs, and which content each catalog holds.
//!
//! Tables:
//! - `catalog_content`: one row per content item ever published, with its metadata, its filter
//!   view ([`ContentMetadata::filter_view`]) and `published` (false once retired; the last
//!   metadata is kept). `course_key` is a run's course, a course's own key, NULL for programs.
//! - `catalog_catalogs`: one row per catalog of a customer, with its `content_filter`.
//! - `catalog_membership`: the published items a catalog's filter admits, indexed by catalog
//!   only (every query names its catalogs).
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
//!
//! A batch reads the catalogs' filters once (again after a catalog event), and the membership of
//! items published for the first time, which no row names yet, is written in one statement
//! ([`Joins`]) at the end of the batch, or before any other event reads or deletes membership:
//! in a rebuild nearly every content event is a first publication. A rebuild from the empty
//! tables with one read of the log folds the content and catalogs in memory and computes the
//! membership once, at the end (see `fold.rs`).

use crate::projection::{column, decode, to_json, ApplyError, Fold, Projection};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog_filter::{self, ContentFilter};
use domain::content::{ContentEvent, ContentMetadata, ContentType};
use domain::customer::CustomerEvent;
use fold::CatalogFold;
use serde_json::Value;
use sqlx::PgConnection;
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

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&["content_item", "customer"])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event])
            .await
            .map_err(|(_, error)| error)
    }

    /// Applies the events in order, with the filters read once and the first publications'
    /// membership written together (see the module doc).
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        let mut batch = Batch::default();
        for (index, event) in events.iter().enumerate() {
            batch
                .apply(conn, event)
                .await
                .map_err(|error| (index, error))?;
        }
        batch.joins.flush(conn).await.map_err(|e| (0, e.into()))
    }

    fn fold_from_zero(&self) -> Option<Box<dyn Fold>> {
        Some(Box::<CatalogFold>::default())
    }
}

/// What a batch carries from one event to the next.
#[derive(Default)]
struct Batch {
    /// Every catalog's parsed filter, once read; forgotten on a catalog event.
    filters: Option<Vec<(Uuid, ContentFilter)>>,
    /// Membership rows of first publications, not written yet.
    joins: Joins,
}

impl Batch {
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        event: &LoggedEvent,
    ) -> Result<(), ApplyError> {
        match event.aggregate_type.as_str() {
            "content_item" => self.apply_content(conn, decode(event)?).await,
            "customer" if CATALOG_EVENTS.contains(&event.event_type.as_str()) => {
                self.joins.flush(conn).await?;
                self.filters = None;
                apply_catalog(conn, decode(event)?, event.recorded_at).await
            }
            _ => Ok(()),
        }
    }

    async fn apply_content(
        &mut self,
        conn: &mut PgConnection,
        event: ContentEvent,
    ) -> Result<(), ApplyError> {
        match event {
            ContentEvent::ContentPublished { metadata }
            | ContentEvent::ContentUpdated { metadata } => {
                let first = store_content(conn, &metadata).await?;
                if self.filters.is_none() {
                    self.filters = Some(catalog_filters(conn).await?);
                }
                let view = metadata.filter_view();
                let (mut admitting, mut others) = (Vec::new(), Vec::new());
                for (id, filter) in self.filters.iter().flatten() {
                    if filter.matches(&view) {
                        admitting.push(*id);
                    } else {
                        others.push(*id);
                    }
                }
                let item = (metadata.content_type.as_str(), metadata.key.as_str());
                if first {
                    // No membership row names the item yet.
                    self.joins.add(&admitting, item);
                    return Ok(());
                }
                self.joins.flush(conn).await?;
                // Leave the catalogs that no longer admit the item, join those that now do
                // (the rows are found by catalog: membership has no index by item).
                sqlx::query(
                    "WITH left_catalogs AS (
                         DELETE FROM catalog_membership
                          WHERE catalog_id = ANY ($4) AND content_type = $1 AND content_key = $2)
                     INSERT INTO catalog_membership (catalog_id, content_type, content_key)
                     SELECT unnest($3::uuid[]), $1, $2
                     ON CONFLICT DO NOTHING",
                )
                .bind(item.0)
                .bind(item.1)
                .bind(admitting)
                .bind(others)
                .execute(&mut *conn)
                .await?;
            }
            ContentEvent::ContentRetired { content_type, key } => {
                self.joins.flush(conn).await?;
                sqlx::query(
                    "WITH left_catalogs AS (
                         DELETE FROM catalog_membership
                          WHERE catalog_id IN (SELECT catalog_id FROM catalog_catalogs)
                            AND content_type = $1 AND content_key = $2)
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
}

/// Membership rows of items published for the first time, written in one statement.
#[derive(Default)]
struct Joins(Vec<(Uuid, String, String)>);

impl Joins {
    fn add(&mut self, catalogs: &[Uuid], (content_type, key): (&str, &str)) {
        for catalog in catalogs {
            self.0
                .push((*catalog, content_type.to_string(), key.to_string()));
        }
    }

    /// Writes the rows held, in key order, with a plain insert: their items had no row when
    /// they were added.
    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.0);
        rows.sort_unstable();
        sqlx::query(
            "INSERT INTO catalog_membership (catalog_id, content_type, content_key)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[])",
        )
        .bind(column(&rows, |(catalog, ..)| *catalog))
        .bind(column(&rows, |(_, content_type, _)| content_type.as_str()))
        .bind(column(&rows, |(.., key)| key.as_str()))
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Upserts a published item with its metadata and filter view; true when the item is new.
async fn store_content(
    conn: &mut PgConnection,
    metadata: &ContentMetadata,
) -> Result<bool, ApplyError> {
    let course_key = course_key_of(metadata);
    let json = to_json(metadata)?;
    // A row just inserted has no deleting transaction (`xmax` 0); an updated one has ours.
    let first: bool = sqlx::query_scalar(
        "INSERT INTO catalog_content
                (content_type, content_key, course_key, metadata, filter_view, published)
         VALUES ($1, $2, $3, $4, $5, true)
         ON CONFLICT (content_type, content_key) DO UPDATE
            SET course_key = EXCLUDED.course_key, metadata = EXCLUDED.metadata,
                filter_view = EXCLUDED.filter_view, published = true
         RETURNING xmax = 0",
    )
    .bind(metadata.content_type.as_str())
    .bind(&metadata.key)
    .bind(course_key)
    .bind(json)
    .bind(metadata.filter_view())
    .fetch_one(conn)
    .await?;
    Ok(first)
}

/// The `course_key` column of an item: a run's course, a course's own key, none for a program.
fn course_key_of(metadata: &ContentMetadata) -> Option<String> {
    match metadata.content_type {
        ContentType::Course => Some(metadata.key.clone()),
        ContentType::CourseRun => metadata.run_course_key(),
        ContentType::Program => None,
    }
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

/// The new filter of a `CatalogUpdated`, parsed, if it carries one.
fn parse_filter_update(
    catalog_id: Uuid,
    filter: Option<&Value>,
) -> Result<Option<ContentFilter>, ApplyError> {
    filter.map(|f| parse_filter(catalog_id, f)).transpose()
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
            .bind(to_json(&enabled_course_modes)?)
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
            let filter = parse_filter_update(catalog_id.0, content_filter.as_ref())?;
            let modes = enabled_course_modes.as_deref().map(to_json).transpose()?;
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
/// items in key order a page at a time.
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
    while let Some((last, admitted)) =
        admitted_page(conn, "catalog_content", filter, &after).await?
    {
        let (types, keys): (Vec<&str>, Vec<&str>) = admitted
            .iter()
            .map(|(t, k)| (t.as_str(), k.as_str()))
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
        after = last;
    }
    Ok(())
}

/// A content item: its type and key.
pub(crate) type Item = (String, String);

/// Reads the next [`EVALUATION_BATCH`] published items after `after`, in key order, from
/// `table` (this read model's `catalog_content`, or the outbox's copy of it, which has the same
/// columns) and matches them against `filter`; returns the last item read and the ones the
/// filter admits, or `None` past the last item. Only the fields of the filter view the filter
/// reads are shipped: a view holds the item's whole discovery record, kilobytes each, and a
/// new catalog is matched against every published item.
pub(crate) async fn admitted_page(
    conn: &mut PgConnection,
    table: &'static str,
    filter: &ContentFilter,
    after: &Item,
) -> Result<Option<(Item, Vec<Item>)>, ApplyError> {
    let items: Vec<(String, String, Value)> = sqlx::query_as(&format!(
        "SELECT content_type, content_key,
                (SELECT coalesce(jsonb_object_agg(f.key, f.value), '{{}}')
                   FROM jsonb_each(filter_view) f WHERE f.key = ANY ($4))
           FROM {table}
          WHERE published AND (content_type, content_key) > ($1, $2)
          ORDER BY content_type, content_key
          LIMIT $3"
    ))
    .bind(&after.0)
    .bind(&after.1)
    .bind(EVALUATION_BATCH)
    .bind(filter.fields())
    .fetch_all(&mut *conn)
    .await?;
    let Some((last_type, last_key, _)) = items.last() else {
        return Ok(None);
    };
    let last = (last_type.clone(), last_key.clone());
    let admitted = items
        .into_iter()
        .filter(|(_, _, view)| filter.matches(view))
        .map(|(t, k, _)| (t, k))
        .collect();
    Ok(Some((last, admitted)))
}

mod fold;
mod query;

pub use query::{
    catalog, catalog_content, catalogs, catalogs_of_customer, contains_content_items,
    content_detail, customer_contains_content_items, customer_contains_course,
    customer_contains_sql, CatalogRow, ContentRow,
};
