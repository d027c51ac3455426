//! Operations (issue #17): a binary that runs alone, built-in forms, `/metrics`, `/readyz`,
//! backups that restore.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sipas::Application;

use crate::helpers::{Backend, TestApp, forms_dir, full_answers, test_settings};

fn sipas() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipas"));
    for var in [
        "SIPAS_FORMS_DIR",
        "SIPAS_CONFIG",
        "DATABASE_URL",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The issue's first report: a binary copied alone into an empty folder refused to start
/// ("survey-forms: cannot read folder"). Now it starts with `serve --demo` and serves a survey.
#[actix_web::test]
async fn a_binary_copied_alone_into_an_empty_folder_serves_surveys() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("sipas");
    std::fs::copy(env!("CARGO_BIN_EXE_sipas"), &binary).unwrap();
    let mut child = Command::new(&binary)
        .current_dir(dir.path())
        .env_remove("SIPAS_FORMS_DIR")
        .env_remove("DATABASE_URL")
        .env_remove("SIPAS_CONFIG")
        .env("SIPAS_BIND", "127.0.0.1:0")
        .args(["serve", "--demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, found) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut survey = None;
    while survey.is_none() && Instant::now() < deadline {
        match found.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                survey = line
                    .split_once("Sample survey: ")
                    .map(|(_, url)| url.trim().to_string());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
                        .unwrap();
                    panic!("sipas exited ({status}) before serving: {err}");
                }
            }
            Err(_) => break,
        }
    }
    let page = match &survey {
        Some(url) => reqwest::get(url).await.map(|r| (r.status(), r)),
        None => {
            let _ = child.kill();
            panic!("no sample survey URL printed within 60 s");
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let (status, response) = page.expect("survey page answers");
    assert_eq!(status, 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("<form"), "{body}");
    assert!(dir.path().join("data/sipas.db").is_file());
}

/// The forms folder adds versions and forms; a built-in version can never mean something else.
#[test]
fn the_forms_folder_adds_to_the_built_in_forms_and_cannot_change_them() {
    let empty = tempfile::tempdir().unwrap();
    let check = |dir: Option<&std::path::Path>| {
        let mut cmd = sipas();
        cmd.current_dir(empty.path()).args(["forms", "check"]);
        if let Some(dir) = dir {
            cmd.env("SIPAS_FORMS_DIR", dir);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No folder at all: the built-in forms.
    let (ok, stdout, stderr) = check(None);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("sipas v1") && stdout.contains("transaction v1"),
        "{stdout}"
    );

    // A folder the operator named must exist.
    let (ok, _, stderr) = check(Some(&empty.path().join("missing")));
    assert!(!ok);
    assert!(stderr.contains("cannot read folder"), "{stderr}");

    let source = std::fs::read_to_string(forms_dir().join("transaction-v1.toml")).unwrap();
    let folder = tempfile::tempdir().unwrap();
    // The same file as the built-in one is fine (e.g. a copy of survey-forms/).
    std::fs::write(folder.path().join("transaction-v1.toml"), &source).unwrap();
    // A new version is added.
    std::fs::write(
        folder.path().join("transaction-v2.toml"),
        source.replacen("version = 1", "version = 2", 1),
    )
    .unwrap();
    let (ok, stdout, stderr) = check(Some(folder.path()));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("transaction v2") && stdout.contains("sipas v1"),
        "{stdout}"
    );

    // The built-in version with other content is refused, naming the file and what to do.
    std::fs::write(
        folder.path().join("transaction-v1.toml"),
        source.replacen("Đánh giá việc giải quyết hồ sơ", "Đánh giá hồ sơ (sửa)", 1),
    )
    .unwrap();
    let (ok, _, stderr) = check(Some(folder.path()));
    assert!(!ok);
    assert!(
        stderr.contains("transaction-v1.toml")
            && stderr.contains("built-in")
            && stderr.contains("version = 3"),
        "{stderr}"
    );
}

/// The value of one sample line (`name{labels} value`) in a Prometheus text page; 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

const METRICS_TOKEN: &str = "metrics-token-for-tests-0123";

async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn metrics_count_submissions(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.metrics_token = Some(METRICS_TOKEN.into());
    })
    .await;
    let anonymous = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token-for-tests-0124")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let stored = "sipas_survey_submissions_total{outcome=\"stored\"}";
    let used = "sipas_survey_submissions_total{outcome=\"already_used\"}";
    let created = "sipas_transaction_registrations_total{outcome=\"created\"}";
    let batches = "sipas_writer_batch_size_count";
    let before = scrape(&app).await;
    let issued = app.issue_survey("HS-METRICS", None).await;
    let url = issued["survey_url"].as_str().unwrap();
    let fields = full_answers(&app.state.forms.latest("transaction").unwrap());
    assert_eq!(app.submit(url, &fields).await.status(), 200);
    assert_eq!(app.submit(url, &fields).await.status(), 409);
    let after = scrape(&app).await;
    // Other tests in this process count into the same registry: at least ours moved.
    assert!(
        sample(&after, stored) >= sample(&before, stored) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, used) >= sample(&before, used) + 1.0,
        "{after}"
    );
    assert!(sample(&after, created) >= sample(&before, created) + 1.0);
    assert!(sample(&after, batches) >= sample(&before, batches) + 1.0);
    assert!(after.contains("sipas_writer_commit_seconds_bucket"));
    assert!(after.contains("sipas_writer_queue_depth "));
    assert!(after.contains("sipas_outbox_messages{status=\"queued\"}"));
    assert!(after.contains(
        "sipas_http_requests_total{method=\"POST\",route=\"/s/{token}\",status=\"200\"}"
    ));
    assert!(after.contains("sipas_http_request_duration_seconds_bucket"));
    let token = issued["token"].as_str().unwrap();
    assert!(!after.contains(token), "no survey token in any label");
}

