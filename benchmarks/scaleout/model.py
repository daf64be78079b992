"""The scale-out projection: an α–β (latency–bandwidth) model of the gradient all-reduce,
fitted to measured all-reduce times, plus measured compute and overlap, predicting a
data-parallel training step for more ranks and other networks.

    PYTHONPATH=benchmarks python3 -m scaleout.model --self-test

Notation: p ranks, n bytes per all-reduce, α seconds per message step, β seconds per byte.

Which algorithm: our gradient all-reduce is a blocking in-place MPI_Allreduce of float32 with
MPI_SUM (Sources/DataParallel/MPICommunicator.swift), which Open MPI 4.1 hands to the `tuned`
collective component (priority 30; han, adapt and sm are 0 by default). Its fixed decision
(ompi/mca/coll/tuned/coll_tuned_decision_fixed.c at tag v4.1.4, commutative branch) is
transcribed in `ompi_tuned_allreduce_algorithm`: for every bucket we send (1 MiB first, then
25 MiB) and every rank count from 2 to 4095 it picks algorithm 6, Rabenseifner's
reduce-scatter by recursive halving + allgather by recursive doubling
(coll_base_allreduce.c, `ompi_coll_base_allreduce_intra_redscat_allgather`). Ring and
recursive doubling only serve messages under 256 KiB. Gloo (PyTorch DDP's CPU backend)
uses its ring (gloo/allreduce.cc: UNSPECIFIED and RING both call `ring`).

Costs per all-reduce (Thakur, Rabenseifner & Gropp 2005, "Optimization of collective
communication operations in MPICH"; the non-power-of-two steps as in Open MPI's code):
  Rabenseifner, p' = 2^floor(log2 p), r = p - p':
      2 log2(p') α + 2 (p'-1)/p' n β, and when r > 0 three more messages and 2n more bytes
      (a half-vector exchange and send before, the whole result sent back after).
  ring (Open MPI 4, 5; gloo):  2 (p-1) α + 2 (p-1)/p n β
  recursive doubling:          log2(p') α + log2(p') n β  (+2 α + 2 n β when r > 0)
The reduction arithmetic is folded into β: it is proportional to the same bytes.

β is split into the wire and the host: β = 8 / link_bits_per_second + β_host. β_host is what
the sending and receiving hosts add per byte (copies, TCP, the reduction); the fit finds α and
β_host from curves measured at several link rates, which is what lets it predict a faster
network. Ranks that share cores (oversubscribed, as on the 2-core virtual cluster) do their
host work more slowly: Note [Shared cores].
"""
import argparse
import math
import sys

GIB = 1 << 30
MIB = 1 << 20
FIRST_BUCKET_BYTES = 1 * MIB     # GradientBuckets.swift default, and DDP's first bucket
BUCKET_BYTES = 25 * MIB          # GradientBuckets.swift default, and DDP's bucket_cap_mb

OMPI_ALGORITHMS = {1: "basic linear", 2: "nonoverlapping", 3: "recursive doubling", 4: "ring",
                   5: "segmented ring", 6: "Rabenseifner"}


def ompi_tuned_allreduce_algorithm(p, nbytes):
    """Open MPI 4.1.4's fixed choice for a commutative MPI_Allreduce of nbytes on p ranks
    (coll_tuned_decision_fixed.c, `ompi_coll_tuned_allreduce_intra_dec_fixed`)."""
    # Each row: (communicator size below which it applies, [(message size below, algorithm)...], otherwise)
    table = [
        (4, [(8, 4), (4096, 3), (8192, 4), (16384, 3), (65536, 4), (262144, 5)], 6),
        (8, [(16, 4), (8192, 3)], 6),
        (16, [(8192, 3)], 6),
        (32, [(64, 5), (4096, 3)], 6),
        (64, [(128, 5)], 6),
        (128, [(262144, 3)], 6),
        (256, [(131072, 2), (262144, 3)], 6),
        (512, [(4096, 2)], 6),
        (2048, [(2048, 2), (16384, 3)], 6),
        (4096, [(2048, 2), (4096, 5), (16384, 3)], 6),
        (None, [(2048, 2), (16384, 5), (32768, 3)], 6),
    ]
    for below, steps, otherwise in table:
        if below is None or p < below:
            for limit, alg in steps:
                if nbytes < limit:
                    return alg
            return otherwise
    raise AssertionError("unreachable")


