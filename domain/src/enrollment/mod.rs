//! Enrollment: one learner's enterprise enrollment, for one customer, in one course run (edX's
//! `EnterpriseCourseEnrollment`).
//!
//! The rules, as edX applies them:
//! - a mode may go up (audit to verified), never down from a paid mode to an audit one
//!   (`CourseEnrollmentDowngradeError`); enrolling again in the same mode appends nothing;
//! - an enrollment is never deleted (reports depend on it): unenrolling marks it, and also saves
//!   it for later (`set_unenrolled`); re-enrolling clears both;
//! - enrolling again after an unenrollment re-enrolls, then applies the mode rule.
//!
//! One stream per customer x learner x course run, so two racing enrollments (the API and the
//! background task that mirrors LMS enrollments, edX's ENT-2463) conflict instead of duplicating.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{EnrollmentCommand, EnrollmentKey, EnrollmentSource};
pub use error::EnrollmentError;
pub use event::EnrollmentEvent;

use crate::course_mode::CourseMode;
use crate::ids::{stream_id, CourseRunId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream of one enrollment: customer x learner x course run.
pub fn enrollment_stream_id(customer: CustomerId, learner: LearnerId, run: &CourseRunId) -> String {
    stream_id(
        "enrollment",
        &[&customer.to_string(), &learner.to_string(), &run.0],
    )
}

/// What an existing enrollment holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    key: EnrollmentKey,
    mode: CourseMode,
    source: EnrollmentSource,
    redemption_id: Option<Uuid>,
    enrolled_at: DateTime<Utc>,
    /// Set while the learner is unenrolled (edX's `unenrolled` and `unenrolled_at`).
    unenrolled_at: Option<DateTime<Utc>>,
    saved_for_later: bool,
}

/// The enrollment of one customer x learner x course run; empty until enrolled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    record: Option<Record>,
}

impl Enrollment {
    /// The learner was enrolled at some point (the enrollment exists, active or not).
    pub fn is_enrolled(&self) -> bool {
        self.record.is_some()
    }

