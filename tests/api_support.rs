//! Shared by the API tests: a provisioned pipeline with every worker, `intake serve`'s API
//! on a free port with HS256 tokens and a service key, and a small JSON client.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use intake_stage_delete::Delete;
use intake_testkit::clamd::ClamdFixture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{Pipeline, RunningWorker};

pub const ISSUER: &str = "https://issuer.test/";
pub const AUDIENCE: &str = "intake-tests";
/// The service key of tenant-b (its SHA-256 is in the test config).
pub const SERVICE_KEY_B: &str = "svc-key-for-tenant-b-0123456789";

pub struct ApiStack {
    pub pipeline: Pipeline,
    pub base: String,
    pub secret: String,
    pub http: reqwest::Client,
    pub workers: Vec<RunningWorker>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _clamd: Option<ClamdFixture>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ApiStack {
    /// `extra_api` is appended inside `[api]`; `with_clamd` points the scanner at a real
    /// clamd (otherwise the config's address, which readyz will report).
    pub async fn start(secret_env: &str, extra_api: &str, with_clamd: bool) -> ApiStack {
        let clamd = if with_clamd {
            Some(ClamdFixture::start("100M").await.expect("clamd"))
        } else {
            None
        };
        let secret = format!("test-secret-{}", uuid::Uuid::now_v7());
        // SAFETY: each test binary's tests use their own variable name, set once before
        // the API reads it.
        unsafe { std::env::set_var(secret_env, &secret) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let address = clamd
            .as_ref()
            .map(|c| format!("address = \"tcp://{}\"", c.tcp_address()));
        let api_section = format!(
            "\n[api]\nmultipart_threshold = \"32MiB\"\nmultipart_part_size = \"8MiB\"\n{extra_api}\n\
             [api.auth]\nhs256_secret_env = \"{secret_env}\"\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\
             [[api.keys]]\nname = \"backend-b\"\ntenant = \"tenant-b\"\nsha256 = \"{}\"\n",
            sha256_hex(SERVICE_KEY_B.as_bytes())
        );
        let origin = base.clone();
        let pipeline = Pipeline::start_with(move |t| {
            let mut t = t.replace(
                "cors_origins = [\"http://localhost:8080\"]",
                &format!("cors_origins = [\"{origin}\"]"),
            );
            if let Some(address) = address {
                t = t.replace("address = \"tcp://127.0.0.1:3310\"", &address);
            }
            // The test's own [api] replaces the repo's (the last section of pipeline.toml).
            let repo_api = t
                .find("\n[api]\n")
                .expect("pipeline.toml has an [api] section");
            t.truncate(repo_api);
            t + &api_section
        })
        .await;
        let mut config = (*pipeline.config).clone();
        config.aws.endpoint_url = Some(pipeline.localstack.endpoint().to_owned());
        let api = intake_api::Api::new(config, pipeline.aws.clone(), (*pipeline.ledger).clone())
            .await
            .expect("the API starts");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(intake_api::serve(listener, api, async move {
            let _ = stopped.await;
        }));
        ApiStack {
            pipeline,
            base,
            secret,
            http: reqwest::Client::new(),
            workers: Vec::new(),
            stop: Some(stop),
            server: Some(server),
            _clamd: clamd,
        }
    }

    /// Every stage worker and the deletion worker.
    pub async fn spawn_workers(&mut self) {
        let p = &self.pipeline;
        let mut workers = p.spawn_stages().await;
        workers.push(
            p.spawn_worker(Delete::from_config(&p.config), "delete-1")
                .await,
        );
        self.workers = workers;
    }

    pub async fn shutdown(mut self) {
        for worker in std::mem::take(&mut self.workers) {
            worker.stop().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ends cleanly");
        }
    }

    /// A bearer token with these claims merged over valid defaults.
    pub fn token_with(&self, tenant: &str, user: &str, overrides: Value) -> String {
        let mut claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": user, "tenant": tenant,
            "exp": now_secs() + 600, "iat": now_secs(),
        });
        for (k, v) in overrides.as_object().cloned().unwrap_or_default() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(&k);
            } else {
                claims[k] = v;
            }
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .unwrap()
    }

    pub fn token(&self, tenant: &str, user: &str) -> String {
        self.token_with(tenant, user, json!({}))
    }

    /// A request with the bearer token (if any) and a JSON body (if any): status and body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `POST /v1/uploads`, asserting 201.
    pub async fn sign(&self, token: &str, body: Value) -> Value {
        let (status, answer) = self
            .call(
                reqwest::Method::POST,
                "/v1/uploads",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
        answer
    }

    /// PUT `bytes` with the signed headers, as a browser would: `content-length` is the
    /// body's own (a client cannot send another without sending a different body).
    pub async fn put_signed(&self, signed: &Value, bytes: Vec<u8>) -> reqwest::Response {
        let put = &signed["put"];
        let mut request = self.http.put(put["url"].as_str().unwrap()).body(bytes);
        for (name, value) in put["headers"].as_object().unwrap() {
            if name != "content-length" {
                request = request.header(name.as_str(), value.as_str().unwrap());
            }
        }
        request.send().await.unwrap()
    }

    /// Polls the file until its state is `want`.
    pub async fn wait_state(&self, token: &str, file_id: &str, want: &str) -> Value {
        let path = format!("/v1/files/{file_id}");
        intake_testkit::wait::eventually(
            &format!("file {file_id} to be {want}"),
            Duration::from_secs(120),
            || async {
                let (status, file) = self
                    .call(reqwest::Method::GET, &path, Some(token), None)
                    .await;
                if status == 200 && file["state"] == want {
                    Ok(file)
                } else {
                    Err(format!("{status} {file}"))
                }
            },
        )
        .await
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
