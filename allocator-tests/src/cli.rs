//! Helpers for the tests of the `pattern-alloc` tool (`tests/cli_*.rs`).
//!
//! - [`tool`]: the `pattern-alloc` binary of the profile the test was built
//!   with, built once per test process with a nested `cargo build` (as
//!   [`library`] builds the preload library, which ends up beside it: the tool
//!   finds it there).
//! - [`rust_example`], [`c_example`]: the bundled examples (`examples/`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::preload::{build_layout, library, programs_dir, workspace_root, Exec};

pub const CLI_PACKAGE: &str = "pattern-alloc-cli";

/// Runs `cargo build <what> <profile args>` on the workspace; the error says
/// what failed and how to do it by hand.
fn cargo_build(what: &[&str]) -> Result<(), String> {
    let layout = build_layout();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .args(what)
        .args(layout.cargo_args())
        .env("CARGO_TARGET_DIR", &layout.target_dir)
        .current_dir(workspace_root());
    let run = Exec::command(cmd).limit(Duration::from_secs(900)).run();
    if run.timed_out || !run.status.success() {
        return Err(format!(
            "`cargo build {} {}` (run from the test) failed ({}{}).\n--- stderr ---\n{}",
            what.join(" "),
            layout.cargo_args().join(" "),
            run.status,
            if run.timed_out { ", timed out" } else { "" },
            run.stderr
        ));
    }
    Ok(())
}

fn built(cell: &'static OnceLock<Result<PathBuf, String>>, what: &[&str], path: PathBuf) -> &'static Path {
    let result = cell.get_or_init(|| {
        cargo_build(what)?;
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("`cargo build {}` succeeded but {} does not exist", what.join(" "), path.display()))
        }
    });
    match result {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// `target/<profile>/pattern-alloc`, freshly built, with the preload library beside it.
pub fn tool() -> &'static Path {
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    library();
    built(&TOOL, &["-p", CLI_PACKAGE], build_layout().profile_dir.join("pattern-alloc"))
}

/// `target/<profile>/examples/<name>`, an example of the core package.
pub fn rust_example(name: &'static str) -> &'static Path {
    static EXAMPLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    assert_eq!(name, "uninit_records", "only one Rust example is built by the tests");
    built(&EXAMPLE, &["-p", "pattern-alloc", "--example", name], build_layout().profile_dir.join("examples").join(name))
}

/// `examples/<name>.c` compiled with gcc -O2 (as examples/hunt.sh does):
/// the bug must survive an optimizing build.
pub fn c_example(name: &str) -> PathBuf {
    let source = workspace_root().join("examples").join(format!("{name}.c"));
    let target = programs_dir().join(format!("example-{name}"));
    let partial = programs_dir().join(format!(".example-{name}.{}.partial", std::process::id()));
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"]).arg(&partial).arg(&source);
    let run = Exec::command(cmd).limit(Duration::from_secs(300)).run();
    assert!(run.status.success() && !run.timed_out, "compiling {} failed:\n{}", source.display(), run.stderr);
    std::fs::rename(&partial, &target).unwrap_or_else(|e| panic!("rename to {}: {e}", target.display()));
    target
}

/// `pattern-alloc <args>` with a clean environment (no LD_PRELOAD,
/// PATTERN_ALLOC or PATTERN_ALLOC_LIB inherited from the test's caller).
pub fn pattern_alloc<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> Exec {
    Exec::new(tool()).args(args).env("PATTERN_ALLOC_LIB", "")
}
