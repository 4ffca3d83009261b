//! `pattern-alloc hunt`: differential detection of uninitialized heap reads.
//!
//! The command runs once per pattern with everything else equal (arguments,
//! stdin content, environment). Under pattern-alloc every unwritten heap byte
//! reads as the pattern, so if the runs differ, the command's behaviour
//! depends on memory it never wrote. The baseline pattern runs twice first: a
//! command that differs from itself (time, pids, randomness) is reported as
//! nondeterministic instead of being blamed on memory.

use std::io::{IsTerminal as _, Read as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::HuntArgs;
use crate::capture::{Outcome, Status, Target};
use crate::compare::{self, Stream};
use crate::{library, signals, EXIT_ERROR};

pub const EXIT_AGREE: u8 = 0;
pub const EXIT_DIVERGE: u8 = 1;
pub const EXIT_NONDETERMINISTIC: u8 = 3;

/// Without --timeout, runs after the baseline may take this many times the
/// slowest baseline run (at least `MIN_LIMIT`): a pattern can turn a loop
/// bound read from unwritten memory into a hang.
const LIMIT_FACTOR: u32 = 10;
const MIN_LIMIT: Duration = Duration::from_secs(10);

/// Width at which report lines are cut.
const LINE_WIDTH: usize = 100;

fn label(pattern: u8) -> String {
    format!("fill={pattern:#04x}")
}

fn progress(message: &str) {
    eprintln!("pattern-alloc hunt: {message}");
}

fn error(message: &str) -> u8 {
    eprintln!("pattern-alloc: {message}");
    EXIT_ERROR
}

pub fn hunt(args: HuntArgs) -> u8 {
    let library = match library::find(args.lib.as_deref()) {
        Ok(library) => library,
        Err(problem) => return error(&problem),
    };
    let stdin = if std::io::stdin().is_terminal() {
        progress("stdin is a terminal: the runs read /dev/null (pipe input in to replay it)");
        None
    } else {
        let mut data = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut data) {
            return error(&format!("cannot read stdin to replay it: {e}"));
        }
        Some(Arc::new(data))
    };
    signals::forward_to_children();
    let target = Target { command: &args.command, library: &library, stdin };
    let mut hunter = Hunter { args: &args, target, done: 0, started: Instant::now() };
    match hunter.hunt() {
        Ok(code) => code,
        Err(problem) => error(&problem),
    }
}

struct Hunter<'a> {
    args: &'a HuntArgs,
    target: Target<'a>,
    done: usize,
    started: Instant,
}

