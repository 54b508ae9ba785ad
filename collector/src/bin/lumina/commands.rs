//! The commands that inspect rather than run: `validate --check-destinations`, `plugin`,
//! the admin endpoint's clients (`tap`, `top`), and `test`.

use std::process::ExitCode;

use lumina_collector::config::{self, ConfigSource, expand::ProcessEnv};
use lumina_collector::service::Host;

use crate::args::{AdminArgs, Cli, PluginCommand};

/// Runs `f` against the admin endpoint `args` (or the config) names.
#[expect(clippy::print_stderr, reason = "the command's errors")]
pub(crate) fn admin_command<F, Fut>(args: &AdminArgs, srcs: &[ConfigSource], f: F) -> ExitCode
where
    F: FnOnce(lumina_collector::cli::admin::Endpoint) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    // Only the admin section is read: no component is checked, no plugin loaded.
    let configured = || {
        let tree = config::load(srcs, &ProcessEnv).ok()?;
        let admin = tree.at(&lumina_sdk::config::ConfigPath::parse(
            "service.telemetry.admin",
        ))?;
        lumina_sdk::config::parse::<lumina_collector::config::model::AdminTelemetry>(admin).ok()
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
    let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
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
pub(crate) fn plugin_command(cli: &Cli, host: &Host, command: &PluginCommand) -> ExitCode {
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
pub(crate) fn check_destinations_of(
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

/// `lumina test`: runs the tests beside the config files (or `tests`) against the config.
#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the command's report"
)]
pub(crate) fn config_tests(
    cli: &Cli,
    srcs: &[ConfigSource],
    host: &Host,
    tests: &[std::path::PathBuf],
    name: Option<&str>,
) -> ExitCode {
    use lumina_collector::cli::test;
    let files: Vec<std::path::PathBuf> = if tests.is_empty() {
        let beside: Vec<_> = cli.config.iter().map(|c| test::tests_file_for(c)).collect();
        if beside.is_empty() {
            eprintln!(
                "error: no tests to run: give the config with --config (its tests are NAME.tests.yaml beside NAME.yaml) or name a tests file with --tests"
            );
            return ExitCode::FAILURE;
        }
        let found: Vec<_> = beside.iter().filter(|p| p.exists()).cloned().collect();
        if found.is_empty() {
            let names: Vec<String> = beside.iter().map(|p| p.display().to_string()).collect();
            eprintln!("error: no tests file: looked for {}", names.join(", "));
            return ExitCode::FAILURE;
        }
        found
    } else {
        tests.to_vec()
    };
    let plan = match config::load_plan(srcs, &ProcessEnv, &host.registry) {
        Ok((_, plan)) => plan,
        Err(e) => return crate::report(&e, srcs),
    };
    let mut read = Vec::new();
    for f in &files {
        match test::read_file(f) {
            Ok(t) => read.push(t),
            Err((sources, e)) => return crate::report(&e, &sources),
        }
    }
    lumina_collector::telemetry::init_logging(
        &cli.log_level
            .clone()
            .unwrap_or(lumina_collector::telemetry::LogFilter::Level(
                lumina_collector::config::model::LogLevel::Warn,
            )),
        plan.service.telemetry.logs.encoding,
    );
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2);
    let Some(runtime) = runtime(builder) else {
        return ExitCode::FAILURE;
    };
    let mut total = test::Tally::default();
    let mut out = std::io::stdout();
    for file in &read {
        let t = runtime.block_on(test::run_file(file, &plan, &host.registry, name, &mut out));
        total.passed += t.passed;
        total.failed += t.failed;
    }
    let n = total.passed + total.failed;
    println!(
        "{n} test{}: {} passed, {} failed.",
        if n == 1 { "" } else { "s" },
        total.passed,
        total.failed
    );
    if n == 0 {
        eprintln!(
            "error: no test ran{}",
            name.map(|s| format!(" (none is named like `{s}`)"))
                .unwrap_or_default()
        );
        return ExitCode::FAILURE;
    }
    if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The runtime `builder` makes (with I/O and timers), or the error said.
#[expect(clippy::print_stderr, reason = "the command's errors")]
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    match builder.enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}
