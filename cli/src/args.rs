//! Command-line parsing, by hand: two subcommands with a handful of options
//! each do not need a parser crate. Errors are one line each.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

pub enum Parsed {
    Help,
    Run(RunArgs),
    Hunt(HuntArgs),
}

pub struct RunArgs {
    pub lib: Option<PathBuf>,
    /// The PATTERN_ALLOC items this run adds.
    pub options: String,
    pub command: Vec<OsString>,
}

pub struct HuntArgs {
    pub lib: Option<PathBuf>,
    /// The first is the baseline.
    pub patterns: Vec<u8>,
    /// Runs per pattern (the baseline runs at least twice).
    pub runs: usize,
    /// Time limit of each run; None: the baseline runs without one and the
    /// others get ten times the slowest baseline run, at least 10 s.
    pub timeout: Option<Duration>,
    pub crash_report: bool,
    /// PATTERN_ALLOC items added before the tool's own.
    pub extra_options: String,
    pub command: Vec<OsString>,
}

pub const DEFAULT_PATTERNS: [u8; 3] = [0x00, 0xff, 0xaa];

pub fn parse(arguments: &[OsString]) -> Result<Parsed, String> {
    let Some(first) = arguments.first() else {
        return Err("missing subcommand: run or hunt".to_string());
    };
    let rest = &arguments[1..];
    match first.to_str() {
        Some("run") => parse_run(rest).map(Parsed::Run),
        Some("hunt") => parse_hunt(rest).map(Parsed::Hunt),
        Some("-h" | "--help" | "help") => Ok(Parsed::Help),
        _ => Err(format!("unknown subcommand '{}': expected run or hunt", first.to_string_lossy())),
    }
}

/// Walks the options before the command: `--name value`, `--name=value`,
/// `--flag`; `--` or the first word not starting with '-' ends them.
struct Options<'a> {
    arguments: &'a [OsString],
    next: usize,
    subcommand: &'static str,
}

enum Item<'a> {
    Flag(&'a str),
    Command(Vec<OsString>),
}

impl<'a> Options<'a> {
    fn next_item(&mut self) -> Result<Item<'a>, String> {
        let Some(argument) = self.arguments.get(self.next) else {
            return Err(format!("{}: missing the command to run", self.subcommand));
        };
        self.next += 1;
        let text = argument.to_str().unwrap_or("");
        if text == "--" || !text.starts_with('-') || text == "-" {
            let from = if text == "--" { self.next } else { self.next - 1 };
            let command = self.arguments[from..].to_vec();
            if command.is_empty() {
                return Err(format!("{}: missing the command to run", self.subcommand));
            }
            return Ok(Item::Command(command));
        }
        Ok(Item::Flag(text))
    }

    /// The value of `--name=value` or of `--name value`.
    fn value(&mut self, flag: &'a str) -> Result<&'a OsStr, String> {
        if let Some((_, value)) = flag.split_once('=') {
            let start = flag.len() - value.len();
            return Ok(OsStr::new(&flag[start..]));
        }
        let value = self.arguments.get(self.next).ok_or_else(|| format!("{flag} needs a value"))?;
        self.next += 1;
        Ok(value)
    }
}

fn name(flag: &str) -> &str {
    flag.split_once('=').map_or(flag, |(name, _)| name)
}

fn parse_run(arguments: &[OsString]) -> Result<RunArgs, String> {
    let mut options = Options { arguments, next: 0, subcommand: "run" };
    let mut run = RunArgs { lib: None, options: String::new(), command: Vec::new() };
    let mut items = Vec::new();
    loop {
        let flag = match options.next_item()? {
            Item::Command(command) => {
                run.command = command;
                break;
            }
            Item::Flag(flag) => flag,
        };
        match name(flag) {
            "--fill" => items.push(format!("fill={:#04x}", byte(flag, options.value(flag)?)?)),
            "--free-fill" => items.push(format!("free_fill={:#04x}", byte(flag, options.value(flag)?)?)),
            "--class-patterns" => items.push("class_patterns=1".to_string()),
            "--stats" => items.push("stats=1".to_string()),
            "--crash-report" => items.push("crash_report=1".to_string()),
            "--options" => items.push(text(flag, options.value(flag)?)?.to_string()),
            "--lib" => run.lib = Some(PathBuf::from(options.value(flag)?)),
            "-h" | "--help" => return Err("use pattern-alloc --help".to_string()),
            _ => return Err(format!("run: unknown option {}", name(flag))),
        }
    }
    run.options = items.join(":");
    Ok(run)
}

