//! The `sipas` command line: serve, migrate, demo data, form checks and key administration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use sipas::audit::Actor;
use sipas::config::Settings;
use sipas::db::{DatabaseUrl, DbPool};
use sipas::error::AppError;
use sipas::paper::samples;
use sipas::services::Services;
use sipas::{Application, accounts, api_keys, audit, forms, procedures, units};

/// sipas: khảo sát sự hài lòng về sự phục vụ hành chính / citizen satisfaction surveys.
#[derive(Parser)]
#[command(name = "sipas", version, about, long_about = None)]
struct Cli {
    /// Settings file (TOML); environment variables (DATABASE_URL, SIPAS_*) override it.
    #[arg(long, global = true, env = "SIPAS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the web service (migrates the database first).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        bind: Option<String>,
        /// Load the demo province first and print URLs to try.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations.
    Migrate {
        /// Revert every migration, then apply them all again (checks the down scripts).
        #[arg(long)]
        redo_all: bool,
    },
    /// Load the demo province (units, procedures, a counter API key); safe to repeat.
    Demo {
        /// Also add this many synthetic responses (with their dossiers) over the past year.
        #[arg(long, default_value_t = 0)]
        responses: u64,
        /// Seed of the synthetic data (the same seed gives the same answers).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Spread the synthetic responses over this many days before today.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Add synthetic communes until this many units are active (e.g. 500 for benchmarks).
        #[arg(long, default_value_t = 0)]
        units: usize,
        /// Build a province of simulated units, some inflating their counter results (proxy
        /// filling, watched answering, selective QR codes, bursts), and print how many the
        /// integrity signals flag.
        #[arg(long)]
        simulate_gaming: bool,
        /// Also load six months of a province with a story (as `serve --demo` does).
        #[arg(long)]
        story: bool,
        /// Measure false alarms: 500 honest units over this many simulated months, in memory
        /// (no database), and print how many the integrity panel flags per month by chance.
        #[arg(long, default_value_t = 0)]
        false_alarm_months: usize,
    },
    /// Survey-form files.
    Forms {
        #[command(subcommand)]
        command: FormsCommand,
    },
    /// Units (agencies, communes).
    Units {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// The procedure catalogue.
    Procedures {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// API keys of counter systems.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// User accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Print a unit's satisfaction figures for a period (text, json or csv).
    Report {
        /// Unit code (its subtree and merged predecessors are included).
        #[arg(long)]
        unit: String,
        /// 2026, 2026-Q3, 2026-07 or 2026-01-15..2026-03-31.
        #[arg(long)]
        period: String,
        /// text, json or csv.
        #[arg(long, default_value = "text")]
        format: String,
        /// counter, independent, or one channel (qr, link, kiosk, paper, phone, interview).
        #[arg(long)]
        channel: Option<String>,
        /// individual or organisation.
        #[arg(long)]
        respondent_type: Option<String>,
    },
    /// Samples for the independent paper survey.
    Sample {
        #[command(subcommand)]
        command: SampleCommand,
    },
    /// Paper forms typed elsewhere.
    Paper {
        #[command(subcommand)]
        command: PaperCommand,
    },
    /// The e-mail outbox.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Published releases: freeze a period into a signed snapshot, verify a downloaded one.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Copy the SQLite database to a new file while the service runs (VACUUM INTO), then check
    /// the copy (PRAGMA integrity_check). On PostgreSQL: prints the pg_dump procedure.
    Backup {
        /// The copy to write; an existing file is never overwritten.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an administrator; prints the generated first password (to be changed at sign-in).
    CreateAdmin {
        #[arg(long)]
        username: String,
        /// Full name shown in the console and the audit log.
        #[arg(long, default_value = "Quản trị viên")]
        name: String,
    },
}

#[derive(Subcommand)]
enum SampleCommand {
    /// Draw a sample for a survey period; prints its id, seed and per-unit sizes.
    Draw {
        /// Survey period code (see the admin console's periods).
        #[arg(long)]
        period: String,
        /// Unit codes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        units: Vec<String>,
        /// Seed of the draw (random when omitted; always recorded).
        #[arg(long)]
        seed: Option<u64>,
        /// Margin e in n = N/(1+N·e²).
        #[arg(long)]
        margin: Option<f64>,
        /// Fixed number of forms per unit instead of the formula.
        #[arg(long)]
        quota: Option<u64>,
        /// Reserve list size as a share of the sample.
        #[arg(long, default_value_t = 0.2)]
        reserve: f64,
        /// Allocate each unit's sample across procedures in proportion.
        #[arg(long)]
        by_procedure: bool,
    },
    /// List samples.
    List,
    /// Print a sample's worklist as CSV (UTF-8 with BOM).
    Worklist {
        #[arg(long)]
        sample: String,
    },
}

#[derive(Subcommand)]
enum PaperCommand {
    /// Import a CSV of typed paper forms (header: serial, then question codes; `|` separates
    /// multi-choice options). All or nothing; a file imported before is refused.
    Import {
        #[arg(long)]
        file: PathBuf,
        /// Username of the collector who typed the file.
        #[arg(long)]
        typist: String,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// List outbox messages (newest first; addresses are never printed).
    List {
        /// queued, sending, sent, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue failed messages again: one by id, or all failed ones.
    Retry {
        /// Outbox id (from `sipas mail list`); all failed messages when omitted.
        id: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the chain with the audit key and compare its head with the head file(s); exits
    /// non-zero and names the first wrong event if it was tampered with.
    Verify {
        /// A head recorded earlier from `sipas audit head`, as SEQ:HASH; that event must still
        /// be in the log unchanged.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
        /// Head file of an instance writing this database (repeat for each instance); default:
        /// this instance's own (SIPAS_AUDIT_HEAD_FILE).
        #[arg(long = "head-file", value_name = "PATH")]
        head_files: Vec<PathBuf>,
    },
    /// Print the chain's current head (seq, hash, time) to record somewhere else.
    Head,
}

#[derive(Subcommand)]
enum ReleaseCommand {
    /// Compute, sign and store a release of a period (a second one corrects the first).
    Create {
        /// 2026, 2026-Q3, 2026-07 or 2026-01-15..2026-03-31.
        #[arg(long)]
        period: String,
        /// Why (for a correction).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// List the releases.
    List,
    /// Check a downloaded release file against its signature (FILE.sig unless --signature).
    Verify {
        file: PathBuf,
        /// The signature file: 64 raw bytes or base64.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// The publisher's public key (PEM or base64); default: this server's release key,
        /// else the key the file names (which proves less).
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum FormsCommand {
    /// Validate every form file; errors name the file, line and problem.
    Check {
        /// Folder of form files (default: the configured forms_dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ListCommand {
    /// Print codes and names, one per line (tab-separated).
    List,
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key for a unit; prints only the key on standard output.
    Create {
        /// Unit code the key is bound to.
        #[arg(long)]
        unit: String,
        /// Free text to recognise the key later (e.g. the counter system's name).
        #[arg(long, default_value = "counter")]
        label: String,
    },
    /// List the keys of a unit (never the keys themselves).
    List {
        #[arg(long)]
        unit: String,
    },
    /// Revoke a key by its id (from `api-key list`).
    Revoke { id: String },
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,actix_server=warn"));
    // One line per finished request (its span closing), carrying request_id, route and status.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lỗi / error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Command::Forms {
        command: FormsCommand::Check { dir },
    } = &cli.command
    {
        return Ok(check_forms(dir.as_ref().unwrap_or(&settings.forms_dir)));
    }
    if let Command::Release {
        command:
            ReleaseCommand::Verify {
                file,
                signature,
                public_key,
            },
    } = &cli.command
    {
        return verify_release(&settings, file, signature.as_deref(), public_key.as_deref());
    }
    if let Command::Backup { to } = &cli.command {
        let url = DatabaseUrl::parse(&settings.database_url)?;
        if let DatabaseUrl::Postgres(_) = url {
            eprintln!("{}", sipas::backup::POSTGRES_PROCEDURE);
            return Ok(ExitCode::FAILURE);
        }
        let spinner = sipas::progress::spinner("VACUUM INTO");
        let report = sipas::backup::backup(&url, to);
        spinner.finish_and_clear();
        println!("{}", report?);
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&settings);
    match cli.command {
        Command::Serve { bind, demo } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            serve(settings, demo)?;
        }
        Command::Migrate { redo_all } => {
            let url = DatabaseUrl::parse(&settings.database_url)?;
            let pool = DbPool::connect(&url, 2)?;
            let mut conn = pool.get()?;
            if redo_all {
                let reverted = sipas::db::revert_all_migrations(&mut conn)?;
                println!("reverted {reverted} migration(s)");
            }
            let applied = sipas::db::run_migrations(&mut conn)?;
            println!("applied {applied} migration(s) on {}", url.backend_name());
        }
        Command::Demo {
            responses,
            seed,
            days,
            units,
            simulate_gaming,
            story,
            false_alarm_months,
        } => {
            let (pool, forms, secret) = sipas::prepare(&settings)?;
            let info = sipas::load_demo(&settings, &mut pool.get()?, &secret)?;
            if story {
                load_story(&settings, &mut pool.get()?, &forms, &secret)?;
            }
            let added = sipas::synthetic::ensure_units(&mut pool.get()?, units)?;
            if added > 0 {
                eprintln!("added {added} synthetic communes");
            }
            if responses > 0 {
                let started = std::time::Instant::now();
                let progress = sipas::progress::bar(responses, "responses");
                let made = sipas::synthetic::generate_with_progress(
                    &mut pool.get()?,
                    &forms,
                    responses,
                    days,
                    sipas::db::now(),
                    seed,
                    settings.utc_offset_value()?,
                    &progress,
                )?;
                progress.finish_and_clear();
                eprintln!(
                    "added {} synthetic responses and {} dossiers in {:.1} s",
                    made.responses,
                    made.transactions,
                    started.elapsed().as_secs_f64()
                );
            }
            if simulate_gaming {
                let policy = sipas::policies::Policies::from_settings(&settings)?.integrity;
                let mut conn = pool.get()?;
                let sim = sipas::integrity::simulate::build(
                    &mut conn,
                    &forms,
                    &secret,
                    &policy,
                    seed,
                    40,
                    20,
                    sipas::db::now(),
                )?;
                let assessed = sipas::integrity::units::assess(
                    &mut conn,
                    &forms,
                    &sipas::policies::Policies::from_settings(&settings)?.report,
                    &policy,
                    &sim.period,
                )?;
                let d = sipas::integrity::simulate::measure(&sim, &assessed);
                println!(
                    "Mô phỏng / Simulation {}: {} responses; gaming units flagged {}/{} ({:.0} %), honest units flagged {}/{} ({:.0} %)",
                    sim.period.label(),
                    sim.responses,
                    d.gaming_flagged,
                    d.gaming,
                    d.gaming_rate() * 100.0,
                    d.honest_flagged,
                    d.honest,
                    d.honest_rate() * 100.0
                );
                println!("See /admin/integrity?period={}", sim.period.label());
            }
            if false_alarm_months > 0 {
                let form = forms
                    .codes()
                    .filter_map(|c| forms.latest(c))
                    .find(|f| f.kind == sipas::forms::FormKind::Sipas)
                    .ok_or_else(|| anyhow::anyhow!("no SIPAS form loaded"))?;
                let policy = sipas::policies::Policies::from_settings(&settings)?.integrity;
                let f = sipas::integrity::simulate::false_alarms(
                    &form,
                    &policy,
                    seed,
                    500,
                    false_alarm_months,
                    settings.report_min_n,
                );
                println!(
                    "Báo động nhầm / False alarms: {} honest units × {} months: {} flagged ({} months with a flag), {:.3} per month",
                    f.units,
                    f.periods,
                    f.flagged,
                    f.periods_with_flags,
                    f.per_period()
                );
            }
            println!(
                "Demo province loaded: {} units, {} procedures.",
                info.units, info.procedures
            );
            println!("Counter API key (whole province): {}", info.province_key);
            println!(
                "Admin sign-in: {} / {}",
                info.admin_username, info.admin_password
            );
        }
        Command::Forms { .. } | Command::Backup { .. } => unreachable!("handled above"),
        Command::Units {
            command: ListCommand::List,
        } => {
            let (pool, _, _) = sipas::prepare(&settings)?;
            for unit in units::list(&mut pool.get()?)? {
                let until = unit
                    .valid_to
                    .map(|d| format!("until {d}"))
                    .unwrap_or_default();
                println!("{}\t{}\t{}\t{}", unit.code, unit.kind, unit.name_vi, until);
            }
        }
        Command::Procedures {
            command: ListCommand::List,
        } => {
            let (pool, _, _) = sipas::prepare(&settings)?;
            for p in procedures::list(&mut pool.get()?)? {
                println!(
                    "{}\t{}\t{}",
                    p.code,
                    p.sector.as_deref().unwrap_or(""),
                    p.name_vi
                );
            }
        }
        Command::ApiKey { command } => {
            let (pool, _, _) = sipas::prepare(&settings)?;
            let mut conn = pool.get()?;
            match command {
                ApiKeyCommand::Create { unit, label } => {
                    let unit = units::find_by_code(&mut conn, &unit)?.with_context(|| {
                        format!("no unit with code `{unit}` (see `sipas units list`)")
                    })?;
                    println!(
                        "{}",
                        api_keys::create(&mut conn, &Actor::cli(), &unit.id, &label)?
                    );
                }
                ApiKeyCommand::List { unit } => {
                    let unit = units::find_by_code(&mut conn, &unit)?
                        .with_context(|| format!("no unit with code `{unit}`"))?;
                    for key in api_keys::list_for_unit(&mut conn, &unit.id)? {
                        let state = if key.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        let used = key
                            .last_used_at
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "never".into());
                        println!("{}\t{}\t{}\tlast used {}", key.id, state, key.label, used);
                    }
                }
                ApiKeyCommand::Revoke { id } => {
                    if !api_keys::revoke(&mut conn, &Actor::cli(), &id)? {
                        anyhow::bail!("no active key with id `{id}`");
                    }
                    println!("revoked {id}");
                }
            }
        }
        Command::User {
            command: UserCommand::CreateAdmin { username, name },
        } => {
            let (pool, _, _) = sipas::prepare(&settings)?;
            let password = accounts::password::generate();
            accounts::users::create_admin(&mut pool.get()?, &username, &name, &password)
                .map_err(|e| anyhow::anyhow!("{}", e.user_message().en))?;
            println!("{password}");
        }
        Command::Sample { command } => {
            let margin = settings.sample_margin;
            return run_use_cases(&settings, |services| sample(services, command, margin));
        }
        Command::Paper {
            command: PaperCommand::Import { file, typist },
        } => {
            return run_use_cases(&settings, |services| import_paper(services, file, typist));
        }
        Command::Mail { command } => {
            let (pool, _, _) = sipas::prepare(&settings)?;
            let mut conn = pool.get()?;
            match command {
                MailCommand::List { status, limit } => {
                    let status = match status.as_deref() {
                        Some(text) => Some(sipas::mail::outbox::MailStatus::parse(text).ok_or_else(
                            || anyhow::anyhow!("unknown status {text:?} (queued, sending, sent, failed, cancelled)"),
                        )?),
                        None => None,
                    };
                    for e in sipas::mail::outbox::list(&mut conn, status, limit)? {
                        println!(
                            "{}\t{}\t{} {}\t{}\t{}\tattempts {}\t{}",
                            e.id,
                            e.status,
                            e.kind,
                            e.channel,
                            e.unit_code,
                            e.dossier_code,
                            e.attempts,
                            e.last_error.unwrap_or_default()
                        );
                    }
                }
                MailCommand::Retry { id } => {
                    let n = sipas::mail::outbox::retry(
                        &mut conn,
                        &sipas::accounts::actor::Actor::cli(),
                        id.as_deref(),
                    )?;
                    println!("queued {n} message(s) again");
                }
            }
        }
        Command::Report {
            unit,
            period,
            format,
            channel,
            respondent_type,
        } => {
            let (pool, forms, _) = sipas::prepare(&settings)?;
            let mut conn = pool.get()?;
            let unit = units::find_by_code(&mut conn, &unit)?
                .with_context(|| format!("no unit with code `{unit}` (see `sipas units list`)"))?;
            let period = sipas::report::period::Period::parse(&period).context(
                "period must look like 2026, 2026-Q3, 2026-07 or 2026-01-15..2026-03-31",
            )?;
            let slice = sipas::report::Slice {
                channel,
                respondent_type,
                procedure_id: None,
                include_held: false,
            };
            let spinner = sipas::progress::spinner("computing the report");
            let report = sipas::report::unit_report(
                &mut conn,
                &forms,
                &sipas::policies::Policies::from_settings(&settings)?.report,
                &unit,
                &period,
                &slice,
            );
            spinner.finish_and_clear();
            let report = report.map_err(|e| anyhow::anyhow!("{}", e.user_message().en))?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&report)?),
                "csv" => print!("{}", sipas::report::export::unit_csv(&report)),
                "text" => print!("{}", sipas::report::export::text(&report)),
                other => anyhow::bail!("unknown format `{other}`: use text, json or csv"),
            }
        }
        Command::Release { command } => {
            let (pool, forms, _) = sipas::prepare(&settings)?;
            let mut conn = pool.get()?;
            match command {
                ReleaseCommand::Create { period, note } => {
                    let key_file = sipas::publish::signing::key_path(&settings)?;
                    let spinner = sipas::progress::spinner("computing the release");
                    let created = sipas::publish::release::create(
                        &mut conn,
                        &forms,
                        &sipas::policies::Policies::from_settings(&settings)?.report,
                        &key_file,
                        &Actor::cli(),
                        &period,
                        &note,
                    );
                    spinner.finish_and_clear();
                    let r = created.map_err(|e| anyhow::anyhow!("{}", e.user_message().en))?;
                    let changes = r.parsed().map(|d| d.changes.len()).unwrap_or(0);
                    println!(
                        "release\t{}\nperiod\t{}\nsequence\t{}\nsha256\t{}",
                        r.id, r.period, r.sequence, r.sha256
                    );
                    if r.corrects.is_some() {
                        println!("changes\t{changes}");
                    }
                    println!(
                        "public at {}/public/releases/{}",
                        settings.public_base(),
                        r.id
                    );
                }
                ReleaseCommand::List => {
                    let rows = sipas::publish::release::list(&mut conn)
                        .map_err(|e| anyhow::anyhow!("{}", e.user_message().en))?;
                    for r in rows {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            r.id, r.period, r.sequence, r.created_at, r.sha256
                        );
                    }
                }
                ReleaseCommand::Verify { .. } => unreachable!("handled above"),
            }
        }
        Command::Audit { command } => {
            let (pool, _, _) = sipas::prepare(&settings)?;
            let mut conn = pool.get()?;
            match command {
                AuditCommand::Verify { head, head_files } => {
                    let expected_head = match head {
                        Some(text) => Some(audit::parse_head(&text).with_context(|| {
                            format!("--head `{text}` must look like 42:hmac-sha256:… (see `sipas audit head`)")
                        })?),
                        None => None,
                    };
                    let options = audit::VerifyOptions {
                        head_files,
                        expected_head,
                    };
                    let checked = audit::verify_with(&mut conn, &options)?;
                    let lines: Vec<String> = checked.lines().into_iter().map(|m| m.en).collect();
                    match checked.result() {
                        Ok(n) => {
                            println!("audit chain intact: {n} events");
                            for line in lines {
                                println!("  {line}");
                            }
                        }
                        Err(problem) => {
                            eprintln!("audit chain BROKEN: {problem}");
                            for line in lines {
                                eprintln!("  {line}");
                            }
                            return Ok(ExitCode::FAILURE);
                        }
                    }
                }
                AuditCommand::Head => {
                    let (seq, hash, at) = audit::head(&mut conn)?;
                    let at = at
                        .map(|t| {
                            t.and_utc()
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        })
                        .unwrap_or_else(|| "-".into());
                    println!("seq\t{seq}\nhash\t{hash}\nat\t{at}");
                    println!("verify later with: sipas audit verify --head {seq}:{hash}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sipas release verify`: needs no database, only the files (and the local key if any).
fn verify_release(
    settings: &Settings,
    file: &std::path::Path,
    signature: Option<&std::path::Path>,
    public_key: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use sipas::publish::verify::{KeySource, verify_file};
    let local = sipas::publish::signing::key_path(settings).ok();
    let checked = verify_file(file, signature, public_key, local.as_deref())?;
    let key = match &checked.key {
        KeySource::Given(p) => format!("the public key {}", p.display()),
        KeySource::Local(p) => format!("this server's release key {}", p.display()),
        KeySource::Embedded => {
            "the key the file names (compare its fingerprint with the published one)".into()
        }
    };
    if let Some((period, sequence)) = &checked.release {
        println!("release of period {period}, sequence {sequence}");
    }
    println!(
        "sha256\t{}\nkey\t{} ({key})",
        checked.sha256, checked.fingerprint
    );
    if checked.valid {
        println!("chữ ký hợp lệ / signature valid");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "CHỮ KÝ KHÔNG HỢP LỆ / SIGNATURE INVALID: the file was changed after signing, or another key signed it"
        );
        Ok(ExitCode::FAILURE)
    }
}

fn check_forms(dir: &std::path::Path) -> ExitCode {
    match forms::registry::read_dir(dir) {
        Ok(list) => {
            for form in &list {
                let questions = form.questions().count();
                println!(
                    "ok\t{} v{}\t{}\t{} questions",
                    form.code,
                    form.version,
                    form.kind.as_str(),
                    questions
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                eprintln!("{error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs a command through the use cases the web handlers call (on [`Services`], as
/// `Actor::cli()` unless a person is named), then lets the command's group commit finish.
fn run_use_cases<F>(
    settings: &Settings,
    work: impl FnOnce(Services) -> F,
) -> anyhow::Result<ExitCode>
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let (services, writer) = sipas::command_services(settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(work(services));
    runtime.block_on(writer.shutdown());
    result
}

/// An error of a use case as the command line says it (English, as the other commands).
fn said(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.user_message().en)
}

/// `sipas sample …`: the administrator's sample use cases (`paper::samples`).
async fn sample(
    services: Services,
    command: SampleCommand,
    default_margin: f64,
) -> anyhow::Result<ExitCode> {
    let actor = accounts::Actor::cli();
    match command {
        SampleCommand::Draw {
            period,
            units,
            seed,
            margin,
            quota,
            reserve,
            by_procedure,
        } => {
            let request = sipas::paper::sampling::SampleRequest {
                period_code: period,
                unit_codes: units
                    .iter()
                    .map(|u| u.trim().to_ascii_uppercase())
                    .collect(),
                seed,
                margin: margin.unwrap_or(default_margin),
                quota,
                reserve_share: reserve,
                by_procedure,
                form_code: "sipas".into(),
            };
            let drawn = samples::draw(&services, actor, request)
                .await
                .map_err(said)?;
            println!(
                "sample {} (period {}, seed {})",
                drawn.id, drawn.period, drawn.seed
            );
            for u in drawn.units {
                println!(
                    "{}\tN={}\trequired={}\tdrawn={}\treserve={}",
                    u.unit_code, u.population, u.required, u.drawn, u.reserve
                );
            }
        }
        SampleCommand::List => {
            let (stored, _) = samples::overview(&services).await.map_err(said)?;
            for s in stored {
                let drawn: i64 = s.units.iter().map(|u| u.5).sum();
                println!(
                    "{}\t{}\tseed {}\t{} units\t{} drawn",
                    s.id,
                    s.period_code,
                    s.seed,
                    s.units.len(),
                    drawn
                );
            }
        }
        SampleCommand::Worklist { sample } => {
            let spinner = sipas::progress::spinner("reading the worklist");
            let read = samples::worklist(&services, actor, sample.clone(), None).await;
            spinner.finish_and_clear();
            let missing =
                || anyhow::anyhow!("no sample `{sample}` or it is empty (see `sipas sample list`)");
            let rows = match read {
                Ok((_, rows)) if !rows.is_empty() => rows,
                Ok(_) | Err(AppError::NotFound(_)) => return Err(missing()),
                Err(e) => return Err(said(e)),
            };
            let mut out = String::from(sipas::report::export::BOM);
            out.push_str("serial,list,position,unit,dossier_code,procedure\r\n");
            for r in rows {
                out.push_str(&format!(
                    "{},{},{},{},{},{}\r\n",
                    r.serial, r.role, r.position, r.unit_code, r.dossier_code, r.procedure_code
                ));
            }
            print!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sipas paper import`: the import use case, as the typist named.
async fn import_paper(
    services: Services,
    file: PathBuf,
    typist: String,
) -> anyhow::Result<ExitCode> {
    use sipas::paper::import::{self, ImportError};
    let content =
        std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let rows = content.iter().filter(|b| **b == b'\n').count();
    let spinner = sipas::progress::spinner(&format!("importing {name} (~{rows} rows)"));
    let imported = import::import_file(&services, typist, name, content).await;
    spinner.finish_and_clear();
    match imported {
        Ok(n) => println!("imported {n} form(s)"),
        Err(ImportError::UnknownTypist(typist)) => anyhow::bail!("no user `{typist}`"),
        Err(e) => {
            let message = import::describe(&e);
            eprintln!("{} / {}", message.vi, message.en);
            if let ImportError::Invalid(problems) = &e {
                for p in problems {
                    eprintln!("  {p}");
                }
            }
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[actix_web::main]
async fn serve_async(
    app: Application,
    urls: Option<serde_json::Value>,
    demo_key: Option<String>,
) -> anyhow::Result<()> {
    if let Some(mut urls) = urls {
        if let Some(api_key) = demo_key {
            // The printed sample survey is registered as a counter system would register it.
            let caller = sipas::survey::registration::Caller {
                api_key,
                address: "127.0.0.1".into(),
                user_agent: "sipas serve --demo".into(),
            };
            let request = sipas::survey::transaction::TransactionRequest {
                unit: "STP".into(),
                dossier_code: format!("DEMO-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")),
                procedure: "LLTP-01".into(),
                received_at: sipas::db::now() - chrono::Duration::days(3),
                due_at: None,
                completed_at: sipas::db::now(),
                email: None,
                form: Some("sipas".into()),
                phone: None,
                counter: None,
            };
            let state = app.state().clone();
            let issued = sipas::survey::registration::register(&state, caller, request)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let survey = state.survey_url(&issued.token);
            urls["survey"] = json!(survey);
            urls["survey_qr"] = json!(format!("{survey}/qr.svg"));
        }
        print_urls(&urls);
    }
    app.run_until_stopped().await?;
    Ok(())
}

/// Six months of a province with a story (see `sipas::demo::story`); once per database.
fn load_story(
    settings: &Settings,
    conn: &mut sipas::db::DbConn,
    forms: &sipas::forms::FormRegistry,
    secret: &sipas::secret::ServerSecret,
) -> anyhow::Result<()> {
    let policy = sipas::policies::Policies::from_settings(settings)?.integrity;
    // Instances started together with `--demo` take turns: the first loads, the others find it.
    let url = sipas::db::DatabaseUrl::parse(&settings.database_url)?;
    let _lock = sipas::db::lock::StartupLock::acquire(&url, "demo story")?;
    let started = std::time::Instant::now();
    let story = sipas::demo::story::load(conn, forms, secret, &policy, 2026, sipas::db::now())?;
    if !story.already_loaded {
        eprintln!(
            "demo story: {} responses, {} dossiers, {} paper forms, {} cases followed up ({:.1} s)",
            story.responses,
            story.dossiers,
            story.paper_forms,
            story.cases_closed,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn serve(settings: Settings, load_demo: bool) -> anyhow::Result<()> {
    let app = Application::build(settings)?;
    let state = app.state().clone();
    let base = state.public_base();
    tracing::info!(port = app.port(), %base, database = state.pool.backend_name(), "sipas is listening");
    let mut urls = json!({ "home": format!("{base}/"), "health": format!("{base}/healthz"), "openapi": format!("{base}/api/openapi.json") });
    let mut demo_key = None;
    if load_demo {
        let mut conn = state.pool.get()?;
        let info = sipas::load_demo(&state.settings, &mut conn, &state.secret)?;
        // `SIPAS_DEMO_STORY=off`: only the small demo province, e.g. for tests that count rows.
        let story = std::env::var("SIPAS_DEMO_STORY").unwrap_or_default();
        if !matches!(story.trim(), "off" | "0" | "false") {
            load_story(&state.settings, &mut conn, &state.forms, &state.secret)?;
        }
        urls["api_key"] = json!(info.province_key);
        urls["admin"] = json!(format!("{base}/login"));
        urls["admin_login"] = json!(format!("{} / {}", info.admin_username, info.admin_password));
        demo_key = Some(info.province_key);
    }
    serve_async(app, Some(urls), demo_key)
}

fn print_urls(urls: &serde_json::Value) {
    let get = |k: &str| {
        urls.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    println!();
    println!("  sipas đang chạy / is running");
    println!("  Trang chủ / Home:            {}", get("home"));
    println!("  Kiểm tra / Health:           {}", get("health"));
    println!("  Tài liệu API / OpenAPI:      {}", get("openapi"));
    if !get("survey").is_empty() {
        println!("  Phiếu khảo sát mẫu / Sample survey: {}", get("survey"));
        println!("  Mã QR / QR code:             {}", get("survey_qr"));
        println!("  Khóa API demo / Demo API key: {}", get("api_key"));
        println!(
            "  Quản trị / Admin console:    {}  ({})",
            get("admin"),
            get("admin_login")
        );
        println!();
        println!("  Thử API / Try the API:");
        println!(
            "    curl -s -X POST {}/api/v1/transactions -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\",
            get("home").trim_end_matches('/'),
            get("api_key")
        );
        println!(
            "      -d '{{\"unit\":\"STP\",\"dossier_code\":\"HS-0001\",\"procedure\":\"LLTP-01\",\"received_at\":\"2026-11-20T08:00:00+07:00\",\"completed_at\":\"2026-11-25T09:00:00+07:00\"}}'"
        );
    }
    println!("  Dừng / Stop: Ctrl+C");
    println!();
}
