//! Commands of a channel configuration, and the channel and settings vocabulary they share with
//! events and state.

use crate::error::Invalid;
use crate::ids::{CatalogId, ChannelConfigId, CustomerId, SecretRef};
use crate::validate;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Longest display name (edX: `max_length=255`).
const DISPLAY_NAME_MAX: usize = 255;
/// Longest SAP display name: edX's `SAPSuccessFactorsEnterpriseCustomerConfiguration.is_valid`.
const SAP_DISPLAY_NAME_MAX: usize = 20;
/// Longest identity provider id (the customer's `provider_id`).
const IDP_ID_MAX: usize = 50;
/// Largest transmission chunk: SAP accepts at most 1,000 `ocnCourses` a request, and so does
/// the Cornerstone course list.
const CHUNK_SIZE_MAX: u32 = 1000;
/// Longest free-text setting (company id, user id, locale, provider id).
const SETTING_MAX: usize = 255;

/// The external system a configuration transmits to (edX's `channel_code()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Channel {
    /// SAP SuccessFactors.
    Sap,
    /// Degreed, API v2.
    Degreed2,
    /// Cornerstone OnDemand.
    Csod,
    /// Any xAPI learning record store.
    Xapi,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sap => "SAP",
            Self::Degreed2 => "DEGREED2",
            Self::Csod => "CSOD",
            Self::Xapi => "XAPI",
        }
    }

    /// The names of the secrets the channel's client needs (OAuth client credentials, or the
    /// LRS's basic-auth key and secret).
    pub fn secret_names(self) -> &'static [&'static str] {
        match self {
            Self::Sap | Self::Degreed2 | Self::Csod => &["client_id", "client_secret"],
            Self::Xapi => &["key", "secret"],
        }
    }

    /// edX's default `transmission_chunk_size`: 1 for SAP and Degreed2, 500 otherwise.
    pub fn default_chunk_size(self) -> u32 {
        match self {
            Self::Sap | Self::Degreed2 => 1,
            Self::Csod | Self::Xapi => 500,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose OAuth token SAP completions are sent with (edX's `user_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SapUserType {
    #[default]
    User,
    Admin,
}

/// edX's default SAP `provider_id`.
pub fn default_sap_provider_id() -> String {
    "EDX".to_string()
}

/// The xAPI versions an LRS configuration may speak.
pub const XAPI_VERSIONS: [&str; 2] = ["1.0.1", "1.0.3"];

/// The channel-specific settings; the tag is the channel code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "UPPERCASE")]
pub enum ChannelSettings {
    Sap {
        /// Course and completion paths are appended to it as plain strings (edX), so it
        /// usually ends with `/`.
        base_url: String,
        company_id: String,
        /// The SAP API user the OAuth token is requested for.
        user_id: String,
        user_type: SapUserType,
        #[serde(default = "default_sap_provider_id")]
        provider_id: String,
        additional_locales: Vec<String>,
        transmit_total_hours: bool,
        prevent_self_submit_grades: bool,
    },
    Degreed2 {
        base_url: String,
        /// Used instead of `base_url` to fetch the OAuth token.
        token_fetch_base_url: Option<String>,
    },
    Csod {
        base_url: String,
    },
    Xapi {
        endpoint: String,
        version: String,
    },
}

impl ChannelSettings {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Sap { .. } => Channel::Sap,
            Self::Degreed2 { .. } => Channel::Degreed2,
            Self::Csod { .. } => Channel::Csod,
            Self::Xapi { .. } => Channel::Xapi,
        }
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        match self {
            Self::Sap {
                base_url,
                company_id,
                user_id,
                provider_id,
                additional_locales,
                ..
            } => {
                validate::url("base_url", base_url)?;
                validate::text("company_id", company_id, SETTING_MAX)?;
                validate::text("user_id", user_id, SETTING_MAX)?;
                validate::text("provider_id", provider_id, SETTING_MAX)?;
                for locale in additional_locales {
                    validate::text("additional_locales", locale, SETTING_MAX)?;
                }
                Ok(())
            }
            Self::Degreed2 {
                base_url,
                token_fetch_base_url,
            } => {
                validate::url("base_url", base_url)?;
                token_fetch_base_url
                    .as_ref()
                    .map_or(Ok(()), |url| validate::url("token_fetch_base_url", url))
            }
            Self::Csod { base_url } => validate::url("base_url", base_url),
            Self::Xapi { endpoint, version } => {
                validate::url("endpoint", endpoint)?;
                if XAPI_VERSIONS.contains(&version.as_str()) {
                    Ok(())
                } else {
                    Err(Invalid::new("version", "must be 1.0.1 or 1.0.3"))
                }
            }
        }
    }
}

