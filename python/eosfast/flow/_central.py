"""The central flow of gradient descent (Cohen, Damian, Talwalkar, Kolter & Lee, ICLR 2025).

In the time t = lr * (number of steps) (docs/theory.md, 10. The central flow of gradient
descent):

    dw/dt = -[grad L(w) + 1/2 grad_w <Sigma, H(w)>],   Sigma = U X U^T,

with U the orthonormal eigenvectors of the m Hessian eigenvalues at the edge 2/lr and
X >= 0 (k x k = m x m) the solution of the complementarity problem

    X >= 0,   -d/dt (U^T H U) >= 0,   <X, d/dt (U^T H U)> = 0,

d/dt (U^T H U)_ij = <g_ij, dw/dt>, g_ij = grad_w (u_i^T H(w) u_j) (``problem.third``, by
polarisation off the diagonal). Below the edge (m = 0) it is the gradient flow (the stable
flow). The predicted time average of the loss along GD is L(w) + 1/2 <Sigma, H(w)> =
L(w) + tr(X) / lr.

Integration: scipy's explicit Runge-Kutta pairs with error control (RK45 or DOP853) on
the current vector field, with the changes of the edge set handled as events: an
eigenvalue that crosses 2/lr within a step is located on the step's dense output and the
integration restarts there with one more eigenvalue at the edge; after every step on the
edge the eigenvalues that ended above 2/lr are pulled back onto it by one Newton step
along span{g_ij} (a projection, so the constraint does not drift); an eigenvalue that
falls below the edge by more than ``leave_tol`` leaves the set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import as_float_array, as_positive_int, as_real, as_vector
from ..errors import FlowConvergenceError
from ._progress import reporter
from ._sdcp import solve_sdcp

METHODS = ("RK45", "DOP853")

# The eigensolve asks for one more eigenvalue while the last one it found is above this
# fraction of 2/lr, so that every eigenvalue that could reach the edge within a step is seen
# (k adapts to the cluster near 2/lr).
NEAR_EDGE_FRACTION = 0.9


@dataclass
class CentralFlow:
    """A solution of the central flow of GD at learning rate ``lr``.

    Records at the requested ``times`` (t = lr * steps): ``states`` (n, dim), ``loss``
    L(w(t)), ``predicted_loss`` L(w) + tr(X) / lr (the predicted time-averaged loss of
    GD), ``sharpness`` (lambda_1), ``eigenvalues`` (n, k) the top eigenvalues (NaN-padded),
    ``edge`` the number m of eigenvalues at 2/lr, ``covariance`` the list of m x m
    matrices X (Sigma = U X U^T in the eigenvectors U at the edge; for m = 1, X = sigma^2,
    the variance of the oscillation along the top eigenvector). ``entry_time`` is the
    first time lambda_1 reached 2/lr (None if it never did). The work: ``hvps`` (inside
    the eigensolves), ``third_products`` (grad of u^T H u), ``grad_evals``,
    ``evaluations`` of the vector field and accepted Runge-Kutta ``steps``.
    """

    lr: float
    times: np.ndarray
    states: np.ndarray
    loss: np.ndarray
    predicted_loss: np.ndarray
    sharpness: np.ndarray
    eigenvalues: np.ndarray
    edge: np.ndarray
    covariance: list
    entry_time: float | None
    hvps: int = 0
    third_products: int = 0
    grad_evals: int = 0
    evaluations: int = 0
    steps: int = 0
    info: dict = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The edge of stability 2/lr."""
        return 2.0 / self.lr

    def predicted_loss_at(self, t) -> np.ndarray:
        """The predicted time-averaged loss at times t, by linear interpolation."""
        return np.interp(t, self.times, self.predicted_loss)

    def sharpness_at(self, t) -> np.ndarray:
        """lambda_1 at times t, by linear interpolation."""
        return np.interp(t, self.times, self.sharpness)


@dataclass
class _Point:
    """The vector field at one w, with what produced it."""

    w: np.ndarray
    loss: float
    grad: np.ndarray
    eigenvalues: np.ndarray
    vectors: np.ndarray
    m: int
    g: np.ndarray | None  # (m, m, dim): g_ij = grad (u_i^T H u_j)
    X: np.ndarray
    velocity: np.ndarray


