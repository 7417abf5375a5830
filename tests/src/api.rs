//! A real server for the HTTP tests: the service's router on a loopback port, every projection
//! runner tailing the log behind it, and HS256 tokens for any principal.

use api::auth::Verifier;
use api::AppState;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;

const SECRET: &str = "e2e-test-secret";
const ISSUER: &str = "https://lms.test/oauth2";
/// The key the test server encrypts channel secrets with.
pub const SECRETS_KEY: &str = "6c6f6f706261636b2d746573742d736563726574732d6b65792d303132333435";

/// The service, listening on a loopback port until dropped.
pub struct Server {
    pub base: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Starts the API and the projection runners on `pool`, with a secrets key.
    pub async fn start(test_pool: PgPool) -> Self {
        Self::start_with(test_pool, true).await
    }

    /// Starts a server configured without a secrets key.
    pub async fn start_without_secrets(test_pool: PgPool) -> Self {
        Self::start_with(test_pool, false).await
    }

    async fn start_with(test_pool: PgPool, with_secrets: bool) -> Self {
        // The test's pool is small; runners and the server need a pool of their own.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(40)
            .connect_with(test_pool.connect_options().as_ref().clone())
            .await
            .expect("connecting the server's pool");
        let (stop, shutdown) = watch::channel(false);
        // A poisoned runner logs and stops; the test then fails waiting for the read model.
        projections::runner::spawn_all(&pool, &shutdown);
        let verifier = Verifier::new(Some(SECRET), None, Some(ISSUER), None).expect("verifier");
        let mut state = AppState::new(pool.clone(), verifier);
        if with_secrets {
            let secrets = store::secrets::SecretBox::from_hex(SECRETS_KEY).expect("secrets key");
            state = state.with_secrets(secrets);
        }
        let app = api::app(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        let address = listener.local_addr().expect("local address");
        let mut server_shutdown = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_shutdown.wait_for(|s| *s).await;
                })
                .await
                .expect("serving");
        });
        Self {
            base: format!("http://{address}"),
            pool,
            client: reqwest::Client::new(),
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with `Authorization: JWT <token>`, edx-platform's scheme.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Authorization", format!("JWT {token}"))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::POST, path, token).json(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::PATCH, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::DELETE, path, token)).await
    }

    /// A request without any Authorization header: the status.
    pub async fn anonymous(&self, method: reqwest::Method, path: &str) -> u16 {
        send(self.client.request(method, self.url(path)).json(&json!({})))
            .await
            .0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Sends a request; the status and the JSON body (`null` when the body is not JSON).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A valid token for `username` with `roles` (edx-rbac strings).
pub fn token(username: &str, roles: &[&str]) -> String {
    let claims = json!({
        "preferred_username": username,
        "roles": roles,
        "iss": ISSUER,
        "exp": chrono::Utc::now().timestamp() + 3600,
    });
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signing a token")
}

pub fn operator() -> String {
    token("operator", &["enterprise_openedx_operator:*"])
}

pub fn lms() -> String {
    token("lms", &["lms_service"])
}

pub fn admin_of(customer: impl std::fmt::Display) -> String {
    token("admin", &[&format!("enterprise_admin:{customer}")])
}

/// A token for `username`, a learner of `customer`.
pub fn learner_of(username: &str, customer: impl std::fmt::Display) -> String {
    token(username, &[&format!("enterprise_learner:{customer}")])
}

pub fn auditor() -> String {
    token("auditor", &["auditor"])
}

pub fn channel_worker() -> String {
    token("worker", &["channel_worker"])
}

impl Server {
    /// Waits until every read model has applied the whole log (ten seconds at most).
    ///
    /// "The whole log" ends at the last event written, in log order; not at the log reader's
    /// head, which stops below any transaction still open in the cluster (a parallel test's,
    /// say), so a wait for the head could end before this test's own events are applied.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let names: Vec<String> = projections::read_models::all()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        loop {
            let (written, caught_up): (bool, i64) = sqlx::query_as(
                "WITH last AS (SELECT transaction_id, global_position FROM events
                                ORDER BY transaction_id DESC, global_position DESC
                                LIMIT 1)
                 SELECT EXISTS (SELECT 1 FROM last),
                        (SELECT count(*) FROM last JOIN projection_checkpoints c
                                ON c.name = ANY($1)
                          WHERE (last.transaction_id, last.global_position)
                                <= (c.transaction_id, c.global_position))",
            )
            .bind(&names)
            .fetch_one(&self.pool)
            .await
            .expect("reading the checkpoints");
            if !written || caught_up as usize == names.len() {
                return;
            }
            let statuses = projections::status::all(&self.pool).await.expect("status");
            assert!(
                std::time::Instant::now() < deadline,
                "the read models did not apply the last event in 10 s: {statuses:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Sends a request; the status, the JSON body and the `X-Log-Position` the command reached.
pub async fn send_at(request: reqwest::RequestBuilder) -> (u16, Value, Option<i64>) {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let position = response
        .headers()
        .get("x-log-position")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        position,
    )
}

impl Server {
    /// How many events the store holds, committed ones all counted (unlike the log reader's
    /// head, which stops below transactions still open anywhere in the cluster).
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("counting events")
    }
}
