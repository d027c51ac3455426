//! The use cases called directly, without HTTP (issue #16): what the handlers and the CLI call.

use sipas::error::AppError;
use sipas::survey::lookup::TokenState;
use sipas::survey::registration::{self, Caller};
use sipas::survey::submission::{self, Answer, Submitted};
use sipas::survey::transaction::TransactionRequest;

use crate::helpers::{TestApp, full_answers};

fn caller(app: &TestApp, key: &str) -> Caller {
    let _ = app;
    Caller {
        api_key: key.to_string(),
        address: "203.0.113.7".into(),
        user_agent: "counter-system/1.0".into(),
    }
}

fn request(dossier: &str) -> TransactionRequest {
    let now = sipas::db::now();
    TransactionRequest {
        unit: "STP".into(),
        dossier_code: dossier.into(),
        procedure: "LLTP-01".into(),
        received_at: now - chrono::Duration::days(3),
        due_at: None,
        completed_at: now - chrono::Duration::hours(1),
        email: None,
        form: Some("sipas".into()),
        phone: None,
        counter: None,
    }
}

fn answer(token: &str, fields: Vec<(String, String)>) -> Answer {
    Answer {
        token: token.into(),
        fields,
        language: sipas::i18n::Lang::Vi,
        channel: sipas::survey::channel::Channel::Qr,
        address: "198.51.100.20".into(),
        user_agent: "phone".into(),
    }
}

/// Registering twice returns the same survey; a wrong key is refused as unauthorised.
async fn registration_is_one_use_case(app: TestApp) {
    let first = registration::register(&app.state, caller(&app, &app.api_key), request("SVC-1"))
        .await
        .expect("registered");
    assert!(first.created);
    let again = registration::register(&app.state, caller(&app, &app.api_key), request("SVC-1"))
        .await
        .expect("registered again");
    assert!(!again.created);
    assert_eq!(again.token, first.token);
    let refused = registration::register(
        &app.state,
        caller(&app, "not-a-key-of-this-province-0000000"),
        request("SVC-2"),
    )
    .await;
    assert!(
        matches!(refused, Err(AppError::Unauthorized(_))),
        "{refused:?}"
    );
}

crate::on_both_databases!(registration_is_one_use_case);

/// A valid answer is stored once; a second answer finds the link used; invalid answers come
/// back with their problems and store nothing; an unknown token is unavailable.
async fn submission_is_one_use_case(app: TestApp) {
    let issued = registration::register(&app.state, caller(&app, &app.api_key), request("SVC-3"))
        .await
        .expect("registered");
    let form = app.state.forms.latest("sipas").expect("sipas form");

    let mut invalid = full_answers(&form);
    invalid.retain(|(k, _)| k == "lang");
    match submission::submit(&app.state, answer(&issued.token, invalid))
        .await
        .expect("handled")
    {
        Submitted::Refused(refusal) => assert!(!refusal.problems.is_empty()),
        other => panic!("expected a refusal, got {other:?}"),
    }

    let stored = submission::submit(&app.state, answer(&issued.token, full_answers(&form)))
        .await
        .expect("handled");
    assert!(matches!(stored, Submitted::Stored), "{stored:?}");
    let again = submission::submit(&app.state, answer(&issued.token, full_answers(&form)))
        .await
        .expect("handled");
    assert!(
        matches!(again, Submitted::Unavailable(TokenState::Used)),
        "{again:?}"
    );
    let unknown = submission::submit(&app.state, answer("nope", full_answers(&form)))
        .await
        .expect("handled");
    assert!(
        matches!(unknown, Submitted::Unavailable(TokenState::Unknown)),
        "{unknown:?}"
    );
}

crate::on_both_databases!(submission_is_one_use_case);
