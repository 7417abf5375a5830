//! Sending a channel's request: the per-request timeout, the auth header (bearer tokens cached
//! until shortly before they expire, refreshed once when the remote answers 401), the
//! `Retry-After` header, and the time the call took.

use crate::channel::{Answer, Auth, Body, ChannelClient, Request, Token};
use crate::config::ConfigContext;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use uuid::Uuid;

/// The longest `Retry-After` honoured: a remote asking for more is asked again after this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// The HTTP client of the workers, shared by every channel.
pub struct Http {
    client: reqwest::Client,
    timeout: Duration,
    tokens: Mutex<HashMap<(Uuid, String), (String, Instant)>>,
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap_or_default();
        Self {
            client,
            timeout,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` as built, with its auth; on a 401 to a cached bearer token, fetches a
    /// fresh token and sends once more.
    pub async fn send<C: ChannelClient + ?Sized>(
        &self,
        channel: &C,
        config: &ConfigContext,
        request: &Request,
    ) -> Answer {
        let started = Instant::now();
        let Auth::Bearer { scope } = &request.auth else {
            return self.call(request, None).await;
        };
        let (token, cached) = match self.token(channel, config, scope, false).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
        let answer = self.call(request, Some(&token)).await;
        if answer.status != Some(401) || !cached {
            return answer;
        }
        let token = match self.token(channel, config, scope, true).await {
            Ok((token, _)) => token,
            Err(answer) => return answer,
        };
        let mut answer = self.call(request, Some(&token)).await;
        answer.duration = started.elapsed();
        answer
    }

    /// A token for `scope`, and whether it came from the cache.
    async fn token<C: ChannelClient + ?Sized>(
        &self,
        channel: &C,
        config: &ConfigContext,
        scope: &str,
        refresh: bool,
    ) -> Result<(String, bool), Answer> {
        let key = (config.config_id.0, scope.to_string());
        if !refresh {
            if let Some((token, expires)) = self.tokens.lock().await.get(&key) {
                if Instant::now() < *expires {
                    return Ok((token.clone(), true));
                }
            }
        }
        let Token { value, expires_in } = channel.fetch_token(self, config, scope).await?;
        // Refresh a little early so a token does not expire on its way to the remote.
        let margin = (expires_in / 10).min(Duration::from_secs(30));
        let expires = Instant::now() + expires_in.saturating_sub(margin);
        self.tokens
            .lock()
            .await
            .insert(key, (value.clone(), expires));
        Ok((value, false))
    }

    /// Forgets every cached token (tests, and a configuration whose secrets changed).
    pub async fn forget_tokens(&self) {
        self.tokens.lock().await.clear();
    }

    /// One call, no retry.
    pub async fn call(&self, request: &Request, bearer: Option<&str>) -> Answer {
        let started = Instant::now();
        let mut builder = self
            .client
            .request(request.method.clone(), &request.url)
            .timeout(self.timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        builder = match (&request.auth, bearer) {
            (Auth::Basic { user, password }, _) => builder.basic_auth(user, Some(password)),
            (_, Some(token)) => builder.bearer_auth(token),
            _ => builder,
        };
        match &request.body {
            Body::Json(value) => {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(value.to_string());
            }
            Body::Form(fields) => builder = builder.form(fields),
            Body::Empty => {}
        }
        match builder.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = retry_after(response.headers());
                match response.text().await {
                    Ok(body) => Answer {
                        status: Some(status),
                        body,
                        retry_after,
                        duration: started.elapsed(),
                    },
                    // The status came, the body broke off: nothing reliable was confirmed.
                    Err(error) => Answer {
                        status: None,
                        body: format!("HTTP {status}, body not received: {}", describe(&error)),
                        retry_after,
                        duration: started.elapsed(),
                    },
                }
            }
            Err(error) => Answer {
                status: None,
                body: describe(&error),
                retry_after: None,
                duration: started.elapsed(),
            },
        }
    }
}

/// A transport error in a few words, without the URL (it may carry a session token).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else if error.is_request() {
        "the request failed (connection dropped)"
    } else {
        "transport error"
    };
    let mut text = what.to_string();
    let mut source = std::error::Error::source(error);
    if let Some(cause) = source.take() {
        text.push_str(": ");
        text.push_str(&cause.to_string());
    }
    text
}

/// `Retry-After` as seconds or as an HTTP date, at most [`RETRY_AFTER_MAX`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(RETRY_AFTER_MAX))
}
