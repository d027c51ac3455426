//! The citizen's survey in a real browser: headless Chromium at phone size, driven over
//! WebDriver (chromedriver) by fantoccini.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`).
//! `SIPAS_CHROMEDRIVER` names another chromedriver, `SIPAS_CHROMIUM` another browser binary;
//! `SIPAS_SKIP_BROWSER=1` skips these tests. Every wait is bounded, and chromedriver and its
//! browser are killed when a test ends, whether it passed, failed or timed out.

use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use sipas::db::schema::{responses, survey_tokens};
use sipas::db_run;
use sipas::forms::{Question, QuestionType};
use sipas::i18n::Lang;

use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    citizen_fills_survey_on_a_phone,
    expired_and_used_links_show_their_pages
);

/// A phone's viewport in CSS pixels (iPhone 12 to 15).
const PHONE: (u32, u32) = (390, 844);
/// How long chromedriver may take to answer after it starts.
const DRIVER_START_LIMIT: Duration = Duration::from_secs(10);
/// How long opening the browser session (starting Chromium) may take.
const SESSION_START_LIMIT: Duration = Duration::from_secs(30);
/// How long one page state (a heading, a navigation) may take to appear.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// How long a whole scenario may take once the browser runs.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Phones overlay their scroll bars; a desktop scroll bar would take 15px of the width.
    "--hide-scrollbars",
    "--window-size=390,844",
];

/// One browser at a time: a 2-core CI machine also runs every other test in parallel.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn skip_browser() -> bool {
    if std::env::var("SIPAS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("SIPAS_SKIP_BROWSER=1: browser test skipped");
        return true;
    }
    false
}

