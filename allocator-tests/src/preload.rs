//! Helpers for the tests that run programs under `LD_PRELOAD=libpattern_alloc.so`
//! (`tests/preload_*.rs`, C and C++ sources in `allocator-tests/c/`).
//!
//! - [`library`]: the preload library of the profile the test was built with,
//!   rebuilt once per test process with `$CARGO build -p pattern-alloc-preload`
//!   so a stale library is never tested (a nested cargo does not wait on the
//!   outer `cargo test`: it holds no lock on the target directory while tests run).
//! - [`c_program`], [`c_library`]: sources of `allocator-tests/c/` compiled
//!   with the system gcc/g++ once per test process.
//! - [`Exec`]: runs a program, preloaded or not, with a time limit; the whole
//!   process group is killed on timeout, so a deadlock fails the test instead
//!   of hanging it.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::Run;

/// The package that builds `libpattern_alloc.so`.
pub const PRELOAD_PACKAGE: &str = "pattern-alloc-preload";

/// How long one program may run before it counts as hung. Generous, because
/// the debug build of the library is much slower than the release one.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(120);

/// Where the running test binary lives: `<target>[/<triple>]/<profile>/deps/<test>`.
#[derive(Debug, Clone)]
pub struct BuildLayout {
    /// The cargo target directory.
    pub target_dir: PathBuf,
    /// `<target>[/<triple>]/<profile>`.
    pub profile_dir: PathBuf,
    /// The profile directory's name: `debug`, `release`, or a custom profile.
    pub profile: String,
    /// Set when the tests were built with `--target <triple>`.
    pub triple: Option<String>,
}

impl BuildLayout {
    /// The cargo arguments that select this profile and target.
    pub fn cargo_args(&self) -> Vec<String> {
        let mut args = match self.profile.as_str() {
            "debug" => vec![],
            "release" => vec!["--release".to_string()],
            other => vec!["--profile".to_string(), other.to_string()],
        };
        if let Some(triple) = &self.triple {
            args.extend(["--target".to_string(), triple.clone()]);
        }
        args
    }

    /// The command that builds the library, as a user would type it.
    pub fn build_command(&self) -> String {
        let mut words = vec!["cargo".to_string(), "build".to_string(), "-p".to_string(), PRELOAD_PACKAGE.to_string()];
        words.extend(self.cargo_args());
        words.join(" ")
    }
}

/// Derives the build layout from `std::env::current_exe()`.
pub fn build_layout() -> &'static BuildLayout {
    static LAYOUT: OnceLock<BuildLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("the test binary has a directory");
        assert!(
            deps.file_name() == Some(OsStr::new("deps")),
            "the test binary {} is not in <target>/<profile>/deps/: cannot find libpattern_alloc.so",
            exe.display()
        );
        let profile_dir = deps.parent().expect("deps has a parent").to_path_buf();
        let profile = profile_dir.file_name().expect("profile directory name").to_string_lossy().into_owned();
        let above = profile_dir.parent().expect("profile directory has a parent").to_path_buf();
        // Cargo marks the target directory's root with CACHEDIR.TAG; one level
        // more means `--target <triple>`.
        let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
            (above, None)
        } else {
            let triple = above.file_name().map(|n| n.to_string_lossy().into_owned());
            (above.parent().expect("target directory").to_path_buf(), triple)
        };
        BuildLayout { target_dir, profile_dir, profile, triple }
    })
}

/// The workspace root (the allocator-tests package is one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// `target/<profile>/libpattern_alloc.so`, freshly built for this profile:
/// the first call in a test process runs `$CARGO build -p pattern-alloc-preload`
/// (same profile, same target directory). Panics with what to do if that fails.
pub fn library() -> &'static Path {
    static LIBRARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match LIBRARY.get_or_init(build_library) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

