//! Events of a channel configuration. Each carries the configuration and customer ids, so a
//! projection (the outbox above all) needs no other event to place it. Secrets appear only as
//! references.

use super::command::{some_or_null, ChannelSettings};
use crate::ids::{CatalogId, ChannelConfigId, CustomerId, SecretRef};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelEvent {
    ChannelConfigurationCreated {
        config_id: ChannelConfigId,
        customer_id: CustomerId,
        display_name: String,
        active: bool,
        dry_run: bool,
        catalogs_to_transmit: Vec<CatalogId>,
        transmission_chunk_size: u32,
        disable_learner_data: bool,
        idp_id: Option<String>,
        settings: ChannelSettings,
        secrets: BTreeMap<String, SecretRef>,
    },
    /// Only the settings that changed are present; `idp_id: null` means it was removed.
    ChannelConfigurationUpdated {
        config_id: ChannelConfigId,
        customer_id: CustomerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dry_run: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        catalogs_to_transmit: Option<Vec<CatalogId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transmission_chunk_size: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_learner_data: Option<bool>,
        #[serde(
            default,
            deserialize_with = "some_or_null",
            skip_serializing_if = "Option::is_none"
        )]
        idp_id: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<ChannelSettings>,
    },
    ChannelConfigurationDeactivated {
        config_id: ChannelConfigId,
        customer_id: CustomerId,
    },
    ChannelConfigurationReactivated {
        config_id: ChannelConfigId,
        customer_id: CustomerId,
    },
    /// The secret `name` now refers to another encrypted value.
    ChannelSecretSet {
        config_id: ChannelConfigId,
        customer_id: CustomerId,
        name: String,
        secret: SecretRef,
    },
}

impl DomainEvent for ChannelEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ChannelConfigurationCreated { .. } => "ChannelConfigurationCreated",
            Self::ChannelConfigurationUpdated { .. } => "ChannelConfigurationUpdated",
            Self::ChannelConfigurationDeactivated { .. } => "ChannelConfigurationDeactivated",
            Self::ChannelConfigurationReactivated { .. } => "ChannelConfigurationReactivated",
            Self::ChannelSecretSet { .. } => "ChannelSecretSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
