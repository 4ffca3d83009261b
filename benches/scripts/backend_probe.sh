#!/bin/bash
# Wall time of four workloads under pattern-alloc (memfd and eager backends) and
# mimalloc at 1/4/16 threads, 3 runs each. Run it inside a directory made by
# `bash ci/bench-compare.sh --prepare DIR` (copy it there first).
TIMEFORMAT=%R
for w in tree churn prodcons realloc_grow; do
  for t in 1 4 16; do
    line="$w t=$t"
    for cfg in memfd eager mimalloc; do
      best=""
      for r in 1 2 3; do
        case $cfg in
          mimalloc) s=$( { time LD_PRELOAD=$PWD/peers/libmimalloc.so.2 workloads/$w $t 4 >/dev/null; } 2>&1 );;
          free_cache) s=$( { time PATTERN_ALLOC=backend=eager:large_threshold=32K LD_PRELOAD=$PWD/lib/libpattern_alloc.so workloads/$w $t 4 >/dev/null; } 2>&1 );;
          *) s=$( { time PATTERN_ALLOC=backend=$cfg LD_PRELOAD=$PWD/lib/libpattern_alloc.so workloads/$w $t 4 >/dev/null; } 2>&1 );;
        esac
        best="$best $s"
      done
      line="$line | $cfg$best"
    done
    echo "$line"
  done
done
