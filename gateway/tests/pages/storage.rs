//! The storage alarm on the dashboard (issue 20, point 2), in a real Chromium: a
//! gateway whose alarm threshold is 100 % (so the disk it runs on is always "low")
//! shows the banner at the top of every page, and the alarm is in the audit log.

use std::sync::Arc;

use test_support::{Backend, TestGateway, test_config};

use crate::browser::{Browser, goto, screenshot, sign_in, text, wait_for};
use crate::support::Api;

#[tokio::test]
async fn a_storage_alarm_shows_a_banner_on_every_page() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let data = Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(data.path(), &Backend::Sqlite, 1);
    config.storage.alarm_free_percent = 100;
    let gw = TestGateway::start_with(config, data, Arc::new(clock::SystemClock)).await;
    let api = Api::from_gateway(gw);
    let base = api.base();
    let page = browser.open(&format!("{base}/fleet")).await;
    wait_for(&page, "#sign-in").await;
    sign_in(&page, &base, &api.admin).await;
    wait_for(&page, "#signed-in").await;
    for path in ["/fleet", "/allocation", "/uploads", "/cases", "/audit"] {
        goto(&page, &format!("{base}{path}")).await;
        wait_for(&page, "#storage-alarm").await;
        let banner = text(&page, "#storage-alarm").await;
        assert!(
            banner.contains("存储空间不足") && banner.contains("media folder"),
            "{path}: {banner}"
        );
    }
    screenshot(&page, "storage-alarm").await;
    let audit = api.audit().await;
    assert!(
        audit.iter().any(|e| e["action"] == "storage_alarm_raised"),
        "the alarm is audited: {audit:?}"
    );
    browser.close().await;
    api.stop().await;
}
