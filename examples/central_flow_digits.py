"""The central flow of GD (Cohen, Damian, Talwalkar, Kolter & Lee, ICLR 2025) on the digits.

A one-hot 64-16-10 tanh MLP on 100 of scikit-learn's 8x8 digits, MSE loss
L = (1/n) sum_i 1/2 ||f(x_i) - y_i||^2, trained by full-batch GD at lr = 0.25 (2/lr = 8).
The sharpness rises to 8 and GD enters the edge of stability. The central flow from the same
initialisation (gradient flow until lambda_1 = 2/lr, then the flow held at the edge, time
t = lr * step) predicts GD's loss averaged over a window, L(w) + tr(X)/lr, and sits at
lambda_1 = 2/lr. Prints the relative error of the prediction per window and writes
central_flow_digits.png to --out. About a minute and a half on two cores.

    python examples/central_flow_digits.py [--steps 3000] [--window 100] [--out .]
"""

import argparse
import time
from pathlib import Path

import eosfast
import numpy as np
from eosfast import flow
from eosfast.data import load_digits_data
from eosfast.problems import MLP


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args(argv)

    X, Y = load_digits_data(n_samples=args.samples)
    problem = MLP(X, Y, hidden=(16,), activation="tanh")
    x0 = problem.init(seed=args.seed)
    lr, steps = args.lr, args.steps
    traj = eosfast.run(problem, eosfast.GD(lr=lr), x0, steps=steps, sharpness_every=10)
    start = time.perf_counter()
    cf = flow.central_flow(
        problem,
        x0,
        lr,
        lr * steps,
        times=lr * np.arange(0, steps + 1, 10),
        rtol=1e-4,
        eig_tol=1e-7,
        progress=True,
    )
    seconds = time.perf_counter() - start
    cmp = flow.compare_central(cf, traj, window=args.window)
    print(
        f"central flow: {seconds:.1f} s, {cf.steps} Runge-Kutta steps, {cf.hvps} HVPs, "
        f"{cf.third_products} third-derivative products; lambda_1 reached 2/lr at step "
        f"{cf.entry_time / lr:.0f}"
    )
    print(f"{'step':>6} {'GD loss (window avg)':>21} {'predicted':>11} {'rel. error':>10}")
    for i in range(0, cmp.steps.size, max(1, cmp.steps.size // 12)):
        print(
            f"{cmp.steps[i]:6.0f} {cmp.gd_loss[i]:21.6f} {cmp.predicted_loss[i]:11.6f} "
            f"{cmp.loss_error[i]:10.2%}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_sharp) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax_loss.plot(traj.steps, traj.loss, color="0.8", lw=0.6, label="GD")
    ax_loss.plot(cmp.steps, cmp.gd_loss, color="C0", label=f"GD, {args.window}-step average")
    ax_loss.plot(cf.times / lr, cf.predicted_loss, "k--", label="central flow: L + tr(X)/lr")
    ax_loss.plot(cf.times / lr, cf.loss, color="C1", lw=1, label="L at the central flow")
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=8)
    ax_sharp.plot(traj.sharpness_steps, traj.sharpness, color="C0", lw=0.8, label="GD")
    ax_sharp.plot(cf.times / lr, cf.sharpness, "k--", label="central flow")
    ax_sharp.axhline(2 / lr, color="C3", ls=":", label="2/lr")
    ax_sharp.set_ylabel("sharpness lambda_1")
    ax_sharp.set_xlabel("step (t = lr * step)")
    ax_sharp.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "central_flow_digits.png", dpi=120)
    print(f"wrote {args.out / 'central_flow_digits.png'}")


if __name__ == "__main__":
    main()
