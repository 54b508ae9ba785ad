//! `lumina-bench`: runs Lumina and Rotel side by side on identical work and prints a Markdown
//! table of medians, spreads and Lumina/Rotel ratios. `scripts/bench.sh` builds everything,
//! fetches Rotel, pins this driver to one core and the collectors to another, and runs it.
//!
//! Scenarios: saturation throughput with nothing out (Lumina `nop`, Rotel `blackhole`);
//! saturation throughput through a batcher to an OTLP sink; CPU and peak RSS at fixed rates;
//! and, Lumina alone (no peer assembles calls), voice events into `gp` → `dialogue_assembly`
//! (durable local store) → `nop` at saturation and at a fixed rate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use lumina_loadgen::sink::{SinkStats, serve};
use lumina_loadgen::{LoadConfig, PayloadSpec, Protocol, Shape, Stop, run};
use lumina_sdk::Signal;
use lumina_sdk::testkit::free_port;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Side-by-side benchmark of Lumina and Rotel.
#[derive(Parser, Debug)]
#[command(name = "lumina-bench")]
struct Args {
    /// The `lumina` binary (release build).
    #[arg(long)]
    lumina: PathBuf,
    /// A second `lumina` binary built without mimalloc, to measure the allocator's effect.
    #[arg(long)]
    lumina_glibc: Option<PathBuf>,
    /// The `rotel-agent` binary.
    #[arg(long)]
    rotel: PathBuf,
    /// Runs of each measurement (alternating the collectors); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Prefix each collector's command with `taskset -c CPU`; empty to not pin.
    #[arg(long, default_value = "0")]
    collector_cpu: String,
    /// Where to write the Markdown results.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Lumina,
    LuminaGlibc,
    Rotel,
}

struct Running {
    child: Child,
    grpc: u16,
    _dir: tempfile::TempDir,
}

/// What a collector is asked to do.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Work {
    /// OTLP logs in, nothing out.
    Nop,
    /// OTLP logs in, through a batcher, OTLP out to a sink.
    Sink,
    /// Voice events into `gp`, assembled into dialogues with a durable store, nothing out.
    Voice,
}

