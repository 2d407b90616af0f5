"""Case 8: the cost of the central flow of GD (Cohen et al. 2025) at the edge of stability.

eosfast: ``flow.central_flow`` on a one-hot tanh MLP on sklearn's digits at lr = 0.25, from
the GD iterate after 1100 steps (the sharpness is at 2/lr = 8 there, one eigenvalue at the
edge), over an interval of GD steps. The metrics are the work per Runge-Kutta step and per GD
step of the interval: HVPs (inside the warm-started eigensolves), third-derivative products
(grad of u^T H u) and vector-field evaluations. Peer: ``eosfast.run`` of plain GD over the
same interval (one gradient per step), the cost the central flow replaces.
"""

from __future__ import annotations

from _harness import Context, Row, failed, once, threads

CASE = "8-central"
LR = 0.25
WARMUP_STEPS = 1100


def _problem():
    from eosfast.data import load_digits_data
    from eosfast.problems import MLP

    X, Y = load_digits_data(n_samples=100)
    return MLP(X, Y, hidden=(16,), activation="tanh")


def run(ctx: Context) -> list[Row]:
    import eosfast
    from eosfast import flow

    rows: list[Row] = []
    steps = 40 if ctx.quick else 400
    with threads(ctx.nthreads):
        problem = _problem()
        x0 = eosfast.run(
            problem, eosfast.GD(lr=LR), problem.init(seed=0), steps=WARMUP_STEPS
        ).x_final
        setting = (
            f"central flow over {steps} GD steps at lr={LR}, MLP 64-16-10 on 100 digits "
            f"({problem.dim} params), from GD step {WARMUP_STEPS}"
        )
        gd = once(lambda: eosfast.run(problem, eosfast.GD(lr=LR), x0, steps=steps))
        rows.append(
            Row(
                CASE,
                setting,
                "GD steps (eosfast.run), what the flow replaces",
                gd.best,
                metrics={"steps": steps},
            )
        )
        method = "eosfast flow.central_flow (RK45, rtol 1e-5)"
        try:
            t = once(
                lambda: flow.central_flow(
                    problem, x0, LR, LR * steps, times=[0.0, LR * steps], rtol=1e-5, eig_tol=1e-8
                )
            )
        except Exception as exc:
            rows.append(failed(CASE, setting, method, exc, True))
            return rows
        cf = t.value
        metrics = {
            "rk_steps": cf.steps,
            "evaluations": cf.evaluations,
            "hvps": cf.hvps,
            "third_products": cf.third_products,
            "hvps_per_rk_step": cf.hvps / cf.steps,
            "third_products_per_rk_step": cf.third_products / cf.steps,
            "hvps_per_gd_step": cf.hvps / steps,
            "third_products_per_gd_step": cf.third_products / steps,
            "edge_eigenvalues_at_end": int(cf.edge[-1]),
            "sharpness_over_threshold_at_end": float(cf.sharpness[-1] * LR / 2),
        }
        rows.append(Row(CASE, setting, method, t.best, True, metrics=metrics))
    return rows
