//! The catalog folded from the first event of the log, for a rebuild from empty tables
//! ([`Projection::fold_from_zero`](crate::projection::Projection::fold_from_zero)).
//!
//! Batch by batch, every event keeps membership right at once: after each event a catalog
//! holds exactly the published items its filter admits. Membership is therefore a function of
//! the content and catalogs the log leaves, and the fold computes it once, at the end, instead
//! of following it event by event (a new catalog matched against every item published so far,
//! each publication against every catalog, each in SQL). The tables are written with a binary
//! `COPY` each.

use super::{course_key_of, parse_filter, parse_filter_update, Item, CATALOG_EVENTS};
use crate::copy::CopyRows;
use crate::projection::{decode, in_key_order, to_json, ApplyError, Fold};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::catalog_filter::ContentFilter;
use domain::content::ContentEvent;
use domain::customer::CustomerEvent;
use rustc_hash::FxHashMap;
use serde_json::Value;
use sqlx::PgConnection;
use store::log::LoggedEvent;
use uuid::Uuid;

/// The content and catalogs the log leaves.
#[derive(Default)]
pub(super) struct CatalogFold {
    content: FxHashMap<Item, Content>,
    catalogs: FxHashMap<Uuid, Catalog>,
}

/// A `catalog_content` row.
struct Content {
    course_key: Option<String>,
    metadata: Value,
    filter_view: Value,
    published: bool,
}

/// A `catalog_catalogs` row, with its filter parsed.
struct Catalog {
    customer_id: Uuid,
    title: String,
    content_filter: Value,
    filter: ContentFilter,
    enabled_course_modes: Value,
    publish_audit_enrollment_urls: bool,
    added_at: DateTime<Utc>,
}

impl CatalogFold {
    fn add(&mut self, event: &LoggedEvent) -> Result<(), ApplyError> {
        match event.aggregate_type.as_str() {
            "content_item" => self.content(decode(event)?),
            "customer" if CATALOG_EVENTS.contains(&event.event_type.as_str()) => {
                self.catalog(decode(event)?, event.recorded_at)
            }
            _ => Ok(()),
        }
    }

    fn content(&mut self, event: ContentEvent) -> Result<(), ApplyError> {
        match event {
            ContentEvent::ContentPublished { metadata }
            | ContentEvent::ContentUpdated { metadata } => {
                let item = (
                    metadata.content_type.as_str().to_string(),
                    metadata.key.clone(),
                );
                let row = Content {
                    course_key: course_key_of(&metadata),
                    metadata: to_json(&metadata)?,
                    filter_view: metadata.filter_view(),
                    published: true,
                };
                self.content.insert(item, row);
            }
            ContentEvent::ContentRetired { content_type, key } => {
                if let Some(row) = self
                    .content
                    .get_mut(&(content_type.as_str().to_string(), key))
                {
                    row.published = false;
                }
            }
        }
        Ok(())
    }

    /// As `apply_catalog` does in SQL: a filter that does not parse fails the event, whatever
    /// the catalog; an update or removal names the catalog's customer, or changes nothing.
    fn catalog(
        &mut self,
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
                let catalog = Catalog {
                    customer_id: customer_id.0,
                    title,
                    filter: parse_filter(catalog_id.0, &content_filter)?,
                    content_filter,
                    enabled_course_modes: to_json(&enabled_course_modes)?,
                    publish_audit_enrollment_urls,
                    added_at: recorded_at,
                };
                self.catalogs.insert(catalog_id.0, catalog);
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
                let Some(catalog) = self
                    .catalogs
                    .get_mut(&catalog_id.0)
                    .filter(|c| c.customer_id == customer_id.0)
                else {
                    return Ok(());
                };
                if let Some(title) = title {
                    catalog.title = title;
                }
                if let (Some(content_filter), Some(filter)) = (content_filter, filter) {
                    catalog.content_filter = content_filter;
                    catalog.filter = filter;
                }
                if let Some(modes) = modes {
                    catalog.enabled_course_modes = modes;
                }
                if let Some(publish) = publish_audit_enrollment_urls {
                    catalog.publish_audit_enrollment_urls = publish;
                }
            }
            CustomerEvent::CatalogRemoved {
                customer_id,
                catalog_id,
            } if self
                .catalogs
                .get(&catalog_id.0)
                .is_some_and(|c| c.customer_id == customer_id.0) =>
            {
                self.catalogs.remove(&catalog_id.0);
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl Fold for CatalogFold {
    fn apply(&mut self, events: &[&LoggedEvent]) -> Result<(), (usize, ApplyError)> {
        for (index, event) in events.iter().enumerate() {
            self.add(event).map_err(|error| (index, error))?;
        }
        Ok(())
    }

    /// The rows held, and the membership rows the write may produce: every catalog may admit
    /// every item.
    fn held(&self) -> usize {
        self.content.len() + self.catalogs.len() * (1 + self.content.len())
    }

    async fn write(self: Box<Self>, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let content = in_key_order(self.content);
        let catalogs = in_key_order(self.catalogs);

        let mut rows = CopyRows::start(
            conn,
            "catalog_content
                (content_type, content_key, course_key, metadata, filter_view, published)",
            6,
        )
        .await?;
        for ((content_type, key), c) in &content {
            rows.row()
                .value(content_type)
                .value(key)
                .value(c.course_key.as_deref())
                .value(&c.metadata)
                .value(&c.filter_view)
                .value(c.published);
            rows.send_full().await?;
        }
        rows.finish().await?;

        let mut rows = CopyRows::start(
            conn,
            "catalog_catalogs (catalog_id, customer_id, title, content_filter,
                enabled_course_modes, publish_audit_enrollment_urls, added_at)",
            7,
        )
        .await?;
        for (id, c) in &catalogs {
            rows.row()
                .value(id)
                .value(c.customer_id)
                .value(c.title.as_str())
                .value(&c.content_filter)
                .value(&c.enabled_course_modes)
                .value(c.publish_audit_enrollment_urls)
                .value(c.added_at);
            rows.send_full().await?;
        }
        rows.finish().await?;

        let published: Vec<&(Item, Content)> =
            content.iter().filter(|(_, c)| c.published).collect();
        let mut rows = CopyRows::start(
            conn,
            "catalog_membership (catalog_id, content_type, content_key)",
            3,
        )
        .await?;
        for (id, catalog) in &catalogs {
            for ((content_type, key), c) in &published {
                if catalog.filter.matches(&c.filter_view) {
                    rows.row().value(id).value(content_type).value(key);
                    rows.send_full().await?;
                }
            }
        }
        rows.finish().await?;
        Ok(())
    }
}
