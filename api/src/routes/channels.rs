//! Channel configurations of a customer, under `/api/v1/customers/{customer_uuid}/channels`:
//! create, update, deactivate (administrators of the customer), list and read (also operators
//! and channel workers). Their transmissions are in [`super::transmissions`].
//!
//! Secrets (OAuth client credentials, an LRS key) are write-only: a request may carry them in
//! `secrets`, they are encrypted into the secrets table with the service's key and only their
//! references reach the log; no answer ever shows them, only the names of the secrets set. A
//! service started without a key refuses requests carrying secrets with 503.

use crate::auth::Principal;
use crate::consistency::MinPosition;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdempotencyKey, Input, PathParams};
use crate::page::PageParams;
use crate::page::{Page, PageRequest, RequestUrl};
use crate::routes::customers::stored_customer;
use crate::routes::dry_run::decide_all;
use crate::written::{metadata, Written};
use crate::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::channel::{channel_stream_id, ChannelCommand, ChannelConfiguration, ChannelSettings};
use domain::customer::Customer;
use domain::ids::{CatalogId, ChannelConfigId, CustomerId, SecretRef};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use store::CommandError;
use uuid::Uuid;

/// The read model the list and the transmissions come from.
pub(crate) const READ_MODEL: &str = "outbox";
/// The longest secret accepted.
const SECRET_MAX: usize = 4096;

/// A secret as a request carries it: never shown, not even in debug output.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerPath {
    customer_uuid: Uuid,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConfigPath {
    pub(crate) customer_uuid: Uuid,
    pub(crate) config_uuid: Uuid,
}

fn yes() -> bool {
    true
}

/// A new channel configuration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    pub display_name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Catalogs of the customer to transmit; none means all of them.
    #[serde(default)]
    pub catalogs_to_transmit: Vec<Uuid>,
    /// Items per request; the channel's default when absent.
    pub transmission_chunk_size: Option<u32>,
    #[serde(default)]
    pub disable_learner_data: bool,
    /// One of the customer's identity providers.
    pub idp_id: Option<String>,
    /// Tagged by `channel` (`SAP`, `DEGREED2`, `CSOD`, `XAPI`) with that channel's settings.
    #[schema(value_type = Object)]
    pub settings: ChannelSettings,
    /// Write-only: `client_id`, `client_secret` (SAP, Degreed, Cornerstone) or `key`, `secret`
    /// (xAPI).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, SecretText>,
}

/// Changes to a configuration: absent fields stay as they are; `idp_id: null` removes it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannel {
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub dry_run: Option<bool>,
    pub catalogs_to_transmit: Option<Vec<Uuid>>,
    pub transmission_chunk_size: Option<u32>,
    pub disable_learner_data: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub idp_id: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<ChannelSettings>,
    /// Write-only: secrets to set (by name).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, SecretText>,
}

/// A present field, `null` included, is `Some`: tells "remove" from "leave unchanged".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A configuration as answered: everything but the secrets, of which only the names set show.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    pub config_uuid: Uuid,
    pub customer_uuid: Uuid,
    pub channel: String,
    pub display_name: String,
    pub active: bool,
    pub dry_run: bool,
    pub catalogs_to_transmit: Vec<Uuid>,
    pub transmission_chunk_size: u32,
    pub disable_learner_data: bool,
    pub idp_id: Option<String>,
    #[schema(value_type = Object)]
    pub settings: Option<ChannelSettings>,
    /// Names of the secrets that are set; their values are never shown.
    pub secrets_set: Vec<String>,
}

