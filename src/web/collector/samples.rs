//! Sample pages: the administrator draws samples; administrators and collectors download the
//! worklist (CSV) and print the paper forms (A4, one per page, serial and its QR code).
//!
//! A collector organisation sees only the forms handed to it (its batches): the worklist carries
//! dossier codes, so another organisation's units, and samples it was given nothing of, are
//! "not found", as for an agency outside its subtree.

use std::collections::HashSet;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use crate::accounts::Role;
use crate::error::AppError;
use crate::forms::QuestionType;
use crate::i18n::{Lang, Msg};
use crate::paper::custody;
use crate::paper::sampling::{self, SampleRequest, StoredSample};
use crate::report::export::{Cell, to_csv};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::admin::{done, failed_status};
use crate::web::citizen::scale_label;
use crate::web::lang::page_lang;
use crate::web::layout::{html_response, page};
use crate::web::staff::{csrf_field, error_box, notice, staff_page};

#[derive(Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

fn samples_page(
    lang: Lang,
    user: &CurrentUser,
    samples: &[StoredSample],
    periods: &[crate::periods::SurveyPeriod],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        p.muted { (lang.pick(
            "Mẫu khảo sát độc lập: chọn ngẫu nhiên người đã nhận kết quả trong kỳ, cỡ mẫu n = N/(1+N·e²) mỗi đơn vị, kèm danh sách dự phòng. Có thể lặp lại đúng mẫu từ hạt giống (seed).",
            "Independent survey samples: people who received their result in the period, drawn at random, n = N/(1+N·e²) per unit, with a reserve list. A sample can be reproduced from its seed.")) }
        table #samples {
            thead { tr { th { (lang.pick("Kỳ", "Period")) } th { (lang.pick("Tạo lúc", "Drawn")) } th { "Seed" } th { (lang.pick("Đơn vị: N / cần / chọn / dự phòng", "Units: N / required / drawn / reserve")) } th {} } }
            tbody { @for s in samples { tr {
                td { (s.period_code) }
                td { (s.created_at.format("%Y-%m-%d %H:%M")) " · " (s.created_by) }
                td { code { (s.seed) } }
                td { @for (_, code, _, n, req, drawn, reserve) in &s.units { (code) ": " (n) " / " (req) " / " (drawn) " / " (reserve) br; } }
                td { a href=(format!("/paper/samples/{}", s.id)) { (lang.pick("Danh sách, phiếu in", "Worklist, forms")) } }
            } } }
        }
        h2 { (lang.pick("Chọn mẫu mới", "Draw a sample")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/samples" {
            (csrf_field(user))
            label for="period" { (lang.pick("Kỳ khảo sát", "Survey period")) }
            select #period name="period" { @for p in periods { option value=(p.code) { (p.code) " — " (p.name(lang)) } } }
            label for="units" { (lang.pick("Mã các đơn vị (cách nhau bởi dấu phẩy)", "Unit codes (comma-separated)")) }
            input #units type="text" name="units" required;
            label for="margin" { (lang.pick("Sai số e", "Margin e")) }
            input #margin type="text" name="margin" value="0.05";
            label for="quota" { (lang.pick("Hoặc số phiếu cố định mỗi đơn vị (để trống: theo công thức)", "Or a fixed quota per unit (empty: the formula)")) }
            input #quota type="text" name="quota";
            label for="reserve" { (lang.pick("Tỷ lệ dự phòng", "Reserve share")) }
            input #reserve type="text" name="reserve" value="0.2";
            label for="seed" { (lang.pick("Seed (để trống: ngẫu nhiên, được lưu lại)", "Seed (empty: random, recorded)")) }
            input #seed type="text" name="seed";
            label { input type="checkbox" name="by_procedure" value="on"; " " (lang.pick("Phân tầng theo thủ tục", "Stratify by procedure")) }
            button type="submit" { (lang.pick("Chọn mẫu", "Draw")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/samples",
        lang.pick("Mẫu khảo sát giấy", "Paper survey samples"),
        body,
    )
}

async fn load(
    state: &AppState,
) -> Result<(Vec<StoredSample>, Vec<crate::periods::SurveyPeriod>), AppError> {
    state
        .with_conn(|conn| Ok((sampling::list(conn)?, crate::periods::list(conn)?)))
        .await
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let (samples, periods) = load(&state).await?;
    Ok(html_response(
        StatusCode::OK,
        samples_page(
            page_lang(&req),
            &user,
            &samples,
            &periods,
            q.ok.as_deref(),
            None,
        ),
    ))
}

#[derive(Deserialize)]
pub struct DrawForm {
    period: String,
    units: String,
    #[serde(default)]
    margin: String,
    #[serde(default)]
    quota: String,
    #[serde(default)]
    reserve: String,
    #[serde(default)]
    seed: String,
    by_procedure: Option<String>,
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, AppError> {
    let t = text.trim().replace(',', ".");
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| {
        AppError::field(
            field,
            Msg::new("Giá trị phải là một số.", "The value must be a number."),
        )
    })
}

pub async fn draw(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<DrawForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let actor = user.0.user.actor();
    let (secret, forms, offset) = (
        state.secret.clone(),
        state.forms.clone(),
        state.policies.utc_offset,
    );
    let margin_default = state.settings.sample_margin;
    let result = state
        .with_conn(move |conn| {
            let request = SampleRequest {
                period_code: f.period.trim().to_string(),
                unit_codes: f
                    .units
                    .split([',', ' ', ';'])
                    .map(|c| c.trim().to_ascii_uppercase())
                    .filter(|c| !c.is_empty())
                    .collect(),
                seed: number("seed", &f.seed)?,
                margin: number("margin", &f.margin)?.unwrap_or(margin_default),
                quota: number("quota", &f.quota)?,
                reserve_share: number("reserve", &f.reserve)?.unwrap_or(0.2),
                by_procedure: f.by_procedure.is_some(),
                form_code: "sipas".into(),
            };
            sampling::draw(conn, &secret, &forms, &actor, &request, offset)
        })
        .await;
    match result {
        Ok(s) => Ok(done(&format!("/paper/samples/{}", s.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let (samples, periods) = load(&state).await?;
            Ok(html_response(
                failed_status(&e),
                samples_page(page_lang(&req), &user, &samples, &periods, None, Some(&e)),
            ))
        }
    }
}

/// The collector organisation whose view is limited, `None` for administrators.
pub fn collector_scope(user: &CurrentUser) -> Option<String> {
    match user.0.user.role() {
        Role::Admin => None,
        _ => Some(user.0.user.collector_org_id.clone().unwrap_or_default()),
    }
}

/// A sample as the user may see it: for a collector, only the units and serials handed to its
/// organisation (`None`: everything).
struct Visible {
    sample: StoredSample,
    serials: Option<HashSet<String>>,
}

impl Visible {
    fn shows(&self, serial: &str) -> bool {
        self.serials.as_ref().is_none_or(|s| s.contains(serial))
    }
}

fn no_sample() -> AppError {
    AppError::NotFound(Msg::new("Không có mẫu này.", "No such sample."))
}

async fn find_sample(
    state: &AppState,
    user: &CurrentUser,
    id: String,
) -> Result<Visible, AppError> {
    let scope = collector_scope(user);
    state
        .with_conn(move |conn| {
            let (sample, serials) =
                custody::visible_sample(conn, scope.as_deref(), &id)?.ok_or_else(no_sample)?;
            Ok(Visible { sample, serials })
        })
        .await
}

/// The sample's worklist rows the user may see (of one unit, if given); a unit with none is
/// "not found".
async fn visible_rows(
    state: &AppState,
    visible: &Visible,
    unit: Option<String>,
) -> Result<Vec<sampling::WorklistRow>, AppError> {
    if let Some(u) = &unit
        && !visible.sample.units.iter().any(|s| &s.0 == u)
    {
        return Err(AppError::NotFound(Msg::new(
            "Không có đơn vị này trong mẫu.",
            "No such unit in this sample.",
        )));
    }
    let id = visible.sample.id.clone();
    let mut rows = state
        .with_conn(move |conn| Ok(sampling::worklist(conn, &id, unit.as_deref())?))
        .await?;
    rows.retain(|r| visible.shows(&r.serial));
    Ok(rows)
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let s = find_sample(&state, &user, path.into_inner()).await?.sample;
    let all_units = match collector_scope(&user) {
        None => lang.pick(
            "Danh sách phát phiếu (CSV, mọi đơn vị)",
            "Worklist (CSV, all units)",
        ),
        Some(_) => lang.pick(
            "Danh sách phát phiếu (CSV, các đơn vị giao cho đơn vị thu thập của Ông/Bà)",
            "Worklist (CSV, the units handed to your organisation)",
        ),
    };
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        p { (lang.pick("Kỳ ", "Period ")) strong { (s.period_code) } " · seed " code { (s.seed) } " · e = " (s.margin)
            @if let Some(q) = s.quota { " · quota " (q) } }
        p { a href=(format!("/paper/samples/{}/worklist.csv", s.id)) { (all_units) } }
        table #sample-units {
            thead { tr { th { (lang.pick("Đơn vị", "Unit")) } th { "N" } th { (lang.pick("Cần", "Required")) } th { (lang.pick("Đã chọn", "Drawn")) } th { (lang.pick("Dự phòng", "Reserve")) } th {} } }
            tbody { @for (unit_id, code, name, n, req, drawn, reserve) in &s.units { tr {
                td { (code) " " (name) } td { (n) } td { (req) } td { (drawn) } td { (reserve) }
                td {
                    a href=(format!("/paper/samples/{}/forms?unit={unit_id}", s.id)) { (lang.pick("In phiếu", "Print forms")) } " · "
                    a href=(format!("/paper/samples/{}/worklist.csv?unit={unit_id}", s.id)) { "CSV" }
                }
            } } }
        }
    };
    let nav = if user.0.user.role() == crate::accounts::Role::Admin {
        "/admin/samples"
    } else {
        "/collector"
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            nav,
            &format!("{} {}", lang.pick("Mẫu", "Sample"), s.period_code),
            body,
        ),
    ))
}

