//! Coupons of a customer, under `/api/v1/customers/{customer_uuid}/coupons`: create, list with
//! usage, list codes, assign codes to emails, revoke an assignment (administrators of the
//! customer). A learner's redemption is in [`super::redemptions`].
//!
//! Codes are bearer secrets of a sort: only administrators of the customer (and operators) see
//! them. Coupons and codes are read from the coupon's stream itself, always current; the list
//! of a customer's coupons comes from the log's `CouponCreated` events.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, PathParams};
use crate::page::{Page, PageParams, PageRequest, RequestUrl};
use crate::routes::customers::stored_customer;
use crate::routes::dry_run::decide_all;
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::coupon::{
    coupon_stream_id, Coupon, CouponBenefit, CouponCommand, CouponServices, CouponUsage,
};
use domain::ids::{CatalogId, CouponId, CustomerId, LearnerId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use store::directory;
use store::CommandError;
use uuid::Uuid;

/// The most emails one assignment request may name.
const MAX_EMAILS: usize = 1000;

pub(crate) fn services() -> CouponServices {
    CouponServices {
        codes: Box::new(store::codes::OsRngCodes),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    pub(crate) customer_uuid: Uuid,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CouponPath {
    customer_uuid: Uuid,
    coupon_uuid: Uuid,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CodePath {
    customer_uuid: Uuid,
    coupon_uuid: Uuid,
    code: String,
}

/// A new coupon: its terms and how many codes to draw.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCoupon {
    /// One of the customer's catalogs: the courses the codes buy seats in.
    pub catalog_uuid: Uuid,
    pub name: String,
    pub code_count: usize,
    /// `{"type": "single_use"}`, or `multi_use`, `once_per_customer`, `multi_use_per_customer`
    /// with `max_uses`.
    #[schema(value_type = Object)]
    pub usage: CouponUsage,
    /// `{"type": "percentage" | "absolute", "value": ...}`.
    #[schema(value_type = Object)]
    pub benefit: CouponBenefit,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    /// Lowercase domains learners' emails must be in; empty admits any.
    #[serde(default)]
    pub email_domains: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CouponCreated {
    pub coupon_uuid: Uuid,
    #[serde(flatten)]
    pub written: Written,
}

/// One coupon with its usage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CouponUsageRow {
    pub coupon_uuid: Uuid,
    pub name: String,
    pub catalog_uuid: Option<Uuid>,
    pub created: DateTime<Utc>,
    pub code_count: usize,
    /// Codes reserved for a learner.
    pub assigned: usize,
    /// Live (not reversed) redemptions over all codes.
    pub redemptions: u32,
    /// Redemptions each code allows.
    pub max_uses_per_code: u32,
}

/// One code of a coupon and where it stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CodeRow {
    pub code: String,
    /// `available`, `assigned`, `partially_redeemed` or `used_up`.
    pub state: &'static str,
    pub assigned_learner_uuid: Option<Uuid>,
    pub assigned_email: Option<String>,
    pub redemptions: u32,
    pub remaining_uses: u32,
}

/// Codes to reserve for emails: with `codes`, the i-th code goes to the i-th email; without,
/// each email gets a free code (or keeps the one it already holds).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCodes {
    pub emails: Vec<String>,
    #[serde(default)]
    pub codes: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub email: String,
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assigned {
    pub assignments: Vec<Assignment>,
    #[serde(flatten)]
    pub written: Written,
}

/// The customer's coupon, or 404 (a coupon of another customer is not revealed).
pub(crate) async fn coupon_of(
    state: &AppState,
    customer: CustomerId,
    id: Uuid,
) -> ApiResult<Coupon> {
    let (coupon, _) = state
        .store
        .load::<Coupon>(&coupon_stream_id(CouponId(id)))
        .await?;
    if coupon.customer_id() == Some(customer) {
        Ok(coupon)
    } else {
        Err(ApiError::NotFound(format!(
            "customer {} has no coupon {id}",
            customer.0
        )))
    }
}

#[utoipa::path(post, path = "/api/v1/customers/{customer_uuid}/coupons", tag = "coupons",
    params(CustomerPath, ("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateCoupon,
    responses(
        (status = 201, body = CouponCreated),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// Creates a coupon and draws its codes.
pub async fn create_coupon(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    PathParams(path): PathParams<CustomerPath>,
    request: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<CouponCreated>)> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let Input(body) = Input::<CreateCoupon>::from_request(request, &()).await?;
    let owner = stored_customer(&state, customer).await?;
    let catalog = CatalogId(body.catalog_uuid);
    if owner.catalog(catalog).is_none() {
        return Err(ApiError::field(
            "catalog_uuid",
            "is not a catalog of this customer",
        ));
    }
    let coupon_id = CouponId(key.new_id(&principal, &format!("coupon:{}", customer.0)));
    let command = CouponCommand::CreateCoupon {
        coupon_id,
        customer_id: customer,
        catalog_id: catalog,
        name: body.name,
        code_count: body.code_count,
        usage: body.usage,
        benefit: body.benefit,
        valid_from: body.valid_from,
        valid_until: body.valid_until,
        email_domains: body.email_domains,
    };
    let appended = state
        .store
        .execute::<Coupon>(
            &coupon_stream_id(coupon_id),
            command,
            &services(),
            &metadata(&principal, &key)?,
        )
        .await?;
    let written = Written::from(&appended);
    Ok((
        StatusCode::CREATED,
        written.headers(),
        Json(CouponCreated {
            coupon_uuid: coupon_id.0,
            written,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/coupons", tag = "coupons",
    params(CustomerPath, PageRequest,
        ("min_position" = Option<i64>, Query, description = "Wait until this global position is committed")),
    responses(
        (status = 200, body = Page<CouponUsageRow>),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// The customer's coupons with their usage: codes, assignments and live redemptions.
pub async fn list_coupons(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    PathParams(path): PathParams<CustomerPath>,
    page: PageParams,
) -> ApiResult<Json<Page<CouponUsageRow>>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    // Coupons are read from the log itself: waiting only checks the position exists.
    min_position.wait(&state.pool, &[]).await?;
    let (limit, offset) = page.0.limit_offset()?;
    let customer_text = customer.0.to_string();
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE aggregate_type = 'coupon' AND event_type = 'CouponCreated'
            AND payload -> 'CouponCreated' ->> 'customer_id' = $1",
    )
    .bind(&customer_text)
    .fetch_one(&state.pool)
    .await?;
    let created: Vec<(String, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT aggregate_id, payload -> 'CouponCreated' ->> 'name', recorded_at FROM events
          WHERE aggregate_type = 'coupon' AND event_type = 'CouponCreated'
            AND payload -> 'CouponCreated' ->> 'customer_id' = $1
          ORDER BY global_position LIMIT $2 OFFSET $3",
    )
    .bind(&customer_text)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let mut rows = Vec::with_capacity(created.len());
    for (stream, name, at) in created {
        let (coupon, _) = state.store.load::<Coupon>(&stream).await?;
        let id = Uuid::parse_str(&stream)
            .map_err(|_| ApiError::Internal(format!("coupon stream id '{stream}'")))?;
        let codes: Vec<&str> = coupon.codes().collect();
        rows.push(CouponUsageRow {
            coupon_uuid: id,
            name: name.unwrap_or_default(),
            catalog_uuid: coupon.catalog_id().map(|c| c.0),
            created: at,
            code_count: codes.len(),
            assigned: codes
                .iter()
                .filter(|c| coupon.assignment(c).is_some())
                .count(),
            redemptions: codes.iter().filter_map(|c| coupon.uses_of(c)).sum(),
            max_uses_per_code: coupon.usage().map_or(0, CouponUsage::max_uses),
        });
    }
    Ok(Json(Page::new(&url, page.0, count, rows)?))
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/coupons/{coupon_uuid}/codes", tag = "coupons",
    params(CouponPath, PageRequest,
        ("min_position" = Option<i64>, Query, description = "Wait until this global position is committed")),
    responses(
        (status = 200, body = Page<CodeRow>),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// The codes of a coupon, with who holds them and how much of each is used.
pub async fn list_codes(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    PathParams(path): PathParams<CouponPath>,
    page: PageParams,
) -> ApiResult<Json<Page<CodeRow>>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    min_position.wait(&state.pool, &[]).await?;
    let (limit, offset) = page.0.limit_offset()?;
    let coupon = coupon_of(&state, customer, path.coupon_uuid).await?;
    let max_uses = coupon.usage().map_or(0, CouponUsage::max_uses);
    let codes: Vec<&str> = coupon.codes().collect();
    let count = codes.len() as i64;
    let shown: Vec<&str> = codes
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    let holders: Vec<Uuid> = shown
        .iter()
        .filter_map(|c| coupon.assignment(c).map(|l| l.0))
        .collect();
    let emails: HashMap<Uuid, Option<String>> =
        sqlx::query_as("SELECT learner_id, email FROM learners WHERE learner_id = ANY($1)")
            .bind(&holders)
            .fetch_all(&state.pool)
            .await?
            .into_iter()
            .collect();
    let rows = shown
        .into_iter()
        .map(|code| {
            let holder = coupon.assignment(code).map(|l| l.0);
            let used = coupon.uses_of(code).unwrap_or(0);
            let remaining = max_uses.saturating_sub(used);
            let state = if remaining == 0 {
                "used_up"
            } else if holder.is_some() {
                "assigned"
            } else if used > 0 {
                "partially_redeemed"
            } else {
                "available"
            };
            CodeRow {
                code: code.to_string(),
                state,
                assigned_learner_uuid: holder,
                assigned_email: holder.and_then(|h| emails.get(&h).cloned().flatten()),
                redemptions: used,
                remaining_uses: remaining,
            }
        })
        .collect();
    Ok(Json(Page::new(&url, page.0, count, rows)?))
}

/// An error about the `i`-th email, saying which.
fn about_email(err: ApiError, i: usize) -> ApiError {
    let at = |m: String| format!("emails[{i}]: {m}");
    match err {
        ApiError::BadRequest { detail, mut fields } => {
            for f in &mut fields {
                f.field = format!("emails[{i}].{}", f.field);
            }
            ApiError::BadRequest {
                detail: at(detail),
                fields,
            }
        }
        ApiError::NotFound(m) => ApiError::NotFound(at(m)),
        ApiError::Conflict(m) => ApiError::Conflict(at(m)),
        ApiError::Unprocessable(m) => ApiError::Unprocessable(at(m)),
        other => other,
    }
}

#[utoipa::path(post, path = "/api/v1/customers/{customer_uuid}/coupons/{coupon_uuid}/assignments", tag = "coupons",
    params(CouponPath, ("Idempotency-Key" = Option<String>, Header)),
    request_body = AssignCodes,
    responses(
        (status = 200, body = Assigned),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "Not enough free codes, or a code held by another learner"),
    ),
    security(("jwt" = [])))]
/// Reserves codes for learners by email; an email unknown to the directory becomes an invited
/// learner. Every assignment is checked before any is written.
pub async fn assign_codes(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    PathParams(path): PathParams<CouponPath>,
    request: Request,
) -> ApiResult<Json<Assigned>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let Input(body) = Input::<AssignCodes>::from_request(request, &()).await?;
    if body.emails.is_empty() || body.emails.len() > MAX_EMAILS {
        return Err(ApiError::field(
            "emails",
            format!("must list 1 to {MAX_EMAILS} emails"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, email) in body.emails.iter().enumerate() {
        directory::check_email(email)
            .map_err(|e| ApiError::field(format!("emails[{i}]"), e.reason))?;
        if !seen.insert(email.to_lowercase()) {
            return Err(ApiError::field(format!("emails[{i}]"), "is listed twice"));
        }
    }
    if let Some(codes) = &body.codes {
        if codes.len() != body.emails.len() {
            return Err(ApiError::field(
                "codes",
                "must list one code per email, in the same order",
            ));
        }
    }
    let coupon = coupon_of(&state, customer, path.coupon_uuid).await?;
    // Learners already in the directory; the others get a placeholder id for the dry run (a
    // learner new to the coupon, as they will be) and a directory row only once all is checked.
    let mut known = Vec::with_capacity(body.emails.len());
    for email in &body.emails {
        known.push(directory::find_by_email(&state.pool, email).await?);
    }
    let ids: Vec<LearnerId> = known
        .iter()
        .map(|k| k.as_ref().map_or(LearnerId(Uuid::new_v4()), |r| r.id()))
        .collect();
    let codes = match body.codes {
        Some(codes) => codes,
        None => pick_codes(&coupon, &ids)?,
    };
    let command = |i: usize, learner: LearnerId| CouponCommand::AssignCode {
        code: codes[i].clone(),
        learner_id: learner,
        email_domain: directory::email_domain(&body.emails[i]),
    };
    let planned: Vec<CouponCommand> = (0..ids.len()).map(|i| command(i, ids[i])).collect();
    decide_all(coupon, planned, &services())
        .await
        .map_err(|(i, e)| about_email(CommandError::Domain(e).into(), i))?;

    let stream = coupon_stream_id(CouponId(path.coupon_uuid));
    let mut written = Written::default();
    let mut assignments = Vec::with_capacity(codes.len());
    for (i, email) in body.emails.iter().enumerate() {
        let learner = match &known[i] {
            Some(record) => record.id(),
            None => directory::learner_for_email(&state.pool, email)
                .await
                .map_err(|e| about_email(directory_error(e), i))?
                .id(),
        };
        // One key per assignment: a key names one command on the stream.
        let mut meta = metadata(&principal, &IdempotencyKey(None))?;
        if let Some(k) = &key.0 {
            let per_email = Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{k}\n{}", email.to_lowercase()).as_bytes(),
            );
            meta = meta.with_idempotency_key(format!("assign-{per_email}"))?;
        }
        let appended = state
            .store
            .execute::<Coupon>(&stream, command(i, learner), &services(), &meta)
            .await
            .map_err(|e| about_email(e.into(), i))?;
        written = written.then(Written::from(&appended));
        assignments.push(Assignment {
            email: email.clone(),
            code: codes[i].clone(),
        });
    }
    Ok(Json(Assigned {
        assignments,
        written,
    }))
}

/// A code for each learner: the one they already hold, else a free one (unassigned, unused).
fn pick_codes(coupon: &Coupon, learners: &[LearnerId]) -> ApiResult<Vec<String>> {
    let mut free = coupon
        .codes()
        .filter(|c| coupon.assignment(c).is_none() && coupon.uses_of(c) == Some(0));
    let mut picked = Vec::with_capacity(learners.len());
    for learner in learners {
        let held = coupon
            .codes()
            .find(|c| coupon.assignment(c) == Some(*learner));
        match held.or_else(|| free.next()) {
            Some(code) => picked.push(code.to_string()),
            None => {
                return Err(ApiError::Conflict(format!(
                    "the coupon has fewer free codes than the {} emails listed",
                    learners.len()
                )))
            }
        }
    }
    Ok(picked)
}

fn directory_error(err: directory::DirectoryError) -> ApiError {
    match err {
        directory::DirectoryError::Invalid(invalid) => invalid.into(),
        directory::DirectoryError::Store(failure) => failure.into(),
        other => ApiError::Conflict(other.to_string()),
    }
}

#[utoipa::path(delete, path = "/api/v1/customers/{customer_uuid}/coupons/{coupon_uuid}/codes/{code}/assignment", tag = "coupons",
    params(CodePath),
    responses(
        (status = 200, body = Written),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem, description = "The code is not assigned"),
    ),
    security(("jwt" = [])))]
/// Takes back a code's reservation.
pub async fn revoke_assignment(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(path): PathParams<CodePath>,
) -> ApiResult<(HeaderMap, Json<Written>)> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let coupon = coupon_of(&state, customer, path.coupon_uuid).await?;
    if coupon.uses_of(&path.code).is_none() {
        return Err(ApiError::NotFound("the coupon has no such code".into()));
    }
    let learner = coupon
        .assignment(&path.code)
        .ok_or_else(|| ApiError::Unprocessable("the code is not assigned".into()))?;
    let command = CouponCommand::RevokeAssignment {
        code: path.code,
        learner_id: learner,
    };
    let appended = state
        .store
        .execute::<Coupon>(
            &coupon_stream_id(CouponId(path.coupon_uuid)),
            command,
            &services(),
            &metadata(&principal, &IdempotencyKey(None))?,
        )
        .await?;
    let written = Written::from(&appended);
    Ok((written.headers(), Json(written)))
}
