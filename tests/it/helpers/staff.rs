//! Staff in the tests: signing in through the real form, the synchronizer token, posting
//! staff forms as a browser would, accounts made directly, and reading what pages show once
//! (secrets, alerts, redirects). Every test file that acts as staff uses these.

use diesel::prelude::*;
use sipas::accounts::{Role, users};
use sipas::audit::Actor;
use sipas::db::schema::audit_events;
use sipas::{collector_orgs, db_run, units};

use crate::helpers::TestApp;

/// A password that satisfies the policy for every username these tests create.
pub const TEST_PASSWORD: &str = "Mat-khau-thu-nghiem-2026";

/// A client that behaves like a browser: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// The demo administrator's password (loading the demo again changes nothing).
pub fn admin_password(app: &TestApp) -> String {
    sipas::demo::load(&mut app.conn(), &app.state.secret)
        .expect("demo loads")
        .admin_password
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The `value` of the first `<input name="{name}">` of a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let mut from = 0;
    while let Some(found) = html[from..].find(&needle) {
        let at = from + found;
        let start = html[..at].rfind('<')?;
        let end = at + html[at..].find('>')?;
        let tag = &html[start..end];
        if tag.starts_with("<input")
            && let Some(v) = tag.find("value=\"")
        {
            let rest = &tag[v + "value=\"".len()..];
            return Some(unescape(&rest[..rest.find('"')?]));
        }
        from = at + needle.len();
    }
    None
}

/// The synchronizer token of a page's forms.
pub fn csrf_in(html: &str) -> String {
    input_value(html, "csrf").unwrap_or_else(|| panic!("the page has no csrf field:\n{html}"))
}

fn element_text(html: &str, open: &str, close: &str) -> Option<String> {
    let start = html.find(open)? + open.len();
    let end = start + html[start..].find(close)?;
    Some(unescape(html[start..end].trim()))
}

/// The text of `<p class="secret">`: a password or key the page shows once.
pub fn secret_in(html: &str) -> Option<String> {
    element_text(html, "<p class=\"secret\">", "</p>")
}

/// The text of the page's alert box.
pub fn alert_in(html: &str) -> Option<String> {
    element_text(html, "<div class=\"alert\" role=\"alert\">", "</div>")
}

/// The `Location` header of a response.
pub fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The whole `Set-Cookie` line that sets `name`.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value of a `Set-Cookie` line (what a browser sends back).
pub fn cookie_value(line: &str) -> String {
    line.split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// Opens the sign-in form with `client` (getting its CSRF cookie) and posts the credentials.
pub async fn login_attempt(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let form = client
        .get(app.url("/login"))
        .send()
        .await
        .expect("GET /login");
    assert_eq!(form.status(), 200, "the sign-in form opens");
    let csrf = csrf_in(&form.text().await.expect("login page"));
    client
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("POST /login")
}

/// A signed-in person: a cookie-keeping client and the session cookie it holds.
pub struct Staff {
    pub client: reqwest::Client,
    /// The session cookie's value, to replay it after the client's jar dropped it.
    pub session: String,
    /// Where the sign-in sent this person.
    pub landed: String,
}

impl Staff {
    pub async fn get(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.client
            .get(app.url(path))
            .send()
            .await
            .expect("request")
    }

    /// A page that must open (200); its HTML.
    pub async fn page(&self, app: &TestApp, path: &str) -> String {
        let response = self.get(app, path).await;
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The session's synchronizer token (from a page every signed-in person may open).
    pub async fn csrf(&self, app: &TestApp) -> String {
        csrf_in(&self.page(app, "/account/password").await)
    }

    /// Posts a staff form with the session's token, as the page's own form would.
    pub async fn post(
        &self,
        app: &TestApp,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let csrf = self.csrf(app).await;
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(app.url(path))
            .header("Origin", &app.base)
            .form(&form)
            .send()
            .await
            .expect("request")
    }
}

/// Signs in through the form; panics unless the service answers with a session.
pub async fn sign_in(app: &TestApp, username: &str, password: &str) -> Staff {
    let client = browser();
    let response = login_attempt(app, &client, username, password).await;
    let status = response.status();
    let cookie = set_cookie(&response, sipas::accounts::sessions::COOKIE_NAME);
    let landed = location(&response).unwrap_or_default();
    assert_eq!(
        status,
        303,
        "{username} signs in: {}",
        response.text().await.unwrap_or_default()
    );
    let session = cookie_value(&cookie.expect("sign-in sets the session cookie"));
    Staff {
        client,
        session,
        landed,
    }
}

pub async fn sign_in_admin(app: &TestApp) -> Staff {
    sign_in(app, sipas::demo::ADMIN, &admin_password(app)).await
}

/// Creates an account directly (password [`TEST_PASSWORD`], no forced change).
pub fn create_user(
    app: &TestApp,
    username: &str,
    role: Role,
    unit_code: Option<&str>,
    org_code: Option<&str>,
) -> users::User {
    let conn = &mut app.conn();
    let unit_id = unit_code.map(|c| units::find_by_code(conn, c).unwrap().expect("unit").id);
    let org_id = org_code.map(|c| {
        collector_orgs::find_by_code(conn, c)
            .unwrap()
            .expect("collector org")
            .id
    });
    let input = users::UserInput {
        username: username.to_string(),
        display_name: format!("Cán bộ {username}"),
        role,
        unit_id,
        collector_org_id: org_id,
        active: true,
    };
    let user = users::create(conn, &Actor::cli(), &input, TEST_PASSWORD).expect("user created");
    users::clear_must_change(conn, username).expect("forced change lifted");
    user
}

pub fn unit_id(app: &TestApp, code: &str) -> String {
    units::find_by_code(&mut app.conn(), code)
        .unwrap()
        .unwrap_or_else(|| panic!("unit {code}"))
        .id
}

pub fn audit_count(app: &TestApp) -> i64 {
    let conn = &mut app.conn();
    db_run!(conn: { audit_events::table.count().get_result(conn) }).unwrap()
}
