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

/// The service, listening on a loopback port until dropped.
pub struct Server {
    pub base: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Starts the API and the projection runners on `pool`.
    pub async fn start(test_pool: PgPool) -> Self {
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
        let app = api::app(AppState::new(pool.clone(), verifier));
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

impl Server {
    /// Waits until every read model has applied every event committed so far (ten seconds at
    /// most).
    pub async fn settle(&self) {
        let last: Option<i64> = sqlx::query_scalar("SELECT max(global_position) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("the last position");
        let Some(last) = last else { return };
        let names: Vec<&str> = projections::read_models::all()
            .iter()
            .map(|p| p.name())
            .collect();
        api::consistency::MinPosition(Some(last))
            .wait(&self.pool, &names)
            .await
            .expect("the read models catch up");
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
