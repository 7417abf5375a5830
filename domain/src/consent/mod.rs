//! DataSharingConsent: one learner's consent to share data with one customer, for one course (by
//! course key, so one record covers every run) or one program.
//!
//! The state is edX's tri-state `granted`: never asked, granted, not granted. A grant or a
//! decline from "never asked" records the answer; a revocation takes back a grant. Repeating the
//! current answer appends nothing.

mod command;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{Action, ConsentCommand, ConsentSource, ConsentSubject};
pub use error::ConsentError;
pub use event::ConsentEvent;

use crate::ids::{stream_id, CustomerId, LearnerId};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// The stream of one consent record: customer x learner x course key (or program).
pub fn consent_stream_id(
    customer: CustomerId,
    learner: LearnerId,
    subject: &ConsentSubject,
) -> String {
    let (kind, key) = subject.key_parts();
    stream_id(
        "consent",
        &[&customer.to_string(), &learner.to_string(), kind, &key],
    )
}

/// edX's tri-state `granted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    #[default]
    NeverAsked,
    Granted,
    NotGranted,
}

/// The consent record of one customer x learner x subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    key: Option<(CustomerId, LearnerId, ConsentSubject)>,
    state: ConsentState,
}

impl Consent {
    pub fn state(&self) -> ConsentState {
        self.state
    }

    /// A command must address the record this stream holds: guards against a caller that
    /// derived the stream id from one key and sent another.
    fn check_key(
        &self,
        customer: CustomerId,
        learner: LearnerId,
        subject: &ConsentSubject,
    ) -> Result<(), ConsentError> {
        match &self.key {
            Some((c, l, s)) if (*c, *l, s) != (customer, learner, subject) => {
                Err(ConsentError::KeyMismatch)
            }
            _ => Ok(()),
        }
    }
}

impl Aggregate for Consent {
    const TYPE: &'static str = "consent";
    type Command = ConsentCommand;
    type Event = ConsentEvent;
    type Error = ConsentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let ConsentCommand {
            customer_id,
            learner_id,
            subject,
            source,
            action,
        } = command;
        subject.validate()?;
        self.check_key(customer_id, learner_id, &subject)?;
        let event = match (action, self.state) {
            (command::Action::Grant, ConsentState::Granted)
            | (command::Action::Decline | command::Action::Refuse, ConsentState::NotGranted) => {
                return Ok(())
            }
            (command::Action::Grant, _) => ConsentEvent::ConsentGranted {
                customer_id,
                learner_id,
                subject,
                source,
            },
            (command::Action::Decline | command::Action::Refuse, ConsentState::NeverAsked) => {
                ConsentEvent::ConsentDeclined {
                    customer_id,
                    learner_id,
                    subject,
                    source,
                }
            }
            (command::Action::Decline, ConsentState::Granted) => {
                return Err(ConsentError::GrantedUseRevoke)
            }
            (command::Action::Revoke | command::Action::Refuse, ConsentState::Granted) => {
                ConsentEvent::ConsentRevoked {
                    customer_id,
                    learner_id,
                    subject,
                    source,
                }
            }
            (command::Action::Revoke, _) => return Err(ConsentError::NotGranted),
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let (customer_id, learner_id, subject, state) = match event {
            ConsentEvent::ConsentGranted {
                customer_id,
                learner_id,
                subject,
                ..
            } => (customer_id, learner_id, subject, ConsentState::Granted),
            ConsentEvent::ConsentDeclined {
                customer_id,
                learner_id,
                subject,
                ..
            }
            | ConsentEvent::ConsentRevoked {
                customer_id,
                learner_id,
                subject,
                ..
            } => (customer_id, learner_id, subject, ConsentState::NotGranted),
        };
        self.key = Some((customer_id, learner_id, subject));
        self.state = state;
    }
}
