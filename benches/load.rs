//! Load tool of issue #7: starts the release `sipas` binary on a fresh database, drives one
//! scenario against it over HTTP/1.1 from this machine (127.0.0.1 only), and prints throughput,
//! latency percentiles, errors by status and the server's memory.
//!
//! It is a `harness = false` bench so that `cargo bench --bench load -- ARGS` builds the release
//! binary and this tool together; see `--help` and BENCHMARKS.md for the commands measured.
//!
//! Two modes:
//! - closed loop (default): `--connections C` workers, each sending its next request as soon as
//!   the previous answer arrived; measures the most the server does.
//! - open loop (`--rate R`): request `i` is due at `start + i/R` whatever happened before, and
//!   its latency runs from that scheduled moment, so a stalled server shows up as latency
//!   instead of silently slowing the sender down (no coordinated omission).

// A bench's root is its own crate root, so the submodules in `benches/load/` are named by path.
#[path = "load/client.rs"]
mod client;
#[path = "load/scenario.rs"]
mod scenario;
#[path = "load/setup.rs"]
mod setup;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

use client::Connection;
use scenario::{READ_TOKENS, Scenario, Workload};
use setup::{FreshDatabase, Server, ServerOptions};

/// Load tool for sipas (issue #7). Starts `sipas serve` (release build) on a fresh database
/// (a temp SQLite file, or a new schema with --database postgres://…), prepares the data the
/// scenario needs outside the timed window, runs the load, checks the result and cleans up.
///
/// Run it with `cargo bench --bench load -- SCENARIO [OPTIONS]`, which builds the release binary
/// first; after a plain `cargo build --release`, `target/release/sipas` is used.
#[derive(Parser, Debug)]
#[command(name = "load")]
struct Args {
    /// What to load.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Length of the timed window, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Open loop: this many requests per second on a fixed schedule (latency from the
    /// scheduled time). Without it: closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Concurrent connections (closed loop), or the most requests in flight (open loop).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// `postgres://127.0.0.1:5432/test` to run on PostgreSQL (a schema is created and dropped);
    /// SQLite (a temp file) when omitted.
    #[arg(long)]
    database: Option<String>,
    /// SIPAS_MAX_BATCH of the server (its default when omitted); 1 = one fsync per submission.
    #[arg(long)]
    max_batch: Option<usize>,
    /// Run a second time with --max-batch 1 on a fresh database and print both and the ratio.
    #[arg(long)]
    compare_baseline: bool,
    /// Surveys registered up front for `submit` (default: enough for the rate, or 12,000 per
    /// second of the window in closed loop). A closed-loop run stops early when they run out.
    #[arg(long)]
    tokens: Option<usize>,
    /// RUST_LOG of the server; `info` (the shipped default) logs every request.
    #[arg(long, default_value = "info")]
    server_log: String,
    /// sipas processes started on the one database, connections spread over them round-robin
    /// (several instances behind a load balancer, as in production on PostgreSQL).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Threads of the load generator (1 leaves the other core to the server).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    };
    let result = runtime
        .context("cannot start the tokio runtime")
        .and_then(|rt| rt.block_on(run(&args)));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<bool> {
    if args.connections == 0
        || args.seconds == 0
        || args.instances == 0
        || args.rate.is_some_and(|r| r <= 0.0)
    {
        anyhow::bail!("--connections, --seconds, --instances and --rate must be positive");
    }
    let main = run_once(args, args.max_batch).await?;
    main.print();
    let mut good = main.check_passed;
    if args.compare_baseline {
        let baseline = run_once(args, Some(1)).await?;
        baseline.print();
        good &= baseline.check_passed;
        println!(
            "RATIO {} {}: max_batch {} / max_batch 1 = {:.2}x throughput, p99 {:.2} ms vs {:.2} ms",
            main.backend,
            args.scenario.name(),
            batch_label(main.max_batch),
            main.throughput() / baseline.throughput().max(f64::MIN_POSITIVE),
            main.percentile_ms(0.99),
            baseline.percentile_ms(0.99),
        );
    }
    Ok(good)
}

fn batch_label(max_batch: Option<usize>) -> String {
    max_batch.map_or_else(|| "default".to_string(), |n| n.to_string())
}

/// Everything measured in one run.
struct RunResult {
    scenario: Scenario,
    backend: &'static str,
    max_batch: Option<usize>,
    rate: Option<f64>,
    connections: usize,
    /// sipas processes sharing the load (and the database).
    instances: usize,
    /// From the first scheduled request to the last answer.
    elapsed: Duration,
    /// Every answered request's latency, in microseconds, sorted.
    latencies_us: Vec<u32>,
    ok: u64,
    /// Answers by status (the expected one included), and `io` for transport failures.
    statuses: BTreeMap<String, u64>,
    /// Answers with the right status but a wrong body.
    bad_bodies: u64,
    idle_rss_kb: Option<u64>,
    peak_rss_kb: u64,
    hwm_kb: Option<u64>,
    /// `submit` only: (stored responses, spent tokens) after the run.
    stored: Option<(i64, i64)>,
    check_passed: bool,
    tokens_ran_out: bool,
    /// Open loop: requests due in the window that could not be sent before it ended.
    unsent: u64,
}

impl RunResult {
    fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * self.latencies_us.len() as f64).ceil() as usize)
            .clamp(1, self.latencies_us.len());
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }

    fn print(&self) {
        let mode = match self.rate {
            Some(rate) => format!(
                "open loop at {rate} req/s (at most {} in flight)",
                self.connections
            ),
            None => format!("closed loop, {} connections", self.connections),
        };
        let mode = match self.instances {
            1 => mode,
            n => format!("{mode}, spread over {n} sipas instances"),
        };
        let mb = |kb: u64| kb as f64 / 1024.0;
        println!();
        println!(
            "== {} on {}, {}, max_batch {}",
            self.scenario.name(),
            self.backend,
            mode,
            batch_label(self.max_batch)
        );
        println!(
            "answers:    {} good in {:.2} s; by status: {:?}; wrong bodies: {}",
            self.ok,
            self.elapsed.as_secs_f64(),
            self.statuses,
            self.bad_bodies
        );
        if self.tokens_ran_out {
            println!("            (the prepared surveys ran out before the window ended)");
        }
        if self.unsent > 0 {
            println!(
                "            {} requests due in the window were never sent (server too slow); \
                 they count in the latencies as (window end - due time), a lower bound",
                self.unsent
            );
        }
        println!("throughput: {:.0} good answers/s", self.throughput());
        println!(
            "latency:    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({})",
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
            if self.rate.is_some() {
                "from the scheduled send time"
            } else {
                "from the actual send time"
            }
        );
        println!(
            "server RSS: idle {}, peak during load {:.1} MB (VmRSS sampled every 20 ms), VmHWM {}",
            self.idle_rss_kb
                .map_or("?".into(), |kb| format!("{:.1} MB", mb(kb))),
            mb(self.peak_rss_kb),
            self.hwm_kb
                .map_or("?".into(), |kb| format!("{:.1} MB", mb(kb))),
        );
        if let Some((stored, spent)) = self.stored {
            println!(
                "check:      {stored} responses stored, {spent} tokens spent, {} answered 200: {}",
                self.ok,
                if self.check_passed { "OK" } else { "MISMATCH" }
            );
        }
        println!(
            "RESULT scenario={} backend={} max_batch={} mode={} good={} unsent={} rps={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2} rss_idle_mb={:.1} rss_peak_mb={:.1} instances={}",
            self.scenario.name(),
            self.backend,
            batch_label(self.max_batch),
            self.rate
                .map_or(format!("closed/{}", self.connections), |r| format!(
                    "open/{r}"
                )),
            self.ok,
            self.unsent,
            self.throughput(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
            self.percentile_ms(1.0),
            self.idle_rss_kb.map_or(f64::NAN, mb),
            mb(self.peak_rss_kb),
            self.instances,
        );
    }
}

