"""``eosfast.gradient_flow``: the library's one integrator of dx/dt = -grad L(x)."""

from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import as_float_array, as_positive_int, as_real, as_vector, check_finite
from .problems import Problem

# The C++ result, bound with read-only attributes (its docstring lists them).
FlowResult = _core.FlowResult


def gradient_flow(
    problem,
    x0,
    t_end: float | None = None,
    *,
    times=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    gtol: float | None = None,
    max_steps: int = 1_000_000,
    first_step: float | None = None,
    max_step: float = math.inf,
    dense_output: bool = True,
    endgame: bool = True,
    newton_max_iter: int = 50,
    cg_max_iter: int | None = None,
) -> FlowResult:
    """Integrate the gradient flow dx/dt = -grad L(x) from ``x0``.

    Adaptive Dormand-Prince 5(4) with error control (per component,
    ``|err_i| <= atol + rtol |x_i|`` in the RMS norm). States at the requested
    ``times`` come from the method's 4th-order dense output, or with
    ``dense_output=False`` from step ends placed exactly on them.

    With ``gtol``, the integration stops once |grad L| <= gtol (after the last
    requested time), and ``t_end`` may be None (infinite): this computes
    Phi(x0) = lim_{t->inf} x(t). Near a minimum the flow is stiff (steps are
    limited by 3.3 / lambda_max while the approach takes ~1 / lambda_min); once
    Hairer's stiffness test fires, a damped Newton-CG end game on grad L = 0
    (Hessian-vector products, minimum-norm CG steps that keep the components
    along flat directions) finishes it, within O(|x - Phi(x)|^2) of the flow's
    limit.

    Parameters
    ----------
    problem : eosfast.problems.Problem
    x0 : ndarray (dim,)
    t_end : float, optional
        The final time; default ``max(times)``, or infinity when ``gtol`` is set.
    times : array_like (m,), optional
        Sorted times in [0, t_end] at which to return the state.
    rtol, atol : float
        Error tolerances of the Dormand-Prince steps.
    gtol : float, optional
        Stop once |grad L(x)| <= gtol.
    max_steps : int
        Limit on Dormand-Prince steps (accepted and rejected).
    first_step, max_step : float, optional
        The first step (default: Hairer's heuristic) and a cap on every step.
    dense_output : bool
    endgame : bool
        Allow the Newton-CG end game (only with ``gtol``).
    newton_max_iter, cg_max_iter : int
        Limits of the end game (``cg_max_iter`` default min(dim, 1000)).

    Returns
    -------
    FlowResult

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast.problems import Quadratic
    >>> problem = Quadratic(np.array([1.0, 2.0]))
    >>> res = eosfast.gradient_flow(problem, np.ones(2), t_end=1.0)
    >>> bool(np.allclose(res.x, np.exp([-1.0, -2.0]), atol=1e-6))  # x(t) = e^{-At} x0
    True
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eosfast problem, got {type(problem).__name__}")
    x0 = as_vector(x0, problem.dim, "x0")
    if times is None:
        times_arr = np.empty(0)
    else:
        times_arr = np.atleast_1d(as_float_array(times, "times"))
        if times_arr.ndim != 1:
            raise ValueError(f"times must be 1-D, got shape {times_arr.shape}")
        check_finite(times_arr, "times")
        if np.any(times_arr < 0) or np.any(np.diff(times_arr) < 0):
            raise ValueError("times must be sorted and non-negative")
    gtol_value = 0.0 if gtol is None else as_real(gtol, "gtol")
    if gtol is not None and gtol_value <= 0:
        raise ValueError(f"gtol must be positive, got {gtol_value}")
    if t_end is None:
        if gtol is not None:
            t_end_value = math.inf
        elif times_arr.size:
            t_end_value = float(times_arr[-1])
        else:
            raise ValueError("give t_end, times or gtol")
    else:
        t_end_value = float(t_end)
        if math.isnan(t_end_value) or t_end_value < 0:
            raise ValueError(f"t_end must be >= 0, got {t_end}")
        if math.isinf(t_end_value) and gtol is None:
            raise ValueError("an infinite t_end needs gtol")
    if times_arr.size and times_arr[-1] > t_end_value:
        raise ValueError(f"times go beyond t_end = {t_end_value}")
    rtol, atol = as_real(rtol, "rtol"), as_real(atol, "atol")
    if rtol <= 0 or atol < 0:
        raise ValueError("rtol must be > 0 and atol >= 0")
    max_step = float(max_step)
    if not max_step > 0:
        raise ValueError(f"max_step must be positive, got {max_step}")
    first = 0.0 if first_step is None else as_real(first_step, "first_step")
    if first < 0:
        raise ValueError(f"first_step must be positive, got {first}")
    out: FlowResult = _core.gradient_flow(
        problem._core,
        x0,
        t_end_value,
        np.ascontiguousarray(times_arr),
        rtol,
        atol,
        gtol_value,
        as_positive_int(max_steps, "max_steps"),
        first,
        max_step,
        bool(dense_output),
        bool(endgame),
        as_positive_int(newton_max_iter, "newton_max_iter", minimum=0),
        0 if cg_max_iter is None else as_positive_int(cg_max_iter, "cg_max_iter"),
    )
    return out
