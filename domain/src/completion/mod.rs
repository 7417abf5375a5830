//! Completion: what the LMS reported about one enterprise enrollment (customer x learner x course
//! run), and the service's decision, by edX's rules, of when the learner completed the course and
//! with which grade.
//!
//! Each command records one fact (grade, certificate, course end, incomplete units, upgrade
//! deadline); a fact equal to the one recorded appends no fact event. Then [`decide`] (edX's
//! `get_grades_summary`, `progress_status` and `is_course_completed`) runs on all facts, the
//! enrollment's current mode and the command's `at`:
//! - the first time `course_completed` holds, `CourseCompleted` is appended;
//! - once completed, a decision whose (grade, percent) differs from the last one reported appends
//!   `CompletionGradeChanged`: a new fact; the completion is never edited nor withdrawn.
//!
//! The decision runs even when the fact repeats one already recorded: edX's rules read the clock
//! (a course end or an upgrade deadline passes), so a fact re-sent later may complete the course.
//!
//! The event's grade is Pass, Fail or Audit. edX can send "In Progress" with a completion (an
//! audit learner who finished every unit without a passing grade before the course ended); such
//! an audit completion is reported as `Audit`. A non-audit decision without a verdict ("In
//! Progress") reports nothing until a verdict comes.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{CompletionCommand, LmsFact};
pub use error::CompletionError;
pub use event::{CompletionEvent, GradeLabel, ProgressStatus};

use crate::course_mode::CourseMode;
use crate::ids::{stream_id, CourseRunId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// The stream of one enterprise enrollment's completion: customer x learner x course run.
pub fn completion_stream_id(customer: CustomerId, learner: LearnerId, run: &CourseRunId) -> String {
    stream_id(
        "completion",
        &[&customer.to_string(), &learner.to_string(), &run.0],
    )
}

/// The learner's course grade as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradeFact {
    pub percent: f64,
    pub passed: bool,
    pub passed_at: Option<DateTime<Utc>>,
}

/// The learner's certificate as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CertificateFact {
    pub percent: f64,
    pub passing: bool,
    pub created_at: Option<DateTime<Utc>>,
}

/// Every fact the LMS reported; `None` where nothing was reported yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LmsFacts {
    pub grade: Option<GradeFact>,
    pub certificate: Option<CertificateFact>,
    pub course_end: Option<DateTime<Utc>>,
    pub incomplete_count: Option<u32>,
    pub upgrade_deadline: Option<DateTime<Utc>>,
}

/// edX's grades summary of one enrollment at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub completed_date: Option<DateTime<Utc>>,
    /// `None` is edX's "In Progress" grade.
    pub grade: Option<GradeLabel>,
    /// edX's `is_passing` (an unknown grade counts as not passing).
    pub passing: bool,
    pub percent: Option<f64>,
    pub passed_at: Option<DateTime<Utc>>,
    pub progress_status: ProgressStatus,
    pub course_completed: bool,
}

/// edX's `get_grades_summary` + `progress_status` + `is_course_completed` for an enrollment in
/// `mode`, with `now` as the current time. Pure.
pub fn decide(mode: CourseMode, facts: &LmsFacts, now: DateTime<Utc>) -> Decision {
    let audit = mode.is_audit();
    let passed_at = facts.grade.and_then(|g| g.passed_at);
    let (mut completed_date, grade, passing, percent) = match facts.certificate {
        // Non-audit enrollments: the certificate first.
        Some(cert) if !audit => (
            Some(cert.created_at.or(passed_at).unwrap_or(now)),
            Some(if cert.passing {
                GradeLabel::Pass
            } else {
                GradeLabel::Fail
            }),
            cert.passing,
            Some(cert.percent),
        ),
        _ => grades_data(facts, audit, now),
    };
    if audit && facts.incomplete_count == Some(0) && completed_date.is_none() {
        completed_date = Some(now);
    }
    let progress_status = match completed_date {
        Some(_) if passing => ProgressStatus::Passed,
        Some(_) => ProgressStatus::Failed,
        None => ProgressStatus::InProgress,
    };
    let course_completed = if audit {
        facts.incomplete_count == Some(0) && facts.upgrade_deadline.is_none_or(|d| d < now)
    } else {
        passed_at.is_some() && passing
    };
    Decision {
        completed_date,
        grade,
        passing,
        percent,
        passed_at,
        progress_status,
        course_completed,
    }
}

