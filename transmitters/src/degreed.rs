//! Degreed (API v2, channel `DEGREED2`): courses as JSON:API resources, completions with a
//! percentile.
//!
//! Wire format (edX's `degreed2` app):
//! - token: `POST {token base or base}/oauth/token`, form `grant_type=client_credentials`,
//!   `scope=content:read,content:write,completions:write,completions:read`, `client_id`,
//!   `client_secret`; the answer's `access_token` and `expires_in` are used. Calls send
//!   `Authorization: Bearer <token>`;
//! - create: `POST /api/v2/content/courses` `{"data": {"type": "content/courses",
//!   "attributes": {...}}}`; a 409 (the external id exists) turns into an update;
//! - update and delete: `GET /api/v2/content/courses?filter[external_id]=<key>` for the Degreed
//!   id, then `PATCH /api/v2/content/courses/{id}` (with `"id"` in `data`) or `DELETE` it. A
//!   delete of a course Degreed does not hold is done; an update of one becomes a create;
//! - completions: `POST /api/v2/completions` `{"data": {"attributes": {"completed-at",
//!   "content-id", "content-id-type": "externalId", "content-type": "course", "percentile",
//!   "user-id": <email>, "user-identifier-type": "Email"}}}` (keys sorted);
//! - a 400 whose `errors[].detail` says `Invalid user identifier` unlinks the learner.
//!
//! edX sends only the first item of a chunk; here every row is sent, one request each (the
//! chunk size is 1 for Degreed anyway). Every request carries the row's `Idempotency-Key`.

use crate::channel::{
    default_verdict, Answer, Auth, Body, BuildContext, ChannelClient, Planned, Request, Token,
    Verdict,
};
use crate::config::ConfigContext;
use crate::directory;
use crate::http::Http;
use async_trait::async_trait;
use domain::channel::ChannelSettings;
use projections::read_models::outbox::{ItemAction, ItemKind, OutboxItem};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

pub struct Degreed;

/// The scopes edX asks for (`ALL_DESIRED_SCOPES`).
pub const SCOPES: &str = "content:read,content:write,completions:write,completions:read";
pub const COURSES_PATH: &str = "/api/v2/content/courses";
pub const COMPLETIONS_PATH: &str = "/api/v2/completions";
pub const TOKEN_PATH: &str = "/oauth/token";
/// The only scope of a configuration's token.
const SCOPE: &str = "client";
/// Longest summary (edX truncates to 2,000 characters ending with `...`).
const SUMMARY_MAX: usize = 2000;

fn base(config: &ConfigContext) -> Option<(&str, &str)> {
    match &config.settings {
        ChannelSettings::Degreed2 {
            base_url,
            token_fetch_base_url,
        } => Some((
            base_url.trim_end_matches('/'),
            token_fetch_base_url
                .as_deref()
                .unwrap_or(base_url)
                .trim_end_matches('/'),
        )),
        _ => None,
    }
}

/// A JSON:API course operation, carried out by [`Degreed::send`].
fn course_request(base: &str, item: &OutboxItem) -> Request {
    let (method, url) = match item.action {
        ItemAction::Create => (Method::POST, format!("{base}{COURSES_PATH}")),
        ItemAction::Update => (Method::PATCH, format!("{base}{COURSES_PATH}")),
        _ => (Method::DELETE, format!("{base}{COURSES_PATH}")),
    };
    Request {
        method,
        url,
        headers: vec![("Idempotency-Key".into(), item.item_id.to_string())],
        auth: Auth::Bearer {
            scope: SCOPE.into(),
        },
        body: Body::Json(json!({
            "data": {"type": "content/courses", "attributes": attributes(&item.payload)}
        })),
        private: Vec::new(),
    }
}

