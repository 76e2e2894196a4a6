//! A gateway with its admin token, and a small JSON client for its admin API.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{Backend, TestGateway};

/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A running gateway and the bootstrap admin token from its PKI folder.
pub(crate) struct Api {
    pub(crate) gw: TestGateway,
    pub(crate) admin: String,
}

impl Api {
    /// Starts a gateway with `devices` enrolled development bundles.
    pub(crate) async fn start(backend: &Backend, devices: u32) -> Api {
        Self::from_gateway(TestGateway::start(backend, devices).await)
    }

    /// Wraps a started gateway.
    pub(crate) fn from_gateway(gw: TestGateway) -> Api {
        let admin = pki::load_admin_token(&gw.pki_dir()).expect("admin.token");
        Api { gw, admin }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.gw.gateway.http_addr())
    }

    /// Sends a request; returns the status and the JSON body (`Null` if none).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base());
        let method = method.to_owned();
        let token = token.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(REQUEST_TIMEOUT))
                .build()
                .into();
            let auth = token.map(|t| format!("Bearer {t}"));
            let sent = match method.as_str() {
                "GET" => {
                    let mut r = agent.get(&url);
                    if let Some(a) = &auth {
                        r = r.header("Authorization", a);
                    }
                    r.call()
                }
                "POST" | "PUT" => {
                    let mut r = if method == "POST" {
                        agent.post(&url)
                    } else {
                        agent.put(&url)
                    };
                    if let Some(a) = &auth {
                        r = r.header("Authorization", a);
                    }
                    r.send_json(body.unwrap_or_else(|| json!({})))
                }
                other => panic!("method {other}"),
            };
            let mut response = sent.expect("request sent");
            let status = response.status().as_u16();
            let bytes = response
                .body_mut()
                .with_config()
                .limit(256 << 20)
                .read_to_vec()
                .expect("body");
            let value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            (status, value)
        })
        .await
        .expect("request task")
    }

    /// GET as admin, expecting 200.
    pub(crate) async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, Some(&self.admin), None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// POST as admin, expecting a 2xx.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        let (status, reply) = self.call("POST", path, Some(&self.admin), Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {reply}"
        );
        reply
    }

    /// Makes a token with `role` named `name`; returns the secret.
    pub(crate) async fn token(&self, name: &str, role: &str) -> String {
        let made = self
            .post(
                "/api/v1/tokens",
                json!({ "name": name, "role": role, "reason": "test operator" }),
            )
            .await;
        made["token"].as_str().expect("token").to_owned()
    }

    /// Every audit entry.
    pub(crate) async fn audit(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let after = all
                .last()
                .map_or(0, |e: &Value| e["seq"].as_i64().expect("seq"));
            let page = self.get(&format!("/api/v1/audit?after={after}")).await;
            let page = page.as_array().expect("array").clone();
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// Stops the gateway.
    pub(crate) async fn stop(self) {
        self.gw.gateway.shutdown().await;
    }
}

/// The roles, as the API spells them.
pub(crate) const ROLES: [&str; 4] = ["admin", "equipment_manager", "finance", "supervisor"];
