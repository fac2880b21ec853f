//! The native CLI's command line: the shared options and commands
//! (`dataverse_cli::options`, the same in the command component) and what
//! only a native host has — the network and component options, the demo,
//! doctor, the fake, the benchmarks, the gateway server.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dataverse_cli::{DataCommand, Options, Output};

#[derive(Parser, Debug)]
#[command(
    name = "host-test",
    version,
    about = "Talk to Microsoft Dataverse as an application (server-to-server): \
             the dataverse:client component in wasmtime",
    after_long_help = dataverse_cli::options::after_help(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes: the shared ones, and the native host's.
#[derive(Args, Debug, Default, Clone)]
pub struct Global {
    #[command(flatten)]
    pub options: Options,
    /// Connect to H2:P2 for requests to H1:P1, like curl (repeatable)
    #[arg(
        long = "connect-to",
        global = true,
        value_name = "H1:P1:H2:P2",
        help_heading = "Connection"
    )]
    pub connect_to: Vec<String>,
    /// Trust these PEM certificates too (besides the public and the system roots)
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub cacert: Option<PathBuf>,
    /// Certificate store for AuthType=Certificate (PEM / PFX files), mapped read-only
    #[arg(
        long = "cert-store",
        global = true,
        value_name = "DIR",
        help_heading = "Connection"
    )]
    pub cert_store: Option<PathBuf>,
    /// The component to run (default: the one built into this binary)
    #[arg(long, global = true, value_name = "PATH", help_heading = "Connection")]
    pub component: Option<PathBuf>,
    /// Always discover the tenant (do not use the day-long cache of discovered authorities)
    #[arg(
        long = "no-authority-cache",
        global = true,
        help_heading = "Connection"
    )]
    pub no_authority_cache: bool,
}

/// A part of `bench`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPart {
    /// The component and the core natively in this process, against the fake in process and on TLS
    InProcess,
    /// The CLI and dataverse-floor as processes, against the fake server in another process
    Cold,
    /// Rows/s writing new rows: CreateMultiple vs a $batch of creates vs one create per call
    Bulk,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    #[command(flatten)]
    Data(DataCommand),
    /// WhoAmI and a query against the built-in fake (no setup, no network)
    #[command(after_help = "Example:\n  host-test demo")]
    Demo,
    /// Walk the server-to-server chain and stop at the first broken link, with the fix
    #[command(after_help = "Example:\n  host-test doctor --table accounts")]
    Doctor {
        /// Also check the role's read privilege on this entity set
        #[arg(long, value_name = "ENTITYSET")]
        table: Option<String>,
    },
    /// Shell completions, on stdout
    #[command(
        after_help = "Example:\n  host-test completions bash > ~/.local/share/bash-completion/completions/host-test"
    )]
    Completions { shell: clap_complete::Shell },
    /// The man page (roff), on stdout
    #[command(after_help = "Example:\n  host-test man > ~/.local/share/man/man1/host-test.1")]
    Man,
    /// Serve the fake Entra ID + Dataverse on loopback (TLS, or plain HTTP with --http)
    #[command(
        name = "fake-server",
        after_help = "Example:\n  host-test fake-server --seconds 60"
    )]
    FakeServer {
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Plain HTTP instead of TLS, for runners that cannot trust a test CA
        /// (wasmtime run, jco run of the command component)
        #[arg(long)]
        http: bool,
    },
    /// The component vs the same core natively: in-process, and as whole processes (CLI vs dataverse-floor)
    #[command(
        after_help = "Writes target/bench/bench.json (or --out FILE). The cold-process part runs \
        dataverse-floor and dataverse-measure from beside this binary: `cargo build -p host-test \
        --bins` builds all three; build with --profile bench for the figures that count.\n\n\
        Example:\n  cargo build --profile bench -p host-test --bins && target/release/host-test bench"
    )]
    Bench {
        /// Warm calls per in-process case (the warm calls of the cold-process part: at most 1000)
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..))]
        iterations: u64,
        /// Runs of each process in the cold-process part (after the first, empty-cache, run)
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
        runs: u64,
        /// Only this part
        #[arg(long, value_enum)]
        only: Option<BenchPart>,
        /// Rows each way of the bulk part writes
        #[arg(long = "bulk-rows", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
        bulk_rows: u64,
        /// Write the report here instead of target/bench/bench.json
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Token acquisition cost: secret vs certificate
    #[command(
        name = "bench-auth",
        after_help = "Writes target/bench/auth.json.\n\nExample:\n  host-test bench-auth"
    )]
    BenchAuth {
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        iterations: u64,
    },
    /// Run a command on a schedule with one warm client (the Azure Functions timer pattern)
    #[command(
        after_help = "SCHEDULE is six NCRONTAB fields, seconds first, in UTC, as Azure \
        Functions timers write them ({second} {minute} {hour} {day} {month} {day-of-week}; \
        0 = Sunday), or @every DURATION (30s, 5m, 1h 30m). One tick runs at a time: a due time \
        that passes while a tick runs is skipped and logged. Each tick logs one JSON line on \
        stderr; the command's output goes to stdout. SIGTERM or Ctrl-C lets a running tick \
        finish, then exits 0.\n\n\
        Example:\n  host-test schedule \"0 */5 * * * *\" -- query accounts --select name --top 3"
    )]
    Schedule {
        #[arg(value_parser = crate::schedule::Schedule::parse)]
        schedule: crate::schedule::Schedule,
        /// Also run once at start (Functions' RunOnStartup)
        #[arg(long = "run-on-startup")]
        run_on_startup: bool,
        /// Stop after this many ticks (default: run until SIGTERM or Ctrl-C)
        #[arg(long = "max-ticks", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_ticks: Option<u64>,
        /// The command each tick runs, after --
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// The HTTP gateway on 127.0.0.1 (needs GATEWAY_API_KEY; instances are reused)
    #[command(after_help = "Example:\n  GATEWAY_API_KEY=… host-test serve --port 8080")]
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The gateway component (default: the one built into this binary)
        #[arg(long, value_name = "PATH")]
        gateway: Option<PathBuf>,
    },
}

