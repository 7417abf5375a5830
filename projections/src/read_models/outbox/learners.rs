//! Learner rules of the outbox: the membership, consent, enrollment and completion inputs, and
//! the completion rows (see the parent module's doc).

use super::inputs::LearnerInputs;
use super::known::{Gates, HeldRows, Known};
use super::queued::{LearnerAction, Queued, QueuedRows};
use crate::projection::ApplyError;
use chrono::{DateTime, Utc};
use domain::channel::Channel;
use domain::completion::CompletionEvent;
use domain::consent::{ConsentEvent, ConsentSubject};
use domain::enrollment::EnrollmentEvent;
use domain::membership::MembershipEvent;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

fn subject(learner_id: Uuid, course_run_id: &str) -> String {
    format!("{learner_id}:{course_run_id}")
}

/// The course key a run's consent is filed under (as the consent aggregate files it).
fn consent_key(course_run_id: &str) -> Result<String, ApplyError> {
    match ConsentSubject::for_course_id(course_run_id) {
        ConsentSubject::Course(key) => Ok(key.0),
        ConsentSubject::Program(_) => Err(ApplyError::Malformed(format!(
            "course run '{course_run_id}' gives no course consent key"
        ))),
    }
}

/// Cancels a learner's pending and held rows with a customer (of one course, or all).
async fn cancel_learner(
    conn: &mut PgConnection,
    customer_id: Uuid,
    learner_id: Uuid,
    course_key: Option<&str>,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox_items SET status = 'cancelled', cancel_reason = $4, updated_at = $5
          WHERE customer_id = $1 AND learner_id = $2 AND kind = 'learner'
            AND ($3::text IS NULL OR course_key = $3) AND status IN ('pending', 'held')",
    )
    .bind(customer_id)
    .bind(learner_id)
    .bind(course_key)
    .bind(reason)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a membership change; a learner no longer linked and active loses their open rows.
/// `configured`: the customers with a configuration (no other customer has open rows).
pub(super) async fn apply_membership(
    conn: &mut PgConnection,
    inputs: &mut LearnerInputs,
    queued: &mut QueuedRows,
    configured: &FxHashSet<Uuid>,
    event: MembershipEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let customer = event.customer_id().0;
    let learner = event.learner_id().0;
    let (state, reason) = match event {
        MembershipEvent::PendingLinkRequested { .. } => {
            (Some((false, false)), "learner not linked")
        }
        MembershipEvent::PendingLinkCancelled { .. } => (None, "learner not linked"),
        MembershipEvent::LearnerLinked { active, .. } => {
            (Some((true, active)), "membership not active")
        }
        MembershipEvent::MembershipActivated { .. } => (Some((true, true)), ""),
        MembershipEvent::MembershipDeactivated { .. } => {
            (Some((true, false)), "membership deactivated")
        }
        MembershipEvent::LearnerUnlinked { .. } => (Some((false, false)), "learner unlinked"),
    };
    inputs.membership(customer, learner, state);
    if state != Some((true, true)) && configured.contains(&customer) {
        queued.flush_for(conn, customer, learner).await?;
        cancel_learner(conn, customer, learner, None, reason, at).await?;
    }
    Ok(())
}

