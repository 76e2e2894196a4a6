//! Authentication and the role matrix: every documented operation against every role.

use std::collections::BTreeMap;

use gateway::api::auth::Permission;
use serde_json::{Value, json};
use store::OperatorRole;
use test_support::{Backend, backends};

use crate::support::{Api, ROLES};

/// Every (method, path, scope) of the served OpenAPI document.
fn operations(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let scope = op["security"][0]["bearer"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} names no permission"))
                .to_owned();
            out.push((method.to_uppercase(), path.clone(), scope));
        }
    }
    out
}

/// A concrete URL for a path template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "dev-00001")
        .replace("{name}", "no-such-name")
        .replace("{number}", "no-such-number")
}

/// True when the router served the request (a handler answered), as opposed to the
/// router's own 404/405 for a path or method it does not know.
fn served(status: u16, body: &Value) -> bool {
    !(matches!(status, 404 | 405) && body.get("error").is_none())
}

#[tokio::test]
async fn every_documented_operation_is_served_and_checks_its_documented_role() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        let mut tokens = BTreeMap::new();
        tokens.insert("admin", api.admin.clone());
        for role in &ROLES[1..] {
            tokens.insert(*role, api.token(&format!("t-{role}"), role).await);
        }
        // An admin token, revoked: refused everywhere although its role would be
        // allowed everywhere.
        let revoked = api.token("t-revoked", "admin").await;
        api.post(
            "/api/v1/tokens/t-revoked/revoke",
            json!({ "reason": "leaked" }),
        )
        .await;
        let doc = api.get(gateway::api::OPENAPI_PATH).await;
        let ops = operations(&doc);
        assert!(ops.len() >= 20, "{} operations: {ops:?}", ops.len());
        // The document is the router's own list: the library builds the same one.
        let built = serde_json::to_value(gateway::api::openapi()).unwrap();
        assert_eq!(operations(&built), ops);
        for (method, path, scope) in &ops {
            let permission =
                Permission::from_scope(scope).unwrap_or_else(|| panic!("unknown scope {scope}"));
            let url = concrete(path);
            let (status, body) = api.call(method, &url, None, Some(json!({}))).await;
            assert_eq!(status, 401, "{method} {path} without a token: {body}");
            let bogus = format!("fst_{}", "0".repeat(64));
            let (status, _) = api.call(method, &url, Some(&bogus), Some(json!({}))).await;
            assert_eq!(status, 401, "{method} {path} with an unknown token");
            let (status, _) = api
                .call(method, &url, Some(&revoked), Some(json!({})))
                .await;
            assert_eq!(status, 401, "{method} {path} with a revoked token");
            for role in ROLES {
                let (status, body) = api
                    .call(method, &url, Some(&tokens[role]), Some(json!({})))
                    .await;
                let parsed: OperatorRole = role.parse().unwrap();
                if permission.allows(parsed) {
                    assert!(
                        served(status, &body) && status != 401 && status != 403,
                        "{}: {role} may {method} {path} ({scope}) but got {status} {body}",
                        backend.name()
                    );
                } else {
                    assert_eq!(
                        status,
                        403,
                        "{}: {role} may not {method} {path} ({scope}): {body}",
                        backend.name()
                    );
                    assert_eq!(body["error"], "forbidden");
                }
            }
        }
        api.stop().await;
    }
}

#[tokio::test]
async fn finance_cannot_revoke_a_device_and_nothing_changes() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        let finance = api.token("finance-office", "finance").await;
        let entries_before = api.audit().await.len();
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/devices/dev-00001/status",
                Some(&finance),
                Some(json!({ "status": "revoked", "reason": "budget" })),
            )
            .await;
        assert_eq!(status, 403, "{}: {body}", backend.name());
        assert!(
            body["message"].as_str().unwrap().contains("finance"),
            "{body}"
        );
        let device = api.get("/api/v1/devices/dev-00001").await;
        assert_eq!(device["status"], "in_service");
        assert_eq!(api.audit().await.len(), entries_before, "nothing audited");
        // Finance reads the allocation report.
        let (status, _) = api
            .call("GET", "/api/v1/reports/allocation", Some(&finance), None)
            .await;
        assert_eq!(status, 200);
        api.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_token_fails_on_its_very_next_request() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        let manager = api.token("alice", "equipment_manager").await;
        let (status, me) = api
            .call("GET", "/api/v1/whoami", Some(&manager), None)
            .await;
        assert_eq!(
            (status, me["role"].as_str()),
            (200, Some("equipment_manager"))
        );
        api.post(
            "/api/v1/tokens/alice/revoke",
            json!({ "reason": "left the unit" }),
        )
        .await;
        let (status, body) = api
            .call("GET", "/api/v1/whoami", Some(&manager), None)
            .await;
        assert_eq!(status, 401, "{}: {body}", backend.name());
        let tokens = api.get("/api/v1/tokens").await;
        let alice = tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "alice")
            .unwrap();
        assert!(alice["revoked_at"].is_i64(), "{alice}");
        assert!(alice.get("token").is_none() && alice.get("token_hash").is_none());
        api.stop().await;
    }
}

#[tokio::test]
async fn tokens_are_taken_only_from_the_bearer_header() {
    let api = Api::start(&Backend::Sqlite, 1).await;
    let (status, _) = api
        .call(
            "GET",
            &format!("/api/v1/whoami?token={}", api.admin),
            None,
            None,
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = api
        .call("GET", "/api/v1/whoami", Some("not-a-token"), None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    // The bootstrap admin token came from admin.token and is stored only as a hash.
    let me = api.get("/api/v1/whoami").await;
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("admin"), Some("admin"))
    );
    api.stop().await;
}

#[test]
fn equipment_managers_never_read_case_content() {
    // The rule lives in the authorization table that every endpoint's and page's
    // extractor consults (the case view's own test reads through the API).
    assert!(!Permission::ReadCaseContent.allows(OperatorRole::EquipmentManager));
    assert!(!Permission::ReadCaseContent.allows(OperatorRole::Finance));
    assert!(Permission::ReadCaseContent.allows(OperatorRole::Supervisor));
    assert!(Permission::ReadCaseContent.allows(OperatorRole::Admin));
}
