//! A headless Chromium for one test: started with a fresh profile folder and the
//! flags that keep it off the network, driven over the DevTools protocol, and helpers
//! that read a page the way a person would (text of elements, attributes).

use std::path::PathBuf;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser as Cdp, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

/// The variable naming the Chromium executable (it makes the tests mandatory).
pub(crate) const CHROMIUM_ENV: &str = "FIELDSYNC_CHROMIUM";

/// How long one wait for an element may take.
const WAIT: Duration = Duration::from_secs(20);

/// The Chromium to use: `FIELDSYNC_CHROMIUM`, else one on the PATH.
fn executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CHROMIUM_ENV) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
}

/// A running headless Chromium.
pub(crate) struct Browser {
    cdp: Cdp,
    handler: JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium, or returns `None` (with a notice) when none is installed and
    /// `FIELDSYNC_CHROMIUM` is unset.
    pub(crate) async fn launch() -> Option<Browser> {
        let Some(executable) = executable() else {
            eprintln!(
                "chromium is not installed and {CHROMIUM_ENV} is unset: skipping the page tests"
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("profile folder");
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1280, 900)
            .viewport(None)
            .launch_timeout(Duration::from_secs(30))
            .request_timeout(Duration::from_secs(30))
            .args([
                "disable-gpu",
                "disable-quic",
                "no-first-run",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                "disable-dev-shm-usage",
            ])
            .build()
            .expect("browser configuration");
        let (cdp, mut events) = Cdp::launch(config).await.expect("chromium starts");
        let handler = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if event.is_err() {
                    break;
                }
            }
        });
        Some(Browser {
            cdp,
            handler,
            _profile: profile,
        })
    }

    /// A new tab at `url`, loaded.
    pub(crate) async fn open(&self, url: &str) -> Page {
        let page = self.cdp.new_page(url).await.expect("new tab");
        page.wait_for_navigation().await.expect("page loads");
        page
    }

    /// Closes Chromium and waits for it to exit.
    pub(crate) async fn close(mut self) {
        let _ = self.cdp.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.cdp.wait()).await;
        self.handler.abort();
    }
}

/// Goes to `url` and waits until the page has loaded.
pub(crate) async fn goto(page: &Page, url: &str) {
    page.goto(url).await.expect("navigates");
    page.wait_for_navigation().await.expect("page loads");
}

/// Waits until `selector` matches an element.
pub(crate) async fn wait_for(page: &Page, selector: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while page.find_element(selector).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{selector} never appeared; page: {}",
            page.content().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Evaluates a JavaScript expression in the page and decodes its value.
pub(crate) async fn eval<T: DeserializeOwned>(page: &Page, expression: &str) -> T {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
}

/// The trimmed text of every element matching `selector`, in document order.
pub(crate) async fn texts(page: &Page, selector: &str) -> Vec<String> {
    let sel = serde_json::to_string(selector).expect("selector");
    eval(
        page,
        &format!("Array.from(document.querySelectorAll({sel})).map(e => e.textContent.trim())"),
    )
    .await
}

/// The text of the one element matching `selector`.
pub(crate) async fn text(page: &Page, selector: &str) -> String {
    let all = texts(page, selector).await;
    assert_eq!(all.len(), 1, "{selector} matches {} elements", all.len());
    all.into_iter().next().expect("one")
}

/// The number in the one element matching `selector`.
pub(crate) async fn number(page: &Page, selector: &str) -> u64 {
    let t = text(page, selector).await;
    t.parse()
        .unwrap_or_else(|_| panic!("{selector} shows {t:?}, not a number"))
}

/// Signs in through the form with `token`; waits for the page after it.
pub(crate) async fn sign_in(page: &Page, base: &str, token: &str) {
    goto(page, &format!("{base}/login")).await;
    let field = page.find_element("#token").await.expect("token field");
    field.click().await.expect("focus");
    field.type_str(token).await.expect("typing");
    page.find_element("#sign-in button")
        .await
        .expect("button")
        .click()
        .await
        .expect("submit");
}

/// Saves a full-page PNG screenshot as `target/pages-screenshots/<name>.png`.
pub(crate) async fn screenshot(page: &Page, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("pages-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let path = dir.join(format!("{name}.png"));
    let png = page
        .screenshot(ScreenshotParams::builder().full_page(true).build())
        .await
        .expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    std::fs::write(&path, &png).expect("screenshot written");
    path
}
