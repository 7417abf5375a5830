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
//!
//! A successful attempt is recorded with [`Recorder::record_and_complete`]: the row is completed
//! (if the caller still holds its lease) in the same transaction as the group's events, so a
//! group of sends costs one commit, and a completed row never lacks its audit event.

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
use projections::read_models::outbox::{complete, complete_many, ItemAction, OutboxItem};
use std::collections::{BTreeMap, HashSet};
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

/// One attempt waiting for its group: the row to complete with it (under the lease owner
/// named) if any, and where to say whether it was recorded (and completed).
struct Waiting {
    attempt: Attempt,
    complete_as: Option<String>,
    done: oneshot::Sender<Result<bool, RecordError>>,
}

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
        self.enqueue(attempt(item, outcome, request)?, None)
            .await
            .map(|_| ())
    }

    /// Records one attempt and completes its row if `owner` holds the row's lease, in the next
    /// group's transaction. True when the row was completed, false when the lease is not
    /// `owner`'s (the attempt is recorded either way).
    pub async fn record_and_complete(
        &self,
        item: &OutboxItem,
        outcome: &Outcome<'_>,
        request: Option<&Request>,
        owner: &str,
    ) -> Result<bool, RecordError> {
        self.enqueue(attempt(item, outcome, request)?, Some(owner.to_string()))
            .await
    }

    async fn enqueue(
        &self,
        attempt: Attempt,
        complete_as: Option<String>,
    ) -> Result<bool, RecordError> {
        let (done, committed) = oneshot::channel();
        let waiting = Waiting {
            attempt,
            complete_as,
            done,
        };
        self.queue
            .send(waiting)
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
        .map(|w| transmission_stream_id(w.attempt.item_id))
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
            for waiting in group {
                let _ = waiting.done.send(Err(RecordError::Store(error.clone())));
            }
            return;
        }
    };
    let mut opened: HashSet<&str> = HashSet::new();
    let mut decided = Vec::new();
    let mut one_by_one = Vec::new();
    let mut rows = EventRows::default();
    for (waiting, stream) in group.into_iter().zip(&streams) {
        if existing.contains(stream) || !opened.insert(stream.as_str()) {
            one_by_one.push(waiting);
            continue;
        }
        match Transmission::default().decide(waiting.attempt.clone()) {
            Ok(event) => {
                rows.push(stream, &event);
                decided.push(waiting);
            }
            Err(error) => {
                let _ = waiting
                    .done
                    .send(Err(RecordError::Store(error.to_string())));
            }
        }
    }
    if !decided.is_empty() {
        match insert_and_complete(store.pool(), &rows, &decided).await {
            Ok(completed) => {
                for waiting in decided {
                    let done = completed.contains(&waiting.attempt.item_id);
                    let _ = waiting.done.send(Ok(done));
                }
            }
            // A stream opened meanwhile by another writer: each through the command path.
            Err(_) => one_by_one.extend(decided),
        }
    }
    for waiting in one_by_one {
        let outcome = record_one(store, waiting.attempt.clone()).await;
        let outcome = match (outcome, &waiting.complete_as) {
            (Ok(()), Some(owner)) => complete(store.pool(), waiting.attempt.item_id, owner)
                .await
                .map_err(|e| RecordError::Store(e.to_string())),
            (outcome, _) => outcome.map(|()| false),
        };
        let _ = waiting.done.send(outcome);
    }
}

/// One transaction: the group's new streams, then the rows to complete, per lease owner.
/// Returns the ids of the rows completed.
async fn insert_and_complete(
    pool: &sqlx::PgPool,
    rows: &EventRows,
    decided: &[Waiting],
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    let mut per_owner: BTreeMap<&str, Vec<uuid::Uuid>> = BTreeMap::new();
    for waiting in decided {
        if let Some(owner) = &waiting.complete_as {
            per_owner
                .entry(owner.as_str())
                .or_default()
                .push(waiting.attempt.item_id);
        }
    }
    let mut tx = pool.begin().await?;
    rows.insert(&mut tx).await?;
    let mut completed = HashSet::new();
    for (owner, items) in per_owner {
        completed.extend(complete_many(&mut tx, owner, &items).await?);
    }
    // Wake the log readers as the store does after its commits (delivered at commit).
    sqlx::query("SELECT pg_notify('events', '')")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(completed)
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

    /// One statement: every event at sequence 1 of its stream.
    async fn insert(&self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
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
        .execute(conn)
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
