//! The collector organisation's work pages: batches and their custody, keyboard entry of paper
//! forms, and the adjudication of forms whose two typings disagree.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::admin::done;
use crate::web::citizen::scale_label;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, error_box, notice, staff_page};
use crate::accounts::Role;
use crate::error::AppError;
use crate::forms::answers::{self, AnswerProblems};
use crate::forms::{Form, QuestionType};
use crate::i18n::{Lang, Msg};
use crate::paper::custody::{self, BatchRequest};
use crate::paper::entry::{self, EntryError, PaperForm, Saved, Typing};
use crate::web::lang::page_lang;

fn org_scope(user: &CurrentUser) -> Option<String> {
    match user.0.user.role() {
        Role::Admin => None,
        _ => Some(user.0.user.collector_org_id.clone().unwrap_or_default()),
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    ok: Option<String>,
    last: Option<String>,
}

fn batches_page(
    lang: Lang,
    user: &CurrentUser,
    rows: &[(custody::Batch, String, custody::Custody)],
    samples: &[crate::paper::sampling::StoredSample],
    orgs: &[crate::collector_orgs::CollectorOrg],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        table #batches {
            thead { tr {
                th { (lang.pick("Lô", "Batch")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Người phát", "Collector")) }
                th { (lang.pick("Đã phát", "Issued")) } th { (lang.pick("Đã giao", "Delivered")) } th { (lang.pick("Đã thu", "Returned")) }
                th { (lang.pick("Đã nhập", "Keyed")) } th { (lang.pick("Đã xác nhận", "Verified")) } th { (lang.pick("Tỷ lệ thu hồi", "Return rate")) }
            } }
            tbody { @for (b, unit, c) in rows { tr {
                td { a href=(format!("/paper/batches/{}", b.id)) { (b.code) } } td { (unit) } td { (b.collector_name) }
                td { (c.issued) } td { (c.delivered) } td { (c.returned) } td { (c.keyed) } td { (c.verified) }
                td { (c.return_rate().map(|r| format!("{r:.1}%")).unwrap_or_else(|| "—".into())) }
            } } }
        }
        h2 { (lang.pick("Tạo lô phiếu", "New batch")) }
        (error_box(lang, error))
        form.stack method="post" action="/paper/batches" {
            (csrf_field(user))
            label for="sample" { (lang.pick("Mẫu", "Sample")) }
            select #sample name="sample" { @for s in samples { option value=(s.id) { (s.period_code) " · " (s.created_at.format("%Y-%m-%d %H:%M")) } } }
            label for="unit" { (lang.pick("Mã đơn vị", "Unit code")) }
            input #unit type="text" name="unit" required;
            @if org_scope(user).is_none() {
                label for="org" { (lang.pick("Đơn vị thu thập", "Collector organisation")) }
                select #org name="org" { @for o in orgs { option value=(o.id) { (o.code) } } }
            }
            label for="collector_name" { (lang.pick("Nhân viên phát và thu phiếu", "Person delivering and collecting")) }
            input #collector_name type="text" name="collector_name" required;
            label for="double_share" { (lang.pick("Tỷ lệ phiếu nhập hai lần (0–1)", "Share keyed twice (0–1)")) }
            input #double_share type="text" name="double_share" value="1";
            label { input type="checkbox" name="include_reserve" value="on"; " " (lang.pick("Gồm cả danh sách dự phòng", "Include the reserve list")) }
            button type="submit" { (lang.pick("Tạo lô", "Create batch")) }
        }
    };
    staff_page(
        lang,
        user,
        "/paper/batches",
        lang.pick("Lô phiếu giấy", "Paper batches"),
        body,
    )
}

type BatchData = (
    Vec<(custody::Batch, String, custody::Custody)>,
    Vec<crate::paper::sampling::StoredSample>,
    Vec<crate::collector_orgs::CollectorOrg>,
);

async fn batch_data(state: &AppState, org: Option<String>) -> Result<BatchData, AppError> {
    state
        .with_conn(move |conn| {
            let mut samples = crate::paper::sampling::list(conn)?;
            if let Some(org) = &org {
                // A collector is offered only samples it was handed forms of.
                let handed = custody::handed_forms(conn, org, None)?;
                samples.retain(|s| handed.iter().any(|(id, _, _)| *id == s.id));
            }
            Ok((
                custody::list(conn, org.as_deref())?,
                samples,
                crate::collector_orgs::list(conn)?,
            ))
        })
        .await
}

pub async fn batches(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let (rows, samples, orgs) = batch_data(&state, org_scope(&user)).await?;
    Ok(html_response(
        StatusCode::OK,
        batches_page(
            page_lang(&req),
            &user,
            &rows,
            &samples,
            &orgs,
            q.ok.as_deref(),
            None,
        ),
    ))
}

#[derive(Deserialize)]
pub struct BatchForm {
    sample: String,
    unit: String,
    #[serde(default)]
    org: String,
    collector_name: String,
    #[serde(default)]
    double_share: String,
    include_reserve: Option<String>,
}

pub async fn create_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<BatchForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let actor = user.0.user.actor();
    let scoped = org_scope(&user).is_some();
    let org = org_scope(&user).unwrap_or(f.org.clone());
    let result = state
        .with_conn(move |conn| {
            let unit = crate::units::find_by_code(conn, &f.unit.trim().to_ascii_uppercase())?
                .ok_or_else(|| {
                    AppError::field(
                        "unit",
                        Msg::new(
                            "Không có đơn vị với mã này.",
                            "There is no unit with this code.",
                        ),
                    )
                })?;
            // Administrators hand units over; a collector may only issue the rest of a unit
            // already handed to its organisation (its reserve list, say).
            if scoped && !custody::unit_handed(conn, &org, &f.sample, &unit.id)? {
                return Err(AppError::NotFound(Msg::new(
                    "Không có mẫu hoặc đơn vị này.",
                    "No such sample or unit.",
                )));
            }
            let share: f64 = match f.double_share.trim() {
                "" => 1.0,
                v => v.replace(',', ".").parse().map_err(|_| {
                    AppError::field(
                        "double_share",
                        Msg::new(
                            "Tỷ lệ phải là số từ 0 đến 1.",
                            "The share must be a number from 0 to 1.",
                        ),
                    )
                })?,
            };
            custody::create_batch(
                conn,
                &actor,
                &BatchRequest {
                    sample_id: f.sample,
                    unit_id: unit.id,
                    collector_org_id: org,
                    collector_name: f.collector_name,
                    include_reserve: f.include_reserve.is_some(),
                    double_share: share.clamp(0.0, 1.0),
                },
            )
        })
        .await;
    match result {
        Ok(b) => Ok(done(&format!("/paper/batches/{}", b.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let (rows, samples, orgs) = batch_data(&state, org_scope(&user)).await?;
            Ok(html_response(
                actix_web::ResponseError::status_code(&e),
                batches_page(
                    page_lang(&req),
                    &user,
                    &rows,
                    &samples,
                    &orgs,
                    None,
                    Some(&e),
                ),
            ))
        }
    }
}

async fn own_batch(
    state: &AppState,
    user: &CurrentUser,
    id: String,
) -> Result<(custody::Batch, custody::Custody), AppError> {
    let org = org_scope(user);
    state
        .with_conn(move |conn| {
            let not_found =
                || AppError::NotFound(Msg::new("Không có lô phiếu này.", "No such batch."));
            let batch = custody::find(conn, &id)?.ok_or_else(not_found)?;
            if org.as_ref().is_some_and(|o| *o != batch.collector_org_id) {
                return Err(not_found());
            }
            let c = custody::custody(conn, &batch.id)?;
            Ok((batch, c))
        })
        .await
}

pub async fn batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (b, c) = own_batch(&state, &user, path.into_inner()).await?;
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        @if let Some(unknown) = &q.last { p.alert { (lang.pick("Số phiếu không thuộc lô này: ", "Serials not in this batch: ")) (unknown) } }
        table #custody {
            tr { th { (lang.pick("Đã phát", "Issued")) } td { (c.issued) } }
            tr { th { (lang.pick("Đã giao tới người dân", "Delivered")) } td { (c.delivered) } }
            tr { th { (lang.pick("Đã thu về", "Returned")) } td { (c.returned) } }
            tr { th { (lang.pick("Đã nhập", "Keyed")) } td { (c.keyed) } }
            tr { th { (lang.pick("Đã xác nhận", "Verified")) } td { (c.verified) } }
            tr { th { (lang.pick("Tỷ lệ thu hồi", "Return rate")) } td { (c.return_rate().map(|r| format!("{r:.1}%")).unwrap_or_else(|| "—".into())) } }
        }
        @for (status, label) in [("delivered", lang.pick("Ghi nhận đã giao", "Record deliveries")), ("returned", lang.pick("Ghi nhận đã thu về", "Record returns"))] {
            h2 { (label) }
            form.stack method="post" action=(format!("/paper/batches/{}/{status}", b.id)) {
                (csrf_field(&user))
                label for=(format!("serials-{status}")) { (lang.pick("Quét hoặc nhập số phiếu, mỗi dòng một số", "Scan or type serials, one per line")) }
                textarea id=(format!("serials-{status}")) name="serials" rows="4" {}
                button type="submit" { (label) }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/batches",
            &format!("{} {}", lang.pick("Lô", "Batch"), b.code),
            body,
        ),
    ))
}

