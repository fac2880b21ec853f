//! The command line, declared once: parsing, `--help`, shell completions and
//! the man page all come from these definitions.
//!
//! Checks that need no network live here too (`--top 0`, `--page-size
//! 9000`, an unknown method, `--suppress-duplicate-detection maybe`), so a
//! mistake is reported before tenant discovery and a token request.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dataverse_host::session::Method;
use dataverse_wasm::webapi::query::MAX_PAGE_SIZE;

#[derive(Parser, Debug)]
#[command(
    name = "host-test",
    version,
    about = "Talk to Microsoft Dataverse as an application (server-to-server): \
             the dataverse:client component in wasmtime",
    after_long_help = after_help(),
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

fn after_help() -> String {
    format!(
        "Connection string: --connection STR|@FILE, --profile NAME, $DATAVERSE_CONNECTION, \
         $DATAVERSE_CONNECTION_FILE, or the default profile of ~/.config/dataverse/config.toml \
         (first found wins). A value may be ${{env:NAME}} or ${{file:PATH}}, so a secret never \
         needs to be on the command line.\n\n{}",
        crate::exit::help_text()
    )
}

/// Options every command takes.
#[derive(Args, Debug, Default, Clone)]
pub struct Global {
    /// Connection string, or @FILE to read it from a file [env: DATAVERSE_CONNECTION]
    #[arg(
        long,
        global = true,
        value_name = "STR|@FILE",
        help_heading = "Connection"
    )]
    pub connection: Option<String>,
    /// A named profile of ~/.config/dataverse/config.toml [env: DATAVERSE_PROFILE]
    #[arg(long, global = true, value_name = "NAME", help_heading = "Connection")]
    pub profile: Option<String>,
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
    /// Sign certificate assertions with PS256 + x5t#S256 (default RS256 + x5t)
    #[arg(long, global = true, help_heading = "Connection")]
    pub ps256: bool,
    /// Send the certificate chain (x5c), for subject-name/issuer registrations
    #[arg(long = "send-chain", global = true, help_heading = "Connection")]
    pub send_chain: bool,
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
    /// Retries after the first attempt (default 4; 0 never retries)
    #[arg(
        long = "max-retries",
        global = true,
        value_name = "N",
        help_heading = "Connection"
    )]
    pub max_retries: Option<u32>,
    /// Connect / first-byte / between-bytes timeout
    #[arg(
        long = "timeout-ms",
        global = true,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Connection"
    )]
    pub timeout_ms: Option<u32>,

    /// Output format: text for people, json for scripts, table for rows
    #[arg(long, short = 'o', global = true, value_enum, help_heading = "Output")]
    pub output: Option<Output>,
    /// Same as --output json; an error is then one JSON object on stderr
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,
    /// Each HTTP exchange (method, host, path, status, ms, attempt; never headers or
    /// bodies), error details, each call's request id
    #[arg(long, short = 'v', global = true, help_heading = "Output")]
    pub verbose: bool,

    #[command(flatten)]
    pub request: RequestArgs,
}

/// Per-call headers (Dataverse's request options).
#[derive(Args, Debug, Default, Clone)]
pub struct RequestArgs {
    /// Act for this user (CallerObjectId)
    #[arg(
        long,
        global = true,
        value_name = "OBJECTID",
        help_heading = "Request options"
    )]
    pub impersonate: Option<String>,
    /// MSCRM.BypassCustomPluginExecution: true
    #[arg(
        long = "bypass-plugins",
        global = true,
        help_heading = "Request options"
    )]
    pub bypass_plugins: bool,
    /// MSCRM.SuppressDuplicateDetection
    #[arg(
        long = "suppress-duplicate-detection",
        global = true,
        value_name = "true|false",
        value_parser = clap::value_parser!(bool),
        help_heading = "Request options"
    )]
    pub suppress_duplicate_detection: Option<bool>,
    /// MSCRM.SolutionUniqueName
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Request options"
    )]
    pub solution: Option<String>,
    /// Consistency: Strong
    #[arg(
        long = "strong-consistency",
        global = true,
        help_heading = "Request options"
    )]
    pub strong_consistency: bool,
    /// Formatted values (odata.include-annotations="*")
    #[arg(long, global = true, help_heading = "Request options")]
    pub formatted: bool,
    /// odata.include-annotations="NAME"
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        help_heading = "Request options"
    )]
    pub annotations: Option<String>,
    /// x-ms-client-request-id of the call
    #[arg(
        long = "request-id",
        global = true,
        value_name = "ID",
        help_heading = "Request options"
    )]
    pub request_id: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// For people: aligned fields; rows one JSON object per line
    Text,
    /// For scripts: one JSON object, or one row per line for --all (NDJSON)
    Json,
    /// Rows and fields as a table
    Table,
}

