#!/usr/bin/env bash
# Arm64 memory tagging under emulation (DESIGN.md §7): installs the Debian
# cross toolchain and qemu-user (ci/mte/install.sh), cross-builds the
# workspace for aarch64-unknown-linux-gnu and runs its tests under
# `qemu-aarch64 -cpu max` (MTE emulated, MTE_REQUIRED=1: a missing MTE
# fails), the contract suite again with PATTERN_ALLOC=mte=sync, then the MTE
# tests under `-cpu neoverse-n1` (no MTE) to prove the fallback.
# Run from anywhere: `bash ci/mte/test.sh`. The host toolchain is untouched:
# Debian's rustc goes in through RUSTC/RUSTDOC only (ci/mte/env.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$SECONDS

section() {
    printf '\n==== mte: %s ====\n' "$*"
}

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null \
    || [[ ! -x /usr/bin/rustc || ! -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ]]; then
    section "installing the arm64 cross toolchain and qemu-user"
    host_rustc=$(command -v rustc || true)
    bash ci/mte/install.sh
    if [[ -n "$host_rustc" && "$(command -v rustc)" != "$host_rustc" ]]; then
        echo "ci/mte: installing rustc-web changed which rustc is first on PATH ($(command -v rustc))" >&2
        exit 1
    fi
fi

# shellcheck source=ci/mte/env.sh
source ci/mte/env.sh
target=aarch64-unknown-linux-gnu
cargo_test() {
    nice -n 10 cargo test --release --target "$target" --workspace --exclude pattern-alloc-benches "$@"
}

# Tests that need something qemu-user cannot give, skipped with the reason:
# - preload_*: they run host programs (gcc-built C programs, python3, sqlite3)
#   under LD_PRELOAD of the aarch64 library; without binfmt_misc the kernel
#   cannot exec aarch64 programs, and host programs cannot load an arm64 .so.
# - lazy_*, memory_return: qemu-user 7.2 ignores madvise (MADV_DONTNEED is a
#   successful no-op), so decommitted memory keeps its contents and RSS.
skips=(--skip preload_ --skip lazy_ --skip memory_return)

section "build (release, $target): Debian $("$RUSTC" --version)"
cargo_test --no-run

section "tests under qemu-aarch64 -cpu max, MTE_REQUIRED=1 (mte tests on, the rest untagged)"
MTE_REQUIRED=1 cargo_test --no-fail-fast -- "${skips[@]}"

section "contract suite under qemu-aarch64 -cpu max with PATTERN_ALLOC=mte=sync"
for t in contents realloc collections class_distinct class_table threads fork large_free misuse free_fill; do
    MTE_REQUIRED=1 PATTERN_ALLOC=mte=sync cargo_test -p allocator-tests --test "$t"
done

section "mte tests under qemu-aarch64 -cpu neoverse-n1 (no MTE: the untagged fallback)"
MTE_CPU=neoverse-n1 bash -c 'source ci/mte/env.sh && nice -n 10 cargo test --release --target '"$target"' -p allocator-tests --test mte --test mte_random'

section "all mte checks passed in $((SECONDS - start)) s"
