"""How closely a real trajectory follows the predicted limiting flow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import as_positive_int, as_real
from ..errors import FlowConvergenceError
from ..optimizers import OPTIMIZER_NAMES
from ._limiting import EXPLICIT_TANGENT_MAX_DIM, LimitingFlow, algorithm_name, limiting_flow
from ._manifold import _check_scope, _project_options, project, top_eigen
from ._progress import reporter

# The Phase-II onset may also require x - Phi(x) aligned with v_1: its component off v_1 at
# most alignment_tol * lr (the theory's oscillation has amplitude O(lr) along v_1 only). Off
# by default (inf): a 0.05 default made a 2k-parameter MLP wait beyond ceil(100 / lr) steps,
# and on the README's 113-parameter MLP from a GD fit the off-v_1 part stayed at 0.77 lr after
# 7500 NGD steps at lr 0.04 (0.5 never held), so the component off v_1 is itself O(lr) there.
ONSET_ALIGNMENT_TOL = float("inf")


@dataclass
class FlowComparison:
    """Per compared step t (tau = lr^2 t):

    - ``distance``: ||Phi(x_t) - X(tau)||
    - ``sharpness_projected``: lambda_1(Phi(x_t)); ``sharpness_flow``: lambda_1(X(tau))
    - ``alignment``: |<x_t - Phi(x_t), v_1>| / ||x_t - Phi(x_t)|| with v_1 at Phi(x_t)
      (the theory predicts x_t oscillates along v_1)
    - ``indicators``: the trajectory's EoS indicators (see :attr:`eosfast.Trajectory.eos`)
      at the sharpness measurement nearest to each step, if any were recorded, with
      their steps under ``"step"``.
    """

    steps: np.ndarray
    tau: np.ndarray
    distance: np.ndarray
    sharpness_projected: np.ndarray
    sharpness_flow: np.ndarray
    alignment: np.ndarray
    projections: np.ndarray
    indicators: dict = field(default_factory=dict)

    @property
    def relative_sharpness_error(self) -> np.ndarray:
        return np.abs(self.sharpness_projected - self.sharpness_flow) / np.abs(self.sharpness_flow)

    def table(self) -> str:
        """A plain-text table, one row per compared step."""
        head = (
            f"{'step':>10} {'tau':>10} {'|Phi(x)-X|':>12} {'lam1(Phi x)':>12} "
            f"{'lam1(X)':>12} {'rel.err':>9} {'align':>7}"
        )
        rows = [head, "-" * len(head)]
        for i in range(self.steps.size):
            rows.append(
                f"{self.steps[i]:>10d} {self.tau[i]:>10.4g} {self.distance[i]:>12.4e} "
                f"{self.sharpness_projected[i]:>12.6g} {self.sharpness_flow[i]:>12.6g} "
                f"{self.relative_sharpness_error[i]:>9.2e} {self.alignment[i]:>7.3f}"
            )
        return "\n".join(rows)

    def as_dict(self) -> dict:
        out = {
            name: getattr(self, name)
            for name in (
                "steps",
                "tau",
                "distance",
                "sharpness_projected",
                "sharpness_flow",
                "alignment",
            )
        }
        out["relative_sharpness_error"] = self.relative_sharpness_error
        out.update({f"indicator_{name}": value for name, value in self.indicators.items()})
        return out


def compare_iterates(
    problem,
    iterates,
    steps,
    lr: float,
    flow: LimitingFlow,
    *,
    step_offset: int = 0,
    project_tol: float = 1e-11,
    project_options: dict | None = None,
) -> FlowComparison:
    """Compare iterates x_t (rows of ``iterates`` at ``steps``) with the flow at
    tau = lr^2 (t - step_offset).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> lf = flow.limiting_flow(problem, "ngd", np.array([1.0, 0.0]), tau_end=0.5)
    >>> steps = [0, 10, 20]  # tau = lr^2 t with lr = 0.1
    >>> iterates = [lf.at(0.01 * t) + np.array([0.0, 0.01]) for t in steps]  # just off Gamma
    >>> cmp = flow.compare_iterates(problem, iterates, steps, 0.1, lf)
    >>> bool(cmp.distance.max() < 1e-3), np.round(cmp.alignment, 3).tolist()
    (True, [1.0, 1.0, 1.0])
    """
    iterates = np.asarray(iterates, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.int64)
    tau = lr * lr * (steps - step_offset)
    states = flow.at(tau)
    options = _project_options(project_options)
    n = steps.size
    distance, lam_proj, lam_flow, align = (np.empty(n) for _ in range(4))
    projections = np.empty_like(iterates)
    v_proj = v_flow = None
    for i in range(n):
        phi = project(problem, iterates[i], tol=project_tol, **options).point
        projections[i] = phi
        top_p = top_eigen(problem, phi, v0=v_proj)
        top_f = top_eigen(problem, states[i], v0=v_flow)
        v_proj, v_flow = top_p.vector, top_f.vector
        offset = iterates[i] - phi
        distance[i] = np.linalg.norm(phi - states[i])
        lam_proj[i], lam_flow[i] = top_p.sharpness, top_f.sharpness
        norm = np.linalg.norm(offset)
        align[i] = abs(offset @ top_p.vector) / norm if norm > 0 else np.nan
    return FlowComparison(steps, tau, distance, lam_proj, lam_flow, align, projections)


def _constant_lr(schedule: dict, owner: str) -> float:
    """The lr of a schedule's config (``Schedule.config()``), which must be constant."""
    if schedule.get("kind") != "constant":
        raise ValueError(
            "the limiting flows use tau = lr^2 t and need a constant learning rate; "
            f"this {owner}'s schedule is {schedule.get('kind')!r}"
        )
    return float(schedule["lr"])


