"""Learning rates of real torch.optim.lr_scheduler schedules, for LearningRateScheduleTests.swift.

Run from the repository root with a Python that has torch:
    python Tests/TrainingTests/Fixtures/lr/make_lr_fixtures.py

A small run (7 steps per epoch, 10 epochs, base lr 0.1) is driven iteration by iteration and
the learning rate each iteration trains with (param_groups[0]["lr"] before optimizer.step())
is recorded. How each of our settings maps onto torch:
  no warm-up, multistep/step: MultiStepLR / StepLR in epochs, stepped at the end of each epoch
      (torchvision's reference scripts);
  no warm-up, cosine:         CosineAnnealingLR(T_max=epochs*steps, eta_min=min_lr) per iteration;
  constant:                   LambdaLR(lambda _: 1);
  onecycle:                   OneCycleLR(max_lr=base, total_steps=epochs*steps, pct_start, div_factor,
                              final_div_factor, anneal_strategy="cos", three_phase=False) per
                              iteration (it has its own warm-up phase, so never a separate one);
  with warm-up W = warmup_epochs*steps iterations:
      SequentialLR([LinearLR(start_factor, total_iters=W), main], milestones=[W]) stepped per
      iteration, main in iterations: MultiStepLR(milestones=[m*steps]), StepLR(step_size*steps),
      CosineAnnealingLR(T_max=epochs*steps - W), LambdaLR(1). The main schedule starts at its
      own step 0 after warm-up, so its milestones count from the end of warm-up.
Values are written with 9 significant digits.
"""
import json
import math
import os
import warnings

import torch
from torch.optim import lr_scheduler as S

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS_PER_EPOCH = 7
EPOCHS = 10
BASE_LR = 0.1

CASES = [
    dict(name="constant", kind="constant"),
    dict(name="constant_warmup", kind="constant", warmup_epochs=2),
    dict(name="multistep", kind="multistep", milestones=[3, 6], gamma=0.1),
    dict(name="multistep_warmup", kind="multistep", milestones=[3, 6], gamma=0.1, warmup_epochs=1),
    dict(name="step", kind="step", step_size=2, gamma=0.5),
    dict(name="step_warmup", kind="step", step_size=3, gamma=0.1, warmup_epochs=2, warmup_start_factor=0.1),
    dict(name="cosine", kind="cosine"),
    dict(name="cosine_min_lr", kind="cosine", min_lr=1e-3),
    dict(name="cosine_warmup", kind="cosine", warmup_epochs=2, min_lr=1e-4),
    dict(name="cosine_warmup_factor", kind="cosine", warmup_epochs=1, warmup_start_factor=0.25),
    dict(name="onecycle", kind="onecycle"),
    dict(name="onecycle_options", kind="onecycle", pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
]

DEFAULTS = dict(warmup_epochs=0, warmup_start_factor=0.01, milestones=[30, 60], step_size=30, gamma=0.1,
                min_lr=0.0, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)


def r9(x):
    return float(f"{x:.9g}")


def run(case):
    c = dict(DEFAULTS, **case)
    total = EPOCHS * STEPS_PER_EPOCH
    warmup = int(c["warmup_epochs"] * STEPS_PER_EPOCH)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR, momentum=0.9)
    per_epoch = False
    kind = c["kind"]
    if kind == "onecycle":
        assert warmup == 0
        sched = S.OneCycleLR(opt, max_lr=BASE_LR, total_steps=total, pct_start=c["pct_start"],
                             div_factor=c["div_factor"], final_div_factor=c["final_div_factor"],
                             anneal_strategy="cos", three_phase=False)
    elif warmup == 0 and kind in ("multistep", "step"):
        per_epoch = True
        if kind == "multistep":
            sched = S.MultiStepLR(opt, milestones=c["milestones"], gamma=c["gamma"])
        else:
            sched = S.StepLR(opt, step_size=c["step_size"], gamma=c["gamma"])
    else:
        main_steps = total - warmup
        if kind == "constant":
            main = S.LambdaLR(opt, lambda _: 1.0)
        elif kind == "multistep":
            main = S.MultiStepLR(opt, milestones=[m * STEPS_PER_EPOCH for m in c["milestones"]], gamma=c["gamma"])
        elif kind == "step":
            main = S.StepLR(opt, step_size=c["step_size"] * STEPS_PER_EPOCH, gamma=c["gamma"])
        else:
            main = S.CosineAnnealingLR(opt, T_max=main_steps, eta_min=c["min_lr"])
        if warmup == 0:
            sched = main
        else:
            linear = S.LinearLR(opt, start_factor=c["warmup_start_factor"], total_iters=warmup)
            sched = S.SequentialLR(opt, schedulers=[linear, main], milestones=[warmup])
    lrs = []
    for it in range(total):
        lrs.append(r9(opt.param_groups[0]["lr"]))
        opt.step()
        if per_epoch:
            if (it + 1) % STEPS_PER_EPOCH == 0:
                sched.step()
        elif it + 1 < total:  # OneCycleLR refuses to step past total_steps
            sched.step()
    c["lr"] = lrs
    return c


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cases = [run(c) for c in CASES]
fixture = dict(torch_version=torch.__version__, steps_per_epoch=STEPS_PER_EPOCH, epochs=EPOCHS,
               base_lr=BASE_LR, cases=cases)
path = os.path.join(HERE, "lr_fixtures.json")
with open(path, "w") as f:
    json.dump(fixture, f, indent=None, separators=(",", ":"))
    f.write("\n")
print(f"wrote {path}: {len(cases)} cases x {EPOCHS * STEPS_PER_EPOCH} iterations")
