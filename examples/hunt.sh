#!/usr/bin/env bash
# The README's main job: build pattern-alloc and its tool, then let
# `pattern-alloc hunt` find the uninitialized heap read in a bundled example.
#   bash examples/hunt.sh         the C example (examples/uninit_histogram.c)
#   bash examples/hunt.sh rust    the Rust example (examples/uninit_records.rs)
# Exits 0 when hunt found the bug (hunt itself exits 1 on a divergence), 1 when
# it did not, 2 on a build or tool error.
set -euo pipefail
cd "$(dirname "$0")/.."

example=${1:-c}
case "$example" in
c)
    cargo build --release --workspace
    mkdir -p target/examples-c
    program=target/examples-c/uninit_histogram
    # -O2: the bug must survive an optimizing build (the read is in a function of its own).
    "${CC:-cc}" -O2 -Wall -Wextra -o "$program" examples/uninit_histogram.c
    ;;
rust)
    cargo build --release --workspace --example uninit_records
    program=target/release/examples/uninit_records
    ;;
*)
    echo "usage: bash examples/hunt.sh [c|rust]" >&2
    exit 2
    ;;
esac

printf '\n==== %s under plain glibc (looks right) ====\n' "$program"
"$program"

printf '\n==== target/release/pattern-alloc hunt -- %s ====\n' "$program"
status=0
target/release/pattern-alloc hunt -- "$program" || status=$?
case "$status" in
1)
    printf '\nhunt exited 1: the runs diverge, the bug was found (as expected).\n'
    exit 0
    ;;
0)
    printf '\nhunt exited 0: no divergence found, but this example has a bug. Something is wrong.\n' >&2
    exit 1
    ;;
*)
    printf '\nhunt exited %s (2: usage or tool error, 3: nondeterministic)\n' "$status" >&2
    exit 2
    ;;
esac
