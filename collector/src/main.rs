//! `lumina`: run, validate or inspect a Lumina configuration.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use lumina_collector::config::{self, ConfigSource, expand::ProcessEnv};
use lumina_collector::diagnostics;
use lumina_collector::service::{Host, Service, termination_signal};
use lumina_collector::telemetry;
use lumina_sdk::component::ComponentKind;
use lumina_sdk::config::Duration;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lumina: an OpenTelemetry-Collector-style collector for voice-call observability.
#[derive(Parser, Debug)]
#[command(name = "lumina", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Config file; repeat to merge several (maps merge key by key, later files win).
    /// Without any, the built-in configs/local.yaml is used.
    #[arg(long = "config", short = 'c', global = true, value_name = "FILE")]
    config: Vec<PathBuf>,

    /// Log level (trace, debug, info, warn, error) or filter directives
    /// (`info,lumina=debug,aws_smithy=warn`); overrides service.telemetry.logs.level.
    #[arg(long, global = true, value_parser = telemetry::LogFilter::parse, value_name = "LEVEL|DIRECTIVES")]
    log_level: Option<telemetry::LogFilter>,

    /// How long a shutdown may take to drain pipelines and exporters before what is left is
    /// written to the exporters' dead letters.
    #[arg(long, global = true, default_value = "20s", value_name = "DURATION")]
    shutdown_timeout: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the pipelines (the default).
    Run,
    /// Check the configuration and report every error, without starting anything.
    Validate {
        /// Also check that each exporter's destination (a stream, ...) exists and the
        /// configured credentials reach it. Off by default: it needs the network and
        /// credentials.
        #[arg(long)]
        check_destinations: bool,
    },
    /// List the built-in component types.
    Components,
    /// Print the resolved configuration (files merged, variables expanded, secrets redacted).
    PrintConfig,
    /// Work with dead letters (what exporters gave up on).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// Send dead letters again, each to the exporter that gave it up, once the cause is fixed.
    /// What fails again goes back to that exporter's dead-letter file.
    Replay {
        /// Dead-letter files (OTLP/JSON lines). Default: the dead-letter file of every
        /// exporter in the configuration.
        files: Vec<PathBuf>,
    },
}

/// Turns transparent huge pages off for this process. Decoding OTLP grows many short-lived
/// buffers; with THP each one can land on a fresh 2 MiB page that the kernel must zero, which
/// cost about 40% of throughput in BENCHMARKS.md's measurements.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        // Not fatal: only slower. Logging is not set up yet, so this is noted later if at all.
        let _ = e;
    }
}

fn sources(cli: &Cli) -> Result<Vec<ConfigSource>, lumina_sdk::config::ConfigErrors> {
    if cli.config.is_empty() {
        return Ok(vec![ConfigSource::embedded_default()]);
    }
    let mut out = Vec::new();
    let mut errors = lumina_sdk::config::ConfigErrors::new();
    for p in &cli.config {
        match ConfigSource::file(p) {
            Ok(s) => out.push(s),
            Err(e) => errors.extend(e),
        }
    }
    errors.into_result(out)
}

#[expect(
    clippy::print_stderr,
    reason = "the CLI reports config errors on stderr"
)]
fn report(errors: &lumina_sdk::config::ConfigErrors, sources: &[ConfigSource]) -> ExitCode {
    eprint!("{}", diagnostics::render(errors, sources));
    ExitCode::FAILURE
}

