//! SAP SuccessFactors Learning (channel `SAP`): courses through the Open Content Network,
//! completions as learning events, and the job that unlinks learners SAP says are inactive
//! ([`inactive`]).
//!
//! Wire format (edX's `sap_success_factors` app):
//! - token: `POST {base}/learning/oauth-api/rest/v1/token` with Basic `client_id:client_secret`
//!   and the JSON body `{"grant_type": "client_credentials", "scope": {"companyId", "resourceType":
//!   "learning_public_api", "userId", "userType"}}`; the answer's `access_token` and
//!   `expires_in` are used. Two kinds of token, both cached per configuration and scope: the
//!   admin's (`userId` = the configured API user, `userType` as configured), and one per learner
//!   (`userId` = the learner's SAP id, `userType: user`);
//! - courses: `POST {base}/learning/odatav4/public/admin/ocn/v1/OcnCourses` with
//!   `{"ocnCourses": [...]}`, an upsert for create, update and delete alike (a delete is the
//!   course with `status: INACTIVE`; see [`course`]); all content rows of a chunk go in one
//!   request, on the admin token;
//! - completions: `POST {base}/learning/odatav4/public/admin/ocn/v1/current-user/item/learning-event`
//!   on the learner's token with `courseCompleted` as the string `"true"`; with
//!   `prevent_self_submit_grades`, `POST {base}/learning/odatav4/public/admin/learningevent-service/v1/OCNLearningEvents`
//!   on the admin token with `courseCompleted` a boolean;
//! - an answer saying `user account is inactive` unlinks the learner (relinkable).
//!
//! The learner's SAP id is their id at the configuration's identity provider; a learner
//! without one is skipped, as edX does. Every request carries an `Idempotency-Key`: the row's
//! item id, or for a chunk of several content rows a UUIDv5 of their ids. Unlike edX, the base
//! URL is joined with exactly one `/` whether or not it ends with one.

pub mod course;
pub mod inactive;

use crate::channel::{
    default_verdict, Answer, Auth, Body, BuildContext, ChannelClient, Planned, Request, Token,
    Verdict,
};
use crate::config::ConfigContext;
use crate::degreed::token_from;
use crate::directory;
use crate::http::Http;
use async_trait::async_trait;
use course::CourseSettings;
use domain::channel::{ChannelSettings, SapUserType};
use projections::read_models::outbox::{ItemAction, ItemKind, OutboxItem};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

pub struct Sap;

pub const TOKEN_PATH: &str = "learning/oauth-api/rest/v1/token";
pub const COURSES_PATH: &str = "learning/odatav4/public/admin/ocn/v1/OcnCourses";
pub const LEARNER_COMPLETION_PATH: &str =
    "learning/odatav4/public/admin/ocn/v1/current-user/item/learning-event";
pub const ADMIN_COMPLETION_PATH: &str =
    "learning/odatav4/public/admin/learningevent-service/v1/OCNLearningEvents";
pub const SEARCH_STUDENT_PATH: &str = "learning/odatav4/searchStudent/v1/Students";
/// The `resourceType` of every token's scope.
pub const RESOURCE_TYPE: &str = "learning_public_api";
/// An answer with this text means the learner is no longer a SAP user.
pub const INACTIVE_USER: &str = "user account is inactive";

/// The token scope of the configured API user.
const ADMIN_SCOPE: &str = "admin";
/// Prefix of a learner's token scope (followed by their SAP id).
const LEARNER_SCOPE: &str = "user:";
/// Names the ids of a chunk of content rows sent together.
const CHUNK_NAMESPACE: Uuid = Uuid::from_u128(0x5a9c_0c3b_6a1e_4f0e_9d55_2b7a_41c8_e0f3);

/// A SAP configuration's settings.
pub(crate) struct Settings<'a> {
    pub base: &'a str,
    pub company_id: &'a str,
    pub user_id: &'a str,
    pub user_type: SapUserType,
    pub provider_id: &'a str,
    pub additional_locales: &'a [String],
    pub transmit_total_hours: bool,
    pub prevent_self_submit_grades: bool,
}

impl Settings<'_> {
    /// `{base}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }
}

pub(crate) fn settings(config: &ConfigContext) -> Option<Settings<'_>> {
    match &config.settings {
        ChannelSettings::Sap {
            base_url,
            company_id,
            user_id,
            user_type,
            provider_id,
            additional_locales,
            transmit_total_hours,
            prevent_self_submit_grades,
        } => Some(Settings {
            base: base_url.trim_end_matches('/'),
            company_id,
            user_id,
            user_type: *user_type,
            provider_id,
            additional_locales,
            transmit_total_hours: *transmit_total_hours,
            prevent_self_submit_grades: *prevent_self_submit_grades,
        }),
        _ => None,
    }
}

/// The bearer auth of the configured API user.
pub(crate) fn admin_auth() -> Auth {
    Auth::Bearer {
        scope: ADMIN_SCOPE.into(),
    }
}

/// The `ocnCourses` request of a chunk of content rows.
fn courses_request(settings: &Settings<'_>, items: &[OutboxItem]) -> Request {
    let course_settings = CourseSettings {
        provider_id: settings.provider_id,
        additional_locales: settings.additional_locales,
    };
    let now = chrono::Utc::now();
    let courses: Vec<Value> = items
        .iter()
        .map(|item| {
            let active = item.action != ItemAction::Delete;
            course::course(&item.payload, &course_settings, active, now)
        })
        .collect();
    let key = match items {
        [one] => one.item_id,
        many => {
            let ids: Vec<String> = many.iter().map(|i| i.item_id.to_string()).collect();
            Uuid::new_v5(&CHUNK_NAMESPACE, ids.join(",").as_bytes())
        }
    };
    Request {
        method: Method::POST,
        url: settings.url(COURSES_PATH),
        headers: vec![("Idempotency-Key".into(), key.to_string())],
        auth: admin_auth(),
        body: Body::Json(json!({ "ocnCourses": courses })),
        private: Vec::new(),
    }
}

