//! The flags and commands every front end shares, declared once: parsing,
//! `--help`, shell completions and the man page all come from these
//! definitions (the native CLI flattens them into its own, beside its
//! host-only commands).
//!
//! Checks that need no network live here too (`--top 0`, `--page-size
//! 9000`, an unknown method, `--suppress-duplicate-detection maybe`), so a
//! mistake is reported before tenant discovery and a token request.

use clap::{Args, Subcommand, ValueEnum};
use dataverse_wasm::http::Method;
use dataverse_wasm::webapi::query::MAX_PAGE_SIZE;

/// After every `--help`: where the connection string comes from, and the
/// exit codes.
pub fn after_help() -> String {
    format!(
        "Connection string: --connection STR|@FILE, --profile NAME, $DATAVERSE_CONNECTION, \
         $DATAVERSE_CONNECTION_FILE, or the default profile of ~/.config/dataverse/config.toml \
         (first found wins). A value may be ${{env:NAME}} or ${{file:PATH}}, so a secret never \
         needs to be on the command line.\n\n{}",
        crate::exit::help_text()
    )
}

/// Options every front end takes (the native CLI adds its network and
/// component options to these).
#[derive(Args, Debug, Default, Clone)]
pub struct Options {
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
    /// Sign certificate assertions with PS256 + x5t#S256 (default RS256 + x5t)
    #[arg(long, global = true, help_heading = "Connection")]
    pub ps256: bool,
    /// Send the certificate chain (x5c), for subject-name/issuer registrations
    #[arg(long = "send-chain", global = true, help_heading = "Connection")]
    pub send_chain: bool,
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
    /// Error details and each call's request id; the native CLI also logs each HTTP
    /// exchange (method, host, path, status, ms, attempt; never headers or bodies)
    #[arg(long, short = 'v', global = true, help_heading = "Output")]
    pub verbose: bool,
    /// No row counts, hints or progress on stderr (errors still print)
    #[arg(long, short = 'q', global = true, help_heading = "Output")]
    pub quiet: bool,

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

/// The commands every front end has: the calls to Dataverse, and the
/// connection profiles.
#[derive(Subcommand, Debug, Clone)]
pub enum DataCommand {
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
    /// Delete the rows whose keys a file lists (one per line), in batches
    #[command(
        name = "delete-multiple",
        after_help = "An elastic table gets DeleteMultiple, a standard table a $batch of DELETEs per \
        batch; a row already gone counts as deleted. The exit code is 4 when any batch failed \
        (each is named with its lines and error).\n\nExample:\n  host-test delete-multiple accounts ids.txt --batch-size 500"
    )]
    DeleteMultiple {
        /// The table: entity set or logical name
        table: String,
        /// Keys, one per line: GUIDs or alternate keys such as accountnumber='A-1'
        file: String,
        /// Rows per request (1..=1000)
        #[arg(long = "batch-size", value_name = "N", default_value_t = 100)]
        batch_size: usize,
        /// Requests at a time: auto (the org's x-ms-dop-hint) or 1..=52
        #[arg(long, value_name = "auto|N", default_value = "auto", value_parser = parse_parallel)]
        parallel: Parallel,
    },
    /// Upload a file to a file or image column, in chunks
    #[command(
        after_help = "The file goes in chunks of Dataverse's x-ms-chunk-size (at most 4 MiB); the \
        component holds one chunk at a time.\n\nExample:\n  host-test upload accounts <id> sample_filecolumn report.pdf"
    )]
    Upload {
        entity_set: String,
        key: String,
        /// The file or image column's logical name
        column: String,
        /// The file to upload
        file: String,
        /// The name Dataverse keeps (default: the file's own name)
        #[arg(long = "file-name", value_name = "NAME")]
        file_name: Option<String>,
    },
    /// Download a file or image column's file, in chunks
    #[command(
        after_help = "Example:\n  host-test download accounts <id> sample_filecolumn --out report.pdf"
    )]
    Download {
        entity_set: String,
        key: String,
        /// The file or image column's logical name
        column: String,
        /// Where to write it (- for standard output)
        #[arg(long, value_name = "FILE")]
        out: String,
    },
    /// Every row of an entity set as NDJSON; with --delta, what changed since the last run
    #[command(
        after_help = "With --delta STATE the read ends with a delta link, kept in STATE; the next run \
        prints only the rows created or updated since, and the deleted ones as \
        {\"@odata.context\":\"…$deletedEntity\",\"id\":…,\"reason\":\"deleted\"}. STATE is \
        replaced only after the last page is printed.\n\n\
        Example:\n  host-test export accounts --select name,accountnumber --delta accounts.delta"
    )]
    Export(ExportArgs),
    /// Rows of an NDJSON or CSV file into a table, in bulk; resumable
    #[command(
        after_help = "Rows go through CreateMultiple (each created row gets a primary key derived from the \
        import, so a killed import resumes from its checkpoint without writing a row twice), or \
        UpsertMultiple by the --upsert-key columns. Rows Dataverse refuses go to the rejects file \
        (NDJSON: row number from 0, error, row); the exit code is 4 when there are any.\n\n\
        Examples:\n  host-test import accounts accounts.ndjson --batch-size 200\n  \
        host-test import account accounts.csv --upsert-key accountnumber --parallel 4"
    )]
    Import(ImportArgs),
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
    /// Named connection profiles (~/.config/dataverse/config.toml)
    #[command(subcommand, after_help = "Example:\n  host-test profile list")]
    Profile(ProfileCommand),
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The entity set (plural) name, e.g. accounts
    pub entity_set: String,
    /// Columns, comma-separated ($select)
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,
    /// Rows per page (at most 5000)
    #[arg(long = "page-size", value_name = "N")]
    pub page_size: Option<u32>,
    /// Keep the delta link in this file and start from it next time
    #[arg(long, value_name = "STATE")]
    pub delta: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The table: entity set (accounts) or logical name (account)
    pub table: String,
    /// NDJSON (one JSON object per line) or CSV (a header line; .csv)
    pub file: String,
    /// The file's format (default: from its extension)
    #[arg(long, value_enum)]
    pub format: Option<crate::import::source::Format>,
    /// Upsert by this alternate key (columns, comma-separated) instead of creating
    #[arg(long = "upsert-key", value_delimiter = ',', value_name = "COLUMNS")]
    pub upsert_key: Vec<String>,
    /// Rows per request (1..=1000)
    #[arg(long = "batch-size", value_name = "N", default_value_t = 100)]
    pub batch_size: usize,
    /// Requests at a time: auto (the org's x-ms-dop-hint) or 1..=52
    #[arg(long, value_name = "auto|N", default_value = "auto", value_parser = parse_parallel)]
    pub parallel: Parallel,
    /// The checkpoint file (default: FILE.checkpoint)
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<String>,
    /// Where refused rows go (default: FILE.rejects.ndjson)
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<String>,
}

