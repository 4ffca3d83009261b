#!/usr/bin/env bash
# Installs the Debian arm64 cross toolchain and qemu-user for ci/mte/test.sh
# (research/mte-feasibility.md §1): Debian's rustc-web 1.96 with the arm64
# standard library, the aarch64 cross gcc (linker and C tests) and
# qemu-aarch64. rustc-web puts a rustc at /usr/bin/rustc; rustup's
# ~/.cargo/bin stays first on PATH, and the caller checks that.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
apt-get update -o DPkg::Lock::Timeout=600
apt-get install -y -o DPkg::Lock::Timeout=600 --no-install-recommends \
    rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu g++-aarch64-linux-gnu \
    libc6-dev-arm64-cross libstdc++-12-dev-arm64-cross qemu-user
