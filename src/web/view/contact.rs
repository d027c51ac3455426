//! The optional "contact me" part of the survey form, on the one-page form and on the steps.

use std::collections::HashMap;

use maud::{Markup, html};

use crate::i18n::Lang;
use crate::integrity::cases::ContactProblem;
use crate::integrity::contact::{CONTACT, CONTACT_OK};

/// The optional "contact me" part of the survey form: a plain checkbox and text field (no
/// script), unticked by default, saying when the contact is kept and when it is dropped.
pub fn contact_fieldset(
    lang: Lang,
    given: &HashMap<String, Vec<String>>,
    problem: Option<ContactProblem>,
) -> Markup {
    let first = |name: &str| given.get(name).and_then(|v| v.first()).map(String::as_str);
    let ticked = first(CONTACT_OK).is_some_and(|v| !v.is_empty());
    html! {
        fieldset #q-contact class=[problem.map(|_| "bad")] aria-describedby=[problem.map(|_| "err-contact")] {
            legend { (lang.pick("Liên hệ lại (không bắt buộc)", "Being contacted (optional)")) }
            p.hint { (lang.pick(
                "Số điện thoại hoặc thư điện tử chỉ được lưu, cùng ý kiến này, khi Ông/Bà đánh giá chung \"Không hài lòng\" hoặc \"Rất không hài lòng\"; chỉ cán bộ xử lý ý kiến được xem và thông tin bị xóa khi xử lý xong. Trong các trường hợp khác, thông tin này bị bỏ đi, không được lưu.",
                "Your phone or e-mail is kept, with this answer, only if your overall rating is \"Dissatisfied\" or \"Very dissatisfied\"; only the staff handling it can see it, and it is deleted once they are done. Otherwise it is discarded, not stored.")) }
            @if let Some(p) = problem { p.err #err-contact { (p.message().get(lang)) } }
            div.opts { label {
                input type="checkbox" name=(CONTACT_OK) value="1" checked[ticked];
                (lang.pick("Tôi đồng ý để cơ quan liên hệ lại với tôi về ý kiến này", "I agree that the agency may contact me about this answer"))
            } }
            label for="contact" { (lang.pick("Số điện thoại hoặc thư điện tử", "Phone number or e-mail")) }
            input #contact type="text" name=(CONTACT) maxlength="254" value=(first(CONTACT).unwrap_or_default());
        }
    }
}
