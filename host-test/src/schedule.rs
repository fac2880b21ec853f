//! `host-test schedule`: the S2S guidance's Azure Functions pattern — a
//! timer trigger, one static client, a query per tick — as a worker process.
//!
//! - The schedule is NCRONTAB (six fields, seconds first, as Functions
//!   timers write it; UTC, Functions' default) or `@every 5m`.
//! - One warm client for the life of the process (the static client): the
//!   component instance, its token cache and its connection pool are kept
//!   from tick to tick, so a token is requested once per token lifetime.
//! - Ticks never overlap: one runs at a time, and a due time that passes
//!   while a tick is still running is skipped and logged.
//! - Every tick logs one JSON line on stderr (start, duration, rows,
//!   attempts, outcome, the error's kind and message when it failed); the
//!   command's own output goes to stdout. A failed tick does not stop the
//!   schedule; bad settings stop it before the first tick (exit 2), the
//!   pattern's not-ready check.
//! - SIGTERM or Ctrl-C lets a running tick finish, then exits 0.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Parser;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use dataverse_cli::{DataCommand, Failure, Options};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::backend::SessionBackend;
use crate::cli::Global;

/// When ticks are due.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Six NCRONTAB fields, seconds first.
    Cron(Box<Cron>),
    /// `@every DURATION`: from the start, every period.
    Every(Duration),
}

