//! Many threads: blocks allocated in one thread, stamped, sent through a
//! channel, verified and freed in another; frees after the owning thread has
//! exited; then fresh allocations (on memory freed remotely) read as the pattern.

use core::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

const THREADS: usize = 8;

/// A block in flight between threads.
struct Sent {
    addr: usize,
    layout: Layout,
    seed: u64,
}

fn size_for(thread: usize, n: usize) -> usize {
    match (n * 7 + thread) % 23 {
        0 => 40_000 + n % 5000,                       // large
        1 => 100_000,                                 // large, cache-sized
        2..=5 => 1 + (n * 131 + thread * 17) % 32768, // any slab class
        _ => 1 + (n * 37 + thread) % 512,             // the common small sizes
    }
}

#[test]
fn cross_thread_frees_through_channels() {
    const PER_THREAD: usize = 3000;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<Sent>()).unzip();
    let barrier = Arc::new(Barrier::new(THREADS));
    let mut handles = Vec::new();
    for (t, rx) in receivers.into_iter().enumerate() {
        let tx = senders[(t + 1) % THREADS].clone();
        let barrier = barrier.clone();
        handles.push(thread::spawn(move || {
            barrier.wait();
            let mut received = 0usize;
            let verify_and_free = |s: Sent| {
                let p = s.addr as *mut u8;
                unsafe { check_stamp(p, s.layout.size(), s.seed) }
                    .unwrap_or_else(|e| panic!("thread {t}: block from another thread changed: {e}"));
                unsafe { A.dealloc(p, s.layout) };
            };
            for n in 0..PER_THREAD {
                let align = if n % 11 == 0 { 4096 } else { 8 };
                let l = layout(size_for(t, n), align);
                let b = alloc_checked(&A, l, format_args!("thread {t} alloc #{n}"));
                let seed = (t as u64) << 32 | n as u64;
                unsafe { stamp(b.ptr, l.size(), seed) };
                tx.send(Sent { addr: b.ptr as usize, layout: l, seed }).unwrap();
                while let Ok(s) = rx.try_recv() {
                    verify_and_free(s);
                    received += 1;
                }
            }
            drop(tx);
            barrier.wait();
            for s in rx {
                verify_and_free(s);
                received += 1;
            }
            // Fresh allocations now land on memory freed by other threads.
            for n in 0..2000 {
                let l = layout(size_for(t, n), 8);
                let b = alloc_checked(&A, l, format_args!("thread {t} after the exchange #{n}"));
                unsafe { free(&A, b) };
            }
            received
        }));
    }
    drop(senders);
    let received: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(received, THREADS * PER_THREAD);
}

#[test]
fn std_types_dropped_in_other_threads() {
    let (tx, rx) = mpsc::channel::<(usize, Vec<u8>, String, Box<[u64]>)>();
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..2000usize {
                    let v = vec![(i % 256) as u8; (i * 13 + t) % 3000];
                    let s = format!("{t}-{i}");
                    let b = vec![(t * 10_000 + i) as u64; i % 40].into_boxed_slice();
                    tx.send((t * 10_000 + i, v, s, b)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = {
        let rx = Arc::new(std::sync::Mutex::new(rx));
        (0..4)
            .map(|_| {
                let rx = rx.clone();
                thread::spawn(move || {
                    let mut n = 0;
                    loop {
                        let item = rx.lock().unwrap().recv();
                        let Ok((id, v, s, b)) = item else { break };
                        let (t, i) = (id / 10_000, id % 10_000);
                        assert_eq!(v.len(), (i * 13 + t) % 3000);
                        assert!(v.iter().all(|&x| x == (i % 256) as u8));
                        assert_eq!(s, format!("{t}-{i}"));
                        assert!(b.iter().all(|&x| x == id as u64) && b.len() == i % 40);
                        n += 1;
                    }
                    n
                })
            })
            .collect()
    };
    for p in producers {
        p.join().unwrap();
    }
    let total: usize = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(total, THREADS * 2000);
}

#[test]
fn frees_after_the_owning_thread_exited() {
    for round in 0..5u64 {
        let owners: Vec<_> = (0..THREADS)
            .map(|t| {
                thread::spawn(move || {
                    (0..500)
                        .map(|n| {
                            let l = layout(size_for(t, n), if n % 7 == 0 { 64 } else { 8 });
                            let b = alloc_checked(&A, l, "owner alloc");
                            let seed = round << 40 | (t as u64) << 20 | n as u64;
                            unsafe { stamp(b.ptr, l.size(), seed) };
                            (b.ptr as usize, l, seed)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // join() returns after each owner has exited (its heap is gone or abandoned).
        let blocks: Vec<_> = owners.into_iter().flat_map(|h| h.join().unwrap()).collect();
        for &(addr, l, seed) in &blocks {
            unsafe { check_stamp(addr as *const u8, l.size(), seed) }
                .unwrap_or_else(|e| panic!("block of an exited thread changed: {e}"));
        }
        // Free half here, half in new threads.
        let (mine, theirs): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|&(addr, _, _)| addr % 32 == 0);
        for (addr, l, _) in mine {
            unsafe { A.dealloc(addr as *mut u8, l) };
        }
        let chunks: Vec<Vec<(usize, Layout, u64)>> = theirs.chunks(300).map(|c| c.to_vec()).collect();
        let freers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                thread::spawn(move || {
                    for (addr, l, _) in chunk {
                        unsafe { A.dealloc(addr as *mut u8, l) };
                    }
                    // And allocate from this thread's heap: fresh or recycled, the pattern.
                    for n in 0..300 {
                        let b = alloc_checked(&A, layout(size_for(3, n), 8), "after foreign frees");
                        unsafe { free(&A, b) };
                    }
                })
            })
            .collect();
        for f in freers {
            f.join().unwrap();
        }
        for n in 0..1000 {
            let b = alloc_checked(&A, layout(size_for(5, n), 8), "main after the round");
            unsafe { free(&A, b) };
        }
    }
}

#[test]
fn same_class_hammered_by_all_threads() {
    // Every thread allocates and frees the same few classes, dirtying each block
    // before freeing it: whatever block a thread gets must read as the pattern.
    run_threads_at_once(THREADS, |t| {
        let mut held: Vec<Block> = Vec::new();
        for n in 0..20_000usize {
            let size = [24, 48, 96, 1000, 40_000][n % 5];
            if n % 5 == 4 && n % 100 != 4 {
                continue; // keep the large ones rarer
            }
            let b = alloc_checked(&A, layout(size, 8), format_args!("thread {t} #{n}"));
            unsafe { dirty(b.ptr, b.usable, 0xE0 + t as u8) };
            held.push(b);
            if held.len() > 64 {
                let b = held.swap_remove(n * 7 % held.len());
                unsafe { free(&A, b) };
            }
        }
        for b in held {
            unsafe { free(&A, b) };
        }
    });
}
