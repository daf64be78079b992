"""PyTorch DistributedDataParallel (gloo, CPU) beside `swift-dp-train bench` in the scale-out
benchmark: the same model, input size, per-rank batch, threads and ranks, one fixed synthetic
batch per rank, the same median-of-steps timing, and the same per-step split.

Launched like our binary, by mpirun (it reads OMPI_COMM_WORLD_RANK/SIZE; torchrun's RANK and
WORLD_SIZE work too), with MASTER_ADDR/MASTER_PORT naming rank 0's host; GLOO_SOCKET_IFNAME
picks the interface where a host has several. One process without a launcher is the 1-rank
figure: a plain model, no DDP wrapper, as ours runs without a communicator.

    mpirun -np 2 -x MASTER_ADDR=127.0.0.1 -x MASTER_PORT=29511 \\
        venv/bin/python benchmarks/scaleout/ddp_bench.py --model resnet18 --image-size 64 \\
        --batch-size 32 --steps 6 --warmup 2 --threads 1 --json ddp.json [--allreduce-sizes 1M,25M]

Per-step split, measured as ours is:
  compute_ms       forward + loss + backward with DDP's all-reduce switched off (`no_sync()`)
  exposed_comm_ms  (forward + backward with the all-reduce) - compute_ms: the part of DDP's
                   bucketed all-reduce that backward did not hide
  optimizer_ms     the SGD step alone
  data_wait_ms     0: the batch is in memory
`--allreduce-sizes` also times gloo's all-reduce alone by message size (the curve the
projection fits) and `allreduce_ms`, the all-reduce of this model's gradients in DDP's
buckets (first 1 MiB, then 25 MiB: `dist._DEFAULT_FIRST_BUCKET_BYTES`, `bucket_cap_mb`).
Only the standard library and torch/torchvision (timm for inception_resnet_v2).
"""
import argparse
import json
import os
import resource
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torchvision

FIRST_BUCKET_BYTES = 1 << 20   # DDP's default first bucket (torch.distributed._DEFAULT_FIRST_BUCKET_BYTES)
BUCKET_CAP_BYTES = 25 << 20    # DDP's default bucket_cap_mb = 25


def build(name):
    if name == "inception_resnet_v2":  # timm's names, as ours (benchmarks/pytorch_train_bench.py)
        import timm
        return timm.create_model(name, num_classes=1000)
    return getattr(torchvision.models, name)(num_classes=1000)


def parse_bytes(text):
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


def launcher_rank_size():
    env = os.environ
    for rank_key, size_key in (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("RANK", "WORLD_SIZE"),
                               ("PMI_RANK", "PMI_SIZE")):
        if rank_key in env and size_key in env:
            return int(env[rank_key]), int(env[size_key])
    return 0, 1


def bucket_sizes(parameter_bytes):
    """DDP's bucket sizes for a model, approximately: 1 MiB first, then 25 MiB caps (DDP fills
    buckets on parameter boundaries; the total is what matters for the time)."""
    sizes, left = [], parameter_bytes
    first = min(FIRST_BUCKET_BYTES, left)
    if first:
        sizes.append(first)
        left -= first
    while left > 0:
        sizes.append(min(BUCKET_CAP_BYTES, left))
        left -= sizes[-1]
    return sizes