def _nearest_indicators(trajectory, steps) -> dict:
    """The trajectory's EoS indicators at the sharpness measurement nearest to each step."""
    measured = trajectory.sharpness_steps
    if measured.size == 0:
        return {}
    right = np.clip(np.searchsorted(measured, steps), 1, measured.size - 1)
    left = right - 1
    if measured.size == 1:
        nearest = np.zeros(steps.size, dtype=np.int64)
    else:
        nearest = np.where(steps - measured[left] <= measured[right] - steps, left, right)
    out = {"step": measured[nearest]}
    out.update({name: np.asarray(v)[nearest] for name, v in trajectory.eos.items()})
    return out


def compare(
    problem,
    trajectory,
    flow: LimitingFlow,
    *,
    start_step: int = 0,
    project_tol: float = 1e-11,
    project_options: dict | None = None,
) -> FlowComparison:
    """How closely a trajectory of Normalized GD or GD on sqrt(L) follows a limiting flow.

    Every saved iterate x_t of ``trajectory`` (run it with ``save_iterates_every``)
    with ``t >= start_step`` and tau = lr^2 (t - start_step) inside the flow's time
    range is projected, Phi(x_t), and compared with X(tau): the distance, both
    sharpnesses, the alignment of x_t - Phi(x_t) with v_1 and the recorded EoS
    indicators (see :class:`FlowComparison`). The flow should start at
    Phi(x_{start_step}).

    Parameters
    ----------
    problem : eosfast problem
        The problem the trajectory ran on.
    trajectory : eosfast.Trajectory
        A run of ``NormalizedGD`` or ``SqrtGD`` (matching ``flow.algorithm``) with a
        constant learning rate and saved iterates.
    flow : LimitingFlow
        From :func:`eosfast.flow.limiting_flow`.
    start_step : int
        The step at which the flow's time starts (tau = 0).
    project_tol, project_options : float, dict
        ``tol`` and the other keywords (``rtol``, ``atol``, ``max_steps``,
        ``newton_max_iter``, ``endgame``...) of every :func:`~eosfast.flow.project`.

    Raises
    ------
    ValueError
        A different algorithm than the flow's, a learning-rate schedule, or no
        saved iterate in the flow's time range.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> import eosfast
    >>> x0 = np.array([1.0, 0.01])
    >>> ngd = eosfast.NormalizedGD(0.05)
    >>> traj = eosfast.run(problem, ngd, x0, steps=40, save_iterates_every=10)
    >>> lf = flow.limiting_flow(problem, "ngd", flow.project(problem, x0).point, tau_end=0.1)
    >>> cmp = flow.compare(problem, traj, lf)
    >>> cmp.steps.tolist()
    [0, 10, 20, 30, 40]
    """
    name = trajectory.metadata.get("optimizer", {}).get("name", "")
    if name not in {n.name for n in OPTIMIZER_NAMES if n.flow}:
        raise ValueError(
            f"compare needs a NormalizedGD or SqrtGD trajectory, got {name or 'unknown'}"
        )
    if algorithm_name(name) != flow.algorithm:
        raise ValueError(
            f"the trajectory ran {name} but the flow is the {flow.algorithm!r} limiting flow"
        )
    lr = _constant_lr(trajectory.metadata.get("optimizer", {}).get("schedule", {}), "trajectory")
    start_step = as_positive_int(start_step, "start_step", minimum=0)
    steps = trajectory.iterate_steps
    tau = lr * lr * (steps - start_step)
    keep = (steps >= start_step) & (tau <= flow.tau[-1] * (1 + 1e-12))
    if not np.any(keep):
        raise ValueError(
            "no saved iterate lies in the flow's time range: run the trajectory with "
            "save_iterates_every > 0 and a flow reaching tau = lr^2 (t - start_step)"
        )
    result = compare_iterates(
        problem,
        trajectory.iterates[keep],
        steps[keep],
        lr,
        flow,
        step_offset=start_step,
        project_tol=project_tol,
        project_options=project_options,
    )
    result.indicators = _nearest_indicators(trajectory, steps[keep])
    return result


