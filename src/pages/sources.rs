//! Pattern sources: for each pattern byte a lazy backend serves, the file
//! descriptor whose private mappings read as that byte (a refpage fd or a
//! sealed memfd), with the identity it had when we made it.
//!
//! The program may close our descriptor (closefrom, close_range) or get its
//! number back for another file, so a source is checked (`still_ours`) before
//! every use and after every mapping made from it; one that is gone is made
//! again. We never close a lost descriptor number (it is not ours any more),
//! and a new source replaces the lost one, so a process holds at most one
//! descriptor per pattern. Mappings keep their file alive by themselves.
//!
//! Bounded: at most `MAX_SOURCES` patterns (each memfd costs its window size
//! in shmem), and at most `MAX_CREATED` sources made over the process's life,
//! so a program that keeps closing our descriptors cannot make us pin new
//! files without end. Past either bound the caller falls back to eager.

use super::sys_lazy::{self, Identity};
use crate::lock::{Guard, SpinLock};
use crate::stats::{self, GLOBAL};

pub const MAX_SOURCES: usize = 8;
const MAX_CREATED: u64 = MAX_SOURCES as u64 + 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Refpage,
    Memfd,
}

/// What a refpage descriptor's /proc/self/fd link reads.
pub const REFPAGE_LINK: &[u8] = b"anon_inode:[refpage]";

#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub fd: i32,
    pub kind: Kind,
    pub pattern: u8,
    identity: Identity,
}

impl Source {
    /// Whether `fd` still names the file we made. A refpage shares its
    /// (anonymous) inode with every other anon_inode file, so its link name is
    /// checked too.
    pub fn still_ours(&self) -> bool {
        if sys_lazy::identity(self.fd) != Some(self.identity) {
            return false;
        }
        match self.kind {
            Kind::Memfd => true,
            Kind::Refpage => link_is(self.fd, REFPAGE_LINK),
        }
    }
}

/// Whether /proc/self/fd/<fd> reads exactly `expected`.
pub fn link_is(fd: i32, expected: &[u8]) -> bool {
    let mut target = [0u8; 64];
    sys_lazy::fd_link(fd, &mut target).is_some_and(|n| &target[..n] == expected)
}

pub struct Sources {
    entries: [Option<Source>; MAX_SOURCES],
    created: u64,
}

static SOURCES: SpinLock<Sources> = SpinLock::new(Sources { entries: [None; MAX_SOURCES], created: 0 });

/// The table, locked. Creating a source (a memfd fill, a probe) happens under
/// this lock; it is the innermost allocator lock.
pub fn lock() -> Guard<'static, Sources> {
    SOURCES.lock()
}

pub fn lock_for_fork() {
    SOURCES.acquire_for_fork();
}

pub fn unlock_after_fork() {
    SOURCES.release_after_fork();
}

impl Sources {
    /// A checked source of `kind` for `pattern`, made with `create` (which
    /// returns a descriptor above 2 that it verified) when there is none or
    /// the old one was lost. None when `create` fails or a bound is reached.
    pub fn get(&mut self, pattern: u8, kind: Kind, create: &mut dyn FnMut(u8) -> Option<i32>) -> Option<Source> {
        let slot = self.entries.iter().position(|e| e.is_some_and(|s| s.pattern == pattern && s.kind == kind));
        if let Some(index) = slot {
            let source = self.entries[index]?;
            if source.still_ours() {
                return Some(source);
            }
            // Lost: the number is not ours any more, so it is left alone.
            self.entries[index] = None;
            stats::add(&GLOBAL.lazy_sources_lost, 1);
        }
        let free = self.entries.iter().position(Option::is_none)?;
        if self.created >= MAX_CREATED {
            return None;
        }
        let fd = create(pattern)?;
        self.adopt(free, fd, kind, pattern)
    }

    /// Records a descriptor just made (and verified) by the caller.
    pub fn add(&mut self, fd: i32, kind: Kind, pattern: u8) -> Option<Source> {
        let free = self.entries.iter().position(Option::is_none)?;
        self.adopt(free, fd, kind, pattern)
    }

    fn adopt(&mut self, index: usize, fd: i32, kind: Kind, pattern: u8) -> Option<Source> {
        self.created += 1;
        stats::add(&GLOBAL.lazy_sources, 1);
        let Some(identity) = sys_lazy::identity(fd) else {
            sys_lazy::close(fd);
            return None;
        };
        let source = Source { fd, kind, pattern, identity };
        self.entries[index] = Some(source);
        Some(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd() -> Option<i32> {
        sys_lazy::memfd_create(b"sources-test\0")
    }

    #[test]
    fn a_closed_or_reused_descriptor_is_replaced_and_never_closed() {
        let mut table = Sources { entries: [None; MAX_SOURCES], created: 0 };
        let first = table.get(0x11, Kind::Memfd, &mut |_| memfd()).unwrap();
        assert!(first.still_ours());
        assert_eq!(table.get(0x11, Kind::Memfd, &mut |_| panic!("no new source while ours")).unwrap().fd, first.fd);
        // The program closes it and opens something that takes the number.
        sys_lazy::close(first.fd);
        let foreign = unsafe { libc::open(c"/proc/self/status".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        let second = table.get(0x11, Kind::Memfd, &mut |_| memfd()).unwrap();
        assert!(second.still_ours());
        if foreign == first.fd {
            assert!(!first.still_ours());
            assert_ne!(second.fd, first.fd);
        }
        // The foreign descriptor was left open.
        assert!(sys_lazy::identity(foreign).is_some());
        sys_lazy::close(foreign);
        sys_lazy::close(second.fd);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = Sources { entries: [None; MAX_SOURCES], created: 0 };
        let made: Vec<Source> =
            (0..MAX_SOURCES as u8).map(|p| table.get(p, Kind::Memfd, &mut |_| memfd()).unwrap()).collect();
        assert!(table.get(0xEE, Kind::Memfd, &mut |_| panic!("over the bound")).is_none());
        made.iter().for_each(|s| sys_lazy::close(s.fd));
        table.created = MAX_CREATED;
        assert!(table.get(0, Kind::Memfd, &mut |_| panic!("over the creation bound")).is_none());
    }
}
