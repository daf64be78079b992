"""The data pipeline, ours against PIL + torchvision, on the same JPEG files, one thread each.

Writes (once) an ImageFolder tree of 500×375 JPEGs (ImageNet's typical size; smooth
gradients, shapes and noise so they compress like photographs, quality 90, 4:2:0) and
Tiny-ImageNet-sized 64×64 ones, then times per image: read + decode + transform + to-tensor +
normalise.
  - ImageNet train transform: RandomResizedCrop(224) + RandomHorizontalFlip
  - Tiny-ImageNet train transform: RandomCrop(64, padding=4) + RandomHorizontalFlip
PyTorch side: PIL.Image.open(...).convert("RGB") → transforms → ToTensor → Normalize, in one
process with torch.set_num_threads(1). Our side: `swift-dp-train bench-data --workers 1`.
`--auto-augment trivial-augment-wide` and `--color-jitter F|B,C,S,H` add the same training
augmentations on both sides, after the flip (TrivialAugmentWide first when both are given);
`--ours=--fast-upsampling` (or `--ours=--exact-decode`) passes flags to our side alone.

    venv/bin/python benchmarks/data_pipeline_bench.py [--work /tmp/sdt-databench] [--images 256] \
        [--auto-augment trivial-augment-wide] [--color-jitter 0.4]
"""
import argparse
import os
import statistics
import subprocess
import time

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_tree(root, count, size):
    if os.path.isdir(root):
        return
    rng = np.random.default_rng(0)
    w, h = size
    for k in range(count):
        folder = os.path.join(root, "train", f"class{k % 4}")
        os.makedirs(folder, exist_ok=True)
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * rng.uniform(0.2, 1) + yy * rng.uniform(0, 0.5)) % 256,
                         (yy * rng.uniform(0.2, 1)) % 256,
                         (xx + yy) * rng.uniform(0.1, 0.4) % 256], axis=2)
        image = Image.fromarray(np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            draw.ellipse([x0, y0, x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))],
                         fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        image.save(os.path.join(folder, f"img{k:05d}.JPEG"), quality=90)


def time_pil(files, transform, passes=3):
    rates = []
    for p in range(passes + 1):
        started = time.perf_counter()
        for f in files:
            transform(Image.open(f).convert("RGB"))
        if p > 0:
            rates.append(len(files) / (time.perf_counter() - started))
    return statistics.median(rates)


def time_ours(binary, data, size, preset, count, augment_flags):
    out = subprocess.run([binary, "bench-data", "--data", data, "--format", "imagefolder", "--val-split", "0.01",
                          "--image-size", str(size), "--train-transform", preset, "--workers", "1",
                          "--limit", str(count)] + augment_flags, check=True, capture_output=True, text=True).stdout
    return float(out.split(": ")[-1].split(" images/s")[0]), out.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/sdt-databench")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/swift-dp-train"))
    parser.add_argument("--auto-augment", default="none", choices=["none", "trivial-augment-wide"])
    parser.add_argument("--color-jitter", default=None, help="F or B,C,S,H, as for train")
    parser.add_argument("--ours", default="", help="extra bench-data flags for our side only, e.g. --ours=--fast-upsampling")
    args = parser.parse_args()
    torch.set_num_threads(1)
    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    # The augmentations, in the trainer's order: TrivialAugmentWide, then ColorJitter.
    augment, augment_flags, suffix = [], [], ""
    if args.auto_augment == "trivial-augment-wide":
        augment.append(transforms.TrivialAugmentWide())
        augment_flags += ["--auto-augment", args.auto_augment]
        suffix += " + TrivialAugmentWide"
    if args.color_jitter:
        values = [float(v) for v in args.color_jitter.split(",")]
        b, c, s, h = values * 3 + [0.0] if len(values) == 1 else values
        augment.append(transforms.ColorJitter(b, c, s, h))
        augment_flags += ["--color-jitter", args.color_jitter]
        suffix += f" + ColorJitter({b}, {c}, {s}, {h})"
    rows = []
    for name, size, shape, preset, crop in [
        ("ImageNet train (500×375 → RandomResizedCrop 224 + flip", 224, (500, 375), "imagenet",
         transforms.RandomResizedCrop(224)),
        ("Tiny-ImageNet train (64×64 → RandomCrop 64 pad 4 + flip", 64, (64, 64), "tiny-imagenet",
         transforms.RandomCrop(64, padding=4)),
    ]:
        name += suffix + ")"
        transform = transforms.Compose([crop, transforms.RandomHorizontalFlip()] + augment
                                       + [transforms.ToTensor(), normalize])
        data = os.path.join(args.work, f"{shape[0]}x{shape[1]}")
        make_tree(data, args.images, shape)
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(data, "train")) for f in fs)
        pil = time_pil(files, transform)
        ours, line = time_ours(args.binary, data, size, preset, len(files), augment_flags + args.ours.split())
        print(line)
        rows.append(f"| {name} | {len(files)} | {ours:.0f} | {pil:.0f} | {ours / pil:.2f}× |")
    table = ("| transform | images | swift-dp-train images/s (1 worker) | PIL + torchvision images/s (1 thread) | ratio |\n"
             "|---|---|---|---|---|\n" + "\n".join(rows))
    print(table)


if __name__ == "__main__":
    main()
