//! Issue #14, points 4 and 6: an audit chain that someone with database access cannot rewrite
//! (keyed events, a head kept outside the database), and paper samples that depend only on the
//! seed, the unit codes and the dossiers, whatever database holds them.

use diesel::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use sipas::audit::{Actor, AuditEvent};
use sipas::db::schema::{audit_events, audit_head};
use sipas::db_run;
use sipas::paper::sampling::{self, SampleRequest};
use sipas::periods::{self, PeriodInput};

use crate::helpers::{Backend, TestApp, audit_env, forms_dir, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    rehashed_or_truncated_chains_are_detected,
    the_cli_explains_what_it_checked,
    chains_from_before_keying_still_verify,
    each_instance_head_file_is_compared,
);

// ---------------------------------------------------------------- the audit chain

fn verify(app: &TestApp) -> Result<i64, sipas::audit::ChainBreak> {
    sipas::audit::verify(&mut app.conn()).expect("the log is readable")
}

/// Appends `n` events the way every change does, inside its transaction.
fn record_events(app: &TestApp, n: usize) {
    let conn = &mut app.conn();
    for i in 0..n {
        conn.write_transaction(|c| {
            sipas::audit::record(
                c,
                &Actor::cli(),
                "test.change",
                "thing",
                &format!("thing-{i}"),
                Some(json!({ "value": i })),
                Some(json!({ "value": i + 1 })),
            )
        })
        .expect("event recorded");
    }
}

fn events(app: &TestApp) -> Vec<AuditEvent> {
    let conn = &mut app.conn();
    db_run!(conn: {
        audit_events::table.order(audit_events::seq.asc()).select(AuditEvent::as_select()).load(conn)
    })
    .expect("events")
}

