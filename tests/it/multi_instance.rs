//! Several sipas instances on one database: start-up work done once under a lock, mail claimed
//! with a lease so a starting instance never resends what a live one is sending, and a secret
//! that must match across instances.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use diesel::prelude::*;
use serde_json::json;
use sipas::config::Settings;
use sipas::db::DbConn;
use sipas::db::schema::{dossier_rollups, responses, rollup_cells, rollup_procedure_cells};
use sipas::db_run;
use sipas::mail::outbox as mail_outbox;
use sipas::mail::sender::{MailPolicy, MailSender};

use crate::helpers::staff::{sign_in_admin, unit_id};
use crate::helpers::{
    Backend, TestApp, fresh_database, full_answers, test_settings, transaction_body,
};
use crate::smtp_sink::SmtpSink;

crate::on_both_databases!(
    backend: a_starting_instance_leaves_mail_another_instance_is_sending,
    two_senders_send_every_message_once,
    instances_starting_together_all_start,
    instances_starting_together_rebuild_rollups_once,
    a_different_secret_is_refused_at_start,
);

/// An app whose own sender runs only at start (it then sleeps an hour), pointed at `sink`.
async fn quiet_app(backend: Backend, sink: &SmtpSink) -> TestApp {
    let port = sink.port;
    TestApp::spawn_with(backend, |s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.mail_poll_millis = 3_600_000;
    })
    .await
}

async fn register_with_email(app: &TestApp, dossier: &str, email: &str) {
    let mut body = transaction_body(dossier);
    body["email"] = json!(email);
    body["completed_at"] = json!(chrono::Utc::now().to_rfc3339());
    body["received_at"] = json!((chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339());
    body["due_at"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let response = app.post_transaction(&body).await;
    assert_eq!(response.status(), 201);
}

/// A second instance's mail sender on the same database (what `Application::build` starts).
fn second_sender(app: &TestApp, poll: Duration) -> MailSender {
    let policy = MailPolicy::from_settings(&app.state.settings, app.state.secret.clone()).unwrap();
    MailSender::start(app.state.pool.clone(), policy, poll).unwrap()
}

/// A rolling restart: instance A is sending a message when instance B starts. B must not take
/// the message back (A would have sent it, B sends it again); a message whose sender died (its
/// lease ran out) is sent by B, once.
async fn a_starting_instance_leaves_mail_another_instance_is_sending(backend: Backend) {
    let sink = SmtpSink::start(0).await;
    let app = quiet_app(backend, &sink).await;
    let conn = &mut app.conn();
    register_with_email(&app, "HS-LEASE-1", "live@example.vn").await;
    // Instance A claims the invitation and is in the middle of sending it.
    let now = sipas::db::now();
    let live = mail_outbox::claim_due(conn, "instance-a", now, mail_outbox::LEASE, 10).unwrap();
    assert_eq!(live.len(), 1);
    // Instance D claimed another one and died: its lease has run out.
    register_with_email(&app, "HS-LEASE-2", "dead@example.vn").await;
    let later = sipas::db::now();
    let dead = mail_outbox::claim_due(conn, "instance-d", later, chrono::Duration::seconds(-1), 10)
        .unwrap();
    assert_eq!(dead.len(), 1);
    // Instance B starts.
    let b = second_sender(&app, Duration::from_millis(50));
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let to: Vec<String> = sink.received().into_iter().flat_map(|m| m.to).collect();
    assert_eq!(
        to,
        ["dead@example.vn"],
        "B sends what a dead sender left, never what a live one is sending"
    );
    // A's outcome is still A's to record; B cannot record one for it.
    assert!(!mail_outbox::mark_sent(conn, &live[0], "instance-b", now).unwrap());
    assert!(mail_outbox::begin_attempt(conn, &live[0], "instance-a", now).unwrap());
    assert!(mail_outbox::mark_sent(conn, &live[0], "instance-a", now).unwrap());
    b.stop();
    sink.stop();
}

/// Two instances' senders drain one outbox: every invitation arrives exactly once.
async fn two_senders_send_every_message_once(backend: Backend) {
    const N: usize = 30;
    let sink = SmtpSink::start(0).await;
    let port = sink.port;
    let app = TestApp::spawn_with(backend, |s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.mail_poll_millis = 20;
    })
    .await;
    let b = second_sender(&app, Duration::from_millis(20));
    for i in 0..N {
        register_with_email(&app, &format!("HS-TWO-{i}"), &format!("two{i}@example.vn")).await;
    }
    let got = sink.wait_for(N, Duration::from_secs(30)).await;
    assert_eq!(got.len(), N, "every invitation arrived");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut to: Vec<String> = sink.received().into_iter().flat_map(|m| m.to).collect();
    to.sort();
    let mut expected: Vec<String> = (0..N).map(|i| format!("two{i}@example.vn")).collect();
    expected.sort();
    assert_eq!(to, expected, "each invitation exactly once");
    b.stop();
    sink.stop();
}

/// Runs `sipas::prepare` (the start-up work of every instance and command) from `n` threads at
/// the same moment; returns each outcome.
fn prepare_together(settings: &[Settings]) -> Vec<anyhow::Result<()>> {
    let barrier = Arc::new(Barrier::new(settings.len()));
    let threads: Vec<_> = settings
        .iter()
        .cloned()
        .map(|s| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                sipas::prepare(&s).map(|_| ())
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("no panic"))
        .collect()
}

/// Three instances started at once on an empty database: migrations, form sync and the secret
/// each happen once, and every instance starts.
async fn instances_starting_together_all_start(backend: Backend) {
    for _ in 0..3 {
        let (url, _db) = fresh_database(&backend);
        let settings = vec![test_settings(&url); 3];
        for outcome in prepare_together(&settings) {
            if let Err(e) = outcome {
                panic!("an instance failed to start: {e:#}");
            }
        }
    }
}

/// An upgraded database has responses but no rollups yet; instances starting together must
/// fill them once, not once each.
async fn instances_starting_together_rebuild_rollups_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = app.state.forms.latest("transaction").unwrap();
    for i in 0..40 {
        let issued = app.issue_survey(&format!("HS-REBUILD-{i}"), None).await;
        let r = app
            .submit(issued["survey_url"].as_str().unwrap(), &full_answers(&form))
            .await;
        assert_eq!(r.status(), 200);
    }
    let expected = rollup_snapshot(&mut app.conn());
    assert!(!expected.0.is_empty());
    for _ in 0..3 {
        {
            let conn = &mut app.conn();
            db_run!(conn: {
                diesel::delete(rollup_cells::table).execute(conn).unwrap();
                diesel::delete(rollup_procedure_cells::table).execute(conn).unwrap();
                diesel::delete(dossier_rollups::table).execute(conn).unwrap();
            });
        }
        let settings = vec![test_settings(&app.database_url); 3];
        for outcome in prepare_together(&settings) {
            outcome.expect("instance starts");
        }
        let rebuilt = rollup_snapshot(&mut app.conn());
        assert_same_rollups(&expected, &rebuilt);
    }
    let counted: i64 = {
        let conn = &mut app.conn();
        db_run!(conn: {
            responses::table.filter(responses::status.eq("counted")).count().get_result(conn)
        })
        .unwrap()
    };
    assert_eq!(counted, 40);
}

