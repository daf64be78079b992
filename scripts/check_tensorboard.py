#!/usr/bin/env python3
"""Read a TensorBoard event file with TensorBoard's own EventAccumulator: an independent check
of what swift-dp-train writes.

    python3 scripts/check_tensorboard.py --print runs/x/events.out.tfevents.1700000000.host
    python3 scripts/check_tensorboard.py EVENT_FILE EXPECTED      # exit 1 unless it matches

EXPECTED is a JSON file (or the JSON text itself) mapping each tag to its [step, value] pairs in
file order, e.g. {"train/loss": [[0, 2.3], [10, 1.75]], "val/top1": [[20, 0.61]]}. Values are
compared after rounding the expected ones to float32, the precision event files store, so the
match is exact. A third element in a pair, when present, is the wall time (seconds, 1e-6 apart).

Needs `pip install tensorboard` (TensorFlow itself is not needed).
"""
import argparse
import json
import math
import os
import struct
import sys

# TensorBoard, finding no TensorFlow, says so on import; that is expected here.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    sys.exit("check_tensorboard.py: the Python package tensorboard is missing (pip install tensorboard)")


def load(path):
    if not os.path.isfile(path):
        sys.exit(f"{path}: no such file")
    # size_guidance 0 keeps every event instead of a reservoir sample.
    accumulator = EventAccumulator(path, size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = {tag: [(e.step, e.value, e.wall_time) for e in accumulator.Scalars(tag)]
               for tag in accumulator.Tags()["scalars"]}
    return accumulator.file_version, scalars


def float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def differences(scalars, expected):
    problems = []
    for tag in sorted(set(scalars) | set(expected)):
        got, want = scalars.get(tag, []), expected.get(tag, [])
        if len(got) != len(want):
            problems.append(f"{tag}: {len(got)} event(s) in the file, {len(want)} expected")
            continue
        for i, ((step, value, wall_time), pair) in enumerate(zip(got, want)):
            if step != pair[0] or value != float32(pair[1]):
                problems.append(f"{tag}[{i}]: step {step} value {value!r}, expected step {pair[0]} value {float32(pair[1])!r}")
            elif len(pair) > 2 and not math.isclose(wall_time, pair[2], rel_tol=0, abs_tol=1e-6):
                problems.append(f"{tag}[{i}]: wall time {wall_time!r}, expected {pair[2]!r}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="list the file's scalars and exit")
    parser.add_argument("event_file")
    parser.add_argument("expected", nargs="?", help="JSON file or text: {tag: [[step, value(, wall_time)], ...]}")
    args = parser.parse_args()
    if not args.print and args.expected is None:
        parser.error("give EXPECTED, or --print")

    file_version, scalars = load(args.event_file)
    if args.print:
        print(f"{args.event_file}: file_version {file_version}, {sum(map(len, scalars.values()))} scalar(s)")
        for tag in sorted(scalars):
            for step, value, wall_time in scalars[tag]:
                print(f"{tag}\tstep {step}\tvalue {value!r}\twall_time {wall_time:.6f}")
        return

    text = args.expected
    expected = json.loads(text if text.lstrip().startswith("{") else open(text).read())
    problems = differences(scalars, expected)
    if file_version != 2:
        problems.insert(0, f"file_version {file_version}, expected 2 (brain.Event:2 in the first record)")
    if problems:
        print(f"{args.event_file}: does not match the expected scalars:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        sys.exit(1)
    count = sum(map(len, scalars.values()))
    print(f"{args.event_file}: EventAccumulator read file_version {file_version} and {count} scalar(s) in {len(scalars)} tag(s), all as expected")


if __name__ == "__main__":
    main()
