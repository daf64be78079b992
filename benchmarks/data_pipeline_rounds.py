"""ImageNet train transform on 500×375 JPEGs: PIL + torchvision against one or more of our
builds or flag sets, in interleaved rounds, by CPU time as well as wall time.

On a shared machine wall-clock rates swing with other people's work; CPU time swings less
(though still some: caches and cores are shared). Each round times PIL + torchvision
(RandomResizedCrop(224) + flip + ToTensor + Normalize, one thread, 4 passes, the process's
CPU time) and then each `binary[@flag@flag…]` (bench-data --workers 1: a warm-up and 3 passes,
its user + sys time), and prints the medians over rounds and the load average.

    venv/bin/python benchmarks/data_pipeline_rounds.py --work /tmp/sdt-databench-2048 --images 2048 --rounds 3 \\
        old-build/swift-dp-train .build/release/swift-dp-train .build/release/swift-dp-train@--fast-upsampling
"""
import argparse
import os
import statistics
import subprocess
import time

import torch
from PIL import Image
from torchvision import transforms

from data_pipeline_bench import make_tree


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/sdt-databench")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("binaries", nargs="+", help="path[@flag@flag…] of swift-dp-train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = os.path.join(args.work, "500x375")
    make_tree(data, args.images, (500, 375))
    files = sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(data, "train")) for f in fs)
    transform = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(),
                                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    def pil():
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(4):
            for f in files:
                transform(Image.open(f).convert("RGB"))
        return 4 * len(files) / (time.process_time() - cpu), 4 * len(files) / (time.perf_counter() - wall)

    def ours(spec):
        binary, *flags = spec.split("@")
        before = os.times()
        out = subprocess.run([binary, "bench-data", "--data", data, "--format", "imagefolder", "--val-split", "0.01",
                              "--image-size", "224", "--train-transform", "imagenet", "--workers", "1",
                              "--limit", str(len(files))] + flags, check=True, capture_output=True, text=True).stdout
        after = os.times()
        images = int(out.split(" image(s)")[0].split(", ")[-1])
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        return 4 * images / cpu, float(out.split(": ")[-1].split(" images/s")[0])

    results = {name: [] for name in ["PIL + torchvision"] + args.binaries}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        results["PIL + torchvision"].append(pil())
        for spec in args.binaries:
            results[spec].append(ours(spec))
    loads.append(os.getloadavg()[0])
    print("1-minute load average at each round's start and at the end:", ", ".join(f"{x:.1f}" for x in loads))
    reference = statistics.median(r[0] for r in results["PIL + torchvision"])
    print("| pipeline | images per CPU-second (rounds) | wall images/s | vs PIL (CPU) |\n|---|---|---|---|")
    for name, rates in results.items():
        cpu = statistics.median(r[0] for r in rates)
        print(f"| {name} | {cpu:.0f} ({', '.join(f'{r[0]:.0f}' for r in rates)}) | "
              f"{statistics.median(r[1] for r in rates):.0f} | {cpu / reference:.2f}× |")


if __name__ == "__main__":
    main()
