"""Golden files for the EfficientNet tests (Tests/NNTests/EfficientNetParityTests.swift and
EfficientNetTests.swift), modelled on ../parity/make_parity_fixtures.py (read its docstring
and Note [Kinks] first).

Made with torch 2.15.0, torchvision 0.29.2, safetensors 0.8.0 (CPU):
    venv/bin/python Tests/NNTests/Fixtures/efficientnet/make_efficientnet_fixtures.py

structure.json: for efficientnet_b0…b3, torchvision's state dict as [[key, shape], …] in
  state-dict order, the parameter count, and each MBConv's stochastic-depth probability.

efficientnet_b0_<size>.safetensors: one training step of torchvision's efficientnet_b0 on a
  batch of 4 images at <size> px, computed in float64, with every parameter set by
  `fixture_values` (same generator as the ResNet fixtures, but the roles of 1-D tensors are
  recognised by EfficientNet's names) and every random layer switched off by setting its p to
  0 (the classifier's Dropout and every StochasticDepth; the Swift test does the same): the
  two sides draw different random numbers, and p = 0 makes both layers the identity in train
  mode too. Contents as in the ResNet files:
  input, labels, logits_train, loss, logits_eval (after the step), grad.<name> (≤ 4096
  elements) or grad_sample.<name> + grad_stats.<name>, running_mean.<bn> / running_var.<bn>.

Conditioning: EfficientNet has no ReLU or max-pool (SiLU and sigmoid are smooth), so Note
[Kinks]' branch flips do not arise; what remains is train-mode BatchNorm over few values per
channel (at 64 px the last stages see 2×2 pixels × 4 images = 16 values). The script checks
that PyTorch's own float32 run agrees with float64 within 1e-4 (logits) and 1e-4 (every
gradient, relative to its scale, see below) and refuses to write the file otherwise.

Note [Zero gradients]: the shift (bias) of every MBConv's project BatchNorm has an exactly zero
gradient: a per-channel constant added there reaches the next block's expand or depthwise conv
(directly and through the identity shortcut) and then a train-mode BatchNorm, which subtracts
the batch mean and removes it. Both sides therefore produce pure rounding noise (~1e-16 in
float64, ~1e-7 in float32) for these tensors, and judging that noise against its own largest
entry is meaningless. Such tensors (float64 gradient below 1e-9 × the model's largest gradient
entry) are listed in the metadata (`zero_gradients`) and judged against that model-wide scale
(`gradient_scale`) instead.
"""
import copy
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file
from torchvision.ops import StochasticDepth

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from make_parity_fixtures import name_seed, probe, rel, uniform01  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ["efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3"]


def fixture_values(name, shape):
    """Uniform values with a sensible scale for the tensor's role, rounded once to float32.
    1-D `.weight` is a BatchNorm scale; 1-D `.bias` is an SE convolution's or the classifier's
    bias when the name says so, else a BatchNorm shift."""
    count = int(np.prod(shape)) if len(shape) else 1
    u = uniform01(name_seed(name), count) * 2 - 1
    if len(shape) == 1 and name.endswith(".weight"):        # BatchNorm scale
        values = 1 + 0.2 * u
    elif len(shape) == 1 and (".fc1." in name or ".fc2." in name or name.startswith("classifier.")):
        values = 0.2 * u                                     # conv / linear bias
    elif len(shape) == 1:                                    # BatchNorm shift
        values = 0.5 * u
    else:                                                    # conv OIHW / linear [out, in]
        fan_in = int(np.prod(shape[1:]))
        values = u * np.sqrt(3.0 / fan_in)
    return values.astype(np.float32).reshape(shape)


def build(arch, num_classes):
    model = getattr(torchvision.models, arch)(num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, (StochasticDepth, nn.Dropout)):
            m.p = 0.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(fixture_values(name, tuple(p.shape))))
    return model


