//! Re-embed migrations whenever they change (diesel's `embed_migrations!` reads them at build time).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
