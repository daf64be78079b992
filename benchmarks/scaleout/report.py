"""Turns a scale-out run's raw measurements (OUTPUT/raw/manifest.jsonl and the files it names)
into scale-out.csv, projection.csv, scale-out.svg and summary.md. Run by benchmarks/scale-out;
re-run by hand to redraw from the same measurements:

    PYTHONPATH=benchmarks python3 -m scaleout.report --output runs/scale-out-X --batch 32 --global-batch 64 --cores 2

Definitions (also in benchmarks/README.md):
  efficiency       images/s on N ranks ÷ (N × images/s on 1 rank), the 1-rank figure of the same
                   framework and mode: batch B for weak scaling, the global batch G for strong.
  per-step split   compute (forward + backward), data wait, exposed communication (the part of
                   the all-reduce the step waits for), optimizer. From the JSON's own fields where
                   the build writes them; else derived: exposed = allreduce_ms (this build reduces
                   after backward, nothing overlaps), compute = ms_per_step - allreduce_ms (with
                   the optimizer in it), data wait 0 (the batch is in memory).
  allreduce_ms     the all-reduce's whole time per step: ours from the same configuration run with
                   `--overlap off` (every bucket after backward); DDP's gloo all-reduce of its
                   buckets timed alone. Empty where not measured (oversubscribed runs).
  comm_cost_ms     step - step without communication (ours: the same configuration with
                   `--communication off`; DDP: its no_sync() steps): what communication costs the
                   step in all, including what overlapping it slows backward down by.
  oversubscribed   more ranks × threads than cores: compute is shared, so images/s and
                   efficiency say nothing about scaling; those rows measure communication, and the
                   chart shows 1 - exposed ÷ step for them instead.
"""
import argparse
import csv
import json
import math
import os
import statistics
import sys

from . import model as m

CSV_COLUMNS = ["mode", "ranks", "hosts", "link", "images_per_second", "efficiency", "compute_ms",
               "data_wait_ms", "exposed_comm_ms", "optimizer_ms",
               # beyond the columns:
               "framework", "oversubscribed", "model", "image_size", "batch_per_rank", "global_batch",
               "threads", "ms_per_step", "allreduce_ms", "step_without_comm_ms", "comm_cost_ms",
               "comm_efficiency", "split",
               "predicted_images_per_second", "prediction_error", "busy_cores_before", "busy_cores_during"]
PROJECTION_RANKS = [8, 16, 32, 64, 128, 256, 512]
PROJECTION_NETWORKS = [("10gbit", 1e10), ("25gbit", 2.5e10), ("100gbit", 1e11)]
FRAMEWORK_LABEL = {"ours": "swift-dp-train", "pytorch-ddp": "PyTorch DDP"}
STACK = {"ours": "ompi", "pytorch-ddp": "gloo"}


