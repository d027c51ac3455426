//! Report latency on a large database, against the plain way of computing the same thing.
//!
//! ```sh
//! cargo run --release -- demo --responses 10000000 --units 500 --days 730   # DATABASE_URL=…
//! cargo bench --bench reports                                              # same DATABASE_URL
//! ```
//!
//! Measures, for one period (default: the current year):
//! - the agency dashboard's figures (`report::dashboard`) of single units, many units in turn;
//! - the province ranking of all communes;
//! - the baseline: one plain `GROUP BY` over the raw answers of one unit-year (and of the whole
//!   province once), the query a system without rollups would run.
//!
//! Prints p50 / p90 / max per measure and the ratio baseline ÷ rollups. Timing here is wall clock
//! on a noisy machine: compare ratios from one run, not absolute figures across runs.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use sipas::config::Settings;
use sipas::db::DbConn;
use sipas::report::period::Period;
use sipas::report::{ReportOptions, Slice};

struct Args {
    period: Period,
    units: usize,
    rounds: usize,
    baseline_units: usize,
    export: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        period: Period::parse(&sipas::db::now().format("%Y").to_string())
            .ok_or_else(|| anyhow::anyhow!("no current year"))?,
        units: 50,
        rounds: 3,
        baseline_units: 5,
        export: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--period" => {
                let text = value()?;
                args.period =
                    Period::parse(&text).ok_or_else(|| anyhow::anyhow!("bad period {text}"))?;
            }
            "--units" => args.units = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--baseline-units" => args.baseline_units = value()?.parse()?,
            "--export" => args.export = true,
            // cargo bench passes --bench; nothing else is expected.
            "--bench" => {}
            other => anyhow::bail!(
                "unknown argument {other}; use --period P --units N --rounds R --baseline-units N"
            ),
        }
    }
    Ok(args)
}

/// p50, p90 and max of some durations, in milliseconds.
fn summary(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
    (
        at(0.5),
        at(0.9),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
    )
}

fn print_row(what: &str, times: Vec<Duration>) -> f64 {
    let n = times.len();
    if n == 0 {
        return 0.0;
    }
    let (p50, p90, max) = summary(times);
    println!("{what:<52} n={n:<4} p50 {p50:>9.2} ms  p90 {p90:>9.2} ms  max {max:>9.2} ms");
    p50
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The plain way: every answer of the unit-year grouped by question and value, straight from
/// the stored responses (JSON expanded by the database itself).
fn baseline(
    conn: &mut DbConn,
    unit_ids: Option<&str>,
    from: chrono::NaiveDateTime,
    until: chrono::NaiveDateTime,
) -> anyhow::Result<i64> {
    let unit_filter = if unit_ids.is_some() {
        "AND r.unit_id = $3"
    } else {
        ""
    };
    let rows: Vec<Count> = match conn {
        DbConn::Sqlite(c) => {
            let sql = format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT j.key, j.value, COUNT(*) \
                 FROM responses r, json_each(r.answers) j WHERE r.form_code = 'sipas' \
                 AND r.submitted_at >= $1 AND r.submitted_at < $2 {unit_filter} GROUP BY j.key, j.value)"
            );
            let q = diesel::sql_query(sql)
                .bind::<Timestamp, _>(from)
                .bind::<Timestamp, _>(until);
            match unit_ids {
                Some(u) => q.bind::<Text, _>(u).load(&mut **c)?,
                None => q.load(&mut **c)?,
            }
        }
        DbConn::Postgres(c) => {
            let sql = format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT j.key, j.value::text, COUNT(*) \
                 FROM responses r, json_each(r.answers::json) j WHERE r.form_code = 'sipas' \
                 AND r.submitted_at >= $1 AND r.submitted_at < $2 {unit_filter} GROUP BY 1, 2) g"
            );
            let q = diesel::sql_query(sql)
                .bind::<Timestamp, _>(from)
                .bind::<Timestamp, _>(until);
            match unit_ids {
                Some(u) => q.bind::<Text, _>(u).load(&mut ***c)?,
                None => q.load(&mut ***c)?,
            }
        }
    };
    Ok(rows.first().map(|r| r.n).unwrap_or(0))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let settings = Settings::load(None)?;
    let (pool, forms, _) = sipas::prepare(&settings)?;
    let opts: ReportOptions = sipas::policies::Policies::from_settings(&settings)?.report;
    let conn = &mut pool.get()?;
    let stored: i64 = sipas::db_run!(conn: {
        sipas::db::schema::responses::table.count().get_result(conn)
    })?;
    let units: Vec<sipas::units::Unit> = sipas::units::list(conn)?
        .into_iter()
        .filter(|u| u.kind != "province" && u.valid_to.is_none())
        .collect();
    anyhow::ensure!(
        !units.is_empty(),
        "no units: load data first (sipas demo --responses N --units 500)"
    );
    println!(
        "database: {} | stored responses: {stored} | units: {} | period: {}",
        pool.backend_name(),
        units.len(),
        args.period.label()
    );
    if args.export {
        return export_benchmark(conn, &forms, &args.period, &settings);
    }
    let slice = Slice::default();
    let picked: Vec<&sipas::units::Unit> = units.iter().take(args.units).collect();

    // Warm the caches once, as a running server has them.
    sipas::report::dashboard(conn, &forms, &opts, picked[0], &args.period, &slice)?;
    let mut dashboard_times = Vec::new();
    let mut answered = 0;
    for _ in 0..args.rounds {
        for unit in &picked {
            let started = Instant::now();
            let (report, _) =
                sipas::report::dashboard(conn, &forms, &opts, unit, &args.period, &slice)?;
            dashboard_times.push(started.elapsed());
            answered += report.sipas.map(|s| s.responses).unwrap_or(0);
        }
    }
    let dashboard_p50 = print_row(
        "dashboard figures, one unit-year (rollups)",
        dashboard_times,
    );
    // Its two parts, to see where the time goes.
    let (mut report_times, mut suggestion_times) = (Vec::new(), Vec::new());
    for unit in &picked {
        let started = Instant::now();
        sipas::report::unit_report(conn, &forms, &opts, unit, &args.period, &slice)?;
        report_times.push(started.elapsed());
        let scope = sipas::report::source::scope(conn, &unit.id)?;
        let started = Instant::now();
        sipas::report::recent_suggestions(conn, &forms, &scope, &args.period, 8, opts.utc_offset)?;
        suggestion_times.push(started.elapsed());
    }
    print_row("  of which: figures (unit_report)", report_times);
    print_row("  of which: recent suggestions", suggestion_times);
    println!(
        "  (SIPAS responses behind each dashboard: {} on average)",
        answered / (args.rounds * picked.len()).max(1) as u64
    );

    let mut ranking_times = Vec::new();
    let mut ranked = 0;
    for _ in 0..args.rounds.max(3) {
        let started = Instant::now();
        ranked = sipas::report::ranking(conn, &forms, &opts, "commune", &args.period)?.len();
        ranking_times.push(started.elapsed());
    }
    print_row(
        &format!("province ranking of {ranked} communes (rollups)"),
        ranking_times,
    );

    let (from, until) = args.period.utc_bounds(settings.utc_offset_value()?);
    let mut baseline_times = Vec::new();
    for unit in picked.iter().take(args.baseline_units) {
        let started = Instant::now();
        baseline(conn, Some(&unit.id), from, until)?;
        baseline_times.push(started.elapsed());
    }
    let baseline_p50 = print_row(
        "baseline: GROUP BY over raw answers, one unit-year",
        baseline_times,
    );
    if args.baseline_units > 0 {
        let started = Instant::now();
        baseline(conn, None, from, until)?;
        print_row(
            "baseline: GROUP BY over raw answers, whole province",
            vec![started.elapsed()],
        );
    }
    println!(
        "ratio baseline ÷ dashboard (p50, one unit-year): {:.0}×",
        baseline_p50 / dashboard_p50.max(1e-9)
    );
    Ok(())
}

