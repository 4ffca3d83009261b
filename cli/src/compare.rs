//! Comparing runs: which streams differ, where first, and how to show a line.

use crate::capture::Outcome;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub fn of(self, outcome: &Outcome) -> &[u8] {
        match self {
            Stream::Stdout => &outcome.stdout,
            Stream::Stderr => &outcome.stderr,
        }
    }
}

/// Whether two runs look the same from outside: both streams and the status.
pub fn same(a: &Outcome, b: &Outcome) -> bool {
    a.status == b.status && a.stdout == b.stdout && a.stderr == b.stderr
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split(|&b| b == b'\n').collect()
}

/// The first line (0-based) where any of `texts` differs from the first one,
/// and each text's version of it (None: the text ended before it).
pub fn first_difference<'a>(texts: &[&'a [u8]]) -> Option<(usize, Vec<Option<&'a [u8]>>)> {
    let split: Vec<Vec<&[u8]>> = texts.iter().map(|t| lines(t)).collect();
    let longest = split.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest).find_map(|index| {
        let versions: Vec<Option<&[u8]>> = split.iter().map(|l| l.get(index).copied()).collect();
        if versions.iter().all(|v| *v == versions[0]) {
            None
        } else {
            Some((index, versions))
        }
    })
}

/// A line as shown in a report: control bytes escaped, cut at `width` characters.
pub fn show(line: Option<&[u8]>, width: usize) -> String {
    let Some(line) = line else { return "(output ended before this line)".to_string() };
    let mut shown = String::new();
    let mut count = 0;
    for chunk in line.utf8_chunks() {
        let escaped_invalid = chunk.invalid().iter().map(|b| format!("\\x{b:02x}"));
        let valid =
            chunk.valid().chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() });
        for piece in valid.chain(escaped_invalid) {
            if count >= width {
                shown.push_str("...");
                return shown;
            }
            shown.push_str(&piece);
            count += 1;
        }
    }
    shown
}

/// Words in which a value read from memory filled with `pattern` typically
/// shows up: repeated bytes in hex, as 16, 32 and 64-bit numbers in decimal
/// (unsigned and signed), and the byte itself. Zero is left out: it is everywhere.
pub fn pattern_words(pattern: u8) -> Vec<String> {
    if pattern == 0 {
        return Vec::new();
    }
    let mut words = vec![format!("{pattern}"), format!("{pattern:02x}{pattern:02x}"), format!("{}", pattern as i8)];
    let wide16 = u16::from_ne_bytes([pattern; 2]);
    let wide32 = u32::from_ne_bytes([pattern; 4]);
    let wide64 = u64::from_ne_bytes([pattern; 8]);
    words.extend([
        wide16.to_string(),
        (wide16 as i16).to_string(),
        wide32.to_string(),
        (wide32 as i32).to_string(),
        wide64.to_string(),
        (wide64 as i64).to_string(),
    ]);
    words.sort();
    words.dedup();
    words
}

/// How far above a repeated pattern a number may be and still count as
/// "the pattern plus a few": a counter that started at the pattern.
const NEAR: u64 = 4096;

/// The first word of `line` that looks like `pattern` (see `pattern_words`),
/// and how far above the pattern it is: a hex word counts when it contains
/// the byte repeated at least twice, a decimal number when it is at most
/// `NEAR` above the 16, 32 or 64-bit pattern (signed or unsigned).
pub fn pattern_in_line(line: &[u8], pattern: u8) -> Option<(String, u64)> {
    let words = pattern_words(pattern);
    if words.is_empty() {
        return None;
    }
    let hex_pair = format!("{pattern:02x}{pattern:02x}");
    let wide = [
        u64::from(u16::from_ne_bytes([pattern; 2])),
        u64::from(u32::from_ne_bytes([pattern; 4])),
        u64::from_ne_bytes([pattern; 8]),
    ];
    let signed = [i64::from(i16::from_ne_bytes([pattern; 2])), i64::from(i32::from_ne_bytes([pattern; 4]))];
    let text = String::from_utf8_lossy(line).to_lowercase();
    // Bytes shown escaped, as Rust's escape_ascii or a C "\\x%02x" loop prints them.
    let escaped = format!("\\x{pattern:02x}\\x{pattern:02x}");
    if text.contains(&escaped) {
        return Some((escaped, 0));
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|word| !word.is_empty()).find_map(|word| {
        let digits = word.trim_start_matches("0x");
        if words.iter().any(|w| w == word) || (digits.len() >= 4 && digits.contains(&hex_pair)) {
            return Some((word.to_string(), 0));
        }
        if let Ok(number) = word.parse::<u64>() {
            let above = wide.iter().filter(|&&w| w > 0xff && number >= w).map(|&w| number - w).min();
            return above.filter(|&d| d < NEAR).map(|d| (word.to_string(), d));
        }
        let number = word.parse::<i64>().ok()?;
        let above = signed.iter().filter(|&&w| w < -1 && number >= w).map(|&w| (number - w) as u64).min();
        above.filter(|&d| d < NEAR).map(|d| (word.to_string(), d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_finds_the_line_and_each_version() {
        let (index, versions) = first_difference(&[b"a\nb\nc", b"a\nb\nX", b"a\nb"]).unwrap();
        assert_eq!(index, 2);
        assert_eq!(versions, vec![Some(&b"c"[..]), Some(&b"X"[..]), None]);
        assert!(first_difference(&[b"same\n", b"same\n"]).is_none());
    }

    #[test]
    fn pattern_values_are_recognized() {
        let found = pattern_in_line;
        assert_eq!(found(b"total: 2863311530 items", 0xaa), Some(("2863311530".to_string(), 0)));
        assert_eq!(found(b"4 letters: 2863311532", 0xaa), Some(("2863311532".to_string(), 2)));
        assert_eq!(found(b"id=0xaaaaaaaa", 0xaa), Some(("0xaaaaaaaa".to_string(), 0)));
        assert_eq!(found(b"misses: -1", 0xff), Some(("-1".to_string(), 0)));
        assert_eq!(found(b"offset -21846", 0xaa), Some(("-21846".to_string(), 0)));
        assert_eq!(found(b"total: 12 of 100000", 0xaa), None);
        assert_eq!(found(b"total: 0", 0x00), None);
        assert_eq!(found(b"slot: ab\\xaa\\xaa\\xaa", 0xaa), Some(("\\xaa\\xaa".to_string(), 0)));
    }

    #[test]
    fn show_escapes_and_cuts() {
        assert_eq!(show(Some(b"a\tb"), 10), "a\\tb");
        assert_eq!(show(Some(b"abcdef"), 3), "abc...");
        assert_eq!(show(Some(b"a\xaa\xffb"), 10), "a\\xaa\\xffb");
        assert!(show(None, 10).contains("ended"));
    }
}