#[derive(Deserialize)]
pub struct UnitQuery {
    unit: Option<String>,
}

pub async fn worklist_csv(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<UnitQuery>,
) -> Result<HttpResponse, AppError> {
    let visible = find_sample(&state, &user, path.into_inner()).await?;
    let rows = visible_rows(&state, &visible, q.unit.clone()).await?;
    let s = visible.sample;
    let header = [
        "serial",
        "list",
        "position",
        "unit",
        "unit_name",
        "dossier_code",
        "procedure",
        "completed_on",
    ];
    let mut table = vec![
        header
            .iter()
            .map(|h| Cell::Text(h.to_string()))
            .collect::<Vec<_>>(),
    ];
    for r in rows {
        table.push(vec![
            Cell::Text(r.serial),
            Cell::Text(if r.role == "main" {
                "chính / main".into()
            } else {
                "dự phòng / reserve".into()
            }),
            Cell::Number(r.position as f64),
            Cell::Text(r.unit_code),
            Cell::Text(r.unit_name),
            Cell::Text(r.dossier_code),
            Cell::Text(r.procedure_code),
            Cell::Text(
                (r.completed_at + chrono::Duration::hours(7))
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
        ]);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sipas-worklist-{}.csv\"",
                s.period_code
            ),
        ))
        .body(to_csv(&table)))
}

