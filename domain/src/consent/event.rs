//! Events of the consent record. Each carries the whole key, so a projection or an auditor needs
//! no other event to place it.

use super::command::{ConsentSource, ConsentSubject};
use crate::ids::{CustomerId, LearnerId};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConsentEvent {
    ConsentGranted {
        customer_id: CustomerId,
        learner_id: LearnerId,
        subject: ConsentSubject,
        source: ConsentSource,
    },
    ConsentDeclined {
        customer_id: CustomerId,
        learner_id: LearnerId,
        subject: ConsentSubject,
        source: ConsentSource,
    },
    ConsentRevoked {
        customer_id: CustomerId,
        learner_id: LearnerId,
        subject: ConsentSubject,
        source: ConsentSource,
    },
}

impl DomainEvent for ConsentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ConsentGranted { .. } => "ConsentGranted",
            Self::ConsentDeclined { .. } => "ConsentDeclined",
            Self::ConsentRevoked { .. } => "ConsentRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
