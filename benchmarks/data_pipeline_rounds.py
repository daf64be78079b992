"""ImageNet train transform on 500×375 JPEGs: PIL + torchvision against one or more of our
builds or flag sets, in interleaved rounds, by CPU time as well as wall time.

On a shared machine wall-clock rates swing with other people's work; CPU time swings less
(though still some: caches and cores are shared). Each round times PIL + torchvision
(RandomResizedCrop(224) + flip + ToTensor + Normalize, one thread, 4 passes, the process's
CPU time) and then each `binary[@flag@flag…]` (bench-data --workers 1: a warm-up and 3 passes,
its user + sys time), and prints the medians over rounds and the load average.

Each round also times two decode-only references on the same files (Pillow's
`Image.open().convert("RGB")` and torchvision's `decode_jpeg`, 2 passes each, CPU time), which
../shared/anchors.md also lists: they tell how this host and these files compare with the
machine and files the anchors were taken on, so the issue's absolute target (3× the anchors'
PIL + torchvision figure, about 1270 images/s, about torchvision's decode-only rate there) can be
checked as a ratio to decode-only measured here, in the same rounds.

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
from torchvision.io import decode_jpeg

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

    def decode_only(decode):
        cpu = time.process_time()
        for _ in range(2):
            for f in files:
                decode(f)
        return 2 * len(files) / (time.process_time() - cpu), float("nan")

    def pillow_decode(path):
        Image.open(path).convert("RGB")

    def torchvision_decode(path):
        with open(path, "rb") as file:
            decode_jpeg(torch.frombuffer(bytearray(file.read()), dtype=torch.uint8))

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

    references = {"Pillow decode only": pillow_decode, "torchvision decode_jpeg only": torchvision_decode}
    results = {name: [] for name in ["PIL + torchvision"] + list(references) + args.binaries}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        results["PIL + torchvision"].append(pil())
        for name, decode in references.items():
            results[name].append(decode_only(decode))
        for spec in args.binaries:
            results[spec].append(ours(spec))
    loads.append(os.getloadavg()[0])
    print("1-minute load average at each round's start and at the end:", ", ".join(f"{x:.1f}" for x in loads))
    reference = statistics.median(r[0] for r in results["PIL + torchvision"])
    print("| pipeline | images per CPU-second (rounds) | wall images/s | vs PIL (CPU) |\n|---|---|---|---|")
    for name, rates in results.items():
        cpu = statistics.median(r[0] for r in rates)
        print(f"| {name} | {cpu:.0f} ({', '.join(f'{r[0]:.0f}' for r in rates)}) | "
              f"{statistics.median(r[1] for r in rates):.0f} | {cpu / reference:.2f}× |".replace("| nan |", "| — |"))
    # anchors.md, taken on this machine kind on other files: Pillow decode 1066, decode_jpeg
    # 1289, PIL + torchvision train 424 images/s; the 3× target is 1270.
    here = {name: statistics.median(r[0] for r in results[name]) for name in references}
    print(f"\nThis host and these files against anchors.md: Pillow decode {here['Pillow decode only'] / 1066:.2f}×, "
          f"decode_jpeg {here['torchvision decode_jpeg only'] / 1289:.2f}×, PIL + torchvision {reference / 424:.2f}× "
          f"the anchors' rates. The 3× target (1270 images/s) is {1270 / 1289:.2f}× decode_jpeg there; here:")
    for spec in args.binaries:
        cpu = statistics.median(r[0] for r in results[spec])
        print(f"  {spec}: {cpu / here['torchvision decode_jpeg only']:.2f}× decode_jpeg, "
              f"{cpu / here['Pillow decode only']:.2f}× Pillow decode (target there: {1270 / 1066:.2f}×)")


if __name__ == "__main__":
    main()