impl Hunter<'_> {
    fn total_runs(&self) -> usize {
        self.args.runs.max(2) + (self.args.patterns.len() - 1) * self.args.runs
    }

    fn options(&self, pattern: u8) -> String {
        let crash_report = self.args.crash_report as u8;
        let ours = format!(
            "fill={pattern:#04x}:free_fill={pattern:#04x}:class_patterns=0:crash_report={crash_report}:stats=0:verbose=1"
        );
        if self.args.extra_options.is_empty() {
            ours
        } else {
            format!("{}:{ours}", self.args.extra_options)
        }
    }

    fn run(&mut self, pattern: u8, note: &str, limit: Option<Duration>) -> Result<Outcome, String> {
        let outcome = self.target.run(&self.options(pattern), limit)?;
        self.done += 1;
        progress(&format!(
            "[{}/{}] {}{note}: {} in {:.2} s ({:.2} s elapsed)",
            self.done,
            self.total_runs(),
            label(pattern),
            outcome.status.describe(),
            outcome.elapsed.as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        ));
        Ok(outcome)
    }

    /// Runs `pattern` `count` times; Err(report) if they do not all agree.
    fn runs_of(&mut self, pattern: u8, count: usize, note: &str, limit: Option<Duration>) -> Result<Runs, String> {
        let mut runs = Vec::new();
        for _ in 0..count {
            runs.push(self.run(pattern, note, limit)?);
        }
        Ok(Runs { pattern, runs })
    }

    fn hunt(&mut self) -> Result<u8, String> {
        let patterns = self.args.patterns.clone();
        let baseline = self.runs_of(patterns[0], self.args.runs.max(2), " (baseline)", self.args.timeout)?;
        if !baseline.runs.iter().any(|r| r.loaded) {
            return Err(format!(
                "the library was never initialized in {}: it made no heap allocation, or LD_PRELOAD had no \
                 effect (a statically linked or setuid program); nothing to hunt",
                self.target.command[0].to_string_lossy()
            ));
        }
        if let Some(report) = baseline.disagreement() {
            print!("{report}");
            return Ok(EXIT_NONDETERMINISTIC);
        }
        let slowest = baseline.runs.iter().map(|r| r.elapsed).max().unwrap_or_default();
        let limit = self.args.timeout.or(Some((slowest * LIMIT_FACTOR).max(MIN_LIMIT)));
        let mut all = vec![baseline];
        for &pattern in &patterns[1..] {
            let runs = self.runs_of(pattern, self.args.runs, "", limit)?;
            if let Some(report) = runs.disagreement() {
                print!("{report}");
                return Ok(EXIT_NONDETERMINISTIC);
            }
            all.push(runs);
        }
        let firsts: Vec<(u8, &Outcome)> = all.iter().map(|r| (r.pattern, &r.runs[0])).collect();
        if firsts.iter().all(|(_, outcome)| compare::same(outcome, firsts[0].1)) {
            print!("{}", agreement(&firsts, self.done));
            return Ok(EXIT_AGREE);
        }
        print!("{}", divergence(&firsts));
        Ok(EXIT_DIVERGE)
    }
}

/// The runs of one pattern.
struct Runs {
    pattern: u8,
    runs: Vec<Outcome>,
}

impl Runs {
    /// A report if runs under this one pattern differ from each other.
    fn disagreement(&self) -> Option<String> {
        let first = &self.runs[0];
        let (index, other) = self.runs.iter().enumerate().skip(1).find(|(_, r)| !compare::same(first, r))?;
        let mut report = format!(
            "pattern-alloc hunt: NONDETERMINISTIC: runs 1 and {} under the same pattern ({}) differ, so \
             differences between patterns cannot be blamed on memory.\n",
            index + 1,
            label(self.pattern)
        );
        let labels = ["run 1".to_string(), format!("run {}", index + 1)];
        describe_differences(&mut report, &labels, &[first, other]);
        report.push_str(
            "hint: the command's behaviour changes by itself (time, process ids, addresses, random numbers, \
             thread timing, the environment). Make it deterministic (a fixed seed, no timestamps or addresses in \
             the output), or hunt a wrapper script that filters the changing parts out.\n",
        );
        Some(report)
    }
}

fn agreement(firsts: &[(u8, &Outcome)], runs: usize) -> String {
    let outcome = firsts[0].1;
    let patterns: Vec<String> = firsts.iter().map(|(p, _)| format!("{p:#04x}")).collect();
    format!(
        "pattern-alloc hunt: all {runs} runs agree (patterns {}): {}, stdout {} bytes, stderr {} bytes.\n\
         No sign on this input that unwritten heap memory reaches the command's output.\n",
        patterns.join(", "),
        outcome.status.describe(),
        outcome.stdout.len(),
        outcome.stderr.len()
    )
}

fn divergence(firsts: &[(u8, &Outcome)]) -> String {
    let mut report = String::from(
        "pattern-alloc hunt: DIVERGENCE: the command behaves differently depending on what unwritten heap \
         memory contains.\n",
    );
    let labels: Vec<String> = firsts.iter().map(|(p, _)| label(*p)).collect();
    let outcomes: Vec<&Outcome> = firsts.iter().map(|(_, o)| *o).collect();
    let agreeing: Vec<&str> = labels
        .iter()
        .zip(&outcomes)
        .skip(1)
        .filter(|(_, o)| compare::same(o, outcomes[0]))
        .map(|(l, _)| l.as_str())
        .collect();
    report.push_str(&format!("  baseline {} (its runs agree with each other)", labels[0]));
    if !agreeing.is_empty() {
        report.push_str(&format!("; same as the baseline: {}", agreeing.join(", ")));
    }
    report.push('\n');
    describe_differences(&mut report, &labels, &outcomes);
    report.push_str(&hint(firsts));
    report
}

