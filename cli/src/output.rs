//! What the commands print, in the three formats (`--output text|json|table`).
//!
//! JSON output is valid on every exit path: a single result is printed only
//! once it is complete, and a stream (`--all`) is NDJSON, one complete row
//! per line, so a failure half-way leaves only whole lines behind.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use crate::Failure;
use crate::options::Output;

/// Why rows stopped going out: whoever read them went away (`| head`), or a
/// row could not be written or read.
pub enum Stop {
    Closed,
    Failed(Failure),
}

/// A write to stdout: a closed pipe stops the command, it is not an error.
pub fn wrote(result: std::io::Result<()>) -> Result<(), Stop> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::Closed),
        Err(e) => Err(Stop::Failed(Failure::host(format!(
            "writing the output: {e}"
        )))),
    }
}

/// Ends a command whose output stopped: a closed stdout is a success (the
/// reader has what it wanted), anything else is the failure.
pub fn stopped(stop: Stop) -> Result<(), Failure> {
    match stop {
        Stop::Closed => Ok(()),
        Stop::Failed(failure) => Err(failure),
    }
}

/// Prints one line on stdout; a closed stdout is not an error.
pub fn line(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match wrote(writeln!(out, "{text}").and_then(|()| out.flush())) {
        Ok(()) => Ok(()),
        Err(stop) => stopped(stop),
    }
}

/// A JSON document (a row, a response body): pretty for people, compact for
/// scripts, a two-column table with `--output table`.
pub fn document(format: Output, text: &str) -> Result<(), Failure> {
    let value = serde_json::from_str::<Value>(text);
    match (format, value) {
        (Output::Json, Ok(value)) => line(&value.to_string()),
        (Output::Table, Ok(Value::Object(map))) => line(&fields_table(
            map.iter().map(|(k, v)| (k.as_str(), v.clone())),
        )),
        (_, Ok(value)) => line(&serde_json::to_string_pretty(&value).unwrap_or(text.to_string())),
        (_, Err(_)) => line(text),
    }
}

/// Named fields (WhoAmI, token): aligned `name: value` lines, one JSON
/// object, or a two-column table.
pub fn fields(format: Output, fields: &[(&str, Value)]) -> Result<(), Failure> {
    match format {
        Output::Json => {
            let object: serde_json::Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            line(&Value::Object(object).to_string())
        }
        Output::Table => line(&fields_table(fields.iter().cloned())),
        Output::Text => {
            let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
            let text: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{:<width$} {}", format!("{k}:"), plain(v)))
                .collect();
            line(&text.join("\n"))
        }
    }
}

/// A value as a person reads it: strings without quotes.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn new_table() -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    if std::io::stdout().is_terminal()
        && let Some(width) = terminal_width()
    {
        table
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    }
    table
}

#[cfg(not(target_arch = "wasm32"))]
fn terminal_width() -> Option<u16> {
    terminal_size::terminal_size().map(|(width, _)| width.0)
}

/// WASI 0.2 has no way to ask a terminal's size: tables keep their width.
#[cfg(target_arch = "wasm32")]
fn terminal_width() -> Option<u16> {
    None
}

fn fields_table<'a>(fields: impl Iterator<Item = (&'a str, Value)>) -> String {
    let mut table = new_table();
    table.set_header(["field", "value"]);
    for (key, value) in fields {
        table.add_row([key.to_string(), plain(&value)]);
    }
    table.to_string()
}

