//! Executing commands: load the aggregate from its stream, let it decide, append what it
//! decided. postgres-es's plain event store does the loading (with the domain's upcasters) and
//! the appending; this module adds what a service needs around it:
//!
//! - conflicts (another writer appended to the stream between our load and our append) are
//!   retried from a fresh load, a bounded number of times, with jittered backoff. Every command
//!   is safe to retry this way because the aggregate decides again on the state it then sees;
//! - idempotency: a key travels in the events' metadata, so "was this command already handled"
//!   is answered by the log itself, atomically with the append;
//! - the answer names the global position the command reached, so a client can ask a read
//!   model to catch up to its own write.

use crate::error::{CommandError, Failure};
use crate::metadata::CommandMetadata;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore as _};
use postgres_es::PostgresEventRepository;
use rand::Rng;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::mpsc;

/// Attempts per command before a conflict is reported to the caller.
const MAX_ATTEMPTS: u32 = 16;

/// What a command appended (or, replayed for a repeated idempotency key, had appended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Stream sequence of the stream's last event after the command (0: the stream is empty).
    pub sequence: i64,
    /// Global position of the last event the command appended; `None` when it appended none.
    pub position: Option<i64>,
    /// Types of the appended events, in order.
    pub event_types: Vec<String>,
    /// True when the idempotency key had been handled before and nothing was appended now.
    pub replayed: bool,
}

/// The event store: every aggregate's streams in one `events` table.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    wake_readers: Option<mpsc::Sender<()>>,
}

impl EventStore {
    /// A store on `pool`. Inside a tokio runtime it also starts the task that wakes log readers
    /// after commits (see [`wake_readers`]).
    pub fn new(pool: PgPool) -> Self {
        let wake_readers = tokio::runtime::Handle::try_current()
            .ok()
            .map(|_| wake_readers(pool.clone()));
        Self { pool, wake_readers }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn persisted<A: Aggregate>(&self) -> PersistedEventStore<PostgresEventRepository, A> {
        PersistedEventStore::new_event_store(PostgresEventRepository::new(self.pool.clone()))
            .with_upcasters(domain::upcast::upcasters())
    }

    /// The current state of a stream and its sequence (0 when it has no events).
    pub async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<(A, i64), Failure> {
        let context = self
            .persisted::<A>()
            .load_aggregate(stream_id)
            .await
            .map_err(Failure::from_aggregate)?;
        Ok((context.aggregate, context.current_sequence as i64))
    }

    /// Executes `command` on the stream `stream_id` of aggregate `A`.
    pub async fn execute<A>(
        &self,
        stream_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &CommandMetadata,
    ) -> Result<Appended, CommandError<A::Error>>
    where
        A: Aggregate,
        A::Command: Clone,
    {
        if let Some(key) = &metadata.idempotency_key {
            if let Some(done) = self.handled_before::<A>(stream_id, key).await? {
                return Ok(done);
            }
        }
        let store = self.persisted::<A>();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut context = store
                .load_aggregate(stream_id)
                .await
                .map_err(Failure::from_aggregate)?;
            let sequence = context.current_sequence as i64;
            let sink = EventSink::default();
            let decided = context
                .aggregate
                .handle(command.clone(), services, &sink)
                .await;
            let events = sink.collect().await;
            if decided.is_err() || events.is_empty() {
                // A repeat of a keyed command that committed meanwhile sees its effect and would
                // answer "refused" or "nothing to do": it gets the first outcome instead.
                if let Some(key) = &metadata.idempotency_key {
                    if let Some(done) = self.handled_before::<A>(stream_id, key).await? {
                        return Ok(done);
                    }
                }
                decided.map_err(CommandError::Domain)?;
                return Ok(Appended {
                    sequence,
                    position: None,
                    event_types: Vec::new(),
                    replayed: false,
                });
            }
            let event_types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
            match store.commit(events, context, metadata.to_map()).await {
                Ok(committed) => {
                    if let Some(wake) = &self.wake_readers {
                        // Full means a wake-up is already pending: this commit rides on it.
                        let _ = wake.try_send(());
                    }
                    let last = committed.last().map_or(sequence, |e| e.sequence as i64);
                    let position = self.position_of::<A>(stream_id, last).await?;
                    return Ok(Appended {
                        sequence: last,
                        position: Some(position),
                        event_types,
                        replayed: false,
                    });
                }
                Err(AggregateError::AggregateConflict) => {
                    if let Some(key) = &metadata.idempotency_key {
                        if let Some(done) = self.handled_before::<A>(stream_id, key).await? {
                            return Ok(done);
                        }
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(other) => return Err(Failure::from_aggregate(other).into()),
            }
        }
        Err(Failure::Conflict {
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    async fn position_of<A: Aggregate>(
        &self,
        stream_id: &str,
        sequence: i64,
    ) -> Result<i64, Failure> {
        let position: i64 = sqlx::query_scalar(
            "SELECT global_position FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(A::TYPE)
        .bind(stream_id)
        .bind(sequence)
        .fetch_one(&self.pool)
        .await?;
        Ok(position)
    }

    /// The outcome of an earlier command on this stream with the same idempotency key.
    async fn handled_before<A: Aggregate>(
        &self,
        stream_id: &str,
        key: &str,
    ) -> Result<Option<Appended>, Failure> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT sequence, global_position, event_type FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2
                AND metadata ? 'idempotency_key' AND metadata ->> 'idempotency_key' = $3
              ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(stream_id)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        let Some(&(sequence, position, _)) = rows.last() else {
            return Ok(None);
        };
        Ok(Some(Appended {
            sequence,
            position: Some(position),
            event_types: rows.into_iter().map(|(_, _, t)| t).collect(),
            replayed: true,
        }))
    }
}

/// Starts the task that tells log readers (`LISTEN events`) that something was committed.
///
/// A NOTIFY inside the appending transaction would make every commit take PostgreSQL's global
/// notification lock, serializing commits across the server. Instead, commits only signal this
/// task, which sends one NOTIFY of its own for however many commits arrived meanwhile, at most
/// one every 10 ms. Readers also poll, so a lost wake-up only delays them. The task ends when
/// the last clone of the store is dropped.
fn wake_readers(pool: PgPool) -> mpsc::Sender<()> {
    let (sender, mut commits) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while commits.recv().await.is_some() {
            if let Err(e) = sqlx::query("SELECT pg_notify('events', '')")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "could not notify log readers");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    sender
}

/// Jittered exponential backoff: up to 2, 4, 8 ... 64 ms, so racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 1u64 << attempt.min(6);
    Duration::from_micros(rand::thread_rng().gen_range(0..=ceiling * 1000))
}