/// Which streams differ, the first differing line of each run side by side,
/// the exit statuses and the library's crash reports.
fn describe_differences(report: &mut String, labels: &[String], outcomes: &[&Outcome]) {
    let width = labels.iter().map(String::len).max().unwrap_or(0);
    for stream in Stream::BOTH {
        let texts: Vec<&[u8]> = outcomes.iter().map(|o| stream.of(o)).collect();
        match compare::first_difference(&texts) {
            None => report.push_str(&format!("  {}: the same in every run\n", stream.name())),
            Some((index, versions)) => {
                report.push_str(&format!("  {} differs, first at line {}:\n", stream.name(), index + 1));
                for (label, version) in labels.iter().zip(versions) {
                    report.push_str(&format!("    {label:<width$} | {}\n", compare::show(version, LINE_WIDTH)));
                }
            }
        }
    }
    let statuses: Vec<String> =
        labels.iter().zip(outcomes).map(|(l, o)| format!("{l}: {}", o.status.describe())).collect();
    report.push_str(&format!("  status: {}\n", statuses.join(" | ")));
    for (label, outcome) in labels.iter().zip(outcomes) {
        if !outcome.library_lines.is_empty() && !matches!(outcome.status, Status::Exited(_)) {
            report.push_str(&format!("  pattern-alloc's report under {label}:\n"));
            for line in &outcome.library_lines {
                report.push_str(&format!("    {line}\n"));
            }
        }
    }
}

fn hint(firsts: &[(u8, &Outcome)]) -> String {
    let mut hint = String::new();
    // A value that is the pattern itself, read as a number: the clearest sign.
    // 0x00 and 0xff look like ordinary values; a distinctive pattern is shown first.
    let mut by_distinctiveness = firsts.to_vec();
    by_distinctiveness.sort_by_key(|(pattern, _)| matches!(pattern, 0x00 | 0xff));
    'patterns: for &(pattern, outcome) in &by_distinctiveness {
        for stream in Stream::BOTH {
            let texts: Vec<&[u8]> = firsts.iter().map(|(_, o)| stream.of(o)).collect();
            if let Some((index, _)) = compare::first_difference(&texts) {
                let line = stream.of(outcome).split(|&b| b == b'\n').nth(index).unwrap_or_default();
                if let Some((word, above)) = compare::pattern_in_line(line, pattern) {
                    let plus = if above == 0 { String::new() } else { format!(" plus {above}") };
                    hint.push_str(&format!(
                        "hint: under {} {} line {} shows '{word}', which is the pattern{plus}: \
                         that value came from heap memory nobody wrote.\n",
                        label(pattern),
                        stream.name(),
                        index + 1
                    ));
                    break 'patterns;
                }
            }
        }
    }
    let baseline_status = firsts[0].1.status;
    if firsts.iter().any(|(_, o)| o.status != baseline_status) {
        hint.push_str(
            "hint: the exit status depends on the pattern: a pointer, index, length or flag was read from \
             unwritten memory. A crash report above names the register that holds the pattern.\n",
        );
    }
    hint.push_str(
        "hint: somewhere the command reads a heap block (or part of one) before writing it: a field left \
         unset, malloc where calloc was meant, a memset too short, a Vec length set past what was written. \
         To find the read: `pattern-alloc run --fill 0xaa --crash-report -- CMD` in a debugger (watch for \
         0xaaaa... values), or Valgrind memcheck with --track-origins=yes, or MemorySanitizer.\n",
    );
    hint
}
