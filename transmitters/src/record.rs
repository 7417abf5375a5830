//! Recording an attempt as a `TransmissionAttempted` event (the transmission aggregate), before
//! the row is completed or rescheduled: an attempt whose effect on the queue was applied is
//! never missing from the audit.
//!
//! A [`Recorder`] groups the attempts that many concurrent sends record at about the same time
//! into one transaction (group commit): first attempts of an item open a new stream, whose
//! only possible sequence is 1, so they are decided by the aggregate's own rules
//! (`Transmission::decide` on an empty record) and inserted together; a clash on a sequence
//! (another writer got there first) and every later attempt go through the event store's
//! command path, one by one, with its optimistic concurrency.

use crate::channel::{Answer, Request};
use chrono::Utc;
use cqrs_es::DomainEvent;
use domain::channel::Channel;
use domain::ids::{ChannelConfigId, CustomerId, LearnerId};
use domain::transmission::TransmissionEvent;
use domain::transmission::{
    transmission_stream_id, Attempt, Transmission, TransmissionAction, TransmissionCommand,
    TransmissionStatus,
};
use projections::read_models::outbox::{ItemAction, OutboxItem};
use std::collections::HashSet;
use std::time::Duration;
use store::{CommandMetadata, EventStore};
use tokio::sync::{mpsc, oneshot};

/// The actor of the workers' commands.
pub const ACTOR: &str = "transmitter";

/// What one attempt at one row came to.
pub struct Outcome<'a> {
    pub status: TransmissionStatus,
    pub answer: Option<&'a Answer>,
    /// Used when there is no answer (a dry run, a skip, a consent refusal).
    pub note: Option<String>,
    pub duration: Duration,
}

fn action(action: ItemAction) -> TransmissionAction {
    match action {
        ItemAction::Create => TransmissionAction::Create,
        ItemAction::Update => TransmissionAction::Update,
        ItemAction::Delete => TransmissionAction::Delete,
        ItemAction::Completion => TransmissionAction::Completion,
        ItemAction::Registration => TransmissionAction::Registration,
    }
}

/// The excerpt of an answer, with the request's private values taken out (the domain then
/// scrubs credentials and email addresses and trims it).
pub fn excerpt(answer: &Answer, request: Option<&Request>) -> String {
    let mut text: String = answer.body.chars().take(2000).collect();
    if let Some(request) = request {
        for value in request.private.iter().filter(|v| v.len() >= 3) {
            text = text.replace(value.as_str(), "[private]");
        }
    }
    text
}

/// The attempt to record for one row.
pub fn attempt(
    item: &OutboxItem,
    outcome: &Outcome<'_>,
    request: Option<&Request>,
) -> Result<Attempt, RecordError> {
    let channel: Channel = serde_json::from_value(serde_json::Value::String(item.channel.clone()))
        .map_err(|_| RecordError::UnknownChannel(item.channel.clone()))?;
    let excerpt = match (outcome.answer, &outcome.note) {
        (_, Some(note)) => Some(note.clone()),
        (Some(answer), None) => Some(excerpt(answer, request)),
        (None, None) => None,
    };
    let attempt = Attempt {
        item_id: item.item_id,
        config_id: ChannelConfigId(item.config_id),
        customer_id: CustomerId(item.customer_id),
        channel,
        action: action(item.action),
        learner_id: item.learner_id.map(LearnerId),
        attempt: u32::try_from(item.attempts).unwrap_or(0) + 1,
        status: outcome.status,
        http_status: outcome.answer.and_then(|a| a.status),
        excerpt,
        duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        at: Utc::now(),
    };
    Ok(attempt)
}

/// Records one attempt of `item` through the event store's command path.
pub async fn record(
    store: &EventStore,
    item: &OutboxItem,
    outcome: &Outcome<'_>,
    request: Option<&Request>,
) -> Result<(), RecordError> {
    record_one(store, attempt(item, outcome, request)?).await
}

async fn record_one(store: &EventStore, attempt: Attempt) -> Result<(), RecordError> {
    store
        .execute::<Transmission>(
            &transmission_stream_id(attempt.item_id),
            TransmissionCommand::RecordAttempt(attempt),
            &(),
            &CommandMetadata::new(ACTOR),
        )
        .await
        .map(|_| ())
        .map_err(|e| RecordError::Store(e.to_string()))
}

/// Most attempts written in one transaction.
const GROUP_MAX: usize = 512;

