#!/usr/bin/env bash
# How much of the gradient all-reduce a training step waits for: the same compute with the
# all-reduce on and off (`bench --communication on|off`), interleaved, medians of --repeats.
#   benchmarks/overlap_bench.sh [--ranks 2] [--model resnet18] [--image-size 64] [--batch-size 32]
#                               [--steps 10] [--repeats 3] [--grad-compression none]
#                               [--launcher cluster/mpirun] [-- extra mpirun options]
# exposed communication = step(on) − step(off); the all-reduce's own time is printed beside
# it, so exposed ÷ all-reduce is the share not hidden behind backward (1 = no overlap).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
allow_mpi_as_root

ranks=2 model=resnet18 size=64 batch=32 steps=10 repeats=3 compression=none
extra=()
launcher=mpirun
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) ranks="$2"; shift 2 ;;
        --model) model="$2"; shift 2 ;;
        --image-size) size="$2"; shift 2 ;;
        --batch-size) batch="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --grad-compression) compression="$2"; shift 2 ;;
        --launcher) launcher="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "error: unknown option $1" >&2; exit 2 ;;
    esac
done
# Absolute paths: on the virtual cluster (and real nodes) ranks start in their home directory.
binary="$PWD/.build/release/swift-dp-train"
[ -x "$binary" ] || swift build -c release
over=()
[ "$ranks" -gt "$(nproc)" ] && over=(--oversubscribe)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for r in $(seq "$repeats"); do
    for mode in on off; do
        $launcher -np "$ranks" "${over[@]}" "${extra[@]}" "$binary" bench --model "$model" --image-size "$size" \
            --batch-size "$batch" --steps "$steps" --warmup 2 --threads 1 --communication "$mode" \
            --grad-compression "$compression" --json "$scratch/$mode-$r.json" > /dev/null
    done
done
python3 - "$scratch" "$repeats" <<'PY'
import json, statistics, sys
scratch, repeats = sys.argv[1], int(sys.argv[2])
load = lambda mode: [json.load(open(f"{scratch}/{mode}-{r}.json")) for r in range(1, repeats + 1)]
on, off = load("on"), load("off")
step_on = statistics.median(x["ms_per_step"] for x in on)
step_off = statistics.median(x["ms_per_step"] for x in off)
allreduce = statistics.median(x["allreduce_ms"] for x in on)
exposed = step_on - step_off
r = on[0]
print(f"{r['model']} {r['image_size']}px batch {r['batch_size']} per rank, {r['ranks']} ranks, median of {repeats}:")
print(f"  step with all-reduce {step_on:.1f} ms, without {step_off:.1f} ms: exposed communication {exposed:.1f} ms "
      f"({exposed / step_on:.1%} of the step)")
print(f"  the all-reduce itself: {allreduce:.1f} ms/step; exposed ÷ all-reduce = {exposed / allreduce:.2f} "
      "(1 = nothing overlapped)")
PY