#[derive(Deserialize)]
pub struct SerialsForm {
    serials: String,
}

async fn mark(
    state: &AppState,
    user: &CurrentUser,
    id: String,
    serials: String,
    status: &'static str,
) -> Result<HttpResponse, AppError> {
    let (b, _) = own_batch(state, user, id).await?;
    let actor = user.0.user.actor();
    let list: Vec<String> = serials.lines().map(str::to_string).collect();
    let batch_id = b.id.clone();
    let marked = state
        .with_conn(move |conn| custody::mark(conn, &actor, &batch_id, &list, status))
        .await?;
    let mut location = format!("/paper/batches/{}?ok=saved", b.id);
    if !marked.unknown.is_empty() {
        location.push_str(&format!(
            "&last={}",
            crate::web::access::urlencode(&marked.unknown.join(", "))
        ));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish())
}

pub async fn delivered(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<SerialsForm>,
) -> Result<HttpResponse, AppError> {
    mark(
        &state,
        &user,
        path.into_inner(),
        form.into_inner().serials,
        "delivered",
    )
    .await
}

pub async fn returned(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<SerialsForm>,
) -> Result<HttpResponse, AppError> {
    mark(
        &state,
        &user,
        path.into_inner(),
        form.into_inner().serials,
        "returned",
    )
    .await
}

