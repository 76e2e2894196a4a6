//! The admin API client: HTTPS (trusting the fleet CA) or plain HTTP on loopback, a
//! bearer token in the `Authorization` header only, JSON both ways.
//!
//! Replies are kept as `serde_json::Value`: the CLI shows what the gateway says
//! (table or `--json`) without a second copy of the API's types that could drift.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Largest reply read (a registry listing of many thousands of devices).
const MAX_REPLY_BYTES: u64 = 256 << 20;

/// How long one request may take in all (a bulk import of thousands of rows is one
/// request).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The gateway's error body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// A stable word (`unauthorized`, `forbidden`, `bad_rows`, …).
    pub error: String,
    /// What is wrong.
    pub message: String,
    /// Bad rows of an import, with line numbers.
    #[serde(default)]
    pub rows: Vec<RowProblem>,
}

/// A bad row of an imported file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway could not be reached or the connection failed (TLS included).
    #[error("cannot reach the gateway at {url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The gateway refused the request.
    #[error("the gateway refused: {} ({status} {})", .body.message, .body.error)]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its explanation.
        body: ApiErrorBody,
    },
    /// The reply is not what the API documents.
    #[error("unexpected reply from {url}: {reason}")]
    Reply {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The CA file is not a PEM certificate.
    #[error("the CA file is not a PEM certificate: {0}")]
    BadCa(String),
    /// An `https://` gateway needs the fleet CA to verify it.
    #[error("an https:// gateway needs --ca (the fleet CA certificate, ca.pem)")]
    NoCa,
}

impl ClientError {
    /// The HTTP status of a refusal, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one gateway's admin API with one token.
pub struct ApiClient {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl std::fmt::Debug for ApiClient {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of `base` (`http://127.0.0.1:4480` or `https://host:4480`), trusting
    /// only `ca_pem` (the fleet CA) for HTTPS.
    pub fn new(base: &str, token: String, ca_pem: Option<&[u8]>) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT));
        if base.starts_with("https://") {
            let pem = ca_pem.ok_or(ClientError::NoCa)?;
            let ca = Certificate::from_pem(pem).map_err(|e| ClientError::BadCa(e.to_string()))?;
            config = config.tls_config(
                TlsConfig::builder()
                    .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
                    .build(),
            );
        }
        Ok(ApiClient {
            agent: config.build().into(),
            base,
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn finish(
        &self,
        url: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut response = sent.map_err(|e| ClientError::Transport {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| ClientError::Transport {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiErrorBody {
            error: "http".into(),
            message: String::from_utf8_lossy(&bytes).trim().to_owned(),
            rows: Vec::new(),
        });
        Err(ClientError::Refused { status, body })
    }

    fn json(&self, url: &str, bytes: &[u8]) -> Result<Value, ClientError> {
        serde_json::from_slice(bytes).map_err(|e| ClientError::Reply {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    /// GET, JSON reply.
    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = self.url(path);
        let sent = self
            .agent
            .get(&url)
            .header("Authorization", self.auth())
            .call();
        let bytes = self.finish(&url, sent)?;
        self.json(&url, &bytes)
    }

    /// GET, text reply (CSV).
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let url = self.url(path);
        let sent = self
            .agent
            .get(&url)
            .header("Authorization", self.auth())
            .call();
        let bytes = self.finish(&url, sent)?;
        String::from_utf8(bytes).map_err(|e| ClientError::Reply {
            url,
            reason: e.to_string(),
        })
    }

    /// POST a JSON body, JSON reply.
    pub fn post(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        let url = self.url(path);
        let sent = self
            .agent
            .post(&url)
            .header("Authorization", self.auth())
            .send_json(body);
        let bytes = self.finish(&url, sent)?;
        self.json(&url, &bytes)
    }

    /// PUT a JSON body, JSON reply.
    pub fn put(&self, path: &str, body: &impl Serialize) -> Result<Value, ClientError> {
        let url = self.url(path);
        let sent = self
            .agent
            .put(&url)
            .header("Authorization", self.auth())
            .send_json(body);
        let bytes = self.finish(&url, sent)?;
        self.json(&url, &bytes)
    }
}

/// Escapes one path segment (an agency name, a certificate number) for a URL.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(segment("dev-00001"), "dev-00001");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("城"), "%E5%9F%8E");
    }

    #[test]
    fn https_needs_the_fleet_ca_and_debug_hides_the_token() {
        let err = ApiClient::new("https://127.0.0.1:1", "fst_secret".into(), None).unwrap_err();
        assert!(matches!(err, ClientError::NoCa));
        let c = ApiClient::new("http://127.0.0.1:1/", "fst_secret".into(), None).unwrap();
        assert!(!format!("{c:?}").contains("fst_secret"));
    }
}