impl ChannelView {
    fn of(config: &ChannelConfiguration) -> Option<Self> {
        let channel = config.channel()?;
        Some(Self {
            config_uuid: config.config_id()?.0,
            customer_uuid: config.customer_id()?.0,
            channel: channel.as_str().to_string(),
            display_name: config.display_name().to_string(),
            active: config.is_active(),
            dry_run: config.dry_run(),
            catalogs_to_transmit: config.catalogs_to_transmit().iter().map(|c| c.0).collect(),
            transmission_chunk_size: config.transmission_chunk_size(),
            disable_learner_data: config.disable_learner_data(),
            idp_id: config.idp_id().map(str::to_string),
            settings: config.settings().cloned(),
            secrets_set: channel
                .secret_names()
                .iter()
                .filter(|name| config.secret(name).is_some())
                .map(|name| name.to_string())
                .collect(),
        })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelCreated {
    pub config_uuid: Uuid,
    #[serde(flatten)]
    pub written: Written,
}

/// The customer's configuration, or 404 (one of another customer is not revealed).
pub(crate) async fn config_of(
    state: &AppState,
    customer: CustomerId,
    id: Uuid,
) -> ApiResult<ChannelConfiguration> {
    let (config, _) = state
        .store
        .load::<ChannelConfiguration>(&channel_stream_id(ChannelConfigId(id)))
        .await?;
    if config.customer_id() == Some(customer) {
        Ok(config)
    } else {
        Err(ApiError::NotFound(format!(
            "customer {} has no channel configuration {id}",
            customer.0
        )))
    }
}

/// That the catalogs and the identity provider are the customer's own.
fn check_ownership(
    owner: &Customer,
    catalogs: Option<&[Uuid]>,
    idp_id: Option<&str>,
) -> ApiResult<()> {
    for catalog in catalogs.unwrap_or_default() {
        if owner.catalog(CatalogId(*catalog)).is_none() {
            return Err(ApiError::field(
                "catalogs_to_transmit",
                format!("{catalog} is not a catalog of this customer"),
            ));
        }
    }
    if let Some(idp) = idp_id {
        if !owner
            .identity_providers()
            .iter()
            .any(|p| p.provider_id == idp)
        {
            return Err(ApiError::field(
                "idp_id",
                "is not an identity provider of this customer",
            ));
        }
    }
    Ok(())
}

/// Checks the secrets' shape and that they can be stored at all.
fn check_secrets(state: &AppState, secrets: &BTreeMap<String, SecretText>) -> ApiResult<()> {
    if secrets.is_empty() {
        return Ok(());
    }
    for (name, SecretText(value)) in secrets {
        if value.is_empty() || value.len() > SECRET_MAX {
            return Err(ApiError::field(
                format!("secrets.{name}"),
                format!("must be 1 to {SECRET_MAX} bytes"),
            ));
        }
    }
    if state.secrets.is_none() {
        return Err(ApiError::Unavailable(
            "this service has no SECRETS_KEY configured, so it cannot store channel secrets; \
             send the request without secrets or configure the key"
                .into(),
        ));
    }
    Ok(())
}

/// Stand-in references for the dry run: the decision does not depend on the values.
fn placeholders(secrets: &BTreeMap<String, SecretText>) -> BTreeMap<String, SecretRef> {
    secrets
        .keys()
        .map(|name| (name.clone(), SecretRef(Uuid::nil())))
        .collect()
}

/// Encrypts and stores the secrets; their references.
async fn store_secrets(
    state: &AppState,
    secrets: BTreeMap<String, SecretText>,
) -> ApiResult<BTreeMap<String, SecretRef>> {
    let mut refs = BTreeMap::new();
    if secrets.is_empty() {
        return Ok(refs);
    }
    let Some(boxed) = &state.secrets else {
        return Err(ApiError::Unavailable("no SECRETS_KEY is configured".into()));
    };
    for (name, SecretText(value)) in secrets {
        let secret = boxed.put(&state.pool, &value).await.map_err(|e| match e {
            store::secrets::SecretError::Store(f) => ApiError::from(f),
            other => ApiError::Internal(other.to_string()),
        })?;
        refs.insert(name, secret);
    }
    Ok(refs)
}

fn domain_error(err: domain::channel::ChannelError) -> ApiError {
    CommandError::Domain(err).into()
}

#[utoipa::path(post, path = "/api/v1/customers/{customer_uuid}/channels", tag = "channels",
    params(CustomerPath, ("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateChannel,
    responses(
        (status = 201, body = ChannelCreated),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 503, body = crate::error::Problem, description = "Secrets sent to a service without SECRETS_KEY"),
    ),
    security(("jwt" = [])))]
/// Creates a channel configuration; its secrets are stored encrypted, never returned.
pub async fn create_channel(
    State(state): State<AppState>,
    principal: Principal,
    key: IdempotencyKey,
    PathParams(path): PathParams<CustomerPath>,
    request: Request,
) -> ApiResult<(StatusCode, HeaderMap, Json<ChannelCreated>)> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let Input(body) = Input::<CreateChannel>::from_request(request, &()).await?;
    let owner = stored_customer(&state, customer).await?;
    check_ownership(
        &owner,
        Some(&body.catalogs_to_transmit),
        body.idp_id.as_deref(),
    )?;
    check_secrets(&state, &body.secrets)?;
    let config_id = ChannelConfigId(key.new_id(&principal, &format!("channel:{}", customer.0)));
    let stream = channel_stream_id(config_id);
    let chunk = body
        .transmission_chunk_size
        .unwrap_or_else(|| body.settings.channel().default_chunk_size());
    let create = |secrets| ChannelCommand::CreateChannelConfiguration {
        config_id,
        customer_id: customer,
        display_name: body.display_name.clone(),
        active: body.active,
        dry_run: body.dry_run,
        catalogs_to_transmit: body
            .catalogs_to_transmit
            .iter()
            .map(|c| CatalogId(*c))
            .collect(),
        transmission_chunk_size: chunk,
        disable_learner_data: body.disable_learner_data,
        idp_id: body.idp_id.clone(),
        settings: body.settings.clone(),
        secrets,
    };
    let (existing, _) = state.store.load::<ChannelConfiguration>(&stream).await?;
    let meta = metadata(&principal, &key)?;
    let secrets = if existing.is_created() {
        // A repeated request (same key): the store answers it with the first outcome, and its
        // secrets are not stored a second time.
        placeholders(&body.secrets)
    } else {
        decide_all(existing, [create(placeholders(&body.secrets))], &())
            .await
            .map_err(|(_, e)| domain_error(e))?;
        store_secrets(&state, body.secrets.clone()).await?
    };
    let appended = state
        .store
        .execute::<ChannelConfiguration>(&stream, create(secrets), &(), &meta)
        .await?;
    let written = Written::from(&appended);
    Ok((
        StatusCode::CREATED,
        written.headers(),
        Json(ChannelCreated {
            config_uuid: config_id.0,
            written,
        }),
    ))
}

