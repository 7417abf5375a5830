//! Rows written with a binary `COPY ... FROM STDIN`: how a rebuild's fold fills its big tables,
//! and how the outbox writes learner inputs of keys its tables have never held.
//!
//! A fold writes whole tables at once into empty tables without indexes
//! ([`Fold::write`](crate::projection::Fold::write)). There, PostgreSQL takes binary `COPY` rows
//! about twice as fast as the same rows bound as arrays and unnested by an `INSERT` (README,
//! Performance). `COPY` has no `ON CONFLICT`, so upserts keep their `UNNEST` statements.
//!
//! The rows are sent as they are encoded, a chunk at a time ([`CopyRows::send_full`]): a table is
//! never held whole in memory as `COPY` data. Each value is encoded by its sqlx
//! [`Encode`] implementation, the same bytes a bound parameter of that type carries: scalar
//! types only (uuid, text, bool, integers, floats, timestamps, jsonb), whose encoding needs no
//! type looked up on the server.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgCopyIn};
use sqlx::{Encode, PgConnection, Postgres};

/// The signature, flags and header extension that open every binary `COPY` stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Bytes encoded before [`CopyRows::send_full`] sends them.
const CHUNK: usize = 1 << 20;

/// A binary `COPY` into one table, fed row by row.
pub struct CopyRows<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: PgArgumentBuffer,
    columns: i16,
    /// Values written in the current row, to catch a row with too few or too many.
    in_row: i16,
    /// The first value that could not be encoded; the copy fails with it.
    error: Option<BoxDynError>,
}

impl<'c> CopyRows<'c> {
    /// Starts `COPY <target> FROM STDIN (FORMAT binary)`, where `target` is the table and its
    /// columns (`"t (a, b)"`), `columns` of them.
    pub async fn start(
        conn: &'c mut PgConnection,
        target: &str,
        columns: i16,
    ) -> Result<Self, sqlx::Error> {
        let copy = conn
            .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
            .await?;
        let mut buf = PgArgumentBuffer::default();
        buf.extend_from_slice(HEADER);
        Ok(CopyRows {
            copy,
            buf,
            columns,
            in_row: columns,
            error: None,
        })
    }

    /// Starts a row; its values follow, in the columns' order, with [`CopyRows::value`].
    pub fn row(&mut self) -> &mut Self {
        self.check_row_complete();
        self.buf.extend_from_slice(&self.columns.to_be_bytes());
        self.in_row = 0;
        self
    }

    /// Adds the next value of the current row (`None` is NULL).
    pub fn value<'q, T: Encode<'q, Postgres>>(&mut self, value: T) -> &mut Self {
        self.in_row += 1;
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let length = match value.encode(&mut self.buf) {
            Ok(IsNull::No) => i32::try_from(self.buf.len() - at - 4)
                .map_err(|_| BoxDynError::from("a value longer than 2 GiB")),
            Ok(IsNull::Yes) => Ok(-1),
            Err(error) => Err(error),
        };
        match length {
            Ok(length) => self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes()),
            Err(error) => {
                self.error.get_or_insert(error);
            }
        }
        self
    }

    /// Sends the rows encoded so far once they fill a chunk.
    pub async fn send_full(&mut self) -> Result<(), sqlx::Error> {
        if self.buf.len() >= CHUNK {
            self.send().await?;
        }
        Ok(())
    }

    /// Sends the rest and ends the copy; returns how many rows PostgreSQL took. A value that
    /// could not be encoded fails the copy, and nothing of it is kept.
    pub async fn finish(mut self) -> Result<u64, sqlx::Error> {
        self.check_row_complete();
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        self.send().await?;
        self.copy.finish().await
    }

    async fn send(&mut self) -> Result<(), sqlx::Error> {
        if let Some(error) = self.error.take() {
            // Dropping the copy ends it with an error on the server.
            return Err(sqlx::Error::Encode(error));
        }
        self.copy.send(&self.buf[..]).await?;
        self.buf.clear();
        Ok(())
    }

    fn check_row_complete(&mut self) {
        if self.in_row != self.columns && self.error.is_none() {
            self.error = Some(
                format!(
                    "a COPY row of {} values where the table takes {}",
                    self.in_row, self.columns
                )
                .into(),
            );
        }
    }
}