#[actix_web::test]
async fn metrics_count_submissions_sqlite() {
    metrics_count_submissions(Backend::Sqlite).await;
}

#[actix_web::test]
async fn metrics_count_submissions_postgres() {
    if let Some(backend) = Backend::postgres() {
        metrics_count_submissions(backend).await;
    }
}

/// Without a token or a metrics address, `/metrics` does not exist; with a metrics address it
/// is served there (and nothing else is), not on the public address.
#[actix_web::test]
async fn metrics_are_private_by_default_and_served_on_their_own_address() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);

    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&format!("sqlite://{}", dir.path().join("m.db").display()));
    settings.smtp_url = Some(format!("file://{}", dir.path().join("mail").display()));
    settings.metrics_bind = Some("127.0.0.1:0".into());
    let app = Application::build(settings).unwrap();
    let port = app.port();
    let metrics_port = app.metrics_port().expect("metrics listener");
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    let get = |port: u16, path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(get(metrics_port, "/metrics").await, 200);
    assert_eq!(get(metrics_port, "/readyz").await, 200);
    assert_eq!(
        get(metrics_port, "/").await,
        404,
        "only metrics and health there"
    );
    assert_eq!(get(port, "/metrics").await, 404);
    assert_eq!(get(port, "/").await, 200);
    handle.stop(true).await;
}

/// `/readyz` turns 503 within seconds of the writer thread dying; `/healthz` (liveness) does not.
async fn readiness_follows_the_writer(app: TestApp) {
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    // Kill the writer thread the way a bug would: a job that panics on it.
    let killed = app
        .state
        .writer
        .run(|_, _| -> Result<(), diesel::result::Error> { panic!("test: the writer thread dies") })
        .await;
    assert!(killed.is_err());

    let started = Instant::now();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert!(
        body["reason"].as_str().unwrap().contains("writer"),
        "{body}"
    );
    assert_eq!(body["checks"]["database"], "ok");
    let live = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
}

crate::on_both_databases!(readiness_follows_the_writer);

