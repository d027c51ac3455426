//! Drawing the sample for the independent paper survey.
//!
//! Per unit, the frame is the dossiers whose result was returned (completed) in the period and
//! that no earlier sample of the period holds; the sample size is n = N/(1+N·e²) or a fixed
//! quota, optionally allocated across procedures in proportion, plus a reserve list. One person
//! (same e-mail) or dossier is never drawn twice in a period. A draw depends only on the seed,
//! the unit codes and the dossiers: ChaCha20 is seeded from the recorded seed and the unit's
//! *code*, the frame is put in dossier-code order before our own unbiased shuffle, procedures are
//! allocated in procedure-code order and units drawn in unit-code order. Nothing depends on
//! random ids or on the order rows were inserted or come back in, so the same seed gives the same
//! sample from the same dossiers on any database, machine and future build.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::serial;
use super::status::MemberRole;
use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::{
    procedures, sample_members, sample_units, samples, survey_periods, transactions, units,
};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::report::stats::required_sample;
use crate::secret::ServerSecret;

/// One dossier of the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameEntry {
    pub transaction_id: String,
    /// Unique within the unit: the order of the frame.
    pub dossier_code: String,
    pub procedure_code: String,
    pub contact: Option<String>,
}

/// Uniform index in 0..n without modulo bias.
fn index_below(rng: &mut ChaCha20Rng, n: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let v = rng.next_u64();
        if v < zone {
            return v % n;
        }
    }
}

fn shuffle<T>(rng: &mut ChaCha20Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = index_below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The unit's generator: the sample seed mixed with the unit's code (never its random id), so
/// units draw independently and the same seed draws the same way on another database.
pub fn unit_rng(seed: u64, unit_code: &str) -> ChaCha20Rng {
    let digest = Sha256::digest(format!("{seed}:{unit_code}").as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest);
    ChaCha20Rng::from_seed(key)
}

/// Splits `n` over groups in proportion to their sizes (largest remainder).
fn allocate(sizes: &[usize], n: usize) -> Vec<usize> {
    let total: usize = sizes.iter().sum();
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let n = n.min(total);
    let exact: Vec<f64> = sizes
        .iter()
        .map(|s| *s as f64 * n as f64 / total as f64)
        .collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|a, b| {
        (exact[*b] - exact[*b].floor())
            .partial_cmp(&(exact[*a] - exact[*a].floor()))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b))
    });
    let mut left = n - out.iter().sum::<usize>();
    for i in order {
        if left == 0 {
            break;
        }
        if out[i] < sizes[i] {
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

/// Chooses `main` then `reserve` dossiers from `frame`, skipping contacts already `taken`.
/// The frame is sorted by dossier code (then procedure code and contact, content only) before
/// the shuffle, and grouped by procedure code: the result does not depend on the frame's order.
pub fn plan(
    frame: &[FrameEntry],
    main: usize,
    reserve: usize,
    by_procedure: bool,
    rng: &mut ChaCha20Rng,
    taken: &mut HashSet<String>,
) -> (Vec<String>, Vec<String>) {
    let mut sorted: Vec<&FrameEntry> = frame.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.dossier_code, &a.procedure_code, &a.contact).cmp(&(
            &b.dossier_code,
            &b.procedure_code,
            &b.contact,
        ))
    });
    let mut groups: BTreeMap<&str, Vec<&FrameEntry>> = BTreeMap::new();
    if by_procedure {
        for e in &sorted {
            groups.entry(e.procedure_code.as_str()).or_default().push(e);
        }
    } else {
        groups.insert("", sorted.clone());
    }
    for list in groups.values_mut() {
        shuffle(rng, list);
    }
    let sizes: Vec<usize> = groups.values().map(Vec::len).collect();
    let quotas = allocate(&sizes, main);
    let mut chosen = Vec::new();
    let mut rest = Vec::new();
    let accept = |e: &FrameEntry, taken: &mut HashSet<String>| -> bool {
        match &e.contact {
            Some(c) => taken.insert(c.to_lowercase()),
            None => true,
        }
    };
    for (list, quota) in groups.values().zip(quotas) {
        let mut got = 0;
        for e in list {
            if got < quota && accept(e, taken) {
                chosen.push(e.transaction_id.clone());
                got += 1;
            } else {
                rest.push(*e);
            }
        }
    }
    // Reserve: interleave what is left of every group, in shuffled order.
    let mut reserve_list = Vec::new();
    for e in rest {
        if reserve_list.len() >= reserve {
            break;
        }
        if !chosen.contains(&e.transaction_id) && accept(e, taken) {
            reserve_list.push(e.transaction_id.clone());
        }
    }
    (chosen, reserve_list)
}

