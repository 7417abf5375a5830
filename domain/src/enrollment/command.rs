//! Commands on an enterprise enrollment, the key they share with events, and the enrollment
//! sources.

use crate::course_mode::CourseMode;
use crate::error::Invalid;
use crate::ids::{CourseRunId, CustomerId, LearnerId};
use crate::validate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The natural key of an enrollment: one per customer x learner x course run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnrollmentKey {
    pub customer_id: CustomerId,
    pub learner_id: LearnerId,
    pub course_run_id: CourseRunId,
}

impl EnrollmentKey {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        validate::content_key("course_id", &self.course_run_id.0)
    }
}

/// How an enrollment was made: edX's `EnterpriseEnrollmentSource` slugs, spelled as edX spells
/// them, because reports group enrollments by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentSource {
    /// An admin enrolled the learner by hand ("Manage Learners").
    Manual,
    /// The enterprise API's `course_enrollments` endpoint.
    EnterpriseApi,
    /// The admin portal's bulk enrollment.
    CustomerAdmin,
    /// A landing page, the consent page, or a pending license enrollment.
    EnrollmentUrl,
    /// A coupon code or offer redemption.
    OfferRedemption,
    /// The background task that mirrors LMS enrollments into enterprise ones.
    EnrollmentTask,
    /// An operator's management command.
    ManagementCommand,
}

impl EnrollmentSource {
    pub const ALL: [EnrollmentSource; 7] = [
        Self::Manual,
        Self::EnterpriseApi,
        Self::CustomerAdmin,
        Self::EnrollmentUrl,
        Self::OfferRedemption,
        Self::EnrollmentTask,
        Self::ManagementCommand,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::EnterpriseApi => "enterprise_api",
            Self::CustomerAdmin => "customer_admin",
            Self::EnrollmentUrl => "enrollment_url",
            Self::OfferRedemption => "offer_redemption",
            Self::EnrollmentTask => "enrollment_task",
            Self::ManagementCommand => "management_command",
        }
    }
}

impl fmt::Display for EnrollmentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnrollmentSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| format!("unknown enrollment source '{s}'"))
    }
}

/// A command on one enrollment. Every variant carries the whole key, so the first event carries
/// it and a command sent to the wrong stream is caught.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EnrollmentCommand {
    /// Enroll (or re-enroll, or upgrade): a paid mode never goes back to an audit one.
    Enroll {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        mode: CourseMode,
        source: EnrollmentSource,
        /// The coupon or offer redemption that paid for the enrollment, if any.
        redemption_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// Change the mode of an existing enrollment (upgrades only).
    ChangeMode {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        mode: CourseMode,
        at: DateTime<Utc>,
    },
    /// The learner left the course run (edX's `set_unenrolled(True)`); the record is kept.
    Unenroll {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        at: DateTime<Utc>,
    },
    /// The learner came back (edX's `set_unenrolled(False)`).
    Reenroll {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        at: DateTime<Utc>,
    },
    /// Move the enrollment to, or out of, the learner's "saved for later" list.
    SaveForLater {
        customer_id: CustomerId,
        learner_id: LearnerId,
        course_run_id: CourseRunId,
        saved: bool,
    },
}

impl EnrollmentCommand {
    /// The key of the enrollment the command addresses.
    pub fn key(&self) -> EnrollmentKey {
        let (customer_id, learner_id, course_run_id) = match self {
            Self::Enroll {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::ChangeMode {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::Unenroll {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::Reenroll {
                customer_id,
                learner_id,
                course_run_id,
                ..
            }
            | Self::SaveForLater {
                customer_id,
                learner_id,
                course_run_id,
                ..
            } => (customer_id, learner_id, course_run_id),
        };
        EnrollmentKey {
            customer_id: *customer_id,
            learner_id: *learner_id,
            course_run_id: course_run_id.clone(),
        }
    }
}
