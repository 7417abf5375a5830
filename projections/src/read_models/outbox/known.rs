//! What a batch of the outbox knows without asking the database event by event: the live
//! configurations that send learner data, which course consents granted in the batch can
//! release held rows, and the gates of the batch's completions and registrations.
//!
//! A configured customer's learner cost the outbox a statement or more per event, and most of
//! those asked the same kind of thing over and over: every completion looked up the customer's
//! live configurations (which change a few times a day) and read its gate, and every consent
//! grant updated held rows that almost never exist (a row is held only for a completion
//! recorded before the consent answer). Each is answered here with one statement per batch.

use super::learners::{read_gates, Gate, RunKey};
use crate::projection::decode;
use domain::channel::Channel;
use domain::completion::CompletionEvent;
use domain::consent::{ConsentEvent, ConsentSubject};
use domain::enrollment::EnrollmentEvent;
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};
use store::log::LoggedEvent;
use uuid::Uuid;

/// Everything a batch reads once (see the module doc).
pub(super) struct Known {
    pub live: LiveConfigs,
    pub held: HeldRows,
    pub gates: Gates,
}

impl Known {
    /// Reads what the batch's events will ask: the held rows of its consent grants and the
    /// gates of its completions and registrations, for the customers with a configuration
    /// (`configured`) or one that registers enrollments (`registering`) when the batch begins.
    /// A customer configured later in the batch has no rows from before it. An event that does
    /// not decode is left to the batch, which stops there.
    pub(super) async fn load(
        conn: &mut PgConnection,
        configured: &HashSet<Uuid>,
        registering: &HashSet<Uuid>,
        events: &[&LoggedEvent],
    ) -> Result<Self, sqlx::Error> {
        let (mut granting, mut runs) = (Vec::new(), Vec::new());
        for event in events {
            match (event.aggregate_type.as_str(), event.event_type.as_str()) {
                ("consent", "ConsentGranted") => {
                    if let Ok(ConsentEvent::ConsentGranted {
                        customer_id,
                        learner_id,
                        subject: ConsentSubject::Course(_),
                        ..
                    }) = decode(event)
                    {
                        if configured.contains(&customer_id.0) {
                            granting.push((customer_id.0, learner_id.0));
                        }
                    }
                }
                ("completion", "CourseCompleted" | "CompletionGradeChanged") => {
                    if let Ok(
                        CompletionEvent::CourseCompleted {
                            customer_id,
                            learner_id,
                            course_run_id,
                            ..
                        }
                        | CompletionEvent::CompletionGradeChanged {
                            customer_id,
                            learner_id,
                            course_run_id,
                            ..
                        },
                    ) = decode(event)
                    {
                        if configured.contains(&customer_id.0) {
                            runs.push((customer_id.0, learner_id.0, course_run_id.0));
                        }
                    }
                }
                ("enrollment", "Enrolled") => {
                    if let Ok(EnrollmentEvent::Enrolled {
                        customer_id,
                        learner_id,
                        course_run_id,
                        ..
                    }) = decode(event)
                    {
                        if registering.contains(&customer_id.0) {
                            runs.push((customer_id.0, learner_id.0, course_run_id.0));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            live: LiveConfigs::default(),
            held: HeldRows::load(conn, &granting).await?,
            gates: Gates::load(conn, &runs).await?,
        })
    }

    /// The batch wrote its learner inputs out and regated a customer (a consent-policy
    /// change): what was read before is read again when next asked.
    pub(super) fn forget(&mut self) {
        self.live.forget();
        self.held.forget();
        self.gates.forget();
    }

    /// A customer was created, deactivated or reactivated: its activity and flags are read
    /// again when next asked. Nothing was written out, and no row was held.
    pub(super) fn forget_customer(&mut self, customer: Uuid) {
        self.live.forget();
        self.gates.forget_customer(customer);
    }
}

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
    async fn load(conn: &mut PgConnection, granting: &[(Uuid, Uuid)]) -> Result<Self, sqlx::Error> {
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
    fn forget(&mut self) {
        self.0 = None;
    }
}

/// The gates of learners' course runs as the written inputs gave them when the batch began.
/// `None` once the batch has written its inputs out: each gate is then read when asked.
pub(super) struct Gates(Option<HashMap<RunKey, Gate>>);

impl Gates {
    async fn load(conn: &mut PgConnection, runs: &[RunKey]) -> Result<Self, sqlx::Error> {
        if runs.is_empty() {
            return Ok(Self(Some(HashMap::new())));
        }
        Ok(Self(Some(read_gates(conn, runs).await?)))
    }

    /// The gate of the run, if it was read when the batch began and is still what is written.
    pub(super) fn get(&self, run: &RunKey) -> Option<&Gate> {
        self.0.as_ref()?.get(run)
    }

    fn forget(&mut self) {
        self.0 = None;
    }

    fn forget_customer(&mut self, customer: Uuid) {
        if let Some(gates) = &mut self.0 {
            gates.retain(|(of, _, _), _| *of != customer);
        }
    }
}
