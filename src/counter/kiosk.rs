//! The one-tap kiosk: a tablet at a desk, paired like the desk's screen, showing three or five
//! faces. One tap stores one anonymous tap (no SIPAS form, no person, no network address), an
//! optional single follow-up item, and the tablet resets for the next person. A device may tap
//! at most once per `min_gap`; refused taps are counted per minute (a burst shows on the
//! integrity panel).

use chrono::{Duration, NaiveDateTime, Timelike};
use diesel::prelude::*;

use super::devices::Device;
use super::screen::ScreenRefused;
use crate::db::DbConn;
use crate::db::schema::{kiosk_refusals, kiosk_taps};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;

/// How the province runs its kiosks (`SIPAS_KIOSK_FACES`, `SIPAS_KIOSK_TAP_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct KioskPolicy {
    /// 3 or 5 faces.
    pub faces: i64,
    /// At most one tap per device this often.
    pub min_gap: Duration,
}

/// How long after a tap its follow-up answer is still taken.
pub const FOLLOW_UP_WINDOW: Duration = Duration::minutes(5);

/// The follow-up item's options: what the person would most like improved.
pub const FOLLOW_UPS: [(&str, &str, &str); 5] = [
    ("waiting", "Thời gian chờ đợi", "Waiting time"),
    ("attitude", "Thái độ của công chức", "Staff attitude"),
    ("guidance", "Hướng dẫn, thủ tục", "Guidance and procedure"),
    ("facilities", "Cơ sở vật chất", "Facilities"),
    ("other", "Điều khác", "Something else"),
];

/// The device holding `credential`, if it is paired to `desk`.
pub fn device_for_desk(
    conn: &mut DbConn,
    credential: Option<&str>,
    desk: &str,
) -> QueryResult<Result<Device, ScreenRefused>> {
    let Some(credential) = credential else {
        return Ok(Err(ScreenRefused::NotPaired));
    };
    let Some(device) = super::devices::authenticate(conn, credential)? else {
        return Ok(Err(ScreenRefused::NotPaired));
    };
    if device.desk.as_str() != desk {
        return Ok(Err(ScreenRefused::OtherDesk));
    }
    Ok(Ok(device))
}

/// What a tap came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tapped {
    /// Stored; its id takes the follow-up answer.
    Recorded { tap_id: String },
    /// Too soon after the device's last tap: try again in this many seconds.
    TooSoon { wait_seconds: i64 },
}

/// Records a tap of `face` from `device` at `now`, unless the device tapped less than
/// `policy.min_gap` ago (then the refusal is counted for the unit's minute).
pub fn tap(
    conn: &mut DbConn,
    policy: &KioskPolicy,
    device: &Device,
    face: &str,
    now: NaiveDateTime,
) -> AppResult<Tapped> {
    let face: i64 = face
        .trim()
        .parse()
        .ok()
        .filter(|f| (1..=policy.faces).contains(f))
        .ok_or_else(|| {
            AppError::field(
                "face",
                Msg::new(
                    "Vui lòng chạm vào một trong các khuôn mặt.",
                    "Please tap one of the faces.",
                ),
            )
        })?;
    let tapped = conn.write_transaction(|conn| {
        let last: Option<NaiveDateTime> = db_run!(conn: {
            kiosk_taps::table
                .filter(kiosk_taps::device_id.eq(&device.id))
                .select(diesel::dsl::max(kiosk_taps::tapped_at))
                .first(conn)
        })?;
        if let Some(last) = last.filter(|last| *last + policy.min_gap > now) {
            let minute = now
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(now);
            db_run!(conn: {
                diesel::insert_into(kiosk_refusals::table)
                    .values((
                        kiosk_refusals::device_id.eq(&device.id),
                        kiosk_refusals::minute.eq(minute),
                        kiosk_refusals::unit_id.eq(&device.unit_id),
                        kiosk_refusals::refused.eq(1i64),
                    ))
                    .on_conflict((kiosk_refusals::device_id, kiosk_refusals::minute))
                    .do_update()
                    .set(kiosk_refusals::refused.eq(kiosk_refusals::refused + 1i64))
                    .execute(conn)
            })?;
            let wait = (last + policy.min_gap - now).num_seconds().max(1);
            return QueryResult::Ok(Tapped::TooSoon { wait_seconds: wait });
        }
        let tap_id = uuid::Uuid::now_v7().to_string();
        db_run!(conn: {
            diesel::insert_into(kiosk_taps::table)
                .values((
                    kiosk_taps::id.eq(&tap_id),
                    kiosk_taps::unit_id.eq(&device.unit_id),
                    kiosk_taps::desk.eq(device.desk.as_str()),
                    kiosk_taps::device_id.eq(&device.id),
                    kiosk_taps::face.eq(face),
                    kiosk_taps::faces.eq(policy.faces),
                    kiosk_taps::tapped_at.eq(now),
                ))
                .execute(conn)
        })?;
        Ok(Tapped::Recorded { tap_id })
    })?;
    Ok(tapped)
}

/// Stores the follow-up answer of the device's own recent tap; an unknown option, another
/// device's tap, an old one or one already followed up change nothing (false).
pub fn follow_up(
    conn: &mut DbConn,
    device: &Device,
    tap_id: &str,
    answer: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let Some((code, _, _)) = FOLLOW_UPS.iter().find(|(code, _, _)| *code == answer) else {
        return Ok(false);
    };
    let n = db_run!(conn: {
        diesel::update(
            kiosk_taps::table
                .find(tap_id)
                .filter(kiosk_taps::device_id.eq(&device.id))
                .filter(kiosk_taps::follow_up.is_null())
                .filter(kiosk_taps::tapped_at.gt(now - FOLLOW_UP_WINDOW)),
        )
        .set(kiosk_taps::follow_up.eq(Some(*code)))
        .execute(conn)
    })?;
    Ok(n == 1)
}

/// A tap sent to `desk`'s kiosk by the device holding `credential`.
pub fn tap_at_desk(
    conn: &mut DbConn,
    policy: &KioskPolicy,
    credential: Option<&str>,
    desk: &str,
    face: &str,
    now: NaiveDateTime,
) -> AppResult<Result<Tapped, ScreenRefused>> {
    match device_for_desk(conn, credential, desk)? {
        Ok(device) => Ok(Ok(tap(conn, policy, &device, face, now)?)),
        Err(refused) => Ok(Err(refused)),
    }
}

/// A follow-up answer sent to `desk`'s kiosk by the device holding `credential`.
pub fn follow_up_at_desk(
    conn: &mut DbConn,
    credential: Option<&str>,
    desk: &str,
    tap_id: &str,
    answer: &str,
    now: NaiveDateTime,
) -> AppResult<Result<bool, ScreenRefused>> {
    match device_for_desk(conn, credential, desk)? {
        Ok(device) => Ok(Ok(follow_up(conn, &device, tap_id, answer, now)?)),
        Err(refused) => Ok(Err(refused)),
    }
}