pub async fn forms(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<UnitQuery>,
) -> Result<HttpResponse, AppError> {
    let visible = find_sample(&state, &user, path.into_inner()).await?;
    let unit = q.unit.clone().ok_or_else(|| {
        AppError::field(
            "unit",
            Msg::new("Chọn một đơn vị để in.", "Choose a unit to print."),
        )
    })?;
    let rows = visible_rows(&state, &visible, Some(unit)).await?;
    let s = visible.sample;
    let form = state
        .forms
        .latest(&s.form_code)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("sample form missing")))?;
    let lang = Lang::Vi;
    let mut pages = Vec::with_capacity(rows.len());
    for r in &rows {
        let svg = crate::survey::qr::svg(&r.serial)?;
        // Inline in HTML: drop the XML declaration in front of the <svg> element.
        let qr = svg
            .find("<svg")
            .map(|i| svg[i..].to_string())
            .unwrap_or(svg);
        pages.push(html! {
            section.paper {
                header.paper-head {
                    div {
                        p.small { "Phiếu số / Serial" }
                        p.serial { (r.serial) }
                        p.small { (r.unit_name) }
                    }
                    div.qr { (PreEscaped(qr)) }
                }
                h1 { (form.title.vi) }
                @if let Some(intro) = &form.intro { p { (intro.vi) } }
                p.small { "Ông/Bà đánh dấu ✗ vào một ô cho mỗi câu. Nhân viên bưu điện sẽ thu lại phiếu sau 1–2 ngày." }
                @for section in &form.sections {
                    h2 { (section.title.vi) }
                    @for question in &section.questions {
                        div.pq {
                            p { strong { (question.code) } " " (question.text.vi) }
                            @match question.kind {
                                QuestionType::Scale5 | QuestionType::Scale3 => {
                                    p.boxes { @for level in crate::forms::answers::scale_levels(question.kind) { span { "☐ " (level) " " (scale_label(question.kind, *level, lang)) } } }
                                }
                                QuestionType::Choice | QuestionType::Multi => {
                                    p.boxes { @for (i, o) in question.options.iter().enumerate() { span { "☐ " (i + 1) " " (o.label.vi) } } }
                                }
                                QuestionType::Text => { div.lines {} }
                            }
                        }
                    }
                }
            }
        });
    }
    let body = html! {
        link rel="stylesheet" href="/static/paper.css";
        @if pages.is_empty() { p { "Không có phiếu nào cho đơn vị này trong mẫu." } }
        @for p in pages { (p) }
    };
    Ok(html_response(
        StatusCode::OK,
        page(
            lang,
            &format!("Phiếu khảo sát {}", s.period_code),
            None,
            body,
        ),
    ))
}
