"""Per-step overhead of eosfast.run, and the cost split of a run with sharpness tracking.

1. Overhead: GD-type runs on a 2-D diagonal quadratic (the problem itself costs a
   few tens of ns), against a numpy loop doing the same updates. The target is
   < 200 ns per step, so that 10^7 steps take a few seconds.
2. Cost split: a long full-batch GD run of a tanh MLP at the Edge of Stability
   (lr = 2 / lambda_1(x0)), with and without sharpness measurements: gradient,
   sharpness and bookkeeping shares of the wall time.

Usage: python benchmarks/bench_dynamics.py [--quick] [--json out.json]
       [--split-steps N] [--split-samples N]
"""

from __future__ import annotations

import argparse
import json
import time

import eosfast
import numpy as np
from eosfast.problems import Quadratic

A2 = np.array([1.0, 0.25])


def timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def numpy_loop(kind: str, steps: int) -> None:
    """The same updates (and loss evaluations) as the runner, in numpy."""
    x, v, lr, beta = np.ones(2), np.zeros(2), 0.1, 0.9
    for _ in range(steps):
        g = A2 * x
        loss = 0.5 * x @ g
        if kind == "GD":
            x = x - lr * g
        elif kind == "GD+momentum":
            v = beta * v + g
            x = x - lr * v
        elif kind == "NormalizedGD":
            x = x - lr * g / np.linalg.norm(g)
        else:
            x = x - lr * g / (2 * np.sqrt(loss))


def optimizer(kind: str):
    return {
        "GD": lambda: eosfast.GD(0.1),
        "GD+momentum": lambda: eosfast.GD(0.1, momentum=0.9),
        "NormalizedGD": lambda: eosfast.NormalizedGD(0.1),
        "SqrtGD": lambda: eosfast.SqrtGD(0.1),
    }[kind]()


def overhead(steps: int, numpy_steps: int, repeats: int) -> list[dict]:
    problem = Quadratic(A2)
    rows = []
    for kind in ("GD", "GD+momentum", "NormalizedGD", "SqrtGD"):
        opt = optimizer(kind)
        for record_every in (steps, 1):
            n = steps if record_every != 1 else steps // 10
            every = min(record_every, n)

            def go(opt=opt, n=n, every=every):
                eosfast.run(problem, opt, np.ones(2), n, record_every=every)

            t = timed(go, repeats)
            rows.append(
                {
                    "optimizer": kind,
                    "record_every": record_every,
                    "steps": n,
                    "ns_per_step": 1e9 * t / n,
                }
            )
        t_np = timed(lambda kind=kind: numpy_loop(kind, numpy_steps), 1)
        rows[-2]["numpy_ns_per_step"] = rows[-1]["numpy_ns_per_step"] = 1e9 * t_np / numpy_steps
    return rows


