"""Case 5: thread scaling from 1 thread to all cores for cases 1 (HVP) and 2 (sharpness),
and the contention case: the same work at 1 thread and at eosfast's default thread count, on
the machine as it is and with two competing busy processes started here.

Every method runs at 1 thread and at all cores in the same process (eosfast, PyTorch and
the BLAS limited together); each all-cores row carries ``scaling`` = t(1) / t(all). The
contention rows carry ``slowdown`` = t(default) / t(1 thread) (above 1: the threads cost
time) for eosfast and PyTorch measured in the same run, and the load average around them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import case_hvp
import case_sharpness
import numpy as np
from _harness import Context, Row, measure, once, threads
from _models import FULL_SIZES, QUICK_SIZES, MLPSpec, eosfast_mlp, init_params, make_data

CASE = "5-threads"


def run(ctx: Context, nthreads: int | None = None) -> list[Row]:
    specs = [QUICK_SIZES["1e5"]] if ctx.quick else [FULL_SIZES["1e5"], FULL_SIZES["1e6"]]
    counts = sorted({1, ctx.nthreads})
    rows: list[Row] = []
    for n in counts:
        rows += case_hvp.run(ctx, n, specs, CASE, precisions=("f64",))
        rows += case_sharpness.run(ctx, n, CASE, peers=False)
    return with_scaling(rows, counts) + contention(ctx)


def with_scaling(rows: list[Row], counts: list[int]) -> list[Row]:
    if len(counts) < 2:
        return rows
    lo, hi = f"threads={counts[0]}", f"threads={counts[-1]}"
    single = {(r.setting.replace(lo, ""), r.method): r.seconds for r in rows if lo in r.setting}
    for r in rows:
        if hi in r.setting:
            t1 = single.get((r.setting.replace(hi, ""), r.method))
            if t1 is not None:
                r.metrics["scaling"] = t1 / r.seconds
    return rows


# The network: a 64-100-100-10 tanh MLP on 500 samples (18k parameters).
CONTENTION_SPEC = MLPSpec("digits", 64, (100, 100), 10, 500)
COMPETITORS = 2
# Under contention the default must stay within this factor of the 1-thread time.
SLOWDOWN_GOAL = 1.5


def _busy_processes(n: int) -> list[subprocess.Popen]:
    """n Python processes that spin until killed (the competing jobs of a shared server)."""
    return [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def _torch_ops(spec, theta, X, Y):
    import torch
    from _peers import TorchHVP

    hvp = TorchHVP(spec, theta, X, Y)
    v = torch.as_tensor(np.random.default_rng(2).standard_normal(theta.size), dtype=hvp.dtype)

    def grad():
        t = hvp.theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(hvp.loss(t), t)
        return g

    return {"gradient": grad, "HVP": lambda: hvp.double_backward(v)}


def _eosfast_ops(spec, theta, X, Y, steps: int, every: int):
    import eosfast

    mlp = eosfast_mlp(spec, X, Y)
    v = np.random.default_rng(2).standard_normal(mlp.dim)
    lr = 2.0 / 50.0

    def gd():
        tracker = eosfast.SharpnessTracker(k=1, tol=1e-6)
        return eosfast.run(
            mlp, eosfast.GD(lr), theta, steps, sharpness_every=every, tracker=tracker
        )

    return {
        "gradient": lambda: mlp.loss_and_grad(theta),
        "HVP": lambda: mlp.hvp(theta, v),
        "eigsh": lambda: eosfast.eigsh(mlp.hessian(theta), k=1, tol=1e-6, seed=0),
        f"GD {steps} steps, sharpness every {every}": gd,
    }


def _runnable() -> int | None:
    """Threads in the run queue right now (the 4th field of /proc/loadavg), this one included."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def contention(ctx: Context) -> list[Row]:
    """1 thread against the default, idle and with COMPETITORS busy processes."""
    import eosfast

    spec = CONTENTION_SPEC
    X, Y = make_data(spec)
    theta = init_params(spec)
    steps, every = (100, 50) if ctx.quick else (1000, 50)
    default = eosfast.info()["default_threads"]
    eos_ops = _eosfast_ops(spec, theta, X, Y, steps, every)
    try:
        torch_ops = _torch_ops(spec, theta, X, Y)
    except ImportError:
        torch_ops = {}
    rows: list[Row] = []
    for condition in ("idle", f"{COMPETITORS} busy processes"):
        procs = _busy_processes(COMPETITORS) if condition != "idle" else []
        try:
            if procs:
                time.sleep(0.5)  # let the competitors reach the run queue
            load = os.getloadavg()[0]
            runnable = [_runnable()]
            times: dict[tuple[str, str, int], float] = {}
            for n in sorted({1, default}):
                with threads(n):
                    for lib, ops in (("eosfast", eos_ops), ("torch", torch_ops)):
                        for op, fn in ops.items():
                            heavy = op.startswith("GD")
                            t = once(fn) if heavy else measure(fn, min_time=ctx.min_time)
                            times[(lib, op, n)] = t.best
                            runnable.append(_runnable())
        finally:
            _stop(procs)
        for (lib, op, n), seconds in times.items():
            if n != default:
                continue
            t1 = times[(lib, op, 1)]
            rows.append(
                Row(
                    CASE,
                    f"contention [{condition}] {op} {spec.label}",
                    f"{lib} default ({default} threads)",
                    seconds,
                    eosfast=lib == "eosfast",
                    peer=False,
                    metrics={
                        "seconds_1_thread": t1,
                        "slowdown": seconds / t1,
                        "default_threads": default,
                        "competitors": len(procs),
                        "load_average_1min": load,
                        "runnable_max": max((r for r in runnable if r is not None), default=-1),
                    },
                    note=f"t(default) / t(1 thread); load average {load:.2f} at the start",
                )
            )
    return rows
