//! Importing paper answers typed elsewhere from CSV: one header row with `serial` and the
//! question codes (multi-choice options separated by `|`), one row per form. All or nothing per
//! file: every problem is reported with its row and column and nothing is stored; a file that was
//! imported before is recognised by its content and refused.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::entry::{self, EntryError, Typing};
use crate::accounts::{Actor, users};
use crate::db::DbConn;
use crate::db::schema::paper_imports;
use crate::db_run;
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::services::Services;

/// One problem in an imported file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImportProblem {
    /// 1-based line in the file (the header is line 1).
    pub row: usize,
    pub column: String,
    pub problem: String,
}

impl std::fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {}, column {}: {}",
            self.row, self.column, self.problem
        )
    }
}

#[derive(Debug)]
pub enum ImportError {
    /// No account has the typist's user name (nothing read).
    UnknownTypist(String),
    /// The file was imported before (nothing stored).
    AlreadyImported,
    /// Problems found (nothing stored).
    Invalid(Vec<ImportProblem>),
    Failed(AppError),
}

impl From<AppError> for ImportError {
    fn from(e: AppError) -> Self {
        ImportError::Failed(e)
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Failed(e.into())
    }
}

/// Use case: imports a file typed elsewhere as the account `typist` (a user name), returning
/// how many forms were stored (`sipas paper import`). A bulk load: one transaction on a pooled
/// connection for the whole file, not the group commit (see [`super::entry`]).
pub async fn import_file(
    services: &Services,
    typist: String,
    file_name: String,
    content: Vec<u8>,
) -> Result<usize, ImportError> {
    let (forms, offset) = (services.forms.clone(), services.policies.utc_offset);
    services
        .with_conn(move |conn| {
            let Some(user) = users::find_by_username(conn, &typist)? else {
                return Ok(Err(ImportError::UnknownTypist(typist)));
            };
            Ok(import(
                conn,
                &forms,
                &Actor::of(&user),
                &file_name,
                &content,
                offset,
            ))
        })
        .await?
}