    /// The enrollment exists and the learner has not left it.
    pub fn is_active(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.unenrolled_at.is_none())
    }

    pub fn mode(&self) -> Option<CourseMode> {
        self.record.as_ref().map(|r| r.mode)
    }

    /// How the enrollment was first made.
    pub fn source(&self) -> Option<EnrollmentSource> {
        self.record.as_ref().map(|r| r.source)
    }

    pub fn saved_for_later(&self) -> bool {
        self.record.as_ref().is_some_and(|r| r.saved_for_later)
    }

    pub fn key(&self) -> Option<&EnrollmentKey> {
        self.record.as_ref().map(|r| &r.key)
    }

    /// The redemption that paid for the first enrollment, if any.
    pub fn redemption_id(&self) -> Option<Uuid> {
        self.record.as_ref().and_then(|r| r.redemption_id)
    }

    pub fn enrolled_at(&self) -> Option<DateTime<Utc>> {
        self.record.as_ref().map(|r| r.enrolled_at)
    }

    /// When the learner left, while they are unenrolled.
    pub fn unenrolled_at(&self) -> Option<DateTime<Utc>> {
        self.record.as_ref().and_then(|r| r.unenrolled_at)
    }

    /// Whether an `Enroll` in `mode` would be accepted, without writing anything: the service
    /// asks before redeeming a coupon code, so that a refused downgrade does not spend the code.
    pub fn check_enroll(&self, mode: CourseMode) -> Result<(), EnrollmentError> {
        match &self.record {
            Some(r) if r.mode.is_downgrade_to(mode) => Err(EnrollmentError::DowngradeRefused {
                from: r.mode,
                to: mode,
            }),
            _ => Ok(()),
        }
    }

    /// A command must address the enrollment this stream holds: guards against a caller that
    /// derived the stream id from one key and sent another.
    fn check_key(&self, key: &EnrollmentKey) -> Result<(), EnrollmentError> {
        match self.key() {
            Some(own) if own != key => Err(EnrollmentError::KeyMismatch),
            _ => Ok(()),
        }
    }

    fn existing(&self) -> Result<&Record, EnrollmentError> {
        self.record.as_ref().ok_or(EnrollmentError::NotEnrolled)
    }

    /// Decides the events of a command against the current state, before any is applied.
    fn decide(&self, command: EnrollmentCommand) -> Result<Vec<EnrollmentEvent>, EnrollmentError> {
        use EnrollmentCommand as C;
        use EnrollmentEvent as E;
        let EnrollmentKey {
            customer_id,
            learner_id,
            course_run_id,
        } = command.key();
        let mode_changed = |from: CourseMode, to: CourseMode, at| E::ModeChanged {
            customer_id,
            learner_id,
            course_run_id: course_run_id.clone(),
            from,
            to,
            at,
        };
        let reenrolled = |at| E::Reenrolled {
            customer_id,
            learner_id,
            course_run_id: course_run_id.clone(),
            at,
        };
        let events = match command {
            C::Enroll {
                mode,
                source,
                redemption_id,
                at,
                ..
            } => match &self.record {
                None => vec![E::Enrolled {
                    customer_id,
                    learner_id,
                    course_run_id: course_run_id.clone(),
                    mode,
                    source,
                    redemption_id,
                    at,
                }],
                Some(r) => {
                    self.check_enroll(mode)?;
                    let mut events = vec![];
                    if r.unenrolled_at.is_some() {
                        events.push(reenrolled(at));
                    }
                    if r.mode != mode {
                        events.push(mode_changed(r.mode, mode, at));
                    }
                    events
                }
            },
            C::ChangeMode { mode, at, .. } => {
                let r = self.existing()?;
                self.check_enroll(mode)?;
                if r.mode == mode {
                    vec![]
                } else {
                    vec![mode_changed(r.mode, mode, at)]
                }
            }
            C::Unenroll { at, .. } => {
                if self.existing()?.unenrolled_at.is_some() {
                    vec![]
                } else {
                    vec![E::Unenrolled {
                        customer_id,
                        learner_id,
                        course_run_id: course_run_id.clone(),
                        at,
                    }]
                }
            }
            C::Reenroll { at, .. } => {
                if self.existing()?.unenrolled_at.is_some() {
                    vec![reenrolled(at)]
                } else {
                    vec![]
                }
            }
            C::SaveForLater { saved, .. } => {
                if self.existing()?.saved_for_later == saved {
                    vec![]
                } else {
                    vec![E::SavedForLater {
                        customer_id,
                        learner_id,
                        course_run_id: course_run_id.clone(),
                        saved,
                    }]
                }
            }
        };
        Ok(events)
    }
}

impl Aggregate for Enrollment {
    const TYPE: &'static str = "enrollment";
    type Command = EnrollmentCommand;
    type Event = EnrollmentEvent;
    type Error = EnrollmentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let key = command.key();
        key.validate()?;
        self.check_key(&key)?;
        // All events are decided first, so a refused command writes none of them.
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use EnrollmentEvent as E;
        if let E::Enrolled {
            customer_id,
            learner_id,
            course_run_id,
            mode,
            source,
            redemption_id,
            at,
        } = event
        {
            self.record = Some(Record {
                key: EnrollmentKey {
                    customer_id,
                    learner_id,
                    course_run_id,
                },
                mode,
                source,
                redemption_id,
                enrolled_at: at,
                unenrolled_at: None,
                saved_for_later: false,
            });
            return;
        }
        // Every other event follows an `Enrolled` in its stream.
        let Some(record) = self.record.as_mut() else {
            return;
        };
        match event {
            E::Enrolled { .. } => {}
            E::ModeChanged { to, .. } => record.mode = to,
            E::Unenrolled { at, .. } => {
                record.unenrolled_at = Some(at);
                record.saved_for_later = true;
            }
            E::Reenrolled { .. } => {
                record.unenrolled_at = None;
                record.saved_for_later = false;
            }
            E::SavedForLater { saved, .. } => record.saved_for_later = saved,
        }
    }
}
