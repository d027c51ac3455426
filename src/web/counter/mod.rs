//! Pages of counter devices (the desk screen facing the citizen, its pairing) and the staff
//! page that pairs them.

pub mod books;
pub mod desks;
pub mod events;
pub mod kiosk;
pub mod pair;
pub mod screen;
pub mod stickers;
pub mod unit_tools;

use actix_web::web;

/// The routes of token books and the one-tap kiosk (the screen's are in `web::routes`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let get = || web::get();
    cfg.service(
        web::resource("/agency/units/{id}/books")
            .route(get().to(books::show))
            .route(web::post().to(books::act)),
    )
    .service(web::resource("/agency/units/{id}/books/{book}/print").route(get().to(books::print)))
    .service(
        web::resource("/api/v1/stickers/attach").route(web::post().to(stickers::attach_sticker)),
    )
    .service(
        web::resource("/counter/{desk}/kiosk")
            .route(get().to(kiosk::show))
            .route(web::post().to(kiosk::tap)),
    )
    .service(
        web::resource("/counter/{desk}/kiosk/follow-up").route(web::post().to(kiosk::follow_up)),
    );
}

/// The cookie holding a paired device's credential; only a hash of it is stored.
pub const DEVICE_COOKIE: &str = "sipas_counter";

/// The device credential a request carries, if any.
fn credential(req: &actix_web::HttpRequest) -> Option<String> {
    req.cookie(DEVICE_COOKIE).map(|c| c.value().to_string())
}

/// How the screen is drawn from the database, from the settings.
fn policy_parts(
    state: &super::AppState,
) -> (crate::secret::ServerSecret, String, chrono::Duration) {
    (
        state.secret.clone(),
        state.public_base(),
        chrono::Duration::seconds(state.settings.counter_screen_seconds),
    )
}
