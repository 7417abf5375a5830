//! Content rules of the outbox: the content and catalog inputs, each configuration's scope, and
//! the create / update / delete rows (see the parent module's doc).
//!
//! Catalog membership is evaluated here as the catalog read model evaluates it (every catalog's
//! filter parsed with [`domain::catalog_filter`] and matched against the item's
//! `filter_view`, a new catalog against every item with the catalog module's
//! [`admitted_page`]), over the outbox's own copies: a projection reads only its own tables.
//!
//! Membership is kept only for the catalogs of *configured* customers, those with a channel
//! configuration (live or not): only their scopes are ever read, and most customers have none.
//! A customer's first configuration evaluates its catalogs ([`evaluate_customer_catalogs`])
//! before anything reads its scope; configurations are never removed, so a configured customer
//! stays configured.

use super::{item_id, ItemAction, ItemKind};
use crate::projection::{column, to_json, ApplyError};
use crate::read_models::catalog::{admitted_page, parse_filter, Item};
use chrono::{DateTime, Utc};
use domain::catalog_filter::ContentFilter;
use domain::content::ContentEvent;
use domain::customer::CustomerEvent;
use rustc_hash::FxHashSet;
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::BTreeSet;
use uuid::Uuid;

/// Whether a catalog `c` counts for the configuration `cfg` (SQL over those aliases).
const TRANSMITS: &str = "c.customer_id = cfg.customer_id
    AND (cardinality(cfg.catalogs_to_transmit) = 0 OR c.catalog_id = ANY (cfg.catalogs_to_transmit))";

fn subject(content_type: &str, content_key: &str) -> String {
    format!("{content_type}:{content_key}")
}

/// What a batch carries for the content rules: the filters of the catalogs whose membership is
/// kept (read once, forgotten on a catalog or configuration event), and the items its content
/// events changed, whose rows, membership and decisions are not written yet. Those are written
/// together, a few statements for all the items, then decided together, in one read of the
/// scopes and targets and one [`transition`]: at the end of the batch or before an event that
/// reads or changes content, scopes, targets or live configurations (catalog, configuration and
/// customer events: [`ContentBatch::decide`]), and before an item changes again. A content event
/// changes only its own item's rows, so distinct items do not depend on one another.
#[derive(Default)]
pub(super) struct ContentBatch {
    filters: Option<Vec<(Uuid, ContentFilter)>>,
    undecided: Vec<Changed>,
    seen: FxHashSet<Item>,
}

/// An item whose membership or metadata changed, at the time of its event.
struct Changed {
    item: Item,
    change: Change,
    at: DateTime<Utc>,
}

/// What changed of an item, and what of it is still to be written.
enum Change {
    /// Published or updated: its row and the catalogs that admit it are still to be written.
    Published {
        metadata: Value,
        filter_view: Value,
        admitting: Vec<Uuid>,
    },
    /// Retired: still to be marked unpublished and taken out of every catalog.
    Retired,
    /// Its membership changed, written by a catalog event.
    Membership,
}

impl Changed {
    fn metadata_changed(&self) -> bool {
        matches!(self.change, Change::Published { .. })
    }
}

impl ContentBatch {
    /// Writes the items changed since the last call, then makes their decisions.
    pub(super) async fn decide(&mut self, conn: &mut PgConnection) -> Result<(), ApplyError> {
        self.seen.clear();
        let changed = std::mem::take(&mut self.undecided);
        write_content(conn, &changed).await?;
        reconcile_items(conn, &changed).await
    }

    /// Forgets the filters read (a catalog or configuration event may change them).
    pub(super) fn forget_filters(&mut self) {
        self.filters = None;
    }

    /// Holds an item's change; an item already held is written and decided first, as its
    /// decision reads what the held one's would change.
    async fn hold(&mut self, conn: &mut PgConnection, changed: Changed) -> Result<(), ApplyError> {
        if self.seen.contains(&changed.item) {
            self.decide(conn).await?;
        }
        self.seen.insert(changed.item.clone());
        self.undecided.push(changed);
        Ok(())
    }
}

