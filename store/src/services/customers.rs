//! Customer slugs are unique across customers. The slug registry (one stream per slug) holds
//! that rule: a customer command that introduces a slug (create, or an update with a new slug)
//! claims it first, and after every such command, whatever its outcome, the customer's claims
//! are reconciled with its current slug: the current slug stays claimed, every other slug the
//! customer holds is released. Reconciling from the log, rather than remembering what one call
//! claimed, keeps the registry right when requests for one customer race, are repeated, or stop
//! halfway.

use crate::command::{Appended, EventStore};
use crate::error::{CommandError, Failure, FailureKind};
use crate::metadata::CommandMetadata;
use domain::customer::{customer_stream_id, Customer, CustomerCommand, CustomerError};
use domain::error::Invalid;
use domain::ids::CustomerId;
use domain::slug::{slug_stream_id, SlugClaim, SlugCommand, SlugError, SLUG_MAX};
use sqlx::{Connection, PgConnection};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CustomerServiceError {
    #[error(transparent)]
    Slug(CommandError<SlugError>),
    #[error(transparent)]
    Customer(CommandError<CustomerError>),
}

impl CustomerServiceError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Slug(e) => e.kind(),
            Self::Customer(e) => e.kind(),
        }
    }

    fn invalid(field: &'static str, reason: &str) -> Self {
        Self::Customer(CommandError::Domain(CustomerError::Invalid(Invalid::new(
            field, reason,
        ))))
    }
}

/// Runs a customer command, keeping the slug registry in step with it (see the module doc).
pub async fn execute(
    store: &EventStore,
    customer_id: CustomerId,
    command: CustomerCommand,
    meta: &CommandMetadata,
) -> Result<Appended, CustomerServiceError> {
    let stream = customer_stream_id(customer_id);
    let new_slug = match &command {
        CustomerCommand::CreateCustomer {
            customer_id: id, ..
        } if *id != customer_id => {
            return Err(CustomerServiceError::invalid(
                "customer_id",
                "differs from the customer the command addresses",
            ));
        }
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
    domain::validate::slug("slug", &new_slug, SLUG_MAX).map_err(|invalid| {
        CustomerServiceError::Customer(CommandError::Domain(CustomerError::Invalid(invalid)))
    })?;
    // Slug changes of one customer run one at a time, across processes: a reconciliation that
    // read the customer before a racing rename committed would release the slug that rename
    // just claimed. The lock is a session advisory lock on a connection of its own, outside the
    // pool (waiters must not starve the pool the lock holder needs), released at the end or
    // when the connection closes with the process.
    let store_failure = |e: sqlx::Error| CustomerServiceError::Slug(CommandError::Store(e.into()));
    let mut serialized = PgConnection::connect_with(&store.pool().connect_options())
        .await
        .map_err(store_failure)?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('customer-slug:' || $1, 0))")
        .bind(customer_id.0.to_string())
        .execute(&mut serialized)
        .await
        .map_err(store_failure)?;
    // The registry's own commands carry no idempotency key: the caller's key names the customer
    // command, and a compensation must never be mistaken for a replay of it.
    let registry_meta = CommandMetadata {
        idempotency_key: None,
        ..meta.clone()
    };
    let claim = SlugCommand::ClaimSlug {
        slug: new_slug.clone(),
        customer_id,
    };
    store
        .execute::<SlugClaim>(&slug_stream_id(&new_slug), claim, &(), &registry_meta)
        .await
        .map_err(CustomerServiceError::Slug)?;
    let outcome = store
        .execute::<Customer>(&stream, command, &(), meta)
        .await
        .map_err(CustomerServiceError::Customer);
    if let Err(e) = reconcile(store, customer_id, &registry_meta).await {
        // The command's outcome stands; the next slug change of this customer reconciles again.
        tracing::warn!(error = %e, customer = %customer_id, "could not reconcile slug claims");
    }
    let _ = serialized.close().await;
    outcome
}

/// Keeps exactly the customer's current slug claimed (none when the customer does not exist).
pub async fn reconcile(
    store: &EventStore,
    customer_id: CustomerId,
    meta: &CommandMetadata,
) -> Result<(), CustomerServiceError> {
    let (customer, _) = store
        .load::<Customer>(&customer_stream_id(customer_id))
        .await
        .map_err(|e| CustomerServiceError::Customer(e.into()))?;
    let current = customer.is_created().then(|| customer.slug().to_string());
    if let Some(slug) = &current {
        let claim = SlugCommand::ClaimSlug {
            slug: slug.clone(),
            customer_id,
        };
        store
            .execute::<SlugClaim>(&slug_stream_id(slug), claim, &(), meta)
            .await
            .map_err(CustomerServiceError::Slug)?;
    }
    for slug in claimed_by(store, customer_id)
        .await
        .map_err(|e| CustomerServiceError::Slug(e.into()))?
    {
        if current.as_ref() == Some(&slug) {
            continue;
        }
        let stream = slug_stream_id(&slug);
        let (claim, _) = store
            .load::<SlugClaim>(&stream)
            .await
            .map_err(|e| CustomerServiceError::Slug(e.into()))?;
        if claim.holder() == Some(customer_id) {
            let release = SlugCommand::ReleaseSlug { slug, customer_id };
            store
                .execute::<SlugClaim>(&stream, release, &(), meta)
                .await
                .map_err(CustomerServiceError::Slug)?;
        }
    }
    Ok(())
}

/// Every slug the customer ever claimed, from the log (an index on `SlugClaimed` events).
async fn claimed_by(store: &EventStore, customer_id: CustomerId) -> Result<Vec<String>, Failure> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT payload -> 'SlugClaimed' ->> 'slug' FROM events
          WHERE event_type = 'SlugClaimed' AND payload -> 'SlugClaimed' ->> 'customer_id' = $1",
    )
    .bind(customer_id.0.to_string())
    .fetch_all(store.pool())
    .await?)
}
