//! Commands on a learner's memberships.

use crate::ids::{CustomerId, LearnerId};
use serde::{Deserialize, Serialize};

/// A command on the memberships of one learner. Every variant names the learner, so the first
/// event of a stream carries it and a command sent to the wrong stream is caught.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipCommand {
    /// Link a learner who has not registered yet (edX's pending link by email): the link waits
    /// for [`MembershipCommand::CompletePendingLinks`].
    RequestPendingLink {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// The learner registered (or logged in): every pending link becomes a membership, and the
    /// most recently requested one becomes the active customer.
    CompletePendingLinks { learner_id: LearnerId },
    /// Link a registered learner to a customer, optionally making it the active customer.
    LinkLearner {
        learner_id: LearnerId,
        customer_id: CustomerId,
        activate: bool,
    },
    /// Make a linked customer the learner's active one (the others become inactive).
    ActivateMembership {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// Leave the learner with no active customer among the linked ones, as far as this one goes.
    DeactivateMembership {
        learner_id: LearnerId,
        customer_id: CustomerId,
    },
    /// Unlink (edX's soft delete: `linked=False, active=False`) or cancel a pending link.
    /// `is_relinkable = false` forbids linking the learner to this customer again.
    UnlinkLearner {
        learner_id: LearnerId,
        customer_id: CustomerId,
        is_relinkable: bool,
    },
}

impl MembershipCommand {
    /// The learner whose stream the command addresses.
    pub fn learner_id(&self) -> LearnerId {
        match self {
            Self::RequestPendingLink { learner_id, .. }
            | Self::CompletePendingLinks { learner_id }
            | Self::LinkLearner { learner_id, .. }
            | Self::ActivateMembership { learner_id, .. }
            | Self::DeactivateMembership { learner_id, .. }
            | Self::UnlinkLearner { learner_id, .. } => *learner_id,
        }
    }
}
