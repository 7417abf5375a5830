//! `/metrics` in Prometheus text format: request counts and latency per route (recorded by a
//! middleware), and, read at scrape time, each projection's lag, the outbox depth per
//! configuration and status, and the transmissions' latest outcomes per channel.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// The request metrics the middleware records.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            // 0.5 ms to about 4 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 14))
            }),
        }
    }
}

/// Records the request's count and latency under its route template (never the raw path,
/// which would carry ids and make every request a series of its own).
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    state
        .metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::debug!(%method, %route, status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "request");
    response
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectionLabels {
    projection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    channel: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    config: String,
    status: String,
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
              (status = 503, description = "The database is unreachable")))]
/// Request counts and latency, projection lag, outbox depth.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut registry = Registry::default();
    registry.register(
        "http_requests",
        "Requests served, by method, route and status",
        state.metrics.requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Request latency, by method and route",
        state.metrics.latency.clone(),
    );
    let lag_events = Family::<ProjectionLabels, Gauge>::default();
    let lag_seconds = Family::<ProjectionLabels, Gauge<f64, AtomicU64>>::default();
    let outbox = Family::<OutboxLabels, Gauge>::default();
    let statuses = match projections::status::all(&state.pool).await {
        Ok(statuses) => statuses,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: database unreachable");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response();
        }
    };
    for status in statuses {
        let labels = ProjectionLabels {
            projection: status.name,
        };
        lag_events.get_or_create(&labels).set(status.lag_events);
        lag_seconds.get_or_create(&labels).set(status.lag_seconds);
    }
    match projections::read_models::outbox::queue::pending_counts(&state.pool).await {
        Ok(counts) => {
            for count in counts {
                let labels = OutboxLabels {
                    config: count.config_id.to_string(),
                    status: count.status.as_str().to_string(),
                };
                outbox.get_or_create(&labels).set(count.count);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: outbox counts unavailable"),
    }
    let outcomes = Family::<OutcomeLabels, Gauge>::default();
    match projections::read_models::transmissions::outcome_counts(&state.pool).await {
        Ok(counts) => {
            for (channel, status, count) in counts {
                outcomes
                    .get_or_create(&OutcomeLabels { channel, status })
                    .set(count);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: transmission outcomes unavailable"),
    }
    registry.register(
        "transmission_items",
        "Outbox items by channel and the outcome of their latest transmission attempt",
        outcomes,
    );
    registry.register(
        "projection_lag_events",
        "Events in the log not yet applied, per projection",
        lag_events,
    );
    registry.register(
        "projection_lag_seconds",
        "Age of the oldest event not yet applied, per projection",
        lag_seconds,
    );
    registry.register(
        "outbox_items",
        "Outbox rows per channel configuration and status",
        outbox,
    );
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        tracing::error!(error = %e, "metrics: encoding failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