/// What anyone with database access can compute: the plain SHA-256 of an event's fields.
fn plain_hash(e: &AuditEvent) -> String {
    let canonical = json!([
        e.seq,
        e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.actor_id,
        e.actor_name,
        e.action,
        e.object_type,
        e.object_id,
        e.old_value,
        e.new_value,
        e.prev_hash,
    ]);
    Sha256::digest(canonical.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores `rows` over the events of the same seq and moves the head row to `head`.
fn overwrite(app: &TestApp, rows: &[AuditEvent], head: (i64, &str)) {
    let conn = &mut app.conn();
    db_run!(conn: {
        for e in rows {
            diesel::update(audit_events::table.find(e.seq))
                .set((
                    audit_events::new_value.eq(&e.new_value),
                    audit_events::prev_hash.eq(&e.prev_hash),
                    audit_events::hash.eq(&e.hash),
                ))
                .execute(conn)
                .expect("event overwritten");
        }
        diesel::update(audit_head::table.find(1i64))
            .set((audit_head::seq.eq(head.0), audit_head::hash.eq(head.1)))
            .execute(conn)
            .expect("head moved");
    });
}

/// The attack of the report: edit event `seq`, re-hash it and every later event, move the head.
/// With `mimic`, the new hashes copy whatever scheme prefix the stored hashes carry.
fn rewrite_from(app: &TestApp, seq: i64, mimic: bool) {
    let all = events(app);
    let mut prev = all
        .iter()
        .find(|e| e.seq == seq)
        .map(|e| e.prev_hash.clone())
        .expect("event exists");
    let mut rewritten = Vec::new();
    for e in all.iter().filter(|e| e.seq >= seq) {
        let mut e = e.clone();
        if e.seq == seq {
            e.new_value = Some(r#"{"value":"forged"}"#.into());
        }
        e.prev_hash = prev.clone();
        let prefix = match e.hash.rsplit_once(':') {
            Some((scheme, _)) if mimic => format!("{scheme}:"),
            _ => String::new(),
        };
        e.hash = format!("{prefix}{}", plain_hash(&e));
        prev = e.hash.clone();
        rewritten.push(e);
    }
    let last = rewritten.last().expect("at least one event");
    overwrite(app, &rewritten, (last.seq, &last.hash.clone()));
}

async fn rehashed_or_truncated_chains_are_detected(app: TestApp) {
    record_events(&app, 6);
    let original = events(&app);
    let n = verify(&app).expect("a fresh chain is intact");
    assert_eq!(n, original.len() as i64);
    let edited = n - 3;

    // Re-hash one edited event and every one after it, move the head: still detected.
    for mimic in [false, true] {
        rewrite_from(&app, edited, mimic);
        let broken = verify(&app).expect_err("a re-hashed chain is detected");
        assert_eq!(broken.seq, edited, "the edited event is named: {broken}");
        let last = original.last().expect("events");
        overwrite(&app, &original, (last.seq, &last.hash));
        assert_eq!(verify(&app), Ok(n), "put back, the chain is intact again");
    }

    // Delete the newest event and move the head back onto the one before it.
    {
        let conn = &mut app.conn();
        let removed = db_run!(conn: { diesel::delete(audit_events::table.find(n)).execute(conn) })
            .expect("delete");
        assert_eq!(removed, 1);
    }
    let before = &original[original.len() - 2];
    overwrite(&app, &[], (before.seq, &before.hash));
    let broken = verify(&app).expect_err("a cut-off newest event is detected");
    assert_eq!(broken.seq, n, "the missing event is named: {broken}");
}

/// `sipas ARGS` against the test database with its audit settings and `env` on top:
/// (success, stdout, stderr).
fn cli(app: &TestApp, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sipas"))
        .args(args)
        .env_remove("SIPAS_CONFIG")
        .env("DATABASE_URL", &app.database_url)
        .env("SIPAS_FORMS_DIR", forms_dir())
        .env("SIPAS_SECRET", "test-secret-test-secret-test-secret!")
        .env("RUST_LOG", "warn")
        .envs(audit_env(&app.state.settings))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the sipas binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn context(app: &TestApp) -> std::sync::Arc<sipas::audit::AuditContext> {
    sipas::audit::context(&mut app.conn()).expect("audit configured")
}

fn head_file_lines(app: &TestApp) -> Vec<String> {
    let path = context(app).config().head_file.clone();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

async fn the_cli_explains_what_it_checked(app: TestApp) {
    record_events(&app, 3);
    let all = events(&app);
    let n = all.len() as i64;
    let last = all.last().expect("events");
    assert!(
        last.hash.starts_with(sipas::audit::HMAC_PREFIX),
        "new events are keyed"
    );
    // Every committed event is also in the head file, after the commit.
    let lines = head_file_lines(&app);
    assert_eq!(lines.len() as i64, n, "{lines:?}");
    assert_eq!(lines.last(), Some(&format!("{} {}", last.seq, last.hash)));
    // A rolled-back event leaves no line.
    let conn = &mut app.conn();
    let refused: Result<(), diesel::result::Error> = conn.write_transaction(|c| {
        sipas::audit::record(c, &Actor::cli(), "test.undone", "thing", "x", None, None)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(refused.is_err());
    assert_eq!(
        head_file_lines(&app).len() as i64,
        n,
        "no line for a rolled-back event"
    );

    let ctx = context(&app);
    let key = ctx
        .key_for_verify()
        .expect("readable")
        .expect("generated on first use");
    let fingerprint = key.fingerprint();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ctx.config().key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }

    let (ok, stdout, stderr) = cli(&app, &["audit", "verify"], &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("audit chain intact: {n} events")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("HMAC key {fingerprint}")),
        "{stdout}"
    );
    let head_file = ctx.config().head_file.display().to_string();
    assert!(
        stdout.contains(&format!("head file {head_file}: last seq {n} matches")),
        "{stdout}"
    );

    // `audit head` prints what the operator records; `--head` compares with it later.
    let (ok, printed, _) = cli(&app, &["audit", "head"], &[]);
    assert!(ok);
    assert!(printed.contains(&format!("seq\t{n}\n")), "{printed}");
    assert!(printed.contains(&last.hash), "{printed}");
    let recorded = format!("{}:{}", last.seq, last.hash);
    assert!(printed.contains(&format!("--head {recorded}")), "{printed}");
    let (ok, stdout, _) = cli(&app, &["audit", "verify", "--head", &recorded], &[]);
    assert!(
        ok && stdout.contains(&format!("the given head: last seq {n} matches")),
        "{stdout}"
    );
    // Another last hex digit (a fixed '0' was no change at all for one hash in sixteen).
    let (kept, last_digit) = last.hash.split_at(last.hash.len() - 1);
    let other = if last_digit == "0" { "1" } else { "0" };
    let forged = format!("{}:{kept}{other}", last.seq);
    let (ok, _, stderr) = cli(&app, &["audit", "verify", "--head", &forged], &[]);
    assert!(!ok, "another hash for the recorded seq fails");
    assert!(
        stderr.contains(&format!("audit event {n}: was changed")),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(&app, &["audit", "verify", "--head", "nonsense"], &[]);
    assert!(!ok && stderr.contains("--head"), "{stderr}");

    // Without the key: a clear message, never "intact", and no new key made up.
    let elsewhere = tempfile::tempdir().expect("dir");
    let missing = elsewhere.path().join("audit.key");
    let (ok, stdout, stderr) = cli(
        &app,
        &["audit", "verify"],
        &[("SIPAS_AUDIT_KEY_FILE", missing.display().to_string())],
    );
    assert!(!ok, "{stdout}");
    assert!(!stdout.contains("intact"), "{stdout}");
    assert!(
        stderr.contains("cannot be checked without the audit key") && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(!missing.exists(), "verify never creates a key");
    // A wrong key names the first keyed event.
    let (ok, _, stderr) = cli(
        &app,
        &["audit", "verify"],
        &[(
            "SIPAS_AUDIT_KEY",
            "another-key-another-key-another-key".into(),
        )],
    );
    assert!(
        !ok && stderr.contains("audit event 1: was changed"),
        "{stderr}"
    );
    // A command that records an event refuses to start a new key beside keyed events.
    let (ok, _, stderr) = cli(
        &app,
        &["api-key", "create", "--unit", "STP"],
        &[("SIPAS_AUDIT_KEY_FILE", missing.display().to_string())],
    );
    assert!(!ok && stderr.contains("restore the key file"), "{stderr}");
    assert!(!missing.exists());

    // The admin page says the same.
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    let page = admin.page(&app, "/admin/audit").await;
    assert!(page.contains("Chuỗi băm toàn vẹn"), "intact");
    assert!(page.contains(&format!("khóa HMAC {fingerprint}")));
    assert!(page.contains("khớp"));
    let before = &all[all.len() - 2];
    {
        let conn = &mut app.conn();
        db_run!(conn: { diesel::delete(audit_events::table.filter(audit_events::seq.gt(before.seq))).execute(conn) })
            .expect("delete");
    }
    overwrite(&app, &[], (before.seq, &before.hash));
    let page = admin.page(&app, "/admin/audit?lang=en").await;
    assert!(page.contains("Hash chain broken"), "broken");
    assert!(
        page.contains(&format!("last seq {n} does not match")),
        "the head file's seq is named"
    );
}

/// The plain SHA-256 chain of the code before keying, as an upgraded database holds it.
async fn chains_from_before_keying_still_verify(app: TestApp) {
    // Start over with three events written the old way, and no head file yet.
    {
        let conn = &mut app.conn();
        db_run!(conn: { diesel::delete(audit_events::table).execute(conn) }).expect("cleared");
    }
    let _ = std::fs::remove_file(&context(&app).config().head_file);
    let mut prev = sipas::audit::GENESIS_HASH.to_string();
    for seq in 1..=3 {
        let mut e = AuditEvent {
            seq,
            at: sipas::db::now(),
            actor_id: None,
            actor_name: "cli:old".into(),
            action: "unit.create".into(),
            object_type: "unit".into(),
            object_id: format!("u{seq}"),
            old_value: None,
            new_value: Some(r#"{"code":"OLD"}"#.into()),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        e.hash = plain_hash(&e);
        prev = e.hash.clone();
        let conn = &mut app.conn();
        db_run!(conn: {
            diesel::insert_into(audit_events::table)
                .values((
                    audit_events::seq.eq(e.seq),
                    audit_events::at.eq(e.at),
                    audit_events::actor_name.eq(&e.actor_name),
                    audit_events::action.eq(&e.action),
                    audit_events::object_type.eq(&e.object_type),
                    audit_events::object_id.eq(&e.object_id),
                    audit_events::new_value.eq(&e.new_value),
                    audit_events::prev_hash.eq(&e.prev_hash),
                    audit_events::hash.eq(&e.hash),
                ))
                .execute(conn)
        })
        .expect("old event");
    }
    overwrite(&app, &[], (3, &prev));
    assert_eq!(verify(&app), Ok(3), "an old chain verifies as before");
    let checked = sipas::audit::verify_with(&mut app.conn(), &Default::default()).expect("read");
    assert_eq!((checked.plain_events, checked.keyed_events), (3, 0));

    // New events continue the chain, keyed.
    record_events(&app, 2);
    assert_eq!(verify(&app), Ok(5));
    let checked = sipas::audit::verify_with(&mut app.conn(), &Default::default()).expect("read");
    assert_eq!((checked.plain_events, checked.keyed_events), (3, 2));
    assert_eq!(
        head_file_lines(&app).len(),
        2,
        "the head file starts with the first keyed event"
    );

    // An old event is still protected by its plain hash...
    let original = events(&app);
    let mut changed = original[1].clone();
    changed.new_value = Some(r#"{"code":"FORGED"}"#.into());
    overwrite(&app, std::slice::from_ref(&changed), (5, &original[4].hash));
    assert_eq!(verify(&app).map_err(|b| b.seq), Err(2));
    overwrite(&app, &original, (5, &original[4].hash));
    assert_eq!(verify(&app), Ok(5));
    // ...and keyed events cannot be turned into plain ones: not after a keyed event...
    rewrite_from(&app, 5, false);
    let broken = verify(&app).expect_err("downgrade detected");
    assert_eq!(broken.seq, 5, "{broken}");
    assert!(
        broken
            .problem
            .contains("plain SHA-256 hash after keyed events"),
        "{broken}"
    );
    overwrite(&app, &original, (5, &original[4].hash));
    // ...nor all of them: the head file still holds the keyed hash of the newest.
    rewrite_from(&app, 4, false);
    let broken = verify(&app).expect_err("downgrade detected");
    assert_eq!(broken.seq, 5, "{broken}");
    assert!(broken.problem.contains("head file"), "{broken}");
}

/// Two instances on one database, each with its own head file: verify compares every file.
async fn each_instance_head_file_is_compared(app: TestApp) {
    record_events(&app, 2);
    let first_file = context(&app).config().head_file.clone();
    let dir = tempfile::tempdir().expect("dir");
    let second_file = dir.path().join("instance-b.log");
    // The second instance (another process, same key) writes the newest event.
    let second = [("SIPAS_AUDIT_HEAD_FILE", second_file.display().to_string())];
    let (ok, _, stderr) = cli(&app, &["api-key", "create", "--unit", "STP"], &second);
    assert!(ok, "{stderr}");
    let n = events(&app).len() as i64;
    let both = [
        "audit",
        "verify",
        "--head-file",
        &first_file.display().to_string(),
        "--head-file",
        &second_file.display().to_string(),
    ]
    .map(str::to_string);
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = cli(&app, &both, &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("last seq {} matches (1 newer", n - 1)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("last seq {n} matches (0 newer")),
        "{stdout}"
    );

    // Cut the second instance's event off: its head file catches it.
    let all = events(&app);
    let before = &all[all.len() - 2];
    {
        let conn = &mut app.conn();
        db_run!(conn: { diesel::delete(audit_events::table.find(n)).execute(conn) })
            .expect("delete");
    }
    overwrite(&app, &[], (before.seq, &before.hash));
    let (ok, _, stderr) = cli(&app, &both, &[]);
    assert!(!ok, "detected with both head files");
    assert!(
        stderr.contains(&format!("audit event {n}: is missing")),
        "{stderr}"
    );
    // A head file that was named but does not exist is a failure, not a pass.
    let (ok, _, stderr) = cli(
        &app,
        &[
            "audit",
            "verify",
            "--head-file",
            &dir.path().join("none.log").display().to_string(),
        ],
        &[],
    );
    assert!(!ok && stderr.contains("does not exist"), "{stderr}");
}

// ---------------------------------------------------------------- reproducible samples

/// The same dossiers everywhere: (unit, dossier code, procedure, e-mail).
fn dossiers() -> Vec<(&'static str, String, &'static str, Option<String>)> {
    let mut out = Vec::new();
    for i in 0..70 {
        let procedure = ["LLTP-01", "CT-01", "HT-KS"][i % 3];
        // Every fifth citizen brought two dossiers: one person is drawn once at most.
        let email = (i % 4 != 0).then(|| format!("cong-dan-{}@example.vn", i - i % 5));
        out.push((
            "STP",
            format!("000.00.15.H12-260109-{i:04}"),
            procedure,
            email,
        ));
    }
    for i in 0..40 {
        let procedure = ["XD-GPXD", "DD-GCN"][i % 2];
        out.push((
            "SXD",
            format!("000.00.22.H12-260109-{i:04}"),
            procedure,
            None,
        ));
    }
    out
}

/// Registers `list` in this order through the counter API.
async fn register(app: &TestApp, list: &[(&str, String, &str, Option<String>)]) {
    for (unit, code, procedure, email) in list {
        let mut body = transaction_body(code);
        body["unit"] = json!(unit);
        body["procedure"] = json!(procedure);
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let response = app.post_transaction(&body).await;
        assert_eq!(response.status(), 201, "{code}");
    }
}

/// The members of every draw in `list`: (unit, role, position, dossier, procedure) per draw.
type Members = Vec<Vec<(String, String, i64, String, String)>>;

async fn draws(app: &TestApp, order: &[usize]) -> Members {
    let all = dossiers();
    let list: Vec<_> = order.iter().map(|&i| all[i].clone()).collect();
    register(app, &list).await;
    let conn = &mut app.conn();
    let input = PeriodInput {
        code: "N2026".into(),
        name_vi: "Năm 2026".into(),
        name_en: "Year 2026".into(),
        kind: "year".into(),
        starts_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        ends_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).expect("date"),
        status: periods::PeriodStatus::Open,
    };
    periods::save(conn, &Actor::cli(), None, &input).expect("period");
    let offset = app.state.settings.utc_offset_value().expect("offset");
    let requests = [
        // By procedure with a quota and a reserve; units given in either order.
        (vec!["SXD", "STP"], Some(12), 0.5, true),
        // By the formula, from what the first draw left.
        (vec!["STP", "SXD"], None, 0.2, false),
    ];
    let mut out = Vec::new();
    for (units, quota, reserve_share, by_procedure) in requests {
        let request = SampleRequest {
            period_code: "N2026".into(),
            unit_codes: units.iter().map(|u| u.to_string()).collect(),
            seed: Some(20261205),
            margin: 0.05,
            quota,
            reserve_share,
            by_procedure,
            form_code: "sipas".into(),
        };
        let drawn = sampling::draw(
            conn,
            &app.state.secret,
            &app.state.forms,
            &Actor::cli(),
            &request,
            offset,
        )
        .expect("drawn");
        let rows = sampling::worklist(conn, &drawn.id, None).expect("worklist");
        assert!(rows.iter().any(|r| r.role == "reserve"), "a reserve list");
        out.push(
            rows.into_iter()
                .map(|r| {
                    (
                        r.unit_code,
                        r.role,
                        r.position,
                        r.dossier_code,
                        r.procedure_code,
                    )
                })
                .collect(),
        );
    }
    out
}

#[actix_web::test]
async fn samples_are_the_same_on_any_database_and_in_any_insertion_order() {
    let n = dossiers().len();
    let forward: Vec<usize> = (0..n).collect();
    // Another order: interleaved from both ends, so neither ids nor row order line up.
    let mut mixed = Vec::new();
    for i in 0..n / 2 {
        mixed.push(n - 1 - i);
        mixed.push(i);
    }
    if n % 2 == 1 {
        mixed.push(n / 2);
    }
    let reference = draws(&TestApp::spawn(Backend::Sqlite).await, &forward).await;
    assert_eq!(reference.len(), 2);
    assert!(reference.iter().all(|d| !d.is_empty()));
    let reordered = draws(&TestApp::spawn(Backend::Sqlite).await, &mixed).await;
    assert_eq!(
        reordered, reference,
        "another SQLite database, dossiers inserted in another order: the same members"
    );
    if let Some(pg) = Backend::postgres() {
        let on_pg = draws(&TestApp::spawn(pg).await, &mixed).await;
        assert_eq!(on_pg, reference, "PostgreSQL draws the same members");
    }
}
