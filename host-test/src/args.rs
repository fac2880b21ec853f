//! Command-line parsing: positional words, `--flag VALUE` options and
//! `--switch`es, checked against what each command accepts.

/// A usage problem, shown with a pointer to `--help`.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Options that take a value, and how many values.
const VALUED: &[(&str, usize)] = &[
    ("--connection", 1),
    ("--connect-to", 1),
    ("--cacert", 1),
    ("--cert-store", 1),
    ("--component", 1),
    ("--select", 1),
    ("--filter", 1),
    ("--orderby", 1),
    ("--expand", 1),
    ("--apply", 1),
    ("--top", 1),
    ("--page-size", 1),
    ("--max-rows", 1),
    ("--data", 1),
    ("--if-match", 1),
    ("--bound", 2),
    ("--impersonate", 1),
    ("--solution", 1),
    ("--suppress-duplicate-detection", 1),
    ("--annotations", 1),
    ("--request-id", 1),
    ("--max-retries", 1),
    ("--timeout-ms", 1),
    ("--seconds", 1),
    ("--iterations", 1),
    ("--port", 1),
    ("--gateway", 1),
];

const SWITCHES: &[&str] = &[
    "--json",
    "-v",
    "--verbose",
    "-h",
    "--help",
    "--all",
    "--count",
    "--formatted",
    "--return",
    "--create-only",
    "--bypass-plugins",
    "--strong-consistency",
    "--changeset",
    "--continue-on-error",
    "--action",
    "--function",
    "--show-token",
    "--ps256",
    "--send-chain",
];

/// Options every command accepts.
pub const GLOBAL: &[&str] = &[
    "--connection",
    "--connect-to",
    "--cacert",
    "--cert-store",
    "--ps256",
    "--send-chain",
    "--component",
    "--json",
    "-v",
    "--verbose",
    "--impersonate",
    "--bypass-plugins",
    "--suppress-duplicate-detection",
    "--solution",
    "--strong-consistency",
    "--formatted",
    "--annotations",
    "--request-id",
    "--max-retries",
    "--timeout-ms",
];

#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    options: Vec<(String, Vec<String>)>,
}

impl Args {
    pub fn parse(words: impl IntoIterator<Item = String>) -> Result<Args, UsageError> {
        let mut args = Args::default();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            if let Some((_, count)) = VALUED.iter().find(|(name, _)| *name == word) {
                let mut values = Vec::new();
                for _ in 0..*count {
                    let value = words.next().ok_or_else(|| {
                        UsageError(format!(
                            "{word} needs {count} value{}",
                            if *count > 1 { "s" } else { "" }
                        ))
                    })?;
                    values.push(value);
                }
                args.options.push((word, values));
            } else if SWITCHES.contains(&word.as_str()) {
                args.options.push((word, Vec::new()));
            } else if word.starts_with("--") && word.len() > 2 {
                return Err(UsageError(format!("unknown option '{word}'")));
            } else {
                args.positional.push(word);
            }
        }
        Ok(args)
    }

    /// Fails when an option outside `allowed` (and the global ones) was given.
    pub fn only(&self, command: &str, allowed: &[&str]) -> Result<(), UsageError> {
        for (name, _) in &self.options {
            if !GLOBAL.contains(&name.as_str()) && !allowed.contains(&name.as_str()) {
                return Err(UsageError(format!("{name} does not apply to '{command}'")));
            }
        }
        Ok(())
    }

    pub fn switch(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    /// The last value given for `name` (first of its values for multi-value options).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v[0].as_str())
    }

    /// All values of an option that takes several values (`--bound SET KEY`).
    pub fn values_of(&self, name: &str) -> Option<&[String]> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Every occurrence of a repeatable option.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v[0].as_str())
            .collect()
    }

    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, UsageError> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| UsageError(format!("{name} expects a number, got '{v}'")))
            })
            .transpose()
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, UsageError> {
        self.value(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(UsageError(format!(
                    "{name} expects true or false, got '{v}'"
                ))),
            })
            .transpose()
    }

    /// Exactly `names.len()` positional arguments after the command word.
    pub fn positionals<const N: usize>(&self, usage: &str) -> Result<[&str; N], UsageError> {
        let words: Vec<&str> = self.positional.iter().skip(1).map(String::as_str).collect();
        words
            .try_into()
            .map_err(|_| UsageError(format!("usage: host-test {usage}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Args, UsageError> {
        Args::parse(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn options_values_and_positionals_are_separated() {
        let args = parse(&[
            "--json", "get", "accounts", "--select", "name", "A-1", "--bound", "accounts", "k",
        ])
        .unwrap();
        assert_eq!(args.positional, ["get", "accounts", "A-1"]);
        assert!(args.switch("--json"));
        assert_eq!(args.value("--select"), Some("name"));
        assert_eq!(args.values_of("--bound").unwrap(), ["accounts", "k"]);
        let [set, key] = args.positionals::<2>("get ENTITYSET KEY").unwrap();
        assert_eq!((set, key), ("accounts", "A-1"));
    }

    #[test]
    fn bad_usage_is_reported() {
        assert!(parse(&["--select"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        let args = parse(&["delete", "accounts", "x", "--select", "a"]).unwrap();
        assert!(args.only("delete", &["--if-match"]).is_err());
        assert!(args.positionals::<1>("delete ENTITYSET KEY").is_err());
        let args = parse(&["query", "--top", "ten"]).unwrap();
        assert!(args.number::<u32>("--top").is_err());
    }
}
