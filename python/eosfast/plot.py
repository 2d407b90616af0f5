"""Figures of Edge of Stability experiments (matplotlib, no pyplot state, Agg rendering).

Every function takes plain numpy arrays (or sequences of dicts of them) and returns a
:class:`matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG and SVG. The figures are
built on ``matplotlib.figure.Figure`` directly, so they never touch the user's pyplot backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _core

__all__ = [
    "flow_tracking",
    "loss_and_sharpness",
    "multi_lr",
    "ngd_indicators",
    "plot_run",
    "save_figure",
    "spectral_density",
    "sqrt_indicators",
]

_WIDTH = 6.4


def _figure(nrows: int, ncols: int = 1, height: float = 2.4, width: float = _WIDTH):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex="col")
    return fig, axes


def save_figure(fig, stem, formats=("png", "svg"), dpi: int = 120) -> list[Path]:
    """Write ``fig`` to ``stem.png`` and ``stem.svg`` (creating the folder); return the paths.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.plot import loss_and_sharpness, save_figure
    >>> fig = loss_and_sharpness(np.arange(5), np.exp(-np.arange(5.0)))
    >>> [p.name for p in save_figure(fig, os.path.join(tempfile.mkdtemp(), "loss"))]
    ['loss.png', 'loss.svg']
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, dpi=dpi, metadata=_metadata(fmt))
        paths.append(path)
    return paths


def _metadata(fmt: str) -> dict:
    # fixed metadata: the files do not change when nothing else does
    if fmt == "svg":
        return {"Date": None}
    if fmt == "png":
        return {"Software": "eosfast"}
    return {}


def _positive(values) -> np.ndarray:
    """Values for a log axis: non-positive entries become NaN (gaps) rather than errors."""
    values = np.asarray(values, dtype=np.float64).copy()
    values[~(values > 0)] = np.nan
    return values


def loss_and_sharpness(
    steps,
    loss,
    sharpness_steps=None,
    sharpness=None,
    threshold=None,
    *,
    title: str | None = None,
    loss_label: str = "training loss",
):
    """Loss (log scale) and sharpness against step, with the stability threshold.

    Parameters
    ----------
    steps, loss : array_like, shape (n,)
        The recorded loss and its steps.
    sharpness_steps : array_like, shape (m,), optional
    sharpness : array_like, shape (m,) or (m, k), optional
        The top eigenvalue(s) of the Hessian; column 0 is drawn solid, others thinner.
    threshold : float or array_like of shape (m,), optional
        The optimizer's stability threshold (2/lr for GD), drawn dashed.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.plot import loss_and_sharpness
    >>> steps = np.arange(100)
    >>> fig = loss_and_sharpness(
    ...     steps, np.exp(-steps / 30), steps[::10], np.linspace(1.0, 4.0, 10), threshold=4.0
    ... )
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['training loss', 'sharpness']
    """
    have_sharpness = sharpness is not None and len(np.asarray(sharpness)) > 0
    fig, axes = _figure(2 if have_sharpness else 1)
    ax = axes[0, 0]
    steps_arr, loss_pos = np.asarray(steps), _positive(loss)
    if np.any(np.diff(loss_pos) > 0):
        # An oscillating loss (the period-2 orbit of NGD, EoS spikes) fills a band: draw it faint
        # and its running minimum on top, so that the trend stays visible.
        ax.plot(steps_arr, loss_pos, lw=0.6, color="C0", alpha=0.35, label="loss")
        ax.plot(
            steps_arr, np.fmin.accumulate(loss_pos), lw=1.2, color="C0", label="running minimum"
        )
        ax.legend(loc="upper right", fontsize="small", frameon=False)
    else:
        ax.plot(steps_arr, loss_pos, lw=1.0, color="C0")
    ax.set_yscale("log")
    ax.set_ylabel(loss_label)
    if title:
        ax.set_title(title)
    if have_sharpness:
        ax = axes[1, 0]
        s_steps = np.asarray(sharpness_steps)
        eig = np.asarray(sharpness, dtype=np.float64)
        eig = eig[:, None] if eig.ndim == 1 else eig
        for j in range(eig.shape[1]):
            label = {0: "sharpness $\\lambda_1$", 1: "$\\lambda_{2..k}$"}.get(j)
            ax.plot(
                s_steps,
                eig[:, j],
                lw=1.2 if j == 0 else 0.6,
                color="C1" if j == 0 else "C7",
                label=label,
            )
        # A threshold that changes with the step (2/lr_t of NGD and GD on sqrt(L), which
        # alternates with the oscillation) is only known at the measured steps.
        _threshold_line(ax, s_steps, threshold, "C3", varying_label="threshold at measured steps")
        ax.set_ylabel("sharpness")
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    axes[-1, 0].set_xlabel("step")
    return fig


