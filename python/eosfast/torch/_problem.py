"""eosfast.torch.problem: a PyTorch model and data set as an eosfast problem."""

from __future__ import annotations

import numpy as np
import torch

from .. import _core
from .._validation import as_positive_int, as_vector
from ..problems import Problem
from ._data import Batches
from ._engine import Engine
from ._hazards import inspect_model
from ._params import ParameterLayout, load_vector, vector_from_model

_DTYPES = (torch.float32, torch.float64)


class TorchProblem(Problem):
    """The full-batch loss of a PyTorch model as a function of its flat parameter vector.

    Built by :func:`eosfast.torch.problem`; see there. ``exact_hvp`` and
    ``exact_third`` are True (automatic differentiation, no finite differences).
    """

    def __init__(self, model, loss_fn, data, *, dtype, batch_size, params, chunk_size):
        if dtype not in _DTYPES:
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        reduction = getattr(loss_fn, "reduction", "mean")
        if isinstance(loss_fn, torch.nn.modules.loss._Loss) and reduction not in (
            "mean",
            "batchmean",
        ):
            raise ValueError(
                f"loss_fn has reduction={reduction!r}; eosfast averages micro-batch losses "
                "weighted by their size, so loss_fn must average over its batch ('mean')"
            )
        self._layout = ParameterLayout(model, params)
        _check_model_dtype(model, dtype)
        device = next(iter(model.parameters())).device
        stateful = inspect_model(model, batch_size)
        batches = Batches(data, batch_size, dtype, device)
        self._engine = Engine(
            model,
            loss_fn,
            batches,
            self._layout,
            stateful,
            dtype,
            device,
            as_positive_int(chunk_size, "chunk_size"),
        )
        self._check_first_batch()
        self._core = _core.CallbackProblem(
            self._engine.loss_and_grad,
            self._layout.dim,
            self._engine.hvp,
            self._engine.third,
            True,
        )

    def _check_first_batch(self):
        engine = self._engine
        flat = engine.to_torch(vector_from_model(engine.model, self._layout.names))
        X, Y, _ = next(iter(engine.batches))
        with torch.no_grad():
            engine.check_loss(engine.batch_loss(flat, X, Y))

    @property
    def model(self) -> torch.nn.Module:
        return self._engine.model

    @property
    def names(self) -> list[str]:
        """The selected parameters, in the order of the flat vector."""
        return list(self._layout.names)

    @property
    def shapes(self) -> list[tuple]:
        return list(self._layout.shapes)

    @property
    def n_samples(self) -> int | None:
        """The number of samples the loss averages over (None for a DataLoader without a
        sized dataset)."""
        batches = self._engine.batches
        if batches.pair is not None:
            return int(batches.pair[0].shape[0])
        try:
            return len(batches.loader.dataset)
        except TypeError:
            return None

    @property
    def dtype(self) -> torch.dtype:
        return self._engine.dtype

    @property
    def mode(self) -> str:
        """``"forward-over-reverse"``, or ``"reverse-over-reverse"`` after a fallback."""
        return self._engine.mode

    def vector_from_model(self) -> np.ndarray:
        """The model's current selected parameters as a float64 vector, shape (dim,)."""
        return vector_from_model(self.model, self._layout.names)

    def load_vector(self, x) -> None:
        """Write ``x`` (shape (dim,)) into the model's selected parameters."""
        load_vector(self.model, x, self._layout.names)

    def split(self, x) -> dict:
        """``x`` as name -> numpy array of the parameter's shape (views of a copy)."""
        flat = np.array(as_vector(x, self.dim), dtype=np.float64)
        return {
            name: flat[start : start + n].reshape(shape)
            for name, shape, n, start in zip(
                self._layout.names,
                self._layout.shapes,
                self._layout.numels,
                self._layout.offsets,
                strict=True,
            )
        }

    def __repr__(self) -> str:
        return (
            f"TorchProblem(model={type(self.model).__name__}, dim={self.dim}, "
            f"parameters={len(self._layout.names)}, dtype={self.dtype})"
        )


def _check_model_dtype(model, dtype):
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, t in tensors:
        if t.is_floating_point() and t.dtype != dtype:
            raise TypeError(
                f"the model's {name!r} has dtype {t.dtype} but the problem computes in {dtype}; "
                f"convert the model (model.to({dtype})) or pass dtype={t.dtype}"
            )
    devices = {t.device for _, t in tensors}
    if len(devices) > 1:
        where = sorted(map(str, devices))
        raise ValueError(f"the model's tensors live on several devices: {where}")


