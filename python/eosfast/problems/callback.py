from __future__ import annotations

from .. import _core
from .._validation import as_positive_int
from ._base import Problem


class Callback(Problem):
    """A problem defined by Python callables, run by the C++ solvers and optimizers.

    Parameters
    ----------
    loss_and_grad : callable
        ``x -> (loss, grad)`` with ``x`` a float64 array of shape (dim,) (a fresh
        copy each call) and ``grad`` of shape (dim,).
    dim : int
    hvp : callable, optional
        ``(x, v) -> H(x) v``. Without it, HVPs are central differences of
        gradients, ``(g(x + h v) - g(x - h v)) / (2h)`` with
        ``h = eps^(1/3) max(1, |x|) / |v|`` (about 1e-10 relative error on smooth
        losses), and ``exact_hvp`` is False.
    third : callable, optional
        ``(x, u) -> grad_x (u^T H(x) u)``. Without it, central differences of
        ``hvp`` (step as above), or with no ``hvp`` the fourth-order second
        difference of gradients along ``u`` (step ``eps^(1/6) max(1, |x|) / |u|``,
        about 1e-8 relative); ``exact_third`` is False.

    block_hvp : bool, default False
        If True, ``hvp`` is called once per block as ``(x, V) -> H(x) V`` with ``V``
        a float64 array of shape (dim, m) (Fortran order, a fresh copy) and must
        return shape (dim, m); a single vector arrives as a (dim, 1) block. Solvers
        that multiply blocks then cost one Python call per block.

    Callbacks run on the calling thread only (eosfast holds the GIL for them), so
    they are exempt from the bitwise determinism rule. Exceptions they raise
    propagate unchanged.
    """

    def __init__(self, loss_and_grad, dim, hvp=None, third=None, block_hvp=False):
        for name, fn in (("loss_and_grad", loss_and_grad), ("hvp", hvp), ("third", third)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
        if loss_and_grad is None:
            raise TypeError("loss_and_grad is required")
        if not isinstance(block_hvp, bool):
            raise TypeError(f"block_hvp must be a bool, got {type(block_hvp).__name__}")
        if block_hvp and hvp is None:
            raise ValueError("block_hvp=True needs an hvp callable")
        self._core = _core.CallbackProblem(
            loss_and_grad, as_positive_int(dim, "dim"), hvp, third, block_hvp
        )
