//! The client of a channel whose module is not written yet: its rows cannot be built, so
//! they fail visibly and end in the dead letters, from where they can be requeued once the
//! channel is supported.

use crate::channel::{BuildContext, ChannelClient, Planned};
use async_trait::async_trait;
use projections::read_models::outbox::OutboxItem;

pub struct Unsupported;

#[async_trait]
impl ChannelClient for Unsupported {
    async fn plan(
        &self,
        _context: &BuildContext<'_>,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<Planned>, sqlx::Error> {
        Ok(vec![Planned::Unbuildable {
            items,
            reason: "this channel is not supported by the transmitters yet".into(),
        }])
    }
}
