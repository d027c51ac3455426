//! Crash test: the real `sipas serve` binary is killed with SIGKILL at random moments while many
//! clients submit surveys, restarted on the same database each time, and afterwards the
//! database must hold exactly what was acknowledged: a "thank you" means the answer is on disk,
//! once, with all its answers.
//!
//! `#[ignore]`d because it starts processes and takes a while; `.ci/run` runs it explicitly:
//! `cargo test --test it crash -- --ignored`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::dsl::count_star;
use diesel::prelude::*;
use rand::Rng;
use sipas::db::DbConn;
use sipas::db::schema::{responses, survey_tokens};
use sipas::db_run;
use sipas::survey::token::SurveyToken;
use sipas::survey::transaction::TransactionRequest;

use crate::helpers::{Backend, forms_dir, fresh_database, full_answers, test_settings};

/// Surveys registered before the first start; enough that no round runs out before its kill.
const SURVEYS: usize = 3_000;
/// Times the server is killed; it then runs once more until every survey is answered.
const KILLS: usize = 5;
/// Concurrent citizens.
const CLIENTS: usize = 32;
/// Bound of the whole scenario, per backend.
const LIMIT: Duration = Duration::from_secs(60);

#[actix_web::test]
#[ignore = "starts and kills the server binary; run by .ci/run with --ignored"]
async fn sqlite() {
    run(Backend::Sqlite).await;
}

#[actix_web::test]
#[ignore = "starts and kills the server binary; run by .ci/run with --ignored"]
async fn postgres() {
    if let Some(backend) = Backend::postgres() {
        run(backend).await;
    }
}

async fn run(backend: Backend) {
    let (database_url, _db) = fresh_database(&backend);
    tokio::time::timeout(LIMIT, kill_and_restart(&database_url))
        .await
        .unwrap_or_else(|_| panic!("the crash scenario took longer than {LIMIT:?}"));
}

