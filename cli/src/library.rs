//! Finding libpattern_alloc.so and preparing a command's environment.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const LIBRARY_FILE: &str = "libpattern_alloc.so";
pub const LIBRARY_VARIABLE: &str = "PATTERN_ALLOC_LIB";

/// The library to preload: `--lib`, then `$PATTERN_ALLOC_LIB`, then beside
/// this executable. The error is one line saying what to do.
pub fn find(option: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = option {
        return check(path, "--lib");
    }
    if let Some(path) = std::env::var_os(LIBRARY_VARIABLE).filter(|p| !p.is_empty()) {
        return check(Path::new(&path), LIBRARY_VARIABLE);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this program ({e}); give --lib PATH"))?;
    let beside = exe.parent().unwrap_or(Path::new("/")).join(LIBRARY_FILE);
    if beside.is_file() {
        return Ok(beside);
    }
    Err(format!(
        "{LIBRARY_FILE} not found beside {}: build it with `cargo build --release --workspace`, \
         or give its path with --lib PATH or {LIBRARY_VARIABLE}=PATH",
        exe.display()
    ))
}

fn check(path: &Path, source: &str) -> Result<PathBuf, String> {
    if !path.is_file() {
        return Err(format!(
            "{source} {}: no such file (build the library with `cargo build --release --workspace`)",
            path.display()
        ));
    }
    // LD_PRELOAD resolves a relative path against the command's working
    // directory, which need not be ours.
    std::fs::canonicalize(path).map_err(|e| format!("{source} {}: {e}", path.display()))
}

/// Preloads `library` into `command` and passes `options` in PATTERN_ALLOC,
/// after any value the user already set, so that the tool's keys win (the
/// library applies items left to right).
pub fn preload(command: &mut Command, library: &Path, options: &str) {
    let mut preload = OsString::from(library.as_os_str());
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    command.env("LD_PRELOAD", preload);
    let merged = merge_options(std::env::var_os("PATTERN_ALLOC").as_deref(), options);
    command.env("PATTERN_ALLOC", merged);
}

fn merge_options(existing: Option<&OsStr>, ours: &str) -> OsString {
    let mut merged = OsString::new();
    if let Some(existing) = existing.filter(|v| !v.is_empty()) {
        merged.push(existing);
        if !ours.is_empty() {
            merged.push(":");
        }
    }
    merged.push(ours);
    merged
}