pub(super) async fn apply_content(
    conn: &mut PgConnection,
    batch: &mut ContentBatch,
    event: ContentEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let changed = match event {
        ContentEvent::ContentPublished { metadata } | ContentEvent::ContentUpdated { metadata } => {
            if batch.filters.is_none() {
                batch.filters = Some(catalog_filters(conn).await?);
            }
            let filter_view = metadata.filter_view();
            let admitting: Vec<Uuid> = batch
                .filters
                .iter()
                .flatten()
                .filter(|(_, filter)| filter.matches(&filter_view))
                .map(|(id, _)| *id)
                .collect();
            Changed {
                item: (
                    metadata.content_type.as_str().to_string(),
                    metadata.key.clone(),
                ),
                change: Change::Published {
                    metadata: to_json(&metadata)?,
                    filter_view,
                    admitting,
                },
                at,
            }
        }
        ContentEvent::ContentRetired { content_type, key } => Changed {
            item: (content_type.as_str().to_string(), key),
            change: Change::Retired,
            at,
        },
    };
    batch.hold(conn, changed).await
}

/// Writes the content rows and membership of the items published or retired (each item once).
async fn write_content(conn: &mut PgConnection, changed: &[Changed]) -> Result<(), ApplyError> {
    let mut published = Vec::new();
    let mut admitted = Vec::new();
    let mut retired = Vec::new();
    for c in changed {
        match &c.change {
            Change::Published {
                metadata,
                filter_view,
                admitting,
            } => {
                published.push((&c.item, metadata, filter_view));
                admitted.extend(admitting.iter().map(|catalog| (*catalog, &c.item)));
            }
            Change::Retired => retired.push(&c.item),
            Change::Membership => {}
        }
    }
    if !published.is_empty() {
        sqlx::query(
            "INSERT INTO outbox_content (content_type, content_key, metadata, filter_view, published)
             SELECT *, true FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::jsonb[])
             ON CONFLICT (content_type, content_key) DO UPDATE
                SET metadata = EXCLUDED.metadata, filter_view = EXCLUDED.filter_view,
                    published = true",
        )
        .bind(column(&published, |(item, _, _)| item.0.as_str()))
        .bind(column(&published, |(item, _, _)| item.1.as_str()))
        .bind(column(&published, |(_, metadata, _)| *metadata))
        .bind(column(&published, |(_, _, view)| *view))
        .execute(&mut *conn)
        .await?;
        // The items leave the catalogs that no longer admit them and join those that now do.
        sqlx::query(
            "WITH admitted AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[])
                     AS a (catalog_id, content_type, content_key)),
             left_catalogs AS (
                 DELETE FROM outbox_catalog_content m
                  USING UNNEST($4::text[], $5::text[]) AS it (content_type, content_key)
                  WHERE m.content_type = it.content_type AND m.content_key = it.content_key
                    AND (m.catalog_id, m.content_type, m.content_key)
                        NOT IN (SELECT * FROM admitted))
             INSERT INTO outbox_catalog_content (catalog_id, content_type, content_key)
             SELECT * FROM admitted
             ON CONFLICT DO NOTHING",
        )
        .bind(column(&admitted, |(catalog, _)| *catalog))
        .bind(column(&admitted, |(_, item)| item.0.as_str()))
        .bind(column(&admitted, |(_, item)| item.1.as_str()))
        .bind(column(&published, |(item, _, _)| item.0.as_str()))
        .bind(column(&published, |(item, _, _)| item.1.as_str()))
        .execute(&mut *conn)
        .await?;
    }
    if !retired.is_empty() {
        sqlx::query(
            "WITH left_catalogs AS (
                 DELETE FROM outbox_catalog_content m
                  USING UNNEST($1::text[], $2::text[]) AS it (content_type, content_key)
                  WHERE m.content_type = it.content_type AND m.content_key = it.content_key)
             UPDATE outbox_content c SET published = false
               FROM UNNEST($1::text[], $2::text[]) AS it (content_type, content_key)
              WHERE c.content_type = it.content_type AND c.content_key = it.content_key",
        )
        .bind(column(&retired, |item| item.0.as_str()))
        .bind(column(&retired, |item| item.1.as_str()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The parsed filters of the catalogs whose membership is kept: those of configured customers.
async fn catalog_filters(
    conn: &mut PgConnection,
) -> Result<Vec<(Uuid, ContentFilter)>, ApplyError> {
    let rows: Vec<(Uuid, Value)> = sqlx::query_as(
        "SELECT catalog_id, content_filter FROM outbox_catalogs
          WHERE customer_id IN (SELECT customer_id FROM outbox_configs)",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, filter)| Ok((id, parse_filter(id, &filter)?)))
        .collect()
}

/// `configured`: the customers with a configuration (only their catalogs keep membership).
pub(super) async fn apply_catalog(
    conn: &mut PgConnection,
    configured: &FxHashSet<Uuid>,
    event: CustomerEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let (customer_id, changed) = match event {
        CustomerEvent::CatalogAdded {
            customer_id,
            catalog_id,
            content_filter,
            ..
        } => {
            let filter = parse_filter(catalog_id.0, &content_filter)?;
            sqlx::query(
                "INSERT INTO outbox_catalogs (catalog_id, customer_id, content_filter)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (catalog_id) DO UPDATE
                    SET customer_id = EXCLUDED.customer_id,
                        content_filter = EXCLUDED.content_filter",
            )
            .bind(catalog_id.0)
            .bind(customer_id.0)
            .bind(&content_filter)
            .execute(&mut *conn)
            .await?;
            if !configured.contains(&customer_id.0) {
                return Ok(());
            }
            (
                customer_id,
                evaluate_catalog(conn, catalog_id.0, &filter).await?,
            )
        }
        CustomerEvent::CatalogUpdated {
            customer_id,
            catalog_id,
            content_filter: Some(content_filter),
            ..
        } => {
            let filter = parse_filter(catalog_id.0, &content_filter)?;
            let updated = sqlx::query(
                "UPDATE outbox_catalogs SET content_filter = $3
                  WHERE catalog_id = $1 AND customer_id = $2",
            )
            .bind(catalog_id.0)
            .bind(customer_id.0)
            .bind(&content_filter)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if updated == 0 || !configured.contains(&customer_id.0) {
                return Ok(());
            }
            (
                customer_id,
                evaluate_catalog(conn, catalog_id.0, &filter).await?,
            )
        }
        CustomerEvent::CatalogRemoved {
            customer_id,
            catalog_id,
        } => {
            let removed: Vec<Item> = sqlx::query_as(
                "WITH removed AS (
                     DELETE FROM outbox_catalogs WHERE catalog_id = $1 AND customer_id = $2
                     RETURNING catalog_id)
                 DELETE FROM outbox_catalog_content
                  WHERE catalog_id IN (SELECT catalog_id FROM removed)
                 RETURNING content_type, content_key",
            )
            .bind(catalog_id.0)
            .bind(customer_id.0)
            .fetch_all(&mut *conn)
            .await?;
            (customer_id, removed.into_iter().collect())
        }
        _ => return Ok(()),
    };
    if changed.is_empty() || !has_live_config(conn, customer_id.0).await? {
        return Ok(());
    }
    let changed: Vec<Changed> = changed
        .into_iter()
        .map(|item| Changed {
            item,
            change: Change::Membership,
            at,
        })
        .collect();
    reconcile_items(conn, &changed).await
}

/// Replaces a catalog's membership with the published items its filter admits; returns the
/// items that joined or left it.
async fn evaluate_catalog(
    conn: &mut PgConnection,
    catalog_id: Uuid,
    filter: &ContentFilter,
) -> Result<BTreeSet<Item>, ApplyError> {
    let mut admitted: BTreeSet<Item> = BTreeSet::new();
    let mut after = (String::new(), String::new());
    while let Some((last, page)) = admitted_page(conn, "outbox_content", filter, &after).await? {
        admitted.extend(page);
        after = last;
    }
    let before: Vec<Item> = sqlx::query_as(
        "DELETE FROM outbox_catalog_content WHERE catalog_id = $1
         RETURNING content_type, content_key",
    )
    .bind(catalog_id)
    .fetch_all(&mut *conn)
    .await?;
    let (types, keys): (Vec<&str>, Vec<&str>) = admitted
        .iter()
        .map(|(t, k)| (t.as_str(), k.as_str()))
        .unzip();
    sqlx::query(
        "INSERT INTO outbox_catalog_content (catalog_id, content_type, content_key)
         SELECT $1, t, k FROM unnest($2::text[], $3::text[]) AS item (t, k)",
    )
    .bind(catalog_id)
    .bind(&types)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    let before: BTreeSet<Item> = before.into_iter().collect();
    Ok(before.symmetric_difference(&admitted).cloned().collect())
}

/// Evaluates every catalog of a customer that has just been configured (see the module doc):
/// none of them had membership rows.
pub(super) async fn evaluate_customer_catalogs(
    conn: &mut PgConnection,
    customer_id: Uuid,
) -> Result<(), ApplyError> {
    let catalogs: Vec<(Uuid, Value)> = sqlx::query_as(
        "SELECT catalog_id, content_filter FROM outbox_catalogs WHERE customer_id = $1
          ORDER BY catalog_id",
    )
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    for (catalog_id, filter) in catalogs {
        evaluate_catalog(conn, catalog_id, &parse_filter(catalog_id, &filter)?).await?;
    }
    Ok(())
}

async fn has_live_config(conn: &mut PgConnection, customer_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM outbox_configs cfg
               JOIN outbox_customers cu ON cu.customer_id = cfg.customer_id AND cu.active
              WHERE cfg.customer_id = $1 AND cfg.active)",
    )
    .bind(customer_id)
    .fetch_one(conn)
    .await
}

