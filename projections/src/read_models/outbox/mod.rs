//! The integration outbox (projection `outbox`): per active channel configuration, the content
//! and completions its remote system must be sent, as a queue that transmitter workers drain.
//!
//! Tables (migration `20261127000014_outbox.sql`):
//! - inputs, the projection's own copies of what its rules read: `outbox_configs`,
//!   `outbox_customers`, `outbox_catalogs`, `outbox_content`, `outbox_catalog_content`
//!   (catalog membership, evaluated with [`domain::catalog_filter`] as the catalog read model
//!   does, for the catalogs of customers with a configuration only), `outbox_memberships`,
//!   `outbox_consents`, `outbox_enrollments` (a completion is queued from its event: the
//!   outbox keeps no copy of it);
//! - decisions: `outbox_content_targets` (whether each configuration's remote should hold each
//!   item, and the version of that decision) and `outbox_learner_targets`;
//! - the queue `outbox_items`, and `outbox_remote_content`: what each remote system holds
//!   (content confirmed sent as create or update and not deleted since).
//!
//! A configuration is *live* while it and its customer are active. Content rules (`content.rs`):
//! - an item is in a configuration's scope when it is published and one of the configuration's
//!   catalogs (`catalogs_to_transmit`, or every catalog of the customer when empty) admits it;
//! - for a live configuration, an item entering the scope is due as a create (an update when
//!   the remote already holds it), new metadata while in scope as an update, leaving the scope
//!   (a filter change, a catalog removed, a retirement) as a delete;
//! - one pending row per configuration x item, coalesced: a create then an update is one create
//!   with the latest metadata; a create then a delete before sending cancels the row; a delete of
//!   an item the remote never held (nor has in flight) is nothing. A row's action is decided
//!   again against what the remote holds when it is claimed;
//! - a configuration created or reactivated (or its customer reactivated) queues every item in
//!   its scope and a delete for every held item out of it; new `catalogs_to_transmit` queue what
//!   entered and what left; deactivating a configuration (or its customer) cancels its pending
//!   and held rows.
//!
//! Learner rules (`learners.rs`): a `CourseCompleted` is queued, for every live configuration of
//! the customer that sends learner data, when the learner's membership is linked and active,
//! the enterprise enrollment is known and not audit-only (or the customer reports audit
//! enrollments), and, where the customer requests consent, the course's consent is granted; with
//! no consent answer yet the row is `held` until a grant releases it. A decline or revocation
//! (where consent is requested), an unlink or deactivation of the membership, learner data
//! switched off or the configuration deactivated cancel pending and held rows. A
//! `CompletionGradeChanged` queues again (or updates the open row) for every channel but SAP,
//! which edX sends once (`INCLUDE_GRADE_FOR_COMPLETION_AUDIT_CHECK = False`). An `Enrolled` is
//! queued by the same rules as a `registration` row, once per enrollment, for the xAPI
//! configurations (their `registered` statements). Eligibility is decided when the completion
//! (or enrollment) is recorded: a learner linked, or audit reporting enabled, later does not
//! queue earlier ones, and neither does a configuration created later.
//!
//! Rows already leased are in flight: nothing recalls them. Item ids are UUIDv5 of
//! (configuration, kind, subject, version), where the version counts the transmissions the
//! events made due; they are the idempotency key the remote sees.
//!
//! Worker functions are in [`queue`]. They write `outbox_items` and `outbox_remote_content`,
//! the queue's own operational state, which no event records yet. `tables()` lists every table
//! (`apply` reads and writes them all), so a rebuild replays the events as if nothing had ever
//! been sent: the remote holdings are empty; every subject whose latest decision calls for a
//! transmission is pending again, coalesced, under the id of that decision (ids depend on the
//! events only, so a remote that honours the idempotency key recognises what it already
//! applied); content that was created and deleted again is cancelled as never sent. Sent, dead
//! and cancelled history is gone, and leases held across the swap are lost (their `complete`
//! finds no lease). Keeping that history needs the outcomes recorded as events: the
//! transmission audit, a later read model.
//!
//! A batch of events is applied in order, except that what the batch writes of many rows is
//! written together, before anything reads it: the learner inputs (see `inputs.rs`; most of the
//! log is learners'), the learner rows it queues (see `queued.rs`), and the decisions on the
//! content items its content events change (see `content.rs`). The live configurations, the
//! gates of the batch's completions and registrations, the held rows its consent grants may
//! release and the catalogs' filters are read once per batch (see `known.rs`).