/// Records an enrollment's mode (the enrolled one, then each change). A new enrollment is
/// queued as a registration for the customer's live configurations whose channel sends them
/// (xAPI's `registered` statements), by the same eligibility as a completion. `registering`:
/// the customers with a configuration of such a channel.
pub(super) async fn apply_enrollment(
    conn: &mut PgConnection,
    inputs: &mut LearnerInputs,
    queued: &mut QueuedRows,
    registering: &FxHashSet<Uuid>,
    known: &mut Known,
    event: EnrollmentEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let (customer_id, learner_id, course_run_id, mode, enrolled_at) = match event {
        EnrollmentEvent::Enrolled {
            customer_id,
            learner_id,
            course_run_id,
            mode,
            at,
            ..
        } => (customer_id, learner_id, course_run_id, mode, Some(at)),
        EnrollmentEvent::ModeChanged {
            customer_id,
            learner_id,
            course_run_id,
            to,
            ..
        } => (customer_id, learner_id, course_run_id, to, None),
        _ => return Ok(()),
    };
    let (customer, learner, run) = (customer_id.0, learner_id.0, course_run_id.0);
    inputs.enrollment(customer, learner, &run, mode.as_str(), mode.is_audit());
    let Some(enrolled_at) = enrolled_at else {
        return Ok(());
    };
    if !registering.contains(&customer) {
        return Ok(());
    }
    let configs = known.live.of(conn, customer, REGISTRATION_CHANNELS).await?;
    if configs.is_empty() {
        return Ok(());
    }
    let key = consent_key(&run)?;
    let gate = Gate::read(
        conn,
        inputs,
        &mut known.gates,
        customer,
        learner,
        &run,
        &key,
    )
    .await?;
    let Some(status) = gate.status() else {
        return Ok(());
    };
    let row = LearnerRow {
        customer,
        learner,
        run: &run,
        key: &key,
        action: LearnerAction::Registration,
        subject: format!("{}:registration", subject(learner, &run)),
        payload: json!({
            "course_run_id": run,
            "course_key": key,
            "mode": gate.mode,
            "enrolled_at": enrolled_at,
        }),
        status,
        at,
    };
    for config_id in configs {
        // Registered once per enrollment: a re-enrollment does not register again.
        row.queue(queued, &mut known.held, config_id);
    }
    Ok(())
}

/// Records a course consent: a grant releases the learner's held rows for the course; a decline
/// or revocation, where the customer requests consent, cancels the open ones.
pub(super) async fn apply_consent(
    conn: &mut PgConnection,
    inputs: &mut LearnerInputs,
    queued: &mut QueuedRows,
    configured: &FxHashSet<Uuid>,
    known: &Known,
    event: ConsentEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let (customer_id, learner_id, subject, granted, reason) = match event {
        ConsentEvent::ConsentGranted {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, true, ""),
        ConsentEvent::ConsentDeclined {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, false, "consent declined"),
        ConsentEvent::ConsentRevoked {
            customer_id,
            learner_id,
            subject,
            ..
        } => (customer_id, learner_id, subject, false, "consent revoked"),
    };
    // Program consent does not gate a course's completion here (course-level only).
    let ConsentSubject::Course(course_key) = subject else {
        return Ok(());
    };
    let (customer, learner, key) = (customer_id.0, learner_id.0, course_key.0);
    inputs.consent(customer, learner, &key, granted);
    if !configured.contains(&customer) {
        return Ok(());
    }
    if granted {
        if !known.held.may_exist(customer, learner, &key) {
            return Ok(());
        }
        queued.flush_for(conn, customer, learner).await?;
        sqlx::query(
            "UPDATE outbox_items SET status = 'pending', updated_at = $4
              WHERE customer_id = $1 AND learner_id = $2 AND kind = 'learner'
                AND course_key = $3 AND status = 'held'",
        )
        .bind(customer)
        .bind(learner)
        .bind(&key)
        .bind(at)
        .execute(&mut *conn)
        .await?;
        return Ok(());
    }
    let requests: bool = sqlx::query_scalar(
        "SELECT COALESCE((SELECT requests_consent FROM outbox_customers WHERE customer_id = $1),
                         true)",
    )
    .bind(customer)
    .fetch_one(&mut *conn)
    .await?;
    if requests {
        queued.flush_for(conn, customer, learner).await?;
        cancel_learner(conn, customer, learner, Some(&key), reason, at).await?;
    }
    Ok(())
}