def _pair_gradients(problem, w, U):
    """g_ij = grad_w (u_i^T H(w) u_j) for the columns of U; the off-diagonal ones by
    polarisation, 1/2 (third(u_i + u_j) - third(u_i) - third(u_j)): m (m + 1) / 2
    third-derivative products in all."""
    m = U.shape[1]
    g = np.empty((m, m, U.shape[0]))
    for i in range(m):
        g[i, i] = problem.third(w, U[:, i])
    for i in range(m):
        for j in range(i + 1, m):
            both = problem.third(w, U[:, i] + U[:, j])
            g[i, j] = g[j, i] = 0.5 * (both - g[i, i] - g[j, j])
    return g


class _Field:
    """Evaluates the central-flow vector field with warm-started eigensolves."""

    def __init__(self, problem, lr, eig_tol, counts, seed):
        self.problem = problem
        self.threshold = 2.0 / lr
        self.eig_tol = eig_tol
        self.counts = counts
        self.seed = seed
        self.previous = None
        self.m = 0

    def eigen(self, w, k):
        from .. import eigsh

        k = min(k, self.problem.dim)
        v0 = None
        if self.previous is not None:
            v0 = self.previous[:, :k]
            if v0.shape[1] < k:
                fresh = np.random.default_rng(self.seed).standard_normal((w.size, k - v0.shape[1]))
                v0 = np.hstack([v0, fresh])
        result = eigsh(
            self.problem.hessian(w), k=k, which="LA", tol=self.eig_tol, v0=v0, seed=self.seed
        )
        self.counts["hvps"] += int(result.matvecs)
        if not result.all_converged:
            raise FlowConvergenceError(
                f"the eigensolve of the central flow did not converge to tol={self.eig_tol:g} "
                f"(largest residual {float(np.max(result.residuals)):.2e}); loosen eig_tol"
            )
        self.previous = result.eigenvectors
        return result.eigenvalues, result.eigenvectors

    def __call__(self, w):
        m = self.m
        self.counts["evaluations"] += 1
        self.counts["grad"] += 1
        loss, grad = self.problem.loss_and_grad(w)
        k = m + 2
        values, vectors = self.eigen(w, k)
        while (
            values.size == k
            and k < self.problem.dim
            and values[-1] >= NEAR_EDGE_FRACTION * self.threshold
        ):
            k += 1
            values, vectors = self.eigen(w, k)
        if m == 0:
            return _Point(w, loss, grad, values, vectors, 0, None, np.zeros((0, 0)), -grad)
        g = _pair_gradients(self.problem, w, vectors[:, :m])
        self.counts["third"] += m * (m + 1) // 2
        gram = np.einsum("ijd,kld->ijkl", g, g)
        # d/dt (U^T H U) = -(alpha + 1/2 gram[X]) with alpha_ij = <g_ij, grad L>.
        alpha = g @ grad
        X = solve_sdcp(alpha, 0.5 * gram).X
        velocity = -(grad + 0.5 * np.einsum("ij,ijd->d", X, g))
        return _Point(w, loss, grad, values, vectors, m, g, X, velocity)


def _project(point, threshold):
    """One Newton step pulling the edge eigenvalues that are above 2/lr back onto it:
    delta = -sum_kl Y_kl g_kl with <g_ij, sum_kl Y_kl g_kl> = (lambda_i - 2/lr)_+ delta_ij."""
    m = point.m
    excess = np.maximum(point.eigenvalues[:m] - threshold, 0.0)
    if not excess.any():
        return None
    rows, cols = np.triu_indices(m)
    basis = point.g[rows, cols] * np.where(rows == cols, 1.0, 2.0)[:, None]
    M = point.g[rows, cols] @ basis.T
    target = np.where(rows == cols, excess[rows], 0.0)
    y = np.linalg.lstsq(M, target, rcond=None)[0]
    return point.w - y @ basis


