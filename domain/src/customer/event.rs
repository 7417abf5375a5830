//! Events of the customer. Each carries the customer id (and the catalog or provider id it is
//! about), so a projection needs no other event to place it.

use super::command::ConsentPolicy;
use crate::course_mode::CourseMode;
use crate::ids::{CatalogId, CustomerId};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    CustomerCreated {
        customer_id: CustomerId,
        name: String,
        slug: String,
        consent: ConsentPolicy,
        enable_audit_enrollment: bool,
        enable_audit_data_reporting: bool,
    },
    /// Only the settings that changed are present.
    CustomerUpdated {
        customer_id: CustomerId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slug: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consent: Option<ConsentPolicy>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enable_audit_enrollment: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enable_audit_data_reporting: Option<bool>,
    },
    CustomerDeactivated {
        customer_id: CustomerId,
    },
    CustomerReactivated {
        customer_id: CustomerId,
    },
    /// The whole branding as it now is.
    BrandingSet {
        customer_id: CustomerId,
        logo_url: Option<String>,
        primary_color: Option<String>,
        secondary_color: Option<String>,
        tertiary_color: Option<String>,
    },
    /// `previous_default` names the provider that stopped being the default because this one
    /// became it (at most one default per customer).
    IdentityProviderAdded {
        customer_id: CustomerId,
        provider_id: String,
        default: bool,
        previous_default: Option<String>,
    },
    IdentityProviderRemoved {
        customer_id: CustomerId,
        provider_id: String,
    },
    /// `previous_default` names the provider that stopped being the default.
    DefaultIdentityProviderSet {
        customer_id: CustomerId,
        provider_id: String,
        previous_default: Option<String>,
    },
    CatalogAdded {
        customer_id: CustomerId,
        catalog_id: CatalogId,
        title: String,
        content_filter: serde_json::Value,
        enabled_course_modes: Vec<CourseMode>,
        publish_audit_enrollment_urls: bool,
    },
    /// Only the settings that changed are present.
    CatalogUpdated {
        customer_id: CustomerId,
        catalog_id: CatalogId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_filter: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled_course_modes: Option<Vec<CourseMode>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        publish_audit_enrollment_urls: Option<bool>,
    },
    CatalogRemoved {
        customer_id: CustomerId,
        catalog_id: CatalogId,
    },
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CustomerCreated { .. } => "CustomerCreated",
            Self::CustomerUpdated { .. } => "CustomerUpdated",
            Self::CustomerDeactivated { .. } => "CustomerDeactivated",
            Self::CustomerReactivated { .. } => "CustomerReactivated",
            Self::BrandingSet { .. } => "BrandingSet",
            Self::IdentityProviderAdded { .. } => "IdentityProviderAdded",
            Self::IdentityProviderRemoved { .. } => "IdentityProviderRemoved",
            Self::DefaultIdentityProviderSet { .. } => "DefaultIdentityProviderSet",
            Self::CatalogAdded { .. } => "CatalogAdded",
            Self::CatalogUpdated { .. } => "CatalogUpdated",
            Self::CatalogRemoved { .. } => "CatalogRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
