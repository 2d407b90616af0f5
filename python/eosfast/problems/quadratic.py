from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import as_float_array, check_finite
from ._base import Problem


class Quadratic(Problem):
    """L(x) = 1/2 x^T A x - b^T x.

    Parameters
    ----------
    A : ndarray, shape (dim, dim) or (dim,)
        A symmetric matrix, or a 1-D array holding the diagonal of a diagonal A.
    b : ndarray, shape (dim,), optional
        Defaults to zero.

    The Hessian is A everywhere, so the sharpness is lambda_max(A); ``third`` is 0.
    """

    def __init__(self, A, b=None):
        A = as_float_array(A, "A")
        if A.ndim not in (1, 2) or A.shape[0] == 0:
            raise ValueError(
                f"A must be a non-empty (dim, dim) or (dim,) array, got shape {A.shape}"
            )
        if A.ndim == 2 and A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square, got shape {A.shape}")
        check_finite(A, "A")
        dim = A.shape[0]
        b = np.zeros(dim) if b is None else as_float_array(b, "b")
        if b.shape != (dim,):
            raise ValueError(f"b has shape {b.shape}, expected ({dim},)")
        check_finite(b, "b")
        diagonal = A.ndim == 1
        matrix = A.reshape(dim, 1) if diagonal else A
        self._core = _core.Quadratic(np.asfortranarray(matrix), b, diagonal)

    @property
    def A(self) -> np.ndarray:
        A = self._core.A
        return A[:, 0] if self._core.diagonal else A

    @property
    def b(self) -> np.ndarray:
        return self._core.b
