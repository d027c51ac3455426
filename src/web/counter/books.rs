//! `GET/POST /agency/units/{id}/books`: staff issue and revoke a unit's offline token books;
//! `GET /agency/units/{id}/books/{book}/print`: the book's A4 sheets of QR stickers.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, PreEscaped, html};

use super::unit_tools::{ActionForm, ToolPage, revoke_button};
use crate::counter::books::{BookAction, BookPolicy, BooksPage, MAX_BOOK_SIZE, books, sheet};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::csrf_field;

fn render(lang: Lang, user: &CurrentUser, page: &BooksPage) -> HttpResponse {
    let unit_id = &page.unit.id;
    let action = format!("/agency/units/{unit_id}/books");
    ToolPage {
        unit: &page.unit,
        title: lang.pick("Sổ phiếu in sẵn", "Token books"),
        notices: html! {
            @if let Some(book) = &page.issued {
                div.notice role="status" {
                    p { (lang.pick("Đã phát hành sổ phiếu số ", "Issued token book no. ")) strong { (book.number) } " (" (book.size) (lang.pick(" tem).", " stickers).")) }
                    p { a href=(format!("/agency/units/{unit_id}/books/{}/print", book.id)) { (lang.pick("In các tờ tem", "Print its sticker sheets")) } }
                }
            }
            @if page.revoked { div.notice role="status" { (lang.pick("Đã thu hồi sổ phiếu: các tem chưa dùng sẽ bị từ chối.", "Book revoked: its unused stickers will be refused.")) } }
            p { (lang.pick(
                "Sổ phiếu in sẵn dùng khi mạng ngừng hoạt động hoặc phiếu hẹn đã in trước khi có khảo sát: mỗi tem là một mã QR khảo sát dùng một lần, có số sê-ri. Phần mềm một cửa có thể gắn tem với hồ sơ sau (API /api/v1/stickers/attach).",
                "Token books are for when the network is down or the receipt was printed before the survey existed: each sticker is a single-use survey QR code with a serial. The one-stop software can attach a sticker to its dossier later (API /api/v1/stickers/attach).")) }
        },
        heading: lang.pick("Sổ phiếu", "Token books"),
        none: lang.pick("Chưa có sổ phiếu nào.", "No books yet."),
        empty: page.books.is_empty(),
        table: html! {
            table #books {
                thead { tr {
                    th { (lang.pick("Số sổ", "Book")) } th { (lang.pick("Số tem", "Stickers")) }
                    th { (lang.pick("Đã trả lời", "Answered")) } th { (lang.pick("Đã gắn hồ sơ", "Attached")) }
                    th { (lang.pick("Phát hành (UTC)", "Issued (UTC)")) } th { (lang.pick("Trạng thái", "Status")) } th {}
                } }
                tbody { @for b in &page.books { tr {
                    td { (b.number) } td { (b.size) } td { (b.answered) } td { (b.attached) }
                    td { (b.created_at.format("%Y-%m-%d")) }
                    td { @if let Some(at) = b.revoked_at { (lang.pick("đã thu hồi ", "revoked ")) (at.format("%Y-%m-%d")) } @else { (lang.pick("hiệu lực đến ", "valid until ")) (b.expires_at.format("%Y-%m-%d")) } }
                    td {
                        a href=(format!("/agency/units/{unit_id}/books/{}/print", b.id)) { (lang.pick("In", "Print")) }
                        @if b.revoked_at.is_none() { (revoke_button(lang, user, &action, "book", &b.id)) }
                    }
                } } }
            }
        },
        new: html! {
            h2 { (lang.pick("Phát hành sổ mới", "Issue a new book")) }
            form method="post" action=(action) {
                (csrf_field(user))
                input type="hidden" name="action" value="issue";
                label for="size" { (lang.pick("Số tem", "Number of stickers")) }
                input #size name="size" type="number" min="1" max=(MAX_BOOK_SIZE) value="24" required;
                button type="submit" { (lang.pick("Phát hành", "Issue")) }
            }
        },
    }
    .render(lang, user)
}

fn policy_of(state: &AppState) -> (std::sync::Arc<crate::forms::FormRegistry>, String) {
    (
        state.forms.clone(),
        state.settings.default_counter_form.clone(),
    )
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let viewer = user.0.user.clone();
    let unit_id = path.into_inner();
    let (forms, default_form) = policy_of(&state);
    let page = state
        .with_conn(move |conn| {
            let policy = BookPolicy {
                forms: &forms,
                default_form: &default_form,
            };
            books(conn, &viewer, &policy, &unit_id, None)
        })
        .await?;
    Ok(render(lang, &user, &page))
}

pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let form = ActionForm::read(&body);
    let action = match form.field("action").as_str() {
        "revoke" => BookAction::Revoke(form.field("book")),
        _ => BookAction::Issue(form.field("size")),
    };
    let viewer = user.0.user.clone();
    let unit_id = path.into_inner();
    let (forms, default_form) = policy_of(&state);
    let page = state
        .with_conn(move |conn| {
            let policy = BookPolicy {
                forms: &forms,
                default_form: &default_form,
            };
            books(conn, &viewer, &policy, &unit_id, Some(action))
        })
        .await?;
    Ok(render(lang, &user, &page))
}

pub async fn print(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let viewer = user.0.user.clone();
    let (unit_id, book_id) = path.into_inner();
    let secret = state.secret.clone();
    let (unit, book, stickers) = state
        .with_conn(move |conn| sheet(conn, &viewer, &secret, &unit_id, &book_id))
        .await?;
    let base = state.public_base();
    let mut items = Vec::with_capacity(stickers.len());
    for s in &stickers {
        let url = state.survey_url(s.token.as_str());
        let svg = crate::survey::qr::svg(&crate::survey::qr::qr_text(&base, &url))?;
        // Inline in HTML: without the XML declaration.
        let svg = svg
            .find("<svg")
            .map(|i| svg[i..].to_string())
            .unwrap_or(svg);
        items.push((s.label.clone(), url, svg));
    }
    let title = format!(
        "{} {} · {}",
        lang.pick("Sổ phiếu số", "Token book no."),
        book.number,
        unit.name(lang)
    );
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href=(concat!("/static/counter.css?v=", env!("CARGO_PKG_VERSION")));
            }
            body.sticker-sheets {
                header.no-print {
                    h1 { (title) }
                    p { (lang.pick(
                        "Khổ A4, 3 × 7 tem mỗi trang. In với tỷ lệ 100 %, không lề. Mỗi tem dùng một lần.",
                        "A4, 3 × 7 stickers a page. Print at 100 % scale, no margins. Each sticker works once.")) }
                    @if book.revoked_at.is_some() { p role="alert" { (lang.pick("Sổ này đã bị thu hồi: các tem không còn dùng được.", "This book is revoked: its stickers no longer work.")) } }
                }
                main.stickers {
                    @for (label, url, svg) in &items {
                        div.sticker data-url=(url) {
                            div.qr role="img" aria-label=(format!("QR {label}")) { (PreEscaped(svg)) }
                            div.text {
                                p.lead lang="vi" { "Đánh giá sự phục vụ" }
                                p.en lang="en" { "Rate our service" }
                                p.unit { (unit.name_vi) }
                                p.serial { (label) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(StatusCode::OK, markup))
}