/// edX's `collect_grades_data`: (completed date, grade, passing, percent).
fn grades_data(
    facts: &LmsFacts,
    audit: bool,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<GradeLabel>, bool, Option<f64>) {
    let Some(grade) = facts.grade else {
        return (None, None, false, None);
    };
    let passing = grade.passed;
    let percent = Some(grade.percent);
    match facts.course_end {
        Some(end) if end < now => {
            let label = match (audit, passing) {
                (true, _) => GradeLabel::Audit,
                (false, true) => GradeLabel::Pass,
                (false, false) => GradeLabel::Fail,
            };
            (Some(end), Some(label), passing, percent)
        }
        _ if passing => (Some(now), Some(GradeLabel::Pass), true, percent),
        _ => (None, None, false, percent),
    }
}

/// The grade label a decision reports: an audit completion without a verdict is `Audit`.
fn reported_grade(decision: &Decision, mode: CourseMode) -> Option<GradeLabel> {
    decision
        .grade
        .or(mode.is_audit().then_some(GradeLabel::Audit))
}

/// The completion last reported to the channels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReportedCompletion {
    pub grade: GradeLabel,
    pub percent: Option<f64>,
    pub completed_at: DateTime<Utc>,
    pub progress_status: ProgressStatus,
}

/// The completion record of one enterprise enrollment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    key: Option<(CustomerId, LearnerId, CourseRunId)>,
    facts: LmsFacts,
    completion: Option<ReportedCompletion>,
}

impl Completion {
    pub fn is_completed(&self) -> bool {
        self.completion.is_some()
    }

    /// What edX's rules decide now, for an enrollment currently in `mode`.
    pub fn decision(&self, mode: CourseMode, at: DateTime<Utc>) -> Decision {
        decide(mode, &self.facts, at)
    }

    /// The completion as last reported (by `CourseCompleted` or `CompletionGradeChanged`).
    pub fn completion(&self) -> Option<&ReportedCompletion> {
        self.completion.as_ref()
    }

    pub fn facts(&self) -> &LmsFacts {
        &self.facts
    }

    /// A command must address the enrollment this stream holds: guards against a caller that
    /// derived the stream id from one key and sent another.
    fn check_key(&self, command: &CompletionCommand) -> Result<(), CompletionError> {
        match &self.key {
            Some((c, l, r))
                if (*c, *l, r)
                    != (
                        command.customer_id,
                        command.learner_id,
                        &command.course_run_id,
                    ) =>
            {
                Err(CompletionError::KeyMismatch)
            }
            _ => Ok(()),
        }
    }

