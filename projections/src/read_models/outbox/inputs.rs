//! The learner inputs of one batch (memberships, consents, enrollments), kept in memory and
//! written in one statement per table.
//!
//! Most events of the log are learners' (a membership, a consent, an enrollment each), and most
//! learners belong to customers without a channel configuration: for them the outbox only
//! records the inputs. Writing those one statement per event would make the outbox the slowest
//! read model to rebuild, so a batch folds them (the last word per key wins, as it would event
//! by event) and writes them at the end, or before a rule reads the tables, in key order.
//! The completion gate reads the written rows and takes what the batch folded since over them
//! (the `*_of` getters), so a configured learner's completion does not write the batch out;
//! the consent-policy regate reads the tables in SQL and flushes first.

use crate::projection::in_key_order;
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// Customer, learner.
type LearnerKey = (Uuid, Uuid);
/// Customer, learner, course key or course run.
type CourseKey = (Uuid, Uuid, String);

/// Learner inputs not written yet.
#[derive(Default)]
pub(super) struct LearnerInputs {
    /// Linked and active, or `None` for a membership that is gone (a cancelled invitation).
    memberships: HashMap<LearnerKey, Option<(bool, bool)>>,
    /// Granted, per course key.
    consents: HashMap<CourseKey, bool>,
    /// Mode and whether it is audit-only, per course run.
    enrollments: HashMap<CourseKey, (&'static str, bool)>,
}

impl LearnerInputs {
    pub(super) fn membership(
        &mut self,
        customer: Uuid,
        learner: Uuid,
        state: Option<(bool, bool)>,
    ) {
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
    pub(super) fn membership_of(
        &self,
        customer: Uuid,
        learner: Uuid,
    ) -> Option<Option<(bool, bool)>> {
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
    ) -> Option<(&'static str, bool)> {
        self.enrollments
            .get(&(customer, learner, run.to_string()))
            .copied()
    }

    /// Writes what the batch has folded so far, one statement per table.
    pub(super) async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.flush_memberships(conn).await?;
        if !self.consents.is_empty() {
            let (mut customers, mut learners, mut keys, mut granted) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((customer, learner, key), value) in
                in_key_order(std::mem::take(&mut self.consents))
            {
                customers.push(customer);
                learners.push(learner);
                keys.push(key);
                granted.push(value);
            }
            sqlx::query(
                "INSERT INTO outbox_consents (customer_id, learner_id, course_key, granted)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bool[])
                 ON CONFLICT (customer_id, learner_id, course_key) DO UPDATE
                    SET granted = EXCLUDED.granted",
            )
            .bind(customers)
            .bind(learners)
            .bind(keys)
            .bind(granted)
            .execute(&mut *conn)
            .await?;
        }
        if !self.enrollments.is_empty() {
            let (mut customers, mut learners, mut runs, mut modes, mut audits) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ((customer, learner, run), (mode, audit)) in
                in_key_order(std::mem::take(&mut self.enrollments))
            {
                customers.push(customer);
                learners.push(learner);
                runs.push(run);
                modes.push(mode);
                audits.push(audit);
            }
            sqlx::query(
                "INSERT INTO outbox_enrollments (customer_id, learner_id, course_run_id, mode, audit)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bool[])
                 ON CONFLICT (customer_id, learner_id, course_run_id) DO UPDATE
                    SET mode = EXCLUDED.mode, audit = EXCLUDED.audit",
            )
            .bind(customers)
            .bind(learners)
            .bind(runs)
            .bind(modes)
            .bind(audits)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn flush_memberships(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.memberships.is_empty() {
            return Ok(());
        }
        let (mut customers, mut learners, mut linked, mut active) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut gone_customers, mut gone_learners) = (Vec::new(), Vec::new());
        for ((customer, learner), state) in in_key_order(std::mem::take(&mut self.memberships)) {
            match state {
                Some((is_linked, is_active)) => {
                    customers.push(customer);
                    learners.push(learner);
                    linked.push(is_linked);
                    active.push(is_active);
                }
                None => {
                    gone_customers.push(customer);
                    gone_learners.push(learner);
                }
            }
        }
        sqlx::query(
            "WITH gone AS (
                 DELETE FROM outbox_memberships m
                  USING UNNEST($5::uuid[], $6::uuid[]) AS g (customer_id, learner_id)
                  WHERE m.customer_id = g.customer_id AND m.learner_id = g.learner_id)
             INSERT INTO outbox_memberships (customer_id, learner_id, linked, active)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bool[], $4::bool[])
             ON CONFLICT (customer_id, learner_id) DO UPDATE
                SET linked = EXCLUDED.linked, active = EXCLUDED.active",
        )
        .bind(customers)
        .bind(learners)
        .bind(linked)
        .bind(active)
        .bind(gone_customers)
        .bind(gone_learners)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
