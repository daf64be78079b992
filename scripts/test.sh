#!/usr/bin/env bash
# Command two of the README: install what is missing, build, and run the whole test suite
# (unit tests, gradient checks, and real multi-process runs under mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
require_packages
allow_mpi_as_root
echo "==> building (release)"
# Tests run in release mode: the numeric code is 10-100x slower in debug, and the
# multi-process tests launch the release binary under mpirun.
swift build -c release
echo "==> swift test -c release"
export SWIFT_DP_TRAIN_BINARY="$PWD/.build/release/swift-dp-train"
swift test -c release --disable-swift-testing "$@"