/// Resident and peak resident memory of this process, in MB (Linux).
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `--export`: the response export of the whole period, page by page as the web export
/// streams it (`report::response_export`), then the naive way (every row loaded at once) for
/// the memory comparison.
fn export_benchmark(
    conn: &mut sipas::db::DbConn,
    forms: &sipas::forms::FormRegistry,
    period: &Period,
    settings: &Settings,
) -> anyhow::Result<()> {
    use sipas::report::response_export::ResponseExport;
    let form = forms
        .latest("sipas")
        .ok_or_else(|| anyhow::anyhow!("no sipas form"))?;
    let (from, until) = period.utc_bounds(settings.utc_offset_value()?);
    let (rss_before, _) = memory_mb();
    let started = Instant::now();
    let mut export = ResponseExport::new(conn, &form, from, until)?;
    let mut bytes = export.header().len();
    let mut peak = rss_before;
    let mut pages = 0;
    while let Some(page) = export.next_page(conn)? {
        bytes += page.len();
        peak = peak.max(memory_mb().0);
        pages += 1;
        if pages % 50 == 0 {
            println!(
                "  {} rows after {:.2} s",
                export.rows(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows = export.rows();
    println!(
        "export (paged): {rows} rows, {:.0} MB of CSV in {seconds:.2} s = {:.0} rows/s; RSS {rss_before:.1} MB before, peak {peak:.1} MB (growth {:.1} MB)",
        bytes as f64 / 1e6,
        rows as f64 / seconds,
        peak - rss_before
    );
    println!(
        "RESULT export rows={rows} seconds={seconds:.2} rows_per_s={:.0} rss_growth_mb={:.1}",
        rows as f64 / seconds,
        peak - rss_before
    );
    // Baseline: what a simple export does, every row in memory before the first byte goes out.
    use sipas::db::schema::responses;
    let started = Instant::now();
    let all: Vec<(String, String, NaiveDateTime, String)> = sipas::db_run!(conn: {
        responses::table
            .filter(responses::form_code.eq("sipas"))
            .filter(responses::status.eq(sipas::survey::response::ResponseStatus::Counted.as_str()))
            .filter(responses::submitted_at.ge(from))
            .filter(responses::submitted_at.lt(until))
            .order((responses::submitted_at.asc(), responses::id.asc()))
            .select((responses::id, responses::unit_id, responses::submitted_at, responses::answers))
            .load(conn)
    })?;
    let (rss_after, _) = memory_mb();
    println!(
        "baseline (all rows loaded at once, not yet rendered): {} rows in {:.2} s, RSS growth {:.1} MB",
        all.len(),
        started.elapsed().as_secs_f64(),
        rss_after - rss_before
    );
    Ok(())
}
