#!/usr/bin/env bash
# Command one of the README: install what is missing, build in release mode, and train the
# default model (ResNet-18) on the built-in dataset with one MPI rank per local core.
# Extra arguments go to `swift-dp-train train`, e.g. `scripts/quickstart.sh --epochs 3`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_packages
allow_mpi_as_root
echo "==> building (release)"
swift build -c release --product swift-dp-train
ranks=$(local_cores)
# The built-in dataset has 3,000 training images: keep the global batch near 128 (the
# setting measured in the README) whatever the core count, or 64 ranks × 64 images would
# leave one step per epoch. A --batch-size of yours, given later, wins.
batch=$(( 128 / ranks )); [ "$batch" -lt 8 ] && batch=8
echo "==> mpirun -np $ranks swift-dp-train train --batch-size $batch $*"
exec mpirun -np "$ranks" .build/release/swift-dp-train train --batch-size "$batch" "$@"