def cost_terms(algorithm, p, n):
    """(message steps, bytes on each rank's critical path) of one all-reduce of n bytes."""
    if p <= 1:
        return 0.0, 0.0
    lg = int(math.floor(math.log2(p)))
    pof2 = 1 << lg
    rem = p - pof2
    if algorithm == "rabenseifner":
        steps, nbytes = 2 * lg, 2 * (pof2 - 1) / pof2 * n
        if rem:
            steps, nbytes = steps + 3, nbytes + 2 * n
        return float(steps), nbytes
    if algorithm in ("ring", "segmented ring"):
        return 2.0 * (p - 1), 2 * (p - 1) / p * n
    if algorithm == "recursive doubling":
        steps, nbytes = lg, lg * n
        if rem:
            steps, nbytes = steps + 2, nbytes + 2 * n
        return float(steps), float(nbytes)
    # Reduce to a root then broadcast (binomial trees): only messages of a few KiB on
    # hundreds of ranks take these, where the latency term dominates anyway.
    depth = math.ceil(math.log2(p))
    return 2.0 * depth, 2.0 * depth * n


def algorithm_for(stack, p, n):
    if stack == "gloo":
        return "ring"
    return {3: "recursive doubling", 4: "ring", 5: "segmented ring", 6: "rabenseifner"}.get(
        ompi_tuned_allreduce_algorithm(p, n), "tree")


def wire_seconds_per_byte(link_bits):
    return 0.0 if not link_bits else 8.0 / link_bits


def host_factor(params, share):
    """How much slower host work runs where ranks share cores: 1 with a core (or more) each,
    else the fitted time-sharing penalty × ranks per core (Note [Shared cores])."""
    return 1.0 if share <= 1.0 else params.get("sharing_penalty", 1.0) * share


def predict_allreduce(params, stack, p, n, link_bits, share=1.0):
    """Seconds for one all-reduce. share = ranks per core where ranks share cores (>= 1)."""
    steps, nbytes = cost_terms(algorithm_for(stack, p, n), p, n)
    return (host_factor(params, share) * (params["alpha"] * steps + params["beta_host"] * nbytes)
            + wire_seconds_per_byte(link_bits) * nbytes)


# Note [Shared cores]
# ~~~~~~~~~~~~~~~~~~~
# On the virtual cluster every host's ranks, and the kernel's forwarding of every host's
# packets, share this machine's cores. Compute then stretches by exactly ranks ÷ cores, but the
# all-reduce's host work stretches more: measured here (ResNet-18 run, 10 Gbit/s, 64 MiB), the
# per-byte host time was 4.5× the 2-rank figure on 4 ranks and 10× on 8 (ranks ÷ cores = 2
# and 4), as each exchange also waits for the peer's next time slice. So points with shared
# cores carry one more fitted factor, the sharing penalty c: host work × c × ranks ÷ cores.
# α and β_host come from the points whose ranks have cores of their own; c from the shared ones;
# a real cluster's projection uses neither c nor the sharing (one core or more per rank).


def _least_squares(rows, use):
    """Weighted least squares y ≈ Σ coef·x over rows of (x1, x2, y) already weighted, with the
    coefficients in `use` (a tuple of two booleans), each kept >= 0."""
    def solve(ua, ub):
        saa = sum(a * a for a, _, _ in rows); sbb = sum(b * b for _, b, _ in rows)
        sab = sum(a * b for a, b, _ in rows)
        say = sum(a * y for a, _, y in rows); sby = sum(b * y for _, b, y in rows)
        if ua and ub:
            det = saa * sbb - sab * sab
            if abs(det) > 1e-300 * max(saa * sbb, 1e-300):
                return (say * sbb - sby * sab) / det, (saa * sby - sab * say) / det
        if ua and saa > 0:
            return say / saa, 0.0
        if ub and sbb > 0:
            return 0.0, sby / sbb
        return 0.0, 0.0
    a, b = solve(*use)
    if a < 0:
        a, b = solve(False, use[1])
    if b < 0:
        a, b = solve(use[0], False)
    return max(a, 0.0), max(b, 0.0)