fn build_library() -> Result<PathBuf, String> {
    if let Ok(runner) = std::env::var("PATTERN_ALLOC_TEST_RUNNER") {
        // The C programs, their compiler and python3/sqlite3 are host programs;
        // they cannot load a library built for the emulated target.
        return Err(format!(
            "the preload tests cannot run under emulation (PATTERN_ALLOC_TEST_RUNNER={runner}): they run host \
             programs under LD_PRELOAD of the library; run them on the target itself"
        ));
    }
    let layout = build_layout();
    let lib = layout.profile_dir.join("libpattern_alloc.so");
    let by_hand = layout.build_command();
    // Under `cargo test` CARGO names the cargo that runs us; otherwise use the one on PATH.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .args(["-p", PRELOAD_PACKAGE])
        .args(layout.cargo_args())
        .env("CARGO_TARGET_DIR", &layout.target_dir)
        .current_dir(workspace_root());
    let run = Exec::command(cmd).limit(Duration::from_secs(900)).run();
    if run.timed_out {
        return Err(format!(
            "`{by_hand}` (run from the test) did not finish in 900 s: is another cargo holding the build \
             directory lock? Build the library first with `{by_hand}`.\n{}",
            run.stderr
        ));
    }
    if !run.status.success() {
        return Err(format!(
            "could not build the preload library: `{} build -p {PRELOAD_PACKAGE} {}` failed ({}). \
             Fix the build, or build it by hand with `{by_hand}`.\n--- stderr ---\n{}",
            Path::new(&cargo).display(),
            layout.cargo_args().join(" "),
            run.status,
            run.stderr
        ));
    }
    if !lib.is_file() {
        return Err(format!("`{by_hand}` succeeded but {} does not exist", lib.display()));
    }
    Ok(lib)
}

/// The directory compiled test programs go to: `<target>/tmp/preload-<profile>`
/// (cargo's CARGO_TARGET_TMPDIR, one directory per profile so a debug and a
/// release run do not overwrite each other's programs).
pub fn programs_dir() -> PathBuf {
    let layout = build_layout();
    let dir = layout.target_dir.join("tmp").join(format!("preload-{}", layout.profile));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The sources of the C and C++ test programs.
pub fn sources_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// What to build from a source file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Output {
    Program,
    SharedLibrary,
}

type BuildCache = Mutex<HashMap<(String, Output), Arc<OnceLock<Result<PathBuf, String>>>>>;

/// Compiles `allocator-tests/c/<name>.c` (with gcc) or `<name>.cc` (with g++)
/// into a program, once per test process. Panics with the compiler's output
/// if it does not compile.
pub fn c_program(name: &str) -> PathBuf {
    compile_once(name, Output::Program)
}

/// Compiles `allocator-tests/c/<name>.c` into `lib<name>.so`, once per test process.
pub fn c_library(name: &str) -> PathBuf {
    compile_once(name, Output::SharedLibrary)
}

