//! Pages fetched without a browser (so these run wherever the gateway does): a page
//! needs a live session and carries headers that forbid caching, framing and
//! scripts; the audit log page reads the whole log, fifty entries at a time.

use std::time::Duration;

use test_support::Backend;

use crate::scenario::set_up;

/// A page request without a browser: status, `Location` and the headers that matter.
fn fetch(url: &str, cookie: Option<&str>) -> (u16, Option<String>, Option<String>, Option<String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(c) = cookie {
        request = request.header("Cookie", c);
    }
    let response = request.call().expect("request sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    (
        response.status().as_u16(),
        header("location"),
        header("content-security-policy"),
        header("cache-control"),
    )
}

#[tokio::test]
async fn pages_need_a_live_session_and_are_never_cached_or_scripted() {
    let s = set_up(&Backend::Sqlite).await;
    let base = s.api.base();
    let admin = s.api.admin.clone();
    tokio::task::spawn_blocking(move || {
        for path in ["/", "/fleet", "/allocation", "/uploads", "/cases", "/audit"] {
            let (status, location, csp, cache) = fetch(&format!("{base}{path}"), None);
            assert_eq!(
                (status, location.as_deref()),
                (303, Some("/login")),
                "{path}"
            );
            assert!(csp.unwrap().contains("default-src 'none'"), "{path}");
            assert_eq!(cache.as_deref(), Some("no-store"));
            // A bearer token in the URL is not a session.
            let (status, _, _, _) = fetch(&format!("{base}{path}?token={admin}"), None);
            assert_eq!(status, 303, "{path}");
            let cookie = format!("fieldsync_session={admin}");
            let (status, _, csp, _) = fetch(&format!("{base}{path}"), Some(&cookie));
            assert_eq!(status, 200, "{path}");
            assert!(!csp.unwrap().contains("script-src"), "no script is allowed");
        }
        let (status, _, _, _) = fetch(
            &format!("{base}/cases?case=C-none"),
            Some(&format!("fieldsync_session={admin}")),
        );
        assert_eq!(status, 200, "an unknown case is a page that says so");
    })
    .await
    .expect("requests");
    s.api.stop().await;
}

/// The `data-seq` values of an audit page's rows.
fn seqs(html: &str) -> Vec<i64> {
    html.split("data-seq=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_audit_page_reads_the_log_fifty_entries_at_a_time() {
    let s = set_up(&Backend::Sqlite).await;
    for n in 0..40 {
        s.api.token(&format!("clerk-{n}"), "finance").await;
    }
    let total = s.api.audit().await.len();
    assert!(total > 50, "{total} entries");
    let base = s.api.base();
    let cookie = format!("fieldsync_session={}", s.api.admin);
    let pages = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let html = agent
                .get(&format!("{base}/audit?after={after}"))
                .header("Cookie", &cookie)
                .call()
                .expect("audit page")
                .body_mut()
                .read_to_string()
                .expect("html");
            let page = seqs(&html);
            let more = html.contains("id=\"audit-next\"");
            after = page.last().copied().unwrap_or(after);
            pages.push(page);
            if !more {
                return pages;
            }
        }
    })
    .await
    .expect("pages");
    assert_eq!(pages[0].len(), 50);
    let all: Vec<i64> = pages.concat();
    assert_eq!(
        all,
        (1..=total as i64).collect::<Vec<_>>(),
        "every entry once, in order"
    );
    s.api.stop().await;
}
