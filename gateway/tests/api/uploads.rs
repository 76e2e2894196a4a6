//! Upload compliance (DOMAIN R2) and the fleet summary through the API: the numbers
//! for the scenario's recordings, the CSV, and devices by status with live
//! connections.

use test_support::backends;

use crate::scenario::{H, set_up};

#[tokio::test]
async fn the_upload_report_counts_each_state_and_lists_the_overdue_recording() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        let finance = s.api.token("finance-office", "finance").await;
        let (status, report) = s
            .api
            .call("GET", "/api/v1/reports/uploads", Some(&finance), None)
            .await;
        assert_eq!(status, 200, "{}: {report}", backend.name());
        let total = &report["total"];
        assert_eq!(
            (
                total["pending"].as_u64(),
                total["due_soon"].as_u64(),
                total["overdue"].as_u64(),
                total["uploaded_on_time"].as_u64(),
                total["uploaded_late"].as_u64()
            ),
            (Some(1), Some(0), Some(1), Some(1), Some(0))
        );
        assert_eq!(report["agencies"].as_array().unwrap().len(), 1);
        assert_eq!(report["agencies"][0]["agency"], "East");
        assert_eq!(report["agencies"][0]["counts"]["overdue"], 1);
        assert_eq!(report["officers"][0]["officer"], "ZF-001");
        let overdue = report["overdue"].as_array().unwrap();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0]["recording_id"], s.overdue.to_string());
        assert_eq!(overdue[0]["late_by_ms"], 6 * H);
        assert_eq!(overdue[0]["agency"], "East");

        // Only recordings that ended from a time on.
        let recent = s
            .api
            .get(&format!(
                "/api/v1/reports/uploads?from={}",
                crate::scenario::T0 - 5 * H
            ))
            .await;
        assert_eq!(recent["total"]["overdue"], 0);
        assert_eq!(recent["total"]["pending"], 1);
        let (status, body) = s
            .api
            .call(
                "GET",
                "/api/v1/reports/uploads?from=yesterday",
                Some(&finance),
                None,
            )
            .await;
        assert_eq!((status, body["error"].as_str()), (422, Some("invalid")));

        let (status, csv) = s
            .api
            .call("GET", "/api/v1/reports/uploads.csv", Some(&finance), None)
            .await;
        assert_eq!(status, 200);
        let csv = csv.as_str().unwrap().to_owned();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "scope,name,pending,due_soon,overdue,uploaded_on_time,uploaded_late,silent_since,\
             clock_implausible_since"
        );
        assert!(lines.contains(&"agency,East,1,0,1,1,0,,"), "{csv}");
        assert!(lines.contains(&"device,dev-00001,1,0,1,1,0,,"), "{csv}");
        assert_eq!(lines.last(), Some(&"total,,1,0,1,1,0,,"));
        s.api.stop().await;
    }
}

#[tokio::test]
async fn the_fleet_summary_counts_devices_by_status_with_live_connections() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        s.api
            .post(
                "/api/v1/devices/dev-00003/status",
                serde_json::json!({ "status": "lost", "reason": "left in a taxi" }),
            )
            .await;
        let fleet = s.api.get("/api/v1/fleet").await;
        assert_eq!(fleet["total"], 3, "{}: {fleet}", backend.name());
        let by_status: Vec<(&str, u64)> = fleet["by_status"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["status"].as_str().unwrap(), c["total"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            by_status,
            vec![
                ("in_service", 2),
                ("suspended", 0),
                ("lost", 1),
                ("revoked", 0),
                ("retired", 0)
            ]
        );
        assert_eq!(fleet["live_connections"], 1, "device 1 is still connected");
        assert_eq!(fleet["connected_devices"], 1);
        let d1 = &fleet["devices"][0];
        assert_eq!(
            (d1["id"].as_str(), d1["connections"].as_u64()),
            (Some("dev-00001"), Some(1))
        );
        assert_eq!(d1["last_seen"], crate::scenario::T0);
        assert_eq!(fleet["devices"][1]["connections"], 0);
        assert_eq!(fleet["devices"][1]["agency"], "West");
        assert!(fleet["devices"][2]["last_seen"].is_null());

        // Once device 1 hangs up, the live table says so.
        s.conn.close();
        let gone = test_support::eventually(std::time::Duration::from_secs(10), || async {
            s.api.get("/api/v1/fleet").await["live_connections"] == 0
        })
        .await;
        assert!(gone, "the closed connection leaves the live table");
        s.api.stop().await;
    }
}
