//! Several instances on one database: a form version that another instance recorded after this
//! one started (a rolling deployment of a new version) opens, is answered and is counted here
//! too, read from the database on first use instead of failing until a restart.

use sipas::Application;
use sipas::forms::FormRegistry;
use sipas::report::period::Period;

use crate::helpers::{TestApp, full_answers, test_settings};

crate::on_both_databases!(a_version_recorded_by_another_instance_is_served);

/// The value of a hidden form field in a page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("hidden field {name}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `old` started with version 1 of the counter form; `new` starts later on the same database
/// with version 2 in its forms folder and issues links of version 2.
async fn a_version_recorded_by_another_instance_is_served(old: TestApp) {
    let folder = tempfile::tempdir().unwrap();
    let v1 = include_str!("../../survey-forms/transaction-v1.toml");
    let v2 = v1.replace("version = 1\n", "version = 2\n").replace(
        "Rate the handling of your dossier",
        "Rate your dossier (v2)",
    );
    assert_ne!(v1, v2);
    std::fs::write(folder.path().join("transaction-v2.toml"), v2).unwrap();
    let mut settings = test_settings(&old.database_url);
    settings.forms_dir = folder.path().to_path_buf();
    settings.smtp_url = Some(format!("file://{}", old.mail_dir.path().display()));
    let new = Application::build(settings).expect("second instance builds");
    let new_base = new.state().public_base();
    let v2_form = new
        .state()
        .forms
        .get("transaction", 2)
        .expect("version 2 loaded");
    let new_handle = new.handle();
    let new_task = actix_web::rt::spawn(new.run_until_stopped());
    assert!(old.state.forms.get("transaction", 2).is_none());

    let issue = |dossier: &'static str| {
        let client = old.client.clone();
        let url = format!("{new_base}/api/v1/transactions");
        let key = old.api_key.clone();
        async move {
            let response = client
                .post(url)
                .bearer_auth(key)
                .json(&crate::helpers::transaction_body(dossier))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let issued: serde_json::Value = response.json().await.unwrap();
            assert_eq!(issued["form_version"], 2, "{issued}");
            let url = issued["survey_url"].as_str().unwrap().to_string();
            url.rsplit('/').next().unwrap().to_string()
        }
    };
    let answer = |base: String, token: String| {
        let client = old.client.clone();
        let form = v2_form.clone();
        async move {
            let url = format!("{base}/s/{token}");
            let page = client.get(&url).send().await.unwrap();
            assert_eq!(page.status(), 200, "{url}");
            let html = page.text().await.unwrap();
            assert!(html.contains("Rate your dossier (v2)") || html.contains("lang=\"vi\""));
            let mut fields = full_answers(&form);
            fields.push(("opened".into(), hidden(&html, "opened")));
            let answered = client.post(&url).form(&fields).send().await.unwrap();
            assert_eq!(answered.status(), 200, "{url}");
        }
    };

    // Opened and answered on the old instance, which started before version 2 existed.
    answer(old.base.clone(), issue("HS-RELOAD-2").await).await;
    assert!(
        old.state.forms.get("transaction", 2).is_some(),
        "kept for later requests"
    );

    // Answered on the new instance: reports of a registry that never saw version 2 count it
    // (the days of a custom period are read from the responses, each with its form version).
    answer(new_base.clone(), issue("HS-RELOAD-1").await).await;
    let offset = old.state.settings.utc_offset_value().unwrap();
    let today = (chrono::Utc::now() + offset).date_naive();
    let day = Period {
        from: today,
        to: today,
    };
    let unaware = FormRegistry::default();
    let tallies =
        sipas::report::source::load(&mut old.conn(), &unaware, "transaction", None, &day, offset)
            .unwrap();
    assert_eq!(
        tallies.total(|_| true).responses(),
        2,
        "counted with their version"
    );

    new_handle.stop(true).await;
    let _ = new_task.await;
}
