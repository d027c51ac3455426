//! The set of form versions the service knows, kept in step with the database.
//!
//! Files in `survey-forms/` are the source; every version ever loaded is also stored in the
//! database, so a version whose file was removed still renders and reports. A version that has
//! responses can never change: its file must be left alone and a new version written instead.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context, bail};
use diesel::prelude::*;

use super::definition::{Form, FormError, load_file, parse};
use crate::db::DbConn;
use crate::db::schema::{form_versions, responses};
use crate::db_run;

/// Every known form version, by code and version.
#[derive(Debug, Default)]
pub struct FormRegistry {
    forms: HashMap<(String, i64), Arc<Form>>,
    latest: BTreeMap<String, i64>,
    /// Versions another instance on the same database recorded after this one started (a
    /// rolling deployment of a new version), read from the database on first use by
    /// [`Self::find`]. They do not change what this instance issues ([`Self::latest`]).
    late: RwLock<HashMap<(String, i64), Arc<Form>>>,
}

impl FormRegistry {
    /// A version this instance has in memory (loaded at start or since by [`Self::find`]).
    pub fn get(&self, code: &str, version: i64) -> Option<Arc<Form>> {
        let key = (code.to_string(), version);
        if let Some(form) = self.forms.get(&key) {
            return Some(form.clone());
        }
        let late = self.late.read().unwrap_or_else(PoisonError::into_inner);
        late.get(&key).cloned()
    }

    /// A version by code and version, for anything a request reads (links, paper forms,
    /// stored answers): from memory, else the definition another instance stored in the
    /// database, kept from then on. `None` when the database has no such version, or its
    /// stored definition does not parse with this build (logged).
    pub fn find(
        &self,
        conn: &mut DbConn,
        code: &str,
        version: i64,
    ) -> QueryResult<Option<Arc<Form>>> {
        if let Some(form) = self.get(code, version) {
            return Ok(Some(form));
        }
        let source: Option<String> = db_run!(conn: {
            form_versions::table
                .find((code, version))
                .select(form_versions::source)
                .first(conn)
                .optional()
        })?;
        let Some(source) = source else {
            return Ok(None);
        };
        let name = format!("(database) {code} v{version}");
        let form = match parse(&name, &source) {
            Ok(form) if form.code == code && form.version == version => form,
            Ok(form) => {
                tracing::error!(form = %name, found = %format!("{} v{}", form.code, form.version), "stored form names another version");
                return Ok(None);
            }
            Err(e) => {
                tracing::error!(form = %name, error = %e, "stored form does not parse with this build");
                return Ok(None);
            }
        };
        tracing::info!(form = %name, "form version recorded by another instance loaded");
        let mut late = self.late.write().unwrap_or_else(PoisonError::into_inner);
        let form = late
            .entry((code.to_string(), version))
            .or_insert_with(|| Arc::new(form))
            .clone();
        Ok(Some(form))
    }

    /// The newest version of a form code: what new transactions are issued with.
    pub fn latest(&self, code: &str) -> Option<Arc<Form>> {
        let version = *self.latest.get(code)?;
        self.get(code, version)
    }

