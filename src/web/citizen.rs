//! The citizen's survey: `GET /s/{token}` shows the form, `POST /s/{token}` stores the answers.
//!
//! Works without JavaScript on a small phone; every state of the link (open, used, expired,
//! unknown) has its own page in the citizen's language.

pub mod steps;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::AppState;
use super::layout::{html_response, message_page, page};
use super::view::{contact_fieldset, scale_label};
use crate::error::AppError;
use crate::forms::answers::{self, AnswerProblems};
use crate::forms::{Form, Question, QuestionType};
use crate::i18n::Lang;
use crate::survey::channel::Channel;
use crate::survey::lookup::{OpenSurvey, TokenState};
use crate::survey::qr;
use crate::survey::submission::{self, Submitted};
use crate::survey::token::{SurveyToken, sign_opened};

/// How the citizen reached the survey; becomes the response's channel.
fn channel_from(via: Option<&str>) -> &'static str {
    Channel::from_via(via).code()
}

#[derive(Deserialize)]
pub struct SurveyQuery {
    lang: Option<String>,
    via: Option<String>,
    /// `all`: the whole form on one page rather than in steps (see `steps`).
    layout: Option<String>,
}

fn switch_href(token: &str, lang: Lang, via: &str) -> String {
    let via = if via == "qr" {
        String::new()
    } else {
        format!("&via={via}")
    };
    // This page is the whole form on one page: the other language keeps that layout.
    format!("/s/{token}?lang={}{via}&layout=all", lang.other().code())
}

fn unavailable_page(state: &TokenState, lang: Lang, token: &str) -> HttpResponse {
    let switch = format!("/s/{token}?lang={}", lang.other().code());
    let (status, title, text) = match state {
        TokenState::Used => (
            StatusCode::CONFLICT,
            lang.pick("Phiếu khảo sát này đã được trả lời", "This survey has already been answered"),
            lang.pick(
                "Mỗi lần giao dịch chỉ được đánh giá một lần. Cảm ơn Ông/Bà đã dành thời gian góp ý.",
                "Each transaction can be rated once. Thank you for taking the time to give your opinion.",
            ),
        ),
        TokenState::Expired => (
            StatusCode::GONE,
            lang.pick("Liên kết khảo sát đã hết hạn", "This survey link has expired"),
            lang.pick(
                "Thời hạn đánh giá cho lần giao dịch này đã kết thúc. Ông/Bà có thể góp ý trực tiếp tại bộ phận một cửa.",
                "The time to rate this transaction has ended. You can still give feedback at the one-stop counter.",
            ),
        ),
        TokenState::CampaignUsed => (
            StatusCode::CONFLICT,
            lang.pick("Liên kết này đã được sử dụng", "This link has already been used"),
            lang.pick(
                "Mỗi liên kết mời đánh giá chỉ dùng được một lần, và đánh giá qua liên kết này đã được ghi nhận. Cảm ơn Ông/Bà.",
                "Each invitation link can be used once, and the rating given through this link has been recorded. Thank you.",
            ),
        ),
        TokenState::Revoked => (
            StatusCode::GONE,
            lang.pick("Phiếu in sẵn này đã bị thu hồi", "This printed survey code has been withdrawn"),
            lang.pick(
                "Sổ phiếu chứa mã này đã bị cơ quan thu hồi (ví dụ vì bị thất lạc), nên mã không còn dùng được. Ông/Bà có thể góp ý trực tiếp tại bộ phận một cửa.",
                "The book this code comes from has been withdrawn by the agency (for example because it was lost), so the code can no longer be used. You can still give feedback at the one-stop counter.",
            ),
        ),
        TokenState::CampaignExpired => (
            StatusCode::GONE,
            lang.pick("Đợt khảo sát đã kết thúc", "The survey campaign has ended"),
            lang.pick(
                "Thời hạn đánh giá của đợt khảo sát này đã kết thúc.",
                "The time to answer in this campaign has ended.",
            ),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            lang.pick("Không tìm thấy phiếu khảo sát", "Survey not found"),
            lang.pick(
                "Liên kết hoặc mã QR không đúng. Vui lòng kiểm tra lại mã trên phiếu hẹn trả kết quả.",
                "The link or QR code is not valid. Please check the code on your receipt.",
            ),
        ),
    };
    message_page(lang, status, title, text, Some(&switch))
}

