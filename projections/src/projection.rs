//! What a read model implements to be run by the [`runner`](crate::runner).

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use store::log::LoggedEvent;

/// A read model built from the global log.
///
/// `apply` runs inside the batch's transaction, which also advances the checkpoint, so an
/// event's effects are committed exactly once. It must name its tables without a schema: a
/// rebuild points `search_path` at fresh copies of them.
#[async_trait]
pub trait Projection: Send + Sync {
    /// The checkpoint key, and the prefix of the projection's tables.
    fn name(&self) -> &'static str;

    /// The tables the projection owns: a rebuild empties or replaces exactly these. They have
    /// no serial columns and no foreign keys, so that `CREATE TABLE (LIKE ...)` copies them whole.
    fn tables(&self) -> &'static [&'static str];

    /// The aggregate types whose events the projection applies; `None` (the default) for all.
    /// The runner reads only these from the log: every other event is skipped unread, so this
    /// list must name every type `apply` uses.
    fn reads(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Applies one event. Events of aggregates the projection does not read are simply ignored.
    async fn apply(&self, conn: &mut PgConnection, event: &LoggedEvent) -> Result<(), ApplyError>;

    /// Applies a batch of events, in log order, inside the batch's transaction. The default
    /// applies them one by one; a projection may write a whole batch in a few statements
    /// instead. A failure names the index of the event that could not be applied (the runner
    /// then commits the events before it and stops there).
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&LoggedEvent],
    ) -> Result<(), (usize, ApplyError)> {
        for (index, event) in events.iter().enumerate() {
            self.apply(conn, event)
                .await
                .map_err(|error| (index, error))?;
        }
        Ok(())
    }

    /// Called once a rebuild in place has emptied the tables: the projection forgets what it
    /// remembers of their rows (the default remembers nothing).
    fn tables_emptied(&self) {}

    /// A fold of the log from its first event, held in memory, for a rebuild from empty
    /// tables: nothing needs reading back, and each table is written once at the end. `None`
    /// (the default): the rebuild applies batch by batch. The fold must follow the same rules
    /// as `apply_batch` (the rebuild tests compare the two).
    fn fold_from_zero(&self) -> Option<Box<dyn Fold>> {
        None
    }
}

/// A read model folded in memory from the first event of the log (see
/// [`Projection::fold_from_zero`]).
#[async_trait]
pub trait Fold: Send {
    /// Folds the events, in log order, over the rows held. A failure names the index of the
    /// event that could not be applied; the fold is then dropped, and the rebuild applies the
    /// log batch by batch, which stops at the same event.
    fn apply(&mut self, events: &[&LoggedEvent]) -> Result<(), (usize, ApplyError)>;

    /// How many rows the fold holds: past a limit the rebuild writes them out and goes on batch
    /// by batch.
    fn held(&self) -> usize;

    /// Writes every row held into the read model's tables, which are empty and have no
    /// indexes, not even their keys (the rebuild builds them again after): plain inserts
    /// ([`WriteMode::Insert`]), a binary `COPY` for the big tables ([`crate::copy`]), one row
    /// per key.
    async fn write(self: Box<Self>, conn: &mut PgConnection) -> Result<(), sqlx::Error>;
}

/// How a write of many rows meets the rows already in a read model's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Tables that may hold rows of the same keys: each insert updates the row of its key.
    Upsert,
    /// Empty tables without their keys, during a rebuild's fold ([`Fold::write`]): an
    /// `ON CONFLICT` finds no key to check against, and a plain insert is several times
    /// cheaper than an upsert into a keyed table (a binary `COPY` cheaper still: the big
    /// tables take their rows so).
    Insert,
}

impl WriteMode {
    /// An insert's `ON CONFLICT` clause for an upsert; nothing for a plain insert.
    pub fn on_conflict(self, clause: &str) -> &str {
        match self {
            WriteMode::Upsert => clause,
            WriteMode::Insert => "",
        }
    }
}

/// Why a projection could not apply an event. Either stops the projection: skipping an event
/// would leave the read model silently wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the payload does not decode: {0}")]
    Malformed(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Decodes an event's payload, as the log holds it, into the aggregate's event type.
pub fn decode<E: DeserializeOwned>(event: &LoggedEvent) -> Result<E, ApplyError> {
    serde_json::from_str(event.payload.get()).map_err(|e| ApplyError::Malformed(e.to_string()))
}

/// A value as the JSON a `jsonb` column takes; a value that does not serialize is malformed.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<serde_json::Value, ApplyError> {
    serde_json::to_value(value).map_err(|e| ApplyError::Malformed(e.to_string()))
}

/// The values of one column of `rows`, as an array parameter (for an `UNNEST` of many rows).
pub fn column<'a, R, T>(rows: &'a [R], value: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

/// Rows in the order of their keys, for a write of many rows: a B-tree takes sorted keys page
/// after page, where hash order lands each key on a random page (a rebuild's fold writes whole
/// tables at once).
pub fn in_key_order<K: Ord, V>(rows: impl IntoIterator<Item = (K, V)>) -> Vec<(K, V)> {
    let mut rows: Vec<(K, V)> = rows.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}
