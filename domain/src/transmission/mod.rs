//! Transmission: the outcomes of one outbox item's transmissions, one stream per item (the
//! item id is the idempotency key the remote sees). Workers record every attempt here, so the
//! transmission audit survives a rebuild of the outbox, which keeps no history of its own.
//!
//! Rules:
//! - an attempt names the item, its configuration, customer and channel; later attempts must
//!   name the same ones (the action may change: a content row is decided again when claimed);
//! - attempt numbers start at 1; an HTTP status is 100 to 599; a dry run sends nothing, so it
//!   has no HTTP status; a `sent` attempt did not get an error status (400 or more);
//! - the excerpt is scrubbed (no credentials, no email addresses) and cut short before it
//!   enters the event (see `excerpt.rs`);
//! - every attempt is recorded, even a repeat of one already `sent`: delivery is at least once,
//!   and the audit shows each time the remote was called. A repeated command (the same
//!   idempotency key) is answered by the store without a second event.

mod command;
mod error;
mod event;
mod excerpt;
#[cfg(test)]
mod tests;

pub use command::{Attempt, TransmissionAction, TransmissionCommand, TransmissionStatus};
pub use error::TransmissionError;
pub use event::TransmissionEvent;
pub use excerpt::{scrub, EXCERPT_MAX};

use crate::channel::Channel;
use crate::error::Invalid;
use crate::ids::{stream_id, ChannelConfigId, CustomerId};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream of one outbox item's transmissions.
pub fn transmission_stream_id(item_id: Uuid) -> String {
    stream_id("transmission", &[&item_id.to_string()])
}

/// The transmissions of one outbox item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transmission {
    key: Option<(Uuid, ChannelConfigId, CustomerId, Channel)>,
    attempts: u32,
    last_status: Option<TransmissionStatus>,
}

impl Transmission {
    /// How many attempts were recorded.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn last_status(&self) -> Option<TransmissionStatus> {
        self.last_status
    }

    /// The event an attempt appends (the rules of the module doc). Public so that a writer
    /// recording many first attempts at once decides exactly as the aggregate does.
    pub fn decide(&self, attempt: Attempt) -> Result<TransmissionEvent, TransmissionError> {
        self.check(&attempt)?;
        let Attempt {
            item_id,
            config_id,
            customer_id,
            channel,
            action,
            learner_id,
            attempt,
            status,
            http_status,
            excerpt,
            duration_ms,
            at,
        } = attempt;
        Ok(TransmissionEvent::TransmissionAttempted {
            item_id,
            config_id,
            customer_id,
            channel,
            action,
            learner_id,
            attempt,
            status,
            http_status,
            excerpt: excerpt.as_deref().and_then(scrub),
            duration_ms,
            at,
        })
    }

    fn check(&self, attempt: &Attempt) -> Result<(), TransmissionError> {
        let key = (
            attempt.item_id,
            attempt.config_id,
            attempt.customer_id,
            attempt.channel,
        );
        if self.key.is_some_and(|own| own != key) {
            return Err(TransmissionError::KeyMismatch);
        }
        if attempt.attempt == 0 {
            return Err(Invalid::new("attempt", "must be 1 or more").into());
        }
        if let Some(code) = attempt.http_status {
            if !(100..=599).contains(&code) {
                return Err(Invalid::new("http_status", "must be 100 to 599").into());
            }
            match attempt.status {
                TransmissionStatus::DryRun => {
                    return Err(Invalid::new("http_status", "a dry run sends nothing").into())
                }
                TransmissionStatus::Sent if code >= 400 => {
                    return Err(
                        Invalid::new("http_status", "an error status cannot mean sent").into(),
                    )
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Aggregate for Transmission {
    const TYPE: &'static str = "transmission";
    type Command = TransmissionCommand;
    type Event = TransmissionEvent;
    type Error = TransmissionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let TransmissionCommand::RecordAttempt(attempt) = command;
        let event = self.decide(attempt)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let TransmissionEvent::TransmissionAttempted {
            item_id,
            config_id,
            customer_id,
            channel,
            status,
            ..
        } = event;
        self.key = Some((item_id, config_id, customer_id, channel));
        self.attempts += 1;
        self.last_status = Some(status);
    }
}
