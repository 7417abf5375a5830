//! What a channel module implements: turning claimed outbox rows into HTTP requests, fetching
//! its tokens, and classifying the remote's answers. The worker does the rest (timeouts, rate
//! limits, the circuit breaker, retries, recording outcomes), the same for every channel.

use crate::config::ConfigContext;
use crate::http::Http;
use async_trait::async_trait;
use projections::read_models::outbox::OutboxItem;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;

/// How a request authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// HTTP Basic with a user and a password (an LRS key and secret, Cornerstone's key).
    Basic {
        user: String,
        password: String,
    },
    /// A bearer token from the channel's token endpoint, cached per configuration and scope
    /// (SAP asks a token per learner: the scope is the learner's SAP id).
    Bearer {
        scope: String,
    },
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    /// Serialized as is. `serde_json` keeps object keys sorted, as edX's `sort_keys=True`.
    Json(Value),
    /// `application/x-www-form-urlencoded` (OAuth token requests).
    Form(Vec<(String, String)>),
}

/// One HTTP request for one or more rows (a chunk of content rows, or one learner row).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub auth: Auth,
    pub body: Body,
    /// Values of this request that must never reach the audit (the learner's email, remote id,
    /// session token): the excerpt of the answer is scrubbed of them.
    pub private: Vec<String>,
}

/// What a channel makes of a chunk of rows.
#[derive(Debug)]
pub enum Planned {
    /// Send these rows in this request.
    Send {
        items: Vec<OutboxItem>,
        request: Request,
    },
    /// Nothing of this kind goes to this channel: the rows are done without a call.
    Skip {
        items: Vec<OutboxItem>,
        reason: String,
    },
    /// Not for the workers: hand the rows back uncounted, due again after `after` (Cornerstone
    /// pulls its content rows itself through its course-list endpoint).
    Defer {
        items: Vec<OutboxItem>,
        after: Duration,
    },
    /// The rows cannot be built (missing data the remote needs): they are retried later and
    /// dead-lettered in the end, visibly.
    Unbuildable {
        items: Vec<OutboxItem>,
        reason: String,
    },
}

/// How the worker treats an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Success,
    /// Worth retrying later (429, 5xx, timeouts, dropped connections, bad JSON).
    Retryable,
    /// Will fail again however often it is sent (a 4xx that is not about auth or rate): the
    /// rows go to the dead letters at once.
    Permanent,
    /// The remote says the learner is not (or no longer) its user: the learner is unlinked
    /// (relinkable) and the row goes to the dead letters.
    UnlinkLearner,
}

/// A remote's answer, or the failure to get one.
#[derive(Debug, Clone)]
pub struct Answer {
    /// None when there was no HTTP answer (timeout, connection refused or dropped).
    pub status: Option<u16>,
    pub body: String,
    pub retry_after: Option<Duration>,
    pub duration: Duration,
}

/// A bearer token and how long it lives.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub expires_in: Duration,
}

/// Everything a channel may read while building requests.
pub struct BuildContext<'a> {
    pub pool: &'a PgPool,
    pub config: &'a ConfigContext,
    /// The LMS's domain, as xAPI activity ids and extensions name it.
    pub lms_domain: String,
    /// Opens sealed values the channel keeps besides the configuration (Cornerstone's
    /// session tokens).
    pub secrets: Option<&'a store::secrets::SecretBox>,
}

/// One channel: its wire format, auth and error classification.
#[async_trait]
pub trait ChannelClient: Send + Sync {
    /// Turns rows of one configuration into requests. The worker hands content rows in chunks
    /// of the configuration's `transmission_chunk_size` and learner rows one by one.
    async fn plan(
        &self,
        context: &BuildContext<'_>,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<Planned>, sqlx::Error>;

    /// Fetches a token for `scope`. Channels without bearer tokens keep the default.
    async fn fetch_token(
        &self,
        _http: &Http,
        _config: &ConfigContext,
        _scope: &str,
    ) -> Result<Token, Answer> {
        Err(Answer {
            status: None,
            body: "this channel has no token endpoint".into(),
            retry_after: None,
            duration: Duration::ZERO,
        })
    }

    /// Sends one request. The default sends it as built; a channel whose operations take more
    /// than one call (Degreed's create that turns into an update) overrides it.
    async fn send(&self, http: &Http, config: &ConfigContext, request: &Request) -> Answer {
        http.send(self, config, request).await
    }

    /// What an answer means.
    fn classify(&self, answer: &Answer) -> Verdict {
        default_verdict(answer)
    }
}

/// The verdict every channel starts from: 2xx success; no answer, 408, 429 and 5xx retryable;
/// 401 and 403 retryable (credentials get fixed); other 4xx permanent.
pub fn default_verdict(answer: &Answer) -> Verdict {
    match answer.status {
        None => Verdict::Retryable,
        Some(200..=299) => Verdict::Success,
        Some(401 | 403 | 408 | 429) => Verdict::Retryable,
        Some(400..=499) => Verdict::Permanent,
        Some(_) => Verdict::Retryable,
    }
}