def fit_alpha_beta(points, stack):
    """Least squares in relative error over points (p, n, link_bits, seconds, share):
    minimise Σ ((model - measured) / measured)². α and β_host from the points whose ranks have
    cores of their own (share 1; all points if there are none, with no penalty), then the
    sharing penalty from the others (Note [Shared cores])."""
    if not points:
        raise ValueError("no all-reduce points to fit")
    own = [pt for pt in points if pt[4] <= 1.0]
    shared = [pt for pt in points if pt[4] > 1.0]
    base = own or points
    rows = []
    for p, n, link_bits, seconds, share in base:
        steps, nbytes = cost_terms(algorithm_for(stack, p, n), p, n)
        y = seconds - wire_seconds_per_byte(link_bits) * nbytes
        w = 1.0 / seconds
        factor = 1.0 if own else share
        rows.append((factor * steps * w, factor * nbytes * w, y * w))
    alpha, beta = _least_squares(rows, (True, True))
    params = {"alpha": alpha, "beta_host": beta, "sharing_penalty": 1.0, "points": len(points), "stack": stack}
    if own and shared:
        num = den = 0.0
        for p, n, link_bits, seconds, share in shared:
            steps, nbytes = cost_terms(algorithm_for(stack, p, n), p, n)
            x = share * (alpha * steps + beta * nbytes) / seconds
            y = (seconds - wire_seconds_per_byte(link_bits) * nbytes) / seconds
            num += x * y
            den += x * x
        if den > 0:
            params["sharing_penalty"] = max(num / den, 1.0)
    return params


def bucket_sizes(parameter_bytes):
    """Our GradientBuckets and DDP both: a 1 MiB first bucket, then 25 MiB buckets."""
    sizes, left = [], parameter_bytes
    first = min(FIRST_BUCKET_BYTES, left)
    if first:
        sizes.append(first)
        left -= first
    while left > 0:
        sizes.append(min(BUCKET_BYTES, left))
        left -= sizes[-1]
    return sizes


def gradient_allreduce_seconds(params, stack, p, parameters, link_bits, share=1.0):
    return sum(predict_allreduce(params, stack, p, b, link_bits, share) for b in bucket_sizes(4 * parameters))


# Backward is about two thirds of a training step's arithmetic (two GEMMs per layer against
# forward's one), so at most that much of the step can hide communication behind it.
BACKWARD_SHARE = 2.0 / 3.0


def predict_step(compute_s, optimizer_s, data_wait_s, allreduce_s, overlap, backward_share=BACKWARD_SHARE):
    """Seconds per step and exposed communication, given the all-reduce time and the measured
    overlap fraction (the share of the all-reduce the step does not pay for). Only backward can
    hide it: at most backward_share × compute."""
    hidden = min(max(overlap, 0.0) * allreduce_s, backward_share * compute_s)
    exposed = allreduce_s - hidden
    return compute_s + optimizer_s + data_wait_s + exposed, exposed


def project(params, stack, parameters, compute_s, optimizer_s, overlap, ranks, link_bits, batch,
            backward_share=BACKWARD_SHARE):
    """(images/s, efficiency, exposed seconds) on p ranks with one core's compute per rank."""
    allreduce = gradient_allreduce_seconds(params, stack, ranks, parameters, link_bits)
    step, exposed = predict_step(compute_s, optimizer_s, 0.0, allreduce, overlap, backward_share)
    return ranks * batch / step, (compute_s + optimizer_s) / step, exposed


def parse_rate(text):
    """'10gbit' -> 1e10 bits/s; 'shm', 'none', '' -> None (no wire term)."""
    t = (text or "").lower().split("+")[0]
    for unit, scale in (("tbit", 1e12), ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)):
        if t.endswith(unit):
            try:
                return float(t[: -len(unit)]) * scale
            except ValueError:
                return None
    return None


