//! Configuration: a const builder for Rust users and the `PATTERN_ALLOC`
//! options string (`key=value:key=value`), parsed in place without allocating.
//!
//! The string overrides the in-code configuration key by key. Unknown keys and
//! malformed values are reported through a callback (the allocator turns them
//! into one warning line on stderr) and leave the previous value in force.

use crate::size_class::{CLASS_COUNT, MAX_SMALL_SIZE};

/// Where large blocks and slab segments get their memory. Every backend gives
/// the same contents; only time and resident memory differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The first of refpage, memfd, eager that works here.
    Auto,
    /// The kernel reference page (`refpage_create`); memfd where the kernel
    /// has none (with a warning).
    Refpage,
    /// Userspace reference page: private windows of a sealed memfd; eager
    /// where memfds are unavailable (with a warning).
    Memfd,
    /// Anonymous mmap + memset: always works, costs a full pass over memory.
    Eager,
}

impl Backend {
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Refpage => "refpage",
            Backend::Memfd => "memfd",
            Backend::Eager => "eager",
        }
    }
}

/// Arm64 memory tagging (DESIGN.md §7): off, or on with synchronous or
/// asynchronous tag-check faults. Only arm64 Linux with MTE acts on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mte {
    Off,
    Sync,
    Async,
}

/// Which allocation tag (1..15) a block gets under MTE; tag 0 marks freed memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MteTags {
    /// `DEFAULT_CLASS_TAGS`: neighbouring classes differ.
    PerClass,
    /// A table given in code, one tag per class (the last row is large
    /// blocks); a 0 in it is replaced by the default for that class.
    Table([u8; CLASS_COUNT]),
    /// A random tag per block, never that of either neighbour (as Scudo does),
    /// so overflows into a block of the same class trap too.
    Random,
}

/// `mte_tags=class`: tag `1 + class % 15`, so neighbouring classes differ.
pub const DEFAULT_CLASS_TAGS: [u8; CLASS_COUNT] = {
    let mut table = [0u8; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        table[class] = 1 + (class % 15) as u8;
        class += 1;
    }
    table
};

/// Which byte a fresh block of each class reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassPatterns {
    /// Every class uses `Config::fill`.
    Uniform,
    /// The built-in table `DISTINCT_PATTERNS`: byte `0xA0 + class`.
    Distinct,
    /// A table given in code, one byte per class (the last row is large blocks).
    Table([u8; CLASS_COUNT]),
}

/// `class_patterns=1`: one byte per class, `0xA0 + class`, so a value seen in a
/// crash names its class. None is 0x00 or 0xFF, so an 8-byte load of any of them
/// is a non-canonical address on x86_64.
pub const DISTINCT_PATTERNS: [u8; CLASS_COUNT] = {
    let mut table = [0u8; CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        table[class] = 0xA0 + class as u8;
        class += 1;
    }
    table
};

/// Default pattern: an 8-byte load of 0xAA.. is a non-canonical pointer on x86_64.
pub const DEFAULT_FILL: u8 = 0xAA;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub fill: u8,
    pub free_fill: Option<u8>,
    pub class_patterns: ClassPatterns,
    pub backend: Backend,
    /// The refpage_create syscall number to use instead of probing the
    /// patch's 448 (a test kernel's number); also probes under seccomp.
    pub refpage_nr: Option<u32>,
    /// Requests of at most this many bytes are served by the slab front end.
    pub large_threshold: usize,
    /// Arm64 memory tagging (`mte=off|sync|async`).
    pub mte: Mte,
    /// How MTE tags are chosen (`mte_tags=class|random`).
    pub mte_tags: MteTags,
    /// Print a stats summary to stderr at exit.
    pub stats: bool,
    /// Print the effective configuration to stderr at initialization.
    pub verbose: bool,
    /// Decode SIGSEGV/SIGBUS: name registers holding a pattern (`crash.rs`).
    pub crash_report: bool,
}

impl Config {
    pub const DEFAULT: Config = Config {
        fill: DEFAULT_FILL,
        free_fill: None,
        class_patterns: ClassPatterns::Uniform,
        backend: Backend::Auto,
        refpage_nr: None,
        large_threshold: MAX_SMALL_SIZE,
        mte: Mte::Off,
        mte_tags: MteTags::PerClass,
        stats: false,
        verbose: false,
        crash_report: false,
    };

