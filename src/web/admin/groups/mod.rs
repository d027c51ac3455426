//! Admin pages for respondent groups and their campaigns (see `crate::groups`): create and edit
//! groups, create campaigns (which issues their single-use links), download the links as CSV or
//! print them with their QR codes, and read a campaign's results per rated unit.

mod campaigns;
mod links;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::accounts::Actor;
use crate::error::AppError;
use crate::groups::{Campaign, GroupInput, RespondentGroup, manage};
use crate::i18n::Lang;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, error_box, notice, staff_page};
use crate::web::view::{done, failed_status};

/// Registers the pages (access rules are in `access::RULES`, all for administrators).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let get = crate::web::get_or_head;
    let post = web::post;
    cfg.service(
        web::resource("/admin/groups")
            .route(get().to(groups_list))
            .route(post().to(group_create)),
    )
    .service(
        web::resource("/admin/groups/{id}")
            .route(get().to(group_show))
            .route(post().to(group_update)),
    )
    .service(
        web::resource("/admin/campaigns")
            .route(get().to(campaigns::campaigns_list))
            .route(post().to(campaigns::campaign_create)),
    )
    .service(web::resource("/admin/campaigns/{id}").route(get().to(campaigns::campaign_show)))
    .service(
        web::resource("/admin/campaigns/{id}/invitees")
            .route(post().to(campaigns::campaign_invite)),
    )
    .service(web::resource("/admin/campaigns/{id}/links.csv").route(get().to(links::links_csv)))
    .service(web::resource("/admin/campaigns/{id}/print").route(get().to(links::links_print)));
}

#[derive(Deserialize)]
pub struct OkQuery {
    pub ok: Option<String>,
}

/// The signed-in administrator as the use cases take them.
fn actor(user: &CurrentUser) -> Actor {
    Actor::of(&user.0.user)
}

// ---------------------------------------------------------------- groups

#[derive(Deserialize)]
pub struct GroupForm {
    code: String,
    name_vi: String,
    name_en: String,
    #[serde(default)]
    description: String,
    include_in_index: Option<String>,
}

impl GroupForm {
    fn input(&self) -> GroupInput {
        GroupInput {
            code: self.code.clone(),
            name_vi: self.name_vi.clone(),
            name_en: self.name_en.clone(),
            description: self.description.clone(),
            include_in_index: self.include_in_index.is_some(),
        }
    }
}

pub(super) fn included_label(lang: Lang, included: bool) -> &'static str {
    if included {
        lang.pick("Có, tính vào chỉ số", "Yes, in the index")
    } else {
        lang.pick("Không, báo cáo riêng", "No, reported apart")
    }
}

fn group_fields(lang: Lang, g: Option<&RespondentGroup>) -> Markup {
    html! {
        label for="code" { (lang.pick("Mã nhóm (ví dụ DB-HDND)", "Group code (e.g. DB-HDND)")) }
        input #code type="text" name="code" value=(g.map(|g| g.code.as_str()).unwrap_or("")) required;
        label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
        input #name_vi type="text" name="name_vi" value=(g.map(|g| g.name_vi.as_str()).unwrap_or("")) required;
        label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
        input #name_en type="text" name="name_en" value=(g.map(|g| g.name_en.as_str()).unwrap_or("")) required;
        label for="description" { (lang.pick("Mô tả", "Description")) }
        textarea #description name="description" maxlength="2000" { (g.map(|g| g.description.as_str()).unwrap_or("")) }
        label.check {
            input type="checkbox" name="include_in_index" value="on" checked[g.is_some_and(|g| g.include_in_index)];
            (lang.pick("Tính câu trả lời của nhóm vào chỉ số hài lòng của người dân", "Count the group's answers in the citizen satisfaction index"))
        }
        p.hint { (lang.pick(
            "Mặc định không: câu trả lời của nhóm chỉ xuất hiện trong kết quả đợt khảo sát của nhóm, không vào chỉ số, xếp hạng hay báo cáo của người dân. Khi đổi thiết lập, các câu trả lời đã có được chuyển vào (hoặc ra khỏi) chỉ số ngay.",
            "Off by default: the group's answers appear only in its campaign results, never in the citizen index, rankings or reports. Changing the setting moves the answers already given into (or out of) the index at once.")) }
    }
}

fn groups_page(
    lang: Lang,
    user: &CurrentUser,
    rows: &[RespondentGroup],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        p { a href="/admin/campaigns" { (lang.pick("Các đợt khảo sát theo nhóm →", "Group campaigns →")) } }
        table #groups {
            thead { tr {
                th { (lang.pick("Mã", "Code")) }
                th { (lang.pick("Tên", "Name")) }
                th { (lang.pick("Tính vào chỉ số", "In the citizen index")) }
            } }
            tbody { @for g in rows { tr {
                td { a href=(format!("/admin/groups/{}", g.id)) { (g.code) } }
                td { (g.name(lang)) }
                td { (included_label(lang, g.include_in_index)) }
            } } }
        }
        h2 { (lang.pick("Thêm nhóm người trả lời", "Add a respondent group")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/groups" {
            (csrf_field(user))
            (group_fields(lang, None))
            button type="submit" { (lang.pick("Thêm", "Add")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/groups",
        lang.pick("Nhóm người trả lời", "Respondent groups"),
        body,
    )
}

pub async fn groups_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let rows = manage::list_groups(&state).await?;
    Ok(html_response(
        StatusCode::OK,
        groups_page(page_lang(&req), &user, &rows, q.ok.as_deref(), None),
    ))
}

pub async fn group_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    match manage::save_group(&state, actor(&user), None, form.input()).await {
        Ok(g) => Ok(done(&format!("/admin/groups/{}", g.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let rows = manage::list_groups(&state).await?;
            Ok(html_response(
                failed_status(&e),
                groups_page(page_lang(&req), &user, &rows, None, Some(&e)),
            ))
        }
    }
}

fn group_detail(
    lang: Lang,
    user: &CurrentUser,
    g: &RespondentGroup,
    campaigns: &[(Campaign, RespondentGroup)],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        @if !g.description.is_empty() { p { (g.description) } }
        h2 { (lang.pick("Các đợt khảo sát của nhóm", "The group's campaigns")) }
        (campaigns::campaign_table(lang, campaigns))
        p { a href=(format!("/admin/campaigns?group={}", g.code)) { (lang.pick("Tạo đợt khảo sát cho nhóm này", "Create a campaign for this group")) } }
        h2 { (lang.pick("Sửa nhóm", "Edit the group")) }
        (error_box(lang, error))
        form.stack method="post" action=(format!("/admin/groups/{}", g.id)) {
            (csrf_field(user))
            (group_fields(lang, Some(g)))
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/groups",
        &format!("{} — {}", g.code, g.name(lang)),
        body,
    )
}

pub async fn group_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let (g, campaigns) = manage::open_group(&state, path.into_inner()).await?;
    Ok(html_response(
        StatusCode::OK,
        group_detail(
            page_lang(&req),
            &user,
            &g,
            &campaigns,
            q.ok.as_deref(),
            None,
        ),
    ))
}

pub async fn group_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    match manage::save_group(&state, actor(&user), Some(id.clone()), form.input()).await {
        Ok(_) => Ok(done(&format!("/admin/groups/{id}"), "saved")),
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => Err(e),
        Err(e) => {
            let (g, campaigns) = manage::open_group(&state, id).await?;
            Ok(html_response(
                failed_status(&e),
                group_detail(page_lang(&req), &user, &g, &campaigns, None, Some(&e)),
            ))
        }
    }
}