impl Command {
    /// Whether the command serves or measures many things at once (a
    /// multi-thread runtime), rather than making its calls and exiting (a
    /// current-thread runtime: each call and the I/O it starts on one
    /// thread, and no worker threads to start and stop).
    pub fn runs_concurrently(&self) -> bool {
        matches!(
            self,
            Command::FakeServer { .. }
                | Command::Bench { .. }
                | Command::BenchAuth { .. }
                | Command::Schedule { .. }
                | Command::Serve { .. }
        )
    }
}

impl Global {
    pub fn output(&self) -> Output {
        self.options.output()
    }

    pub fn json(&self) -> bool {
        self.options.json()
    }

    /// `--no-authority-cache`, or `DATAVERSE_NO_AUTHORITY_CACHE` set to
    /// anything but empty, `0` or `false`. (Read here: clap does not apply
    /// `env` to a global flag once a subcommand is parsed.)
    pub fn authority_cache(&self) -> bool {
        let off = std::env::var("DATAVERSE_NO_AUTHORITY_CACHE")
            .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        !(self.no_authority_cache || off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(words: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("host-test").chain(words.iter().copied()))
    }

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn conventions_everyone_expects() {
        let cli = parse(&["query", "accounts", "--top=3", "--select", "name,revenue"]).unwrap();
        let Command::Data(DataCommand::Query(query)) = cli.command else {
            panic!("query")
        };
        assert_eq!(query.top, Some(3));
        assert_eq!(query.select, ["name", "revenue"]);
        // Global options go before or after the command.
        let cli = parse(&["whoami", "--json", "-v"]).unwrap();
        assert!(cli.global.json() && cli.global.options.verbose);
        // `--` ends the options: a key that starts with a dash.
        let cli = parse(&["get", "accounts", "--", "-odd-key"]).unwrap();
        assert!(
            matches!(cli.command, Command::Data(DataCommand::Get { key, .. }) if key == "-odd-key")
        );
        let version = parse(&["--version"]).unwrap_err();
        assert_eq!(version.kind(), clap::error::ErrorKind::DisplayVersion);
        let help = parse(&["help", "query"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--page-size"), "{help}");
        assert!(help.to_string().contains("Examples:"), "{help}");
    }

    #[test]
    fn mistakes_are_caught_before_any_request() {
        use clap::error::ErrorKind;
        let cases: &[(&[&str], ErrorKind)] = &[
            (
                &["query", "accounts", "--top", "0"],
                ErrorKind::ValueValidation,
            ),
            (
                &["query", "accounts", "--page-size", "9000"],
                ErrorKind::ValueValidation,
            ),
            (
                &["query", "accounts", "--max-rows", "5"],
                ErrorKind::MissingRequiredArgument,
            ),
            (&["send", "FETCH", "accounts"], ErrorKind::ValueValidation),
            (
                &["whoami", "--suppress-duplicate-detection", "maybe"],
                ErrorKind::InvalidValue,
            ),
            (
                &["execute", "X", "--action", "--function"],
                ErrorKind::ArgumentConflict,
            ),
            (&["whoamy"], ErrorKind::InvalidSubcommand),
            (
                &["query", "accounts", "--selct", "name"],
                ErrorKind::UnknownArgument,
            ),
        ];
        for (words, kind) in cases {
            let error = parse(words).unwrap_err();
            assert_eq!(error.kind(), *kind, "{words:?}: {error}");
        }
    }

    #[test]
    fn typos_get_a_suggestion() {
        let error = parse(&["whoamy"]).unwrap_err().to_string();
        assert!(error.contains("whoami"), "{error}");
        let error = parse(&["query", "accounts", "--selct", "name"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--select"), "{error}");
    }
}
