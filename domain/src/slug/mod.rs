//! SlugClaim: the registry that keeps customer slugs unique across customers (edX's
//! `EnterpriseCustomer.slug`, a unique `SlugField`).
//!
//! One stream per slug, so two customers racing for one slug write to the same stream and the
//! loser gets an optimistic-concurrency conflict instead of a duplicate. A free slug (never
//! claimed, or released) may be claimed by anyone; a held slug only by its holder again, which
//! appends nothing. Only the holder may release it; releasing a free slug appends nothing.
//!
//! The `customer` aggregate records its slug but does not know the others' slugs: the service
//! claims the new slug here before creating or renaming a customer, and releases the old one
//! after a rename.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::SlugCommand;
pub use error::SlugError;
pub use event::SlugEvent;

use crate::ids::{stream_id, CustomerId};
use crate::validate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// Longest customer slug (edX: `SlugField(max_length=30)`).
pub const SLUG_MAX: usize = 30;

/// The stream of one slug's claim.
pub fn slug_stream_id(slug: &str) -> String {
    stream_id("customer_slug", &[slug])
}

/// The claim on one slug: which customer holds it, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlugClaim {
    slug: Option<String>,
    holder: Option<CustomerId>,
}

impl SlugClaim {
    /// The customer holding the slug; `None` when it is free.
    pub fn holder(&self) -> Option<CustomerId> {
        self.holder
    }

    /// A command must address the slug this stream holds: guards against a caller that derived
    /// the stream id from one slug and sent another.
    fn check_slug(&self, slug: &str) -> Result<(), SlugError> {
        validate::slug("slug", slug, SLUG_MAX)?;
        match &self.slug {
            Some(own) if own != slug => Err(SlugError::SlugMismatch),
            _ => Ok(()),
        }
    }
}

impl Aggregate for SlugClaim {
    const TYPE: &'static str = "customer_slug";
    type Command = SlugCommand;
    type Event = SlugEvent;
    type Error = SlugError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            SlugCommand::ClaimSlug { slug, customer_id } => {
                self.check_slug(&slug)?;
                match self.holder {
                    Some(holder) if holder == customer_id => return Ok(()),
                    Some(_) => return Err(SlugError::SlugTaken),
                    None => SlugEvent::SlugClaimed { slug, customer_id },
                }
            }
            SlugCommand::ReleaseSlug { slug, customer_id } => {
                self.check_slug(&slug)?;
                match self.holder {
                    None => return Ok(()),
                    Some(holder) if holder != customer_id => return Err(SlugError::NotHolder),
                    Some(_) => SlugEvent::SlugReleased { slug, customer_id },
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SlugEvent::SlugClaimed { slug, customer_id } => {
                self.slug = Some(slug);
                self.holder = Some(customer_id);
            }
            SlugEvent::SlugReleased { slug, .. } => {
                self.slug = Some(slug);
                self.holder = None;
            }
        }
    }
}