/// `--parallel`: `None` for auto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallel(pub Option<u32>);

fn parse_parallel(text: &str) -> Result<Parallel, String> {
    if text == "auto" {
        return Ok(Parallel(None));
    }
    let max = dataverse_wasm::webapi::bulk::MAX_PARALLEL;
    match text.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Parallel(Some(n))),
        _ => Err(format!("expected auto or 1..={max}")),
    }
}

#[derive(Args, Debug, Clone)]
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
#[derive(Args, Debug, Clone)]
pub struct Data {
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub data: String,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ProfileCommand {
    /// The profiles and which one is the default
    List,
    /// One profile's settings, secrets masked
    Show { name: String },
}

impl Options {
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
}

/// Whether the words ask for JSON, for reporting an error in the arguments
/// themselves (they did not parse, so `Options` is not there to ask).
pub fn wants_json(words: &[String]) -> bool {
    words.iter().enumerate().any(|(i, word)| {
        word == "--json"
            || word == "--output=json"
            || word == "-ojson"
            || ((word == "--output" || word == "-o")
                && words.get(i + 1).is_some_and(|next| next == "json"))
    })
}

fn parse_method(text: &str) -> Result<Method, String> {
    text.parse::<Method>()
}

/// `command` with the program in every subcommand's examples renamed from
/// the native CLI's `host-test` to `program` (the command component's
/// examples must be runnable as shown).
pub fn with_examples_for(mut command: clap::Command, program: &str) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .collect();
    for name in names {
        command = command.mut_subcommand(&name, |sub| {
            match sub.get_after_help().map(|help| help.to_string()) {
                Some(help) => sub.after_help(help.replace("host-test ", &format!("{program} "))),
                None => sub,
            }
        });
    }
    command
}