fn parse_hunt(arguments: &[OsString]) -> Result<HuntArgs, String> {
    let mut options = Options { arguments, next: 0, subcommand: "hunt" };
    let mut hunt = HuntArgs {
        lib: None,
        patterns: DEFAULT_PATTERNS.to_vec(),
        runs: 1,
        timeout: None,
        crash_report: true,
        extra_options: String::new(),
        command: Vec::new(),
    };
    loop {
        let flag = match options.next_item()? {
            Item::Command(command) => {
                hunt.command = command;
                break;
            }
            Item::Flag(flag) => flag,
        };
        match name(flag) {
            "--patterns" => hunt.patterns = patterns(flag, options.value(flag)?)?,
            "--runs" => {
                hunt.runs = number(flag, options.value(flag)?)
                    .filter(|&n| (1..=100).contains(&n))
                    .ok_or_else(|| format!("{}: expected a number of runs per pattern from 1 to 100", name(flag)))?
                    as usize
            }
            "--timeout" => {
                let seconds = number(flag, options.value(flag)?)
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("{}: expected a whole number of seconds, at least 1", name(flag)))?;
                hunt.timeout = Some(Duration::from_secs(seconds));
            }
            "--no-crash-report" => hunt.crash_report = false,
            "--options" => hunt.extra_options = text(flag, options.value(flag)?)?.to_string(),
            "--lib" => hunt.lib = Some(PathBuf::from(options.value(flag)?)),
            "-h" | "--help" => return Err("use pattern-alloc --help".to_string()),
            _ => return Err(format!("hunt: unknown option {}", name(flag))),
        }
    }
    Ok(hunt)
}

fn text<'a>(flag: &str, value: &'a OsStr) -> Result<&'a str, String> {
    value.to_str().ok_or_else(|| format!("{}: the value is not valid UTF-8", name(flag)))
}

fn number(flag: &str, value: &OsStr) -> Option<u64> {
    let value = text(flag, value).ok()?;
    match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

fn byte(flag: &str, value: &OsStr) -> Result<u8, String> {
    number(flag, value).and_then(|n| u8::try_from(n).ok()).ok_or_else(|| {
        format!("{}: '{}' is not a byte (expected 0x00 to 0xff or 0 to 255)", name(flag), value.to_string_lossy())
    })
}

fn patterns(flag: &str, value: &OsStr) -> Result<Vec<u8>, String> {
    let mut list = Vec::new();
    for item in text(flag, value)?.split(',') {
        let pattern = byte(flag, OsStr::new(item.trim()))?;
        if list.contains(&pattern) {
            return Err(format!("{}: pattern {pattern:#04x} is listed twice", name(flag)));
        }
        list.push(pattern);
    }
    if list.len() < 2 {
        return Err(format!("{}: give at least two patterns to compare, e.g. 0x00,0xff", name(flag)));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn run_collects_options_then_the_command() {
        let Ok(Parsed::Run(run)) = parse(&args(&["run", "--fill", "0x5c", "--free-fill=85", "--stats", "ls", "-l"]))
        else {
            panic!("not a run")
        };
        assert_eq!(run.options, "fill=0x5c:free_fill=0x55:stats=1");
        assert_eq!(run.command, args(&["ls", "-l"]));
    }

    #[test]
    fn hunt_defaults_and_double_dash() {
        let Ok(Parsed::Hunt(hunt)) = parse(&args(&["hunt", "--", "--weird-name", "x"])) else { panic!("not a hunt") };
        assert_eq!(hunt.patterns, DEFAULT_PATTERNS);
        assert_eq!((hunt.runs, hunt.timeout, hunt.crash_report), (1, None, true));
        assert_eq!(hunt.command, args(&["--weird-name", "x"]));
    }

    #[test]
    fn hunt_options() {
        let Ok(Parsed::Hunt(hunt)) = parse(&args(&[
            "hunt",
            "--patterns=0x11,0x22",
            "--runs",
            "3",
            "--timeout",
            "5",
            "--no-crash-report",
            "--lib",
            "/x.so",
            "prog",
        ])) else {
            panic!("not a hunt")
        };
        assert_eq!(hunt.patterns, vec![0x11, 0x22]);
        assert_eq!((hunt.runs, hunt.timeout, hunt.crash_report), (3, Some(Duration::from_secs(5)), false));
        assert_eq!(hunt.lib, Some(PathBuf::from("/x.so")));
    }

    #[test]
    fn usage_errors_are_one_line() {
        for words in [
            &["hunt"][..],
            &["hunt", "--"],
            &["run", "--fill", "0x100", "ls"],
            &["run", "--fill"],
            &["hunt", "--patterns", "0xaa", "ls"],
            &["hunt", "--patterns", "0xaa,0xaa", "ls"],
            &["hunt", "--runs", "0", "ls"],
            &["hunt", "--colour", "ls"],
            &["walk"],
            &[],
        ] {
            match parse(&args(words)) {
                Err(message) => assert!(!message.contains('\n') && !message.is_empty(), "{words:?}: {message}"),
                Ok(_) => panic!("{words:?} parsed"),
            }
        }
    }
}
