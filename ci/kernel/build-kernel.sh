#!/usr/bin/env bash
# Builds the test kernel: Debian's linux-source-6.1, tinyconfig + guest.config,
# refpage_create wired in by apply.sh. The tree lives in target/kernel/ (git
# ignores target/), so a second local run rebuilds only what changed; CI starts
# from a fresh checkout, so there it is always a cold build.
# Prints the bzImage path last. Needs the packages test.sh installs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${KERNEL_WORK:-$root/target/kernel}
tarball=/usr/src/linux-source-6.1.tar.xz
tree=$work/linux-source-6.1
jobs=$(nproc)

[[ -f $tarball ]] || { echo "build-kernel.sh: $tarball missing (package linux-source-6.1)" >&2; exit 1; }
mkdir -p "$work"
if [[ ! -f $tree/Makefile ]]; then
    echo "unpacking $tarball into $work"
    tar -C "$work" -xf "$tarball"
fi
cd "$tree"

# Configure again only when the fragment changed (a new .config rebuilds all).
stamp=$(sha256sum "$here/guest.config" | cut -d' ' -f1)
if [[ ! -f .config || "$(cat .pattern-alloc-config 2>/dev/null)" != "$stamp" ]]; then
    nice -n 19 make -s ARCH=x86_64 tinyconfig
    nice -n 19 scripts/kconfig/merge_config.sh -m .config "$here/guest.config" >/dev/null
    nice -n 19 make -s ARCH=x86_64 olddefconfig
    # merge_config only warns when an option cannot be set: check every one.
    while IFS= read -r line; do
        [[ $line =~ ^CONFIG_ ]] || continue
        grep -qx "$line" .config || { echo "build-kernel.sh: $line did not stick in .config" >&2; exit 1; }
    done < "$here/guest.config"
    echo "$stamp" > .pattern-alloc-config
fi

"$here/apply.sh" "$tree"
nice -n 19 make -s ARCH=x86_64 -j"$jobs" bzImage >&2
[[ -x usr/gen_init_cpio ]] || nice -n 19 make -s ARCH=x86_64 usr/gen_init_cpio >&2
echo "$tree/arch/x86/boot/bzImage"
