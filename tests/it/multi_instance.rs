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

use crate::helpers::{
    Backend, TestApp, fresh_database, full_answers, test_settings, transaction_body,
};
use crate::security::{sign_in_admin, unit_id};
use crate::smtp_sink::SmtpSink;

/// Runs `async fn name(backend: Backend)` on SQLite and PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[actix_web::test]
            async fn postgres() {
                if let Some(backend) = crate::helpers::Backend::postgres() {
                    super::$name(backend).await
                }
            }
        }
    )* };
}

on_both_backends!(
    a_starting_instance_leaves_mail_another_instance_is_sending,
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
    pub Vec<(String, sipas::survey::rollup_cell::CellCounts)>,
    pub Vec<(String, chrono::NaiveDate, i64, i64, i64, i64)>,
);

pub fn rollup_snapshot(conn: &mut DbConn) -> RollupSnapshot {
    let mut cells: Vec<(String, sipas::survey::rollup_cell::CellCounts)> =
        sipas::survey::rollup::stored_cells(conn, None)
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
        let trimmed = |c: &sipas::survey::rollup_cell::CellCounts| {
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
