//! ChannelConfiguration: how one customer's content and completions are transmitted to one
//! external system (edX's `EnterpriseCustomerPluginConfiguration` subclasses and
//! `XAPILRSConfiguration`): SAP SuccessFactors, Degreed (API v2), Cornerstone or an xAPI LRS.
//!
//! Rules:
//! - every command but `CreateChannelConfiguration` needs a created configuration; creating
//!   twice is refused;
//! - the channel never changes: new settings must be for the same channel;
//! - a display name is required (at most 20 characters for SAP, as edX's `is_valid` demands),
//!   chunks are 1 to 1,000 items, catalogs to transmit are listed once each (none = all);
//! - secrets are references to encrypted values kept outside the log, under the names the
//!   channel's client uses;
//! - updates append only what changed; repeating a deactivation, a reactivation or a secret
//!   reference appends nothing.
//!
//! That the catalogs and the identity provider belong to the customer is checked by the service
//! against the `customer` aggregate.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{
    default_sap_provider_id, Channel, ChannelCommand, ChannelSettings, SapUserType, XAPI_VERSIONS,
};
pub use error::ChannelError;
pub use event::ChannelEvent;

use crate::ids::{CatalogId, ChannelConfigId, CustomerId, SecretRef};
use crate::update::{changed, set};
use command::{
    validate_catalogs, validate_chunk_size, validate_display_name, validate_idp_id,
    validate_secret_name,
};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The stream of one channel configuration: its own uuid.
pub fn channel_stream_id(id: ChannelConfigId) -> String {
    id.0.to_string()
}

/// One channel configuration of one customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConfiguration {
    key: Option<(ChannelConfigId, CustomerId)>,
    display_name: String,
    active: bool,
    dry_run: bool,
    catalogs_to_transmit: Vec<CatalogId>,
    transmission_chunk_size: u32,
    disable_learner_data: bool,
    idp_id: Option<String>,
    settings: Option<ChannelSettings>,
    secrets: BTreeMap<String, SecretRef>,
}

impl ChannelConfiguration {
    pub fn is_created(&self) -> bool {
        self.key.is_some()
    }

    pub fn config_id(&self) -> Option<ChannelConfigId> {
        self.key.map(|(config_id, _)| config_id)
    }

    pub fn customer_id(&self) -> Option<CustomerId> {
        self.key.map(|(_, customer_id)| customer_id)
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    pub fn channel(&self) -> Option<Channel> {
        self.settings.as_ref().map(ChannelSettings::channel)
    }

    pub fn settings(&self) -> Option<&ChannelSettings> {
        self.settings.as_ref()
    }

    /// The reference to the encrypted value of the secret `name`.
    pub fn secret(&self, name: &str) -> Option<SecretRef> {
        self.secrets.get(name).copied()
    }

    /// The catalogs to transmit; empty means all of the customer's catalogs.
    pub fn catalogs_to_transmit(&self) -> &[CatalogId] {
        &self.catalogs_to_transmit
    }

    /// Whether content of `catalog` is transmitted (every catalog when none is listed).
    pub fn transmits_catalog(&self, catalog: CatalogId) -> bool {
        self.catalogs_to_transmit.is_empty() || self.catalogs_to_transmit.contains(&catalog)
    }

    pub fn transmission_chunk_size(&self) -> u32 {
        self.transmission_chunk_size
    }

    /// In dry-run mode the worker builds payloads but sends nothing.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn disable_learner_data(&self) -> bool {
        self.disable_learner_data
    }

    pub fn idp_id(&self) -> Option<&str> {
        self.idp_id.as_deref()
    }

    /// The event a command appends, if any.
    fn decide(&self, command: ChannelCommand) -> Result<Option<ChannelEvent>, ChannelError> {
        let ChannelCommand::CreateChannelConfiguration {
            config_id,
            customer_id,
            display_name,
            active,
            dry_run,
            catalogs_to_transmit,
            transmission_chunk_size,
            disable_learner_data,
            idp_id,
            settings,
            secrets,
        } = command
        else {
            return match (self.key, &self.settings) {
                (Some((config_id, customer_id)), Some(settings)) => {
                    self.change(config_id, customer_id, settings, command)
                }
                _ => Err(ChannelError::ConfigurationNotFound),
            };
        };
        if self.is_created() {
            return Err(ChannelError::ConfigurationAlreadyExists);
        }
        let channel = settings.channel();
        validate_display_name(channel, &display_name)?;
        validate_catalogs(&catalogs_to_transmit)?;
        validate_chunk_size(transmission_chunk_size)?;
        idp_id.as_deref().map_or(Ok(()), validate_idp_id)?;
        settings.validate()?;
        for name in secrets.keys() {
            validate_secret_name(channel, name)?;
        }
        Ok(Some(ChannelEvent::ChannelConfigurationCreated {
            config_id,
            customer_id,
            display_name,
            active,
            dry_run,
            catalogs_to_transmit,
            transmission_chunk_size,
            disable_learner_data,
            idp_id,
            settings,
            secrets,
        }))
    }

