//! The learner inputs of one batch (memberships, consents, enrollments), kept in memory and
//! written a table at a time.
//!
//! Most events of the log are learners' (a membership, a consent, an enrollment each), and most
//! learners belong to customers without a channel configuration: for them the outbox only
//! records the inputs. Writing those one statement per event would make the outbox the slowest
//! read model to rebuild, so a batch folds them (the last word per key wins, as it would event
//! by event) and writes them at the end, or before a rule reads the tables, in key order.
//! The completion gate reads the written rows and takes what the batch folded since over them
//! (the `*_of` getters), so a configured learner's completion does not write the batch out;
//! the consent-policy regate reads the tables in SQL and flushes first.
//!
//! A row whose key the tables have never held goes in by a binary `COPY` ([`crate::copy`]),
//! much cheaper than an upsert, and a rebuild inserts almost every key once: [`InsertedKeys`]
//! remembers which keys the read model has inserted, so that only the others are upserted.

use crate::copy::CopyRows;
use crate::projection::{column, in_key_order};
use rustc_hash::FxHashMap;
use rustc_hash::{FxHashSet, FxHasher};
use sqlx::{Connection, PgConnection};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Customer, learner.
type LearnerKey = (Uuid, Uuid);
/// Customer, learner, course key or course run.
type CourseKey = (Uuid, Uuid, String);
/// A membership: linked and active, or `None` for one that is gone (a cancelled invitation).
type Membership = Option<(bool, bool)>;
/// An enrollment: its mode and whether it is audit-only.
type Enrollment = (&'static str, bool);

/// Learner inputs not written yet.
pub(super) struct LearnerInputs {
    /// The keys the read model has inserted (shared by its batches).
    inserted: Arc<InsertedKeys>,
    memberships: FxHashMap<LearnerKey, Membership>,
    /// Granted, per course key.
    consents: FxHashMap<CourseKey, bool>,
    /// Per course run.
    enrollments: FxHashMap<CourseKey, Enrollment>,
}

impl LearnerInputs {
    pub(super) fn new(inserted: Arc<InsertedKeys>) -> Self {
        LearnerInputs {
            inserted,
            memberships: FxHashMap::default(),
            consents: FxHashMap::default(),
            enrollments: FxHashMap::default(),
        }
    }

    pub(super) fn membership(&mut self, customer: Uuid, learner: Uuid, state: Membership) {
        self.memberships.insert((customer, learner), state);
    }

    pub(super) fn consent(&mut self, customer: Uuid, learner: Uuid, key: &str, granted: bool) {
        self.consents
            .insert((customer, learner, key.to_string()), granted);
    }

    pub(super) fn enrollment(
        &mut self,
        customer: Uuid,
        learner: Uuid,
        run: &str,
        mode: &'static str,
        audit: bool,
    ) {
        self.enrollments
            .insert((customer, learner, run.to_string()), (mode, audit));
    }

    /// The membership the batch folded for a learner, if any: linked and active, or `None`
    /// for one that is gone.
    pub(super) fn membership_of(&self, customer: Uuid, learner: Uuid) -> Option<Membership> {
        self.memberships.get(&(customer, learner)).copied()
    }

    /// The course consent the batch folded, if any: granted or not.
    pub(super) fn consent_of(&self, customer: Uuid, learner: Uuid, key: &str) -> Option<bool> {
        self.consents
            .get(&(customer, learner, key.to_string()))
            .copied()
    }

    /// The enrollment the batch folded for a run, if any: its mode and whether it is audit-only.
    pub(super) fn enrollment_of(
        &self,
        customer: Uuid,
        learner: Uuid,
        run: &str,
    ) -> Option<Enrollment> {
        self.enrollments
            .get(&(customer, learner, run.to_string()))
            .copied()
    }

    /// Writes what the batch has folded so far: a `COPY` of the keys never inserted, upserts
    /// for the others. Should the `COPY` meet a row of its key after all (another writer of
    /// the tables), the inserts are undone to a savepoint and every row is upserted.
    pub(super) async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let rows = Rows {
            memberships: hashed("memberships", std::mem::take(&mut self.memberships)),
            consents: hashed("consents", std::mem::take(&mut self.consents)),
            enrollments: hashed("enrollments", std::mem::take(&mut self.enrollments)),
        };
        let fresh = self.inserted.fresh(&rows);
        if fresh.is_empty() {
            return rows.write(conn, &fresh).await;
        }
        let mut savepoint = conn.begin().await?;
        match rows.write(&mut savepoint, &fresh).await {
            Ok(()) => {
                savepoint.commit().await?;
                self.inserted.record(fresh);
                Ok(())
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                savepoint.rollback().await?;
                self.inserted.forget();
                rows.write(conn, &FxHashSet::default()).await
            }
            Err(e) => Err(e),
        }
    }
}

