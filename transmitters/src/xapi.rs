//! xAPI: completions as `completed` statements to any learning record store (LRS).
//!
//! Wire format (edX's `xapi` app through TinCanPython, ADL xAPI 1.0.3):
//! - `POST {endpoint}/statements`, one statement per request, headers
//!   `X-Experience-API-Version: <configured version>`, `Authorization: Basic key:secret`,
//!   `Content-Type: application/json`;
//! - success is `200` exactly, with a JSON array of statement ids; anything else is sent again
//!   later (edX resends on its next run);
//! - actor `{"objectType": "Agent", "name": <id at the identity provider after its last ':',
//!   else the email>, "mbox": "mailto:<email>"}`; verb `completed`; object the course
//!   activity `https://{lms domain}/xapi/activities/course/{course key}` with its title, short
//!   description and key (and uuid) extensions; result `score {scaled, raw, min 0, max 100}`,
//!   `success` and `completion` true when the learner passed; `version` `1.0.3`.
//! - the statement's `id` is the outbox item id: edX leaves it to the LRS, but a stable id is
//!   the xAPI way to make a resend idempotent (the LRS keeps one statement per id). The same
//!   key also goes in an `Idempotency-Key` header.
//!
//! Content rows are skipped: an LRS holds no catalog. `registered` statements need enrollment
//! rows, which the outbox does not queue.

use crate::channel::{Answer, Auth, Body, BuildContext, ChannelClient, Planned, Request, Verdict};
use crate::directory;
use async_trait::async_trait;
use domain::channel::ChannelSettings;
use projections::read_models::outbox::{ItemKind, OutboxItem};
use reqwest::Method;
use serde_json::{json, Map, Value};

pub struct Xapi;

/// The verbs edX sends.
pub const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const COURSE_ACTIVITY: &str = "http://adlnet.gov/expapi/activities/course";

/// The statement version TinCanPython writes.
const STATEMENT_VERSION: &str = "1.0.3";

#[async_trait]
impl ChannelClient for Xapi {
    async fn plan(
        &self,
        context: &BuildContext<'_>,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<Planned>, sqlx::Error> {
        let ChannelSettings::Xapi { endpoint, version } = &context.config.settings else {
            return Ok(vec![Planned::Unbuildable {
                items,
                reason: "not an xAPI configuration".into(),
            }]);
        };
        let (content, learners): (Vec<_>, Vec<_>) =
            items.into_iter().partition(|i| i.kind == ItemKind::Content);
        let mut plans = Vec::new();
        if !content.is_empty() {
            plans.push(Planned::Skip {
                items: content,
                reason: "an LRS takes no content metadata".into(),
            });
        }
        if learners.is_empty() {
            return Ok(plans);
        }
        let (Some(key), Some(secret)) = (
            context.config.secret("key"),
            context.config.secret("secret"),
        ) else {
            plans.push(Planned::Unbuildable {
                items: learners,
                reason: "the configuration has no key and secret".into(),
            });
            return Ok(plans);
        };
        let ids: Vec<_> = learners.iter().filter_map(|i| i.learner_id).collect();
        let people =
            directory::people(context.pool, &ids, context.config.idp_id.as_deref()).await?;
        let wanted: Vec<(String, String)> = learners
            .iter()
            .filter_map(|i| i.payload["course_key"].as_str())
            .map(|key| ("course".to_string(), key.to_string()))
            .chain(
                learners
                    .iter()
                    .filter_map(|i| i.course_run_id.clone())
                    .map(|run| ("courserun".to_string(), run)),
            )
            .collect();
        let metadata = directory::content(context.pool, &wanted).await?;
        let url = format!("{}/statements", endpoint.trim_end_matches('/'));
        for item in learners {
            let person = item.learner_id.and_then(|id| people.get(&id));
            let Some((person, email)) = person.and_then(|p| p.email.clone().map(|e| (p, e))) else {
                plans.push(Planned::Skip {
                    items: vec![item],
                    reason: "the learner has no email any more (erased)".into(),
                });
                continue;
            };
            let course_key = item.payload["course_key"].as_str().unwrap_or_default();
            let course = metadata
                .get(&("course".to_string(), course_key.to_string()))
                .or_else(|| {
                    item.course_run_id
                        .as_ref()
                        .and_then(|run| metadata.get(&("courserun".to_string(), run.clone())))
                });
            let statement = completed_statement(
                &item,
                &context.lms_domain,
                course_key,
                course,
                &actor_name(person, &email),
                &email,
            );
            let mut private = vec![email.clone()];
            private.extend(person.username.clone());
            private.extend(person.remote_id.clone());
            let request = Request {
                method: Method::POST,
                url: url.clone(),
                headers: vec![
                    ("X-Experience-API-Version".into(), version.clone()),
                    ("Idempotency-Key".into(), item.item_id.to_string()),
                ],
                auth: Auth::Basic {
                    user: key.to_string(),
                    password: secret.to_string(),
                },
                body: Body::Json(statement),
                private,
            };
            plans.push(Planned::Send {
                items: vec![item],
                request,
            });
        }
        Ok(plans)
    }

