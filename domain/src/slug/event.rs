//! Events of the slug registry. Each carries the slug and the customer, so a projection of
//! "which customer has this slug" needs no other event.

use crate::ids::CustomerId;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SlugEvent {
    /// The customer now holds the slug.
    SlugClaimed {
        slug: String,
        customer_id: CustomerId,
    },
    /// The customer gave the slug back; it is free.
    SlugReleased {
        slug: String,
        customer_id: CustomerId,
    },
}

impl DomainEvent for SlugEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SlugClaimed { .. } => "SlugClaimed",
            Self::SlugReleased { .. } => "SlugReleased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