/// What an administrator asks for.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub period_code: String,
    pub unit_codes: Vec<String>,
    pub seed: Option<u64>,
    pub margin: f64,
    pub quota: Option<u64>,
    pub reserve_share: f64,
    pub by_procedure: bool,
    pub form_code: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitDraw {
    pub unit_code: String,
    pub population: i64,
    pub required: i64,
    pub drawn: i64,
    pub reserve: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampleSummary {
    pub id: String,
    pub period: String,
    pub seed: u64,
    pub units: Vec<UnitDraw>,
}

fn field(name: &str, vi: &str, en: &str) -> AppError {
    AppError::field(name, Msg::new(vi, en))
}

/// Draws and stores a sample; the whole draw is one audited transaction.
pub fn draw(
    conn: &mut DbConn,
    secret: &ServerSecret,
    forms: &crate::forms::FormRegistry,
    actor: &Actor,
    request: &SampleRequest,
    utc_offset: chrono::FixedOffset,
) -> AppResult<SampleSummary> {
    if !(request.margin > 0.0 && request.margin < 0.5) {
        return Err(field(
            "margin",
            "Sai số phải trong khoảng (0; 0,5).",
            "The margin must be between 0 and 0.5.",
        ));
    }
    if !(0.0..=2.0).contains(&request.reserve_share) {
        return Err(field(
            "reserve_share",
            "Tỷ lệ dự phòng phải từ 0 đến 2.",
            "The reserve share must be between 0 and 2.",
        ));
    }
    let form = forms
        .latest(&request.form_code)
        .ok_or_else(|| field("form", "Không có mẫu phiếu này.", "No such form."))?;
    let period = crate::periods::find_by_code(conn, &request.period_code)?.ok_or_else(|| {
        field(
            "period",
            "Không có kỳ khảo sát này.",
            "No such survey period.",
        )
    })?;
    if request.unit_codes.is_empty() {
        return Err(field(
            "units",
            "Chọn ít nhất một đơn vị.",
            "Choose at least one unit.",
        ));
    }
    let mut chosen_units = Vec::new();
    for code in &request.unit_codes {
        let unit = crate::units::find_by_code(conn, code)?.ok_or_else(|| {
            field(
                "units",
                "Có mã đơn vị không tồn tại.",
                "A unit code does not exist.",
            )
        })?;
        if !chosen_units
            .iter()
            .any(|u: &crate::units::Unit| u.id == unit.id)
        {
            chosen_units.push(unit);
        }
    }
    // Units share the "nobody twice" set: draw them in code order, whatever order was typed.
    chosen_units.sort_by(|a, b| a.code.cmp(&b.code));
    let seed = request.seed.unwrap_or_else(|| rand::rng().next_u64() >> 11);
    let shift = chrono::Duration::seconds(utc_offset.local_minus_utc().into());
    let from: NaiveDateTime = period.starts_on.and_hms_opt(0, 0, 0).unwrap_or_default() - shift;
    let until: NaiveDateTime = period
        .ends_on
        .succ_opt()
        .unwrap_or(period.ends_on)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        - shift;
    let sample_id = uuid::Uuid::new_v4().to_string();
    conn.write_transaction(|conn| {
        // Everyone already drawn in this period, by dossier and by contact.
        let earlier: Vec<(String, Option<String>)> = db_run!(conn: {
            sample_members::table
                .inner_join(transactions::table.on(transactions::id.eq(sample_members::transaction_id)))
                .filter(sample_members::period_id.eq(&period.id))
                .select((sample_members::transaction_id, transactions::email))
                .load(conn)
        })?;
        let drawn_before: HashSet<String> = earlier.iter().map(|(t, _)| t.clone()).collect();
        let mut taken: HashSet<String> = earlier.iter().filter_map(|(_, e)| e.as_ref().map(|e| e.to_lowercase())).collect();
        db_run!(conn: {
            diesel::insert_into(samples::table)
                .values((
                    samples::id.eq(&sample_id),
                    samples::period_id.eq(&period.id),
                    samples::seed.eq(seed as i64),
                    samples::margin.eq(request.margin),
                    samples::quota.eq(request.quota.map(|q| q as i64)),
                    samples::reserve_share.eq(request.reserve_share),
                    samples::by_procedure.eq(request.by_procedure),
                    samples::form_code.eq(&form.code),
                    samples::form_version.eq(form.version),
                    samples::created_by.eq(&actor.name),
                    samples::created_at.eq(crate::db::now()),
                ))
                .execute(conn)
        })?;
        let mut summary = Vec::new();
        for unit in &chosen_units {
            let rows: Vec<(String, String, String, Option<String>)> = db_run!(conn: {
                transactions::table
                    .inner_join(procedures::table.on(procedures::id.eq(transactions::procedure_id)))
                    .filter(transactions::unit_id.eq(&unit.id))
                    .filter(transactions::completed_at.ge(from))
                    .filter(transactions::completed_at.lt(until))
                    .select((transactions::id, transactions::dossier_code, procedures::code, transactions::email))
                    .load(conn)
            })?;
            let frame: Vec<FrameEntry> = rows
                .into_iter()
                .filter(|(id, _, _, _)| !drawn_before.contains(id))
                .map(|(transaction_id, dossier_code, procedure_code, contact)| FrameEntry {
                    transaction_id,
                    dossier_code,
                    procedure_code,
                    contact,
                })
                .collect();
            let population = frame.len() as u64;
            let required = match request.quota {
                Some(q) => q.min(population),
                None => required_sample(population, request.margin),
            };
            let reserve = (required as f64 * request.reserve_share).ceil() as usize;
            let mut rng = unit_rng(seed, &unit.code);
            let (main, reserve_ids) = plan(&frame, required as usize, reserve, request.by_procedure, &mut rng, &mut taken);
            let members: Vec<(String, &str, i64, String)> = main
                .iter()
                .map(|t| (t, MemberRole::Main.as_str()))
                .chain(reserve_ids.iter().map(|t| (t, MemberRole::Reserve.as_str())))
                .enumerate()
                .map(|(i, (t, role))| (uuid::Uuid::new_v4().to_string(), role, i as i64 + 1, t.clone()))
                .collect();
            db_run!(conn: {
                for (id, role, position, transaction_id) in &members {
                    diesel::insert_into(sample_members::table)
                        .values((
                            sample_members::id.eq(id),
                            sample_members::sample_id.eq(&sample_id),
                            sample_members::period_id.eq(&period.id),
                            sample_members::unit_id.eq(&unit.id),
                            sample_members::transaction_id.eq(transaction_id),
                            sample_members::role.eq(role),
                            sample_members::position.eq(position),
                            sample_members::serial.eq(serial::for_member(secret, id)),
                        ))
                        .execute(conn)?;
                }
                diesel::insert_into(sample_units::table)
                    .values((
                        sample_units::sample_id.eq(&sample_id),
                        sample_units::unit_id.eq(&unit.id),
                        sample_units::population.eq(population as i64),
                        sample_units::required.eq(required as i64),
                        sample_units::drawn.eq(main.len() as i64),
                        sample_units::reserve.eq(reserve_ids.len() as i64),
                    ))
                    .execute(conn)
            })?;
            summary.push(UnitDraw {
                unit_code: unit.code.clone(),
                population: population as i64,
                required: required as i64,
                drawn: main.len() as i64,
                reserve: reserve_ids.len() as i64,
            });
        }
        let result = SampleSummary { id: sample_id.clone(), period: period.code.clone(), seed, units: summary };
        audit::record(
            conn,
            actor,
            "sample.draw",
            "sample",
            &sample_id,
            None,
            Some(json!({ "period": period.code, "seed": seed, "margin": request.margin, "quota": request.quota, "reserve_share": request.reserve_share, "by_procedure": request.by_procedure, "units": result.units })),
        )?;
        Ok(result)
    })
}

/// One line of a worklist.
#[derive(Debug, Clone, Serialize, Queryable)]
pub struct WorklistRow {
    pub serial: String,
    pub role: String,
    pub position: i64,
    pub unit_code: String,
    pub unit_name: String,
    pub dossier_code: String,
    pub procedure_code: String,
    pub completed_at: NaiveDateTime,
}

/// The members of a sample (optionally of one unit), main list first.
pub fn worklist(
    conn: &mut DbConn,
    sample_id: &str,
    unit_id: Option<&str>,
) -> QueryResult<Vec<WorklistRow>> {
    db_run!(conn: {
        let mut q = sample_members::table
            .inner_join(units::table.on(units::id.eq(sample_members::unit_id)))
            .inner_join(transactions::table.on(transactions::id.eq(sample_members::transaction_id)))
            .inner_join(procedures::table.on(procedures::id.eq(transactions::procedure_id)))
            .filter(sample_members::sample_id.eq(sample_id))
            .select((
                sample_members::serial, sample_members::role, sample_members::position, units::code, units::name_vi,
                transactions::dossier_code, procedures::code, transactions::completed_at,
            ))
            .into_boxed();
        if let Some(u) = unit_id {
            q = q.filter(sample_members::unit_id.eq(u.to_string()));
        }
        q.order((units::code.asc(), sample_members::role.asc(), sample_members::position.asc())).load(conn)
    })
}

/// A stored sample with its per-unit figures.
#[derive(Debug, Clone, Serialize)]
pub struct StoredSample {
    pub id: String,
    pub period_code: String,
    pub seed: i64,
    pub margin: f64,
    pub quota: Option<i64>,
    pub reserve_share: f64,
    pub by_procedure: bool,
    pub form_code: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub units: Vec<(String, String, String, i64, i64, i64, i64)>,
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<StoredSample>> {
    type Row = (
        String,
        String,
        i64,
        f64,
        Option<i64>,
        f64,
        bool,
        String,
        String,
        NaiveDateTime,
    );
    let rows: Vec<Row> = db_run!(conn: {
        samples::table
            .inner_join(survey_periods::table.on(survey_periods::id.eq(samples::period_id)))
            .order(samples::created_at.desc())
            .select((samples::id, survey_periods::code, samples::seed, samples::margin, samples::quota, samples::reserve_share, samples::by_procedure, samples::form_code, samples::created_by, samples::created_at))
            .load(conn)
    })?;
    let mut out = Vec::new();
    for (
        id,
        period_code,
        seed,
        margin,
        quota,
        reserve_share,
        by_procedure,
        form_code,
        created_by,
        created_at,
    ) in rows
    {
        let units: Vec<(String, String, String, i64, i64, i64, i64)> = db_run!(conn: {
            sample_units::table
                .inner_join(units::table.on(units::id.eq(sample_units::unit_id)))
                .filter(sample_units::sample_id.eq(&id))
                .order(units::code.asc())
                .select((units::id, units::code, units::name_vi, sample_units::population, sample_units::required, sample_units::drawn, sample_units::reserve))
                .load(conn)
        })?;
        out.push(StoredSample {
            id,
            period_code,
            seed,
            margin,
            quota,
            reserve_share,
            by_procedure,
            form_code,
            created_by,
            created_at,
            units,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize, procedures: usize) -> Vec<FrameEntry> {
        (0..n)
            .map(|i| FrameEntry {
                transaction_id: format!("t{i:05}"),
                dossier_code: format!("t{i:05}"),
                procedure_code: format!("p{}", i % procedures),
                contact: Some(format!("c{}@x.vn", i / 2)),
            })
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_sample() {
        let f = frame(400, 3);
        let a = plan(
            &f,
            50,
            10,
            false,
            &mut unit_rng(42, "u"),
            &mut HashSet::new(),
        );
        let b = plan(
            &f,
            50,
            10,
            false,
            &mut unit_rng(42, "u"),
            &mut HashSet::new(),
        );
        let c = plan(
            &f,
            50,
            10,
            false,
            &mut unit_rng(43, "u"),
            &mut HashSet::new(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.0.len(), a.1.len()), (50, 10));
    }

    #[test]
    fn the_frame_order_and_ids_do_not_matter() {
        let f = frame(300, 3);
        let draw = |f: &[FrameEntry]| {
            let (main, reserve) = plan(
                f,
                40,
                12,
                true,
                &mut unit_rng(7, "STP"),
                &mut HashSet::new(),
            );
            // Members by dossier code: transaction ids are random on another database.
            let code = |t: &String| {
                f.iter()
                    .find(|e| &e.transaction_id == t)
                    .map(|e| e.dossier_code.clone())
            };
            (
                main.iter().filter_map(code).collect::<Vec<_>>(),
                reserve.iter().filter_map(code).collect::<Vec<_>>(),
            )
        };
        let reference = draw(&f);
        let mut other: Vec<FrameEntry> = f.iter().rev().cloned().collect();
        other.rotate_left(77);
        for (i, e) in other.iter_mut().enumerate() {
            e.transaction_id = format!("other-id-{}", (i * 7919) % 1000);
        }
        assert_eq!(draw(&other), reference);
        assert_eq!(reference.0.len(), 40);
        assert_eq!(reference.1.len(), 12);
    }

    #[test]
    fn nobody_twice_and_reserve_apart() {
        let f = frame(200, 2);
        let (main, reserve) = plan(&f, 60, 30, true, &mut unit_rng(1, "u"), &mut HashSet::new());
        let all: HashSet<&String> = main.iter().chain(reserve.iter()).collect();
        assert_eq!(all.len(), 90, "no dossier twice");
        // Two dossiers share each contact: at most one of each pair is drawn.
        let contacts: HashSet<usize> = main
            .iter()
            .chain(reserve.iter())
            .map(|t| t[1..].parse::<usize>().unwrap() / 2)
            .collect();
        assert_eq!(contacts.len(), 90, "no person twice");
    }

    #[test]
    fn allocation_is_proportional() {
        assert_eq!(allocate(&[60, 30, 10], 10), vec![6, 3, 1]);
        assert_eq!(allocate(&[1, 1, 1], 2).iter().sum::<usize>(), 2);
        assert_eq!(allocate(&[3, 0], 10), vec![3, 0]);
        assert_eq!(allocate(&[], 5), Vec::<usize>::new());
    }
}
