//! Catalog and branding routes of edX's enterprise API:
//!
//! - `enterprise_catalogs/` (read-only): list, detail with the catalog's content page by page,
//!   `contains_content_items`, and one course, course run or program within a catalog;
//! - `enterprise_customer_catalog/` (write-only): create and partially update a catalog;
//! - `enterprise-customer-branding/`: a customer's branding by slug, and its update.
//!
//! Members of a customer read its catalogs and branding; its administrators change them.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, Params};
use crate::page::{Page, PageRequest, RequestUrl};
use crate::routes::customers::{
    list_param, stored_customer, BrandingConfiguration, Contains, EnterpriseCustomer,
};
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::content::ContentType;
use domain::course_mode::CourseMode;
use domain::customer::CustomerCommand;
use domain::ids::{CatalogId, CustomerId};
use projections::read_models::catalog::{self as catalog_model, CatalogRow};
use projections::read_models::customers::{self as customers_model, CustomerFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const READ_MODELS: &[&str] = &["catalog"];

/// A catalog and its settings (edX's `EnterpriseCustomerCatalogSerializer`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnterpriseCatalog {
    pub uuid: Uuid,
    pub title: String,
    pub enterprise_customer: Uuid,
    #[schema(value_type = Object)]
    pub content_filter: Value,
    pub enabled_course_modes: Vec<String>,
    pub publish_audit_enrollment_urls: bool,
}

impl From<CatalogRow> for EnterpriseCatalog {
    fn from(row: CatalogRow) -> Self {
        Self {
            uuid: row.catalog_id,
            title: row.title,
            enterprise_customer: row.customer_id,
            content_filter: row.content_filter,
            enabled_course_modes: row
                .enabled_course_modes
                .iter()
                .map(|m| m.as_str().to_string())
                .collect(),
            publish_audit_enrollment_urls: row.publish_audit_enrollment_urls,
        }
    }
}