/// The `sipas serve` process.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    async fn start(database_url: &str, scratch: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let settings = test_settings(database_url);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.join("server.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_sipas"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(scratch)
            .env_remove("SIPAS_CONFIG")
            .env("DATABASE_URL", database_url)
            .env("SIPAS_SECRET", settings.secret.expect("test secret"))
            .env("SIPAS_FORMS_DIR", forms_dir())
            .env("SIPAS_SMTP_URL", format!("file://{}", scratch.display()))
            .env("SIPAS_SURVEY_RATE_PER_MINUTE", "1000000000")
            // Every client here is this machine, which the default hold rules would hold out of
            // the rollups; this test counts them in.
            .env("SIPAS_HOLD_RULES", "none")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the sipas binary starts");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
                && r.status() == 200
            {
                return server;
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, no flushing, whatever was in flight is cut.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// Registers the surveys through the library's `register` (the code the API runs) and returns
/// their tokens.
fn register_surveys(database_url: &str, n: usize) -> Vec<String> {
    let settings = test_settings(database_url);
    let (pool, forms, secret) = sipas::prepare(&settings).expect("prepare");
    let mut conn = pool.get().expect("connection");
    sipas::demo::load(&mut conn, &secret).expect("demo");
    let province = sipas::units::find_by_code(&mut conn, sipas::demo::PROVINCE)
        .unwrap()
        .unwrap();
    let policy = sipas::policies::Policies::from_settings(&settings)
        .expect("policies")
        .issue;
    let now = sipas::db::now();
    conn.write_transaction(|conn| -> anyhow::Result<Vec<String>> {
        (0..n)
            .map(|i| {
                let request = TransactionRequest {
                    unit: "STP".into(),
                    dossier_code: format!("CRASH-{i:05}"),
                    procedure: "LLTP-01".into(),
                    received_at: now - chrono::Duration::days(2),
                    due_at: None,
                    completed_at: now - chrono::Duration::hours(1),
                    email: None,
                    form: Some("sipas".into()),
                    phone: None,
                    counter: None,
                };
                sipas::survey::registration::register_on_connection(
                    conn,
                    &forms,
                    &secret,
                    &province.id,
                    &policy,
                    &request,
                )
                .map(|s| s.token)
                .map_err(|e| anyhow::anyhow!("{}", e.user_message().en))
            })
            .collect()
    })
    .expect("surveys registered")
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Tokens whose submission was answered 200 ("thank you").
    acknowledged: HashSet<String>,
    /// Tokens answered 409 after a retry: stored before a kill, the 200 lost with the process.
    used_on_retry: HashSet<String>,
}

async fn kill_and_restart(database_url: &str) {
    let scratch = tempfile::tempdir().expect("scratch dir");
    let tokens = register_surveys(database_url, SURVEYS);
    let form = sipas::forms::definition::load_file(&forms_dir().join("sipas-v1.toml"))
        .expect("SIPAS form");
    let questions = form.questions().count() as i64;
    let body = serde_urlencoded::to_string(full_answers(&form)).unwrap();
    let pending = Arc::new(Mutex::new(tokens.iter().cloned().collect::<VecDeque<_>>()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    for round in 0..=KILLS {
        let mut server = ServerProcess::start(database_url, scratch.path()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (pending, seen, stop) = (pending.clone(), seen.clone(), stop.clone());
                let (http, base, body) = (http.clone(), server.base.clone(), body.clone());
                actix_web::rt::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(token) = pending.lock().unwrap().pop_front() else {
                            break;
                        };
                        let answer = http
                            .post(format!("{base}/s/{token}"))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body.clone())
                            .send()
                            .await;
                        match answer.map(|r| r.status().as_u16()) {
                            Ok(200) => {
                                seen.lock().unwrap().acknowledged.insert(token);
                            }
                            Ok(409) => {
                                seen.lock().unwrap().used_on_retry.insert(token);
                            }
                            // Cut by the kill (or refused while it is down): unknown outcome,
                            // so the citizen tries again later.
                            Ok(_) | Err(_) => {
                                pending.lock().unwrap().push_back(token);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        if round < KILLS {
            let after = Duration::from_millis(rand::rng().random_range(150..600));
            tokio::time::sleep(after).await;
            server.kill();
            stop.store(true, Ordering::Relaxed);
        }
        for client in clients {
            client.await.unwrap();
        }
        if round == KILLS {
            server.kill();
        }
        let so_far = seen.lock().unwrap();
        eprintln!(
            "round {round}: {} acknowledged, {} used on retry, {} pending",
            so_far.acknowledged.len(),
            so_far.used_on_retry.len(),
            pending.lock().unwrap().len()
        );
    }

    let seen = seen.lock().unwrap();
    assert!(
        pending.lock().unwrap().is_empty(),
        "every survey was answered in the end"
    );
    assert_eq!(
        seen.acknowledged.len() + seen.used_on_retry.len(),
        SURVEYS,
        "every token ended as either a 200 or a 409 after a cut request"
    );

    let settings = test_settings(database_url);
    let url = sipas::db::DatabaseUrl::parse(&settings.database_url).unwrap();
    let pool = sipas::db::DbPool::connect(&url, 2).unwrap();
    let conn = &mut pool.get().unwrap();

    // 1. Every acknowledged submission spent its token.
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
        let hash = SurveyToken::parse(token).unwrap().hash();
        assert!(spent.contains(&hash), "acknowledged {token} is not spent");
    }
    assert_eq!(spent.len(), SURVEYS, "every survey ended spent");

    // 2. Responses deliberately carry no link to their token (anonymity), so "stored exactly
    // once" is proven by counts: the writer spends a token and inserts its response in one
    // transaction, and a token can be spent only once. Hence, per (unit, form, version), stored
    // responses = spent tokens: a lost acknowledged answer would leave a spent token without a
    // response (or, per 1., an unspent acknowledged token), a duplicate would leave a response
    // without a token, and a response without a spent token could only be a half-done write.
    let per_unit_responses: HashMap<(String, String, i64), i64> = db_run!(conn: {
        responses::table
            .group_by((responses::unit_id, responses::form_code, responses::form_version))
            .select((responses::unit_id, responses::form_code, responses::form_version, count_star()))
            .load::<(String, String, i64, i64)>(conn)
    })
    .unwrap()
    .into_iter()
    .map(|(u, f, v, n)| ((u, f, v), n))
    .collect();
    let per_unit_spent: HashMap<(String, String, i64), i64> = db_run!(conn: {
        survey_tokens::table
            .filter(survey_tokens::spent_at.is_not_null())
            .group_by((survey_tokens::unit_id, survey_tokens::form_code, survey_tokens::form_version))
            .select((survey_tokens::unit_id, survey_tokens::form_code, survey_tokens::form_version, count_star()))
            .load::<(String, String, i64, i64)>(conn)
    })
    .unwrap()
    .into_iter()
    .map(|(u, f, v, n)| ((u, f, v), n))
    .collect();
    assert_eq!(per_unit_responses, per_unit_spent);

    // 3. No half-stored response: each has every answer it was sent with.
    let incomplete = incomplete_responses(conn, questions);
    assert!(
        incomplete.is_empty(),
        "responses missing answers: {incomplete:?}"
    );

    // 4. The rollups counted each stored response once (same transaction as the response).
    assert_eq!(rollup_response_count(conn), SURVEYS as i64);
}

/// Responses that do not have exactly `expected` answers. The one place that knows how answers
/// are stored: adapt it when the answer storage changes.
fn incomplete_responses(conn: &mut DbConn, expected: i64) -> Vec<(String, i64)> {
    let stored: Vec<(String, String)> = db_run!(conn: {
        responses::table.select((responses::id, responses::answers)).load(conn).unwrap()
    });
    stored
        .into_iter()
        .map(|(id, text)| {
            let n = sipas::survey::stored::decode(&text).map_or(-1, |a| a.len() as i64);
            (id, n)
        })
        .filter(|(_, n)| *n != expected)
        .collect()
}

/// Responses as counted by the monthly rollups. The one place that knows how rollups are
/// stored: adapt it when the rollup storage changes.
fn rollup_response_count(conn: &mut DbConn) -> i64 {
    sipas::rollup::stored_count(conn, |_| true, sipas::rollup::RESPONSES_COUNTER, 0).unwrap()
}