fn compile_once(name: &str, output: Output) -> PathBuf {
    static CACHE: OnceLock<BuildCache> = OnceLock::new();
    let cell = {
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        cache.entry((name.to_string(), output)).or_default().clone()
    };
    // Other sources compile meanwhile; only callers of this one wait.
    match cell.get_or_init(|| compile(name, output)) {
        Ok(path) => path.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn compile(name: &str, output: Output) -> Result<PathBuf, String> {
    let dir = sources_dir();
    let (source, compiler, std) = if dir.join(format!("{name}.c")).is_file() {
        (dir.join(format!("{name}.c")), "gcc", "-std=gnu11")
    } else if dir.join(format!("{name}.cc")).is_file() {
        (dir.join(format!("{name}.cc")), "g++", "-std=gnu++17")
    } else {
        return Err(format!("no {name}.c or {name}.cc in {}", dir.display()));
    };
    let file_name = match output {
        Output::Program => name.to_string(),
        Output::SharedLibrary => format!("lib{name}.so"),
    };
    let target = programs_dir().join(&file_name);
    // Written under a name of its own and renamed: another test process (or
    // profile run) may be compiling the same program right now.
    let partial = programs_dir().join(format!(".{file_name}.{}.partial", std::process::id()));
    let mut cmd = Command::new(compiler);
    cmd.args([std, "-O1", "-g", "-pthread", "-Wall", "-Wextra", "-Werror"]).arg("-I").arg(&dir);
    if output == Output::SharedLibrary {
        cmd.args(["-shared", "-fPIC"]);
    }
    cmd.arg("-o").arg(&partial).arg(&source).arg("-ldl");
    let shown = format!("{cmd:?}");
    let run = Exec::command(cmd).limit(Duration::from_secs(300)).run();
    if run.timed_out || !run.status.success() {
        let _ = std::fs::remove_file(&partial);
        let hint = if run.stderr.starts_with("cannot start") {
            format!(" (is {compiler} installed? CI needs the gcc and g++ packages)")
        } else {
            String::new()
        };
        return Err(format!(
            "compiling {} failed{hint}: {shown}\nstatus: {}\n--- stderr ---\n{}",
            source.display(),
            run.status,
            run.stderr
        ));
    }
    std::fs::rename(&partial, &target).map_err(|e| format!("rename to {}: {e}", target.display()))?;
    Ok(target)
}

/// A program to run, preloaded or not, with a time limit.
pub struct Exec {
    cmd: Command,
    what: String,
    stdin: Option<Vec<u8>>,
    limit: Duration,
}

impl Exec {
    /// A program run without the library (and without `PATTERN_ALLOC`).
    pub fn new(program: impl AsRef<OsStr>) -> Exec {
        let mut cmd = Command::new(program.as_ref());
        cmd.env_remove("LD_PRELOAD").env_remove("PATTERN_ALLOC");
        Exec::command(cmd)
    }

    /// A program run with the library preloaded; `PATTERN_ALLOC` is set to
    /// `options`, or removed when None (the tests never inherit the caller's).
    /// `PA_LIB` tells the C programs which library must define the names.
    pub fn preloaded(program: impl AsRef<OsStr>, options: Option<&str>) -> Exec {
        let lib = library();
        let mut exec = Exec::new(program);
        exec.cmd.env("LD_PRELOAD", lib).env("PA_LIB", lib);
        if let Some(options) = options {
            exec.cmd.env("PATTERN_ALLOC", options);
        }
        exec
    }

    /// Any command, environment as given.
    pub fn command(cmd: Command) -> Exec {
        let what = format!("{cmd:?}");
        Exec { cmd, what, stdin: None, limit: DEFAULT_LIMIT }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Exec {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Exec {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Exec {
        self.cmd.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Exec {
        self.cmd.current_dir(dir);
        self
    }

    /// Bytes written to the program's stdin (otherwise stdin is /dev/null).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Exec {
        self.stdin = Some(data.into());
        self
    }

    pub fn limit(mut self, limit: Duration) -> Exec {
        self.limit = limit;
        self
    }

    /// Runs it in a process group of its own; on timeout the whole group is
    /// killed (children of a shell pipeline or forked children too).
    pub fn run(mut self) -> Run {
        self.what = format!("{:?}", self.cmd);
        self.cmd
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = match self.cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Run {
                    status: std::process::ExitStatus::from_raw(127 << 8),
                    stdout: String::new(),
                    stderr: format!("cannot start {}: {e}", self.what),
                    timed_out: false,
                }
            }
        };
        let pid = child.id() as libc::pid_t;
        if let (Some(data), Some(mut pipe)) = (self.stdin.take(), child.stdin.take()) {
            // A program that stops reading early closes the pipe: not an error here.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let (output, timed_out) = match rx.recv_timeout(self.limit) {
            Ok(output) => (output, false),
            Err(_) => {
                // Not reaped yet (the waiting thread has not returned), so the group id is still ours.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                match rx.recv_timeout(Duration::from_secs(30)) {
                    Ok(output) => (output, true),
                    Err(_) => panic!("{} hung and could not be reaped after SIGKILL", self.what),
                }
            }
        };
        let output = output.unwrap_or_else(|e| panic!("wait for {}: {e}", self.what));
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            timed_out,
        }
    }

    /// Runs it and panics, showing its output, unless it exits with status 0 in time.
    #[track_caller]
    pub fn run_ok(self, what: &str) -> Run {
        let run = self.run();
        assert_success(&run, what);
        run
    }
}

/// The tail of a long output, for failure messages.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut from = text.len() - max;
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..]
}