/// The most keys [`InsertedKeys`] remembers (a few tens of megabytes): past it, every row is
/// upserted again.
const MAX_INSERTED: usize = 4_000_000;

/// The hashes of the learner-input keys this instance of the read model has inserted since it
/// began or a rebuild in place last emptied the tables, or `None` once it no longer knows (past
/// [`MAX_INSERTED`], or after another writer's row met one of its inserts). A key outside the
/// set has no row yet unless another writer inserted it, which the `COPY`'s key check then
/// tells; a hash shared by two keys only makes the second an upsert.
#[derive(Debug)]
pub(crate) struct InsertedKeys(Mutex<Option<FxHashSet<u64>>>);

impl Default for InsertedKeys {
    fn default() -> Self {
        InsertedKeys(Mutex::new(Some(FxHashSet::default())))
    }
}

impl InsertedKeys {
    /// The hashes of the keys of `rows` never inserted; none when the set is not known.
    fn fresh(&self, rows: &Rows) -> FxHashSet<u64> {
        let inserted = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(inserted) = inserted.as_ref() else {
            return FxHashSet::default();
        };
        let memberships = rows
            .memberships
            .iter()
            .filter(|(_, _, state)| state.is_some())
            .map(|(hash, _, _)| *hash);
        let consents = rows.consents.iter().map(|(hash, _, _)| *hash);
        let enrollments = rows.enrollments.iter().map(|(hash, _, _)| *hash);
        memberships
            .chain(consents)
            .chain(enrollments)
            .filter(|hash| !inserted.contains(hash))
            .collect()
    }

    fn record(&self, fresh: FxHashSet<u64>) {
        let mut inserted = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = inserted.as_mut() {
            set.extend(fresh);
            if set.len() > MAX_INSERTED {
                *inserted = None;
            }
        }
    }

