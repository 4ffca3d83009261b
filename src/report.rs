//! Messages to stderr without allocating: a fixed stack buffer formatted with
//! `core::fmt` and written with write(2). Fatal errors print one line and abort.

use core::fmt::{self, Write};

use crate::config::{ClassPatterns, Config};
use crate::size_class::{CLASS_COUNT, LARGE_CLASS};
use crate::stats::Stats;
use crate::sys;

/// A line buffer on the stack; text past its end is cut, never allocated.
pub struct LineBuffer {
    bytes: [u8; 512],
    len: usize,
}

impl LineBuffer {
    pub const fn new() -> Self {
        LineBuffer { bytes: [0; 512], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Writes the buffer to stderr and empties it.
    pub fn flush(&mut self) {
        sys::write_all(libc::STDERR_FILENO, self.as_bytes());
        self.len = 0;
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Shows bytes from an options string (not necessarily UTF-8) safely.
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take(64) {
            if b.is_ascii_graphic() || b == b' ' {
                f.write_char(b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// One line to stderr: "pattern-alloc: <message>\n".
pub fn line(message: fmt::Arguments<'_>) {
    let mut buffer = LineBuffer::new();
    let _ = write!(buffer, "pattern-alloc: {message}");
    if buffer.len == buffer.bytes.len() {
        buffer.len -= 1;
    }
    let _ = buffer.write_str("\n");
    buffer.flush();
}

/// Reports a broken invariant or a detected misuse, then aborts.
#[cold]
pub fn fatal(message: fmt::Arguments<'_>) -> ! {
    line(message);
    sys::abort()
}

pub fn print_config(config: &Config, backend: &str) {
    let mut buffer = LineBuffer::new();
    let _ = write!(buffer, "pattern-alloc: config fill={:#04x} free_fill=", config.fill);
    let _ = match config.free_fill {
        Some(byte) => write!(buffer, "{byte:#04x}"),
        None => write!(buffer, "off"),
    };
    let patterns = match config.class_patterns {
        ClassPatterns::Uniform => "uniform",
        ClassPatterns::Distinct => "distinct",
        ClassPatterns::Table(_) => "table",
    };
    let _ = write!(buffer, " class_patterns={patterns} backend={backend}");
    if let Some(nr) = config.refpage_nr {
        let _ = write!(buffer, " refpage_nr={nr}");
    }
    let _ = writeln!(
        buffer,
        " large_threshold={} stats={} verbose={} crash_report={}",
        config.large_threshold, config.stats as u8, config.verbose as u8, config.crash_report as u8
    );
    buffer.flush();
}

pub fn print_stats(stats: &Stats) {
    let mut buffer = LineBuffer::new();
    let total = stats.total();
    let _ = writeln!(
        buffer,
        "pattern-alloc: stats backend={} allocs={} frees={} live={} live_bytes={} mapped={}",
        stats.backend,
        total.allocs,
        total.frees,
        total.live(),
        total.live_bytes(),
        stats.bytes_mapped
    );
    buffer.flush();
    let _ = writeln!(
        buffer,
        "pattern-alloc:   patterned={} free_filled={} zeroed={} segments={} pages_decommitted={} large_cache_hits={} heaps={}/{}",
        stats.bytes_patterned,
        stats.bytes_free_filled,
        stats.bytes_zeroed,
        stats.segments,
        stats.pages_decommitted,
        stats.large_cache_hits,
        stats.heaps_in_use,
        stats.heaps_created
    );
    buffer.flush();
    let _ = writeln!(
        buffer,
        "pattern-alloc:   lazy={} lazy_fallbacks={} lazy_mappings={}/{} lazy_sources={} lazy_sources_lost={}",
        stats.bytes_lazy,
        stats.lazy_fallbacks,
        stats.lazy_mappings,
        stats.lazy_mapping_cap,
        stats.lazy_sources,
        stats.lazy_sources_lost
    );
    buffer.flush();
    let _ = writeln!(
        buffer,
        "pattern-alloc:   {:>6} {:>12} {:>12} {:>10} {:>14}",
        "class", "size", "allocs", "live", "live_bytes"
    );
    buffer.flush();
    for (class, row) in stats.classes.iter().enumerate().take(CLASS_COUNT) {
        if row.allocs == 0 {
            continue;
        }
        let _ = if class == LARGE_CLASS {
            write!(buffer, "pattern-alloc:   {:>6} {:>12}", "large", "-")
        } else {
            write!(buffer, "pattern-alloc:   {class:>6} {:>12}", row.block_size)
        };
        let _ = writeln!(buffer, " {:>12} {:>10} {:>14}", row.allocs, row.live(), row.live_bytes());
        buffer.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_not_allocated() {
        let mut buffer = LineBuffer::new();
        for _ in 0..100 {
            let _ = write!(buffer, "0123456789");
        }
        assert_eq!(buffer.as_bytes().len(), 512);
    }

    #[test]
    fn escaped_shows_control_bytes() {
        let mut buffer = LineBuffer::new();
        let _ = write!(buffer, "{}", Escaped(b"a=\x01\xff"));
        assert_eq!(buffer.as_bytes(), b"a=\\x01\\xff");
    }
}
