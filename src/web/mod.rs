//! HTTP handlers, by audience. Handlers only extract, call the domain inside `web::block` (the
//! pooled connection is taken inside the closure) and render.

pub mod access;
pub mod admin;
pub mod agency;
pub mod api;
pub mod auth;
pub mod citizen;
pub mod collector;
pub mod counter;
pub mod error_response;
pub mod errors;
pub mod health;
pub mod home;
pub mod input;
pub mod lang;
pub mod layout;
pub mod metrics;
pub mod openapi;
pub mod public;
pub mod rate_limit;
pub mod reports;
pub mod staff;
pub mod state;
pub mod statics;
pub mod view;

use actix_web::web;

pub use state::AppState;

/// Registers every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(get_or_head().to(home::index)))
        .service(web::resource("/healthz").route(get_or_head().to(health::healthz)))
        .service(web::resource("/readyz").route(get_or_head().to(health::readyz)))
        .service(web::resource("/metrics").route(get_or_head().to(metrics::metrics)))
        .service(web::resource("/static/{file}").route(get_or_head().to(statics::serve)))
        .service(web::resource("/api/openapi.json").route(get_or_head().to(openapi::document)))
        .service(
            web::resource("/api/v1/transactions").route(web::post().to(api::create_transaction)),
        )
        .service(
            web::resource(["/s/{token}", "/S/{token}"])
                .route(get_or_head().to(citizen::show))
                .route(web::post().to(citizen::submit)),
        )
        .service(
            web::resource(["/s/{token}/qr.svg", "/S/{token}/QR.SVG"])
                .route(get_or_head().to(citizen::qr_svg)),
        )
        .service(
            web::resource(["/s/{token}/qr.png", "/S/{token}/QR.PNG"])
                .route(get_or_head().to(citizen::qr_png)),
        );
    cfg.service(web::resource("/s/{token}/step").route(web::post().to(citizen::steps::step)));
    cfg.service(
        web::resource("/s/{token}/unsubscribe")
            .route(get_or_head().to(citizen::unsubscribe_page))
            .route(web::post().to(citizen::unsubscribe)),
    );
    cfg.service(
        web::resource("/counter/pair")
            .route(get_or_head().to(counter::pair::page_get))
            .route(web::post().to(counter::pair::submit)),
    )
    .service(web::resource("/counter/{desk}/screen").route(get_or_head().to(counter::screen::show)))
    .service(
        web::resource("/counter/{desk}/events").route(get_or_head().to(counter::events::stream)),
    )
    .service(
        web::resource("/agency/units/{id}/counter")
            .route(get_or_head().to(counter::desks::show))
            .route(web::post().to(counter::desks::act)),
    );
    counter::routes(cfg);
    staff_routes(cfg);
    admin::groups::routes(cfg);
    collector::routes(cfg);
    public_routes(cfg);
}

