//! `/public/releases`: every release with its downloads (signed JSON, signature, CSV), each
//! release's page with what a correction changed, and the DCAT-style catalogue.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::{href, public_page, release_line};
use crate::error::AppError;
use crate::publish::release::{self, Release};
use crate::publish::{open_data, signing};
use crate::web::AppState;
use crate::web::lang::page_lang;

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (all, current) = state
        .with_read_conn(|conn| Ok((release::list(conn)?, release::current(conn)?)))
        .await?;
    let body = html! {
        p { (lang.pick(
            "Mỗi đợt công bố là bản chốt số liệu của một kỳ, không thay đổi sau khi công bố và được ký số (Ed25519). Khi cần sửa, một đợt mới của cùng kỳ được công bố và liệt kê các thay đổi.",
            "Each release freezes the figures of one period; it never changes once published and is signed (Ed25519). A correction is a new release of the same period that lists what changed.")) }
        p { a href=(href(lang, "/public/key")) { (lang.pick("Khóa công khai và cách kiểm tra chữ ký", "Public key and how to verify a download")) }
            " · " a href="/public/catalog.json" { (lang.pick("Danh mục dữ liệu (DCAT, JSON)", "Data catalogue (DCAT, JSON)")) } }
        @if all.is_empty() {
            p { (lang.pick("Chưa có kết quả nào được công bố.", "No results have been published yet.")) }
        } @else {
            table #public-releases {
                thead { tr {
                    th scope="col" { (lang.pick("Kỳ", "Period")) }
                    th scope="col" { (lang.pick("Lần", "Release")) }
                    th scope="col" { (lang.pick("Ngày", "Date")) }
                    th scope="col" { (lang.pick("Tải về", "Downloads")) }
                } }
                tbody { @for r in &all { tr {
                    th scope="row" { a href=(href(lang, &format!("/public/releases/{}", r.id))) { (r.period) } }
                    td { (r.sequence)
                        @if !current.iter().any(|c| c.id == r.id) { " " span.muted { (lang.pick("(đã được đính chính)", "(corrected)")) } }
                        @if r.corrects.is_some() { " " span.muted { (lang.pick("(đính chính)", "(correction)")) } } }
                    td { (r.created_at.format("%Y-%m-%d")) }
                    td {
                        a href=(format!("/public/releases/{}/release.json", r.id)) { "JSON" } " · "
                        a href=(format!("/public/releases/{}/release.json.sig", r.id)) { (lang.pick("chữ ký", "signature")) } " · "
                        a href=(format!("/public/releases/{}/release.csv", r.id)) { "CSV" }
                    }
                } } }
            }
        }
    };
    Ok(public_page(
        &req,
        lang,
        lang.pick("Các đợt công bố", "Releases"),
        body,
    ))
}

pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let id = path.into_inner();
    let r = state
        .with_read_conn(move |conn| release::find(conn, &id))
        .await?;
    let doc = r.parsed()?;
    let key = signing::PublicKey::parse(&r.public_key).ok();
    let body = html! {
        (release_line(lang, &doc))
        @if !doc.release.note.is_empty() { p { strong { (lang.pick("Ghi chú: ", "Note: ")) } (doc.release.note) } }
        ul {
            li { a href=(format!("/public/releases/{}/release.json", r.id)) { (lang.pick("Số liệu (JSON, đã ký)", "Figures (JSON, signed)")) } }
            li { a href=(format!("/public/releases/{}/release.json.sig", r.id)) { (lang.pick("Chữ ký Ed25519 (64 byte)", "Ed25519 signature (64 bytes)")) } }
            li { a href=(format!("/public/releases/{}/release.csv", r.id)) { (lang.pick("Số liệu (CSV, UTF-8)", "Figures (CSV, UTF-8)")) } }
        }
        p { "SHA-256 (JSON): " code #release-sha256 { (r.sha256) } }
        @if let Some(k) = key { p { (lang.pick("Dấu vân tay khóa ký: ", "Signing key fingerprint: ")) code { (k.fingerprint()) } } }
        p { (lang.pick("Phương pháp: ", "Method: ")) code { (r.method_version) } }
        @if let Some(previous) = &doc.release.corrects {
            h2 { (lang.pick("Thay đổi so với lần công bố trước", "Changes against the previous release")) }
            p { a href=(href(lang, &format!("/public/releases/{previous}"))) { (lang.pick("Lần công bố được đính chính", "The corrected release")) } }
            @if doc.changes.is_empty() {
                p { (lang.pick("Không có số liệu nào thay đổi.", "No figure changed.")) }
            } @else {
                table #release-changes .changes {
                    thead { tr { th scope="col" { (lang.pick("Số liệu", "Figure")) } th scope="col" { (lang.pick("Trước", "Before")) } th scope="col" { (lang.pick("Sau", "After")) } } }
                    tbody { @for c in &doc.changes { tr { th scope="row" { code { (c.path) } } td { (shown_value(&c.previous)) } td { (shown_value(&c.current)) } } } }
                }
            }
        }
    };
    Ok(public_page(
        &req,
        lang,
        &format!(
            "{} {} ({})",
            lang.pick("Công bố kỳ", "Release of period"),
            r.period,
            r.sequence
        ),
        body,
    ))
}

/// A changed value for reading: numbers to two decimals (the JSON has them unrounded).
fn shown_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            n.as_f64().map(|f| format!("{f:.2}")).unwrap_or_default()
        }
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn download(content_type: &str, filename: String, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400, immutable"))
        .body(body)
}

async fn load(state: &AppState, id: String) -> Result<Release, AppError> {
    state
        .with_read_conn(move |conn| release::find(conn, &id))
        .await
}

fn file_stem(r: &Release) -> String {
    format!("sipas-{}-{}", r.period.replace("..", "_"), r.sequence)
}

/// The signed bytes, exactly as stored.
pub async fn json(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let r = load(&state, path.into_inner()).await?;
    Ok(download(
        "application/json",
        format!("{}.json", file_stem(&r)),
        r.document.clone().into_bytes(),
    ))
}

/// The raw 64-byte signature (what `openssl pkeyutl -sigfile` reads).
pub async fn signature(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let r = load(&state, path.into_inner()).await?;
    Ok(download(
        "application/octet-stream",
        format!("{}.json.sig", file_stem(&r)),
        r.signature_bytes()?,
    ))
}

pub async fn csv(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (r, doc) = state
        .with_read_conn(move |conn| Ok((release::find(conn, &id)?, release::document(conn, &id)?)))
        .await?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("{}.csv", file_stem(&r)),
        open_data::csv(&doc),
    ))
}

/// `/public/catalog.json`: the releases in force, DCAT-style.
pub async fn catalog(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let releases = state
        .with_read_conn(|conn| {
            let mut out = Vec::new();
            for summary in release::current(conn)? {
                let r = release::find(conn, &summary.id)?;
                let doc = release::document(conn, &summary.id)?;
                out.push((r, doc));
            }
            Ok(out)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .json(open_data::catalog(&state.public_base(), &releases)))
}