/// edX's `DATA_TRANSFORM_MAPPING` for Degreed courses (nulls are sent).
pub fn attributes(metadata: &Value) -> Value {
    let text = |field: &str| metadata[field].as_str().filter(|s| !s.is_empty());
    let title = text("title").unwrap_or_default();
    let description = text("full_description")
        .or_else(|| text("short_description"))
        .unwrap_or(title);
    let partners: Vec<&str> = metadata["partners"]
        .as_array()
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut summary = String::new();
    if !partners.is_empty() {
        summary.push_str(&format!("[{}]: ", partners.join(", ")));
    }
    summary.push_str(&strip_html(description));
    if summary.chars().count() > SUMMARY_MAX {
        summary = summary.chars().take(SUMMARY_MAX - 3).collect::<String>() + "...";
    }
    let key = match metadata["content_type"].as_str() {
        Some("program") => metadata["attributes"]["uuid"]
            .as_str()
            .or(text("key"))
            .unwrap_or_default(),
        _ => text("key").unwrap_or_default(),
    };
    let duration = metadata["estimated_hours"]
        .as_f64()
        .map_or(0, |h| h.ceil() as i64);
    json!({
        "title": title,
        "summary": summary,
        "image-url": text("image_url"),
        "url": text("enrollment_url"),
        "language": "en",
        "external-id": key,
        "duration": duration,
        "duration-type": "Hours",
        "obsolete": false,
        "cost-units": 0,
        "cost-unit-type": "USD",
        "difficulty": metadata["attributes"]["level_type"].as_str(),
        "video-url": Value::Null,
    })
}

fn strip_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The completion body of a learner row (keys sorted, as edX sends it).
pub fn completion(item: &OutboxItem, email: &str) -> Value {
    let completed_at = item.payload["completed_at"]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .map(|at| {
            at.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        });
    json!({"data": {"attributes": {
        "completed-at": completed_at,
        "content-id": item.payload["course_key"],
        "content-id-type": "externalId",
        "content-type": "course",
        "percentile": item.payload["percent"].as_f64().map(|p| p * 100.0),
        "user-id": email,
        "user-identifier-type": "Email",
    }}})
}

#[async_trait]
impl ChannelClient for Degreed {
    async fn plan(
        &self,
        context: &BuildContext<'_>,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<Planned>, sqlx::Error> {
        let Some((base, _)) = base(context.config) else {
            return Ok(vec![Planned::Unbuildable {
                items,
                reason: "not a Degreed configuration".into(),
            }]);
        };
        let (content, learners): (Vec<_>, Vec<_>) =
            items.into_iter().partition(|i| i.kind == ItemKind::Content);
        let mut plans: Vec<Planned> = content
            .into_iter()
            .map(|item| Planned::Send {
                request: course_request(base, &item),
                items: vec![item],
            })
            .collect();
        let ids: Vec<_> = learners.iter().filter_map(|i| i.learner_id).collect();
        let idp = context.config.idp_id.as_deref();
        let people = directory::people(context.pool, &ids, idp).await?;
        for item in learners {
            let person = item.learner_id.and_then(|id| people.get(&id));
            // edX sends a learner only when the identity provider knows them.
            let email = person
                .filter(|p| idp.is_none() || p.remote_id.is_some())
                .and_then(|p| p.email.clone());
            let Some(email) = email else {
                plans.push(Planned::Skip {
                    items: vec![item],
                    reason: "the learner has no email or no id at the identity provider".into(),
                });
                continue;
            };
            let request = Request {
                method: Method::POST,
                url: format!("{base}{COMPLETIONS_PATH}"),
                headers: vec![("Idempotency-Key".into(), item.item_id.to_string())],
                auth: Auth::Bearer {
                    scope: SCOPE.into(),
                },
                body: Body::Json(completion(&item, &email)),
                private: vec![email],
            };
            plans.push(Planned::Send {
                items: vec![item],
                request,
            });
        }
        Ok(plans)
    }

