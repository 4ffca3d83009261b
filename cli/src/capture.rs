//! One run of the hunted command: preloaded, stdin replayed from memory,
//! stdout and stderr captured, optionally under a time limit. The run gets a
//! process group of its own so a timeout kills its children too.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{library, signals};

/// Every line the library writes starts with this.
pub const LIBRARY_PREFIX: &[u8] = b"pattern-alloc: ";
/// The `verbose=1` line: proof that the library was loaded and initialized.
const CONFIG_LINE: &[u8] = b"pattern-alloc: config ";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
}

impl Status {
    pub fn describe(self) -> String {
        match self {
            Status::Exited(code) => format!("exit {code}"),
            Status::Signaled(signal) => format!("killed by {}", signals::name(signal)),
            Status::TimedOut(limit) => format!("timed out after {} s", limit.as_secs_f64()),
        }
    }
}

pub struct Outcome {
    pub stdout: Vec<u8>,
    /// The command's own stderr: the library's lines taken out.
    pub stderr: Vec<u8>,
    /// The library's lines (crash reports, warnings), for the report; they
    /// hold addresses that differ from run to run, so they are not compared.
    pub library_lines: Vec<String>,
    pub status: Status,
    pub elapsed: Duration,
    /// Whether any process of the run initialized the library.
    pub loaded: bool,
}

pub struct Target<'a> {
    pub command: &'a [OsString],
    pub library: &'a Path,
    /// None: stdin is /dev/null.
    pub stdin: Option<Arc<Vec<u8>>>,
}

impl Target<'_> {
    pub fn run(&self, options: &str, limit: Option<Duration>) -> Result<Outcome, String> {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]);
        library::preload(&mut command, self.library, options);
        command
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let started = Instant::now();
        let mut child =
            command.spawn().map_err(|e| format!("cannot run {}: {e}", self.command[0].to_string_lossy()))?;
        let group = child.id() as i32;
        signals::set_running(group);
        if let (Some(data), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // A command that stops reading early closes the pipe: not an error.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait());
        });
        let mut timed_out = None;
        let waited = match limit {
            None => receiver.recv().map_err(|_| "lost the command's exit status".to_string())?,
            Some(limit) => match receiver.recv_timeout(limit) {
                Ok(waited) => waited,
                Err(_) => {
                    // SAFETY: kill has no memory-safety preconditions; the
                    // child is not reaped yet, so the group id is still its.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                    timed_out = Some(limit);
                    receiver.recv().map_err(|_| "lost the command's exit status".to_string())?
                }
            },
        };
        let exit = waited.map_err(|e| format!("waiting for the command: {e}"))?;
        let elapsed = started.elapsed();
        if timed_out.is_some() {
            // Children that outlived it may still hold the pipes open.
            // SAFETY: as above; the group outlives its leader while members remain.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        signals::set_running(0);
        let stdout = stdout.join().unwrap_or_default();
        let raw_stderr = stderr.join().unwrap_or_default();
        let status = match (timed_out, exit.code(), exit.signal()) {
            (Some(limit), _, _) => Status::TimedOut(limit),
            (None, Some(code), _) => Status::Exited(code),
            (None, None, Some(signal)) => Status::Signaled(signal),
            (None, None, None) => return Err(format!("unexpected wait status {exit}")),
        };
        let (stderr, library_lines, loaded) = split_library_lines(&raw_stderr);
        Ok(Outcome { stdout, stderr, library_lines, status, elapsed, loaded })
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Separates the library's lines from the command's stderr.
fn split_library_lines(raw: &[u8]) -> (Vec<u8>, Vec<String>, bool) {
    let mut own = Vec::with_capacity(raw.len());
    let mut library_lines = Vec::new();
    let mut loaded = false;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(CONFIG_LINE) {
            loaded = true;
        } else if line.starts_with(LIBRARY_PREFIX) {
            library_lines.push(String::from_utf8_lossy(line).trim_end().to_string());
        } else {
            own.extend_from_slice(line);
        }
    }
    (own, library_lines, loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_lines_are_taken_out_of_stderr() {
        let raw = b"pattern-alloc: config fill=0xaa\nwarning: x\npattern-alloc: SIGSEGV at 0x0\nlast";
        let (own, lines, loaded) = split_library_lines(raw);
        assert_eq!(own, b"warning: x\nlast");
        assert_eq!(lines, vec!["pattern-alloc: SIGSEGV at 0x0".to_string()]);
        assert!(loaded);
    }
}
