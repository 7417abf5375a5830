//! The outbox worker: claim due rows, build each channel's requests, send them under the
//! configuration's rate limit and circuit breaker, record every outcome as an event, then
//! complete, reschedule, dead-letter or cancel the rows.
//!
//! Delivery is at least once: a worker that dies after sending and before completing leaves a
//! leased row that another worker claims when the lease expires and sends again, with the same
//! item id (the idempotency key). Nothing is dropped: every claimed row ends completed, failed
//! (due again with backoff, or the remote's `Retry-After`), dead-lettered (visible, requeueable),
//! cancelled (consent refused at send time, configuration deactivated), or handed back
//! untouched when the worker chose not to call (circuit open, rate limit, dry run).
//!
//! Per turn, a worker claims up to `batch` rows, groups them per configuration, chunks content
//! rows by the configuration's `transmission_chunk_size` (learner rows go one per request),
//! re-checks consent for learner rows, and sends up to `concurrency` requests at once.

use crate::channel::{Answer, BuildContext, ChannelClient, Planned, Request, Verdict};
use crate::channels::client_for;
use crate::config::{ConfigCache, ConfigContext};
use crate::consent::{self, ConsentCheck};
use crate::http::Http;
use crate::lease;
use crate::limits::{CircuitBreaker, TokenBucket};
use crate::record::{Outcome, Recorder, ACTOR};
use crate::sap::inactive::InactiveSync;
use domain::membership::{membership_stream_id, LearnerMemberships, MembershipCommand};
use domain::transmission::TransmissionStatus;
use projections::read_models::outbox::{claim, fail, ItemKind, OutboxItem};
use sqlx::PgPool;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::secrets::SecretBox;
use store::{CommandMetadata, EventStore};
use tokio::sync::Mutex;
use uuid::Uuid;

/// How workers behave. The defaults suit a production worker; tests shorten the times.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Prefix of the lease owner names (each worker adds its number and a random suffix).
    pub name: String,
    /// Worker loops in this process.
    pub workers: usize,
    /// Rows claimed per turn.
    pub batch: i64,
    /// Requests in flight per worker.
    pub concurrency: usize,
    /// How long a claimed row stays leased; longer than a request can take.
    pub lease: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// How long an idle worker waits before claiming again.
    pub poll: Duration,
    /// Attempts before a row is dead-lettered.
    pub max_attempts: i32,
    /// Requests per second per configuration (token bucket), and the burst.
    pub rate_per_config: f64,
    pub burst_per_config: u32,
    /// Consecutive failures that open a configuration's circuit, and for how long.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// When a row built in dry-run mode is built again (so it goes out once dry run is off).
    pub dry_run_recheck: Duration,
    /// When a learner row whose consent the read model does not know yet is tried again.
    pub consent_recheck: Duration,
    /// How long a configuration's settings are cached.
    pub config_ttl: Duration,
    /// The key that opens the configurations' secrets.
    pub secrets: Option<SecretBox>,
    /// The LMS's domain, as xAPI activity ids name it.
    pub lms_domain: String,
    /// How often SAP's inactive students are unlinked (see [`crate::sap::inactive`]), the
    /// first time when the workers start; `None` never.
    pub sap_inactive_sync: Option<Duration>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            name: "worker".into(),
            workers: 2,
            batch: 200,
            concurrency: 32,
            lease: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            max_attempts: 8,
            rate_per_config: 50.0,
            burst_per_config: 100,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            dry_run_recheck: Duration::from_secs(3600),
            consent_recheck: Duration::from_secs(15),
            config_ttl: Duration::from_secs(5),
            secrets: None,
            lms_domain: "localhost".into(),
            sap_inactive_sync: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

/// Why a turn stopped early. Rows it had claimed stay leased and are claimed again when the
/// lease expires.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("recording an outcome: {0}")]
    Record(String),
}

/// What one turn did, row by row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TurnReport {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    pub dead: usize,
    pub withheld: usize,
    pub skipped: usize,
    /// Handed back without a call (circuit open, rate limit, dry run, configuration inactive).
    pub released: usize,
    pub dry_run: usize,
}

impl TurnReport {
    fn add(&mut self, other: &TurnReport) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.failed += other.failed;
        self.dead += other.dead;
        self.withheld += other.withheld;
        self.skipped += other.skipped;
        self.released += other.released;
        self.dry_run += other.dry_run;
    }
}