    fn forget(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The tables were emptied (a rebuild in place): no key is inserted. A writer that inserts
    /// again before the rebuild does is met by the `COPY`'s key check, as any other writer.
    pub(super) fn emptied(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(FxHashSet::default());
    }
}

/// The rows of one table, in key order, each with the hash of its table and key.
fn hashed<K: Hash + Ord, V>(table: &str, rows: FxHashMap<K, V>) -> Vec<(u64, K, V)> {
    in_key_order(rows)
        .into_iter()
        .map(|(key, value)| {
            let mut hasher = FxHasher::default();
            (table, &key).hash(&mut hasher);
            (hasher.finish(), key, value)
        })
        .collect()
}

/// The folded inputs of a flush.
struct Rows {
    memberships: Vec<(u64, LearnerKey, Membership)>,
    consents: Vec<(u64, CourseKey, bool)>,
    enrollments: Vec<(u64, CourseKey, Enrollment)>,
}

impl Rows {
    /// Writes the rows: those whose hash is in `fresh` by a binary `COPY`, the others as
    /// upserts; memberships that are gone are deleted.
    async fn write(
        &self,
        conn: &mut PgConnection,
        fresh: &FxHashSet<u64>,
    ) -> Result<(), sqlx::Error> {
        let gone: Vec<&LearnerKey> = self
            .memberships
            .iter()
            .filter(|(_, _, state)| state.is_none())
            .map(|(_, key, _)| key)
            .collect();
        if !gone.is_empty() {
            sqlx::query(
                "DELETE FROM outbox_memberships m
                  USING UNNEST($1::uuid[], $2::uuid[]) AS g (customer_id, learner_id)
                  WHERE m.customer_id = g.customer_id AND m.learner_id = g.learner_id",
            )
            .bind(column(&gone, |k| k.0))
            .bind(column(&gone, |k| k.1))
            .execute(&mut *conn)
            .await?;
        }
        let (new_memberships, memberships): (Vec<_>, Vec<_>) = self
            .memberships
            .iter()
            .filter_map(|(hash, key, state)| state.map(|s| (hash, key, s)))
            .partition(|(hash, _, _)| fresh.contains(hash));
        let (new_consents, consents): (Vec<_>, Vec<_>) = self
            .consents
            .iter()
            .partition(|(hash, _, _)| fresh.contains(hash));
        let (new_enrollments, enrollments): (Vec<_>, Vec<_>) = self
            .enrollments
            .iter()
            .partition(|(hash, _, _)| fresh.contains(hash));

        if !new_memberships.is_empty() {
            let mut rows = CopyRows::start(
                conn,
                "outbox_memberships (customer_id, learner_id, linked, active)",
                4,
            )
            .await?;
            for (_, (customer, learner), (linked, active)) in &new_memberships {
                rows.row()
                    .value(customer)
                    .value(learner)
                    .value(linked)
                    .value(active);
                rows.send_full().await?;
            }
            rows.finish().await?;
        }
        if !new_consents.is_empty() {
            let mut rows = CopyRows::start(
                conn,
                "outbox_consents (customer_id, learner_id, course_key, granted)",
                4,
            )
            .await?;
            for (_, (customer, learner, key), granted) in &new_consents {
                rows.row()
                    .value(customer)
                    .value(learner)
                    .value(key.as_str())
                    .value(granted);
                rows.send_full().await?;
            }
            rows.finish().await?;
        }
        if !new_enrollments.is_empty() {
            let mut rows = CopyRows::start(
                conn,
                "outbox_enrollments (customer_id, learner_id, course_run_id, mode, audit)",
                5,
            )
            .await?;
            for (_, (customer, learner, run), (mode, audit)) in &new_enrollments {
                rows.row()
                    .value(customer)
                    .value(learner)
                    .value(run.as_str())
                    .value(*mode)
                    .value(audit);
                rows.send_full().await?;
            }
            rows.finish().await?;
        }

        if !memberships.is_empty() {
            sqlx::query(
                "INSERT INTO outbox_memberships (customer_id, learner_id, linked, active)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bool[], $4::bool[])
                 ON CONFLICT (customer_id, learner_id) DO UPDATE
                    SET linked = EXCLUDED.linked, active = EXCLUDED.active",
            )
            .bind(column(&memberships, |r| r.1 .0))
            .bind(column(&memberships, |r| r.1 .1))
            .bind(column(&memberships, |r| r.2 .0))
            .bind(column(&memberships, |r| r.2 .1))
            .execute(&mut *conn)
            .await?;
        }
        if !consents.is_empty() {
            sqlx::query(
                "INSERT INTO outbox_consents (customer_id, learner_id, course_key, granted)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[])
                 ON CONFLICT (customer_id, learner_id, course_key) DO UPDATE
                    SET granted = EXCLUDED.granted",
            )
            .bind(column(&consents, |r| r.1 .0))
            .bind(column(&consents, |r| r.1 .1))
            .bind(column(&consents, |r| r.1 .2.as_str()))
            .bind(column(&consents, |r| r.2))
            .execute(&mut *conn)
            .await?;
        }
        if !enrollments.is_empty() {
            sqlx::query(
                "INSERT INTO outbox_enrollments (customer_id, learner_id, course_run_id, mode, audit)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bool[])
                 ON CONFLICT (customer_id, learner_id, course_run_id) DO UPDATE
                    SET mode = EXCLUDED.mode, audit = EXCLUDED.audit",
            )
            .bind(column(&enrollments, |r| r.1 .0))
            .bind(column(&enrollments, |r| r.1 .1))
            .bind(column(&enrollments, |r| r.1 .2.as_str()))
            .bind(column(&enrollments, |r| r.2 .0))
            .bind(column(&enrollments, |r| r.2 .1))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(consents: &[(Uuid, Uuid, &str)]) -> Rows {
        let consents = consents
            .iter()
            .map(|(customer, learner, key)| ((*customer, *learner, key.to_string()), true))
            .collect();
        Rows {
            memberships: Vec::new(),
            consents: hashed("consents", consents),
            enrollments: Vec::new(),
        }
    }

    #[test]
    fn keys_inserted_before_the_tables_were_emptied_are_fresh_again() {
        let (customer, learner) = (Uuid::new_v4(), Uuid::new_v4());
        let rows = rows_of(&[(customer, learner, "edX+A"), (customer, learner, "edX+B")]);
        let inserted = InsertedKeys::default();
        let fresh = inserted.fresh(&rows);
        assert_eq!(fresh.len(), 2);
        inserted.record(fresh);
        assert!(
            inserted.fresh(&rows).is_empty(),
            "inserted keys are upserted"
        );

        inserted.emptied();
        assert_eq!(inserted.fresh(&rows).len(), 2);

        // A set that no longer knew (another writer's row met an insert) knows again.
        inserted.forget();
        assert!(inserted.fresh(&rows).is_empty());
        inserted.emptied();
        assert_eq!(inserted.fresh(&rows).len(), 2);
    }
}