/// A part of `bench`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPart {
    /// The component and the core natively in this process, against the fake in process and on TLS
    InProcess,
    /// The CLI and dataverse-floor as processes, against the fake server in another process
    Cold,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// WhoAmI and a query against the built-in fake (no setup, no network)
    #[command(after_help = "Example:\n  host-test demo")]
    Demo,
    /// The application user's ids (WhoAmI)
    #[command(name = "whoami", after_help = "Example:\n  host-test whoami --json")]
    WhoAmI,
    /// Rows of an entity set, one JSON object per line
    #[command(
        after_help = "Examples:\n  host-test query accounts --select name --top 3\n  \
        host-test query accounts --filter \"statecode eq 0\" --page-size 500 --all"
    )]
    Query(QueryArgs),
    /// One row by id or alternate key
    #[command(
        after_help = "Example:\n  host-test get accounts \"accountnumber='A-1'\" --select name,revenue"
    )]
    Get {
        entity_set: String,
        /// A GUID or an alternate key such as accountnumber='A-1'
        key: String,
        /// Columns, comma-separated
        #[arg(long, value_delimiter = ',')]
        select: Vec<String>,
        #[arg(long, value_name = "EXPR")]
        expand: Option<String>,
    },
    /// Create a row; prints the new id
    #[command(after_help = "Example:\n  host-test create accounts --data '{\"name\":\"Contoso\"}'")]
    Create {
        entity_set: String,
        #[command(flatten)]
        data: Data,
        /// Print the created row (Prefer: return=representation)
        #[arg(long = "return")]
        return_row: bool,
    },
    /// Update a row; never creates one
    #[command(
        after_help = "Example:\n  host-test update accounts <id> --data '{\"name\":\"Contoso Ltd\"}' --if-match 'W/\"123\"'"
    )]
    Update {
        entity_set: String,
        key: String,
        #[command(flatten)]
        data: Data,
        #[arg(long = "if-match", value_name = "ETAG")]
        if_match: Option<String>,
        #[arg(long = "return")]
        return_row: bool,
    },
    /// Create or update a row by key
    #[command(
        after_help = "Example:\n  host-test upsert accounts \"accountnumber='A-1'\" --data '{\"name\":\"Upserted\"}'"
    )]
    Upsert {
        entity_set: String,
        key: String,
        #[command(flatten)]
        data: Data,
        /// Only create: fail with 412 when the row exists
        #[arg(long = "create-only")]
        create_only: bool,
        #[arg(long = "return")]
        return_row: bool,
    },
    /// Delete a row
    #[command(after_help = "Example:\n  host-test delete accounts <id>")]
    Delete {
        entity_set: String,
        key: String,
        #[arg(long = "if-match", value_name = "ETAG")]
        if_match: Option<String>,
    },
    /// Link two rows through a collection-valued navigation property
    #[command(
        after_help = "Example:\n  host-test associate accounts <id> contact_customer_accounts contacts <contact id>"
    )]
    Associate {
        entity_set: String,
        key: String,
        navigation_property: String,
        target_set: String,
        target_key: String,
    },
    /// Unlink rows (a single-valued property needs no target)
    #[command(
        after_help = "Example:\n  host-test disassociate accounts <id> contact_customer_accounts contacts <contact id>"
    )]
    Disassociate {
        entity_set: String,
        key: String,
        navigation_property: String,
        target_set: Option<String>,
        #[arg(requires = "target_set")]
        target_key: Option<String>,
    },
    /// A FetchXML query from a file (- for standard input)
    #[command(
        name = "fetchxml",
        after_help = "Example:\n  host-test fetchxml accounts query.xml --all"
    )]
    FetchXml {
        entity_set: String,
        /// The FetchXML file, or - for standard input
        file: String,
        /// Read every page (rows stream out page by page)
        #[arg(long)]
        all: bool,
        /// Stop after this many rows (with --all)
        #[arg(long = "max-rows", value_name = "N", requires = "all")]
        max_rows: Option<u64>,
    },
    /// A function (default without --data) or an action
    #[command(after_help = "Examples:\n  host-test execute RetrieveVersion\n  \
        host-test execute sample_Echo --data '{\"Text\":\"hi\"}'")]
    Execute {
        name: String,
        /// Bound to this row
        #[arg(long, num_args = 2, value_names = ["ENTITYSET", "KEY"])]
        bound: Option<Vec<String>>,
        #[arg(long, value_name = "JSON|@FILE|-")]
        data: Option<String>,
        #[arg(long, conflicts_with = "function")]
        action: bool,
        #[arg(long)]
        function: bool,
    },
    /// Several requests in one $batch
    #[command(
        after_help = "FILE is a JSON array of {\"method\",\"url\",\"headers\"?,\"body\"?}.\n\n\
        Example:\n  host-test batch requests.json --changeset"
    )]
    Batch {
        /// The requests file, or - for standard input
        file: String,
        /// All or nothing: one change set
        #[arg(long)]
        changeset: bool,
        #[arg(long = "continue-on-error")]
        continue_on_error: bool,
    },
    /// Any Web API request (PATH relative to /api/data/v9.2/)
    #[command(after_help = "Example:\n  host-test send GET 'accounts?$top=1'")]
    Send {
        #[arg(value_parser = parse_method)]
        method: Method,
        path: String,
        #[arg(long, value_name = "JSON|@FILE|-")]
        data: Option<String>,
    },
    /// The token's metadata (the token itself only with --show-token)
    #[command(after_help = "Example:\n  host-test token")]
    Token {
        #[arg(long = "show-token")]
        show_token: bool,
    },
    /// Walk the server-to-server chain and stop at the first broken link, with the fix
    #[command(after_help = "Example:\n  host-test doctor --table accounts")]
    Doctor {
        /// Also check the role's read privilege on this entity set
        #[arg(long, value_name = "ENTITYSET")]
        table: Option<String>,
    },
    /// Named connection profiles (~/.config/dataverse/config.toml)
    #[command(subcommand, after_help = "Example:\n  host-test profile list")]
    Profile(ProfileCommand),
    /// Shell completions, on stdout
    #[command(
        after_help = "Example:\n  host-test completions bash > ~/.local/share/bash-completion/completions/host-test"
    )]
    Completions { shell: clap_complete::Shell },
    /// The man page (roff), on stdout
    #[command(after_help = "Example:\n  host-test man > ~/.local/share/man/man1/host-test.1")]
    Man,
    /// Serve the fake Entra ID + Dataverse on loopback TLS
    #[command(
        name = "fake-server",
        after_help = "Example:\n  host-test fake-server --seconds 60"
    )]
    FakeServer {
        #[arg(long, default_value_t = 600)]
        seconds: u64,
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

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The entity set (plural) name, e.g. accounts
    pub entity_set: String,
    /// Columns, comma-separated ($select)
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,
    /// $filter, e.g. "statecode eq 0"
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// $orderby, e.g. "name desc"
    #[arg(long, value_name = "EXPR")]
    pub orderby: Option<String>,
    /// $expand: related rows to include
    #[arg(long, value_name = "EXPR")]
    pub expand: Option<String>,
    /// $apply: aggregation and grouping
    #[arg(long, value_name = "EXPR")]
    pub apply: Option<String>,
    /// At most this many rows in all ($top)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub top: Option<u32>,
    /// Rows per page (Prefer: odata.maxpagesize)
    #[arg(
        long = "page-size",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE_SIZE))
    )]
    pub page_size: Option<u32>,
    /// Ask for the total count ($count=true)
    #[arg(long)]
    pub count: bool,
    /// Follow every page (rows stream out page by page)
    #[arg(long)]
    pub all: bool,
    /// Stop after this many rows (with --all)
    #[arg(long = "max-rows", value_name = "N", requires = "all")]
    pub max_rows: Option<u64>,
}