/// Pages for signed-in staff; who may open each one is in `access::RULES`.
fn staff_routes(cfg: &mut web::ServiceConfig) {
    use admin::{audit_log, catalog, units as admin_units, users as admin_users};
    let get = get_or_head;
    let post = web::post;
    cfg.service(
        web::resource("/login")
            .route(get().to(auth::login_page))
            .route(post().to(auth::login)),
    )
    .service(web::resource("/logout").route(post().to(auth::logout)))
    .service(web::resource("/account").route(get().to(auth::account)))
    .service(
        web::resource("/account/password")
            .route(get().to(auth::password_page))
            .route(post().to(auth::change_password)),
    )
    .service(web::resource("/agency").route(get().to(agency::home::page)))
    .service(web::resource("/agency/units/{id}").route(get().to(agency::unit)))
    .service(web::resource("/collector").route(get().to(collector::home)))
    .service(web::resource("/admin").route(get().to(admin::dashboard::page)))
    .service(
        web::resource("/admin/units")
            .route(get().to(admin_units::list))
            .route(post().to(admin_units::create)),
    )
    .service(web::resource("/admin/units/{id}").route(get().to(admin_units::detail)))
    .service(web::resource("/admin/units/{id}/rename").route(post().to(admin_units::rename)))
    .service(web::resource("/admin/units/{id}/move").route(post().to(admin_units::move_unit)))
    .service(web::resource("/admin/units/{id}/merge").route(post().to(admin_units::merge)))
    .service(web::resource("/admin/units/{id}/validity").route(post().to(admin_units::validity)))
    .service(
        web::resource("/admin/units/{id}/counter-form").route(post().to(admin_units::counter_form)),
    )
    .service(web::resource("/admin/units/{id}/api-keys").route(post().to(admin_units::create_key)))
    .service(web::resource("/admin/api-keys/{id}/revoke").route(post().to(admin_units::revoke_key)))
    .service(
        web::resource("/admin/procedures")
            .route(get().to(catalog::procedures_list))
            .route(post().to(catalog::procedures_create)),
    )
    .service(
        web::resource("/admin/procedures/{id}")
            .route(get().to(catalog::procedure_show))
            .route(post().to(catalog::procedure_update)),
    )
    .service(
        web::resource("/admin/users")
            .route(get().to(admin_users::list))
            .route(post().to(admin_users::create)),
    )
    .service(
        web::resource("/admin/users/{id}")
            .route(get().to(admin_users::detail))
            .route(post().to(admin_users::update)),
    )
    .service(
        web::resource("/admin/users/{id}/password").route(post().to(admin_users::reset_password)),
    )
    .service(
        web::resource("/admin/collector-orgs")
            .route(get().to(catalog::orgs_list))
            .route(post().to(catalog::orgs_create)),
    )
    .service(web::resource("/admin/forms").route(get().to(catalog::forms_list)))
    .service(
        web::resource("/admin/periods")
            .route(get().to(catalog::periods_list))
            .route(post().to(catalog::periods_create)),
    )
    .service(
        web::resource("/admin/periods/{id}")
            .route(get().to(catalog::period_show))
            .route(post().to(catalog::period_update)),
    )
    .service(web::resource("/admin/audit").route(get().to(audit_log::browse)))
    .service(web::resource("/admin/outbox").route(get().to(admin::mail::page)))
    .service(web::resource("/admin/outbox/{id}/retry").route(post().to(admin::mail::retry)))
    .service(
        web::resource("/admin/units/{id}/invitations").route(post().to(admin_units::invitations)),
    )
    .service(
        web::resource("/admin/export/responses.csv")
            .route(get().to(reports::response_export::responses_csv)),
    )
    .service(web::resource("/reports/units/{id}").route(get().to(reports::unit_page)))
    .service(web::resource("/reports/units/{id}/print").route(get().to(reports::unit_print)))
    .service(web::resource("/reports/units/{id}/export.csv").route(get().to(reports::unit_csv)))
    .service(web::resource("/reports/units/{id}/export.xlsx").route(get().to(reports::unit_xlsx)))
    .service(web::resource("/reports/ranking/export.xlsx").route(get().to(reports::ranking_xlsx)))
    .service(web::resource("/api/v1/reports/units/{id}").route(get().to(reports::unit_json)))
    .service(web::resource("/reports/ranking").route(get().to(reports::ranking_page)))
    .service(web::resource("/reports/ranking/export.csv").route(get().to(reports::ranking_csv)))
    .service(web::resource("/api/v1/reports/ranking").route(get().to(reports::ranking_json)))
    .service(web::resource("/admin/integrity").route(get().to(reports::integrity::panel)))
    .service(web::resource("/admin/integrity/units/{id}").route(get().to(reports::integrity::unit)))
    .service(
        web::resource("/admin/integrity/responses/{id}")
            .route(post().to(reports::integrity::decide)),
    )
    .service(web::resource("/cases").route(get().to(reports::integrity::cases_list)))
    .service(
        web::resource("/cases/{id}")
            .route(get().to(reports::integrity::case_page))
            .route(post().to(reports::integrity::case_action)),
    );
}

/// The public results site (issue #18): no sign-in, only what releases published.
fn public_routes(cfg: &mut web::ServiceConfig) {
    use public::{key, overview, ranking, releases, unit};
    let get = get_or_head;
    cfg.service(web::resource("/public").route(get().to(overview::overview)))
        .service(web::resource("/public/ranking").route(get().to(ranking::page)))
        .service(web::resource("/public/units/{code}").route(get().to(unit::page)))
        .service(web::resource("/public/units/{code}/badge.svg").route(get().to(unit::badge)))
        .service(web::resource("/public/releases").route(get().to(releases::list)))
        .service(web::resource("/public/releases/{id}").route(get().to(releases::detail)))
        .service(
            web::resource("/public/releases/{id}/release.json").route(get().to(releases::json)),
        )
        .service(
            web::resource("/public/releases/{id}/release.json.sig")
                .route(get().to(releases::signature)),
        )
        .service(web::resource("/public/releases/{id}/release.csv").route(get().to(releases::csv)))
        .service(web::resource("/public/catalog.json").route(get().to(releases::catalog)))
        .service(web::resource("/public/key").route(get().to(key::page)))
        .service(web::resource("/public/key.pem").route(get().to(key::pem)))
        .service(
            web::resource("/admin/releases")
                .route(get().to(admin::releases::list))
                .route(web::post().to(admin::releases::create)),
        );
}

/// GET routes answer HEAD too: link checkers and some QR scanners probe with HEAD first.
fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
