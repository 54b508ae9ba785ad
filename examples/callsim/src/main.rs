//! `lumina-callsim`: simulated voice calls into Lumina's `gp` and `rt` receivers.
//!
//! ```sh
//! lumina-callsim --gp 127.0.0.1:4327 --rt 127.0.0.1:4337 --calls 1000 --disorder 0.2 \
//!     --duplicate 0.05 --late 0.05 --truth truth.jsonl
//! lumina-callsim --wire json --gp 127.0.0.1:4328 --rt 127.0.0.1:4338 --calls 10
//! lumina-callsim --calls 10 --events events.jsonl --truth truth.jsonl   # write, do not send
//! ```
#![expect(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use lumina_callsim::{Progress, SimConfig, Target, Wire, generate, native_json, send, truth_json};
use lumina_sdk::voice::DialogueStatus;

/// Simulated voice calls: GP and RT events, with the dialogues they should assemble into.
#[derive(Parser, Debug)]
#[command(name = "lumina-callsim", version)]
struct Args {
    /// The `gp` receiver: its gRPC `host:port` (`--wire otlp`) or HTTP `host:port` (`--wire json`).
    #[arg(long)]
    gp: Option<String>,
    /// The `rt` receiver, likewise.
    #[arg(long)]
    rt: Option<String>,
    /// How events travel.
    #[arg(long, value_enum, default_value = "otlp")]
    wire: Wire,
    /// Calls to simulate.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Organizations the calls belong to.
    #[arg(long, default_value_t = 10)]
    organizations: usize,
    /// Random seed (the same seed gives the same calls).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fraction of events sent out of order.
    #[arg(long, default_value_t = 0.0)]
    disorder: f64,
    /// Fraction of events sent twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Fraction of calls with an event sent after every call ended.
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    /// Fraction of calls that never end.
    #[arg(long, default_value_t = 0.0)]
    never_end: f64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Keep retrying a refused request this long (seconds).
    #[arg(long, default_value_t = 60)]
    retry_for: u64,
    /// Send at most this many events per second (default: as fast as the collector takes
    /// them).
    #[arg(long)]
    rate: Option<f64>,
    /// Write the expected dialogues here (JSON lines).
    #[arg(long)]
    truth: Option<std::path::PathBuf>,
    /// Write the events here (JSON lines: `{"source": "GP", "event": {...}}`) in send order.
    #[arg(long)]
    events: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = SimConfig {
        calls: args.calls,
        organizations: args.organizations,
        seed: args.seed,
        start: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as i64
            - 3_600_000_000_000,
        disorder: args.disorder,
        duplicate: args.duplicate,
        late: args.late,
        never_end: args.never_end,
        idle_status: DialogueStatus::Failed,
        ..SimConfig::default()
    };
    let plan = generate(&cfg);
    if let Some(path) = &args.truth {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for d in &plan.truth {
            writeln!(f, "{}", truth_json(d))?;
        }
        f.flush()?;
    }
    if let Some(path) = &args.events {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for s in &plan.sends {
            let source = s.source.as_str();
            writeln!(
                f,
                "{}",
                serde_json::json!({ "source": source, "event": native_json(&s.event) })
            )?;
        }
        f.flush()?;
    }
    let (Some(gp), Some(rt)) = (args.gp, args.rt) else {
        println!(
            "generated {} calls: {} events, {} dialogues (not sent: give --gp and --rt to send)",
            args.calls,
            plan.sends.len(),
            plan.truth.len()
        );
        return Ok(());
    };
    let target = Target {
        wire: args.wire,
        gp,
        rt,
        batch: args.batch,
        concurrency: args.concurrency,
        retry_for: Duration::from_secs(args.retry_for),
        rate: args.rate,
    };
    let report = send(&plan, &target, Arc::new(Progress::default())).await?;
    println!(
        "sent {} events of {} calls ({} dialogues) in {:.2}s: {} acknowledged, {} rejected, {} retries, {} requests failed ({:.0} events/s)",
        report.events,
        args.calls,
        plan.truth.len(),
        report.seconds,
        report.acknowledged,
        report.rejected,
        report.retries,
        report.failed,
        report.events as f64 / report.seconds.max(1e-9)
    );
    if report.failed > 0 || report.rejected > 0 {
        std::process::exit(1);
    }
    Ok(())
}