/// One planned request with what it needs to be carried out.
struct Job {
    config: Arc<ConfigContext>,
    client: Arc<dyn ChannelClient>,
    planned: Planned,
}

/// Limits of one configuration.
struct Limits {
    bucket: TokenBucket,
    breaker: CircuitBreaker,
}

/// A worker's shared state: pool, store, HTTP client with its token cache, configurations
/// and their limits. Several worker loops share one.
pub struct Worker {
    pool: PgPool,
    store: EventStore,
    http: Http,
    configs: ConfigCache,
    limits: Mutex<HashMap<Uuid, Limits>>,
    recorder: Recorder,
    options: WorkerOptions,
}

/// Runs `options.workers` worker loops until `shutdown` completes, then lets each finish its
/// turn. The service binary runs this as its `--workers` role.
pub async fn run(
    pool: PgPool,
    options: WorkerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let worker = Arc::new(Worker::new(pool, options));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for n in 0..worker.options.workers.max(1) {
        let owner = format!("{}-{n}-{}", worker.options.name, Uuid::new_v4().simple());
        let (worker, mut stopped) = (worker.clone(), stopped.clone());
        loops.spawn(async move {
            while !*stopped.borrow() {
                let idle = match worker.turn(&owner).await {
                    Ok(report) => report.claimed == 0,
                    Err(error) => {
                        tracing::warn!(%error, owner, "worker turn failed");
                        true
                    }
                };
                if idle {
                    tokio::select! {
                        _ = tokio::time::sleep(worker.options.poll) => {}
                        _ = stopped.changed() => {}
                    }
                }
            }
        });
    }
    if let Some(every) = worker.options.sap_inactive_sync {
        let (worker, mut stopped) = (worker.clone(), stopped.clone());
        loops.spawn(async move {
            while !*stopped.borrow() {
                match worker.sync_sap_inactive().await {
                    Ok(report) if report.skipped => {
                        tracing::debug!("SAP inactive-learner sync running in another process")
                    }
                    Ok(report) if report.unlinked > 0 || report.failed > 0 => {
                        tracing::info!(?report, "SAP inactive-learner sync")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "SAP inactive-learner sync failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => {}
                }
            }
        });
    }
    shutdown.await;
    let _ = stop.send(true);
    while loops.join_next().await.is_some() {}
    Ok(())
}

impl Worker {
    /// A worker on `pool`. Call inside a tokio runtime: it starts the task that records
    /// outcomes in groups.
    pub fn new(pool: PgPool, options: WorkerOptions) -> Self {
        let store = EventStore::new(pool.clone());
        Self {
            http: Http::new(options.request_timeout),
            configs: ConfigCache::new(store.clone(), options.secrets.clone(), options.config_ttl),
            limits: Mutex::new(HashMap::new()),
            recorder: Recorder::start(store.clone()),
            pool,
            store,
            options,
        }
    }

    pub fn http(&self) -> &Http {
        &self.http
    }

    /// One turn: claim, send, settle (see the module doc).
    pub async fn turn(&self, owner: &str) -> Result<TurnReport, WorkerError> {
        let items = claim(&self.pool, owner, self.options.batch, self.options.lease).await?;
        let mut report = TurnReport {
            claimed: items.len(),
            ..TurnReport::default()
        };
        let mut groups: Vec<(Uuid, Vec<OutboxItem>)> = Vec::new();
        for item in items {
            match groups
                .iter_mut()
                .find(|(config, _)| *config == item.config_id)
            {
                Some((_, rows)) => rows.push(item),
                None => groups.push((item.config_id, vec![item])),
            }
        }
        let mut work: Vec<Job> = Vec::new();
        for (config_id, rows) in groups {
            let config = match self.configs.get(config_id).await {
                Ok(config) => config,
                Err(error) => {
                    let reason = error.to_string();
                    for item in &rows {
                        self.settle_unsent(owner, item, &reason, &mut report)
                            .await?;
                    }
                    continue;
                }
            };
            if !config.active {
                for item in &rows {
                    lease::cancel(&self.pool, item.item_id, owner, "configuration inactive")
                        .await?;
                    report.released += 1;
                }
                continue;
            }
            let client = client_for(&config.settings);
            let rows = self.consented(owner, rows, &mut report).await?;
            let context = BuildContext {
                pool: &self.pool,
                config: &config,
                lms_domain: self.options.lms_domain.clone(),
                secrets: self.options.secrets.as_ref(),
            };
            let (content, learners): (Vec<_>, Vec<_>) =
                rows.into_iter().partition(|i| i.kind == ItemKind::Content);
            let mut chunks: Vec<Vec<OutboxItem>> = Vec::new();
            let mut content = content.into_iter().peekable();
            while content.peek().is_some() {
                chunks.push(content.by_ref().take(config.chunk_size).collect());
            }
            if !learners.is_empty() {
                chunks.push(learners);
            }
            for chunk in chunks {
                for planned in client.plan(&context, chunk).await? {
                    work.push(Job {
                        config: config.clone(),
                        client: client.clone(),
                        planned,
                    });
                }
            }
        }
        // Futures pushed in a loop rather than mapped through a closure: rustc cannot see that
        // such a closure is general enough over the trait object's lifetime when the turn is
        // spawned.
        let limit = tokio::sync::Semaphore::new(self.options.concurrency.max(1));
        let mut jobs = Vec::with_capacity(work.len());
        for job in work {
            jobs.push(self.job(owner, job, &limit));
        }
        let reports = futures_util::future::join_all(jobs).await;
        for one in reports {
            report.add(&one?);
        }
        Ok(report)
    }

    async fn job(
        &self,
        owner: &str,
        Job {
            config,
            client,
            planned,
        }: Job,
        limit: &tokio::sync::Semaphore,
    ) -> Result<TurnReport, WorkerError> {
        let _permit = limit.acquire().await;
        let mut report = TurnReport::default();
        self.carry_out(owner, &config, client.as_ref(), planned, &mut report)
            .await?;
        Ok(report)
    }

    /// The rows that may be sent: content rows, and learner rows whose consent the read model
    /// confirms. Refused ones are cancelled; unknown ones are tried again later.
    async fn consented(
        &self,
        owner: &str,
        rows: Vec<OutboxItem>,
        report: &mut TurnReport,
    ) -> Result<Vec<OutboxItem>, WorkerError> {
        let mut allowed = Vec::with_capacity(rows.len());
        let (learners, other): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|i| i.kind == ItemKind::Learner && i.learner_id.is_some());
        allowed.extend(other);
        let Some(customer) = learners.first().map(|i| i.customer_id) else {
            return Ok(allowed);
        };
        let asked: Vec<(Uuid, String)> = learners
            .iter()
            .map(|i| {
                let key = i.payload["course_key"].as_str().unwrap_or_default();
                (i.learner_id.unwrap_or_default(), key.to_string())
            })
            .collect();
        let answers = consent::check_many(&self.pool, customer, &asked).await?;
        for (item, answer) in learners.into_iter().zip(answers) {
            match answer {
                ConsentCheck::Allowed => allowed.push(item),
                ConsentCheck::Refused => {
                    let outcome = Outcome {
                        status: TransmissionStatus::Withheld,
                        answer: None,
                        note: Some("consent not granted at send time".into()),
                        duration: Duration::ZERO,
                    };
                    self.record(&item, &outcome, None).await?;
                    lease::cancel(&self.pool, item.item_id, owner, "consent not granted").await?;
                    report.withheld += 1;
                }
                ConsentCheck::Unknown => {
                    // The consent read model lags behind the outbox: ask again shortly, without
                    // counting an attempt, so a paused consent runner dead-letters nothing.
                    let outcome = Outcome {
                        status: TransmissionStatus::Failed,
                        answer: None,
                        note: Some("consent not known to the consent read model yet".into()),
                        duration: Duration::ZERO,
                    };
                    self.record(&item, &outcome, None).await?;
                    lease::release(
                        &self.pool,
                        item.item_id,
                        owner,
                        self.options.consent_recheck,
                    )
                    .await?;
                    report.released += 1;
                }
            }
        }
        Ok(allowed)
    }

    /// Sends (or skips, or dry-runs) one planned request and settles its rows.
    async fn carry_out(
        &self,
        owner: &str,
        config: &ConfigContext,
        client: &dyn ChannelClient,
        planned: Planned,
        report: &mut TurnReport,
    ) -> Result<(), WorkerError> {
        let (items, request) = match planned {
            Planned::Skip { items, reason } => {
                for item in &items {
                    let outcome = Outcome {
                        status: TransmissionStatus::Skipped,
                        answer: None,
                        note: Some(reason.clone()),
                        duration: Duration::ZERO,
                    };
                    self.record_and_complete(item, &outcome, None, owner)
                        .await?;
                    report.skipped += 1;
                }
                return Ok(());
            }
            Planned::Unbuildable { items, reason } => {
                for item in &items {
                    self.settle_unsent(owner, item, &reason, report).await?;
                }
                return Ok(());
            }
            Planned::Defer { items, after } => {
                for item in &items {
                    lease::release(&self.pool, item.item_id, owner, after).await?;
                    report.released += 1;
                }
                return Ok(());
            }
            Planned::Send { items, request } => (items, request),
        };
        if config.dry_run {
            let size = match &request.body {
                crate::channel::Body::Json(value) => value.to_string().len(),
                crate::channel::Body::Form(fields) => {
                    fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum()
                }
                crate::channel::Body::Empty => 0,
            };
            let note = format!("dry run: {} request of {size} bytes built", request.method);
            for item in &items {
                let outcome = Outcome {
                    status: TransmissionStatus::DryRun,
                    answer: None,
                    note: Some(note.clone()),
                    duration: Duration::ZERO,
                };
                self.record(item, &outcome, Some(&request)).await?;
                lease::release(
                    &self.pool,
                    item.item_id,
                    owner,
                    self.options.dry_run_recheck,
                )
                .await?;
                report.dry_run += 1;
            }
            return Ok(());
        }
        if let Some(wait) = self.admit(config).await {
            // The remote is resting or the rate is used up: hand the rows back, uncounted.
            for item in &items {
                lease::release(&self.pool, item.item_id, owner, wait).await?;
                report.released += 1;
            }
            return Ok(());
        }
        let answer = client.send(&self.http, config, &request).await;
        let verdict = client.classify(&answer);
        self.observe(config, verdict, &answer).await;
        for item in &items {
            self.settle(owner, item, verdict, &answer, &request, report)
                .await?;
        }
        Ok(())
    }

    /// Whether the configuration's circuit and rate allow a call now; else how long to wait.
    /// A short wait for the rate is waited here.
    async fn admit(&self, config: &ConfigContext) -> Option<Duration> {
        loop {
            let wait = {
                let mut limits = self.limits.lock().await;
                let limits = limits.entry(config.config_id.0).or_insert_with(|| Limits {
                    bucket: TokenBucket::new(
                        self.options.rate_per_config,
                        self.options.burst_per_config,
                    ),
                    breaker: CircuitBreaker::new(
                        self.options.breaker_threshold,
                        self.options.breaker_cooldown,
                    ),
                });
                // The rate first: the breaker's probe is let out only for a call that goes.
                let now = Instant::now();
                match limits.bucket.take(now) {
                    None => return limits.breaker.admit(now),
                    Some(wait) => wait,
                }
            };
            if wait > Duration::from_secs(1) {
                return Some(wait);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Feeds an answer to the configuration's circuit breaker.
    async fn observe(&self, config: &ConfigContext, verdict: Verdict, answer: &Answer) {
        let mut limits = self.limits.lock().await;
        let Some(limits) = limits.get_mut(&config.config_id.0) else {
            return;
        };
        let unwell = verdict == Verdict::Retryable
            && matches!(answer.status, None | Some(429) | Some(500..=599));
        if unwell {
            limits.breaker.failure(Instant::now());
        } else {
            limits.breaker.success();
        }
    }

    /// The status a failed attempt of `item` gets: dead-lettered when it was the last allowed.
    fn retry_status(&self, item: &OutboxItem) -> TransmissionStatus {
        if item.attempts + 1 >= self.options.max_attempts {
            TransmissionStatus::DeadLettered
        } else {
            TransmissionStatus::Failed
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        owner: &str,
        item: &OutboxItem,
        verdict: Verdict,
        answer: &Answer,
        request: &Request,
        report: &mut TurnReport,
    ) -> Result<(), WorkerError> {
        let status = match verdict {
            Verdict::Success => TransmissionStatus::Sent,
            Verdict::Retryable => self.retry_status(item),
            Verdict::Permanent | Verdict::UnlinkLearner => TransmissionStatus::DeadLettered,
        };
        let outcome = Outcome {
            status,
            answer: Some(answer),
            note: None,
            duration: answer.duration,
        };
        let error = || {
            let code = answer
                .status
                .map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}"));
            let excerpt = crate::record::excerpt(answer, Some(request));
            let scrubbed = domain::transmission::scrub(&excerpt).unwrap_or_default();
            format!("{code}: {scrubbed}")
        };
        match verdict {
            Verdict::Success => {
                // The audit event and the completion commit together, with the other rows
                // that finish at about the same time.
                self.record_and_complete(item, &outcome, Some(request), owner)
                    .await?;
            }
            Verdict::Retryable => {
                self.record(item, &outcome, Some(request)).await?;
                fail(
                    &self.pool,
                    item.item_id,
                    owner,
                    &error(),
                    answer.retry_after,
                    self.options.max_attempts,
                )
                .await?;
            }
            Verdict::UnlinkLearner | Verdict::Permanent => {
                self.record(item, &outcome, Some(request)).await?;
                if verdict == Verdict::UnlinkLearner {
                    self.unlink(item).await;
                }
                // A refusal that will not change: straight to the dead letters.
                fail(
                    &self.pool,
                    item.item_id,
                    owner,
                    &error(),
                    None,
                    item.attempts + 1,
                )
                .await?;
            }
        }
        count(report, status);
        Ok(())
    }

    /// A row that could not be sent without calling the remote (configuration unusable, data
    /// missing): counted as a failed attempt, dead-lettered in the end.
    async fn settle_unsent(
        &self,
        owner: &str,
        item: &OutboxItem,
        reason: &str,
        report: &mut TurnReport,
    ) -> Result<(), WorkerError> {
        let status = self.retry_status(item);
        let outcome = Outcome {
            status,
            answer: None,
            note: Some(reason.to_string()),
            duration: Duration::ZERO,
        };
        self.record(item, &outcome, None).await?;
        fail(
            &self.pool,
            item.item_id,
            owner,
            reason,
            None,
            self.options.max_attempts,
        )
        .await?;
        count(report, status);
        Ok(())
    }

    /// The remote does not know the learner: unlink them (relinkable), as edX does.
    async fn unlink(&self, item: &OutboxItem) {
        let Some(learner) = item.learner_id else {
            return;
        };
        if let Err(error) = unlink_learner(&self.store, item.customer_id, learner).await {
            tracing::warn!(%error, item = %item.item_id, "unlinking a learner the remote refused");
        }
    }

    /// Unlinks the learners SAP lists as inactive, for every active SAP configuration, once
    /// (or skips, while another process's sync runs).
    pub async fn sync_sap_inactive(&self) -> Result<InactiveSync, WorkerError> {
        Ok(
            crate::sap::inactive::sync_all(&self.pool, &self.store, &self.http, &self.configs)
                .await?,
        )
    }

    /// Records the attempt and completes the row (if `owner` still holds its lease) in one
    /// transaction shared with other rows (see [`Recorder::record_and_complete`]).
    async fn record_and_complete(
        &self,
        item: &OutboxItem,
        outcome: &Outcome<'_>,
        request: Option<&Request>,
        owner: &str,
    ) -> Result<(), WorkerError> {
        self.recorder
            .record_and_complete(item, outcome, request, owner)
            .await
            .map(|_| ())
            .map_err(|e| WorkerError::Record(e.to_string()))
    }

    async fn record(
        &self,
        item: &OutboxItem,
        outcome: &Outcome<'_>,
        request: Option<&Request>,
    ) -> Result<(), WorkerError> {
        self.recorder
            .record(item, outcome, request)
            .await
            .map_err(|e| WorkerError::Record(e.to_string()))
    }
}

/// Unlinks a learner from a customer, relinkably (edX's `active=False` on a remote's refusal).
pub(crate) async fn unlink_learner(
    store: &EventStore,
    customer: Uuid,
    learner: Uuid,
) -> Result<(), String> {
    let command = MembershipCommand::UnlinkLearner {
        learner_id: domain::ids::LearnerId(learner),
        customer_id: domain::ids::CustomerId(customer),
        is_relinkable: true,
    };
    let stream = membership_stream_id(domain::ids::LearnerId(learner));
    store
        .execute::<LearnerMemberships>(&stream, command, &(), &CommandMetadata::new(ACTOR))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn count(report: &mut TurnReport, status: TransmissionStatus) {
    match status {
        TransmissionStatus::Sent => report.sent += 1,
        TransmissionStatus::Failed => report.failed += 1,
        TransmissionStatus::DeadLettered => report.dead += 1,
        TransmissionStatus::DryRun => report.dry_run += 1,
        TransmissionStatus::Withheld => report.withheld += 1,
        TransmissionStatus::Skipped => report.skipped += 1,
    }
}
