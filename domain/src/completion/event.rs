//! Events of the completion record: the LMS's facts as recorded, and the service's decisions.
//! Each carries the whole key, so a projection (the progress report, the integration outbox)
//! needs no other event to place it.

use crate::ids::{CourseRunId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

/// The grade reported with a completion (edX's `GRADE_PASSING`, `GRADE_FAILING`, `GRADE_AUDIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GradeLabel {
    Pass,
    Fail,
    Audit,
}

/// edX's `progress_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressStatus {
    Passed,
    Failed,
    #[serde(rename = "In Progress")]
    InProgress,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CompletionEvent {
    /// The learner's course grade changed.
    GradeChanged {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        percent: f64,
        passed: bool,
        passed_at: Option<DateTime<Utc>>,
    },
    /// A certificate was issued, or re-issued with other values.
    CertificateIssued {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        percent: f64,
        passing: bool,
        created_at: Option<DateTime<Utc>>,
    },
    /// The course run has (or got a new) end date.
    CourseRunEnded {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        ended_at: DateTime<Utc>,
    },
    /// The count of course blocks the learner has not completed.
    IncompleteUnitsCounted {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        count: u32,
    },
    /// The run's upgrade deadline (none: the run has no verified-seat deadline).
    UpgradeDeadlineSet {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        deadline: Option<DateTime<Utc>>,
    },
    /// The learner completed the course, by edX's rules: what the channels are sent.
    CourseCompleted {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        grade: GradeLabel,
        /// In [0, 1]; none when the LMS sent no grade (an audit learner who finished every unit).
        percent: Option<f64>,
        completed_at: DateTime<Utc>,
        progress_status: ProgressStatus,
    },
    /// After completion, the reported grade or percent changed: a new fact, the old one stands.
    CompletionGradeChanged {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        grade: GradeLabel,
        percent: Option<f64>,
        completed_at: DateTime<Utc>,
        progress_status: ProgressStatus,
    },
}

impl CompletionEvent {
    /// The enrollment the event is about: customer, learner, course run.
    pub fn key(&self) -> (CustomerId, LearnerId, &CourseRunId) {
        match self {
            Self::GradeChanged {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::CertificateIssued {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::CourseRunEnded {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::IncompleteUnitsCounted {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::UpgradeDeadlineSet {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::CourseCompleted {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::CompletionGradeChanged {
                customer_id,
                learner_id,
                course_run_id,
                ..
            } => (*customer_id, *learner_id, course_run_id),
        }
    }
}

impl DomainEvent for CompletionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::GradeChanged { .. } => "GradeChanged",
            Self::CertificateIssued { .. } => "CertificateIssued",
            Self::CourseRunEnded { .. } => "CourseRunEnded",
            Self::IncompleteUnitsCounted { .. } => "IncompleteUnitsCounted",
            Self::UpgradeDeadlineSet { .. } => "UpgradeDeadlineSet",
            Self::CourseCompleted { .. } => "CourseCompleted",
            Self::CompletionGradeChanged { .. } => "CompletionGradeChanged",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
