//! `lumina tap` and `lumina top`: clients of a running collector's admin endpoint
//! (`service.telemetry.admin`).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use crate::telemetry::admin::{ComponentCounts, TopSnapshot};

/// Where the admin endpoint is and how to get in.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://host:port`.
    pub base: String,
    /// The bearer token, if it needs one.
    pub token: Option<String>,
}

impl Endpoint {
    /// From `--admin ADDR` (or the config's `service.telemetry.admin.address`) and a token.
    pub fn new(address: &str, token: Option<String>) -> Endpoint {
        let base = if address.starts_with("http://") || address.starts_with("https://") {
            address.trim_end_matches('/').to_owned()
        } else {
            format!("http://{address}")
        };
        Endpoint { base, token }
    }

    fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let r = client.get(format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

async fn checked(r: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    let r = r.send().await.map_err(|e| {
        format!(
            "cannot reach the admin endpoint: {e} (is the collector running with service.telemetry.admin set?)"
        )
    })?;
    if r.status().is_success() {
        Ok(r)
    } else {
        let status = r.status();
        Err(format!(
            "the admin endpoint answered {status}: {}",
            r.text().await.unwrap_or_default().trim()
        ))
    }
}

/// What `lumina tap` asks for.
#[derive(Debug, Clone)]
pub struct TapArgs {
    /// Component ids, a glob.
    pub component: String,
    /// What enters components instead of what leaves them.
    pub inputs: bool,
    /// `debug` or `json`.
    pub format: String,
    /// Records per second at most.
    pub rate: f64,
    /// Share of batches kept.
    pub sample: f64,
    /// Stop after this many batches.
    pub limit: Option<u64>,
}

/// Streams what `args` selects to `out` until the collector stops or `limit` batches came.
pub async fn tap(ep: &Endpoint, args: &TapArgs, out: &mut impl Write) -> Result<(), String> {
    let client = reqwest::Client::new();
    let query = [
        ("component", args.component.clone()),
        ("inputs", args.inputs.to_string()),
        ("format", args.format.clone()),
        ("rate", args.rate.to_string()),
        ("sample", args.sample.to_string()),
    ];
    let mut r = checked(ep.get(&client, "/v1/tap").query(&query)).await?;
    let json = args.format == "json";
    let mut seen = 0u64;
    let mut pending = Vec::new();
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| format!("the tap stream broke: {e}"))?
    {
        pending.extend_from_slice(&chunk);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let is_batch = if json {
                line.starts_with(b"{\"batch\"") || line.windows(9).any(|w| w == b"\"batch\":{")
            } else {
                line.starts_with(b"== ")
            };
            if is_batch {
                if args.limit.is_some_and(|l| seen >= l) {
                    return Ok(());
                }
                seen += 1;
            }
            out.write_all(&line)
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// One snapshot of the collector's counters.
pub async fn snapshot(ep: &Endpoint) -> Result<TopSnapshot, String> {
    let client = reqwest::Client::new();
    checked(ep.get(&client, "/v1/top"))
        .await?
        .json()
        .await
        .map_err(|e| format!("the admin endpoint sent what is not a snapshot: {e}"))
}

/// A row of `lumina top`: a component's rates between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `kind/id`.
    pub component: String,
    /// Per second.
    pub incoming: f64,
    /// Per second.
    pub outgoing: f64,
    /// Per second.
    pub refused: f64,
    /// Per second.
    pub failed: f64,
    /// Per second, by reason.
    pub dropped: BTreeMap<String, f64>,
    /// Size and capacity now.
    pub queue: Option<(f64, f64)>,
    /// Milliseconds in plugin calls per second.
    pub plugin_ms: f64,
}

/// The rates from `before` to `now`, `seconds` apart.
pub fn rows(before: &TopSnapshot, now: &TopSnapshot, seconds: f64) -> Vec<Row> {
    let per = |a: f64, b: f64| ((b - a) / seconds.max(1e-9)).max(0.0);
    let zero = ComponentCounts::default();
    now.components
        .iter()
        .map(|(id, c)| {
            let b = before.components.get(id).unwrap_or(&zero);
            Row {
                component: id.clone(),
                incoming: per(b.incoming, c.incoming),
                outgoing: per(b.outgoing, c.outgoing),
                refused: per(b.refused, c.refused),
                failed: per(b.failed, c.failed),
                dropped: c
                    .dropped
                    .iter()
                    .map(|(r, v)| (r.clone(), per(b.dropped.get(r).copied().unwrap_or(0.0), *v)))
                    .filter(|(_, v)| *v > 0.0)
                    .collect(),
                queue: c.queue,
                plugin_ms: per(b.plugin_seconds, c.plugin_seconds) * 1000.0,
            }
        })
        .collect()
}

/// The column titles of `lumina top`.
pub const COLUMNS: [&str; 8] = [
    "COMPONENT",
    "IN/s",
    "OUT/s",
    "REFUSED/s",
    "FAILED/s",
    "DROPPED/s",
    "QUEUE",
    "PLUGIN ms/s",
];

fn rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A row's cells, in [`COLUMNS`] order.
pub fn cells(r: &Row) -> [String; 8] {
    let dropped = if r.dropped.is_empty() {
        "0".to_owned()
    } else {
        r.dropped
            .iter()
            .map(|(k, v)| format!("{} {k}", rate(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    [
        r.component.clone(),
        rate(r.incoming),
        rate(r.outgoing),
        rate(r.refused),
        rate(r.failed),
        dropped,
        r.queue
            .map(|(s, c)| format!("{s:.0}/{c:.0}"))
            .unwrap_or_else(|| "-".into()),
        format!("{:.2}", r.plugin_ms),
    ]
}

/// The rows as a plain text table (`lumina top --once`).
pub fn table(rows: &[Row]) -> String {
    let all: Vec<[String; 8]> = std::iter::once(COLUMNS.map(str::to_owned))
        .chain(rows.iter().map(cells))
        .collect();
    let widths: Vec<usize> = (0..8)
        .map(|i| all.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &all {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Two snapshots `interval` apart, as rows.
pub async fn sample(ep: &Endpoint, interval: Duration) -> Result<Vec<Row>, String> {
    let a = snapshot(ep).await?;
    let start = std::time::Instant::now();
    tokio::time::sleep(interval).await;
    let b = snapshot(ep).await?;
    Ok(rows(&a, &b, start.elapsed().as_secs_f64()))
}

/// The live view: a table refreshed every `interval` until `q`, Esc or ctrl-c.
pub async fn top(ep: &Endpoint, interval: Duration) -> Result<(), String> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    use ratatui::layout::Constraint;
    use ratatui::style::{Modifier, Style};
    use ratatui::widgets::{Block, Cell, Row as TRow, Table};

    let mut before = snapshot(ep).await?;
    let mut at = std::time::Instant::now();
    let mut terminal = ratatui::init();
    let mut rows_now: Vec<Row> = Vec::new();
    let mut status = format!("{} — waiting for the first interval", ep.base);
    let result = loop {
        let drawn = terminal.draw(|f| {
            let header = TRow::new(COLUMNS.map(Cell::from))
                .style(Style::default().add_modifier(Modifier::BOLD));
            let body: Vec<TRow<'_>> = rows_now.iter().map(|r| TRow::new(cells(r))).collect();
            let widths = [
                Constraint::Min(24),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Min(12),
                Constraint::Length(13),
                Constraint::Length(12),
            ];
            let t = Table::new(body, widths)
                .header(header)
                .block(Block::bordered().title(format!(" lumina top · {status} · q quits ")));
            f.render_widget(t, f.area());
        });
        if let Err(e) = drawn {
            break Err(e.to_string());
        }
        // Keys, for up to one interval.
        let deadline = at + interval;
        let mut quit = false;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match event::poll(left.min(Duration::from_millis(100))) {
                Ok(true) => {
                    if let Ok(Event::Key(k)) = event::read() {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                            quit = true;
                            break;
                        }
                    }
                }
                Ok(false) => {}
                Err(_) => break,
            }
        }
        if quit {
            break Ok(());
        }
        match snapshot(ep).await {
            Ok(now) => {
                let secs = at.elapsed().as_secs_f64();
                rows_now = rows(&before, &now, secs);
                status = format!("{} · up {:.0}s", ep.base, now.uptime_seconds);
                before = now;
                at = std::time::Instant::now();
            }
            Err(e) => {
                status = e;
                at = std::time::Instant::now();
            }
        }
    };
    ratatui::restore();
    result
}