def cost_split(steps: int, sharpness_every: int, n: int = 2000, repeats: int = 1) -> dict:
    """Where the time of a long GD run at the Edge of Stability goes.

    A tanh MLP (20-100-80-10, MSE, a teacher network's targets; ``benchmarks/_models.py``)
    trained by full-batch GD at lr = 2 / lambda_1(x0), so the sharpness hovers at 2 / lr,
    with the sharpness (warm ``SharpnessTracker``, k = 1) every ``sharpness_every`` steps.
    All three parts come from runs of ``eosfast.run`` (no subtraction of separately timed
    Python calls, which is noisy on a busy machine): sharpness = the run with the tracker
    minus the same run without it; bookkeeping (the loop, the update, the records) = the same
    run on a diagonal quadratic of the same dimension, whose gradient costs about as little
    as the update (so it is an upper bound); gradient = the run without the tracker minus
    the bookkeeping.
    """
    from _models import MLPSpec, eosfast_mlp, init_params, make_data

    spec = MLPSpec("split", 20, (100, 80), 10, n)
    X, Y = make_data(spec)
    problem, x0 = eosfast_mlp(spec, X, Y), init_params(spec)
    lr = 2.0 / eosfast.sharpness(problem, x0, tol=1e-10)
    opt = eosfast.GD(lr)

    def plain():
        return eosfast.run(problem, opt, x0, steps)

    def tracked():
        tracker = eosfast.SharpnessTracker(k=1, tol=1e-6)
        return eosfast.run(
            problem, opt, x0, steps, sharpness_every=sharpness_every, tracker=tracker
        )

    # The loop alone: GD on 1/2 sum_i a_i x_i^2 (a_i < 1, so it converges) in as many dims.
    diagonal = Quadratic(np.linspace(0.1, 0.9, problem.dim))

    def loop():
        return eosfast.run(diagonal, eosfast.GD(1.0), x0, steps, diverge_factor=np.inf)

    traj = tracked()  # warm-up, and the trajectory whose HVPs and sharpness are reported
    t_plain, t_tracked = timed(plain, repeats), timed(tracked, repeats)
    t_loop = timed(loop, max(repeats, 3))
    ratio = traj.ratio
    last = ratio[len(ratio) * 3 // 4 :]
    return {
        "problem": f"MLP {spec.d_in}-{'-'.join(map(str, spec.hidden))}-{spec.d_out} tanh MSE, "
        f"n={spec.n}, {problem.dim} parameters",
        "lr": lr,
        "steps": steps,
        "sharpness_every": sharpness_every,
        "total_s": t_tracked,
        "gradient_s": t_plain - t_loop,
        "sharpness_s": t_tracked - t_plain,
        "bookkeeping_s": t_loop,
        "hvps": traj.hvps_total,
        "hvps_per_measurement": traj.hvps_total / len(traj.sharpness),
        "sharpness_ratio_last_quarter": float(np.mean(last)),
        "eos_onset": traj.eos_onset,
        "status": traj.status,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 30 s)")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--split-steps", type=int, help="GD steps of the cost split")
    parser.add_argument("--split-samples", type=int, help="training samples of the cost split")
    args = parser.parse_args(argv)
    steps, numpy_steps, repeats = (10**6, 10**5, 2) if args.quick else (10**7, 10**6, 3)
    info = eosfast.info()
    print(f"eosfast {info['version']} ({info['variant']}, {info['num_threads']} threads)")
    rows = overhead(steps, numpy_steps, repeats)
    print(
        f"\n{'optimizer':<14}{'record_every':>14}{'steps':>11}{'ns/step':>10}"
        f"{'numpy ns/step':>15}{'speed-up':>10}"
    )
    for r in rows:
        print(
            f"{r['optimizer']:<14}{r['record_every']:>14}{r['steps']:>11}"
            f"{r['ns_per_step']:>10.0f}{r['numpy_ns_per_step']:>15.0f}"
            f"{r['numpy_ns_per_step'] / r['ns_per_step']:>10.1f}"
        )
    split_steps, split_samples = (300, 1000) if args.quick else (3000, 2000)
    split = cost_split(args.split_steps or split_steps, 20, args.split_samples or split_samples)
    print(
        f"\ncost split, GD at lr = 2/lambda_1(x0) = {split['lr']:.4g} on {split['problem']}, "
        f"{split['steps']} steps, sharpness every {split['sharpness_every']}:"
    )
    for key in ("gradient_s", "sharpness_s", "bookkeeping_s", "total_s"):
        share = 100 * split[key] / split["total_s"]
        per_step = 1e6 * split[key] / split["steps"]
        print(f"  {key[:-2]:<12}{split[key]:8.3f} s  {share:5.1f} %  {per_step:9.1f} us/step")
    print(
        f"  {split['hvps']} HVPs ({split['hvps_per_measurement']:.1f} per measurement); "
        f"sharpness x lr / 2 over the last quarter {split['sharpness_ratio_last_quarter']:.3f} "
        f"(EoS onset at step {split['eos_onset']})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "overhead": rows, "cost_split": split}, f, indent=2)


if __name__ == "__main__":
    main()
