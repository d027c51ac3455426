//! The staff use cases called directly, without HTTP (issue #16): units, accounts, reports,
//! integrity, cases and the outbox, each with the acting person as a plain `Actor`, beside the
//! HTTP tests of the same pages.

use diesel::prelude::*;
use sipas::accounts::Role;
use sipas::accounts::actor::Actor;
use sipas::accounts::manage::{self as accounts, AccountInput};
use sipas::db::schema::audit_events;
use sipas::db_run;
use sipas::error::AppError;
use sipas::forms::QuestionRole;
use sipas::integrity::cases::{self, CaseStatus, FollowUp};
use sipas::integrity::panel;
use sipas::integrity::review::Decision;
use sipas::mail::outbox;
use sipas::report::queries::{self, RankingQuery, ReportQuery};
use sipas::survey::registration::{self, Caller};
use sipas::survey::submission::{self, Answer, Submitted};
use sipas::survey::transaction::TransactionRequest;
use sipas::units::manage::{self as units, Merge, MoveTo, NewUnitInput, Rename, Validity};

use crate::helpers::staff::{TEST_PASSWORD, create_user, unit_id};
use crate::helpers::{TestApp, full_answers};

crate::on_both_databases!(
    units_are_changed_by_their_use_cases,
    accounts_are_changed_by_their_use_cases,
    report_reads_stay_in_the_readers_scope,
    cases_are_seen_and_followed_up_in_scope,
    integrity_panel_and_review_need_no_http,
    the_outbox_retry_is_one_audited_use_case,
    sign_in_and_password_change_need_no_http,
);

fn field_of(result: &Result<impl std::fmt::Debug, AppError>) -> Option<String> {
    match result {
        Err(AppError::InvalidField { field, .. }) => Some(field.clone()),
        _ => None,
    }
}

/// The actions of the audit events written by `actor_name`, oldest first.
fn audited_actions(app: &TestApp, actor_name: &str) -> Vec<String> {
    let conn = &mut app.conn();
    db_run!(conn: {
        audit_events::table
            .filter(audit_events::actor_name.eq(actor_name))
            .order(audit_events::seq.asc())
            .select(audit_events::action)
            .load::<String>(conn)
    })
    .expect("audit events")
}

fn actor_of(app: &TestApp, username: &str) -> Actor {
    let user = sipas::accounts::users::find_by_username(&mut app.conn(), username)
        .expect("query")
        .expect("user");
    Actor::of(&user)
}

