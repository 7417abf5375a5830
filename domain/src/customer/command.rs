//! Commands of the customer, and the consent-policy vocabulary they share with events and state.

use crate::catalog_filter;
use crate::course_mode::CourseMode;
use crate::error::Invalid;
use crate::ids::{CatalogId, CustomerId};
use crate::slug::SLUG_MAX;
use crate::validate;
use serde::{Deserialize, Serialize};

/// Longest customer name and catalog title (edX: `max_length=255`).
const TEXT_MAX: usize = 255;
/// Longest identity provider id (edX: `provider_id = SlugField(max_length=50)`).
const PROVIDER_ID_MAX: usize = 50;

/// Where data sharing consent is enforced (edX's `enforce_data_sharing_consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentEnforcement {
    /// The learner is asked on enrollment (edX's default).
    #[default]
    AtEnrollment,
    /// The customer collects consent itself; this service never asks.
    ExternallyManaged,
}

/// A customer's data sharing consent policy. The default is edX's: enabled, at enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentPolicy {
    pub enable_data_sharing_consent: bool,
    pub enforce_data_sharing_consent: ConsentEnforcement,
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        Self {
            enable_data_sharing_consent: true,
            enforce_data_sharing_consent: ConsentEnforcement::AtEnrollment,
        }
    }
}

impl ConsentPolicy {
    /// edX's `requests_data_sharing_consent`: consent is enabled and not managed by the customer.
    pub fn requests_consent(&self) -> bool {
        self.enable_data_sharing_consent
            && self.enforce_data_sharing_consent != ConsentEnforcement::ExternallyManaged
    }

    /// edX's `enforces_data_sharing_consent('at_enrollment')`: the learner must consent before
    /// an enrollment goes through.
    pub fn enforces_at_enrollment(&self) -> bool {
        self.requests_consent()
            && self.enforce_data_sharing_consent == ConsentEnforcement::AtEnrollment
    }
}

/// A command on one customer. The stream id is the customer's uuid, so only the create command
/// names the customer; the others address the stream they are sent to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerCommand {
    CreateCustomer {
        customer_id: CustomerId,
        name: String,
        slug: String,
        consent: ConsentPolicy,
        enable_audit_enrollment: bool,
        enable_audit_data_reporting: bool,
    },
    /// Change any of the settings; the event carries only what changed.
    UpdateCustomer {
        name: Option<String>,
        slug: Option<String>,
        consent: Option<ConsentPolicy>,
        enable_audit_enrollment: Option<bool>,
        enable_audit_data_reporting: Option<bool>,
    },
    /// Soft-delete (edX's `active = False`): the customer's records stay.
    DeactivateCustomer,
    ReactivateCustomer,
    /// Replace the whole branding; `None` means "no value" (edX falls back to default colours).
    SetBranding {
        logo_url: Option<String>,
        primary_color: Option<String>,
        secondary_color: Option<String>,
        tertiary_color: Option<String>,
    },
    /// Link a third-party-auth provider; `default` makes it the one learners are sent to.
    AddIdentityProvider {
        provider_id: String,
        default: bool,
    },
    RemoveIdentityProvider {
        provider_id: String,
    },
    SetDefaultIdentityProvider {
        provider_id: String,
    },
    AddCatalog {
        catalog_id: CatalogId,
        title: String,
        /// Discovery `search/all` query parameters; `{}` selects everything.
        content_filter: serde_json::Value,
        enabled_course_modes: Vec<CourseMode>,
        publish_audit_enrollment_urls: bool,
    },
    /// Change any of a catalog's settings; the event carries only what changed.
    UpdateCatalog {
        catalog_id: CatalogId,
        title: Option<String>,
        content_filter: Option<serde_json::Value>,
        enabled_course_modes: Option<Vec<CourseMode>>,
        publish_audit_enrollment_urls: Option<bool>,
    },
    RemoveCatalog {
        catalog_id: CatalogId,
    },
}

impl CustomerCommand {
    /// Checks the command's own fields; the rules that depend on the customer's state are the
    /// aggregate's.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        match self {
            Self::CreateCustomer { name, slug, .. } => {
                validate::text("name", name, TEXT_MAX)?;
                validate::slug("slug", slug, SLUG_MAX)
            }
            Self::UpdateCustomer { name, slug, .. } => {
                if let Some(name) = name {
                    validate::text("name", name, TEXT_MAX)?;
                }
                slug.as_ref()
                    .map_or(Ok(()), |slug| validate::slug("slug", slug, SLUG_MAX))
            }
            Self::SetBranding {
                logo_url,
                primary_color,
                secondary_color,
                tertiary_color,
            } => {
                if let Some(url) = logo_url {
                    validate::url("logo_url", url)?;
                }
                let colours = [
                    ("primary_color", primary_color),
                    ("secondary_color", secondary_color),
                    ("tertiary_color", tertiary_color),
                ];
                for (field, colour) in colours {
                    if let Some(colour) = colour {
                        validate::hex_colour(field, colour)?;
                    }
                }
                Ok(())
            }
            Self::AddIdentityProvider { provider_id, .. } => {
                validate::slug("provider_id", provider_id, PROVIDER_ID_MAX)
            }
            Self::AddCatalog {
                title,
                content_filter,
                enabled_course_modes,
                ..
            } => {
                validate::text("title", title, TEXT_MAX)?;
                catalog_filter::parse(content_filter)?;
                validate_course_modes(enabled_course_modes)
            }
            Self::UpdateCatalog {
                title,
                content_filter,
                enabled_course_modes,
                ..
            } => {
                if let Some(title) = title {
                    validate::text("title", title, TEXT_MAX)?;
                }
                if let Some(filter) = content_filter {
                    catalog_filter::parse(filter)?;
                }
                enabled_course_modes
                    .as_deref()
                    .map_or(Ok(()), validate_course_modes)
            }
            Self::DeactivateCustomer
            | Self::ReactivateCustomer
            | Self::RemoveIdentityProvider { .. }
            | Self::SetDefaultIdentityProvider { .. }
            | Self::RemoveCatalog { .. } => Ok(()),
        }
    }
}

/// At least one mode, each once: a catalog that enables no mode could enroll nobody.
fn validate_course_modes(modes: &[CourseMode]) -> Result<(), Invalid> {
    const FIELD: &str = "enabled_course_modes";
    if modes.is_empty() {
        return Err(Invalid::new(FIELD, "must enable at least one course mode"));
    }
    for (i, mode) in modes.iter().enumerate() {
        if modes[..i].contains(mode) {
            return Err(Invalid::new(FIELD, format!("lists '{mode}' twice")));
        }
    }
    Ok(())
}
