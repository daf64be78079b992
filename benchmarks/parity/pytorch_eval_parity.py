"""Same validation accuracy in swift-dp-train as in PyTorch, on the same JPEG files, both ways.

Trains a torchvision ResNet-18 in PyTorch on a Tiny-ImageNet-layout dataset (by default the
built-in one, ~/.cache/swift-dp-train/builtin-v1-300x50), saves it with safetensors, then
evaluates it both in PyTorch (PIL decode, ToTensor, ImageNet Normalize; 64 px images, so no
resize) and with `swift-dp-train eval --weights … --image-size 64 --resize 64`, and compares
the accuracies and every image's top-1 prediction (via `swift-dp-train predict --json`).
Then the other way: trains a ResNet-18 with swift-dp-train (2 epochs, 2 ranks under mpirun),
exports it, loads it into torchvision's resnet18 with `load_state_dict(strict=True)`, and
compares PyTorch's top-1 predictions with `swift-dp-train predict` on every image.

    python3 -m venv venv && venv/bin/pip install torch torchvision safetensors pillow
    venv/bin/python benchmarks/parity/pytorch_eval_parity.py [--data DIR] [--epochs 3]

Writes benchmarks/parity/results.md (the table quoted in the README).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_imagenet(root):
    wnids = sorted(open(os.path.join(root, "wnids.txt")).read().split())
    index = {w: i for i, w in enumerate(wnids)}
    train = []
    for w in wnids:
        folder = os.path.join(root, "train", w, "images")
        train += [(os.path.join(folder, f), index[w]) for f in sorted(os.listdir(folder))]
    val = []
    for line in open(os.path.join(root, "val", "val_annotations.txt")):
        fields = line.split("\t")
        if len(fields) >= 2:
            val.append((os.path.join(root, "val", "images", fields[0]), index[fields[1]]))
    val.sort()
    return wnids, train, val


class Files(torch.utils.data.Dataset):
    def __init__(self, samples, transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return self.transform(Image.open(path).convert("RGB")), label


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/swift-dp-train/builtin-v1-300x50"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/swift-dp-train"))
    parser.add_argument("--work", default="/tmp/sdt-parity")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())

    wnids, train, val = tiny_imagenet(args.data)
    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train_tf = transforms.Compose([transforms.RandomCrop(64, padding=4), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), normalize])
    eval_tf = transforms.Compose([transforms.ToTensor(), normalize])
    loader = torch.utils.data.DataLoader(Files(train, train_tf), batch_size=64, shuffle=True, num_workers=1)
    model = torchvision.models.resnet18(num_classes=len(wnids))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=args.epochs * len(loader))
    for epoch in range(args.epochs):
        model.train()
        started = time.time()
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: {time.time() - started:.0f} s", flush=True)

    model.eval()
    predictions = []
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(Files(val, eval_tf), batch_size=100):
            predictions += model(x).argmax(1).tolist()
    torch_top1 = sum(p == label for p, (_, label) in zip(predictions, val)) / len(val)
    weights = os.path.join(args.work, "resnet18_torch.safetensors")
    save_file(model.state_dict(), weights)

    result = os.path.join(args.work, "eval.json")
    subprocess.run([args.binary, "eval", "--data", args.data, "--weights", weights, "--model", "resnet18",
                    "--image-size", "64", "--resize", "64", "--json", result], check=True)
    ours = json.load(open(result))
    out = subprocess.run([args.binary, "predict", "--weights", weights, "--model", "resnet18", "--image-size", "64",
                          "--resize", "64", "--json", "--top", "1"] + [p for p, _ in val], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("swift-dp-train predict failed: " + out.stderr[-2000:])
    our_predictions = {o["file"]: o["top"][0]["index"] for o in map(json.loads, out.stdout.splitlines())}
    differing = sum(our_predictions[p] != q for (p, _), q in zip(val, predictions))

    # The other way: trained here, evaluated in PyTorch.
    run = os.path.join(args.work, "run")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run(["mpirun", "-np", "2", args.binary, "train", "--data", args.data, "--epochs", "2",
                    "--output", run], check=True, env=env, stdout=subprocess.DEVNULL)
    exported = os.path.join(args.work, "resnet18_ours.safetensors")
    subprocess.run([args.binary, "export", "--checkpoint", os.path.join(run, "last.safetensors"), "--output", exported],
                   check=True)
    from safetensors.torch import load_file
    back = torchvision.models.resnet18(num_classes=len(wnids))
    back.load_state_dict(load_file(exported), strict=True)
    back.eval()
    torch_predictions = []
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(Files(val, eval_tf), batch_size=100):
            torch_predictions += back(x).argmax(1).tolist()
    back_top1 = sum(p == label for p, (_, label) in zip(torch_predictions, val)) / len(val)
    out = subprocess.run([args.binary, "predict", "--weights", exported, "--json", "--top", "1"] + [p for p, _ in val],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("swift-dp-train predict failed: " + out.stderr[-2000:])
    ours_back = {o["file"]: o["top"][0]["index"] for o in map(json.loads, out.stdout.splitlines())}
    ours_back_top1 = sum(ours_back[p] == label for p, label in val) / len(val)
    differing_back = sum(ours_back[p] != q for (p, _), q in zip(val, torch_predictions))

    name = os.path.basename(args.data.rstrip('/'))
    table = (f"| weights | data | images | PyTorch top-1 | swift-dp-train top-1 | difference | top-1 predictions that differ |\n"
             f"|---|---|---|---|---|---|---|\n"
             f"| trained in PyTorch ({args.epochs} epochs) | {name} val | {len(val)} | {torch_top1 * 100:.2f}% | "
             f"{ours['top1'] * 100:.2f}% | {abs(ours['top1'] - torch_top1) * 100:.2f} points | {differing} |\n"
             f"| trained here (2 epochs, 2 ranks), exported | {name} val | {len(val)} | {back_top1 * 100:.2f}% | "
             f"{ours_back_top1 * 100:.2f}% | {abs(ours_back_top1 - back_top1) * 100:.2f} points | {differing_back} |\n")
    print(table)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md"), "w") as f:
        f.write(f"torchvision ResNet-18 in PyTorch {torch.__version__} (torchvision {torchvision.__version__}) and in "
                f"swift-dp-train, evaluated on the same JPEG files ({time.strftime('%Y-%m-%d')}, "
                f"`benchmarks/parity/pytorch_eval_parity.py`):\n\n" + table)
    return 0 if abs(ours["top1"] - torch_top1) <= 0.002 and abs(ours_back_top1 - back_top1) <= 0.002 else 1


if __name__ == "__main__":
    sys.exit(main())
