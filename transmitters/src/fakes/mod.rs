//! Strict fake servers of the remote systems, used by the tests and runnable by hand (the
//! `fake-*` binaries). Each checks requests as the real system would (auth, headers, required
//! fields and their types), records what it accepted, and can be told to misbehave for the
//! next requests: 429 with `Retry-After`, 5xx, a slow answer, a dropped connection, bad JSON.

pub mod cornerstone;
pub mod degreed;
pub mod sap;
pub mod xapi;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A way to answer a request badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <seconds>`.
    TooManyRequests { retry_after: u64 },
    /// This 5xx status.
    ServerError(u16),
    /// Wait this long, then answer normally (`Slow(Duration::ZERO)` is a normal answer).
    Slow(Duration),
    /// Accept the request (store what it carries), then wait this long before answering: the
    /// remote applied it, the client may never learn.
    Stall(Duration),
    /// Send the status line and part of the body, then break the connection.
    Drop,
    /// 200 with a body that is not JSON.
    BadJson,
}

/// The faults to play, one per request, in order; then normal answers again. `always` plays
/// one fault for every request until cleared.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    inner: Arc<Mutex<(VecDeque<Fault>, Option<Fault>)>>,
}

impl Faults {
    /// Plays `fault` for the next request (after those already queued).
    pub fn push(&self, fault: Fault) {
        self.lock().0.push_back(fault);
    }

    /// Plays `fault` for every request, until [`Faults::clear`].
    pub fn always(&self, fault: Fault) {
        self.lock().1 = Some(fault);
    }

    pub fn clear(&self) {
        *self.lock() = (VecDeque::new(), None);
    }

    /// The fault for the request being answered, if any.
    pub fn next(&self) -> Option<Fault> {
        let mut faults = self.lock();
        faults.0.pop_front().or_else(|| faults.1.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Fault>, Option<Fault>)> {
        // A panicking test thread must not wedge the fake for the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a fault answers instead of the real handler; `None` for `Slow` (after its wait) and
/// for no fault.
pub async fn play(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::TooManyRequests { retry_after } => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after.to_string())],
                "rate limit exceeded",
            )
                .into_response(),
        ),
        Fault::ServerError(code) => Some(
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "internal error",
            )
                .into_response(),
        ),
        Fault::Slow(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        // Played by the handler after it stored the request (see [`stall`]).
        Fault::Stall(_) => None,
        Fault::Drop => {
            let parts: Vec<Result<&'static str, std::io::Error>> = vec![
                Ok("[\"trunc"),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection dropped by the fake",
                )),
            ];
            let body = Body::from_stream(futures_util::stream::iter(parts));
            Some(
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .unwrap_or_default(),
            )
        }
        Fault::BadJson => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{not json",
            )
                .into_response(),
        ),
    }
}

/// Whether the request carries `Authorization: Basic base64(user:password)`.
pub fn basic_auth_is(headers: &axum::http::HeaderMap, user: &str, password: &str) -> bool {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

/// How long to wait after storing, for a [`Fault::Stall`].
pub fn stall(fault: &Option<Fault>) -> Option<Duration> {
    match fault {
        Some(Fault::Stall(wait)) => Some(*wait),
        _ => None,
    }
}

/// A fake serving on a local port until dropped.
pub struct Running {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Running {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `bind` (port 0: any free port).
pub async fn serve(router: axum::Router, bind: SocketAddr) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running { addr, task })
}
