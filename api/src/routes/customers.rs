//! edX's `enterprise-customer/` routes: list, create, detail, update, deactivate, and the
//! actions `contains_content_items`, `course_enrollments` and `unlink_users`.
//!
//! Operators see and create every customer; administrators and learners see the customers
//! their roles name; administrators update their own customer, enroll its learners and unlink
//! them. Reads come from the customers and catalog read models (`?min_position=` waits for
//! them); commands answer with `X-Stream-Version` and `X-Log-Position`.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, Params};
use crate::page::{Page, PageRequest, RequestUrl};
use crate::routes::dry_run::decide_all;
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::course_mode::CourseMode;
use domain::customer::{ConsentEnforcement, ConsentPolicy, Customer, CustomerCommand};
use domain::enrollment::{enrollment_stream_id, Enrollment, EnrollmentCommand, EnrollmentSource};
use domain::ids::{CourseRunId, CustomerId};
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipCommand};
use projections::read_models::catalog as catalog_query;
use projections::read_models::customers::{self as customers_model, CustomerFilter};
use serde::{Deserialize, Serialize};
use store::services::enrollments::{check, enroll, EnrollRequest};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const BASE: &str = "/enterprise/api/v1/enterprise-customer";
const READ_MODELS: &[&str] = &["customers"];

/// edX's `EnterpriseCustomerBrandingConfiguration` as its serializer nests it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingConfiguration {
    pub enterprise_customer: Uuid,
    pub enterprise_slug: String,
    pub logo: Option<String>,
    pub primary_color: Option<String>,
    pub secondary_color: Option<String>,
    pub tertiary_color: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityProviderOut {
    pub provider_id: String,
    pub default_provider: bool,
}

/// edX's `EnterpriseCustomerSerializer` fields this service keeps.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnterpriseCustomer {
    pub uuid: Uuid,
    pub name: String,
    pub slug: String,
    pub active: bool,
    pub enable_data_sharing_consent: bool,
    pub enforce_data_sharing_consent: String,
    pub enable_audit_enrollment: bool,
    pub enable_audit_data_reporting: bool,
    pub branding_configuration: BrandingConfiguration,
    /// The first identity provider (edX's `identity_provider`).
    pub identity_provider: Option<String>,
    pub identity_providers: Vec<IdentityProviderOut>,
    pub enterprise_customer_catalogs: Vec<Uuid>,
}

fn enforcement_name(enforcement: ConsentEnforcement) -> &'static str {
    match enforcement {
        ConsentEnforcement::AtEnrollment => "at_enrollment",
        ConsentEnforcement::ExternallyManaged => "externally_managed",
    }
}

impl EnterpriseCustomer {
    pub fn of(customer: &Customer) -> Self {
        let uuid = customer.id().map(|id| id.0).unwrap_or_default();
        let consent = customer.consent_policy();
        let branding = customer.branding();
        Self {
            uuid,
            name: customer.name().to_string(),
            slug: customer.slug().to_string(),
            active: customer.is_active(),
            enable_data_sharing_consent: consent.enable_data_sharing_consent,
            enforce_data_sharing_consent: enforcement_name(consent.enforce_data_sharing_consent)
                .to_string(),
            enable_audit_enrollment: customer.enables_audit_enrollment(),
            enable_audit_data_reporting: customer.enables_audit_data_reporting(),
            branding_configuration: BrandingConfiguration {
                enterprise_customer: uuid,
                enterprise_slug: customer.slug().to_string(),
                logo: branding.logo_url.clone(),
                primary_color: branding.primary_color.clone(),
                secondary_color: branding.secondary_color.clone(),
                tertiary_color: branding.tertiary_color.clone(),
            },
            identity_provider: customer
                .identity_providers()
                .first()
                .map(|idp| idp.provider_id.clone()),
            identity_providers: customer
                .identity_providers()
                .iter()
                .map(|idp| IdentityProviderOut {
                    provider_id: idp.provider_id.clone(),
                    default_provider: idp.default,
                })
                .collect(),
            enterprise_customer_catalogs: customer.catalogs().iter().map(|c| c.id.0).collect(),
        }
    }
}