    /// The pattern byte of class `class` (`LARGE_CLASS` for large blocks).
    #[inline]
    pub const fn pattern(&self, class: usize) -> u8 {
        match &self.class_patterns {
            ClassPatterns::Uniform => self.fill,
            ClassPatterns::Distinct => DISTINCT_PATTERNS[class],
            ClassPatterns::Table(table) => table[class],
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// A problem found in an options string; the slices borrow from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    UnknownKey(&'a [u8]),
    BadValue { key: &'a [u8], value: &'a [u8], expected: &'static str },
}

/// Applies `options` (`key=value` items separated by ':' or ',') on top of
/// `config`. Each problem is handed to `report` and the item is skipped.
pub fn apply_options<'a>(config: &mut Config, options: &'a [u8], report: &mut dyn FnMut(OptionError<'a>)) {
    for item in options.split(|&b| b == b':' || b == b',') {
        let item = trim(item);
        if item.is_empty() {
            continue;
        }
        let (key, value) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&item[..eq]), trim(&item[eq + 1..])),
            None => (item, &b"1"[..]),
        };
        if let Err(expected) = apply_one(config, key, value) {
            if expected.is_empty() {
                report(OptionError::UnknownKey(key));
            } else {
                report(OptionError::BadValue { key, value, expected });
            }
        }
    }
}

/// Err("") for an unknown key, Err(what was expected) for a bad value.
fn apply_one(config: &mut Config, key: &[u8], value: &[u8]) -> Result<(), &'static str> {
    match key {
        b"fill" => config.fill = parse_byte(value).ok_or("a byte, e.g. 0xaa")?,
        b"free_fill" => {
            config.free_fill =
                if is_off(value) { None } else { Some(parse_byte(value).ok_or("a byte, e.g. 0x55, or off")?) }
        }
        b"class_patterns" => {
            config.class_patterns =
                if parse_bool(value).ok_or("0 or 1")? { ClassPatterns::Distinct } else { ClassPatterns::Uniform }
        }
        b"backend" => {
            config.backend = match value {
                b"auto" => Backend::Auto,
                b"refpage" => Backend::Refpage,
                b"memfd" => Backend::Memfd,
                b"eager" => Backend::Eager,
                _ => return Err("auto, refpage, memfd or eager"),
            }
        }
        b"refpage_nr" => {
            const EXPECTED: &str = "a syscall number from 0 to 4095, or off";
            config.refpage_nr = if is_off(value) {
                None
            } else {
                Some(parse_number(value).filter(|&nr| nr < 4096).ok_or(EXPECTED)? as u32)
            };
        }
        b"large_threshold" => {
            const EXPECTED: &str = "a size from 0 to 32K";
            let bytes = parse_size(value).ok_or(EXPECTED)?;
            if bytes > MAX_SMALL_SIZE {
                return Err(EXPECTED);
            }
            config.large_threshold = bytes;
        }
        b"mte" => {
            config.mte = match value {
                b"off" | b"0" => Mte::Off,
                b"sync" | b"1" => Mte::Sync,
                b"async" => Mte::Async,
                _ => return Err("off, sync or async"),
            }
        }
        b"mte_tags" => {
            config.mte_tags = match value {
                b"class" => MteTags::PerClass,
                b"random" => MteTags::Random,
                _ => return Err("class or random"),
            }
        }
        b"stats" => config.stats = parse_bool(value).ok_or("0 or 1")?,
        b"verbose" => config.verbose = parse_bool(value).ok_or("0 or 1")?,
        b"crash_report" => config.crash_report = parse_bool(value).ok_or("0 or 1")?,
        _ => return Err(""),
    }
    Ok(())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn is_off(value: &[u8]) -> bool {
    matches!(value, b"off" | b"none" | b"no" | b"false")
}

fn parse_bool(value: &[u8]) -> Option<bool> {
    match value {
        b"1" | b"on" | b"yes" | b"true" => Some(true),
        b"0" | b"off" | b"no" | b"false" => Some(false),
        _ => None,
    }
}

