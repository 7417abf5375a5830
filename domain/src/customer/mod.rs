//! Customer: an enterprise customer (edX's `EnterpriseCustomer`) with its consent policy,
//! audit-track flags, branding, identity providers and catalogs.
//!
//! Rules:
//! - every command but `CreateCustomer` needs a created customer; creating twice is refused;
//! - updates append only what changed, and nothing when nothing changed; deactivating an
//!   inactive customer (or reactivating an active one) appends nothing;
//! - identity provider ids and catalog ids are unique within the customer, and at most one
//!   provider is the default: making one the default takes the flag from the other, and the
//!   event names the provider that lost it;
//! - a catalog enables at least one course mode, each once, and its content filter must parse.
//!
//! Slug uniqueness across customers is the `slug` aggregate's job: this one only records the
//! slug its customer uses.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{ConsentEnforcement, ConsentPolicy, CustomerCommand};
pub use error::CustomerError;
pub use event::CustomerEvent;

use crate::course_mode::CourseMode;
use crate::ids::{CatalogId, CustomerId};
use crate::update::{changed, set};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// The stream of one customer: its own uuid.
pub fn customer_stream_id(id: CustomerId) -> String {
    id.0.to_string()
}

/// The customer's branding (edX's `EnterpriseCustomerBrandingConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub secondary_color: Option<String>,
    pub tertiary_color: Option<String>,
}

/// A third-party-auth provider learners of this customer sign in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityProvider {
    pub provider_id: String,
    pub default: bool,
}

/// A catalog of the customer (edX's `EnterpriseCustomerCatalog`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub id: CatalogId,
    pub title: String,
    pub content_filter: serde_json::Value,
    pub enabled_course_modes: Vec<CourseMode>,
    pub publish_audit_enrollment_urls: bool,
}

/// One enterprise customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    id: Option<CustomerId>,
    name: String,
    slug: String,
    active: bool,
    consent: ConsentPolicy,
    enable_audit_enrollment: bool,
    enable_audit_data_reporting: bool,
    branding: Branding,
    identity_providers: Vec<IdentityProvider>,
    catalogs: Vec<Catalog>,
}

impl Customer {
    pub fn is_created(&self) -> bool {
        self.id.is_some()
    }

    pub fn id(&self) -> Option<CustomerId> {
        self.id
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }

    pub fn consent_policy(&self) -> ConsentPolicy {
        self.consent
    }

    /// Learners may enroll in audit modes.
    pub fn enables_audit_enrollment(&self) -> bool {
        self.enable_audit_enrollment
    }

    /// edX's `enables_audit_data_reporting`: audit learners' data is reported only when audit
    /// enrollment is enabled too.
    pub fn enables_audit_data_reporting(&self) -> bool {
        self.enable_audit_enrollment && self.enable_audit_data_reporting
    }

    pub fn branding(&self) -> &Branding {
        &self.branding
    }

    /// In the order they were added (edX's `identity_provider` is the first).
    pub fn identity_providers(&self) -> &[IdentityProvider] {
        &self.identity_providers
    }

    pub fn default_identity_provider(&self) -> Option<&str> {
        self.identity_providers
            .iter()
            .find(|idp| idp.default)
            .map(|idp| idp.provider_id.as_str())
    }

    pub fn catalog(&self, id: CatalogId) -> Option<&Catalog> {
        self.catalogs.iter().find(|catalog| catalog.id == id)
    }

    /// In the order they were added.
    pub fn catalogs(&self) -> &[Catalog] {
        &self.catalogs
    }

    fn provider(&self, provider_id: &str) -> Option<&IdentityProvider> {
        self.identity_providers
            .iter()
            .find(|idp| idp.provider_id == provider_id)
    }

