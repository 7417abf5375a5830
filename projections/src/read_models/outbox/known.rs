//! What a batch of the outbox knows without asking the database event by event: the live
//! configurations that send learner data, and which course consents granted in the batch can
//! release held rows.
//!
//! A configured customer's learner costs the outbox a statement or two per event. Two of those
//! asked the same thing over and over: every completion looked up the customer's live
//! configurations (which change a few times a day), and every consent grant updated held rows
//! that almost never exist (a row is held only for a completion recorded before the consent
//! answer). Each is answered here with one statement per batch.

use domain::channel::Channel;
use sqlx::PgConnection;
use std::collections::HashSet;
use uuid::Uuid;

/// The live configurations (the configuration and its customer active) that send learner
/// data: customer, configuration, channel code; ordered by configuration. Loaded when first
/// asked in a batch; a configuration or customer event makes the batch load them again.
#[derive(Default)]
pub(super) struct LiveConfigs(Option<Vec<(Uuid, Uuid, String)>>);

impl LiveConfigs {
    /// The customer's live configurations of these channels that send learner data.
    pub(super) async fn of(
        &mut self,
        conn: &mut PgConnection,
        customer: Uuid,
        channels: &[Channel],
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        let all = match &mut self.0 {
            Some(all) => all,
            empty => empty.insert(
                sqlx::query_as(
                    "SELECT cfg.customer_id, cfg.config_id, cfg.channel FROM outbox_configs cfg
                       JOIN outbox_customers cu ON cu.customer_id = cfg.customer_id AND cu.active
                      WHERE cfg.active AND NOT cfg.disable_learner_data
                      ORDER BY cfg.config_id",
                )
                .fetch_all(conn)
                .await?,
            ),
        };
        Ok(all
            .iter()
            .filter(|(of, _, channel)| {
                *of == customer && channels.iter().any(|c| c.as_str() == channel)
            })
            .map(|(_, config_id, _)| *config_id)
            .collect())
    }

    /// A configuration or customer changed: load them again when next asked.
    pub(super) fn forget(&mut self) {
        self.0 = None;
    }
}

/// Customer, learner, course key.
type ConsentKey = (Uuid, Uuid, String);

/// The held learner rows a consent grant of the batch may release: those of the batch's grants
/// held when the batch began, and those the batch held since. `None` once the batch regated a
/// customer (held rows then come from SQL): every grant then updates.
pub(super) struct HeldRows(Option<HashSet<ConsentKey>>);

impl HeldRows {
    /// The held rows of these (customer, learner) pairs, the learners granting consent in the
    /// batch.
    pub(super) async fn load(
        conn: &mut PgConnection,
        granting: &[(Uuid, Uuid)],
    ) -> Result<Self, sqlx::Error> {
        if granting.is_empty() {
            return Ok(Self(Some(HashSet::new())));
        }
        let (customers, learners): (Vec<Uuid>, Vec<Uuid>) = granting.iter().copied().unzip();
        let rows: Vec<ConsentKey> = sqlx::query_as(
            "SELECT DISTINCT i.customer_id, i.learner_id, i.course_key
               FROM UNNEST($1::uuid[], $2::uuid[]) AS g (customer_id, learner_id)
               JOIN outbox_items i
                 ON i.customer_id = g.customer_id AND i.learner_id = g.learner_id
                AND i.kind = 'learner' AND i.status = 'held'",
        )
        .bind(&customers)
        .bind(&learners)
        .fetch_all(conn)
        .await?;
        Ok(Self(Some(rows.into_iter().collect())))
    }

    /// Whether the learner may have held rows for the course.
    pub(super) fn may_exist(&self, customer: Uuid, learner: Uuid, key: &str) -> bool {
        match &self.0 {
            Some(held) => held.contains(&(customer, learner, key.to_string())),
            None => true,
        }
    }

    /// The batch held a row.
    pub(super) fn held(&mut self, customer: Uuid, learner: Uuid, key: &str) {
        if let Some(held) = &mut self.0 {
            held.insert((customer, learner, key.to_string()));
        }
    }

    /// The batch regated a customer: any row may be held now.
    pub(super) fn forget(&mut self) {
        self.0 = None;
    }
}
