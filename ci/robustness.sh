#!/usr/bin/env bash
# Robustness checks (ci/test.sh calls this; it can also run alone):
#   1. failure injection, RLIMIT_AS exhaustion and misuse tests (allocator-tests);
#   2. the loom model of the lock-free remote free path (loom/, --cfg loom);
#   3. the cargo-fuzz target `ops` for FUZZ_SECONDS (default 120) from the
#      committed seeds, under two configurations; any finding fails the script and is left in
#      fuzz/artifacts/ops/ (rerun one with `cargo fuzz run -s none ops FILE`).
# The fuzz target is built without a sanitizer (-s none): its checks are the
# shadow model's, ASan does not see inside our mmaps, and stable Rust can
# build it, so a missing nightly toolchain does not matter. cargo-fuzz is
# installed from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-120}"
CARGO_FUZZ_VERSION=0.13.2

section() {
    printf '\n==== %s ====\n' "$*"
}

started=$SECONDS

section "robustness: rustfmt of fuzz/ and loom/ (their own workspaces)"
(cd fuzz && cargo fmt --check)
(cd loom && cargo fmt --check)

section "robustness: failure injection, RLIMIT_AS, misuse (release)"
cargo test -p allocator-tests --release --test robustness_faults --test robustness_rlimit --test misuse --test misuse_preload

section "robustness: loom model of the remote free path (RUSTFLAGS=--cfg loom, loom/)"
(cd loom && RUSTFLAGS="--cfg loom" cargo test --release -- --nocapture --test-threads 1)

section "robustness: cargo-fuzz"
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    install_started=$SECONDS
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
    echo "cargo-fuzz installed in $((SECONDS - install_started)) s"
fi
cargo fuzz --version

corpus="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$corpus" "$log"' EXIT
cd fuzz
cargo fuzz build -s none ops
# Three quarters of the time with the default backend (memfd windows here),
# the rest on the eager backend with a pattern per size class.
for run in "default:$((FUZZ_SECONDS * 3 / 4))" "backend=eager:class_patterns=1:$((FUZZ_SECONDS / 4))"; do
    options="${run%:*}"
    seconds="${run##*:}"
    if [ "$options" = default ]; then
        with_options=(env -u PATTERN_ALLOC)
    else
        with_options=(env PATTERN_ALLOC="$options")
    fi
    section "robustness: fuzz target ops for ${seconds} s, PATTERN_ALLOC: ${options}"
    status=0
    "${with_options[@]}" cargo fuzz run -s none ops "$corpus" seeds/ops -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    # The progress lines (NEW/REDUCE/pulse) are many; the rest is worth seeing.
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -n 40 || true
    if [ "$status" -ne 0 ] || grep -q -E 'panicked|ERROR: libFuzzer|SUMMARY: libFuzzer' "$log"; then
        echo "the fuzz target found a failure (exit status $status); the input is in fuzz/artifacts/ops/" >&2
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log"
done

section "robustness: all passed in $((SECONDS - started)) s"
