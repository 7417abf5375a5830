//! The command of a completion record: one fact from the LMS about one enterprise enrollment.

use crate::course_mode::CourseMode;
use crate::error::Invalid;
use crate::ids::{CourseRunId, CustomerId, LearnerId};
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the LMS reports. Each variant replaces the previous fact of its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LmsFact {
    /// The learner's persistent course grade (`PersistentCourseGrade`): `percent` in [0, 1],
    /// and when the learner first passed.
    RecordGrade {
        percent: f64,
        passed: bool,
        passed_at: Option<DateTime<Utc>>,
    },
    /// A certificate was issued (or re-issued): its grade and whether it is a passing one.
    /// `created_at` may be unknown; the decision then falls back as edX does.
    RecordCertificate {
        percent: f64,
        passing: bool,
        created_at: Option<DateTime<Utc>>,
    },
    /// The course run's end date.
    RecordCourseEnded { ended_at: DateTime<Utc> },
    /// How many course blocks the learner has not completed yet.
    RecordIncompleteUnits { count: u32 },
    /// The run's verified-seat upgrade deadline, if it has one.
    RecordUpgradeDeadline { deadline: Option<DateTime<Utc>> },
}

impl LmsFact {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        match self {
            Self::RecordGrade { percent, .. } | Self::RecordCertificate { percent, .. } => {
                // `contains` is false for NaN, so NaN is refused too.
                if (0.0..=1.0).contains(percent) {
                    Ok(())
                } else {
                    Err(Invalid::new("percent", "must be between 0 and 1"))
                }
            }
            _ => Ok(()),
        }
    }
}

/// A fact about one enterprise enrollment. The key travels with it so the first event carries
/// it; `mode` and `at` are the enrollment's current mode and the service's "now", both inputs
/// of the completion decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionCommand {
    pub customer_id: CustomerId,
    pub learner_id: LearnerId,
    pub course_run_id: CourseRunId,
    pub mode: CourseMode,
    pub at: DateTime<Utc>,
    pub fact: LmsFact,
}

impl CompletionCommand {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        validate::content_key("course_run_id", &self.course_run_id.0)?;
        self.fact.validate()
    }
}