def problem(
    model,
    loss_fn,
    data,
    *,
    dtype=torch.float64,
    batch_size=None,
    params=None,
    chunk_size=8,
) -> TorchProblem:
    """The full-batch training loss of a PyTorch model as an eosfast problem.

    L(x) = (1/n) sum_b n_b loss_fn(model_x(X_b), Y_b), where ``model_x`` is the
    model with its selected parameters set to the flat vector ``x`` and the sum
    runs over micro-batches b of n_b <= ``batch_size`` samples. For a
    ``loss_fn`` that averages over its batch this is the full-batch average,
    whatever ``batch_size`` (which only bounds memory). Every eosfast solver,
    optimizer and flow accepts the result.

    Parameters
    ----------
    model : torch.nn.Module
        Used as is: its train/eval mode is the user's (eosfast never calls
        ``eval()``), and its parameters are not modified (use
        :func:`load_vector`). Unselected parameters and buffers are read from
        the model at every call. Modules drawing random numbers in training
        mode (dropout, RReLU) raise ValueError. BatchNorm using batch
        statistics warns (``TorchHazardWarning``): the loss then depends on the
        micro-batch partition; its running statistics are never updated.
    loss_fn : callable
        ``(output, target) -> scalar tensor`` averaging over the batch, e.g.
        ``lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()`` (eosfast's
        "mse"; ``torch.nn.MSELoss()`` also divides by the output width) or
        ``torch.nn.CrossEntropyLoss()``.
    data : (inputs, targets) pair of tensors or numpy arrays, or DataLoader
        A DataLoader must yield (inputs, targets) pairs; it is iterated once per
        loss, gradient, HVP block or third product. Floating inputs and targets
        must have ``dtype``.
    dtype : torch.float64 or torch.float32
        The model's floating parameters and buffers must already have it.
        Results reach eosfast as float64 either way.
    batch_size : int, optional
        Largest micro-batch; default: the whole tensor pair, or each
        DataLoader batch as it comes.
    params : None, str, callable or list of str
        Which parameters form the vector: None for all with
        ``requires_grad``; a regular expression searched in each name (e.g.
        ``r"^fc2\\."``); a predicate ``name -> bool``; or a list of names.
        The order is always that of ``model.named_parameters()``, i.e. of
        ``torch.nn.utils.parameters_to_vector``.
    chunk_size : int, default 8
        Columns of an HVP block per vectorised (``vmap``) call.

    Returns
    -------
    TorchProblem
        An :class:`eosfast.problems.Problem`; the starting point is
        ``problem.vector_from_model()``.

    Notes
    -----
    HVPs are forward-over-reverse (``torch.func.jvp`` of ``torch.func.grad``), a
    block of m vectors in one ``vmap``-ed call per chunk; ``third(x, u)`` =
    grad_x (u^T H u) is one more ``jvp``. If ``torch.func`` fails on the model
    (an operation without a forward-mode formula, code vmap cannot batch), the
    problem warns once and switches to double/triple backward
    (``problem.mode``). PyTorch's native layer_norm, batch_norm and
    instance_norm give wrong third derivatives (wrong by 7-53 % in torch 2.13,
    while their HVPs are right), so ``third`` reroutes them to compositions of
    elementary operations. Fused attention kernels (flash attention, on CPU too)
    lack forward-mode AD and double backward; models with attention modules warn
    (use ``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)``).

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> import eosfast
    >>> import eosfast.torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(3, 1).double()  # float64: a float32 model is refused
    >>> X, Y = torch.randn(8, 3, dtype=torch.float64), torch.zeros(8, 1, dtype=torch.float64)
    >>> mse = lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()
    >>> problem = eosfast.torch.problem(model, mse, (X, Y))
    >>> problem.dim  # 3 weights and a bias
    4
    >>> A = torch.cat([X, torch.ones(8, 1, dtype=torch.float64)], 1).numpy()
    >>> exact = np.linalg.eigvalsh(A.T @ A / 8)[-1]  # the Hessian of this loss is A^T A / n
    >>> bool(np.isclose(eosfast.sharpness(problem, problem.vector_from_model()), exact))
    True
    """
    return TorchProblem(
        model,
        loss_fn,
        data,
        dtype=dtype,
        batch_size=batch_size,
        params=params,
        chunk_size=chunk_size,
    )
