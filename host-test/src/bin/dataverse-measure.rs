//! `dataverse-measure REPORT PROGRAM [ARGS…]`: runs PROGRAM (on this
//! process's standard streams), waits for it, writes its wall time and peak
//! resident set to the file REPORT and exits as it did. The cold-process
//! bench (`src/bench/processes.rs`) runs every measured process through it.
//!
//! Why a process of its own: Linux keeps, in a process's `ru_maxrss`, the
//! high-water mark of the address space it had before its exec, which for
//! a spawned child is its parent's. Spawned by the bench (a wasmtime engine,
//! a tokio runtime), every child would peak at the bench's size; spawned by
//! this one, of about a MiB, the figure is the program's own.

use std::process::ExitCode;

#[cfg(unix)]
fn main() -> ExitCode {
    use std::time::Instant;

    let mut args = std::env::args_os().skip(1);
    let (Some(report), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: dataverse-measure REPORT PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let started = Instant::now();
    let child = match std::process::Command::new(&program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("dataverse-measure: {}: {e}", program.to_string_lossy());
            return ExitCode::from(127);
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4(2) on our own child; it reaps it (`child` is not
        // waited for again).
        if unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            eprintln!("dataverse-measure: wait4: {error}");
            return ExitCode::from(125);
        }
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    // KiB on Linux, bytes on macOS.
    let max_rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    let peak_rss_kib = if cfg!(target_os = "macos") {
        max_rss / 1024
    } else {
        max_rss
    };
    let text = format!("wall_ms {wall_ms:.3}\npeak_rss_kib {peak_rss_kib}\n");
    if let Err(e) = std::fs::write(&report, text) {
        eprintln!("dataverse-measure: {}: {e}", report.to_string_lossy());
        return ExitCode::from(125);
    }
    if libc::WIFEXITED(status) {
        ExitCode::from(libc::WEXITSTATUS(status) as u8)
    } else {
        ExitCode::from(128 + libc::WTERMSIG(status) as u8)
    }
}

#[cfg(not(unix))]
fn main() -> ExitCode {
    eprintln!("dataverse-measure needs wait4 (Linux or another Unix)");
    ExitCode::FAILURE
}
