//! The operator listener over TLS: forced on loopback with `http.tls = "always"`, a
//! client that trusts only the fleet CA gets the API; plain HTTP gets nothing.

use std::sync::Arc;

use gateway::config::HttpTls;
use rustls::pki_types::ServerName;
use test_support::{Backend, TestGateway, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) async fn https_get(gw: &TestGateway, path: &str, token: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(gw.fleet_ca().cert_der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.gateway.http_addr())
        .await
        .unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the gateway's certificate");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    response
}

#[tokio::test]
async fn the_operator_listener_speaks_tls_when_configured_and_plain_http_gets_nothing() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(data.path(), &Backend::Sqlite, 1);
    config.http.tls = HttpTls::Always;
    let gw = TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await;
    let token = pki::load_admin_token(&gw.pki_dir()).unwrap();
    let response = https_get(&gw, "/api/v1/whoami", &token).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"role\":\"admin\""), "{response}");
    let health = https_get(&gw, "/healthz", &token).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let plain = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        let mut tcp = tokio::net::TcpStream::connect(gw.gateway.http_addr())
            .await
            .unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut bytes = Vec::new();
        let _ = tcp.read_to_end(&mut bytes).await;
        bytes
    })
    .await
    .expect("the server ends a plain-text connection");
    assert!(
        !plain.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&plain)
    );
    gw.gateway.shutdown().await;
}

#[test]
fn the_tls_mode_and_snapshot_keys_are_configuration_with_named_errors() {
    use std::collections::HashMap;
    let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let config = gateway::Config::load(None, &env(&[("FIELDSYNC_HTTP_TLS", "always")])).unwrap();
    assert_eq!(config.http.tls, HttpTls::Always);
    assert_eq!(gateway::Config::default().http.tls, HttpTls::Auto);
    let err = gateway::Config::load(None, &env(&[("FIELDSYNC_HTTP_TLS", "never")])).unwrap_err();
    assert!(err.to_string().contains("http.tls"), "{err}");
    let err = gateway::Config::load(
        None,
        &env(&[("FIELDSYNC_ALLOCATION_REPORT_SNAPSHOT_HOUR", "24")]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("allocation_report.snapshot_hour"),
        "{err}"
    );
}