@dataclass
class Prediction:
    """The result of :func:`predict_and_compare`.

    ``onset_step``: the step of the first run (``phase1``) at which the Phase-II
    rule held; ``onset_offset``: ``(along, off)``, the norms of the components of
    x_onset - Phi(x_onset) along v_1 and off it there; ``cost``: the up-front
    estimate (Phase-I step limit, Phase-II steps, projections); ``trajectory``: the
    second run, from x_onset, whose step t is step
    ``onset_step + t`` of the whole run; ``flow`` starts at Phi(x_onset);
    ``comparison`` compares them (tau = lr^2 t).
    """

    algorithm: str
    lr: float
    onset_step: int
    phase1: object
    trajectory: object
    flow: LimitingFlow
    comparison: FlowComparison
    onset_offset: tuple = (float("nan"), float("nan"))
    cost: dict = field(default_factory=dict)


def _offset_components(problem, x, project_tol: float, options: dict) -> tuple[float, float]:
    """Norms of x - Phi(x) along v_1(Phi(x)) and off it."""
    phi = project(problem, x, tol=project_tol, **options).point
    offset = x - phi
    v = top_eigen(problem, phi).vector
    along = float(offset @ v)
    return abs(along), float(np.linalg.norm(offset - along * v))


def _phase2_indicator(trajectory, name: str) -> np.ndarray:
    """|indicator - 1| per sharpness measurement: NGD 1/S_t + 1/S_{t+1};
    SqrtGD (sqrt(L_t) + sqrt(L_{t+1})) / (lr lambda_1 / 2)."""
    eos = trajectory.eos
    if name == "ngd":
        return np.abs(eos["inv_stableness_sum"] - 1.0)
    return np.abs(eos["sqrt_loss_sum"] / eos["sqrt_loss_reference"] - 1.0)


