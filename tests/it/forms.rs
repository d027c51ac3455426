//! Survey forms at start-up and from the command line; database URL and migration checks.

use std::process::Command;

use crate::helpers::{Backend, TestApp, forms_dir, full_answers, test_settings};

fn sipas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipas"))
}

#[test]
fn forms_check_accepts_the_shipped_forms() {
    let out = sipas()
        .args(["forms", "check", "--dir"])
        .arg(forms_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sipas v1") && stdout.contains("transaction v1"),
        "{stdout}"
    );
}

#[test]
fn forms_check_names_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(forms_dir().join("transaction-v1.toml")).unwrap();
    let broken = source.replacen("type = \"scale3\"", "type = \"stars\"", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("\"stars\""))
        .unwrap()
        + 1;
    std::fs::write(dir.path().join("broken.toml"), broken).unwrap();
    let out = sipas()
        .args(["forms", "check", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("broken.toml:{line}:")), "{stderr}");
    assert!(stderr.contains("stars"), "{stderr}");
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["demo", "--help"],
        vec!["forms", "check", "--help"],
        vec!["units", "list", "--help"],
        vec!["procedures", "list", "--help"],
        vec!["api-key", "create", "--help"],
    ] {
        let out = sipas().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn a_bad_database_url_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = sipas()
        .current_dir(dir.path())
        .env("DATABASE_URL", "data/sipas.db")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file was created"
    );
}

#[test]
fn cli_creates_api_keys_and_lists_units() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let run = |args: &[&str]| {
        let out = sipas()
            .env("DATABASE_URL", &url)
            .env("SIPAS_FORMS_DIR", forms_dir())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run(&["demo"]);
    let second = run(&["demo"]);
    assert_eq!(first, second, "demo can be run again without harm");
    let units = run(&["units", "list"]);
    assert!(units.lines().any(|l| l.starts_with("STP\t")));
    assert!(
        run(&["procedures", "list"])
            .lines()
            .any(|l| l.starts_with("LLTP-01\t"))
    );
    let key = run(&["api-key", "create", "--unit", "STP"]);
    assert_eq!(key.lines().count(), 1, "only the key on stdout");
    assert!(key.starts_with("sipas_"));
}

fn change_title(dir: &std::path::Path) {
    let path = dir.join("tinh-v1.toml");
    let source = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        source.replacen(
            "Đánh giá việc giải quyết hồ sơ",
            "Đánh giá hồ sơ (đã sửa)",
            1,
        ),
    )
    .unwrap();
}

/// A form version with responses can no longer change; one without responses can. The form is
/// a province's own (`tinh`, from the forms folder): built-in versions never change at all.
async fn immutability(backend: Backend) {
    let forms = tempfile::tempdir().unwrap();
    let source = std::fs::read_to_string(forms_dir().join("transaction-v1.toml")).unwrap();
    std::fs::write(
        forms.path().join("tinh-v1.toml"),
        source.replacen("code = \"transaction\"", "code = \"tinh\"", 1),
    )
    .unwrap();
    let dir = forms.path().to_path_buf();
    let app = TestApp::spawn_with(backend, |s| s.forms_dir = dir.clone()).await;
    let mut settings = test_settings(&app.database_url);
    settings.forms_dir = dir.clone();

    change_title(&dir);
    assert!(
        sipas::prepare(&settings).is_ok(),
        "no responses yet: the change is accepted"
    );

    let issued = app.issue_survey("HS-IMM", Some("tinh")).await;
    let fields = full_answers(&app.state.forms.latest("tinh").unwrap());
    assert_eq!(
        app.submit(issued["survey_url"].as_str().unwrap(), &fields)
            .await
            .status(),
        200
    );
    let path = dir.join("tinh-v1.toml");
    let source = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, source.replacen("(đã sửa)", "(sửa lần hai)", 1)).unwrap();
    let err = sipas::prepare(&settings)
        .err()
        .expect("a changed answered version is refused")
        .to_string();
    assert!(err.contains("tinh") && err.contains("version = 2"), "{err}");

    // A new version next to it is fine, and becomes the one issued.
    std::fs::write(&path, source).unwrap();
    let v2 = source_with_version(&std::fs::read_to_string(&path).unwrap(), 2);
    std::fs::write(dir.join("tinh-v2.toml"), v2).unwrap();
    let (_, registry, _) = sipas::prepare(&settings).expect("new version loads");
    assert_eq!(registry.latest("tinh").unwrap().version, 2);
    assert!(
        registry.get("tinh", 1).is_some(),
        "old version still readable"
    );
}

fn source_with_version(source: &str, version: i64) -> String {
    source.replacen("version = 1", &format!("version = {version}"), 1)
}

#[actix_web::test]
async fn answered_form_versions_are_immutable_sqlite() {
    immutability(Backend::Sqlite).await;
}

#[actix_web::test]
async fn answered_form_versions_are_immutable_postgres() {
    if let Some(backend) = Backend::postgres() {
        immutability(backend).await;
    }
}