/// One complete run: fresh database, preparation, server, load, checks, cleanup.
async fn run_once(args: &Args, max_batch: Option<usize>) -> anyhow::Result<RunResult> {
    let database = FreshDatabase::create(args.database.as_deref())?;
    let window = args.seconds as f64;
    let token_count = match args.scenario {
        Scenario::Submit => args.tokens.unwrap_or_else(|| match args.rate {
            Some(rate) => (rate * window).ceil() as usize,
            None => 12_000 * args.seconds as usize,
        }),
        Scenario::Qr | Scenario::Page => READ_TOKENS,
        Scenario::Register => 0,
    };
    let prepared = setup::prepare(database.url(), token_count)?;
    let workload = Arc::new(Workload::new(
        args.scenario,
        prepared.api_key,
        prepared.tokens,
    )?);
    let mut servers = Vec::with_capacity(args.instances);
    for _ in 0..args.instances {
        servers.push(
            Server::start(&ServerOptions {
                database_url: database.url(),
                max_batch,
                log_level: &args.server_log,
            })
            .await?,
        );
    }
    // Memory is sampled in the first instance.
    let pid = servers[0].pid();
    // Let start-up work (migrations check, form sync, first allocations) settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kb = setup::memory_kb(pid).map(|(rss, _)| rss);

    let mut connections = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let addr = servers[i % servers.len()].addr;
        connections.push((addr, Connection::open(addr).await?));
    }

    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop_sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some((rss, _)) = setup::memory_kb(pid) {
                    peak = peak.max(rss);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };

    let start = Instant::now() + Duration::from_millis(10);
    let window_end = start + Duration::from_secs(args.seconds);
    let mut limit = workload.limit().unwrap_or(u64::MAX);
    if let Some(rate) = args.rate {
        limit = limit.min((rate * window).ceil() as u64);
    }
    let plan = Arc::new(Plan {
        start,
        window_end,
        rate: args.rate,
        limit,
        next: AtomicU64::new(0),
    });
    let mut workers = Vec::with_capacity(connections.len());
    for (addr, connection) in connections {
        workers.push(tokio::spawn(worker(
            addr,
            connection,
            workload.clone(),
            plan.clone(),
        )));
    }
    let mut total = WorkerTally::default();
    for w in workers {
        let tally = w.await.context("a load worker panicked")?;
        total.merge(tally);
    }
    // Open loop: requests the server left no time to send in the window still count, with the
    // least latency they would have had (window end − due time), so an overloaded server cannot
    // look fast by answering fewer requests.
    let mut unsent = 0;
    if let Some(rate) = args.rate {
        let io = total.statuses.get("io").copied().unwrap_or(0);
        let sent = total.latencies_us.len() as u64 + io;
        for i in sent..limit {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let at_least = window_end.saturating_duration_since(due).as_micros();
            total
                .latencies_us
                .push(u32::try_from(at_least).unwrap_or(u32::MAX));
            unsent += 1;
        }
    }
    let finished = total.last_answer.unwrap_or_else(Instant::now);
    stop_sampling.store(true, Ordering::Relaxed);
    let peak_rss_kb = sampler.join().unwrap_or(0);
    let hwm_kb = setup::memory_kb(pid).map(|(_, hwm)| hwm);
    let elapsed = finished.saturating_duration_since(start);
    let tokens_ran_out = args.rate.is_none()
        && workload
            .limit()
            .is_some_and(|l| plan.next.load(Ordering::Relaxed) >= l)
        && finished < window_end;

    // Outside the timed window: every 200 must be exactly one stored response and spent token.
    let (stored, check_passed) = if args.scenario == Scenario::Submit {
        let counts = setup::stored_counts(database.url())?;
        let ok = i64::try_from(total.ok).unwrap_or(i64::MAX);
        (Some(counts), counts == (ok, ok))
    } else {
        (None, total.bad_bodies == 0)
    };
    drop(servers);
    total.latencies_us.sort_unstable();
    Ok(RunResult {
        scenario: args.scenario,
        backend: database.backend(),
        max_batch,
        rate: args.rate,
        connections: args.connections,
        instances: args.instances,
        elapsed,
        latencies_us: total.latencies_us,
        ok: total.ok,
        statuses: total.statuses,
        bad_bodies: total.bad_bodies,
        idle_rss_kb,
        peak_rss_kb,
        hwm_kb,
        stored,
        check_passed,
        tokens_ran_out,
        unsent,
    })
}

