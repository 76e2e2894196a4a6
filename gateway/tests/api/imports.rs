//! Bulk imports through the API: thousands of rows in one request, bad rows reported
//! by line, nothing applied unless all are good or `partial` is asked for.

use serde_json::{Value, json};
use test_support::backends;

use crate::support::Api;

const ROWS: usize = 3000;

fn device_rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "line": i + 2, "device_id": format!("bulk-{i:05}"),
                "kind": if i % 3 == 0 { "terminal" } else { "recorder" },
                "serial": format!("SN-BULK-{i:05}"),
                "fingerprint": format!("{:064x}", i + 1_000_000),
                "not_after": "2030-01-01T00:00:00Z", "agency": "A1",
            })
        })
        .collect()
}

fn lines(body: &Value, field: &str) -> Vec<u64> {
    body[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn thousands_of_devices_with_bad_rows_change_nothing_unless_partial() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        api.post(
            "/api/v1/agencies",
            json!({"name": "A1", "class": "a", "reason": "setup"}),
        )
        .await;
        let mut rows = device_rows(ROWS);
        // Line 1501: the serial of line 12. Line 2502: an unknown agency. Line 2903:
        // a bad kind. Line 3001: the certificate of the device enrolled at start.
        rows[1499]["serial"] = json!("SN-BULK-00010");
        rows[2500]["agency"] = json!("No Such Agency");
        rows[2901]["kind"] = json!("drone");
        let dev1 = api.get("/api/v1/devices/dev-00001").await;
        rows[2999]["fingerprint"] = dev1["certificate_fingerprint"].clone();
        let audit_before = api.audit().await.len();

        let (status, body) = api
            .call(
                "POST",
                "/api/v1/devices/import",
                Some(&api.admin),
                Some(json!({"rows": rows, "reason": "delivery"})),
            )
            .await;
        assert_eq!(status, 422, "{}: {body}", backend.name());
        assert_eq!(body["error"], "bad_rows");
        assert_eq!(lines(&body, "rows"), vec![1501, 2502, 2903, 3001], "{body}");
        let reasons: Vec<&str> = body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap())
            .collect();
        assert!(reasons[0].contains("also on line 12"), "{reasons:?}");
        assert!(reasons[1].contains("No Such Agency"), "{reasons:?}");
        assert!(reasons[2].starts_with("kind"), "{reasons:?}");
        assert!(reasons[3].contains("already enrolled"), "{reasons:?}");
        let devices = api.get("/api/v1/devices").await;
        assert_eq!(devices.as_array().unwrap().len(), 1, "nothing applied");
        assert_eq!(api.audit().await.len(), audit_before, "nothing audited");

        let (status, body) = api
            .call(
                "POST",
                "/api/v1/devices/import",
                Some(&api.admin),
                Some(json!({"rows": rows, "partial": true, "reason": "delivery"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["applied"], ROWS - 4);
        assert_eq!(lines(&body, "rejected"), vec![1501, 2502, 2903, 3001]);
        let devices = api.get("/api/v1/devices").await;
        assert_eq!(devices.as_array().unwrap().len(), ROWS - 4 + 1);
        // The imported devices, and the test gateway's own device (no agency).
        let report = api.get("/api/v1/reports/allocation").await;
        assert_eq!(report["total"]["in_service"], ROWS - 4 + 1);
        assert_eq!(report["unassigned"]["in_service"], 1);
        api.stop().await;
    }
}

#[tokio::test]
async fn roster_and_agency_files_with_bad_rows_change_nothing() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/agencies/import",
                Some(&api.admin),
                Some(json!({"reason": "setup", "rows": [
                    {"line": 2, "name": "A1", "class": "a"},
                    {"line": 3, "name": "X1", "class": "d"},
                    {"line": 4, "name": "C1", "class": "c"},
                    {"line": 5, "name": "A1", "class": "a"}]})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(lines(&body, "rows"), vec![3, 4, 5]);
        assert!(
            api.get("/api/v1/agencies")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );
        let body = api
            .post(
                "/api/v1/agencies/import",
                json!({"reason": "setup", "partial": true, "rows": [
                    {"line": 2, "name": "A1", "class": "a"},
                    {"line": 3, "name": "X1", "class": "d"}]}),
            )
            .await;
        assert_eq!(
            (body["applied"].as_u64(), lines(&body, "rejected")),
            (Some(1), vec![3])
        );

        let officer = |line: u64, number: &str, status: &str, agency: &str| {
            json!({"line": line, "certificate_number": number, "name": "n",
                   "certificate_status": status, "auxiliary": "no", "agency": agency})
        };
        let (status, body) = api
            .call(
                "POST",
                "/api/v1/officers/import",
                Some(&api.admin),
                Some(json!({"reason": "roster", "rows": [
                    officer(2, "N1", "valid", "A1"),
                    officer(3, "N2", "valid", "Nowhere"),
                    officer(4, "N3", "expired", "A1"),
                    officer(5, "N1", "valid", "A1")]})),
            )
            .await;
        assert_eq!(status, 422, "{}: {body}", backend.name());
        assert_eq!(lines(&body, "rows"), vec![3, 4, 5]);
        assert!(
            api.get("/api/v1/officers")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );
        api.stop().await;
    }
}

#[tokio::test]
async fn a_roster_of_thousands_of_officers_is_imported_and_reimported_unchanged() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        api.post(
            "/api/v1/agencies",
            json!({"name": "A1", "class": "a", "reason": "setup"}),
        )
        .await;
        let rows: Vec<Value> = (0..ROWS)
            .map(|i| {
                json!({"line": i + 2, "certificate_number": format!("440100-{i:05}"),
                       "name": format!("officer {i}"),
                       "certificate_status": if i % 10 == 0 { "withdrawn" } else { "valid" },
                       "auxiliary": if i % 10 == 0 { "yes" } else { "no" }, "agency": "A1"})
            })
            .collect();
        let started = std::time::Instant::now();
        let body = api
            .post(
                "/api/v1/officers/import",
                json!({"rows": rows, "reason": "2026 roster"}),
            )
            .await;
        eprintln!(
            "{}: {ROWS} officers imported in {:?}",
            backend.name(),
            started.elapsed()
        );
        assert_eq!(body["applied"], ROWS);
        let again = api
            .post(
                "/api/v1/officers/import",
                json!({"rows": rows, "reason": "2026 roster again"}),
            )
            .await;
        assert_eq!(
            (again["applied"].as_u64(), again["unchanged"].as_u64()),
            (Some(0), Some(ROWS as u64))
        );
        let report = api.get("/api/v1/reports/allocation").await;
        assert_eq!(
            report["agencies"][0]["certified_officers"],
            ROWS - ROWS / 10
        );
        api.stop().await;
    }
}
