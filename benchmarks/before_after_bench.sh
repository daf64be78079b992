#!/usr/bin/env bash
# Two builds of swift-dp-train on the same rows, interleaved run by run (before, after, before,
# after …) so a shared machine's noise hits both alike; each run is a process of its own, so
# its peak RSS is that model's. Prints one tab-separated line per run:
#   model size batch before|after round ms/step peak-RSS-MB
# ms/step is `bench`'s median of STEPS timed steps after 1 warm-up (from --json); peak RSS is
# `/usr/bin/time -v`'s maximum resident set size.
#
#   benchmarks/before_after_bench.sh BEFORE_BINARY AFTER_BINARY ROUNDS STEPS MODEL:SIZE:BATCH...
#   e.g. benchmarks/before_after_bench.sh /tmp/old/swift-dp-train .build/release/swift-dp-train 3 3 \
#            resnet18:224:16 efficientnet_b0:224:16 inception_resnet_v2:299:16
set -euo pipefail
before=$1 after=$2 rounds=$3 steps=$4
shift 4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for spec in "$@"; do
    IFS=: read -r model size batch <<<"$spec"
    for round in $(seq 1 "$rounds"); do
        for which in before after; do
            binary=$before; [ "$which" = after ] && binary=$after
            /usr/bin/time -v -o "$work/time" "$binary" bench --model "$model" --image-size "$size" \
                --batch-size "$batch" --steps "$steps" --warmup 1 --threads 1 --json "$work/bench.json" >/dev/null
            rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
            ms=$(awk -F': *' '/"ms_per_step"/ {sub(/,$/, "", $2); print $2}' "$work/bench.json")
            printf '%s\t%s\t%s\t%s\t%s\t%.1f\t%s\n' "$model" "$size" "$batch" "$which" "$round" "$ms" $((rss_kb / 1024))
        done
    done
done
