#!/usr/bin/env bash
# How much of the gradient all-reduce a training step waits for: the same compute without
# communication (`bench --communication off`) and with it under each `--overlap` mode
# (off: every bucket after backward; nonblocking; thread), interleaved, medians of --repeats.
#   benchmarks/overlap_bench.sh [--ranks 2] [--model resnet18] [--image-size 64] [--batch-size 32]
#                               [--steps 10] [--repeats 3] [--grad-compression none]
#                               [--modes off,nonblocking,thread] [--bucket-mb 25]
#                               [--launcher cluster/mpirun] [-- extra mpirun options]
# exposed communication = step(mode) − step(no communication); `--overlap off`'s wait after
# backward is the all-reduce's whole time, so exposed ÷ that is the share an overlap mode
# leaves unhidden (1 = nothing overlapped).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
allow_mpi_as_root

ranks=2 model=resnet18 size=64 batch=32 steps=10 repeats=3 compression=none modes=off,nonblocking,thread bucket=25
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
        --modes) modes="$2"; shift 2 ;;
        --bucket-mb) bucket="$2"; shift 2 ;;
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
IFS=, read -r -a mode_list <<< "$modes"
for r in $(seq "$repeats"); do
    for mode in none "${mode_list[@]}"; do
        if [ "$mode" = none ]; then flags=(--communication off); else flags=(--communication on --overlap "$mode"); fi
        $launcher -np "$ranks" "${over[@]}" "${extra[@]}" "$binary" bench --model "$model" --image-size "$size" \
            --batch-size "$batch" --steps "$steps" --warmup 2 --threads 1 "${flags[@]}" --bucket-mb "$bucket" \
            --grad-compression "$compression" --json "$scratch/$mode-$r.json" > /dev/null
    done
done
python3 - "$scratch" "$repeats" "$modes" <<'PY'
import json, statistics, sys
scratch, repeats, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
load = lambda mode: [json.load(open(f"{scratch}/{mode}-{r}.json")) for r in range(1, repeats + 1)]
med = lambda runs, key: statistics.median(x[key] for x in runs)
base = load("none")
step_none = med(base, "ms_per_step")
r = base[0]
print(f"{r['model']} {r['image_size']}px batch {r['batch_size']} per rank, {r['ranks']} ranks, median of {repeats}:")
print(f"  no communication: {step_none:.1f} ms/step (forward {med(base, 'forward_ms'):.1f}, "
      f"backward {med(base, 'backward_ms'):.1f}, optimizer {med(base, 'optimizer_ms'):.1f})")
whole = med(load("off"), "exposed_comm_ms") if "off" in modes else None
for mode in modes:
    runs = load(mode)
    step = med(runs, "ms_per_step")
    exposed = step - step_none
    line = (f"  --overlap {mode:<11}: {step:.1f} ms/step, exposed communication {exposed:.1f} ms "
            f"({exposed / step:.1%} of the step); wait after backward {med(runs, 'exposed_comm_ms'):.1f} ms, "
            f"backward {med(runs, 'backward_ms'):.1f} ms")
    if whole:
        line += f"; exposed ÷ whole all-reduce ({whole:.1f} ms) = {exposed / whole:.2f}"
    print(line)
PY