// ---------------------------------------------------------------- keyboard entry

fn serial_box(
    lang: Lang,
    user: &CurrentUser,
    ok: Option<&str>,
    last: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let saved = match ok {
        Some("verified") => {
            Some(lang.pick("Đã lưu và xác nhận phiếu ", "Saved and verified form "))
        }
        Some("second") => Some(lang.pick(
            "Đã lưu; phiếu cần người thứ hai nhập lại: ",
            "Saved; a second person must key form ",
        )),
        Some("disputed") => Some(lang.pick(
            "Hai lần nhập khác nhau; phiếu chờ phân xử: ",
            "The two typings differ; awaiting adjudication: ",
        )),
        _ => None,
    };
    html! {
        @if let Some(text) = saved {
            p.notice role="status" { (text) strong { (last.unwrap_or("")) } }
            @if let Some(serial) = last {
                form.inline method="post" action=(format!("/paper/entry/{serial}/undo")) {
                    (csrf_field(user))
                    button.link type="submit" { (lang.pick("Hoàn tác phiếu vừa nhập", "Undo the form just saved")) }
                }
            }
        }
        @if ok == Some("undone") { p.notice role="status" { (lang.pick("Đã hoàn tác phiếu ", "Undid form ")) strong { (last.unwrap_or("")) } } }
        @if let Some(e) = error { div.alert role="alert" { (e) } }
        form.stack method="get" action="/paper/entry/open" {
            label for="serial" { (lang.pick("Số phiếu (nhập hoặc quét mã QR)", "Form serial (type or scan the QR code)")) }
            input #serial type="text" name="serial" autocomplete="off" autofocus required;
            button type="submit" { (lang.pick("Mở phiếu", "Open form")) }
        }
    }
}

