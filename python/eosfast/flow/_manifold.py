"""Phi, the spectrum on the manifold of minimisers Gamma, and tangent projections.

Conventions (docs/theory.md, 4. Phi and the projection): Phi(x) is the limit of
gradient flow started at x; on Gamma, dPhi(X) = P_X, the orthogonal projection onto
T_X Gamma = ker grad^2 L(X).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import as_positive_int, as_real, as_vector
from ..errors import EigengapWarning, FiniteDifferenceWarning, FlowConvergenceError
from ._gauss_newton import gauss_newton, supports_gauss_newton

# Defaults of :func:`project` (one source of truth: the flows and comparisons pass these on).
# Dormand-Prince tolerances tight enough not to floor |grad L|: with atol = 1e-10 the
# integrator's error control stalls |grad L| near 5e-8 on a 1210-parameter MLP.
PROJECT_RTOL = 1e-10
PROJECT_ATOL = 1e-13
PROJECT_MAX_STEPS = 200_000
PROJECT_NEWTON_MAX_ITER = 30
# The Newton end game lands within O(|x - Phi(x)|^2) of the flow's limit, not on it: it is
# allowed only once |grad L| <= PROJECT_ENDGAME_GTOL (from |grad L| = 1e-3 on the 1210-parameter
# one-hot MLP it lands 2.8e-2 away from Phi, from 1e-6 still 1.7e-4).
PROJECT_ENDGAME_GTOL = 1e-8
# Phi(x) must be a minimiser: L(Phi(x)) - loss_floor <= PROJECT_LOSS_TOL (loss_floor given), or
# no Hessian eigenvalue below -PROJECT_CURVATURE_TOL * lambda_max (loss_floor=None).
PROJECT_LOSS_TOL = 1e-10
PROJECT_CURVATURE_TOL = 1e-6


@dataclass(frozen=True)
class Projection:
    """The result of :func:`project`: Phi(x) and how the flow got there.

    ``steps`` counts accepted integrator steps plus end-game steps;
    ``integrator_steps``, ``rejected``, ``newton_steps`` (Newton-Krylov or
    Gauss-Newton), ``grad_evals``, ``hvps`` and ``jacobians`` are the work done,
    ``loss`` is L at ``point``, ``status`` the final stage's and ``endgame`` the end
    game used ("gauss-newton", "newton-krylov" or "" when none ran).
    """

    point: np.ndarray
    time: float
    steps: int
    grad_norm: float
    converged: bool
    loss: float = float("nan")
    status: str = ""
    integrator_steps: int = 0
    rejected: int = 0
    newton_steps: int = 0
    grad_evals: int = 0
    hvps: int = 0
    jacobians: int = 0
    endgame: str = ""


# The end games of project(): "auto" picks Gauss-Newton where the problem offers the
# least-squares form (an MSE MLP), Newton-Krylov (Hessian-vector products) otherwise.
ENDGAMES = ("auto", "gauss-newton", "newton-krylov")


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


def _positive(value, name: str) -> float:
    value = as_real(value, name)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return value


def project(
    problem,
    x,
    *,
    tol: float = 1e-10,
    max_time: float = 1e8,
    rtol: float = PROJECT_RTOL,
    atol: float = PROJECT_ATOL,
    max_steps: int = PROJECT_MAX_STEPS,
    newton_max_iter: int = PROJECT_NEWTON_MAX_ITER,
    cg_max_iter: int | None = None,
    loss_floor: float | None = 0.0,
    loss_tol: float = PROJECT_LOSS_TOL,
    endgame_gtol: float = PROJECT_ENDGAME_GTOL,
    endgame: str = "auto",
) -> Projection:
    """Phi(x): follow gradient flow from ``x`` until ``||grad L|| <= tol``.

    The stopping rule is absolute, ``||grad L(Phi(x))|| <= tol``; the default 1e-10
    suits losses of order one (MSE on targets of order one); scale ``tol`` with the
    loss otherwise.

    Uses eosfast's one gradient-flow integrator (:func:`eosfast.gradient_flow`,
    Dormand-Prince) with tolerances ``rtol``, ``atol`` tight enough that the error
    control does not floor ``||grad L||``, down to ``||grad L|| <= endgame_gtol``,
    then an end game that converges quadratically and lands within
    O(|x - Phi(x)|^2) of the flow's limit:

    - "gauss-newton" (``endgame="auto"`` picks it for problems with the
      least-squares form ``residuals`` / ``residual_jacobian``, e.g. an MSE
      :class:`~eosfast.problems.MLP`, whose n k x dim Jacobian fits in 256 MB):
      minimum-norm steps dx = -J^+ r in output space, one Jacobian each;
    - "newton-krylov" (any other problem): damped Newton-CG on grad L = 0 with
      Hessian-vector products, at most ``cg_max_iter`` per step.

    Work is bounded: ``max_steps`` integrator steps, ``newton_max_iter`` end-game
    steps, ``max_time`` of flow time.

    The end point must be a minimiser: with ``loss_floor`` (default 0, the floor of
    MSE-type losses) ``L(Phi(x)) - loss_floor <= loss_tol``; with ``loss_floor=None``
    no Hessian eigenvalue may lie below ``-PROJECT_CURVATURE_TOL * lambda_max``
    (a saddle, where gradient flow also stops, is rejected either way).

    Raises
    ------
    FlowConvergenceError
        If the gradient norm does not fall below ``tol`` within ``max_time`` or the
        work limits (e.g. ``x`` is too far from a manifold of minimisers), or the
        stationary point reached is not a minimiser at the loss floor (a saddle, or
        an under-parameterised model without interpolating minimisers).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> proj = flow.project(problem, np.array([1.0, 0.1]))
    >>> proj.converged, bool(np.allclose(proj.point, problem.phi([1.0, 0.1]), atol=1e-8))
    (True, True)
    """
    from .. import gradient_flow

    x = as_vector(x, problem.dim)
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite entries")
    if getattr(problem, "loss_name", None) == "ce":
        _check_scope(problem)  # raises: no minimisers at finite parameters
    tol = _positive(tol, "tol")
    max_time = _positive(max_time, "max_time") if np.isfinite(max_time) else float(max_time)
    rtol, atol = _positive(rtol, "rtol"), as_real(atol, "atol")
    if not (np.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be >= 0 and finite, got {atol}")
    loss_tol = _positive(loss_tol, "loss_tol")
    loss0 = float(problem.loss(x))
    if not np.isfinite(loss0):
        raise ValueError(
            f"the loss at x is {loss0}: check the data and the parameters for NaN or overflow"
        )
    endgame_gtol = _positive(endgame_gtol, "endgame_gtol")
    max_steps = as_positive_int(max_steps, "max_steps")
    if endgame not in ENDGAMES:
        raise ValueError(f"endgame must be one of {ENDGAMES}, got {endgame!r}")
    if endgame == "auto":
        endgame = "gauss-newton" if supports_gauss_newton(problem) else "newton-krylov"
    elif endgame == "gauss-newton" and not callable(getattr(problem, "residual_jacobian", None)):
        raise ValueError(
            f"endgame='gauss-newton' needs a least-squares problem (residuals and "
            f"residual_jacobian, e.g. an MSE MLP); {type(problem).__name__} has none"
        )
    _check_interpolation_possible(problem, loss_floor)
    common = dict(rtol=rtol, atol=atol, newton_max_iter=newton_max_iter, cg_max_iter=cg_max_iter)
    work = dict(steps=0, rejected=0, grad_evals=0, hvps=0, newton_steps=0, t=0.0)
    result = None
    if endgame_gtol > tol:
        # Stage 1: the flow itself down to endgame_gtol, no Newton.
        result = gradient_flow(
            problem,
            x,
            t_end=max_time,
            gtol=endgame_gtol,
            endgame=False,
            max_steps=max_steps,
            **common,
        )
        for key in work:
            work[key] += getattr(result, key)
    used, jacobians = "", 0
    if result is not None and result.status == "converged" and result.grad_norm <= tol:
        pass  # the flow itself reached tol
    elif (result is None or result.status == "converged") and endgame == "gauss-newton":
        used = endgame
        start = x if result is None else result.x
        result = gauss_newton(problem, start, gtol=tol, max_iter=newton_max_iter)
        work["grad_evals"] += result.grad_evals
        work["newton_steps"] += result.steps
        jacobians = result.jacobians
    elif result is None or result.status == "converged":
        used = endgame
        start = x if result is None else result.x
        budget = max(1, max_steps - work["steps"] - work["rejected"])
        remaining = max_time - work["t"]
        result = gradient_flow(
            problem, start, t_end=max(remaining, 0.0), gtol=tol, max_steps=budget, **common
        )
        for key in work:
            work[key] += getattr(result, key)
    projection = Projection(
        point=result.x,
        time=float(work["t"]),
        steps=int(work["steps"] + work["newton_steps"]),
        grad_norm=float(result.grad_norm),
        converged=result.status == "converged",
        loss=float(result.loss),
        status=result.status,
        integrator_steps=int(work["steps"]),
        rejected=int(work["rejected"]),
        newton_steps=int(work["newton_steps"]),
        grad_evals=int(work["grad_evals"]),
        hvps=int(work["hvps"]),
        jacobians=int(jacobians),
        endgame=used,
    )
    if not projection.converged:
        raise FlowConvergenceError(
            f"gradient flow did not reach ||grad L|| <= {tol:g} within time {max_time:g} "
            f"and {max_steps} steps (status {result.status!r}, {projection.steps} steps, "
            f"{projection.grad_evals} gradients, {projection.hvps} HVPs, final ||grad L|| = "
            f"{projection.grad_norm:.3e}, L = {projection.loss:.3e}); is the point near a "
            "manifold of minimisers? (raise max_steps or loosen tol otherwise)"
        )
    _check_minimum(problem, projection, loss_floor, loss_tol)
    return projection


# The keywords of project() a caller may pass on through ``project_options``.
PROJECT_OPTIONS = (
    "max_time",
    "rtol",
    "atol",
    "max_steps",
    "newton_max_iter",
    "cg_max_iter",
    "loss_floor",
    "loss_tol",
    "endgame_gtol",
    "endgame",
)


def _project_options(options) -> dict:
    """A checked copy of ``options`` (None: empty), the keywords of :func:`project`
    besides ``tol`` that the flows and comparisons pass on to every projection."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"project_options must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - set(PROJECT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown project_options {unknown}; allowed: {PROJECT_OPTIONS}")
    return dict(options)


def _check_interpolation_possible(problem, loss_floor) -> None:
    """Fail fast where no interpolating minimiser can exist: a least-squares model with
    more residuals (n k) than parameters has, generically, no point with r = 0 (and
    the flow towards its non-interpolating minimum is stiff and long)."""
    if loss_floor is None or not callable(getattr(problem, "residual_jacobian", None)):
        return
    if getattr(problem, "loss_name", "mse") != "mse":
        return
    rows = problem.n_samples * problem.layer_sizes[-1]
    if rows > problem.dim:
        raise FlowConvergenceError(
            f"the model is under-parameterised: {rows} residuals (n k) but {problem.dim} "
            "parameters, so it cannot interpolate and there is no manifold of minimisers at "
            "the loss floor; widen the model or pass loss_floor=None to project onto a local "
            "minimum"
        )


def _check_minimum(problem, projection: Projection, loss_floor, loss_tol: float) -> None:
    """Raise unless the stationary point ``projection.point`` is a minimiser."""
    if loss_floor is not None:
        excess = projection.loss - float(loss_floor)
        if excess <= loss_tol:
            return
        raise FlowConvergenceError(
            f"gradient flow stopped at a stationary point with L = {projection.loss:.6g}, "
            f"above the loss floor {float(loss_floor):g} by more than loss_tol = {loss_tol:g}: "
            "a saddle or a non-interpolating minimum (an under-parameterised model?), not a "
            "point of the manifold of minimisers; pass loss_floor=None to accept any local "
            "minimum (checked by its Hessian)"
        )
    from .. import eigsh

    H = problem.hessian(projection.point)
    top = eigsh(H, k=1, which="LA", tol=1e-6).eigenvalues[0]
    low = eigsh(H, k=1, which="SA", tol=1e-6).eigenvalues[0]
    if low < -PROJECT_CURVATURE_TOL * max(abs(top), 1e-300):
        raise FlowConvergenceError(
            f"gradient flow stopped at a saddle (smallest Hessian eigenvalue {low:.3e}, "
            f"largest {top:.3e}), not at a minimiser"
        )


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
    """lambda_1 >= lambda_2 of grad^2 L(X) and the unit eigenvector v_1.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> top = flow.top_eigen(problem, np.array([1.0, 0.0]))
    >>> round(top.sharpness, 8), round(float(abs(top.vector[1])), 8), round(top.second, 8)
    (4.0, 1.0, 0.0)
    """
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

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> np.round(flow.grad_sharpness(problem, np.array([1.0, 0.0])), 6).tolist()  # (4x, 0)
    [4.0, 0.0]
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
    the normal directions (on Gamma the Hessian is zero on the tangent space).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> flow.normal_rank(np.array([4.0, 2.0, 1e-12]))
    2
    """
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

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> np.round(flow.tangent_projector(problem, np.array([1.0, 0.0])), 8).tolist()  # onto e_x
    [[1.0, 0.0], [0.0, 0.0]]
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


def tangent_apply(
    problem, X, v, *, step: float | None = None, tol: float = 1e-12, project_options=None
) -> np.ndarray:
    """P_X v without forming P_X: central differences of Phi,
    ``(Phi(X + e v) - Phi(X - e v)) / (2 e)``, exact up to O(e^2) since dPhi(X) = P_X
    (``project_options``: keywords of :func:`project`).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> Pv = flow.tangent_apply(problem, np.array([1.0, 0.0]), np.array([3.0, 5.0]))
    >>> np.round(Pv, 8).tolist()
    [3.0, 0.0]
    """
    options = _project_options(project_options)
    X = as_vector(X, problem.dim, "X")
    v = as_vector(v, problem.dim, "v")
    vn = np.linalg.norm(v)
    if vn == 0.0:
        return np.zeros_like(v)
    e = (1e-4 * max(1.0, np.linalg.norm(X)) / vn) if step is None else step
    plus = project(problem, X + e * v, tol=tol, **options).point
    minus = project(problem, X - e * v, tol=tol, **options).point
    return (plus - minus) / (2 * e)
