//! Where the connection string comes from, in this order: `--connection
//! STR|@FILE`, `--profile NAME` (or `$DATAVERSE_PROFILE`),
//! `$DATAVERSE_CONNECTION`, `$DATAVERSE_CONNECTION_FILE`, the config file's
//! default profile. Inside the string, a value may be `${env:NAME}` or
//! `${file:PATH}`, so a secret can live in a secret store's environment
//! variable or mounted file instead of a command line, a shell history or a
//! config file.
//!
//! Pure functions over a lookup of environment variables and a file reader,
//! so the tests run without touching the process's environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where a setting was found, for messages (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    FlagFile(PathBuf),
    Profile(String),
    Env,
    EnvFile(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => write!(f, "--connection"),
            Origin::FlagFile(path) => write!(f, "--connection @{}", path.display()),
            Origin::Profile(name) => write!(f, "profile '{name}'"),
            Origin::Env => write!(f, "$DATAVERSE_CONNECTION"),
            Origin::EnvFile(path) => write!(f, "$DATAVERSE_CONNECTION_FILE ({})", path.display()),
        }
    }
}

/// A connection string ready for the component: references resolved.
pub struct Resolved {
    pub connection: String,
    pub origin: Origin,
    /// Things the user should know (a file others can read, a secret on
    /// the command line); printed on stderr, never holding a secret.
    pub warnings: Vec<String>,
}

/// What the process can see: environment variables and files.
pub trait World {
    fn var(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The permission bits of a file (Unix), when known.
    fn mode(&self, path: &Path) -> Option<u32>;
}

/// The real process environment and file system.
pub struct Process;

impl World for Process {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    #[cfg(unix)]
    fn mode(&self, path: &Path) -> Option<u32> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }

    #[cfg(not(unix))]
    fn mode(&self, _path: &Path) -> Option<u32> {
        None
    }
}

/// The config file: `default = "NAME"` and `[profiles.NAME] connection = "…"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub default: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub connection: String,
}

/// `$DATAVERSE_CONFIG`, else `$XDG_CONFIG_HOME/dataverse/config.toml`, else
/// `~/.config/dataverse/config.toml`.
pub fn config_path(world: &dyn World) -> Option<PathBuf> {
    if let Some(path) = world.var("DATAVERSE_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = world
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            world
                .var("HOME")
                .map(|home| Path::new(&home).join(".config"))
        })?;
    Some(base.join("dataverse").join("config.toml"))
}

