//! The allocation report (DOMAIN R1) through the API: the worked examples, CSV,
//! ratios from configuration, and the daily snapshots finance reads as a trend.

use std::sync::Arc;

use clock::ManualClock;
use serde_json::{Value, json};
use test_support::{Backend, TestGateway, backends, test_config};

use crate::support::Api;

/// 2026-11-21 02:00 in China (UTC+8): past the default snapshot hour (01:00).
const T0: i64 = 1_795_197_600_000;

fn officer_rows(agency: &str, valid: usize, auxiliary: usize, withdrawn: usize) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut add = |status: &str, aux: bool| {
        let n = rows.len();
        rows.push(json!({
            "line": n + 2, "certificate_number": format!("{agency}-{n:03}"),
            "name": format!("officer {n}"), "certificate_status": status,
            "auxiliary": if aux { "yes" } else { "no" }, "agency": agency,
        }));
    };
    (0..valid).for_each(|_| add("valid", false));
    // 003: auxiliary staff may not hold a valid certificate; a roster lists them
    // without one, and they never count.
    (0..auxiliary).for_each(|_| add("withdrawn", true));
    (0..withdrawn).for_each(|_| add("withdrawn", false));
    rows
}

fn device_rows(agency: &str, recorders: usize, terminals: usize) -> Vec<Value> {
    (0..recorders + terminals)
        .map(|n| {
            let id = format!("{}-{n:03}", agency.to_lowercase());
            json!({
                "line": n + 2, "device_id": id,
                "kind": if n < recorders { "recorder" } else { "terminal" },
                "serial": format!("SN-{id}"),
                "fingerprint": format!("{:064x}", seahash(&id)),
                "not_after": "2030-01-01T00:00:00Z", "agency": agency,
            })
        })
        .collect()
}

/// A stable number per id, for distinct fake fingerprints.
fn seahash(id: &str) -> u128 {
    id.bytes().fold(1469598103934665603u128, |h, b| {
        (h ^ u128::from(b)).wrapping_mul(1099511628211)
    })
}

/// The worked examples: A1 (class A, 41 certified, 3 auxiliary, 2 withdrawn; 10
/// recorders and 5 terminals in service, one more lost and one suspended), B1 (class B,
/// 41 certified, 14 devices), C1 (class C, target 5, 3 devices).
async fn set_up_examples(api: &Api) {
    for (name, class, target) in [("A1", "a", None), ("B1", "b", None), ("C1", "c", Some(5))] {
        api.post(
            "/api/v1/agencies",
            json!({"name": name, "class": class, "class_c_target": target, "reason": "setup"}),
        )
        .await;
    }
    let mut officers = officer_rows("A1", 41, 3, 2);
    officers.extend(officer_rows("B1", 41, 0, 0));
    for (i, row) in officers.iter_mut().enumerate() {
        row["line"] = json!(i + 2);
    }
    let report = api
        .post(
            "/api/v1/officers/import",
            json!({"rows": officers, "reason": "roster"}),
        )
        .await;
    assert_eq!(report["applied"], 87);
    let mut devices = device_rows("A1", 12, 5);
    devices.extend(device_rows("B1", 14, 0));
    devices.extend(device_rows("C1", 3, 0));
    for (i, row) in devices.iter_mut().enumerate() {
        row["line"] = json!(i + 2);
    }
    let report = api
        .post(
            "/api/v1/devices/import",
            json!({"rows": devices, "reason": "delivery"}),
        )
        .await;
    assert_eq!(report["applied"], 34);
    for (id, status) in [("a1-000", "lost"), ("a1-001", "suspended")] {
        api.post(
            &format!("/api/v1/devices/{id}/status"),
            json!({"status": status, "reason": "example"}),
        )
        .await;
    }
}

fn agency<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agency"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[tokio::test]
async fn the_worked_examples_through_the_api_as_json_and_csv() {
    for backend in backends().await {
        let api = Api::start(&backend, 1).await;
        set_up_examples(&api).await;
        let finance = api.token("finance-office", "finance").await;
        let (status, report) = api
            .call("GET", "/api/v1/reports/allocation", Some(&finance), None)
            .await;
        assert_eq!(status, 200, "{report}");
        let a1 = agency(&report, "A1");
        assert_eq!(a1["certified_officers"], 41, "{}: {a1}", backend.name());
        assert_eq!(
            (a1["recorders"].as_u64(), a1["terminals"].as_u64()),
            (Some(10), Some(5))
        );
        assert_eq!(
            (a1["required"].as_u64(), a1["shortfall"].as_u64()),
            (Some(21), Some(6))
        );
        assert_eq!(a1["compliant"], false);
        let b1 = agency(&report, "B1");
        assert_eq!(
            (b1["required"].as_u64(), b1["shortfall"].as_u64()),
            (Some(14), Some(0))
        );
        assert_eq!(b1["compliant"], true);
        let c1 = agency(&report, "C1");
        assert_eq!(
            (c1["required"].as_u64(), c1["shortfall"].as_u64()),
            (Some(5), Some(2))
        );
        assert_eq!(report["total"]["shortfall"], 8);
        // The test gateway's own device is in service with no agency: its own row, and
        // in the total's devices (not in any agency's requirement).
        assert_eq!(report["unassigned"]["in_service"], 1, "{report}");
        assert_eq!(report["total"]["in_service"], 33);
        assert_eq!(report["total"]["compliant"], false);
        assert_eq!(report["ratios"], json!({"ratio_a": 2, "ratio_b": 3}));

        let (status, csv) = api
            .call(
                "GET",
                "/api/v1/reports/allocation.csv",
                Some(&finance),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let csv = csv.as_str().unwrap().to_owned();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("agency,class,class_c_target,certified_officers"));
        assert!(lines.contains(&"A1,a,,41,10,5,15,21,6,false,"), "{csv}");
        assert!(lines.contains(&"C1,c,5,0,3,0,3,5,2,false,"), "{csv}");
        assert!(lines.contains(&"未分配 (unassigned),,,,1,0,1,,,,"), "{csv}");
        assert_eq!(lines.last().unwrap(), &"TOTAL,,,82,28,5,33,40,8,false,");
        api.stop().await;
    }
}

