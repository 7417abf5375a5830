//! Events of an enterprise enrollment. Each carries the whole key, so a projection (the
//! enrollments report, the progress report) places it without other events.

use super::command::EnrollmentSource;
use crate::course_mode::CourseMode;
use crate::ids::{CourseRunId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EnrollmentEvent {
    /// The learner was enrolled for the customer, in a mode, through a source.
    Enrolled {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        mode: CourseMode,
        source: EnrollmentSource,
        redemption_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// The enrollment moved up a track.
    ModeChanged {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        from: CourseMode,
        to: CourseMode,
        at: DateTime<Utc>,
    },
    /// The learner left the run; the enrollment is kept (reports need it) and saved for later.
    Unenrolled {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        at: DateTime<Utc>,
    },
    /// The learner came back to the run.
    Reenrolled {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        at: DateTime<Utc>,
    },
    /// The enrollment was put on, or taken off, the "saved for later" list.
    SavedForLater {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        saved: bool,
    },
}

impl DomainEvent for EnrollmentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Enrolled { .. } => "Enrolled",
            Self::ModeChanged { .. } => "ModeChanged",
            Self::Unenrolled { .. } => "Unenrolled",
            Self::Reenrolled { .. } => "Reenrolled",
            Self::SavedForLater { .. } => "SavedForLater",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
