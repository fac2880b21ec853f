//! A failed command: what it prints and the exit code it ends with, the
//! same in every front end.

use clap::Parser;
use dataverse_wasm::client::Failure as CallFailure;
use dataverse_wasm::error::{describe, kind_name};

use crate::{exit, json_error, options};

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub detail: Option<String>,
    /// The call's typed error, when it is one (for `--json`); boxed to
    /// keep every `Result<_, Failure>` small.
    pub error: Option<Box<CallFailure>>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: message.into(),
            detail: None,
            error: None,
        }
    }

    pub fn host(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: exit::HOST,
            message: format!("{error:#}"),
            detail: None,
            error: None,
        }
    }

    /// The error kind's WIT name (`not-found`, …), or `usage` / `host`.
    pub fn kind(&self) -> &'static str {
        match (&self.error, self.code) {
            (Some(failure), _) => kind_name(&failure.error),
            (None, exit::USAGE) => "usage",
            // Rows Dataverse refused (an import's rejects, a failed delete
            // batch, no delta link): the command's own summary of them.
            (None, exit::DATAVERSE) => "service",
            (None, _) => "host",
        }
    }
}

/// A call's typed error: its exit code from the table, the one line the
/// core describes it with, and its wire facts for `-v`.
impl From<CallFailure> for Failure {
    fn from(failure: CallFailure) -> Failure {
        let mut out = Failure {
            code: exit::for_kind(kind_name(&failure.error)),
            message: describe(&failure.error, failure.call.as_ref().map(|c| c.attempts)),
            detail: None,
            error: Some(Box::new(failure)),
        };
        out.detail = json_error::details(&out);
        out
    }
}

/// Parses the command line the clap way, with this product's exits:
/// `--help` and `--version` print and exit 0; a usage error exits 2, as
/// one JSON object on stderr when the words ask for JSON. `Err` is the
/// exit code (a `u8`: the command component hands it to
/// `exit-with-code`, which `ExitCode` cannot be read back for).
pub fn parse_words<C: Parser>(words: &[String]) -> Result<C, u8> {
    parse_words_with(C::command(), words)
}

/// [`parse_words`] with the command definition given (a front end that
/// adjusts the shared one, e.g. the examples' program name).
pub fn parse_words_with<C: clap::FromArgMatches>(
    command: clap::Command,
    words: &[String],
) -> Result<C, u8> {
    let parsed = command
        .try_get_matches_from(words)
        .and_then(|matches| C::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(exit::OK)
        }
        Err(e) if options::wants_json(words.get(1..).unwrap_or_default()) => {
            let rendered = first_line(&e.render().to_string());
            let message = match e.kind().as_str() {
                Some(kind) => format!("{kind}: {rendered}"),
                None => rendered,
            };
            Err(report(Failure::usage(message), false, true))
        }
        Err(e) => {
            let _ = e.print();
            Err(exit::USAGE)
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

/// Prints the failure on stderr — one line, or with `--json` one JSON
/// object (see `json_error`) — and exits with its code either way.
pub fn report(failure: Failure, verbose: bool, json: bool) -> u8 {
    if json {
        eprintln!("{}", json_error::render(&failure));
        return failure.code;
    }
    eprintln!("error: {}", failure.message);
    if verbose && let Some(detail) = &failure.detail {
        eprintln!("details: {detail}");
    }
    if failure.code == exit::USAGE && failure.error.is_none() {
        eprintln!("(--help for usage)");
    }
    failure.code
}

/// A warning on stderr (one JSON object with `--json`); never a secret.
pub fn warn(options: &options::Options, message: &str) {
    if options.json() {
        eprintln!("{}", serde_json::json!({ "warning": message }));
    } else {
        eprintln!("warning: {message}");
    }
}
