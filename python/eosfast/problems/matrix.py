from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import as_float_array, as_positive_int, as_vector, check_finite
from ._base import Problem


class _LowRank(Problem):
    """Shared parts of the problems in the factors U (d1, r), V (d2, r)."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(d1, d2)``, the shape of U V^T."""
        return tuple(self._core.shape)

    @property
    def rank(self) -> int:
        return self._core.rank

    def split(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(U, V)`` from the parameter vector ``x = concat(U.ravel(), V.ravel())`` (copies)."""
        x = as_vector(x, self.dim)
        d1, d2 = self.shape
        r = self.rank
        return x[: d1 * r].reshape(d1, r).copy(), x[d1 * r :].reshape(d2, r).copy()

    def join(self, U, V) -> np.ndarray:
        """The parameter vector of ``(U, V)``, shapes (d1, r) and (d2, r)."""
        d1, d2 = self.shape
        r = self.rank
        U = as_float_array(U, "U")
        V = as_float_array(V, "V")
        if U.shape != (d1, r):
            raise ValueError(f"U has shape {U.shape}, expected {(d1, r)}")
        if V.shape != (d2, r):
            raise ValueError(f"V has shape {V.shape}, expected {(d2, r)}")
        return np.concatenate([U.ravel(), V.ravel()])

    def product(self, x) -> np.ndarray:
        """``U V^T`` of shape (d1, d2)."""
        U, V = self.split(x)
        return U @ V.T


class MatrixSensing(_LowRank):
    """Matrix sensing in factored form: L(U, V) = 1/(2m) sum_i (<A_i, U V^T> - y_i)^2.

    Parameters
    ----------
    A : ndarray, shape (m, d1, d2)
        The measurement matrices; copied into C++ once.
    y : ndarray, shape (m,)
        The measurements.
    rank : int
        r, the number of columns of U (d1, r) and V (d2, r).

    Notes
    -----
    The parameter vector is ``concat(U.ravel(), V.ravel())`` (C order); see
    :meth:`split` and :meth:`join`. Gradient, HVP and ``third`` are exact:
    with R = U V^T and S = (1/m) sum_i (<A_i, R> - y_i) A_i, grad = (S V, S^T U),
    and the HVP adds the Gauss-Newton part (1/m) sum_i <A_i, dR> A_i applied to
    (V, U) to the S-terms. ``hessian(x)`` caches S at x. The minimisers with
    <A_i, U V^T> = y_i for all i form a manifold (invariant under
    (U, V) -> (U G, V G^-T)) when the measurements determine a rank-r matrix.
    """

    def __init__(self, A, y, rank):
        A = as_float_array(A, "A")
        if A.ndim != 3 or min(A.shape) == 0:
            raise ValueError(f"A must have shape (m, d1, d2) with all sizes >= 1, got {A.shape}")
        check_finite(A, "A")
        m, d1, d2 = A.shape
        y = as_float_array(y, "y")
        if y.shape != (m,):
            raise ValueError(f"y has shape {y.shape}, expected ({m},) to match A")
        check_finite(y, "y")
        rank = as_positive_int(rank, "rank")
        self._core = _core.MatrixSensing(
            np.ascontiguousarray(A.reshape(m, d1 * d2)), np.ascontiguousarray(y), d1, d2, rank
        )

    @property
    def measurements(self) -> int:
        """m, the number of measurements."""
        return self._core.measurements

    @property
    def y(self) -> np.ndarray:
        return self._core.y


class MatrixFactorization(_LowRank):
    """Matrix factorization: L(U, V) = 1/2 ||U V^T - M||_F^2.

    Parameters
    ----------
    M : ndarray, shape (d1, d2)
    rank : int
        r, the number of columns of U (d1, r) and V (d2, r).

    Notes
    -----
    Parameter vector ``concat(U.ravel(), V.ravel())`` (C order). Exact gradient
    (R V, R^T U) with R = U V^T - M, HVP and ``third``; ``hessian(x)`` caches R.
    If rank(M) = r, the minimisers {U V^T = M} form a manifold of dimension r^2
    (the orbits (U G, V G^-T), G in GL(r)), on which the Hessian is the
    Gauss-Newton part (dU, dV) -> (dX V, dX^T U), dX = dU V^T + U dV^T, of rank
    (d1 + d2 - r) r. For d1 = d2 = r = 1 and M = 1 this is ``ScalarProduct(2)``.
    """

    def __init__(self, M, rank):
        M = as_float_array(M, "M")
        if M.ndim != 2 or min(M.shape) == 0:
            raise ValueError(f"M must have shape (d1, d2) with d1, d2 >= 1, got {M.shape}")
        check_finite(M, "M")
        rank = as_positive_int(rank, "rank")
        self._core = _core.MatrixFactorization(np.ascontiguousarray(M), rank)

    @property
    def M(self) -> np.ndarray:
        return self._core.M