def _threshold_line(ax, steps, threshold, color, label="threshold", varying_label=None):
    if threshold is None:
        return
    threshold = np.asarray(threshold, dtype=np.float64)
    if threshold.ndim == 0 or np.allclose(threshold, threshold.flat[0], rtol=1e-12, atol=0):
        ax.axhline(float(threshold.flat[0]), ls="--", lw=1.0, color=color, label=label)
    else:
        ax.plot(steps, threshold, ls="--", lw=0.8, color=color, label=varying_label or label)


def multi_lr(runs, *, title: str | None = "GD at the Edge of Stability"):
    """The classic panel of Cohen et al. (2021): loss and sharpness for several learning rates.

    Parameters
    ----------
    runs : sequence of dict
        One dict per learning rate with keys ``lr``, ``steps``, ``loss``, ``sharpness_steps``,
        ``sharpness`` (shape (m,) or (m, k); column 0 is drawn) and optionally ``threshold``
        (default 2 / lr) and ``label``.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.plot import multi_lr
    >>> steps = np.arange(50)
    >>> runs = [
    ...     {"lr": lr, "steps": steps, "loss": np.exp(-lr * steps), "sharpness_steps": steps[::5],
    ...      "sharpness": np.full(10, 1.9 / lr)}
    ...     for lr in (0.1, 0.2)
    ... ]
    >>> len(multi_lr(runs).axes)
    2
    """
    fig, axes = _figure(2, height=2.6)
    top, bottom = axes[0, 0], axes[1, 0]
    for i, run in enumerate(runs):
        color = f"C{i}"
        label = run.get("label", f"lr = {run['lr']:g}")
        top.plot(np.asarray(run["steps"]), _positive(run["loss"]), lw=1.0, color=color, label=label)
        eig = np.asarray(run["sharpness"], dtype=np.float64)
        eig = eig[:, 0] if eig.ndim == 2 else eig
        bottom.plot(np.asarray(run["sharpness_steps"]), eig, lw=1.2, color=color)
        threshold = run.get("threshold", 2.0 / run["lr"])
        _threshold_line(bottom, np.asarray(run["sharpness_steps"]), threshold, color, label=None)
    top.set_yscale("log")
    top.set_ylabel("training loss")
    top.legend(fontsize="small", frameon=False)
    if title:
        top.set_title(title)
    bottom.set_ylabel("sharpness (dashed: 2 / lr)")
    bottom.set_xlabel("step")
    return fig


def ngd_indicators(
    steps,
    inverse_stableness_sum,
    sqrt_loss_sum,
    sqrt_loss_target,
    *,
    lr: float | None = None,
    title: str | None = "Normalized GD",
):
    """The EoS indicators of Normalized GD (Arora, Li & Panigrahi 2022).

    Parameters
    ----------
    steps : array_like, shape (m,)
        Steps of the sharpness measurements.
    inverse_stableness_sum : array_like, shape (m,)
        1/S_t + 1/S_{t+1} with S_t = lr_t lambda_1; about 1 at the edge of stability.
    sqrt_loss_sum, sqrt_loss_target : array_like, shape (m,)
        sqrt(L_t) + sqrt(L_{t+1}) and its predicted value lr sqrt(lambda_1 / 2).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.plot import ngd_indicators
    >>> steps = np.arange(0, 100, 10)
    >>> fig = ngd_indicators(steps, np.ones(10), np.full(10, 0.11), np.full(10, 0.1), lr=0.1)
    >>> len(fig.axes)
    2
    """
    fig, axes = _figure(2)
    steps = np.asarray(steps)
    ax = axes[0, 0]
    ax.plot(steps, inverse_stableness_sum, lw=1.0, color="C0", label="$1/S_t + 1/S_{t+1}$")
    ax.axhline(1.0, ls="--", lw=1.0, color="C3", label="1 (edge of stability)")
    ax.set_ylabel("inverse stableness")
    ax.legend(fontsize="small", frameon=False)
    if title:
        ax.set_title(title + (f" (lr = {lr:g})" if lr is not None else ""))
    _sqrt_panel(
        axes[1, 0], steps, sqrt_loss_sum, sqrt_loss_target, "$\\eta\\,\\sqrt{\\lambda_1 / 2}$"
    )
    return fig


