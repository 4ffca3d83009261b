//! The workloads: C programs built by `ci/bench-compare.sh --prepare` into
//! `DIR/workloads/`, and two real programs (python3, sqlite3) found on PATH.

use std::path::{Path, PathBuf};

/// How a workload uses more than one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parallel {
    /// The program takes the thread count and splits a fixed total of work.
    Threads,
    /// A single-threaded program: N threads means N copies at once, each
    /// doing 1/N of the work (same total as one copy).
    Copies,
}

#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    pub what: &'static str,
    pub parallel: Parallel,
}

pub const ALL: [Workload; 8] = [
    Workload {
        name: "churn",
        what: "small objects replaced at random in a live set of 20k per thread",
        parallel: Parallel::Threads,
    },
    Workload {
        name: "prodcons",
        what: "N producer/consumer pairs: every free is from another thread",
        parallel: Parallel::Threads,
    },
    Workload {
        name: "tree",
        what: "binary trees of 64k 24-byte nodes built, walked, torn down",
        parallel: Parallel::Threads,
    },
    Workload {
        name: "realloc_grow",
        what: "256 buffers per thread grown by small reallocs to 1-128 KiB",
        parallel: Parallel::Threads,
    },
    Workload {
        name: "sparse_large",
        what: "8-64 MiB buffers with one record per 64 pages written",
        parallel: Parallel::Threads,
    },
    Workload {
        name: "false_sharing",
        what: "one 24-byte object per thread, allocated by main, written hard",
        parallel: Parallel::Threads,
    },
    Workload { name: "python3", what: "python3: dicts, lists, strings, json round trip", parallel: Parallel::Copies },
    Workload {
        name: "sqlite3",
        what: "sqlite3 :memory:: inserts, index, group by, join, update, delete",
        parallel: Parallel::Copies,
    },
];

/// The latency probe: one run per allocator, not part of the rounds.
pub const LATENCY: &str = "large_latency";

const PYTHON_SCRIPT: &str = r#"
import json, random, sys
n = int(100000 * float(sys.argv[1]))
r = random.Random(7)
d = {}
for i in range(n):
    d["k%d" % i] = [i, str(i) * 3, {"x": i, "y": [i] * (i % 5)}]
s = json.dumps(d)
back = json.loads(s)
assert len(back) == n and back["k%d" % (n - 1)][0] == n - 1
words = ["".join(r.choice("abcdefgh") for _ in range(1 + i % 12)) for i in range(n // 2)]
words.sort()
counts = {}
for w in words:
    counts[w] = counts.get(w, 0) + 1
assert sum(counts.values()) == len(words)
"#;

fn sqlite_script(scale: f64) -> String {
    let rows = ((60_000.0 * scale) as u64).max(100);
    format!(
        "PRAGMA cache_size=-32000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB, n INT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows})
  INSERT INTO t SELECT x, hex(randomblob(12)), randomblob(abs(random()) % 300), random() % 1000 FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_n ON t(n);
SELECT n % 100, count(*), sum(length(v)) FROM t GROUP BY n % 100 ORDER BY 3 DESC LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.k = b.k;
UPDATE t SET v = randomblob(60) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT group_concat(k) FROM (SELECT k FROM t ORDER BY k LIMIT 1000);
SELECT count(*), sum(length(v)) FROM t;
"
    )
}

/// A ready-to-spawn invocation of one copy of a workload.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

/// Finds `name` on PATH, skipping version-manager shims (pyenv's are shell
/// scripts: their start-up would be measured with the program).
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.to_string_lossy().contains("/shims"))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Workload {
    /// The invocations for `threads` threads at `scale`, or why it cannot run here.
    pub fn invocations(&self, dir: &Path, threads: u32, scale: f64) -> Result<Vec<Invocation>, String> {
        match self.parallel {
            Parallel::Threads => {
                let program = dir.join("workloads").join(self.name);
                if !program.is_file() {
                    return Err(format!("workloads/{} not in the prepared directory", self.name));
                }
                Ok(vec![Invocation { program, args: vec![threads.to_string(), format!("{scale}")], stdin: None }])
            }
            Parallel::Copies => {
                let program = on_path(self.name).ok_or_else(|| format!("{} not on PATH", self.name))?;
                let share = scale / threads as f64;
                let one = match self.name {
                    "python3" => Invocation {
                        program,
                        args: vec!["-c".into(), PYTHON_SCRIPT.into(), format!("{share}")],
                        stdin: None,
                    },
                    _ => Invocation {
                        program,
                        args: vec!["-bail".into(), ":memory:".into()],
                        stdin: Some(sqlite_script(share)),
                    },
                };
                Ok(vec![one; threads as usize])
            }
        }
    }
}

pub fn by_name(name: &str) -> Option<&'static Workload> {
    ALL.iter().find(|w| w.name == name)
}