/// `SIPAS_CHROMEDRIVER`, else `chromedriver` on the PATH, else Debian's.
fn chromedriver_path() -> PathBuf {
    const INSTALL: &str = "the browser tests need chromedriver and Chromium: install Debian's \
        `chromium chromium-driver` (apt-get install chromium chromium-driver), point \
        SIPAS_CHROMEDRIVER at a chromedriver, or set SIPAS_SKIP_BROWSER=1 to skip these tests";
    if let Some(path) = std::env::var_os("SIPAS_CHROMEDRIVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "SIPAS_CHROMEDRIVER={} does not exist; {INSTALL}",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromedriver"))
        .chain([PathBuf::from("/usr/bin/chromedriver")])
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("chromedriver not found; {INSTALL}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// The chromedriver process (and, through its process group, the browser it starts), with a
/// fresh browser profile. Dropping it kills them all.
struct Driver {
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Driver {
    fn start(port: u16) -> Self {
        let path = chromedriver_path();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("chromedriver.log");
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so that Chromium and its helpers can be killed with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        Self { child, log, dir }
    }

    fn profile_dir(&self) -> PathBuf {
        self.dir.path().join("profile")
    }

    /// The end of chromedriver's log, to explain a failure.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until chromedriver answers on `port`.
    async fn wait_ready(&mut self, port: u16) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("http client");
        let url = format!("http://127.0.0.1:{port}/status");
        let start = Instant::now();
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromedriver exited at start ({status}):\n{}",
                    self.log_tail()
                );
            }
            assert!(
                start.elapsed() < DRIVER_START_LIMIT,
                "chromedriver did not answer on port {port} within {DRIVER_START_LIMIT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("chromedriver log (end):\n{}", self.log_tail());
        }
        // The whole group: chromedriver, Chromium and Chromium's helper processes.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session at phone size. `client` is declared first so that it is dropped before
/// the driver is killed.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: Driver,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver and a phone-sized headless Chromium; `None` when browser tests are
    /// skipped.
    pub(crate) async fn start() -> Option<Self> {
        if skip_browser() {
            return None;
        }
        let turn = ONE_BROWSER_AT_A_TIME.lock().await;
        let port = free_port();
        let mut driver = Driver::start(port);
        driver.wait_ready(port).await;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            driver.profile_dir().display()
        ));
        let mut options = json!({ "args": args });
        if let Some(binary) = std::env::var_os("SIPAS_CHROMIUM") {
            options["binary"] = json!(binary.to_string_lossy());
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "timeouts": { "pageLoad": 20_000, "script": 10_000, "implicit": 0 },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(capabilities);
        let webdriver = format!("http://127.0.0.1:{port}");
        let connect = builder.connect(&webdriver);
        let client = match tokio::time::timeout(SESSION_START_LIMIT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("cannot open a Chromium session: {e}\n{}", driver.log_tail()),
            Err(_) => panic!(
                "Chromium did not start within {SESSION_START_LIMIT:?}\n{}",
                driver.log_tail()
            ),
        };
        let browser = Self {
            client,
            _driver: driver,
            _turn: turn,
        };
        browser.set_viewport(PHONE.0, PHONE.1).await;
        Some(browser)
    }

    /// Ends the session politely (Chromium exits); `Drop` then kills whatever is left.
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(WAIT_LIMIT, self.client.clone().close()).await;
    }

    /// Sizes the window so that the page itself gets `width`×`height` CSS pixels (the window
    /// includes some browser frame even when headless).
    pub(crate) async fn set_viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let inner = self
            .js("return [window.innerWidth, window.innerHeight]", vec![])
            .await;
        let inner =
            |i: usize| u32::try_from(inner[i].as_u64().expect("viewport size")).expect("size");
        let (extra_w, extra_h) = (
            width.saturating_sub(inner(0)),
            height.saturating_sub(inner(1)),
        );
        if extra_w > 0 || extra_h > 0 {
            let resized = self
                .client
                .set_window_size(width + extra_w, height + extra_h)
                .await;
            resized.expect("window size");
        }
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs a script and returns what it returns.
    pub(crate) async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn heading(&self) -> Option<String> {
        let found = self
            .client
            .execute(
                "const h = document.querySelector('h1'); return h && h.textContent;",
                vec![],
            )
            .await;
        found
            .ok()
            .and_then(|v| v.as_str().map(|s| s.trim().to_string()))
    }

    /// Waits until the page's `h1` reads `expected` (the page may still be loading).
    pub(crate) async fn wait_for_heading(&self, expected: &str) {
        let start = Instant::now();
        loop {
            let seen = self.heading().await;
            if seen.as_deref() == Some(expected) {
                return;
            }
            if start.elapsed() > WAIT_LIMIT {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let invalid = self
                    .js(
                        "return [...document.querySelectorAll(':invalid')].map(e => e.name || e.tagName)",
                        vec![],
                    )
                    .await;
                panic!(
                    "heading {expected:?} did not appear within {WAIT_LIMIT:?}; \
                     page {url:?} shows {seen:?}; fields the browser finds invalid: {invalid}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses keys one after the other on whatever has the focus, like a person would.
    async fn press(&self, keys: &[Key]) {
        let mut typing = KeyActions::new("keyboard".into());
        for key in keys {
            typing = typing
                .then(KeyAction::Down {
                    value: char::from(*key),
                })
                .then(KeyAction::Up {
                    value: char::from(*key),
                });
        }
        self.client
            .perform_actions(typing)
            .await
            .expect("key presses");
        self.client.release_actions().await.expect("release keys");
    }

    /// `name` and `value` of the focused element.
    async fn focused(&self) -> (String, String) {
        let v = self
            .js(
                "const e = document.activeElement; return [e.name || e.tagName, e.value || ''];",
                vec![],
            )
            .await;
        (
            v[0].as_str().unwrap_or_default().into(),
            v[1].as_str().unwrap_or_default().into(),
        )
    }

    /// The checked values of the inputs named `name`.
    async fn checked(&self, name: &str) -> Vec<String> {
        let v = self
            .js(
                "return [...document.getElementsByName(arguments[0])].filter(e => e.checked).map(e => e.value)",
                vec![json!(name)],
            )
            .await;
        serde_json::from_value(v).expect("list of values")
    }

    pub(crate) async fn save_screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
    }
}

/// Runs a scenario with a time limit; the browser is killed however it ends.
pub(crate) async fn bounded(scenario: impl Future<Output = ()>) {
    if tokio::time::timeout(SCENARIO_LIMIT, scenario)
        .await
        .is_err()
    {
        panic!("browser scenario took longer than {SCENARIO_LIMIT:?}");
    }
}

async fn citizen_fills_survey_on_a_phone(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(fill_the_survey_on_a_phone(&app, &browser)).await;
    browser.close().await;
}

/// What a question's stored answer must be: (`value_int`, `value_text`).
type Stored = (Option<i64>, Option<String>);

async fn fill_the_survey_on_a_phone(app: &TestApp, browser: &Browser) {
    let form = app.state.forms.latest("sipas").expect("sipas form");
    let issued = app.issue_survey("DOSSIER-1", Some("sipas")).await;
    let url = issued["survey_url"].as_str().expect("survey_url");

    // Vietnamese first, and nothing wider than the phone. The whole form on one page (the
    // steps a phone gets by default are tested in `browser_pages`).
    browser.goto(&format!("{url}?layout=all")).await;
    browser.wait_for_heading(form.title.get(Lang::Vi)).await;
    let h1 = browser.client.find(Locator::Css("h1")).await.expect("h1");
    assert!(
        h1.is_displayed().await.expect("h1 displayed"),
        "the title is visible"
    );
    assert_eq!(
        browser
            .js("return document.documentElement.lang", vec![])
            .await,
        "vi"
    );
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-survey-phone-vi.png"))
        .await;
    let widths = browser
        .js(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await;
    let (scroll_width, inner_width) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    assert!(
        inner_width <= i64::from(PHONE.0),
        "the browser window is phone-sized (viewport {inner_width}px wide)"
    );
    assert!(
        scroll_width <= inner_width,
        "no horizontal scrolling on a phone: page {scroll_width}px wide, screen {inner_width}px"
    );

    // One tap on the header link switches to English.
    let switch = browser
        .client
        .find(Locator::Css("header a.lang"))
        .await
        .expect("language link");
    assert_eq!(switch.text().await.expect("link text").trim(), "English");
    switch.click().await.expect("tap English");
    browser.wait_for_heading(form.title.get(Lang::En)).await;
    assert_eq!(
        browser
            .js("return document.documentElement.lang", vec![])
            .await,
        "en"
    );
    let submit = browser
        .client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("submit");
    assert_eq!(submit.text().await.expect("button text").trim(), "Submit");
    let body = browser
        .client
        .find(Locator::Css("body"))
        .await
        .expect("body");
    let text = body.text().await.expect("page text");
    assert!(
        text.contains("Very satisfied"),
        "scale labels are in English"
    );

    let mut expected: BTreeMap<String, Stored> = BTreeMap::new();

    // Keyboard only for the first two scale questions: Tab into the group, Space picks the
    // first level, arrows move to "Satisfied" (4), Tab goes on to the next question.
    let keyboard: Vec<&Question> = form
        .questions()
        .filter(|q| q.kind == QuestionType::Scale5)
        .take(2)
        .collect();
    for (i, q) in keyboard.iter().enumerate() {
        let mut tabs = 0;
        while browser.focused().await.0 != q.code {
            assert!(
                tabs < 5,
                "Tab reaches question {} (focus: {:?})",
                q.code,
                browser.focused().await
            );
            browser.press(&[Key::Tab]).await;
            tabs += 1;
        }
        if i > 0 {
            assert_eq!(tabs, 1, "one Tab leads from one question to the next");
        }
        browser.press(&[Key::Space]).await;
        assert_eq!(
            browser.checked(&q.code).await,
            ["1"],
            "Space picks the focused level of {}",
            q.code
        );
        browser.press(&[Key::Down, Key::Down, Key::Down]).await;
        assert_eq!(
            browser.checked(&q.code).await,
            ["4"],
            "arrow keys move the answer of {}",
            q.code
        );
        expected.insert(q.code.clone(), (Some(4), None));
    }

    // Everything else by tapping the labels, as on a touch screen.
    let suggestion = "Staff were helpful. Cán bộ nhiệt tình, cảm ơn!";
    for q in form
        .questions()
        .filter(|q| !keyboard.iter().any(|k| k.code == q.code))
    {
        if q.kind == QuestionType::Text {
            let selector = format!("textarea[name=\"{}\"]", q.code);
            let field = browser
                .client
                .find(Locator::Css(&selector))
                .await
                .expect("textarea");
            field.send_keys(suggestion).await.expect("type");
            assert_eq!(
                field.prop("value").await.expect("value").as_deref(),
                Some(suggestion)
            );
            expected.insert(q.code.clone(), (None, Some(suggestion.to_string())));
            continue;
        }
        let selector = format!("#q-{} .opts label", q.code);
        let labels = browser
            .client
            .find_all(Locator::Css(&selector))
            .await
            .expect("labels");
        let pick = match q.kind {
            QuestionType::Scale5 => 3, // "Satisfied" (4)
            QuestionType::Scale3 => 1, // the middle level
            _ => 0,
        };
        let label = labels
            .get(pick)
            .unwrap_or_else(|| panic!("{} has {} options", q.code, labels.len()));
        label
            .click()
            .await
            .unwrap_or_else(|e| panic!("tap option {pick} of {}: {e}", q.code));
        let input = label
            .find(Locator::Css("input"))
            .await
            .expect("input in label");
        let value = input.attr("value").await.expect("value").expect("value");
        assert_eq!(
            browser.checked(&q.code).await,
            std::slice::from_ref(&value),
            "tapping the label answers {}",
            q.code
        );
        let position = q
            .options
            .iter()
            .position(|o| o.code == value)
            .map(|p| p as i64 + 1);
        let stored = match q.kind {
            QuestionType::Scale5 | QuestionType::Scale3 => {
                (Some(value.parse().expect("level")), None)
            }
            QuestionType::Choice => (position, Some(value)),
            QuestionType::Multi => (None, Some(value)),
            QuestionType::Text => unreachable!(),
        };
        expected.insert(q.code.clone(), stored);
    }

    browser.js("window.scrollTo(0, 0)", vec![]).await;
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-survey-phone.png"))
        .await;
    // The whole page too, in a window as tall as the page (same width, so the same layout).
    let height = browser
        .js("return document.documentElement.scrollHeight", vec![])
        .await;
    let height = u32::try_from(height.as_u64().expect("page height"))
        .unwrap_or(u32::MAX)
        .min(20_000);
    browser.set_viewport(PHONE.0, height).await;
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-survey-phone-full.png"))
        .await;
    browser.set_viewport(PHONE.0, PHONE.1).await;

    let submit = browser
        .client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("submit");
    submit.click().await.expect("tap Submit");
    browser
        .wait_for_heading("Thank you for your feedback!")
        .await;

    // Exactly one response, in English, with what was chosen on screen.
    let conn = &mut app.conn();
    let stored: Vec<(String, String)> =
        db_run!(conn: { responses::table.select((responses::id, responses::language)).load(conn) })
            .expect("responses");
    assert_eq!(stored.len(), 1, "one response stored: {stored:?}");
    assert_eq!(
        stored[0].1, "en",
        "the response remembers that English was chosen"
    );
    let rows = sipas::survey::stored::decode(
        &db_run!(conn: {
            responses::table.find(&stored[0].0).select(responses::answers).first::<String>(conn)
        })
        .expect("answers"),
    )
    .expect("readable answers");
    let rows: BTreeMap<String, Stored> = rows.into_iter().map(|(q, i, t)| (q, (i, t))).collect();
    assert_eq!(
        rows, expected,
        "the stored answers are the ones chosen in the browser"
    );
}

async fn expired_and_used_links_show_their_pages(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(open_spent_links(&app, &browser)).await;
    browser.close().await;
}

async fn open_spent_links(app: &TestApp, browser: &Browser) {
    // Answered once (over plain HTTP), then opened again in the browser.
    let form = app.state.forms.latest("sipas").expect("sipas form");
    let issued = app.issue_survey("DOSSIER-USED", Some("sipas")).await;
    let used = issued["survey_url"].as_str().expect("survey_url");
    assert_eq!(app.submit(used, &full_answers(&form)).await.status(), 200);
    browser.goto(used).await;
    browser
        .wait_for_heading("Phiếu khảo sát này đã được trả lời")
        .await;
    assert!(
        browser.client.find(Locator::Css("form")).await.is_err(),
        "an answered link shows no form"
    );
    let switch = browser
        .client
        .find(Locator::Css("header a.lang"))
        .await
        .expect("language link");
    switch.click().await.expect("tap English");
    browser
        .wait_for_heading("This survey has already been answered")
        .await;

    // Expired before it was answered.
    let issued = app.issue_survey("DOSSIER-EXPIRED", Some("sipas")).await;
    let expired = issued["survey_url"].as_str().expect("survey_url");
    let conn = &mut app.conn();
    let past = sipas::db::now() - chrono::Duration::minutes(1);
    db_run!(conn: {
        diesel::update(survey_tokens::table.filter(survey_tokens::spent_at.is_null()))
            .set(survey_tokens::expires_at.eq(past))
            .execute(conn)
    })
    .expect("expire the link");
    browser.goto(expired).await;
    browser
        .wait_for_heading("Liên kết khảo sát đã hết hạn")
        .await;
    assert!(
        browser.client.find(Locator::Css("form")).await.is_err(),
        "an expired link shows no form"
    );
    let widths = browser
        .js(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await;
    let (scroll_width, inner_width) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
    assert!(
        scroll_width <= inner_width,
        "no horizontal scrolling: page {scroll_width}px wide, screen {inner_width}px"
    );
}