mod configs;
mod content;
mod inputs;
mod known;
mod learners;
pub mod queue;
mod queued;

pub use queue::{
    claim, complete, complete_many, fail, items_of_config, pending_counts, remote_content, requeue,
    FailOutcome, ItemAction, ItemKind, ItemStatus, OutboxItem, StatusCount, BACKOFF_BASE,
    BACKOFF_MAX,
};

use crate::projection::{decode, ApplyError, Projection};
use async_trait::async_trait;
use content::ContentBatch;
use domain::channel::ChannelEvent;
use domain::customer::CustomerEvent;
use inputs::{InsertedKeys, LearnerInputs};
use known::Known;
use queued::QueuedRows;
use rustc_hash::FxHashSet;
use sqlx::PgConnection;
use std::sync::Arc;
use store::log::LoggedEvent;
use uuid::Uuid;

/// The outbox projection (see the module doc). It holds no state of its own but which
/// learner-input keys it has inserted (see `inputs.rs`): a new instance knows of none.
#[derive(Debug, Default)]
pub struct Outbox {
    inserted: Arc<InsertedKeys>,
}

const TABLES: &[&str] = &[
    "outbox_configs",
    "outbox_customers",
    "outbox_catalogs",
    "outbox_content",
    "outbox_catalog_content",
    "outbox_memberships",
    "outbox_consents",
    "outbox_enrollments",
    "outbox_content_targets",
    "outbox_learner_targets",
    "outbox_items",
    "outbox_remote_content",
];

/// Namespace of item ids (fixed: changing it changes every idempotency key).
const ITEM_NAMESPACE: Uuid = Uuid::from_u128(0x3f0c_8e52_1d7a_4b69_9a41_c6e2_07b5_d813);

/// The idempotency key of one transmission: the configuration, the kind, the subject within
/// them and the version of the decision.
fn item_id(config_id: Uuid, kind: ItemKind, subject: &str, version: i32) -> Uuid {
    let name = format!(
        "{config_id}\u{1f}{}\u{1f}{subject}\u{1f}{version}",
        kind.as_str()
    );
    Uuid::new_v5(&ITEM_NAMESPACE, name.as_bytes())
}

#[async_trait]
impl Projection for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn tables_emptied(&self) {
        self.inserted.emptied();
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[
            "channel_configuration",
            "customer",
            "content_item",
            "learner_membership",
            "consent",
            "enrollment",
            "completion",
        ])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError> {
        self.apply_batch(conn, &[event])
            .await
            .map_err(|(_, error)| error)
    }

    /// Applies the events in order; the learner inputs of the batch are folded and written
    /// together (see `inputs.rs`), and a few answers are read once per batch (see `known.rs`).
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        // Each customer with a configuration, and whether one of them registers enrollments.
        let customers: Vec<(Uuid, bool)> = sqlx::query_as(
            "SELECT customer_id, bool_or(channel = ANY ($1)) FROM outbox_configs
              GROUP BY customer_id",
        )
        .bind(
            learners::REGISTRATION_CHANNELS
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| (0, e.into()))?;
        let configured: FxHashSet<Uuid> = customers.iter().map(|(customer, _)| *customer).collect();
        let registering: FxHashSet<Uuid> = customers
            .into_iter()
            .filter(|(_, xapi)| *xapi)
            .map(|(customer, _)| customer)
            .collect();
        let known = Known::load(&mut *conn, &configured, &registering, events)
            .await
            .map_err(|e| (0, e.into()))?;
        let mut batch = Batch {
            inputs: LearnerInputs::new(self.inserted.clone()),
            queued: QueuedRows::default(),
            content: ContentBatch::default(),
            known,
            registering,
            configured,
        };
        for (index, event) in events.iter().enumerate() {
            batch
                .apply(conn, event)
                .await
                .map_err(|error| (index, error))?;
        }
        batch.inputs.flush(conn).await.map_err(|e| (0, e.into()))?;
        batch.queued.flush(conn).await.map_err(|e| (0, e.into()))?;
        batch.content.decide(conn).await.map_err(|e| (0, e))
    }
}

