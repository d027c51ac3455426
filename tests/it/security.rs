//! Who may do what, and the brakes around it: the access table walked with every kind of caller,
//! CSRF on every staff form, sign-in throttling, the survey rate limit, the audit chain, sessions
//! and security headers.

use std::collections::HashMap;

use diesel::prelude::*;
use sipas::accounts::{Role, users};
use sipas::audit::{Actor, AuditEvent};
use sipas::db::schema::{
    api_keys as api_keys_table, audit_events, responses, sessions, transactions,
};
use sipas::web::access::{Access, RULES, Rule};
use sipas::{api_keys, db_run, periods, procedures, units};

use crate::helpers::staff::{
    TEST_PASSWORD, admin_password, alert_in, browser, cookie_value, create_user, csrf_in, location,
    login_attempt, secret_in, set_cookie, sign_in, sign_in_admin, unit_id,
};
use crate::helpers::{Backend, TestApp, forms_dir, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    authorization_matrix,
    csrf_is_required_on_every_staff_post,
    login_is_rate_limited_without_revealing_accounts,
    concurrent_guesses_do_not_beat_the_account_limit,
    sign_in_never_redirects_off_site,
    audit_chain_detects_tampering,
    sessions_expire_and_logout_ends_them,
    pages_send_security_headers_and_safe_cookies,
);

/// Counts that any accepted change would move: audit events, transactions, responses, revoked keys.
fn fingerprint(app: &TestApp) -> [i64; 4] {
    let conn = &mut app.conn();
    db_run!(conn: {
        [
            audit_events::table.count().get_result(conn).unwrap(),
            transactions::table.count().get_result(conn).unwrap(),
            responses::table.count().get_result(conn).unwrap(),
            api_keys_table::table.filter(api_keys_table::revoked_at.is_not_null()).count().get_result(conn).unwrap(),
        ]
    })
}

fn is_login_redirect(status: u16, location: Option<&str>) -> bool {
    status == 303 && location.is_some_and(|l| l.starts_with("/login"))
}

// ---------------------------------------------------------------- 1. the authorization matrix

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    Anonymous,
    RevokedKey,
    Collector,
    AgencyOther,
    AgencyOwn,
    Admin,
}

