//! Every change made through the API is in the hash-chained audit log with who did it
//! and why.

use serde_json::{Value, json};
use test_support::backends;

use crate::support::Api;

fn reason(entry: &Value) -> Option<&str> {
    entry["detail"]["reason"].as_str()
}

#[tokio::test]
async fn every_change_is_audited_with_actor_and_reason() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        let manager = api.token("bob", "equipment_manager").await;
        let as_bob = |method: &'static str, path: &'static str, body: Value| {
            let api = &api;
            let manager = manager.clone();
            async move {
                let (status, reply) = api.call(method, path, Some(&manager), Some(body)).await;
                assert!(
                    (200..300).contains(&status),
                    "{method} {path}: {status} {reply}"
                );
                reply
            }
        };
        as_bob(
            "POST",
            "/api/v1/agencies",
            json!({"name": "A1", "class": "a", "reason": "r-agency"}),
        )
        .await;
        as_bob(
            "PUT",
            "/api/v1/agencies/A1/class",
            json!({"class": "c", "class_c_target": 4, "reason": "r-class"}),
        )
        .await;
        as_bob(
            "POST",
            "/api/v1/officers/import",
            json!({"reason": "r-roster", "rows": [
                {"line": 2, "certificate_number": "N1", "name": "王伟",
                 "certificate_status": "valid", "auxiliary": "no", "agency": "A1"},
                {"line": 3, "certificate_number": "N2", "name": "李娜",
                 "certificate_status": "valid", "auxiliary": "no", "agency": "A1"}]}),
        )
        .await;
        as_bob(
            "POST",
            "/api/v1/officers/N2/certificate",
            json!({"status": "withdrawn", "reason": "r-withdraw"}),
        )
        .await;
        as_bob(
            "POST",
            "/api/v1/devices/bundle",
            json!({"device_id": "dev-new", "kind": "recorder", "serial": "SN-NEW",
                   "reason": "r-enroll"}),
        )
        .await;
        as_bob(
            "POST",
            "/api/v1/devices/dev-new/assign",
            json!({"agency": "A1", "officer": "N1", "reason": "r-assign"}),
        )
        .await;
        as_bob(
            "POST",
            "/api/v1/devices/dev-new/status",
            json!({"status": "suspended", "reason": "r-suspend"}),
        )
        .await;
        api.post("/api/v1/tokens/bob/revoke", json!({"reason": "r-token"}))
            .await;

        let log = api.audit().await;
        for expected in [
            "r-agency",
            "r-class",
            "r-roster",
            "r-withdraw",
            "r-enroll",
            "r-assign",
            "r-suspend",
            "test operator",
            "r-token",
        ] {
            let entry = log
                .iter()
                .find(|e| reason(e) == Some(expected))
                .unwrap_or_else(|| {
                    panic!("{}: no entry says {expected:?}: {log:#?}", backend.name())
                });
            assert!(
                entry["actor"].as_str().unwrap().starts_with("operator:"),
                "{entry}"
            );
            assert!(entry["at"].as_i64().unwrap() > 0);
        }
        // Every entry written by an operator carries its reason, or (for the rows of a
        // bulk import) is followed by the import's summary entry that does.
        for (i, entry) in log.iter().enumerate() {
            let actor = entry["actor"].as_str().unwrap();
            if !actor.starts_with("operator:") || reason(entry).is_some() {
                continue;
            }
            let explained = log[i + 1..]
                .iter()
                .any(|later| later["actor"] == actor && reason(later).is_some());
            assert!(explained, "{}: no reason for {entry}", backend.name());
        }
        // Agency creation, class changes and assignments carry the reason in their own
        // entry, written in the same transaction as the change.
        for entry in &log {
            let action = entry["action"].as_str().unwrap();
            if ["agency_created", "agency_class_set", "device_assigned"].contains(&action)
                && entry["actor"].as_str().unwrap().starts_with("operator:")
            {
                assert!(reason(entry).is_some(), "{}: {entry}", backend.name());
            }
        }
        let bob_entries = log.iter().filter(|e| e["actor"] == "operator:bob").count();
        assert!(bob_entries >= 9, "{bob_entries}");
        let (status, body) = api
            .call(
                "GET",
                "/api/v1/audit?after=yesterday",
                Some(&api.admin),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (422, Some("invalid")),
            "{body}"
        );
        let report = api.gw.gateway.state().store.verify_audit_log().await;
        assert!(report.is_ok(), "{report:?}");
        api.stop().await;
    }
}