/// `--data`: inline JSON, `@FILE`, or `-` for standard input.
#[derive(Args, Debug)]
pub struct Data {
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub data: String,
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// The profiles and which one is the default
    List,
    /// One profile's settings, secrets masked
    Show { name: String },
}

fn parse_method(text: &str) -> Result<Method, String> {
    text.parse::<Method>()
}

impl Global {
    pub fn output(&self) -> Output {
        match (self.json, self.output) {
            (true, _) => Output::Json,
            (false, Some(output)) => output,
            (false, None) => Output::Text,
        }
    }

    pub fn json(&self) -> bool {
        self.output() == Output::Json
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

/// Whether the words ask for JSON, for reporting an error in the arguments
/// themselves (they did not parse, so `Global` is not there to ask).
pub fn wants_json(words: &[String]) -> bool {
    words.iter().enumerate().any(|(i, word)| {
        word == "--json"
            || word == "--output=json"
            || word == "-ojson"
            || ((word == "--output" || word == "-o")
                && words.get(i + 1).is_some_and(|next| next == "json"))
    })
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
        let Command::Query(query) = cli.command else {
            panic!("query")
        };
        assert_eq!(query.top, Some(3));
        assert_eq!(query.select, ["name", "revenue"]);
        // Global options go before or after the command.
        let cli = parse(&["whoami", "--json", "-v"]).unwrap();
        assert!(cli.global.json() && cli.global.verbose);
        // `--` ends the options: a key that starts with a dash.
        let cli = parse(&["get", "accounts", "--", "-odd-key"]).unwrap();
        assert!(matches!(cli.command, Command::Get { key, .. } if key == "-odd-key"));
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

    #[test]
    fn json_is_recognised_in_raw_words() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_json(&words(&["query", "--json"])));
        assert!(wants_json(&words(&["-o", "json", "x"])));
        assert!(wants_json(&words(&["--output=json"])));
        assert!(!wants_json(&words(&["-o", "table", "json"])));
    }
}
