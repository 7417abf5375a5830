//! What a command answers: the stream version and the global position it reached, in the body
//! of the service's own routes and in headers (`X-Stream-Version`, `X-Log-Position`) of every
//! route, edX-shaped ones included, so a client can ask a later query for `min_position`.

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::IdempotencyKey;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use store::{Appended, CommandMetadata};

pub const STREAM_VERSION: HeaderName = HeaderName::from_static("x-stream-version");
pub const LOG_POSITION: HeaderName = HeaderName::from_static("x-log-position");

/// The metadata of a command sent by `principal`, with the request's idempotency key.
pub fn metadata(principal: &Principal, key: &IdempotencyKey) -> ApiResult<CommandMetadata> {
    let metadata = CommandMetadata::new(principal.actor());
    Ok(match &key.0 {
        Some(key) => metadata.with_idempotency_key(key.clone())?,
        None => metadata,
    })
}

/// Where a command left its stream and the log.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Written {
    /// The stream's version (its last event's sequence) after the command.
    pub sequence: i64,
    /// The global position of the last event appended; absent when nothing was appended.
    pub position: Option<i64>,
}

impl From<&Appended> for Written {
    fn from(appended: &Appended) -> Self {
        Self {
            sequence: appended.sequence,
            position: appended.position,
        }
    }
}

impl Written {
    /// Two writes of one request taken together: the later stream's version, and the furthest
    /// position either reached.
    pub fn then(self, later: Written) -> Written {
        Written {
            sequence: later.sequence,
            position: self.position.max(later.position),
        }
    }

    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(STREAM_VERSION, HeaderValue::from(self.sequence));
        if let Some(position) = self.position {
            headers.insert(LOG_POSITION, HeaderValue::from(position));
        }
        headers
    }
}
