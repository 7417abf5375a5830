//! Recording an attempt as a `TransmissionAttempted` event (the transmission aggregate), before
//! the row is completed or rescheduled: an attempt whose effect on the queue was applied is
//! never missing from the audit.

use crate::channel::{Answer, Request};
use chrono::Utc;
use domain::channel::Channel;
use domain::ids::{ChannelConfigId, CustomerId, LearnerId};
use domain::transmission::{
    transmission_stream_id, Attempt, Transmission, TransmissionAction, TransmissionCommand,
    TransmissionStatus,
};
use projections::read_models::outbox::{ItemAction, OutboxItem};
use std::time::Duration;
use store::{CommandMetadata, EventStore};

/// The actor of the workers' commands.
pub const ACTOR: &str = "transmitter";

/// What one attempt at one row came to.
pub struct Outcome<'a> {
    pub status: TransmissionStatus,
    pub answer: Option<&'a Answer>,
    /// Used when there is no answer (a dry run, a skip, a consent refusal).
    pub note: Option<String>,
    pub duration: Duration,
}

fn action(action: ItemAction) -> TransmissionAction {
    match action {
        ItemAction::Create => TransmissionAction::Create,
        ItemAction::Update => TransmissionAction::Update,
        ItemAction::Delete => TransmissionAction::Delete,
        ItemAction::Completion => TransmissionAction::Completion,
    }
}

/// The excerpt of an answer, with the request's private values taken out (the domain then
/// scrubs credentials and email addresses and trims it).
pub fn excerpt(answer: &Answer, request: Option<&Request>) -> String {
    let mut text: String = answer.body.chars().take(2000).collect();
    if let Some(request) = request {
        for value in request.private.iter().filter(|v| v.len() >= 3) {
            text = text.replace(value.as_str(), "[private]");
        }
    }
    text
}

/// Records one attempt of `item`.
pub async fn record(
    store: &EventStore,
    item: &OutboxItem,
    outcome: &Outcome<'_>,
    request: Option<&Request>,
) -> Result<(), RecordError> {
    let channel: Channel = serde_json::from_value(serde_json::Value::String(item.channel.clone()))
        .map_err(|_| RecordError::UnknownChannel(item.channel.clone()))?;
    let excerpt = match (outcome.answer, &outcome.note) {
        (_, Some(note)) => Some(note.clone()),
        (Some(answer), None) => Some(excerpt(answer, request)),
        (None, None) => None,
    };
    let attempt = Attempt {
        item_id: item.item_id,
        config_id: ChannelConfigId(item.config_id),
        customer_id: CustomerId(item.customer_id),
        channel,
        action: action(item.action),
        learner_id: item.learner_id.map(LearnerId),
        attempt: u32::try_from(item.attempts).unwrap_or(0) + 1,
        status: outcome.status,
        http_status: outcome.answer.and_then(|a| a.status),
        excerpt,
        duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        at: Utc::now(),
    };
    store
        .execute::<Transmission>(
            &transmission_stream_id(item.item_id),
            TransmissionCommand::RecordAttempt(attempt),
            &(),
            &CommandMetadata::new(ACTOR),
        )
        .await
        .map(|_| ())
        .map_err(|e| RecordError::Store(e.to_string()))
}

/// Why an attempt could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("unknown channel code '{0}'")]
    UnknownChannel(String),
    #[error("{0}")]
    Store(String),
}