/// The config file, or an empty one when there is none.
pub fn load_config(world: &dyn World) -> Result<(Option<PathBuf>, Config), String> {
    let Some(path) = config_path(world) else {
        return Ok((None, Config::default()));
    };
    match world.read(&path) {
        Ok(text) => {
            let config = toml::from_str(&text)
                .map_err(|e| format!("{}: {}", path.display(), e.message()))?;
            Ok((Some(path), config))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, Config::default())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Finds the connection string (see the module comment).
pub fn resolve(
    world: &dyn World,
    flag: Option<&str>,
    profile: Option<&str>,
) -> Result<Resolved, String> {
    let mut warnings = Vec::new();
    let profile = profile
        .map(str::to_string)
        .or_else(|| world.var("DATAVERSE_PROFILE"));
    if flag.is_some() && profile.is_some() {
        return Err("give --connection or --profile, not both".into());
    }
    let (raw, origin) = if let Some(flag) = flag {
        match flag.strip_prefix('@') {
            Some(path) => {
                let path = PathBuf::from(path);
                (
                    read_private(world, &path, &mut warnings)?,
                    Origin::FlagFile(path),
                )
            }
            None => (flag.to_string(), Origin::Flag),
        }
    } else if let Some(name) = profile {
        (
            profile_connection(world, &name, &mut warnings)?,
            Origin::Profile(name),
        )
    } else if let Some(text) = world.var("DATAVERSE_CONNECTION") {
        (text, Origin::Env)
    } else if let Some(path) = world.var("DATAVERSE_CONNECTION_FILE") {
        let path = PathBuf::from(path);
        (
            read_private(world, &path, &mut warnings)?,
            Origin::EnvFile(path),
        )
    } else {
        let (_, config) = load_config(world)?;
        let Some(name) = config.default else {
            return Err(
                "no connection string: pass --connection STR|@FILE or --profile NAME, or set \
                 DATAVERSE_CONNECTION or DATAVERSE_CONNECTION_FILE (the native CLI's `host-test demo` runs against a built-in fake)"
                    .into(),
            );
        };
        (
            profile_connection(world, &name, &mut warnings)?,
            Origin::Profile(name),
        )
    };
    if origin == Origin::Flag && holds_literal_secret(&raw) {
        warnings.push(
            "--connection holds a secret on the command line (process lists, shell history): \
             use --connection @FILE, DATAVERSE_CONNECTION, or ClientSecret=${env:NAME}"
                .into(),
        );
    }
    let connection = expand_references(world, raw.trim())?;
    Ok(Resolved {
        connection,
        origin,
        warnings,
    })
}

fn profile_connection(
    world: &dyn World,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let (path, config) = load_config(world)?;
    let Some(path) = path else {
        return Err(format!(
            "no profile '{name}': there is no config file ({})",
            config_path(world).map_or("no HOME".into(), |p| p.display().to_string())
        ));
    };
    let profile = config.profiles.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        format!(
            "no profile '{name}' in {} (profiles: {})",
            path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })?;
    if holds_literal_secret(&profile.connection) {
        warn_if_shared(world, &path, warnings);
    }
    Ok(profile.connection.clone())
}

/// Reads a file that holds a connection string, warning when other users
/// can read it.
fn read_private(
    world: &dyn World,
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let text = world
        .read(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    warn_if_shared(world, path, warnings);
    Ok(text)
}

fn warn_if_shared(world: &dyn World, path: &Path, warnings: &mut Vec<String>) {
    if let Some(mode) = world.mode(path)
        && mode & 0o077 != 0
    {
        warnings.push(format!(
            "{} is readable by other users (mode {mode:03o}): chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
}

/// The keys whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "clientsecret",
    "secret",
    "password",
    "certificatepassword",
    "certpassword",
];

/// `KEY=VALUE` pairs as written (good enough to find and mask secrets; the
/// component does the real parsing). Quoted values keep their `;`.
fn pairs(connection: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = connection;
    while !rest.trim().is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(';').trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = match after.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = &after[1..];
                let end = body.find(quote).unwrap_or(body.len());
                let tail = body.get(end + 1..).unwrap_or("");
                (
                    body[..end].to_string(),
                    tail.find(';').map_or("", |i| &tail[i + 1..]),
                )
            }
            _ => match after.find(';') {
                Some(i) => (after[..i].trim().to_string(), &after[i + 1..]),
                None => (after.trim().to_string(), ""),
            },
        };
        out.push((key, value));
        rest = next;
    }
    out
}

fn is_reference(value: &str) -> bool {
    value.starts_with("${") && value.ends_with('}')
}

fn holds_literal_secret(connection: &str) -> bool {
    pairs(connection).iter().any(|(key, value)| {
        SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str())
            && !value.is_empty()
            && !is_reference(value)
    })
}