def run(model, x, y, dtype):
    model = model.to(dtype)
    model.train()
    logits_train = model(x.to(dtype))
    loss = nn.functional.cross_entropy(logits_train, y)
    loss.backward()
    model.eval()
    with torch.no_grad():
        logits_eval = model(x.to(dtype))
    return model, logits_train.detach(), loss.detach(), logits_eval


def make_structure():
    out = {}
    for arch in VARIANTS:
        model = getattr(torchvision.models, arch)()
        sd = {}
        for name, m in model.named_modules():
            if isinstance(m, StochasticDepth) and m.p > 0:
                sd[name.rsplit(".", 1)[0]] = m.p
        out[arch] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()],
            "stochastic_depth": sd,
        }
        print(f"{arch}: {out[arch]['parameters']} parameters, {len(out[arch]['state_dict'])} state-dict entries")
    path = os.path.join(HERE, "structure.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__, "models": out}, f,
                  separators=(",", ":"))
    print(f"  wrote {path} ({os.path.getsize(path)} bytes)")


def make_case(arch, size, batch=4, num_classes=10):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, size, size, generator=generator)
    y = torch.randint(0, num_classes, (batch,), generator=generator)
    reference = build(arch, num_classes)
    single = copy.deepcopy(reference)
    model, logits_train, loss, logits_eval = run(reference, x, y, torch.float64)
    model32, logits32, _, eval32 = run(single, x, y, torch.float32)
    scale = max(float(p.grad.abs().max()) for p in model.parameters())
    zero = [n for n, p in model.named_parameters() if float(p.grad.abs().max()) < 1e-9 * scale]

    def grad_rel(name, ours, reference):
        if name in zero:
            return float((ours.double() - reference.double()).abs().max()) / scale
        return rel(ours, reference)

    worst_grad = max(grad_rel(n, q.grad, p.grad)
                     for (n, p), q in zip(model.named_parameters(), model32.parameters()))
    worst_logits = max(rel(logits32, logits_train), rel(eval32, logits_eval))
    print(f"{arch} at {size} px: torch float32 vs float64: logits_train {rel(logits32, logits_train):.2e}, "
          f"logits_eval {rel(eval32, logits_eval):.2e}, worst gradient {worst_grad:.2e} "
          f"({len(zero)} tensors with zero gradient, see Note [Zero gradients])")
    if worst_grad > 1e-4 or worst_logits > 1e-4:
        raise SystemExit(f"{arch} at {size} px: PyTorch float32 misses float64, pick another size")
    out = {
        "input": x.float().contiguous(),
        "labels": y.to(torch.int64),
        "logits_train": logits_train.float(),
        "logits_eval": logits_eval.float(),
        "loss": loss.float().reshape([]),
    }
    for name, p in model.named_parameters():
        g = p.grad.detach().reshape(-1)
        if g.numel() <= 4096:
            out["grad." + name] = g.float().reshape(p.shape).contiguous()
        else:
            idx = (torch.arange(512, dtype=torch.float64) * g.numel() / 512).floor().long()
            out["grad_sample." + name] = g[idx].float().contiguous()
            r = torch.from_numpy(probe(name, g.numel()))
            out["grad_stats." + name] = torch.tensor([g.norm().item(), float(g @ r)], dtype=torch.float32)
    for name, b in model.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            kind, module = name.rsplit(".", 1)[1], name.rsplit(".", 1)[0]
            out[f"{kind}.{module}"] = b.float().contiguous()
    path = os.path.join(HERE, f"{arch}_{size}.safetensors")
    save_file(out, path, metadata={"torch": torch.__version__, "torchvision": torchvision.__version__,
                                   "model": arch, "image_size": str(size), "num_classes": str(num_classes),
                                   "float32_vs_float64_worst_gradient": f"{worst_grad:.3e}",
                                   "gradient_scale": repr(scale), "zero_gradients": ",".join(zero)})
    print(f"  wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    make_structure()
    make_case("efficientnet_b0", int(sys.argv[1]) if len(sys.argv) > 1 else 64)
