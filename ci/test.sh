#!/usr/bin/env bash
# The whole test suite, as the README gives it: `bash ci/test.sh`.
# Formatting, lints, tests in debug and release (the C/C++ suite under
# LD_PRELOAD included) and again under other options and each backend, the main
# job (a hunt that must find the bundled examples' bug), the uninit_capacity
# example (which exits non-zero if pattern-alloc shows an unwritten byte that is
# not the pattern), the benchmarks' build and comparison smoke run, arm64/MTE
# under qemu-aarch64, the refpage test kernel under QEMU, and the robustness
# checks (failure injection, loom, fuzzing). Root on Debian: missing packages
# are installed with apt.
set -euo pipefail
cd "$(dirname "$0")/.."

section() {
    printf '\n==== %s ====\n' "$*"
}

# Tools the suite needs (root, Debian; the sub-scripts below install their own
# packages too). The C/C++ tests of the LD_PRELOAD library compile with gcc/g++, read the
# export list with nm (binutils) and run real programs: python3 and sqlite3.
missing=()
for tool in python3:python3 gcc:gcc g++:g++ nm:binutils sqlite3:sqlite3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${missing[@]}"
fi

section "rustfmt: cargo fmt --all --check"
cargo fmt --all --check

section "clippy: cargo clippy --all-targets --workspace -- -D warnings"
cargo clippy --all-targets --workspace -- -D warnings

section "build: cargo build --release --workspace (the LD_PRELOAD library and its exports)"
cargo build --release --workspace
nm -D --defined-only target/release/libpattern_alloc.so | grep -qw malloc

section "tests (debug): cargo test --workspace"
cargo test --workspace

section "tests (release): cargo test --workspace --release"
cargo test --workspace --release

# The integration suite once more under configurations that route every path
# differently: all blocks large, and per-class patterns with a free pattern.
for options in "large_threshold=0" "class_patterns=1:free_fill=0x55:fill=0x00"; do
    section "tests (release) with PATTERN_ALLOC=$options"
    PATTERN_ALLOC="$options" cargo test -p allocator-tests --release
done

# The contract suite under each page backend (DESIGN.md §4): every backend must
# give the same contents. auto is refpage where the kernel has it, else memfd.
for backend in memfd eager auto; do
    section "tests (release) with PATTERN_ALLOC=backend=$backend"
    PATTERN_ALLOC="backend=$backend" cargo test -p allocator-tests --release
done

# examples/hunt.sh exits 0 only when `pattern-alloc hunt` found the bug (hunt exit 1).
section "main job: bash examples/hunt.sh (hunt finds the C example's uninitialized read)"
bash examples/hunt.sh

section "main job, Rust example: bash examples/hunt.sh rust"
bash examples/hunt.sh rust

section "example: cargo run --release --example uninit_capacity"
cargo run --release --example uninit_capacity

section "example with options: PATTERN_ALLOC=fill=0x5c:free_fill=0x55:class_patterns=1:backend=eager"
PATTERN_ALLOC=fill=0x5c:free_fill=0x55:class_patterns=1:backend=eager cargo run --release --example uninit_capacity

section "benchmarks build: cargo bench -p pattern-alloc-benches --no-run"
cargo bench -p pattern-alloc-benches --no-run

section "comparison smoke: bash ci/bench-compare.sh --smoke"; bash ci/bench-compare.sh --smoke
section "arm64 + MTE under qemu: bash ci/mte/test.sh"
bash ci/mte/test.sh  # arm64 cross-build + MTE tests under qemu-aarch64 (installs its own packages)
section "test kernel: the refpage backend on Linux 6.1 + refpage_create, under QEMU TCG"
bash ci/kernel/test.sh
section "robustness: failure injection, RLIMIT_AS, misuse, loom model, fuzzing"
bash ci/robustness.sh

section "all checks passed"