/// What a batch carries from one event to the next.
struct Batch {
    /// Learner inputs not written yet.
    inputs: LearnerInputs,
    /// Learner rows queued and not written yet (see `queued.rs`).
    queued: QueuedRows,
    /// The catalog filters read, and the content changes not decided yet (see `content.rs`).
    content: ContentBatch,
    /// What the batch reads once (see `known.rs`).
    known: Known,
    /// The customers with a channel configuration, live or not: only their learners can have
    /// open rows, so only their learner events need more than recording, and only their
    /// catalogs keep membership.
    configured: FxHashSet<Uuid>,
    /// The customers with an xAPI configuration, live or not: only their enrollments can be
    /// queued as registrations.
    registering: FxHashSet<Uuid>,
}

impl Batch {
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        event: &LoggedEvent,
    ) -> Result<(), ApplyError> {
        let at = event.recorded_at;
        let kind = event.event_type.as_str();
        let (inputs, queued, configured) = (&mut self.inputs, &mut self.queued, &self.configured);
        match event.aggregate_type.as_str() {
            "channel_configuration" if kind != "ChannelSecretSet" => {
                // Configuration changes cancel, hold and release learner rows in SQL, and read
                // and change scopes and targets.
                queued.flush(conn).await?;
                self.content.decide(conn).await?;
                self.content.forget_filters();
                self.known.live.forget();
                let event: ChannelEvent = decode(event)?;
                let newly_configured = match &event {
                    ChannelEvent::ChannelConfigurationCreated {
                        customer_id,
                        settings,
                        ..
                    } => {
                        if learners::REGISTRATION_CHANNELS.contains(&settings.channel()) {
                            self.registering.insert(customer_id.0);
                        }
                        self.configured.insert(customer_id.0)
                    }
                    _ => false,
                };
                configs::apply_config(conn, event, newly_configured, at).await
            }
            "customer" => match kind {
                "CatalogAdded" | "CatalogUpdated" | "CatalogRemoved" => {
                    self.content.decide(conn).await?;
                    self.content.forget_filters();
                    content::apply_catalog(conn, configured, decode(event)?, at).await
                }
                "CustomerUpdated" => {
                    // A consent-policy change reads the consents in SQL, and may hold rows.
                    inputs.flush(conn).await?;
                    queued.flush(conn).await?;
                    self.content.decide(conn).await?;
                    self.known.forget();
                    configs::apply_customer(conn, decode(event)?, at).await
                }
                "CustomerCreated" | "CustomerDeactivated" | "CustomerReactivated" => {
                    // They cancel and queue learner rows in SQL, and change which
                    // configurations are live.
                    queued.flush(conn).await?;
                    self.content.decide(conn).await?;
                    let event: CustomerEvent = decode(event)?;
                    if let CustomerEvent::CustomerCreated { customer_id, .. }
                    | CustomerEvent::CustomerDeactivated { customer_id }
                    | CustomerEvent::CustomerReactivated { customer_id } = &event
                    {
                        self.known.forget_customer(customer_id.0);
                    }
                    configs::apply_customer(conn, event, at).await
                }
                _ => Ok(()),
            },
            "content_item" => {
                content::apply_content(conn, &mut self.content, decode(event)?, at).await
            }
            "learner_membership" => {
                learners::apply_membership(conn, inputs, queued, configured, decode(event)?, at)
                    .await
            }
            "consent" => {
                learners::apply_consent(
                    conn,
                    inputs,
                    queued,
                    configured,
                    &self.known,
                    decode(event)?,
                    at,
                )
                .await
            }
            "enrollment" if matches!(kind, "Enrolled" | "ModeChanged") => {
                learners::apply_enrollment(
                    conn,
                    inputs,
                    queued,
                    &self.registering,
                    &mut self.known,
                    decode(event)?,
                    at,
                )
                .await
            }
            "completion" if matches!(kind, "CourseCompleted" | "CompletionGradeChanged") => {
                learners::apply_completion(
                    conn,
                    inputs,
                    queued,
                    configured,
                    &mut self.known,
                    decode(event)?,
                    at,
                )
                .await
            }
            _ => Ok(()),
        }
    }
}
