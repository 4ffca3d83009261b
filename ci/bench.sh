#!/usr/bin/env bash
# Runs the malloc_free benchmarks (PatternAlloc and std's System allocator side
# by side in one run) and prints, per benchmark group, both median times and
# their ratio PatternAlloc/System (above 1: PatternAlloc is slower).
#
#   bash ci/bench.sh                       # short run: 1 s warm-up, 2 s per benchmark
#   bash ci/bench.sh malloc_free/          # only groups matching a filter (short run)
#   bash ci/bench.sh --measurement-time 5  # any criterion flags; then no short defaults
set -euo pipefail
cd "$(dirname "$0")/.."

args=("$@")
if [[ " ${args[*]-} " != *" --"* ]]; then
    args=(--warm-up-time 1 --measurement-time 2 "${args[@]}")
fi
started=$(date +%s)
cargo bench -p pattern-alloc-benches --bench malloc_free -- "${args[@]}"

criterion_dir="${CARGO_TARGET_DIR:-target}/criterion"
python3 - "$criterion_dir" "$started" <<'PY'
import glob, json, os, re, sys

# target/criterion/<group>/<function>/new/{estimates,benchmark}.json; the
# directory names are sanitized, so names come from benchmark.json. Only
# results written by this run count (older ones stay on disk).
started = int(sys.argv[2])
times = {}
for est_path in glob.glob(os.path.join(sys.argv[1], "*", "*", "new", "estimates.json")):
    if os.path.getmtime(est_path) < started:
        continue
    new_dir = os.path.dirname(est_path)
    try:
        with open(os.path.join(new_dir, "benchmark.json")) as f:
            bench = json.load(f)
        with open(est_path) as f:
            median_ns = json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        continue
    times.setdefault(bench["group_id"], {})[bench["function_id"]] = median_ns

def order(group):
    # malloc_free/16 < malloc_free/64 < ...; units K/M as in 64KiB, 1MiB.
    kind, _, size = group.rpartition("/")
    m = re.match(r"(\d+)\s*([kKmM]?)", size)
    n = int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20}[m.group(2).lower()] if m else 0
    return (kind, n, group)

def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.1f} ns"

rows = [(g, t) for g, t in times.items() if "PatternAlloc" in t and "System" in t]
if not rows:
    sys.exit("no criterion results of this run with both PatternAlloc and System under " + sys.argv[1])
print()
print(f"{'benchmark (median)':<34} {'PatternAlloc':>12} {'System':>12} {'PatternAlloc/System':>20}")
for group, t in sorted(rows, key=lambda r: order(r[0])):
    ratio = t["PatternAlloc"] / t["System"]
    print(f"{group:<34} {fmt(t['PatternAlloc']):>12} {fmt(t['System']):>12} {ratio:>19.2f}x")
PY