/// A catalog the caller may read; 404 when unknown, 403 when another customer's.
async fn readable_catalog(
    state: &AppState,
    principal: &Principal,
    uuid: Uuid,
) -> ApiResult<CatalogRow> {
    let row = catalog_model::catalog(&state.pool, uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {uuid}")))?;
    principal.require_member_of(CustomerId(row.customer_id))?;
    Ok(row)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CatalogListQuery {
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub min_position: Option<i64>,
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise_catalogs/", tag = "catalogs",
    params(CatalogListQuery),
    responses((status = 200, body = Page<EnterpriseCatalog>), (status = 401, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// The catalogs of the customers the caller may see.
pub async fn list_catalogs(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Params(query): Params<CatalogListQuery>,
) -> ApiResult<Json<Page<EnterpriseCatalog>>> {
    let page = PageRequest {
        page: query.page,
        page_size: query.page_size,
    };
    let (limit, offset) = page.limit_offset()?;
    min_position.wait(&state.pool, READ_MODELS).await?;
    let among: Option<Vec<Uuid>> = principal
        .visible_customers()
        .map(|ids| ids.into_iter().map(|c| c.0).collect());
    let (count, rows) =
        catalog_model::catalogs(&state.pool, among.as_deref(), limit, offset).await?;
    let results = rows.into_iter().map(Into::into).collect();
    Ok(Json(Page::new(&url, page, count, results)?))
}

/// A catalog with one page of its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogDetail {
    pub uuid: Uuid,
    pub title: String,
    pub enterprise_customer: Uuid,
    pub count: i64,
    pub num_pages: i64,
    pub current_page: u32,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub start: i64,
    /// Content metadata items (course-discovery's shape, with `content_type`).
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<Value>,
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise_catalogs/{uuid}/", tag = "catalogs",
    params(("uuid" = Uuid, Path), CatalogListQuery),
    responses((status = 200, body = CatalogDetail), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// A catalog and its content, page by page.
pub async fn get_catalog(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    Path(uuid): Path<Uuid>,
    Params(query): Params<CatalogListQuery>,
) -> ApiResult<Json<CatalogDetail>> {
    min_position.wait(&state.pool, READ_MODELS).await?;
    let catalog = readable_catalog(&state, &principal, uuid).await?;
    let page = PageRequest {
        page: query.page,
        page_size: query.page_size,
    };
    let (number, size) = page.resolve()?;
    let (count, rows) =
        catalog_model::catalog_content(&state.pool, uuid, i64::from(number), i64::from(size))
            .await?;
    let results = rows.into_iter().map(content_json).collect();
    let page = Page::new(&url, page, count, results)?;
    Ok(Json(CatalogDetail {
        uuid,
        title: catalog.title,
        enterprise_customer: catalog.customer_id,
        count: page.count,
        num_pages: page.num_pages,
        current_page: page.current_page,
        next: page.next,
        previous: page.previous,
        start: page.start,
        results: page.results,
    }))
}

fn content_json(row: catalog_model::ContentRow) -> Value {
    let mut metadata = row.metadata;
    if let Value::Object(map) = &mut metadata {
        map.insert("content_type".into(), Value::String(row.content_type));
    }
    metadata
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise_catalogs/{uuid}/contains_content_items/", tag = "catalogs",
    params(("uuid" = Uuid, Path),
           ("course_run_ids" = Option<Vec<String>>, Query, description = "Repeated or comma-separated"),
           ("program_uuids" = Option<Vec<String>>, Query, description = "Repeated or comma-separated")),
    responses((status = 200, body = Contains), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Whether the catalog holds any of the items.
pub async fn catalog_contains_content_items(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path(uuid): Path<Uuid>,
    uri: axum::http::Uri,
) -> ApiResult<Json<Contains>> {
    let runs = list_param(uri.query(), "course_run_ids")?;
    let programs = list_param(uri.query(), "program_uuids")?;
    if runs.is_empty() && programs.is_empty() {
        return Err(ApiError::field(
            "course_run_ids",
            "give course_run_ids or program_uuids",
        ));
    }
    min_position.wait(&state.pool, READ_MODELS).await?;
    readable_catalog(&state, &principal, uuid).await?;
    let contains =
        catalog_model::contains_content_items(&state.pool, &[uuid], &runs, &programs).await?;
    Ok(Json(Contains {
        contains_content_items: contains,
    }))
}

async fn detail(
    state: &AppState,
    principal: &Principal,
    min_position: MinPosition,
    uuid: Uuid,
    content_type: ContentType,
    key: &str,
) -> ApiResult<Json<Value>> {
    min_position.wait(&state.pool, READ_MODELS).await?;
    readable_catalog(state, principal, uuid).await?;
    let row = catalog_model::content_detail(&state.pool, uuid, content_type, key)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("{content_type} {key} is not in catalog {uuid}"))
        })?;
    Ok(Json(content_json(row)))
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise_catalogs/{uuid}/courses/{course_key}/", tag = "catalogs",
    params(("uuid" = Uuid, Path), ("course_key" = String, Path)),
    responses((status = 200, description = "The course's metadata"), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// One course within the catalog.
pub async fn catalog_course(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path((uuid, key)): Path<(Uuid, String)>,
) -> ApiResult<Json<Value>> {
    detail(
        &state,
        &principal,
        min_position,
        uuid,
        ContentType::Course,
        &key,
    )
    .await
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise_catalogs/{uuid}/course_runs/{course_id}/", tag = "catalogs",
    params(("uuid" = Uuid, Path), ("course_id" = String, Path)),
    responses((status = 200, description = "The course run's metadata"), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// One course run within the catalog.
pub async fn catalog_course_run(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path((uuid, key)): Path<(Uuid, String)>,
) -> ApiResult<Json<Value>> {
    detail(
        &state,
        &principal,
        min_position,
        uuid,
        ContentType::CourseRun,
        &key,
    )
    .await
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise_catalogs/{uuid}/programs/{program_uuid}/", tag = "catalogs",
    params(("uuid" = Uuid, Path), ("program_uuid" = Uuid, Path)),
    responses((status = 200, description = "The program's metadata"), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// One program within the catalog.
pub async fn catalog_program(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path((uuid, program)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Value>> {
    let key = program.to_string();
    detail(
        &state,
        &principal,
        min_position,
        uuid,
        ContentType::Program,
        &key,
    )
    .await
}

/// A new catalog of a customer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCatalog {
    pub enterprise_customer: Uuid,
    /// Chosen by the caller, or made up when absent.
    pub uuid: Option<Uuid>,
    #[serde(default = "all_content")]
    pub title: String,
    /// Discovery search filter; `{}` holds everything (see README, "Catalog content filters").
    #[serde(default = "empty_filter")]
    #[schema(value_type = Object)]
    pub content_filter: Value,
    #[serde(default = "default_modes")]
    #[schema(value_type = Vec<String>)]
    pub enabled_course_modes: Vec<CourseMode>,
    #[serde(default)]
    pub publish_audit_enrollment_urls: bool,
}

fn all_content() -> String {
    "All Content".into()
}

fn empty_filter() -> Value {
    Value::Object(Default::default())
}

/// edX's default `enabled_course_modes`.
fn default_modes() -> Vec<CourseMode> {
    vec![
        CourseMode::Verified,
        CourseMode::Professional,
        CourseMode::NoIdProfessional,
        CourseMode::Audit,
        CourseMode::Honor,
    ]
}

/// The catalog as the customer's stream now holds it.
async fn catalog_from_store(
    state: &AppState,
    customer: CustomerId,
    catalog: CatalogId,
) -> ApiResult<EnterpriseCatalog> {
    let loaded = stored_customer(state, customer).await?;
    let found = loaded
        .catalog(catalog)
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {}", catalog.0)))?;
    Ok(EnterpriseCatalog {
        uuid: found.id.0,
        title: found.title.clone(),
        enterprise_customer: customer.0,
        content_filter: found.content_filter.clone(),
        enabled_course_modes: found
            .enabled_course_modes
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
        publish_audit_enrollment_urls: found.publish_audit_enrollment_urls,
    })
}

#[utoipa::path(post, path = "/enterprise/api/v1/enterprise_customer_catalog/", tag = "catalogs",
    request_body = CreateCatalog,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = EnterpriseCatalog), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Adds a catalog to a customer (its administrators).
pub async fn create_catalog(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    Input(body): Input<CreateCatalog>,
) -> ApiResult<Response> {
    let customer = CustomerId(body.enterprise_customer);
    principal.require_admin_of(customer)?;
    let catalog = CatalogId(body.uuid.unwrap_or_else(Uuid::new_v4));
    let command = CustomerCommand::AddCatalog {
        catalog_id: catalog,
        title: body.title,
        content_filter: body.content_filter,
        enabled_course_modes: body.enabled_course_modes,
        publish_audit_enrollment_urls: body.publish_audit_enrollment_urls,
    };
    let meta = metadata(&principal, &key)?;
    let appended =
        store::services::customers::execute(&state.store, customer, command, &meta).await?;
    let answer = catalog_from_store(&state, customer, catalog).await?;
    Ok((
        StatusCode::CREATED,
        Written::from(&appended).headers(),
        Json(answer),
    )
        .into_response())
}

/// The catalog settings to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCatalog {
    pub title: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub content_filter: Option<Value>,
    #[schema(value_type = Option<Vec<String>>)]
    pub enabled_course_modes: Option<Vec<CourseMode>>,
    pub publish_audit_enrollment_urls: Option<bool>,
}

#[utoipa::path(patch, path = "/enterprise/api/v1/enterprise_customer_catalog/{uuid}/", tag = "catalogs",
    request_body = UpdateCatalog, params(("uuid" = Uuid, Path)),
    responses((status = 200, body = EnterpriseCatalog), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Changes a catalog (the customer's administrators); membership follows a new filter.
pub async fn update_catalog(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path(uuid): Path<Uuid>,
    Input(body): Input<UpdateCatalog>,
) -> ApiResult<Response> {
    min_position.wait(&state.pool, READ_MODELS).await?;
    let row = catalog_model::catalog(&state.pool, uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no catalog {uuid}")))?;
    let customer = CustomerId(row.customer_id);
    principal.require_admin_of(customer)?;
    let command = CustomerCommand::UpdateCatalog {
        catalog_id: CatalogId(uuid),
        title: body.title,
        content_filter: body.content_filter,
        enabled_course_modes: body.enabled_course_modes,
        publish_audit_enrollment_urls: body.publish_audit_enrollment_urls,
    };
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let appended =
        store::services::customers::execute(&state.store, customer, command, &meta).await?;
    let answer = catalog_from_store(&state, customer, CatalogId(uuid)).await?;
    Ok((Written::from(&appended).headers(), Json(answer)).into_response())
}

#[utoipa::path(get, path = "/enterprise/api/v1/enterprise-customer-branding/{slug}/", tag = "enterprise",
    params(("slug" = String, Path), ("min_position" = Option<i64>, Query)),
    responses((status = 200, body = BrandingConfiguration), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// A customer's branding, by the customer's slug.
pub async fn get_branding(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    Path(slug): Path<String>,
) -> ApiResult<Json<BrandingConfiguration>> {
    min_position.wait(&state.pool, &["customers"]).await?;
    let filter = CustomerFilter {
        slug: Some(slug.clone()),
        ..Default::default()
    };
    let (_, rows) = customers_model::customers(&state.pool, &filter, 1, 0).await?;
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound(format!("no enterprise customer with slug '{slug}'")))?;
    let customer = EnterpriseCustomer::of(&row.customer);
    principal.require_member_of(CustomerId(customer.uuid))?;
    Ok(Json(customer.branding_configuration))
}

/// The branding to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBranding {
    /// The logo's URL.
    pub logo: Option<String>,
    pub primary_color: Option<String>,
    pub secondary_color: Option<String>,
    pub tertiary_color: Option<String>,
}

#[utoipa::path(patch, path = "/enterprise/api/v1/enterprise-customer-branding/update-branding/{uuid}/", tag = "enterprise",
    request_body = UpdateBranding, params(("uuid" = Uuid, Path)),
    responses((status = 200, body = BrandingConfiguration), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("jwt" = [])))]
/// Changes a customer's branding (its administrators); colours are `#rrggbb`.
pub async fn update_branding(
    State(state): State<AppState>,
    principal: Principal,
    Path(uuid): Path<Uuid>,
    Input(body): Input<UpdateBranding>,
) -> ApiResult<Response> {
    let id = CustomerId(uuid);
    principal.require_admin_of(id)?;
    let current = stored_customer(&state, id).await?;
    let branding = current.branding();
    let command = CustomerCommand::SetBranding {
        logo_url: body.logo.or_else(|| branding.logo_url.clone()),
        primary_color: body
            .primary_color
            .or_else(|| branding.primary_color.clone()),
        secondary_color: body
            .secondary_color
            .or_else(|| branding.secondary_color.clone()),
        tertiary_color: body
            .tertiary_color
            .or_else(|| branding.tertiary_color.clone()),
    };
    let meta = metadata(&principal, &IdempotencyKey::default())?;
    let appended = store::services::customers::execute(&state.store, id, command, &meta).await?;
    let after = stored_customer(&state, id).await?;
    Ok((
        Written::from(&appended).headers(),
        Json(EnterpriseCustomer::of(&after).branding_configuration),
    )
        .into_response())
}
