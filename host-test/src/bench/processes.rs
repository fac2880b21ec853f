//! The processes of the cold-process bench: the fake server it starts (and
//! always stops), each measured run (wall time to exit, peak RSS, through
//! `dataverse-measure`), and the private folder their files live in
//! (always removed).

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Variables that would send a child's requests elsewhere than the fake.
const PROXY_VARIABLES: [&str; 8] = dataverse_host::proxy::VARIABLES;

/// `command` with no proxy and no connection of the user's in view.
pub fn isolated(program: &Path) -> Command {
    let mut command = Command::new(program);
    for name in PROXY_VARIABLES {
        command.env_remove(name);
    }
    command
        .env_remove("DATAVERSE_CONNECTION")
        .env_remove("DATAVERSE_CONNECTION_FILE")
        .env_remove("DATAVERSE_PROFILE");
    command
}

/// `host-test fake-server` in a process of its own, and what its `try:`
/// line says: the `--connect-to` rules, the CA file, the connection file.
/// Dropped, it is stopped with SIGTERM (on which it removes its files),
/// then SIGKILL if it is still there after two seconds.
pub struct FakeServer {
    child: Child,
    /// Kept open: the server may still write to it.
    _stdout: Lines<BufReader<ChildStdout>>,
    pub connect_to: Vec<String>,
    pub ca: PathBuf,
    pub connection_file: PathBuf,
}

impl FakeServer {
    pub fn start(cli: &Path) -> Result<FakeServer, String> {
        let mut child = isolated(cli)
            .args(["fake-server", "--seconds", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {} fake-server: {e}", cli.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = FakeServer {
            child,
            _stdout: BufReader::new(stdout).lines(),
            connect_to: Vec::new(),
            ca: PathBuf::new(),
            connection_file: PathBuf::new(),
        };
        let try_line = loop {
            match server._stdout.next() {
                Some(Ok(line)) if line.starts_with("try: ") => break line,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("reading the fake server's output: {e}")),
                None => return Err("the fake server exited before saying where it is".into()),
            }
        };
        let mut words = try_line.split_whitespace();
        while let Some(word) = words.next() {
            match word {
                "--connect-to" => server.connect_to.extend(words.next().map(str::to_string)),
                "--cacert" => server.ca = words.next().unwrap_or_default().into(),
                _ => {
                    if let Some(file) = word.strip_prefix('@') {
                        server.connection_file = file.into();
                    }
                }
            }
        }
        if server.connect_to.is_empty()
            || server.ca.as_os_str().is_empty()
            || server.connection_file.as_os_str().is_empty()
        {
            return Err(format!("unexpected fake server line: {try_line}"));
        }
        Ok(server)
    }
}

impl FakeServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The folder of its files, which it removes when stopped.
    pub fn files(&self) -> &Path {
        self.connection_file.parent().unwrap_or(Path::new(""))
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        terminate(&self.child);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn terminate(child: &Child) {
    // SAFETY: kill(2) on our own child, which has not been waited for.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {}

/// A private temporary folder, removed with everything in it when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Result<TempDir, String> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One finished run.
pub struct Run {
    /// From the spawn to the exit.
    pub wall_ms: f64,
    /// The process's own peak resident set (`ru_maxrss`), in KiB.
    pub peak_rss_kib: u64,
    pub stdout: String,
}

/// Runs processes through `dataverse-measure` (see there why), which
/// writes each one's figures to `report`. A hung run is not watched for:
/// both programs end on their own deadlines (the CLI's per-call deadline,
/// the floor's global timeout).
pub struct Measurer {
    pub program: PathBuf,
    pub report: PathBuf,
}

impl Measurer {
    /// Runs `command` (its program, arguments and environment) to its
    /// exit; a failed run is an error with its stderr.
    pub fn run(&self, command: &Command) -> Result<Run, String> {
        let name = command.get_program().to_string_lossy().into_owned();
        let mut measured = Command::new(&self.program);
        measured
            .arg(&self.report)
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::null());
        for (variable, value) in command.get_envs() {
            match value {
                Some(value) => measured.env(variable, value),
                None => measured.env_remove(variable),
            };
        }
        let _ = std::fs::remove_file(&self.report);
        let output = measured
            .output()
            .map_err(|e| format!("{}: {e}", self.program.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{name} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let report = std::fs::read_to_string(&self.report)
            .map_err(|e| format!("{}: {e}", self.report.display()))?;
        let figure = |key: &str| {
            report
                .lines()
                .find_map(|line| line.strip_prefix(key)?.trim().parse::<f64>().ok())
                .ok_or_else(|| format!("no {key} in the report of {name}"))
        };
        Ok(Run {
            wall_ms: figure("wall_ms ")?,
            peak_rss_kib: figure("peak_rss_kib ")? as u64,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        })
    }
}