/// Create, rename, move, merge and close a unit through `units::manage`: codes are looked up,
/// a bad input is a field error, and every change is audited under the actor's name.
async fn units_are_changed_by_their_use_cases(app: TestApp) {
    create_user(&app, "svc-admin", Role::Admin, None, None);
    let admin = actor_of(&app, "svc-admin");
    let conn = &mut app.conn();

    let input = NewUnitInput::parse(
        " so-svc ",
        "Sở Thử",
        "Test Dept",
        "department",
        "",
        "2026-01-01",
    )
    .expect("valid input");
    let unit = units::create(conn, &admin, &input).expect("created");
    assert_eq!(unit.code, "SO-SVC");
    let again = units::create(conn, &admin, &input);
    assert_eq!(field_of(&again).as_deref(), Some("code"), "{again:?}");
    let orphan = NewUnitInput::parse(
        "SO-ORPHAN",
        "Sở",
        "Dept",
        "department",
        "nowhere",
        "2026-01-01",
    )
    .expect("parsed");
    assert_eq!(
        field_of(&units::create(conn, &admin, &orphan)).as_deref(),
        Some("parent")
    );

    let renamed = units::rename(
        conn,
        &admin,
        &unit.id,
        &Rename::parse("Sở Thử Nghiệm", "Testing Dept", "centre").expect("valid"),
    )
    .expect("renamed");
    assert_eq!(
        (renamed.name_vi.as_str(), renamed.kind.as_str()),
        ("Sở Thử Nghiệm", "centre")
    );

    let moved = units::move_to(conn, &admin, &unit.id, &MoveTo::parse("stp")).expect("moved");
    assert_eq!(moved.parent_id, Some(unit_id(&app, "STP")));
    let unknown = units::move_to(conn, &admin, &unit.id, &MoveTo::parse("NO-SUCH"));
    assert_eq!(field_of(&unknown).as_deref(), Some("parent"));
    // STP cannot merge into a unit below it.
    let stp = unit_id(&app, "STP");
    let into_own = units::merge(
        conn,
        &admin,
        &stp,
        &Merge::parse("so-svc", "2026-06-01").expect("valid"),
    );
    assert_eq!(
        field_of(&into_own).as_deref(),
        Some("target"),
        "{into_own:?}"
    );

    let closed = units::set_validity(
        conn,
        &admin,
        &unit.id,
        &Validity::parse("2026-12-31").expect("valid"),
    )
    .expect("closed");
    assert_eq!(
        closed.valid_to,
        chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
    );
    let detail = units::detail(conn, &unit.id).expect("detail");
    assert_eq!(detail.parent.map(|p| p.code).as_deref(), Some("STP"));
    assert!(matches!(
        units::detail(conn, "no-such-id"),
        Err(AppError::NotFound(_))
    ));

    let key = units::issue_api_key(conn, &admin, &unit.id, "counter").expect("key issued");
    assert!(!key.is_empty());
    let key_id = units::detail(conn, &unit.id).expect("detail").keys[0]
        .id
        .clone();
    assert_eq!(
        units::revoke_api_key(conn, &admin, &key_id).expect("revoked"),
        unit.id
    );
    assert!(matches!(
        units::issue_api_key(conn, &admin, "no-such-unit", "x"),
        Err(AppError::NotFound(_))
    ));

    assert_eq!(
        audited_actions(&app, "svc-admin"),
        [
            "unit.create",
            "unit.rename",
            "unit.move",
            "unit.deactivate",
            "api_key.create",
            "api_key.revoke"
        ]
    );
}

/// Accounts: the scope is given by code and resolved in the use case; the username never
/// changes; a reset ends the sessions and forces a change.
async fn accounts_are_changed_by_their_use_cases(app: TestApp) {
    let admin = Actor::cli();
    let conn = &mut app.conn();
    let input = AccountInput::parse("SVC.Agency", "Cán bộ", "agency", "stp", "", false)
        .expect("valid input");
    let created = accounts::create(conn, &admin, &input, TEST_PASSWORD).expect("created");
    assert_eq!(created.username, "svc.agency");
    assert!(created.active, "a new account is active");
    assert_eq!(created.unit_id, Some(unit_id(&app, "STP")));

    let nowhere =
        AccountInput::parse("svc.other", "X", "agency", "NO-SUCH", "", true).expect("parsed");
    assert_eq!(
        field_of(&accounts::create(conn, &admin, &nowhere, TEST_PASSWORD)).as_deref(),
        Some("unit")
    );

    let renamed =
        AccountInput::parse("ignored", "Cán bộ mới", "agency", "SXD", "", true).expect("valid");
    let updated = accounts::update(conn, &admin, &created.id, &renamed).expect("updated");
    assert_eq!(updated.username, "svc.agency", "the username never changes");
    assert_eq!(updated.unit_id, Some(unit_id(&app, "SXD")));
    assert!(matches!(
        accounts::update(conn, &admin, "no-such-id", &renamed),
        Err(AppError::NotFound(_))
    ));

    let page = accounts::reset_password(conn, &admin, &created.id, "Tam-thoi-mat-khau-2026")
        .expect("reset");
    assert_eq!(page.unit_code, "SXD");
    let after = sipas::accounts::users::find(conn, &created.id)
        .expect("query")
        .expect("user");
    assert!(after.must_change_password);
    let list = accounts::list(conn, "svc.", 0, 25).expect("list");
    assert_eq!(list.accounts.len(), 1);
}