def time_allreduce(nbytes, world, budget_s=0.2, repeats=5):
    """Seconds per all-reduce of nbytes of float32: batches of back-to-back calls lasting about
    budget_s, the median batch, as `swift-dp-train bench-allreduce` times ours."""
    tensor = torch.ones(max(nbytes // 4, 1))
    dist.all_reduce(tensor)
    dist.barrier()
    started = time.perf_counter()
    dist.all_reduce(tensor)
    one = time.perf_counter() - started
    # Every rank must issue the same number of calls: agree on the batch size.
    count = torch.tensor([max(1, int(budget_s / max(one, 1e-6)))], dtype=torch.float64)
    dist.all_reduce(count, op=dist.ReduceOp.MAX)
    calls = int(count.item())
    batches = []
    for _ in range(repeats):
        dist.barrier()
        started = time.perf_counter()
        for _ in range(calls):
            dist.all_reduce(tensor)
        batches.append((time.perf_counter() - started) / calls)
    mine = torch.tensor([statistics.median(batches)], dtype=torch.float64)
    dist.all_reduce(mine)
    return mine.item() / world


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--allreduce-sizes", default="", help="e.g. 64K,1M,4M,16M,64M (2+ ranks)")
    parser.add_argument("--json", help="write the result here (rank 0)")
    args = parser.parse_args()

    rank, world = launcher_rank_size()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    if world > 1:
        # env:// rendezvous at MASTER_ADDR:MASTER_PORT, which the scale-out script passes to every
        # rank with mpirun -x (remote ranks start with a login environment, as under ssh).
        dist.init_process_group("gloo", rank=rank, world_size=world)

    model = build(args.model).train()
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 1000, (args.batch_size,))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    parameters = sum(p.numel() for p in model.parameters())
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step(sync):
        started = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        if sync or world == 1:
            nn.functional.cross_entropy(net(x), y).backward()
        else:
            with net.no_sync():
                nn.functional.cross_entropy(net(x), y).backward()
        backward_done = time.perf_counter()
        opt.step()
        return backward_done - started, time.perf_counter() - backward_done

    for _ in range(args.warmup):
        step(True)
    # Blocks rather than alternating steps: a no_sync step lets ranks drift apart, and the next
    # synchronised step would then carry that skew as if it were communication.
    if world > 1:
        dist.barrier()
    synced = [step(True) for _ in range(args.steps)]
    plain = []
    if world > 1:
        dist.barrier()
        plain = [step(False) for _ in range(args.steps)]
    forward_backward = statistics.median(s[0] for s in synced)
    optimizer = statistics.median(s[1] for s in synced)
    total = statistics.median(s[0] + s[1] for s in synced)
    compute = statistics.median(s[0] for s in plain) if plain else forward_backward

    allreduce = 0.0
    curve = []
    if world > 1:
        allreduce = sum(time_allreduce(b, world, budget_s=0.1, repeats=3) for b in bucket_sizes(parameters * 4))
        for size in filter(None, args.allreduce_sizes.split(",")):
            nbytes = parse_bytes(size)
            seconds = time_allreduce(nbytes, world)
            curve.append({"bytes": nbytes, "microseconds": seconds * 1e6})
        # The mean over ranks of each rank's medians, as `bench` reports.
        numbers = torch.tensor([total, compute, forward_backward, optimizer,
                                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024], dtype=torch.float64)
        dist.all_reduce(numbers)
        total, compute, forward_backward, optimizer, rss = (v / world for v in numbers.tolist())
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    result = {
        "framework": "pytorch-ddp", "torch": torch.__version__, "backend": "gloo" if world > 1 else "none",
        "model": args.model, "image_size": args.image_size, "batch_size": args.batch_size,
        "threads": args.threads, "ranks": world, "steps": args.steps, "parameters": parameters,
        "layout": "channels-last" if args.channels_last else "NCHW",
        "images_per_second": args.batch_size * world / total,
        "ms_per_step": total * 1e3,
        "compute_ms": compute * 1e3,
        "exposed_comm_ms": max(forward_backward - compute, 0.0) * 1e3,
        "optimizer_ms": optimizer * 1e3,
        "data_wait_ms": 0.0,
        "allreduce_ms": allreduce * 1e3,
        "peak_rss_mb": rss,
        "allreduce_curve": curve,
    }
    if rank == 0:
        print(f"pytorch {torch.__version__} DDP({result['backend']}) {args.model} {args.image_size}px batch "
              f"{args.batch_size}/rank, {world} rank(s), {args.threads} thread(s): "
              f"{result['images_per_second']:.1f} images/s, {result['ms_per_step']:.1f} ms/step "
              f"(compute {result['compute_ms']:.1f}, exposed comm {result['exposed_comm_ms']:.1f}, "
              f"optimizer {result['optimizer_ms']:.1f}; all-reduce alone {result['allreduce_ms']:.1f} ms)", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
