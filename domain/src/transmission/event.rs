//! Events of a transmission record. Each carries the item's whole key (configuration,
//! customer, channel, action), so the transmission audit needs no other event to place it.

use super::command::{TransmissionAction, TransmissionStatus};
use crate::channel::Channel;
use crate::ids::{ChannelConfigId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransmissionEvent {
    TransmissionAttempted {
        item_id: Uuid,
        config_id: ChannelConfigId,
        customer_id: CustomerId,
        channel: Channel,
        action: TransmissionAction,
        learner_id: Option<LearnerId>,
        attempt: u32,
        status: TransmissionStatus,
        http_status: Option<u16>,
        /// Trimmed and scrubbed (see `excerpt.rs`): no tokens, no email addresses.
        excerpt: Option<String>,
        duration_ms: u64,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for TransmissionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TransmissionAttempted { .. } => "TransmissionAttempted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
