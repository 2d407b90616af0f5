"""The semidefinite complementarity problem of the central flow (docs/theory.md, 10. The
central flow of gradient descent).

SDCP(A, B): find X in Sym(k) with

    X >= 0,   Y = A + B[X] >= 0,   <X, Y> = 0        (">= 0": positive semidefinite)

for a symmetric A and a symmetric positive semidefinite linear map B on Sym(k). These are
the optimality conditions of the convex problem min_{X >= 0} <A, X> + 1/2 <X, B[X]>, so
the solution is solved as that problem: accelerated projected gradient on the PSD cone
(projection = clipping the eigenvalues) finds the range of X, and a linear solve on that
range (X = Q Z Q^T, Q^T Y Q = 0) makes it exact to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SDCPSolution:
    """The solution X of SDCP(A, B) with ``residual`` = max(|<X, Y>|, -min eig X,
    -min eig Y) relative to the scale of A and B, and the iterations it took."""

    X: np.ndarray
    residual: float
    iterations: int


def _apply(B, X):
    return np.einsum("ijkl,kl->ij", B, X)


def _psd_part(M):
    w, Q = np.linalg.eigh(0.5 * (M + M.T))
    return (Q * np.maximum(w, 0.0)) @ Q.T


def _residual(A, B, X, scale):
    Y = A + _apply(B, X)
    return max(
        abs(float(np.sum(X * Y))) / max(scale * max(1.0, np.abs(X).max()), 1e-300),
        -float(np.linalg.eigvalsh(X).min()) / max(np.abs(X).max(), 1e-300),
        -float(np.linalg.eigvalsh(0.5 * (Y + Y.T)).min()) / scale,
        0.0,
    )


def _polish(A, B, X, k):
    """The exact solution on the range of X: Z with Q^T (A + B[Q Z Q^T]) Q = 0."""
    w, Q = np.linalg.eigh(X)
    keep = w > 1e-9 * max(w.max(), 1e-300)
    if not keep.any():
        return np.zeros((k, k))
    Q = Q[:, keep]
    r = Q.shape[1]
    rows, cols = np.triu_indices(r)
    # Columns: the images of the symmetric basis matrices E_ab + E_ba (a < b) or E_aa.
    M = np.empty((rows.size, rows.size))
    rhs = -(Q.T @ A @ Q)[rows, cols]
    for n, (a, b) in enumerate(zip(rows, cols, strict=True)):
        E = np.zeros((r, r))
        E[a, b] = E[b, a] = 1.0
        M[:, n] = (Q.T @ _apply(B, Q @ E @ Q.T) @ Q)[rows, cols]
    z = np.linalg.lstsq(M, rhs, rcond=None)[0]
    Z = np.zeros((r, r))
    Z[rows, cols] = z
    Z = Z + np.triu(Z, 1).T
    return Q @ Z @ Q.T


def solve_sdcp(A, B, *, tol: float = 1e-12, max_iter: int = 20000) -> SDCPSolution:
    """Solve the semidefinite complementarity problem X >= 0, A + B[X] >= 0, <X, A + B[X]> = 0.

    Parameters
    ----------
    A : ndarray (k, k)
        Symmetric.
    B : ndarray (k, k, k, k)
        The linear map ``B[X]_ij = sum_kl B[i, j, k, l] X_kl``, symmetric
        (``B[i,j,k,l] = B[k,l,i,j] = B[j,i,k,l]``) and positive semidefinite on
        symmetric matrices.
    tol : float
        Target of the relative complementarity / feasibility residual.
    max_iter : int
        Limit on projected-gradient iterations before the exact polish.

    Returns
    -------
    SDCPSolution

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.flow import solve_sdcp
    >>> A = np.array([[-1.0]])  # k = 1: X = max(0, -A / B)
    >>> B = np.full((1, 1, 1, 1), 4.0)
    >>> float(solve_sdcp(A, B).X[0, 0])
    0.25
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {A.shape}")
    k = A.shape[0]
    if B.shape != (k, k, k, k):
        raise ValueError(f"B must have shape {(k, k, k, k)}, got {B.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
        raise ValueError("A and B must be finite")
    if k == 0:
        return SDCPSolution(np.zeros((0, 0)), 0.0, 0)
    A = 0.5 * (A + A.T)
    if np.linalg.eigvalsh(A).min() >= 0:
        return SDCPSolution(np.zeros((k, k)), 0.0, 0)
    Bmat = B.reshape(k * k, k * k)
    Bmat = 0.5 * (Bmat + Bmat.T)
    lipschitz = float(np.linalg.eigvalsh(Bmat).max())
    if not lipschitz > 0:
        raise ValueError("B is zero: the complementarity problem has no solution for this A")
    scale = max(np.abs(A).max(), 1e-300)
    step = 1.0 / lipschitz
    X = Z = np.zeros((k, k))
    theta = 1.0
    iterations = 0
    for iterations in range(1, max_iter + 1):
        # FISTA on min <A, X> + 1/2 <X, B[X]> over the PSD cone, with gradient restarts.
        X_new = _psd_part(Z - step * (A + _apply(B, Z)))
        theta_new = 0.5 * (1 + np.sqrt(1 + 4 * theta * theta))
        if np.sum((Z - X_new) * (X_new - X)) > 0:
            theta_new = 1.0
            Z = X_new
        else:
            Z = X_new + ((theta - 1) / theta_new) * (X_new - X)
        X, theta = X_new, theta_new
        if iterations % 50 == 0:
            polished = _polish(A, B, X, k)
            if _residual(A, B, polished, scale) <= tol:
                X = polished
                break
    else:
        polished = _polish(A, B, X, k)
        if _residual(A, B, polished, scale) < _residual(A, B, X, scale):
            X = polished
    X = 0.5 * (X + X.T)
    return SDCPSolution(X, _residual(A, B, X, scale), iterations)
