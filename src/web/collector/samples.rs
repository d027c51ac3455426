//! Sample pages: the administrator draws samples; administrators and collectors download the
//! worklist (CSV) and print the paper forms (A4, one per page, serial and its QR code). What a
//! collector may see of a sample is decided in `paper::samples`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::views::actor;
use crate::error::AppError;
use crate::forms::QuestionType;
use crate::i18n::Lang;
use crate::paper::samples::{self, DrawFields, PrintRun};
use crate::paper::sampling::StoredSample;
use crate::paper::status::MemberRole;
use crate::report::export::{Cell, to_csv};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::{html_response, page};
use crate::web::staff::{csrf_field, error_box, notice, staff_page};
use crate::web::view::scale_label;
use crate::web::view::{done, failed_status};

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

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let (samples, periods) = samples::overview(&state).await?;
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

pub async fn draw(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<DrawFields>,
) -> Result<HttpResponse, AppError> {
    let drawn = match form.parse(state.settings.sample_margin) {
        Ok(request) => samples::draw(&state, actor(&user), request).await,
        Err(e) => Err(e),
    };
    match drawn {
        Ok(s) => Ok(done(&format!("/paper/samples/{}", s.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let (samples, periods) = samples::overview(&state).await?;
            Ok(html_response(
                failed_status(&e),
                samples_page(page_lang(&req), &user, &samples, &periods, None, Some(&e)),
            ))
        }
    }
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let s = samples::open(&state, actor(&user), path.into_inner())
        .await?
        .sample;
    let all_units = match actor(&user).paper_scope() {
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
    let nav = if actor(&user).paper_scope().is_none() {
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
    let (s, rows) =
        samples::worklist(&state, actor(&user), path.into_inner(), q.unit.clone()).await?;
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
            Cell::Text(if MemberRole::parse(&r.role) == Some(MemberRole::Main) {
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
    let PrintRun {
        sample: s,
        form,
        rows,
    } = samples::print(&state, actor(&user), path.into_inner(), q.unit.clone()).await?;
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