/// After the customer's consent policy changed: open learner rows wait for consent where it is
/// now requested and not answered, are cancelled where it was declined or revoked, and are
/// released where it is granted or no longer requested.
pub(super) async fn regate_customer(
    conn: &mut PgConnection,
    customer_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH gate AS (
             SELECT i.item_id,
                    CASE WHEN NOT cu.requests_consent OR c.granted THEN 'pending'
                         WHEN c.granted IS NULL THEN 'held'
                         ELSE 'cancelled' END AS status
               FROM outbox_items i
               JOIN outbox_customers cu ON cu.customer_id = i.customer_id
               LEFT JOIN outbox_consents c
                      ON c.customer_id = i.customer_id AND c.learner_id = i.learner_id
                         AND c.course_key = i.course_key
              WHERE i.customer_id = $1 AND i.kind = 'learner'
                AND i.status IN ('pending', 'held'))
         UPDATE outbox_items i
            SET status = gate.status, updated_at = $2,
                cancel_reason = CASE WHEN gate.status = 'cancelled'
                                     THEN 'consent not granted' END
           FROM gate
          WHERE i.item_id = gate.item_id AND i.status <> gate.status",
    )
    .bind(customer_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A learner's course run: customer, learner, course run.
pub(super) type RunKey = (Uuid, Uuid, String);

/// What the eligibility of a completion depends on, read from the inputs.
#[derive(Clone, sqlx::FromRow)]
pub(super) struct Gate {
    member: bool,
    mode: Option<String>,
    audit: Option<bool>,
    audit_reporting: bool,
    requests_consent: bool,
    granted: Option<bool>,
}

/// Reads the gates of learners' course runs from the written inputs, in one statement. A run
/// that gives no course consent key is left out (its event fails when applied).
pub(super) async fn read_gates(
    conn: &mut PgConnection,
    runs: &[RunKey],
) -> Result<FxHashMap<RunKey, Gate>, sqlx::Error> {
    let (mut customers, mut learners, mut run_ids, mut keys) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (customer, learner, run) in runs {
        if let Ok(key) = consent_key(run) {
            customers.push(*customer);
            learners.push(*learner);
            run_ids.push(run.as_str());
            keys.push(key);
        }
    }
    let rows: Vec<(Uuid, Uuid, String, Gate)> = sqlx::query(
        "SELECT g.customer_id, g.learner_id, g.course_run_id,
                COALESCE(m.linked AND m.active, false) AS member, e.mode, e.audit,
                COALESCE(cu.enable_audit_enrollment AND cu.enable_audit_data_reporting,
                         false) AS audit_reporting,
                COALESCE(cu.requests_consent, true) AS requests_consent, c.granted
           FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[])
                AS g (customer_id, learner_id, course_run_id, course_key)
           LEFT JOIN outbox_memberships m
                  ON m.customer_id = g.customer_id AND m.learner_id = g.learner_id
           LEFT JOIN outbox_enrollments e
                  ON e.customer_id = g.customer_id AND e.learner_id = g.learner_id
                 AND e.course_run_id = g.course_run_id
           LEFT JOIN outbox_customers cu ON cu.customer_id = g.customer_id
           LEFT JOIN outbox_consents c
                  ON c.customer_id = g.customer_id AND c.learner_id = g.learner_id
                 AND c.course_key = g.course_key",
    )
    .bind(&customers)
    .bind(&learners)
    .bind(&run_ids)
    .bind(&keys)
    .try_map(|row: sqlx::postgres::PgRow| {
        use sqlx::{FromRow, Row};
        Ok((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            Gate::from_row(&row)?,
        ))
    })
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(customer, learner, run, gate)| ((customer, learner, run), gate))
        .collect())
}

impl Gate {
    /// The gate of a learner's course run as the written inputs give it (read with the batch's
    /// other gates, or its customer's, or now: see `Gates`), with what the batch has folded
    /// since and not written yet taken over it: the newer word.
    async fn read(
        conn: &mut PgConnection,
        inputs: &LearnerInputs,
        gates: &mut Gates,
        customer: Uuid,
        learner: Uuid,
        run: &str,
        key: &str,
    ) -> Result<Self, sqlx::Error> {
        let run_key = (customer, learner, run.to_string());
        let written = match gates.get(conn, &run_key).await? {
            Some(gate) => Some(gate),
            None => read_gates(conn, std::slice::from_ref(&run_key))
                .await?
                .remove(&run_key),
        };
        let Some(mut gate) = written else {
            // read_gates answers every run with a consent key, and the caller has its key.
            return Err(sqlx::Error::RowNotFound);
        };
        if let Some(state) = inputs.membership_of(customer, learner) {
            gate.member = state == Some((true, true));
        }
        if let Some((mode, audit)) = inputs.enrollment_of(customer, learner, run) {
            (gate.mode, gate.audit) = (Some(mode.to_string()), Some(audit));
        }
        if let Some(granted) = inputs.consent_of(customer, learner, key) {
            gate.granted = Some(granted);
        }
        Ok(gate)
    }

    /// The status of a new row: `pending`, `held` (consent not answered yet) or none.
    fn status(&self) -> Option<&'static str> {
        let reportable = match self.audit {
            None => false,
            Some(audit) => !audit || self.audit_reporting,
        };
        if !self.member || !reportable {
            return None;
        }
        match (self.requests_consent, self.granted) {
            (false, _) | (true, Some(true)) => Some("pending"),
            (true, None) => Some("held"),
            (true, Some(false)) => None,
        }
    }
}