/// Imports `content` as typed by `typist`; returns how many forms were stored.
pub fn import(
    conn: &mut DbConn,
    forms: &FormRegistry,
    typist: &Actor,
    file_name: &str,
    content: &[u8],
    utc_offset: chrono::FixedOffset,
) -> Result<usize, ImportError> {
    let digest = crate::forms::definition::hex(&Sha256::digest(content));
    let seen: i64 = db_run!(conn: { paper_imports::table.find(&digest).count().get_result(conn) })?;
    if seen > 0 {
        return Err(ImportError::AlreadyImported);
    }
    let text = String::from_utf8(
        content
            .strip_prefix("\u{feff}".as_bytes())
            .unwrap_or(content)
            .to_vec(),
    )
    .map_err(|_| {
        ImportError::Invalid(vec![ImportProblem {
            row: 1,
            column: "-".into(),
            problem: "the file is not UTF-8 text".into(),
        }])
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_string()).collect(),
        Err(e) => {
            return Err(ImportError::Invalid(vec![ImportProblem {
                row: 1,
                column: "-".into(),
                problem: e.to_string(),
            }]));
        }
    };
    let serial_col = header.iter().position(|h| h.eq_ignore_ascii_case("serial"));
    let mut problems = Vec::new();
    let Some(serial_col) = serial_col else {
        return Err(ImportError::Invalid(vec![ImportProblem {
            row: 1,
            column: "serial".into(),
            problem: "missing column `serial`".into(),
        }]));
    };
    let form = forms
        .latest("sipas")
        .ok_or_else(|| ImportError::Failed(AppError::Internal(anyhow::anyhow!("no SIPAS form"))))?;
    for (i, name) in header.iter().enumerate() {
        if i != serial_col && form.question(name).is_none() {
            problems.push(ImportProblem {
                row: 1,
                column: name.clone(),
                problem: "not a question code of the form".into(),
            });
        }
    }
    let mut rows = Vec::new();
    let mut seen_serials: HashMap<String, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(ImportProblem {
                    row: line,
                    column: "-".into(),
                    problem: e.to_string(),
                });
                continue;
            }
        };
        // The same edge rule as the web forms: no control character but tab and line breaks
        // (PostgreSQL would refuse a NUL halfway through the import).
        let mut bad_text = false;
        for (column, cell) in header.iter().zip(record.iter()) {
            if let Some(c) = crate::text::forbidden_char(cell, crate::text::Lines::Multi) {
                bad_text = true;
                problems.push(ImportProblem {
                    row: line,
                    column: column.clone(),
                    problem: format!("control character U+{:04X} not allowed", c as u32),
                });
            }
        }
        if bad_text {
            continue;
        }
        let raw_serial = record.get(serial_col).unwrap_or_default().to_string();
        if let Some(first) = seen_serials.insert(raw_serial.trim().to_uppercase(), line) {
            problems.push(ImportProblem {
                row: line,
                column: "serial".into(),
                problem: format!("the same form as row {first}"),
            });
        }
        let paper = match entry::find(conn, forms, typist, &raw_serial) {
            Ok(p) => p,
            Err(_) => {
                problems.push(ImportProblem {
                    row: line,
                    column: "serial".into(),
                    problem: format!("`{raw_serial}` is not an issued form of your organisation"),
                });
                continue;
            }
        };
        let mut answers = Vec::new();
        for (c, value) in record.iter().enumerate() {
            if c == serial_col || value.trim().is_empty() {
                continue;
            }
            for part in value.split('|') {
                answers.push((header[c].clone(), part.trim().to_string()));
            }
        }
        match crate::forms::answers::validate(&paper.form, &answers) {
            Ok(_) => rows.push((line, paper, answers)),
            Err(found) => {
                for (code, problem) in found {
                    problems.push(ImportProblem {
                        row: line,
                        column: code,
                        problem: problem.message().en,
                    });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    let stored = rows.len();
    conn.write_transaction(|conn| -> Result<(), ImportError> {
        let now = crate::db::now();
        for (line, paper, answers) in &rows {
            let typing = Typing {
                answers: answers.clone(),
                confirm_blank: true,
                started_at: now,
                keystrokes: 0,
            };
            match entry::save(conn, typist, paper, &typing, utc_offset) {
                Ok(_) => {}
                Err(EntryError::Invalid(_, issues)) => {
                    let problems = issues
                        .into_iter()
                        .map(|(c, m)| ImportProblem {
                            row: *line,
                            column: c,
                            problem: m.en,
                        })
                        .collect();
                    return Err(ImportError::Invalid(problems));
                }
                Err(EntryError::Other(e)) => {
                    let message = e.user_message().en;
                    return Err(ImportError::Invalid(vec![ImportProblem {
                        row: *line,
                        column: "serial".into(),
                        problem: message,
                    }]));
                }
            }
        }
        db_run!(conn: {
            diesel::insert_into(paper_imports::table)
                .values((
                    paper_imports::content_sha256.eq(&digest),
                    paper_imports::file_name.eq(file_name),
                    paper_imports::typist_id.eq(typist.account_id()),
                    paper_imports::rows.eq(stored as i64),
                    paper_imports::imported_at.eq(now),
                ))
                .execute(conn)
        })?;
        crate::audit::record(
            conn,
            &typist.audit(),
            "paper.import",
            "paper_import",
            &digest,
            None,
            Some(serde_json::json!({ "file": file_name, "rows": stored })),
        )?;
        Ok(())
    })?;
    Ok(stored)
}

/// A message for people, in both languages.
pub fn describe(error: &ImportError) -> Msg {
    match error {
        ImportError::UnknownTypist(name) => Msg::new(
            format!("Không có người dùng `{name}`."),
            format!("No user `{name}`."),
        ),
        ImportError::AlreadyImported => Msg::new(
            "Tệp này đã được nhập trước đây; không nhập lại.",
            "This file was imported before; it is not imported again.",
        ),
        ImportError::Invalid(p) => Msg::new(
            format!("Tệp có {} lỗi; chưa nhập phiếu nào.", p.len()),
            format!("The file has {} problems; nothing was imported.", p.len()),
        ),
        ImportError::Failed(e) => e.user_message(),
    }
}
