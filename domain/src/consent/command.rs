//! Commands of the consent record, and the subject and source vocabulary they share with events.

use crate::error::Invalid;
use crate::ids::{course_key_of_run, CourseKey, CustomerId, LearnerId};
use crate::validate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the consent is about: a course (all of its runs) or a program.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSubject {
    Course(CourseKey),
    Program(Uuid),
}

impl ConsentSubject {
    /// The subject for an id as the LMS sends it: a course-run id resolves to its course key,
    /// so one course-level record answers for every run of the course.
    pub fn for_course_id(course_id: &str) -> Self {
        let key = course_key_of_run(course_id).unwrap_or_else(|| CourseKey(course_id.to_string()));
        Self::Course(key)
    }

    pub(crate) fn key_parts(&self) -> (&'static str, String) {
        match self {
            Self::Course(key) => ("course", key.0.clone()),
            Self::Program(uuid) => ("program", uuid.to_string()),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        match self {
            // A run id would file the consent under a stream of its own instead of the course's.
            Self::Course(key) if course_key_of_run(&key.0).is_some() => Err(Invalid::new(
                "course_id",
                "is a course-run id: consent is kept per course key (use ConsentSubject::for_course_id)",
            )),
            Self::Course(key) => validate::content_key("course_id", &key.0),
            Self::Program(_) => Ok(()),
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    ConsentPage,
    Api,
    Admin,
    CodeRedemption,
}

/// What the learner (or an admin on their behalf) does with the consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Grant consent (from never asked, or again after a decline or revocation).
    Grant,
    /// Decline when asked; a granted consent must be revoked instead.
    Decline,
    /// Take back a granted consent.
    Revoke,
    /// edX's consent API DELETE: leave the consent not granted, whatever it was (a revocation
    /// of a grant, a decline when never asked, nothing when already not granted).
    Refuse,
}

/// A command on one consent record. The key travels with it so the first event carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentCommand {
    pub customer_id: CustomerId,
    pub learner_id: LearnerId,
    pub subject: ConsentSubject,
    pub source: ConsentSource,
    pub action: Action,
}