type Waiting = (Attempt, oneshot::Sender<Result<(), RecordError>>);

/// Records attempts in groups (see the module doc). Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Waiting>,
}

impl Recorder {
    /// Starts the recorder's task (inside a tokio runtime); it ends when every clone is gone.
    pub fn start(store: EventStore) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Waiting>(4 * GROUP_MAX);
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut group = vec![first];
                while group.len() < GROUP_MAX {
                    match waiting.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                write_group(&store, group).await;
            }
        });
        Self { queue }
    }

    /// Records one attempt, in the next group; returns once it is committed.
    pub async fn record(
        &self,
        item: &OutboxItem,
        outcome: &Outcome<'_>,
        request: Option<&Request>,
    ) -> Result<(), RecordError> {
        let attempt = attempt(item, outcome, request)?;
        let (done, committed) = oneshot::channel();
        self.queue
            .send((attempt, done))
            .await
            .map_err(|_| RecordError::Store("the recorder stopped".into()))?;
        committed
            .await
            .map_err(|_| RecordError::Store("the recorder stopped".into()))?
    }
}

async fn write_group(store: &EventStore, group: Vec<Waiting>) {
    let streams: Vec<String> = group
        .iter()
        .map(|(a, _)| transmission_stream_id(a.item_id))
        .collect();
    let existing: Result<Vec<String>, sqlx::Error> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
          WHERE aggregate_type = 'transmission' AND aggregate_id = ANY ($1)",
    )
    .bind(&streams)
    .fetch_all(store.pool())
    .await;
    let existing: HashSet<String> = match existing {
        Ok(found) => found.into_iter().collect(),
        Err(error) => {
            let error = error.to_string();
            for (_, done) in group {
                let _ = done.send(Err(RecordError::Store(error.clone())));
            }
            return;
        }
    };
    let mut opened: HashSet<&str> = HashSet::new();
    let mut fresh = Vec::new();
    let mut one_by_one = Vec::new();
    for ((attempt, done), stream) in group.into_iter().zip(&streams) {
        if existing.contains(stream) || !opened.insert(stream.as_str()) {
            one_by_one.push((attempt, done));
        } else {
            fresh.push((stream.clone(), attempt, done));
        }
    }
    let mut decided = Vec::new();
    let mut rows = EventRows::default();
    for (stream, attempt, done) in fresh {
        match Transmission::default().decide(attempt.clone()) {
            Ok(event) => {
                rows.push(&stream, &event);
                decided.push((attempt, done));
            }
            Err(error) => {
                let _ = done.send(Err(RecordError::Store(error.to_string())));
            }
        }
    }
    if !decided.is_empty() {
        match rows.insert(store.pool()).await {
            Ok(()) => {
                for (_, done) in decided {
                    let _ = done.send(Ok(()));
                }
                // Wake the log readers as the store does after its commits.
                let _ = sqlx::query("SELECT pg_notify('events', '')")
                    .execute(store.pool())
                    .await;
            }
            // A stream opened meanwhile by another writer: each through the command path.
            Err(_) => one_by_one.extend(decided),
        }
    }
    for (attempt, done) in one_by_one {
        let _ = done.send(record_one(store, attempt).await);
    }
}

/// New streams' first events, as columns for one insert.
#[derive(Default)]
struct EventRows {
    ids: Vec<String>,
    types: Vec<String>,
    payloads: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
}

impl EventRows {
    fn push(&mut self, stream: &str, event: &TransmissionEvent) {
        let metadata = CommandMetadata::new(ACTOR);
        self.ids.push(stream.to_string());
        self.types.push(event.event_type());
        self.payloads
            .push(serde_json::to_value(event).unwrap_or(serde_json::Value::Null));
        self.metadata.push(serde_json::json!({
            "actor": metadata.actor,
            "correlation_id": metadata.correlation_id.to_string(),
        }));
    }

    /// One statement, one transaction: every event at sequence 1 of its stream.
    async fn insert(&self, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO events
                    (aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                     metadata)
             SELECT 'transmission', id, 1, t, '1.0', p, m
               FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::jsonb[]) AS e(id, t, p, m)",
        )
        .bind(&self.ids)
        .bind(&self.types)
        .bind(&self.payloads)
        .bind(&self.metadata)
        .execute(pool)
        .await
        .map(|_| ())
    }
}

/// Why an attempt could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("unknown channel code '{0}'")]
    UnknownChannel(String),
    #[error("{0}")]
    Store(String),
}
