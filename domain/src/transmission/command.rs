//! The command of a transmission record, and the outcome vocabulary it shares with its event.

use crate::channel::Channel;
use crate::ids::{ChannelConfigId, CustomerId, LearnerId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened to one attempt at transmitting an outbox item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransmissionStatus {
    /// The remote system accepted it.
    Sent,
    /// The attempt failed; the item is due again later.
    Failed,
    /// The attempt failed for the last time (or for good): the item waits in the dead letters
    /// until an operator requeues it.
    DeadLettered,
    /// The configuration is in dry-run mode: the payload was built, nothing was sent.
    DryRun,
    /// Learner data the learner's consent no longer covers: not sent, and never will be.
    Withheld,
    /// Nothing of this kind is sent to this channel (e.g. content to an xAPI LRS).
    Skipped,
}

impl TransmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::DryRun => "dry_run",
            Self::Withheld => "withheld",
            Self::Skipped => "skipped",
        }
    }
}

/// What the item asked of the remote system (the outbox row's action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransmissionAction {
    Create,
    Update,
    Delete,
    Completion,
    Registration,
}

impl TransmissionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Completion => "completion",
            Self::Registration => "registration",
        }
    }
}

/// One attempt as a worker saw it. The item id is the outbox row's id (the idempotency key the
/// remote saw), so the record and the row share their key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub item_id: Uuid,
    pub config_id: ChannelConfigId,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub action: TransmissionAction,
    /// Learner rows: the pseudonymous learner.
    pub learner_id: Option<LearnerId>,
    /// The attempt's number for the row (1 for the first; a requeue starts again at 1).
    pub attempt: u32,
    pub status: TransmissionStatus,
    /// The remote's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// A short excerpt of the answer or of the error; the aggregate trims and scrubs it.
    pub excerpt: Option<String>,
    pub duration_ms: u64,
    pub at: DateTime<Utc>,
}

/// A command on one transmission record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransmissionCommand {
    RecordAttempt(Attempt),
}
