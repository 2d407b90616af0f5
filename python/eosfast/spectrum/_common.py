"""Shared pieces of the spectrum API: seeds, the result type, operator checks."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..operators import Operator, as_operator

_WHICH = ("LA", "SA", "LM", "BE")


def core_seed(seed) -> int:
    """A 64-bit seed for the C++ core from ``seed`` (None: fresh entropy).

    Integer seeds go through numpy's ``SeedSequence``, so nearby seeds give
    unrelated streams.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def operator(op, dim) -> Operator:
    return as_operator(op, dim)


def check_which(which, allowed=_WHICH) -> str:
    if not isinstance(which, str) or which.upper() not in allowed:
        raise ValueError(f"which must be one of {allowed}, got {which!r}")
    return which.upper()


def check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a real number, got {type(tol).__name__}")
    tol = float(tol)
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    return tol


@dataclass(frozen=True)
class EigenResult:
    """Eigenpairs of a symmetric operator and how they were obtained.

    Attributes
    ----------
    eigenvalues : ndarray, shape (k,)
        Ordered by ``which``, most wanted first: "LA" descending, "SA"
        ascending, "LM" by descending magnitude, "SM" by ascending magnitude,
        "BE" descending.
    eigenvectors : ndarray, shape (dim, k)
        Orthonormal columns; column j belongs to ``eigenvalues[j]``.
    residuals : ndarray, shape (k,)
        True residuals ``||H v - lambda v||`` from operator products.
    converged : ndarray of bool, shape (k,)
        ``residual <= tol * scale``, scale the largest ``|Ritz value|`` seen.
    matvecs : int
        Operator applications (a block of m vectors counts m).
    restarts : int
        Thick restarts.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    matvecs: int
    restarts: int

    @property
    def all_converged(self) -> bool:
        return bool(np.all(self.converged))

    def __iter__(self):
        """``w, v = result``, as ``scipy.sparse.linalg.eigsh`` returns them."""
        return iter((self.eigenvalues, self.eigenvectors))

    @classmethod
    def _from_core(cls, r) -> EigenResult:
        return cls(
            eigenvalues=np.asarray(r.eigenvalues),
            eigenvectors=np.asarray(r.eigenvectors),
            residuals=np.asarray(r.residuals),
            converged=np.asarray(r.converged, dtype=bool),
            matvecs=int(r.matvecs),
            restarts=int(r.restarts),
        )
