//! The long survey one step at a time on a phone (`GET /s/{token}` shows the first step of a
//! stepped form, `POST /s/{token}/step` moves back and forward). No JavaScript: every step is a
//! plain form carrying the answers of the other steps in hidden fields, so going back and
//! forward keeps them, and a request lost on a slow network loses nothing (the page, with its
//! answers, is still there to send again). The last step posts everything to `POST /s/{token}`,
//! the ordinary submit path: the token is spent there and only there, by a complete, valid
//! answer. `?layout=all` shows the whole form on one page instead.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::{Markup, html};

use super::{channel_from, error_page, unavailable_page};
use crate::forms::answers::{self, AnswerProblems};
use crate::forms::{Form, Question, QuestionRole, QuestionType};
use crate::i18n::Lang;
use crate::survey::lookup::{OpenSurvey, TokenState};
use crate::survey::steps::{self, Move};
use crate::web::AppState;
use crate::web::layout::{html_response, message_page, page};
use crate::web::view::{contact_fieldset, scale_label};

/// The "contact me" fields of the last step, carried back and forth like answers.
const CONTACT_FIELDS: [&str; 2] = ["contact_ok", "contact"];

/// One step of the survey, ready to render.
pub(super) struct StepView<'a> {
    pub token: &'a str,
    pub lang: Lang,
    pub via: &'a str,
    pub opened: &'a str,
    pub survey: &'a OpenSurvey,
    /// 0-based.
    pub step: usize,
}

/// The first step of a stepped form, as `GET /s/{token}` shows it.
pub(super) fn first_step(view: &StepView<'_>) -> HttpResponse {
    html_response(
        StatusCode::OK,
        view.render(&[], &HashMap::new(), &AnswerProblems::new()),
    )
}

/// `POST /s/{token}/step`: shows the step before or after the one posted, keeping every
/// answer given so far; moving on waits until the posted step's required questions are
/// answered (422 with the problems marked).
pub async fn step(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return message_page(
            Lang::Vi,
            StatusCode::BAD_REQUEST,
            "Dữ liệu gửi lên không hợp lệ / Invalid form data",
            "Vui lòng mở lại phiếu khảo sát và gửi lại. / Please open the survey again and resubmit.",
            None,
        );
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let lang = Lang::from_param(field("lang"));
    let via = channel_from(field("via"));
    let (token, survey) = match crate::survey::submission::open(&state, &path).await {
        Ok((Some(token), TokenState::Open(survey))) => (token, survey),
        Ok((_, other)) => return unavailable_page(&other, lang, &path),
        Err(e) => return error_page(lang, &e),
    };
    let form: &Form = &survey.form;
    let total = steps::plan(form).len().max(1);
    // The step field counts from 1, as the page shows it.
    let current = field("step")
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map_or(0, |s| s.saturating_sub(1))
        .min(total - 1);
    let go = Move::parse(field("go"));
    let problems = match go {
        Move::Next => steps::problems_of_step(form, current, &pairs),
        Move::Back => AnswerProblems::new(),
    };
    let target = steps::next_step(current, total, go, problems.is_empty());
    let mut given: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &pairs {
        if steps::is_answer_field(form, k) || CONTACT_FIELDS.contains(&k.as_str()) {
            given.entry(k.clone()).or_default().push(v.clone());
        }
    }
    let view = StepView {
        token: token.as_str(),
        lang,
        via,
        opened: field("opened").unwrap_or_default(),
        survey: &survey,
        step: target,
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html_response(status, view.render(&pairs, &given, &problems))
}

impl StepView<'_> {
    fn render(
        &self,
        pairs: &[(String, String)],
        given: &HashMap<String, Vec<String>>,
        problems: &AnswerProblems,
    ) -> Markup {
        let lang = self.lang;
        let form: &Form = &self.survey.form;
        let plan = steps::plan(form);
        let total = plan.len().max(1);
        let step = self.step.min(total - 1);
        let is_last = step + 1 == total;
        let here: Vec<&Question> = steps::questions(form, step);
        let here_codes: Vec<&str> = here.iter().map(|q| q.code.as_str()).collect();
        // Answers of the other steps ride along in hidden fields, in the order they came.
        let carried: Vec<&(String, String)> = pairs
            .iter()
            .filter(|(k, _)| {
                (steps::is_answer_field(form, k) && !here_codes.contains(&k.as_str()))
                    || (!is_last && CONTACT_FIELDS.contains(&k.as_str()))
            })
            .collect();
        let unit = match lang {
            Lang::Vi => &self.survey.unit_name_vi,
            Lang::En => &self.survey.unit_name_en,
        };
        let has_scale = here.iter().any(|q| q.kind == QuestionType::Scale5);
        let step_action = format!("/s/{}/step", self.token);
        let submit_action = format!("/s/{}", self.token);
        // The first step introduces the survey; the others lead with their own topic, so a step
        // fits on a phone's screen.
        let first_section = plan[step].first().and_then(|&i| form.sections.get(i));
        let body = html! {
            @if step == 0 {
                h1 { (form.title.get(lang)) }
                p.meta { strong { (unit) } }
            } @else if let Some(section) = first_section {
                h1.step-title { (section.title.get(lang)) }
            }
            p.progress #progress-text {
                (lang.pick("Bước ", "Step ")) span #step-number { (step + 1) "/" (total) }
            }
            progress value=(step + 1) max=(total) aria-labelledby="progress-text" {}
            @if step == 0 {
                @if let Some(intro) = &form.intro { p { (intro.get(lang)) } }
            }
            @if !problems.is_empty() {
                div.alert role="alert" {
                    (lang.pick("Vui lòng trả lời ", "Please answer "))
                    strong { (problems.len()) }
                    (lang.pick(" câu hỏi được đánh dấu bên dưới.", " marked question(s) below."))
                }
            }
            form method="post" action=(if is_last { &submit_action } else { &step_action }) {
                input type="hidden" name="lang" value=(lang.code());
                input type="hidden" name="via" value=(self.via);
                input type="hidden" name="opened" value=(self.opened);
                input type="hidden" name="step" value=(step + 1);
                @for (k, v) in &carried { input type="hidden" name=(k) value=(v); }
                @if has_scale && step == 0 {
                    p.hint.scale-key { (lang.pick(
                        "Thang điểm: 1 = Rất không hài lòng · 3 = Bình thường · 5 = Rất hài lòng",
                        "Scale: 1 = Very dissatisfied · 3 = Neutral · 5 = Very satisfied")) }
                }
                @for (k, &i) in plan[step].iter().enumerate() {
                    @if let Some(section) = form.sections.get(i) {
                        @if step == 0 || k > 0 { h2 { (section.title.get(lang)) } }
                        @for q in &section.questions {
                            (question(lang, q, given.get(&q.code).map(Vec::as_slice).unwrap_or(&[]), problems))
                        }
                    }
                }
                @if is_last && form.question_with_role(QuestionRole::Overall).is_some() {
                    (contact_fieldset(lang, given, None))
                }
                div.stepnav {
                    @if is_last {
                        button type="submit" name="go" value="submit" { (lang.pick("Gửi đánh giá", "Submit")) }
                    } @else {
                        button type="submit" name="go" value="next" { (lang.pick("Tiếp tục", "Next")) }
                    }
                    @if step > 0 {
                        button.secondary type="submit" name="go" value="back" formaction=(step_action) formnovalidate {
                            (lang.pick("Quay lại", "Back"))
                        }
                    }
                }
            }
            @if step == 0 {
                p.muted { a href=(format!("/s/{}?layout=all&lang={}{}", self.token, lang.code(), via_param(self.via))) {
                    (lang.pick("Xem tất cả câu hỏi trên một trang", "Show all questions on one page"))
                } }
            }
        };
        // The language can be switched on the first step, before anything is answered.
        let switch = (step == 0).then(|| {
            format!(
                "/s/{}?lang={}{}",
                self.token,
                lang.other().code(),
                via_param(self.via)
            )
        });
        let title = format!(
            "{} {}/{total} · {}",
            lang.pick("Bước", "Step"),
            step + 1,
            form.title.get(lang)
        );
        page(lang, &title, switch.as_deref(), body)
    }
}

