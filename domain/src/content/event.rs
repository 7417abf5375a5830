//! Events of a content item. Each carries the item's type and key (inside the metadata or
//! beside it), so a projection needs no other event to place it.

use super::command::{ContentMetadata, ContentType};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContentEvent {
    /// The item appeared: first published, or published again after a retirement.
    ContentPublished { metadata: ContentMetadata },
    /// The item's metadata changed; the whole new metadata, not a diff.
    ContentUpdated { metadata: ContentMetadata },
    /// The item is no longer offered.
    ContentRetired {
        content_type: ContentType,
        key: String,
    },
}

impl DomainEvent for ContentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ContentPublished { .. } => "ContentPublished",
            Self::ContentUpdated { .. } => "ContentUpdated",
            Self::ContentRetired { .. } => "ContentRetired",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}