/// Refused callers first, so that what the admin is allowed to change happens last.
const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::RevokedKey,
    Caller::Collector,
    Caller::AgencyOther,
    Caller::AgencyOwn,
    Caller::Admin,
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::RevokedKey => "revoked-key",
            Caller::Collector => "collector",
            Caller::AgencyOther => "agency-SXD",
            Caller::AgencyOwn => "agency-STP",
            Caller::Admin => "admin",
        }
    }

    fn role(self) -> Option<Role> {
        match self {
            Caller::Anonymous | Caller::RevokedKey => None,
            Caller::Collector => Some(Role::Collector),
            Caller::AgencyOther | Caller::AgencyOwn => Some(Role::Agency),
            Caller::Admin => Some(Role::Admin),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Reaches the handler: neither 401/403 nor a detour to the sign-in page.
    Allow,
    /// Refused before anything happens: 401/403 (or the sign-in page for a GET without session).
    Deny,
    /// Exists, but not for this caller: 404.
    Hidden,
}

/// Who should be able to use a route, decided from its path (what the product promises), not
/// from `RULES` itself, so that a mislabelled rule is caught.
fn intended(method: &str, pattern: &str, caller: Caller) -> Expect {
    let role = caller.role();
    let allow = |ok: bool| if ok { Expect::Allow } else { Expect::Deny };
    match pattern {
        "/" | "/healthz" | "/readyz" | "/static/{file}" | "/api/openapi.json" | "/login" => {
            Expect::Allow
        }
        // No metrics token in tests: as if the route did not exist.
        "/metrics" => Expect::Hidden,
        // The public results site (issue #18): no sign-in.
        p if p == "/public" || p.starts_with("/public/") => Expect::Allow,
        p if p.starts_with("/s/") || p.starts_with("/S/") => Expect::Allow,
        // Counter systems with a live key only: no caller here holds one.
        "/api/v1/transactions" | "/api/v1/stickers/attach" => Expect::Deny,
        "/logout" | "/account" | "/account/password" => allow(role.is_some()),
        "/agency/units/{id}"
        | "/agency/units/{id}/counter"
        | "/agency/units/{id}/books"
        | "/agency/units/{id}/books/{book}/print"
            if caller == Caller::AgencyOther =>
        {
            Expect::Hidden
        }
        // Pairing is for any device; desk screens need a paired device's cookie, no caller
        // here has one.
        "/counter/pair" => Expect::Allow,
        p if p.starts_with("/counter/") => Expect::Deny,
        p if (p.starts_with("/reports/units/") || p.starts_with("/api/v1/reports/units/"))
            && caller == Caller::AgencyOther =>
        {
            Expect::Hidden
        }
        p if p.starts_with("/reports/units/") || p.starts_with("/api/v1/reports/units/") => {
            allow(matches!(role, Some(Role::Admin | Role::Agency)))
        }
        p if p.starts_with("/reports/ranking") || p.starts_with("/api/v1/reports/ranking") => {
            allow(role == Some(Role::Admin))
        }
        p if p == "/agency" || p.starts_with("/agency/") => {
            allow(matches!(role, Some(Role::Admin | Role::Agency)))
        }
        p if p.starts_with("/paper/forms/") => allow(role == Some(Role::Admin)),
        // Bad-rating cases: agencies follow up their own (others' are 404 in the handler).
        p if p == "/cases" || p.starts_with("/cases/") => {
            allow(matches!(role, Some(Role::Admin | Role::Agency)))
        }
        p if p == "/collector" || p.starts_with("/collector/") || p.starts_with("/paper/") => {
            allow(matches!(role, Some(Role::Admin | Role::Collector)))
        }
        p if p == "/admin" || p.starts_with("/admin/") => allow(role == Some(Role::Admin)),
        other => panic!("{method} {other}: a route this test does not know; decide who may use it"),
    }
}

/// Real objects for the path parameters.
struct Ids {
    unit: String,
    user: String,
    procedure: String,
    period: String,
    api_key: String,
    token: String,
    group: String,
    campaign: String,
    /// A token book of STP.
    book: String,
}

impl Ids {
    fn create(app: &TestApp, token: String) -> Self {
        let conn = &mut app.conn();
        let stp = units::find_by_code(conn, "STP").unwrap().unwrap();
        let target = {
            let input = users::UserInput {
                username: "target-user".into(),
                display_name: "Người được sửa".into(),
                role: Role::Agency,
                unit_id: Some(stp.id.clone()),
                collector_org_id: None,
                active: true,
            };
            users::create(conn, &Actor::cli(), &input, TEST_PASSWORD).unwrap()
        };
        let procedure = procedures::find_by_code(conn, "LLTP-01")
            .unwrap()
            .unwrap()
            .id;
        let period = periods::save(
            conn,
            &Actor::cli(),
            None,
            &periods::PeriodInput {
                code: "2026".into(),
                name_vi: "Năm 2026".into(),
                name_en: "Year 2026".into(),
                kind: "year".into(),
                starts_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                ends_on: chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
                status: periods::PeriodStatus::Open,
            },
        )
        .unwrap()
        .id;
        api_keys::create(conn, &Actor::cli(), &stp.id, "matrix").unwrap();
        let api_key = api_keys::list_for_unit(conn, &stp.id)
            .unwrap()
            .into_iter()
            .find(|k| k.label == "matrix")
            .unwrap()
            .id;
        let (group, campaign) = group_and_campaign(&app.state, conn);
        let book = {
            use sipas::counter::books::{BookAction, BookPolicy, books};
            let policy = BookPolicy {
                forms: &app.state.forms,
                default_form: &app.state.settings.default_counter_form,
            };
            books(
                conn,
                &target,
                &policy,
                &stp.id,
                Some(BookAction::Issue("2".into())),
            )
            .unwrap()
            .issued
            .unwrap()
            .id
        };
        Self {
            book,
            unit: stp.id,
            user: target.id,
            procedure,
            period,
            api_key,
            token,
            group,
            campaign,
        }
    }

    fn path(&self, pattern: &str) -> String {
        let id = if pattern.starts_with("/admin/units/")
            || pattern.starts_with("/agency/units/")
            || pattern.starts_with("/reports/units/")
            || pattern.starts_with("/api/v1/reports/units/")
            || pattern.starts_with("/admin/integrity/")
            || pattern.starts_with("/cases/")
        {
            self.unit.as_str()
        } else if pattern.starts_with("/admin/users/") {
            &self.user
        } else if pattern.starts_with("/admin/groups/") {
            &self.group
        } else if pattern.starts_with("/admin/campaigns/") {
            &self.campaign
        } else if pattern.starts_with("/admin/procedures/") {
            &self.procedure
        } else if pattern.starts_with("/admin/periods/") {
            &self.period
        } else if pattern.starts_with("/admin/api-keys/")
            || pattern.starts_with("/admin/outbox/")
            || pattern.starts_with("/paper/")
            || pattern.starts_with("/public/releases/")
        {
            &self.api_key
        } else {
            ""
        };
        assert!(
            !pattern.contains("{id}") || !id.is_empty(),
            "{pattern}: which object is {{id}}?"
        );
        let token = if pattern.starts_with("/S/") {
            self.token.to_ascii_uppercase()
        } else {
            self.token.clone()
        };
        let path = pattern
            .replace("{id}", id)
            .replace("{token}", &token)
            .replace("{file}", "sipas.css")
            .replace("{desk}", "Q1")
            .replace("{book}", &self.book)
            .replace("{serial}", "ABCD-EFGH-23")
            .replace("{code}", "STP");
        assert!(!path.contains('{'), "{pattern}: unknown path parameter");
        path
    }
}

struct Party {
    caller: Caller,
    client: reqwest::Client,
    bearer: Option<String>,
    csrf: Option<String>,
}

struct Outcome {
    status: u16,
    location: Option<String>,
    body: String,
}

async fn call(app: &TestApp, party: &Party, rule: &Rule, path: &str) -> Outcome {
    let url = app.url(path);
    let mut request = match (rule.method, rule.pattern) {
        ("GET", _) => party.client.get(&url),
        ("POST", "/login") => {
            let page = party.client.get(app.url("/login")).send().await.unwrap();
            let csrf = csrf_in(&page.text().await.unwrap());
            let username = format!("nobody-{}", party.caller.label().to_ascii_lowercase());
            party.client.post(&url).form(&[
                ("csrf", csrf.as_str()),
                ("username", username.as_str()),
                ("password", "not-the-password"),
            ])
        }
        ("POST", "/api/v1/transactions") => party.client.post(&url).json(&transaction_body(
            &format!("HS-MATRIX-{}", party.caller.label()),
        )),
        ("POST", "/api/v1/stickers/attach") => party.client.post(&url).json(&serde_json::json!({
            "unit": "STP", "dossier_code": "HS-MATRIX", "sticker": "S1-0001"
        })),
        ("POST", p) if p.starts_with("/s/") || p.starts_with("/S/") => {
            party.client.post(&url).form(&[("lang", "vi")])
        }
        ("POST", _) => {
            let csrf = party.csrf.as_deref().unwrap_or("no-session-no-token");
            party
                .client
                .post(&url)
                .header("Origin", &app.base)
                .form(&[("csrf", csrf)])
        }
        (method, pattern) => panic!("{method} {pattern}: method not covered by this test"),
    };
    if let Some(key) = &party.bearer {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.expect("request");
    Outcome {
        status: response.status().as_u16(),
        location: location(&response),
        body: response.text().await.unwrap_or_default(),
    }
}

/// Why an outcome breaks the expectation, if it does.
fn judge(
    rule: &Rule,
    caller: Caller,
    expect: Expect,
    o: &Outcome,
    changed: bool,
) -> Option<String> {
    let get = rule.method == "GET";
    let status = o.status;
    match expect {
        Expect::Allow => {
            let refused_login = rule.pattern == "/login"
                && status == 401
                && o.body.contains("Tên đăng nhập hoặc mật khẩu không đúng");
            if (status == 401 || status == 403) && !refused_login {
                Some(format!("refused with {status} but should be allowed"))
            } else if status >= 500 {
                Some(format!("server error {status}"))
            } else if get && is_login_redirect(status, o.location.as_deref()) {
                Some("sent to sign-in but should be allowed".into())
            } else {
                None
            }
        }
        Expect::Deny => {
            let ok = match status {
                401 | 403 => !changed,
                303 => {
                    get && caller.role().is_none()
                        && is_login_redirect(status, o.location.as_deref())
                }
                _ => false,
            };
            if ok {
                None
            } else if changed {
                Some(format!(
                    "answered {status} and CHANGED data but should be refused"
                ))
            } else {
                Some(format!("answered {status} but should be refused (401/403)"))
            }
        }
        Expect::Hidden => (status != 404).then(|| format!("answered {status}, expected 404")),
    }
}

async fn authorization_matrix(app: TestApp) {
    let issued = app.issue_survey("HS-MATRIX-TOKEN", None).await;
    let ids = Ids::create(&app, issued["token"].as_str().unwrap().to_string());

    create_user(
        &app,
        "collector-bd",
        Role::Collector,
        None,
        Some("BUU-DIEN"),
    );
    create_user(&app, "agency-sxd", Role::Agency, Some("SXD"), None);
    create_user(&app, "agency-stp", Role::Agency, Some("STP"), None);
    let revoked_key = {
        let conn = &mut app.conn();
        let key = api_keys::create(conn, &Actor::cli(), &ids.unit, "revoked").unwrap();
        let id = api_keys::list_for_unit(conn, &ids.unit)
            .unwrap()
            .into_iter()
            .find(|k| k.label == "revoked")
            .unwrap()
            .id;
        assert!(api_keys::revoke(conn, &Actor::cli(), &id).unwrap());
        key
    };
    let mut parties = Vec::new();
    for caller in CALLERS {
        let (client, csrf) = match caller {
            Caller::Anonymous | Caller::RevokedKey => (browser(), None),
            _ => {
                let (name, pw) = match caller {
                    Caller::Collector => ("collector-bd".to_string(), TEST_PASSWORD.to_string()),
                    Caller::AgencyOther => ("agency-sxd".into(), TEST_PASSWORD.into()),
                    Caller::AgencyOwn => ("agency-stp".into(), TEST_PASSWORD.into()),
                    _ => (sipas::demo::ADMIN.into(), admin_password(&app)),
                };
                let staff = sign_in(&app, &name, &pw).await;
                let csrf = staff.csrf(&app).await;
                (staff.client, Some(csrf))
            }
        };
        parties.push(Party {
            caller,
            client,
            bearer: (caller == Caller::RevokedKey).then(|| revoked_key.clone()),
            csrf,
        });
    }

    // Signing out ends the callers' sessions: that route goes last.
    let mut rules: Vec<&Rule> = RULES.iter().collect();
    rules.sort_by_key(|r| (r.method, r.pattern) == ("POST", "/logout"));

    let mut failures = Vec::new();
    let mut outcomes: HashMap<(&str, &str, Caller), u16> = HashMap::new();
    let mut table = Vec::new();
    for rule in &rules {
        let path = ids.path(rule.pattern);
        let mut cells = Vec::new();
        for party in &parties {
            let expect = intended(rule.method, rule.pattern, party.caller);
            let before = fingerprint(&app);
            let outcome = call(&app, party, rule, &path).await;
            let changed = fingerprint(&app) != before;
            let problem = judge(rule, party.caller, expect, &outcome, changed);
            let mark = match expect {
                Expect::Allow => 'a',
                Expect::Deny => 'd',
                Expect::Hidden => 'h',
            };
            cells.push(format!(
                "{mark}{}{}",
                outcome.status,
                if problem.is_some() { "!" } else { "" }
            ));
            if let Some(problem) = problem {
                failures.push(format!(
                    "{} {} as {}: {problem}",
                    rule.method,
                    rule.pattern,
                    party.caller.label()
                ));
            }
            outcomes.insert((rule.method, rule.pattern, party.caller), outcome.status);
        }
        table.push((
            format!("{:<4} {}", rule.method, rule.pattern),
            format!("{:?}", rule.access),
            cells,
        ));
    }

    let mut printed = String::from(
        "\nauthorization matrix (a/d/h = expected allowed/denied/hidden; ! = unexpected)\n",
    );
    printed.push_str(&format!("{:<38} {:<10}", "route", "access"));
    for caller in CALLERS {
        printed.push_str(&format!(" {:>11}", caller.label()));
    }
    printed.push('\n');
    for (route, access, cells) in &table {
        printed.push_str(&format!("{route:<38} {access:<10}"));
        for cell in cells {
            printed.push_str(&format!(" {cell:>11}"));
        }
        printed.push('\n');
    }
    println!("{printed}");

    assert_eq!(
        outcomes[&("GET", "/agency/units/{id}", Caller::AgencyOwn)],
        200,
        "an agency opens its own unit"
    );
    assert_eq!(
        outcomes[&("GET", "/agency/units/{id}", Caller::AgencyOther)],
        404,
        "another agency's unit does not exist for it"
    );
    assert!(
        failures.is_empty(),
        "{} unexpected outcomes:\n{}\n{printed}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- 2. CSRF on every staff post

/// A respondent group (code `DB-HDND`) and a campaign rating STP, for the group pages.
fn group_and_campaign(
    state: &sipas::web::AppState,
    conn: &mut sipas::db::DbConn,
) -> (String, String) {
    let offset = state.settings.utc_offset_value().unwrap();
    let group = conn
        .write_transaction(|conn| {
            let mut delta = sipas::rollup::RollupDelta::default();
            sipas::groups::save_group(
                conn,
                &state.forms,
                &Actor::cli(),
                None,
                &sipas::groups::GroupInput {
                    code: "DB-HDND".into(),
                    name_vi: "Đại biểu HĐND".into(),
                    name_en: "Council delegates".into(),
                    ..Default::default()
                },
                &mut delta,
                offset,
            )
        })
        .unwrap();
    let campaign = conn
        .write_transaction(|conn| {
            sipas::groups::create_campaign(
                conn,
                &state.secret,
                &state.forms,
                &Actor::cli(),
                &sipas::groups::CampaignInput {
                    group_code: "DB-HDND".into(),
                    name_vi: "Đợt thử".into(),
                    name_en: "Trial".into(),
                    form_code: "sipas".into(),
                    starts_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 1),
                    ends_on: chrono::NaiveDate::from_ymd_opt(2099, 12, 31),
                    unit_codes: vec!["STP".into()],
                    invitees: 1,
                    ..Default::default()
                },
                sipas::db::now(),
                offset,
            )
        })
        .unwrap();
    (group.id, campaign.id)
}

struct CsrfIds {
    group: String,
    campaign: String,
    unit: String,
    user: String,
    procedure: String,
    period: String,
    api_key: String,
}

impl CsrfIds {
    fn path(&self, pattern: &str) -> String {
        let id = if pattern.starts_with("/admin/units/")
            || pattern.starts_with("/agency/units/")
            || pattern.starts_with("/admin/integrity/")
            || pattern.starts_with("/cases/")
        {
            self.unit.as_str()
        } else if pattern.starts_with("/admin/users/") {
            &self.user
        } else if pattern.starts_with("/admin/groups/") {
            &self.group
        } else if pattern.starts_with("/admin/campaigns/") {
            &self.campaign
        } else if pattern.starts_with("/admin/procedures/") {
            &self.procedure
        } else if pattern.starts_with("/admin/periods/") {
            &self.period
        } else if pattern.starts_with("/admin/api-keys/")
            || pattern.starts_with("/admin/outbox/")
            || pattern.starts_with("/paper/")
        {
            &self.api_key
        } else {
            ""
        };
        assert!(
            !pattern.contains("{id}") || !id.is_empty(),
            "{pattern}: which object is {{id}}?"
        );
        let path = pattern
            .replace("{id}", id)
            .replace("{serial}", "ABCD-EFGH-23");
        assert!(!path.contains('{'), "{pattern}: unknown path parameter");
        path
    }
}

/// A body that the route accepts (with the right token), so a refusal is the token's doing.
fn valid_form(pattern: &str, admin_pw: &str) -> Vec<(&'static str, String)> {
    let f =
        |pairs: &[(&'static str, &str)]| pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
    match pattern {
        "/logout"
        | "/admin/api-keys/{id}/revoke"
        | "/admin/users/{id}/password"
        | "/admin/outbox/{id}/retry" => Vec::new(),
        "/admin/units/{id}/invitations" => f(&[("enabled", "on")]),
        "/agency/units/{id}/counter" => f(&[("action", "pair"), ("desk", "Q1")]),
        "/agency/units/{id}/books" => f(&[("action", "issue"), ("size", "2")]),
        "/paper/batches" => f(&[("sample", "none"), ("unit", "STP"), ("collector_name", "A")]),
        "/paper/batches/{id}/delivered" | "/paper/batches/{id}/returned" => {
            f(&[("serials", "ABCD-EFGH-23")])
        }
        "/paper/entry/{serial}/undo" => Vec::new(),
        "/paper/entry/{serial}" | "/paper/disputes/{serial}" | "/paper/forms/{serial}/correct" => {
            f(&[("A1", "4")])
        }
        "/admin/samples" => f(&[
            ("period", "2026"),
            ("units", "STP"),
            ("margin", "0.05"),
            ("reserve", "0.2"),
            ("seed", "7"),
        ]),
        "/account/password" => f(&[
            ("current_password", admin_pw),
            ("new_password", "Mat-khau-moi-cua-quan-tri"),
            ("confirm", "Mat-khau-moi-cua-quan-tri"),
        ]),
        "/admin/units" => f(&[
            ("code", "CSRF-DON-VI"),
            ("name_vi", "Đơn vị thử CSRF"),
            ("name_en", "CSRF test unit"),
            ("kind", "department"),
            ("parent", "SON-HA"),
            ("valid_from", "2020-01-01"),
        ]),
        "/admin/units/{id}/rename" => f(&[
            ("name_vi", "Đơn vị đã đổi tên"),
            ("name_en", "Renamed unit"),
            ("kind", "department"),
        ]),
        "/admin/units/{id}/move" => f(&[("parent", "STP")]),
        "/admin/units/{id}/merge" => f(&[("target", "P-AN-HOA"), ("effective", "2026-01-01")]),
        "/admin/units/{id}/validity" => f(&[("valid_to", "2030-12-31")]),
        "/admin/units/{id}/counter-form" => f(&[("form", "sipas")]),
        "/admin/units/{id}/api-keys" => f(&[("label", "Một cửa thử CSRF")]),
        "/admin/procedures" => f(&[
            ("code", "CSRF-TT"),
            ("name_vi", "Thủ tục thử"),
            ("name_en", "Test procedure"),
            ("sector", "Thử"),
        ]),
        "/admin/procedures/{id}" => f(&[
            ("code", "LLTP-01"),
            ("name_vi", "Cấp Phiếu lý lịch tư pháp (sửa)"),
            ("name_en", "Criminal record certificate (edited)"),
            ("sector", "Tư pháp"),
            ("active", "on"),
        ]),
        "/admin/users" => f(&[
            ("username", "csrf-user"),
            ("display_name", "Người dùng CSRF"),
            ("role", "agency"),
            ("unit", "STP"),
            ("collector_org", ""),
        ]),
        "/admin/users/{id}" => f(&[
            ("username", "target-user"),
            ("display_name", "Tên đã sửa"),
            ("role", "agency"),
            ("unit", "STP"),
            ("collector_org", ""),
            ("active", "on"),
        ]),
        "/admin/collector-orgs" => f(&[
            ("code", "CSRF-ORG"),
            ("name_vi", "Đơn vị thu thập thử"),
            ("name_en", "Test collector"),
        ]),
        "/admin/periods" => f(&[
            ("code", "2027"),
            ("name_vi", "Năm 2027"),
            ("name_en", "Year 2027"),
            ("kind", "year"),
            ("starts_on", "2027-01-01"),
            ("ends_on", "2027-12-31"),
            ("status", "planned"),
        ]),
        "/admin/periods/{id}" => f(&[
            ("code", "2026"),
            ("name_vi", "Năm 2026 (sửa)"),
            ("name_en", "Year 2026 (edited)"),
            ("kind", "year"),
            ("starts_on", "2026-01-01"),
            ("ends_on", "2026-12-31"),
            ("status", "open"),
        ]),
        "/admin/integrity/responses/{id}" => f(&[("decision", "accept")]),
        "/admin/groups" => f(&[
            ("code", "CSRF-NHOM"),
            ("name_vi", "Nhóm thử CSRF"),
            ("name_en", "CSRF test group"),
        ]),
        "/admin/groups/{id}" => f(&[
            ("code", "DB-HDND"),
            ("name_vi", "Đại biểu HĐND (sửa)"),
            ("name_en", "Council delegates (edited)"),
        ]),
        "/admin/campaigns" => f(&[
            ("group", "DB-HDND"),
            ("name_vi", "Đợt thử CSRF"),
            ("name_en", "CSRF campaign"),
            ("form", "sipas"),
            ("starts_on", "2026-01-01"),
            ("ends_on", "2099-12-31"),
            ("units", "STP"),
            ("invitees", "2"),
        ]),
        "/admin/campaigns/{id}/invitees" => f(&[("more", "1")]),
        "/cases/{id}" => f(&[("note", "Đã liên hệ / contacted")]),
        "/admin/releases" => f(&[("period", "2026")]),
        other => panic!("POST {other}: add a valid form body for this route to the CSRF test"),
    }
}

async fn csrf_is_required_on_every_staff_post(app: TestApp) {
    let admin_pw = admin_password(&app);
    let ids = {
        let matrix = Ids::create(&app, String::new());
        let conn = &mut app.conn();
        let unit = units::create(
            conn,
            &Actor::cli(),
            &units::NewUnit {
                code: "CSRF-U",
                name_vi: "Đơn vị thử",
                name_en: "Test unit",
                kind: "department",
                parent_code: Some("SON-HA"),
                valid_from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                valid_to: None,
                merged_into_code: None,
            },
        )
        .unwrap();
        CsrfIds {
            group: matrix.group,
            campaign: matrix.campaign,
            unit: unit.id,
            user: matrix.user,
            procedure: matrix.procedure,
            period: matrix.period,
            api_key: matrix.api_key,
        }
    };
    let admin = sign_in(&app, sipas::demo::ADMIN, &admin_pw).await;
    let token = admin.csrf(&app).await;
    // A live token, but of another session: tokens are bound to their session.
    let other_session_token = sign_in(&app, sipas::demo::ADMIN, &admin_pw)
        .await
        .csrf(&app)
        .await;
    assert_ne!(token, other_session_token);

    let mut rules: Vec<&Rule> = RULES
        .iter()
        .filter(|r| r.method == "POST")
        .filter(|r| {
            matches!(
                r.access,
                Access::SignedIn | Access::Admin | Access::Results | Access::Collection
            )
        })
        .collect();
    // Changing the password and signing out go last, they change the admin's own session.
    rules.sort_by_key(|r| match r.pattern {
        "/logout" => 2,
        "/account/password" => 1,
        _ => 0,
    });
    assert!(rules.len() >= 15, "the staff forms are all listed");

    for rule in rules {
        let path = ids.path(rule.pattern);
        let url = app.url(&path);
        let body = valid_form(rule.pattern, &admin_pw);
        let with_token = |csrf: &str| {
            let mut fields: Vec<(&str, String)> = vec![("csrf", csrf.to_string())];
            fields.extend(body.iter().cloned());
            fields
        };
        let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
            ("no csrf field", admin.client.post(&url).form(&body)),
            (
                "an empty csrf field",
                admin.client.post(&url).form(&with_token("")),
            ),
            (
                "another session's token",
                admin
                    .client
                    .post(&url)
                    .form(&with_token(&other_session_token)),
            ),
            (
                "a foreign Origin",
                admin
                    .client
                    .post(&url)
                    .header("Origin", "http://evil.example")
                    .form(&with_token(&token)),
            ),
            (
                "a foreign Referer",
                admin
                    .client
                    .post(&url)
                    .header("Referer", "http://evil.example/page")
                    .form(&with_token(&token)),
            ),
        ];
        let before = fingerprint(&app);
        for (what, request) in attempts {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(
                status, 403,
                "POST {} with {what} must be refused: {text}",
                rule.pattern
            );
            assert!(
                text.contains("Biểu mẫu không hợp lệ"),
                "POST {} with {what}: the page says the form is invalid: {text}",
                rule.pattern
            );
            assert_eq!(
                fingerprint(&app),
                before,
                "POST {} with {what} changed nothing",
                rule.pattern
            );
        }
        assert_eq!(
            admin.get(&app, "/admin").await.status(),
            200,
            "refused posts to {} left the session alone",
            rule.pattern
        );

        // Paper routes need a drawn sample and issued forms; their success is covered in paper.rs.
        if rule.pattern.starts_with("/paper/") {
            continue;
        }
        // Reviews and cases need a held response or an opened case; their success with the
        // token is covered in integrity.rs.
        if rule.pattern.starts_with("/admin/integrity/") || rule.pattern.starts_with("/cases/") {
            continue;
        }
        // The same request from the service's own page goes through.
        let response = admin
            .client
            .post(&url)
            .header("Origin", &app.base)
            .form(&with_token(&token))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!(
            matches!(status, 200 | 201 | 303),
            "POST {} with the right token and Origin is accepted, got {status}: {text}",
            rule.pattern
        );
        if rule.pattern == "/logout" {
            let after = admin.get(&app, "/admin").await;
            assert!(
                is_login_redirect(after.status().as_u16(), location(&after).as_deref()),
                "signed out"
            );
        } else {
            assert_eq!(
                fingerprint(&app)[0],
                before[0] + 1,
                "POST {} with the right token made its audited change",
                rule.pattern
            );
        }
    }

    // The sign-in form: double-submit cookie plus hidden field.
    let post_login = |client: &reqwest::Client, csrf: Option<&str>| {
        let mut fields = vec![("username", "admin"), ("password", admin_pw.as_str())];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        client.post(app.url("/login")).form(&fields)
    };
    let bare = browser();
    let r = post_login(&bare, None).send().await.unwrap();
    assert_eq!(r.status(), 403, "no cookie, no field");
    // The field from a page, but without its cookie (another client fetched it).
    let field = csrf_in(
        &browser()
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let r = post_login(&bare, Some(&field)).send().await.unwrap();
    assert_eq!(r.status(), 403, "a field without its cookie");
    let client = browser();
    let own = csrf_in(
        &client
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let r = post_login(&client, None).send().await.unwrap();
    assert_eq!(r.status(), 403, "a cookie without the field");
    let r = post_login(&client, Some(&field)).send().await.unwrap();
    assert_eq!(r.status(), 403, "a cookie with another form's field");
    let r = post_login(&client, Some(&own))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign Origin");
    assert!(
        set_cookie(&r, sipas::accounts::sessions::COOKIE_NAME).is_none(),
        "no session from a refused form"
    );
    // (The control post above changed the admin's password.)
    let r = client
        .post(app.url("/login"))
        .form(&[
            ("csrf", own.as_str()),
            ("username", "admin"),
            ("password", "Mat-khau-moi-cua-quan-tri"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the real form signs in");
}

// ---------------------------------------------------------------- 3. sign-in throttling

/// Status and alert text of one sign-in attempt from a fresh browser.
async fn attempt(app: &TestApp, username: &str, password: &str) -> (u16, String, bool) {
    let response = login_attempt(app, &browser(), username, password).await;
    let status = response.status().as_u16();
    let session = set_cookie(&response, sipas::accounts::sessions::COOKIE_NAME).is_some();
    let html = response.text().await.unwrap();
    (status, alert_in(&html).unwrap_or_default(), session)
}

async fn login_is_rate_limited_without_revealing_accounts(app: TestApp) {
    let password = admin_password(&app);
    let (wrong_status, wrong_message, _) = attempt(&app, "admin", "not-the-password").await;
    assert_eq!(wrong_status, 401);
    assert!(wrong_message.contains("không đúng"), "{wrong_message}");
    for _ in 1..5 {
        let (status, message, session) = attempt(&app, "admin", "still-not-it").await;
        assert_eq!(
            (status, message.as_str(), session),
            (401, wrong_message.as_str(), false)
        );
    }
    let (status, blocked, session) = attempt(&app, "admin", &password).await;
    assert_eq!(
        status, 401,
        "the sixth attempt is refused even with the right password"
    );
    assert!(!session, "no session while blocked");
    assert!(blocked.contains("thử lại sau"), "{blocked}");
    // Case and spaces do not make another account.
    let (_, again, _) = attempt(&app, "  ADMIN ", &password).await;
    assert_eq!(again, blocked);

    // Unknown and known accounts get the same answer, wrong password or blocked.
    create_user(&app, "can-bo-a", Role::Agency, Some("STP"), None);
    let (known_status, known, _) = attempt(&app, "can-bo-a", "wrong-password-1").await;
    let (unknown_status, unknown, _) = attempt(&app, "khong-ton-tai", "wrong-password-1").await;
    assert_eq!(known_status, unknown_status);
    assert_eq!(known, unknown, "no account enumeration");
    assert_eq!(known, wrong_message);
    for _ in 1..5 {
        attempt(&app, "can-bo-a", "wrong-password-1").await;
        attempt(&app, "khong-ton-tai", "wrong-password-1").await;
    }
    let (known_status, known, _) = attempt(&app, "can-bo-a", TEST_PASSWORD).await;
    let (unknown_status, unknown, _) = attempt(&app, "khong-ton-tai", TEST_PASSWORD).await;
    assert_eq!(known_status, unknown_status);
    assert!(known.contains("thử lại sau"), "{known}");
    assert_eq!(
        known, unknown,
        "blocking does not tell accounts apart either"
    );
}

/// Guesses sent at the same moment must not get more password checks than the limit allows.
async fn concurrent_guesses_do_not_beat_the_account_limit(app: TestApp) {
    create_user(&app, "can-bo-z", Role::Agency, Some("STP"), None);
    let mut forms = Vec::new();
    for _ in 0..20 {
        let client = browser();
        let page = client.get(app.url("/login")).send().await.unwrap();
        let csrf = csrf_in(&page.text().await.unwrap());
        forms.push((client, csrf));
    }
    let guesses = forms.iter().map(|(client, csrf)| {
        client
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "can-bo-z"),
                ("password", "wrong-guess-123"),
            ])
            .send()
    });
    let mut checked = 0;
    let mut blocked = 0;
    for response in futures_util::future::join_all(guesses).await {
        let alert = alert_in(&response.unwrap().text().await.unwrap()).unwrap_or_default();
        if alert.contains("không đúng") {
            checked += 1;
        } else if alert.contains("thử lại sau") {
            blocked += 1;
        }
    }
    assert_eq!(checked + blocked, 20, "every guess was answered");
    assert!(
        checked <= sipas::accounts::login_limit::MAX_PER_ACCOUNT,
        "{checked} of 20 simultaneous guesses were checked against one account; \
         the limit is {} per 15 minutes",
        sipas::accounts::login_limit::MAX_PER_ACCOUNT
    );
}

/// Where a browser really goes for a `Location`: tabs and newlines are dropped by URL parsing.
fn stays_on_site(location: &str) -> bool {
    let seen: String = location
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    seen.starts_with('/') && !seen.starts_with("//") && !seen.starts_with("/\\")
}

async fn sign_in_never_redirects_off_site(app: TestApp) {
    let password = admin_password(&app);
    let sign_in_with_next = |next: &str| {
        let (app, password, next) = (&app, password.clone(), next.to_string());
        async move {
            let client = browser();
            let link = format!("/login?next={}", sipas::web::access::urlencode(&next));
            let page = client.get(app.url(&link)).send().await.unwrap();
            let csrf = csrf_in(&page.text().await.unwrap());
            // The attacker controls the form's `next` as well as the link's.
            let response = client
                .post(app.url("/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", "admin"),
                    ("password", password.as_str()),
                    ("next", next.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), location(&response))
        }
    };
    let (status, to) = sign_in_with_next("/admin/units?q=STP").await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some("/admin/units?q=STP")),
        "local paths are followed"
    );
    let mut problems = Vec::new();
    for next in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "\t//evil.example",
    ] {
        let (status, to) = sign_in_with_next(next).await;
        let safe = status == 303 && to.as_deref().is_some_and(stays_on_site);
        if !safe {
            problems.push(format!("next={next:?}: {status} Location {to:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "sign-in must land on this site:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------- 4. survey rate limit

mod survey_pages_are_rate_limited_per_address {
    use crate::helpers::Backend;

    #[actix_web::test]
    async fn sqlite() {
        super::survey_rate_limit(Backend::Sqlite).await
    }

    #[actix_web::test]
    async fn postgres() {
        if let Some(backend) = Backend::postgres() {
            super::survey_rate_limit(backend).await
        }
    }
}

async fn survey_rate_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.survey_rate_per_minute = 20).await;
    let issued = app.issue_survey("HS-RATE", None).await;
    let url = issued["survey_url"].as_str().unwrap().to_string();
    let mut served = 0;
    let mut refused = None;
    for _ in 0..60 {
        let response = app.client.get(&url).send().await.unwrap();
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
        served += 1;
    }
    let refused = refused.expect("the survey page is eventually rate limited");
    assert!(
        served >= 20,
        "a 20-per-minute budget served only {served} requests"
    );
    assert!(
        served <= 25,
        "{served} requests passed a 20-per-minute limit"
    );
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let text = refused.text().await.unwrap();
    assert!(text.contains("Quá nhiều yêu cầu"), "{text}");
    assert!(text.contains("Vui lòng chờ một lát"), "{text}");
    // The other survey addresses share the budget; the rest of the service does not.
    let qr = app
        .client
        .get(issued["qr_svg_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 429);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

// ---------------------------------------------------------------- 5. the audit chain

fn verify(app: &TestApp) -> Result<i64, sipas::audit::ChainBreak> {
    sipas::audit::verify(&mut app.conn()).unwrap()
}

/// `sipas audit verify` against the test database: (success, stdout + stderr).
fn cli_verify(app: &TestApp) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sipas"))
        .args(["audit", "verify"])
        .env("DATABASE_URL", &app.database_url)
        .env("SIPAS_FORMS_DIR", forms_dir())
        .env("SIPAS_SECRET", "test-secret-test-secret-test-secret!")
        .envs(crate::helpers::audit_env(&app.state.settings))
        .output()
        .expect("the sipas binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn event(app: &TestApp, seq: i64) -> AuditEvent {
    let conn = &mut app.conn();
    db_run!(conn: {
        audit_events::table.find(seq).select(AuditEvent::as_select()).first(conn)
    })
    .unwrap()
}

fn delete_event(app: &TestApp, seq: i64) {
    let conn = &mut app.conn();
    let n = db_run!(conn: { diesel::delete(audit_events::table.find(seq)).execute(conn) }).unwrap();
    assert_eq!(n, 1);
}

fn put_back(app: &TestApp, e: &AuditEvent) {
    let conn = &mut app.conn();
    db_run!(conn: {
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::seq.eq(e.seq),
                audit_events::at.eq(e.at),
                audit_events::actor_id.eq(&e.actor_id),
                audit_events::actor_name.eq(&e.actor_name),
                audit_events::action.eq(&e.action),
                audit_events::object_type.eq(&e.object_type),
                audit_events::object_id.eq(&e.object_id),
                audit_events::old_value.eq(&e.old_value),
                audit_events::new_value.eq(&e.new_value),
                audit_events::prev_hash.eq(&e.prev_hash),
                audit_events::hash.eq(&e.hash),
            ))
            .execute(conn)
    })
    .unwrap();
}

async fn audit_chain_detects_tampering(app: TestApp) {
    let initial = verify(&app).expect("the demo's chain is intact");
    let admin = sign_in_admin(&app).await;
    let created = admin
        .post(
            &app,
            "/admin/units",
            &[
                ("code", "SO-AUDIT"),
                ("name_vi", "Đơn vị kiểm toán"),
                ("name_en", "Audit unit"),
                ("kind", "department"),
                ("parent", "SON-HA"),
                ("valid_from", "2020-01-01"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let unit = unit_id(&app, "SO-AUDIT");
    let renamed = admin
        .post(
            &app,
            &format!("/admin/units/{unit}/rename"),
            &[
                ("name_vi", "Đơn vị kiểm toán (đổi tên)"),
                ("name_en", "Audit unit (renamed)"),
                ("kind", "department"),
            ],
        )
        .await;
    assert_eq!(renamed.status(), 303);
    let user = admin
        .post(
            &app,
            "/admin/users",
            &[
                ("username", "nguoi-moi"),
                ("display_name", "Người mới"),
                ("role", "agency"),
                ("unit", "SO-AUDIT"),
                ("collector_org", ""),
            ],
        )
        .await;
    assert_eq!(user.status(), 201);

    let n = verify(&app).expect("intact after real changes");
    assert!(n >= 3, "{n} events");
    assert_eq!(n, initial + 3, "each change wrote one event");
    let (ok, stdout, _) = cli_verify(&app);
    assert!(ok, "the CLI agrees the chain is intact: {stdout}");
    assert!(stdout.contains(&format!("{n} events")), "{stdout}");

    // Change a recorded value.
    let rename_seq: i64 = {
        let conn = &mut app.conn();
        db_run!(conn: {
            audit_events::table
                .filter(audit_events::action.eq("unit.rename"))
                .filter(audit_events::object_id.eq(&unit))
                .select(audit_events::seq)
                .first(conn)
        })
        .unwrap()
    };
    assert!(rename_seq < n, "the rename is in the middle of the chain");
    let original = event(&app, rename_seq);
    {
        let conn = &mut app.conn();
        db_run!(conn: {
            diesel::update(audit_events::table.find(rename_seq))
                .set(audit_events::new_value.eq(Some(r#"{"name_vi":"Tên giả mạo"}"#)))
                .execute(conn)
        })
        .unwrap();
    }
    let broken = verify(&app).expect_err("a changed value is detected");
    assert_eq!(broken.seq, rename_seq, "{broken}");
    let (ok, _, stderr) = cli_verify(&app);
    assert!(!ok, "the CLI exits non-zero on a broken chain");
    assert!(
        stderr.contains(&format!("audit event {rename_seq}:")),
        "the CLI names event {rename_seq}: {stderr}"
    );
    let page = admin.page(&app, "/admin/audit").await;
    assert!(
        page.contains("Chuỗi băm bị phá vỡ"),
        "the audit page shows the break"
    );
    assert!(page.contains(&format!("audit event {rename_seq}:")));

    // Put it back: intact again.
    {
        let conn = &mut app.conn();
        db_run!(conn: {
            diesel::update(audit_events::table.find(rename_seq))
                .set(audit_events::new_value.eq(&original.new_value))
                .execute(conn)
        })
        .unwrap();
    }
    assert_eq!(verify(&app), Ok(n));

    // Cut the last event off: the head row still counts it.
    let last = event(&app, n);
    delete_event(&app, n);
    let broken = verify(&app).expect_err("a truncated chain is detected");
    assert_eq!(broken.seq, n, "{broken}");
    let (ok, _, stderr) = cli_verify(&app);
    assert!(
        !ok && stderr.contains(&format!("audit event {n}:")),
        "{stderr}"
    );
    put_back(&app, &last);
    assert_eq!(verify(&app), Ok(n));

    // Remove one from the middle.
    delete_event(&app, rename_seq);
    let broken = verify(&app).expect_err("a removed event is detected");
    assert_eq!(broken.seq, rename_seq, "{broken}");
    let (ok, _, stderr) = cli_verify(&app);
    assert!(
        !ok && stderr.contains(&format!("audit event {rename_seq}:")),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- 6. sessions

/// A client that presents only this session cookie.
async fn with_cookie(app: &TestApp, session: &str, path: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(path))
        .header(
            "Cookie",
            format!("{}={session}", sipas::accounts::sessions::COOKIE_NAME),
        )
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), location(&response))
}

fn sessions_of(app: &TestApp, user_id: &str) -> i64 {
    let conn = &mut app.conn();
    db_run!(conn: {
        sessions::table.filter(sessions::user_id.eq(user_id)).count().get_result(conn)
    })
    .unwrap()
}

async fn sessions_expire_and_logout_ends_them(app: TestApp) {
    // Signing out ends the session on the server, not only in the browser.
    let admin = sign_in_admin(&app).await;
    assert_eq!(admin.landed, "/admin");
    assert_eq!(with_cookie(&app, &admin.session, "/admin").await.0, 200);
    let out = admin.post(&app, "/logout", &[]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out).as_deref(), Some("/login"));
    let cleared = set_cookie(&out, sipas::accounts::sessions::COOKIE_NAME).expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, to) = with_cookie(&app, &admin.session, "/admin").await;
    assert!(
        is_login_redirect(status, to.as_deref()),
        "the old cookie is dead: {status} {to:?}"
    );

    // Deactivation ends the user's sessions at once.
    let admin = sign_in_admin(&app).await;
    let user = create_user(&app, "can-bo-khoa", Role::Agency, Some("STP"), None);
    let victim = sign_in(&app, "can-bo-khoa", TEST_PASSWORD).await;
    assert_eq!(victim.get(&app, "/agency").await.status(), 200);
    let saved = admin
        .post(
            &app,
            &format!("/admin/users/{}", user.id),
            &[
                ("username", "can-bo-khoa"),
                ("display_name", "Cán bộ bị khóa"),
                ("role", "agency"),
                ("unit", "STP"),
                ("collector_org", ""),
            ],
        )
        .await;
    assert_eq!(
        saved.status(),
        303,
        "saved without the active box: deactivated"
    );
    let r = victim.get(&app, "/agency").await;
    assert!(is_login_redirect(
        r.status().as_u16(),
        location(&r).as_deref()
    ));
    assert_eq!(sessions_of(&app, &user.id), 0);
    let (status, _, session) = attempt(&app, "can-bo-khoa", TEST_PASSWORD).await;
    assert_eq!(
        (status, session),
        (401, false),
        "a deactivated account cannot sign in"
    );

    // A session whose user is deactivated behind the console's back is refused too.
    let other = create_user(&app, "can-bo-b", Role::Agency, Some("STP"), None);
    let b = sign_in(&app, "can-bo-b", TEST_PASSWORD).await;
    {
        let conn = &mut app.conn();
        db_run!(conn: {
            diesel::update(sipas::db::schema::users::table.find(&other.id))
                .set(sipas::db::schema::users::active.eq(false))
                .execute(conn)
        })
        .unwrap();
    }
    let (status, to) = with_cookie(&app, &b.session, "/agency").await;
    assert!(is_login_redirect(status, to.as_deref()));

    // A password reset by the admin ends the user's sessions; the temporary one must be changed.
    let user = create_user(&app, "can-bo-c", Role::Agency, Some("STP"), None);
    let c = sign_in(&app, "can-bo-c", TEST_PASSWORD).await;
    assert_eq!(c.get(&app, "/agency").await.status(), 200);
    let reset = admin
        .post(&app, &format!("/admin/users/{}/password", user.id), &[])
        .await;
    assert_eq!(reset.status(), 200);
    let temporary = secret_in(&reset.text().await.unwrap()).expect("temporary password shown");
    let (status, to) = with_cookie(&app, &c.session, "/agency").await;
    assert!(
        is_login_redirect(status, to.as_deref()),
        "the old session ended"
    );
    assert!(
        attempt(&app, "can-bo-c", TEST_PASSWORD).await.0 == 401,
        "the old password is gone"
    );
    let again = sign_in(&app, "can-bo-c", &temporary).await;
    assert_eq!(
        again.landed, "/account/password",
        "a temporary password must be changed"
    );
    let r = again.get(&app, "/agency").await;
    assert_eq!(location(&r).as_deref(), Some("/account/password"));

    // Idle and absolute timeouts.
    let user = create_user(&app, "can-bo-d", Role::Agency, Some("STP"), None);
    let d = sign_in(&app, "can-bo-d", TEST_PASSWORD).await;
    let past = sipas::db::now() - chrono::Duration::minutes(31);
    {
        let conn = &mut app.conn();
        db_run!(conn: {
            diesel::update(sessions::table.filter(sessions::user_id.eq(&user.id)))
                .set(sessions::last_seen_at.eq(past))
                .execute(conn)
        })
        .unwrap();
    }
    let (status, to) = with_cookie(&app, &d.session, "/agency").await;
    assert!(
        is_login_redirect(status, to.as_deref()),
        "idle for 31 minutes: signed out"
    );
    let d = sign_in(&app, "can-bo-d", TEST_PASSWORD).await;
    {
        let conn = &mut app.conn();
        db_run!(conn: {
            diesel::update(sessions::table.filter(sessions::user_id.eq(&user.id)))
                .set(sessions::expires_at.eq(sipas::db::now() - chrono::Duration::seconds(1)))
                .execute(conn)
        })
        .unwrap();
    }
    let (status, to) = with_cookie(&app, &d.session, "/agency").await;
    assert!(
        is_login_redirect(status, to.as_deref()),
        "past the absolute lifetime: signed out"
    );
    assert_eq!(sessions_of(&app, &user.id), 0, "dead sessions are removed");
}

// ---------------------------------------------------------------- 7. headers and cookies

fn assert_safe_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_string()
    };
    let csp = header("content-security-policy");
    let directives: HashMap<&str, &str> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.split_once(' ').unwrap_or((d, "")))
        .collect();
    let scripts = directives
        .get("script-src")
        .or_else(|| directives.get("default-src"))
        .unwrap_or_else(|| panic!("{what}: CSP limits scripts: {csp}"));
    assert!(!scripts.contains("'unsafe-inline'"), "{what}: {csp}");
    assert!(!scripts.contains("'unsafe-eval'"), "{what}: {csp}");
    assert!(!scripts.contains('*'), "{what}: {csp}");
    assert_eq!(
        directives.get("frame-ancestors"),
        Some(&"'none'"),
        "{what}: {csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
}

async fn pages_send_security_headers_and_safe_cookies(app: TestApp) {
    let client = browser();
    let response = login_attempt(&app, &client, "admin", &admin_password(&app)).await;
    assert_eq!(response.status(), 303);
    let cookie =
        set_cookie(&response, sipas::accounts::sessions::COOKIE_NAME).expect("session cookie");
    let attrs: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attrs.contains(&"httponly".to_string()), "{cookie}");
    assert!(attrs.contains(&"samesite=lax".to_string()), "{cookie}");
    assert!(attrs.contains(&"path=/".to_string()), "{cookie}");
    assert_eq!(
        cookie_value(&cookie).len(),
        52,
        "a long random session id: {cookie}"
    );

    let login = browser().get(app.url("/login")).send().await.unwrap();
    assert_safe_headers(&login, "sign-in page");
    let csrf_cookie =
        set_cookie(&login, sipas::web::access::LOGIN_CSRF_COOKIE).expect("login csrf cookie");
    let lower = csrf_cookie.to_ascii_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=strict"),
        "{csrf_cookie}"
    );

    let staff = client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(staff.status(), 200);
    assert_safe_headers(&staff, "admin page");

    let issued = app.issue_survey("HS-HEADERS", None).await;
    let survey = app
        .client
        .get(issued["survey_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(survey.status(), 200);
    assert_safe_headers(&survey, "survey page");
    assert_eq!(
        survey
            .headers()
            .get("referrer-policy")
            .and_then(|v| v.to_str().ok()),
        Some("same-origin"),
        "the token in the URL never leaks to other sites"
    );
}