/// An agency reads its own unit's report and activity; any other unit is "not found", as if
/// it did not exist; administrators read everything; collectors nothing.
async fn report_reads_stay_in_the_readers_scope(app: TestApp) {
    create_user(&app, "svc-stp", Role::Agency, Some("STP"), None);
    let agency = actor_of(&app, "svc-stp");
    let (stp, sxd) = (unit_id(&app, "STP"), unit_id(&app, "SXD"));
    let query = ReportQuery::parse(Some("2026"), None, None, None, None).expect("query");

    let own = queries::unit_report(&app.state, &agency, stp.clone(), query.clone())
        .await
        .expect("own unit");
    assert_eq!(own.report.unit.code, "STP");
    let other = queries::unit_report(&app.state, &agency, sxd.clone(), query.clone()).await;
    assert!(matches!(other, Err(AppError::NotFound(_))), "{other:?}");
    let missing =
        queries::unit_report(&app.state, &agency, "no-such-unit".into(), query.clone()).await;
    assert!(matches!(missing, Err(AppError::NotFound(_))), "{missing:?}");
    queries::unit_report(&app.state, &Actor::cli(), sxd.clone(), query.clone())
        .await
        .expect("administrators read every unit");
    let unknown_procedure =
        ReportQuery::parse(Some("2026"), None, None, Some("NO-SUCH"), None).expect("parsed");
    let refused = queries::unit_report(&app.state, &agency, stp.clone(), unknown_procedure).await;
    assert_eq!(field_of(&refused).as_deref(), Some("procedure"));

    assert!(
        queries::unit_activity(&app.state, &agency, stp.clone())
            .await
            .is_ok()
    );
    let foreign = queries::unit_activity(&app.state, &agency, sxd).await;
    assert!(matches!(foreign, Err(AppError::NotFound(_))), "{foreign:?}");

    let ranking = queries::ranking(
        &app.state,
        RankingQuery::parse(Some("2026"), None).expect("query"),
    )
    .await
    .expect("ranking");
    assert_eq!(
        (ranking.kind.as_str(), ranking.period.label().as_str()),
        ("department", "2026")
    );
    let (home, _) = queries::agency_home(&app.state, &agency, None)
        .await
        .expect("agency home");
    assert!(home.units.iter().any(|g| g.unit.code == "STP"));
    assert!(home.units.iter().all(|g| g.unit.code != "SXD"));

    create_user(&app, "svc-bd", Role::Collector, None, Some("BUU-DIEN"));
    let collector = actor_of(&app, "svc-bd");
    let refused = queries::unit_report(&app.state, &collector, stp, query).await;
    assert!(matches!(refused, Err(AppError::NotFound(_))), "{refused:?}");
}

/// Registers a dossier at STP and answers it "very dissatisfied": a case opens.
async fn bad_rating_at_stp(app: &TestApp, dossier: &str) {
    let now = sipas::db::now();
    let issued = registration::register(
        &app.state,
        Caller {
            api_key: app.api_key.clone(),
            address: "203.0.113.7".into(),
            user_agent: "counter-system/1.0".into(),
        },
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
        },
    )
    .await
    .expect("registered");
    let form = app.state.forms.latest("sipas").expect("form");
    let overall = form
        .question_with_role(QuestionRole::Overall)
        .expect("overall question")
        .code
        .clone();
    let mut fields = full_answers(&form);
    for (code, value) in fields.iter_mut() {
        if *code == overall {
            *value = "1".into();
        }
    }
    let stored = submission::submit(
        &app.state,
        Answer {
            token: issued.token,
            fields,
            language: sipas::i18n::Lang::Vi,
            channel: sipas::survey::channel::Channel::Qr,
            address: "198.51.100.20".into(),
            user_agent: "phone".into(),
        },
    )
    .await
    .expect("handled");
    assert!(matches!(stored, Submitted::Stored), "{stored:?}");
}