    /// `200` with a JSON array is success; any other 2xx, or a 200 whose body is not an id
    /// array, is sent again later (edX accepts 200 only).
    fn classify(&self, answer: &Answer) -> Verdict {
        match answer.status {
            Some(200) => {
                let ids: Result<Vec<String>, _> = serde_json::from_str(&answer.body);
                if ids.is_ok() {
                    Verdict::Success
                } else {
                    Verdict::Retryable
                }
            }
            Some(201..=299) => Verdict::Retryable,
            _ => crate::channel::default_verdict(answer),
        }
    }
}

/// edX's actor name: the learner's id at the identity provider after its last `:`, else the
/// email.
fn actor_name(person: &directory::Person, email: &str) -> String {
    match &person.remote_id {
        Some(uid) => uid.rsplit(':').next().unwrap_or(uid).to_string(),
        None => email.to_string(),
    }
}

/// The `completed` statement of a learner row.
fn completed_statement(
    item: &OutboxItem,
    lms_domain: &str,
    course_key: &str,
    course: Option<&Value>,
    name: &str,
    email: &str,
) -> Value {
    let text = |field: &str| course.and_then(|c| c[field].as_str()).map(str::to_string);
    let title = text("title").unwrap_or_else(|| course_key.to_string());
    let mut definition = Map::new();
    definition.insert("type".into(), json!(COURSE_ACTIVITY));
    // TinCanPython sends ASCII display names.
    definition.insert("name".into(), json!({ "en-US": ascii(&title) }));
    if let Some(description) = text("short_description") {
        definition.insert("description".into(), json!({ "en-US": description }));
    }
    let mut extensions = Map::new();
    extensions.insert(
        format!("https://{lms_domain}/course/key"),
        json!(course_key),
    );
    let uuid = course.and_then(|c| c["attributes"]["uuid"].as_str());
    if let Some(uuid) = uuid {
        extensions.insert(
            format!("https://{lms_domain}/course/uuid"),
            json!(uuid.replace('-', "")),
        );
    }
    definition.insert("extensions".into(), Value::Object(extensions));
    let percent = item.payload["percent"].as_f64().unwrap_or(0.0);
    let passed = item.payload["grade"].as_str() == Some("Pass");
    json!({
        "id": item.item_id,
        "actor": {"objectType": "Agent", "name": name, "mbox": format!("mailto:{email}")},
        "verb": {"id": COMPLETED, "display": {"en-US": "completed"}},
        "object": {
            "objectType": "Activity",
            "id": format!("https://{lms_domain}/xapi/activities/course/{course_key}"),
            "definition": Value::Object(definition),
        },
        "result": {
            "score": {
                "scaled": percent,
                "raw": (percent * 100.0).round() as i64,
                "min": 0,
                "max": 100,
            },
            "success": passed,
            "completion": passed,
        },
        "version": STATEMENT_VERSION,
    })
}

fn ascii(text: &str) -> String {
    text.chars().filter(char::is_ascii).collect()
}
