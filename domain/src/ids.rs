//! Identifiers of the domain and the deterministic stream ids derived from natural keys.
//!
//! Every aggregate whose uniqueness rule is "one per natural key" (a membership per learner, a
//! consent record per customer x learner x course, an enrollment per customer x learner x run...)
//! lives in a stream whose id is the UUIDv5 of that key. Two racing writers then target the same
//! stream and the loser gets an optimistic-concurrency conflict instead of creating a duplicate.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Namespace of every UUIDv5 stream id of this service (a fixed, random UUID: never change it,
/// or every deterministic stream id changes with it).
const STREAM_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_4c0e_93a2_4f5e_8d17_2c9a_51e0_b7d3);

/// The stream id for a natural key: `kind` names the aggregate, `parts` the key's components.
/// Parts are joined with a unit separator, which cannot occur in any validated key.
pub fn stream_id(kind: &str, parts: &[&str]) -> String {
    let mut name = String::from(kind);
    for part in parts {
        name.push('\u{1f}');
        name.push_str(part);
    }
    Uuid::new_v5(&STREAM_NAMESPACE, name.as_bytes()).to_string()
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An enterprise customer (edX's `EnterpriseCustomer.uuid`).
    CustomerId
);
uuid_id!(
    /// A learner, pseudonymous: personal data lives in the learner directory, never in events.
    LearnerId
);
uuid_id!(
    /// A customer's catalog (edX's `EnterpriseCustomerCatalog.uuid`).
    CatalogId
);
uuid_id!(
    /// A coupon: a batch of codes bought by a customer for one catalog.
    CouponId
);
uuid_id!(
    /// A channel configuration (SAP, Degreed, Cornerstone, xAPI) of one customer.
    ChannelConfigId
);
uuid_id!(
    /// A reference to a secret kept encrypted outside the log.
    SecretRef
);

/// A course key such as `edX+DemoX`: one course, all of its runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CourseKey(pub String);

/// A course-run id such as `course-v1:edX+DemoX+Demo_Course` (or the old `edX/DemoX/Demo_Course`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CourseRunId(pub String);

impl CourseRunId {
    /// The course key this run belongs to, when the id has one of the two Open edX forms.
    pub fn course_key(&self) -> Option<CourseKey> {
        course_key_of_run(&self.0)
    }
}

/// Resolves a course-run id to its course key: `course-v1:Org+Course+Run` and `Org/Course/Run`
/// both give `Org+Course`. Anything else is not a run id and gives `None`.
pub fn course_key_of_run(id: &str) -> Option<CourseKey> {
    let (org, course) = if let Some(rest) = id.strip_prefix("course-v1:") {
        let mut parts = rest.split('+');
        let (org, course, run) = (parts.next()?, parts.next()?, parts.next()?);
        if run.is_empty() || parts.next().is_some() {
            return None;
        }
        (org, course)
    } else {
        let mut parts = id.split('/');
        let (org, course, run) = (parts.next()?, parts.next()?, parts.next()?);
        if run.is_empty() || parts.next().is_some() {
            return None;
        }
        (org, course)
    };
    if org.is_empty() || course.is_empty() {
        return None;
    }
    Some(CourseKey(format!("{org}+{course}")))
}

impl fmt::Display for CourseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CourseRunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_resolve_to_their_course_key() {
        let key = |s: &str| course_key_of_run(s).map(|k| k.0);
        assert_eq!(
            key("course-v1:edX+DemoX+Demo_Course").as_deref(),
            Some("edX+DemoX")
        );
        assert_eq!(key("edX/DemoX/Demo_Course").as_deref(), Some("edX+DemoX"));
        assert_eq!(key("edX+DemoX"), None);
        assert_eq!(key("course-v1:edX+DemoX"), None);
        assert_eq!(key("course-v1:edX+DemoX+"), None);
    }

    #[test]
    fn stream_ids_are_deterministic_and_keyed_by_every_part() {
        let a = stream_id("consent", &["c", "l", "edX+DemoX"]);
        assert_eq!(a, stream_id("consent", &["c", "l", "edX+DemoX"]));
        assert_ne!(a, stream_id("consent", &["c", "l", "edX+Other"]));
        assert_ne!(a, stream_id("enrollment", &["c", "l", "edX+DemoX"]));
        assert_ne!(stream_id("k", &["ab", "c"]), stream_id("k", &["a", "bc"]));
    }
}