#[utoipa::path(patch, path = "/api/v1/customers/{customer_uuid}/channels/{config_uuid}", tag = "channels",
    params(ConfigPath),
    request_body = UpdateChannel,
    responses(
        (status = 200, body = Written),
        (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "Settings of another channel"),
        (status = 503, body = crate::error::Problem, description = "Secrets sent to a service without SECRETS_KEY"),
    ),
    security(("jwt" = [])))]
/// Changes a configuration: settings, activation and secrets, all checked before any is written.
pub async fn update_channel(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(path): PathParams<ConfigPath>,
    request: Request,
) -> ApiResult<(HeaderMap, Json<Written>)> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    let Input(body) = Input::<UpdateChannel>::from_request(request, &()).await?;
    let config = config_of(&state, customer, path.config_uuid).await?;
    let owner = stored_customer(&state, customer).await?;
    check_ownership(
        &owner,
        body.catalogs_to_transmit.as_deref(),
        body.idp_id.as_ref().and_then(|i| i.as_deref()),
    )?;
    check_secrets(&state, &body.secrets)?;
    let config_id = ChannelConfigId(path.config_uuid);
    let mut commands = vec![ChannelCommand::UpdateChannelConfiguration {
        config_id,
        display_name: body.display_name,
        dry_run: body.dry_run,
        catalogs_to_transmit: body
            .catalogs_to_transmit
            .map(|list| list.into_iter().map(CatalogId).collect()),
        transmission_chunk_size: body.transmission_chunk_size,
        disable_learner_data: body.disable_learner_data,
        idp_id: body.idp_id,
        settings: body.settings,
    }];
    match body.active {
        Some(true) => commands.push(ChannelCommand::ReactivateChannelConfiguration),
        Some(false) => commands.push(ChannelCommand::DeactivateChannelConfiguration),
        None => {}
    }
    let set_secret = |name: &String, secret: SecretRef| ChannelCommand::SetChannelSecret {
        name: name.clone(),
        secret,
    };
    let planned: Vec<ChannelCommand> = commands
        .iter()
        .cloned()
        .chain(
            placeholders(&body.secrets)
                .iter()
                .map(|(n, s)| set_secret(n, *s)),
        )
        .collect();
    decide_all(config, planned, &())
        .await
        .map_err(|(_, e)| domain_error(e))?;
    let refs = store_secrets(&state, body.secrets).await?;
    commands.extend(refs.iter().map(|(n, s)| set_secret(n, *s)));
    let meta = metadata(&principal, &IdempotencyKey(None))?;
    let stream = channel_stream_id(config_id);
    let mut written = Written::default();
    for command in commands {
        let appended = state
            .store
            .execute::<ChannelConfiguration>(&stream, command, &(), &meta)
            .await?;
        written = written.then(Written::from(&appended));
    }
    Ok((written.headers(), Json(written)))
}