/// `/readyz` turns 503 within seconds of the mail sender stopping, naming it; the writer and
/// the database stay "ok".
async fn readiness_follows_the_mail_sender(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.mail_poll_millis = 100;
        s.mail_stale_seconds = 1;
        s.metrics_token = Some(METRICS_TOKEN.into());
    })
    .await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    app.state.mail_sender.request_stop();
    let started = Instant::now();
    let body = loop {
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        if res.status() == 503 {
            break res.json::<serde_json::Value>().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still ready 5 s after the mail sender stopped"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        body["reason"].as_str().unwrap().contains("mail sender"),
        "{body}"
    );
    assert_eq!(body["checks"]["writer"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let age: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sipas_mail_sender_heartbeat_age_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .expect("heartbeat age metric");
    assert!(age >= 1, "{age}");
}

crate::on_both_databases!(backend: readiness_follows_the_mail_sender);

/// A backup taken while answers keep arriving restores into a folder of its own, the app starts
/// on it, and every answer acknowledged before the backup began is in it.
#[actix_web::test]
async fn a_backup_taken_under_load_restores_every_acknowledged_answer() {
    let app = Rc::new(
        TestApp::spawn_with(Backend::Sqlite, |s| s.survey_rate_per_minute = 1_000_000).await,
    );
    let acked: Rc<std::cell::RefCell<Vec<(Instant, String)>>> = Rc::default();
    let stop = Rc::new(AtomicBool::new(false));
    let form = app.state.forms.latest("transaction").unwrap();
    let mut workers = Vec::new();
    for w in 0..4 {
        let (app, acked, stop, fields) = (
            app.clone(),
            acked.clone(),
            stop.clone(),
            full_answers(&form),
        );
        workers.push(actix_web::rt::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let issued = app.issue_survey(&format!("HS-BK-{w}-{i}"), None).await;
                let url = issued["survey_url"].as_str().unwrap();
                if app.submit(url, &fields).await.status() == 200 {
                    let token = issued["token"].as_str().unwrap().to_string();
                    acked.borrow_mut().push((Instant::now(), token));
                }
            }
        }));
    }
    while acked.borrow().len() < 40 {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let began = Instant::now();
    let backup = {
        let (url, copy) = (app.database_url.clone(), copy.clone());
        actix_web::rt::task::spawn_blocking(move || {
            sipas()
                .env("DATABASE_URL", url)
                .args(["backup", "--to"])
                .arg(&copy)
                .output()
                .unwrap()
        })
    };
    let out = backup.await.unwrap();
    let during = acked.borrow().iter().filter(|(t, _)| *t > began).count();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("VACUUM INTO") && printed.contains("integrity_check on the copy: ok"),
        "{printed}"
    );
    let before: Vec<String> = acked
        .borrow()
        .iter()
        .filter(|(t, _)| *t < began)
        .map(|(_, token)| token.clone())
        .collect();
    eprintln!(
        "backup: {} answers acknowledged before it began, {during} while it ran",
        before.len()
    );

    // The copy is never overwritten.
    let again = sipas()
        .env("DATABASE_URL", &app.database_url)
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Restore: the file alone, in a fresh folder, and a new app on it.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("sipas.db")).unwrap();
    let mut settings = test_settings(&format!(
        "sqlite://{}",
        restored.path().join("sipas.db").display()
    ));
    settings.smtp_url = Some(format!("file://{}", restored.path().join("mail").display()));
    settings.survey_rate_per_minute = 1_000_000;
    let restored_app = Application::build(settings).expect("the app starts on the copy");
    let base = restored_app.state().public_base();
    let handle = restored_app.handle();
    actix_web::rt::spawn(restored_app.run_until_stopped());
    for token in &before {
        let status = reqwest::get(format!("{base}/s/{token}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 409, "answer behind {token} is in the restored copy");
    }
    handle.stop(true).await;
}

/// On PostgreSQL the command explains the procedure instead of pretending.
#[test]
fn backup_on_postgres_explains_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let out = sipas()
        .env("DATABASE_URL", "postgres://127.0.0.1:5432/test")
        .args(["backup", "--to"])
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pg_dump") && stderr.contains("pg_restore"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.db").exists());
}

/// Progress bars go to a terminal only: piped output stays clean.
#[test]
fn demo_progress_is_hidden_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = sipas()
        .current_dir(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("d.db").display()),
        )
        .args(["demo", "--responses", "300"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ETA") && !stderr.contains('\r'),
        "{stderr}"
    );
    assert!(stderr.contains("added 300 synthetic responses"), "{stderr}");
}
