"""Case 7: the manifold flow at network scale, Phi and the whole prediction.

eosfast: ``flow.project`` (Dormand-Prince to |grad L| <= 1e-8, then the Gauss-Newton end
game in output space; the Newton-Krylov end game as context) from a gradient-flow fit of a
one-hot tanh MLP on sklearn's digits, and ``flow.predict_and_compare`` (Phase I, Phase II,
the limiting flow, the projections of the comparison) on a small scalar-output MLP.
Peer: scipy ``solve_ivp`` (BDF with the dense Hessian as Jacobian, rtol 1e-12, atol 1e-14)
integrating the same gradient flow for a long time (the reference Phi, and the cost of the
comparison's projections done that way). Work (gradients, HVPs, Jacobians, steps) and the
distance to the reference are in the metrics.
"""

from __future__ import annotations

import numpy as np
from _harness import Context, Row, failed, once, threads

CASE = "7-flow"
REFERENCE_T = 1e6  # solve_ivp integrates the flow to this time (|grad L| ~ 1e-12 there)


def _onehot_mlp(n: int, hidden: int):
    import eosfast
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data[:n] / 16.0
    Y = np.eye(10)[digits.target[:n]]
    return eosfast.problems.MLP(X, Y, hidden=[hidden], activation="tanh")


def _scalar_mlp():
    """The README's network: 113 parameters, explicit tangent projections."""
    import eosfast

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5))
    y = np.sin(X @ rng.standard_normal(5))
    return eosfast.problems.MLP(X, y, hidden=[16], activation="tanh")


def _solve_ivp_phi(problem, x0):
    from scipy.integrate import solve_ivp

    sol = solve_ivp(
        lambda t, x: -problem.grad(x),
        (0.0, REFERENCE_T),
        x0,
        method="BDF",
        rtol=1e-12,
        atol=1e-14,
        jac=lambda t, x: -problem.hessian(x).to_dense(max_dim=20000),
    )
    x = sol.y[:, -1]
    return {
        "point": x,
        "grad_norm": float(np.linalg.norm(problem.grad(x))),
        "nfev": int(sol.nfev),
        "njev": int(sol.njev),
        "status": int(sol.status),
    }


def run(ctx: Context) -> list[Row]:
    import eosfast
    from eosfast import flow

    rows: list[Row] = []
    n, hidden = 20, 16  # the network (the quick mode shortens predict_and_compare)
    with threads(ctx.nthreads):
        problem = _onehot_mlp(n, hidden)
        x0 = eosfast.gradient_flow(
            problem, problem.init(seed=0), t_end=200.0, rtol=1e-6, atol=1e-8
        ).x
        setting = f"project: one-hot MLP 64-{hidden}-10 on {n} digits, {problem.dim} params"
        try:
            ref = once(lambda: _solve_ivp_phi(problem, x0))
        except Exception as exc:
            rows.append(failed(CASE, setting, "scipy solve_ivp BDF", exc))
            ref = None
        if ref is not None:
            metrics = {k: v for k, v in ref.value.items() if k != "point"}
            rows.append(
                Row(CASE, setting, "scipy solve_ivp BDF (dense Hessian)", ref.best, metrics=metrics)
            )
        for endgame, is_peer in (("gauss-newton", True), ("newton-krylov", False)):
            method = f"eosfast flow.project ({endgame} end game)"
            try:
                t = once(lambda e=endgame: flow.project(problem, x0, tol=1e-9, endgame=e))
            except Exception as exc:
                rows.append(failed(CASE, setting, method, exc, True))
                continue
            p = t.value
            metrics = {
                "grad_norm": p.grad_norm,
                "integrator_steps": p.integrator_steps,
                "endgame_steps": p.newton_steps,
                "grad_evals": p.grad_evals,
                "hvps": p.hvps,
                "jacobians": p.jacobians,
            }
            if ref is not None:
                metrics["distance_to_reference"] = float(
                    np.linalg.norm(p.point - ref.value["point"])
                )
            rows.append(Row(CASE, setting, method, t.best, True, metrics=metrics, peer=is_peer))

        scalar = _scalar_mlp()
        lr, tau_end = (0.05, 0.2) if ctx.quick else (0.05, 0.5)
        setting = f"predict_and_compare: NGD lr={lr}, tau_end={tau_end}, MLP 5-16-1 (113 params)"
        try:
            t = once(
                lambda: flow.predict_and_compare(
                    scalar, "ngd", scalar.init(seed=0), lr, tau_end, points=5
                )
            )
        except Exception as exc:
            rows.append(failed(CASE, setting, "eosfast flow.predict_and_compare", exc, True))
            return rows
        pred = t.value
        rows.append(
            Row(
                CASE,
                setting,
                "eosfast flow.predict_and_compare (whole prediction)",
                t.best,
                True,
                metrics={
                    "onset_step": int(pred.onset_step),
                    "phase2_steps": int(pred.cost["phase2_steps"]),
                    "flow_steps": int(pred.flow.steps),
                    "flow_rejected": int(pred.flow.rejected),
                    "max_distance": float(np.max(pred.comparison.distance)),
                },
            )
        )
        iterates = pred.trajectory.iterates
        try:
            t = once(lambda: [_solve_ivp_phi(scalar, x) for x in iterates])
        except Exception as exc:
            rows.append(failed(CASE, setting, "scipy solve_ivp projections", exc))
            return rows
        gap = max(
            float(np.linalg.norm(r["point"] - p))
            for r, p in zip(t.value, pred.comparison.projections, strict=True)
        )
        rows.append(
            Row(
                CASE,
                setting,
                f"scipy solve_ivp BDF: only the {len(iterates)} projections of the comparison",
                t.best,
                metrics={"max_distance_to_eosfast_projections": gap},
            )
        )
    return rows
