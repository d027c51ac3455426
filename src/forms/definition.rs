//! Survey forms as data: parsing a TOML file into a validated [`Form`].
//!
//! Errors name the file, the line and the problem, because the people editing these files are
//! methodologists, not programmers.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

/// A text in both languages of the product.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct I18nText {
    pub vi: String,
    pub en: String,
}

impl I18nText {
    pub fn get(&self, lang: crate::i18n::Lang) -> &str {
        match lang {
            crate::i18n::Lang::Vi => &self.vi,
            crate::i18n::Lang::En => &self.en,
        }
    }
}

/// Which instrument a form belongs to; they feed different indices and are never mixed.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FormKind {
    /// Instrument B, the SIPAS questionnaire (anonymous, 5-level scale).
    Sipas,
    /// Instrument A, the per-dossier evaluation (3-level scale, Decision 766).
    Transaction,
}

impl FormKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sipas => "sipas",
            Self::Transaction => "transaction",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QuestionType {
    /// 1 Rất không hài lòng … 5 Rất hài lòng, plus 0 "không trả lời".
    Scale5,
    /// 1 Không hài lòng, 2 Hài lòng, 3 Rất hài lòng.
    Scale3,
    Choice,
    Multi,
    Text,
}

impl QuestionType {
    pub fn is_scale(self) -> bool {
        matches!(self, Self::Scale5 | Self::Scale3)
    }
}

/// Questions the software itself must find, whatever their code.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QuestionRole {
    Overall,
    RespondentType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceOption {
    pub code: String,
    pub label: I18nText,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub code: String,
    pub kind: QuestionType,
    pub text: I18nText,
    pub required: bool,
    pub weight: f64,
    pub role: Option<QuestionRole>,
    pub max_choices: usize,
    pub max_length: usize,
    pub options: Vec<ChoiceOption>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub code: String,
    pub title: I18nText,
    /// True for the sections whose items make up an index element.
    pub element: bool,
    pub weight: f64,
    pub questions: Vec<Question>,
}

/// One immutable version of a survey form.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub code: String,
    pub version: i64,
    pub kind: FormKind,
    pub title: I18nText,
    pub intro: Option<I18nText>,
    pub sections: Vec<Section>,
    /// The TOML text the form was read from, kept in the database so old versions stay readable.
    pub source: String,
    pub sha256: String,
}

impl Form {
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.sections.iter().flat_map(|s| s.questions.iter())
    }

    pub fn question(&self, code: &str) -> Option<&Question> {
        self.questions().find(|q| q.code == code)
    }

    pub fn question_with_role(&self, role: QuestionRole) -> Option<&Question> {
        self.questions().find(|q| q.role == Some(role))
    }
}

/// A problem in a form file, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for FormError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    code: Spanned<String>,
    version: Spanned<i64>,
    kind: FormKind,
    title: I18nText,
    intro: Option<I18nText>,
    sections: Vec<RawSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    code: Spanned<String>,
    title: I18nText,
    #[serde(default)]
    element: bool,
    weight: Option<f64>,
    questions: Vec<RawQuestion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    code: Spanned<String>,
    #[serde(rename = "type")]
    kind: QuestionType,
    text: I18nText,
    required: Option<bool>,
    weight: Option<f64>,
    role: Option<QuestionRole>,
    max_choices: Option<usize>,
    max_length: Option<usize>,
    options: Option<Vec<RawOption>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    code: Spanned<String>,
    label: I18nText,
}

/// Reads and validates one form file.
pub fn load_file(path: &Path) -> Result<Form, FormError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| FormError {
        file: file.clone(),
        line: None,
        message: format!("cannot read file: {e}"),
    })?;
    parse(&file, &source)
}

/// Parses and validates form source text; `file` only names it in errors.
pub fn parse(file: &str, source: &str) -> Result<Form, FormError> {
    let located = |span: Option<std::ops::Range<usize>>, message: String| FormError {
        file: file.to_string(),
        line: span.map(|s| line_of(source, s.start)),
        message,
    };
    let raw: RawForm = toml::from_str(source).map_err(|e| {
        let message = e.message().to_string();
        located(e.span(), message)
    })?;
    let mut checker = Checker {
        errors: Vec::new(),
        at: |span: std::ops::Range<usize>, msg: String| located(Some(span), msg),
    };
    let form = checker.form(raw, source);
    match checker.errors.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(form),
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

fn valid_code(code: &str, allow_upper: bool) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.chars().all(|c| {
            c.is_ascii_digit()
                || c.is_ascii_lowercase()
                || c == '_'
                || (allow_upper && c.is_ascii_uppercase())
        })
}

struct Checker<F> {
    errors: Vec<FormError>,
    at: F,
}

impl<F: Fn(std::ops::Range<usize>, String) -> FormError> Checker<F> {
    fn fail(&mut self, span: std::ops::Range<usize>, message: impl Into<String>) {
        self.errors.push((self.at)(span, message.into()));
    }

