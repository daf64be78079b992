"""Golden files for the Inception-ResNet-v2 parity tests (Tests/NNTests/InceptionResNetV2ParityTests.swift).

Made with torch 2.15.0, timm 1.0.31, safetensors (CPU):
    /work/torchvenv/bin/python Tests/NNTests/Fixtures/inception/make_inception_fixtures.py

Modelled on ../parity/make_parity_fixtures.py and reusing its generator (name_seed, uniform01,
probe); read its Note [Kinks]. Weights are not stored: every parameter is a pure function of
its name and element index (`fixture_values` below, mirrored by `inceptionFixtureValues` in the
Swift test). This model's rules differ from the ResNet fixtures' only in how names are
recognised: BatchNorm tensors are `<conv block>.bn.weight/bias`, the residual projections
carry a bias (`<block>.conv2d.bias`, drawn small like a classifier bias) and the classifier is
`classif`. The reference runs in float64; the input seed is the first from 1 for which
PyTorch's own float32 run agrees with float64 within 3e-4 on every gradient (relative to the
tensor's largest entry; see Note [Zero gradients]) and 3e-5 on the logits, so a difference in the Swift test measures our float32 error.

inception_resnet_v2.safetensors (75 px, the smallest input the network accepts, batch 4):
  input           N×3×H×W float32 (NCHW)       labels   N int64
  logits_train    after model.train() forward   loss     [] cross-entropy, mean
  logits_eval     model.eval() forward after the training forward and backward
  grad.<name>     the whole gradient (PyTorch layout) when it has ≤ 4096 elements; otherwise
  grad_sample.<name>  512 elements at indices floor(j·count/512) and
  grad_stats.<name>   [‖g‖₂, g·r] with r = probe(name, count)
  running_mean.<bn> / running_var.<bn>   BatchNorm buffers after the training forward
inception_resnet_v2_state_dict.json: timm's state_dict() at 1000 classes (name → shape, in
  order) and its parameter count, for the key-set / shape / count test.
"""
import copy
import json
import os
import sys

import numpy as np
import timm
import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "parity"))
from make_parity_fixtures import name_seed, uniform01, probe  # noqa: E402

ARCH = "inception_resnet_v2"


def fixture_values(name, shape):
    """Uniform values with a sensible scale for the tensor's role, rounded once to float32."""
    count = int(np.prod(shape)) if len(shape) else 1
    u = uniform01(name_seed(name), count) * 2 - 1
    if name.endswith(".bn.weight"):                        # BatchNorm scale
        values = 1 + 0.2 * u
    elif name.endswith(".bn.bias"):                        # BatchNorm shift, see Note [Kinks]
        values = np.sign(u) * (1.5 + np.abs(u))
    elif len(shape) == 1:                                  # conv2d / classif bias
        values = 0.2 * u
    else:                                                  # conv OIHW / linear [out, in]
        fan_in = int(np.prod(shape[1:]))
        values = u * np.sqrt(3.0 / fan_in)
    return values.astype(np.float32).reshape(shape)


def build(num_classes):
    model = timm.create_model(ARCH, num_classes=num_classes)
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


def gradient_scale(model, g):
    """Note [Zero gradients]: block8.conv2d.bias adds a per-channel constant that conv2d_7b's
    1×1 conv hands to train-mode BatchNorm, which removes it, so its gradient is 0 up to rounding
    (1e-17 in float64, 1e-8 in float32). A tensor whose reference is that small (< 1e-12) is
    judged against 1e-3 × the model's largest gradient entry (metadata max_abs_gradient) instead
    of its own size, here and in the Swift test; every other tensor against its largest entry."""
    top = float(g.abs().max())
    return top if top >= 1e-12 else 1e-3 * max_abs_gradient(model)


def max_abs_gradient(model):
    return max(float(p.grad.abs().max()) for p in model.parameters())


def rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def make_state_dict_json():
    model = timm.create_model(ARCH)
    entries = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    count = sum(p.numel() for p in model.parameters())
    path = os.path.join(HERE, f"{ARCH}_state_dict.json")
    with open(path, "w") as f:
        json.dump({"timm": timm.__version__, "model": ARCH, "num_classes": 1000, "parameter_count": count,
                   "default_cfg_classifier": model.default_cfg.get("classifier"),
                   "drop_rate": model.head_drop.p, "state_dict": entries}, f, separators=(",", ":"))
    print(f"wrote {path}: {len(entries)} entries, {count} parameters")


def make_case(size=75, batch=4, num_classes=10):
    for seed in range(1, 50):
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, 3, size, size, generator=generator)
        y = torch.randint(0, num_classes, (batch,), generator=generator)
        reference = build(num_classes)
        single = copy.deepcopy(reference)
        model, logits_train, loss, logits_eval = run(reference, x, y, torch.float64)
        model32, logits32, _, eval32 = run(single, x, y, torch.float32)
        worst_grad = max(float((q.grad.double() - p.grad).abs().max()) / gradient_scale(model, p.grad)
                         for p, q in zip(model.parameters(), model32.parameters()))
        worst_logits = max(rel(logits32, logits_train), rel(eval32, logits_eval))
        print(f"{ARCH} {size}px batch {batch} input seed {seed}: torch float32 vs float64: "
              f"logits_train {rel(logits32, logits_train):.2e}, logits_eval {rel(eval32, logits_eval):.2e}, "
              f"worst gradient {worst_grad:.2e}", flush=True)
        # 40 residual blocks of float32 rounding put even kink-free runs near 2e-4 (measured);
        # a kink moves a gradient by 1e-2 or more, so 3e-4 still separates the two.
        if worst_grad <= 3e-4 and worst_logits <= 3e-5:
            break
    else:
        raise SystemExit(f"{ARCH}: no input seed without a kink, see Note [Kinks]")
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
    path = os.path.join(HERE, f"{ARCH}.safetensors")
    save_file(out, path, metadata={"torch": torch.__version__, "timm": timm.__version__, "model": ARCH,
                                   "image_size": str(size), "batch": str(batch),
                                   "num_classes": str(num_classes), "input_seed": str(seed),
                                   "max_abs_gradient": repr(max_abs_gradient(model))})
    print(f"  wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    torch.set_num_threads(2)
    print("check:", fixture_values("conv2d_1a.conv.weight", (32, 3, 3, 3)).reshape(-1)[:3].tolist(),
          fixture_values("conv2d_1a.bn.bias", (32,))[:2].tolist(), fixture_values("repeat.0.conv2d.bias", (320,))[:2].tolist())
    make_state_dict_json()
    make_case()