# ---------------------------------------------------------------------------- loading
def load_manifest(output):
    path = os.path.join(output, "raw", "manifest.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_train_dir(run_dir, ranks, batch, warmup):
    """`swift-dp-train train` run directory (--data DIR): the step lines of metrics.jsonl after
    the warm-up steps, medians; step time from images/s."""
    lines = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            entry = json.loads(line)
            if entry.get("kind") == "step" and entry.get("step", 0) > warmup:
                lines.append(entry)
    if not lines:
        raise ValueError(f"no step lines after warm-up in {run_dir}/metrics.jsonl")
    ips = statistics.median(e["images_per_second"] for e in lines)
    step_ms = ranks * batch / ips * 1e3
    wait_ms = statistics.median(e.get("data_wait", 0.0) for e in lines) * step_ms
    comm_ms = statistics.median(e.get("comm_seconds", 0.0) for e in lines) * 1e3
    return {"images_per_second": ips, "ms_per_step": step_ms, "allreduce_ms": comm_ms,
            "data_wait_ms": wait_ms, "exposed_comm_ms": comm_ms,
            "compute_ms": step_ms - wait_ms - comm_ms, "optimizer_ms": None, "split": "derived from train",
            "parameters": None}


def normalise(entry):
    """One training measurement as {images_per_second, ms_per_step, compute_ms, data_wait_ms,
    exposed_comm_ms, optimizer_ms, allreduce_ms, parameters, split}."""
    path = entry["file"]
    if os.path.isdir(path):
        return read_train_dir(path, entry["ranks"], entry["batch"], entry.get("warmup", 0))
    with open(path) as f:
        raw = json.load(f)
    out = {"images_per_second": raw["images_per_second"], "ms_per_step": raw["ms_per_step"],
           "allreduce_ms": raw.get("allreduce_ms", 0.0) or 0.0, "parameters": raw.get("parameters")}
    split_fields = ("compute_ms", "exposed_comm_ms", "optimizer_ms", "data_wait_ms")
    if all(raw.get(k) is not None for k in ("compute_ms", "exposed_comm_ms")):
        for key in split_fields:
            out[key] = raw.get(key)
        out["data_wait_ms"] = out["data_wait_ms"] or 0.0
        out["split"] = "measured"
        out["backward_ms"] = raw.get("backward_ms")
        if raw.get("framework") != "pytorch-ddp":
            # Builds with the split report the all-reduce *wait* as allreduce_ms; the whole
            # all-reduce comes from the --overlap off reference run (attach_references).
            out["allreduce_ms"] = None if raw.get("ranks", 1) > 1 else 0.0
    else:
        # Fallback for builds whose `bench` has no split fields: the all-reduce runs after
        # backward, so all of it is exposed, and the rest of the step is compute + optimizer.
        out["exposed_comm_ms"] = out["allreduce_ms"]
        out["compute_ms"] = out["ms_per_step"] - out["allreduce_ms"]
        out["optimizer_ms"] = None
        out["data_wait_ms"] = 0.0
        out["split"] = "derived"
    return out


def read_allreduce_csv(path):
    rows = []
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get("compression", "none") == "none":
                rows.append((int(row["bytes"]), float(row["microseconds"]) * 1e-6))
    return rows


# ---------------------------------------------------------------------------- measured rows
def share_of(entry, cores):
    """Ranks per core where the ranks of one machine share its cores (local, virtual cluster)."""
    if entry.get("target") == "hostfile":
        return 1.0
    return max(1.0, entry["ranks"] * entry.get("threads", 1) / max(cores, 1))


def build_rows(manifest, batch, global_batch, cores, modes=("weak", "strong")):
    runs, failed = [], []
    for entry in manifest:
        if entry.get("kind") != "train":
            continue
        if entry.get("status") != "ok":
            failed.append(entry)
            continue
        try:
            runs.append((entry, normalise(entry)))
        except (OSError, ValueError, KeyError) as error:
            entry["error"] = str(error)
            failed.append(entry)
    references = {}
    for entry in manifest:
        if entry.get("kind") == "reference" and entry.get("status") == "ok" and os.path.exists(entry["file"]):
            with open(entry["file"]) as f:
                raw = json.load(f)
            key = (entry["framework"], entry["target"], entry["link"], entry["ranks"], entry["batch"])
            references.setdefault(key, {})[entry["reference"]] = raw
    for entry, result in runs:
        result["step_without_comm_ms"] = None
        result["comm_cost_ms"] = None
        if entry["framework"] == "pytorch-ddp":
            if entry["ranks"] > 1:
                result["step_without_comm_ms"] = result["compute_ms"] + (result["optimizer_ms"] or 0)
                result["comm_cost_ms"] = result["ms_per_step"] - result["step_without_comm_ms"]
            continue
        ref = references.get((entry["framework"], entry["target"], entry["link"], entry["ranks"], entry["batch"]), {})
        if "overlap-off" in ref:
            result["allreduce_ms"] = ref["overlap-off"].get("exposed_comm_ms", ref["overlap-off"].get("allreduce_ms"))
        if "communication-off" in ref:
            result["step_without_comm_ms"] = ref["communication-off"]["ms_per_step"]
            result["comm_cost_ms"] = result["ms_per_step"] - result["step_without_comm_ms"]
        elif result["split"] == "derived" and entry["ranks"] > 1:
            result["comm_cost_ms"] = result["exposed_comm_ms"]
    baseline = {}
    for entry, result in runs:
        if entry["ranks"] == 1:
            if entry["batch"] == batch:
                baseline[(entry["framework"], "weak")] = (entry, result)
            if entry["batch"] == global_batch:
                baseline[(entry["framework"], "strong")] = (entry, result)
    rows = []
    for entry, result in runs:
        run_modes = []
        if entry["batch"] == batch and "weak" in modes:
            run_modes.append("weak")
        if entry["batch"] * entry["ranks"] == global_batch and "strong" in modes:
            run_modes.append("strong")
        for mode in run_modes:
            base = baseline.get((entry["framework"], mode))
            efficiency = None
            if base:
                efficiency = result["images_per_second"] / (entry["ranks"] * base[1]["images_per_second"])
            rows.append({
                "mode": mode, "ranks": entry["ranks"], "hosts": entry.get("hosts", 1), "link": entry.get("link", ""),
                "target": entry.get("target"), "framework": entry["framework"],
                "oversubscribed": bool(entry.get("oversubscribed")), "model": entry.get("model"),
                "image_size": entry.get("image_size"), "batch_per_rank": entry["batch"],
                "global_batch": entry["batch"] * entry["ranks"], "threads": entry.get("threads", 1),
                "efficiency": efficiency, "share": share_of(entry, cores),
                "busy_cores_before": float(entry["busy_cores_before"]) if entry.get("busy_cores_before") not in (None, "") else None,
                "busy_cores_during": float(entry["busy_cores_during"]) if entry.get("busy_cores_during") not in (None, "") else None,
                "comm_efficiency": 1 - result["exposed_comm_ms"] / result["ms_per_step"] if result["ms_per_step"] else None,
                **result})
    rows.sort(key=lambda r: (r["mode"], r["framework"] != "ours", r["target"] != "local",
                             m.parse_rate(r["link"]) or 0, r["link"], r["ranks"]))
    return rows, baseline, failed


# ---------------------------------------------------------------------------- fitting
def fit_groups(manifest, rows, cores, link_override=None):
    """α–β fits per communication stack and transport: ours over TCP (virtual cluster or your
    hostfile), ours over shared memory (one machine), gloo over TCP and over loopback. The
    largest rank count of each group is held out when there are two or more."""
    curves = []   # (group, stack, p, n, link_bits, seconds, share, label)
    for entry in manifest:
        if entry.get("kind") == "allreduce" and entry.get("status") == "ok" and os.path.exists(entry["file"]):
            transport = "shm" if entry["target"] == "local" else "tcp"
            bits = m.parse_rate(entry["link"]) if transport == "tcp" else None
            for n, seconds in read_allreduce_csv(entry["file"]):
                curves.append((f"ours/{transport}", "ompi", entry["ranks"], n, bits, seconds,
                               share_of(entry, cores), entry["link"]))
        if entry.get("kind") == "train" and entry.get("framework") == "pytorch-ddp" and entry.get("status") == "ok" \
                and entry["ranks"] > 1 and os.path.exists(entry["file"]):
            with open(entry["file"]) as f:
                raw = json.load(f)
            transport = "loopback" if entry["target"] == "local" else "tcp"
            bits = m.parse_rate(entry["link"]) if transport == "tcp" else None
            for point in raw.get("allreduce_curve", []):
                curves.append((f"pytorch-ddp/{transport}", "gloo", entry["ranks"], point["bytes"], bits,
                               point["microseconds"] * 1e-6, share_of(entry, cores), entry["link"]))
    fits = {}
    for group in sorted({c[0] for c in curves}):
        points = [c for c in curves if c[0] == group]
        rank_counts = sorted({c[2] for c in points})
        held_out_ranks = rank_counts[-1] if len(rank_counts) >= 2 else None
        train = [c for c in points if c[2] != held_out_ranks]
        test = [c for c in points if c[2] == held_out_ranks]
        stack = points[0][1]
        fit = m.fit_alpha_beta([(p, n, bits, s, share) for _, _, p, n, bits, s, share, _ in train], stack)
        errors = []
        for _, _, p, n, bits, seconds, share, link in points:
            predicted = m.predict_allreduce(fit, stack, p, n, bits, share)
            errors.append({"ranks": p, "bytes": n, "link": link, "measured_s": seconds, "predicted_s": predicted,
                           "error": predicted / seconds - 1, "held_out": p == held_out_ranks})
        fit.update({"group": group, "fitted_ranks": [r for r in rank_counts if r != held_out_ranks],
                    "held_out_ranks": held_out_ranks, "errors": errors})
        fits[group] = fit
    return fits


def network_fit(fits, framework):
    """The fit a network projection uses: TCP where a network was measured, else the local one."""
    for transport in ("tcp", "shm", "loopback"):
        fit = fits.get(f"{framework}/{transport}")
        if fit:
            return fit, transport
    return None, None


def overlap_fraction(rows, framework):
    """Share of the all-reduce the step does not pay for: 1 - communication cost ÷ all-reduce,
    median over the multi-rank runs on dedicated cores. The cost is step - step without
    communication where measured (so a backward slowed by overlapping counts against it), but
    never less than the exposed wait, which is part of it: where the all-reduce is small beside
    the step (ResNet-50: 0.6 s of 12-15 s), run-to-run noise makes the difference negative and
    would claim the whole all-reduce hidden. Else the exposed wait; 0 where the split is derived
    (nothing overlaps in such builds)."""
    values = []
    for r in rows:
        if r["framework"] != framework or r["ranks"] < 2 or r["oversubscribed"] or not r.get("allreduce_ms"):
            continue
        cost = r["exposed_comm_ms"]
        if r.get("comm_cost_ms") is not None:
            cost = max(r["comm_cost_ms"], cost)
        values.append(1 - cost / r["allreduce_ms"])
    if not values:
        return 0.0
    return min(max(statistics.median(values), 0.0), 1.0)


def step_without_comm(baseline, framework, batch_per_rank):
    """One rank's step at this batch, from the 1-rank runs (weak at B, strong at G): the line
    through both, or proportional to the batch from the one there is."""
    points = sorted({(e["batch"], r["ms_per_step"] - r["exposed_comm_ms"]) for (fw, _), (e, r) in baseline.items()
                     if fw == framework})
    if not points:
        return None
    if len(points) == 1 or points[0][0] == points[-1][0]:
        b, t = points[0]
        return t * batch_per_rank / b
    (b0, t0), (b1, t1) = points[0], points[-1]
    return t0 + (t1 - t0) * (batch_per_rank - b0) / (b1 - b0)


def backward_shares(baseline):
    """backward ÷ (forward + backward) of each framework's 1-rank run, where the build splits it."""
    shares = {}
    for (framework, mode), (entry, result) in baseline.items():
        if mode == "weak" and result.get("backward_ms") and result.get("compute_ms"):
            shares[framework] = result["backward_ms"] / result["compute_ms"]
    return shares


def validate(rows, baseline, fits, overlaps, shares):
    """Predicts every multi-rank training run from the fits (which never saw them) and the
    1-rank runs, and returns the relative errors of images/s."""
    checks = []
    for row in rows:
        if row["ranks"] < 2 or not row.get("parameters"):
            continue
        transport = "tcp" if row["target"] in ("vc", "hostfile") else ("shm" if row["framework"] == "ours" else "loopback")
        fit = fits.get(f"{row['framework']}/{transport}")
        base_ms = step_without_comm(baseline, row["framework"], row["batch_per_rank"])
        if not fit or base_ms is None:
            continue
        bits = m.parse_rate(row["link"]) if transport == "tcp" else None
        allreduce_s = m.gradient_allreduce_seconds(fit, STACK[row["framework"]], row["ranks"], row["parameters"],
                                                   bits, row["share"])
        # Ranks sharing cores each get 1/share of one: their compute stretches by that much.
        step_s, exposed_s = m.predict_step(base_ms / 1e3 * row["share"], 0.0, 0.0, allreduce_s,
                                           overlaps[row["framework"]],
                                           shares.get(row["framework"], m.BACKWARD_SHARE))
        predicted = row["ranks"] * row["batch_per_rank"] / step_s
        row["predicted_images_per_second"] = predicted
        row["prediction_error"] = predicted / row["images_per_second"] - 1
        row["predicted_exposed_ms"] = exposed_s * 1e3
        checks.append(row)
    return checks


def error_stats(values):
    values = [abs(v) for v in values if v is not None]
    if not values:
        return None
    return {"n": len(values), "median": statistics.median(values), "max": max(values)}


def compute_entries(manifest, rows, baseline, image_size, batch):
    """Per-image step time (1 rank, no communication) and parameters of each projected model."""
    out = {}
    for entry in manifest:
        if entry.get("kind") != "compute" or entry.get("status") != "ok":
            continue
        try:
            with open(entry["file"]) as f:
                raw = json.load(f)
        except OSError:
            continue
        key = (entry["framework"], entry["model"], entry["image_size"])
        out[key] = {"ms_per_image": raw["ms_per_step"] / entry["batch"], "parameters": raw["parameters"],
                    "source": f"1 rank, batch {entry['batch']}"}
    # The measured model itself, from its 1-rank weak-scaling run.
    for (framework, mode), (entry, result) in baseline.items():
        key = (framework, entry.get("model"), entry.get("image_size"))
        if mode == "weak" and key not in out and result.get("parameters"):
            out[key] = {"ms_per_image": result["ms_per_step"] / entry["batch"], "parameters": result["parameters"],
                        "source": f"1 rank, batch {entry['batch']}"}
    return out


# A rank as fast as one core here (as measured), and as a node 16× faster (16 cores, ideal):
# the second shows where the network starts to matter.
COMPUTE_SPEEDUPS = [1, 16]


def projections(computes, fits, overlaps, batch, shares):
    table = []
    for (framework, model_name, size), c in sorted(computes.items()):
        fit, transport = network_fit(fits, framework)
        if not fit:
            continue
        for network, bits in PROJECTION_NETWORKS:
          for speedup in COMPUTE_SPEEDUPS:
            # Linear in the batch: the per-image time measured at a small batch, times the batch.
            compute_s = c["ms_per_image"] * batch / 1e3 / speedup
            for p in PROJECTION_RANKS:
                ips, eff, exposed = m.project(fit, STACK[framework], c["parameters"], compute_s, 0.0,
                                              overlaps[framework], p, bits, batch,
                                              shares.get(framework, m.BACKWARD_SHARE))
                allreduce = m.gradient_allreduce_seconds(fit, STACK[framework], p, c["parameters"], bits)
                table.append({"framework": framework, "model": model_name, "image_size": size,
                              "batch_per_rank": batch, "network": network, "compute_speedup": speedup, "ranks": p,
                              "images_per_second": ips, "efficiency": eff, "exposed_comm_ms": exposed * 1e3,
                              "allreduce_ms": allreduce * 1e3, "compute_ms": compute_s * 1e3,
                              "fit": f"{framework}/{transport}"})
    return table


# ---------------------------------------------------------------------------- the chart
COLORS = {"shm": "#222222", "none": "#222222", "1gbit": "#d62728", "10gbit": "#1f77b4", "25gbit": "#2ca02c",
          "100gbit": "#9467bd"}
EXTRA_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
SPLIT_COLORS = [("compute_ms", "compute", "#4e79a7"), ("data_wait_ms", "data wait", "#f28e2b"),
                ("exposed_comm_ms", "exposed communication", "#e15759"), ("optimizer_ms", "optimizer", "#76b7b2")]


def esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link_color(link, cache={}):
    base = link.split("+")[0]
    if base in COLORS:
        return COLORS[base]
    if base not in cache:
        cache[base] = EXTRA_COLORS[len(cache) % len(EXTRA_COLORS)]
    return cache[base]


def nice_max(value):
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for f in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if f * exp >= value:
            return f * exp
    return 10 * exp


class Panel:
    """A plot area with a log2 x axis (ranks) and a linear y axis."""

    def __init__(self, svg, x, y, w, h, title, xs, ymax, ylabel, percent=False):
        self.svg, self.x, self.y, self.w, self.h = svg, x, y, w, h
        self.xmin, self.xmax = math.log2(min(xs)), math.log2(max(xs))
        if self.xmax == self.xmin:
            self.xmax += 1
        self.ymax = ymax
        pad = 0.35
        self.xmin -= pad; self.xmax += pad
        svg.append(f'<text x="{x}" y="{y - 10}" class="title">{esc(title)}</text>')
        svg.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" class="frame"/>')
        ticks = 6 if percent else 5
        for i in range(ticks + 1):
            v = ymax * i / ticks
            py = self.py(v)
            svg.append(f'<line x1="{x}" y1="{py:.1f}" x2="{x + w}" y2="{py:.1f}" class="grid"/>')
            label = f"{v * 100:.0f}%" if percent else (f"{v:.0f}" if ymax >= 10 else f"{v:.2g}")
            svg.append(f'<text x="{x - 6}" y="{py + 4:.1f}" class="tick" text-anchor="end">{label}</text>')
        for r in sorted(set(xs)):
            px = self.px(r)
            svg.append(f'<line x1="{px:.1f}" y1="{y + h}" x2="{px:.1f}" y2="{y + h + 4}" class="axis"/>')
            svg.append(f'<text x="{px:.1f}" y="{y + h + 17}" class="tick" text-anchor="middle">{r}</text>')
        svg.append(f'<text x="{x + w / 2}" y="{y + h + 33}" class="label" text-anchor="middle">ranks</text>')
        svg.append(f'<text transform="translate({x - 44},{y + h / 2}) rotate(-90)" class="label" '
                   f'text-anchor="middle">{esc(ylabel)}</text>')

    def px(self, ranks):
        return self.x + (math.log2(ranks) - self.xmin) / (self.xmax - self.xmin) * self.w

    def py(self, value):
        return self.y + self.h - min(max(value, 0), self.ymax * 1.02) / self.ymax * self.h

    def shade_from(self, ranks, text):
        x0 = (self.px(ranks) + self.px(ranks / 2)) / 2
        self.svg.append(f'<rect x="{x0:.1f}" y="{self.y}" width="{self.x + self.w - x0:.1f}" height="{self.h}" class="shade"/>')
        for i, line in enumerate(text):
            self.svg.append(f'<text x="{x0 + 4:.1f}" y="{self.y + 13 + 13 * i}" class="small">{esc(line)}</text>')

    def series(self, points, color, dashed=False, hollow=False, square=False):
        points = sorted(points)
        if len(points) > 1:
            path = " ".join(f"{self.px(r):.1f},{self.py(v):.1f}" for r, v in points)
            dash = ' stroke-dasharray="6,4"' if dashed else ""
            self.svg.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"{dash}/>')
        for r, v in points:
            fill = "white" if hollow else color
            if square:
                self.svg.append(f'<rect x="{self.px(r) - 4:.1f}" y="{self.py(v) - 4:.1f}" width="8" height="8" '
                                f'fill="{fill}" stroke="{color}" stroke-width="1.5"/>')
            else:
                self.svg.append(f'<circle cx="{self.px(r):.1f}" cy="{self.py(v):.1f}" r="4" fill="{fill}" '
                                f'stroke="{color}" stroke-width="1.5"/>')


def draw_svg(path, rows, projection, cores, stats, title, proj_net="25gbit"):
    svg = []
    width, col_w, panel_h = 1180, 470, 250
    left1, left2 = 80, 660
    links = []
    for r in rows:
        if r["link"] not in links:
            links.append(r["link"])
    frameworks = [fw for fw in ("ours", "pytorch-ddp") if any(r["framework"] == fw for r in rows)]
    ranks_all = sorted({r["ranks"] for r in rows}) or [1, 2]

    def link_series(mode, value, panel, dedicated):
        for fw in frameworks:
            for link in links:
                pts = []
                for r in rows:
                    if r["mode"] != mode or r["framework"] != fw:
                        continue
                    if r["link"] != link and not (r["ranks"] == 1 and link not in ("none",)):
                        continue
                    if r["oversubscribed"] == dedicated:
                        continue
                    v = value(r)
                    if v is not None:
                        pts.append((r["ranks"], v))
                if link == "none" or not pts or (len(pts) == 1 and pts[0][0] == 1 and link != "none"):
                    continue
                panel.series(pts, link_color(link), dashed=fw != "ours", hollow=not dedicated or fw != "ours",
                             square=fw != "ours")

    y = 100
    svg.append(f'<text x="{left1 - 50}" y="28" class="head">{esc(title)}</text>')
    for mode, ylabel_row in (("weak", "weak scaling (fixed batch per rank)"), ("strong", "strong scaling (fixed global batch)")):
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        ips_max = nice_max(max(r["images_per_second"] for r in sel))
        svg.append(f'<text x="{left1 - 50}" y="{y - 32}" class="row">{esc(ylabel_row)}</text>')
        p1 = Panel(svg, left1, y, col_w, panel_h, "images/s (all ranks)", ranks_all, ips_max, "images/s")
        p2 = Panel(svg, left2, y, col_w, panel_h,
                   "efficiency = images/s ÷ (ranks × 1-rank images/s)", ranks_all, 1.2, "efficiency", percent=True)
        over = [r["ranks"] for r in sel if r["oversubscribed"]]
        if over:
            p1.shade_from(min(over), [f"ranks > {cores} cores share them:", "communication only"])
            p2.shade_from(min(over), [f"ranks > {cores} cores share them:", "y = 1 − exposed comm ÷ step"])
        # 100% line
        svg.append(f'<line x1="{left2}" y1="{p2.py(1):.1f}" x2="{left2 + col_w}" y2="{p2.py(1):.1f}" class="ref"/>')
        for dedicated in (True, False):
            link_series(mode, lambda r: r["images_per_second"], p1, dedicated)
            link_series(mode, (lambda r: r["efficiency"]) if dedicated else (lambda r: r["comm_efficiency"]), p2, dedicated)
        y += panel_h + 95

    # Legend
    lx, ly = left1, y - 50
    for i, link in enumerate(l for l in links if l != "none"):
        name = {"shm": "this machine (shared memory)"}.get(link, f"virtual cluster, {link} links" if "bit" in link else link)
        svg.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 22}" y2="{ly}" stroke="{link_color(link)}" stroke-width="2.5"/>')
        svg.append(f'<text x="{lx + 28}" y="{ly + 4}" class="small">{esc(name)}</text>')
        lx += 40 + 6.2 * len(name)
    ly += 20
    lx = left1
    svg.append(f'<circle cx="{lx + 11}" cy="{ly}" r="4" fill="#555" stroke="#555"/><line x1="{lx}" y1="{ly}" x2="{lx + 22}" y2="{ly}" stroke="#555" stroke-width="1.8"/>')
    svg.append(f'<text x="{lx + 28}" y="{ly + 4}" class="small">swift-dp-train (solid, filled)</text>')
    lx += 230
    if "pytorch-ddp" in frameworks:
        svg.append(f'<rect x="{lx + 7}" y="{ly - 4}" width="8" height="8" fill="white" stroke="#555" stroke-width="1.5"/><line x1="{lx}" y1="{ly}" x2="{lx + 22}" y2="{ly}" stroke="#555" stroke-width="1.8" stroke-dasharray="6,4"/>')
        svg.append(f'<text x="{lx + 28}" y="{ly + 4}" class="small">PyTorch DDP, gloo (dashed, squares)</text>')
        lx += 270
    svg.append(f'<circle cx="{lx + 11}" cy="{ly}" r="4" fill="white" stroke="#555" stroke-width="1.5"/>')
    svg.append(f'<text x="{lx + 28}" y="{ly + 4}" class="small">hollow circles: oversubscribed ranks</text>')
    y += 20

    # Per-step split, one bar per run.
    order = {"local": 0, "vc": 1, "hostfile": 2}
    bars = sorted(rows, key=lambda r: (r["framework"] != "ours", order.get(r["target"], 3), m.parse_rate(r["link"]) or 0,
                                       r["ranks"], r["batch_per_rank"]))
    seen, uniq = set(), []
    for r in bars:
        key = (r["framework"], r["link"], r["ranks"], r["batch_per_rank"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    bar_h, gap = 13, 4
    split_top = y + 30
    split_h = len(uniq) * (bar_h + gap)
    label_w = 320
    bx = left1 + label_w - 20
    bw = width - bx - 30
    svg.append(f'<text x="{left1}" y="{split_top - 12}" class="title">per step: compute, data wait, exposed communication, optimizer (ms, median step of each run)</text>')
    max_ms = nice_max(max((r["ms_per_step"] for r in uniq), default=1))
    for i in range(6):
        v = max_ms * i / 5
        px = bx + v / max_ms * bw
        svg.append(f'<line x1="{px:.1f}" y1="{split_top}" x2="{px:.1f}" y2="{split_top + split_h}" class="grid"/>')
        svg.append(f'<text x="{px:.1f}" y="{split_top + split_h + 14}" class="tick" text-anchor="middle">{v:.0f}</text>')
    for i, r in enumerate(uniq):
        ty = split_top + i * (bar_h + gap)
        where = "local" if r["target"] == "local" else (f"v-cluster {r['link']}" if r["target"] == "vc" else r["link"])
        label = (f"{'ours' if r['framework'] == 'ours' else 'DDP'} · {r['ranks']} rank{'s' if r['ranks'] > 1 else ''} · "
                 f"{where} · batch {r['batch_per_rank']}{' · oversub.' if r['oversubscribed'] else ''}"
                 f"{' · busy' if (r.get('busy_cores_during') or 0) >= 0.25 else ''}")
        svg.append(f'<text x="{bx - 6}" y="{ty + bar_h - 3}" class="small" text-anchor="end">{esc(label)}</text>')
        x0 = bx
        for key, _, color in SPLIT_COLORS:
            v = r.get(key)
            if not v:
                continue
            wpx = max(v, 0) / max_ms * bw
            svg.append(f'<rect x="{x0:.1f}" y="{ty}" width="{wpx:.1f}" height="{bar_h}" fill="{color}"/>')
            x0 += wpx
        if r["split"] != "measured":
            svg.append(f'<text x="{x0 + 4:.1f}" y="{ty + bar_h - 3}" class="small">*</text>')
    ly = split_top + split_h + 34
    lx = bx
    for _, name, color in SPLIT_COLORS:
        svg.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{color}"/>')
        svg.append(f'<text x="{lx + 16}" y="{ly + 1}" class="small">{name}</text>')
        lx += 30 + 7 * len(name)
    if any(r["split"] != "measured" for r in uniq):
        svg.append(f'<text x="{lx}" y="{ly + 1}" class="small">* derived: exposed = all-reduce, compute incl. optimizer</text>')
    y = ly + 40

    # Projection panels: as measured (one core per rank), and ranks 16× faster.
    proj_all = [p for p in projection if p["network"] == proj_net]
    if proj_all:
        models = []
        for p in proj_all:
            if (p["model"], p["image_size"]) not in models:
                models.append((p["model"], p["image_size"]))
        palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        batch = proj_all[0]["batch_per_rank"]
        for left, speedup, title_text in ((left1, 1, f"projected efficiency, {proj_net}, batch {batch}/rank, rank = 1 core here"),
                                          (left2, 16, f"the same, ranks 16× faster (16-core node per rank)")):
            proj = [p for p in proj_all if p["compute_speedup"] == speedup]
            if not proj:
                continue
            pane = Panel(svg, left, y + 30, col_w, panel_h, title_text, PROJECTION_RANKS, 1.2, "efficiency", percent=True)
            svg.append(f'<line x1="{left}" y1="{pane.py(1):.1f}" x2="{left + col_w}" y2="{pane.py(1):.1f}" class="ref"/>')
            for i, key in enumerate(models):
                for fw in frameworks:
                    pts = [(p["ranks"], p["efficiency"]) for p in proj
                           if (p["model"], p["image_size"]) == key and p["framework"] == fw]
                    if pts:
                        pane.series(pts, palette[i % len(palette)], dashed=fw != "ours", hollow=fw != "ours",
                                    square=fw != "ours")
        tx, ty = left1, y + 30 + panel_h + 55
        svg.append(f'<text x="{tx}" y="{ty}" class="small">solid, filled: swift-dp-train; dashed, squares: PyTorch DDP</text>')
        lx = tx + 360
        for i, key in enumerate(models):
            svg.append(f'<line x1="{lx}" y1="{ty - 4}" x2="{lx + 22}" y2="{ty - 4}" stroke="{palette[i % len(palette)]}" stroke-width="2.5"/>')
            label = f"{key[0]} {key[1]} px"
            svg.append(f'<text x="{lx + 28}" y="{ty}" class="small">{esc(label)}</text>')
            lx += 40 + 6.3 * len(label)
            if lx > width - 150:
                lx, ty = tx + 360, ty + 18
        ty += 26
        svg.append(f'<text x="{tx}" y="{ty}" class="title">the model against measurements</text>')
        ty += 18
        half = (len(stats) + 1) // 2
        for i, line in enumerate(stats):
            col_x = tx if i < half else left2
            row_y = ty + 16 * (i if i < half else i - half)
            svg.append(f'<text x="{col_x}" y="{row_y}" class="small">{esc(line)}</text>')
        y = ty + 16 * half + 10
    height = int(y + 10)
    style = ("<style>text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;fill:#222}"
             ".head{font-size:17px;font-weight:bold}.title{font-size:13px;font-weight:bold}.row{font-size:15px;font-weight:bold}"
             ".tick{font-size:11px}.label{font-size:12px}.small{font-size:11px}"
             ".frame{fill:none;stroke:#888}.grid{stroke:#e4e4e4}.axis{stroke:#888}"
             ".ref{stroke:#999;stroke-dasharray:2,3}.shade{fill:#f2f2f2}</style>")
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                f'viewBox="0 0 {width} {height}">\n{style}\n<rect width="100%" height="100%" fill="white"/>\n')
        f.write("\n".join(svg))
        f.write("\n</svg>\n")


# ---------------------------------------------------------------------------- text
def fmt(v, digits=1, percent=False):
    if v is None:
        return "—"
    return f"{v * 100:.{digits}f}%" if percent else f"{v:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description="scale-out report: CSV, SVG, projection, summary")
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--global-batch", type=int, required=True)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--modes", default="weak,strong")
    args = parser.parse_args()
    out = args.output

    manifest = load_manifest(out)
    rows, baseline, failed = build_rows(manifest, args.batch, args.global_batch, args.cores, args.modes.split(","))
    fits = fit_groups(manifest, rows, args.cores)
    overlaps = {fw: overlap_fraction(rows, fw) for fw in ("ours", "pytorch-ddp")}
    shares = backward_shares(baseline)
    checks = validate(rows, baseline, fits, overlaps, shares)
    computes = compute_entries(manifest, rows, baseline, None, args.batch)
    projection = projections(computes, fits, overlaps, args.batch, shares)

    with open(os.path.join(out, "scale-out.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in rows:
            cells = []
            for c in CSV_COLUMNS:
                v = r.get(c)
                if isinstance(v, bool):
                    v = "yes" if v else "no"
                elif isinstance(v, float):
                    v = f"{v:.4f}" if c in ("efficiency", "comm_efficiency", "prediction_error") else f"{v:.2f}"
                cells.append("" if v is None else v)
            w.writerow(cells)
    with open(os.path.join(out, "projection.csv"), "w", newline="") as f:
        cols = ["framework", "model", "image_size", "batch_per_rank", "network", "compute_speedup", "ranks", "images_per_second",
                "efficiency", "exposed_comm_ms", "allreduce_ms", "compute_ms", "fit"]
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for p in projection:
            w.writerow([f"{p[c]:.4f}" if isinstance(p[c], float) else p[c] for c in cols])

    def is_busy(r):
        return (r.get("busy_cores_during") or 0) >= 0.25
    clean = [r for r in checks if not is_busy(r)]
    dedicated = error_stats(r["prediction_error"] for r in clean if not r["oversubscribed"])
    oversub = error_stats(r["prediction_error"] for r in clean if r["oversubscribed"])
    allchecks = error_stats(r["prediction_error"] for r in clean)
    busy_checks = error_stats(r["prediction_error"] for r in checks if is_busy(r))
    fitted = {g: error_stats(e["error"] for e in fit["errors"] if not e["held_out"]) for g, fit in fits.items()}
    held = {}
    for group, fit in fits.items():
        held[group] = error_stats(e["error"] for e in fit["errors"] if e["held_out"])

    stats = []
    if allchecks:
        stats.append(f"model vs {allchecks['n']} measured training runs it did not fit (images/s):")
        if dedicated:
            stats.append(f"  ranks with own cores: median |error| {dedicated['median']:.1%}, max {dedicated['max']:.1%} (n={dedicated['n']})")
        if oversub:
            stats.append(f"  oversubscribed: median |error| {oversub['median']:.1%}, max {oversub['max']:.1%} (n={oversub['n']})")
    if busy_checks:
        stats.append(f"  (left out: {busy_checks['n']} runs disturbed by other work, median |error| {busy_checks['median']:.1%})")
    for group, s in held.items():
        if s:
            stats.append(f"{group} all-reduce, held-out {fits[group]['held_out_ranks']} ranks: median |error| {s['median']:.1%}, max {s['max']:.1%}")
    for group, fit in fits.items():
        stats.append(f"{group}: α = {fit['alpha'] * 1e6:.0f} µs, β_host = {fit['beta_host'] * 1e9:.3f} ns/byte, "
                     f"sharing penalty {fit['sharing_penalty']:.2f}")
    for fw, rho in overlaps.items():
        if any(r["framework"] == fw for r in rows):
            stats.append(f"overlap fraction, {FRAMEWORK_LABEL[fw]}: {rho:.2f}")

    model_name = rows[0]["model"] if rows else "?"
    size = rows[0]["image_size"] if rows else "?"
    title = f"scale-out: {model_name} {size}px, batch {args.batch}/rank (weak), {args.global_batch} global (strong)"
    draw_svg(os.path.join(out, "scale-out.svg"), rows, projection, args.cores, stats, title)

    # summary.md
    lines = [f"# {title}", ""]
    notes_path = os.path.join(out, "raw", "notes.txt")
    if os.path.exists(notes_path):
        for note in open(notes_path):
            if note.strip():
                lines.append(f"- note: {note.strip()}")
    for entry in failed:
        lines.append(f"- FAILED: {entry.get('framework')} {entry.get('ranks')} ranks {entry.get('link')} batch "
                     f"{entry.get('batch')}: {entry.get('error', 'see logs/')}")
    lines += ["", "## Measured", "",
              "Oversubscribed rows (ranks × threads > cores) share the cores: their images/s and efficiency "
              "measure the communication, not scaling; `1 − exposed ÷ step` is the column to read there. "
              "Rows marked (busy): other work on this machine took ≥ 0.25 cores during the run (after the retries).", "",
              "| mode | framework | ranks | hosts | link | images/s | efficiency | compute ms | data wait ms | exposed comm ms | optimizer ms | all-reduce ms (whole) | step − step without comm, ms | 1 − exposed ÷ step | model predicts images/s (error) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pred = "—" if r.get("predicted_images_per_second") is None else \
            f"{r['predicted_images_per_second']:.1f} ({r['prediction_error']:+.1%})"
        busy = " (busy)" if (r.get("busy_cores_during") or 0) >= 0.25 else ""
        lines.append(f"| {r['mode']} | {FRAMEWORK_LABEL[r['framework']]}{busy} | {r['ranks']}{' (oversubscribed)' if r['oversubscribed'] else ''} "
                     f"| {r['hosts']} | {r['link']} | {fmt(r['images_per_second'])} | {fmt(r['efficiency'], percent=True)} "
                     f"| {fmt(r['compute_ms'])}{'*' if r['split'] != 'measured' else ''} | {fmt(r['data_wait_ms'])} "
                     f"| {fmt(r['exposed_comm_ms'])} | {fmt(r['optimizer_ms'])} | {fmt(r['allreduce_ms'])} "
                     f"| {fmt(r['comm_cost_ms'])} "
                     f"| {fmt(r['comm_efficiency'], percent=True)} | {pred} |")
    if any(r["split"] != "measured" for r in rows):
        lines.append("\n\\* split derived from `ms_per_step` and `allreduce_ms` (this build's `bench` writes no "
                     "split fields): compute includes the optimizer, exposed = the all-reduce.")
    lines += ["", "## α–β fits of the all-reduce", "",
              "| stack / transport | algorithm | α (µs per message) | β_host (ns per byte) | sharing penalty | fitted on ranks: median, max \\|error\\| | held-out ranks: median, max \\|error\\| |",
              "|---|---|---|---|---|---|---|"]
    for group, fit in fits.items():
        alg = "gloo ring" if fit["stack"] == "gloo" else "Open MPI 4.1 tuned: Rabenseifner ≥ 256 KiB"
        s = held[group]
        held_text = "—" if not s else f"{fit['held_out_ranks']}: {s['median']:.1%}, {s['max']:.1%} (n={s['n']})"
        f_s = fitted[group]
        fit_text = f"{','.join(map(str, fit['fitted_ranks']))}: {f_s['median']:.1%}, {f_s['max']:.1%} (n={f_s['n']})"
        lines.append(f"| {group} | {alg} | {fit['alpha'] * 1e6:.1f} | {fit['beta_host'] * 1e9:.3f} | "
                     f"{fit['sharing_penalty']:.2f} | {fit_text} | {held_text} |")
    lines += ["", "β = 8 ÷ link bits/s + β_host; where ranks share cores, host work × sharing penalty × ranks ÷ cores "
              "(benchmarks/scaleout/model.py, Note [Shared cores]).", ""]
    lines += ["## Model against the measured runs it did not fit", ""]
    for line in stats:
        lines.append(f"- {line}")
    if projection:
        nets = [n for n, _ in PROJECTION_NETWORKS]
        keys = []
        for p in projection:
            k = (p["model"], p["image_size"], p["framework"])
            if k not in keys:
                keys.append(k)

        def table(speedup):
            out = ["| model | framework | " + " | ".join(f"{n} ×{r}" for n in nets for r in (8, 64, 512)) + " |",
                   "|---|---|" + "---|" * (3 * len(nets))]
            for k in keys:
                cells = []
                for n in nets:
                    for ranks in (8, 64, 512):
                        hit = [p for p in projection if (p["model"], p["image_size"], p["framework"]) == k
                               and p["network"] == n and p["ranks"] == ranks and p["compute_speedup"] == speedup]
                        cells.append(f"{hit[0]['efficiency']:.1%}" if hit else "—")
                out.append(f"| {k[0]} {k[1]}px | {FRAMEWORK_LABEL[k[2]]} | " + " | ".join(cells) + " |")
            return out

        fit_names = sorted({p["fit"] for p in projection})
        lines += ["", f"## Projection (batch {args.batch} per rank, one rank per host)", "",
                  f"Compute per image measured here on 1 rank, {1} thread(s) "
                  f"(scaled linearly to the batch); all-reduce from the fits {', '.join(fit_names)} "
                  "(β = 8/rate + β_host, α as fitted, no sharing penalty); overlap fraction as measured. "
                  "Efficiency = step without communication ÷ projected step.", "",
                  "Each rank as fast as one core of this machine (as measured):", ""]
        lines += table(1)
        if 16 in COMPUTE_SPEEDUPS:
            lines += ["", "Each rank 16× faster (a 16-core node per rank with ideal speed-up): the same network, "
                      "a sixteenth of the compute to hide it behind:", ""]
            lines += table(16)
        lines.append("\nFull table (every rank count, images/s, exposed and all-reduce ms): projection.csv.")

    # Targets
    lines += ["", "## Targets", ""]
    weak2 = [r for r in rows if r["mode"] == "weak" and r["framework"] == "ours" and r["ranks"] == 2 and r["target"] == "local"]
    if weak2:
        e = weak2[0]["efficiency"]
        lines.append(f"- weak-scaling efficiency at 2 local ranks ≥ 95%: {fmt(e, percent=True)} → "
                     f"{'met' if e is not None and e >= 0.95 else 'NOT met'}")
    r50 = [r for r in rows if r["framework"] == "ours" and r["model"] == "resnet50" and r["batch_per_rank"] == 32
           and r["target"] == "vc" and r["link"].startswith("10gbit") and r["ranks"] > 1 and r["mode"] == "weak"]
    if r50:
        for r in r50:
            share = r["exposed_comm_ms"] / r["ms_per_step"]
            whole = "" if r.get("comm_cost_ms") is None else \
                f"; all communication costs (step − step without it) {r['comm_cost_ms'] / r['ms_per_step']:.1%}"
            lines.append(f"- ResNet-50 batch 32, virtual cluster 10 Gbit/s, {r['ranks']} ranks"
                         f"{' (oversubscribed)' if r['oversubscribed'] else ''}: exposed communication {share:.1%} of the step "
                         f"→ {'met' if share <= 0.10 else 'NOT met'} (≤ 10%){whole}")
    else:
        lines.append("- exposed communication ≤ 10% (ResNet-50, batch 32, 10 Gbit/s): not measured in this run "
                     "(run with --model resnet50 --image-size 224 --batch 32 --links 10gbit)")
    err = allchecks["median"] if allchecks else None
    for model_name_p in sorted({(p["model"], p["image_size"]) for p in projection}):
        ours = [p for p in projection if (p["model"], p["image_size"]) == model_name_p and p["framework"] == "ours"
                and p["network"] == "25gbit" and p["ranks"] == 64 and p["compute_speedup"] == 1]
        ddp = [p for p in projection if (p["model"], p["image_size"]) == model_name_p and p["framework"] == "pytorch-ddp"
               and p["network"] == "25gbit" and p["ranks"] == 64 and p["compute_speedup"] == 1]
        if ours:
            text = f"- {model_name_p[0]} {model_name_p[1]}px, 64 ranks, 25 Gbit/s: projected efficiency {ours[0]['efficiency']:.1%}"
            if err is not None:
                text += f" (model error against measurements: median {err:.1%})"
            if ddp:
                verdict = "≥" if ours[0]["efficiency"] >= ddp[0]["efficiency"] else "<"
                text += f"; PyTorch DDP under the same model {ddp[0]['efficiency']:.1%} → ours {verdict} DDP's"
            lines.append(text)
    lines.append("- every figure produced by one command: this summary, scale-out.csv, projection.csv and "
                 "scale-out.svg come from one `benchmarks/scale-out` invocation")
    summary = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    with open(os.path.join(out, "fits.json"), "w") as f:
        json.dump({"fits": fits, "overlap": overlaps,
                   "checks": [{k: r.get(k) for k in ("framework", "mode", "ranks", "link", "batch_per_rank",
                                                     "images_per_second", "predicted_images_per_second",
                                                     "prediction_error", "exposed_comm_ms", "predicted_exposed_ms")}
                              for r in checks]}, f, indent=1)
    print(summary)
    print(f"wrote {out}/scale-out.csv, projection.csv, scale-out.svg, summary.md, fits.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