#[utoipa::path(post, path = "/api/v1/customers/{customer_uuid}/channels/{config_uuid}/deactivate", tag = "channels",
    params(ConfigPath),
    responses(
        (status = 200, body = Written),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// Stops transmitting for a configuration (its queued rows are cancelled by the outbox).
pub async fn deactivate_channel(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(path): PathParams<ConfigPath>,
) -> ApiResult<(HeaderMap, Json<Written>)> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_admin_of(customer)?;
    config_of(&state, customer, path.config_uuid).await?;
    let appended = state
        .store
        .execute::<ChannelConfiguration>(
            &channel_stream_id(ChannelConfigId(path.config_uuid)),
            ChannelCommand::DeactivateChannelConfiguration,
            &(),
            &metadata(&principal, &IdempotencyKey(None))?,
        )
        .await?;
    let written = Written::from(&appended);
    Ok((written.headers(), Json(written)))
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/channels", tag = "channels",
    params(CustomerPath, PageRequest,
        ("min_position" = Option<i64>, Query, description = "Wait until the outbox read model has applied this global position")),
    responses(
        (status = 200, body = Page<ChannelView>),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// The customer's channel configurations, without their secrets.
pub async fn list_channels(
    State(state): State<AppState>,
    principal: Principal,
    min_position: MinPosition,
    url: RequestUrl,
    PathParams(path): PathParams<CustomerPath>,
    page: PageParams,
) -> ApiResult<Json<Page<ChannelView>>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_channel_reader(customer)?;
    min_position.wait(&state.pool, &[READ_MODEL]).await?;
    let (limit, offset) = page.0.limit_offset()?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_configs WHERE customer_id = $1")
            .bind(customer.0)
            .fetch_one(&state.pool)
            .await?;
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT config_id FROM outbox_configs WHERE customer_id = $1
          ORDER BY config_id LIMIT $2 OFFSET $3",
    )
    .bind(customer.0)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let mut views = Vec::with_capacity(ids.len());
    for id in ids {
        let config = config_of(&state, customer, id).await?;
        views.extend(ChannelView::of(&config));
    }
    Ok(Json(Page::new(&url, page.0, count, views)?))
}

#[utoipa::path(get, path = "/api/v1/customers/{customer_uuid}/channels/{config_uuid}", tag = "channels",
    params(ConfigPath),
    responses(
        (status = 200, body = ChannelView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
    ),
    security(("jwt" = [])))]
/// One configuration, without its secrets.
pub async fn get_channel(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(path): PathParams<ConfigPath>,
) -> ApiResult<Json<ChannelView>> {
    let customer = CustomerId(path.customer_uuid);
    principal.require_channel_reader(customer)?;
    let config = config_of(&state, customer, path.config_uuid).await?;
    ChannelView::of(&config)
        .map(Json)
        .ok_or_else(|| ApiError::Internal("a created configuration without settings".into()))
}