/// A failure message with the status and both outputs of `run`.
pub fn describe(run: &Run) -> String {
    let status = match (run.status.code(), run.status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}{}", if run.timed_out { " (timed out)" } else { "" }),
        _ => format!("{}", run.status),
    };
    format!("{status}\n--- stdout ---\n{}\n--- stderr ---\n{}", tail(&run.stdout, 6000), tail(&run.stderr, 6000))
}

#[track_caller]
pub fn assert_success(run: &Run, what: &str) {
    assert!(!run.timed_out, "{what}: hung (killed after the time limit)\n{}", describe(run));
    assert!(run.status.success(), "{what}: failed\n{}", describe(run));
}

/// Runs the C/C++ program `name` under the library with `PATTERN_ALLOC=options`
/// and the pattern the program must see (`EXPECT_FILL`), and asserts that every
/// check passed.
#[track_caller]
pub fn run_checked(name: &str, options: Option<&str>, expect_fill: &str, args: &[&str]) -> Run {
    let run = Exec::preloaded(c_program(name), options).env("EXPECT_FILL", expect_fill).args(args).run();
    assert_success(
        &run,
        &format!("{name} {args:?} under LD_PRELOAD, PATTERN_ALLOC={options:?}, EXPECT_FILL={expect_fill}"),
    );
    run
}

/// Runs the program `name` without the library, with the checks that only
/// pattern-alloc promises turned off (`EXPECT_GLIBC=1`): the control that
/// shows the program itself is right about glibc's behaviour.
#[track_caller]
pub fn run_glibc_control(name: &str, args: &[&str]) -> Run {
    let run = Exec::new(c_program(name)).env("EXPECT_GLIBC", "1").args(args).run();
    assert_success(&run, &format!("{name} {args:?} under plain glibc (control run)"));
    run
}

/// Whether `program` can be found on PATH; panics with the package to install
/// otherwise (tests of real programs must not pass by skipping).
#[track_caller]
pub fn require_tool(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "`{program}` is not installed: these tests need it (apt-get install -y {package})");
}

/// The page backends the library runs with on this machine: each of eager,
/// memfd and refpage that it accepts and keeps (the `stats=1` summary names
/// the backend in effect; one it falls back from is left out). eager always works.
pub fn backends() -> &'static [String] {
    static BACKENDS: OnceLock<Vec<String>> = OnceLock::new();
    BACKENDS.get_or_init(|| {
        let mut found = Vec::new();
        for backend in ["eager", "memfd", "refpage"] {
            let options = format!("backend={backend}:stats=1");
            let run = Exec::preloaded(c_program("hello"), Some(&options)).arg("10").run();
            assert_success(&run, &format!("hello with PATTERN_ALLOC={options}"));
            let in_effect = run
                .stderr
                .lines()
                .find(|l| l.starts_with("pattern-alloc: stats "))
                .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("backend=")))
                .unwrap_or_else(|| panic!("no backend= on the stats line with {options}\n{}", describe(&run)))
                .to_string();
            if in_effect == backend {
                found.push(in_effect);
            } else {
                eprintln!("backend={backend} is not available here (the library runs {in_effect}): not tested");
            }
        }
        assert!(found.iter().any(|b| b == "eager"), "the eager backend must always work: {found:?}");
        // memfd needs only memfd_create (Linux 3.17): it must not be skipped.
        assert!(found.iter().any(|b| b == "memfd"), "the memfd backend must work on Linux: {found:?}");
        found
    })
}