fn error_page(lang: Lang, error: &AppError) -> HttpResponse {
    if let AppError::Internal(cause) = error {
        tracing::error!(error = format!("{cause:#}"), "survey page failed");
    }
    let title = lang.pick(
        "Không thể xử lý yêu cầu",
        "The request could not be handled",
    );
    message_page(
        lang,
        actix_web::ResponseError::status_code(error),
        title,
        error.user_message().get(lang),
        None,
    )
}

pub async fn show(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<SurveyQuery>,
) -> HttpResponse {
    let lang = Lang::from_param(query.lang.as_deref());
    let via = channel_from(query.via.as_deref());
    match submission::open(&state, &path).await {
        Ok((Some(token), TokenState::Open(survey))) => {
            let opened = sign_opened(
                &state.secret,
                &survey.token_hash,
                chrono::Utc::now().timestamp(),
            );
            if query.layout.as_deref() != Some("all")
                && crate::survey::steps::is_stepped(&survey.form)
            {
                return steps::first_step(&steps::StepView {
                    token: token.as_str(),
                    lang,
                    via,
                    opened: &opened,
                    survey: &survey,
                    step: 0,
                });
            }
            let view = SurveyView {
                token: token.as_str(),
                lang,
                via,
                opened: &opened,
                survey: &survey,
                contact_problem: None,
            };
            html_response(
                StatusCode::OK,
                view.render(&HashMap::new(), &AnswerProblems::new()),
            )
        }
        Ok((_, other)) => unavailable_page(&other, lang, &path),
        Err(e) => error_page(lang, &e),
    }
}

pub async fn submit(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return message_page(
            Lang::Vi,
            StatusCode::BAD_REQUEST,
            "Dữ liệu gửi lên không hợp lệ / Invalid form data",
            "Vui lòng mở lại phiếu khảo sát và gửi lại. / Please open the survey again and resubmit.",
            None,
        );
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let lang = Lang::from_param(field("lang"));
    let answer = submission::Answer {
        token: path.clone(),
        language: lang,
        channel: Channel::from_via(field("via")),
        address: super::access::client_address(&req, &state.settings.trusted_proxies),
        user_agent: super::access::user_agent(&req),
        fields,
    };
    let via = answer.channel.code();
    match submission::submit(&state, answer).await {
        Ok(Submitted::Stored) => message_page(
            lang,
            StatusCode::OK,
            lang.pick("Cảm ơn Ông/Bà đã đánh giá!", "Thank you for your feedback!"),
            lang.pick(
                "Ý kiến của Ông/Bà đã được ghi nhận và sẽ giúp cơ quan nhà nước phục vụ người dân tốt hơn.",
                "Your answers have been recorded and will help public agencies serve people better.",
            ),
            None,
        ),
        Ok(Submitted::StoredForGroup) => message_page(
            lang,
            StatusCode::OK,
            lang.pick("Cảm ơn Ông/Bà đã đánh giá!", "Thank you for your feedback!"),
            lang.pick(
                "Đánh giá của Ông/Bà đã được ghi nhận.",
                "Your rating has been recorded.",
            ),
            None,
        ),
        Ok(Submitted::Unavailable(unavailable)) => unavailable_page(&unavailable, lang, &path),
        Ok(Submitted::Refused(refusal)) => {
            let view = SurveyView {
                token: refusal.token.as_str(),
                lang,
                via,
                opened: &refusal.opened,
                survey: &refusal.survey,
                contact_problem: refusal.contact_problem,
            };
            html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                view.render(&given_answers(&refusal.fields), &refusal.problems),
            )
        }
        Err(e) => error_page(lang, &e),
    }
}

/// The posted fields by name, to show a refused form again as it was filled in (built only
/// then: every request paid for this map when it was built up front).
fn given_answers(fields: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut given: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in fields {
        given.entry(k.clone()).or_default().push(v.clone());
    }
    given
}

struct SurveyView<'a> {
    token: &'a str,
    lang: Lang,
    via: &'a str,
    opened: &'a str,
    survey: &'a OpenSurvey,
    contact_problem: Option<crate::integrity::cases::ContactProblem>,
}

