//! Edge security (issue #14, points 2 and 8): the client address behind reverse proxies and the
//! survey limiter's keys, where staff posts must come from, what a collector organisation may
//! read, and one session per browser.

use sipas::accounts::Role;
use sipas::audit::Actor;
use sipas::config::Settings;
use sipas::paper::custody::{self, BatchRequest};
use sipas::paper::sampling::{self, SampleRequest};

use crate::helpers::TestApp;
use crate::helpers::staff::{
    TEST_PASSWORD, browser, create_user, csrf_in, location, login_attempt, set_cookie, sign_in,
    sign_in_admin, unit_id,
};

crate::on_both_databases!(
    a_client_behind_a_trusted_proxy_stays_limited => behind_loopback_proxy,
    an_ipv6_client_is_limited_by_its_64_prefix => behind_loopback_proxy,
    the_sign_in_limit_counts_the_same_client_address => behind_loopback_proxy,
    the_deprecated_flag_still_trusts_loopback_proxies => deprecated_flag,
    forwarding_headers_from_an_untrusted_peer_are_ignored => behind_another_proxy,
    staff_posts_must_come_from_the_site => behind_another_proxy,
    a_trusted_proxy_may_name_the_public_host => proxied_public_host,
);
crate::on_both_databases!(
    collectors_see_only_their_own_organisations_work,
    signing_in_again_ends_the_browsers_previous_session,
);

const LIMIT: u32 = 20;

/// Loopback is the reverse proxy: the test client connects from 127.0.0.1.
fn behind_loopback_proxy(s: &mut Settings) {
    s.survey_rate_per_minute = LIMIT;
    s.trusted_proxies = "127.0.0.0/8, ::1".parse().expect("proxy list");
}

/// `SIPAS_TRUST_PROXY=true`, kept as an alias for trusting loopback proxies.
fn deprecated_flag(s: &mut Settings) {
    s.survey_rate_per_minute = LIMIT;
    s.trust_proxy = true;
}

/// A proxy is configured, but the test client (127.0.0.1) is not it.
fn behind_another_proxy(s: &mut Settings) {
    s.survey_rate_per_minute = LIMIT;
    s.trusted_proxies = "10.20.30.40, 192.0.2.0/24, 2001:db8::/32"
        .parse()
        .expect("proxy list");
}

/// Behind a trusted loopback proxy that tells the host name the browser used.
fn proxied_public_host(s: &mut Settings) {
    s.trusted_proxies = "127.0.0.1".parse().expect("proxy list");
}