    /// The event a command appends, if any.
    fn decide(&self, command: CustomerCommand) -> Result<Option<CustomerEvent>, CustomerError> {
        let customer_id = match (self.id, &command) {
            (Some(_), CustomerCommand::CreateCustomer { .. }) => {
                return Err(CustomerError::CustomerAlreadyExists)
            }
            (None, CustomerCommand::CreateCustomer { customer_id, .. }) => *customer_id,
            (Some(id), _) => id,
            (None, _) => return Err(CustomerError::CustomerNotFound),
        };
        command.validate()?;
        let event = match command {
            CustomerCommand::CreateCustomer {
                customer_id: _,
                name,
                slug,
                consent,
                enable_audit_enrollment,
                enable_audit_data_reporting,
            } => CustomerEvent::CustomerCreated {
                customer_id,
                name,
                slug,
                consent,
                enable_audit_enrollment,
                enable_audit_data_reporting,
            },
            CustomerCommand::UpdateCustomer {
                name,
                slug,
                consent,
                enable_audit_enrollment,
                enable_audit_data_reporting,
            } => {
                let name = changed(name, &self.name);
                let slug = changed(slug, &self.slug);
                let consent = changed(consent, &self.consent);
                let audit = changed(enable_audit_enrollment, &self.enable_audit_enrollment);
                let reporting = changed(
                    enable_audit_data_reporting,
                    &self.enable_audit_data_reporting,
                );
                if name.is_none()
                    && slug.is_none()
                    && consent.is_none()
                    && audit.is_none()
                    && reporting.is_none()
                {
                    return Ok(None);
                }
                CustomerEvent::CustomerUpdated {
                    customer_id,
                    name,
                    slug,
                    consent,
                    enable_audit_enrollment: audit,
                    enable_audit_data_reporting: reporting,
                }
            }
            CustomerCommand::DeactivateCustomer if self.active => {
                CustomerEvent::CustomerDeactivated { customer_id }
            }
            CustomerCommand::ReactivateCustomer if !self.active => {
                CustomerEvent::CustomerReactivated { customer_id }
            }
            CustomerCommand::DeactivateCustomer | CustomerCommand::ReactivateCustomer => {
                return Ok(None)
            }
            CustomerCommand::SetBranding {
                logo_url,
                primary_color,
                secondary_color,
                tertiary_color,
            } => {
                let branding = Branding {
                    logo_url,
                    primary_color,
                    secondary_color,
                    tertiary_color,
                };
                if branding == self.branding {
                    return Ok(None);
                }
                CustomerEvent::BrandingSet {
                    customer_id,
                    logo_url: branding.logo_url,
                    primary_color: branding.primary_color,
                    secondary_color: branding.secondary_color,
                    tertiary_color: branding.tertiary_color,
                }
            }
            CustomerCommand::AddIdentityProvider {
                provider_id,
                default,
            } => {
                if self.provider(&provider_id).is_some() {
                    return Err(CustomerError::IdentityProviderAlreadyAdded(provider_id));
                }
                let previous_default = default
                    .then(|| self.default_identity_provider().map(str::to_string))
                    .flatten();
                CustomerEvent::IdentityProviderAdded {
                    customer_id,
                    provider_id,
                    default,
                    previous_default,
                }
            }
            CustomerCommand::RemoveIdentityProvider { provider_id } => {
                if self.provider(&provider_id).is_none() {
                    return Err(CustomerError::IdentityProviderNotFound(provider_id));
                }
                CustomerEvent::IdentityProviderRemoved {
                    customer_id,
                    provider_id,
                }
            }
            CustomerCommand::SetDefaultIdentityProvider { provider_id } => {
                match self.provider(&provider_id) {
                    None => return Err(CustomerError::IdentityProviderNotFound(provider_id)),
                    Some(idp) if idp.default => return Ok(None),
                    Some(_) => CustomerEvent::DefaultIdentityProviderSet {
                        customer_id,
                        provider_id,
                        previous_default: self.default_identity_provider().map(str::to_string),
                    },
                }
            }
            CustomerCommand::AddCatalog {
                catalog_id,
                title,
                content_filter,
                enabled_course_modes,
                publish_audit_enrollment_urls,
            } => {
                if self.catalog(catalog_id).is_some() {
                    return Err(CustomerError::CatalogAlreadyExists(catalog_id));
                }
                CustomerEvent::CatalogAdded {
                    customer_id,
                    catalog_id,
                    title,
                    content_filter,
                    enabled_course_modes,
                    publish_audit_enrollment_urls,
                }
            }
            CustomerCommand::UpdateCatalog {
                catalog_id,
                title,
                content_filter,
                enabled_course_modes,
                publish_audit_enrollment_urls,
            } => {
                let catalog = self
                    .catalog(catalog_id)
                    .ok_or(CustomerError::CatalogNotFound(catalog_id))?;
                let title = changed(title, &catalog.title);
                let filter = changed(content_filter, &catalog.content_filter);
                let modes = changed(enabled_course_modes, &catalog.enabled_course_modes);
                let publish = changed(
                    publish_audit_enrollment_urls,
                    &catalog.publish_audit_enrollment_urls,
                );
                if title.is_none() && filter.is_none() && modes.is_none() && publish.is_none() {
                    return Ok(None);
                }
                CustomerEvent::CatalogUpdated {
                    customer_id,
                    catalog_id,
                    title,
                    content_filter: filter,
                    enabled_course_modes: modes,
                    publish_audit_enrollment_urls: publish,
                }
            }
            CustomerCommand::RemoveCatalog { catalog_id } => {
                if self.catalog(catalog_id).is_none() {
                    return Err(CustomerError::CatalogNotFound(catalog_id));
                }
                CustomerEvent::CatalogRemoved {
                    customer_id,
                    catalog_id,
                }
            }
        };
        Ok(Some(event))
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
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
            CustomerEvent::CustomerCreated {
                customer_id,
                name,
                slug,
                consent,
                enable_audit_enrollment,
                enable_audit_data_reporting,
            } => {
                *self = Self {
                    id: Some(customer_id),
                    name,
                    slug,
                    active: true,
                    consent,
                    enable_audit_enrollment,
                    enable_audit_data_reporting,
                    ..Self::default()
                };
            }
            CustomerEvent::CustomerUpdated {
                name,
                slug,
                consent,
                enable_audit_enrollment,
                enable_audit_data_reporting,
                ..
            } => {
                set(&mut self.name, name);
                set(&mut self.slug, slug);
                set(&mut self.consent, consent);
                set(&mut self.enable_audit_enrollment, enable_audit_enrollment);
                set(
                    &mut self.enable_audit_data_reporting,
                    enable_audit_data_reporting,
                );
            }
            CustomerEvent::CustomerDeactivated { .. } => self.active = false,
            CustomerEvent::CustomerReactivated { .. } => self.active = true,
            CustomerEvent::BrandingSet {
                logo_url,
                primary_color,
                secondary_color,
                tertiary_color,
                ..
            } => {
                self.branding = Branding {
                    logo_url,
                    primary_color,
                    secondary_color,
                    tertiary_color,
                };
            }
            CustomerEvent::IdentityProviderAdded {
                provider_id,
                default,
                ..
            } => {
                if default {
                    for idp in &mut self.identity_providers {
                        idp.default = false;
                    }
                }
                self.identity_providers.push(IdentityProvider {
                    provider_id,
                    default,
                });
            }
            CustomerEvent::IdentityProviderRemoved { provider_id, .. } => {
                self.identity_providers
                    .retain(|idp| idp.provider_id != provider_id);
            }
            CustomerEvent::DefaultIdentityProviderSet { provider_id, .. } => {
                for idp in &mut self.identity_providers {
                    idp.default = idp.provider_id == provider_id;
                }
            }
            CustomerEvent::CatalogAdded {
                catalog_id,
                title,
                content_filter,
                enabled_course_modes,
                publish_audit_enrollment_urls,
                ..
            } => self.catalogs.push(Catalog {
                id: catalog_id,
                title,
                content_filter,
                enabled_course_modes,
                publish_audit_enrollment_urls,
            }),
            CustomerEvent::CatalogUpdated {
                catalog_id,
                title,
                content_filter,
                enabled_course_modes,
                publish_audit_enrollment_urls,
                ..
            } => {
                if let Some(catalog) = self.catalogs.iter_mut().find(|c| c.id == catalog_id) {
                    set(&mut catalog.title, title);
                    set(&mut catalog.content_filter, content_filter);
                    set(&mut catalog.enabled_course_modes, enabled_course_modes);
                    set(
                        &mut catalog.publish_audit_enrollment_urls,
                        publish_audit_enrollment_urls,
                    );
                }
            }
            CustomerEvent::CatalogRemoved { catalog_id, .. } => {
                self.catalogs.retain(|catalog| catalog.id != catalog_id);
            }
        }
    }
}
