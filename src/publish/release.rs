//! Releases: an administrator freezes a period's results into an immutable, signed snapshot.
//!
//! The figures come from the staff report code (so they equal the staff reports, suppression
//! included), are computed outside the write transaction (reads only), and the document is
//! assembled, signed and stored inside it, where the sequence number and the release it
//! corrects are decided. Rows are only ever inserted.

use std::path::Path;
use std::sync::Arc;

use chrono::SecondsFormat;
use data_encoding::BASE64;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::document::{
    self, ChannelResult, DossierResult, ElementResult, Estimate, ItemResult, METHOD_VERSION,
    MethodInfo, RankRow, Ranking, ReleaseDocument, ReleaseMeta, SampleResult, UnitResult,
};
use super::ranks;
use super::signing::{ReleaseKey, sha256_hex};
use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::releases;
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::report::period::Period;
use crate::report::{self, ReportOptions, Slice};
use crate::units::{self, UNIT_KINDS};

/// A stored release.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = releases)]
pub struct Release {
    pub id: String,
    pub period: String,
    pub sequence: i64,
    pub created_at: chrono::NaiveDateTime,
    pub created_by: String,
    pub method_version: String,
    pub note: String,
    /// The canonical JSON bytes exactly as signed.
    pub document: String,
    pub sha256: String,
    /// Ed25519 signature, base64.
    pub signature: String,
    /// Ed25519 public key, base64.
    pub public_key: String,
    pub corrects: Option<String>,
}

impl Release {
    pub fn parsed(&self) -> AppResult<ReleaseDocument> {
        serde_json::from_str(&self.document)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("release {} unreadable: {e}", self.id)))
    }

    pub fn signature_bytes(&self) -> AppResult<Vec<u8>> {
        BASE64
            .decode(self.signature.as_bytes())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("release {} signature: {e}", self.id)))
    }
}

/// Everything but the document, for lists.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = releases)]
pub struct ReleaseSummary {
    pub id: String,
    pub period: String,
    pub sequence: i64,
    pub created_at: chrono::NaiveDateTime,
    pub created_by: String,
    pub method_version: String,
    pub note: String,
    pub sha256: String,
    pub corrects: Option<String>,
}

fn bad_period() -> AppError {
    AppError::field(
        "period",
        Msg::new(
            "Kỳ công bố có dạng 2026, 2026-Q3, 2026-07 hoặc 2026-01-15..2026-03-31.",
            "The period looks like 2026, 2026-Q3, 2026-07 or 2026-01-15..2026-03-31.",
        ),
    )
}

/// Figures of every unit and ranking of a period, before they get a release number.
pub struct Snapshot {
    period: Period,
    units: Vec<UnitResult>,
    rankings: Vec<Ranking>,
    publisher: (String, String),
    method: MethodInfo,
}