pub async fn entry_start(
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = page_lang(&req);
    let body = serial_box(lang, &user, q.ok.as_deref(), q.last.as_deref(), None);
    html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/entry",
            lang.pick("Nhập phiếu giấy", "Paper entry"),
            body,
        ),
    )
}

#[derive(Deserialize)]
pub struct OpenQuery {
    serial: String,
}

pub async fn entry_open(
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OpenQuery>,
) -> HttpResponse {
    match crate::paper::serial::normalize(&q.serial) {
        Some(serial) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/paper/entry/{serial}")))
            .finish(),
        None => {
            let lang = page_lang(&req);
            let body = serial_box(
                lang,
                &user,
                None,
                None,
                Some(lang.pick(
                    "Số phiếu không hợp lệ (10 ký tự, ví dụ ABCD-EFGH-23).",
                    "Not a serial (10 characters, e.g. ABCD-EFGH-23).",
                )),
            );
            html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                staff_page(
                    lang,
                    &user,
                    "/paper/entry",
                    lang.pick("Nhập phiếu giấy", "Paper entry"),
                    body,
                ),
            )
        }
    }
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
struct Shown<'a> {
    given: &'a [(String, String)],
    problems: &'a AnswerProblems,
    issues: &'a [(String, Msg)],
    /// Asks to confirm a blank form.
    blank_confirm: bool,
}

/// The entry form: every question with its keys, prefilled with what was given.
fn entry_form(
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

async fn load_form(
    state: &AppState,
    user: &CurrentUser,
    serial: String,
) -> Result<PaperForm, AppError> {
    let forms = state.forms.clone();
    let u = user.0.user.clone();
    state
        .with_conn(move |conn| entry::find(conn, &forms, &u, &serial))
        .await
}

pub async fn entry_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let typed_by_me = paper.passes.iter().any(|(_, t)| *t == user.0.user.id);
    let title = format!("{} {}", lang.pick("Phiếu", "Form"), paper.serial);
    if paper.status == "verified"
        || paper.status == "disputed"
        || typed_by_me
        || paper.passes.len() >= 2
        || (paper.passes.len() == 1 && !paper.double_entry)
    {
        let text = if typed_by_me {
            lang.pick(
                "Ông/Bà đã nhập phiếu này.",
                "You have already keyed this form.",
            )
        } else {
            lang.pick(
                "Phiếu này đã được nhập đủ.",
                "This form has been keyed in full.",
            )
        };
        let body = html! { p.notice { (text) } p { a href="/paper/entry" { (lang.pick("Nhập phiếu khác", "Key another form")) } } };
        return Ok(html_response(
            StatusCode::CONFLICT,
            staff_page(lang, &user, "/paper/entry", &title, body),
        ));
    }
    let body = html! {
        p.meta { (paper.unit_name) " · " (lang.pick("Lô ", "Batch ")) (paper.batch_code)
            @if paper.double_entry { " · " (lang.pick("nhập hai lần", "double entry")) } }
        (entry_form(lang, &user, &format!("/paper/entry/{}", paper.serial), &paper.form, &Shown { given: &[], problems: &AnswerProblems::new(), issues: &[], blank_confirm: false }))
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, "/paper/entry", &title, body),
    ))
}

