//! The survey forms shipped in `survey-forms/`, compiled into the binary by `build.rs`: a
//! release binary copied alone to a server has them, with no folder to carry along. A folder
//! (`SIPAS_FORMS_DIR`) can still add new versions or a province's own forms next to them.

use super::definition::{Form, FormError, parse};

include!(concat!(env!("OUT_DIR"), "/embedded_forms.rs"));

/// How embedded files are named in messages, e.g. `(built in) sipas-v1.toml`.
pub fn label(file: &str) -> String {
    format!("(built in) {file}")
}

/// Parses every embedded form (they are validated by the tests, so an error here means a
/// broken build).
pub fn forms() -> Result<Vec<Form>, Vec<FormError>> {
    let mut forms = Vec::with_capacity(FILES.len());
    let mut errors = Vec::new();
    for (file, source) in FILES {
        match parse(&label(file), source) {
            Ok(form) => forms.push(form),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(forms)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_form_is_embedded_and_valid() {
        let forms = forms().expect("embedded forms parse");
        let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/survey-forms"))
            .expect("source folder")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml"))
            })
            .count();
        assert_eq!(forms.len(), on_disk);
        for code in ["sipas", "transaction"] {
            assert!(forms.iter().any(|f| f.code == code), "{code} is embedded");
        }
    }
}
