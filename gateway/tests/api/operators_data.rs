//! Operators' data stays right (issue 21, points 7 and 8): an assignment changes only
//! what it names and refuses an officer who is not certified unless forced; setting
//! the status a device has is accepted; the allocation report shows unassigned devices;
//! the upload report keeps a recording under the agency of its time; a lost device's
//! unstored recordings are at risk, in one audited step.

use serde_json::json;
use test_support::backends;

use crate::scenario::{CASE, set_up};

#[tokio::test]
async fn an_assignment_changes_only_what_it_names_and_refuses_a_withdrawn_officer() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        let path = "/api/v1/devices/dev-00001/assign";
        // Only the officer: the agency stays.
        let d = s
            .api
            .post(
                path,
                json!({ "officer": "ZF-002", "reason": "shift change" }),
            )
            .await;
        assert_eq!(
            (d["agency"].as_str(), d["officer"].as_str()),
            (Some("East"), Some("ZF-002"))
        );
        // Only the agency: the officer stays.
        let d = s
            .api
            .post(path, json!({ "agency": "West", "reason": "transfer" }))
            .await;
        assert_eq!(
            (d["agency"].as_str(), d["officer"].as_str()),
            (Some("West"), Some("ZF-002"))
        );

        // ZF-003's certificate is withdrawn: refused, and nothing changes.
        let (status, body) = s
            .api
            .call(
                "POST",
                path,
                Some(&s.api.admin),
                Some(json!({ "officer": "ZF-003", "reason": "x" })),
            )
            .await;
        assert_eq!(status, 409, "{}: {body}", backend.name());
        assert!(
            body["message"].as_str().unwrap().contains("withdrawn"),
            "{body}"
        );
        let d = s.api.get("/api/v1/devices/dev-00001").await;
        assert_eq!(d["officer"], "ZF-002");
        // Forced, with the reason: assigned, and the audit entry says so.
        let d = s
            .api
            .post(
                path,
                json!({ "officer": "ZF-003", "force": true, "reason": "renewal pending" }),
            )
            .await;
        assert_eq!(d["officer"], "ZF-003");
        let log = s.api.audit().await;
        let last = log
            .iter()
            .rev()
            .find(|e| e["action"] == "device_assigned")
            .unwrap();
        let detail = &last["detail"];
        assert_eq!(detail["forced"], true, "{detail}");

        // Clearing is explicit; given and cleared at once, or nothing named, is refused.
        let d = s
            .api
            .post(path, json!({ "clear_officer": true, "reason": "returned" }))
            .await;
        assert_eq!(
            (d["agency"].as_str(), d["officer"].as_str()),
            (Some("West"), None)
        );
        for body in [
            json!({ "agency": "East", "clear_agency": true, "reason": "x" }),
            json!({ "reason": "x" }),
        ] {
            let (status, reply) = s
                .api
                .call("POST", path, Some(&s.api.admin), Some(body))
                .await;
            assert_eq!(status, 422, "{reply}");
        }
        s.api.stop().await;
    }
}

#[tokio::test]
async fn a_reassigned_device_keeps_its_history_and_unassigned_devices_are_counted() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        s.clock.advance(60_000);
        s.api
            .post(
                "/api/v1/devices/dev-00001/assign",
                json!({ "agency": "West", "reason": "transfer" }),
            )
            .await;
        let report = s.api.get("/api/v1/reports/uploads").await;
        let agencies: Vec<(&str, u64)> = report["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["agency"].as_str().unwrap(),
                    a["counts"]["overdue"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(agencies, vec![("East", 1)], "{}: {report}", backend.name());
        assert_eq!(report["overdue"][0]["agency"], "East");

        // dev-00003 leaves every agency: it is its own row and still in the total.
        s.api
            .post(
                "/api/v1/devices/dev-00003/assign",
                json!({ "clear_agency": true, "reason": "pool" }),
            )
            .await;
        let allocation = s.api.get("/api/v1/reports/allocation").await;
        assert_eq!(allocation["unassigned"]["in_service"], 1, "{allocation}");
        assert_eq!(allocation["total"]["in_service"], 3, "{allocation}");
        s.api.stop().await;
    }
}

#[tokio::test]
async fn marking_a_device_lost_puts_its_unstored_recordings_at_risk_in_one_audited_step() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        let before = s.api.get("/api/v1/reports/allocation").await;
        let east = |r: &serde_json::Value| {
            r["agencies"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["agency"] == "East")
                .unwrap()["in_service"]
                .as_u64()
        };
        assert_eq!(east(&before), Some(2));

        s.api
            .post(
                "/api/v1/devices/dev-00001/status",
                json!({ "status": "lost", "reason": "left in a taxi" }),
            )
            .await;
        // Again: the status it has is accepted and writes nothing more.
        let entries = s.api.audit().await.len();
        s.api
            .post(
                "/api/v1/devices/dev-00001/status",
                json!({ "status": "lost", "reason": "left in a taxi" }),
            )
            .await;
        assert_eq!(s.api.audit().await.len(), entries);

        // The connection is closed.
        let closed = test_support::eventually(std::time::Duration::from_secs(10), || async {
            s.api.get("/api/v1/fleet").await["live_connections"] == 0
        })
        .await;
        assert!(
            closed,
            "{}: the lost device's connection is closed",
            backend.name()
        );

        let mut expected = vec![s.overdue.to_string(), s.pending.to_string()];
        expected.sort();
        let report = s.api.get("/api/v1/reports/uploads").await;
        let mut at_risk: Vec<String> = report["at_risk"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recording_id"].as_str().unwrap().to_owned())
            .collect();
        at_risk.sort();
        assert_eq!(at_risk, expected, "{report}");

        let case = s.api.get(&format!("/api/v1/cases/{CASE}")).await;
        assert_eq!(case["summary"]["at_risk_recordings"], 2, "{case}");
        let stored = case["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["at_risk"] == true)
            .count();
        assert_eq!(stored, 2);

        assert_eq!(
            east(&s.api.get("/api/v1/reports/allocation").await),
            Some(1)
        );

        // One audit entry: the status change, naming the recordings at risk.
        let log = s.api.audit().await;
        let lost = log
            .iter()
            .find(|e| e["action"] == "device_status_set" && e["subject"] == "dev-00001")
            .unwrap();
        let detail = &lost["detail"];
        let mut named: Vec<String> = detail["at_risk_recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        named.sort();
        assert_eq!(named, expected, "{detail}");
        s.api.stop().await;
    }
}
