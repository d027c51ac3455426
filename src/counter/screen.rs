//! What a desk's citizen-facing screen shows: the survey of the desk's latest registration,
//! while it is recent and unanswered; otherwise nothing. Read from the database on every look,
//! so that every instance behind the load balancer shows the same thing.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::DeskCode;
use crate::db::DbConn;
use crate::db::schema::{desk_registrations, procedures, survey_tokens};
use crate::db_run;

/// The survey on a desk's screen: its transaction (from which the token is derived) and the
/// procedure's name; nothing about the citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskSurvey {
    pub transaction_id: String,
    pub procedure_vi: String,
    pub procedure_en: String,
}

/// The survey `desk` of `unit_id` shows at `now`: its latest registration if that is younger
/// than `show_for`, still open and unanswered.
pub fn current(
    conn: &mut DbConn,
    unit_id: &str,
    desk: &DeskCode,
    now: NaiveDateTime,
    show_for: Duration,
) -> QueryResult<Option<DeskSurvey>> {
    let latest: Option<(String, NaiveDateTime)> = db_run!(conn: {
        desk_registrations::table
            .filter(desk_registrations::unit_id.eq(unit_id))
            .filter(desk_registrations::desk.eq(desk.as_str()))
            .order(desk_registrations::registered_at.desc())
            .select((desk_registrations::transaction_id, desk_registrations::registered_at))
            .first(conn)
            .optional()
    })?;
    let Some((transaction_id, registered_at)) = latest else {
        return Ok(None);
    };
    if registered_at + show_for <= now {
        return Ok(None);
    }
    let open: Option<(String, String)> = db_run!(conn: {
        survey_tokens::table
            .inner_join(procedures::table.on(procedures::id.nullable().eq(survey_tokens::procedure_id)))
            .filter(survey_tokens::transaction_id.eq(&transaction_id))
            .filter(survey_tokens::spent_at.is_null())
            .filter(survey_tokens::expires_at.gt(now))
            .select((procedures::name_vi, procedures::name_en))
            .first(conn)
            .optional()
    })?;
    Ok(open.map(|(procedure_vi, procedure_en)| DeskSurvey {
        transaction_id,
        procedure_vi,
        procedure_en,
    }))
}

/// What a device may see of a desk.
#[derive(Debug, PartialEq, Eq)]
pub enum ScreenRefused {
    /// No credential, an unknown or a revoked one: the device must be paired.
    NotPaired,
    /// A paired device asking for a desk that is not its own (another desk, another unit).
    OtherDesk,
}

/// A desk screen's content, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenView {
    pub desk: String,
    pub survey: Option<ScreenSurvey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenSurvey {
    pub survey_url: String,
    /// The QR code as one SVG element, no line breaks.
    pub qr_svg: String,
    pub procedure_vi: String,
    pub procedure_en: String,
}

impl ScreenView {
    /// Changes exactly when the screen must change: the stream sends an event then.
    pub fn key(&self) -> String {
        match &self.survey {
            Some(s) => s.survey_url.clone(),
            None => String::new(),
        }
    }
}

/// Where the screen finds its settings.
pub struct ScreenPolicy<'a> {
    pub secret: &'a crate::secret::ServerSecret,
    pub public_base: &'a str,
    pub show_for: Duration,
}

/// The screen of `desk` for the device holding `credential`, at `now`.
pub fn view(
    conn: &mut DbConn,
    policy: &ScreenPolicy,
    credential: Option<&str>,
    desk: &str,
    now: NaiveDateTime,
) -> anyhow::Result<Result<ScreenView, ScreenRefused>> {
    let Some(credential) = credential else {
        return Ok(Err(ScreenRefused::NotPaired));
    };
    let Some(device) = super::devices::authenticate(conn, credential)? else {
        return Ok(Err(ScreenRefused::NotPaired));
    };
    if device.desk.as_str() != desk {
        return Ok(Err(ScreenRefused::OtherDesk));
    }
    let survey = match current(conn, &device.unit_id, &device.desk, now, policy.show_for)? {
        Some(found) => {
            let token = crate::survey::token::SurveyToken::for_transaction(
                policy.secret,
                &found.transaction_id,
            );
            let survey_url = format!("{}/s/{}", policy.public_base, token.as_str());
            let text = crate::survey::qr::qr_text(policy.public_base, &survey_url);
            let svg = crate::survey::qr::svg(&text)?;
            // Inline in HTML: without the XML prolog, on one line (an SSE data line).
            let qr_svg = svg[svg.find("<svg").unwrap_or(0)..].replace(['\n', '\r'], "");
            Some(ScreenSurvey {
                survey_url,
                qr_svg,
                procedure_vi: found.procedure_vi,
                procedure_en: found.procedure_en,
            })
        }
        None => None,
    };
    Ok(Ok(ScreenView {
        desk: device.desk.as_str().to_string(),
        survey,
    }))
}