/// The learning event of a learner row (keys sorted, as edX sends it). `hours` is the run's
/// estimated effort when the configuration transmits total hours.
pub fn completion(
    item: &OutboxItem,
    sap_user_id: &str,
    provider_id: &str,
    hours: f64,
    completed_as_bool: bool,
) -> Value {
    let completed = if completed_as_bool {
        json!(true)
    } else {
        json!("true")
    };
    json!({
        "completedTimestamp": course::epoch_millis(&item.payload["completed_at"]),
        "courseCompleted": completed,
        "courseID": item.payload["course_key"],
        "creditHours": hours,
        "grade": item.payload["grade"],
        "providerID": provider_id,
        "totalHours": hours,
        "userID": sap_user_id,
    })
}

#[async_trait]
impl ChannelClient for Sap {
    async fn plan(
        &self,
        context: &BuildContext<'_>,
        items: Vec<OutboxItem>,
    ) -> Result<Vec<Planned>, sqlx::Error> {
        let Some(settings) = settings(context.config) else {
            return Ok(vec![Planned::Unbuildable {
                items,
                reason: "not a SAP configuration".into(),
            }]);
        };
        let (content, learners): (Vec<_>, Vec<_>) =
            items.into_iter().partition(|i| i.kind == ItemKind::Content);
        let mut plans = Vec::new();
        if !content.is_empty() {
            plans.push(Planned::Send {
                request: courses_request(&settings, &content),
                items: content,
            });
        }
        if learners.is_empty() {
            return Ok(plans);
        }
        let ids: Vec<_> = learners.iter().filter_map(|i| i.learner_id).collect();
        let idp = context.config.idp_id.as_deref();
        let people = match idp {
            Some(idp) => directory::people(context.pool, &ids, Some(idp)).await?,
            None => Default::default(),
        };
        let hours = if settings.transmit_total_hours {
            let runs: Vec<(String, String)> = learners
                .iter()
                .filter_map(|i| i.course_run_id.clone())
                .map(|run| ("courserun".to_string(), run))
                .collect();
            directory::content(context.pool, &runs).await?
        } else {
            Default::default()
        };
        for item in learners {
            let sap_id = item
                .learner_id
                .and_then(|id| people.get(&id))
                .and_then(|p| p.remote_id.clone());
            let Some(sap_id) = sap_id else {
                plans.push(Planned::Skip {
                    items: vec![item],
                    reason: "the learner has no SAP user id at the identity provider".into(),
                });
                continue;
            };
            if item.payload["completed_at"].is_null() {
                plans.push(Planned::Skip {
                    items: vec![item],
                    reason: "not completed: SAP receives completions only".into(),
                });
                continue;
            }
            let estimated = item
                .course_run_id
                .as_ref()
                .and_then(|run| hours.get(&("courserun".to_string(), run.clone())))
                .and_then(|m| m["estimated_hours"].as_f64())
                .unwrap_or(0.0);
            let admin = settings.prevent_self_submit_grades;
            let (path, auth) = if admin {
                (ADMIN_COMPLETION_PATH, admin_auth())
            } else {
                let scope = format!("{LEARNER_SCOPE}{sap_id}");
                (LEARNER_COMPLETION_PATH, Auth::Bearer { scope })
            };
            let body = completion(&item, &sap_id, settings.provider_id, estimated, admin);
            let request = Request {
                method: Method::POST,
                url: settings.url(path),
                headers: vec![("Idempotency-Key".into(), item.item_id.to_string())],
                auth,
                body: Body::Json(body),
                private: vec![sap_id],
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
        scope: &str,
    ) -> Result<Token, Answer> {
        let no_answer = |body: &str| Answer {
            status: None,
            body: body.into(),
            retry_after: None,
            duration: Duration::ZERO,
        };
        let Some(settings) = settings(config) else {
            return Err(no_answer("not a SAP configuration"));
        };
        let (Some(id), Some(secret)) = (config.secret("client_id"), config.secret("client_secret"))
        else {
            return Err(no_answer("the configuration has no client id and secret"));
        };
        let (user_id, user_type) = match scope.strip_prefix(LEARNER_SCOPE) {
            Some(learner) => (learner, SapUserType::User),
            None => (settings.user_id, settings.user_type),
        };
        let user_type = match user_type {
            SapUserType::User => "user",
            SapUserType::Admin => "admin",
        };
        let request = Request {
            method: Method::POST,
            url: settings.url(TOKEN_PATH),
            headers: Vec::new(),
            auth: Auth::Basic {
                user: id.into(),
                password: secret.into(),
            },
            body: Body::Json(json!({
                "grant_type": "client_credentials",
                "scope": {
                    "companyId": settings.company_id,
                    "resourceType": RESOURCE_TYPE,
                    "userId": user_id,
                    "userType": user_type,
                },
            })),
            private: vec![id.into(), secret.into(), user_id.into()],
        };
        token_from(http.call(&request, None).await)
    }

    fn classify(&self, answer: &Answer) -> Verdict {
        if answer.status.is_some_and(|s| s >= 400) && answer.body.contains(INACTIVE_USER) {
            return Verdict::UnlinkLearner;
        }
        default_verdict(answer)
    }
}