/// After items' membership or metadata changed: for every live configuration whose scope
/// holds an item now or held it before, queues what changed. One read for every item, one
/// transition for every decision.
async fn reconcile_items(conn: &mut PgConnection, changed: &[Changed]) -> Result<(), ApplyError> {
    if changed.is_empty() {
        return Ok(());
    }
    let rows: Vec<(i64, Uuid, Uuid, bool, bool, i32)> = sqlx::query_as(&format!(
        "SELECT it.n, cfg.config_id, cfg.customer_id,
                EXISTS (SELECT 1 FROM outbox_catalog_content m
                          JOIN outbox_catalogs c USING (catalog_id)
                         WHERE m.content_type = it.t AND m.content_key = it.k AND {TRANSMITS}),
                COALESCE(t.present, false), COALESCE(t.version, 0)
           FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS it (t, k, n)
           JOIN outbox_configs cfg ON cfg.active
           JOIN outbox_customers cu ON cu.customer_id = cfg.customer_id AND cu.active
           LEFT JOIN outbox_content_targets t
                  ON t.config_id = cfg.config_id AND t.content_type = it.t
                 AND t.content_key = it.k
          WHERE t.present
             OR cfg.customer_id IN (SELECT c.customer_id FROM outbox_catalog_content m
                                      JOIN outbox_catalogs c USING (catalog_id)
                                     WHERE m.content_type = it.t AND m.content_key = it.k)
          ORDER BY it.n, cfg.config_id"
    ))
    .bind(column(changed, |c| c.item.0.as_str()))
    .bind(column(changed, |c| c.item.1.as_str()))
    .fetch_all(&mut *conn)
    .await?;
    let decisions: Vec<Decision> = rows
        .into_iter()
        .filter_map(|(n, config_id, customer_id, now_in, was_in, version)| {
            // WITH ORDINALITY counts from 1.
            let c = &changed[usize::try_from(n - 1).ok()?];
            (now_in != was_in || (now_in && c.metadata_changed())).then(|| Decision {
                config_id,
                customer_id,
                item: c.item.clone(),
                present: now_in,
                version: version + 1,
                at: c.at,
            })
        })
        .collect();
    transition(conn, &decisions).await
}

