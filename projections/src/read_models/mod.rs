//! The read models, one module each. [`all`] lists every projection the service runs.

pub mod catalog;
pub mod consent;
pub mod customers;
pub mod enrollments;
pub mod learners;
pub mod outbox;
pub mod transmissions;

use crate::Projection;
use std::sync::Arc;

/// Every read model, in the order a full rebuild runs them.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(catalog::CatalogProjection),
        Arc::new(consent::ConsentProjection),
        Arc::new(customers::Customers),
        Arc::new(learners::Learners),
        Arc::new(enrollments::Enrollments),
        Arc::new(outbox::Outbox::default()),
        Arc::new(transmissions::Transmissions),
    ]
}
