"""The limiting flows of Arora, Li & Panigrahi (2022) on an MLP trained on the digits.

The paper's MNIST experiment, on scikit-learn's bundled 8x8 digits: a one-hidden-layer
tanh MLP regresses the digit label with the squared loss
L = (1/n) sum_i 1/2 (f(x_i) - y_i)^2, which has a manifold Gamma of minimisers (more
parameters than samples). Normalized GD and GD on sqrt(L) each run from the same
initialisation: in Phase I they reach Gamma, in Phase II they oscillate across it along
the top Hessian eigenvector and drift along it. eosfast predicts the drift,

    NGD:        dX/dtau = -1/4 P_X grad log lambda_1(X),
    sqrt(L)-GD: dX/dtau = -1/8 P_X grad lambda_1(X),      tau = lr^2 t,

from Phi(x_onset) and compares: lambda_1(Phi(x_t)) against lambda_1(X(tau)), the
distance ||Phi(x_t) - X(tau)|| and the alignment of x_t - Phi(x_t) with v_1. Prints a
table per algorithm and writes figures (PNG and SVG) to --out. About a minute on two
cores with the defaults.

    python examples/manifold_flow_digits.py [--samples 100] [--hidden 48] [--lr 0.01]
        [--tau 1.0] [--seed 0] [--out manifold-flow-figures]
"""

import argparse
import time
from pathlib import Path

import numpy as np
from eosfast import flow, plot
from eosfast.data import load_digits_data
from eosfast.problems import MLP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=48)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--tau", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("manifold-flow-figures"))
    args = parser.parse_args()

    X, labels = load_digits_data(n_samples=args.samples, targets="labels")
    problem = MLP(X, (labels - 4.5) / 3.0, hidden=[args.hidden], activation="tanh", loss="mse")
    x0 = problem.init(seed=args.seed)
    print(
        f"MLP 64-{args.hidden}-1 on {args.samples} digits: {problem.dim} parameters, "
        f"lr = {args.lr}, tau_end = {args.tau} ({int(round(args.tau / args.lr**2))} steps)"
    )
    for algorithm in ("ngd", "sqrt"):
        start = time.perf_counter()
        pred = flow.predict_and_compare(
            problem, algorithm, x0, args.lr, args.tau, points=args.points, rtol=1e-3
        )
        c = pred.comparison
        name = "Normalized GD" if algorithm == "ngd" else "GD on sqrt(L)"
        print(
            f"\n{name}: Phase II from step {pred.onset_step} "
            f"(loss {pred.phase1.loss[-1]:.2e}); lambda_1 {c.sharpness_projected[0]:.4g} -> "
            f"{c.sharpness_projected[-1]:.4g}, worst relative error against the flow "
            f"{np.max(c.relative_sharpness_error):.2e} ({time.perf_counter() - start:.1f} s)"
        )
        print(c.table())
        fig = plot.flow_tracking(
            c.tau,
            c.sharpness_projected,
            c.sharpness_flow,
            c.distance,
            c.alignment,
            title=f"{name}, lr = {args.lr:g}",
        )
        paths = plot.save_figure(fig, args.out / f"flow_{algorithm}")
        print("wrote", ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
