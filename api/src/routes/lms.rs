//! LMS ingestion (role `lms_service`): the facts the LMS pushes.
//!
//! - `POST /api/v1/lms/learners`: a learner registered or changed (directory upsert: LMS user
//!   id, username, email, SSO ids per identity provider); pending invitations become
//!   memberships.
//! - `POST /api/v1/lms/enrollments`: an LMS enrollment changed. For the learner's active
//!   customer, an enrollment in its catalogs is recorded (source `enrollment_task`, as edX's
//!   background task does), upgraded, left or resumed; content outside them is no enterprise
//!   enrollment and is answered `enterprise_enrollment: false`.
//! - `POST /api/v1/lms/completions`: a grade, certificate, course-end, incomplete-units or
//!   upgrade-deadline fact about a learner's run, recorded for every customer the learner has an
//!   enterprise enrollment in that run with.
//! - `POST /api/v1/lms/content`: course-discovery's own JSON for courses, course runs and
//!   programs, in bulk, as discovery serves it (unknown fields are ignored), plus retirements.
//!   Every item is checked before any is written.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input};
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::completion::{completion_stream_id, Completion, CompletionCommand, LmsFact};
use domain::content::{
    content_stream_id, discovery, ContentCommand, ContentItem, ContentMetadata, ContentType,
};
use domain::course_mode::CourseMode;
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CourseRunId, LearnerId};
use domain::membership::{membership_stream_id, LearnerMemberships};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use store::directory::LmsUser;
use store::services::enrollments::{enroll, EnrollError, EnrollRequest};
use utoipa::ToSchema;
use uuid::Uuid;

/// A learner as the LMS knows them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LmsLearner {
    pub lms_user_id: i64,
    pub username: String,
    pub email: String,
    /// The learner's id at each identity provider (provider slug -> remote id).
    #[serde(default)]
    pub sso_ids: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LearnerRegistered {
    /// The learner's pseudonymous id.
    pub learner_id: Uuid,
    /// The learner had been invited by email; the invitations' memberships are now theirs.
    pub claimed_invitation: bool,
}