def predict_and_compare(
    problem,
    algorithm,
    x0,
    lr: float,
    tau_end: float,
    *,
    points: int = 20,
    window: int = 20,
    onset_tol: float = 0.05,
    max_phase1_steps: int | None = None,
    tracker=None,
    rtol: float = 1e-6,
    tangent: str = "auto",
    project_tol: float = 1e-11,
    alignment_tol: float = ONSET_ALIGNMENT_TOL,
    on_degenerate: str = "stop",
    project_options: dict | None = None,
    progress=None,
) -> Prediction:
    """Run Normalized GD or GD on sqrt(L) from ``x0`` and compare it with the theory.

    Phase I: the optimizer runs from ``x0``, measuring lambda_1 every step, until
    it oscillates around Gamma: ``window`` consecutive steps with

    - NGD: |1/S_t + 1/S_{t+1} - 1| < ``onset_tol`` (S_t = lr lambda_1 / ||grad L(x_t)||),
    - SqrtGD: |(sqrt(L_t) + sqrt(L_{t+1})) / (lr lambda_1 / 2) - 1| < ``onset_tol``,

    checked every ``window`` steps, and, once that holds, x_t - Phi(x_t) aligned with
    v_1: its component off v_1 at most ``alignment_tol * lr`` (the slow normal
    components have relaxed; otherwise they would shift Phi by an amount that does
    not fall with lr). The run stops there, at ``onset_step``.
    Phase II: the limiting flow starts at Phi(x_onset) and is integrated to
    ``tau_end``; the optimizer continues from x_onset for tau_end / lr^2 steps,
    saving ``points`` iterates (and EoS indicators) evenly, and :func:`compare`
    measures how closely Phi(x_t) follows X(lr^2 t).

    Parameters
    ----------
    problem : eosfast problem
        A loss with a manifold of minimisers (MSE-type).
    algorithm : "ngd", "sqrt", NormalizedGD or SqrtGD
        An optimizer instance gives its own learning rate and ``loss_min``;
        with a name, ``lr`` is used (``loss_min = 0``).
    x0 : ndarray (dim,)
    lr : float
        The learning rate (ignored for an optimizer instance, whose lr must be constant).
    tau_end : float
        The length of Phase II in tau = lr^2 t.
    points : int
        About how many iterates of Phase II are saved and compared: every
        ``max(1, steps // points)`` steps, with ``steps = round(tau_end / lr^2)``.
    window : int
        The Phase-II rule must hold for this many consecutive steps, checked
        every ``window`` steps.
    onset_tol : float
        The tolerance of the Phase-II rule on the indicator (see above).
    max_phase1_steps : int, optional
        Default ``ceil(100 / lr)`` (Phase I takes Theta(1/lr) steps).
    tracker : eosfast.SharpnessTracker, optional
        Used for Phase I (default ``SharpnessTracker(k=1, tol=1e-8)``).
    rtol : float
        Relative tolerance of the limiting flow's integrator (see
        :func:`limiting_flow`).
    tangent : str
        How the flow applies the tangent projector P_X, passed to
        :func:`limiting_flow` (``"auto"`` chooses by the problem's size).
    project_tol : float
        The ``||grad L||`` tolerance of the projections Phi: of x_onset, and of
        each compared iterate (see :func:`project`).
    alignment_tol : float
        The alignment part of the onset rule; the default ``inf`` disables it (it
        costs one projection per check once the indicator holds).
    on_degenerate : "stop" or "continue"
        Passed to :func:`limiting_flow`: where lambda_1 stops being simple the flow
        (and the comparison) end there by default.
    project_tol, project_options : float, dict
        ``tol`` and the other keywords of every :func:`~eosfast.flow.project`
        (``rtol``, ``atol``, ``max_steps``, ``newton_max_iter``, ``endgame``...).
    progress : bool or callable, optional
        ``progress(stage, done, total)`` through the stages "phase1" (steps, every
        ``window`` steps), "phase2" (steps), "flow" (percent of tau_end, every accepted
        step) and "compare" (projections); True shows tqdm bars when tqdm is installed
        (plain lines on stderr otherwise). The up-front cost estimate,
        :attr:`Prediction.cost` (Phase-I step limit, tau_end / lr^2 Phase-II steps,
        projections of the comparison and per flow step), is reported first (stage
        "cost", total = Phase-I limit + Phase-II steps).

    Returns
    -------
    Prediction
        ``onset_step`` and ``onset_offset`` (where Phase II started, and how far
        x_onset is from Phi(x_onset) along v_1 and off it), ``phase1`` (the run
        up to the onset), ``trajectory`` (Phase II), ``flow`` (the limiting flow
        from Phi(x_onset)), ``comparison`` (a :class:`FlowComparison` of the two;
        ``comparison.table()`` prints it) and ``cost``.

    Raises
    ------
    eosfast.FlowConvergenceError
        If the Phase-II rule does not hold within ``max_phase1_steps``.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import flow
    >>> from eosfast.problems import Valley2D
    >>> problem = Valley2D()  # L = (1 + x^2) y^2, Gamma = {y = 0}, lambda_1 = 2 (1 + x^2) on it
    >>> pred = flow.predict_and_compare(problem, "ngd", np.array([1.0, 0.3]), lr=0.05, tau_end=0.05)
    >>> pred.onset_step > 0, pred.flow.status
    (True, 'completed')
    >>> bool(pred.comparison.relative_sharpness_error.max() < 0.05)
    True
    """
    from .. import NormalizedGD, SharpnessTracker, SqrtGD, run

    name = algorithm_name(algorithm)
    _check_scope(problem)
    if isinstance(algorithm, str):
        lr = as_real(lr, "lr")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        optimizer = NormalizedGD(lr) if name == "ngd" else SqrtGD(lr)
    else:
        optimizer = algorithm
        lr = _constant_lr(optimizer.schedule.config(), "optimizer")
    tau_end = as_real(tau_end, "tau_end")
    if not tau_end > 0:
        raise ValueError(f"tau_end must be positive, got {tau_end}")
    points = as_positive_int(points, "points")
    window = as_positive_int(window, "window")
    onset_tol = as_real(onset_tol, "onset_tol")
    if max_phase1_steps is None:
        max_phase1_steps = int(np.ceil(100.0 / lr))
    max_phase1_steps = as_positive_int(max_phase1_steps, "max_phase1_steps")
    if tracker is None:
        tracker = SharpnessTracker(k=1, tol=1e-8)
    alignment_tol = float(alignment_tol)
    if not alignment_tol > 0:
        raise ValueError(f"alignment_tol must be positive, got {alignment_tol}")
    options = _project_options(project_options)
    report = reporter(progress)
    steps = max(1, int(round(tau_end / (lr * lr))))
    every = max(1, steps // points)
    resolved = tangent
    if tangent == "auto":
        resolved = "explicit" if problem.dim <= EXPLICIT_TANGENT_MAX_DIM else "implicit"
    cost = {
        "phase1_max_steps": max_phase1_steps,
        "phase2_steps": steps,
        "projections": steps // every + 1,
        # Euler and Heun points, plus 2 central differences per velocity when implicit.
        "flow_projections_per_step": 2 + (4 if resolved == "implicit" else 0),
    }
    report("cost", 0, cost["phase1_max_steps"] + cost["phase2_steps"])
    report("phase1", 0, max_phase1_steps)
    onset = {"offset": (float("nan"), float("nan"))}

    def phase2_reached(info) -> bool:
        report("phase1", info.step, max_phase1_steps)
        values = _phase2_indicator(info.trajectory(), name)
        recent = values[np.isfinite(values)][-window:]
        if not (recent.size == window and bool(np.all(recent < onset_tol))):
            return False
        if not np.isfinite(alignment_tol):
            return True
        try:
            along, off = _offset_components(problem, info.x, project_tol, options)
        except FlowConvergenceError:
            return False
        onset["offset"] = (along, off)
        return off <= alignment_tol * lr

    phase1 = run(
        problem,
        optimizer,
        x0,
        max_phase1_steps,
        sharpness_every=1,
        tracker=tracker,
        callback=phase2_reached,
        callback_every=window,
    )
    if phase1.status != "stopped_by_callback":
        values = _phase2_indicator(phase1, name)
        last = values[np.isfinite(values)][-window:]
        raise FlowConvergenceError(
            f"{type(optimizer).__name__} did not settle into Phase II within "
            f"{max_phase1_steps} steps (run status {phase1.status!r}; the last |indicator - 1| "
            f"values: {np.array2string(last[-5:], precision=3)}, wanted < {onset_tol:g} over "
            f"{window} steps, and x - Phi(x) off v_1 at most alignment_tol * lr = "
            f"{alignment_tol * lr:.3g}; last (along, off) = {onset['offset']}): raise "
            "max_phase1_steps or start nearer to the minimisers"
        )
    report("phase1", phase1.step, max_phase1_steps)
    report("phase2", 0, steps)
    trajectory = run(
        problem,
        optimizer,
        phase1.x_final,
        steps,
        sharpness_every=every,
        tracker=tracker,
        record_every=every,
        save_iterates_every=every,
    )
    report("phase2", steps, steps)
    taus = lr * lr * trajectory.iterate_steps
    flow = limiting_flow(
        problem,
        name,
        phase1.x_final,
        float(taus[-1]),
        taus=taus,
        rtol=rtol,
        tangent=tangent,
        project_tol=project_tol,
        on_degenerate=on_degenerate,
        project_options=options,
        progress=report,
    )
    comparison = compare(
        problem, trajectory, flow, project_tol=project_tol, project_options=options
    )
    report("compare", comparison.steps.size, cost["projections"])
    return Prediction(
        name, lr, phase1.step, phase1, trajectory, flow, comparison, onset["offset"], cost
    )