/// A page of rows as a table: the columns are the rows' keys in the order
/// they first appear, without OData's own annotations (`@odata.etag`).
pub fn rows_table(rows: &[Value]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.as_object().into_iter().flat_map(|o| o.keys()) {
            if !key.starts_with("@odata.") && !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    let mut table = new_table();
    table.set_header(columns.iter().copied());
    for row in rows {
        table.add_row(
            columns
                .iter()
                .map(|c| row.get(*c).map(plain).unwrap_or_default()),
        );
    }
    table.to_string()
}

/// Where rows go, page by page: text and `--all` JSON write each row as a
/// line at once; a single JSON page is kept to be printed whole by the
/// caller; a table prints each page as it arrives (memory stays one page).
pub struct RowSink {
    format: Output,
    /// NDJSON for a stream; one object for a single page.
    stream: bool,
    pub written: u64,
    pub kept: Vec<Value>,
}

impl RowSink {
    pub fn new(format: Output, stream: bool) -> RowSink {
        RowSink {
            format,
            stream,
            written: 0,
            kept: Vec::new(),
        }
    }

    /// One page's rows (a JSON array as the component returns it).
    pub fn page(&mut self, rows: &str) -> Result<(), Stop> {
        let rows: Vec<Value> = serde_json::from_str(rows).map_err(|e| {
            Stop::Failed(Failure::host(format!(
                "the component returned unreadable rows: {e}"
            )))
        })?;
        let mut out = std::io::stdout().lock();
        match (self.format, self.stream) {
            (Output::Json, false) => {
                self.written += rows.len() as u64;
                self.kept.extend(rows);
                return Ok(());
            }
            (Output::Table, _) => {
                if !rows.is_empty() {
                    wrote(writeln!(out, "{}", rows_table(&rows)))?;
                }
            }
            _ => {
                for row in &rows {
                    wrote(writeln!(out, "{row}"))?;
                }
            }
        }
        self.written += rows.len() as u64;
        wrote(out.flush())
    }
}

/// The "N rows so far" line on a terminal's stderr: rewritten in place
/// while pages arrive, and replaced by the summary at the end, so the count
/// shows once.
pub struct Progress<W: Write> {
    out: Option<W>,
    shown: bool,
}

impl Progress<std::io::Stderr> {
    /// Shown only when stderr is a terminal, the output is for people and
    /// `--quiet` was not asked for.
    pub fn on_stderr(format: Output, quiet: bool) -> Self {
        let show = !quiet && format != Output::Json && std::io::stderr().is_terminal();
        Progress {
            out: show.then(std::io::stderr),
            shown: false,
        }
    }
}

impl<W: Write> Progress<W> {
    #[cfg(test)]
    pub fn to(out: W) -> Self {
        Progress {
            out: Some(out),
            shown: false,
        }
    }

    pub fn rows(&mut self, rows: u64) {
        self.line(&format!("{rows} rows…"));
    }

    /// Rewrites the progress line with `text`.
    pub fn line(&mut self, text: &str) {
        if let Some(out) = &mut self.out {
            let _ = write!(out, "\r\x1b[K{text}");
            let _ = out.flush();
            self.shown = true;
        }
    }

    /// The last line (a summary), over the progress line if one is shown.
    pub fn finish(&mut self, summary: &str) -> Option<W> {
        let mut out = self.out.take()?;
        if self.shown {
            // \r and erase-to-end-of-line: the summary replaces the count.
            let _ = write!(out, "\r\x1b[K");
        }
        let _ = writeln!(out, "{summary}");
        Some(out)
    }
}

/// A Unix time as RFC 3339 (`2026-12-01T17:30:00Z`).
pub fn date(unix_seconds: u64) -> String {
    i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// A length of time as people say it: `59 min 12 s`, `2 h 5 min`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_and_durations_read_as_text() {
        assert_eq!(date(1_796_118_995), "2026-12-01T09:56:35Z");
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(3599), "59 min 59 s");
        assert_eq!(duration(7500), "2 h 5 min");
    }

    #[test]
    fn progress_ends_in_one_summary() {
        let mut progress = Progress::to(Vec::new());
        progress.rows(5000);
        progress.rows(10000);
        let out = String::from_utf8(progress.finish("10000 rows").unwrap()).unwrap();
        assert_eq!(
            out,
            "\r\x1b[K5000 rows…\r\x1b[K10000 rows…\r\x1b[K10000 rows\n"
        );
        // What the terminal ends up showing: the text after the last erase.
        let visible = out.rsplit("\x1b[K").next().unwrap();
        assert_eq!(visible.matches("rows").count(), 1);
    }

    #[test]
    fn a_table_has_the_union_of_columns_without_odata_annotations() {
        let rows = vec![
            json!({"@odata.etag": "W/\"1\"", "name": "A", "revenue": 10}),
            json!({"name": "B", "city": null}),
        ];
        let table = rows_table(&rows);
        let header = table.lines().nth(1).unwrap();
        assert!(header.contains("name") && header.contains("revenue") && header.contains("city"));
        assert!(!table.contains("etag"), "{table}");
        assert!(table.contains(" A ") && table.contains(" B ") && table.contains(" 10 "));
    }

    #[test]
    fn plain_values_read_as_text() {
        assert_eq!(plain(&json!("x")), "x");
        assert_eq!(plain(&json!(null)), "-");
        assert_eq!(plain(&json!({"a": 1})), "{\"a\":1}");
    }
}