/// The customer as the read model holds it; 404 when unknown.
pub async fn read_customer(state: &AppState, id: CustomerId) -> ApiResult<Customer> {
    customers_model::customer(&state.pool, id)
        .await?
        .map(|row| row.customer)
        .ok_or_else(|| ApiError::NotFound(format!("no enterprise customer {}", id.0)))
}

/// The customer as its stream now holds it (a command's own writes included); 404 when unknown.
pub async fn stored_customer(state: &AppState, id: CustomerId) -> ApiResult<Customer> {
    let (customer, _) = state
        .store
        .load::<Customer>(&domain::customer::customer_stream_id(id))
        .await?;
    if customer.is_created() {
        Ok(customer)
    } else {
        Err(ApiError::NotFound(format!(
            "no enterprise customer {}",
            id.0
        )))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CustomerListQuery {
    pub uuid: Option<Uuid>,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub active: Option<bool>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub min_position: Option<i64>,
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise-customer/", tag = "enterprise",
    params(CustomerListQuery),
    responses((status = 200, body = Page<EnterpriseCustomer>), (status = 401, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// The customers the caller may see, by name.
pub async fn list_customers(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Params(query): Params<CustomerListQuery>,
) -> ApiResult<Json<Page<EnterpriseCustomer>>> {
    min_position.wait(&state.pool, READ_MODELS).await?;
    let page = PageRequest {
        page: query.page,
        page_size: query.page_size,
    };
    let (limit, offset) = page.limit_offset()?;
    let mut among = principal
        .visible_customers()
        .map(|ids| ids.into_iter().map(|c| c.0).collect::<Vec<_>>());
    if let Some(uuid) = query.uuid {
        among = Some(match among {
            Some(ids) => ids.into_iter().filter(|id| *id == uuid).collect(),
            None => vec![uuid],
        });
    }
    let filter = CustomerFilter {
        among,
        slug: query.slug,
        name: query.name,
        active: query.active,
    };
    let (count, rows) = customers_model::customers(&state.pool, &filter, limit, offset).await?;
    let results = rows
        .iter()
        .map(|row| EnterpriseCustomer::of(&row.customer))
        .collect();
    Ok(Json(Page::new(&url, page, count, results)?))
}

/// A new customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    /// Chosen by the caller, or made up when absent.
    pub uuid: Option<Uuid>,
    pub name: String,
    pub slug: String,
    #[serde(default = "yes")]
    pub enable_data_sharing_consent: bool,
    #[serde(default)]
    #[schema(value_type = String, example = "at_enrollment")]
    pub enforce_data_sharing_consent: ConsentEnforcement,
    #[serde(default)]
    pub enable_audit_enrollment: bool,
    #[serde(default)]
    pub enable_audit_data_reporting: bool,
}

fn yes() -> bool {
    true
}

/// A customer as a command left it, with where the command left the log.
async fn answer_from_store(
    state: &AppState,
    id: CustomerId,
    written: Written,
    status: StatusCode,
) -> ApiResult<Response> {
    let customer = stored_customer(state, id).await?;
    Ok((
        status,
        written.headers(),
        Json(EnterpriseCustomer::of(&customer)),
    )
        .into_response())
}

#[utoipa::path(post, path = "/enterprise/api/v1/enterprise-customer/", tag = "enterprise",
    request_body = CreateCustomer,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = EnterpriseCustomer), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Creates a customer (operators only); the slug must be free.
pub async fn create_customer(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    Input(body): Input<CreateCustomer>,
) -> ApiResult<Response> {
    principal.require_operator()?;
    let id = CustomerId(body.uuid.unwrap_or_else(Uuid::new_v4));
    let command = CustomerCommand::CreateCustomer {
        customer_id: id,
        name: body.name,
        slug: body.slug,
        consent: ConsentPolicy {
            enable_data_sharing_consent: body.enable_data_sharing_consent,
            enforce_data_sharing_consent: body.enforce_data_sharing_consent,
        },
        enable_audit_enrollment: body.enable_audit_enrollment,
        enable_audit_data_reporting: body.enable_audit_data_reporting,
    };
    let meta = metadata(&principal, &key)?;
    let appended = store::services::customers::execute(&state.store, id, command, &meta).await?;
    answer_from_store(&state, id, Written::from(&appended), StatusCode::CREATED).await
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise-customer/{uuid}/", tag = "enterprise",
    params(("uuid" = Uuid, Path), ("min_position" = Option<i64>, Query)),
    responses((status = 200, body = EnterpriseCustomer), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// One customer.
pub async fn get_customer(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path(uuid): Path<Uuid>,
) -> ApiResult<Json<EnterpriseCustomer>> {
    let id = CustomerId(uuid);
    principal.require_member_of(id)?;
    min_position.wait(&state.pool, READ_MODELS).await?;
    Ok(Json(EnterpriseCustomer::of(
        &read_customer(&state, id).await?,
    )))
}

/// The settings to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub enable_data_sharing_consent: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub enforce_data_sharing_consent: Option<ConsentEnforcement>,
    pub enable_audit_enrollment: Option<bool>,
    pub enable_audit_data_reporting: Option<bool>,
    pub active: Option<bool>,
}

#[utoipa::path(patch, path = "/enterprise/api/v1/enterprise-customer/{uuid}/", tag = "enterprise",
    request_body = UpdateCustomer, params(("uuid" = Uuid, Path)),
    responses((status = 200, body = EnterpriseCustomer), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Changes a customer's settings (its administrators or operators; `active` operators only).
pub async fn update_customer(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<Uuid>,
    Input(body): Input<UpdateCustomer>,
) -> ApiResult<Response> {
    let id = CustomerId(uuid);
    principal.require_admin_of(id)?;
    if body.active.is_some() {
        principal.require_operator()?;
    }
    let current = stored_customer(&state, id).await?;
    let policy = current.consent_policy();
    let consent = (body.enable_data_sharing_consent.is_some()
        || body.enforce_data_sharing_consent.is_some())
    .then(|| ConsentPolicy {
        enable_data_sharing_consent: body
            .enable_data_sharing_consent
            .unwrap_or(policy.enable_data_sharing_consent),
        enforce_data_sharing_consent: body
            .enforce_data_sharing_consent
            .unwrap_or(policy.enforce_data_sharing_consent),
    });
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let update = CustomerCommand::UpdateCustomer {
        name: body.name,
        slug: body.slug,
        consent,
        enable_audit_enrollment: body.enable_audit_enrollment,
        enable_audit_data_reporting: body.enable_audit_data_reporting,
    };
    let mut written =
        Written::from(&store::services::customers::execute(&state.store, id, update, &meta).await?);
    let toggle = match body.active {
        Some(true) => Some(CustomerCommand::ReactivateCustomer),
        Some(false) => Some(CustomerCommand::DeactivateCustomer),
        None => None,
    };
    if let Some(toggle) = toggle {
        let appended = store::services::customers::execute(&state.store, id, toggle, &meta).await?;
        written = written.then(Written::from(&appended));
    }
    answer_from_store(&state, id, written, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/enterprise/api/v1/enterprise-customer/{uuid}/", tag = "enterprise",
    params(("uuid" = Uuid, Path)),
    responses((status = 204, description = "Deactivated (edX keeps customers: this is a soft delete)"),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Deactivates a customer (operators only); its history stays.
pub async fn delete_customer(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<Uuid>,
) -> ApiResult<Response> {
    principal.require_operator()?;
    let id = CustomerId(uuid);
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let appended = store::services::customers::execute(
        &state.store,
        id,
        CustomerCommand::DeactivateCustomer,
        &meta,
    )
    .await?;
    Ok((StatusCode::NO_CONTENT, Written::from(&appended).headers()).into_response())
}

/// Repeated or comma-separated values of a query parameter (edX's clients send either).
pub fn list_param(query: Option<&str>, name: &str) -> ApiResult<Vec<String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::field("query", e.to_string()))?;
    Ok(pairs
        .into_iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// `{"contains_content_items": bool}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Contains {
    pub contains_content_items: bool,
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise-customer/{uuid}/contains_content_items/", tag = "enterprise",
    params(("uuid" = Uuid, Path),
           ("course_run_ids" = Option<Vec<String>>, Query, description = "Repeated or comma-separated"),
           ("program_uuids" = Option<Vec<String>>, Query, description = "Repeated or comma-separated")),
    responses((status = 200, body = Contains), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Whether any of the customer's catalogs holds any of the items.
pub async fn customer_contains_content_items(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path(uuid): Path<Uuid>,
    uri: axum::http::Uri,
) -> ApiResult<Json<Contains>> {
    principal.require_member_of(CustomerId(uuid))?;
    let runs = list_param(uri.query(), "course_run_ids")?;
    let programs = list_param(uri.query(), "program_uuids")?;
    if runs.is_empty() && programs.is_empty() {
        return Err(ApiError::field(
            "course_run_ids",
            "give course_run_ids or program_uuids",
        ));
    }
    min_position.wait(&state.pool, &["catalog"]).await?;
    let contains =
        catalog_query::customer_contains_content_items(&state.pool, uuid, &runs, &programs).await?;
    Ok(Json(Contains {
        contains_content_items: contains,
    }))
}

/// One enrollment of a `course_enrollments` request (edX's fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CourseEnrollment {
    pub lms_user_id: Option<i64>,
    pub tpa_user_id: Option<String>,
    pub user_email: Option<String>,
    pub course_run_id: String,
    #[schema(value_type = String, example = "verified")]
    pub course_mode: CourseMode,
    /// Accepted for edX compatibility; cohorts are the LMS's.
    pub cohort: Option<String>,
    /// Accepted for edX compatibility; this service sends no email.
    pub email_students: Option<bool>,
    /// false unenrolls.
    #[serde(default = "yes")]
    pub is_active: bool,
}

/// What became of one requested enrollment.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourseEnrollmentResult {
    pub course_run_id: String,
    pub learner_id: Uuid,
    pub course_mode: String,
    pub is_active: bool,
    pub sequence: i64,
    pub position: Option<i64>,
}

#[utoipa::path(post, path = "/enterprise/api/v1/enterprise-customer/{uuid}/course_enrollments/", tag = "enterprise",
    request_body = Vec<CourseEnrollment>, params(("uuid" = Uuid, Path)),
    responses((status = 201, body = Vec<CourseEnrollmentResult>), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Enrolls (or unenrolls) learners of the customer, source `enterprise_api`. Every item is
/// decided before any is written: one bad item refuses the whole request (a concurrent change
/// between the two passes can still refuse a later item).
pub async fn course_enrollments(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<Uuid>,
    Input(items): Input<Vec<CourseEnrollment>>,
) -> ApiResult<(StatusCode, Json<Vec<CourseEnrollmentResult>>)> {
    let customer = CustomerId(uuid);
    principal.require_admin_of(customer)?;
    if items.is_empty() {
        return Err(ApiError::field("body", "give at least one enrollment"));
    }
    let mut learners = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let learner = resolve_learner(&state, item).await?.ok_or_else(|| {
            ApiError::field(
                format!("[{index}]"),
                "no learner is known by lms_user_id, tpa_user_id or user_email",
            )
        })?;
        learners.push(learner);
    }
    let unenroll = |learner, run: &CourseRunId| EnrollmentCommand::Unenroll {
        customer_id: customer,
        learner_id: learner,
        course_run_id: run.clone(),
        at: chrono::Utc::now(),
    };
    let request = |item: &CourseEnrollment, learner| EnrollRequest {
        customer_id: customer,
        learner_id: learner,
        course_run_id: CourseRunId(item.course_run_id.clone()),
        mode: Some(item.course_mode),
        source: EnrollmentSource::EnterpriseApi,
    };
    // Every item is decided before any is written.
    for (item, &learner) in items.iter().zip(&learners) {
        if item.is_active {
            check(&state.store, &request(item, learner)).await?;
        } else {
            let run = CourseRunId(item.course_run_id.clone());
            let stream = enrollment_stream_id(customer, learner, &run);
            let (current, _) = state.store.load::<Enrollment>(&stream).await?;
            decide_all(current, [unenroll(learner, &run)], &())
                .await
                .map_err(|(_, e)| ApiError::from(store::CommandError::Domain(e)))?;
        }
    }
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let mut results = Vec::with_capacity(items.len());
    for (item, learner) in items.iter().zip(learners) {
        let run = CourseRunId(item.course_run_id.clone());
        let appended = if item.is_active {
            enroll(&state.store, &request(item, learner), &meta).await?
        } else {
            let stream = enrollment_stream_id(customer, learner, &run);
            state
                .store
                .execute::<Enrollment>(&stream, unenroll(learner, &run), &(), &meta)
                .await?
        };
        results.push(CourseEnrollmentResult {
            course_run_id: item.course_run_id.clone(),
            learner_id: learner.0,
            course_mode: item.course_mode.as_str().to_string(),
            is_active: item.is_active,
            sequence: appended.sequence,
            position: appended.position,
        });
    }
    Ok((StatusCode::CREATED, Json(results)))
}

async fn resolve_learner(
    state: &AppState,
    item: &CourseEnrollment,
) -> ApiResult<Option<domain::ids::LearnerId>> {
    let record = if let Some(id) = item.lms_user_id {
        store::directory::find_by_lms_user_id(&state.pool, id).await?
    } else if let Some(email) = &item.user_email {
        store::directory::find_by_email(&state.pool, email).await?
    } else if item.tpa_user_id.is_some() {
        return Err(ApiError::field(
            "tpa_user_id",
            "is not supported here: send lms_user_id or user_email",
        ));
    } else {
        return Err(ApiError::field(
            "lms_user_id",
            "give lms_user_id or user_email",
        ));
    };
    Ok(record.map(|r| r.id()))
}

/// edX's `unlink_users` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkUsers {
    pub user_emails: Vec<String>,
    #[serde(default = "yes")]
    pub is_relinkable: bool,
}

#[utoipa::path(post, path = "/enterprise/api/v1/enterprise-customer/{uuid}/unlink_users/", tag = "enterprise",
    request_body = UnlinkUsers, params(("uuid" = Uuid, Path)),
    responses((status = 200, body = Written), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Unlinks learners from the customer by email (edX's soft delete); unknown emails are refused
/// before anything is written.
pub async fn unlink_users(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<Uuid>,
    Input(body): Input<UnlinkUsers>,
) -> ApiResult<Response> {
    let customer = CustomerId(uuid);
    principal.require_admin_of(customer)?;
    if body.user_emails.is_empty() {
        return Err(ApiError::field("user_emails", "give at least one email"));
    }
    let mut learners = Vec::new();
    for email in &body.user_emails {
        let record = store::directory::find_by_email(&state.pool, email)
            .await?
            .ok_or_else(|| {
                ApiError::field("user_emails", "one of the emails is not a known learner")
            })?;
        learners.push(record.id());
    }
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let mut written = Written::default();
    for learner in learners {
        let command = MembershipCommand::UnlinkLearner {
            customer_id: customer,
            learner_id: learner,
            is_relinkable: body.is_relinkable,
        };
        let appended = state
            .store
            .execute::<LearnerMemberships>(&membership_stream_id(learner), command, &(), &meta)
            .await?;
        written = written.then(Written::from(&appended));
    }
    Ok((written.headers(), Json(written)).into_response())
}