def sqrt_indicators(
    steps,
    sqrt_loss_sum,
    sqrt_loss_target,
    stableness=None,
    *,
    lr: float | None = None,
    title: str | None = "GD on $\\sqrt{L}$",
):
    """The EoS indicators of GD on sqrt(L): sqrt(L_t) + sqrt(L_{t+1}) against lr lambda_1 / 2.

    ``stableness`` (optional, shape (m,)): lr_eff x lambda_1 of the steps on L, drawn against 2.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.plot import sqrt_indicators
    >>> steps = np.arange(0, 100, 10)
    >>> fig = sqrt_indicators(steps, np.full(10, 0.2), np.full(10, 0.2), np.full(10, 2.0), lr=0.1)
    >>> len(fig.axes)
    2
    """
    have_stableness = stableness is not None
    fig, axes = _figure(2 if have_stableness else 1)
    steps = np.asarray(steps)
    _sqrt_panel(axes[0, 0], steps, sqrt_loss_sum, sqrt_loss_target, "$\\eta\\,\\lambda_1 / 2$")
    if title:
        axes[0, 0].set_title(title + (f" (lr = {lr:g})" if lr is not None else ""))
    if have_stableness:
        ax = axes[1, 0]
        ax.plot(steps, stableness, lw=1.0, color="C0", label="$S_t = \\eta_t \\lambda_1$")
        ax.axhline(2.0, ls="--", lw=1.0, color="C3", label="2")
        ax.set_ylabel("stableness on L")
        ax.legend(fontsize="small", frameon=False)
        axes[0, 0].set_xlabel("")  # the shared step axis is labelled once, at the bottom
        ax.set_xlabel("step")
    return fig


def _sqrt_panel(ax, steps, value, target, target_label):
    ax.plot(steps, value, lw=1.0, color="C0", label="$\\sqrt{L_t} + \\sqrt{L_{t+1}}$")
    ax.plot(steps, target, ls="--", lw=1.0, color="C3", label=target_label)
    ax.set_ylabel("$\\sqrt{L}$ indicator")
    ax.set_xlabel("step")
    ax.legend(fontsize="small", frameon=False)


def flow_tracking(
    tau,
    sharpness_projected,
    sharpness_flow,
    distance,
    alignment=None,
    *,
    title: str | None = "trajectory against the limiting flow",
):
    """How a trajectory follows the predicted limiting flow (``eosfast.flow.compare``).

    Parameters
    ----------
    tau : array_like, shape (m,)
        tau = lr^2 t of the compared steps.
    sharpness_projected, sharpness_flow : array_like, shape (m,)
        lambda_1(Phi(x_t)) (markers) and lambda_1(X(tau)) of the flow (line).
    distance : array_like, shape (m,)
        ||Phi(x_t) - X(tau)||, drawn on a log axis.
    alignment : array_like, shape (m,), optional
        |cos| of the angle between x_t - Phi(x_t) and v_1, drawn in a third panel.

    For a :class:`eosfast.flow.FlowComparison` ``c``:
    ``flow_tracking(c.tau, c.sharpness_projected, c.sharpness_flow, c.distance, c.alignment)``.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.plot import flow_tracking
    >>> tau = np.linspace(0.0, 1.0, 11)
    >>> fig = flow_tracking(tau, 5.0 - tau, 5.0 - tau, np.full(11, 1e-4))
    >>> len(fig.axes)
    2
    """
    fig, axes = _figure(3 if alignment is not None else 2)
    tau = np.asarray(tau, dtype=np.float64)
    ax = axes[0, 0]
    ax.plot(tau, sharpness_flow, lw=1.2, color="C3", label="flow: $\\lambda_1(X(\\tau))$")
    ax.plot(tau, sharpness_projected, "o", ms=3, color="C0", label="GD: $\\lambda_1(\\Phi(x_t))$")
    ax.set_ylabel("sharpness on $\\Gamma$")
    ax.legend(fontsize="small", frameon=False)
    if title:
        ax.set_title(title)
    ax = axes[1, 0]
    ax.plot(tau, _positive(distance), "o-", ms=3, lw=1.0, color="C0")
    ax.set_yscale("log")
    ax.set_ylabel("$\\|\\Phi(x_t) - X(\\tau)\\|$")
    if alignment is not None:
        ax = axes[2, 0]
        ax.plot(tau, alignment, "o-", ms=3, lw=1.0, color="C2")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("$|\\cos(x_t - \\Phi(x_t), v_1)|$")
    axes[-1, 0].set_xlabel("$\\tau = \\eta^2 t$")
    return fig


