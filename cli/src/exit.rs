//! The exit codes, from the one table the CLI, the Node example and the
//! README share (`docs/exit-codes.json`): a script that branches on them
//! gets the same answer from every front end.

use std::sync::OnceLock;

use serde::Deserialize;

// The codes the CLI names itself; the others come from an error's kind.
pub const OK: u8 = 0;
pub const HOST: u8 = 1;
pub const USAGE: u8 = 2;
pub const DATAVERSE: u8 = 4;

const TABLE_JSON: &str = include_str!("../../docs/exit-codes.json");

/// One row of the table.
#[derive(Debug, Deserialize)]
pub struct Exit {
    pub code: u8,
    pub name: String,
    pub meaning: String,
    /// The error kinds (WIT `error-kind` cases, or `usage` / `host`) that
    /// end with this code.
    pub kinds: Vec<String>,
}

pub fn table() -> &'static [Exit] {
    static TABLE: OnceLock<Vec<Exit>> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(TABLE_JSON).expect("docs/exit-codes.json is checked by a unit test")
    })
}

/// The code an error kind ends with; an unknown kind is a host failure.
pub fn for_kind(kind: &str) -> u8 {
    table()
        .iter()
        .find(|row| row.kinds.iter().any(|k| k == kind))
        .map_or(HOST, |row| row.code)
}

/// The table for `--help`: one entry per code, wrapped to 96 columns with
/// the meaning indented under itself.
pub fn help_text() -> String {
    const WIDTH: usize = 96;
    const INDENT: usize = 22;
    let mut text = String::from("Exit codes:\n");
    for row in table() {
        let mut line = format!("  {}  {:<15} ", row.code, row.name);
        for word in row.meaning.replace('`', "").split_whitespace() {
            if line.len() + word.len() + 1 > WIDTH {
                text.push_str(line.trim_end());
                text.push('\n');
                line = " ".repeat(INDENT);
            }
            line.push_str(word);
            line.push(' ');
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The table as the README prints it (a test checks the README holds it).
#[cfg(test)]
pub fn markdown() -> String {
    let mut text = String::from(
        "| code | name | meaning | error kinds (`--json`'s `kind`) |\n|---|---|---|---|\n",
    );
    for row in table() {
        let kinds: Vec<String> = row.kinds.iter().map(|k| format!("`{k}`")).collect();
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.code,
            row.name,
            row.meaning,
            kinds.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_matches_the_constants() {
        let codes: Vec<u8> = table().iter().map(|row| row.code).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
        assert_eq!(for_kind("host"), HOST);
        assert_eq!(for_kind("usage"), USAGE);
        assert_eq!(for_kind("invalid-request"), USAGE);
        assert_eq!(for_kind("authority"), 3);
        assert_eq!(for_kind("invalid-response"), DATAVERSE);
        assert_eq!(for_kind("throttled"), DATAVERSE);
        assert_eq!(for_kind("transport"), 5);
        assert_eq!(for_kind("no-such-kind"), HOST);
    }

    #[test]
    fn every_kind_has_exactly_one_code() {
        let mut seen = std::collections::HashSet::new();
        for row in table() {
            for kind in &row.kinds {
                assert!(seen.insert(kind.clone()), "{kind} is listed twice");
            }
        }
    }

    #[test]
    fn the_readme_holds_the_table() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&markdown()),
            "README.md must contain exactly:\n{}",
            markdown()
        );
    }
}