/// Decimal or 0x-prefixed hexadecimal, without overflow.
fn parse_number(value: &[u8]) -> Option<u64> {
    let (digits, radix) = match value {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (value, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut number: u64 = 0;
    for &b in digits {
        let digit = (b as char).to_digit(radix)? as u64;
        number = number.checked_mul(radix as u64)?.checked_add(digit)?;
    }
    Some(number)
}

fn parse_byte(value: &[u8]) -> Option<u8> {
    u8::try_from(parse_number(value)?).ok()
}

/// A number with an optional K, M or G suffix (powers of 1024).
fn parse_size(value: &[u8]) -> Option<usize> {
    let (digits, shift) = match value {
        [rest @ .., b'k' | b'K'] => (rest, 10),
        [rest @ .., b'm' | b'M'] => (rest, 20),
        [rest @ .., b'g' | b'G'] => (rest, 30),
        _ => (value, 0),
    };
    let number = parse_number(digits)?;
    let bytes = number.checked_mul(1u64 << shift)?;
    usize::try_from(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &str) -> (Config, usize) {
        let mut config = Config::DEFAULT;
        let mut problems = 0;
        apply_options(&mut config, options.as_bytes(), &mut |_| problems += 1);
        (config, problems)
    }

    #[test]
    fn empty_string_keeps_defaults() {
        assert_eq!(parse(""), (Config::DEFAULT, 0));
        assert_eq!(parse(" : ,, "), (Config::DEFAULT, 0));
    }

    #[test]
    fn every_key_takes_effect() {
        let (config, problems) =
            parse("fill=0x11:free_fill=0x55:class_patterns=1:backend=eager:large_threshold=4K:stats=1:verbose=yes:refpage_nr=500:crash_report=1");
        assert_eq!(problems, 0);
        assert_eq!(config.fill, 0x11);
        assert_eq!(config.free_fill, Some(0x55));
        assert_eq!(config.class_patterns, ClassPatterns::Distinct);
        assert_eq!(config.backend, Backend::Eager);
        assert_eq!(config.large_threshold, 4096);
        assert!(config.stats && config.verbose && config.crash_report);
        assert_eq!(config.refpage_nr, Some(500));
    }

    #[test]
    fn every_backend_and_refpage_nr_forms() {
        for (value, backend) in [
            ("auto", Backend::Auto),
            ("refpage", Backend::Refpage),
            ("memfd", Backend::Memfd),
            ("eager", Backend::Eager),
        ] {
            let (config, problems) = parse(&format!("backend={value}"));
            assert_eq!((config.backend, problems), (backend, 0));
            assert_eq!(backend.name(), value);
        }
        assert_eq!(parse("refpage_nr=0x1f4").0.refpage_nr, Some(500));
        let mut config = Config { refpage_nr: Some(500), ..Config::DEFAULT };
        apply_options(&mut config, b"refpage_nr=off", &mut |_| panic!());
        assert_eq!(config.refpage_nr, None);
    }

    #[test]
    fn decimal_hex_commas_spaces_and_bare_flags() {
        let (config, problems) = parse(" fill = 170 , stats ,large_threshold=0x100");
        assert_eq!(problems, 0);
        assert_eq!(config.fill, 170);
        assert!(config.stats);
        assert_eq!(config.large_threshold, 256);
    }

    #[test]
    fn free_fill_can_be_turned_off_again() {
        let mut config = Config::DEFAULT;
        config.free_fill = Some(0x55);
        apply_options(&mut config, b"free_fill=off", &mut |_| panic!());
        assert_eq!(config.free_fill, None);
    }

    #[test]
    fn malformed_values_are_reported_and_keep_the_old_value() {
        let mut seen = 0;
        let mut config = Config::DEFAULT;
        let input = b"fill=0x1ff:fill=zz:fill=:large_threshold=64K:large_threshold=99999999999999999999G:stats=maybe:backend=lazy:fill=0x:refpage_nr=4096:refpage_nr=x";
        apply_options(&mut config, input, &mut |problem| {
            assert!(matches!(problem, OptionError::BadValue { .. }), "{problem:?}");
            seen += 1;
        });
        assert_eq!(seen, 10);
        assert_eq!(config, Config::DEFAULT);
    }

    #[test]
    fn unknown_keys_are_reported_by_name() {
        let mut names = [&b""[..]; 2];
        let mut count = 0;
        let mut config = Config::DEFAULT;
        apply_options(&mut config, b"colour=blue:fill=0x12:=3", &mut |problem| {
            if let OptionError::UnknownKey(key) = problem {
                names[count] = key;
                count += 1;
            }
        });
        assert_eq!(count, 2);
        assert_eq!(names, [&b"colour"[..], &b""[..]]);
        assert_eq!(config.fill, 0x12);
    }

    #[test]
    fn mte_options() {
        assert_eq!((Config::DEFAULT.mte, Config::DEFAULT.mte_tags), (Mte::Off, MteTags::PerClass));
        let (config, problems) = parse("mte=sync:mte_tags=random");
        assert_eq!((config.mte, config.mte_tags, problems), (Mte::Sync, MteTags::Random, 0));
        let (config, problems) = parse("mte=async:mte_tags=class");
        assert_eq!((config.mte, config.mte_tags, problems), (Mte::Async, MteTags::PerClass, 0));
        let (config, problems) = parse("mte=maybe:mte_tags=odd");
        assert_eq!((config, problems), (Config::DEFAULT, 2));
        assert!(DEFAULT_CLASS_TAGS.iter().all(|&tag| (1..=15).contains(&tag)));
        assert!(DEFAULT_CLASS_TAGS.windows(2).all(|pair| pair[0] != pair[1]));
    }

    #[test]
    fn class_pattern_tables() {
        let config = Config { class_patterns: ClassPatterns::Distinct, ..Config::DEFAULT };
        assert_eq!(config.pattern(0), 0xA0);
        assert_eq!(config.pattern(CLASS_COUNT - 1), 0xA0 + CLASS_COUNT as u8 - 1);
        let mut table = [0x33; CLASS_COUNT];
        table[3] = 0x44;
        let config = Config { class_patterns: ClassPatterns::Table(table), ..Config::DEFAULT };
        assert_eq!((config.pattern(2), config.pattern(3)), (0x33, 0x44));
        assert_eq!(Config::DEFAULT.pattern(7), DEFAULT_FILL);
    }
}
