"""PyTorch's side of `swift-dp-train bench`: the same models, input size, batch and thread
count, timing forward + cross-entropy + backward + SGD step on one fixed random batch.

    venv/bin/python benchmarks/pytorch_train_bench.py resnet18:64:64 resnet50:64:32 inception_resnet_v2:75:16
    (model:image-size:batch; --threads 1 --steps 6 --warmup 2 --channels-last)

Peak RSS is the whole process's (ru_maxrss), so run one model per process to compare it
with `swift-dp-train bench`; "after import" is what torch itself holds before any model.
"""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torchvision


def build(name):
    if name == "inception_resnet_v2":  # timm's names, as ours
        import timm
        return timm.create_model(name, num_classes=1000)
    return getattr(torchvision.models, name)(num_classes=1000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--mode", choices=["train", "eval"], default="train",
                        help="eval: forward alone under torch.inference_mode(), as `bench --mode eval`")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for spec in args.specs:
        name, size, batch = spec.split(":")
        size, batch = int(size), int(batch)
        model = build(name).train(args.mode == "train")
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 1000, (batch,))
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        times = []
        for step in range(args.warmup + args.steps):
            started = time.perf_counter()
            if args.mode == "eval":
                with torch.inference_mode():
                    model(x)
            else:
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
            if step >= args.warmup:
                times.append(time.perf_counter() - started)
        ms = statistics.median(times) * 1000
        layout = "channels-last" if args.channels_last else "NCHW"
        print(f"pytorch {torch.__version__} {name} {args.mode} {size}px batch {batch} {args.threads} thread(s) {layout}: "
              f"{batch / ms * 1000:.1f} images/s, {ms:.1f} ms/step (median of {args.steps}), "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
              f"({baseline_mb:.0f} MB after import)", flush=True)


if __name__ == "__main__":
    main()
