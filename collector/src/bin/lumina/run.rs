//! Running the pipelines, and the dead-letter commands that build exporters to replay.

use std::path::PathBuf;

use anyhow::Context;
use lumina_collector::config::{self, expand::ProcessEnv};
use lumina_collector::diagnostics;
use lumina_collector::service::{Host, Service, termination_signal};
use lumina_collector::telemetry;

use crate::args::{Cli, DlqCommand};
use crate::{sources_of, system_config};

/// Logging as `--log-level` or the config says.
pub(crate) fn init_logs(cli: &Cli, plan: &config::Plan) {
    let logs = &plan.service.telemetry.logs;
    telemetry::init_logging(
        &cli.log_level
            .clone()
            .unwrap_or(telemetry::LogFilter::Level(logs.level)),
        logs.encoding,
    );
}

#[expect(clippy::print_stdout, reason = "the command's report")]
pub(crate) fn dlq(
    cli: &Cli,
    plan: &config::Plan,
    host: &Host,
    command: &DlqCommand,
) -> anyhow::Result<()> {
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
pub(crate) fn replay_through(
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
pub(crate) fn replay(
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

pub(crate) fn run(
    cli: &Cli,
    plan: &config::Plan,
    host: &Host,
    default: &str,
) -> anyhow::Result<()> {
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
