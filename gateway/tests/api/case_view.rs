//! The case view through the API (DOMAIN R3): every record and recording of a case or
//! enforcement target, in order, the chain verified, and the tamper, two-officer,
//! missing-audio-video flags; only supervisors and admins read it.

use serde_json::Value;
use test_support::backends;

use crate::scenario::{CASE, H, OTHER_CASE, T0, TARGET, set_up};

fn texts(view: &Value) -> Vec<&str> {
    view["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_supervisor_reads_a_case_in_order_with_every_flag() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        let api = &s.api;
        let supervisor = api.token("legal-review", "supervisor").await;
        let (status, view) = api
            .call(
                "GET",
                &format!("/api/v1/cases/{CASE}"),
                Some(&supervisor),
                None,
            )
            .await;
        assert_eq!(status, 200, "{}: {view}", backend.name());
        assert_eq!(texts(&view), vec!["shop inspected", "goods seized"]);
        assert_eq!(view["chain_verified"], true);
        assert_eq!(view["records"][0]["made_at_gateway"], T0 - 32 * H);
        assert!(view["records"][0]["chain_break"].is_null());

        let seizure = &view["records"][1];
        assert_eq!(seizure["needs_audio_video"], true);
        assert_eq!(seizure["two_officer"]["certified"], 1);
        assert_eq!(seizure["two_officer"]["required"], 2);
        assert_eq!(
            seizure["two_officer"]["not_counted"][0],
            "ZF-003 (withdrawn)"
        );
        assert_eq!(seizure["recordings"][0], s.overdue.to_string());

        let recordings: Vec<(&str, &str)> = view["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            recordings,
            vec![
                (s.overdue.to_string().as_str(), "overdue"),
                (s.pending.to_string().as_str(), "pending"),
            ],
            "by start time, in their state now"
        );
        assert_eq!(view["recordings"][0]["late_by_ms"], 6 * H);
        assert_eq!(view["recordings"][0]["linked_from"][0], "dev-00001/2");

        let flags = view["case_flags"].as_array().unwrap();
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert_eq!(flags[0]["kind"], "missing_audio_video");
        assert_eq!(flags[0]["subject"], "dev-00001/2");
        assert_eq!(view["tamper_flags"][0]["reason"], "gap");
        assert_eq!(view["tamper_flags"][0]["text"], "rewritten archive");
        let summary = &view["summary"];
        assert_eq!(
            (
                summary["records"].as_u64(),
                summary["recordings"].as_u64(),
                summary["two_officer_flags"].as_u64(),
                summary["tamper_flags"].as_u64(),
                summary["missing_audio_video"].as_u64(),
                summary["overdue_recordings"].as_u64(),
                summary["chain_breaks"].as_u64(),
            ),
            (
                Some(2),
                Some(2),
                Some(1),
                Some(1),
                Some(1),
                Some(1),
                Some(0)
            )
        );

        // The target's view holds both cases, in gateway-time order.
        let (status, by_target) = api
            .call(
                "GET",
                &format!("/api/v1/targets/{}", encode(TARGET)),
                Some(&supervisor),
                None,
            )
            .await;
        assert_eq!(status, 200, "{by_target}");
        assert_eq!(
            texts(&by_target),
            vec!["shop inspected", "goods seized", "second visit"]
        );
        assert_eq!(by_target["cases"], serde_json::json!([CASE, OTHER_CASE]));
        let stored = by_target["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == s.stored.to_string())
            .expect("the other case's recording is in the target's view");
        assert_eq!(stored["state"], "uploaded_on_time");
        assert_eq!(stored["late_by_ms"], 0);
        assert_eq!(by_target["recordings"].as_array().unwrap().len(), 3);

        // Nothing of an unknown case: 404, naming it.
        let (status, body) = api
            .call("GET", "/api/v1/cases/C-none", Some(&supervisor), None)
            .await;
        assert_eq!(status, 404);
        assert!(
            body["message"].as_str().unwrap().contains("C-none"),
            "{body}"
        );
        s.api.stop().await;
    }
}

#[tokio::test]
async fn finance_and_equipment_managers_cannot_read_case_content() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        for role in ["finance", "equipment_manager"] {
            let token = s.api.token(&format!("t-{role}"), role).await;
            for path in [
                format!("/api/v1/cases/{CASE}"),
                format!("/api/v1/targets/{}", encode(TARGET)),
                "/api/v1/flags/tamper".to_owned(),
                "/api/v1/flags/tamper-counts".to_owned(),
                "/api/v1/flags/two-officer".to_owned(),
                "/api/v1/flags/cases".to_owned(),
            ] {
                let (status, body) = s.api.call("GET", &path, Some(&token), None).await;
                assert_eq!(status, 403, "{role} {path}: {body}");
                assert!(body.get("records").is_none());
            }
        }
        s.api.stop().await;
    }
}

#[tokio::test]
async fn the_flag_lists_name_the_tampered_and_two_officer_records() {
    for backend in backends().await {
        let s = set_up(&backend).await;
        let tamper = s.api.get("/api/v1/flags/tamper").await;
        assert_eq!(tamper.as_array().unwrap().len(), 1, "{}", backend.name());
        assert_eq!(tamper[0]["device_id"], "dev-00001");
        assert_eq!(tamper[0]["sequence"], 5);
        assert_eq!(tamper[0]["expected_sequence"], 4);
        assert_eq!(tamper[0]["case_number"], CASE);
        // One flag is far below the cap: no device's breaks are counted instead.
        let counts = s.api.get("/api/v1/flags/tamper-counts").await;
        assert_eq!(counts, serde_json::json!([]));
        let of_device = s.api.get("/api/v1/flags/tamper?device=dev-00002").await;
        assert_eq!(of_device, serde_json::json!([]));
        let (status, _) = s
            .api
            .call(
                "GET",
                "/api/v1/flags/tamper?device=bad%20id",
                Some(&s.api.admin),
                None,
            )
            .await;
        assert_eq!(status, 422);

        let two = s.api.get("/api/v1/flags/two-officer").await;
        assert_eq!(two.as_array().unwrap().len(), 1);
        assert_eq!(
            (two[0]["sequence"].as_u64(), two[0]["action_kind"].as_str()),
            (Some(2), Some("seizure"))
        );
        let open = s.api.get("/api/v1/flags/cases").await;
        assert_eq!(open.as_array().unwrap().len(), 1);
        assert_eq!(open[0]["case_number"], CASE);
        s.api.stop().await;
    }
}