/// Brings a live configuration's queue in line with its scope. `full` (a configuration created
/// or going live again) queues every item in scope; otherwise (new `catalogs_to_transmit`) only
/// the items that entered or left.
pub(super) async fn sweep_config(
    conn: &mut PgConnection,
    config_id: Uuid,
    full: bool,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let rows: Vec<(Uuid, String, String, bool, bool, i32)> = sqlx::query_as(&format!(
        "WITH cfg AS (SELECT * FROM outbox_configs WHERE config_id = $1),
         scope AS (
             SELECT DISTINCT m.content_type, m.content_key
               FROM outbox_catalog_content m
               JOIN outbox_catalogs c USING (catalog_id)
               JOIN cfg ON {TRANSMITS}),
         targets AS (
             SELECT content_type, content_key, present, version
               FROM outbox_content_targets WHERE config_id = $1)
         SELECT (SELECT customer_id FROM cfg), content_type, content_key,
                s.content_key IS NOT NULL, COALESCE(t.present, false), COALESCE(t.version, 0)
           FROM scope s FULL JOIN targets t USING (content_type, content_key)
          ORDER BY content_type, content_key"
    ))
    .bind(config_id)
    .fetch_all(&mut *conn)
    .await?;
    let decisions: Vec<Decision> = rows
        .into_iter()
        .filter(|(_, _, _, now_in, was_in, _)| now_in != was_in || (full && *now_in))
        .map(
            |(customer_id, content_type, content_key, now_in, _, version)| Decision {
                config_id,
                customer_id,
                item: (content_type, content_key),
                present: now_in,
                version: version + 1,
                at,
            },
        )
        .collect();
    transition(conn, &decisions).await
}

/// A new decision for a configuration x item: whether the remote should hold the item, the
/// decision's version, and when it was made (the time of its event).
struct Decision {
    config_id: Uuid,
    customer_id: Uuid,
    item: Item,
    present: bool,
    version: i32,
    at: DateTime<Utc>,
}

