//! Re-embed migrations whenever they change (diesel's `embed_migrations!` reads them at build
//! time), and compile the shipped survey forms into the binary (`src/forms/embedded.rs`), so a
//! release binary copied alone to a server has them.
use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // A folder as rerun-if-changed: cargo reruns when any file in it is added, removed or edited.
    println!("cargo:rerun-if-changed=survey-forms");
    let dir = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("survey-forms");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("survey-forms/ is part of the source")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let mut out = String::from("/// (file name, content) of every shipped survey form.\n");
    out.push_str("pub static FILES: &[(&str, &str)] = &[\n");
    for name in &names {
        let path = dir.join(name);
        writeln!(out, "    ({name:?}, include_str!({:?})),", path.display()).expect("string");
    }
    out.push_str("];\n");
    let target = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets it"))
        .join("embedded_forms.rs");
    std::fs::write(target, out).expect("OUT_DIR is writable");
}
