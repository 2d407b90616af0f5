from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from .._validation import as_float_array, as_positive_int, as_real, as_vector, check_finite
from ._base import Problem

# Declared once in C++ (src/cpp/problems/activations.hpp, mlp_heads.hpp).
ACTIVATIONS = _core.ACTIVATIONS  # ("tanh", "relu", "gelu", "softplus", "silu", "identity")
LOSSES = _core.MLP_LOSSES  # ("mse", "ce")


class MLP(Problem):
    """A fully connected network and its training loss, with exact derivatives in C++.

    Layer map ``h -> act(h W^T + b)`` (PyTorch's ``nn.Linear``) for the hidden
    layers; the output layer is linear.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Inputs, one sample per row. Copied into C++ once.
    Y : ndarray
        ``loss="mse"``: targets of shape (n, k) or (n,) (then k = 1).
        ``loss="ce"``: integer class labels of shape (n,).
    hidden : sequence of int
        Widths of the hidden layers (may be empty: a linear model).
    activation : {"tanh", "relu", "gelu", "softplus", "silu", "identity"}
        ``gelu`` is the exact erf form, ``softplus`` is log(1 + e^z),
        ``identity`` gives a deep linear network.
    loss : {"mse", "ce"}
        ``"mse"``: L = 1/(2n) sum_i ||f(x_i) - y_i||^2, the convention of
        Cohen et al. (2021). PyTorch's ``MSELoss()`` is (1/(n k)) sum_i ||.||^2
        and the released code of Arora et al. (2022) uses (1/n) sum_i ||.||^2
        (a Hessian twice as large). ``"ce"``: mean softmax cross-entropy.
    bias : bool
        Whether each layer has a bias.
    num_classes : int, optional
        Number of classes for ``"ce"`` (default ``max(Y) + 1``).
    hessian_cache_mb : float
        ``hessian(x)`` keeps the forward pass and deltas at ``x`` of as many
        256-sample chunks as fit in this many MiB, and shares them between all
        products; the remaining chunks are recomputed per product.

    Notes
    -----
    The parameter vector is the concatenation over layers of ``W.ravel()``
    (``W`` of shape (out, in), C order) followed by ``b``: exactly
    ``torch.nn.utils.parameters_to_vector`` for a stack of ``nn.Linear``.

    Gradients are backpropagation, HVPs Pearlmutter's R-operator
    (forward-over-reverse) and ``third`` a reverse pass through a
    second-order Taylor forward pass; all are exact (``exact_third`` is True).
    A block HVP of m vectors shares one forward pass. Samples are processed in
    chunks of 256 and products run over fixed tiles, so results are bitwise
    identical for any number of threads, and memory is O(params + 256 x sum of
    widths) (plus the optional Hessian cache).

    ReLU is not differentiable at 0: the gradient uses relu'(0) = 0 (as
    PyTorch does) and the HVP and ``third`` are the almost-everywhere
    derivatives (relu'' = 0), i.e. the Hessian of the piecewise-linear network
    on the current activation pattern, which is what autograd's double
    backward computes as well.
    """

    def __init__(
        self,
        X,
        Y,
        hidden=(),
        activation="tanh",
        loss="mse",
        bias=True,
        num_classes=None,
        hessian_cache_mb=256.0,
    ):
        X = as_float_array(X, "X")
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X must have shape (n, d) with n, d >= 1, got {X.shape}")
        check_finite(X, "X")
        n = X.shape[0]
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        hidden = _as_widths(hidden)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        cache_bytes = as_real(hessian_cache_mb, "hessian_cache_mb") * 2**20
        if cache_bytes < 0:
            raise ValueError(f"hessian_cache_mb must be >= 0, got {hessian_cache_mb}")
        X = np.ascontiguousarray(X)
        if loss == "mse":
            if num_classes is not None:
                raise ValueError("num_classes is only meaningful with loss='ce'")
            Y = as_float_array(Y, "Y")
            if Y.ndim == 1:
                Y = Y.reshape(-1, 1)
            if Y.ndim != 2 or Y.shape[0] != n or Y.shape[1] == 0:
                raise ValueError(f"Y has shape {Y.shape}, expected ({n}, k) or ({n},) to match X")
            check_finite(Y, "Y")
            _check_sizes(n, [X.shape[1], *hidden, Y.shape[1]], bool(bias))
            self._core = _core.MLP.regression(
                X, np.ascontiguousarray(Y), hidden, activation, bool(bias), cache_bytes
            )
        else:
            labels = _as_labels(Y, n)
            if num_classes is None:
                num_classes = int(labels.max()) + 1
                if num_classes < 2:
                    raise ValueError("Y holds a single class; pass num_classes >= 2")
            num_classes = as_positive_int(num_classes, "num_classes", minimum=2)
            if labels.min() < 0 or labels.max() >= num_classes:
                raise ValueError(
                    f"Y (labels) must lie in [0, num_classes = {num_classes}), "
                    f"got values in [{labels.min()}, {labels.max()}]"
                )
            _check_sizes(n, [X.shape[1], *hidden, num_classes], bool(bias))
            self._core = _core.MLP.classification(
                X, labels, num_classes, hidden, activation, bool(bias), cache_bytes
            )

    @property
    def layer_sizes(self) -> list[int]:
        """Widths ``[d, h1, ..., k]`` from the input to the output."""
        return list(self._core.layer_sizes)

    @property
    def activation(self) -> str:
        return self._core.activation

    @property
    def loss_name(self) -> str:
        """``"mse"`` or ``"ce"``."""
        return self._core.loss_name

    @property
    def bias(self) -> bool:
        return self._core.bias

    @property
    def n_samples(self) -> int:
        return self._core.n_samples

    def _shapes(self):
        sizes = self.layer_sizes
        return [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]

    def unflatten(self, x) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """The parameters as ``[(W, b), ...]`` per layer, ``W`` of shape (out, in).

        ``b`` is None without bias. The arrays are copies.
        """
        x = as_vector(x, self.dim)
        layers, offset = [], 0
        for out, inp in self._shapes():
            W = x[offset : offset + out * inp].reshape(out, inp).copy()
            offset += out * inp
            b = None
            if self.bias:
                b = x[offset : offset + out].copy()
                offset += out
            layers.append((W, b))
        return layers

    def flatten(self, layers) -> np.ndarray:
        """The flat parameter vector of ``[(W, b), ...]`` (inverse of :meth:`unflatten`)."""
        shapes = self._shapes()
        if len(layers) != len(shapes):
            raise ValueError(f"layers has {len(layers)} entries, expected {len(shapes)}")
        parts = []
        for i, ((out, inp), layer) in enumerate(zip(shapes, layers, strict=True)):
            W, b = layer
            W = as_float_array(W, f"layers[{i}] W")
            if W.shape != (out, inp):
                raise ValueError(f"layers[{i}] W has shape {W.shape}, expected {(out, inp)}")
            parts.append(W.ravel())
            if self.bias:
                if b is None:
                    raise ValueError(f"layers[{i}] b is missing (the network has biases)")
                b = as_float_array(b, f"layers[{i}] b")
                if b.shape != (out,):
                    raise ValueError(f"layers[{i}] b has shape {b.shape}, expected ({out},)")
                parts.append(b)
            elif b is not None:
                raise ValueError(f"layers[{i}] b must be None (the network has no biases)")
        return np.concatenate(parts)

    def init(self, seed=None) -> np.ndarray:
        """PyTorch's default ``nn.Linear`` initialisation, drawn from numpy's PCG64.

        Layer by layer, ``W`` then ``b`` uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``
        from ``np.random.default_rng(seed)`` (the distribution of PyTorch's
        default, not its random stream).
        """
        rng = np.random.default_rng(seed)
        layers = []
        for out, inp in self._shapes():
            bound = 1.0 / np.sqrt(inp)
            W = rng.uniform(-bound, bound, (out, inp))
            b = rng.uniform(-bound, bound, out) if self.bias else None
            layers.append((W, b))
        return self.flatten(layers)

    def predict(self, x, X=None) -> np.ndarray:
        """Network outputs ``f(X)`` of shape (n, k) (the training inputs by default)."""
        x = as_vector(x, self.dim)
        if X is None:
            return self._core.predict_training(x)
        X = as_float_array(X, "X")
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"X has shape {X.shape}, expected (n, {self.layer_sizes[0]})")
        check_finite(X, "X")
        return self._core.predict(x, np.ascontiguousarray(X))

    def residuals(self, x) -> np.ndarray:
        """r(x) = (f(X) - Y).ravel() / sqrt(n), shape (n k,), so that L = 1/2 |r|^2
        (MSE only): the least-squares form the Gauss-Newton end game of
        :func:`eosfast.flow.project` works with."""
        self._require_mse("residuals")
        return (self.predict(x) - self._core.targets).ravel() / np.sqrt(self.n_samples)

    def residual_jacobian(self, x) -> np.ndarray:
        """dr/dx, shape (n k, dim): the Jacobian of the outputs f(x_i)_k (row i k + k,
        as :meth:`residuals`) divided by sqrt(n); exact (per-sample backpropagation in
        C++, memory n k dim doubles)."""
        self._require_mse("residual_jacobian")
        return self._core.output_jacobian(as_vector(x, self.dim)) / np.sqrt(self.n_samples)

    def _require_mse(self, what: str) -> None:
        if self.loss_name != "mse":
            raise ValueError(
                f"{what} needs loss='mse' (a least-squares loss), got {self.loss_name!r}"
            )

    def __repr__(self) -> str:
        return (
            f"MLP(layer_sizes={self.layer_sizes}, activation={self.activation!r}, "
            f"loss={self.loss_name!r}, bias={self.bias}, dim={self.dim})"
        )


