"""Golden trajectories of torch.optim.SGD / Adam / AdamW for OptimizerParityTests.swift.

Run from the repository root with a Python that has torch (tested with 2.x, CPU):
    python Tests/NNTests/Fixtures/optim/make_optim_fixtures.py

Writes optim_fixtures.json next to this script:
  parameters: name, PyTorch shape and initial values of three parameters (a linear weight,
              its bias, a 4-D convolution weight), registered in this order on the Swift side
              so the flat buffer is their concatenation;
  gradients:  10 flat gradient vectors (one per step, same concatenation);
  cases:      one per optimizer setting: its hyperparameters, the learning rate of each step
              (a decaying schedule, each value exactly a float32 so both sides use the same
              number), whether 1-D parameters go to a no-decay parameter group (timm's
              --no-wd-on-norm-and-bias rule) and the flat parameters after each step.
Every number is written with 9 significant digits, enough to round-trip a float32.
"""
import json
import math
import os

import torch

STEPS = 10
HERE = os.path.dirname(os.path.abspath(__file__))


def r9(x):
    return float(f"{x:.9g}")


def flat(tensors):
    return [r9(v) for t in tensors for v in t.detach().reshape(-1).tolist()]


def float32(x):
    return torch.tensor(x, dtype=torch.float32).item()


def learning_rates(base):
    # Cosine-like decay plus a wobble, so a wrong per-step learning rate cannot pass.
    return [float32(base * (0.55 + 0.45 * math.cos(math.pi * t / STEPS)) * (1 + 0.1 * (t % 3)))
            for t in range(STEPS)]


SHAPES = [("fc.weight", (3, 4)), ("fc.bias", (3,)), ("conv.weight", (2, 3, 3, 3))]

generator = torch.Generator().manual_seed(20240611)
initial = [torch.randn(shape, generator=generator) for _, shape in SHAPES]
gradients = [[torch.randn(shape, generator=generator) for _, shape in SHAPES] for _ in range(STEPS)]
# The Swift side reads the rounded values; round here too so both start from the same floats.
initial = [torch.tensor([r9(v) for v in t.reshape(-1).tolist()]).reshape(t.shape) for t in initial]
gradients = [[torch.tensor([r9(v) for v in g.reshape(-1).tolist()]).reshape(g.shape) for g in step]
             for step in gradients]

CASES = [
    dict(name="sgd_momentum", optimizer="sgd", base_lr=0.1, momentum=0.9, weight_decay=5e-4),
    dict(name="sgd_nesterov", optimizer="sgd", base_lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True),
    dict(name="sgd_dampening", optimizer="sgd", base_lr=0.1, momentum=0.9, dampening=0.1, weight_decay=5e-4),
    dict(name="sgd_no_momentum", optimizer="sgd", base_lr=0.1, momentum=0.0, weight_decay=1e-3),
    dict(name="sgd_no_decay_1d", optimizer="sgd", base_lr=0.1, momentum=0.9, weight_decay=5e-2,
         no_decay_on_norm_and_bias=True),
    dict(name="adam", optimizer="adam", base_lr=1e-2, weight_decay=1e-2),
    dict(name="adam_betas", optimizer="adam", base_lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0),
    dict(name="adamw", optimizer="adamw", base_lr=1e-2, weight_decay=5e-2),
    dict(name="adamw_no_decay_1d", optimizer="adamw", base_lr=1e-2, weight_decay=5e-2,
         no_decay_on_norm_and_bias=True),
]


def run(case):
    params = [torch.nn.Parameter(t.clone()) for t in initial]
    wd = case.get("weight_decay", 0.0)
    if case.get("no_decay_on_norm_and_bias"):
        # timm's param_groups_weight_decay: no decay for ndim <= 1 or names ending in ".bias".
        decay = [p for p, (n, _) in zip(params, SHAPES) if not (p.ndim <= 1 or n.endswith(".bias"))]
        no_decay = [p for p, (n, _) in zip(params, SHAPES) if p.ndim <= 1 or n.endswith(".bias")]
        groups = [dict(params=no_decay, weight_decay=0.0), dict(params=decay, weight_decay=wd)]
    else:
        groups = [dict(params=params, weight_decay=wd)]
    lrs = learning_rates(case["base_lr"])
    kind = case["optimizer"]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lrs[0], momentum=case.get("momentum", 0.0),
                              dampening=case.get("dampening", 0.0), nesterov=case.get("nesterov", False),
                              foreach=False)
    else:
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=lrs[0], betas=case.get("betas", (0.9, 0.999)), eps=case.get("eps", 1e-8),
                  foreach=False, fused=False)
    trajectory = []
    for step in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = lrs[step]
        for p, g in zip(params, gradients[step]):
            p.grad = g.clone()
        opt.step()
        trajectory.append(flat(params))
    record = {k: v for k, v in case.items() if k != "base_lr"}
    record.setdefault("momentum", 0.0)
    record.setdefault("dampening", 0.0)
    record.setdefault("nesterov", False)
    record.setdefault("betas", (0.9, 0.999))
    record.setdefault("eps", 1e-8)
    record.setdefault("no_decay_on_norm_and_bias", False)
    record["betas"] = list(record["betas"])
    record["lr"] = lrs
    record["params_after_step"] = trajectory
    return record


fixture = {
    "torch_version": torch.__version__,
    "parameters": [{"name": n, "shape": list(s), "initial": flat([t])} for (n, s), t in zip(SHAPES, initial)],
    "gradients": [flat(step) for step in gradients],
    "cases": [run(c) for c in CASES],
}
path = os.path.join(HERE, "optim_fixtures.json")
with open(path, "w") as f:
    json.dump(fixture, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {path}: {len(CASES)} cases x {STEPS} steps")
