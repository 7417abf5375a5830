//! Cornerstone launch parameters (table `cornerstone_launches`): when Cornerstone launches a
//! course it hands over where to report the learner's progress (`userGuid`, `callbackUrl`,
//! `sessionToken`, `subdomain`). They are recorded here ([`record`]) and read when that
//! learner's completion is pushed ([`launches_of`], [`latest_token`]).
//!
//! Not events: the user guid is personal data and the session token a credential, sealed with
//! the service's secrets key. Erasing a learner deletes their launches.

use chrono::{DateTime, Utc};
use domain::channel::{channel_stream_id, ChannelConfiguration, ChannelSettings};
use domain::error::Invalid;
use domain::ids::ChannelConfigId;
use std::collections::HashMap;
use store::secrets::{Sealed, SecretBox};
use store::{EventStore, Failure};
use uuid::Uuid;

/// Longest user guid, session token and callback path taken.
const GUID_MAX: usize = 255;
const TOKEN_MAX: usize = 4096;
const CALLBACK_MAX: usize = 2000;
const SUBDOMAIN_MAX: usize = 63;

/// One launch, as the LMS relays it.
#[derive(Clone)]
pub struct Launch {
    pub customer_id: Uuid,
    pub learner_id: Uuid,
    pub course_key: String,
    pub user_guid: String,
    pub callback_url: String,
    pub session_token: String,
    pub subdomain: String,
    pub at: DateTime<Utc>,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The guid and the token stay out of every log line.
        f.debug_struct("Launch")
            .field("customer_id", &self.customer_id)
            .field("learner_id", &self.learner_id)
            .field("course_key", &self.course_key)
            .field("subdomain", &self.subdomain)
            .finish_non_exhaustive()
    }
}

impl Launch {
    /// Checks the fields; field names are edX's (`courseKey`, `userGuid`, ...).
    pub fn validate(&self) -> Result<(), Invalid> {
        domain::validate::content_key("courseKey", &self.course_key)?;
        domain::validate::text("userGuid", &self.user_guid, GUID_MAX)?;
        domain::validate::text("sessionToken", &self.session_token, TOKEN_MAX)?;
        domain::validate::slug(
            "subdomain",
            &self.subdomain.to_ascii_lowercase(),
            SUBDOMAIN_MAX,
        )?;
        // The callback is appended to the configuration's base URL: a path only, so that
        // the launch cannot point the completion (and its credentials) at another host.
        let path_only = self.callback_url.starts_with('/')
            && !self.callback_url.starts_with("//")
            && !self
                .callback_url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'));
        if !path_only {
            return Err(Invalid::new(
                "callbackUrl",
                "must be a path starting with '/' (it is appended to the Cornerstone base URL)",
            ));
        }
        domain::validate::text("callbackUrl", &self.callback_url, CALLBACK_MAX)
    }
}

/// What [`record`] can fail on.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// edX answers this with 404.
    #[error("no active Cornerstone configuration of the customer has the subdomain '{0}'")]
    NoConfiguration(String),
    #[error(transparent)]
    Store(#[from] Failure),
}

impl From<sqlx::Error> for LaunchError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(Failure::from_sqlx(error))
    }
}

/// The customer's active Cornerstone configuration whose base URL is on `subdomain` (edX:
/// `cornerstone_base_url` contains `https://{subdomain}.`; here its host starts with
/// `{subdomain}.`, over https or http, so that a local or staging instance matches as well).
pub async fn configuration_for(
    store: &EventStore,
    customer: Uuid,
    subdomain: &str,
) -> Result<Option<Uuid>, LaunchError> {
    let configs: Vec<Uuid> = sqlx::query_scalar(
        "SELECT config_id FROM outbox_configs
          WHERE customer_id = $1 AND channel = 'CSOD' AND active ORDER BY config_id",
    )
    .bind(customer)
    .fetch_all(store.pool())
    .await?;
    let wanted = format!("{}.", subdomain.to_ascii_lowercase());
    for config_id in configs {
        let (config, _) = store
            .load::<ChannelConfiguration>(&channel_stream_id(ChannelConfigId(config_id)))
            .await?;
        if let Some(ChannelSettings::Csod { base_url }) = config.settings() {
            if host(base_url).to_ascii_lowercase().starts_with(&wanted) {
                return Ok(Some(config_id));
            }
        }
    }
    Ok(None)
}