    /// A command on a created configuration.
    fn change(
        &self,
        config_id: ChannelConfigId,
        customer_id: CustomerId,
        current: &ChannelSettings,
        command: ChannelCommand,
    ) -> Result<Option<ChannelEvent>, ChannelError> {
        let channel = current.channel();
        let event = match command {
            ChannelCommand::CreateChannelConfiguration { .. } => {
                return Err(ChannelError::ConfigurationAlreadyExists)
            }
            ChannelCommand::UpdateChannelConfiguration {
                config_id: requested,
                display_name,
                dry_run,
                catalogs_to_transmit,
                transmission_chunk_size,
                disable_learner_data,
                idp_id,
                settings,
            } => {
                if requested != config_id {
                    return Err(ChannelError::ConfigIdMismatch);
                }
                if let Some(settings) = &settings {
                    if settings.channel() != channel {
                        return Err(ChannelError::ChannelMismatch {
                            configured: channel,
                            requested: settings.channel(),
                        });
                    }
                    settings.validate()?;
                }
                if let Some(name) = &display_name {
                    validate_display_name(channel, name)?;
                }
                catalogs_to_transmit
                    .as_deref()
                    .map_or(Ok(()), validate_catalogs)?;
                transmission_chunk_size.map_or(Ok(()), validate_chunk_size)?;
                idp_id
                    .as_ref()
                    .and_then(Option::as_deref)
                    .map_or(Ok(()), validate_idp_id)?;
                let display_name = changed(display_name, &self.display_name);
                let dry_run = changed(dry_run, &self.dry_run);
                let catalogs = changed(catalogs_to_transmit, &self.catalogs_to_transmit);
                let chunk_size = changed(transmission_chunk_size, &self.transmission_chunk_size);
                let learner_data = changed(disable_learner_data, &self.disable_learner_data);
                let idp_id = changed(idp_id, &self.idp_id);
                let settings = changed(settings, current);
                if display_name.is_none()
                    && dry_run.is_none()
                    && catalogs.is_none()
                    && chunk_size.is_none()
                    && learner_data.is_none()
                    && idp_id.is_none()
                    && settings.is_none()
                {
                    return Ok(None);
                }
                ChannelEvent::ChannelConfigurationUpdated {
                    config_id,
                    customer_id,
                    display_name,
                    dry_run,
                    catalogs_to_transmit: catalogs,
                    transmission_chunk_size: chunk_size,
                    disable_learner_data: learner_data,
                    idp_id,
                    settings,
                }
            }
            ChannelCommand::DeactivateChannelConfiguration if self.active => {
                ChannelEvent::ChannelConfigurationDeactivated {
                    config_id,
                    customer_id,
                }
            }
            ChannelCommand::ReactivateChannelConfiguration if !self.active => {
                ChannelEvent::ChannelConfigurationReactivated {
                    config_id,
                    customer_id,
                }
            }
            ChannelCommand::DeactivateChannelConfiguration
            | ChannelCommand::ReactivateChannelConfiguration => return Ok(None),
            ChannelCommand::SetChannelSecret { name, secret } => {
                validate_secret_name(channel, &name)?;
                if self.secret(&name) == Some(secret) {
                    return Ok(None);
                }
                ChannelEvent::ChannelSecretSet {
                    config_id,
                    customer_id,
                    name,
                    secret,
                }
            }
        };
        Ok(Some(event))
    }
}

impl Aggregate for ChannelConfiguration {
    const TYPE: &'static str = "channel_configuration";
    type Command = ChannelCommand;
    type Event = ChannelEvent;
    type Error = ChannelError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ChannelEvent::ChannelConfigurationCreated {
                config_id,
                customer_id,
                display_name,
                active,
                dry_run,
                catalogs_to_transmit,
                transmission_chunk_size,
                disable_learner_data,
                idp_id,
                settings,
                secrets,
            } => {
                *self = Self {
                    key: Some((config_id, customer_id)),
                    display_name,
                    active,
                    dry_run,
                    catalogs_to_transmit,
                    transmission_chunk_size,
                    disable_learner_data,
                    idp_id,
                    settings: Some(settings),
                    secrets,
                };
            }
            ChannelEvent::ChannelConfigurationUpdated {
                display_name,
                dry_run,
                catalogs_to_transmit,
                transmission_chunk_size,
                disable_learner_data,
                idp_id,
                settings,
                ..
            } => {
                set(&mut self.display_name, display_name);
                set(&mut self.dry_run, dry_run);
                set(&mut self.catalogs_to_transmit, catalogs_to_transmit);
                set(&mut self.transmission_chunk_size, transmission_chunk_size);
                set(&mut self.disable_learner_data, disable_learner_data);
                set(&mut self.idp_id, idp_id);
                set(&mut self.settings, settings.map(Some));
            }
            ChannelEvent::ChannelConfigurationDeactivated { .. } => self.active = false,
            ChannelEvent::ChannelConfigurationReactivated { .. } => self.active = true,
            ChannelEvent::ChannelSecretSet { name, secret, .. } => {
                self.secrets.insert(name, secret);
            }
        }
    }
}
