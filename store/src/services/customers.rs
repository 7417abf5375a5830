//! Customer slugs are unique across customers. The slug registry (one stream per slug) holds
//! that rule; these functions claim a slug before the customer takes it and release it when the
//! customer lets it go, or when the customer command that needed it is refused.

use crate::command::{Appended, EventStore};
use crate::error::CommandError;
use crate::metadata::CommandMetadata;
use domain::customer::{customer_stream_id, Customer, CustomerCommand, CustomerError};
use domain::ids::CustomerId;
use domain::slug::{slug_stream_id, SlugClaim, SlugCommand, SlugError, SLUG_MAX};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CustomerServiceError {
    #[error(transparent)]
    Slug(CommandError<SlugError>),
    #[error(transparent)]
    Customer(CommandError<CustomerError>),
}

impl CustomerServiceError {
    pub fn kind(&self) -> crate::error::FailureKind {
        match self {
            Self::Slug(e) => e.kind(),
            Self::Customer(e) => e.kind(),
        }
    }
}

/// Runs a customer command, claiming the slug it introduces (create, or update with a new
/// slug) first and releasing the slug it gives up afterwards.
pub async fn execute(
    store: &EventStore,
    customer_id: CustomerId,
    command: CustomerCommand,
    meta: &CommandMetadata,
) -> Result<Appended, CustomerServiceError> {
    let stream = customer_stream_id(customer_id);
    let new_slug = match &command {
        CustomerCommand::CreateCustomer { slug, .. } => Some(slug.clone()),
        CustomerCommand::UpdateCustomer {
            slug: Some(slug), ..
        } => Some(slug.clone()),
        _ => None,
    };
    let Some(new_slug) = new_slug else {
        return store
            .execute::<Customer>(&stream, command, &(), meta)
            .await
            .map_err(CustomerServiceError::Customer);
    };
    let (current, _) = store
        .load::<Customer>(&stream)
        .await
        .map_err(|e| CustomerServiceError::Customer(e.into()))?;
    let old_slug = current.is_created().then(|| current.slug().to_string());
    if old_slug.as_deref() == Some(new_slug.as_str()) {
        return store
            .execute::<Customer>(&stream, command, &(), meta)
            .await
            .map_err(CustomerServiceError::Customer);
    }

    // A malformed slug is the customer command's validation error, on its own field.
    domain::validate::slug("slug", &new_slug, SLUG_MAX).map_err(|invalid| {
        CustomerServiceError::Customer(CommandError::Domain(CustomerError::Invalid(invalid)))
    })?;
    slug_command(
        store,
        &new_slug,
        SlugCommand::ClaimSlug {
            slug: new_slug.clone(),
            customer_id,
        },
        meta,
    )
    .await?;
    match store.execute::<Customer>(&stream, command, &(), meta).await {
        Ok(appended) => {
            if let Some(old) = old_slug {
                let release = SlugCommand::ReleaseSlug {
                    slug: old.clone(),
                    customer_id,
                };
                slug_command(store, &old, release, meta).await?;
            }
            Ok(appended)
        }
        Err(refused) => {
            // The customer did not take the slug: give it back. A release that fails here
            // leaves the slug held by this customer, which a retry of the same command reuses.
            let release = SlugCommand::ReleaseSlug {
                slug: new_slug.clone(),
                customer_id,
            };
            if let Err(e) = slug_command(store, &new_slug, release, meta).await {
                tracing::warn!(error = %e, slug = %new_slug, "could not release a slug after a refused customer command");
            }
            Err(CustomerServiceError::Customer(refused))
        }
    }
}

async fn slug_command(
    store: &EventStore,
    slug: &str,
    command: SlugCommand,
    meta: &CommandMetadata,
) -> Result<Appended, CustomerServiceError> {
    store
        .execute::<SlugClaim>(&slug_stream_id(slug), command, &(), meta)
        .await
        .map_err(CustomerServiceError::Slug)
}
