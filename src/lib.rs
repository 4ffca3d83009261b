//! pattern-alloc: a heap allocator that makes uninitialized-memory bugs loud.
//!
//! Every byte of a fresh block that the program has not written reads as a
//! chosen pattern (0xAA by default), never as stale data or as zeros:
//!
//! ```no_run
//! use pattern_alloc::PatternAlloc;
//!
//! #[global_allocator]
//! static A: PatternAlloc = PatternAlloc::new();
//! ```
//!
//! The `PATTERN_ALLOC` environment variable (`fill=0xaa:free_fill=0x55:stats=1`)
//! overrides the configuration given in code; see `config` for the keys.
//! Data flows one way: this face -> `dispatch` -> `small` or `large` -> `pages`
//! -> `sys`.

#![deny(unsafe_op_in_unsafe_fn)]

mod config;
mod crash;
mod dispatch;
mod fill;
mod init;
#[doc(hidden)]
pub mod inject;
mod large;
mod lock;
mod pages;
pub mod raw;
mod report;
mod size_class;
mod small;
mod stats;
mod sys;
mod tag;

use core::alloc::{GlobalAlloc, Layout};

pub use config::{
    apply_options, Backend, ClassPatterns, Config, Mte, MteTags, OptionError, DEFAULT_CLASS_TAGS, DEFAULT_FILL,
    DISTINCT_PATTERNS,
};
pub use size_class::{class_of, class_size, CLASS_COUNT, LARGE_CLASS, MAX_SMALL_SIZE, SMALL_CLASS_COUNT};
pub use stats::{ClassStats, Stats};

/// The allocator. `PatternAlloc::new()` is const, so it can be the global
/// allocator; the builder methods change the in-code configuration, which the
/// `PATTERN_ALLOC` environment variable overrides key by key at the first
/// allocation. All instances share one process-wide heap, configured by the
/// first instance that allocates.
#[derive(Clone, Copy, Debug)]
pub struct PatternAlloc {
    config: Config,
}

impl PatternAlloc {
    /// Alloc pattern 0xAA for every class, no free pattern, `backend=auto`.
    pub const fn new() -> Self {
        PatternAlloc { config: Config::DEFAULT }
    }

    pub const fn with_config(config: Config) -> Self {
        PatternAlloc { config }
    }

    /// The byte unwritten memory of every class reads as.
    pub const fn fill(mut self, byte: u8) -> Self {
        self.config.fill = byte;
        self
    }

    /// The byte a freed small block reads as until it is reused (C4).
    pub const fn free_fill(mut self, byte: u8) -> Self {
        self.config.free_fill = Some(byte);
        self
    }

    /// One pattern byte per size class; the last entry is for large blocks.
    pub const fn class_patterns(mut self, table: [u8; CLASS_COUNT]) -> Self {
        self.config.class_patterns = ClassPatterns::Table(table);
        self
    }

    /// The built-in per-class table (`DISTINCT_PATTERNS`, `class_patterns=1`).
    pub const fn distinct_class_patterns(mut self) -> Self {
        self.config.class_patterns = ClassPatterns::Distinct;
        self
    }

    pub const fn backend(mut self, backend: Backend) -> Self {
        self.config.backend = backend;
        self
    }

    /// Requests above this many bytes (at most `MAX_SMALL_SIZE`) get their own mapping.
    pub const fn large_threshold(mut self, bytes: usize) -> Self {
        self.config.large_threshold = if bytes > MAX_SMALL_SIZE { MAX_SMALL_SIZE } else { bytes };
        self
    }

    /// Arm64 memory tagging (`mte=`): blocks carry a tag per size class and
    /// stale or overflowing pointers trap. Ignored where MTE is absent.
    pub const fn mte(mut self, mode: Mte) -> Self {
        self.config.mte = mode;
        self
    }

    /// How MTE tags are chosen (`mte_tags=`).
    pub const fn mte_tags(mut self, tags: MteTags) -> Self {
        self.config.mte_tags = tags;
        self
    }

    /// Whether blocks handed out carry MTE tags (`mte=` asked for it and the
    /// hardware has it).
    pub fn mte_active(&self) -> bool {
        init::runtime(&self.config);
        tag::enabled()
    }

    /// Print a stats summary to stderr at process exit.
    pub const fn stats_at_exit(mut self, on: bool) -> Self {
        self.config.stats = on;
        self
    }

    /// Print the effective configuration to stderr at initialization.
    pub const fn verbose(mut self, on: bool) -> Self {
        self.config.verbose = on;
        self
    }

    /// The configuration in force: this instance's, or the first initializer's,
    /// with `PATTERN_ALLOC` applied.
    pub fn effective_config(&self) -> Config {
        *init::runtime(&self.config).config()
    }

    /// The pattern byte a fresh block of this layout reads as.
    pub fn pattern_of(&self, layout: Layout) -> u8 {
        init::runtime(&self.config).config().pattern(self.class_of_layout(layout))
    }

    /// The size class a block of this layout comes from (`LARGE_CLASS` for
    /// large blocks): `class_size` of it is the usable size of a fresh block.
    pub fn class_of_layout(&self, layout: Layout) -> usize {
        dispatch::class_of_layout(init::runtime(&self.config), layout.size(), layout.align())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        init::runtime(&self.config);
        init::stats_snapshot()
    }

    /// Writes the stats summary to stderr (what `stats=1` prints at exit).
    pub fn print_stats(&self) {
        init::runtime(&self.config);
        report::print_stats(&init::stats_snapshot());
    }

    /// The usable size of a block: every byte of it follows the contract.
    ///
    /// # Safety
    /// `ptr` must be a live block returned by this allocator.
    pub unsafe fn usable_size(&self, ptr: *const u8) -> usize {
        unsafe { dispatch::usable_size(init::runtime(&self.config), ptr as *mut u8) }
    }
}

impl Default for PatternAlloc {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for PatternAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        dispatch::allocate(init::runtime(&self.config), layout.size(), layout.align(), false)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        dispatch::allocate(init::runtime(&self.config), layout.size(), layout.align(), true)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { dispatch::deallocate(init::runtime(&self.config), ptr) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { dispatch::reallocate(init::runtime(&self.config), ptr, layout.size(), layout.align(), new_size) }
    }
}
