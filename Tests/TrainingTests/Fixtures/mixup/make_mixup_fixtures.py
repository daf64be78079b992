"""timm's batch Mixup/CutMix arithmetic with the random draws pinned, for MixupTests.swift.

Run from the repository root with a Python that has torch and timm:
    python Tests/TrainingTests/Fixtures/mixup/make_mixup_fixtures.py

Our draws come from SplitMix64, not numpy, so only what follows the draws is compared: each
case fixes λ (and for CutMix the box centre, by patching numpy's randint) and records timm's
mixed batch, corrected λ, box and targets. Images are written NHWC (our layout); timm mixes
them NCHW. Numbers have 9 significant digits.
"""
import json
import os
from unittest import mock

import numpy as np
import torch
from timm.data.mixup import Mixup, rand_bbox

HERE = os.path.dirname(os.path.abspath(__file__))
N, C, H, W, K = 4, 3, 7, 6, 5
CASES = [
    dict(name="mixup", cutmix=False, lam=0.3125, smoothing=0.1),
    dict(name="mixup_no_smoothing", cutmix=False, lam=0.8, smoothing=0.0),
    dict(name="cutmix", cutmix=True, lam=0.6, smoothing=0.1, center=(3, 2)),
    dict(name="cutmix_clipped", cutmix=True, lam=0.3, smoothing=0.2, center=(0, 5)),
]


def r9(values):
    return [float(f"{v:.9g}") for v in values]


generator = torch.Generator().manual_seed(7)
images = torch.randn(N, C, H, W, generator=generator)
images = torch.tensor(r9(images.reshape(-1).tolist())).reshape(N, C, H, W)
labels = torch.tensor([1, 4, 0, 1])


def run(case):
    mixer = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, label_smoothing=case["smoothing"], num_classes=K)
    x = images.clone()
    centers = iter(case.get("center", (0, 0)))
    with mock.patch.object(Mixup, "_params_per_batch", lambda self: (case["lam"], case["cutmix"])), \
            mock.patch("numpy.random.randint", lambda low, high=None, size=None: next(centers)):
        x, targets = mixer(x, labels.clone())
    record = dict(case)
    if case["cutmix"]:
        # The box timm cut, recomputed from the same pinned centre.
        centers = iter(case["center"])
        with mock.patch("numpy.random.randint", lambda low, high=None, size=None: next(centers)):
            yl, yh, xl, xh = rand_bbox((N, C, H, W), case["lam"])
        record["box"] = [int(yl), int(yh), int(xl), int(xh)]
        record["corrected_lambda"] = 1.0 - (yh - yl) * (xh - xl) / float(H * W)
    record["mixed_nhwc"] = r9(x.permute(0, 2, 3, 1).reshape(-1).tolist())
    record["targets"] = r9(targets.reshape(-1).tolist())
    return record


fixture = dict(n=N, h=H, w=W, c=C, num_classes=K, labels=labels.tolist(),
               images_nhwc=r9(images.permute(0, 2, 3, 1).reshape(-1).tolist()), cases=[run(c) for c in CASES])
path = os.path.join(HERE, "mixup_fixtures.json")
with open(path, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {path}: {len(CASES)} cases")
