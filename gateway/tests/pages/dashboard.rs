//! A supervisor signs in through the form and reads every page; each page's numbers
//! are compared with the API's JSON for the same gateway at the same moment.

use std::time::Duration;

use serde_json::Value;
use test_support::Backend;

use crate::browser::{Browser, eval, goto, number, screenshot, sign_in, text, texts, wait_for};
use crate::scenario::{CASE, set_up};

/// The whole walk through the dashboard must finish within this.
const LIMIT: Duration = Duration::from_secs(180);

fn as_u64(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

#[tokio::test]
async fn signed_in_pages_render_the_apis_numbers() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    tokio::time::timeout(LIMIT, walk(&browser))
        .await
        .expect("the walk through the dashboard finishes in time");
    browser.close().await;
}

async fn walk(browser: &Browser) {
    let s = set_up(&Backend::Sqlite).await;
    let api = &s.api;
    let base = api.base();
    let supervisor = api.token("legal-review", "supervisor").await;

    // Pages need a session: without one they send the browser to the sign-in form.
    let page = browser.open(&format!("{base}/fleet")).await;
    wait_for(&page, "#sign-in").await;
    sign_in(&page, &base, &supervisor).await;
    wait_for(&page, "#signed-in").await;
    assert_eq!(text(&page, "#role").await, "supervisor");
    let cookies = page.get_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name == "fieldsync_session")
        .expect("the session cookie is set");
    assert!(session.http_only, "scripts cannot read the token");
    assert!(
        format!("{:?}", session.same_site).contains("Strict"),
        "{session:?}"
    );
    let visible: Vec<String> = eval(&page, "document.cookie.split(';').map(c => c.trim())").await;
    assert!(
        !visible.iter().any(|c| c.starts_with("fieldsync_session")),
        "{visible:?}"
    );

    fleet(&page, api, &base).await;
    allocation(&page, api, &base).await;
    uploads(&page, api, &base).await;
    case_view(&page, api, &base, &supervisor).await;
    audit(&page, api, &base).await;

    // Signing out deletes the cookie: the next page asks for a token again.
    page.find_element("#sign-out button")
        .await
        .expect("sign-out button")
        .click()
        .await
        .expect("sign out");
    wait_for(&page, "#sign-in-message").await;
    goto(&page, &format!("{base}/uploads")).await;
    wait_for(&page, "#sign-in").await;
    s.api.stop().await;
}

async fn fleet(page: &chromiumoxide::Page, api: &crate::support::Api, base: &str) {
    goto(page, &format!("{base}/fleet")).await;
    wait_for(page, "#device-table").await;
    let json = api.get("/api/v1/fleet").await;
    assert_eq!(number(page, "#fleet-total").await, as_u64(&json["total"]));
    assert_eq!(
        number(page, "#live-connections").await,
        as_u64(&json["live_connections"])
    );
    assert_eq!(
        number(page, "#live-connections").await,
        1,
        "device 1 is connected"
    );
    for status in json["by_status"].as_array().unwrap() {
        let name = status["status"].as_str().unwrap();
        let shown = number(
            page,
            &format!("tr[data-status='{name}'] td[data-field='total']"),
        )
        .await;
        assert_eq!(shown, as_u64(&status["total"]), "{name}");
    }
    for device in json["devices"].as_array().unwrap() {
        let id = device["id"].as_str().unwrap();
        let last_seen: String = eval(
            page,
            &format!("document.querySelector(\"tr[data-device='{id}'] td[data-field='last_seen']\").dataset.ms ?? ''"),
        )
        .await;
        assert_eq!(
            (!last_seen.is_empty()).then(|| last_seen.parse::<i64>().unwrap()),
            device["last_seen"].as_i64(),
            "{id}"
        );
        let connections = number(
            page,
            &format!("tr[data-device='{id}'] td[data-field='connections']"),
        )
        .await;
        assert_eq!(connections, as_u64(&device["connections"]), "{id}");
    }
    screenshot(page, "fleet").await;
}

