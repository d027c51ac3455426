//! The administrator's console, driven through its pages only: units, accounts, API keys,
//! mergers and moves, and the audit log that records each change.

use diesel::prelude::*;
use serde_json::{Value, json};
use sipas::db::schema::audit_events;
use sipas::{db_run, units};

use crate::helpers::staff::{
    Staff, alert_in, audit_count, csrf_in, location, secret_in, sign_in, sign_in_admin, unit_id,
};
use crate::helpers::{TestApp, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    admin_sets_up_a_unit_with_its_account_and_counter_key,
    mergers_moves_and_revocations_take_effect,
);

/// Posts a form of the admin's page and returns status, redirect target and body.
async fn submit(
    app: &TestApp,
    admin: &Staff,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let response = admin.post(app, path, fields).await;
    let status = response.status().as_u16();
    let to = location(&response);
    (status, to, response.text().await.unwrap_or_default())
}

async fn register(app: &TestApp, key: &str, unit: &str, dossier: &str) -> (u16, Value) {
    let mut body = transaction_body(dossier);
    body["unit"] = json!(unit);
    let response = app
        .client
        .post(app.url("/api/v1/transactions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The ids the page links to under `prefix` (e.g. `/agency/units/`), in page order.
fn linked_ids(html: &str, prefix: &str) -> Vec<String> {
    let needle = format!("href=\"{prefix}");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.find(['"', '?', '/'])
                .map(|end| rest[..end].to_string())
        })
        .collect()
}

/// Which of the console's actions the audit table lists (one `<td>` each).
fn audit_actions(html: &str) -> Vec<String> {
    let actions = [
        "unit.create",
        "unit.rename",
        "unit.move",
        "unit.merge",
        "user.create",
        "user.password_change",
        "api_key.create",
        "api_key.revoke",
    ];
    actions
        .iter()
        .filter(|a| html.contains(&format!("<td>{a}</td>")))
        .map(|a| a.to_string())
        .collect()
}

async fn admin_sets_up_a_unit_with_its_account_and_counter_key(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    assert_eq!(admin.landed, "/admin");

    // A new unit under the province.
    let (status, to, body) = submit(
        &app,
        &admin,
        "/admin/units",
        &[
            ("code", "so-y-te"),
            ("name_vi", "Sở Y tế"),
            ("name_en", "Department of Health"),
            ("kind", "department"),
            ("parent", "SON-HA"),
            ("valid_from", "2020-01-01"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let to = to.unwrap();
    let id = unit_id(&app, "SO-Y-TE");
    assert_eq!(
        to,
        format!("/admin/units/{id}?ok=created"),
        "codes are upper-cased"
    );
    let page = admin.page(&app, &to).await;
    assert!(page.contains("Đã tạo mới."));
    assert!(page.contains("Sở Y tế / Department of Health"));
    assert!(page.contains("SON-HA — Tỉnh Sơn Hà"), "parent shown");

    // Renamed.
    let (status, to, _) = submit(
        &app,
        &admin,
        &format!("/admin/units/{id}/rename"),
        &[
            ("name_vi", "Sở Y tế tỉnh Sơn Hà"),
            ("name_en", "Son Ha Department of Health"),
            ("kind", "department"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let page = admin.page(&app, &to.unwrap()).await;
    assert!(page.contains("Sở Y tế tỉnh Sơn Hà / Son Ha Department of Health"));
    assert!(page.contains("Đã lưu thay đổi."));

    // An agency account scoped to it: the first password is shown once.
    let (status, _, body) = submit(
        &app,
        &admin,
        "/admin/users",
        &[
            ("username", "Can-Bo-YTe"),
            ("display_name", "Nguyễn Thị Hoa"),
            ("role", "agency"),
            ("unit", "so-y-te"),
            ("collector_org", ""),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("can-bo-yte"), "usernames are lower-cased");
    let first_password = secret_in(&body).expect("first password shown");
    assert!(first_password.len() >= 10);
    assert!(
        secret_in(&admin.page(&app, "/admin/users").await).is_none(),
        "shown only once"
    );

    // A counter key for the unit, from its page.
    let (status, _, body) = submit(
        &app,
        &admin,
        &format!("/admin/units/{id}/api-keys"),
        &[("label", "Một cửa Sở Y tế")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let key = secret_in(&body).expect("new key shown");
    assert!(key.starts_with("sipas_"), "{key}");
    assert!(body.contains("Một cửa Sở Y tế"));
    assert!(secret_in(&admin.page(&app, &format!("/admin/units/{id}")).await).is_none());

    // The counter system registers a dossier with it.
    let (status, issued) = register(&app, &key, "SO-Y-TE", "HS-YTE-0001").await;
    assert_eq!(status, 201, "{issued}");
    assert!(issued["survey_url"].as_str().unwrap().contains("/s/"));
    // ...but only for its own unit.
    let (status, _) = register(&app, &key, "STP", "HS-YTE-0002").await;
    assert_eq!(status, 403);

    // The new account must choose its own password first.
    let agency = sign_in(&app, "can-bo-yte", &first_password).await;
    assert_eq!(agency.landed, "/account/password");
    let r = agency.get(&app, "/agency").await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r).as_deref(), Some("/account/password"));
    let new_password = "Hoa-doi-mat-khau-2026";
    let changed = agency
        .post(
            &app,
            "/account/password",
            &[
                ("current_password", first_password.as_str()),
                ("new_password", new_password),
                ("confirm", new_password),
            ],
        )
        .await;
    assert_eq!(changed.status(), 303);
    assert_eq!(location(&changed).as_deref(), Some("/account?ok=password"));

    // Exactly its own unit, with the dossier just registered.
    let home = agency.page(&app, "/agency").await;
    assert_eq!(linked_ids(&home, "/agency/units/"), vec![id.clone()]);
    assert!(home.contains("Sở Y tế tỉnh Sơn Hà"));
    assert!(!home.contains("Sở Tư pháp") && !home.contains(">STP<"));
    assert!(home.contains("<td>1</td>"), "one registered dossier");
    assert!(!home.contains("/admin"), "no admin navigation");
    assert_eq!(
        agency
            .get(&app, &format!("/agency/units/{id}"))
            .await
            .status(),
        200
    );
    let stp = unit_id(&app, "STP");
    assert_eq!(
        agency
            .get(&app, &format!("/agency/units/{stp}"))
            .await
            .status(),
        404
    );
    assert_eq!(agency.get(&app, "/admin/units").await.status(), 403);
    // The new password works, the first one no longer does.
    sign_in(&app, "can-bo-yte", new_password).await;

    // Every change is in the audit log, by the admin (and the password change by its owner).
    let audit = admin.page(&app, "/admin/audit").await;
    assert!(audit.contains("Chuỗi băm toàn vẹn"));
    let actions = audit_actions(&audit);
    for expected in [
        "unit.create",
        "unit.rename",
        "user.create",
        "api_key.create",
        "user.password_change",
    ] {
        assert!(
            actions.contains(&expected.to_string()),
            "{expected} missing from {actions:?}"
        );
    }
    let of_unit = admin
        .page(
            &app,
            &format!("/admin/audit?object_type=unit&object_id={id}"),
        )
        .await;
    assert_eq!(audit_actions(&of_unit), vec!["unit.create", "unit.rename"]);
    assert!(of_unit.contains("<td>admin</td>"), "the actor is named");
    assert!(
        of_unit.contains("Son Ha Department of Health"),
        "new values are shown"
    );
}

async fn mergers_moves_and_revocations_take_effect(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    let tan_lap = unit_id(&app, "X-TAN-LAP");
    let an_hoa = unit_id(&app, "P-AN-HOA");
    let province = unit_id(&app, "SON-HA");
    let stp = unit_id(&app, "STP");

    // Before the merger the commune takes transactions.
    let (status, _) = register(&app, &app.api_key, "X-TAN-LAP", "HS-TL-1").await;
    assert_eq!(status, 201);

    // Merge from today: the commune's last day is yesterday.
    let today = chrono::Utc::now().date_naive();
    let effective = today.to_string();
    let (status, to, body) = submit(
        &app,
        &admin,
        &format!("/admin/units/{tan_lap}/merge"),
        &[("target", "p-an-hoa"), ("effective", &effective)],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let page = admin.page(&app, &to.unwrap()).await;
    let unit = units::find(&mut app.conn(), &tan_lap).unwrap().unwrap();
    let yesterday = today.pred_opt().unwrap();
    assert_eq!(unit.valid_to, Some(yesterday));
    assert_eq!(unit.merged_into_id.as_deref(), Some(an_hoa.as_str()));
    assert!(
        page.contains(&format!("Đã sáp nhập sau {yesterday}")),
        "{page}"
    );
    let (status, error) = register(&app, &app.api_key, "X-TAN-LAP", "HS-TL-2").await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "unit");
    let (status, _) = register(&app, &app.api_key, "P-AN-HOA", "HS-AH-1").await;
    assert_eq!(status, 201, "the merged-into ward goes on");

    // Moving a unit under its own subtree is refused and changes nothing.
    let before = audit_count(&app);
    let (status, _, body) = submit(
        &app,
        &admin,
        &format!("/admin/units/{province}/move"),
        &[("parent", "STP")],
    )
    .await;
    assert_eq!(status, 422, "province under its own department: {body}");
    assert!(
        alert_in(&body).is_some_and(|a| a.contains("(parent)")),
        "{body}"
    );
    let (status, _, _) = submit(
        &app,
        &admin,
        &format!("/admin/units/{stp}/move"),
        &[("parent", "STP")],
    )
    .await;
    assert_eq!(status, 422, "a unit under itself");
    assert_eq!(audit_count(&app), before, "no event for refused moves");
    let conn = &mut app.conn();
    assert_eq!(
        units::find(conn, &province).unwrap().unwrap().parent_id,
        None
    );
    assert_eq!(
        units::find(conn, &stp)
            .unwrap()
            .unwrap()
            .parent_id
            .as_deref(),
        Some(province.as_str())
    );

    // A key revoked on the unit's page stops working at once.
    let (status, _, body) = submit(
        &app,
        &admin,
        &format!("/admin/units/{stp}/api-keys"),
        &[("label", "Một cửa STP")],
    )
    .await;
    assert_eq!(status, 200);
    let key = secret_in(&body).unwrap();
    let (status, _) = register(&app, &key, "STP", "HS-REV-1").await;
    assert_eq!(status, 201);
    let page = admin.page(&app, &format!("/admin/units/{stp}")).await;
    let key_ids = linked_forms(&page, "/admin/api-keys/");
    assert_eq!(
        key_ids.len(),
        1,
        "one active key listed with a revoke button"
    );
    let (status, to, _) = submit(
        &app,
        &admin,
        &format!("/admin/api-keys/{}/revoke", key_ids[0]),
        &[],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(to, Some(format!("/admin/units/{stp}?ok=revoked")));
    let page = admin
        .page(&app, &format!("/admin/units/{stp}?ok=revoked"))
        .await;
    assert!(page.contains("Đã thu hồi khóa.") && page.contains("Đã thu hồi"));
    assert!(linked_forms(&page, "/admin/api-keys/").is_empty());
    let (status, error) = register(&app, &key, "STP", "HS-REV-2").await;
    assert_eq!(status, 401, "{error}");
    let (status, _) = register(&app, &app.api_key, "STP", "HS-REV-3").await;
    assert_eq!(status, 201, "other keys are untouched");

    // The log has each change, with the merged unit's before and after.
    let audit = admin.page(&app, "/admin/audit").await;
    let actions = audit_actions(&audit);
    for expected in ["unit.merge", "api_key.create", "api_key.revoke"] {
        assert!(
            actions.contains(&expected.to_string()),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(
        !actions.contains(&"unit.move".to_string()),
        "refused moves are not logged"
    );
    let merged: (Option<String>, Option<String>) = {
        let conn = &mut app.conn();
        db_run!(conn: {
            audit_events::table
                .filter(audit_events::action.eq("unit.merge"))
                .select((audit_events::old_value, audit_events::new_value))
                .first(conn)
        })
        .unwrap()
    };
    let old: Value = serde_json::from_str(merged.0.as_deref().unwrap()).unwrap();
    let new: Value = serde_json::from_str(merged.1.as_deref().unwrap()).unwrap();
    assert_eq!(old["valid_to"], Value::Null);
    assert_eq!(new["valid_to"], json!(yesterday.to_string()));
    assert_eq!(new["merged_into_id"], json!(an_hoa));
    assert!(
        csrf_in(&audit).len() > 20,
        "the log page is a staff page with sign-out"
    );
}

/// Ids in form actions `{prefix}{id}/...` of a page.
fn linked_forms(html: &str, prefix: &str) -> Vec<String> {
    let needle = format!("action=\"{prefix}");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.find('/').map(|end| rest[..end].to_string())
        })
        .collect()
}
