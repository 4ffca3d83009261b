//! The allocator configurations compared, and where their libraries are.
//!
//! A prepared directory (`ci/bench-compare.sh --prepare DIR`) holds
//! `lib/libpattern_alloc.so` and, under `peers/`, copies of the peer
//! libraries that were installed where it was prepared. Nothing outside the
//! directory is preloaded, so a run on another machine measures exactly
//! what was prepared.

use std::path::{Path, PathBuf};

/// One allocator with one set of options.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// Column name in results and reports.
    pub name: &'static str,
    /// File under the prepared directory to preload; `None` is glibc.
    pub library: Option<&'static str>,
    /// Environment that selects the mode.
    pub env: &'static [(&'static str, &'static str)],
    /// The peer whose pattern mode this is, for "pattern-alloc / peer pattern mode" ratios.
    pub pattern_mode_of: Option<&'static str>,
    /// Latency-only configurations (page backends) are not run on the workloads.
    pub latency_only: bool,
}

pub const PATTERN_LIB: &str = "lib/libpattern_alloc.so";

/// Every variable any configuration sets: cleared for all children, so the
/// parent's environment cannot change a mode.
pub const MODE_VARIABLES: [&str; 5] =
    ["PATTERN_ALLOC", "MALLOC_PERTURB_", "MALLOC_CONF", "SCUDO_OPTIONS", "LD_PRELOAD"];

/// The peers' libraries: (file under `peers/`, Debian package, system path).
pub const PEER_LIBRARIES: [(&str, &str, &str); 4] = [
    ("peers/libjemalloc.so.2", "libjemalloc2", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    ("peers/libmimalloc.so.2", "libmimalloc2.0", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"),
    ("peers/libtcmalloc_minimal.so.4", "libtcmalloc-minimal4", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
    (
        "peers/libclang_rt.scudo_standalone-x86_64.so",
        "libclang-rt-19-dev",
        "/usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.scudo_standalone-x86_64.so",
    ),
];

const fn config(
    name: &'static str,
    library: Option<&'static str>,
    env: &'static [(&'static str, &'static str)],
) -> Allocator {
    Allocator { name, library, env, pattern_mode_of: None, latency_only: false }
}

const fn pattern_mode(mut a: Allocator, peer: &'static str) -> Allocator {
    a.pattern_mode_of = Some(peer);
    a
}

const fn latency_only(mut a: Allocator) -> Allocator {
    a.latency_only = true;
    a
}

/// All configurations, in the order they run within a round and appear in tables.
pub const ALL: [Allocator; 12] = [
    config("pattern", Some(PATTERN_LIB), &[]),
    config("pattern-free_fill", Some(PATTERN_LIB), &[("PATTERN_ALLOC", "free_fill=0x55")]),
    config("mimalloc", Some(PEER_LIBRARIES[1].0), &[]),
    config("glibc", None, &[]),
    pattern_mode(config("glibc-perturb", None, &[("MALLOC_PERTURB_", "85")]), "glibc"),
    config("jemalloc", Some(PEER_LIBRARIES[0].0), &[]),
    pattern_mode(config("jemalloc-junk", Some(PEER_LIBRARIES[0].0), &[("MALLOC_CONF", "junk:true")]), "jemalloc"),
    config("scudo", Some(PEER_LIBRARIES[3].0), &[]),
    pattern_mode(
        config("scudo-pattern", Some(PEER_LIBRARIES[3].0), &[("SCUDO_OPTIONS", "pattern_fill_contents=1")]),
        "scudo",
    ),
    config("tcmalloc", Some(PEER_LIBRARIES[2].0), &[]),
    latency_only(config("pattern-eager", Some(PATTERN_LIB), &[("PATTERN_ALLOC", "backend=eager")])),
    latency_only(config("pattern-memfd", Some(PATTERN_LIB), &[("PATTERN_ALLOC", "backend=memfd")])),
];

/// The speed ceiling every time ratio is taken against.
pub const BASELINE: &str = "mimalloc";

impl Allocator {
    /// The library to preload, if the prepared directory has it.
    pub fn preload(&self, dir: &Path) -> Result<Option<PathBuf>, String> {
        match self.library {
            None => Ok(None),
            Some(file) => {
                let path = dir.join(file);
                if path.is_file() {
                    Ok(Some(path))
                } else {
                    Err(format!("{} not in the prepared directory", file))
                }
            }
        }
    }
}

pub fn by_name(name: &str) -> Option<&'static Allocator> {
    ALL.iter().find(|a| a.name == name)
}
