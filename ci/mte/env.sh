# Sourced by ci/mte/test.sh: rustup's cargo drives Debian's rustc 1.96 (which
# has the arm64 standard library) for the aarch64 target, in a target
# directory of its own; rustup's rustc on PATH is left alone.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR="${MTE_TARGET_DIR:-$PWD/target/mte-cross}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# No -L / QEMU_LD_PREFIX: libc6:arm64 provides /lib/ld-linux-aarch64.so.1, and
# mixing the cross sysroot's ld.so with it hangs pthread_create.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu ${MTE_CPU:-max}"
export PATTERN_ALLOC_TEST_RUNNER="$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"
