"""The Gauss-Newton end game of Phi for least-squares losses L = 1/2 |r(x)|^2.

Near the manifold of minimisers Gamma = {r = 0} of an interpolating MSE model the
Hessian is J^T J up to O(|r|) (J = dr/dx, n k x dim), so the minimum-norm solution of
the linearised problem, dx = -J^+ r, converges quadratically onto Gamma. Being
orthogonal to ker J (the tangent space T Gamma near Gamma), it moves x along the
normal directions as gradient flow does, and lands within O(|x - Phi(x)|^2) of the
flow's limit: :func:`eosfast.flow.project` switches to it only once the integrated
flow has brought |grad L| below its ``endgame_gtol``. One Jacobian and one dense
least-squares solve (in output space, n k rows) per step replace the Newton-Krylov
steps of the general path (hundreds of Hessian-vector products each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

# Largest Jacobian (n k x dim entries, float64) the end game forms: 2^25 entries = 256 MB.
GAUSS_NEWTON_MAX_ENTRIES = 2**25
# Halvings of a Gauss-Newton step before the end game gives up (the loss must fall).
_MAX_HALVINGS = 30


@dataclass
class GaussNewtonResult:
    x: np.ndarray
    loss: float
    grad_norm: float
    status: str  # "converged", "max_iter" or "stalled"
    steps: int
    grad_evals: int
    jacobians: int


def supports_gauss_newton(problem) -> bool:
    """Whether ``problem`` offers the least-squares form (``residuals`` and
    ``residual_jacobian``, e.g. an MSE :class:`~eosfast.problems.MLP`) at a size
    whose Jacobian fits in GAUSS_NEWTON_MAX_ENTRIES."""
    if not callable(getattr(problem, "residual_jacobian", None)):
        return False
    if getattr(problem, "loss_name", "mse") != "mse":
        return False
    rows = getattr(problem, "n_samples", 0) * getattr(problem, "layer_sizes", [0])[-1]
    return 0 < rows * problem.dim <= GAUSS_NEWTON_MAX_ENTRIES


def gauss_newton(problem, x, *, gtol: float, max_iter: int) -> GaussNewtonResult:
    """Minimum-norm Gauss-Newton steps from ``x`` until |grad L| <= ``gtol``.

    Each step solves min |J dx + r| with the smallest |dx| (LAPACK ``gelsd``); it is
    halved until the loss falls. Stops with "stalled" when no halving lowers the
    loss (the rounding floor of L, or no interpolating minimiser nearby).
    """
    x = np.array(x, dtype=np.float64)
    r = problem.residuals(x)
    loss = 0.5 * float(r @ r)
    grad_evals = jacobians = steps = 0
    status = "max_iter"
    while True:
        g = problem.grad(x)
        grad_evals += 1
        grad_norm = float(np.linalg.norm(g))
        if grad_norm <= gtol:
            status = "converged"
            break
        if steps >= max_iter:
            break
        J = problem.residual_jacobian(x)
        jacobians += 1
        dx = scipy.linalg.lstsq(J, -r, lapack_driver="gelsd", check_finite=False)[0]
        t = 1.0
        for _ in range(_MAX_HALVINGS):
            trial = x + t * dx
            r_trial = problem.residuals(trial)
            loss_trial = 0.5 * float(r_trial @ r_trial)
            if loss_trial < loss:
                break
            t *= 0.5
        else:
            status = "stalled"
            break
        x, r, loss = trial, r_trial, loss_trial
        steps += 1
    return GaussNewtonResult(x, loss, grad_norm, status, steps, grad_evals, jacobians)