#[expect(clippy::print_stdout, reason = "the CLI's output")]
fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    // Fails only if a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let host = Host::builtin();
    let registry = &host.registry;
    let srcs = match sources(&cli) {
        Ok(s) => s,
        Err(e) => return report(&e, &[]),
    };
    match cli.command.as_ref().unwrap_or(&Command::Run) {
        Command::Validate { check_destinations } => {
            match config::load_plan(&srcs, &ProcessEnv, registry) {
                Ok((_, plan)) => {
                    for w in &plan.warnings {
                        println!("warning: {w}");
                    }
                    let names: Vec<String> =
                        plan.pipelines.iter().map(|p| p.id.to_string()).collect();
                    if cli.config.is_empty() {
                        println!(
                            "No --config given: checked the built-in configuration (configs/local.yaml)."
                        );
                    }
                    println!(
                        "The configuration is valid: {} pipeline(s): {}.",
                        names.len(),
                        names.join(", ")
                    );
                    if *check_destinations {
                        return check_destinations_of(&plan, registry);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => report(&e, &srcs),
            }
        }
        Command::PrintConfig => match config::load_plan(&srcs, &ProcessEnv, registry) {
            Ok((tree, _)) => {
                print!("{}", config::redacted_yaml(&tree));
                ExitCode::SUCCESS
            }
            Err(e) => report(&e, &srcs),
        },
        Command::Components => {
            let mut rows: Vec<[String; 5]> = vec![[
                "KIND".into(),
                "TYPE".into(),
                "SIGNALS".into(),
                "STABILITY".into(),
                "DESCRIPTION".into(),
            ]];
            for kind in [
                ComponentKind::Receiver,
                ComponentKind::Processor,
                ComponentKind::Exporter,
                ComponentKind::Connector,
            ] {
                for info in registry.infos(kind) {
                    let signals = if info.routes.is_empty() {
                        info.signals
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    } else {
                        info.routes
                            .iter()
                            .map(|(a, b)| format!("{a}->{b}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    rows.push([
                        kind.to_string(),
                        info.type_name.to_string(),
                        signals,
                        info.stability.to_string(),
                        info.description.to_string(),
                    ]);
                }
            }
            rows.push([
                "extension".into(),
                "health_check".into(),
                "-".into(),
                "beta".into(),
                "Serves pipeline health over HTTP.".into(),
            ]);
            let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
            let widths = [width(0), width(1), width(2), width(3)];
            let mut out = std::io::stdout().lock();
            for r in &rows {
                let _ = writeln!(
                    out,
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                );
            }
            ExitCode::SUCCESS
        }
        Command::Dlq {
            command: DlqCommand::Replay { files },
        } => match config::load_plan(&srcs, &ProcessEnv, registry) {
            Ok((_, plan)) => match replay(&cli, &plan, &host, files) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{}", lumina_sdk::util::error_chain(e.as_ref()));
                    ExitCode::FAILURE
                }
            },
            Err(e) => report(&e, &srcs),
        },
        Command::Run => match config::load_plan(&srcs, &ProcessEnv, registry) {
            Ok((_, plan)) => match run(&cli, &plan, &host) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{}", lumina_sdk::util::error_chain(e.as_ref()));
                    ExitCode::FAILURE
                }
            },
            Err(e) => report(&e, &srcs),
        },
    }
}

/// `validate --check-destinations`: probes each exporter the pipelines use.
#[expect(clippy::print_stdout, reason = "the command's report")]
fn check_destinations_of(
    plan: &config::Plan,
    registry: &lumina_sdk::component::Registry,
) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    let used: std::collections::BTreeSet<_> =
        plan.pipelines.iter().flat_map(|p| &p.exporters).collect();
    let mut failed = 0;
    for (id, e) in plan.exporters.iter().filter(|(id, _)| used.contains(id)) {
        let Some(f) = registry.exporter(id.type_name()) else {
            continue;
        };
        match runtime.block_on(f.probe(&e.entry.config)) {
            None => println!("{id}: nothing to check"),
            Some(Ok(what)) => println!("{id}: ok: {what}"),
            Some(Err(why)) => {
                failed += 1;
                println!("{id}: FAILED: {why}");
            }
        }
    }
    if failed > 0 {
        println!("{failed} destination(s) cannot be reached.");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[expect(clippy::print_stdout, reason = "the command's report")]
fn replay(cli: &Cli, plan: &config::Plan, host: &Host, files: &[PathBuf]) -> anyhow::Result<()> {
    let logs = &plan.service.telemetry.logs;
    telemetry::init_logging(
        &cli.log_level
            .clone()
            .unwrap_or(telemetry::LogFilter::Level(logs.level)),
        logs.encoding,
    );
    let files = if files.is_empty() {
        lumina_collector::cli::dlq::default_files(plan)
    } else {
        files.to_vec()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(lumina_collector::cli::dlq::replay(
        plan,
        &host.registry,
        &files,
    ))?;
    let total = |m: &std::collections::BTreeMap<String, usize>| m.values().sum::<usize>();
    println!(
        "Replayed {} file(s): {} item(s) delivered, {} failed again (dead-lettered again).",
        report.files,
        total(&report.delivered),
        total(&report.failed)
    );
    for (id, n) in &report.delivered {
        println!("  {id}: {n} delivered");
    }
    for (id, n) in &report.failed {
        println!("  {id}: {n} failed again");
    }
    if total(&report.failed) > 0 {
        anyhow::bail!("some dead letters failed again; they are back in the dead-letter files");
    }
    Ok(())
}

fn run(cli: &Cli, plan: &config::Plan, host: &Host) -> anyhow::Result<()> {
    let logs = &plan.service.telemetry.logs;
    telemetry::init_logging(
        &cli.log_level
            .clone()
            .unwrap_or(telemetry::LogFilter::Level(logs.level)),
        logs.encoding,
    );
    if cli.config.is_empty() {
        tracing::info!("No --config given: running the built-in configs/local.yaml.");
    }
    for w in &plan.warnings {
        tracing::warn!("{w}.");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lumina")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        telemetry::metrics_handle();
        let service = Service::start(plan, host)
            .await
            .context("Lumina could not start")?;
        service
            .run_until(termination_signal(), cli.shutdown_timeout.get())
            .await;
        Ok(())
    })
}
