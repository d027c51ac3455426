//! `/public/key`: the public key(s) that signed releases and how to check a download;
//! `/public/key.pem` the newest key as PEM.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::public_page;
use crate::error::AppError;
use crate::i18n::Msg;
use crate::publish::release;
use crate::publish::signing::PublicKey;
use crate::web::AppState;
use crate::web::lang::page_lang;

async fn keys(state: &AppState) -> Result<Vec<(PublicKey, chrono::NaiveDateTime)>, AppError> {
    let stored = state.with_read_conn(release::public_keys).await?;
    Ok(stored
        .into_iter()
        .filter_map(|(k, at)| PublicKey::parse(&k).ok().map(|k| (k, at)))
        .collect())
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let keys = keys(&state).await?;
    let base = state.public_base();
    let body = html! {
        p { (lang.pick(
            "Mỗi tệp JSON công bố được ký bằng khóa Ed25519 của cơ quan công bố. Chữ ký chứng minh tệp không bị sửa sau khi công bố: chỉ cần thay đổi một con số, việc kiểm tra sẽ thất bại.",
            "Every published JSON file is signed with the publisher's Ed25519 key. The signature proves the file was not changed after publication: change one figure and verification fails.")) }
        @if keys.is_empty() {
            p { (lang.pick("Chưa có đợt công bố nào, nên chưa có khóa.", "Nothing is published yet, so there is no key yet.")) }
        }
        @for (i, (key, since)) in keys.iter().enumerate() {
            h2 { @if i == 0 { (lang.pick("Khóa hiện tại", "Current key")) } @else { (lang.pick("Khóa trước đây", "Earlier key")) } }
            p { (lang.pick("Dấu vân tay (16 ký tự đầu SHA-256 của khóa): ", "Fingerprint (first 16 hex digits of the key's SHA-256): ")) code { (key.fingerprint()) }
                " · " (lang.pick("dùng đến ", "last used ")) (since.format("%Y-%m-%d")) }
            pre.key { (key.to_pem()) }
            p { "Base64: " code { (key.to_base64()) } }
        }
        p { a href="/public/key.pem" { (lang.pick("Tải khóa công khai (PEM)", "Download the public key (PEM)")) } }
        h2 { (lang.pick("Cách kiểm tra một tệp đã tải", "How to verify a download")) }
        p { (lang.pick("Tải tệp JSON và tệp chữ ký (.sig) của đợt công bố, rồi dùng OpenSSL 3:", "Download the release's JSON and its signature (.sig), then with OpenSSL 3:")) }
        pre { "curl -o key.pem " (base) "/public/key.pem\n"
              "curl -o release.json " (base) "/public/releases/ID/release.json\n"
              "curl -o release.json.sig " (base) "/public/releases/ID/release.json.sig\n"
              "openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in release.json -sigfile release.json.sig" }
        p { (lang.pick("Kết quả đúng là “Signature Verified Successfully”. Hoặc dùng chương trình sipas:", "A good file prints “Signature Verified Successfully”. Or with the sipas program:")) }
        pre { "sipas release verify release.json --public-key key.pem" }
        p { (lang.pick(
            "Hãy so dấu vân tay của khóa với dấu vân tay cơ quan công bố đăng ở nơi khác (công báo, văn bản giấy): chữ ký chỉ có giá trị khi khóa là của cơ quan đó.",
            "Compare the key's fingerprint with the one the publisher announces elsewhere (official gazette, a signed letter): a signature is only worth the key behind it.")) }
    };
    Ok(public_page(
        &req,
        lang,
        lang.pick(
            "Khóa công khai và kiểm tra chữ ký",
            "Public key and verification",
        ),
        body,
    ))
}

pub async fn pem(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let keys = keys(&state).await?;
    let (key, _) = keys.first().ok_or_else(|| {
        AppError::NotFound(Msg::new(
            "Chưa có khóa công khai.",
            "There is no public key yet.",
        ))
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-pem-file")
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(key.to_pem()))
}