/// The connection string with secret values masked (references shown, they
/// are not secrets): what `profile show` prints.
pub fn masked(connection: &str) -> String {
    pairs(connection)
        .into_iter()
        .map(|(key, value)| {
            if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) && !is_reference(&value) {
                format!("{key}=****")
            } else {
                format!("{key}={value}")
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The org URL a connection string names (for `profile list`), if any.
pub fn url_of(connection: &str) -> Option<String> {
    const URL_KEYS: &[&str] = &["serviceuri", "service uri", "url", "server"];
    pairs(connection)
        .into_iter()
        .find(|(key, value)| {
            URL_KEYS.contains(&key.to_ascii_lowercase().as_str()) && !value.is_empty()
        })
        .map(|(_, value)| value)
}

/// Replaces each `${env:NAME}` and `${file:PATH}` with what it names. The
/// value is quoted when it holds a character the connection-string grammar
/// gives a meaning to, so a secret cannot change the other settings.
pub fn expand_references(world: &dyn World, connection: &str) -> Result<String, String> {
    let mut out = String::with_capacity(connection.len());
    let mut rest = connection;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "connection string: '${' without a closing '}'".to_string())?;
        let reference = &after[..end];
        let value = match reference.split_once(':') {
            Some(("env", name)) => world.var(name).ok_or_else(|| {
                format!("connection string: ${{env:{name}}}: the variable is not set")
            })?,
            Some(("file", path)) => world
                .read(Path::new(path))
                .map_err(|e| format!("connection string: ${{file:{path}}}: {e}"))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            _ => {
                return Err(format!(
                    "connection string: unknown reference '${{{reference}}}' (use ${{env:NAME}} or ${{file:PATH}})"
                ));
            }
        };
        if value.contains([';', '"', '\'', '=']) || value.trim() != value {
            out.push('"');
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fixture {
        vars: HashMap<String, String>,
        files: HashMap<PathBuf, (String, u32)>,
    }

    impl Fixture {
        fn var(mut self, name: &str, value: &str) -> Self {
            self.vars.insert(name.into(), value.into());
            self
        }
        fn file(mut self, path: &str, text: &str, mode: u32) -> Self {
            self.files.insert(path.into(), (text.into(), mode));
            self
        }
    }

    impl World for Fixture {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.files
                .get(path)
                .map(|(text, _)| text.clone())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
        fn mode(&self, path: &Path) -> Option<u32> {
            self.files.get(path).map(|(_, mode)| *mode)
        }
    }

    const SECRET: &str = "Fk8Q~s3cret.Value";
    const CONFIG: &str = "/home/u/.config/dataverse/config.toml";

    fn conn(secret: &str) -> String {
        format!(
            "AuthType=ClientSecret;Url=https://org.crm.dynamics.com/;ClientId=abc;ClientSecret={secret}"
        )
    }

    #[test]
    fn the_first_source_found_wins() {
        let world = Fixture::default()
            .var("HOME", "/home/u")
            .var("DATAVERSE_CONNECTION", &conn("from-env"))
            .var("DATAVERSE_CONNECTION_FILE", "/run/conn")
            .file("/run/conn", &conn("from-env-file"), 0o600)
            .file("/tmp/flag", &format!("{}\n", conn("from-flag-file")), 0o600)
            .file(
                CONFIG,
                &format!("default = \"dev\"\n[profiles.dev]\nconnection = \"{}\"\n[profiles.prod]\nconnection = \"{}\"\n", conn("${env:DEV}"), conn("${env:PROD}")),
                0o644,
            )
            .var("DEV", "dev-secret")
            .var("PROD", "prod-secret");
        let found =
            |flag, profile| resolve(&world, flag, profile).map(|r| (r.connection, r.origin));
        assert_eq!(
            found(Some("AuthType=X"), None).unwrap(),
            ("AuthType=X".into(), Origin::Flag)
        );
        assert_eq!(
            found(Some("@/tmp/flag"), None).unwrap(),
            (conn("from-flag-file"), Origin::FlagFile("/tmp/flag".into()))
        );
        assert_eq!(
            found(None, Some("prod")).unwrap(),
            (conn("prod-secret"), Origin::Profile("prod".into()))
        );
        assert_eq!(found(None, None).unwrap(), (conn("from-env"), Origin::Env));
        let world = world.var("DATAVERSE_CONNECTION", "");
        let mut world = world;
        world.vars.remove("DATAVERSE_CONNECTION");
        assert_eq!(
            found_in(&world),
            (conn("from-env-file"), Origin::EnvFile("/run/conn".into()))
        );
        world.vars.remove("DATAVERSE_CONNECTION_FILE");
        assert_eq!(
            found_in(&world),
            (conn("dev-secret"), Origin::Profile("dev".into()))
        );
        assert!(resolve(&world, Some("x"), Some("dev")).is_err());
    }

    fn found_in(world: &Fixture) -> (String, Origin) {
        let r = resolve(world, None, None).unwrap();
        (r.connection, r.origin)
    }

    #[test]
    fn nothing_found_says_where_to_put_it() {
        let error = resolve(&Fixture::default().var("HOME", "/h"), None, None)
            .err()
            .unwrap();
        assert!(error.contains("DATAVERSE_CONNECTION"), "{error}");
        assert!(error.contains("--profile"), "{error}");
    }

    #[test]
    fn unknown_profile_lists_the_known_ones_and_bad_toml_is_named() {
        let world = Fixture::default().var("HOME", "/home/u").file(
            CONFIG,
            "[profiles.dev]\nconnection = \"x\"\n",
            0o600,
        );
        let error = resolve(&world, None, Some("prd")).err().unwrap();
        assert!(error.contains("'prd'") && error.contains("dev"), "{error}");
        let world = Fixture::default().var("HOME", "/home/u").file(
            CONFIG,
            "[profiles.dev]\nconection = \"x\"\n",
            0o600,
        );
        let error = resolve(&world, None, Some("dev")).err().unwrap();
        assert!(
            error.contains("config.toml") && error.contains("conection"),
            "{error}"
        );
    }

    #[test]
    fn files_others_can_read_and_secrets_on_argv_are_warned_about() {
        let world = Fixture::default()
            .file("/tmp/open", &conn(SECRET), 0o644)
            .file("/tmp/closed", &conn(SECRET), 0o600);
        let open = resolve(&world, Some("@/tmp/open"), None).unwrap();
        assert_eq!(open.warnings.len(), 1);
        assert!(open.warnings[0].contains("mode 644") && open.warnings[0].contains("chmod 600"));
        assert!(
            resolve(&world, Some("@/tmp/closed"), None)
                .unwrap()
                .warnings
                .is_empty()
        );
        let argv = resolve(&world, Some(&conn(SECRET)), None).unwrap();
        assert_eq!(argv.warnings.len(), 1);
        assert!(!argv.warnings[0].contains(SECRET));
        let argv = resolve(&world.var("S", SECRET), Some(&conn("${env:S}")), None).unwrap();
        assert!(
            argv.warnings.is_empty(),
            "a reference is not a secret on argv"
        );
        assert_eq!(argv.connection, conn(SECRET));
    }

    #[test]
    fn references_resolve_and_cannot_inject_settings() {
        let world = Fixture::default().var("S", "a;TenantId=evil").file(
            "/run/secret",
            "from-file\n",
            0o600,
        );
        assert_eq!(
            expand_references(&world, "ClientSecret=${env:S};Url=u").unwrap(),
            "ClientSecret=\"a;TenantId=evil\";Url=u"
        );
        assert_eq!(
            expand_references(&world, "ClientSecret=${file:/run/secret}").unwrap(),
            "ClientSecret=from-file"
        );
        for bad in ["x=${env:MISSING}", "x=${vault:k}", "x=${env:S"] {
            assert!(expand_references(&world, bad).is_err(), "{bad}");
        }
        // An error names the reference, never a value.
        let error = expand_references(&world, "x=${file:/nope}").unwrap_err();
        assert!(error.contains("/nope"));
    }

    #[test]
    fn masking_hides_every_secret_and_keeps_the_rest() {
        let text = format!(
            "AuthType=Certificate;Url=https://o/;ClientId=id;Thumbprint=AB;CertificatePassword='p;w';ClientSecret={SECRET}"
        );
        let shown = masked(&text);
        assert!(!shown.contains(SECRET) && !shown.contains("p;w"), "{shown}");
        assert!(shown.contains("Thumbprint=AB") && shown.contains("CertificatePassword=****"));
        assert_eq!(masked(&conn("${env:S}")), conn("${env:S}"));
    }
}
