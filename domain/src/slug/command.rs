//! Commands of the slug registry.

use crate::ids::CustomerId;
use serde::{Deserialize, Serialize};

/// A command on the claim of one slug. The slug travels with it so the first event carries it
/// and a command sent to the wrong stream is caught.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlugCommand {
    /// Take the slug for a customer (on create, or when a customer changes its slug).
    ClaimSlug {
        slug: String,
        customer_id: CustomerId,
    },
    /// Give the slug back (when its customer moves to another slug), so anyone may claim it.
    ReleaseSlug {
        slug: String,
        customer_id: CustomerId,
    },
}
