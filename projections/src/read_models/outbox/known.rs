//! What a batch of the outbox knows without asking the database event by event: the live
//! configurations that send learner data, which course consents granted in the batch can
//! release held rows, and the gates of the batch's completions and registrations.
//!
//! A configured customer's learner cost the outbox a statement or more per event, and most of
//! those asked the same kind of thing over and over: every completion looked up the customer's
//! live configurations (which change a few times a day) and read its gate, and every consent
//! grant updated held rows that almost never exist (a row is held only for a completion
//! recorded before the consent answer). Each is answered here with one statement per batch.

use super::learners::{read_gates, Gate, RunKey, REGISTRATION_CHANNELS};
use crate::projection::decode;
use domain::channel::{Channel, ChannelEvent};
use domain::completion::CompletionEvent;
use domain::consent::{ConsentEvent, ConsentSubject};
use domain::enrollment::EnrollmentEvent;
use rustc_hash::{FxHashMap, FxHashSet};
use sqlx::PgConnection;
use store::log::LoggedEvent;
use uuid::Uuid;

/// Everything a batch reads once (see the module doc).
pub(super) struct Known {
    pub live: LiveConfigs,
    pub held: HeldRows,
    pub gates: Gates,
}

impl Known {
    /// Reads what the batch's events will ask: the held rows of its consent grants, for the
    /// customers with a configuration (`configured`) when the batch begins (a customer
    /// configured later in the batch has no rows from before it), and the gates of its
    /// completions and registrations, for those customers, the ones that register enrollments
    /// (`registering`) and the ones the batch configures. An event that does not decode is left
    /// to the batch, which stops there.
    pub(super) async fn load(
        conn: &mut PgConnection,
        configured: &FxHashSet<Uuid>,
        registering: &FxHashSet<Uuid>,
        events: &[&LoggedEvent],
    ) -> Result<Self, sqlx::Error> {
        let (mut granting, mut completions, mut enrollments) = (Vec::new(), Vec::new(), Vec::new());
        let (mut configuring, mut registering_too) = (FxHashSet::default(), FxHashSet::default());
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
                        completions.push((customer_id.0, learner_id.0, course_run_id.0));
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
                        enrollments.push((customer_id.0, learner_id.0, course_run_id.0));
                    }
                }
                ("channel_configuration", "ChannelConfigurationCreated") => {
                    if let Ok(ChannelEvent::ChannelConfigurationCreated {
                        customer_id,
                        settings,
                        ..
                    }) = decode(event)
                    {
                        configuring.insert(customer_id.0);
                        if REGISTRATION_CHANNELS.contains(&settings.channel()) {
                            registering_too.insert(customer_id.0);
                        }
                    }
                }
                _ => {}
            }
        }
        // Read now: the runs of customers configured (or registering) when the batch begins.
        // Read when first asked, a customer at a time: those of customers the batch configures.
        let (mut now, mut later) = (Vec::new(), Vec::new());
        let completions = completions.into_iter().map(|run| {
            let (now, later) = (configured.contains(&run.0), configuring.contains(&run.0));
            (run, now, later)
        });
        let enrollments = enrollments.into_iter().map(|run| {
            let (now, later) = (
                registering.contains(&run.0),
                registering_too.contains(&run.0),
            );
            (run, now, later)
        });
        for (run, read_now, read_later) in completions.chain(enrollments) {
            if read_now {
                now.push(run);
            } else if read_later {
                later.push(run);
            }
        }
        Ok(Self {
            live: LiveConfigs::default(),
            held: HeldRows::load(conn, &granting).await?,
            gates: Gates::load(conn, &now, later).await?,
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
pub(super) struct HeldRows(Option<FxHashSet<ConsentKey>>);

impl HeldRows {
    /// The held rows of these (customer, learner) pairs, the learners granting consent in the
    /// batch.
    async fn load(conn: &mut PgConnection, granting: &[(Uuid, Uuid)]) -> Result<Self, sqlx::Error> {
        if granting.is_empty() {
            return Ok(Self(Some(FxHashSet::default())));
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

/// The gates of learners' course runs as the written inputs gave them when the batch began:
/// those of the customers configured then, read at once; those of the customers the batch
/// configures, read together the first time one of the customer's is asked (what is written
/// of them has not changed since the batch began). `None` once the batch has written its inputs
/// out: each gate is then read when asked.
pub(super) struct Gates {
    read: Option<FxHashMap<RunKey, Gate>>,
    /// The batch's runs of the customers it configures, and which customers' are not read yet.
    later: FxHashMap<Uuid, Vec<RunKey>>,
    unread: FxHashSet<Uuid>,
}

impl Gates {
    async fn load(
        conn: &mut PgConnection,
        now: &[RunKey],
        later: Vec<RunKey>,
    ) -> Result<Self, sqlx::Error> {
        let read = if now.is_empty() {
            FxHashMap::default()
        } else {
            read_gates(conn, now).await?
        };
        let mut by_customer: FxHashMap<Uuid, Vec<RunKey>> = FxHashMap::default();
        for run in later {
            by_customer.entry(run.0).or_default().push(run);
        }
        Ok(Self {
            read: Some(read),
            unread: by_customer.keys().copied().collect(),
            later: by_customer,
        })
    }

    /// The gate of the run, if it is one of the batch's and still what is written.
    pub(super) async fn get(
        &mut self,
        conn: &mut PgConnection,
        run: &RunKey,
    ) -> Result<Option<Gate>, sqlx::Error> {
        let Some(read) = &mut self.read else {
            return Ok(None);
        };
        if self.unread.remove(&run.0) {
            if let Some(runs) = self.later.get(&run.0) {
                read.extend(read_gates(conn, runs).await?);
            }
        }
        Ok(read.get(run).cloned())
    }

    fn forget(&mut self) {
        self.read = None;
    }

    /// The customer's activity or flags changed: its gates are read again when next asked.
    fn forget_customer(&mut self, customer: Uuid) {
        if let Some(read) = &mut self.read {
            read.retain(|(of, _, _), _| *of != customer);
        }
        if self.later.contains_key(&customer) {
            self.unread.insert(customer);
        }
    }
}
