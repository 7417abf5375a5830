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
}

impl EventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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
            context
                .aggregate
                .handle(command.clone(), services, &sink)
                .await
                .map_err(CommandError::Domain)?;
            let events = sink.collect().await;
            if events.is_empty() {
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
              WHERE metadata ->> 'idempotency_key' = $3
                AND aggregate_type = $1 AND aggregate_id = $2
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

/// Jittered exponential backoff: up to 1, 2, 4 ... 64 ms, so racing writers spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 1u64 << attempt.min(6);
    Duration::from_micros(rand::thread_rng().gen_range(0..=ceiling * 1000))
}
