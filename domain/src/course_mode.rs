//! Enrollment modes (course "tracks") and their order: an upgrade from an audit mode to a paid
//! one is allowed, the way back is not.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An Open edX course mode, spelled as the LMS spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CourseMode {
    Audit,
    Honor,
    Verified,
    Professional,
    NoIdProfessional,
    Credit,
    Masters,
    ExecutiveEducation,
    UnpaidExecutiveEducation,
}

impl CourseMode {
    pub const ALL: [CourseMode; 9] = [
        Self::Audit,
        Self::Honor,
        Self::Verified,
        Self::Professional,
        Self::NoIdProfessional,
        Self::Credit,
        Self::Masters,
        Self::ExecutiveEducation,
        Self::UnpaidExecutiveEducation,
    ];

    /// The modes edX counts as audit (`ENTERPRISE_COURSE_ENROLLMENT_AUDIT_MODES`).
    pub fn is_audit(self) -> bool {
        matches!(self, Self::Audit | Self::Honor)
    }

    /// Moving from `self` to `to` lowers the track: a paid mode back to an audit mode.
    pub fn is_downgrade_to(self, to: CourseMode) -> bool {
        !self.is_audit() && to.is_audit()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Honor => "honor",
            Self::Verified => "verified",
            Self::Professional => "professional",
            Self::NoIdProfessional => "no-id-professional",
            Self::Credit => "credit",
            Self::Masters => "masters",
            Self::ExecutiveEducation => "executive-education",
            Self::UnpaidExecutiveEducation => "unpaid-executive-education",
        }
    }
}

impl fmt::Display for CourseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CourseMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| format!("unknown course mode '{s}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for mode in CourseMode::ALL {
            assert_eq!(mode.as_str().parse::<CourseMode>(), Ok(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        assert!("gold".parse::<CourseMode>().is_err());
    }

    #[test]
    fn only_paid_to_audit_is_a_downgrade() {
        assert!(CourseMode::Verified.is_downgrade_to(CourseMode::Audit));
        assert!(CourseMode::Professional.is_downgrade_to(CourseMode::Honor));
        assert!(!CourseMode::Audit.is_downgrade_to(CourseMode::Verified));
        assert!(!CourseMode::Honor.is_downgrade_to(CourseMode::Audit));
        assert!(!CourseMode::Verified.is_downgrade_to(CourseMode::Professional));
    }
}