def central_flow(
    problem,
    x0,
    lr: float,
    t_end: float,
    *,
    times=None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    method: str = "RK45",
    eig_tol: float = 1e-10,
    leave_tol: float = 1e-6,
    max_steps: int = 100000,
    seed: int = 0,
    progress=None,
) -> CentralFlow:
    """Integrate the central flow of gradient descent at learning rate ``lr``.

    The stable flow (gradient flow) while lambda_1 < 2/lr; once eigenvalues reach 2/lr,
    dw/dt = -[grad L + 1/2 grad <Sigma, H>] with Sigma = U X U^T solving the semidefinite
    complementarity problem of the eigenvalues at the edge (Cohen et al. 2025; see the
    module docstring and docs/theory.md). Time is t = lr * steps of GD.

    Parameters
    ----------
    problem : eosfast problem
        With exact ``hvp`` and ``third`` (a Callback with finite differences works, less
        accurately).
    x0 : ndarray (dim,)
    lr : float
        The learning rate of the GD run the flow describes (the edge is 2/lr).
    t_end : float
        End time, in units of lr * steps.
    times : array_like, optional
        Times in [0, t_end] at which to record (default: 101 equally spaced times); the
        states there come from the Runge-Kutta dense output.
    rtol, atol : float
        Error tolerances of the Runge-Kutta pair.
    method : "RK45" or "DOP853"
    eig_tol : float
        Tolerance of the eigensolves (``eosfast.eigsh``).
    leave_tol : float
        An eigenvalue leaves the edge set once below (1 - leave_tol) 2/lr.
    max_steps : int
        Limit on accepted Runge-Kutta steps (FlowConvergenceError beyond it).
    seed : int
        Seed of the first eigensolve's start vectors.
    progress : bool or callable, optional
        ``progress("central", percent of t_end reached, 100)``; True shows a bar.

    Returns
    -------
    CentralFlow

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Quadratic
    >>> problem = Quadratic(np.array([1.0, 3.0]))  # S = 3 < 2/lr = 4: the stable flow
    >>> cf = flow.central_flow(problem, np.ones(2), lr=0.5, t_end=1.0, times=[1.0])
    >>> bool(np.allclose(cf.states[-1], np.exp([-1.0, -3.0]), atol=1e-5)), cf.entry_time
    (True, None)
    """
    from scipy.integrate import DOP853, RK45

    x0 = as_vector(x0, problem.dim, "x0")
    lr = as_real(lr, "lr")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr}")
    t_end = as_real(t_end, "t_end")
    if not (np.isfinite(t_end) and t_end > 0):
        raise ValueError(f"t_end must be positive and finite, got {t_end}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    rtol, atol = as_real(rtol, "rtol"), as_real(atol, "atol")
    if not (0 < rtol < 1) or atol < 0:
        raise ValueError("rtol must lie in (0, 1) and atol must be >= 0")
    eig_tol = as_real(eig_tol, "eig_tol")
    if not eig_tol > 0:
        raise ValueError(f"eig_tol must be positive, got {eig_tol}")
    leave_tol = as_real(leave_tol, "leave_tol")
    if not 0 < leave_tol < 1:
        raise ValueError(f"leave_tol must lie in (0, 1), got {leave_tol}")
    max_steps = as_positive_int(max_steps, "max_steps")
    if times is None:
        stops = np.linspace(0.0, t_end, 101)
    else:
        stops = np.atleast_1d(as_float_array(times, "times"))
        if stops.ndim != 1 or not np.all(np.isfinite(stops)):
            raise ValueError("times must be a 1-D array of finite times")
        if stops.size == 0 or stops.min() < 0 or stops.max() > t_end:
            raise ValueError("times must be non-empty and lie in [0, t_end]")
        stops = np.unique(stops)
    stepper = RK45 if method == "RK45" else DOP853
    report = reporter(progress)
    counts = dict(hvps=0, third=0, grad=0, evaluations=0)
    field_ = _Field(problem, lr, eig_tol, counts, seed)
    threshold = field_.threshold

    records = []

    def record(t, w):
        p = field_(w)
        records.append((t, p))

    # The start may already be at or beyond the edge: count the eigenvalues there.
    start = field_(x0)
    field_.m = int(np.sum(start.eigenvalues >= threshold))
    entry_time = 0.0 if field_.m else None
    cache = {}

    def fun(t, y):
        key = y.tobytes()
        point = field_(y)
        cache.clear()
        cache[key] = point
        return point.velocity

    def restart(t, y, first_step):
        if first_step is not None:
            first_step = min(first_step, t_end - t)
        return stepper(
            fun, t, y, t_end, rtol=rtol, atol=atol, first_step=first_step, vectorized=False
        )

    solver = restart(0.0, x0, None)
    next_stop = 0
    while next_stop < stops.size and stops[next_stop] <= 0.0:
        record(0.0, x0)
        next_stop += 1
    steps = 0
    while solver.status == "running":
        if steps >= max_steps:
            raise FlowConvergenceError(f"the central flow needed more than {max_steps} steps")
        t_old = solver.t
        message = solver.step()
        if solver.status == "failed":
            raise FlowConvergenceError(f"the central flow integrator failed: {message}")
        steps += 1
        t_new, y_new = solver.t, solver.y
        point = cache.get(y_new.tobytes()) or field_(y_new)
        dense = solver.dense_output()
        m = field_.m
        # An eigenvalue beyond the edge set crossed 2/lr: locate the crossing, restart there.
        if point.eigenvalues.size > m and point.eigenvalues[m] > threshold:
            from scipy.optimize import brentq

            def gap(s, dense=dense, m=m):
                values, _ = field_.eigen(dense(s), m + 2)
                return values[m] - threshold

            t_hit = brentq(gap, t_old, t_new, xtol=1e-15 * max(1.0, t_new), rtol=1e-15)
            y_hit = dense(t_hit)
            while next_stop < stops.size and stops[next_stop] <= t_hit:
                record(stops[next_stop], dense(stops[next_stop]))
                next_stop += 1
            field_.m = m + 1
            entry_time = t_hit if entry_time is None else entry_time
            solver = restart(t_hit, y_hit, max(t_new - t_hit, 1e-12 * max(1.0, t_hit)))
            continue
        while next_stop < stops.size and stops[next_stop] <= t_new * (1 + 1e-15):
            record(stops[next_stop], dense(stops[next_stop]))
            next_stop += 1
        report("central", int(np.floor(100 * t_new / t_end)), 100)
        if m:
            # Eigenvalues that fell clearly below the edge leave the set (no constraint).
            leaving = int(np.sum(point.eigenvalues[:m] < threshold * (1 - leave_tol)))
            projected = _project(point, threshold)
            if leaving or projected is not None:
                field_.m = m - leaving if leaving else m
                y = y_new if projected is None or leaving else projected
                if solver.status == "running":
                    solver = restart(t_new, y, solver.h_abs)
    report("central", 100, 100)

    ts = np.array([t for t, _ in records])
    kmax = max(p.eigenvalues.size for _, p in records)
    eigenvalues = np.full((ts.size, kmax), np.nan)
    for n, (_, p) in enumerate(records):
        eigenvalues[n, : p.eigenvalues.size] = p.eigenvalues
    loss = np.array([p.loss for _, p in records])
    covariance = [p.X for _, p in records]
    # L + 1/2 <Sigma, H> with U^T H U = diag(lambda_1..m)
    variance_term = [0.5 * np.sum(np.diag(p.X) * p.eigenvalues[: p.m]) for _, p in records]
    predicted = loss + np.array(variance_term)
    return CentralFlow(
        lr=lr,
        times=ts,
        states=np.array([p.w for _, p in records]),
        loss=loss,
        predicted_loss=predicted,
        sharpness=eigenvalues[:, 0],
        eigenvalues=eigenvalues,
        edge=np.array([p.m for _, p in records]),
        covariance=covariance,
        entry_time=entry_time,
        hvps=counts["hvps"],
        third_products=counts["third"],
        grad_evals=counts["grad"],
        evaluations=counts["evaluations"],
        steps=steps,
        info={"method": method, "rtol": rtol, "atol": atol, "eig_tol": eig_tol},
    )


@dataclass
class CentralComparison:
    """A GD run against its central flow, on the run's record steps.

    ``steps`` are the centres of the averaging windows (``window`` GD steps each) and
    ``times`` = lr * steps; ``gd_loss`` is the GD loss averaged over each window,
    ``predicted_loss`` the central flow's prediction of it (L + tr(X) / lr) and
    ``flow_loss`` L at the flow's state; ``loss_error`` = |predicted - gd| / gd. With
    sharpness records in the run, ``sharpness_steps`` / ``gd_sharpness`` (the window
    average of the measured lambda_1) and ``flow_sharpness`` (lambda_1 of the flow).
    """

    window: int
    steps: np.ndarray
    times: np.ndarray
    gd_loss: np.ndarray
    predicted_loss: np.ndarray
    flow_loss: np.ndarray
    loss_error: np.ndarray
    sharpness_steps: np.ndarray
    gd_sharpness: np.ndarray
    flow_sharpness: np.ndarray


def _window_average(steps, values, window):
    """Averages over the consecutive records that span ``window`` steps, with their centres."""
    spacing = float(np.median(np.diff(steps))) if steps.size > 1 else 1.0
    count = max(1, int(round(window / spacing)))
    if steps.size < count:
        return np.empty(0), np.empty(0)
    kernel = np.ones(count) / count
    return (
        np.convolve(steps.astype(np.float64), kernel, mode="valid"),
        np.convolve(values, kernel, mode="valid"),
    )


def compare_central(flow: CentralFlow, trajectory, *, window: int = 50) -> CentralComparison:
    """Compare a GD trajectory with the central flow started from the same point.

    The GD loss (and the measured sharpness) is averaged over windows of ``window`` GD
    steps (as many consecutive records as span them); each average is compared at its
    centre step s, time t = lr * s, with the flow's predicted time-averaged loss and its
    lambda_1 (linear interpolation between the flow's recorded times, so record the flow
    densely enough). Windows whose centre lies beyond the flow's last time are dropped.

    Parameters
    ----------
    flow : CentralFlow
    trajectory : eosfast.Trajectory
        A GD run at ``flow.lr`` from the flow's first state (``eosfast.run``).
    window : int
        GD steps per averaging window (2 at least: GD oscillates with period 2).

    Returns
    -------
    CentralComparison

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast import flow
    >>> from eosfast.problems import Quadratic
    >>> problem = Quadratic(np.array([1.0, 3.0]))
    >>> cf = flow.central_flow(problem, np.ones(2), lr=0.01, t_end=1.0)
    >>> traj = eosfast.run(problem, eosfast.GD(lr=0.01), np.ones(2), steps=100)
    >>> cmp = flow.compare_central(cf, traj, window=10)
    >>> bool(cmp.loss_error.max() < 0.05)  # below the edge: GD follows gradient flow
    True
    """
    if not isinstance(flow, CentralFlow):
        raise TypeError(f"flow must be a CentralFlow, got {type(flow).__name__}")
    window = as_positive_int(window, "window", minimum=2)
    lr = flow.lr
    optimizer = (getattr(trajectory, "metadata", None) or {}).get("optimizer", {})
    schedule = optimizer.get("schedule", {})
    if not (
        optimizer.get("name") == "GD"
        and not optimizer.get("momentum")
        and schedule.get("kind") == "constant"
        and np.isclose(schedule.get("lr", np.nan), lr, rtol=1e-12, atol=0)
    ):
        raise ValueError(
            f"compare_central needs a run of plain GD at the flow's lr = {lr:g} (edge 2/lr = "
            f"{2.0 / lr:g}), got {optimizer or 'a trajectory without optimizer metadata'}"
        )
    steps = np.asarray(trajectory.steps)
    centres, gd_loss = _window_average(steps, np.asarray(trajectory.loss), window)
    if centres.size == 0:
        raise ValueError(f"the trajectory's records span fewer than window={window} steps")
    keep = lr * centres <= flow.times[-1] * (1 + 1e-12)
    centres, gd_loss = centres[keep], gd_loss[keep]
    times = lr * centres
    predicted = flow.predicted_loss_at(times)
    s_steps = np.asarray(getattr(trajectory, "sharpness_steps", np.empty(0)))
    s_values = np.asarray(getattr(trajectory, "sharpness", np.empty(0)), dtype=np.float64)
    s_centres, gd_sharp = _window_average(s_steps, s_values, window)
    keep_s = lr * s_centres <= flow.times[-1] * (1 + 1e-12)
    s_centres, gd_sharp = s_centres[keep_s], gd_sharp[keep_s]
    return CentralComparison(
        window=window,
        steps=centres,
        times=times,
        gd_loss=gd_loss,
        predicted_loss=predicted,
        flow_loss=np.interp(times, flow.times, flow.loss),
        loss_error=np.abs(predicted - gd_loss) / np.abs(gd_loss),
        sharpness_steps=s_centres,
        gd_sharpness=gd_sharp,
        flow_sharpness=flow.sharpness_at(lr * s_centres),
    )
