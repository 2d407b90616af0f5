"""Per-step overhead of eosfast.run, and the cost split of a run with sharpness tracking.

1. Overhead: GD-type runs on a 2-D diagonal quadratic (the problem itself costs a
   few tens of ns), against a numpy loop doing the same updates. The target is
   < 200 ns per step, so that 10^7 steps take a few seconds.
2. Cost split: a larger problem (an MLP if this build has one, else a dense
   quadratic) run with and without sharpness measurements: gradient,
   sharpness and bookkeeping shares of the wall time.

Usage: python benchmarks/bench_dynamics.py [--quick] [--json out.json]
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


def cost_split(steps: int, sharpness_every: int) -> dict:
    rng = np.random.default_rng(0)
    if hasattr(eosfast.problems, "MLP"):  # pragma: no cover - once the MLP kernels land
        raise SystemExit("update cost_split for the MLP problem's constructor")
    n = 1500
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    spectrum = np.append(np.linspace(0.01, 1.0, n - 1), 1.9 / 0.1)
    problem = Quadratic((Q * spectrum) @ Q.T)
    name = f"dense Quadratic (dim {n})"
    x0 = rng.standard_normal(n)
    opt = eosfast.GD(0.1)
    t_plain = timed(lambda: eosfast.run(problem, opt, x0, steps, record_every=steps), 1)
    core, evals = problem._core, max(steps // 10, 10)
    t_grad = timed(lambda: [core.loss_and_grad(x0) for _ in range(evals)], 1) / evals * steps
    start = time.perf_counter()
    traj = eosfast.run(problem, opt, x0, steps, sharpness_every=sharpness_every)
    t_sharp = time.perf_counter() - start
    return {
        "problem": name,
        "steps": steps,
        "sharpness_every": sharpness_every,
        "total_s": t_sharp,
        "gradient_s": t_grad,
        "sharpness_s": t_sharp - t_plain,
        "bookkeeping_s": max(t_plain - t_grad, 0.0),
        "hvps": traj.hvps_total,
        "final_sharpness": float(traj.sharpness[-1]),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 30 s)")
    parser.add_argument("--json", help="write the results to this file")
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
    split = cost_split(200 if args.quick else 2000, 20)
    print(
        f"\ncost split, {split['problem']}, {split['steps']} GD steps, "
        f"sharpness every {split['sharpness_every']}:"
    )
    for key in ("gradient_s", "sharpness_s", "bookkeeping_s", "total_s"):
        print(f"  {key[:-2]:<12}{split[key]:8.3f} s")
    print(f"  hvps {split['hvps']}, final sharpness {split['final_sharpness']:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "overhead": rows, "cost_split": split}, f, indent=2)


if __name__ == "__main__":
    main()