    fn form(&mut self, raw: RawForm, source: &str) -> Form {
        let form_code_ok = !raw.code.get_ref().is_empty()
            && raw.code.get_ref().len() <= 64
            && raw
                .code
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !form_code_ok {
            self.fail(
                raw.code.span(),
                "form code must be lowercase letters, digits, - or _",
            );
        }
        if *raw.version.get_ref() < 1 {
            self.fail(
                raw.version.span(),
                "version must be a whole number from 1 up",
            );
        }
        if raw.sections.is_empty() {
            self.fail(raw.code.span(), "a form needs at least one [[sections]]");
        }
        let mut section_codes = HashSet::new();
        let mut question_codes = HashSet::new();
        let mut sections = Vec::new();
        for raw_section in raw.sections {
            let span = raw_section.code.span();
            if !valid_code(raw_section.code.get_ref(), true) {
                self.fail(span.clone(), "section code must be letters, digits or _");
            }
            if !section_codes.insert(raw_section.code.get_ref().clone()) {
                self.fail(
                    span.clone(),
                    format!(
                        "section code `{}` is used twice",
                        raw_section.code.get_ref()
                    ),
                );
            }
            if raw_section.weight.is_some() && !raw_section.element {
                self.fail(
                    span.clone(),
                    "`weight` on a section is only allowed with element = true",
                );
            }
            let weight = raw_section.weight.unwrap_or(1.0);
            if !(weight.is_finite() && weight > 0.0) {
                self.fail(span.clone(), "section weight must be a positive number");
            }
            if raw_section.questions.is_empty() {
                self.fail(
                    span.clone(),
                    "a section needs at least one [[sections.questions]]",
                );
            }
            let mut questions = Vec::new();
            for raw_question in raw_section.questions {
                let q = self.question(
                    raw_question,
                    raw_section.element,
                    raw.kind,
                    &mut question_codes,
                );
                questions.push(q);
            }
            if raw_section.element && !questions.iter().any(|q| q.kind.is_scale()) {
                self.fail(span, "an element section needs at least one scale question");
            }
            sections.push(Section {
                code: raw_section.code.into_inner(),
                title: raw_section.title,
                element: raw_section.element,
                weight,
                questions,
            });
        }
        let form = Form {
            code: raw.code.get_ref().clone(),
            version: *raw.version.get_ref(),
            kind: raw.kind,
            title: raw.title,
            intro: raw.intro,
            sections,
            source: source.to_string(),
            sha256: hex(&Sha256::digest(source.as_bytes())),
        };
        let overall = form
            .questions()
            .filter(|q| q.role == Some(QuestionRole::Overall))
            .count();
        let expected_overall = match form.kind {
            FormKind::Sipas => QuestionType::Scale5,
            FormKind::Transaction => QuestionType::Scale3,
        };
        if overall != 1 {
            self.fail(
                raw.code.span(),
                "a form needs exactly one question with role = \"overall\"",
            );
        } else if let Some(q) = form.question_with_role(QuestionRole::Overall)
            && (q.kind != expected_overall || !q.required)
        {
            self.fail(
                raw.code.span(),
                format!(
                    "the overall question `{}` must be a required {:?} question in a {} form",
                    q.code,
                    expected_overall,
                    form.kind.as_str()
                ),
            );
        }
        if form
            .questions()
            .filter(|q| q.role == Some(QuestionRole::RespondentType))
            .count()
            > 1
        {
            self.fail(
                raw.code.span(),
                "only one question may have role = \"respondent_type\"",
            );
        }
        form
    }