/// Records new decisions (each configuration x item once) and queues them: a create or update
/// when the remote should hold the item, a delete when it should not but holds it (or has it in
/// flight), and otherwise cancels the open row, if any: nothing is to be sent. One statement
/// for all of them: a new item is decided for every configuration at once, and a
/// configuration going live decides every item in its scope at once.
async fn transition(conn: &mut PgConnection, decisions: &[Decision]) -> Result<(), ApplyError> {
    if decisions.is_empty() {
        return Ok(());
    }
    let subjects: Vec<String> = column(decisions, |d| subject(&d.item.0, &d.item.1));
    let ids: Vec<Uuid> = decisions
        .iter()
        .zip(&subjects)
        .map(|(d, subject)| item_id(d.config_id, ItemKind::Content, subject, d.version))
        .collect();
    // `held`: the remote holds the item, or is about to (a create or update in flight may
    // succeed). The open row, if any, takes the new decision (coalescing); it keeps its
    // attempts and its next attempt time. A withdrawal finds the open row it cancels by a
    // lookup of its own: joined on (configuration, kind, subject), the planner, without
    // statistics for tables a rebuild has just emptied, could scan every open row against
    // every decision (half a second for one batch of a rebuild).
    sqlx::query(&format!(
        "WITH decision AS (
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[],
                                  $6::bool[], $7::text[], $8::text[], $10::timestamptz[])
                 AS d (config_id, customer_id, item_id, subject, version, present,
                       content_type, content_key, at)),
         target AS (
             INSERT INTO outbox_content_targets
                    (config_id, content_type, content_key, present, version)
             SELECT config_id, content_type, content_key, present, version FROM decision
             ON CONFLICT (config_id, content_type, content_key) DO UPDATE
                SET present = EXCLUDED.present, version = EXCLUDED.version),
         decided AS (
             SELECT d.*,
                    EXISTS (SELECT 1 FROM outbox_remote_content r
                             WHERE r.config_id = d.config_id AND r.content_type = d.content_type
                               AND r.content_key = d.content_key)
                 OR EXISTS (SELECT 1 FROM outbox_items i
                             WHERE i.config_id = d.config_id AND i.kind = $9
                               AND i.subject = d.subject AND i.status = 'leased'
                               AND i.present) AS held,
                    CASE WHEN NOT d.present THEN
                        (SELECT i.item_id FROM outbox_items i
                          WHERE i.config_id = d.config_id AND i.kind = $9
                            AND i.subject = d.subject AND i.status IN ('pending', 'held'))
                    END AS open_item
               FROM decision d),
         cancelled AS (
             UPDATE outbox_items i
                SET status = 'cancelled', updated_at = d.at,
                    cancel_reason = 'left the scope before it was sent'
               FROM decided d
              WHERE i.item_id = d.open_item AND NOT d.held)
         INSERT INTO outbox_items (item_id, config_id, customer_id, kind, action, subject, version,
                present, content_type, content_key, payload, status, attempts, next_attempt_at,
                created_at, updated_at)
         SELECT d.item_id, d.config_id, d.customer_id, $9,
                CASE WHEN NOT d.present THEN '{delete}' WHEN d.held THEN '{update}'
                     ELSE '{create}' END,
                d.subject, d.version, d.present, d.content_type, d.content_key, c.metadata,
                'pending', 0, d.at, d.at, d.at
           FROM decided d JOIN outbox_content c USING (content_type, content_key)
          WHERE d.present OR d.held
         ON CONFLICT (config_id, kind, subject) WHERE status IN ('pending', 'held') DO UPDATE
            SET item_id = EXCLUDED.item_id, action = EXCLUDED.action,
                version = EXCLUDED.version, present = EXCLUDED.present,
                payload = EXCLUDED.payload, updated_at = EXCLUDED.updated_at",
        delete = ItemAction::Delete.as_str(),
        update = ItemAction::Update.as_str(),
        create = ItemAction::Create.as_str(),
    ))
    .bind(column(decisions, |d| d.config_id))
    .bind(column(decisions, |d| d.customer_id))
    .bind(ids)
    .bind(subjects)
    .bind(column(decisions, |d| d.version))
    .bind(column(decisions, |d| d.present))
    .bind(column(decisions, |d| d.item.0.as_str()))
    .bind(column(decisions, |d| d.item.1.as_str()))
    .bind(ItemKind::Content.as_str())
    .bind(column(decisions, |d| d.at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
