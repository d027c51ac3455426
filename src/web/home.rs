//! The landing page: what this service is, for a citizen who typed the address by hand.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use maud::html;
use serde::Deserialize;

use super::layout::{html_response, page};
use crate::i18n::Lang;

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

pub async fn index(query: web::Query<LangQuery>) -> HttpResponse {
    let lang = Lang::from_param(query.lang.as_deref());
    let title = lang.pick(
        "Khảo sát sự hài lòng của người dân",
        "Citizen satisfaction survey",
    );
    let body = html! {
        h1 { (title) }
        p { (lang.pick(
            "Sau khi hoàn thành thủ tục hành chính, Ông/Bà có thể quét mã QR trên phiếu hẹn trả kết quả hoặc trên màn hình tại quầy để đánh giá chất lượng phục vụ. Mỗi mã chỉ dùng được một lần.",
            "After completing an administrative procedure, scan the QR code on your receipt or on the counter screen to rate the service. Each code can be used once.",
        )) }
        p { (lang.pick(
            "Ý kiến của Ông/Bà giúp cơ quan nhà nước cải thiện chất lượng phục vụ.",
            "Your opinion helps public agencies improve their service.",
        )) }
        p { a href=(if lang == Lang::En { "/public?lang=en" } else { "/public" }) { (lang.pick("Xem kết quả khảo sát đã công bố", "See the published survey results")) } }
        p.meta { a href="/api/openapi.json" { (lang.pick("Tài liệu API cho hệ thống một cửa", "API documentation for one-stop systems")) } }
    };
    let switch = format!("/?lang={}", lang.other().code());
    html_response(StatusCode::OK, page(lang, title, Some(&switch), body))
}
