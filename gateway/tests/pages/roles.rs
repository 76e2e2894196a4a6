//! The dashboard keeps the API's role rules: finance opens the reports but not the
//! case view; an unknown token is refused at the form; a revoked token loses its
//! session on the very next page.

use std::time::Duration;

use serde_json::json;
use test_support::Backend;

use crate::browser::{Browser, goto, screenshot, sign_in, text, texts, wait_for};
use crate::scenario::{CASE, set_up};

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn finance_sees_reports_but_not_case_content() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    tokio::time::timeout(LIMIT, async {
        let s = set_up(&Backend::Sqlite).await;
        let base = s.api.base();
        let finance = s.api.token("finance-office", "finance").await;
        let page = browser.open(&format!("{base}/login")).await;

        // A token that is not one: refused at the form, no session.
        sign_in(&page, &base, &format!("fst_{}", "0".repeat(64))).await;
        wait_for(&page, "#sign-in-message").await;
        assert_eq!(
            text(&page, "#sign-in-message").await,
            "Unknown or revoked token."
        );
        assert!(page.get_cookies().await.unwrap().is_empty());

        sign_in(&page, &base, &finance).await;
        wait_for(&page, "#signed-in").await;
        assert_eq!(
            texts(&page, "header nav a").await,
            vec!["Allocation", "Uploads"]
        );

        goto(&page, &format!("{base}/allocation")).await;
        wait_for(&page, "#allocation-chart").await;
        goto(&page, &format!("{base}/uploads")).await;
        wait_for(&page, "#overdue-table").await;

        for path in [
            format!("/cases?case={CASE}"),
            "/cases".to_owned(),
            "/fleet".to_owned(),
            "/audit".to_owned(),
        ] {
            goto(&page, &format!("{base}{path}")).await;
            wait_for(&page, "#error-message").await;
            let message = text(&page, "#error-message").await;
            assert!(
                message.contains("the finance role may not"),
                "{path}: {message}"
            );
            let html = page.content().await.unwrap();
            assert!(
                !html.contains("goods seized") && !html.contains("timeline"),
                "{path}"
            );
        }
        screenshot(&page, "finance-refused").await;

        // Revoking the token ends the session at the next page.
        s.api
            .post(
                "/api/v1/tokens/finance-office/revoke",
                json!({ "reason": "left" }),
            )
            .await;
        goto(&page, &format!("{base}/uploads")).await;
        wait_for(&page, "#sign-in").await;
        s.api.stop().await;
    })
    .await
    .expect("finishes in time");
    browser.close().await;
}
