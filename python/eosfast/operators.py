"""Symmetric linear operators: the common currency of eosfast's solvers.

Every solver accepts an :class:`Operator`, a problem's Hessian at a point
(``problem.hessian(x)``, applied in C++ with no Python per product), a dense
symmetric numpy matrix, a ``scipy.sparse.linalg.LinearOperator`` or a Python
callable ``v -> A v`` (with ``dim``).
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validation import as_block, as_float_array, as_positive_int, check_finite


class Operator:
    """A symmetric linear map on R^dim backed by the C++ core."""

    def __init__(self, core_operator):
        self._core = core_operator

    @property
    def dim(self) -> int:
        return self._core.rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def matvec(self, v) -> np.ndarray:
        """``A v`` for ``v`` of shape (dim,) or a block (dim, m)."""
        block, one = as_block(v, self.dim, "v")
        out = self._core.apply(block)
        return out[:, 0] if one else out

    def __matmul__(self, v) -> np.ndarray:
        return self.matvec(v)

    def to_scipy(self):
        """This operator as a ``scipy.sparse.linalg.LinearOperator`` (float64, symmetric)."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator(
            self.shape,
            matvec=self.matvec,
            rmatvec=self.matvec,
            matmat=self.matvec,
            dtype=np.float64,
        )

    def to_dense(self, max_dim: int = 20000) -> np.ndarray:
        """The explicit (dim, dim) matrix, by applying the operator to the identity."""
        if self.dim > max_dim:
            raise ValueError(
                f"dim = {self.dim} exceeds max_dim = {max_dim}; a dense matrix would need "
                f"{8 * self.dim**2 / 2**30:.1f} GiB (raise max_dim if you mean it)"
            )
        return self._core.apply(np.eye(self.dim, order="F"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class HessianOperator(Operator):
    """The Hessian of a problem at a point ``x`` (kept as a copy)."""

    def __init__(self, core_operator, problem):
        super().__init__(core_operator)
        self.problem = problem

    @property
    def point(self) -> np.ndarray:
        return self._core.point


def as_operator(op, dim: int | None = None) -> Operator:
    """Convert anything eosfast accepts as an operator into an :class:`Operator`.

    Parameters
    ----------
    op : Operator, ndarray (dim, dim), scipy sparse matrix/array, scipy LinearOperator or callable
        Dense and sparse matrices must be symmetric (to 1e-10 relative). A callable maps a
        float64 vector of shape (dim,) to ``A v`` and needs ``dim``.
    dim : int, optional
        The dimension of a callable operator.

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> op = eosfast.as_operator(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> op.dim, op.matvec(np.array([1.0, 0.0])).tolist()
    (2, [2.0, 1.0])
    >>> eosfast.as_operator(lambda v: 3.0 * v, dim=2).to_dense().tolist()
    [[3.0, 0.0], [0.0, 3.0]]
    """
    if isinstance(op, Operator):
        return op
    if isinstance(op, np.ndarray):
        if np.iscomplexobj(op):
            raise TypeError(_COMPLEX)
        A = as_float_array(op, "operator matrix")
        _check_square(A.shape, "a matrix operator")
        _check_symmetric_matrix(A, A.ravel(), "operator matrix")
        return Operator(_core.DenseOperator(np.asfortranarray(0.5 * (A + A.T))))
    import scipy.sparse
    from scipy.sparse.linalg import LinearOperator, aslinearoperator

    if scipy.sparse.issparse(op):
        return _sparse_operator(op)
    if hasattr(op, "hvp") and hasattr(op, "hessian") and hasattr(op, "dim"):
        raise TypeError(
            f"got a problem ({type(op).__name__}), not an operator: pass its Hessian at a point, "
            "e.g. eosfast.eigsh(problem.hessian(x), k=1), or use eosfast.sharpness(problem, x)"
        )
    if not isinstance(op, LinearOperator) and not callable(op) and hasattr(op, "shape"):
        try:  # anything scipy's aslinearoperator accepts (objects with shape and matvec)
            op = aslinearoperator(op)
        except TypeError:
            pass
    if isinstance(op, LinearOperator):
        _check_square(op.shape, "a LinearOperator")
        if op.dtype is not None and np.issubdtype(op.dtype, np.complexfloating):
            raise TypeError(_COMPLEX)
        # Blocks (block Lanczos, the final refinement, the symmetry probe) go
        # through matmat: one call per block, native for matrix-backed operators.
        return Operator(_core.CallableOperator(op.matvec, int(op.shape[0]), op.matmat))
    if callable(op):
        if dim is None:
            raise ValueError("a callable operator needs its dimension: pass dim=")
        return Operator(_core.CallableOperator(op, as_positive_int(dim, "dim")))
    raise TypeError(
        "an operator must be an eosfast Operator, a square ndarray, a scipy sparse matrix or "
        f"array, a scipy LinearOperator or a callable, got {type(op).__name__}"
    )


_COMPLEX = "complex (Hermitian) operators are not supported: eosfast is real-symmetric"


def _check_square(shape, what: str) -> None:
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
        raise ValueError(f"{what} must be square and non-empty, got shape {tuple(shape)}")


def _check_symmetric_matrix(A, entries, what: str) -> None:
    """Finite entries and A = A^T to 1e-10 relative to the largest entry
    (A dense or sparse, `entries` its stored values)."""
    check_finite(entries, what)
    scale = np.max(np.abs(entries)) if entries.size else 0.0
    asymmetry = abs(A - A.T)
    worst = asymmetry.max() if asymmetry.size else 0.0
    if worst > 1e-10 * scale:
        raise ValueError(f"the {what} is not symmetric")


def _sparse_operator(A) -> Operator:
    """A symmetric scipy sparse matrix or array, applied as CSR products (blocks in one call)."""
    _check_square(A.shape, "a sparse operator")
    if np.iscomplexobj(A.data):
        raise TypeError(_COMPLEX)
    A = A.tocsr().astype(np.float64)
    _check_symmetric_matrix(A, A.data, "sparse operator")
    n = int(A.shape[0])
    return Operator(_core.CallableOperator(lambda v: A @ v, n, lambda V: A @ V))
