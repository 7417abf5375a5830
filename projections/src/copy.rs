//! Rows written with a binary `COPY ... FROM STDIN`: how a rebuild's fold fills its big tables.
//!
//! A fold writes whole tables at once into empty tables without indexes
//! ([`Fold::write`](crate::projection::Fold::write)). There, PostgreSQL takes binary `COPY` rows
//! about twice as fast as the same rows bound as arrays and unnested by an `INSERT` (README,
//! Performance). `COPY` has no `ON CONFLICT`, so upserts keep their `UNNEST` statements.
//!
//! Each value is encoded by its sqlx [`Encode`] implementation, the same bytes a bound
//! parameter of that type carries: scalar types only (uuid, text, bool, integers, floats,
//! timestamps, jsonb), whose encoding needs no type looked up on the server.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArgumentBuffer;
use sqlx::{Encode, PgConnection, Postgres};

/// The signature, flags and header extension that open every binary `COPY` stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows of one table in PostgreSQL's binary `COPY` format, built row by row and sent with
/// [`CopyRows::copy_into`].
pub struct CopyRows {
    buf: PgArgumentBuffer,
    columns: i16,
    /// Values written in the current row, to catch a row with too few or too many.
    in_row: i16,
    rows: u64,
    /// The first value that could not be encoded; the copy fails with it.
    error: Option<BoxDynError>,
}

impl CopyRows {
    /// An empty set of rows of `columns` values each.
    pub fn new(columns: i16) -> Self {
        let mut buf = PgArgumentBuffer::default();
        buf.extend_from_slice(HEADER);
        CopyRows {
            buf,
            columns,
            in_row: columns,
            rows: 0,
            error: None,
        }
    }

    /// Starts a row; its values follow, in the columns' order, with [`CopyRows::value`].
    pub fn row(&mut self) -> &mut Self {
        self.check_row_complete();
        self.buf.extend_from_slice(&self.columns.to_be_bytes());
        self.in_row = 0;
        self.rows += 1;
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

    /// How many rows were started.
    pub fn len(&self) -> u64 {
        self.rows
    }

    /// Whether no row was started.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
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

    /// Sends the rows with `COPY <target> FROM STDIN (FORMAT binary)`, where `target` is the
    /// table and its columns (`"t (a, b)"`), and returns how many rows PostgreSQL took. Nothing
    /// is sent when there are no rows, or when a value could not be encoded.
    pub async fn copy_into(
        mut self,
        conn: &mut PgConnection,
        target: &str,
    ) -> Result<u64, sqlx::Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        self.check_row_complete();
        if let Some(error) = self.error {
            return Err(sqlx::Error::Encode(error));
        }
        self.buf.extend_from_slice(&(-1_i16).to_be_bytes());
        let mut copy = conn
            .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT binary)"))
            .await?;
        // A failed send drops `copy`, which ends the COPY with an error on the server.
        copy.send(&self.buf[..]).await?;
        copy.finish().await
    }
}
