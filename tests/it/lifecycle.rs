//! The service as operators run it: the real binary, structured logs, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use sipas::db::schema::{responses, survey_tokens};
use sipas::db::{DatabaseUrl, DbPool};
use sipas::db_run;

use crate::helpers::{forms_dir, full_answers, transaction_body};

struct Server {
    child: Child,
    base: String,
    api_key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `sipas serve --demo` and reads the demo key from what it prints.
fn start(database_url: &str, log_file: &std::path::Path) -> Server {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipas"))
        .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("SIPAS_FORMS_DIR", forms_dir())
        .env("SIPAS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log_file).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut api_key = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(key) = line.split("Demo API key:").nth(1) {
            api_key = key.trim().to_string();
        }
        if line.contains("Ctrl+C") {
            break;
        }
    }
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(api_key.starts_with("sipas_"), "the demo key was printed");
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        api_key,
    }
}

#[actix_web::test]
async fn sigterm_finishes_in_flight_submissions_and_logs_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("life.db").display());
    let log_file = dir.path().join("server.log");
    // `serve --demo` also loads the demo story (past answers and keyed paper forms, no survey
    // links): count only the survey answers this test submits.
    let test_start = sipas::db::now() - chrono::Duration::seconds(1);
    let server = start(&database_url, &log_file);
    let client = reqwest::Client::new();

    let mut urls = Vec::new();
    for i in 0..60 {
        let issued: serde_json::Value = client
            .post(format!("{}/api/v1/transactions", server.base))
            .bearer_auth(&server.api_key)
            .json(&{
                let mut body = transaction_body(&format!("HS-LIFE-{i}"));
                body["form"] = "sipas".into();
                body
            })
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        urls.push(issued["survey_url"].as_str().unwrap().to_string());
    }
    let form_source = std::fs::read_to_string(forms_dir().join("sipas-v1.toml")).unwrap();
    let form = sipas::forms::definition::parse("sipas-v1.toml", &form_source).unwrap();
    let fields = full_answers(&form);
    let submissions: Vec<_> = urls
        .iter()
        .map(|url| {
            let request = client.post(url).form(&fields).send();
            actix_web::rt::spawn(
                async move { request.await.map(|r| r.status().as_u16()).unwrap_or(0) },
            )
        })
        .collect();
    // Stop the server while those submissions are in flight.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut acknowledged = 0;
    for handle in submissions {
        if handle.await.unwrap() == 200 {
            acknowledged += 1;
        }
    }
    let mut server = server;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "server did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful exit: {status:?}");

    let pool = DbPool::connect(&DatabaseUrl::parse(&database_url).unwrap(), 2).unwrap();
    let conn = &mut pool.get().unwrap();
    let stored: i64 = db_run!(conn: {
        responses::table
            .filter(responses::submitted_at.ge(test_start))
            .filter(responses::channel.ne("paper"))
            .count()
            .get_result(conn)
    })
    .unwrap();
    let spent: i64 = db_run!(conn: {
        survey_tokens::table.filter(survey_tokens::spent_at.is_not_null()).count().get_result(conn)
    })
    .unwrap();
    assert!(
        stored >= acknowledged,
        "every acknowledged answer is stored ({stored} < {acknowledged})"
    );
    assert_eq!(
        stored, spent,
        "no response without its spent token, no spent token without its response"
    );
    // Every stored response is whole.
    let all_answers: Vec<String> = db_run!(conn: {
        sipas::db::schema::responses::table
            .filter(responses::submitted_at.ge(test_start))
            .filter(responses::channel.ne("paper"))
            .select(sipas::db::schema::responses::answers)
            .load(conn)
    })
    .unwrap();
    for text in &all_answers {
        let answers = sipas::survey::stored::decode(text).expect("readable answers");
        assert_eq!(answers.len(), form.questions().count(), "a whole response");
    }

    eprintln!(
        "shutdown under load: {acknowledged} acknowledged, {stored} stored of {} sent",
        urls.len()
    );
    let log = std::fs::read_to_string(&log_file).unwrap();
    let request_lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.to_string().contains("request_id"))
        .collect();
    assert!(
        !request_lines.is_empty(),
        "structured request logs carry a request id:\n{log}"
    );
}