async fn allocation(page: &chromiumoxide::Page, api: &crate::support::Api, base: &str) {
    // Today's snapshot, so that the trend has a day to show.
    let taken = api
        .post(
            "/api/v1/reports/allocation/snapshots",
            serde_json::json!({}),
        )
        .await;
    goto(page, &format!("{base}/allocation")).await;
    wait_for(page, "#allocation-chart").await;
    let json = api.get("/api/v1/reports/allocation").await;
    let agencies = json["agencies"].as_array().unwrap();
    assert_eq!(agencies.len(), 2);
    // One bar pair per agency, each with a required and an in-service bar.
    let pairs: Vec<String> = eval(
        page,
        "Array.from(document.querySelectorAll('#allocation-chart g.bar-pair')).map(g => g.dataset.agency)",
    )
    .await;
    let names: Vec<&str> = agencies
        .iter()
        .map(|a| a["agency"].as_str().unwrap())
        .collect();
    assert_eq!(pairs, names);
    for a in agencies {
        let name = a["agency"].as_str().unwrap();
        let bars: Vec<(String, Option<String>)> = eval(
            page,
            &format!(
                "Array.from(document.querySelectorAll(\"g.bar-pair[data-agency='{name}'] rect\"))\
                 .map(r => [r.getAttribute('class'), r.getAttribute('data-value')])"
            ),
        )
        .await;
        let required = a["required"].as_u64().map(|r| r.to_string());
        assert_eq!(
            bars,
            vec![
                ("bar required".to_owned(), required),
                (
                    "bar in-service".to_owned(),
                    Some(a["in_service"].to_string())
                ),
            ],
            "{name}"
        );
        for field in [
            "certified_officers",
            "recorders",
            "terminals",
            "in_service",
            "required",
            "shortfall",
        ] {
            let shown = text(
                page,
                &format!("tr[data-agency='{name}'] td[data-field='{field}']"),
            )
            .await;
            assert_eq!(shown, a[field].to_string(), "{name} {field}");
        }
    }
    assert_eq!(
        number(page, "#total-shortfall").await,
        as_u64(&json["total"]["shortfall"])
    );
    assert_eq!(
        number(page, "#total-required").await,
        as_u64(&json["total"]["required"])
    );
    // The trend shows the API's snapshots, newest first, today's among them.
    let snapshots = api.get("/api/v1/reports/allocation/snapshots").await;
    let days = snapshots["days"].as_array().unwrap();
    let api_days: Vec<&str> = days
        .iter()
        .rev()
        .map(|d| d["day"].as_str().unwrap())
        .collect();
    let shown_days: Vec<String> = eval(
        page,
        "Array.from(document.querySelectorAll('#allocation-trend tr[data-day]')).map(r => r.dataset.day)",
    )
    .await;
    assert_eq!(shown_days, api_days, "{snapshots}");
    assert!(
        api_days.contains(&taken["day"].as_str().unwrap()),
        "{snapshots}"
    );
    for day in days {
        for field in ["certified_officers", "in_service", "required", "shortfall"] {
            let shown = number(
                page,
                &format!(
                    "#allocation-trend tr[data-day='{}'] td[data-field='{field}']",
                    day["day"].as_str().unwrap()
                ),
            )
            .await;
            assert_eq!(shown, as_u64(&day["total"][field]), "trend {field}");
        }
    }
    let shot = screenshot(page, "allocation").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);
}

