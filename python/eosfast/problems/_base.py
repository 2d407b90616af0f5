"""The problem contract shared by every eosfast problem."""

from __future__ import annotations

import numpy as np

from .._validation import as_block, as_vector
from ..operators import HessianOperator


class Problem:
    """A loss L: R^dim -> R with exact derivatives computed in C++.

    Every problem offers ``dim``, ``loss(x)``, ``grad(x)``, ``loss_and_grad(x)``,
    ``hvp(x, v)`` (``v`` of shape (dim,) or a block (dim, m)), ``third(x, u)`` =
    grad_x (u^T H(x) u), and ``hessian(x)``, an operator for the solvers. All
    arrays are float64; inputs of any memory order are accepted.
    """

    _core = None  # the C++ problem, set by subclasses

    @property
    def dim(self) -> int:
        return self._core.dim

    @property
    def exact_hvp(self) -> bool:
        """False when ``hvp`` is a finite-difference approximation."""
        return self._core.exact_hvp

    @property
    def exact_third(self) -> bool:
        """False when ``third`` is a finite-difference approximation."""
        return self._core.exact_third

    def loss(self, x) -> float:
        return self._core.loss(as_vector(x, self.dim))

    def grad(self, x) -> np.ndarray:
        return self._core.grad(as_vector(x, self.dim))

    def loss_and_grad(self, x) -> tuple[float, np.ndarray]:
        return self._core.loss_and_grad(as_vector(x, self.dim))

    def hvp(self, x, v) -> np.ndarray:
        """Hessian-vector product(s): shape (dim,) for one vector, (dim, m) for a block."""
        block, one = as_block(v, self.dim, "v")
        out = self._core.hvp(as_vector(x, self.dim), block)
        return out[:, 0] if one else out

    def third(self, x, u) -> np.ndarray:
        """grad^3 L(x)[u, u] = grad_x (u^T grad^2 L(x) u), shape (dim,)."""
        return self._core.third(as_vector(x, self.dim), as_vector(u, self.dim, "u"))

    def hessian(self, x) -> HessianOperator:
        """The Hessian at ``x`` as an operator (products run in C++)."""
        return HessianOperator(self._core.hessian(as_vector(x, self.dim)), self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"
