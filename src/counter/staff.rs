//! What staff do with counter devices: pair a device to a desk (a single-use code) and revoke
//! one. Administrators for every unit, agencies for the units in their scope; both audited.

use serde_json::json;

use super::DeskCode;
use super::devices::{self, DeviceEntry, PairingCode};
use crate::accounts::users::User;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::units::{self, Unit};

/// A staff member's request about a unit's counter devices.
pub enum DeskAction {
    Pair(String),
    Revoke(String),
}

/// The unit's counter page: its devices, and the code just created, if any.
pub struct DeskPage {
    pub unit: Unit,
    pub devices: Vec<DeviceEntry>,
    pub new_code: Option<(String, PairingCode)>,
    pub revoked: bool,
}

pub(super) fn visible_unit(conn: &mut DbConn, viewer: &User, unit_id: &str) -> AppResult<Unit> {
    // Another agency's unit does not exist as far as this user can tell.
    let not_found = || AppError::NotFound(Msg::new("Không có đơn vị này.", "No such unit."));
    if !viewer.can_read_unit(conn, unit_id)? {
        return Err(not_found());
    }
    units::find(conn, unit_id)?.ok_or_else(not_found)
}

/// Shows (and with an `action`, changes) the counter devices of `unit_id`.
pub fn desks(
    conn: &mut DbConn,
    viewer: &User,
    unit_id: &str,
    action: Option<DeskAction>,
) -> AppResult<DeskPage> {
    let unit = visible_unit(conn, viewer, unit_id)?;
    let now = crate::db::now();
    let actor = viewer.actor();
    let mut new_code = None;
    let mut revoked = false;
    match action {
        None => {}
        Some(DeskAction::Pair(desk)) => {
            let desk = DeskCode::parse(&desk).map_err(|m| AppError::field("desk", m))?;
            let code = conn.write_transaction(|conn| {
                let code = devices::create_pairing(conn, &unit.id, &desk, &viewer.id, now)?;
                crate::audit::record(
                    conn,
                    &actor,
                    "counter.pairing_code",
                    "unit",
                    &unit.id,
                    None,
                    Some(json!({ "desk": desk.as_str(), "expires_at": code.expires_at })),
                )?;
                diesel::QueryResult::Ok(code)
            })?;
            new_code = Some((desk.as_str().to_string(), code));
        }
        Some(DeskAction::Revoke(device)) => {
            revoked = conn.write_transaction(|conn| {
                let done = devices::revoke(conn, &unit.id, &device, now)?;
                if done {
                    crate::audit::record(
                        conn,
                        &actor,
                        "counter.revoke_device",
                        "counter_device",
                        &device,
                        None,
                        Some(json!({ "unit_id": unit.id, "revoked_at": now })),
                    )?;
                }
                diesel::QueryResult::Ok(done)
            })?;
            if !revoked {
                return Err(AppError::NotFound(Msg::new(
                    "Không có thiết bị này.",
                    "No such device.",
                )));
            }
        }
    }
    let devices = devices::list(conn, &unit.id)?;
    Ok(DeskPage {
        unit,
        devices,
        new_code,
        revoked,
    })
}