/// Computes the figures of `period_text` with the staff report code: every unit active at the
/// end of the period, and a ranking with rank ranges per unit level.
pub fn snapshot(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    period_text: &str,
) -> AppResult<Snapshot> {
    let period = Period::parse(period_text).ok_or_else(bad_period)?;
    let all = units::list(conn)?;
    let code_of = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| all.iter().find(|u| &u.id == id))
            .map(|u| u.code.clone())
    };
    let active: Vec<&units::Unit> = all
        .iter()
        .filter(|u| {
            u.valid_from <= period.to
                && u.valid_to.is_none_or(|end| end >= period.to)
                && u.merged_into_id.is_none()
        })
        .collect();
    let mut unit_results = Vec::new();
    for unit in &active {
        let r = report::unit_report(conn, forms, opts, unit, &period, &Slice::default())?;
        let (responses, index, elements) = match &r.sipas {
            Some(s) => (
                s.responses,
                Estimate::from(&s.index),
                s.elements
                    .iter()
                    .map(|e| ElementResult {
                        code: e.code.clone(),
                        title_vi: e.title_vi.clone(),
                        title_en: e.title_en.clone(),
                        index: Estimate::from(&e.index),
                        items: e
                            .items
                            .iter()
                            .map(|i| ItemResult {
                                code: i.code.clone(),
                                text_vi: i.text_vi.clone(),
                                text_en: i.text_en.clone(),
                                satisfied: Estimate::from(&i.satisfied),
                                mean: i.mean.filter(|_| !i.satisfied.suppressed()),
                            })
                            .collect(),
                    })
                    .collect(),
            ),
            None => (
                0,
                Estimate {
                    n: 0,
                    value: None,
                    ci_low: None,
                    ci_high: None,
                    se: None,
                },
                Vec::new(),
            ),
        };
        unit_results.push(UnitResult {
            code: unit.code.clone(),
            name_vi: unit.name_vi.clone(),
            name_en: unit.name_en.clone(),
            kind: unit.kind.clone(),
            parent_code: code_of(&unit.parent_id),
            responses,
            index,
            elements,
            sample: SampleResult {
                population: r.sample.population,
                required: r.sample.required,
                achieved: r.sample.achieved,
                sufficient: r.sample.sufficient,
            },
            dossier_rate: DossierResult {
                dossiers: r.dossier_rate.counts.dossiers,
                rated_unsatisfied: r.dossier_rate.counts.rated_unsatisfied,
                late: r.dossier_rate.counts.late,
                rate: r.dossier_rate.rate,
            },
            channels: r.gap.as_ref().map(|g| ChannelResult {
                counter: Estimate::from(&g.counter),
                independent: Estimate::from(&g.independent),
                difference: g.difference,
                p_value: g.p_value,
                significant: g.significant,
            }),
        });
    }
    let mut rankings = Vec::new();
    for kind in UNIT_KINDS {
        let rows = report::ranking(conn, forms, opts, kind, &period)?;
        if rows.is_empty() {
            continue;
        }
        rankings.push(ranking_with_ranges(kind, &rows));
    }
    let province = active.iter().find(|u| u.kind == "province");
    let publisher = province
        .map(|p| (p.name_vi.clone(), p.name_en.clone()))
        .unwrap_or_else(|| ("SIPAS".into(), "SIPAS".into()));
    Ok(Snapshot {
        period,
        units: unit_results,
        rankings,
        publisher,
        method: MethodInfo {
            version: METHOD_VERSION.into(),
            confidence: 0.95,
            min_n: opts.min_n,
            sample_margin: opts.sample_margin,
            rank_rule: "Units with a sufficient sample are ordered only where their 95 % intervals do not overlap: rank range = 1 + (units whose interval lies wholly above) … N − (units whose interval lies wholly below).".into(),
        },
    })
}

/// The staff ranking of one level with a rank range for every ranked unit.
pub fn ranking_with_ranges(kind: &str, rows: &[report::RankingRow]) -> Ranking {
    let ranked: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i].rank.is_some())
        .collect();
    let estimates: Vec<ranks::Estimate> = ranked
        .iter()
        .map(|i| {
            let f = &rows[*i].index;
            let value = f.value.unwrap_or(0.0);
            ranks::Estimate {
                value,
                low: f.ci_low.unwrap_or(0.0),
                high: f.ci_high.unwrap_or(100.0),
            }
        })
        .collect();
    let ranges = ranks::rank_ranges(&estimates);
    let out = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let range = ranked
                .iter()
                .position(|r| *r == i)
                .map(|position| ranges[position]);
            RankRow {
                unit_code: row.unit.code.clone(),
                rank: range.map(|r| r.point),
                rank_low: range.map(|r| r.low),
                rank_high: range.map(|r| r.high),
                tied: range.is_some_and(|r| r.tied()),
                index: Estimate::from(&row.index),
                sufficient: row.sample.sufficient,
            }
        })
        .collect();
    Ranking {
        kind: kind.to_string(),
        rows: out,
    }
}