    /// The event recording `fact`, unless it equals the fact already recorded.
    fn fact_event(&self, command: &CompletionCommand) -> Option<CompletionEvent> {
        let (customer_id, learner_id) = (command.customer_id, command.learner_id);
        let course_run_id = command.course_run_id.clone();
        let facts = &self.facts;
        match command.fact {
            LmsFact::RecordGrade {
                percent,
                passed,
                passed_at,
            } => (facts.grade
                != Some(GradeFact {
                    percent,
                    passed,
                    passed_at,
                }))
            .then_some(CompletionEvent::GradeChanged {
                customer_id,
                learner_id,
                course_run_id,
                percent,
                passed,
                passed_at,
            }),
            LmsFact::RecordCertificate {
                percent,
                passing,
                created_at,
            } => (facts.certificate
                != Some(CertificateFact {
                    percent,
                    passing,
                    created_at,
                }))
            .then_some(CompletionEvent::CertificateIssued {
                customer_id,
                learner_id,
                course_run_id,
                percent,
                passing,
                created_at,
            }),
            LmsFact::RecordCourseEnded { ended_at } => (facts.course_end != Some(ended_at))
                .then_some(CompletionEvent::CourseRunEnded {
                    customer_id,
                    learner_id,
                    course_run_id,
                    ended_at,
                }),
            LmsFact::RecordIncompleteUnits { count } => (facts.incomplete_count != Some(count))
                .then_some(CompletionEvent::IncompleteUnitsCounted {
                    customer_id,
                    learner_id,
                    course_run_id,
                    count,
                }),
            // "No deadline" and "none reported yet" decide alike, so they count as equal.
            LmsFact::RecordUpgradeDeadline { deadline } => (facts.upgrade_deadline != deadline)
                .then_some(CompletionEvent::UpgradeDeadlineSet {
                    customer_id,
                    learner_id,
                    course_run_id,
                    deadline,
                }),
        }
    }

    /// The completion event the current facts call for, if any.
    fn decision_event(&self, command: &CompletionCommand) -> Option<CompletionEvent> {
        let decision = decide(command.mode, &self.facts, command.at);
        let grade = reported_grade(&decision, command.mode)?;
        let (customer_id, learner_id) = (command.customer_id, command.learner_id);
        let course_run_id = command.course_run_id.clone();
        let percent = decision.percent;
        let completed_at = decision.completed_date.unwrap_or(command.at);
        let progress_status = decision.progress_status;
        match &self.completion {
            None if decision.course_completed => Some(CompletionEvent::CourseCompleted {
                customer_id,
                learner_id,
                course_run_id,
                grade,
                percent,
                completed_at,
                progress_status,
            }),
            Some(last) if (last.grade, last.percent) != (grade, percent) => {
                Some(CompletionEvent::CompletionGradeChanged {
                    customer_id,
                    learner_id,
                    course_run_id,
                    grade,
                    percent,
                    completed_at,
                    progress_status,
                })
            }
            _ => None,
        }
    }
}

impl Aggregate for Completion {
    const TYPE: &'static str = "completion";
    type Command = CompletionCommand;
    type Event = CompletionEvent;
    type Error = CompletionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        command.validate()?;
        self.check_key(&command)?;
        if let Some(event) = self.fact_event(&command) {
            sink.write(event, self).await;
        }
        if let Some(event) = self.decision_event(&command) {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use CompletionEvent as E;
        let (customer_id, learner_id, course_run_id) = event.key();
        self.key = Some((customer_id, learner_id, course_run_id.clone()));
        match event {
            E::GradeChanged {
                percent,
                passed,
                passed_at,
                ..
            } => {
                self.facts.grade = Some(GradeFact {
                    percent,
                    passed,
                    passed_at,
                })
            }
            E::CertificateIssued {
                percent,
                passing,
                created_at,
                ..
            } => {
                self.facts.certificate = Some(CertificateFact {
                    percent,
                    passing,
                    created_at,
                })
            }
            E::CourseRunEnded { ended_at, .. } => self.facts.course_end = Some(ended_at),
            E::IncompleteUnitsCounted { count, .. } => self.facts.incomplete_count = Some(count),
            E::UpgradeDeadlineSet { deadline, .. } => self.facts.upgrade_deadline = deadline,
            E::CourseCompleted {
                grade,
                percent,
                completed_at,
                progress_status,
                ..
            }
            | E::CompletionGradeChanged {
                grade,
                percent,
                completed_at,
                progress_status,
                ..
            } => {
                self.completion = Some(ReportedCompletion {
                    grade,
                    percent,
                    completed_at,
                    progress_status,
                })
            }
        }
    }
}
