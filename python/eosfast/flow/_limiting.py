"""The limiting flows of Arora, Li & Panigrahi (2022) on the manifold of minimisers.

  Normalized GD:  dX/dtau = -1/4 P_X grad log lambda_1(X)
  GD on sqrt(L):  dX/dtau = -1/8 P_X grad lambda_1(X)
with tau = lr^2 x (number of steps). Integrated by a projected Heun scheme with
step-size control: with w(X) = P_X G(X) the tangent velocity,

  X_e = Phi(X - h w(X)),   X_h = Phi(X - h/2 (w(X) + w(X_e))),

whose difference |X_h - X_e| = O(h^2) estimates the local error. Stepping along
tangent directions matters: Phi restricted to T_X Gamma is a second-order
retraction, whereas a normal component would add a spurious O(h^2) drift
(d^2 Phi[v, v] != 0 for normal v, the very effect that drives the flows).
P_X is explicit (eigendecomposition of the Hessian) for small dimensions and
applied implicitly through central differences of Phi otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import as_float_array, as_positive_int, as_real, as_vector
from ..errors import EigengapWarning, FlowConvergenceError
from ..optimizers import flow_algorithm as algorithm_name
from ._manifold import (
    _check_scope,
    _project_options,
    grad_sharpness,
    project,
    tangent_apply,
    tangent_projector,
    top_eigen,
)
from ._progress import reporter

# Explicit P_X (a dense eigendecomposition per evaluation) up to this dimension.
EXPLICIT_TANGENT_MAX_DIM = 400

_COEFFICIENTS = {"ngd": 0.25, "sqrt": 0.125}

# Relative eigengap (lambda_1 - lambda_2) / lambda_1 below which lambda_1 counts as repeated.
GAP_TOL = 1e-3

# What limiting_flow does where lambda_1 stops being simple (the flow of the paper is undefined).
ON_DEGENERATE = ("stop", "continue")


@dataclass
class LimitingFlow:
    """A solution of the limiting flow: states on Gamma at times ``tau``.

    ``states`` has one row per time; ``sharpness`` is lambda_1 there and
    ``velocity`` dX/dtau (used for cubic Hermite interpolation by :meth:`at`).
    ``status`` is "completed" (tau_end reached) or "eigengap_closed": the relative
    eigengap fell below ``GAP_TOL`` at ``info["gap_tau"]`` (lambda_1 is not simple, the
    flow is not defined there) and the solution ends at the last state with a simple
    lambda_1 (see ``on_degenerate`` of :func:`limiting_flow`).
    """

    algorithm: str
    tau: np.ndarray
    states: np.ndarray
    sharpness: np.ndarray
    velocity: np.ndarray
    steps: int = 0
    rejected: int = 0
    info: dict = field(default_factory=dict)
    status: str = "completed"

    def at(self, tau) -> np.ndarray:
        """X(tau) for tau within the solved range, by cubic Hermite interpolation
        (third order: error O(h^4) on steps of size h, well below the step tolerance)."""
        taus = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        if taus.min() < self.tau[0] - 1e-12 or taus.max() > self.tau[-1] + 1e-12:
            raise ValueError(f"tau outside the solved range [{self.tau[0]}, {self.tau[-1]}]")
        out = np.empty((taus.size, self.states.shape[1]))
        if self.tau.size == 1:
            out[:] = self.states[0]
            return out if np.ndim(tau) else out[0]
        for i, t in enumerate(taus):
            j = int(np.clip(np.searchsorted(self.tau, t, side="right") - 1, 0, self.tau.size - 2))
            t0, t1 = self.tau[j], self.tau[j + 1]
            h = t1 - t0
            s = (t - t0) / h
            h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
            h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
            out[i] = (
                h00 * self.states[j]
                + h10 * h * self.velocity[j]
                + h01 * self.states[j + 1]
                + h11 * h * self.velocity[j + 1]
            )
        return out if np.ndim(tau) else out[0]

    def sharpness_at(self, tau) -> np.ndarray:
        """lambda_1(X(tau)) by linear interpolation of the solved values."""
        return np.interp(tau, self.tau, self.sharpness)


class _Velocity:
    """w(X) = -c P_X grad f(X) with its lambda_1, warm-starting each eigensolve."""

    def __init__(self, problem, algorithm: str, tangent: str, rank, project_tol: float, options):
        self.problem = problem
        self.coefficient = _COEFFICIENTS[algorithm]
        self.log = algorithm == "ngd"
        self.tangent = tangent
        self.rank = rank
        self.project_tol = project_tol
        self.options = options
        self.previous_vector = None
        self.evaluations = 0
        self.smallest_gap = np.inf
        self.degenerate = 0

    def __call__(self, X):
        top = top_eigen(self.problem, X, v0=self.previous_vector)
        self.previous_vector = top.vector
        # One warning per flow (see limiting_flow), not one per evaluation.
        self.smallest_gap = min(self.smallest_gap, top.eigengap)
        self.degenerate += top.eigengap < GAP_TOL
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EigengapWarning)
            grad = grad_sharpness(self.problem, X, top=top, gap_tol=GAP_TOL)
        if self.log:
            grad = grad / top.sharpness
        direction = -self.coefficient * grad
        if self.tangent == "explicit":
            velocity = tangent_projector(self.problem, X, rank=self.rank) @ direction
        else:
            velocity = tangent_apply(
                self.problem, X, direction, tol=self.project_tol, project_options=self.options
            )
        self.evaluations += 1
        self.last_gap = top.eigengap
        return velocity, top.sharpness


def limiting_flow(
    problem,
    algorithm,
    X0,
    tau_end: float,
    *,
    taus=None,
    rtol: float = 1e-6,
    h0: float | None = None,
    max_steps: int = 100000,
    tangent: str = "auto",
    rank: int | None = None,
    project_tol: float = 1e-11,
    on_degenerate: str = "stop",
    project_options: dict | None = None,
    progress=None,
) -> LimitingFlow:
    """Integrate the limiting flow of Normalized GD or GD on sqrt(L) on Gamma.

    Parameters
    ----------
    problem : eosfast problem
        A loss with a manifold of minimisers (MSE-type); cross-entropy is rejected.
    algorithm : "ngd", "sqrt", NormalizedGD or SqrtGD
        NGD: dX/dtau = -1/4 P_X grad log lambda_1; sqrt: dX/dtau = -1/8 P_X grad lambda_1.
    X0 : ndarray (dim,)
        Start; projected onto Gamma first (Phi(X0); a no-op for points on Gamma).
    tau_end : float
        End time, tau = lr^2 x steps.
    taus : array, optional
        Times at which states are wanted; they are hit exactly (the solution also
        holds every accepted step, see :meth:`LimitingFlow.at`).
    rtol : float
        Local error tolerance per step, relative to max(1, |X|).
    tangent : "auto", "explicit" or "implicit"
        How P_X is applied: an explicit eigendecomposition (dims up to
        EXPLICIT_TANGENT_MAX_DIM under "auto") or central differences of Phi.
    rank : int, optional
        The normal-space dimension, checked against the spectrum (explicit only).
    max_steps : int
        Limit on accepted plus rejected steps (FlowConvergenceError beyond it).
    on_degenerate : "stop" or "continue"
        Where the relative eigengap (lambda_1 - lambda_2) / lambda_1 falls below
        ``GAP_TOL`` the flow of the theory is not defined (lambda_1 is not simple) and
        the integrator would crawl: "stop" (default) ends the solution at the last
        state with a simple lambda_1, with ``status = "eigengap_closed"`` and the time
        of the closing in ``info["gap_tau"]``; "continue" integrates on (an
        :class:`EigengapWarning` labels the result).
    project_options : dict, optional
        Keywords of every :func:`~eosfast.flow.project` besides ``tol`` (``rtol``,
        ``atol``, ``max_steps``, ``endgame``...).
    progress : bool or callable, optional
        ``progress(stage, done, total)``: first ("cost", 0, n) with n the projections
        per step (2, plus 4 with implicit tangents), then ("flow", percent of
        tau_end reached, 100) after every accepted step; True shows a tqdm bar (a plain
        line without tqdm).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> lf = flow.limiting_flow(problem, "ngd", np.array([1.0, 0.0]), tau_end=0.5)
    >>> lf.status, bool(lf.sharpness[-1] < lf.sharpness[0])  # the flow lowers lambda_1
    ('completed', True)
    """
    name = algorithm_name(algorithm)
    _check_scope(problem)
    tau_end = as_real(tau_end, "tau_end")
    if not (np.isfinite(tau_end) and tau_end > 0):
        raise ValueError(f"tau_end must be positive and finite, got {tau_end}")
    rtol = as_real(rtol, "rtol")
    if not (np.isfinite(rtol) and 0 < rtol < 1):
        raise ValueError(f"rtol must lie in (0, 1), got {rtol}")
    if h0 is not None:
        h0 = as_real(h0, "h0")
        if not (np.isfinite(h0) and h0 > 0):
            raise ValueError(f"h0 must be positive and finite, got {h0}")
    max_steps = as_positive_int(max_steps, "max_steps")
    if on_degenerate not in ON_DEGENERATE:
        raise ValueError(f"on_degenerate must be one of {ON_DEGENERATE}, got {on_degenerate!r}")
    if tangent == "auto":
        tangent = "explicit" if problem.dim <= EXPLICIT_TANGENT_MAX_DIM else "implicit"
    if tangent not in ("explicit", "implicit"):
        raise ValueError(f"tangent must be 'auto', 'explicit' or 'implicit', got {tangent!r}")
    if taus is None:
        stops = np.array([tau_end])
    else:
        stops = np.atleast_1d(as_float_array(taus, "taus"))
        if stops.ndim != 1 or not np.all(np.isfinite(stops)):
            raise ValueError("taus must be a 1-D array of finite times")
        stops = np.unique(stops)
    if stops.size and (stops[0] < 0 or stops[-1] > tau_end):
        raise ValueError("taus must lie in [0, tau_end]")
    stops = np.union1d(stops, [tau_end])

    options = _project_options(project_options)
    report = reporter(progress)
    report("cost", 0, 2 + (4 if tangent == "implicit" else 0))
    X = project(problem, as_vector(X0, problem.dim, "X0"), tol=project_tol, **options).point
    velocity = _Velocity(problem, name, tangent, rank, project_tol, options)
    w, lam = velocity(X)
    tau = 0.0
    speed = max(np.linalg.norm(w), 1e-300)
    h = h0 if h0 is not None else min(tau_end, 0.05 * max(1.0, np.linalg.norm(X)) / speed)
    times, states, sharp, vel = [0.0], [X], [lam], [w]
    steps = rejected = 0
    next_stop = 0
    stop = on_degenerate == "stop"
    status, gap_tau = "completed", None
    if stop and velocity.last_gap < GAP_TOL:
        status, gap_tau = "eigengap_closed", 0.0
    while status == "completed" and tau < tau_end * (1 - 1e-14):
        if steps + rejected >= max_steps:
            raise FlowConvergenceError(f"the limiting flow needed more than {max_steps} steps")
        while next_stop < stops.size and stops[next_stop] <= tau * (1 + 1e-14):
            next_stop += 1
        target = stops[min(next_stop, stops.size - 1)]
        h = min(h, target - tau)
        X_euler = project(problem, X + h * w, tol=project_tol, **options).point
        w_euler, _ = velocity(X_euler)
        X_heun = project(problem, X + 0.5 * h * (w + w_euler), tol=project_tol, **options).point
        error = np.linalg.norm(X_heun - X_euler) / (rtol * max(1.0, np.linalg.norm(X)))
        if error <= 1.0:
            tau = target if abs(tau + h - target) <= 1e-12 * max(1.0, target) else tau + h
            w_new, lam_new = velocity(X_heun)
            if stop and velocity.last_gap < GAP_TOL:
                status, gap_tau = "eigengap_closed", tau
                break
            X, w, lam = X_heun, w_new, lam_new
            times.append(tau)
            states.append(X)
            sharp.append(lam)
            vel.append(w)
            steps += 1
            report("flow", int(np.floor(100 * tau / tau_end)), 100)
        else:
            rejected += 1
        # Heun's local error is O(h^3): scale by error^(-1/3), with the usual safety bounds.
        h *= min(4.0, max(0.2, 0.9 * max(error, 1e-10) ** (-1.0 / 3.0)))
    if velocity.degenerate and not stop:
        warnings.warn(
            f"the top eigenvalue was (nearly) repeated at {velocity.degenerate} of "
            f"{velocity.evaluations} evaluations of the flow (smallest relative eigengap "
            f"{velocity.smallest_gap:.2e} < {GAP_TOL:g}): lambda_1 is not differentiable there "
            "and the theory's flow is not defined; treat the result past that point with care",
            EigengapWarning,
            stacklevel=2,
        )
    return LimitingFlow(
        algorithm=name,
        tau=np.array(times),
        states=np.array(states),
        sharpness=np.array(sharp),
        velocity=np.array(vel),
        steps=steps,
        rejected=rejected,
        status=status,
        info={
            "gap_tau": gap_tau,
            "tangent": tangent,
            "rtol": rtol,
            "velocity_evaluations": velocity.evaluations,
            "smallest_eigengap": velocity.smallest_gap,
            "degenerate_evaluations": velocity.degenerate,
        },
    )
