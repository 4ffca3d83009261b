//! Runs one measurement: the copies of a workload under one allocator, timed
//! by wall clock and by the kernel's accounting of the children (wait4).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::allocators::{Allocator, MODE_VARIABLES};
use crate::workloads::Invocation;

/// What one measurement gave.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// Largest ru_maxrss among the copies, KiB.
    pub max_rss_kib: u64,
    /// "ok", or what went wrong (exit status, signal, timeout) and the first stderr line.
    pub status: String,
    /// Stdout of the first copy (only kept when asked for).
    pub stdout: String,
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

fn describe(status: i32) -> Option<String> {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => None,
            code => Some(format!("exit {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        Some(format!("signal {}", libc::WTERMSIG(status)))
    } else {
        Some(format!("wait status {status:#x}"))
    }
}

/// Runs all `copies` at once under `allocator` (preloading `preload`) and
/// waits for all of them. `scratch` is a directory for their stderr.
pub fn measure(
    copies: &[Invocation],
    allocator: &Allocator,
    preload: Option<&Path>,
    scratch: &Path,
    limit: Duration,
    keep_stdout: bool,
) -> Measured {
    let started = Instant::now();
    let mut children = Vec::new();
    let mut err_files: Vec<PathBuf> = Vec::new();
    let mut failure: Option<String> = None;
    for (i, inv) in copies.iter().enumerate() {
        let err_path = scratch.join(format!("child-{i}.err"));
        let err = match File::create(&err_path) {
            Ok(f) => f,
            Err(e) => {
                failure = Some(format!("cannot create {}: {e}", err_path.display()));
                break;
            }
        };
        let mut cmd = Command::new(&inv.program);
        cmd.args(&inv.args);
        for var in MODE_VARIABLES {
            cmd.env_remove(var);
        }
        if let Some(lib) = preload {
            cmd.env("LD_PRELOAD", lib);
        }
        for (k, v) in allocator.env {
            cmd.env(k, v);
        }
        cmd.stdin(if inv.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(if keep_stdout && i == 0 { Stdio::piped() } else { Stdio::null() });
        cmd.stderr(err);
        match cmd.spawn() {
            Ok(mut child) => {
                if let (Some(text), Some(mut pipe)) = (&inv.stdin, child.stdin.take()) {
                    // The script is small: it fits the pipe, or the child reads it as we write.
                    let _ = pipe.write_all(text.as_bytes());
                }
                err_files.push(err_path);
                children.push(child);
            }
            Err(e) => {
                failure = Some(format!("cannot start {}: {e}", inv.program.display()));
                break;
            }
        }
    }

    let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watch_pids = pids.clone();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            for pid in watch_pids {
                // SAFETY: kill has no memory preconditions; these are our unreaped children.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            return true;
        }
        false
    });

    let mut out = Measured::default();
    if let Some(child) = children.first_mut() {
        if let Some(mut pipe) = child.stdout.take() {
            let _ = pipe.read_to_string(&mut out.stdout);
        }
    }
    for pid in &pids {
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid value; wait4 writes both out-parameters.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = unsafe { libc::wait4(*pid, &mut status, 0, &mut usage) };
        if reaped != *pid {
            failure.get_or_insert_with(|| format!("wait4 failed: {}", std::io::Error::last_os_error()));
            continue;
        }
        out.user_s += seconds(usage.ru_utime);
        out.sys_s += seconds(usage.ru_stime);
        out.max_rss_kib = out.max_rss_kib.max(usage.ru_maxrss as u64);
        if let Some(what) = describe(status) {
            failure.get_or_insert(what);
        }
    }
    out.wall_s = started.elapsed().as_secs_f64();
    let _ = done_tx.send(());
    if watchdog.join().unwrap_or(false) {
        failure = Some(format!("timeout after {} s", limit.as_secs()));
    }
    out.status = match failure {
        None => "ok".into(),
        Some(what) => {
            let first_line = err_files
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .flat_map(|s| s.lines().map(str::to_owned).collect::<Vec<_>>())
                .find(|l| !l.trim().is_empty());
            match first_line {
                Some(line) => format!("{what}: {}", line.chars().take(160).collect::<String>()),
                None => what,
            }
        }
    };
    out
}