/// Rollup cells and dossier counts, sorted, for comparison.
pub struct RollupSnapshot(
    pub Vec<(String, sipas::rollup::cell::CellCounts)>,
    pub Vec<(String, chrono::NaiveDate, i64, i64, i64, i64)>,
);

pub fn rollup_snapshot(conn: &mut DbConn) -> RollupSnapshot {
    let mut cells: Vec<(String, sipas::rollup::cell::CellCounts)> =
        sipas::rollup::stored_cells(conn, None)
            .unwrap()
            .into_iter()
            .map(|(k, c)| (format!("{k:?}"), c))
            .collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    let dossiers = db_run!(conn: {
        dossier_rollups::table
            .order((dossier_rollups::unit_id, dossier_rollups::month))
            .select((
                dossier_rollups::unit_id, dossier_rollups::month, dossier_rollups::dossiers,
                dossier_rollups::rated_unsatisfied, dossier_rollups::late, dossier_rollups::unsatisfied_or_late,
            ))
            .load(conn)
    })
    .unwrap();
    RollupSnapshot(cells, dossiers)
}

/// Equal counts; score sums equal up to rounding (added in another order).
pub fn assert_same_rollups(expected: &RollupSnapshot, actual: &RollupSnapshot) {
    assert_eq!(expected.1, actual.1, "dossier rollups");
    assert_eq!(
        expected.0.iter().map(|c| &c.0).collect::<Vec<_>>(),
        actual.0.iter().map(|c| &c.0).collect::<Vec<_>>(),
        "the same rollup cells"
    );
    for ((key, a), (_, b)) in expected.0.iter().zip(&actual.0) {
        let trimmed = |c: &sipas::rollup::cell::CellCounts| {
            let mut levels: Vec<(String, Vec<i64>)> = c
                .levels
                .iter()
                .map(|(q, v)| {
                    let mut v = v.clone();
                    while v.last() == Some(&0) {
                        v.pop();
                    }
                    (q.clone(), v)
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            levels.sort();
            levels
        };
        assert_eq!(trimmed(a), trimmed(b), "counts of {key}");
        for (element, (n, sum, sq)) in &a.scores {
            let (n2, sum2, sq2) = b.scores.get(element).copied().unwrap_or_default();
            assert_eq!(*n, n2, "respondents scored on {element} in {key}");
            assert!(
                (sum - sum2).abs() < 1e-6 && (sq - sq2).abs() < 1e-6,
                "score moments of {element} in {key}"
            );
        }
    }
}

/// An instance started with another `SIPAS_SECRET` than the others would issue links, paper
/// serials and fingerprints nobody else recognises: it must refuse to start, naming the setting.
async fn a_different_secret_is_refused_at_start(backend: Backend) {
    let (url, _db) = fresh_database(&backend);
    let first = test_settings(&url);
    sipas::prepare(&first).expect("first instance starts");
    sipas::prepare(&first).expect("same secret starts again");
    let mut other = test_settings(&url);
    other.secret = Some("another-secret-another-secret-another!".into());
    let err = match sipas::prepare(&other) {
        Ok(_) => panic!("an instance with another secret started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("SIPAS_SECRET"), "{err}");
    // Without a configured secret the database's own generated one would be used: also not the
    // secret of the running instances.
    let mut unset = test_settings(&url);
    unset.secret = None;
    assert!(sipas::prepare(&unset).is_err(), "unset secret refused too");
}

/// The replica URL for tests: the same schema (no streaming replica can be made here, see the
/// README), read-only like a hot standby, under an application name that shows which
/// connections it opened.
fn replica_url(primary: &str, application_name: &str) -> String {
    primary.replacen(
        "options=",
        &format!(
            "application_name={application_name}&options=-c%20default_transaction_read_only%3Don%20"
        ),
        1,
    )
}

fn connections_named(app: &TestApp, application_name: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let conn = &mut app.conn();
    db_run!(conn: {
        diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1")
            .bind::<diesel::sql_types::Text, _>(application_name)
            .get_result::<N>(conn)
    })
    .unwrap()
    .n
}

/// Reports, rankings and exports read from `DATABASE_REPLICA_URL` (read-only there, as on a
/// standby); when the replica does not answer they are served from the primary.
#[actix_web::test]
async fn reports_read_from_the_replica_and_fall_back_to_the_primary() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let name = format!(
        "sipas_replica_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let tweak_name = name.clone();
    let app = TestApp::spawn_with(backend.clone(), move |s| {
        s.database_replica_url = Some(replica_url(&s.database_url, &tweak_name));
    })
    .await;
    let form = app.state.forms.latest("sipas").unwrap();
    for i in 0..6 {
        let issued = app
            .issue_survey(&format!("HS-REPLICA-{i}"), Some("sipas"))
            .await;
        let r = app
            .submit(issued["survey_url"].as_str().unwrap(), &full_answers(&form))
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(connections_named(&app, &name), 0, "nothing read yet");
    let admin = sign_in_admin(&app).await;
    let stp = unit_id(&app, "STP");
    let year = chrono::Utc::now().format("%Y");
    let paths = [
        format!("/reports/units/{stp}?period={year}"),
        format!("/api/v1/reports/units/{stp}?period={year}"),
        format!("/reports/units/{stp}/export.csv?period={year}"),
        format!("/reports/ranking?period={year}&kind=department"),
        format!("/admin/export/responses.csv?form=sipas&period={year}"),
    ];
    for path in &paths {
        let r = admin.get(&app, path).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let export = admin
        .get(
            &app,
            &format!("/admin/export/responses.csv?form=sipas&period={year}"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        export.lines().count(),
        7,
        "header and six responses, read on the replica"
    );
    assert!(
        connections_named(&app, &name) > 0,
        "the reads went to the replica"
    );

    // A replica that does not answer: the same pages come from the primary.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = TestApp::spawn_with(backend, move |s| {
        s.database_replica_url = Some(format!("postgres://127.0.0.1:{closed_port}/test"));
    })
    .await;
    let admin = sign_in_admin(&down).await;
    let stp = unit_id(&down, "STP");
    let started = std::time::Instant::now();
    for path in [
        format!("/reports/units/{stp}?period={year}"),
        format!("/reports/ranking?period={year}&kind=department"),
        format!("/admin/export/responses.csv?form=sipas&period={year}"),
    ] {
        let r = admin.get(&down, &path).await;
        assert_eq!(r.status(), 200, "{path} with the replica down");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a replica that is down is not waited for on every request"
    );
}

/// A replica makes sense only beside a PostgreSQL primary; anything else is refused at start.
#[test]
fn a_replica_setting_needs_postgres() {
    let mut s = Settings {
        database_replica_url: Some("postgres://127.0.0.1/test".into()),
        ..Settings::default()
    };
    let err = s.check().unwrap_err().to_string();
    assert!(err.contains("DATABASE_REPLICA_URL"), "{err}");
    s.database_url = "postgres://127.0.0.1/test".into();
    s.check().expect("postgres primary and replica");
    s.database_replica_url = Some("sqlite://x.db".into());
    assert!(s.check().is_err());
}

// ---------------------------------------------------------------------------------------------
// Several `sipas serve` processes on one PostgreSQL schema, one of them killed and restarted.

mod processes {
    use std::collections::{HashMap, HashSet};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use diesel::dsl::count_star;
    use diesel::prelude::*;
    use rand::Rng;
    use serde_json::json;
    use sipas::db::schema::{
        dossier_rollups, outbox, responses, rollup_cells, rollup_procedure_cells, survey_tokens,
    };
    use sipas::db_run;

    use super::{assert_same_rollups, rollup_snapshot};
    use crate::helpers::{Backend, forms_dir, fresh_database, full_answers, test_settings};
    use crate::smtp_sink::{SmtpSink, header};

    /// Dossiers registered with an e-mail address, then answered.
    const DOSSIERS: usize = 400;
    const CLIENTS: usize = 16;
    /// Units registered at: a batch then touches several rollup cells, in any order.
    const UNITS: [&str; 3] = ["STP", "SXD", "HCC"];
    /// Times instance 0 is killed during each phase.
    const KILLS_PER_PHASE: usize = 3;
    /// Bound of the whole scenario (CI budget: 3 minutes).
    const LIMIT: Duration = Duration::from_secs(170);

    struct Instance {
        child: Child,
        base: String,
        stdout: PathBuf,
    }

    /// A failed check must not leave servers running.
    impl Drop for Instance {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    }

    /// Spawns `sipas serve --demo` (does not wait for it).
    fn spawn(database_url: &str, smtp_port: u16, scratch: &Path, n: usize, run: usize) -> Instance {
        let port = free_port();
        let settings = test_settings(database_url);
        let stdout = scratch.join(format!("instance-{n}-{run}.out"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.join(format!("instance-{n}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_sipas"))
            .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(scratch)
            .env_remove("SIPAS_CONFIG")
            .env("DATABASE_URL", database_url)
            .env("SIPAS_DEMO_STORY", "off")
            .env("SIPAS_SECRET", settings.secret.expect("test secret"))
            .env("SIPAS_FORMS_DIR", forms_dir())
            .env("SIPAS_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
            .env("SIPAS_MAIL_POLL_MILLIS", "100")
            .env("SIPAS_MAIL_LEASE_SECONDS", "5")
            .env("SIPAS_MAIL_RETRY_BASE_SECONDS", "1")
            .env("SIPAS_SURVEY_RATE_PER_MINUTE", "1000000000")
            .env("SIPAS_HOLD_RULES", "none")
            .env("SIPAS_POOL_SIZE", "6")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(log)
            .spawn()
            .expect("the sipas binary starts");
        Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
        }
    }

    /// Waits until the instance answers `/healthz` and has printed its banner (demo loaded).
    async fn wait_up(instance: &mut Instance, scratch: &Path, n: usize) -> String {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = instance.child.try_wait() {
                let log = std::fs::read_to_string(scratch.join(format!("instance-{n}.log")))
                    .unwrap_or_default();
                panic!("instance {n} exited at start ({status}):\n{log}");
            }
            let printed = std::fs::read_to_string(&instance.stdout).unwrap_or_default();
            let key = printed
                .lines()
                .find_map(|l| l.split("Demo API key:").nth(1))
                .map(|k| k.trim().to_string());
            if let Some(key) = key
                && let Ok(r) = client
                    .get(format!("{}/healthz", instance.base))
                    .send()
                    .await
                && r.status() == 200
            {
                return key;
            }
            assert!(Instant::now() < deadline, "instance {n} did not come up");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    #[actix_web::test]
    #[ignore = "starts and kills several server processes; run by .ci/run with --ignored"]
    async fn several_instances_on_one_postgres_schema() {
        let Some(backend) = Backend::postgres() else {
            return;
        };
        let (database_url, _db) = fresh_database(&backend);
        tokio::time::timeout(LIMIT, scenario(&database_url))
            .await
            .unwrap_or_else(|_| panic!("the scenario took longer than {LIMIT:?}"));
    }

    #[derive(Default)]
    struct Seen {
        /// Dossier → survey token, once its registration was acknowledged.
        registered: HashMap<String, String>,
        /// Tokens whose answer was acknowledged (200).
        acknowledged: HashSet<String>,
        /// Tokens answered 409 on a retry: stored before a kill, the 200 lost with it.
        used_on_retry: HashSet<String>,
        /// Requests answered 5xx (each retried).
        server_errors: usize,
    }

    type Bases = Arc<Mutex<Vec<Option<String>>>>;

    /// A live instance's address, chosen at random.
    fn pick(bases: &Bases) -> Option<String> {
        let live: Vec<String> = bases.lock().unwrap().iter().flatten().cloned().collect();
        if live.is_empty() {
            return None;
        }
        Some(live[rand::rng().random_range(0..live.len())].clone())
    }

    /// Kills instance 0 (SIGKILL) a few times at random moments, restarting it each time.
    async fn kill_and_restart(
        mut zero: Instance,
        bases: &Bases,
        url: &str,
        smtp_port: u16,
        scratch: &Path,
        run: &mut usize,
    ) -> Instance {
        for _ in 0..KILLS_PER_PHASE {
            tokio::time::sleep(Duration::from_millis(rand::rng().random_range(300..900))).await;
            bases.lock().unwrap()[0] = None;
            zero.child.kill().expect("SIGKILL");
            zero.child.wait().expect("reaped");
            zero = spawn(url, smtp_port, scratch, 0, *run);
            *run += 1;
            wait_up(&mut zero, scratch, 0).await;
            bases.lock().unwrap()[0] = Some(zero.base.clone());
        }
        zero
    }

    async fn scenario(database_url: &str) {
        let scratch = tempfile::tempdir().expect("scratch");
        let sink = SmtpSink::start(0).await;

        // 1. Three instances start at once on the empty schema (migrations, forms, secret,
        // rollups and the demo province, all at the same moment).
        let started = Instant::now();
        let mut instances: Vec<Instance> = (0..3)
            .map(|n| spawn(database_url, sink.port, scratch.path(), n, 0))
            .collect();
        let mut key = String::new();
        for (n, instance) in instances.iter_mut().enumerate() {
            key = wait_up(instance, scratch.path(), n).await;
        }
        eprintln!("three instances up in {:?}", started.elapsed());
        let bases: Bases = Arc::new(Mutex::new(
            instances.iter().map(|i| Some(i.base.clone())).collect(),
        ));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let form = sipas::forms::definition::load_file(&forms_dir().join("transaction-v1.toml"))
            .expect("transaction form");
        let answers = serde_urlencoded::to_string(full_answers(&form)).unwrap();
        let mut run = 1;

        // 2. Registrations with e-mail through every instance while instance 0 is killed and
        // restarted.
        let queue: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((0..DOSSIERS).collect()));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (queue, seen, bases, http, key) = (
                    queue.clone(),
                    seen.clone(),
                    bases.clone(),
                    http.clone(),
                    key.clone(),
                );
                actix_web::rt::spawn(async move {
                    loop {
                        let Some(i) = queue.lock().unwrap().pop() else {
                            break;
                        };
                        let dossier = format!("MULTI-{i:05}");
                        let now = chrono::Utc::now();
                        let body = json!({
                            "unit": UNITS[i % UNITS.len()], "dossier_code": dossier,
                            "procedure": "LLTP-01",
                            "received_at": (now - chrono::Duration::days(2)).to_rfc3339(),
                            "completed_at": now.to_rfc3339(),
                            "email": format!("citizen{i:05}@example.vn"), "form": "transaction",
                        });
                        loop {
                            let Some(base) = pick(&bases) else {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            };
                            let answer = http
                                .post(format!("{base}/api/v1/transactions"))
                                .bearer_auth(&key)
                                .json(&body)
                                .send()
                                .await;
                            match answer {
                                Ok(r) if r.status() == 201 || r.status() == 200 => {
                                    let v: serde_json::Value = r.json().await.unwrap();
                                    let token = v["token"].as_str().unwrap().to_string();
                                    seen.lock().unwrap().registered.insert(dossier, token);
                                    break;
                                }
                                Ok(r) if r.status().is_server_error() => {
                                    seen.lock().unwrap().server_errors += 1;
                                }
                                Ok(r) => panic!("registration answered {}", r.status()),
                                Err(_) => {}
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        let zero = instances.remove(0);
        let zero = kill_and_restart(
            zero,
            &bases,
            database_url,
            sink.port,
            scratch.path(),
            &mut run,
        )
        .await;
        instances.insert(0, zero);
        for c in clients {
            c.await.unwrap();
        }
        assert_eq!(seen.lock().unwrap().registered.len(), DOSSIERS);

        // 3. Every invitation arrives (instance 0 is killed once more meanwhile; a message it
        // held is sent by another instance when its lease runs out).
        let zero = instances.remove(0);
        let zero = kill_and_restart(
            zero,
            &bases,
            database_url,
            sink.port,
            scratch.path(),
            &mut run,
        )
        .await;
        instances.insert(0, zero);
        // Counted by address: a copy sent again after a kill must not stand in for another.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let addresses: HashSet<String> =
                sink.received().into_iter().flat_map(|m| m.to).collect();
            if addresses.len() == DOSSIERS {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {DOSSIERS} invitations arrived",
                addresses.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // 4. Every survey is answered through any instance while instance 0 is killed again.
        let tokens: Vec<String> = seen.lock().unwrap().registered.values().cloned().collect();
        let queue: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(tokens));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (queue, seen, bases, http, answers) = (
                    queue.clone(),
                    seen.clone(),
                    bases.clone(),
                    http.clone(),
                    answers.clone(),
                );
                actix_web::rt::spawn(async move {
                    loop {
                        let Some(token) = queue.lock().unwrap().pop() else {
                            break;
                        };
                        loop {
                            let Some(base) = pick(&bases) else {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                continue;
                            };
                            let answer = http
                                .post(format!("{base}/s/{token}"))
                                .header("content-type", "application/x-www-form-urlencoded")
                                .body(answers.clone())
                                .send()
                                .await
                                .map(|r| r.status().as_u16());
                            match answer {
                                Ok(200) => {
                                    seen.lock().unwrap().acknowledged.insert(token);
                                    break;
                                }
                                Ok(409) => {
                                    seen.lock().unwrap().used_on_retry.insert(token);
                                    break;
                                }
                                Ok(s) if s >= 500 => seen.lock().unwrap().server_errors += 1,
                                Ok(s) => panic!("submission answered {s}"),
                                Err(_) => {}
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        let zero = instances.remove(0);
        let zero = kill_and_restart(
            zero,
            &bases,
            database_url,
            sink.port,
            scratch.path(),
            &mut run,
        )
        .await;
        instances.insert(0, zero);
        for c in clients {
            c.await.unwrap();
        }
        // Late copies of an invitation would arrive within a lease.
        tokio::time::sleep(Duration::from_secs(6)).await;
        drop(instances);
        let seen = seen.lock().unwrap();
        eprintln!(
            "{} registrations, {} answers acknowledged, {} used on retry, {} server errors retried, {} restarts of instance 0, {:?} in all",
            seen.registered.len(),
            seen.acknowledged.len(),
            seen.used_on_retry.len(),
            seen.server_errors,
            run - 1,
            started.elapsed()
        );
        check(database_url, &seen, &sink, scratch.path(), run - 1);
        sink.stop();
    }

    fn check(database_url: &str, seen: &Seen, sink: &SmtpSink, scratch: &Path, kills: usize) {
        let settings = test_settings(database_url);
        let url = sipas::db::DatabaseUrl::parse(&settings.database_url).unwrap();
        let pool = sipas::db::DbPool::connect(&url, 2).unwrap();
        let conn = &mut pool.get().unwrap();

        // Every acknowledged answer is stored, exactly once (see crash.rs for why counts prove
        // it: a response carries no link to its token).
        assert_eq!(
            seen.acknowledged.len() + seen.used_on_retry.len(),
            DOSSIERS,
            "every survey ended answered"
        );
        let spent: HashSet<String> = db_run!(conn: {
            survey_tokens::table
                .filter(survey_tokens::spent_at.is_not_null())
                .select(survey_tokens::token_hash)
                .load::<String>(conn)
        })
        .unwrap()
        .into_iter()
        .collect();
        for token in &seen.acknowledged {
            let hash = sipas::survey::token::SurveyToken::parse(token)
                .unwrap()
                .hash();
            assert!(spent.contains(&hash), "acknowledged {token} is not spent");
        }
        assert_eq!(spent.len(), DOSSIERS);
        let stored: i64 = db_run!(conn: {
            responses::table.select(count_star()).get_result(conn)
        })
        .unwrap();
        assert_eq!(stored, DOSSIERS as i64, "one response per spent token");

        // Rollups equal a recount from the stored responses: rebuilt from scratch, they match.
        let live = rollup_snapshot(conn);
        db_run!(conn: {
            diesel::delete(rollup_cells::table).execute(conn).unwrap();
            diesel::delete(rollup_procedure_cells::table).execute(conn).unwrap();
            diesel::delete(dossier_rollups::table).execute(conn).unwrap();
        });
        sipas::prepare(&settings).expect("rebuild");
        let recount = rollup_snapshot(conn);
        assert_same_rollups(&recount, &live);
        assert_eq!(
            sipas::rollup::stored_count(conn, |_| true, sipas::rollup::RESPONSES_COUNTER, 0)
                .unwrap(),
            DOSSIERS as i64
        );

        // Every invitation was delivered once: one message per address, and every invitation
        // is recorded as sent.
        let mut per_address: HashMap<String, Vec<String>> = HashMap::new();
        for m in sink.received() {
            let id = header(&m.data, "Message-ID").unwrap_or_default();
            for to in m.to {
                per_address.entry(to).or_default().push(id.clone());
            }
        }
        assert_eq!(
            per_address.len(),
            DOSSIERS,
            "every address got its invitation"
        );
        // A SIGKILL after the mail server accepted a message and before the sender recorded it
        // leaves the message claimed; once the lease runs out another instance sends it again,
        // same Message-ID (at least once: nothing can make SMTP and the database commit
        // together). Such copies are at most one per kill, and their row shows the second,
        // recorded attempt. Two live instances never send one message.
        let mut twice: Vec<(&String, &Vec<String>)> = per_address
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .collect();
        twice.sort();
        for (address, ids) in &twice {
            assert_eq!(ids.len(), 2, "{address} got {ids:?}");
            assert_eq!(ids[0], ids[1], "{address}: one message, sent again");
            let attempts: i64 = db_run!(conn: {
                outbox::table
                    .filter(outbox::message_id.eq(&ids[0]))
                    .select(outbox::attempts)
                    .first(conn)
            })
            .unwrap();
            assert!(
                attempts >= 2,
                "{address} got its invitation twice without a lease running out"
            );
        }
        assert!(
            twice.len() <= kills,
            "{} invitations sent twice after {kills} kills",
            twice.len()
        );
        eprintln!(
            "{} of {DOSSIERS} invitations sent again after a kill cut their sender between the mail server's acceptance and the record",
            twice.len()
        );
        let unsent: i64 = db_run!(conn: {
            outbox::table
                .filter(outbox::kind.eq("invitation"))
                // Sent, or cancelled: cut mid-send by a kill, then answered before its resend.
                .filter(outbox::status.ne_all(["sent", "cancelled"]))
                .select(count_star())
                .get_result(conn)
        })
        .unwrap();
        assert_eq!(unsent, 0, "no invitation left queued, being sent or failed");

        // No batch failed on a deadlock between instances.
        let mut deadlocks = Vec::new();
        for entry in std::fs::read_dir(scratch).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                deadlocks.extend(
                    text.lines()
                        .filter(|l| l.contains("deadlock"))
                        .map(str::to_string),
                );
            }
        }
        assert!(
            deadlocks.is_empty(),
            "{} deadlocks in the server logs, e.g. {:?}",
            deadlocks.len(),
            deadlocks.first()
        );
    }

    /// A PostgreSQL cluster of this test's own (the shared server allows no replication
    /// connections): a primary and a streaming replica made with `pg_basebackup -R`, stopped
    /// when dropped.
    struct Clusters {
        dir: tempfile::TempDir,
        bin: PathBuf,
        primary_port: u16,
        replica_port: u16,
    }

    impl Clusters {
        /// Runs a PostgreSQL program, as the `postgres` OS user when this test runs as root.
        fn run(&self, program: &str, args: &[&str]) {
            let path = self.bin.join(program);
            let out = if is_root() {
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&path)
                    .args(args)
                    .output()
            } else {
                Command::new(&path).args(args).output()
            }
            .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                out.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        fn data(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        fn start() -> Self {
            let bin = std::env::var("SIPAS_TEST_PG_BIN")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                        .expect("PostgreSQL server programs in /usr/lib/postgresql (or set SIPAS_TEST_PG_BIN)")
                        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                        .filter(|b| b.join("initdb").exists())
                        .collect();
                    found.sort();
                    found.pop().expect("initdb")
                });
            let dir = tempfile::tempdir().expect("cluster dir");
            if is_root() {
                let ok = Command::new("chown")
                    .args(["postgres"])
                    .arg(dir.path())
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "chown the cluster folder to postgres");
            }
            let clusters = Self {
                dir,
                bin,
                primary_port: free_port(),
                replica_port: free_port(),
            };
            let primary = clusters.data("primary");
            clusters.run("initdb", &["-D", &primary, "-A", "trust", "-U", "postgres"]);
            let socket_dir = clusters.dir.path().display().to_string();
            let conf = format!(
                "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\nwal_level = replica\nmax_wal_senders = 4\nfsync = off\n",
                clusters.primary_port
            );
            append(&format!("{primary}/postgresql.conf"), &conf);
            append(
                &format!("{primary}/pg_hba.conf"),
                "host replication all 127.0.0.1/32 trust\n",
            );
            let log = clusters.data("primary.log");
            clusters.run("pg_ctl", &["-D", &primary, "-l", &log, "-w", "start"]);
            let replica = clusters.data("replica");
            let port = clusters.primary_port.to_string();
            clusters.run(
                "pg_basebackup",
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-D",
                    &replica,
                    "-R",
                    "-X",
                    "stream",
                ],
            );
            append(
                &format!("{replica}/postgresql.conf"),
                &format!("port = {}\n", clusters.replica_port),
            );
            let log = clusters.data("replica.log");
            clusters.run("pg_ctl", &["-D", &replica, "-l", &log, "-w", "start"]);
            clusters
        }

        fn stop(&self, name: &str) {
            let data = self.data(name);
            self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }

    impl Drop for Clusters {
        fn drop(&mut self) {
            for name in ["replica", "primary"] {
                let pid = self.dir.path().join(name).join("postmaster.pid");
                if pid.exists() {
                    let data = self.data(name);
                    let path = self.bin.join("pg_ctl");
                    let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
                    let _ = if is_root() {
                        Command::new("runuser")
                            .args(["-u", "postgres", "--"])
                            .arg(&path)
                            .args(args)
                            .output()
                    } else {
                        Command::new(&path).args(args).output()
                    };
                }
            }
        }
    }

    fn is_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    fn append(path: &str, text: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        file.write_all(text.as_bytes()).unwrap();
    }

    /// Reports, rankings and exports read from a real streaming replica; when it stops, from
    /// the primary.
    #[actix_web::test]
    #[ignore = "starts its own PostgreSQL primary and streaming replica; run by .ci/run with --ignored"]
    async fn reports_read_from_a_streaming_replica() {
        use crate::helpers::TestApp;
        use crate::helpers::staff::{sign_in_admin, unit_id};

        let clusters = Clusters::start();
        let primary = format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            clusters.primary_port
        );
        let (primary_port, replica_port) = (clusters.primary_port, clusters.replica_port);
        let name = format!(
            "sipas_standby_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let tweak_name = name.clone();
        let app = TestApp::spawn_with(Backend::Postgres(primary), move |s| {
            let on_replica = s.database_url.replacen(
                &format!("127.0.0.1:{primary_port}"),
                &format!("127.0.0.1:{replica_port}"),
                1,
            );
            s.database_replica_url = Some(on_replica.replacen(
                "options=",
                &format!("application_name={tweak_name}&options="),
                1,
            ));
        })
        .await;
        let form = app.state.forms.latest("sipas").unwrap();
        for i in 0..6 {
            let issued = app
                .issue_survey(&format!("HS-STANDBY-{i}"), Some("sipas"))
                .await;
            let r = app
                .submit(issued["survey_url"].as_str().unwrap(), &full_answers(&form))
                .await;
            assert_eq!(r.status(), 200);
        }
        let admin = sign_in_admin(&app).await;
        let stp = unit_id(&app, "STP");
        let year = chrono::Utc::now().format("%Y");
        let export_path = format!("/admin/export/responses.csv?form=sipas&period={year}");
        // The replica replays the primary's WAL within moments.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = admin.get(&app, &export_path).await;
            assert_eq!(r.status(), 200);
            if r.text().await.unwrap().lines().count() == 7 {
                break;
            }
            assert!(Instant::now() < deadline, "the replica did not catch up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for path in [
            format!("/reports/units/{stp}?period={year}"),
            format!("/reports/ranking?period={year}&kind=department"),
        ] {
            assert_eq!(admin.get(&app, &path).await.status(), 200, "{path}");
        }
        // The reads were served by the standby: its own backends carry our application name.
        let standby = format!("postgres://postgres@127.0.0.1:{replica_port}/postgres");
        let mut conn = diesel::PgConnection::establish(&standby).expect("standby answers");
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            recovery: bool,
        }
        let row: Row = diesel::sql_query(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = $1) AS n, \
             pg_is_in_recovery() AS recovery",
        )
        .bind::<diesel::sql_types::Text, _>(&name)
        .get_result(&mut conn)
        .unwrap();
        assert!(row.recovery, "a real standby");
        assert!(row.n > 0, "reports read from the standby");
        drop(conn);

        // The standby goes away: the same pages come from the primary.
        clusters.stop("replica");
        for path in [
            format!("/reports/units/{stp}?period={year}"),
            format!("/reports/ranking?period={year}&kind=department"),
            export_path.clone(),
        ] {
            assert_eq!(
                admin.get(&app, &path).await.status(),
                200,
                "{path} without the replica"
            );
        }
        drop(app);
        drop(clusters);
    }
}

/// `sipas migrate` beside starting instances: migrations take their own lock on PostgreSQL.
#[test]
fn migrations_run_together_apply_once() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    for _ in 0..3 {
        let (url, _db) = fresh_database(&backend);
        let barrier = Arc::new(Barrier::new(3));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let url = sipas::db::DatabaseUrl::parse(&url).unwrap();
                    let pool = sipas::db::DbPool::connect(&url, 2).unwrap();
                    let mut conn = pool.get().unwrap();
                    barrier.wait();
                    sipas::db::run_migrations(&mut conn)
                })
            })
            .collect();
        let applied: Vec<usize> = threads
            .into_iter()
            .map(|t| t.join().unwrap().expect("migrations run"))
            .collect();
        assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "{applied:?}");
    }
}
