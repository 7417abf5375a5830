//! Why a customer command is refused.

use crate::error::{DomainError, ErrorKind, Invalid};
use crate::ids::CatalogId;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CustomerError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no such customer")]
    CustomerNotFound,
    #[error("the customer already exists")]
    CustomerAlreadyExists,
    #[error("the customer has no catalog {0}")]
    CatalogNotFound(CatalogId),
    #[error("the customer already has a catalog {0}")]
    CatalogAlreadyExists(CatalogId),
    #[error("the customer has no identity provider '{0}'")]
    IdentityProviderNotFound(String),
    #[error("the customer already has the identity provider '{0}'")]
    IdentityProviderAlreadyAdded(String),
}

impl DomainError for CustomerError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Validation,
            Self::CustomerNotFound
            | Self::CatalogNotFound(_)
            | Self::IdentityProviderNotFound(_) => ErrorKind::NotFound,
            Self::CustomerAlreadyExists
            | Self::CatalogAlreadyExists(_)
            | Self::IdentityProviderAlreadyAdded(_) => ErrorKind::Conflict,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            _ => None,
        }
    }
}
