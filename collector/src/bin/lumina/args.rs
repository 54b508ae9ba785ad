//! The command line's definition (clap): what `lumina` takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use lumina_collector::telemetry;
use lumina_sdk::config::Duration;

/// Lumina: an OpenTelemetry-Collector-style collector for voice-call observability.
#[derive(Parser, Debug)]
#[command(name = "lumina", version = lumina_collector::LONG_VERSION, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// Config file; repeat to merge several (maps merge key by key, later files win).
    /// Without any, /etc/lumina/config.yaml when it exists, else the built-in
    /// configs/local.yaml.
    #[arg(long = "config", short = 'c', global = true, value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,

    /// Log level (trace, debug, info, warn, error) or filter directives
    /// (`info,lumina=debug,aws_smithy=warn`); overrides service.telemetry.logs.level.
    #[arg(long, global = true, value_parser = telemetry::LogFilter::parse, value_name = "LEVEL|DIRECTIVES")]
    pub(crate) log_level: Option<telemetry::LogFilter>,

    /// How long a shutdown may take to drain pipelines and exporters before what is left is
    /// written to the exporters' dead letters.
    #[arg(long, global = true, default_value = "20s", value_name = "DURATION")]
    pub(crate) shutdown_timeout: Duration,

    /// Reload the configuration when one of its files changes, as on SIGHUP (checked every
    /// second).
    #[arg(long, global = true)]
    pub(crate) watch_config: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
    /// Run the config's tests: `NAME.tests.yaml` beside each `--config NAME.yaml` (or the
    /// files `--tests` names). Each test inserts records at a component and checks what comes
    /// out of others, through the config's real processors and connectors, in this process;
    /// receivers are not started and exporters send nothing.
    Test {
        /// Tests files to run instead of those beside the config files.
        #[arg(long = "tests", value_name = "FILE")]
        tests: Vec<PathBuf>,
        /// Only the tests whose name contains this.
        #[arg(long, value_name = "TEXT")]
        name: Option<String>,
    },
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
pub(crate) struct AdminArgs {
    /// `host:port` of the admin endpoint; default: `service.telemetry.admin.address` of the
    /// config.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) admin: Option<String>,
    /// Its bearer token; default: the config's `service.telemetry.admin.token`.
    #[arg(long, env = "LUMINA_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum PluginCommand {
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
pub(crate) enum DlqCommand {
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