/// The agency of STP sees and closes its case; another agency neither sees nor touches it.
async fn cases_are_seen_and_followed_up_in_scope(app: TestApp) {
    bad_rating_at_stp(&app, "SVC-CASE-1").await;
    create_user(&app, "svc-stp", Role::Agency, Some("STP"), None);
    create_user(&app, "svc-sxd", Role::Agency, Some("SXD"), None);
    let (own, other) = (actor_of(&app, "svc-stp"), actor_of(&app, "svc-sxd"));
    let conn = &mut app.conn();

    let seen = cases::list_for(conn, &own).expect("list");
    assert_eq!(seen.cases.len(), 1);
    assert!(
        cases::list_for(conn, &other)
            .expect("list")
            .cases
            .is_empty()
    );
    let id = seen.cases[0].id.clone();
    assert_eq!(seen.cases[0].status, CaseStatus::Open);

    let file = cases::open_file(conn, &app.state.forms, &own, &id).expect("case file");
    assert!(file.form.is_some() && file.actions.is_empty());
    assert!(matches!(
        cases::open_file(conn, &app.state.forms, &other, &id),
        Err(AppError::NotFound(_))
    ));
    let close = FollowUp {
        note: "Đã gọi điện xin lỗi và hướng dẫn lại thủ tục.".into(),
        close: true,
    };
    assert!(matches!(
        cases::follow_up(conn, &other, &id, &close),
        Err(AppError::NotFound(_))
    ));
    let empty = FollowUp {
        note: "  ".into(),
        close: false,
    };
    assert_eq!(
        field_of(&cases::follow_up(conn, &own, &id, &empty)).as_deref(),
        Some("note")
    );
    cases::follow_up(conn, &own, &id, &close).expect("closed");
    let closed = cases::open_file(conn, &app.state.forms, &own, &id).expect("case file");
    assert_eq!(closed.case.status, CaseStatus::Closed);
    assert_eq!(closed.actions.len(), 1);
    assert!(matches!(
        cases::follow_up(conn, &own, &id, &close),
        Err(AppError::Conflict(_))
    ));
    assert_eq!(audited_actions(&app, "svc-stp"), ["case.close"]);
}

/// The panel, a unit's history and the review decision run on the services alone.
async fn integrity_panel_and_review_need_no_http(app: TestApp) {
    let stp = unit_id(&app, "STP");
    let p = panel::panel(&app.state, Some("2026-01".into()))
        .await
        .expect("panel");
    assert_eq!(p.period.label(), "2026-01");
    assert!(p.flagged() <= p.units.len());
    let bad = panel::panel(&app.state, Some("someday".into())).await;
    assert_eq!(field_of(&bad).as_deref(), Some("period"));

    let history = panel::unit_history(&app.state, stp, Some("2026-03".into()))
        .await
        .expect("history");
    assert_eq!(history.unit.code, "STP");
    let months: Vec<&str> = history.trend.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        months,
        [
            "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"
        ]
    );
    let unknown = panel::unit_history(&app.state, "no-such-unit".into(), None).await;
    assert!(matches!(unknown, Err(AppError::NotFound(_))), "{unknown:?}");

    assert!(Decision::parse("maybe", None).is_err());
    let not_held = panel::review(
        &app.state,
        &Actor::cli(),
        "no-such-response".into(),
        Decision::parse("accept", None).expect("decision"),
    )
    .await;
    assert!(not_held.is_err(), "only held responses are decided");
}

/// The console's retry and the command line's are one audited use case.
async fn the_outbox_retry_is_one_audited_use_case(app: TestApp) {
    create_user(&app, "svc-admin", Role::Admin, None, None);
    let admin = actor_of(&app, "svc-admin");
    let conn = &mut app.conn();
    assert_eq!(outbox::retry(conn, &admin, None).expect("retried"), 0);
    assert_eq!(
        outbox::retry(conn, &admin, Some("no-such-message")).expect("retried"),
        0
    );
    assert_eq!(
        audited_actions(&app, "svc-admin"),
        ["outbox.retry", "outbox.retry"]
    );
    assert_eq!(
        outbox::MailStatus::parse("failed"),
        Some(outbox::MailStatus::Failed)
    );
    assert_eq!(outbox::MailStatus::parse("lost"), None);
    assert!(
        outbox::list(conn, Some(outbox::MailStatus::Failed), 10)
            .expect("list")
            .is_empty()
    );
}

