//! Ordinary Rust programs on top of the allocator: Vec, String, HashMap,
//! BTreeMap, Box workloads whose values are checked, and the spare capacity
//! of a Vec reading as the pattern (C1 through the std types).

use core::alloc::Layout;
use core::hint::black_box;
use core::mem::MaybeUninit;
use core::ptr::read_volatile;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

/// Checks that every spare slot of `v` reads as the allocation's pattern.
fn assert_spare_is_pattern<T>(v: &mut Vec<T>, what: &str) {
    let cap = v.capacity();
    let pattern = A.pattern_of(Layout::array::<T>(cap).unwrap());
    let spare: &mut [MaybeUninit<T>] = v.spare_capacity_mut();
    let p = black_box(spare.as_mut_ptr() as *const u8);
    let len = core::mem::size_of_val(spare);
    unsafe { assert_bytes(p, len, pattern, format_args!("{what}: spare capacity")) };
}

#[test]
fn vec_with_capacity_spare_reads_as_pattern() {
    for cap in [1, 7, 16, 100, 1000, 4096, 5000, 32768, 40000, 1 << 20] {
        let mut v: Vec<u8> = Vec::with_capacity(cap);
        assert!(v.capacity() >= cap);
        assert_spare_is_pattern(&mut v, &format!("Vec<u8>::with_capacity({cap})"));
        v.extend((0..cap / 2).map(|i| i as u8));
        assert_spare_is_pattern(&mut v, &format!("Vec<u8>::with_capacity({cap}) half full"));
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u8));
    }
    // Wider elements: each spare u64 reads as eight pattern bytes.
    for cap in [1, 3, 100, 5000, 100_000] {
        let mut v: Vec<u64> = Vec::with_capacity(cap);
        let pattern = A.pattern_of(Layout::array::<u64>(cap).unwrap());
        for slot in v.spare_capacity_mut().iter_mut().take(4) {
            let word = unsafe { read_volatile(black_box(slot.as_mut_ptr())) };
            assert_eq!(word, u64::from_ne_bytes([pattern; 8]), "Vec<u64>::with_capacity({cap}) spare slot");
        }
        assert_spare_is_pattern(&mut v, &format!("Vec<u64>::with_capacity({cap})"));
    }
}

#[test]
fn vec_growth_keeps_values_and_new_spare_reads_as_pattern() {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..200_000u64 {
        v.push(i * 3 + 1);
        // Right after each growth (len just past the old capacity): the new spare is the pattern.
        if v.len() - 1 == v.capacity() / 2 || v.len() == 1 {
            let what = format!("Vec<u64> at len {}", v.len());
            assert_spare_is_pattern(&mut v, &what);
        }
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3 + 1));
    v.truncate(1000);
    v.shrink_to_fit();
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3 + 1));
    v.reserve_exact(50_000);
    assert_spare_is_pattern(&mut v, "Vec<u64> after reserve_exact");
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3 + 1));
}

#[test]
fn vec_of_vecs_of_every_size() {
    let mut all: Vec<Vec<u8>> = (0..3000).map(|i| vec![(i % 251) as u8; i * 7 % 5000]).collect();
    for round in 0..3 {
        for (i, v) in all.iter().enumerate() {
            assert!(v.iter().all(|&x| x == (i % 251) as u8), "round {round} vec {i}");
        }
        // Replace every third with a longer one, drop every fifth.
        for (i, v) in all.iter_mut().enumerate() {
            if i % 3 == round {
                v.resize(v.len() * 2 + 10, (i % 251) as u8);
            }
            if i % 5 == round {
                *v = Vec::new();
            }
        }
    }
}

