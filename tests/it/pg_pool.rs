//! PostgreSQL connections the server closes (a restart, a fail-over, an administrator's
//! `pg_terminate_backend`) are replaced: the pool checks a connection that sat idle before
//! handing it out, and a connection that dies while in use fails at most the request using it.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::helpers::{Backend, TestApp, full_answers};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Closes every connection the application opened (named by `application_name`).
fn terminate_backends(admin_url: &str, application_name: &str) -> i64 {
    let mut admin = diesel::PgConnection::establish(admin_url).expect("admin connection");
    diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE application_name = $1",
    )
    .bind::<Text, _>(application_name)
    .get_result::<Count>(&mut admin)
    .expect("terminate")
    .n
}

#[actix_web::test]
async fn connections_closed_by_the_server_are_replaced() {
    let Some(Backend::Postgres(admin_url)) = Backend::postgres() else {
        return;
    };
    let name = format!(
        "sipas-pool-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let app = TestApp::spawn_with(Backend::Postgres(admin_url.clone()), |s| {
        s.database_url
            .push_str(&format!("&application_name={name}"));
    })
    .await;
    let form = app.state.forms.latest("sipas").expect("form");
    let first = app.issue_survey("POOL-1", Some("sipas")).await;
    let first_url = first["survey_url"].as_str().expect("url").to_string();
    let page = app.client.get(&first_url).send().await.expect("page");
    assert_eq!(page.status(), 200);

    // Quiet service: every pooled connection sat idle, so each is checked before use.
    assert!(terminate_backends(&admin_url, &name) >= 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    for _ in 0..10 {
        let page = app.client.get(&first_url).send().await.expect("page");
        assert_eq!(page.status(), 200, "a request failed after a quiet restart");
    }
    // The writer's connection was closed too: answers and registrations still go through.
    let answered = app.submit(&first_url, &full_answers(&form)).await;
    assert_eq!(answered.status(), 200);

    // Busy service: connections closed moments after their last use fail at most the one
    // request each that finds them dead, and the service then answers again.
    let second = app.issue_survey("POOL-2", Some("sipas")).await;
    let second_url = second["survey_url"].as_str().expect("url").to_string();
    for _ in 0..8 {
        let _ = app.client.get(&second_url).send().await.expect("page");
    }
    assert!(terminate_backends(&admin_url, &name) >= 1);
    let mut failures = 0;
    for _ in 0..(2 * app.state.settings.pool_size + 2) {
        let page = app.client.get(&second_url).send().await.expect("page");
        if page.status() != 200 {
            failures += 1;
        }
    }
    assert!(
        failures <= app.state.settings.pool_size,
        "{failures} failed requests for a pool of {}",
        app.state.settings.pool_size
    );
    for _ in 0..10 {
        let page = app.client.get(&second_url).send().await.expect("page");
        assert_eq!(page.status(), 200, "the pool did not recover");
    }
    let answered = app.submit(&second_url, &full_answers(&form)).await;
    assert_eq!(answered.status(), 200);
}
