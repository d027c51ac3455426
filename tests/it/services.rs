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

/// A token book's sticker answered through the same use case as any link (channel `book`),
/// once; attached to its dossier afterwards, its rating reaches the dossier; a revoked book's
/// sticker is unavailable.
async fn book_stickers_are_use_cases_too(app: TestApp) {
    use sipas::counter::books::{AttachRequest, BookAction, BookPolicy, books};
    use sipas::survey::book_token::StickerRef;
    let conn = &mut app.conn();
    let stp = sipas::units::find_by_code(conn, "STP").unwrap().unwrap();
    let staff = crate::helpers::staff::create_user(
        &app,
        "svc-agency",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    let policy = BookPolicy {
        forms: &app.state.forms,
        default_form: &app.state.settings.default_counter_form,
    };
    let book = books(
        conn,
        &staff,
        &policy,
        &stp.id,
        Some(BookAction::Issue("2".into())),
    )
    .unwrap()
    .issued
    .unwrap();
    let sticker = |serial| StickerRef {
        book_number: u32::try_from(book.number).unwrap(),
        serial,
    };
    let token = sticker(1).token(&app.state.secret, &stp.id);
    let form = app.state.forms.latest(&book.form_code).unwrap();
    let mut fields = full_answers(&form);
    for (k, v) in &mut fields {
        if k == "OVERALL" {
            *v = "1".into();
        }
    }
    let stored = submission::submit(&app.state, answer(token.as_str(), fields.clone()))
        .await
        .expect("handled");
    assert!(matches!(stored, Submitted::Stored), "{stored:?}");
    let again = submission::submit(&app.state, answer(token.as_str(), fields.clone()))
        .await
        .expect("handled");
    assert!(
        matches!(again, Submitted::Unavailable(TokenState::Used)),
        "{again:?}"
    );

    let mut dossier = request("SVC-BOOK");
    dossier.form = None;
    registration::register(&app.state, caller(&app, &app.api_key), dossier)
        .await
        .expect("registered");
    let attached = sipas::counter::attach::attach(
        &app.state,
        app.api_key.clone(),
        AttachRequest {
            unit: "STP".into(),
            dossier_code: "SVC-BOOK".into(),
            sticker: sticker(1).label(),
        },
    )
    .await
    .expect("attached");
    assert!(attached.answered && attached.rated, "{attached:?}");

    books(
        conn,
        &staff,
        &policy,
        &stp.id,
        Some(BookAction::Revoke(book.id.clone())),
    )
    .unwrap();
    let revoked = submission::submit(
        &app.state,
        answer(
            sticker(2).token(&app.state.secret, &stp.id).as_str(),
            fields,
        ),
    )
    .await
    .expect("handled");
    assert!(
        matches!(revoked, Submitted::Unavailable(TokenState::Revoked)),
        "{revoked:?}"
    );
}

crate::on_both_databases!(book_stickers_are_use_cases_too);