def self_test():
    failures = []

    def check(name, ok):
        print(("ok   " if ok else "FAIL ") + name)
        if not ok:
            failures.append(name)

    # The decision table, spot checks against coll_tuned_decision_fixed.c (v4.1.4).
    check("2 ranks, 25 MiB -> Rabenseifner", ompi_tuned_allreduce_algorithm(2, 25 * MIB) == 6)
    check("2 ranks, 64 KiB -> segmented ring", ompi_tuned_allreduce_algorithm(2, 65536) == 5)
    check("3 ranks, 4 KiB -> ring", ompi_tuned_allreduce_algorithm(3, 4096) == 4)
    check("4 ranks, 4 KiB -> recursive doubling", ompi_tuned_allreduce_algorithm(4, 4096) == 3)
    check("100 ranks, 128 KiB -> recursive doubling", ompi_tuned_allreduce_algorithm(100, 131072) == 3)
    check("200 ranks, 64 KiB -> nonoverlapping", ompi_tuned_allreduce_algorithm(200, 65536) == 2)
    check("every bucket size on 2..4096 ranks -> Rabenseifner",
          all(ompi_tuned_allreduce_algorithm(p, n) == 6 for p in range(2, 4097) for n in (MIB, 25 * MIB)))
    # Rabenseifner on 8 ranks: 6 steps, 2·7/8·n bytes; on 6 ranks the 4-rank core plus 3 steps and 2n.
    check("Rabenseifner 8 ranks terms", cost_terms("rabenseifner", 8, 800) == (6.0, 1400.0))
    check("Rabenseifner 6 ranks terms", cost_terms("rabenseifner", 6, 800) == (7.0, 2800.0))
    check("ring 4 ranks terms", cost_terms("ring", 4, 800) == (6.0, 1200.0))
    # The fit recovers α and β_host from noiseless synthetic curves at three link rates,
    # including shared-core points.
    truth = {"alpha": 40e-6, "beta_host": 0.5e-9, "sharing_penalty": 2.0}
    points = []
    for stack in ("ompi", "gloo"):
        pts = [(p, n, bits, predict_allreduce(truth, stack, p, n, bits, share), share)
               for p, share in ((2, 1.0), (4, 2.0), (8, 4.0)) for n in (4096, 65536, MIB, 16 * MIB, 64 * MIB)
               for bits in (1e9, 1e10, 2.5e10)]
        fit = fit_alpha_beta(pts, stack)
        check(f"{stack} fit α within 1%", abs(fit["alpha"] / truth["alpha"] - 1) < 0.01)
        check(f"{stack} fit β_host within 1%", abs(fit["beta_host"] / truth["beta_host"] - 1) < 0.01)
        check(f"{stack} fit sharing penalty within 1%", abs(fit["sharing_penalty"] / 2.0 - 1) < 0.01)
        points = pts
    # With 5% multiplicative noise the fit stays close (fixed pseudo-random sequence).
    noisy, state = [], 12345
    for p, n, bits, t, share in points:
        state = (1103515245 * state + 12345) % (1 << 31)
        noisy.append((p, n, bits, t * (1 + 0.1 * (state / (1 << 31) - 0.5)), share))
    fit = fit_alpha_beta(noisy, "gloo")
    check("noisy fit α within 15%", abs(fit["alpha"] / truth["alpha"] - 1) < 0.15)
    check("noisy fit β_host within 15%", abs(fit["beta_host"] / truth["beta_host"] - 1) < 0.15)
    # Buckets cover the gradient exactly.
    check("buckets sum to the gradient", sum(bucket_sizes(4 * 25_557_032)) == 4 * 25_557_032)
    # Overlap: nothing hidden at 0, all hidden when backward is long enough, capped by backward.
    check("no overlap exposes everything", predict_step(1.0, 0.0, 0.0, 0.3, 0.0) == (1.3, 0.3))
    check("full overlap hides all", predict_step(1.0, 0.0, 0.0, 0.3, 1.0) == (1.0, 0.0))
    step, exposed = predict_step(0.3, 0.0, 0.0, 1.0, 1.0)
    check("overlap capped by backward", abs(exposed - 0.8) < 1e-12)
    check("rates parse", parse_rate("25gbit") == 2.5e10 and parse_rate("10gbit+50us") == 1e10
          and parse_rate("shm") is None)
    print(f"{len(failures)} failure(s)")
    return not failures


def main():
    parser = argparse.ArgumentParser(description="α–β all-reduce model and scale-out projection")
    parser.add_argument("--self-test", action="store_true", help="check the decision table, cost terms and fit")
    args = parser.parse_args()
    if args.self_test:
        sys.exit(0 if self_test() else 1)
    parser.print_help()


if __name__ == "__main__":
    main()