#[utoipa::path(post, path = "/api/v1/lms/learners", tag = "lms",
    request_body = LmsLearner,
    responses((status = 200, body = LearnerRegistered), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Records a learner in the directory (new or changed).
pub async fn upsert_learner(
    State(state): State<AppState>,
    principal: Principal,
    Input(body): Input<LmsLearner>,
) -> ApiResult<Json<LearnerRegistered>> {
    principal.require_lms()?;
    if body.lms_user_id <= 0 {
        return Err(ApiError::field("lms_user_id", "must be a positive integer"));
    }
    let user = LmsUser {
        lms_user_id: body.lms_user_id,
        username: body.username,
        email: body.email,
        sso_ids: body.sso_ids.into_iter().collect(),
    };
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let registered = store::services::learners::register(&state.store, &user, &meta).await?;
    Ok(Json(LearnerRegistered {
        learner_id: registered.learner_id.0,
        claimed_invitation: registered.claimed_invitation,
    }))
}

/// A learner's LMS enrollment as it now stands.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LmsEnrollment {
    pub lms_user_id: i64,
    pub course_run_id: String,
    #[schema(value_type = String, example = "verified")]
    pub mode: CourseMode,
    pub is_active: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentRecorded {
    /// Whether the enrollment is an enterprise enrollment (of the learner's active customer).
    pub enterprise_enrollment: bool,
    pub customer: Option<Uuid>,
    pub sequence: i64,
    pub position: Option<i64>,
}

/// The learner's memberships as the write model holds them (a fact may follow a link at once).
pub async fn memberships(state: &AppState, learner: LearnerId) -> ApiResult<LearnerMemberships> {
    Ok(state
        .store
        .load::<LearnerMemberships>(&membership_stream_id(learner))
        .await?
        .0)
}

async fn learner_of(state: &AppState, lms_user_id: i64) -> ApiResult<LearnerId> {
    Ok(
        store::directory::find_by_lms_user_id(&state.pool, lms_user_id)
            .await?
            .ok_or_else(|| {
                ApiError::field(
                    "lms_user_id",
                    "no learner with this LMS user id is known: push the learner first",
                )
            })?
            .id(),
    )
}

#[utoipa::path(post, path = "/api/v1/lms/enrollments", tag = "lms",
    request_body = LmsEnrollment,
    responses((status = 200, body = EnrollmentRecorded), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Records an LMS enrollment change for the learner's active customer.
pub async fn record_enrollment_fact(
    State(state): State<AppState>,
    principal: Principal,
    Input(body): Input<LmsEnrollment>,
) -> ApiResult<(HeaderMap, Json<EnrollmentRecorded>)> {
    principal.require_lms()?;
    let learner = learner_of(&state, body.lms_user_id).await?;
    let active = memberships(&state, learner).await?.active_customer();
    let not_enterprise = || EnrollmentRecorded {
        enterprise_enrollment: false,
        customer: None,
        sequence: 0,
        position: None,
    };
    let Some(customer) = active else {
        return Ok((HeaderMap::new(), Json(not_enterprise())));
    };
    let run = CourseRunId(body.course_run_id.clone());
    let stream = enrollment_stream_id(customer, learner, &run);
    let (existing, _) = state.store.load::<Enrollment>(&stream).await?;
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let now = Utc::now();
    let (enrolled, active) = (existing.is_enrolled(), existing.is_active());
    if !enrolled && body.is_active {
        let request = EnrollRequest {
            customer_id: customer,
            learner_id: learner,
            course_run_id: run.clone(),
            mode: Some(body.mode),
            source: EnrollmentSource::EnrollmentTask,
        };
        return match enroll(&state.store, &request, &meta).await {
            Ok(appended) => {
                let written = Written::from(&appended);
                Ok((
                    written.headers(),
                    Json(EnrollmentRecorded {
                        enterprise_enrollment: true,
                        customer: Some(customer.0),
                        sequence: written.sequence,
                        position: written.position,
                    }),
                ))
            }
            Err(
                EnrollError::CourseNotInCatalog(_)
                | EnrollError::ModeNotOffered(_)
                | EnrollError::NoModeOffered,
            ) => Ok((HeaderMap::new(), Json(not_enterprise()))),
            Err(e) => Err(e.into()),
        };
    }
    let change_mode = EnrollmentCommand::ChangeMode {
        customer_id: customer,
        learner_id: learner,
        course_run_id: run.clone(),
        mode: body.mode,
        at: now,
    };
    let new_mode = existing.mode() != Some(body.mode);
    let commands = match (enrolled, active, body.is_active) {
        (true, true, false) => vec![EnrollmentCommand::Unenroll {
            customer_id: customer,
            learner_id: learner,
            course_run_id: run.clone(),
            at: now,
        }],
        // A re-enrollment in another mode changes the mode too.
        (true, false, true) => {
            let reenroll = EnrollmentCommand::Reenroll {
                customer_id: customer,
                learner_id: learner,
                course_run_id: run.clone(),
                at: now,
            };
            if new_mode {
                vec![reenroll, change_mode]
            } else {
                vec![reenroll]
            }
        }
        (true, true, true) if new_mode => vec![change_mode],
        _ => Vec::new(),
    };
    let mut written = Written::default();
    for command in commands {
        let appended = state
            .store
            .execute::<Enrollment>(&stream, command, &(), &meta)
            .await?;
        written = written.then(Written::from(&appended));
    }
    Ok((
        written.headers(),
        Json(EnrollmentRecorded {
            enterprise_enrollment: true,
            customer: Some(customer.0),
            sequence: written.sequence,
            position: written.position,
        }),
    ))
}

/// A completion fact about a learner's course run.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LmsCompletionFact {
    pub lms_user_id: i64,
    pub course_run_id: String,
    /// `{"type": "record_grade", "percent": 0.87, "passed": true, "passed_at": "..."}`,
    /// `record_certificate`, `record_course_ended`, `record_incomplete_units` or
    /// `record_upgrade_deadline`.
    #[schema(value_type = Object)]
    pub fact: LmsFact,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionRecorded {
    /// The customers whose enterprise enrollment in the run got the fact.
    pub customers: Vec<Uuid>,
    pub position: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/lms/completions", tag = "lms",
    request_body = LmsCompletionFact,
    responses((status = 200, body = CompletionRecorded), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Records a grade, certificate or course-end fact for each enterprise enrollment of the run.
pub async fn record_completion_fact(
    State(state): State<AppState>,
    principal: Principal,
    Input(body): Input<LmsCompletionFact>,
) -> ApiResult<(HeaderMap, Json<CompletionRecorded>)> {
    principal.require_lms()?;
    let learner = learner_of(&state, body.lms_user_id).await?;
    let run = CourseRunId(body.course_run_id.clone());
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let mut written = Written::default();
    let mut customers = Vec::new();
    let memberships = memberships(&state, learner).await?;
    for (customer, _) in memberships.memberships() {
        let (enrollment, _) = state
            .store
            .load::<Enrollment>(&enrollment_stream_id(customer, learner, &run))
            .await?;
        let Some(mode) = enrollment.mode() else {
            continue;
        };
        let command = CompletionCommand {
            customer_id: customer,
            learner_id: learner,
            course_run_id: run.clone(),
            mode,
            at: Utc::now(),
            fact: body.fact.clone(),
        };
        let appended = state
            .store
            .execute::<Completion>(
                &completion_stream_id(customer, learner, &run),
                command,
                &(),
                &meta,
            )
            .await?;
        written = written.then(Written::from(&appended));
        customers.push(customer.0);
    }
    Ok((
        written.headers(),
        Json(CompletionRecorded {
            customers,
            position: written.position,
        }),
    ))
}

/// An item to retire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retired {
    /// `course`, `courserun` or `program`.
    #[schema(value_type = String)]
    pub content_type: ContentType,
    pub key: String,
}

/// Content in course-discovery's own JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentBatch {
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub courses: Vec<Value>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub course_runs: Vec<Value>,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub programs: Vec<Value>,
    #[serde(default)]
    pub retired: Vec<Retired>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContentRecorded {
    /// Items whose metadata was new or changed.
    pub changed: usize,
    /// Items whose metadata was as already recorded.
    pub unchanged: usize,
    pub position: Option<i64>,
}

/// How many content commands run at once.
const CONTENT_CONCURRENCY: usize = 8;

#[utoipa::path(post, path = "/api/v1/lms/content", tag = "lms",
    request_body = ContentBatch,
    responses((status = 200, body = ContentRecorded), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 413, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Publishes (or retires) content in bulk; an invalid item refuses the whole batch.
pub async fn upsert_content(
    State(state): State<AppState>,
    principal: Principal,
    Input(body): Input<ContentBatch>,
) -> ApiResult<(HeaderMap, Json<ContentRecorded>)> {
    principal.require_lms()?;
    let now: DateTime<Utc> = Utc::now();
    let mut commands: Vec<(String, ContentCommand)> = Vec::new();
    let groups = [
        ("courses", ContentType::Course, &body.courses),
        ("course_runs", ContentType::CourseRun, &body.course_runs),
        ("programs", ContentType::Program, &body.programs),
    ];
    for (field, content_type, docs) in groups {
        for (index, doc) in docs.iter().enumerate() {
            let metadata: ContentMetadata = discovery::from_discovery(content_type, doc)
                .map_err(|e| ApiError::field(format!("{field}[{index}].{}", e.field), e.reason))?;
            let stream = content_stream_id(content_type, &metadata.key);
            commands.push((stream, ContentCommand::PublishContent { metadata, at: now }));
        }
    }
    for retired in body.retired {
        let stream = content_stream_id(retired.content_type, &retired.key);
        commands.push((
            stream,
            ContentCommand::RetireContent {
                content_type: retired.content_type,
                key: retired.key,
                at: now,
            },
        ));
    }
    if commands.is_empty() {
        return Err(ApiError::field(
            "body",
            "give courses, course_runs, programs or retired",
        ));
    }
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let (mut changed, mut unchanged) = (0, 0);
    let mut written = Written::default();
    for chunk in commands.chunks(CONTENT_CONCURRENCY) {
        let runs = chunk.iter().map(|(stream, command)| {
            state
                .store
                .execute::<ContentItem>(stream, command.clone(), &(), &meta)
        });
        for outcome in futures_util::future::join_all(runs).await {
            let appended = outcome?;
            if appended.position.is_some() {
                changed += 1;
                written = written.then(Written::from(&appended));
            } else {
                unchanged += 1;
            }
        }
    }
    Ok((
        written.headers(),
        Json(ContentRecorded {
            changed,
            unchanged,
            position: written.position,
        }),
    ))
}
