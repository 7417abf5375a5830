//! The settings a worker sends a configuration's rows with, loaded from the configuration's
//! stream and cached for a short while (a settings change reaches workers within that time).
//! Secrets are decrypted here and live only in memory.

use domain::channel::{channel_stream_id, ChannelConfiguration, ChannelSettings};
use domain::ids::{ChannelConfigId, CustomerId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::secrets::SecretBox;
use store::EventStore;
use tokio::sync::Mutex;
use uuid::Uuid;

/// One configuration as a worker needs it.
#[derive(Clone)]
pub struct ConfigContext {
    pub config_id: ChannelConfigId,
    pub customer_id: CustomerId,
    pub active: bool,
    pub dry_run: bool,
    pub chunk_size: usize,
    pub idp_id: Option<String>,
    pub settings: ChannelSettings,
    secrets: BTreeMap<String, String>,
}

impl fmt::Debug for ConfigContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets stay out of every log line.
        f.debug_struct("ConfigContext")
            .field("config_id", &self.config_id)
            .field("customer_id", &self.customer_id)
            .field("active", &self.active)
            .field("dry_run", &self.dry_run)
            .field("chunk_size", &self.chunk_size)
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConfigContext {
    /// A decrypted secret (`client_id`, `client_secret`, `key`, `secret`).
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(String::as_str)
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("channel configuration {0} does not exist")]
    Missing(Uuid),
    #[error("secret '{name}' of configuration {config}: {error}")]
    Secret {
        config: Uuid,
        name: String,
        error: store::secrets::SecretError,
    },
    #[error(transparent)]
    Store(#[from] store::Failure),
}

/// Loads configurations, each at most once per `ttl`.
pub struct ConfigCache {
    store: EventStore,
    secrets: Option<SecretBox>,
    ttl: Duration,
    cached: Mutex<HashMap<Uuid, (Instant, Arc<ConfigContext>)>>,
}

impl ConfigCache {
    pub fn new(store: EventStore, secrets: Option<SecretBox>, ttl: Duration) -> Self {
        Self {
            store,
            secrets,
            ttl,
            cached: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, config_id: Uuid) -> Result<Arc<ConfigContext>, ConfigError> {
        if let Some((at, config)) = self.cached.lock().await.get(&config_id) {
            if at.elapsed() < self.ttl {
                return Ok(config.clone());
            }
        }
        let config = Arc::new(self.load(config_id).await?);
        self.cached
            .lock()
            .await
            .insert(config_id, (Instant::now(), config.clone()));
        Ok(config)
    }

    async fn load(&self, config_id: Uuid) -> Result<ConfigContext, ConfigError> {
        let id = ChannelConfigId(config_id);
        let (config, _) = self
            .store
            .load::<ChannelConfiguration>(&channel_stream_id(id))
            .await?;
        let (Some(customer_id), Some(settings)) = (config.customer_id(), config.settings()) else {
            return Err(ConfigError::Missing(config_id));
        };
        let mut secrets = BTreeMap::new();
        for name in settings.channel().secret_names() {
            let (Some(reference), Some(secret_box)) = (config.secret(name), &self.secrets) else {
                continue;
            };
            let value = secret_box
                .get(self.store.pool(), reference)
                .await
                .map_err(|error| ConfigError::Secret {
                    config: config_id,
                    name: (*name).to_string(),
                    error,
                })?;
            secrets.insert((*name).to_string(), value);
        }
        Ok(ConfigContext {
            config_id: id,
            customer_id,
            active: config.is_active(),
            dry_run: config.dry_run(),
            chunk_size: usize::try_from(config.transmission_chunk_size())
                .unwrap_or(1)
                .max(1),
            idp_id: config.idp_id().map(str::to_string),
            settings: settings.clone(),
            secrets,
        })
    }
}
