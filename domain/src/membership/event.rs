//! Events of a learner's memberships. Each carries the learner and the customer, so a projection
//! (the customer's learner list, the learner's active customer) places it without other events.

use crate::ids::{CustomerId, LearnerId};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipEvent {
    /// The learner was invited before registering; the link waits for registration.
    PendingLinkRequested {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// A pending link was withdrawn before the learner registered (edX deletes the pending row).
    PendingLinkCancelled {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// The learner became a member of the customer, active (selected) or not.
    LearnerLinked {
        learner_id: LearnerId,
        customer_id: CustomerId,
        active: bool,
    },
    /// The customer became the learner's active one.
    MembershipActivated {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// The customer stopped being the learner's active one (it stays linked).
    MembershipDeactivated {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// The learner was unlinked (and so made inactive); `is_relinkable` tells whether a later
    /// link is allowed.
    LearnerUnlinked {
        learner_id: LearnerId,
        customer_id: CustomerId,
        is_relinkable: bool,
    },
}

impl MembershipEvent {
    /// The learner the event is about.
    pub fn learner_id(&self) -> LearnerId {
        match self {
            Self::PendingLinkRequested { learner_id, .. }
            | Self::PendingLinkCancelled { learner_id, .. }
            | Self::LearnerLinked { learner_id, .. }
            | Self::MembershipActivated { learner_id, .. }
            | Self::MembershipDeactivated { learner_id, .. }
            | Self::LearnerUnlinked { learner_id, .. } => *learner_id,
        }
    }

    /// The customer the event is about.
    pub fn customer_id(&self) -> CustomerId {
        match self {
            Self::PendingLinkRequested { customer_id, .. }
            | Self::PendingLinkCancelled { customer_id, .. }
            | Self::LearnerLinked { customer_id, .. }
            | Self::MembershipActivated { customer_id, .. }
            | Self::MembershipDeactivated { customer_id, .. }
            | Self::LearnerUnlinked { customer_id, .. } => *customer_id,
        }
    }
}

impl DomainEvent for MembershipEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PendingLinkRequested { .. } => "PendingLinkRequested",
            Self::PendingLinkCancelled { .. } => "PendingLinkCancelled",
            Self::LearnerLinked { .. } => "LearnerLinked",
            Self::MembershipActivated { .. } => "MembershipActivated",
            Self::MembershipDeactivated { .. } => "MembershipDeactivated",
            Self::LearnerUnlinked { .. } => "LearnerUnlinked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
