//! /init of the test kernel's guest (ci/kernel/test.sh packs it): mounts
//! /proc, /dev and /tmp, then runs, for each way of selecting the refpage
//! backend (`backend=auto`, `backend=refpage`, `refpage_nr=448`):
//! - `compare backend`, which must print `backend=refpage` (the allocator's
//!   stats name the backend it selected; `verbose=1` prints its config line);
//! - every test binary in /tests (the allocator's contract suite, static);
//! - the C programs in /c under `LD_PRELOAD=/lib/libpattern_alloc.so`, whose
//!   `stats=1` summary must name refpage;
//!
//! and finally `compare`, the side-by-side of the backends. Everything goes to
//! the serial console. The last line is `PATTERN-ALLOC-GUEST: PASS` only if
//! every run exited 0 and saw refpage; test.sh reads that line from the log
//! (QEMU's exit code says nothing: the guest always reboots).

use std::ffi::CString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const CONFIGS: [&str; 3] = ["backend=auto", "backend=refpage", "refpage_nr=448"];
const PASS: &str = "PATTERN-ALLOC-GUEST: PASS";
const FAIL: &str = "PATTERN-ALLOC-GUEST: FAIL";
/// C programs and their arguments (allocator-tests/c, built by test.sh).
const C_PROGRAMS: [(&str, &[&str]); 3] = [("contents", &[]), ("fork", &["20"]), ("threads", &["4000", "2"])];

fn mount(source: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| CString::new(s).unwrap();
    let rc = unsafe { libc::mount(c(source).as_ptr(), c(target).as_ptr(), c(fstype).as_ptr(), 0, core::ptr::null()) };
    if rc != 0 {
        println!("init: mount {fstype} on {target}: {}", std::io::Error::last_os_error());
    }
}

fn finish(failures: &[String]) -> ! {
    if failures.is_empty() {
        println!("{PASS}");
    } else {
        for failure in failures {
            println!("init: failed: {failure}");
        }
        println!("{FAIL} ({} failed)", failures.len());
    }
    let _ = std::io::stdout().flush();
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    // reboot only returns on error; pid 1 exiting panics the kernel, which
    // (panic=-1, -no-reboot) ends QEMU as well.
    std::process::exit(1)
}

fn sorted_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(e) => {
            println!("init: {dir}: {e}");
            Vec::new()
        }
    };
    files.sort();
    files
}

/// A command for `program` with a clean environment (nothing from the
/// kernel's command line), before any variable of the run's own is set.
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", "/bin").env("HOME", "/").env("TMPDIR", "/tmp").stdin(Stdio::null());
    cmd
}

struct Runner {
    failures: Vec<String>,
}

impl Runner {
    /// Runs `cmd` with its output shown on the console as it comes (when
    /// `capture` is false) or after it ends; returns its stdout and stderr.
    fn run(&mut self, what: &str, mut cmd: Command, capture: bool) -> Option<(String, String)> {
        println!("init: ==== {what}");
        let _ = std::io::stdout().flush();
        let start = Instant::now();
        let result = if capture {
            cmd.output().map(|out| {
                let (stdout, stderr) = (
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                );
                print!("{stdout}{stderr}");
                (out.status, stdout, stderr)
            })
        } else {
            cmd.status().map(|status| (status, String::new(), String::new()))
        };
        let seconds = start.elapsed().as_secs_f64();
        match result {
            Ok((status, stdout, stderr)) if status.success() => {
                println!("init: ok ({seconds:.1} s): {what}");
                Some((stdout, stderr))
            }
            Ok((status, ..)) => {
                println!("init: FAILED ({seconds:.1} s, {status}): {what}");
                self.failures.push(format!("{what}: {status}"));
                None
            }
            Err(e) => {
                println!("init: FAILED to start: {what}: {e}");
                self.failures.push(format!("{what}: {e}"));
                None
            }
        }
    }

    fn require(&mut self, ok: bool, what: String) {
        if ok {
            println!("init: ok: {what}");
        } else {
            println!("init: FAILED: {what}");
            self.failures.push(what);
        }
    }
}

fn main() {
    let boot = Instant::now();
    mount("proc", "/proc", "proc");
    mount("devtmpfs", "/dev", "devtmpfs");
    mount("tmpfs", "/tmp", "tmpfs");
    let version = std::fs::read_to_string("/proc/version").unwrap_or_default();
    println!("init: {}", version.trim());
    let mut runner = Runner { failures: Vec::new() };
    let tests = sorted_files("/tests");
    if tests.is_empty() {
        runner.failures.push("no test binaries in /tests".into());
    }
    for config in CONFIGS {
        // The selection itself, as the allocator's stats report it.
        let options = format!("{config}:verbose=1");
        let mut cmd = command("/bin/compare");
        cmd.arg("backend").env("PATTERN_ALLOC", &options);
        let what = format!("backend check with PATTERN_ALLOC={options}");
        if let Some((stdout, stderr)) = runner.run(&what, cmd, true) {
            // verbose=1's config line shows the options arrived.
            let applied = stderr.lines().any(|l| l.starts_with("pattern-alloc: config ") && l.contains(config));
            runner.require(applied, format!("the allocator read PATTERN_ALLOC={options}"));
            let selected = stdout.lines().any(|l| l == "backend=refpage");
            runner.require(selected, format!("{config} selects refpage"));
        }
        for test in &tests {
            let name = test.file_name().unwrap().to_string_lossy();
            let mut cmd = command(test);
            cmd.env("PATTERN_ALLOC", config);
            runner.run(&format!("{name} with PATTERN_ALLOC={config}"), cmd, false);
        }
        for (program, args) in C_PROGRAMS {
            let path = Path::new("/c").join(program);
            let options = format!("{config}:stats=1");
            let mut cmd = command(&path);
            cmd.args(args)
                .env("PATTERN_ALLOC", &options)
                .env("LD_PRELOAD", "/lib/libpattern_alloc.so")
                .env("PA_LIB", "/lib/libpattern_alloc.so")
                .env("EXPECT_FILL", "0xaa");
            let what = format!("C {program} {args:?} under LD_PRELOAD with PATTERN_ALLOC={options}");
            if let Some((_, stderr)) = runner.run(&what, cmd, true) {
                let selected = stderr.lines().any(|l| l.starts_with("pattern-alloc: stats backend=refpage "));
                runner.require(selected, format!("C {program} with {config}: stats name refpage"));
            }
        }
    }
    runner.run("compare (refpage vs memfd vs eager, 64 MiB)", command("/bin/compare"), false);
    println!("init: guest time {:.1} s", boot.elapsed().as_secs_f64());
    finish(&runner.failures)
}
