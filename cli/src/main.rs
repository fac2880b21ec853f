//! `dataverse-cli.wasm`: the CLI as a WASI command component (world
//! `command`). Any host with `wasi:cli` and `wasi:http` runs it:
//!
//! ```text
//! wasmtime run -S http --env DATAVERSE_CONNECTION dataverse-cli.wasm query accounts --select name --top 3
//! ```
//!
//! The commands, flags, output formats and exit codes are the native CLI's,
//! from the same command layer (this crate's library); the core runs in
//! this guest, so a run is one process: discovery, a token, the call.

#[cfg(target_arch = "wasm32")]
mod guest;

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        world: "command",
        path: "../wit",
        generate_all,
    });
}

/// The command line of the command component: the shared options and
/// commands (the native CLI adds its host-only ones).
#[derive(clap::Parser, Debug)]
#[command(
    name = "dataverse-cli",
    version,
    about = "Talk to Microsoft Dataverse as an application (server-to-server): \
             the dataverse-wasm CLI as a WASI command",
    after_long_help = dataverse_cli::options::after_help(),
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(flatten)]
    options: dataverse_cli::Options,
    #[command(subcommand)]
    command: dataverse_cli::DataCommand,
}

#[cfg(target_arch = "wasm32")]
fn main() {
    use std::io::Write;

    let words: Vec<String> = std::env::args().collect();
    let code = match dataverse_cli::parse_words_with::<Cli>(command(), &words) {
        Err(code) => code,
        Ok(cli) => {
            let mut backend = guest::GuestBackend::new(&cli.options);
            let run = dataverse_cli::commands::run(&cli.options, cli.command, &mut backend);
            match guest::block_on(run) {
                Ok(_) => dataverse_cli::exit::OK,
                Err(failure) => {
                    dataverse_cli::report(failure, cli.options.verbose, cli.options.json())
                }
            }
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if code != dataverse_cli::exit::OK {
        // Does not return: the host ends the run with this code.
        bindings::wasi::cli::exit::exit_with_code(code);
    }
}

/// The definition, with the examples naming this program.
#[cfg(any(target_arch = "wasm32", test))]
fn command() -> clap::Command {
    use clap::CommandFactory;
    dataverse_cli::options::with_examples_for(Cli::command(), "dataverse-cli")
}

/// Built natively this is only a pointer: the native CLI is `host-test`.
#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "dataverse-cli is a WASI command: build it with `cargo build -p dataverse-cli \
         --target wasm32-wasip2 --release` and run it with `wasmtime run -S http`; \
         the native CLI is host-test"
    );
    std::process::ExitCode::from(dataverse_cli::exit::USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_examples_name_this_program() {
        let mut command = command();
        let help = command
            .find_subcommand_mut("query")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("dataverse-cli query accounts --select name --top 3"),
            "{help}"
        );
        assert!(!help.contains("host-test"), "{help}");
        let parsed: Cli = dataverse_cli::parse_words_with(
            command,
            &["dataverse-cli".into(), "whoami".into(), "--json".into()],
        )
        .unwrap();
        assert!(parsed.options.json());
    }

    #[test]
    fn the_shared_commands_parse_here_too() {
        let cli = Cli::try_parse_from(["dataverse-cli", "query", "accounts", "--top=3", "--json"])
            .unwrap();
        assert!(cli.options.json());
        assert!(matches!(cli.command, dataverse_cli::DataCommand::Query(q) if q.top == Some(3)));
        let host_only = Cli::try_parse_from(["dataverse-cli", "serve"]).unwrap_err();
        assert_eq!(host_only.kind(), clap::error::ErrorKind::InvalidSubcommand);
    }
}