    fn question(
        &mut self,
        raw: RawQuestion,
        in_element: bool,
        form_kind: FormKind,
        seen: &mut HashSet<String>,
    ) -> Question {
        let span = raw.code.span();
        let code = raw.code.get_ref().clone();
        if !valid_code(&code, true) {
            self.fail(span.clone(), "question code must be letters, digits or _");
        }
        if !seen.insert(code.clone()) {
            self.fail(
                span.clone(),
                format!("question code `{code}` is used twice in this form"),
            );
        }
        let kind = raw.kind;
        if kind == QuestionType::Scale5 && form_kind == FormKind::Transaction {
            self.fail(span.clone(), "a transaction form uses scale3, not scale5");
        }
        if kind == QuestionType::Scale3 && form_kind == FormKind::Sipas {
            self.fail(span.clone(), "a SIPAS form uses scale5, not scale3");
        }
        if raw.weight.is_some() && !(kind.is_scale() && in_element) {
            self.fail(
                span.clone(),
                "`weight` is only allowed on scale questions in element sections",
            );
        }
        let weight = raw.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0) {
            self.fail(span.clone(), "question weight must be a positive number");
        }
        let has_options = matches!(kind, QuestionType::Choice | QuestionType::Multi);
        let mut options = Vec::new();
        match (&raw.options, has_options) {
            (Some(_), false) => self.fail(
                span.clone(),
                "`options` are only allowed on choice and multi questions",
            ),
            (None, true) => self.fail(
                span.clone(),
                "choice and multi questions need [[sections.questions.options]]",
            ),
            _ => {}
        }
        let options_given = raw.options.is_some();
        let mut option_codes = HashSet::new();
        for raw_option in raw.options.unwrap_or_default() {
            let ospan = raw_option.code.span();
            if !valid_code(raw_option.code.get_ref(), false) {
                self.fail(
                    ospan.clone(),
                    "option code must be lowercase letters, digits or _",
                );
            }
            if !option_codes.insert(raw_option.code.get_ref().clone()) {
                self.fail(
                    ospan,
                    format!("option code `{}` is used twice", raw_option.code.get_ref()),
                );
            }
            options.push(ChoiceOption {
                code: raw_option.code.into_inner(),
                label: raw_option.label,
            });
        }
        if has_options && options.len() < 2 && options_given {
            self.fail(span.clone(), "a choice question needs at least two options");
        }
        let max_choices = match (kind, raw.max_choices) {
            (QuestionType::Multi, Some(n)) if n >= 1 && n <= options.len().max(1) => n,
            (QuestionType::Multi, Some(_)) => {
                self.fail(
                    span.clone(),
                    "max_choices must be between 1 and the number of options",
                );
                1
            }
            (QuestionType::Multi, None) => {
                self.fail(span.clone(), "a multi question needs max_choices");
                1
            }
            (_, Some(_)) => {
                self.fail(
                    span.clone(),
                    "max_choices is only allowed on multi questions",
                );
                0
            }
            (_, None) => {
                if kind == QuestionType::Choice {
                    1
                } else {
                    0
                }
            }
        };
        let max_length = match (kind, raw.max_length) {
            (QuestionType::Text, Some(n)) if (1..=10_000).contains(&n) => n,
            (QuestionType::Text, Some(_)) => {
                self.fail(span.clone(), "max_length must be between 1 and 10000");
                1
            }
            (QuestionType::Text, None) => {
                self.fail(span.clone(), "a text question needs max_length");
                1
            }
            (_, Some(_)) => {
                self.fail(span.clone(), "max_length is only allowed on text questions");
                0
            }
            (_, None) => 0,
        };
        if raw.role == Some(QuestionRole::RespondentType) {
            let codes: HashSet<&str> = options.iter().map(|o| o.code.as_str()).collect();
            let expected: HashSet<&str> = ["individual", "organisation"].into_iter().collect();
            if kind != QuestionType::Choice || codes != expected {
                self.fail(
                    span.clone(),
                    "the respondent_type question must be a choice with options `individual` and `organisation`",
                );
            }
        }
        let required = raw
            .required
            .unwrap_or(!matches!(kind, QuestionType::Multi | QuestionType::Text));
        Question {
            code,
            kind,
            text: raw.text,
            required,
            weight,
            role: raw.role,
            max_choices,
            max_length,
            options,
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
code = "t"
version = 1
kind = "transaction"
title = { vi = "Đánh giá", en = "Rating" }

[[sections]]
code = "T"
element = true
title = { vi = "Đánh giá", en = "Rating" }

[[sections.questions]]
code = "OVERALL"
type = "scale3"
role = "overall"
text = { vi = "Hài lòng?", en = "Satisfied?" }
"#;

    #[test]
    fn minimal_form_loads_with_defaults() {
        let form = parse("t.toml", MINIMAL).unwrap();
        assert_eq!(form.code, "t");
        let q = form.question("OVERALL").unwrap();
        assert!(q.required);
        assert_eq!(q.weight, 1.0);
        assert_eq!(form.sha256.len(), 64);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let broken = MINIMAL.replace("type = \"scale3\"", "type = scale3");
        let err = parse("broken.toml", &broken).unwrap_err();
        assert_eq!(err.file, "broken.toml");
        assert_eq!(err.line, Some(14));
    }

    #[test]
    fn unknown_key_is_reported_with_its_line() {
        let broken = MINIMAL.replace("role = \"overall\"", "role = \"overall\"\ncolour = 1");
        let err = parse("f.toml", &broken).unwrap_err();
        assert_eq!(err.line, Some(16), "{err}");
        assert!(err.message.contains("colour"), "{err}");
    }

    #[test]
    fn duplicate_question_code_points_at_the_second_one() {
        let broken = format!(
            "{MINIMAL}\n[[sections.questions]]\ncode = \"OVERALL\"\ntype = \"scale3\"\nrequired = false\ntext = {{ vi = \"a\", en = \"b\" }}\n"
        );
        let err = parse("f.toml", &broken).unwrap_err();
        assert!(err.message.contains("used twice"), "{err}");
        assert_eq!(err.line, Some(19));
    }

    #[test]
    fn wrong_scale_for_the_instrument_is_refused() {
        let broken = MINIMAL.replace("scale3", "scale5");
        let err = parse("f.toml", &broken).unwrap_err();
        assert!(err.message.contains("scale3"), "{err}");
    }

    #[test]
    fn shipped_forms_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("survey-forms");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                load_file(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 2);
    }
}
