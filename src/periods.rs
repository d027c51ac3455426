//! Survey periods: the year of a SIPAS round, or the months and quarters of provincial
//! monitoring. Reports and sampling are asked for by period.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::survey_periods;
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, Msg};

pub const KINDS: &[&str] = &["year", "quarter", "month", "custom"];

/// Where a survey period stands (`survey_periods.status`, whose CHECK allows only these three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodStatus {
    Planned,
    Open,
    Closed,
}

impl PeriodStatus {
    pub const ALL: [PeriodStatus; 3] = [Self::Planned, Self::Open, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// An administrator's form value; anything else is a field error (never a 500).
    pub fn parse_field(field: &str, text: &str) -> AppResult<Self> {
        Self::parse(text).ok_or_else(|| {
            AppError::field(
                field,
                Msg::new("Trạng thái không hợp lệ.", "Invalid status."),
            )
        })
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Self::Planned => lang.pick("Dự kiến", "Planned"),
            Self::Open => lang.pick("Đang khảo sát", "Open"),
            Self::Closed => lang.pick("Đã kết thúc", "Closed"),
        }
    }
}

impl TryFrom<String> for PeriodStatus {
    type Error = String;

    /// The column's CHECK allows only the three statuses; anything else is a corrupt row.
    fn try_from(stored: String) -> Result<Self, String> {
        Self::parse(&stored).ok_or_else(|| format!("unknown period status {stored:?}"))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = survey_periods)]
pub struct SurveyPeriod {
    pub id: String,
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub kind: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    #[diesel(deserialize_as = String)]
    pub status: PeriodStatus,
    pub created_at: chrono::NaiveDateTime,
}

impl SurveyPeriod {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.name_vi,
            Lang::En => &self.name_en,
        }
    }
}

pub fn kind_label(kind: &str, lang: Lang) -> &'static str {
    match kind {
        "year" => lang.pick("Năm", "Year"),
        "quarter" => lang.pick("Quý", "Quarter"),
        "month" => lang.pick("Tháng", "Month"),
        _ => lang.pick("Tùy chọn", "Custom"),
    }
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<SurveyPeriod>> {
    db_run!(conn: {
        survey_periods::table.order(survey_periods::starts_on.desc()).select(SurveyPeriod::as_select()).load(conn)
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<SurveyPeriod>> {
    db_run!(conn: { survey_periods::table.find(id).select(SurveyPeriod::as_select()).first(conn).optional() })
}

pub fn find_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<SurveyPeriod>> {
    db_run!(conn: {
        survey_periods::table.filter(survey_periods::code.eq(code)).select(SurveyPeriod::as_select()).first(conn).optional()
    })
}

#[derive(Debug, Clone)]
pub struct PeriodInput {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub kind: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub status: PeriodStatus,
}

/// A code an administrator types (survey periods, respondent groups): 2–32 ASCII letters,
/// digits, `-` and `_`, so it reads the same in URLs, file names and spreadsheets.
pub fn is_short_code(code: &str) -> bool {
    (2..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check(input: &PeriodInput) -> AppResult<()> {
    if !is_short_code(&input.code) {
        return Err(AppError::field(
            "code",
            Msg::new(
                "Mã kỳ dài 2–32 ký tự: chữ, số, - và _.",
                "The period code has 2–32 characters: letters, digits, - and _.",
            ),
        ));
    }
    if input.name_vi.trim().is_empty() || input.name_en.trim().is_empty() {
        return Err(AppError::field(
            "name_vi",
            Msg::new(
                "Vui lòng nhập tên kỳ khảo sát.",
                "Please enter the period's names.",
            ),
        ));
    }
    if !KINDS.contains(&input.kind.as_str()) {
        return Err(AppError::field(
            "kind",
            Msg::new("Loại kỳ không hợp lệ.", "Invalid period kind."),
        ));
    }
    if input.ends_on < input.starts_on {
        return Err(AppError::field(
            "ends_on",
            Msg::new(
                "Ngày kết thúc trước ngày bắt đầu.",
                "The end date is before the start date.",
            ),
        ));
    }
    Ok(())
}

/// Creates (`id` = None) or changes a period, with an audit event.
pub fn save(
    conn: &mut DbConn,
    actor: &Actor,
    id: Option<&str>,
    input: &PeriodInput,
) -> AppResult<SurveyPeriod> {
    check(input)?;
    conn.write_transaction(|conn| {
        let old = match id {
            Some(id) => Some(find(conn, id)?.ok_or_else(|| {
                AppError::NotFound(Msg::new("Không có kỳ khảo sát này.", "No such period."))
            })?),
            None => None,
        };
        if let Some(existing) = find_by_code(conn, &input.code)?
            && old.as_ref().is_none_or(|o| o.id != existing.id)
        {
            return Err(AppError::field(
                "code",
                Msg::new("Mã kỳ đã tồn tại.", "This period code already exists."),
            ));
        }
        let id = old
            .as_ref()
            .map(|o| o.id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        db_run!(conn: {
            if old.is_some() {
                diesel::update(survey_periods::table.find(&id))
                    .set((
                        survey_periods::code.eq(&input.code),
                        survey_periods::name_vi.eq(input.name_vi.trim()),
                        survey_periods::name_en.eq(input.name_en.trim()),
                        survey_periods::kind.eq(&input.kind),
                        survey_periods::starts_on.eq(input.starts_on),
                        survey_periods::ends_on.eq(input.ends_on),
                        survey_periods::status.eq(input.status.as_str()),
                    ))
                    .execute(conn)
            } else {
                diesel::insert_into(survey_periods::table)
                    .values((
                        survey_periods::id.eq(&id),
                        survey_periods::code.eq(&input.code),
                        survey_periods::name_vi.eq(input.name_vi.trim()),
                        survey_periods::name_en.eq(input.name_en.trim()),
                        survey_periods::kind.eq(&input.kind),
                        survey_periods::starts_on.eq(input.starts_on),
                        survey_periods::ends_on.eq(input.ends_on),
                        survey_periods::status.eq(input.status.as_str()),
                        survey_periods::created_at.eq(crate::db::now()),
                    ))
                    .execute(conn)
            }
        })?;
        let new = find(conn, &id)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("period vanished")))?;
        let action = if old.is_some() {
            "period.update"
        } else {
            "period.create"
        };
        let view = |p: &SurveyPeriod| serde_json::to_value(p).unwrap_or_default();
        audit::record(
            conn,
            actor,
            action,
            "period",
            &id,
            old.as_ref().map(view),
            Some(view(&new)),
        )?;
        Ok(new)
    })
}

#[cfg(test)]
mod tests {
    use super::PeriodStatus;

    #[test]
    fn every_status_round_trips_and_unknown_is_refused() {
        for status in PeriodStatus::ALL {
            assert_eq!(PeriodStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                PeriodStatus::try_from(status.as_str().to_string()),
                Ok(status)
            );
        }
        assert_eq!(PeriodStatus::parse("Open"), None);
        assert!(PeriodStatus::parse_field("status", "archived").is_err());
        assert!(matches!(
            PeriodStatus::parse_field("status", "open"),
            Ok(PeriodStatus::Open)
        ));
        assert!(PeriodStatus::parse_field("status", " open").is_err());
    }
}