fn via_param(via: &str) -> String {
    if via == "qr" {
        String::new()
    } else {
        format!("&via={via}")
    }
}

/// One question. The 5-level scale is a compact row of five numbered choices (each a radio
/// button whose label reads the level's full name to screen readers), with "no answer" below.
fn question(lang: Lang, q: &Question, given: &[String], problems: &AnswerProblems) -> Markup {
    let problem = problems.get(&q.code);
    let error_id = format!("err-{}", q.code);
    let required = q.required && q.kind != QuestionType::Multi;
    let is_given = |value: &str| given.iter().any(|g| g == value);
    html! {
        fieldset id=(format!("q-{}", q.code)) class=[problem.map(|_| "bad")]
            aria-describedby=[problem.map(|_| error_id.as_str())] {
            legend {
                (q.text.get(lang))
                @if q.required { "\u{a0}" span.req aria-hidden="true" { "*" } }
            }
            @if let Some(p) = problem { p.err id=(error_id) { (p.message().get(lang)) } }
            @match q.kind {
                QuestionType::Scale5 => {
                    div.scale5 {
                        @for level in 1..=5i64 {
                            label {
                                input type="radio" name=(q.code) value=(level)
                                    checked[is_given(&level.to_string())] required[required];
                                span.lvl aria-hidden="true" { (level) }
                                span.sr { (level) " – " (scale_label(q.kind, level, lang)) }
                            }
                        }
                    }
                    div.ends {
                        span aria-hidden="true" { (scale_label(q.kind, 1, lang)) }
                        label.na {
                            input type="radio" name=(q.code) value="0" checked[is_given("0")] required[required];
                            (scale_label(q.kind, 0, lang))
                        }
                        span aria-hidden="true" { (scale_label(q.kind, 5, lang)) }
                    }
                }
                QuestionType::Text => {
                    textarea name=(q.code) maxlength=(q.max_length) aria-label=(q.text.get(lang)) {
                        (given.first().map(String::as_str).unwrap_or(""))
                    }
                }
                _ => {
                    @if q.kind == QuestionType::Multi {
                        p.hint { (lang.pick("Chọn tối đa", "Choose up to")) " " (q.max_choices) }
                    }
                    div.opts {
                        @for (value, label) in options(lang, q) {
                            label {
                                input type=(if q.kind == QuestionType::Multi { "checkbox" } else { "radio" })
                                    name=(q.code) value=(value) checked[is_given(&value)] required[required];
                                (label)
                            }
                        }
                    }
                }
            }
        }
    }
}

fn options(lang: Lang, q: &Question) -> Vec<(String, String)> {
    match q.kind {
        QuestionType::Scale3 => answers::scale_levels(q.kind)
            .iter()
            .map(|l| (l.to_string(), scale_label(q.kind, *l, lang).to_string()))
            .collect(),
        _ => q
            .options
            .iter()
            .map(|o| (o.code.clone(), o.label.get(lang).to_string()))
            .collect(),
    }
}
