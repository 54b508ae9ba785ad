//! `lumina-loadgen`: send OTLP load to a collector (`send`), or receive it (`sink`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lumina_loadgen::sink::{SinkStats, serve};
use lumina_loadgen::{LoadConfig, PayloadSpec, Protocol, Shape, Stop, run};
use lumina_sdk::Signal;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OTLP load generator and sink.
#[derive(Parser, Debug)]
#[command(name = "lumina-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send load; exits 1 if any record was lost.
    Send(SendArgs),
    /// Receive OTLP/gRPC and count what arrives; prints totals on SIGINT/SIGTERM.
    Sink {
        /// `host:port` to listen on.
        #[arg(long, default_value = "127.0.0.1:4319")]
        endpoint: String,
    },
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    /// The collector's `host:port`.
    #[arg(long, default_value = "127.0.0.1:4317")]
    endpoint: String,
    /// `grpc` or `http` (binary protobuf).
    #[arg(long, value_enum, default_value = "grpc")]
    protocol: Protocol,
    /// `logs`, `traces` or `metrics`.
    #[arg(long, default_value = "logs")]
    signal: Signal,
    /// `generic` records, or `voice` call events (logs only).
    #[arg(long, value_enum, default_value = "generic")]
    shape: Shape,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Attributes per record (generic shape).
    #[arg(long, default_value_t = 10)]
    attrs: usize,
    /// Body bytes per log record (generic shape).
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Records per second in total; 0 sends as fast as the collector accepts.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// How long to send.
    #[arg(long, default_value = "10s", conflicts_with = "requests")]
    duration: lumina_sdk::config::Duration,
    /// Send exactly this many requests instead of for a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Give every record a unique `seq` attribute (costs an encode per request).
    #[arg(long)]
    unique: bool,
    /// Retry a refused request for this long before counting it lost.
    #[arg(long, default_value = "30s")]
    give_up_after: lumina_sdk::config::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the CLI's output"
)]
fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lumina-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Send(a) => {
                let cfg = LoadConfig {
                    endpoint: a.endpoint,
                    protocol: a.protocol,
                    payload: PayloadSpec { signal: a.signal, shape: a.shape, batch_size: a.batch_size.max(1), attrs: a.attrs, body_bytes: a.body_bytes },
                    concurrency: a.concurrency.max(1),
                    rate: (a.rate > 0.0).then_some(a.rate),
                    stop: a.requests.map_or(Stop::After(a.duration.get()), Stop::Requests),
                    unique: a.unique,
                    give_up_after: a.give_up_after.get(),
                };
                match run(cfg).await {
                    Ok(report) => {
                        if a.json {
                            println!("{}", serde_json::to_string(&report).unwrap_or_default());
                        } else {
                            println!("{report}");
                        }
                        if report.lost_anything() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
                    }
                    Err(e) => {
                        eprintln!("lumina-loadgen: {e:#}");
                        ExitCode::from(2)
                    }
                }
            }
            Command::Sink { endpoint } => {
                let listener = match tokio::net::TcpListener::bind(&endpoint).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("lumina-loadgen: cannot listen on {endpoint}: {e}");
                        return ExitCode::from(2);
                    }
                };
                let stats = Arc::new(SinkStats::default());
                let shutdown = async {
                    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                    }
                };
                let started = std::time::Instant::now();
                let reporter = {
                    let stats = stats.clone();
                    tokio::spawn(async move {
                        let mut last = 0;
                        loop {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let now = stats.items.load(Ordering::Relaxed);
                            eprintln!("sink: {} items/s, {now} in total", now - last);
                            last = now;
                        }
                    })
                };
                let result = serve(listener, stats.clone(), shutdown).await;
                reporter.abort();
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{{\"items\":{},\"requests\":{},\"bytes\":{},\"malformed\":{},\"seconds\":{secs:.3}}}",
                    stats.items.load(Ordering::Relaxed),
                    stats.requests.load(Ordering::Relaxed),
                    stats.bytes.load(Ordering::Relaxed),
                    stats.malformed.load(Ordering::Relaxed)
                );
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("lumina-loadgen: {e:#}");
                        ExitCode::from(2)
                    }
                }
            }
        }
    })
}
