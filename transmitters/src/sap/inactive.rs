//! The inactive-learner sync of SAP configurations: page through SAP's inactive students
//! (`searchStudent`) on the admin token and unlink, relinkably, every linked learner of the
//! customer whose id at the configuration's identity provider is among them. edX runs this as
//! a periodic job; here [`crate::run`] runs it every `WorkerOptions::sap_inactive_sync`, and
//! [`crate::Worker::sync_sap_inactive`] runs it once; one process at a time (an advisory lock).

use super::{admin_auth, settings, Sap, SEARCH_STUDENT_PATH};
use crate::channel::{Body, Request};
use crate::config::{ConfigCache, ConfigContext};
use crate::http::Http;
use domain::channel::Channel;
use reqwest::Method;
use serde_json::Value;
use sqlx::{Connection, PgPool};
use store::EventStore;
use uuid::Uuid;

/// Students asked per page (edX's `$top`).
pub const PAGE: usize = 500;
/// Pages read at most per configuration: a remote whose count never ends stops here.
const MAX_PAGES: usize = 10_000;

/// What one sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InactiveSync {
    /// Active SAP configurations synced without error.
    pub configurations: usize,
    /// Configurations whose sync failed (logged; tried again at the next run).
    pub failed: usize,
    /// Inactive students SAP listed.
    pub inactive: usize,
    /// Learners unlinked.
    pub unlinked: usize,
    /// Another process's sync was running, so this one did nothing.
    pub skipped: bool,
}

/// Why one configuration's sync stopped. Nothing was unlinked for it then.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("not a SAP configuration")]
    NotSap,
    #[error("the configuration has no identity provider, so its learners have no SAP ids")]
    NoIdentityProvider,
    #[error("searchStudent answered {status}: {excerpt}")]
    Remote { status: String, excerpt: String },
}

/// The ids of SAP's inactive students, every page.
pub async fn inactive_students(
    http: &Http,
    config: &ConfigContext,
) -> Result<Vec<String>, SyncError> {
    let settings = settings(config).ok_or(SyncError::NotSap)?;
    let mut students = Vec::new();
    let mut skip = 0;
    for _ in 0..MAX_PAGES {
        let request = Request {
            method: Method::GET,
            url: format!(
                "{}?$filter=criteria/isActive%20eq%20False&$select=studentID&$count=true&$top={PAGE}&$skip={skip}",
                settings.url(SEARCH_STUDENT_PATH)
            ),
            headers: Vec::new(),
            auth: admin_auth(),
            body: Body::Empty,
            private: Vec::new(),
        };
        let answer = http.send(&Sap, config, &request).await;
        let refused = |excerpt: &str| SyncError::Remote {
            status: answer
                .status
                .map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}")),
            excerpt: domain::transmission::scrub(excerpt).unwrap_or_default(),
        };
        if answer.status != Some(200) {
            return Err(refused(&answer.body));
        }
        let page: Value =
            serde_json::from_str(&answer.body).map_err(|_| refused("the answer is not JSON"))?;
        if !page["error"].is_null() {
            return Err(refused(&page["error"].to_string()));
        }
        let (Some(count), Some(values)) = (page["@odata.count"].as_u64(), page["value"].as_array())
        else {
            return Err(refused("the answer lacks @odata.count or value"));
        };
        students.extend(
            values
                .iter()
                .filter_map(|v| v["studentID"].as_str())
                .map(str::to_string),
        );
        skip += PAGE;
        if values.is_empty() || count <= skip as u64 {
            return Ok(students);
        }
    }
    Ok(students)
}

/// Unlinks the configuration's customer's linked learners SAP lists as inactive; returns how
/// many students SAP listed and how many learners were unlinked.
pub async fn unlink_inactive(
    pool: &PgPool,
    store: &EventStore,
    http: &Http,
    config: &ConfigContext,
) -> Result<(usize, usize), SyncError> {
    let idp = config
        .idp_id
        .as_deref()
        .ok_or(SyncError::NoIdentityProvider)?;
    let students = inactive_students(http, config).await?;
    let learners: Vec<Uuid> = sqlx::query_scalar(
        "SELECT s.learner_id FROM learner_sso_ids s
           JOIN learners_memberships m ON m.learner_id = s.learner_id
          WHERE m.customer_id = $1 AND m.state = 'linked'
            AND s.identity_provider = $2 AND s.remote_id = ANY ($3)
          ORDER BY s.learner_id",
    )
    .bind(config.customer_id.0)
    .bind(idp)
    .bind(&students)
    .fetch_all(pool)
    .await?;
    let mut unlinked = 0;
    for learner in learners {
        match crate::worker::unlink_learner(store, config.customer_id.0, learner).await {
            Ok(()) => unlinked += 1,
            Err(error) => tracing::warn!(%error, %learner, "unlinking an inactive SAP learner"),
        }
    }
    Ok((students.len(), unlinked))
}

/// The advisory lock that lets one sync run at a time across all worker processes.
const SYNC_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('sap-inactive-sync', 0))";

/// Runs [`unlink_inactive`] for every active SAP configuration, unless another process's sync
/// is running (every worker process runs the sync; two at once would ask SAP twice for the
/// same pages). A configuration that fails is logged and counted; the others go on.
pub async fn sync_all(
    pool: &PgPool,
    store: &EventStore,
    http: &Http,
    configs: &ConfigCache,
) -> Result<InactiveSync, sqlx::Error> {
    // A connection of its own, closed at the end: closing releases the session lock whatever
    // happened meanwhile, where a pooled connection would keep it.
    let mut holder = pool.acquire().await?.detach();
    let held: bool = sqlx::query_scalar(SYNC_LOCK).fetch_one(&mut holder).await?;
    if !held {
        let _ = holder.close().await;
        return Ok(InactiveSync {
            skipped: true,
            ..InactiveSync::default()
        });
    }
    let report = sync_configurations(pool, store, http, configs).await;
    let _ = holder.close().await;
    report
}

async fn sync_configurations(
    pool: &PgPool,
    store: &EventStore,
    http: &Http,
    configs: &ConfigCache,
) -> Result<InactiveSync, sqlx::Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT config_id FROM outbox_configs WHERE channel = $1 AND active ORDER BY config_id",
    )
    .bind(Channel::Sap.as_str())
    .fetch_all(pool)
    .await?;
    let mut report = InactiveSync::default();
    for id in ids {
        let config = match configs.get(id).await {
            Ok(config) if config.active => config,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%error, config = %id, "SAP inactive-learner sync");
                report.failed += 1;
                continue;
            }
        };
        match unlink_inactive(pool, store, http, &config).await {
            Ok((inactive, unlinked)) => {
                report.configurations += 1;
                report.inactive += inactive;
                report.unlinked += unlinked;
            }
            Err(error) => {
                tracing::warn!(%error, config = %id, "SAP inactive-learner sync");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