def _as_widths(hidden) -> list[int]:
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        widths = list(hidden)
    except TypeError:
        raise TypeError(f"hidden must be a sequence of ints, got {type(hidden).__name__}") from None
    out = []
    for i, w in enumerate(widths):
        if isinstance(w, bool) or not isinstance(w, numbers.Integral):
            raise TypeError(f"hidden[{i}] must be an int, got {type(w).__name__}")
        if w < 1:
            raise ValueError(f"hidden[{i}] must be >= 1 (no zero-size layers), got {w}")
        out.append(int(w))
    return out


_INDEX_MAX = int(np.iinfo(np.int64).max)  # the C++ core indexes with 64-bit signed integers


def _check_sizes(n: int, sizes: list[int], bias: bool) -> None:
    """Refuse a network whose parameter count or activations do not fit a 64-bit index."""
    dim = sum((a + int(bias)) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    if dim > _INDEX_MAX:
        raise ValueError(
            f"the network with layer sizes {sizes} has {dim} parameters, more than a 64-bit "
            f"index can count ({_INDEX_MAX}); use smaller hidden widths or fewer classes"
        )
    widest = max(sizes)
    if n * widest > _INDEX_MAX:
        raise ValueError(
            f"{n} samples x a layer of width {widest} overflow a 64-bit index; "
            "use smaller layers or fewer samples"
        )


def _as_labels(Y, n: int) -> np.ndarray:
    arr = np.asarray(Y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"Y (labels) has shape {arr.shape}, expected ({n},) integer class labels to match X"
        )
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError("Y (labels) contains NaN or inf")
        if np.any(arr != np.round(arr)):
            raise ValueError("Y (labels) must hold integer class labels")
        return arr.astype(np.int64)
    raise TypeError(f"Y (labels) must be an integer array, got dtype {arr.dtype}")