pub async fn entry_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let pairs = form_pairs(&body)?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let started = field("started_at")
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.naive_utc())
        .unwrap_or_else(crate::db::now);
    let typing = Typing {
        answers: pairs.clone(),
        confirm_blank: field("confirm_blank").is_some(),
        started_at: started,
        keystrokes: field("keystrokes")
            .and_then(|k| k.parse().ok())
            .unwrap_or(0),
    };
    let typist = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let p = paper.clone();
    let result = state
        .with_conn(move |conn| Ok(entry::save(conn, &typist, &p, &typing, offset)))
        .await?;
    let serial = paper.serial.clone();
    match result {
        Ok(saved) => {
            let ok = match saved {
                Saved::Verified => "verified",
                Saved::AwaitingSecondEntry => "second",
                Saved::Disputed => "disputed",
            };
            Ok(HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/paper/entry?ok={ok}&last={serial}"),
                ))
                .finish())
        }
        Err(EntryError::Invalid(problems, issues)) => {
            let blank = issues.iter().any(|(k, _)| k == "_form");
            let shown = Shown {
                given: &pairs,
                problems: &problems,
                issues: &issues,
                blank_confirm: blank,
            };
            Ok(refused(
                lang,
                &user,
                "/paper/entry",
                &format!("/paper/entry/{serial}"),
                &paper,
                &shown,
            ))
        }
        Err(EntryError::Other(e)) => Err(e),
    }
}

// ---------------------------------------------------------------- adjudication and typists

pub async fn disputes(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let org = org_scope(&user);
    let rows = state
        .with_conn(move |conn| Ok(entry::disputed(conn, org.as_deref())?))
        .await?;
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        p.muted { (lang.pick("Phiếu có hai lần nhập khác nhau. Người thứ ba (không phải người đã nhập) đối chiếu phiếu giấy và chọn câu trả lời đúng.",
                             "Forms whose two typings differ. A third person (not one of the typists) checks the paper form and decides.")) }
        table #disputes {
            thead { tr { th { (lang.pick("Số phiếu", "Serial")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Lô", "Batch")) } } }
            tbody { @for (serial, unit, batch) in &rows { tr {
                td { a href=(format!("/paper/disputes/{serial}")) { (serial) } } td { (unit) } td { (batch) }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/disputes",
            lang.pick("Phân xử khác biệt", "Adjudication"),
            body,
        ),
    ))
}

pub async fn dispute(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let member = paper.member_id.clone();
    let (differences, first) = state
        .with_conn(move |conn| {
            Ok((
                entry::disagreements(conn, &member)?,
                entry::first_typing(conn, &member)?,
            ))
        })
        .await?;
    let body = html! {
        table #differences {
            thead { tr { th { (lang.pick("Câu", "Question")) } th { (lang.pick("Lần nhập 1", "Typing 1")) } th { (lang.pick("Lần nhập 2", "Typing 2")) } } }
            tbody { @for (code, a, b) in &differences { tr { td { (code) } td { (a) } td { (b) } } } }
        }
        p.muted { (lang.pick("Phiếu dưới đây điền sẵn lần nhập 1; sửa các câu khác biệt theo phiếu giấy rồi lưu.", "The form below holds typing 1; fix the differing answers from the paper form and save.")) }
        (entry_form(lang, &user, &format!("/paper/disputes/{}", paper.serial), &paper.form, &Shown { given: &first, problems: &AnswerProblems::new(), issues: &[], blank_confirm: false }))
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/disputes",
            &format!(
                "{} {}",
                lang.pick("Phân xử phiếu", "Adjudicate form"),
                paper.serial
            ),
            body,
        ),
    ))
}

pub async fn resolve(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let pairs = form_pairs(&body)?;
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let judge = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let (p, answers) = (paper.clone(), pairs.clone());
    match state
        .with_conn(move |conn| Ok(entry::adjudicate(conn, &judge, &p, &answers, offset)))
        .await?
    {
        Ok(()) => Ok(done("/paper/disputes", "saved")),
        Err(EntryError::Invalid(problems, issues)) => {
            let shown = Shown {
                given: &pairs,
                problems: &problems,
                issues: &issues,
                blank_confirm: false,
            };
            Ok(refused(
                lang,
                &user,
                "/paper/disputes",
                &format!("/paper/disputes/{}", paper.serial),
                &paper,
                &shown,
            ))
        }
        Err(EntryError::Other(e)) => Err(e),
    }
}

pub async fn typists(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let org = org_scope(&user);
    let rows = state
        .with_conn(move |conn| {
            let stats = entry::typist_stats(conn, org.as_deref())?;
            let mut named = Vec::with_capacity(stats.len());
            for s in stats {
                let name = crate::accounts::users::find(conn, &s.typist_id)?
                    .map(|u| format!("{} ({})", u.display_name, u.username))
                    .unwrap_or_default();
                named.push((name, s));
            }
            Ok(named)
        })
        .await?;
    let body = html! {
        table #typists {
            thead { tr { th { (lang.pick("Người nhập", "Typist")) } th { (lang.pick("Số phiếu", "Forms")) } th { (lang.pick("Thời gian trung vị / phiếu", "Median time per form")) } th { (lang.pick("Tỷ lệ khác biệt khi nhập hai lần", "Disagreement rate in double entry")) } } }
            tbody { @for (name, s) in &rows { tr {
                td { (name) } td { (s.forms) }
                td { (s.median_seconds.map(|v| format!("{v:.0} s")).unwrap_or_else(|| "—".into())) }
                td { (s.disagreement_rate.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "—".into())) }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/typists",
            lang.pick("Năng suất nhập liệu", "Typist statistics"),
            body,
        ),
    ))
}

// ---------------------------------------------------------------- corrections (administrators)

pub async fn correction_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let p = paper.clone();
    let current = state
        .with_conn(move |conn| crate::paper::correction::current(conn, &p))
        .await?;
    let body = html! {
        p.muted { (lang.pick("Sửa câu trả lời của phiếu đã xác nhận. Chỉ số được tính lại ngay; nhật ký lưu giá trị cũ và mới.",
                             "Correct a verified form. The index is updated at once; the audit log keeps old and new values.")) }
        (entry_form(lang, &user, &format!("/paper/forms/{}/correct", paper.serial), &paper.form, &Shown { given: &current, problems: &AnswerProblems::new(), issues: &[], blank_confirm: false }))
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin/samples",
            &format!(
                "{} {}",
                lang.pick("Sửa phiếu", "Correct form"),
                paper.serial
            ),
            body,
        ),
    ))
}

