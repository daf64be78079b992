#!/usr/bin/env bash
# All-reduce bus bandwidth by message size: swift-dp-train's gradient all-reduce (float32,
# fp16, bf16) beside a plain MPI_Allreduce loop (allreduce_baseline.c), for each rank count.
#   benchmarks/allreduce_bench.sh [--ranks 2,3,4] [--sizes 4096,...] [--output DIR]
#                                 [--launcher cluster/mpirun] [-- extra mpirun options]
# --launcher cluster/mpirun runs across the virtual cluster's hosts over TCP (cluster/up N
# [--rate 10gbit] first; see cluster/README.md). Ranks beyond the cores are oversubscribed:
# they measure MPI's transport, not a real cluster's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
allow_mpi_as_root

ranks="2,3,4"
sizes="4096,65536,1048576,4194304,16777216,67108864"
output="runs/allreduce-$(date +%Y%m%d-%H%M%S)"
extra=()
launcher=mpirun
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) ranks="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --output) output="$2"; shift 2 ;;
        --launcher) launcher="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "error: unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$output"
output=$(cd "$output" && pwd)
# Absolute paths: on the virtual cluster (and real nodes) ranks start in their home directory.
binary="$PWD/.build/release/swift-dp-train"
[ -x "$binary" ] || swift build -c release
mpicc -O2 -o "$output/allreduce_baseline" benchmarks/allreduce_baseline.c

csv="$output/allreduce.csv"
echo "compression,ranks,bytes,microseconds,algbw_gb_s,busbw_gb_s" > "$csv"
cores=$(nproc)
for n in ${ranks//,/ }; do
    over=()
    [ "$n" -gt "$cores" ] && over=(--oversubscribe)
    echo "==> $n ranks"
    $launcher -np "$n" "${over[@]}" "${extra[@]}" "$output/allreduce_baseline" ${sizes//,/ } | tail -n +2 >> "$csv"
    $launcher -np "$n" "${over[@]}" "${extra[@]}" "$binary" bench-allreduce --sizes "$sizes" \
        --compression none,fp16,bf16 --csv "$output/ours-$n.csv" > /dev/null
    tail -n +2 "$output/ours-$n.csv" >> "$csv"
done

# A markdown table: bus bandwidth (GB/s) per size, one row per (ranks, implementation).
python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sizes = sorted({int(r["bytes"]) for r in rows})
label = lambda b: f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"
print("| ranks | all-reduce | " + " | ".join(label(s) for s in sizes) + " |")
print("|---|---|" + "---|" * len(sizes))
order = {"mpi_allreduce": 0, "none": 1, "fp16": 2, "bf16": 3}
for key in sorted({(int(r["ranks"]), r["compression"]) for r in rows}, key=lambda k: (k[0], order.get(k[1], 9))):
    cells = {int(r["bytes"]): float(r["busbw_gb_s"]) for r in rows if (int(r["ranks"]), r["compression"]) == key}
    name = {"mpi_allreduce": "plain MPI_Allreduce", "none": "ours, float32"}.get(key[1], f"ours, {key[1]}")
    print(f"| {key[0]} | {name} | " + " | ".join(f"{cells.get(s, float('nan')):.2f}" for s in sizes) + " |")
PY
echo "csv: $csv"