/// Sends up to 60 survey requests, the `i`-th with `headers(i)`; how many were served before
/// the first 429.
async fn served_before_refusal(
    app: &TestApp,
    url: &str,
    headers: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> usize {
    for i in 0..60 {
        let mut request = app.client.get(url);
        for (name, value) in headers(i) {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("request");
        match response.status().as_u16() {
            200 => {}
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                return i;
            }
            other => panic!("request {i}: status {other}"),
        }
    }
    60
}

async fn survey_url(app: &TestApp, dossier: &str) -> String {
    app.issue_survey(dossier, None).await["survey_url"]
        .as_str()
        .expect("survey url")
        .to_string()
}

fn assert_limited(served: usize, what: &str) {
    assert!(
        (LIMIT as usize..=LIMIT as usize + 5).contains(&served),
        "{what}: {served} of 60 requests served with a limit of {LIMIT} per minute"
    );
}

async fn a_client_behind_a_trusted_proxy_stays_limited(app: TestApp) {
    let url = survey_url(&app, "HS-EDGE-XFF").await;
    // The proxy appends the address it saw (203.0.113.7); the client prepends made-up ones,
    // in X-Forwarded-For and in RFC 7239 `Forwarded`.
    let served = served_before_refusal(&app, &url, |i| {
        vec![
            (
                "X-Forwarded-For",
                format!("198.51.100.{i}, 10.0.0.{i}, 203.0.113.7"),
            ),
            ("Forwarded", format!("for=198.51.100.{i}")),
        ]
    })
    .await;
    assert_limited(served, "prepended X-Forwarded-For entries");
    // Another client behind the same proxy has its own budget.
    let other = served_before_refusal(&app, &url, |_| {
        vec![("X-Forwarded-For", "203.0.113.8".to_string())]
    })
    .await;
    assert_limited(other, "a second client behind the proxy");
    // A chain of trusted proxies: the right-most address that is not a proxy is the client.
    let chained = served_before_refusal(&app, &url, |i| {
        vec![(
            "X-Forwarded-For",
            format!("198.51.100.{i}, 203.0.113.9, 127.0.0.5"),
        )]
    })
    .await;
    assert_limited(chained, "a client behind two trusted proxies");
}

async fn an_ipv6_client_is_limited_by_its_64_prefix(app: TestApp) {
    let url = survey_url(&app, "HS-EDGE-V6").await;
    // Every request from another address of the same /64.
    let served = served_before_refusal(&app, &url, |i| {
        vec![(
            "X-Forwarded-For",
            format!("2001:db8:1:2:{:x}:{:x}::1", (i * 7919) % 0xffff, i),
        )]
    })
    .await;
    assert_limited(served, "addresses of one IPv6 /64");
    // RFC 7239 form of an IPv6 address with a port; another /64 has its own budget.
    let other = served_before_refusal(&app, &url, |i| {
        vec![(
            "Forwarded",
            format!("for=\"[2001:db8:1:3::{:x}]:4711\"", i + 1),
        )]
    })
    .await;
    assert_limited(other, "Forwarded: for=\"[v6]:port\" of another /64");
}

/// One failed sign-in for a made-up account, sent through the proxy with `forwarded_for`; whether
/// the address limit refused it.
async fn refused_for_address(app: &TestApp, username: &str, forwarded_for: &str) -> bool {
    let client = browser();
    let page = client.get(app.url("/login")).send().await.unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let response = client
        .post(app.url("/login"))
        .header("X-Forwarded-For", forwarded_for)
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", "not-the-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    response.text().await.unwrap().contains("quá nhiều lần")
}

async fn the_sign_in_limit_counts_the_same_client_address(app: TestApp) {
    let limit = sipas::accounts::login_limit::MAX_PER_ADDRESS as usize;
    for i in 0..limit {
        let spoofed = format!("198.51.100.{i}, 203.0.113.7");
        assert!(
            !refused_for_address(&app, &format!("nobody-{i}"), &spoofed).await,
            "attempt {i} is within the limit"
        );
    }
    assert!(
        refused_for_address(&app, "nobody-last", "198.51.100.250, 203.0.113.7").await,
        "prepended X-Forwarded-For entries do not reset the per-address sign-in limit"
    );
    assert!(!refused_for_address(&app, "nobody-else", "203.0.113.8").await);
}

async fn the_deprecated_flag_still_trusts_loopback_proxies(app: TestApp) {
    let url = survey_url(&app, "HS-EDGE-FLAG").await;
    let served = served_before_refusal(&app, &url, |i| {
        vec![("X-Forwarded-For", format!("198.51.100.{i}, 203.0.113.7"))]
    })
    .await;
    assert_limited(served, "SIPAS_TRUST_PROXY=true with prepended entries");
    let other = served_before_refusal(&app, &url, |_| {
        vec![("X-Forwarded-For", "203.0.113.8".to_string())]
    })
    .await;
    assert_limited(other, "the alias still reads the proxy's entry");
}

async fn forwarding_headers_from_an_untrusted_peer_are_ignored(app: TestApp) {
    let url = survey_url(&app, "HS-EDGE-SPOOF").await;
    let served = served_before_refusal(&app, &url, |i| {
        vec![
            ("X-Forwarded-For", format!("198.51.100.{i}")),
            ("Forwarded", format!("for=198.51.100.{i}")),
            ("X-Real-IP", format!("198.51.100.{i}")),
        ]
    })
    .await;
    assert_limited(served, "spoofed forwarding headers from an untrusted peer");
}

/// Posts a new unit as `admin` with the session's token and the given extra headers.
async fn post_unit(
    app: &TestApp,
    admin: &crate::helpers::staff::Staff,
    code: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = admin.csrf(app).await;
    let mut request = admin.client.post(app.url("/admin/units")).form(&[
        ("csrf", csrf.as_str()),
        ("code", code),
        ("name_vi", "Đơn vị thử"),
        ("name_en", "Test unit"),
        ("kind", "department"),
        ("parent", "SON-HA"),
        ("valid_from", "2020-01-01"),
    ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

fn unit_exists(app: &TestApp, code: &str) -> bool {
    sipas::units::find_by_code(&mut app.conn(), code)
        .unwrap()
        .is_some()
}

async fn staff_posts_must_come_from_the_site(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    let own_page = app.url("/admin/units");

    let bare = post_unit(&app, &admin, "EDGE-BARE", &[]).await;
    assert_eq!(bare.status(), 403, "neither Origin nor Referer");
    let text = bare.text().await.unwrap();
    assert!(text.contains("thiếu Origin và Referer"), "{text}");
    assert!(!unit_exists(&app, "EDGE-BARE"));

    for (what, code, headers) in [
        (
            "a foreign Origin with a made-up X-Forwarded-Host",
            "EDGE-XFH",
            vec![
                ("Origin", "http://evil.example"),
                ("X-Forwarded-Host", "evil.example"),
            ],
        ),
        (
            "a foreign Origin with a made-up Forwarded host",
            "EDGE-FWD",
            vec![
                ("Origin", "http://evil.example"),
                ("Forwarded", "host=evil.example;proto=http"),
            ],
        ),
        ("Origin: null", "EDGE-NULL", vec![("Origin", "null")]),
    ] {
        let response = post_unit(&app, &admin, code, &headers).await;
        assert_eq!(response.status(), 403, "{what}");
        assert!(!unit_exists(&app, code), "{what}");
    }

    let with_origin = post_unit(&app, &admin, "EDGE-ORIGIN", &[("Origin", &app.base)]).await;
    assert_eq!(with_origin.status(), 303, "the site's own Origin");
    let with_referer = post_unit(&app, &admin, "EDGE-REF", &[("Referer", &own_page)]).await;
    assert_eq!(with_referer.status(), 303, "the site's own page as Referer");
    assert!(unit_exists(&app, "EDGE-ORIGIN") && unit_exists(&app, "EDGE-REF"));

    // The counter API (Bearer key) and the citizen's survey form need no Origin.
    let issued = app.issue_survey("HS-EDGE-NO-ORIGIN", None).await;
    assert!(issued["survey_url"].is_string(), "{issued}");
}

async fn a_trusted_proxy_may_name_the_public_host(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    // The published origin is accepted whatever the proxy says.
    let published = post_unit(&app, &admin, "EDGE-PUB", &[("Origin", &app.base)]).await;
    assert_eq!(published.status(), 303);
    // The name the trusted proxy says the browser used.
    let forwarded = post_unit(
        &app,
        &admin,
        "EDGE-ALIAS",
        &[
            ("Origin", "https://khaosat.sonha.vn"),
            ("X-Forwarded-Host", "khaosat.sonha.vn"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .await;
    assert_eq!(forwarded.status(), 303, "X-Forwarded-Host from the proxy");
    let rfc7239 = post_unit(
        &app,
        &admin,
        "EDGE-RFC",
        &[
            ("Origin", "https://khaosat.sonha.vn"),
            (
                "Forwarded",
                "for=203.0.113.7;host=khaosat.sonha.vn;proto=https",
            ),
        ],
    )
    .await;
    assert_eq!(rfc7239.status(), 303, "Forwarded: host= from the proxy");
    let foreign = post_unit(
        &app,
        &admin,
        "EDGE-EVIL",
        &[
            ("Origin", "https://evil.example"),
            ("X-Forwarded-Host", "khaosat.sonha.vn"),
        ],
    )
    .await;
    assert_eq!(foreign.status(), 403);
    assert!(!unit_exists(&app, "EDGE-EVIL"));
}

// ---------------------------------------------------------------- collector organisations

struct Paper {
    sample: String,
    /// A sample none of whose units was handed to anyone.
    unhanded: String,
    stp: String,
    sxd: String,
    batch_a: String,
    batch_b: String,
    serial_b: String,
    dossiers_b: Vec<String>,
}

fn hand_out(app: &TestApp) -> Paper {
    super::paper::prepare(app);
    let conn = &mut app.conn();
    let offset = app.state.settings.utc_offset_value().unwrap();
    let draw = |conn: &mut sipas::db::DbConn, period: &str, seed| {
        let request = SampleRequest {
            unit_codes: vec!["STP".into(), "SXD".into()],
            quota: Some(3),
            reserve_share: 0.0,
            by_procedure: false,
            ..super::paper::request(period, seed)
        };
        sampling::draw(
            conn,
            &app.state.secret,
            &app.state.forms,
            &Actor::cli(),
            &request,
            offset,
        )
        .unwrap()
    };
    let sample = draw(conn, "P1", 41);
    let unhanded = draw(conn, "P2", 42);
    let post = sipas::collector_orgs::find_by_code(conn, "BUU-DIEN")
        .unwrap()
        .unwrap();
    let other = sipas::collector_orgs::create(
        conn,
        &Actor::cli(),
        "VN-POST-2",
        "Bưu chính thứ hai",
        "Second post",
    )
    .unwrap();
    let (stp, sxd) = (unit_id(app, "STP"), unit_id(app, "SXD"));
    let batch = |conn: &mut sipas::db::DbConn, unit: &str, org: &str| {
        custody::create_batch(
            conn,
            &Actor::cli(),
            &BatchRequest {
                sample_id: sample.id.clone(),
                unit_id: unit.to_string(),
                collector_org_id: org.to_string(),
                collector_name: "Người phát".into(),
                include_reserve: false,
                double_share: 0.0,
            },
        )
        .unwrap()
    };
    let batch_a = batch(conn, &stp, &post.id);
    let batch_b = batch(conn, &sxd, &other.id);
    let rows_b = sampling::worklist(conn, &sample.id, Some(&sxd)).unwrap();
    Paper {
        sample: sample.id.clone(),
        unhanded: unhanded.id.clone(),
        stp,
        sxd,
        batch_a: batch_a.id,
        batch_b: batch_b.id,
        serial_b: rows_b[0].serial.clone(),
        dossiers_b: rows_b.into_iter().map(|r| r.dossier_code).collect(),
    }
}

async fn collectors_see_only_their_own_organisations_work(app: TestApp) {
    let p = hand_out(&app);
    create_user(&app, "thu-a", Role::Collector, None, Some("BUU-DIEN"));
    create_user(&app, "thu-b", Role::Collector, None, Some("VN-POST-2"));
    let a = sign_in(&app, "thu-a", TEST_PASSWORD).await;
    let b = sign_in(&app, "thu-b", TEST_PASSWORD).await;

    // Their own units: the worklist, the sample page and the printable forms.
    let csv = a
        .page(&app, &format!("/paper/samples/{}/worklist.csv", p.sample))
        .await;
    assert!(csv.contains(",STP,"), "{csv}");
    for dossier in &p.dossiers_b {
        assert!(
            !csv.contains(dossier.as_str()),
            "another organisation's dossier {dossier} in the worklist:\n{csv}"
        );
    }
    assert!(!csv.contains(",SXD,"), "{csv}");
    let page = a.page(&app, &format!("/paper/samples/{}", p.sample)).await;
    assert!(page.contains(&format!("unit={}", p.stp)));
    assert!(!page.contains(&format!("unit={}", p.sxd)), "{page}");
    a.page(
        &app,
        &format!("/paper/samples/{}/forms?unit={}", p.sample, p.stp),
    )
    .await;

    // Anything of the other organisation is "not found".
    for path in [
        format!("/paper/samples/{}/worklist.csv?unit={}", p.sample, p.sxd),
        format!("/paper/samples/{}/forms?unit={}", p.sample, p.sxd),
        format!("/paper/samples/{}", p.unhanded),
        format!("/paper/samples/{}/worklist.csv", p.unhanded),
        format!("/paper/samples/{}/forms?unit={}", p.unhanded, p.stp),
        format!("/paper/batches/{}", p.batch_b),
        format!("/paper/entry/{}", p.serial_b),
        format!("/paper/disputes/{}", p.serial_b),
    ] {
        let response = a.get(&app, &path).await;
        assert_eq!(response.status(), 404, "collector A: GET {path}");
    }
    let home = a.page(&app, "/collector").await;
    assert!(home.contains(&p.sample) && !home.contains(&p.unhanded));
    let batches = a.page(&app, "/paper/batches").await;
    assert!(batches.contains(&p.batch_a) && !batches.contains(&p.batch_b));
    assert!(!batches.contains(&p.unhanded), "unhanded samples offered");
    // A collector cannot hand itself a unit nobody gave it.
    let csrf = a.csrf(&app).await;
    let taken = a
        .client
        .post(app.url("/paper/batches"))
        .header("Origin", &app.base)
        .form(&[
            ("csrf", csrf.as_str()),
            ("sample", p.unhanded.as_str()),
            ("unit", "SXD"),
            ("collector_name", "Tự nhận"),
            ("include_reserve", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 404, "a batch of a unit not handed over");

    // The other organisation sees its unit and not A's.
    let csv_b = b
        .page(&app, &format!("/paper/samples/{}/worklist.csv", p.sample))
        .await;
    assert!(
        csv_b.contains(",SXD,") && !csv_b.contains(",STP,"),
        "{csv_b}"
    );
    assert_eq!(
        b.get(&app, &format!("/paper/batches/{}", p.batch_a))
            .await
            .status(),
        404
    );

    // Administrators see everything.
    let admin = sign_in_admin(&app).await;
    let all = admin
        .page(&app, &format!("/paper/samples/{}/worklist.csv", p.sample))
        .await;
    assert!(all.contains(",STP,") && all.contains(",SXD,"));
    admin
        .page(&app, &format!("/paper/samples/{}", p.unhanded))
        .await;
}

// ---------------------------------------------------------------- sessions

fn session_cookie(response: &reqwest::Response) -> String {
    let line = set_cookie(response, sipas::accounts::sessions::COOKIE_NAME)
        .expect("sign-in sets the session cookie");
    line.split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// GET /admin with only this session cookie: 200 while it lives.
async fn admin_page_with(app: &TestApp, session: &str) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/admin"))
        .header(
            "Cookie",
            format!("{}={session}", sipas::accounts::sessions::COOKIE_NAME),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn signing_in_again_ends_the_browsers_previous_session(app: TestApp) {
    let password = crate::helpers::staff::admin_password(&app);
    let first = sign_in(&app, sipas::demo::ADMIN, &password).await;
    let elsewhere = sign_in(&app, sipas::demo::ADMIN, &password).await;
    assert_eq!(admin_page_with(&app, &first.session).await, 200);

    // The same browser signs in again: it presents its old cookie, which ends.
    let again = login_attempt(&app, &first.client, sipas::demo::ADMIN, &password).await;
    assert_eq!(again.status(), 303);
    let second = session_cookie(&again);
    assert_ne!(second, first.session);
    let old = admin_page_with(&app, &first.session).await;
    assert_eq!(old, 303, "the previous session of this browser has ended");
    assert_eq!(admin_page_with(&app, &second).await, 200);
    // Another browser's session is its own.
    assert_eq!(admin_page_with(&app, &elsewhere.session).await, 200);

    // A refused sign-in ends nothing; a sign-in as someone else ends the old session too.
    create_user(&app, "can-bo-2", Role::Agency, Some("STP"), None);
    let refused = login_attempt(&app, &first.client, "can-bo-2", "wrong-password").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(admin_page_with(&app, &second).await, 200);
    let other = login_attempt(&app, &first.client, "can-bo-2", TEST_PASSWORD).await;
    assert_eq!(other.status(), 303);
    assert_eq!(location(&other).as_deref(), Some("/agency"));
    assert_eq!(admin_page_with(&app, &second).await, 303);

    // The sign-in form itself still works for a fresh browser.
    let fresh = browser();
    let form = fresh.get(app.url("/login")).send().await.unwrap();
    assert!(!csrf_in(&form.text().await.unwrap()).is_empty());
}