/// A command on one channel configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelCommand {
    CreateChannelConfiguration {
        config_id: ChannelConfigId,
        customer_id: CustomerId,
        display_name: String,
        active: bool,
        dry_run: bool,
        /// The customer's catalogs to transmit; empty means all of them.
        catalogs_to_transmit: Vec<CatalogId>,
        transmission_chunk_size: u32,
        /// Transmit content only, never completions.
        disable_learner_data: bool,
        /// The identity provider whose remote ids identify learners to the channel.
        idp_id: Option<String>,
        settings: ChannelSettings,
        secrets: BTreeMap<String, SecretRef>,
    },
    /// Change any of the settings; the event carries only what changed. `idp_id: Some(None)`
    /// removes the identity provider. The channel itself cannot change.
    UpdateChannelConfiguration {
        config_id: ChannelConfigId,
        display_name: Option<String>,
        dry_run: Option<bool>,
        catalogs_to_transmit: Option<Vec<CatalogId>>,
        transmission_chunk_size: Option<u32>,
        disable_learner_data: Option<bool>,
        #[serde(default, deserialize_with = "some_or_null")]
        idp_id: Option<Option<String>>,
        settings: Option<ChannelSettings>,
    },
    DeactivateChannelConfiguration,
    ReactivateChannelConfiguration,
    /// Point a secret name at another encrypted value.
    SetChannelSecret {
        name: String,
        secret: SecretRef,
    },
}

/// Deserializes a present field (`null` included) as `Some`, so a missing field stays `None`:
/// tells "leave unchanged" (missing) from "remove" (`null`).
pub(super) fn some_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A display name is required; SAP's must be short enough for SuccessFactors.
pub(super) fn validate_display_name(channel: Channel, name: &str) -> Result<(), Invalid> {
    let max = match channel {
        Channel::Sap => SAP_DISPLAY_NAME_MAX,
        _ => DISPLAY_NAME_MAX,
    };
    validate::text("display_name", name, max)
}

pub(super) fn validate_catalogs(catalogs: &[CatalogId]) -> Result<(), Invalid> {
    for (i, catalog) in catalogs.iter().enumerate() {
        if catalogs[..i].contains(catalog) {
            return Err(Invalid::new(
                "catalogs_to_transmit",
                format!("lists catalog {catalog} twice"),
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_chunk_size(size: u32) -> Result<(), Invalid> {
    if (1..=CHUNK_SIZE_MAX).contains(&size) {
        Ok(())
    } else {
        Err(Invalid::new(
            "transmission_chunk_size",
            format!("must be 1 to {CHUNK_SIZE_MAX}"),
        ))
    }
}

pub(super) fn validate_idp_id(idp_id: &str) -> Result<(), Invalid> {
    validate::slug("idp_id", idp_id, IDP_ID_MAX)
}

pub(super) fn validate_secret_name(channel: Channel, name: &str) -> Result<(), Invalid> {
    if channel.secret_names().contains(&name) {
        Ok(())
    } else {
        Err(Invalid::new(
            "secrets",
            format!(
                "{channel} takes only the secrets {}",
                channel.secret_names().join(", ")
            ),
        ))
    }
}