#[tokio::test]
async fn ratios_come_from_configuration() {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(data.path(), &Backend::Sqlite, 1);
    config.policy.allocation.ratio_a = 3;
    config.policy.allocation.ratio_b = 5;
    let gw = TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await;
    let api = Api::from_gateway(gw);
    set_up_examples(&api).await;
    let report = api.get("/api/v1/reports/allocation").await;
    assert_eq!(agency(&report, "A1")["required"], 14);
    assert_eq!(agency(&report, "B1")["required"], 9);
    assert_eq!(report["ratios"], json!({"ratio_a": 3, "ratio_b": 5}));
    api.stop().await;
}

#[tokio::test]
async fn a_daily_snapshot_is_kept_and_read_as_a_trend() {
    for backend in backends().await {
        let clock = ManualClock::new(T0);
        let gw = TestGateway::start_with_clock(&backend, 1, clock.clone()).await;
        let api = Api::from_gateway(gw);
        // The gateway started past the snapshot hour with no snapshot for the day, but
        // with no agency yet: an empty registry is not kept as the day's figures.
        let state = api.gw.gateway.state().clone();
        let taken = api
            .post("/api/v1/reports/allocation/snapshots", json!({}))
            .await;
        assert_eq!(taken, json!({"day": "2026-11-21", "taken": false}));
        assert!(
            !state
                .store
                .has_allocation_snapshot("2026-11-21")
                .await
                .unwrap()
        );
        set_up_examples(&api).await;
        // Until the day's snapshot, its trend is the live report.
        let trend = api.get("/api/v1/reports/allocation/snapshots").await;
        let days = trend["days"].as_array().unwrap();
        assert_eq!(days.len(), 1, "{}: {trend}", backend.name());
        assert_eq!(
            (days[0]["day"].as_str(), days[0]["live"].as_bool()),
            (Some("2026-11-21"), Some(true))
        );
        assert_eq!(days[0]["total"]["shortfall"], 8, "devices to buy, live");
        // The snapshot task takes it within a minute; asked for now, it is taken...
        let taken = api
            .post("/api/v1/reports/allocation/snapshots", json!({}))
            .await;
        assert_eq!(taken, json!({"day": "2026-11-21", "taken": true}));
        // ...and a second request the same day keeps the first snapshot.
        let taken = api
            .post("/api/v1/reports/allocation/snapshots", json!({}))
            .await;
        assert_eq!(taken, json!({"day": "2026-11-21", "taken": false}));
        // The next day, after the snapshot hour.
        clock.advance(86_400_000);
        let day = state
            .allocation()
            .snapshot_if_due(&state.config.allocation_report)
            .await
            .unwrap();
        assert_eq!(day.as_deref(), Some("2026-11-22"));
        assert_eq!(
            state
                .allocation()
                .snapshot_if_due(&state.config.allocation_report)
                .await
                .unwrap(),
            None,
            "one snapshot a day"
        );
        let trend = api.get("/api/v1/reports/allocation/snapshots").await;
        let days = trend["days"].as_array().unwrap();
        assert_eq!(days.len(), 2, "{trend}");
        assert_eq!(days[0]["day"], "2026-11-21");
        assert_eq!(days[0]["live"], false);
        assert_eq!(days[0]["total"]["shortfall"], 8);
        assert_eq!(days[1]["day"], "2026-11-22");
        assert_eq!(days[1]["total"]["shortfall"], 8, "devices to buy");
        let only = api
            .get("/api/v1/reports/allocation/snapshots?from=2026-11-22&to=2026-11-22")
            .await;
        assert_eq!(only["days"].as_array().unwrap().len(), 1);
        let (status, _) = api
            .call(
                "GET",
                "/api/v1/reports/allocation/snapshots?from=yesterday",
                Some(&api.admin),
                None,
            )
            .await;
        assert_eq!(status, 422);
        api.stop().await;
    }
}
