"""Case 3: GD on an MLP at the Edge of Stability with the sharpness every 10 steps.

eosfast: ``eosfast.run`` with its warm ``SharpnessTracker`` (the whole loop in C++).
Peers: a PyTorch GD loop measuring the sharpness with ARPACK on autograd HVPs, warm-started
from the last eigenvector (the strongest thing a PyTorch user would write) or cold, and with
PyHessian's power iteration (cold, as PyHessian is used). Each loop reuses the gradient graph
of a measurement step for that step's update. The full mode also runs the issue's "whole EoS
run" (sharpness every 50 steps).
"""

from __future__ import annotations

import numpy as np
from _harness import Context, Row, failed, once, threads
from _models import MLPSpec, eosfast_mlp, init_params, make_data, mse_criterion, torch_module
from _peers import TorchHVP, arpack, pyhessian_top
from case_sharpness import power_iterations

CASE = "3-tracking"
TOL = 1e-6
LR_FACTOR = 1.0  # lr = LR_FACTOR * 2 / lambda_1(x0): GD starts at the stability edge


def spec_for(ctx: Context) -> MLPSpec:
    return MLPSpec("track", 20, (100, 80), 10, 500 if ctx.quick else 5000)


def plan(ctx: Context) -> list[tuple[int, int]]:
    """(steps, sharpness_every) pairs."""
    return [(100, 10)] if ctx.quick else [(1000, 10), (1000, 50)]


def learning_rate(spec, X, Y, x) -> float:
    H = eosfast_mlp(spec, X, Y).hessian(x)
    vals, _, _ = arpack(H.matvec, spec.params, 1, 1e-10)
    return LR_FACTOR * 2.0 / float(vals[0])


def run(ctx: Context, nthreads: int | None = None, case: str = CASE, peers: bool = True):
    nthreads = nthreads or ctx.nthreads
    spec = spec_for(ctx)
    X, Y = make_data(spec)
    x0 = init_params(spec)
    rows: list[Row] = []
    with threads(nthreads):
        lr = learning_rate(spec, X, Y, x0)
        for steps, every in plan(ctx):
            setting = f"{steps} GD steps, sharpness every {every}, lr={lr:.3g} {spec.label}"
            listed = entries(spec, X, Y, x0, lr, steps, every, peers, power_iterations(ctx))
            for method, eos, is_peer, fn in listed:
                try:
                    t = once(fn)
                except Exception as exc:  # reported in the table, not hidden
                    rows.append(failed(case, setting, method, exc, eos))
                    continue
                rows.append(
                    Row(case, setting, method, t.best, eos, "f64", metrics=t.value, peer=is_peer)
                )
    return rows


def entries(spec, X, Y, x0, lr, steps, every, peers: bool, power_iters: int = 1000):
    """(method, is_eosfast, counts_as_peer, fn) with fn() -> metrics dict."""
    out = [
        (
            "eosfast.run + SharpnessTracker(k=1) (warm)",
            True,
            True,
            lambda: eosfast_run(spec, X, Y, x0, lr, steps, every),
        ),
        (
            "eosfast.run, no sharpness (context)",
            True,
            False,
            lambda: eosfast_run(spec, X, Y, x0, lr, steps, 0),
        ),
    ]
    if not peers:
        return out + [
            (
                "torch GD + ARPACK warm (v0 = last eigvec)",
                False,
                True,
                lambda: torch_loop(spec, X, Y, x0, lr, steps, every, "warm"),
            )
        ]
    return out + [
        (
            "torch GD + ARPACK warm (v0 = last eigvec)",
            False,
            True,
            lambda: torch_loop(spec, X, Y, x0, lr, steps, every, "warm"),
        ),
        (
            "torch GD + ARPACK cold",
            False,
            True,
            lambda: torch_loop(spec, X, Y, x0, lr, steps, every, "cold"),
        ),
        (
            f"torch GD + pyhessian power iteration (cold, maxIter={power_iters})",
            False,
            True,
            lambda: torch_loop(spec, X, Y, x0, lr, steps, every, "pyhessian", power_iters),
        ),
        (
            "torch GD, no sharpness (context)",
            False,
            False,
            lambda: torch_loop(spec, X, Y, x0, lr, steps, 0, "none"),
        ),
    ]


def eosfast_run(spec, X, Y, x0, lr, steps, every) -> dict:
    import eosfast

    mlp = eosfast_mlp(spec, X, Y)
    kwargs = {"sharpness_every": every}
    if every:
        kwargs["tracker"] = eosfast.SharpnessTracker(k=1, tol=TOL)
    traj = eosfast.run(mlp, eosfast.GD(lr), x0, steps, **kwargs)
    out = {"status": traj.status, "final_loss": float(traj.loss[-1])}
    if every:
        sharp = np.asarray(traj.sharpness)[:, 0] if np.ndim(traj.sharpness) == 2 else traj.sharpness
        hvps = np.asarray(traj.hvps)
        out.update(
            measurements=int(len(sharp)),
            hvps_per_measure=float(hvps.sum() / len(sharp)),
            hvps_per_measure_warm=float(hvps[1:].mean()) if len(hvps) > 1 else float("nan"),
            final_sharpness=float(sharp[-1]),
            sharpness_times_lr_over_2=float(sharp[-1] * lr / 2),
        )
    return out


def torch_loop(spec, X, Y, x0, lr, steps, every, mode, power_iters=1000) -> dict:
    """Full-batch GD in PyTorch (float64) with the sharpness every ``every`` steps."""
    import torch

    th = TorchHVP(spec, x0, X, Y, "f64")
    theta = th.theta
    last_vec = None
    sharp, matvecs = [], []
    for step in range(steps):
        th.set_point(theta)
        if every and step % every == 0:
            _, g = th._graph()
            if mode == "pyhessian":
                vals, mv, _ = pyhessian_top(spec, theta.numpy(), X, Y, 1, TOL, power_iters)
            else:
                v0 = last_vec if mode == "warm" else None
                vals, vecs, mv = arpack(th.numpy_operator(counter=False), spec.params, 1, TOL, v0)
                last_vec = vecs[:, 0]
            sharp.append(float(vals[0]))
            matvecs.append(mv)
            grad = g.detach()
        else:
            _, grad = th.loss_and_grad(theta)
        theta = theta - lr * grad
    with torch.no_grad():
        model = torch_module(spec, theta.numpy(), torch.float64)
        final_loss = float(mse_criterion(model(th.X), th.Y))
    out = {"final_loss": final_loss}
    if every:
        out.update(
            measurements=len(sharp),
            hvps_per_measure=float(np.mean(matvecs)),
            hvps_per_measure_warm=float(np.mean(matvecs[1:])) if len(matvecs) > 1 else np.nan,
            final_sharpness=sharp[-1],
            sharpness_times_lr_over_2=sharp[-1] * lr / 2,
        )
    return out