    pub fn codes(&self) -> impl Iterator<Item = &String> {
        self.latest.keys()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Form>> {
        self.forms.values()
    }

    fn insert(&mut self, form: Form) {
        let latest = self.latest.entry(form.code.clone()).or_insert(form.version);
        *latest = (*latest).max(form.version);
        self.forms
            .insert((form.code.clone(), form.version), Arc::new(form));
    }

    /// Loads every file of `dir`, records new versions in the database and refuses a changed
    /// file whose version already has responses.
    pub fn load_and_sync(dir: &Path, conn: &mut DbConn) -> anyhow::Result<Self> {
        let files = read_dir(dir).map_err(|errors| {
            anyhow::anyhow!(
                "survey forms are invalid:\n{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })?;
        let mut registry = Self::default();
        let stored: Vec<(String, i64, String, String)> = db_run!(conn: {
            form_versions::table
                .select((form_versions::form_code, form_versions::version, form_versions::content_sha256, form_versions::source))
                .load(conn)
        })?;
        let now = crate::db::now();
        for form in files {
            let existing = stored
                .iter()
                .find(|(c, v, _, _)| *c == form.code && *v == form.version);
            match existing {
                Some((_, _, sha, _)) if *sha == form.sha256 => {}
                Some(_) => {
                    let answered: i64 = db_run!(conn: {
                        responses::table
                            .filter(responses::form_code.eq(&form.code))
                            .filter(responses::form_version.eq(form.version))
                            .count()
                            .get_result(conn)
                    })?;
                    if answered > 0 {
                        bail!(
                            "survey form `{}` version {} was changed after {} responses were stored; \
                             restore the file and put the change in a new file with version = {}",
                            form.code,
                            form.version,
                            answered,
                            form.version + 1
                        );
                    }
                    db_run!(conn: {
                        diesel::update(form_versions::table.find((&form.code, form.version)))
                            .set((
                                form_versions::content_sha256.eq(&form.sha256),
                                form_versions::source.eq(&form.source),
                                form_versions::loaded_at.eq(now),
                            ))
                            .execute(conn)
                    })?;
                }
                None => {
                    db_run!(conn: {
                        diesel::insert_into(form_versions::table)
                            .values((
                                form_versions::form_code.eq(&form.code),
                                form_versions::version.eq(form.version),
                                form_versions::kind.eq(form.kind.as_str()),
                                form_versions::content_sha256.eq(&form.sha256),
                                form_versions::source.eq(&form.source),
                                form_versions::loaded_at.eq(now),
                            ))
                            .execute(conn)
                    })?;
                }
            }
            registry.insert(form);
        }
        for (code, version, _, source) in stored {
            if registry.get(&code, version).is_none() {
                let name = format!("(database) {code} v{version}");
                let form = parse(&name, &source)
                    .with_context(|| format!("stored form {name} no longer parses"))?;
                registry.insert(form);
            }
        }
        if registry.forms.is_empty() {
            bail!("no survey forms found in {}", dir.display());
        }
        Ok(registry)
    }
}

/// The built-in forms (see [`super::embedded`]) plus every `*.toml` in `dir`, validated, with
/// all errors collected. An empty `dir` means no folder (the default); a folder that was named
/// must exist. Two files claiming the same code and version are refused, and so is a folder file
/// with the code and version of a built-in form unless it is byte-for-byte the same: a version
/// never means two different questionnaires.
pub fn read_dir(dir: &Path) -> Result<Vec<Form>, Vec<FormError>> {
    let mut forms = super::embedded::forms()?;
    if dir.as_os_str().is_empty() {
        return Ok(forms);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![FormError {
            file: dir.display().to_string(),
            line: None,
            message: format!("cannot read folder: {e}"),
        }]
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let built_in = forms.len();
    let mut errors = Vec::new();
    let mut loaded = Vec::new();
    for path in paths {
        match load_file(&path) {
            Ok(form) => loaded.push((path, form)),
            Err(e) => errors.push(e),
        }
    }
    // What "a new version" means in messages: one above every version known, in either place.
    let next_version = |code: &str| {
        let known = forms.iter().chain(loaded.iter().map(|(_, f)| f));
        known
            .filter(|f| f.code == code)
            .map(|f| f.version)
            .max()
            .unwrap_or(0)
            + 1
    };
    let mut conflicts = Vec::new();
    for (path, form) in &loaded {
        if let Some(embedded) = forms[..built_in]
            .iter()
            .find(|f| f.code == form.code && f.version == form.version)
            && embedded.sha256 != form.sha256
        {
            conflicts.push(FormError {
                file: path.display().to_string(),
                line: None,
                message: format!(
                    "form `{}` version {} differs from the built-in form with the same code and version; \
                     a version never changes: put the change in a new file with version = {}",
                    form.code,
                    form.version,
                    next_version(&form.code)
                ),
            });
        }
    }
    errors.extend(conflicts);
    for (path, form) in loaded {
        let same = forms
            .iter()
            .position(|f| f.code == form.code && f.version == form.version);
        match same {
            None => forms.push(form),
            // Identical to a built-in form (e.g. a copy of survey-forms/), or reported above.
            Some(i) if i < built_in => {}
            Some(i) => errors.push(FormError {
                file: path.display().to_string(),
                line: None,
                message: format!(
                    "form `{}` version {} is also defined by another file (same code and version as {} v{})",
                    form.code, form.version, forms[i].code, forms[i].version
                ),
            }),
        }
    }
    if errors.is_empty() {
        Ok(forms)
    } else {
        Err(errors)
    }
}