/// Starts a collector for `work`; `sink` is the sink's port for [`Work::Sink`].
async fn start(args: &Args, kind: Kind, work: Work, sink: Option<u16>) -> anyhow::Result<Running> {
    let (grpc, http, metrics) = (free_port(), free_port(), free_port());
    let dir = tempfile::tempdir()?;
    let mut cmd = if args.collector_cpu.is_empty() {
        Command::new(match kind {
            Kind::Rotel => &args.rotel,
            Kind::LuminaGlibc => args.lumina_glibc.as_ref().context("no --lumina-glibc")?,
            Kind::Lumina => &args.lumina,
        })
    } else {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(&args.collector_cpu).arg(match kind {
            Kind::Rotel => &args.rotel,
            Kind::LuminaGlibc => args.lumina_glibc.as_ref().context("no --lumina-glibc")?,
            Kind::Lumina => &args.lumina,
        });
        c
    };
    match kind {
        Kind::Lumina | Kind::LuminaGlibc => {
            let exporter = match sink {
                Some(p) => format!(
                    "otlp: {{ endpoint: '127.0.0.1:{p}', tls: {{ insecure: true }}, compression: none }}"
                ),
                None => "nop:".into(),
            };
            let (processors, exp_id) = if sink.is_some() {
                ("[batch]", "otlp")
            } else {
                ("[]", "nop")
            };
            let cfg = if work == Work::Voice {
                let state = dir.path().join("state");
                format!(
                    "receivers: {{ gp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{grpc}', max_recv_msg_size_mib: 64 }}, http: {{ endpoint: '127.0.0.1:{http}' }} }} }} }}\n\
                     processors: {{ dialogue_assembly: {{ storage: {{ directory: '{}' }} }} }}\n\
                     exporters: {{ nop: }}\n\
                     service:\n  telemetry: {{ logs: {{ level: warn }}, metrics: {{ address: '127.0.0.1:{metrics}' }} }}\n\
                     \x20 pipelines: {{ logs: {{ receivers: [gp], processors: [dialogue_assembly], exporters: [nop] }} }}\n",
                    state.display()
                )
            } else {
                format!(
                    "receivers: {{ otlp: {{ protocols: {{ grpc: {{ endpoint: '127.0.0.1:{grpc}', max_recv_msg_size_mib: 64 }}, http: {{ endpoint: '127.0.0.1:{http}' }} }} }} }}\n\
                     processors: {{ batch: {{ send_batch_size: 8192, timeout: 200ms }} }}\n\
                     exporters: {{ {exporter} }}\n\
                     service:\n  telemetry: {{ logs: {{ level: warn }}, metrics: {{ address: '127.0.0.1:{metrics}' }} }}\n\
                     \x20 pipelines: {{ logs: {{ receivers: [otlp], processors: {processors}, exporters: [{exp_id}] }} }}\n"
                )
            };
            let path = dir.path().join("lumina.yaml");
            std::fs::write(&path, cfg)?;
            cmd.arg("--config").arg(path);
        }
        Kind::Rotel if work == Work::Voice => bail!("Rotel does not assemble calls"),
        Kind::Rotel => {
            cmd.arg("start")
                .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
                .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
                .args(["--otlp-grpc-max-recv-msg-size-mib", "64"])
                .arg("--pid-file")
                .arg(dir.path().join("rotel.pid"))
                .arg("--log-file")
                .arg(dir.path().join("rotel.log"));
            match sink {
                Some(p) => {
                    cmd.args([
                        "--exporter",
                        "otlp",
                        "--otlp-exporter-endpoint",
                        &format!("http://127.0.0.1:{p}"),
                        "--otlp-exporter-compression",
                        "none",
                    ]);
                    cmd.args(["--batch-max-size", "8192", "--batch-timeout", "200ms"]);
                }
                None => {
                    cmd.args(["--exporter", "blackhole"]);
                }
            }
        }
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {kind:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        if Instant::now() > deadline {
            bail!("{kind:?} did not start listening on {grpc}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Running {
        child,
        grpc,
        _dir: dir,
    })
}

async fn stop(mut r: Running) {
    // Rotel stops on SIGINT (it ignores SIGTERM); Lumina takes either.
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(r.child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = r.child.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = r.child.kill();
    let _ = r.child.wait();
}

/// CPU ticks (user + system) of a process, from /proc.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

/// Peak resident memory of a process in KiB.
fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM")
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct Sample {
    records_per_sec: f64,
    cpu_percent: f64,
    peak_rss_mib: f64,
    delivered: Option<u64>,
    accepted: u64,
}

async fn measure(args: &Args, kind: Kind, rate: Option<f64>, work: Work) -> anyhow::Result<Sample> {
    let to_sink = work == Work::Sink;
    let voice = work == Work::Voice;
    let sink_stats = Arc::new(SinkStats::default());
    let (sink_port, stop_sink) = if to_sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stats = sink_stats.clone();
        tokio::spawn(async move {
            serve(listener, stats, async {
                let _ = rx.await;
            })
            .await
        });
        (Some(port), Some(tx))
    } else {
        (None, None)
    };
    let r = start(args, kind, work, sink_port).await?;
    let pid = r.child.id();
    let before = cpu_ticks(pid)?;
    let load = LoadConfig {
        endpoint: format!("127.0.0.1:{}", r.grpc),
        protocol: Protocol::Grpc,
        payload: PayloadSpec {
            signal: Signal::Logs,
            shape: if voice { Shape::Voice } else { Shape::Generic },
            batch_size: 1000,
            attrs: 10,
            body_bytes: 100,
        },
        concurrency: if rate.is_some() { 4 } else { 16 },
        rate,
        stop: Stop::After(Duration::from_secs(args.seconds)),
        // Every voice request is new calls' events, so each is assembled, not deduplicated.
        unique: voice,
        give_up_after: Duration::from_secs(10),
    };
    let report = run(load).await?;
    let after = cpu_ticks(pid)?;
    let peak = peak_rss_kib(pid)?;
    // Give the batcher and exporter a moment to deliver what they hold, then count the sink.
    let delivered = if to_sink {
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink_stats.items.load(Ordering::Relaxed) < report.records_accepted
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(sink_stats.items.load(Ordering::Relaxed))
    } else {
        None
    };
    stop(r).await;
    if let Some(tx) = stop_sink {
        let _ = tx.send(());
    }
    Ok(Sample {
        records_per_sec: report.records_per_sec(),
        cpu_percent: (after - before) as f64 / clock_ticks_per_sec() / report.elapsed_secs * 100.0,
        peak_rss_mib: peak as f64 / 1024.0,
        delivered,
        accepted: report.records_accepted,
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Row {
    name: String,
    unit: &'static str,
    higher_is_better: bool,
    values: Vec<(Kind, Vec<f64>)>,
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "records/s" | "events/s" => format!("{:.0}k", v / 1000.0),
        "%" => format!("{v:.1}%"),
        "MiB" => format!("{v:.1} MiB"),
        _ => format!("{v:.2}"),
    }
}

fn cell(values: &[f64], unit: &str) -> String {
    let mut v = values.to_vec();
    let m = median(&mut v);
    let (lo, hi) = (
        v.first().copied().unwrap_or(0.0),
        v.last().copied().unwrap_or(0.0),
    );
    format!(
        "{} ({}–{})",
        fmt_value(m, unit),
        fmt_value(lo, unit),
        fmt_value(hi, unit)
    )
}

#[tokio::main(flavor = "current_thread")]
#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the driver reports progress and the table"
)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rows: Vec<Row> = Vec::new();
    let mut undelivered: Vec<String> = Vec::new();
    let mut kinds = vec![Kind::Lumina, Kind::Rotel];
    if args.lumina_glibc.is_some() {
        kinds.insert(1, Kind::LuminaGlibc);
    }
    // Saturation, nothing out.
    let mut row = Row {
        name: "Saturation: OTLP/gRPC logs in, nothing out (Lumina `nop`, Rotel `blackhole`)".into(),
        unit: "records/s",
        higher_is_better: true,
        values: kinds.iter().map(|k| (*k, Vec::new())).collect(),
    };
    for i in 0..args.runs {
        for (k, vals) in row.values.iter_mut() {
            let s = measure(&args, *k, None, Work::Nop).await?;
            eprintln!(
                "saturation nop run {i} {k:?}: {:.0} records/s",
                s.records_per_sec
            );
            vals.push(s.records_per_sec);
        }
    }
    rows.push(row);
    // Saturation, through a batcher to a sink.
    let mut row = Row {
        name: "Saturation: OTLP/gRPC logs in → batch → OTLP/gRPC out to a sink".into(),
        unit: "records/s",
        higher_is_better: true,
        values: vec![(Kind::Lumina, Vec::new()), (Kind::Rotel, Vec::new())],
    };
    for i in 0..args.runs {
        for (k, vals) in row.values.iter_mut() {
            let s = measure(&args, *k, None, Work::Sink).await?;
            eprintln!(
                "saturation sink run {i} {k:?}: {:.0} records/s accepted, {} of {} delivered",
                s.records_per_sec,
                s.delivered.unwrap_or(0),
                s.accepted
            );
            if s.delivered != Some(s.accepted) {
                undelivered.push(format!(
                    "{k:?} run {i}: {} of {} accepted records reached the sink",
                    s.delivered.unwrap_or(0),
                    s.accepted
                ));
            }
            vals.push(s.records_per_sec);
        }
    }
    rows.push(row);
    // Fixed rates.
    for rate in [10_000.0, 100_000.0] {
        let mut cpu = Row {
            name: format!("CPU at {}k records/s (one core = 100%)", rate / 1000.0),
            unit: "%",
            higher_is_better: false,
            values: vec![(Kind::Lumina, Vec::new()), (Kind::Rotel, Vec::new())],
        };
        let mut rss = Row {
            name: format!("Peak RSS at {}k records/s", rate / 1000.0),
            unit: "MiB",
            higher_is_better: false,
            values: vec![(Kind::Lumina, Vec::new()), (Kind::Rotel, Vec::new())],
        };
        for i in 0..args.runs {
            for k in [Kind::Lumina, Kind::Rotel] {
                let s = measure(&args, k, Some(rate), Work::Nop).await?;
                eprintln!(
                    "fixed {rate} run {i} {k:?}: {:.1}% CPU, {:.1} MiB peak, {:.0} records/s",
                    s.cpu_percent, s.peak_rss_mib, s.records_per_sec
                );
                if let Some((_, v)) = cpu.values.iter_mut().find(|(x, _)| *x == k) {
                    v.push(s.cpu_percent);
                }
                if let Some((_, v)) = rss.values.iter_mut().find(|(x, _)| *x == k) {
                    v.push(s.peak_rss_mib);
                }
            }
        }
        rows.push(cpu);
        rows.push(rss);
    }
    // Voice events assembled into dialogues, Lumina alone.
    let mut voice: Vec<Row> = Vec::new();
    let mut sat = Row {
        name: "Voice events/s at saturation: OTLP/gRPC into `gp` → `dialogue_assembly` (every request durable before its answer) → `nop`".into(),
        unit: "events/s",
        higher_is_better: true,
        values: vec![(Kind::Lumina, Vec::new())],
    };
    let mut cpu = Row {
        name: "↳ CPU at 50k events/s (one core = 100%)".into(),
        unit: "%",
        higher_is_better: false,
        values: vec![(Kind::Lumina, Vec::new())],
    };
    let mut rss = Row {
        name: "↳ peak RSS at 50k events/s (every dialogue of the run held in memory)".into(),
        unit: "MiB",
        higher_is_better: false,
        values: vec![(Kind::Lumina, Vec::new())],
    };
    for i in 0..args.runs {
        let s = measure(&args, Kind::Lumina, None, Work::Voice).await?;
        eprintln!(
            "voice saturation run {i}: {:.0} events/s",
            s.records_per_sec
        );
        sat.values[0].1.push(s.records_per_sec);
        let s = measure(&args, Kind::Lumina, Some(50_000.0), Work::Voice).await?;
        eprintln!(
            "voice 50k run {i}: {:.1}% CPU, {:.1} MiB peak, {:.0} events/s",
            s.cpu_percent, s.peak_rss_mib, s.records_per_sec
        );
        cpu.values[0].1.push(s.cpu_percent);
        rss.values[0].1.push(s.peak_rss_mib);
    }
    voice.extend([sat, cpu, rss]);
    let mut table = render(&rows);
    table.push_str("\n| Lumina alone (no peer assembles calls) | Lumina |\n|---|---|\n");
    for r in &voice {
        table.push_str(&format!(
            "| {} | {} |\n",
            r.name,
            cell(&r.values[0].1, r.unit)
        ));
    }
    table.push('\n');
    if undelivered.is_empty() {
        table.push_str(
            "In the sink runs, the sink received every record each collector accepted.\n",
        );
    } else {
        table.push_str(&format!(
            "Records missing at the sink: {}.\n",
            undelivered.join("; ")
        ));
    }
    print!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table)?;
    }
    Ok(())
}