impl SurveyView<'_> {
    fn render(&self, given: &HashMap<String, Vec<String>>, problems: &AnswerProblems) -> Markup {
        let lang = self.lang;
        let form: &Form = &self.survey.form;
        let unit = match lang {
            Lang::Vi => &self.survey.unit_name_vi,
            Lang::En => &self.survey.unit_name_en,
        };
        let procedure = match lang {
            Lang::Vi => self.survey.procedure_name_vi.as_deref(),
            Lang::En => self.survey.procedure_name_en.as_deref(),
        };
        let body = html! {
            h1 { (form.title.get(lang)) }
            p.meta {
                strong { (unit) }
                @if let Some(p) = procedure { br; (p) }
            }
            @if let Some(intro) = &form.intro { p { (intro.get(lang)) } }
            @if !problems.is_empty() || self.contact_problem.is_some() {
                div.alert role="alert" {
                    (lang.pick("Vui lòng kiểm tra lại ", "Please check "))
                    strong { (problems.len() + usize::from(self.contact_problem.is_some())) }
                    (lang.pick(" câu hỏi được đánh dấu bên dưới.", " marked question(s) below."))
                }
            }
            form method="post" action=(format!("/s/{}", self.token)) {
                input type="hidden" name="lang" value=(lang.code());
                input type="hidden" name="via" value=(self.via);
                input type="hidden" name="opened" value=(self.opened);
                @for section in &form.sections {
                    h2 { (section.title.get(lang)) }
                    @for q in &section.questions {
                        (self.question(q, given.get(&q.code).map(Vec::as_slice).unwrap_or(&[]), problems))
                    }
                }
                @if form.question_with_role(crate::forms::QuestionRole::Overall).is_some() {
                    (contact_fieldset(lang, given, self.contact_problem))
                }
                button type="submit" { (lang.pick("Gửi đánh giá", "Submit")) }
            }
        };
        let switch = switch_href(self.token, lang, self.via);
        page(lang, form.title.get(lang), Some(&switch), body)
    }

    fn question(&self, q: &Question, given: &[String], problems: &AnswerProblems) -> Markup {
        let lang = self.lang;
        let problem = problems.get(&q.code);
        let error_id = format!("err-{}", q.code);
        let hint = match q.kind {
            QuestionType::Multi => Some(format!(
                "{} {}",
                lang.pick("Chọn tối đa", "Choose up to"),
                q.max_choices
            )),
            _ => None,
        };
        let options: Vec<(String, String, bool)> = match q.kind {
            QuestionType::Scale5 | QuestionType::Scale3 => answers::scale_levels(q.kind)
                .iter()
                .map(|level| {
                    (
                        level.to_string(),
                        scale_label(q.kind, *level, lang).to_string(),
                        *level == 0,
                    )
                })
                .collect(),
            QuestionType::Choice | QuestionType::Multi => q
                .options
                .iter()
                .map(|o| (o.code.clone(), o.label.get(lang).to_string(), false))
                .collect(),
            QuestionType::Text => Vec::new(),
        };
        let input_type = if q.kind == QuestionType::Multi {
            "checkbox"
        } else {
            "radio"
        };
        let required = q.required && q.kind != QuestionType::Multi;
        html! {
            fieldset id=(format!("q-{}", q.code)) class=[problem.map(|_| "bad")]
                aria-describedby=[problem.map(|_| error_id.as_str())] {
                legend {
                    (q.text.get(lang))
                    @if q.required { "\u{a0}" span.req aria-hidden="true" { "*" } }
                }
                @if let Some(h) = &hint { p.hint { (h) } }
                @if let Some(p) = problem { p.err id=(error_id) { (p.message().get(lang)) } }
                @if q.kind == QuestionType::Text {
                    textarea name=(q.code) maxlength=(q.max_length) aria-label=(q.text.get(lang)) {
                        (given.first().map(String::as_str).unwrap_or(""))
                    }
                } @else {
                    div.opts {
                        @for (value, label, muted) in &options {
                            label class=[muted.then_some("na")] {
                                input type=(input_type) name=(q.code) value=(value)
                                    checked[given.iter().any(|g| g == value)] required[required];
                                (label)
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn qr_text_for(state: &AppState, raw: &str) -> Result<String, HttpResponse> {
    let not_found = || {
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Không tìm thấy phiếu khảo sát / Survey not found")
    };
    let token = SurveyToken::parse(raw).ok_or_else(not_found)?;
    let hash = token.hash();
    let known = state
        .with_quick_read(move |conn| {
            crate::survey::lookup::exists(conn, &hash).map_err(AppError::from)
        })
        .await
        .map_err(|e| error_page(Lang::Vi, &e))?;
    if !known {
        return Err(not_found());
    }
    Ok(qr::qr_text(
        &state.public_base(),
        &state.survey_url(token.as_str()),
    ))
}

pub async fn qr_svg(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let text = match qr_text_for(&state, &path).await {
        Ok(text) => text,
        Err(response) => return response,
    };
    match qr::svg(&text) {
        Ok(svg) => HttpResponse::Ok()
            .content_type("image/svg+xml")
            .insert_header(("Cache-Control", "private, max-age=86400"))
            .body(svg),
        Err(e) => error_page(Lang::Vi, &AppError::Internal(e)),
    }
}

#[derive(Deserialize)]
pub struct PngQuery {
    scale: Option<u32>,
}

pub async fn qr_png(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PngQuery>,
) -> HttpResponse {
    let text = match qr_text_for(&state, &path).await {
        Ok(text) => text,
        Err(response) => return response,
    };
    let scale = query.scale.unwrap_or(8).clamp(1, 32);
    match qr::png(&text, scale) {
        Ok(png) => HttpResponse::Ok()
            .content_type("image/png")
            .insert_header(("Cache-Control", "private, max-age=86400"))
            .body(png),
        Err(e) => error_page(Lang::Vi, &AppError::Internal(e)),
    }
}

/// `GET /s/{token}/unsubscribe`: asks to confirm (a link preview must not unsubscribe anyone).
pub async fn unsubscribe_page(
    path: web::Path<String>,
    query: web::Query<SurveyQuery>,
) -> HttpResponse {
    let lang = Lang::from_param(query.lang.as_deref());
    let title = lang.pick(
        "Dừng nhận thư và tin nhắn về hồ sơ này",
        "Stop e-mails and messages about this dossier",
    );
    let body = html! {
        h1 { (title) }
        p { (lang.pick(
            "Ông/Bà sẽ không nhận thêm thư mời, tin nhắn SMS hay Zalo mời hoặc nhắc khảo sát về hồ sơ này; địa chỉ thư điện tử và số điện thoại sẽ bị xóa khỏi hệ thống.",
            "You will get no more invitations or reminders about this dossier by e-mail, SMS or Zalo, and your e-mail address and phone number will be deleted.")) }
        form method="post" action=(format!("/s/{}/unsubscribe", path.as_str())) {
            input type="hidden" name="lang" value=(lang.code());
            button type="submit" { (lang.pick("Dừng nhận thư và tin nhắn", "Stop e-mails and messages")) }
        }
    };
    let switch = format!(
        "/s/{}/unsubscribe?lang={}",
        path.as_str(),
        lang.other().code()
    );
    html_response(StatusCode::OK, page(lang, title, Some(&switch), body))
}

/// `POST /s/{token}/unsubscribe`: stops all mail for the dossier and erases the address.
pub async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let lang = Lang::from_param(
        pairs
            .iter()
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.as_str()),
    );
    let Some(token) = SurveyToken::parse(&path) else {
        return unavailable_page(&TokenState::Unknown, lang, &path);
    };
    let hash = token.hash();
    match state
        .with_conn(move |conn| Ok(crate::mail::outbox::opt_out(conn, &hash)?))
        .await
    {
        Ok(true) => message_page(
            lang,
            StatusCode::OK,
            lang.pick("Đã dừng gửi thư và tin nhắn", "E-mails and messages stopped"),
            lang.pick(
                "Ông/Bà sẽ không nhận thêm thư hay tin nhắn SMS, Zalo nào về hồ sơ này. Địa chỉ thư điện tử và số điện thoại đã được xóa.",
                "You will get no more e-mails, SMS or Zalo messages about this dossier. Your address and phone number have been deleted.",
            ),
            None,
        ),
        Ok(false) => unavailable_page(&TokenState::Unknown, lang, &path),
        Err(e) => error_page(lang, &e),
    }
}