async fn uploads(page: &chromiumoxide::Page, api: &crate::support::Api, base: &str) {
    goto(page, &format!("{base}/uploads")).await;
    wait_for(page, "#overdue-table").await;
    let json = api.get("/api/v1/reports/uploads").await;
    for field in [
        "pending",
        "due_soon",
        "overdue",
        "uploaded_on_time",
        "uploaded_late",
    ] {
        let shown = number(page, &format!("#upload-totals [data-field='{field}']")).await;
        assert_eq!(shown, as_u64(&json["total"][field]), "{field}");
    }
    // Overdue recordings come first: the first table on the page lists them.
    let first_table: String = eval(page, "document.querySelector('main table').id").await;
    assert_eq!(first_table, "overdue-table");
    let overdue: Vec<String> = eval(
        page,
        "Array.from(document.querySelectorAll('#overdue-table tbody tr')).map(r => r.dataset.recording)",
    )
    .await;
    let expected: Vec<String> = json["overdue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["recording_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(overdue, expected);
    let late: Vec<String> = eval(
        page,
        "Array.from(document.querySelectorAll('#overdue-table td[data-late-ms]')).map(c => c.dataset.lateMs)",
    )
    .await;
    assert_eq!(late, vec![json["overdue"][0]["late_by_ms"].to_string()]);
    for agency in json["agencies"].as_array().unwrap() {
        let name = agency["agency"].as_str().unwrap_or("");
        let shown = number(
            page,
            &format!("#agency-uploads tr[data-agency='{name}'] td[data-field='overdue']"),
        )
        .await;
        assert_eq!(shown, as_u64(&agency["counts"]["overdue"]), "{name}");
    }
    screenshot(page, "uploads").await;
}

async fn case_view(
    page: &chromiumoxide::Page,
    api: &crate::support::Api,
    base: &str,
    supervisor: &str,
) {
    goto(page, &format!("{base}/cases")).await;
    wait_for(page, "#case-search").await;
    // Without a search: the open flags across every case, as the flag endpoints list them.
    for (table, path) in [
        ("#tamper-flags", "/api/v1/flags/tamper"),
        ("#two-officer-flags", "/api/v1/flags/two-officer"),
        ("#case-flags", "/api/v1/flags/cases"),
    ] {
        let listed = api.get(path).await.as_array().unwrap().len();
        let shown = texts(page, &format!("{table} tbody tr")).await.len();
        assert_eq!(shown, listed, "{table}");
    }
    // Search through the form, as a supervisor would.
    let field = page.find_element("#case").await.expect("case field");
    field.click().await.expect("focus");
    field.type_str(CASE).await.expect("typing");
    page.find_element("#case-search button")
        .await
        .expect("button")
        .click()
        .await
        .expect("search");
    wait_for(page, "#timeline").await;
    let (status, json) = api
        .call(
            "GET",
            &format!("/api/v1/cases/{CASE}"),
            Some(supervisor),
            None,
        )
        .await;
    assert_eq!(status, 200);
    for field in [
        "records",
        "recordings",
        "tamper_flags",
        "two_officer_flags",
        "missing_audio_video",
        "archive_overdue",
        "overdue_recordings",
    ] {
        let shown = number(page, &format!("#case-summary [data-field='{field}']")).await;
        assert_eq!(shown, as_u64(&json["summary"][field]), "{field}");
    }
    assert_eq!(text(page, "#chain-verified").await, "verified");
    let records = texts(page, "#timeline tr.record").await;
    assert_eq!(records.len(), json["records"].as_array().unwrap().len());
    let recordings = texts(page, "#timeline tr.recording").await;
    assert_eq!(
        recordings.len(),
        json["recordings"].as_array().unwrap().len()
    );
    // In gateway-time order: the initiation, the seizure's recording, the seizure…
    assert!(records[0].contains("shop inspected"), "{records:?}");
    assert!(records[1].contains("goods seized") && records[1].contains("two-officer"));
    let kinds = texts(page, "#case-flags td span.flag").await;
    assert_eq!(kinds, vec!["missing_audio_video"]);
    let tamper = texts(page, "#tamper-flags tbody tr").await;
    assert_eq!(tamper.len(), 1);
    assert!(tamper[0].contains("gap"), "{tamper:?}");
    screenshot(page, "case").await;

    // The enforcement target's view: both cases, every record (一户式集中储存).
    let target = crate::scenario::TARGET;
    let (status, json) = api
        .call(
            "GET",
            &format!(
                "/api/v1/targets/{}",
                target.replace(' ', "%20").replace(',', "%2C")
            ),
            Some(supervisor),
            None,
        )
        .await;
    assert_eq!(status, 200, "{json}");
    goto(
        page,
        &format!(
            "{base}/cases?target={}",
            target.replace(' ', "+").replace(',', "%2C")
        ),
    )
    .await;
    wait_for(page, "#timeline").await;
    assert_eq!(
        texts(page, "#timeline tr.record").await.len(),
        json["records"].as_array().unwrap().len()
    );
    assert_eq!(
        number(page, "#case-summary [data-field='recordings']").await,
        as_u64(&json["summary"]["recordings"])
    );
}

async fn audit(page: &chromiumoxide::Page, api: &crate::support::Api, base: &str) {
    goto(page, &format!("{base}/audit")).await;
    wait_for(page, "#audit-table").await;
    let json = api.get("/api/v1/audit?limit=50").await;
    let seqs: Vec<String> = eval(
        page,
        "Array.from(document.querySelectorAll('#audit-table tbody tr')).map(r => r.dataset.seq)",
    )
    .await;
    let expected: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].to_string())
        .collect();
    assert_eq!(seqs, expected);
    assert_eq!(seqs.first().map(String::as_str), Some("1"));
}
