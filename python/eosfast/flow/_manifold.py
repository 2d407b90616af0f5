"""Phi, the spectrum on the manifold of minimisers Gamma, and tangent projections.

Conventions (see SCIENCE.md): Phi(x) is the limit of gradient flow started at x;
on Gamma, dPhi(X) = P_X, the orthogonal projection onto T_X Gamma = ker grad^2 L(X).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import as_real, as_vector
from ..errors import EigengapWarning, FiniteDifferenceWarning, FlowConvergenceError


@dataclass(frozen=True)
class Projection:
    """The result of :func:`project`: Phi(x) and how the flow got there."""

    point: np.ndarray
    time: float
    steps: int
    grad_norm: float
    converged: bool


def _check_scope(problem) -> None:
    """The flows need a manifold of minimisers at finite parameters and C^3 losses."""
    loss = getattr(problem, "loss_name", None)
    if loss == "ce":
        raise ValueError(
            "cross-entropy has no manifold of minimisers at finite parameters: "
            "the limiting flows of Arora, Li & Panigrahi do not apply (use an MSE loss)"
        )
    if getattr(problem, "activation", None) == "relu":
        warnings.warn(
            "ReLU networks are not three times differentiable: grad lambda_1 and the "
            "limiting flow are only defined almost everywhere",
            UserWarning,
            stacklevel=3,
        )


def project(problem, x, *, tol: float = 1e-10, max_time: float = 1e8) -> Projection:
    """Phi(x): follow gradient flow from ``x`` until ``||grad L|| <= tol``.

    Uses eosfast's one gradient-flow integrator (:func:`eosfast.gradient_flow`,
    Dormand-Prince with a Newton end game near the minimisers).

    Raises
    ------
    FlowConvergenceError
        If the gradient norm does not fall below ``tol`` within ``max_time``
        (e.g. ``x`` is too far from a manifold of minimisers).
    """
    from .. import gradient_flow

    x = as_vector(x, problem.dim)
    tol = as_real(tol, "tol")
    result = gradient_flow(problem, x, t_end=max_time, gtol=tol)
    projection = Projection(
        point=result.x,
        time=float(result.t),
        steps=int(result.steps + result.newton_steps),
        grad_norm=float(result.grad_norm),
        converged=result.status == "converged",
    )
    if not projection.converged:
        raise FlowConvergenceError(
            f"gradient flow did not reach ||grad L|| <= {tol:g} within time {max_time:g} "
            f"({projection.steps} steps, final ||grad L|| = {projection.grad_norm:.3e}); "
            "is the point near a manifold of minimisers?"
        )
    return projection


@dataclass(frozen=True)
class TopEigen:
    """lambda_1, v_1 and lambda_2 of the Hessian at a point, and the relative eigengap."""

    sharpness: float
    vector: np.ndarray
    second: float

    @property
    def eigengap(self) -> float:
        """(lambda_1 - lambda_2) / |lambda_1|."""
        return (self.sharpness - self.second) / abs(self.sharpness)


def top_eigen(problem, X, *, v0=None, tol: float = 1e-10, seed: int = 0) -> TopEigen:
    """lambda_1 >= lambda_2 of grad^2 L(X) and the unit eigenvector v_1."""
    from .. import eigsh

    X = as_vector(X, problem.dim, "X")
    k = min(2, problem.dim)
    start = None if v0 is None else np.asarray(v0, dtype=np.float64)
    result = eigsh(problem.hessian(X), k=k, which="LA", tol=tol, v0=start, seed=seed)
    order = np.argsort(result.eigenvalues)[::-1]
    values = result.eigenvalues[order]
    vector = result.eigenvectors[:, order[0]]
    second = values[1] if k > 1 else -np.inf
    return TopEigen(float(values[0]), vector / np.linalg.norm(vector), float(second))


def grad_sharpness(problem, X, *, top: TopEigen | None = None, gap_tol: float = 1e-3) -> np.ndarray:
    """grad lambda_1(X) = grad^3 L(X)[v_1, v_1], with v_1 the unit top eigenvector.

    Warns (:class:`EigengapWarning`) when the relative eigengap
    ``(lambda_1 - lambda_2) / lambda_1`` is below ``gap_tol``: lambda_1 is then
    (nearly) not differentiable and the value is unreliable; and
    (:class:`FiniteDifferenceWarning`) when the problem has no exact ``third``
    (e.g. a :class:`~eosfast.problems.Callback` without one), whose finite
    differences carry about 1e-8 relative error.
    """
    X = as_vector(X, problem.dim, "X")
    if not problem.exact_third:
        warnings.warn(
            f"{type(problem).__name__} has no exact third derivative: grad lambda_1 uses "
            "finite differences (about 1e-8 relative error); pass `third=` for exact values",
            FiniteDifferenceWarning,
            stacklevel=2,
        )
    top = top_eigen(problem, X) if top is None else top
    if top.eigengap < gap_tol:
        warnings.warn(
            f"the top eigenvalue is (nearly) repeated at this point (relative eigengap "
            f"{top.eigengap:.2e} < {gap_tol:g}): grad lambda_1 is ill-defined",
            EigengapWarning,
            stacklevel=2,
        )
    return problem.third(X, top.vector)


def normal_rank(eigenvalues, *, rel_tol: float = 1e-6) -> int:
    """The spectral-gap rule: eigenvalues with ``|lambda| > rel_tol * max|lambda|`` are
    the normal directions (on Gamma the Hessian is zero on the tangent space)."""
    magnitudes = np.abs(np.asarray(eigenvalues, dtype=np.float64))
    if magnitudes.size == 0 or magnitudes.max() == 0.0:
        return 0
    return int(np.count_nonzero(magnitudes > rel_tol * magnitudes.max()))


def tangent_projector(problem, X, *, rank: int | None = None, rel_tol: float = 1e-6) -> np.ndarray:
    """The explicit tangent projection P_X = I - N N^T, shape (dim, dim), small dims only.

    N spans the eigenvectors of grad^2 L(X) with non-zero eigenvalues: by
    :func:`normal_rank`'s rule, or the ``rank`` largest in magnitude if given. A
    ``rank`` that contradicts the spectrum (it would count an eigenvalue below
    ``rel_tol * max|lambda|`` as normal, or leave out one far above it) is an error.
    """
    X = as_vector(X, problem.dim, "X")
    H = problem.hessian(X).to_dense(max_dim=4000)
    values, vectors = np.linalg.eigh(0.5 * (H + H.T))
    order = np.argsort(np.abs(values))[::-1]
    detected = normal_rank(values, rel_tol=rel_tol)
    if rank is None:
        rank = detected
    elif rank != detected:
        magnitudes = np.abs(values[order])
        cut = magnitudes[max(0, min(rank, detected) - 1) : max(rank, detected) + 1]
        raise ValueError(
            f"rank={rank} contradicts the Hessian's spectrum at X: {detected} eigenvalues exceed "
            f"{rel_tol:g} x max|lambda| (sorted magnitudes around the cut: "
            f"{np.array2string(cut, precision=3)})"
        )
    N = vectors[:, order[:rank]]
    return np.eye(problem.dim) - N @ N.T


def tangent_apply(problem, X, v, *, step: float | None = None, tol: float = 1e-12) -> np.ndarray:
    """P_X v without forming P_X: central differences of Phi,
    ``(Phi(X + e v) - Phi(X - e v)) / (2 e)``, exact up to O(e^2) since dPhi(X) = P_X."""
    X = as_vector(X, problem.dim, "X")
    v = as_vector(v, problem.dim, "v")
    vn = np.linalg.norm(v)
    if vn == 0.0:
        return np.zeros_like(v)
    e = (1e-4 * max(1.0, np.linalg.norm(X)) / vn) if step is None else step
    plus = project(problem, X + e * v, tol=tol).point
    minus = project(problem, X - e * v, tol=tol).point
    return (plus - minus) / (2 * e)