/// Computes, signs and stores a new release of `period_text`; a second release of the same
/// period corrects the latest one and lists what changed. Audited.
pub fn create(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    key_file: &Path,
    actor: &Actor,
    period_text: &str,
    note: &str,
) -> AppResult<Release> {
    crate::text::check("note", note, crate::text::Lines::Multi)?;
    crate::text::check_length("note", note, 2000)?;
    let period = Period::parse(period_text).ok_or_else(bad_period)?;
    let key = ReleaseKey::load_or_create(key_file).map_err(AppError::Internal)?;
    let snap = snapshot(conn, forms, opts, &period.label())?;
    conn.write_transaction(|conn| {
        let label = snap.period.label();
        let previous: Option<Release> = db_run!(conn: {
            releases::table
                .filter(releases::period.eq(&label))
                .order(releases::sequence.desc())
                .select(Release::as_select())
                .first(conn)
                .optional()
        })?;
        let id = uuid::Uuid::now_v7().to_string();
        let created_at = crate::db::now();
        let mut doc = ReleaseDocument {
            schema: document::SCHEMA.into(),
            release: ReleaseMeta {
                id: id.clone(),
                period: label.clone(),
                from: snap.period.from,
                to: snap.period.to,
                sequence: previous.as_ref().map_or(1, |p| p.sequence + 1),
                created_at: created_at
                    .and_utc()
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                corrects: previous.as_ref().map(|p| p.id.clone()),
                note: note.trim().to_string(),
                publisher_vi: snap.publisher.0.clone(),
                publisher_en: snap.publisher.1.clone(),
                licence: document::LICENCE_URL.into(),
                signing_key: key.public().to_base64(),
            },
            method: snap.method.clone(),
            units: snap.units.clone(),
            rankings: snap.rankings.clone(),
            changes: Vec::new(),
        };
        if let Some(p) = &previous {
            doc.changes = document::diff(&p.parsed()?, &doc);
        }
        let bytes = doc
            .canonical_bytes()
            .map_err(|e| AppError::Internal(e.into()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("release not UTF-8: {e}")))?;
        let release = Release {
            id: id.clone(),
            period: label.clone(),
            sequence: doc.release.sequence,
            created_at,
            created_by: actor.name.clone(),
            method_version: METHOD_VERSION.into(),
            note: doc.release.note.clone(),
            sha256: sha256_hex(text.as_bytes()),
            signature: BASE64.encode(&key.sign(text.as_bytes())),
            public_key: key.public().to_base64(),
            corrects: doc.release.corrects.clone(),
            document: text,
        };
        let inserted = db_run!(conn: {
            diesel::insert_into(releases::table)
                .values((
                    releases::id.eq(&release.id),
                    releases::period.eq(&release.period),
                    releases::sequence.eq(release.sequence),
                    releases::created_at.eq(release.created_at),
                    releases::created_by.eq(&release.created_by),
                    releases::method_version.eq(&release.method_version),
                    releases::note.eq(&release.note),
                    releases::document.eq(&release.document),
                    releases::sha256.eq(&release.sha256),
                    releases::signature.eq(&release.signature),
                    releases::public_key.eq(&release.public_key),
                    releases::corrects.eq(&release.corrects),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => {}
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                return Err(AppError::Conflict(Msg::new(
                    "Một đợt công bố khác của kỳ này vừa được tạo; vui lòng thử lại.",
                    "Another release of this period was just created; please try again.",
                )));
            }
            Err(e) => return Err(e.into()),
        }
        audit::record(
            conn,
            actor,
            if previous.is_some() {
                "release.correct"
            } else {
                "release.create"
            },
            "release",
            &release.id,
            None,
            Some(json!({
                "period": release.period,
                "sequence": release.sequence,
                "sha256": release.sha256,
                "public_key": release.public_key,
                "corrects": release.corrects,
                "changes": doc.changes.len(),
                "note": release.note,
            })),
        )?;
        Ok(release)
    })
}

/// Every release, newest first.
pub fn list(conn: &mut DbConn) -> AppResult<Vec<ReleaseSummary>> {
    Ok(db_run!(conn: {
        releases::table
            .order((releases::created_at.desc(), releases::id.desc()))
            .select(ReleaseSummary::as_select())
            .load(conn)
    })?)
}

pub fn find(conn: &mut DbConn, id: &str) -> AppResult<Release> {
    db_run!(conn: {
        releases::table
            .find(id)
            .select(Release::as_select())
            .first(conn)
            .optional()
    })?
    .ok_or_else(|| AppError::NotFound(Msg::new("Không có đợt công bố này.", "No such release.")))
}

/// The releases in force: the latest of each period, ordered by period end (newest first).
pub fn current(conn: &mut DbConn) -> AppResult<Vec<ReleaseSummary>> {
    let all = list(conn)?;
    let mut latest: Vec<ReleaseSummary> = Vec::new();
    for r in all {
        match latest.iter_mut().find(|l| l.period == r.period) {
            Some(l) if l.sequence < r.sequence => *l = r,
            Some(_) => {}
            None => latest.push(r),
        }
    }
    let end = |r: &ReleaseSummary| Period::parse(&r.period).map(|p| (p.to, p.from));
    latest.sort_by(|a, b| end(b).cmp(&end(a)).then(b.created_at.cmp(&a.created_at)));
    Ok(latest)
}

/// Parsed documents by release id. Releases never change, so an entry never goes stale; the
/// public pages then parse a (possibly megabytes large) document once per process, not per
/// request. Bounded: the oldest entries go first.
static DOCUMENTS: std::sync::Mutex<Vec<(String, Arc<ReleaseDocument>)>> =
    std::sync::Mutex::new(Vec::new());
const CACHED_DOCUMENTS: usize = 32;

/// The parsed document of release `id` (404 when there is none).
pub fn document(conn: &mut DbConn, id: &str) -> AppResult<Arc<ReleaseDocument>> {
    if let Ok(cache) = DOCUMENTS.lock()
        && let Some((_, doc)) = cache.iter().find(|(k, _)| k == id)
    {
        return Ok(doc.clone());
    }
    let doc = Arc::new(find(conn, id)?.parsed()?);
    if let Ok(mut cache) = DOCUMENTS.lock() {
        if cache.len() >= CACHED_DOCUMENTS {
            cache.remove(0);
        }
        cache.push((id.to_string(), doc.clone()));
    }
    Ok(doc)
}

/// The document a public page shows: the release asked for, else the newest in force; `None`
/// while nothing is published.
pub fn shown(conn: &mut DbConn, id: Option<&str>) -> AppResult<Option<Arc<ReleaseDocument>>> {
    match id {
        Some(id) => document(conn, id).map(Some),
        None => match current(conn)?.first() {
            Some(r) => document(conn, &r.id).map(Some),
            None => Ok(None),
        },
    }
}

/// Each release in force (oldest period first) with its parsed document: the trend across
/// releases.
pub fn history(conn: &mut DbConn) -> AppResult<Vec<Arc<ReleaseDocument>>> {
    let mut out = Vec::new();
    for r in current(conn)?.into_iter().rev() {
        out.push(document(conn, &r.id)?);
    }
    Ok(out)
}

/// The distinct public keys that signed releases, newest first (the key page lists them).
pub fn public_keys(conn: &mut DbConn) -> AppResult<Vec<(String, chrono::NaiveDateTime)>> {
    let rows: Vec<(String, chrono::NaiveDateTime)> = db_run!(conn: {
        releases::table
            .order(releases::created_at.desc())
            .select((releases::public_key, releases::created_at))
            .load(conn)
    })?;
    let mut out: Vec<(String, chrono::NaiveDateTime)> = Vec::new();
    for (key, at) in rows {
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, at));
        }
    }
    Ok(out)
}