def spectral_density(
    grid,
    density,
    *,
    eigenvalues=None,
    threshold=None,
    log: bool = True,
    title: str | None = "Hessian spectral density",
    label=None,
):
    """A Hessian spectral density (e.g. from ``eosfast.spectral_density``).

    Parameters
    ----------
    grid, density : array_like, shape (g,) or sequences of them
        The density on a grid; pass lists of arrays (and ``label`` a list) to overlay several.
    eigenvalues : array_like, optional
        Top eigenvalues, drawn as ticks.
    threshold : float, optional
        The stability threshold (2/lr), drawn dashed.
    log : bool
        Logarithmic density axis (the spectrum's bulk and outliers differ by decades).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.plot import spectral_density
    >>> grid = np.linspace(-1.0, 5.0, 200)
    >>> fig = spectral_density(grid, np.exp(-(grid**2)), eigenvalues=[4.0], threshold=4.5)
    >>> len(fig.axes)
    1
    """
    fig, axes = _figure(1, height=3.0)
    ax = axes[0, 0]
    grids = grid if isinstance(grid, (list, tuple)) else [grid]
    densities = density if isinstance(density, (list, tuple)) else [density]
    labels = label if isinstance(label, (list, tuple)) else [label] * len(grids)
    for i, (g, d) in enumerate(zip(grids, densities, strict=True)):
        ax.plot(
            np.asarray(g),
            _positive(d) if log else np.asarray(d),
            lw=1.0,
            color=f"C{i}",
            label=labels[i],
        )
    if log:
        ax.set_yscale("log")
    if eigenvalues is not None:
        for ev in np.atleast_1d(np.asarray(eigenvalues, dtype=np.float64)):
            ax.axvline(ev, ymax=0.08, color="k", lw=1.0)
    if threshold is not None:
        ax.axvline(float(threshold), ls="--", lw=1.0, color="C3", label="threshold")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    if any(lab is not None for lab in labels) or threshold is not None:
        ax.legend(fontsize="small", frameon=False)
    return fig


def plot_run(run_dir) -> list[Path]:
    """Draw the figures of a run folder from its records (works while the run is going).

    Examples
    --------
    >>> import os, tempfile
    >>> from eosfast.config import parse_config
    >>> from eosfast.experiment import run_experiment
    >>> from eosfast.plot import plot_run
    >>> config = parse_config({"optimizer": {"type": "gd", "lr": 0.05}, "run": {"steps": 20},
    ...                        "data": {"name": "digits", "n_samples": 50},
    ...                        "output": {"figures": False}})
    >>> run_dir = os.path.join(tempfile.mkdtemp(), "run")
    >>> _ = run_experiment(config, run_dir, progress=False)
    >>> sorted(p.name for p in plot_run(run_dir))
    ['loss_sharpness.png', 'loss_sharpness.svg']
    """
    from .records_file import read_attrs, read_records
    from .run_folder import RunDir

    rd = RunDir(run_dir)
    if not rd.records.is_file():
        raise FileNotFoundError(f"{rd.path} has no {rd.records.name}: not a run folder")
    records = read_records(rd.records)
    attrs = read_attrs(rd.records)
    opt, lr = attrs.get("optimizer", "gd"), float(attrs.get("lr", np.nan))
    steps, sharp = records["steps"], records["sharpness"]
    titles = {n.config: n.title for n in _core.OPTIMIZER_NAMES if n.config}
    title = f"{titles.get(opt, opt)}, lr = {lr:g}"
    paths = []
    fig = loss_and_sharpness(
        steps["step"],
        steps["loss"],
        sharp["step"],
        sharp["eigenvalues"],
        threshold=sharp["threshold"],
        title=title,
    )
    paths += save_figure(fig, rd.figures / "loss_sharpness")
    if opt == "ngd" and len(sharp["step"]):
        fig = ngd_indicators(
            sharp["step"],
            sharp["inv_stableness_sum"],
            sharp["sqrt_loss_sum"],
            sharp["sqrt_loss_reference"],
            lr=lr,
        )
        paths += save_figure(fig, rd.figures / "ngd_indicators")
    if opt == "sqrtgd" and len(sharp["step"]):
        at = np.searchsorted(steps["step"], sharp["step"]).clip(0, len(steps["step"]) - 1)
        stableness = steps["effective_lr"][at] * sharp["eigenvalues"][:, 0]
        fig = sqrt_indicators(
            sharp["step"], sharp["sqrt_loss_sum"], sharp["sqrt_loss_reference"], stableness, lr=lr
        )
        paths += save_figure(fig, rd.figures / "sqrt_indicators")
    return paths