pub async fn correct(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let pairs = form_pairs(&body)?;
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let admin = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let (p, answers) = (paper.clone(), pairs.clone());
    match state
        .with_conn(move |conn| {
            Ok(crate::paper::correction::correct(
                conn, &admin, &p, &answers, offset,
            ))
        })
        .await?
    {
        Ok(()) => Ok(done(
            &format!("/paper/forms/{}/correct", paper.serial),
            "saved",
        )),
        Err(Ok(problems)) => {
            let shown = Shown {
                given: &pairs,
                problems: &problems,
                issues: &[],
                blank_confirm: false,
            };
            Ok(refused(
                lang,
                &user,
                "/admin/samples",
                &format!("/paper/forms/{}/correct", paper.serial),
                &paper,
                &shown,
            ))
        }
        Err(Err(e)) => Err(e),
    }
}

pub async fn undo(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let typist = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let p = paper.clone();
    state
        .with_conn(move |conn| entry::undo_last(conn, &typist, &p, offset))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/paper/entry?ok=undone&last={}", paper.serial),
        ))
        .finish())
}

/// The (name, value) pairs of a posted form, as the answer validator takes them.
fn form_pairs(body: &web::Bytes) -> Result<Vec<(String, String)>, AppError> {
    serde_urlencoded::from_bytes(body).map_err(|_| {
        AppError::bad_request(
            "body",
            Msg::new("Dữ liệu gửi lên không hợp lệ.", "Invalid form data."),
        )
    })
}

/// A form sent back unsaved (422) with its problems beside the questions and what was typed kept.
fn refused(
    lang: Lang,
    user: &CurrentUser,
    nav: &str,
    action: &str,
    paper: &PaperForm,
    shown: &Shown<'_>,
) -> HttpResponse {
    let body = entry_form(lang, user, action, &paper.form, shown);
    let title = format!("{} {}", lang.pick("Phiếu", "Form"), paper.serial);
    html_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        staff_page(lang, user, nav, &title, body),
    )
}