#[test]
fn strings() {
    let mut strings: Vec<String> = (0..20_000).map(|i| format!("string number {i} {}", "x".repeat(i % 97))).collect();
    for (i, s) in strings.iter().enumerate() {
        assert_eq!(*s, format!("string number {i} {}", "x".repeat(i % 97)));
    }
    let joined = strings.join("|");
    assert_eq!(joined.split('|').count(), strings.len());
    for s in strings.iter_mut().step_by(2) {
        s.push_str(&"y".repeat(300));
        s.shrink_to_fit();
    }
    for (i, s) in strings.iter().enumerate() {
        let tail = if i % 2 == 0 { 300 } else { 0 };
        assert_eq!(s.len(), format!("string number {i} ").len() + i % 97 + tail);
    }
    let mut s = String::with_capacity(10_000);
    let spare = s.capacity();
    // String::with_capacity: the unused buffer reads as the pattern too.
    unsafe {
        let v = s.as_mut_vec();
        assert!(v.capacity() >= spare);
        assert_spare_is_pattern(v, "String::with_capacity(10000)");
    }
    s.push_str("hello");
    assert_eq!(s, "hello");
}

#[test]
fn hash_maps() {
    let mut map: HashMap<u64, Vec<u8>> = HashMap::new();
    for i in 0..50_000u64 {
        map.insert(i, vec![(i % 256) as u8; (i % 300) as usize]);
    }
    for i in (0..50_000u64).step_by(2) {
        assert_eq!(map.remove(&i).map(|v| v.len()), Some((i % 300) as usize));
    }
    for i in 50_000..60_000u64 {
        map.insert(i, vec![(i % 256) as u8; 17]);
    }
    assert_eq!(map.len(), 35_000);
    for (&k, v) in &map {
        assert!(k % 2 == 1 || k >= 50_000, "key {k} was removed");
        let want_len = if k >= 50_000 { 17 } else { (k % 300) as usize };
        assert_eq!(v.len(), want_len);
        assert!(v.iter().all(|&x| x == (k % 256) as u8), "value of {k}");
    }
    let names: HashMap<String, usize> = (0..10_000).map(|i| (format!("name-{i}"), i)).collect();
    for i in 0..10_000 {
        assert_eq!(names[&format!("name-{i}")], i);
    }
    let set: HashSet<u64> = (0..100_000).map(|i| i * i).collect();
    assert!((0..100_000u64).all(|i| set.contains(&(i * i))));
}

#[test]
fn btree_maps_and_deques() {
    let mut tree: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0..30_000u64 {
        tree.insert(i * 7 % 30_011, i.to_string());
    }
    for i in 0..10_000u64 {
        tree.remove(&(i * 7 % 30_011));
    }
    assert_eq!(tree.len(), 20_000);
    for (k, v) in &tree {
        let i: u64 = v.parse().unwrap();
        assert_eq!(*k, i * 7 % 30_011);
        assert!(i >= 10_000);
    }
    let range: Vec<u64> = tree.range(1000..2000).map(|(k, _)| *k).collect();
    assert!(range.windows(2).all(|w| w[0] < w[1]));

    let mut deque: VecDeque<Box<[u64]>> = VecDeque::new();
    for i in 0..5000u64 {
        deque.push_back(vec![i; (i % 64) as usize].into_boxed_slice());
        if i % 3 == 0 {
            let front = deque.pop_front().unwrap();
            assert!(front.iter().all(|&x| x == front.first().copied().unwrap_or(0)));
        }
    }
    while let Some(b) = deque.pop_back() {
        assert!(b.windows(2).all(|w| w[0] == w[1]));
    }
}

#[test]
fn boxes_of_large_arrays() {
    // Large values through Box (large blocks) keep their contents.
    let boxes: Vec<Box<[u32; 20_000]>> = (0..20).map(|i| Box::new([i as u32; 20_000])).collect();
    for (i, b) in boxes.iter().enumerate() {
        assert!(b.iter().all(|&x| x == i as u32));
    }
    let big: Vec<u32> = (0..4_000_000).collect();
    assert_eq!(big.iter().map(|&x| x as u64).sum::<u64>(), 3_999_999 * 4_000_000 / 2);
}
