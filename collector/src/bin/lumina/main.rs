//! `lumina`: run, validate or inspect a Lumina configuration.

mod args;
mod commands;
mod run;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lumina_collector::config::{self, ConfigSource, expand::ProcessEnv};
use lumina_collector::diagnostics;
use lumina_collector::service::Host;
use lumina_collector::telemetry;

use args::{Cli, Command};
use commands::{admin_command, check_destinations_of, config_tests, plugin_command};
use run::{dlq, run};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The config read when none is given, if it exists; `LUMINA_DEFAULT_CONFIG` names another
/// (an image or package that installs its config elsewhere).
fn system_config() -> PathBuf {
    std::env::var_os("LUMINA_DEFAULT_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/lumina/config.yaml"))
}

/// What a run without `--config` reads, for the messages that say so.
fn default_config_name(srcs: &[ConfigSource]) -> String {
    match srcs {
        [one] if !one.name.starts_with('<') => one.name.clone(),
        _ => "the built-in configuration (configs/local.yaml)".to_owned(),
    }
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
    sources_of(&cli.config)
}

/// The config files `paths` (or, with none, the system config or the embedded default), read.
fn sources_of(paths: &[PathBuf]) -> Result<Vec<ConfigSource>, lumina_sdk::config::ConfigErrors> {
    if paths.is_empty() {
        let system = system_config();
        if system.exists() {
            return ConfigSource::file(&system).map(|s| vec![s]);
        }
        return Ok(vec![ConfigSource::embedded_default()]);
    }
    let mut out = Vec::new();
    let mut errors = lumina_sdk::config::ConfigErrors::new();
    for p in paths {
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
                        println!("No --config given: checked {}.", default_config_name(&srcs));
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
        Command::Components { metrics: true } => {
            let mut out = std::io::stdout().lock();
            for (name, kind, help) in telemetry::all_metrics(registry) {
                let _ = writeln!(out, "{name}\t{kind}\t{help}");
            }
            ExitCode::SUCCESS
        }
        Command::Components { metrics: false } => {
            let mut rows: Vec<[String; 5]> = vec![[
                "KIND".into(),
                "TYPE".into(),
                "SIGNALS".into(),
                "STABILITY".into(),
                "DESCRIPTION".into(),
            ]];
            for info in registry.all_infos() {
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
                    info.kind.to_string(),
                    info.type_name.to_string(),
                    signals,
                    info.stability.to_string(),
                    info.description.to_string(),
                ]);
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
        Command::Dlq { command } => match config::load_plan(&srcs, &ProcessEnv, registry) {
            Ok((_, plan)) => match dlq(&cli, &plan, &host, command) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{}", lumina_sdk::util::error_chain(e.as_ref()));
                    ExitCode::FAILURE
                }
            },
            Err(e) => report(&e, &srcs),
        },
        Command::Plugin { command } => plugin_command(&cli, &host, command),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "lumina", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "Could not write the man page.");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Test { tests, name } => config_tests(&cli, &srcs, &host, tests, name.as_deref()),
        Command::Schema => {
            let schema = config::schema::config_schema(registry);
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{text}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            }
        }
        Command::Tap {
            component,
            inputs,
            format,
            rate,
            sample,
            limit,
            admin,
        } => admin_command(admin, &srcs, |ep| async move {
            let args = lumina_collector::cli::admin::TapArgs {
                component: component.clone(),
                inputs: *inputs,
                format: format.clone(),
                rate: *rate,
                sample: *sample,
                limit: *limit,
            };
            lumina_collector::cli::admin::tap(&ep, &args, &mut std::io::stdout()).await
        }),
        Command::Top {
            interval,
            once,
            admin,
        } => admin_command(admin, &srcs, |ep| async move {
            use lumina_collector::cli::admin;
            if *once {
                let rows = admin::sample(&ep, interval.get()).await?;
                let mut out = std::io::stdout().lock();
                write!(out, "{}", admin::table(&rows)).map_err(|e| e.to_string())
            } else {
                admin::top(&ep, interval.get()).await
            }
        }),
        Command::Run => match config::load_plan(&srcs, &ProcessEnv, registry) {
            Ok((_, plan)) => match run(&cli, &plan, &host, &default_config_name(&srcs)) {
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