fn render(rows: &[Row]) -> String {
    let mut t =
        String::from("| measurement | Lumina | Rotel | Lumina / Rotel |\n|---|---|---|---|\n");
    for r in rows {
        let get = |k: Kind| {
            r.values
                .iter()
                .find(|(x, _)| *x == k)
                .map(|(_, v)| v.clone())
        };
        let (Some(l), Some(ro)) = (get(Kind::Lumina), get(Kind::Rotel)) else {
            continue;
        };
        let ratio = median(&mut l.clone()) / median(&mut ro.clone()).max(f64::MIN_POSITIVE);
        let better = if (ratio >= 1.0) == r.higher_is_better {
            ""
        } else {
            " (worse)"
        };
        t.push_str(&format!(
            "| {} | {} | {} | **{ratio:.2}×**{better} |\n",
            r.name,
            cell(&l, r.unit),
            cell(&ro, r.unit)
        ));
        if let Some(g) = get(Kind::LuminaGlibc) {
            let ratio = median(&mut g.clone()) / median(&mut ro.clone()).max(f64::MIN_POSITIVE);
            t.push_str(&format!("| ↳ same, Lumina built with glibc malloc instead of mimalloc | {} | {} | **{ratio:.2}×** |\n", cell(&g, r.unit), cell(&ro, r.unit)));
        }
    }
    t.push_str("\nMedians of the runs, with the lowest and highest in brackets. For CPU and RSS lower is better, so a ratio under 1 favours Lumina.\n");
    t
}
