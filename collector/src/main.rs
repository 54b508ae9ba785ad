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
use lumina_sdk::config::Duration;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lumina: an OpenTelemetry-Collector-style collector for voice-call observability.
#[derive(Parser, Debug)]
#[command(name = "lumina", version = lumina_collector::LONG_VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Config file; repeat to merge several (maps merge key by key, later files win).
    /// Without any, /etc/lumina/config.yaml when it exists, else the built-in
    /// configs/local.yaml.
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

    /// Reload the configuration when one of its files changes, as on SIGHUP (checked every
    /// second).
    #[arg(long, global = true)]
    watch_config: bool,
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
    Components {
        /// List instead every metric the collector can report about itself: name, kind and
        /// help (a dashboard or an alert should name only these).
        #[arg(long)]
        metrics: bool,
    },
    /// Print the resolved configuration (files merged, variables expanded, secrets redacted).
    PrintConfig,
    /// Work with dead letters (what exporters gave up on).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Run or describe a built plugin, for its author.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Print a shell completion script (`lumina completions bash > /etc/bash_completion.d/lumina`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `lumina man > /usr/share/man/man1/lumina.1`.
    Man,
    /// Print the JSON Schema of a config file, for editors (`# yaml-language-server:
    /// $schema=lumina.schema.json`) and checks in CI.
    Schema,
    /// Show the records leaving (or entering) components of a running collector, live.
    /// Lossy by design: the pipeline never waits for a tap; what the rate limit, sampling or a
    /// slow terminal leaves out is counted and reported.
    Tap {
        /// Component ids to tap, a glob (`dialogue_assembly`, `kinesis/*`, `*`).
        #[arg(default_value = "*")]
        component: String,
        /// Show what enters the components instead of what leaves them.
        #[arg(long)]
        inputs: bool,
        /// `debug` (as the debug exporter prints batches) or `json` (a line per batch, OTLP/JSON).
        #[arg(long, default_value = "debug", value_parser = ["debug", "json"])]
        format: String,
        /// At most this many records per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// The share of batches to show, 0 to 1.
        #[arg(long, default_value_t = 1.0)]
        sample: f64,
        /// Stop after this many batches.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// A live view of every component: records in and out per second, refused, failed,
    /// dropped by reason, queue fill and plugin time. `q` quits.
    Top {
        /// How often to refresh.
        #[arg(long, default_value = "1s")]
        interval: Duration,
        /// Print one table (rates over one interval) as plain text and exit.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Where a running collector's admin endpoint is.
#[derive(clap::Args, Debug)]
struct AdminArgs {
    /// `host:port` of the admin endpoint; default: `service.telemetry.admin.address` of the
    /// config.
    #[arg(long, value_name = "ADDRESS")]
    admin: Option<String>,
    /// Its bearer token; default: the config's `service.telemetry.admin.token`.
    #[arg(long, env = "LUMINA_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

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

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Feed a processor plugin batches from JSON under the limits it would get in a
    /// collector (`--config`: the component's settings, `limits`, `allow`, `config`, as in a
    /// pipeline's YAML), print what came out with the time and fuel each call took, and fail
    /// on a fault or, with `--expect`, on a batch that differs.
    Test {
        /// The plugin: a `.wasm` component or a shared library.
        #[arg(long, value_name = "FILE")]
        plugin: PathBuf,
        /// Input batches: JSON lines, each a voice event, an array of them or an OTLP/JSON
        /// request (or one JSON document of those forms).
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// What each batch should give, in the same forms, one per input batch (`[]` for
        /// nothing). Records are compared; their resources and scopes are not.
        #[arg(long, value_name = "FILE")]
        expect: Option<PathBuf>,
    },
    /// What a plugin file is: the kinds it runs as, its name, version and signals, and a
    /// WebAssembly component's exports with their WIT versions.
    Inspect {
        /// The plugin: a `.wasm` component or a shared library.
        plugin: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// Per dead-letter file: letters, items by exporter and reason, oldest and newest.
    List {
        /// Dead-letter files. Default: every exporter's in the configuration (those present).
        files: Vec<PathBuf>,
        /// Only letters with `exporter=ID` or `reason=TEXT` (the reason's kind or a part of
        /// it); repeat to combine.
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
    },
    /// Each letter: exporter, time, reason, items, and the data as OTLP/JSON.
    Show {
        /// Dead-letter files. Default: every exporter's in the configuration (those present).
        files: Vec<PathBuf>,
        /// As for `list`.
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Show at most this many letters.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Send dead letters again, each to the exporter that gave it up, once the cause is fixed.
    /// What fails again goes back to that exporter's dead-letter file, its old reason kept.
    Replay {
        /// Dead-letter files (OTLP/JSON lines). Default: the dead-letter file of every
        /// exporter in the configuration.
        files: Vec<PathBuf>,
        /// Say what would be sent, and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only letters with `exporter=ID` or `reason=TEXT`; the others stay in their file.
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Hand the files' records (plain OTLP/JSON, such as the events `region_router` could
        /// not route) to this connector again, through the configured pipelines.
        #[arg(long, value_name = "CONNECTOR")]
        through: Option<String>,
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
        } => admin_command(admin, &srcs, registry, |ep| async move {
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
        } => admin_command(admin, &srcs, registry, |ep| async move {
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

/// Runs `f` against the admin endpoint `args` (or the config) names.
#[expect(clippy::print_stderr, reason = "the command's errors")]
fn admin_command<F, Fut>(
    args: &AdminArgs,
    srcs: &[ConfigSource],
    registry: &lumina_sdk::component::Registry,
    f: F,
) -> ExitCode
where
    F: FnOnce(lumina_collector::cli::admin::Endpoint) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let configured = || {
        config::load_plan(srcs, &ProcessEnv, registry)
            .ok()
            .and_then(|(_, plan)| plan.service.telemetry.admin)
    };
    let (address, token) = match (&args.admin, &args.token) {
        (Some(a), t) => (a.clone(), t.clone()),
        (None, t) => match configured() {
            Some(a) => (a.address, t.clone().or(a.token)),
            None => {
                eprintln!(
                    "error: no admin endpoint: give --admin host:port, or a --config whose service.telemetry.admin is set"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let ep = lumina_collector::cli::admin::Endpoint::new(&address, token);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f(ep)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `lumina plugin test` / `inspect`.
#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command's report"
)]
fn plugin_command(cli: &Cli, host: &Host, command: &PluginCommand) -> ExitCode {
    use lumina_collector::cli::plugin;
    let result = match command {
        PluginCommand::Inspect { plugin: file } => {
            plugin::inspect(&host.plugins, file).map(|text| (text, true))
        }
        PluginCommand::Test {
            plugin: file,
            input,
            expect,
        } => (|| {
            let settings = match cli.config.as_slice() {
                [] => None,
                [one] => {
                    let text = plugin::read(one)?;
                    let v = lumina_sdk::config::parse_yaml(&text, &one.display().to_string())
                        .map_err(|e| e.to_string())?;
                    Some(v)
                }
                _ => return Err("give the plugin's settings in one --config file".to_owned()),
            };
            let component = plugin::component(file, settings.as_ref())?;
            let inputs = plugin::batches(&plugin::read(input)?, &input.display().to_string())?;
            let expected = match expect {
                Some(e) => Some(plugin::batches(
                    &plugin::read(e)?,
                    &e.display().to_string(),
                )?),
                None => None,
            };
            let report = plugin::test(
                &host.plugins,
                file,
                &component,
                &inputs,
                expected.as_deref(),
            )?;
            Ok((report.text, report.passed))
        })(),
    };
    match result {
        Ok((text, passed)) => {
            print!("{text}");
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
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

/// Logging as `--log-level` or the config says.
fn init_logs(cli: &Cli, plan: &config::Plan) {
    let logs = &plan.service.telemetry.logs;
    telemetry::init_logging(
        &cli.log_level
            .clone()
            .unwrap_or(telemetry::LogFilter::Level(logs.level)),
        logs.encoding,
    );
}

#[expect(clippy::print_stdout, reason = "the command's report")]
fn dlq(cli: &Cli, plan: &config::Plan, host: &Host, command: &DlqCommand) -> anyhow::Result<()> {
    use lumina_collector::cli::dlq::{Filter, files_to_read, read_all, summarize};
    init_logs(cli, plan);
    match command {
        DlqCommand::List { files, filter } => {
            let read = read_all(&files_to_read(plan, files)?, &Filter::parse(filter)?)?;
            if read.is_empty() {
                println!("No dead-letter files.");
            }
            for s in summarize(&read) {
                let age = match (&s.oldest, &s.newest) {
                    (Some(o), Some(n)) => format!(", written {o} to {n}"),
                    _ => String::new(),
                };
                println!("{}: {} letter(s){age}", s.path.display(), s.letters);
                for ((exporter, reason), n) in &s.items {
                    println!("  {exporter}  {reason}  {n} item(s)");
                }
            }
            Ok(())
        }
        DlqCommand::Show {
            files,
            filter,
            limit,
        } => {
            let read = read_all(&files_to_read(plan, files)?, &Filter::parse(filter)?)?;
            let mut shown = 0;
            let total: usize = read.iter().map(|(_, l)| l.len()).sum();
            for (path, letters) in &read {
                for l in letters {
                    if shown == *limit {
                        println!("... and {} more letter(s) (--limit)", total - shown);
                        return Ok(());
                    }
                    shown += 1;
                    println!(
                        "{}: exporter {}, {} item(s), written {}",
                        path.display(),
                        l.exporter,
                        l.batch.len(),
                        l.time.as_deref().unwrap_or("(unknown)")
                    );
                    println!("  reason: {}", l.reason);
                    if let Some(p) = &l.previous {
                        println!("  before: {p}");
                    }
                    let data = l.batch.encode_json().unwrap_or_default();
                    println!("  {}", String::from_utf8_lossy(&data));
                }
            }
            Ok(())
        }
        DlqCommand::Replay {
            files,
            dry_run,
            filter,
            through,
        } => {
            let filter = Filter::parse(filter)?;
            if let Some(connector) = through {
                if files.is_empty() {
                    anyhow::bail!("`--through` needs the files to replay");
                }
                let files = files_to_read(plan, files)?;
                let id: lumina_sdk::component::ComponentId =
                    connector.parse().map_err(anyhow::Error::msg)?;
                return replay_through(plan, host, &id, &files, *dry_run);
            }
            let files = files_to_read(plan, files)?;
            if *dry_run {
                let read = read_all(&files, &filter)?;
                let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
                for l in read.iter().flat_map(|(_, l)| l) {
                    *by.entry(&l.exporter).or_default() += l.batch.len();
                }
                println!(
                    "Dry run: would replay {} letter(s) from {} file(s); nothing was sent.",
                    read.iter().map(|(_, l)| l.len()).sum::<usize>(),
                    read.len()
                );
                for (id, n) in by {
                    println!("  {id}: {n} item(s)");
                }
                return Ok(());
            }
            replay(plan, host, &files, &filter)
        }
    }
}

#[expect(clippy::print_stdout, reason = "the command's report")]
fn replay_through(
    plan: &config::Plan,
    host: &Host,
    connector: &lumina_sdk::component::ComponentId,
    files: &[PathBuf],
    dry_run: bool,
) -> anyhow::Result<()> {
    if dry_run {
        let records = lumina_collector::cli::dlq::count_plain(files)?;
        println!(
            "Dry run: would hand {records} record(s) from {} file(s) to `{connector}`; nothing was sent.",
            files.len()
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let r = runtime.block_on(lumina_collector::cli::dlq::replay_through(
        plan,
        &host.registry,
        connector,
        files,
    ))?;
    println!(
        "Handed {} record(s) from {} file(s) to `{connector}`; {} refused{}.",
        r.records,
        r.files,
        r.refused,
        r.message.map(|m| format!(" ({m})")).unwrap_or_default()
    );
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the command's report")]
fn replay(
    plan: &config::Plan,
    host: &Host,
    files: &[PathBuf],
    filter: &lumina_collector::cli::dlq::Filter,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(lumina_collector::cli::dlq::replay_picked(
        plan,
        &host.registry,
        files,
        filter,
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

fn run(cli: &Cli, plan: &config::Plan, host: &Host, default: &str) -> anyhow::Result<()> {
    init_logs(cli, plan);
    if cli.config.is_empty() {
        tracing::info!("No --config given: running {default}.");
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
        let paths = cli.config.clone();
        let watch = if cli.watch_config {
            if paths.is_empty() {
                vec![system_config()]
            } else {
                paths.clone()
            }
        } else {
            Vec::new()
        };
        let reload = lumina_collector::service::Reload {
            load: std::sync::Arc::new(move |registry| {
                let srcs = sources_of(&paths).map_err(|e| diagnostics::render(&e, &[]))?;
                config::load_plan(&srcs, &ProcessEnv, registry)
                    .map(|(_, plan)| plan)
                    .map_err(|e| diagnostics::render(&e, &srcs))
            }),
            watch,
        };
        service
            .run_until(
                host,
                Some(reload),
                termination_signal(),
                cli.shutdown_timeout.get(),
            )
            .await;
        Ok(())
    })
}