impl Schedule {
    /// `0 */5 * * * *` or `@every 5m` (a humantime duration: `30s`, `1h 30m`).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(period) = text.strip_prefix("@every") {
            let period = humantime::parse_duration(period.trim())
                .map_err(|e| format!("@every {}: {e} (e.g. @every 5m)", period.trim()))?;
            if period < Duration::from_secs(1) {
                return Err("@every: the period must be at least 1 s".into());
            }
            return Ok(Schedule::Every(period));
        }
        if text.split_whitespace().count() != 6 {
            return Err(format!(
                "'{text}': a schedule is six NCRONTAB fields, seconds first \
                 ({{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}, e.g. \
                 \"0 */5 * * * *\"), or @every DURATION"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(text).map_err(|e| format!("'{text}': {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first due time after `after`; `started` anchors `@every`.
    /// `None`: the schedule never fires again (e.g. 30 February).
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.find_next_occurrence(&after, false).ok(),
            Schedule::Every(period) => {
                let period = chrono::Duration::from_std(*period).ok()?;
                let elapsed = after.signed_duration_since(started);
                let periods = elapsed.num_milliseconds() / period.num_milliseconds().max(1) + 1;
                Some(started + period * i32::try_from(periods).ok()?)
            }
        }
    }
}

/// The command a tick runs: the shared commands and options, after `--`.
#[derive(Parser, Debug)]
#[command(name = "host-test schedule … --", no_binary_name = true)]
struct Tick {
    #[command(flatten)]
    options: Options,
    #[command(subcommand)]
    command: DataCommand,
}

/// The tick's options: its own, with the schedule's for what it leaves
/// unset (the connection, retries and timeouts usually go before `--`).
fn merged(outer: &Options, tick: Options) -> Options {
    Options {
        connection: tick.connection.or_else(|| outer.connection.clone()),
        profile: tick.profile.or_else(|| outer.profile.clone()),
        ps256: tick.ps256 || outer.ps256,
        send_chain: tick.send_chain || outer.send_chain,
        max_retries: tick.max_retries.or(outer.max_retries),
        timeout_ms: tick.timeout_ms.or(outer.timeout_ms),
        output: tick.output.or(outer.output),
        json: tick.json || outer.json,
        verbose: tick.verbose || outer.verbose,
        // The tick's log line has the row count: stderr stays JSON lines.
        quiet: true,
        request: tick.request,
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn log(line: Value) {
    eprintln!("{line}");
}

/// Ctrl-C or SIGTERM, as a flag the loop reads between ticks.
fn stop_signal() -> Result<watch::Receiver<bool>, Failure> {
    let (tell, stop) = watch::channel(false);
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::host(format!("listening for SIGTERM: {e}")))?;
    tokio::spawn(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        let _ = tell.send(true);
    });
    Ok(stop)
}

pub async fn run(
    global: &Global,
    schedule: Schedule,
    run_on_startup: bool,
    max_ticks: Option<u64>,
    words: Vec<String>,
) -> Result<(), Failure> {
    let tick = Tick::try_parse_from(&words).map_err(|e| {
        let text = e.render().to_string();
        Failure::usage(format!(
            "the scheduled command: {}",
            text.lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
        ))
    })?;
    let global = Global {
        options: merged(&global.options, tick.options),
        ..global.clone()
    };
    // Not ready: no connection string, or settings the core refuses. Said
    // now, before the first tick, not every five minutes in a log.
    let connection = crate::connection_string(&global)?;
    dataverse_wasm::settings::parse(&connection)
        .map_err(|e| Failure::from(dataverse_wasm::client::Failure::from(e)))?;

    let mut stop = stop_signal()?;
    let mut backend = SessionBackend::new(&global);
    let started = Utc::now();
    let mut due = if run_on_startup {
        Some(started)
    } else {
        schedule.next_after(started, started)
    };
    let mut ticks = 0;
    log(json!({
        "schedule": schedule_text(&schedule),
        "next": due.map(rfc3339),
        "command": words.join(" "),
    }));
    while let Some(at) = due {
        if max_ticks.is_some_and(|max| ticks >= max) {
            break;
        }
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        ticks += 1;
        run_tick(ticks, &tick.command, &global, &mut backend).await;
        // Due times that passed while the tick ran are skipped, never
        // run late or side by side.
        let now = Utc::now();
        let mut next = schedule.next_after(at, started);
        while let Some(missed) = next.filter(|n| *n <= now) {
            log(json!({
                "skipped": rfc3339(missed),
                "reason": format!("tick {ticks} was still running"),
            }));
            next = schedule.next_after(missed, started);
        }
        due = next;
        if *stop.borrow() {
            break;
        }
    }
    log(json!({ "stopped": rfc3339(Utc::now()), "ticks": ticks }));
    Ok(())
}

fn schedule_text(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Cron(cron) => cron.pattern.to_string(),
        Schedule::Every(period) => format!("@every {}", humantime::format_duration(*period)),
    }
}

/// One tick: the command, then its log line. A failure is the line's, not
/// the schedule's.
async fn run_tick(
    number: u64,
    command: &DataCommand,
    global: &Global,
    backend: &mut SessionBackend<'_>,
) {
    let start = Utc::now();
    let clock = Instant::now();
    let attempts_before = backend.attempts;
    let result = dataverse_cli::commands::run(&global.options, command.clone(), backend).await;
    let mut line = json!({
        "tick": number,
        "start": rfc3339(start),
        "duration_ms": clock.elapsed().as_millis() as u64,
        "attempts": backend.attempts - attempts_before,
    });
    match result {
        Ok(done) => {
            line["outcome"] = json!("ok");
            line["rows"] = json!(done.rows);
        }
        Err(failure) => {
            line["outcome"] = json!("failed");
            line["rows"] = Value::Null;
            line["error"] = json!({
                "kind": failure.kind(),
                "message": failure.message,
                "exit_code": failure.code,
            });
        }
    }
    log(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn ncrontab_has_six_fields_seconds_first() {
        let every_five = Schedule::parse("0 */5 * * * *").unwrap();
        let start = at("2026-12-01T10:02:30Z");
        assert_eq!(
            every_five.next_after(start, start),
            Some(at("2026-12-01T10:05:00Z"))
        );
        // Weekdays as Functions count them: 0 = Sunday, 1-5 = Monday to Friday.
        let weekdays = Schedule::parse("0 30 9 * * 1-5").unwrap();
        let saturday = at("2026-12-05T12:00:00Z");
        assert_eq!(
            weekdays.next_after(saturday, saturday),
            Some(at("2026-12-07T09:30:00Z"))
        );
        for bad in [
            "*/5 * * * *",
            "0 */5 * * * * 2027",
            "61 * * * * *",
            "nonsense",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_counts_from_the_start() {
        let every = Schedule::parse("@every 5m").unwrap();
        let start = at("2026-12-01T10:00:07Z");
        assert_eq!(
            every.next_after(start, start),
            Some(at("2026-12-01T10:05:07Z"))
        );
        // After a tick that ran long, the next due time is still on the grid.
        assert_eq!(
            every.next_after(at("2026-12-01T10:12:00Z"), start),
            Some(at("2026-12-01T10:15:07Z"))
        );
        assert!(Schedule::parse("@every 0s").is_err());
        assert!(Schedule::parse("@every soon").is_err());
    }

    #[test]
    fn the_tick_keeps_its_own_options_and_inherits_the_rest() {
        let outer = Options {
            connection: Some("outer".into()),
            max_retries: Some(1),
            ..Options::default()
        };
        let tick =
            Tick::try_parse_from(["query", "accounts", "--json", "--max-retries", "7"]).unwrap();
        let options = merged(&outer, tick.options);
        assert_eq!(options.connection.as_deref(), Some("outer"));
        assert_eq!(options.max_retries, Some(7));
        assert!(options.json());
    }
}