/// Queues a completion decision for the customer's live configurations that send learner
/// data, by the learner's eligibility (see the parent module's doc).
pub(super) async fn apply_completion(
    conn: &mut PgConnection,
    inputs: &mut LearnerInputs,
    queued: &mut QueuedRows,
    configured: &FxHashSet<Uuid>,
    known: &mut Known,
    event: CompletionEvent,
    at: DateTime<Utc>,
) -> Result<(), ApplyError> {
    let (customer_id, learner_id, course_run_id, grade, percent, completed_at, status, regrade) =
        match event {
            CompletionEvent::CourseCompleted {
                customer_id,
                learner_id,
                course_run_id,
                grade,
                percent,
                completed_at,
                progress_status,
            } => (
                customer_id,
                learner_id,
                course_run_id,
                grade,
                percent,
                completed_at,
                progress_status,
                false,
            ),
            CompletionEvent::CompletionGradeChanged {
                customer_id,
                learner_id,
                course_run_id,
                grade,
                percent,
                completed_at,
                progress_status,
            } => (
                customer_id,
                learner_id,
                course_run_id,
                grade,
                percent,
                completed_at,
                progress_status,
                true,
            ),
            _ => return Ok(()),
        };
    let (customer, learner, run) = (customer_id.0, learner_id.0, course_run_id.0);
    if !configured.contains(&customer) {
        return Ok(());
    }
    let text = |value| {
        serde_json::to_value(value)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| ApplyError::Malformed("grade or status without a name".into()))
    };
    let (grade, status) = (text(json!(grade))?, text(json!(status))?);
    // SAP sends a completion once: a later grade change is not sent again.
    let channels = if regrade {
        COMPLETION_RESEND_CHANNELS
    } else {
        COMPLETION_CHANNELS
    };
    let configs = known.live.of(conn, customer, channels).await?;
    if configs.is_empty() {
        return Ok(());
    }
    let key = consent_key(&run)?;
    let gate = Gate::read(
        conn,
        inputs,
        &mut known.gates,
        customer,
        learner,
        &run,
        &key,
    )
    .await?;
    let Some(status_of_row) = gate.status() else {
        return Ok(());
    };
    let row = LearnerRow {
        customer,
        learner,
        run: &run,
        key: &key,
        action: LearnerAction::Completion,
        subject: subject(learner, &run),
        payload: json!({
            "course_run_id": run,
            "course_key": key,
            "grade": grade,
            "percent": percent,
            "completed_at": completed_at,
            "progress_status": status,
            "mode": gate.mode,
        }),
        status: status_of_row,
        at,
    };
    for config_id in configs {
        row.queue(queued, &mut known.held, config_id);
    }
    Ok(())
}

/// Channels that are sent completions, then grade changes, and enrollments.
const COMPLETION_CHANNELS: &[Channel] = &[
    Channel::Sap,
    Channel::Degreed2,
    Channel::Csod,
    Channel::Xapi,
];
const COMPLETION_RESEND_CHANNELS: &[Channel] = &[Channel::Degreed2, Channel::Csod, Channel::Xapi];
pub(super) const REGISTRATION_CHANNELS: &[Channel] = &[Channel::Xapi];

/// A learner row to queue for one or more configurations.
struct LearnerRow<'a> {
    customer: Uuid,
    learner: Uuid,
    run: &'a str,
    key: &'a str,
    action: LearnerAction,
    subject: String,
    payload: serde_json::Value,
    status: &'static str,
    at: DateTime<Utc>,
}

impl LearnerRow<'_> {
    /// Queues the row for a configuration (written with the batch's others: see `queued.rs`).
    fn queue(&self, queued: &mut QueuedRows, held: &mut HeldRows, config_id: Uuid) {
        if self.status == "held" {
            held.held(self.customer, self.learner, self.key);
        }
        queued.push(Queued {
            config_id,
            customer: self.customer,
            learner: self.learner,
            run: self.run.to_string(),
            key: self.key.to_string(),
            action: self.action,
            subject: self.subject.clone(),
            payload: self.payload.clone(),
            status: self.status,
            at: self.at,
        });
    }
}
