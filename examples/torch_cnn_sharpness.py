"""Progressive sharpening and the Edge of Stability for a small PyTorch CNN.

A two-layer tanh CNN on scikit-learn's handwritten digits (8x8 images, shipped
with scikit-learn), trained at full batch with plain GD on the squared loss
L = (1/n) sum_i 1/2 ||f(x_i) - onehot(y_i)||^2 (Cohen et al., 2021). eosfast
runs the GD loop and measures the sharpness (top Hessian eigenvalue, Lanczos
with warm starts) every few steps: it rises from about 4 to the stability
threshold 2/lr = 8 (progressive sharpening) and then hovers there while the loss
keeps falling non-monotonically (the Edge of Stability). Finally the top
Hessian eigenvector is loaded into a copy of the model to see which layer it
moves. About a minute on two cores.

    python examples/torch_cnn_sharpness.py [--samples 256] [--lr 0.25] [--steps 800]
"""

import argparse
import copy
import time

import eosfast
import eosfast.torch
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn


def digits(samples: int):
    data = load_digits()
    X = torch.tensor(data.images[:samples] / 16.0, dtype=torch.float64).unsqueeze(1)
    X = X - X.mean()
    Y = nn.functional.one_hot(torch.tensor(data.target[:samples]), 10).to(torch.float64)
    return X, Y, torch.tensor(data.target[:samples])


def cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),  # 8 x 4 x 4
        nn.Conv2d(8, 16, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),  # 16 x 2 x 2
        nn.Flatten(), nn.Linear(64, 10),
    ).to(torch.float64)  # fmt: skip


def mse(out, y):
    return 0.5 * ((out - y) ** 2).sum(1).mean()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--lr", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--sharpness-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # tiny tensors: torch's thread pool only adds latency
    X, Y, labels = digits(args.samples)
    model = cnn(args.seed)
    problem = eosfast.torch.problem(model, mse, (X, Y))
    print(f"{args.samples} digits, CNN with {problem.dim} parameters, lr = {args.lr}")

    start = time.perf_counter()
    traj = eosfast.run(
        problem,
        eosfast.GD(args.lr),
        problem.vector_from_model(),
        args.steps,
        sharpness_every=args.sharpness_every,
        record_every=args.sharpness_every,
    )
    seconds = time.perf_counter() - start

    print(f"\n{'step':>6} {'loss':>9} {'sharpness':>10}   2/lr = {2 / args.lr:g}")
    losses = dict(zip(traj.steps.tolist(), traj.loss, strict=True))
    for step, sharp in zip(traj.sharpness_steps, traj.sharpness, strict=True):
        bar = "#" * int(round(30 * sharp / (2 / args.lr)))
        print(f"{step:6d} {losses.get(int(step), np.nan):9.4f} {sharp:10.3f}   {bar}")
    print(f"\n{traj.status} in {seconds:.1f} s ({traj.hvps_total} Hessian-vector products)")
    if traj.eos_onset is not None:
        print(f"sharpness reached 2/lr at step {traj.eos_onset}")

    eosfast.torch.load_vector(model, traj.x_final)
    with torch.no_grad():
        accuracy = (model(X).argmax(1) == labels).double().mean().item()
    print(f"training accuracy of the final iterate: {accuracy:.1%}")

    # Which layer does the sharpest direction live in? Load it into a copy of the model.
    top = eosfast.eigsh(problem.hessian(traj.x_final), k=1)
    direction = copy.deepcopy(model)
    eosfast.torch.load_vector(direction, top.eigenvectors[:, 0])
    print(f"top eigenvalue at the end: {top.eigenvalues[0]:.3f}; its eigenvector by layer:")
    for name, p in direction.named_parameters():
        print(f"  {name:10s} {p.detach().norm().item() ** 2:6.1%} of the squared norm")


if __name__ == "__main__":
    main()
