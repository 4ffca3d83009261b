#!/usr/bin/env bash
# The comparison against peer allocators (BENCHMARKS.md): workloads run under
# pattern-alloc, glibc, jemalloc, Scudo, mimalloc and tcmalloc via LD_PRELOAD.
#
#   bash ci/bench-compare.sh --prepare DIR [--no-install]
#       installs the missing peers from Debian (unless --no-install), builds the
#       runner, the C workloads and libpattern_alloc.so (release), and copies
#       them with the peer libraries into DIR. DIR is self-contained: copy it
#       to another x86_64 Linux machine (no cargo, no network needed) and run
#       DIR/run --threads 1,2,4,8,16 --runs 5 --out OUTDIR --budget-seconds 330
#   bash ci/bench-compare.sh --smoke [--no-install]
#       prepare into target/bench-compare, then one short run of everything
#       (CI: about 30 s after the build, plus 7 MB of Debian packages)
#   bash ci/bench-compare.sh [RUN OPTIONS]
#       prepare into target/bench-compare, then a full run here (default
#       --threads 1,2 --runs 3 --out bench-results); options go to `bench-compare run`
#   Regenerate tables and plots from results (several machines at once):
#       target/bench-compare/bench-compare report --out docs/bench --update BENCHMARKS.md RESULTS_DIR...
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
dir=""
install=1
run_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --prepare) mode=prepare; dir="${2:?--prepare needs a directory}"; shift 2 ;;
    --smoke) mode=smoke; shift ;;
    --no-install) install=0; shift ;;
    *) run_args+=("$1"); shift ;;
    esac
done
[[ -n "$dir" ]] || dir="${CARGO_TARGET_DIR:-target}/bench-compare"

install_peers() {
    local missing=()
    [[ -e /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]] || missing+=(libjemalloc2)
    [[ -e /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 ]] || missing+=(libmimalloc2.0)
    [[ -e /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 ]] || missing+=(libtcmalloc-minimal4)
    [[ -e /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.scudo_standalone-x86_64.so ]] || missing+=(libclang-rt-19-dev)
    command -v sqlite3 >/dev/null || missing+=(sqlite3)
    command -v cc >/dev/null || missing+=(gcc libc6-dev)
    [[ ${#missing[@]} -gt 0 ]] || return 0
    if [[ $install -eq 1 && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "bench-compare: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null; } ||
            echo "bench-compare: could not install ${missing[*]}; the run reports them as missing"
    else
        echo "bench-compare: not installed (reported as missing in the run): ${missing[*]}"
    fi
}

prepare() {
    local out="$1" target="${CARGO_TARGET_DIR:-target}"
    install_peers
    cargo build --release -p pattern-alloc-preload
    cargo build --release -p pattern-alloc-benches --bin bench-compare
    rm -rf "$out"
    mkdir -p "$out/lib" "$out/peers" "$out/workloads"
    cp "$target/release/libpattern_alloc.so" "$out/lib/"
    cp "$target/release/bench-compare" "$out/"
    for src in benches/workloads/*.c; do
        cc -O2 -g -Wall -Wextra -Werror -pthread -o "$out/workloads/$(basename "$src" .c)" "$src"
    done
    local found=()
    for lib in /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 \
        /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
        /usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.scudo_standalone-x86_64.so; do
        if [[ -e "$lib" ]]; then
            cp -L "$lib" "$out/peers/"
            found+=("$(basename "$lib")")
        fi
    done
    cat >"$out/run" <<'RUN'
#!/bin/sh
# Runs the comparison from this directory only (see BENCHMARKS.md), e.g.
#   ./run --threads 1,2,4,8,16 --runs 3 --out results --budget-seconds 330
# Re-make tables and plots from one or more results directories:
#   ./bench-compare report --out REPORT_DIR RESULTS_DIR...
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/bench-compare" run --dir "$here" "$@"
RUN
    chmod +x "$out/run"
    echo "bench-compare: prepared $out (peers: ${found[*]:-none}; $(du -sh "$out" | cut -f1))"
}

prepare "$dir"
case "$mode" in
prepare) ;;
smoke)
    out="${CARGO_TARGET_DIR:-target}/bench-compare-smoke"
    "$dir/run" --smoke --threads 1,2 --out "$out"
    # The runner must have measured every workload under pattern-alloc.
    if grep -q ",pattern,.*,ok$" "$out/samples.csv" && ! grep -E ",pattern(-free_fill)?,[^,]*,[^,]*,[^,]*,[^,]*,[^,]*,[^o]" "$out/samples.csv"; then
        echo "bench-compare smoke: ok"
    else
        echo "bench-compare smoke: pattern-alloc failed a workload (see $out/samples.csv)" >&2
        exit 1
    fi
    ;;
full)
    has_out=0
    for a in "${run_args[@]+"${run_args[@]}"}"; do [[ "$a" == --out ]] && has_out=1; done
    [[ $has_out -eq 1 ]] || run_args+=(--out bench-results)
    nice -n 10 "$dir/run" "${run_args[@]}"
    ;;
esac