/// The shared schedule: which request is next, and when it is due.
struct Plan {
    start: Instant,
    window_end: Instant,
    rate: Option<f64>,
    limit: u64,
    next: AtomicU64,
}

#[derive(Default)]
struct WorkerTally {
    latencies_us: Vec<u32>,
    ok: u64,
    statuses: BTreeMap<String, u64>,
    bad_bodies: u64,
    last_answer: Option<Instant>,
}

impl WorkerTally {
    fn merge(&mut self, other: WorkerTally) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_insert(0) += n;
        }
        self.bad_bodies += other.bad_bodies;
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

/// One connection's loop: take the next request number, wait for its time (open loop), send,
/// record. A broken connection is counted as `io` and replaced.
async fn worker(
    addr: std::net::SocketAddr,
    mut connection: Connection,
    workload: Arc<Workload>,
    plan: Arc<Plan>,
) -> WorkerTally {
    let mut tally = WorkerTally::default();
    let expected = workload.scenario.expected_status();
    tokio::time::sleep_until(plan.start.into()).await;
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        if i >= plan.limit {
            break;
        }
        let due = match plan.rate {
            Some(rate) => {
                // The window is over: what is still unsent is accounted for by the caller.
                if Instant::now() >= plan.window_end {
                    break;
                }
                let due = plan.start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => {
                let now = Instant::now();
                if now >= plan.window_end {
                    break;
                }
                now
            }
        };
        let request = workload.request(i);
        let result = connection.send(&request).await;
        let done = Instant::now();
        tally.last_answer = Some(done);
        match result {
            Ok(reply) => {
                let micros = done.saturating_duration_since(due).as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                *tally.statuses.entry(reply.status.to_string()).or_insert(0) += 1;
                if reply.status == expected {
                    if workload.body_is_good(&reply) {
                        tally.ok += 1;
                    } else {
                        tally.bad_bodies += 1;
                    }
                }
            }
            Err(_) => {
                *tally.statuses.entry("io".into()).or_insert(0) += 1;
                match Connection::open(addr).await {
                    Ok(fresh) => connection = fresh,
                    Err(_) => break,
                }
            }
        }
    }
    tally
}
