//! xAPI: enrollments as `registered` statements and completions as `completed` statements to
//! any learning record store (LRS).
//!
//! Wire format (edX's `xapi` app through TinCanPython, ADL xAPI 1.0.3):
//! - `POST {endpoint}/statements`, one statement per request, headers
//!   `X-Experience-API-Version: <configured version>`, `Authorization: Basic key:secret`,
//!   `Content-Type: application/json`;
//! - an enrollment (a `registration` row) is two `registered` statements, sent one after the
//!   other as edX does: the course activity first, then, once the LRS took it, the course run
//!   activity `https://{lms domain}/xapi/activities/courserun/{run id}`; no `result`;
//! - success is `200` exactly, with a JSON array of statement ids; anything else is sent again
//!   later (edX resends on its next run);
//! - actor `{"objectType": "Agent", "name": <id at the identity provider after its last ':',
//!   else the email>, "mbox": "mailto:<email>"}`; verb `completed`; object the course
//!   activity `https://{lms domain}/xapi/activities/course/{course key}` with its title, short
//!   description and key (and uuid) extensions; result `score {scaled, raw, min 0, max 100}`,
//!   `success` and `completion` true when the learner passed; `version` `1.0.3`.
//! - a completed statement's `id` is the outbox item id (a registered statement's, a UUIDv5 of
//!   it and the activity kind): edX leaves it to the LRS, but a stable id is the xAPI way to
//!   make a resend idempotent (the LRS keeps one statement per id). The same id also goes in an
//!   `Idempotency-Key` header.
//!
//! Content rows are skipped: an LRS holds no catalog.

use crate::channel::{Answer, Auth, Body, BuildContext, ChannelClient, Planned, Request, Verdict};
use crate::config::ConfigContext;
use crate::directory;
use crate::http::Http;
use async_trait::async_trait;
use domain::channel::ChannelSettings;
use projections::read_models::outbox::{ItemAction, ItemKind, OutboxItem};
use reqwest::Method;
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub struct Xapi;

/// The verbs edX sends.
pub const COMPLETED: &str = "http://adlnet.gov/expapi/verbs/completed";
pub const REGISTERED: &str = "http://adlnet.gov/expapi/verbs/registered";
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
            let course = metadata.get(&("course".to_string(), course_key.to_string()));
            let run = item
                .course_run_id
                .as_ref()
                .and_then(|run| metadata.get(&("courserun".to_string(), run.clone())));
            let actor = Actor {
                name: actor_name(person, &email),
                email: email.clone(),
            };
            let build = |activity: Activity, verb: &str, id: Uuid| {
                let (key, described) = match activity {
                    Activity::Course => (course_key, course.or(run)),
                    Activity::CourseRun => (
                        item.course_run_id.as_deref().unwrap_or(course_key),
                        run.or(course),
                    ),
                };
                let object = object(&context.lms_domain, activity, key, course_key, described);
                statement(id, &actor, verb, object, &item)
            };
            let body = match item.action {
                ItemAction::Registration => Value::Array(
                    [Activity::Course, Activity::CourseRun]
                        .map(|a| build(a, REGISTERED, registration_id(&item, a)))
                        .to_vec(),
                ),
                _ => build(Activity::Course, COMPLETED, item.item_id),
            };
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
                body: Body::Json(body),
                private,
            };
            plans.push(Planned::Send {
                items: vec![item],
                request,
            });
        }
        Ok(plans)
    }

    /// A registration's statements go one by one, each under its own id as the
    /// `Idempotency-Key`; the first that is not taken is the answer (edX sends the run's
    /// statement only once the course's was taken).
    async fn send(&self, http: &Http, config: &ConfigContext, request: &Request) -> Answer {
        let Body::Json(Value::Array(statements)) = &request.body else {
            return http.send(self, config, request).await;
        };
        let mut total = std::time::Duration::ZERO;
        let mut last = None;
        for statement in statements {
            let mut single = request.clone();
            single.body = Body::Json(statement.clone());
            if let Some(id) = statement["id"].as_str() {
                for (name, value) in &mut single.headers {
                    if name == "Idempotency-Key" {
                        *value = id.to_string();
                    }
                }
            }
            let answer = http.send(self, config, &single).await;
            total += answer.duration;
            let taken = self.classify(&answer) == Verdict::Success;
            last = Some(Answer {
                duration: total,
                ..answer
            });
            if !taken {
                break;
            }
        }
        last.unwrap_or(Answer {
            status: None,
            body: "a registration without statements".into(),
            retry_after: None,
            duration: total,
        })
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

/// What a statement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Course,
    CourseRun,
}

impl Activity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Course => "course",
            Self::CourseRun => "courserun",
        }
    }
}

/// Namespace of registered statements' ids (fixed: changing it changes ids the LRS keeps).
const REGISTRATION_NAMESPACE: Uuid = Uuid::from_u128(0x6d2a_41f7_93c5_4e08_b1d6_5f7e_2a90_c314);

/// The id of one of a registration's two statements.
fn registration_id(item: &OutboxItem, activity: Activity) -> Uuid {
    let name = format!("{}:{}", item.item_id, activity.as_str());
    Uuid::new_v5(&REGISTRATION_NAMESPACE, name.as_bytes())
}

/// The learner a statement names.
struct Actor {
    name: String,
    email: String,
}

/// The activity object of a course or run: its title, short description and the course's key
/// (and uuid) extensions, from `described` (the item's metadata, when the outbox has it).
fn object(
    lms_domain: &str,
    activity: Activity,
    key: &str,
    course_key: &str,
    described: Option<&Value>,
) -> Value {
    let text = |field: &str| {
        described
            .and_then(|c| c[field].as_str())
            .map(str::to_string)
    };
    let title = text("title").unwrap_or_else(|| key.to_string());
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
    let uuid = described.and_then(|c| c["attributes"]["uuid"].as_str());
    if let Some(uuid) = uuid {
        extensions.insert(
            format!("https://{lms_domain}/course/uuid"),
            json!(uuid.replace('-', "")),
        );
    }
    definition.insert("extensions".into(), Value::Object(extensions));
    json!({
        "objectType": "Activity",
        "id": format!("https://{lms_domain}/xapi/activities/{}/{key}", activity.as_str()),
        "definition": Value::Object(definition),
    })
}

/// A statement of `verb` on `object`; a completed one carries the row's result.
fn statement(id: Uuid, actor: &Actor, verb: &str, object: Value, item: &OutboxItem) -> Value {
    let display = verb.rsplit('/').next().unwrap_or(verb);
    let mut statement = json!({
        "id": id,
        "actor": {"objectType": "Agent", "name": actor.name,
                  "mbox": format!("mailto:{}", actor.email)},
        "verb": {"id": verb, "display": {"en-US": display}},
        "object": object,
        "version": STATEMENT_VERSION,
    });
    if verb == COMPLETED {
        let percent = item.payload["percent"].as_f64().unwrap_or(0.0);
        let passed = item.payload["grade"].as_str() == Some("Pass");
        statement["result"] = json!({
            "score": {
                "scaled": percent,
                "raw": (percent * 100.0).round() as i64,
                "min": 0,
                "max": 100,
            },
            "success": passed,
            "completion": passed,
        });
    }
    statement
}

fn ascii(text: &str) -> String {
    text.chars().filter(char::is_ascii).collect()
}
