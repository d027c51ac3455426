//! Access is declared once: every route the service registers (`web::resource(…)` with its
//! `.route(…)` methods, wherever under `src/web` it is declared) has exactly one rule in
//! `access::RULES`, and no rule names a route that is not registered. Read from the source, so
//! a route added without its rule (refused at run time, fail closed) fails here first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sipas::web::access::RULES;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literals at the start of `text` (one, or a `[…]` list of them).
fn patterns(text: &str) -> Vec<String> {
    let text = text.trim_start();
    let list = if text.starts_with('[') {
        &text[..text.find(']').expect("closing bracket")]
    } else {
        &text[..text.find(')').expect("closing parenthesis")]
    };
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The methods of the `.route(…)` calls in one resource's declaration.
fn methods(declaration: &str) -> Vec<&'static str> {
    declaration
        .split(".route(")
        .skip(1)
        .map(|call| {
            let guard = &call[..call.find(".to(").expect("route handler")];
            if guard.contains("post()") {
                "POST"
            } else if guard.contains("get()") || guard.contains("get_or_head()") {
                "GET"
            } else {
                panic!("a route with an unknown method: {guard}")
            }
        })
        .collect()
}

/// `(method, pattern)` of every registered route, with how many times it is registered.
fn registered_routes() -> BTreeMap<(&'static str, String), usize> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web"),
        &mut files,
    );
    let mut routes = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        for declaration in text.split("web::resource(").skip(1) {
            for method in methods(declaration) {
                for pattern in patterns(declaration) {
                    *routes.entry((method, pattern)).or_insert(0) += 1;
                }
            }
        }
    }
    routes
}

#[test]
fn the_route_reader_reads_resources_and_their_methods() {
    let declaration = r#"["/s/{token}", "/S/{token}"]).route(get_or_head().to(show)).route(web::post().to(submit)))"#;
    assert_eq!(patterns(declaration), ["/s/{token}", "/S/{token}"]);
    assert_eq!(methods(declaration), ["GET", "POST"]);
    assert_eq!(patterns(r#""/admin").route(get().to(page)))"#), ["/admin"]);
}

#[test]
fn every_route_has_exactly_one_rule_and_every_rule_a_route() {
    let routes = registered_routes();
    assert!(routes.len() > 100, "the routes are found: {}", routes.len());
    let mut rules: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for rule in RULES {
        *rules.entry((rule.method, rule.pattern)).or_insert(0) += 1;
    }
    let mut problems = Vec::new();
    for ((method, pattern), times) in &routes {
        if *times > 1 {
            problems.push(format!("{method} {pattern} is registered {times} times"));
        }
        match rules.get(&(*method, pattern.as_str())) {
            None => problems.push(format!("{method} {pattern} has no access rule")),
            Some(1) => {}
            Some(n) => problems.push(format!("{method} {pattern} has {n} access rules")),
        }
    }
    for (method, pattern) in rules.keys() {
        if !routes.contains_key(&(*method, pattern.to_string())) {
            problems.push(format!(
                "the rule {method} {pattern} names no registered route"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