/// The host of an http(s) URL.
fn host(url: &str) -> &str {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or_default();
    rest.split(['/', ':', '?', '#']).next().unwrap_or_default()
}

/// Records a launch (the latest per customer, learner and course wins) and returns the
/// configuration it belongs to.
pub async fn record(
    store: &EventStore,
    secrets: &SecretBox,
    launch: &Launch,
) -> Result<Uuid, LaunchError> {
    launch.validate()?;
    let config = configuration_for(store, launch.customer_id, &launch.subdomain)
        .await?
        .ok_or_else(|| LaunchError::NoConfiguration(launch.subdomain.clone()))?;
    let token = secrets.seal(&launch.session_token)?;
    sqlx::query(
        "INSERT INTO cornerstone_launches (customer_id, learner_id, course_key, config_id,
                user_guid, callback_url, subdomain, token_nonce, token_ciphertext, launched_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (customer_id, learner_id, course_key) DO UPDATE
            SET config_id = EXCLUDED.config_id, user_guid = EXCLUDED.user_guid,
                callback_url = EXCLUDED.callback_url, subdomain = EXCLUDED.subdomain,
                token_nonce = EXCLUDED.token_nonce,
                token_ciphertext = EXCLUDED.token_ciphertext,
                launched_at = EXCLUDED.launched_at",
    )
    .bind(launch.customer_id)
    .bind(launch.learner_id)
    .bind(&launch.course_key)
    .bind(config)
    .bind(&launch.user_guid)
    .bind(&launch.callback_url)
    .bind(launch.subdomain.to_ascii_lowercase())
    .bind(&token.nonce)
    .bind(&token.ciphertext)
    .bind(launch.at)
    .execute(store.pool())
    .await?;
    Ok(config)
}

/// A recorded launch, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct Recorded {
    pub user_guid: String,
    pub callback_url: String,
    pub session_token: String,
}

/// A stored launch: learner, course key, user guid, callback and the sealed token.
type LaunchRow = (Uuid, String, String, String, Vec<u8>, Vec<u8>);

/// The launches recorded for these (learner, course key) pairs of a customer; a launch whose
/// token does not open with `secrets` is left out.
pub async fn launches_of(
    pool: &sqlx::PgPool,
    secrets: &SecretBox,
    customer: Uuid,
    wanted: &[(Uuid, String)],
) -> Result<HashMap<(Uuid, String), Recorded>, sqlx::Error> {
    let (learners, keys): (Vec<Uuid>, Vec<String>) = wanted.iter().cloned().unzip();
    let rows: Vec<LaunchRow> = sqlx::query_as(
        "SELECT l.learner_id, l.course_key, l.user_guid, l.callback_url, l.token_nonce,
                l.token_ciphertext
           FROM cornerstone_launches l
           JOIN UNNEST($2::uuid[], $3::text[]) AS w(learner_id, course_key)
             ON l.learner_id = w.learner_id AND l.course_key = w.course_key
          WHERE l.customer_id = $1",
    )
    .bind(customer)
    .bind(&learners)
    .bind(&keys)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(learner, key, user_guid, callback_url, nonce, ciphertext)| {
                let session_token = secrets.open(&Sealed { nonce, ciphertext })?;
                Some((
                    (learner, key),
                    Recorded {
                        user_guid,
                        callback_url,
                        session_token,
                    },
                ))
            },
        )
        .collect())
}

/// The session token of the configuration's latest launch, which edX reports every
/// completion with (its configuration keeps the latest token).
pub async fn latest_token(
    pool: &sqlx::PgPool,
    secrets: &SecretBox,
    config: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT token_nonce, token_ciphertext FROM cornerstone_launches
          WHERE config_id = $1 ORDER BY launched_at DESC LIMIT 1",
    )
    .bind(config)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(nonce, ciphertext)| secrets.open(&Sealed { nonce, ciphertext })))
}