    async fn fetch_token(
        &self,
        http: &Http,
        config: &ConfigContext,
        _scope: &str,
    ) -> Result<Token, Answer> {
        let no_answer = |body: &str| Answer {
            status: None,
            body: body.into(),
            retry_after: None,
            duration: Duration::ZERO,
        };
        let Some((_, token_base)) = base(config) else {
            return Err(no_answer("not a Degreed configuration"));
        };
        let (Some(id), Some(secret)) = (config.secret("client_id"), config.secret("client_secret"))
        else {
            return Err(no_answer("the configuration has no client id and secret"));
        };
        let request = Request {
            method: Method::POST,
            url: format!("{token_base}{TOKEN_PATH}"),
            headers: Vec::new(),
            auth: Auth::None,
            body: Body::Form(vec![
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), SCOPES.into()),
                ("client_id".into(), id.into()),
                ("client_secret".into(), secret.into()),
            ]),
            private: vec![id.into(), secret.into()],
        };
        token_from(http.call(&request, None).await)
    }

    async fn send(&self, http: &Http, config: &ConfigContext, request: &Request) -> Answer {
        if !request.url.ends_with(COURSES_PATH) {
            return http.send(self, config, request).await;
        }
        let attributes = match &request.body {
            Body::Json(body) => body["data"]["attributes"].clone(),
            _ => Value::Null,
        };
        let external_id = attributes["external-id"].as_str().unwrap_or_default();
        if request.method == Method::POST {
            let created = http.send(self, config, request).await;
            if created.status != Some(409) {
                return created;
            }
        }
        // Update, delete, or a create Degreed already holds: find Degreed's id first.
        let mut lookup = request.clone();
        lookup.method = Method::GET;
        lookup.body = Body::Empty;
        lookup.url = format!(
            "{}?filter[external_id]={}",
            request.url,
            urlencode(external_id)
        );
        let found = http.send(self, config, &lookup).await;
        if found.status != Some(200) {
            return found;
        }
        let id = serde_json::from_str::<Value>(&found.body)
            .ok()
            .and_then(|v| v["data"][0]["id"].as_str().map(str::to_string));
        let Some(id) = id else {
            if request.method == Method::DELETE {
                // Degreed does not hold it: the delete is done.
                return Answer {
                    status: Some(200),
                    body: "not held by Degreed".into(),
                    ..found
                };
            }
            let mut create = request.clone();
            create.method = Method::POST;
            return http.send(self, config, &create).await;
        };
        let mut change = request.clone();
        change.url = format!("{}/{}", request.url, urlencode(&id));
        if request.method == Method::DELETE {
            change.body = Body::Empty;
        } else {
            change.method = Method::PATCH;
            change.body = Body::Json(json!({
                "data": {"type": "content/courses", "id": id, "attributes": attributes}
            }));
        }
        http.send(self, config, &change).await
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        if answer.status == Some(400) && invalid_user(&answer.body) {
            return Verdict::UnlinkLearner;
        }
        default_verdict(answer)
    }
}

/// Whether a 400 body is Degreed's "Invalid user identifier".
fn invalid_user(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["errors"].as_array().cloned())
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("Invalid user identifier"))
            })
        })
}

/// Reads `{"access_token", "expires_in"}` from a token answer.
pub fn token_from(answer: Answer) -> Result<Token, Answer> {
    if answer.status != Some(200) {
        return Err(answer);
    }
    let parsed: Option<(String, u64)> =
        serde_json::from_str::<Value>(&answer.body)
            .ok()
            .and_then(|v| {
                Some((
                    v["access_token"].as_str()?.to_string(),
                    v["expires_in"].as_u64()?,
                ))
            });
    match parsed {
        Some((value, expires_in)) => Ok(Token {
            value,
            expires_in: Duration::from_secs(expires_in),
        }),
        None => Err(Answer {
            body: "the token answer lacks access_token or expires_in".into(),
            ..answer
        }),
    }
}

/// Percent-encodes a query value (unreserved characters kept).
pub fn urlencode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
