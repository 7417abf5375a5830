//! edX's `enterprise-learner/` routes (`EnterpriseCustomerUser`): the linked memberships of a
//! learner (`?username=`, what edx-platform's `enterprise_support` asks) or of a customer
//! (`?enterprise_customer=`), each with the nested `enterprise_customer`, `user` and
//! `data_sharing_consent_records` of edX's serializer; and linking a learner by username.
//!
//! A learner reads their own memberships; an administrator those of their customers; operators
//! everything. Personal fields come from the learner directory at read time.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, Params};
use crate::page::{Page, PageRequest, RequestUrl};
use crate::routes::consent::ConsentRecord;
use crate::routes::customers::{read_customer, EnterpriseCustomer};
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::ids::{CustomerId, LearnerId};
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipCommand};
use projections::read_models::consent::{self as consent_model, ConsentQuery};
use projections::read_models::learners::{
    self as learners_model, MembershipFilter, MembershipRow, MembershipStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const READ_MODELS: &[&str] = &["learners", "customers", "consent"];

/// edX's nested `user`; names are not kept by this service.
#[derive(Debug, Serialize, ToSchema)]
pub struct LearnerUser {
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub is_staff: bool,
    pub is_active: bool,
    pub date_joined: Option<DateTime<Utc>>,
}

/// edX's `EnterpriseCustomerUserReadOnlySerializer` fields this service keeps.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnterpriseLearner {
    /// The learner's pseudonymous id (edX: the membership row's id).
    pub id: Uuid,
    pub enterprise_customer: EnterpriseCustomer,
    pub active: bool,
    /// The LMS user id.
    pub user_id: Option<i64>,
    pub user: LearnerUser,
    pub data_sharing_consent_records: Vec<ConsentRecord>,
    pub groups: Vec<String>,
    pub created: DateTime<Utc>,
    pub invite_key: Option<Uuid>,
    pub role_assignments: Vec<String>,
}

async fn learner_json(state: &AppState, row: &MembershipRow) -> ApiResult<EnterpriseLearner> {
    let customer = read_customer(state, row.customer_id).await?;
    let username = row.username.clone().unwrap_or_default();
    let mut records = Vec::new();
    for record in consent_model::records_of(&state.pool, row.customer_id, row.learner_id).await? {
        let (query, course_id, program_uuid) = match record.subject_type.as_str() {
            "program" => match Uuid::parse_str(&record.subject_key) {
                Ok(uuid) => (ConsentQuery::Program(uuid), None, Some(record.subject_key)),
                Err(_) => continue,
            },
            _ => (
                ConsentQuery::Course(record.subject_key.clone()),
                Some(record.subject_key),
                None,
            ),
        };
        let answer =
            consent_model::answer(&state.pool, row.customer_id, row.learner_id, &query).await?;
        records.push(ConsentRecord {
            username: username.clone(),
            enterprise_customer_uuid: row.customer_id.0.to_string(),
            exists: answer.exists,
            consent_provided: answer.consent_provided,
            consent_required: answer.consent_required,
            course_id,
            program_uuid,
        });
    }
    Ok(EnterpriseLearner {
        id: row.learner_id.0,
        enterprise_customer: EnterpriseCustomer::of(&customer),
        active: row.active,
        user_id: row.lms_user_id,
        user: LearnerUser {
            username: row.username.clone(),
            first_name: String::new(),
            last_name: String::new(),
            email: row.email.clone(),
            is_staff: false,
            is_active: row.lms_user_id.is_some(),
            date_joined: None,
        },
        data_sharing_consent_records: records,
        groups: Vec::new(),
        created: row.created_at,
        invite_key: None,
        role_assignments: vec!["enterprise_learner".into()],
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LearnerListQuery {
    /// The learner's LMS username: their memberships across customers.
    pub username: Option<String>,
    /// The customer: its learners.
    pub enterprise_customer: Option<Uuid>,
    pub active: Option<bool>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub min_position: Option<i64>,
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise-learner/", tag = "enterprise",
    params(LearnerListQuery),
    responses((status = 200, body = Page<EnterpriseLearner>), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Linked memberships of a learner or of a customer.
pub async fn list_learners(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Params(query): Params<LearnerListQuery>,
) -> ApiResult<Json<Page<EnterpriseLearner>>> {
    let page = PageRequest {
        page: query.page,
        page_size: query.page_size,
    };
    let (page_number, size) = page.resolve()?;
    min_position.wait(&state.pool, READ_MODELS).await?;
    let (count, rows) = match (&query.username, query.enterprise_customer) {
        (Some(username), customer) => {
            let Some(learner) = store::directory::find_by_username(&state.pool, username).await?
            else {
                return Ok(Json(Page::new(&url, page, 0, Vec::new())?));
            };
            let own = principal.username == *username || principal.is_operator();
            let rows: Vec<MembershipRow> =
                learners_model::memberships_of_learner(&state.pool, learner.id())
                    .await?
                    .into_iter()
                    .filter(|m| m.state == MembershipStatus::Linked)
                    .filter(|m| customer.is_none_or(|c| m.customer_id.0 == c))
                    .filter(|m| query.active.is_none_or(|a| m.active == a))
                    .filter(|m| own || principal.admin_of(m.customer_id))
                    .collect();
            page.slice(rows)?
        }
        (None, Some(customer)) => {
            principal.require_admin_of(CustomerId(customer))?;
            let filter = MembershipFilter {
                state: Some(MembershipStatus::Linked),
                active: query.active,
                username: None,
            };
            learners_model::memberships_of_customer(
                &state.pool,
                CustomerId(customer),
                &filter,
                page_number,
                size,
            )
            .await?
        }
        (None, None) => {
            return Err(ApiError::field(
                "username",
                "give username or enterprise_customer",
            ))
        }
    };
    let mut results = Vec::with_capacity(rows.len());
    for row in &rows {
        results.push(learner_json(&state, row).await?);
    }
    Ok(Json(Page::new(&url, page, count, results)?))
}

/// edX's write serializer: link `username` to `enterprise_customer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkLearner {
    pub enterprise_customer: Uuid,
    pub username: String,
    /// Make this the learner's active customer (the others become inactive).
    #[serde(default = "active_by_default")]
    pub active: bool,
}

fn active_by_default() -> bool {
    true
}

#[utoipa::path(post, path = "/enterprise/api/v1/enterprise-learner/", tag = "enterprise",
    request_body = LinkLearner,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Written), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Links a registered learner to the customer (administrators of the customer, operators).
pub async fn link_learner(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    Input(body): Input<LinkLearner>,
) -> ApiResult<Response> {
    let customer = CustomerId(body.enterprise_customer);
    principal.require_admin_of(customer)?;
    read_customer(&state, customer).await?;
    let learner: LearnerId = store::directory::find_by_username(&state.pool, &body.username)
        .await?
        .ok_or_else(|| ApiError::field("username", "no learner with this username is known"))?
        .id();
    let command = MembershipCommand::LinkLearner {
        learner_id: learner,
        customer_id: customer,
        activate: body.active,
    };
    let meta = metadata(&principal, &key)?;
    let appended = state
        .store
        .execute::<LearnerMemberships>(&membership_stream_id(learner), command, &(), &meta)
        .await?;
    let written = Written::from(&appended);
    Ok((StatusCode::CREATED, written.headers(), Json(written)).into_response())
}