/// Signing in: wrong passwords and unknown accounts get the same refusal; the right password
/// opens a session and ends the browser's previous one. Changing one's password checks the
/// current one and the confirmation, and keeps only the current session.
async fn sign_in_and_password_change_need_no_http(app: TestApp) {
    use sipas::accounts::sessions;
    use sipas::accounts::sign_in::{self, Credentials, PasswordChange, SignIn};

    create_user(&app, "svc-signin", Role::Agency, Some("STP"), None);
    let conn = &mut app.conn();
    let attempt = |username: &str, password: &str, previous: Option<String>| Credentials {
        username: username.into(),
        password: password.into(),
        address: "203.0.113.9".into(),
        previous_session: previous,
    };
    let refusal = |outcome: SignIn| match outcome {
        SignIn::Refused(message) => message.en,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let wrong =
        refusal(sign_in::sign_in(conn, &attempt("svc-signin", "wrong", None)).expect("handled"));
    let unknown =
        refusal(sign_in::sign_in(conn, &attempt("nobody", "wrong", None)).expect("handled"));
    assert_eq!(wrong, unknown, "nothing tells whether the account exists");

    let token = match sign_in::sign_in(conn, &attempt(" SVC-Signin ", TEST_PASSWORD, None))
        .expect("handled")
    {
        SignIn::SignedIn {
            token,
            role,
            must_change,
        } => {
            assert_eq!(role, Role::Agency);
            assert!(!must_change);
            token
        }
        other => panic!("expected a session, got {other:?}"),
    };
    let now = sipas::db::now();
    assert!(
        sessions::lookup(conn, &token, now)
            .expect("query")
            .is_some()
    );
    let previous = Some(sessions::hash_token(&token));
    let second = match sign_in::sign_in(conn, &attempt("svc-signin", TEST_PASSWORD, previous))
        .expect("handled")
    {
        SignIn::SignedIn { token, .. } => token,
        other => panic!("expected a session, got {other:?}"),
    };
    assert!(
        sessions::lookup(conn, &token, now)
            .expect("query")
            .is_none(),
        "signing in again ends the browser's previous session"
    );

    let current = sessions::lookup(conn, &second, now)
        .expect("query")
        .expect("live session");
    let change = |current: &str, new: &str, confirm: &str| PasswordChange {
        current: current.into(),
        new: new.into(),
        confirm: confirm.into(),
        address: "203.0.113.9".into(),
    };
    let new_password = "Mat-khau-moi-cua-toi-2026";
    let user = &current.user;
    let tried = |c: &PasswordChange, conn: &mut sipas::db::DbConn| {
        field_of(&sign_in::change_password(
            conn,
            user,
            &current.token_hash,
            c,
        ))
    };
    assert_eq!(
        tried(&change("wrong", new_password, new_password), conn).as_deref(),
        Some("current_password")
    );
    assert_eq!(
        tried(&change(TEST_PASSWORD, new_password, "other"), conn).as_deref(),
        Some("confirm")
    );
    assert_eq!(
        tried(&change(TEST_PASSWORD, TEST_PASSWORD, TEST_PASSWORD), conn).as_deref(),
        Some("new_password")
    );
    sign_in::change_password(
        conn,
        user,
        &current.token_hash,
        &change(TEST_PASSWORD, new_password, new_password),
    )
    .expect("changed");
    assert!(
        sessions::lookup(conn, &second, now)
            .expect("query")
            .is_some(),
        "the current session stays"
    );
    assert!(matches!(
        sign_in::sign_in(conn, &attempt("svc-signin", new_password, None)).expect("handled"),
        SignIn::SignedIn { .. }
    ));
}
