//! The invitation and reminder e-mails: Vietnamese first with English below, a plain-text and an
//! HTML part, the survey link, the agency and procedure, an opt-out link. No tracking of any kind.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use maud::html;

/// What a message says.
pub struct Invitation<'a> {
    pub reminder: bool,
    pub unit_vi: &'a str,
    pub unit_en: &'a str,
    pub procedure_vi: &'a str,
    pub procedure_en: &'a str,
    pub survey_url: &'a str,
    pub opt_out_url: &'a str,
    pub expires: &'a str,
}

impl Invitation<'_> {
    pub fn subject(&self) -> String {
        if self.reminder {
            format!(
                "Nhắc: mời Ông/Bà đánh giá sự phục vụ của {} / Reminder: rate the service",
                self.unit_vi
            )
        } else {
            format!(
                "Mời Ông/Bà đánh giá sự phục vụ của {} / Please rate the service",
                self.unit_vi
            )
        }
    }

    pub fn text(&self) -> String {
        let lead_vi = if self.reminder {
            "Ông/Bà chưa trả lời phiếu khảo sát về hồ sơ đã giải quyết. Ý kiến của Ông/Bà rất quan trọng."
        } else {
            "Cảm ơn Ông/Bà đã sử dụng dịch vụ hành chính công. Xin mời Ông/Bà dành ít phút đánh giá sự phục vụ."
        };
        let lead_en = if self.reminder {
            "You have not yet answered the survey about your completed dossier. Your opinion matters."
        } else {
            "Thank you for using our public administrative services. Please take a few minutes to rate the service."
        };
        format!(
            "Kính gửi Ông/Bà,\n\n{lead_vi}\n\nĐơn vị: {}\nThủ tục: {}\n\nTrả lời khảo sát (hạn {}):\n{}\n\nKhông muốn nhận thêm thư về hồ sơ này: {}\n\n----\n\nDear Sir or Madam,\n\n{lead_en}\n\nAgency: {}\nProcedure: {}\n\nAnswer the survey (until {}):\n{}\n\nStop e-mails about this dossier: {}\n",
            self.unit_vi,
            self.procedure_vi,
            self.expires,
            self.survey_url,
            self.opt_out_url,
            self.unit_en,
            self.procedure_en,
            self.expires,
            self.survey_url,
            self.opt_out_url,
        )
    }

    pub fn html(&self) -> String {
        let block = |lang: &str,
                     greeting: &str,
                     lead: &str,
                     unit: &str,
                     procedure: &str,
                     unit_label: &str,
                     procedure_label: &str,
                     button: &str,
                     stop: &str| {
            html! {
                div lang=(lang) {
                    p { (greeting) }
                    p { (lead) }
                    p { (unit_label) ": " strong { (unit) } br; (procedure_label) ": " (procedure) }
                    p { a href=(self.survey_url) style="display:inline-block;padding:10px 18px;background:#9b1c1c;color:#fff;text-decoration:none;border-radius:6px;font-weight:bold" { (button) } }
                    p style="font-size:13px;color:#444" { (self.survey_url) }
                    p style="font-size:13px" { a href=(self.opt_out_url) { (stop) } }
                }
            }
        };
        let vi = block(
            "vi",
            "Kính gửi Ông/Bà,",
            if self.reminder {
                "Ông/Bà chưa trả lời phiếu khảo sát về hồ sơ đã giải quyết. Ý kiến của Ông/Bà rất quan trọng."
            } else {
                "Cảm ơn Ông/Bà đã sử dụng dịch vụ hành chính công. Xin mời Ông/Bà dành ít phút đánh giá sự phục vụ."
            },
            self.unit_vi,
            self.procedure_vi,
            "Đơn vị",
            "Thủ tục",
            "Trả lời khảo sát",
            "Không muốn nhận thêm thư về hồ sơ này",
        );
        let en = block(
            "en",
            "Dear Sir or Madam,",
            if self.reminder {
                "You have not yet answered the survey about your completed dossier. Your opinion matters."
            } else {
                "Thank you for using our public administrative services. Please take a few minutes to rate the service."
            },
            self.unit_en,
            self.procedure_en,
            "Agency",
            "Procedure",
            "Answer the survey",
            "Stop e-mails about this dossier",
        );
        html! {
            (maud::DOCTYPE)
            html lang="vi" { head { meta charset="utf-8"; } body style="font-family:Arial,sans-serif;font-size:15px;color:#1a1a1a" { (vi) hr; (en) } }
        }
        .into_string()
    }

    /// The message, with a stable Message-ID so a retry is recognisable as the same mail.
    pub fn build(&self, from: &Mailbox, to: &str, message_id: &str) -> anyhow::Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow::anyhow!("bad recipient: {e}"))?;
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .header(ContentTransferEncoding::Base64)
            .body(self.text());
        let html = SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .header(ContentTransferEncoding::Base64)
            .body(self.html());
        Ok(Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject())
            .message_id(Some(message_id.to_string()))
            .header(ListUnsubscribe(format!("<{}>", self.opt_out_url)))
            .multipart(MultiPart::alternative().singlepart(text).singlepart(html))?)
    }
}

/// `List-Unsubscribe`, so mail programs offer the opt-out themselves.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}
