//! ContentItem: the metadata of one course, course run or program, as course-discovery
//! describes it (parsed by [`discovery::from_discovery`]). Catalogs are matched against it
//! (through [`ContentMetadata::filter_view`]) and channels transmit it.
//!
//! Rules: publishing a new item, or one retired before, records it as published; publishing
//! changed metadata records the update; publishing the same metadata again appends nothing.
//! Retiring a published item records the retirement; retiring it again appends nothing; retiring
//! an item never published is refused. The key and title are validated, URLs when present. A
//! command whose type or key differs from the stream's item is refused.

mod command;
pub mod discovery;
mod error;
mod event;
#[cfg(test)]
mod tests;

pub use command::{ContentCommand, ContentMetadata, ContentType, Seat};
pub use error::ContentError;
pub use event::ContentEvent;

use crate::ids::stream_id;
use crate::validate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

/// The stream of one content item: its type and key (course key, run key or program uuid).
pub fn content_stream_id(content_type: ContentType, key: &str) -> String {
    stream_id("content_item", &[content_type.as_str(), key])
}

/// One course, course run or program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentItem {
    metadata: Option<ContentMetadata>,
    retired: bool,
}

impl ContentItem {
    /// The last published metadata (kept after a retirement).
    pub fn metadata(&self) -> Option<&ContentMetadata> {
        self.metadata.as_ref()
    }

    /// Published and not retired: offered to catalogs.
    pub fn is_published(&self) -> bool {
        self.metadata.is_some() && !self.retired
    }

    /// A command must address the item this stream holds: guards against a caller that derived
    /// the stream id from one key and sent another.
    fn check_key(&self, content_type: ContentType, key: &str) -> Result<(), ContentError> {
        match &self.metadata {
            Some(m) if (m.content_type, m.key.as_str()) != (content_type, key) => {
                Err(ContentError::KeyMismatch)
            }
            _ => Ok(()),
        }
    }
}

impl Aggregate for ContentItem {
    const TYPE: &'static str = "content_item";
    type Command = ContentCommand;
    type Event = ContentEvent;
    type Error = ContentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ContentCommand::PublishContent { metadata, at: _ } => {
                metadata.validate()?;
                self.check_key(metadata.content_type, &metadata.key)?;
                match &self.metadata {
                    None => ContentEvent::ContentPublished { metadata },
                    Some(_) if self.retired => ContentEvent::ContentPublished { metadata },
                    Some(current) if *current == metadata => return Ok(()),
                    Some(_) => ContentEvent::ContentUpdated { metadata },
                }
            }
            ContentCommand::RetireContent {
                content_type,
                key,
                at: _,
            } => {
                validate::content_key("key", &key)?;
                self.check_key(content_type, &key)?;
                if self.metadata.is_none() {
                    return Err(ContentError::ContentNotFound);
                }
                if self.retired {
                    return Ok(());
                }
                ContentEvent::ContentRetired { content_type, key }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ContentEvent::ContentPublished { metadata }
            | ContentEvent::ContentUpdated { metadata } => {
                self.metadata = Some(metadata);
                self.retired = false;
            }
            ContentEvent::ContentRetired { .. } => self.retired = true,
        }
    }
}
