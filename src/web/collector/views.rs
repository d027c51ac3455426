//! View pieces shared by the collector's pages: the entry form with its keys, the scope of a
//! collector's view, and a refused form sent back.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::accounts::Actor;
use crate::error::AppError;
use crate::forms::answers::{self, AnswerProblems};
use crate::forms::{Form, QuestionType};
use crate::i18n::{Lang, Msg};
use crate::paper::keyed::Refusal;
use crate::web::access::CurrentUser;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, staff_page};
use crate::web::view::scale_label;

/// The signed-in user as the use cases take them.
pub(super) fn actor(user: &CurrentUser) -> Actor {
    Actor::of(&user.0.user)
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub ok: Option<String>,
    pub last: Option<String>,
}

fn option_list(q: &crate::forms::Question, lang: Lang) -> Vec<(String, String, String)> {
    match q.kind {
        QuestionType::Scale5 | QuestionType::Scale3 => answers::scale_levels(q.kind)
            .iter()
            .map(|l| {
                (
                    l.to_string(),
                    l.to_string(),
                    scale_label(q.kind, *l, lang).to_string(),
                )
            })
            .collect(),
        _ => q
            .options
            .iter()
            .enumerate()
            .map(|(i, o)| {
                (
                    o.code.clone(),
                    ((i + 1) % 10).to_string(),
                    o.label.get(lang).to_string(),
                )
            })
            .collect(),
    }
}

/// What an entry form shows besides the questions: earlier input and its problems.
pub(super) struct Shown<'a> {
    pub given: &'a [(String, String)],
    pub problems: &'a AnswerProblems,
    pub issues: &'a [(String, Msg)],
    /// Asks to confirm a blank form.
    pub blank_confirm: bool,
}

/// The entry form: every question with its keys, prefilled with what was given.
pub(super) fn entry_form(
    lang: Lang,
    user: &CurrentUser,
    action: &str,
    form: &Form,
    shown: &Shown<'_>,
) -> Markup {
    let (given, problems, issues, blank_confirm) = (
        shown.given,
        shown.problems,
        shown.issues,
        shown.blank_confirm,
    );
    let has = |code: &str, value: &str| given.iter().any(|(k, v)| k == code && v == value);
    html! {
        link rel="stylesheet" href="/static/paper.css";
        @if !problems.is_empty() || !issues.is_empty() {
            div.alert role="alert" {
                @for (_, m) in issues { p { (m.get(lang)) } }
                @if !problems.is_empty() { p { (problems.len()) " " (lang.pick("câu cần sửa.", "answers to fix.")) } }
            }
        }
        p.muted { (lang.pick("Mỗi câu gõ một phím số (0 = không trả lời), tự chuyển câu. Backspace: quay lại. Câu nhiều lựa chọn: gõ các số rồi Enter. Cuối phiếu: Enter để lưu.",
                             "One digit per answer (0 = no answer), moving on by itself. Backspace: back. Multiple choice: digits then Enter. At the end: Enter saves.")) }
        form #entry.entry method="post" action=(action) {
            (csrf_field(user))
            input #keystrokes type="hidden" name="keystrokes" value="0";
            input type="hidden" name="started_at" value=(chrono::Utc::now().timestamp());
            @if blank_confirm { label { input type="checkbox" name="confirm_blank" value="1"; " " (lang.pick("Xác nhận đây là phiếu trắng", "Confirm this form is blank")) } }
            @for q in form.questions() {
                fieldset.q data-code=(q.code) data-type=(match q.kind { QuestionType::Multi => "multi", QuestionType::Text => "text", _ => "single" }) {
                    legend { strong { (q.code) } " " (q.text.get(lang)) }
                    @if let Some(p) = problems.get(&q.code) { p.err { (p.message().get(lang)) } }
                    @if q.kind == QuestionType::Text {
                        textarea name=(q.code) rows="2" maxlength=(q.max_length) aria-label=(q.text.get(lang)) {
                            (given.iter().find(|(k, _)| *k == q.code).map(|(_, v)| v.as_str()).unwrap_or(""))
                        }
                    } @else {
                        div.opts { @for (value, key, label) in option_list(q, lang) {
                            label {
                                input type=(if q.kind == QuestionType::Multi { "checkbox" } else { "radio" }) name=(q.code) value=(value) data-key=(key) checked[has(&q.code, &value)];
                                span.keys { (key) } " " (label)
                            }
                        } }
                    }
                }
            }
            p #summary hidden {}
            button #save type="submit" { (lang.pick("Lưu phiếu (Enter)", "Save form (Enter)")) }
        }
        script src="/static/paper-entry.js" defer {}
    }
}

/// The (name, value) pairs of a posted form, as the answer validator takes them (multi-choice
/// questions repeat their name, which a typed form struct cannot hold).
pub(super) fn form_pairs(body: &web::Bytes) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_bytes(body).map_err(|_| {
        AppError::bad_request(
            "body",
            Msg::new("Dữ liệu gửi lên không hợp lệ.", "Invalid form data."),
        )
    })
}

/// A form sent back unsaved (422) with its problems beside the questions and what was typed
/// kept; a blank form asks for confirmation.
pub(super) fn refused(
    lang: Lang,
    user: &CurrentUser,
    nav: &str,
    action: &str,
    refusal: &Refusal,
) -> HttpResponse {
    let shown = Shown {
        given: &refusal.given,
        problems: &refusal.problems,
        issues: &refusal.issues,
        blank_confirm: refusal.issues.iter().any(|(k, _)| k == "_form"),
    };
    let body = entry_form(lang, user, action, &refusal.paper.form, &shown);
    let title = format!("{} {}", lang.pick("Phiếu", "Form"), refusal.paper.serial);
    html_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        staff_page(lang, user, nav, &title, body),
    )
}
