"""The benchmark MLPs: sizes, data, parameters, PyTorch twins and FLOP counts.

Every library sees the same network: layers ``h -> tanh(h W^T + b)`` (PyTorch's ``nn.Linear``),
a linear output layer, the loss ``1/(2n) sum_i ||f(x_i) - y_i||^2``, data and parameters drawn
from numpy's PCG64. The flat parameter vector is in ``torch.nn.utils.parameters_to_vector``
order (W row-major, then b, layer by layer), the layout of ``eosfast.problems.MLP``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from bench_kernels import flops


@dataclass(frozen=True)
class MLPSpec:
    name: str
    d_in: int
    hidden: tuple
    d_out: int
    n: int

    @property
    def widths(self) -> list[int]:
        return [self.d_in, *self.hidden, self.d_out]

    @property
    def layers(self) -> list[tuple[int, int]]:
        w = self.widths
        return list(zip(w[:-1], w[1:], strict=True))

    @property
    def params(self) -> int:
        return sum(o * i + o for i, o in self.layers)

    @property
    def label(self) -> str:
        return (
            f"[{self.name}] P={self.params:.1e} n={self.n} widths={'-'.join(map(str, self.widths))}"
        )

    def grad_flops(self) -> float:
        """Matrix-product FLOPs of one gradient (``bench_kernels.flops``: forward, W-gradients,
        input gradients except for the first layer; elementwise work not counted)."""
        return float(flops(self.widths, self.n)["grad"])

    def hvp_flops(self, m: int = 1, cached: bool = False) -> float:
        """Matrix-product FLOPs of a block HVP of ``m`` vectors by the R-operator (Pearlmutter),
        as ``bench_kernels.flops`` counts them: the forward pass and its backward sweep once,
        then per vector the tangent forward, the tangent backward and the Hessian-block
        products. ``cached``: the forward pass and deltas are kept from an earlier product at
        the same point (as ``hessian(x)`` does), leaving the per-vector part. The minimum an
        R-operator HVP needs, so achieved rates computed from it are not flattered."""
        f = flops(self.widths, self.n)
        return float(m * f["hvp_cached"] if cached else f["block"](m))


FULL_SIZES = {
    "1e4": MLPSpec("1e4", 20, (100, 80), 10, 10000),
    "1e5": MLPSpec("1e5", 100, (256, 256), 10, 5000),
    "1e6": MLPSpec("1e6", 256, (1024, 640), 10, 2000),
    "1e7": MLPSpec("1e7", 1024, (2048, 2048, 1024), 10, 1000),
}
QUICK_SIZES = {
    "1e4": MLPSpec("1e4", 20, (100, 80), 10, 1000),
    "1e5": MLPSpec("1e5", 100, (256, 256), 10, 1000),
}


def make_data(spec: MLPSpec, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``X (n, d_in)`` standard normal; targets ``Y (n, d_out)`` from a random teacher
    network of the same shape plus noise, so GD has structure to fit."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((spec.n, spec.d_in))
    teacher = init_params(spec, seed + 1)
    Y = forward_numpy(spec, teacher, X) + 0.1 * rng.standard_normal((spec.n, spec.d_out))
    return X, Y


def init_params(spec: MLPSpec, seed: int = 0) -> np.ndarray:
    """PyTorch's default ``nn.Linear`` initialisation (W and b uniform in +-1/sqrt(fan_in)),
    drawn from numpy's PCG64, flattened in ``parameters_to_vector`` order."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, o in spec.layers:
        bound = 1.0 / np.sqrt(i)
        parts.append(rng.uniform(-bound, bound, size=o * i))
        parts.append(rng.uniform(-bound, bound, size=o))
    return np.concatenate(parts)


def unflatten(spec: MLPSpec, theta):
    """``[(W (out, in), b (out,)), ...]`` views into ``theta`` (numpy or torch)."""
    out, offset = [], 0
    for i, o in spec.layers:
        W = theta[offset : offset + o * i].reshape(o, i)
        offset += o * i
        b = theta[offset : offset + o]
        offset += o
        out.append((W, b))
    return out


def forward_numpy(spec: MLPSpec, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    layers = unflatten(spec, theta)
    h = X
    for idx, (W, b) in enumerate(layers):
        h = h @ W.T + b
        if idx < len(layers) - 1:
            h = np.tanh(h)
    return h


def eosfast_mlp(spec: MLPSpec, X: np.ndarray, Y: np.ndarray):
    import eosfast

    return eosfast.problems.MLP(X, Y, hidden=spec.hidden, activation="tanh", loss="mse")


# ---------------------------------------------------------------- PyTorch twins


def torch_module(spec: MLPSpec, theta: np.ndarray, dtype):
    """``nn.Sequential`` of ``nn.Linear`` + ``nn.Tanh`` holding ``theta``."""
    import torch
    from torch import nn

    mods = []
    for idx, (i, o) in enumerate(spec.layers):
        mods.append(nn.Linear(i, o))
        if idx < len(spec.layers) - 1:
            mods.append(nn.Tanh())
    model = nn.Sequential(*mods).to(dtype)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.as_tensor(theta, dtype=dtype), model.parameters())
    return model


def mse_criterion(outputs, targets):
    """The Cohen et al. (2021) MSE: ``1/(2n) sum_i ||f(x_i) - y_i||^2``."""
    return 0.5 * ((outputs - targets) ** 2).sum() / outputs.shape[0]


def torch_flat_loss(spec: MLPSpec, X, Y):
    """``theta -> loss`` on a flat parameter tensor, for ``torch.func``."""
    import torch.nn.functional as F

    def loss(theta):
        h = X
        layers = unflatten(spec, theta)
        for idx, (W, b) in enumerate(layers):
            h = F.linear(h, W, b)
            if idx < len(layers) - 1:
                h = h.tanh()
        return mse_criterion(h, Y)

    return loss


def torch_data(X: np.ndarray, Y: np.ndarray, dtype):
    import torch

    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(Y, dtype=dtype)
