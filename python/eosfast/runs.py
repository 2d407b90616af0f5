"""One experiment from a configuration into a run folder: run, record, resume, summarise, plot.

Uses the public API only: ``eosfast.run`` / ``eosfast.resume`` with a checkpoint in the run
folder, its callback to append records to the HDF5 file every ``flush_every`` steps and its
progress hook for the progress bar.
"""

from __future__ import annotations

import datetime
import shutil
import time
from pathlib import Path

import numpy as np

from . import _signals
from .config import Config, ConfigError, load_config
from .optimizers import OPTIMIZER_NAMES
from .rundir import FINISHED, DamagedFileError, RunDir, read_attrs, read_records, write_records

STREAM = "stream"  # the runner's own record files while the run goes (removed at the end)

# Every dataset of records.h5: (description, units), written as its HDF5 attributes.
DATASETS = {
    "steps/step": ("step t of each record (every record_every steps and the last)", "steps"),
    "steps/loss": ("L(x_t), the training loss", "loss"),
    "steps/grad_norm": ("|grad L(x_t)|, Euclidean norm", "loss per parameter unit"),
    "steps/step_norm": ("|x_{t+1} - x_t| (NaN at the last step)", "parameter units"),
    "steps/lr": ("the scheduled learning rate lr_t", "optimizer's own"),
    "steps/effective_lr": ("the lr of the equivalent GD step on L", "parameter units^2 per loss"),
    "steps/objective": ("what the optimizer descends: L, sqrt(L - loss_min), ...", "objective"),
    "sharpness/step": ("steps of the sharpness measurements", "steps"),
    "sharpness/hvps": ("Hessian-vector products spent per measurement", "HVPs"),
    "sharpness/threshold": (
        "the optimizer's stability threshold on lambda_1 (2/lr for GD)",
        "loss per parameter unit^2",
    ),
    "sharpness/ratio": ("eigenvalues[:, 0] / threshold (>= 1: at or past the edge)", "1"),
    "sharpness/inv_stableness_sum": ("NGD: 1/S_t + 1/S_{t+1}, S = lr_eff lambda_1", "1"),
    "sharpness/sqrt_loss_sum": ("sqrt(L_t - L_min) + sqrt(L_{t+1} - L_min)", "sqrt(loss)"),
    "sharpness/sqrt_loss_reference": (
        "Phase-II value of sqrt_loss_sum: lr sqrt(lambda_1/2) (NGD), lr lambda_1/2 (sqrt-GD)",
        "sqrt(loss)",
    ),
    "sharpness/eigenvalues": (
        "top-k eigenvalues of grad^2 L(x_t), descending",
        "loss per parameter unit^2",
    ),
    "sharpness/step_overlap": ("cosines of x_{t+1} - x_t with the eigenvectors", "1"),
    "sharpness/grad_overlap": ("cosines of grad L(x_t) with the eigenvectors", "1"),
    "iterates/step": ("steps of the saved iterates", "steps"),
    "iterates/x": ("the iterate x_t", "parameter units"),
    "x_final": ("the final iterate", "parameter units"),
}
_SCALARS = ("loss", "grad_norm", "step_norm", "lr", "effective_lr", "objective")
_SHARP_BLOCKS = ("eigenvalues", "step_overlap", "grad_overlap")
_OPTIMIZER_NAMES = {n.config: n.title for n in OPTIMIZER_NAMES if n.config}
# rewriting records.h5 may take at most this share of the run's time (the rest waits)
_RECORD_SHARE = 0.05


def build_problem(config: Config):
    """The configuration's problem (an ``eosfast.problems.MLP`` on its data)."""
    import eosfast

    from .data import load_data

    p = config["problem"]
    try:
        X, Y = load_data(config["data"])
        return eosfast.problems.MLP(
            X,
            Y,
            hidden=tuple(p["hidden"]),
            activation=p["activation"],
            loss=p["loss"],
            bias=p["bias"],
        )
    except (ValueError, TypeError) as exc:  # the data or sizes do not fit: bad input
        raise ConfigError(
            f"{config.source}: [data] / [problem]: {exc}; fix the configuration or the data"
        ) from exc


def build_optimizer(config: Config):
    """``eosfast.GD``, ``eosfast.NormalizedGD`` or ``eosfast.SqrtGD`` from ``[optimizer]``."""
    import eosfast

    o = config["optimizer"]
    if o["type"] == "gd":
        return eosfast.GD(o["lr"], momentum=o["momentum"], nesterov=o["nesterov"])
    if o["type"] == "ngd":
        return eosfast.NormalizedGD(o["lr"])
    return eosfast.SqrtGD(o["lr"], loss_min=o["loss_min"])


def initial_point(config: Config, problem) -> np.ndarray:
    """``problem.init(seed)``, or the final iterate of the run folder ``[run] init_from``."""
    source = config["run"]["init_from"]
    if source is None:
        return problem.init(config["run"]["seed"])
    records = RunDir(source).records
    try:
        if not RunDir(source).finished() or not records.is_file():
            raise ConfigError(f"[run] init_from: {source} is not a finished run folder")
        x0 = read_records(records).get("x_final")
    except DamagedFileError as exc:
        raise ConfigError(f"[run] init_from: {exc}") from None
    if x0 is None or np.shape(x0) != (problem.dim,):
        raise ConfigError(
            f"[run] init_from: the final iterate in {records} has shape {np.shape(x0)}, "
            f"the problem has dim {problem.dim}"
        )
    return np.asarray(x0, dtype=np.float64)


def described() -> dict:
    """The attributes of every dataset: ``{"group/name": {"description": ..., "units": ...}}``."""
    return {key: {"description": d, "units": u} for key, (d, u) in DATASETS.items()}


def trajectory_rows(traj, k: int, iterates: bool) -> dict:
    """A Trajectory's records in the run folder's layout: only the columns its optimizer has."""
    rows = {"steps": {"step": traj.steps, **{n: getattr(traj, n) for n in _SCALARS}}}
    sharp = {"step": traj.sharpness_steps, "hvps": traj.hvps, "threshold": traj.threshold}
    sharp.update(traj.eos)  # ratio, and the optimizer's own indicators
    m = len(sharp["step"])
    for name in _SHARP_BLOCKS:
        block = np.full((m, k), np.nan)
        values = getattr(traj, name)
        block[:, : values.shape[1]] = values[:, :k]
        sharp[name] = block
    rows["sharpness"] = sharp
    if iterates:
        rows["iterates"] = {"step": traj.iterate_steps, "x": np.asarray(traj.iterates)}
    return rows


class _Recorder:
    """Writes a running trajectory's records to records.h5 (the runner's callback).

    The whole file is rewritten each time (write-then-rename, see
    :func:`eosfast.rundir.write_records`), so it is always complete and opens with plain h5py;
    writes are skipped while the last one took more than ``_RECORD_SHARE`` of the time since.
    """

    def __init__(self, path, k, iterates, attrs):
        self.path, self.k, self.iterates, self.attrs = path, k, iterates, attrs
        self._last_end = time.monotonic()
        self._last_cost = 0.0

    def write(self, traj, final: dict | None = None) -> None:
        start = time.monotonic()
        groups = trajectory_rows(traj, self.k, self.iterates)
        attrs = {**self.attrs, "status": traj.status, "steps_done": traj.step}
        if final is not None:
            groups["x_final"] = traj.x_final
            attrs.update(final)
        write_records(self.path, groups, attrs, described())
        self._last_end = time.monotonic()
        self._last_cost = self._last_end - start

    def __call__(self, info) -> bool:
        if self._last_cost <= _RECORD_SHARE * (time.monotonic() - self._last_end):
            self.write(info.trajectory())
        return False


def run_experiment(
    config: Config,
    run_dir,
    *,
    progress: bool = True,
    restart: bool = False,
    threads: int | None = None,
) -> dict:
    """Run (or resume, or skip) the experiment of ``config`` in ``run_dir``; return its summary.

    Parameters
    ----------
    config : Config
        A validated configuration (:func:`eosfast.config.load_config`).
    run_dir : path-like
        The run folder. A folder with a finished run is left as it is (its summary is
        returned); one with a checkpoint continues from it; ``restart=True`` starts over.
    progress : bool
        Show a progress bar (only on a terminal).
    threads : int, optional
        eosfast threads for this run; default ``[run] threads`` (0: the library default).

    Returns
    -------
    dict
        The summary also written to ``summary.json``.
    """
    with _signals.deferred():  # a signal stops the run at a consistent step, see below
        return _run_experiment(config, RunDir(run_dir), progress, restart, threads)


def _run_experiment(config: Config, rd: RunDir, progress, restart, threads) -> dict:
    import eosfast

    from .progress import ProgressBar

    problem = build_problem(config)  # bad data fails here, before any folder is made
    x0 = None if config["run"]["init_from"] is None else initial_point(config, problem)
    if _signals.stop_requested():
        raise KeyboardInterrupt  # before anything was made
    resuming = _prepare_folder(rd, config, restart)
    if resuming:
        try:
            eosfast.runner.check_resumable(rd.checkpoint, problem)
        except ValueError as exc:  # damaged, inconsistent, or of another problem
            raise ConfigError(f"cannot resume: {exc}; pass --restart to start over") from None
    if resuming is None:
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)  # left by a kill after the summary
        return rd.summary()
    threads = config["run"]["threads"] if threads is None else threads
    if threads:
        eosfast.set_num_threads(threads)
    optimizer = build_optimizer(config)
    tracking, run_cfg, out_cfg = config["tracking"], config["run"], config["output"]
    k = tracking["k"]
    if not resuming:
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)
        rd.checkpoint.unlink(missing_ok=True)
    attrs = {
        "eosfast_version": eosfast.__version__,
        "variant": eosfast.info()["variant"],
        "config": config.text or config.to_toml(),
        "optimizer": config["optimizer"]["type"],
        "lr": config["optimizer"]["lr"],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    recorder = _Recorder(rd.records, k, run_cfg["save_iterates_every"] > 0, attrs)
    steps = run_cfg["steps"]
    label = f"{config['optimizer']['type']} lr={config['optimizer']['lr']:g}"
    bar = ProgressBar(steps, label, enabled=None if progress else False)
    hooks = dict(
        callback=recorder,
        callback_every=out_cfg["flush_every"],
        checkpoint=rd.checkpoint,
        checkpoint_every=out_cfg["checkpoint_every"],
        progress=bar.update if bar.enabled else None,
    )
    start = time.perf_counter()
    try:
        if resuming:
            try:
                traj = eosfast.resume(rd.checkpoint, problem, **hooks)
            except DamagedFileError as exc:  # a damaged checkpoint or stream/ file
                raise ConfigError(f"cannot resume: {exc}; pass --restart to start over") from None
        else:
            tracker = None
            if tracking["sharpness_every"] > 0:
                tracker = eosfast.SharpnessTracker(k=k, tol=tracking["tol"])
            traj = eosfast.run(
                problem,
                optimizer,
                problem.init(run_cfg["seed"]) if x0 is None else x0,
                steps,
                sharpness_every=tracking["sharpness_every"],
                tracker=tracker,
                record_every=run_cfg["record_every"],
                diverge_factor=run_cfg["diverge_factor"],
                save_iterates_every=run_cfg["save_iterates_every"],
                stream=rd.path / STREAM,
                **hooks,
            )
    finally:
        bar.close()
    # the checkpoint is of traj.step; the records and the summary now follow it
    recorder.write(traj, final={"eos_onset": -1 if traj.eos_onset is None else traj.eos_onset})
    summary = _summarise(config, traj, time.perf_counter() - start, resuming)
    rd.write_summary(summary)
    if traj.status in FINISHED:
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)  # only after the summary says so
    if out_cfg["figures"] and traj.status != "interrupted":
        plot_run(rd.path)
    return summary


def _prepare_folder(rd: RunDir, config: Config, restart: bool) -> bool | None:
    """Create the folder; return True to resume, False to start, None when already finished."""
    existing = rd.config.is_file()
    if existing and not restart:
        try:
            old = load_config(rd.config)
        except ConfigError as exc:
            raise ConfigError(f"{rd.path} holds an unreadable configuration: {exc}") from None
        if _comparable(old) != _comparable(config):
            raise ConfigError(
                f"{rd.path} holds a run of a different configuration; pass --restart to "
                "replace it or choose another output folder"
            )
        if rd.finished():
            return None
        if rd.checkpoint.is_file() and not (rd.path / STREAM).is_dir():
            raise ConfigError(
                f"{rd.path} has a checkpoint but no {STREAM}/ folder of records to continue; "
                "pass --restart to start over"
            )
        return rd.checkpoint.is_file()
    rd.create()  # before anything is deleted: a folder that cannot be written is refused
    if restart and rd.path.exists():
        for name in (rd.records, rd.checkpoint, rd.summary_path):
            name.unlink(missing_ok=True)
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)
        shutil.rmtree(rd.figures, ignore_errors=True)
        rd.create()
    rd.write_config(config.to_toml())  # resolved: absolute paths, so it reads from the folder
    return False


def _comparable(config: Config) -> dict:
    """The values that define a run (not where it is written or how often it is flushed)."""
    values = {table: dict(keys) for table, keys in config.values.items()}
    values.pop("output")
    values["run"].pop("threads")
    return values


def _summarise(config: Config, traj, seconds: float, resumed: bool) -> dict:
    import eosfast

    from .analysis import eos_summary

    opt = config["optimizer"]["type"]
    records = {
        "steps": {"loss": traj.loss},
        "sharpness": {
            "step": traj.sharpness_steps,
            "ratio": traj.ratio,
            "eigenvalues": traj.eigenvalues if traj.eigenvalues.size else np.zeros((0, 1)),
            **traj.eos,
        },
    }
    summary = {
        "status": traj.status,
        "steps_done": traj.step,
        "steps": config["run"]["steps"],
        "optimizer": opt,
        "lr": config["optimizer"]["lr"],
        "seconds": float(traj.metadata.get("wall_time", seconds)),
        "resumed": resumed,
        "threads": eosfast.get_num_threads(),
        "hvps": int(traj.hvps_total),
        **eos_summary(records, opt),
    }
    summary["eos_onset"] = traj.eos_onset
    return summary


def plot_run(run_dir) -> list[Path]:
    """Draw the figures of a run folder from its records (works while the run is going)."""
    from . import plot

    rd = RunDir(run_dir)
    if not rd.records.is_file():
        raise FileNotFoundError(f"{rd.path} has no {rd.records.name}: not a run folder")
    records = read_records(rd.records)
    attrs = read_attrs(rd.records)
    opt, lr = attrs.get("optimizer", "gd"), float(attrs.get("lr", np.nan))
    steps, sharp = records["steps"], records["sharpness"]
    title = f"{_OPTIMIZER_NAMES.get(opt, opt)}, lr = {lr:g}"
    paths = []
    fig = plot.loss_and_sharpness(
        steps["step"],
        steps["loss"],
        sharp["step"],
        sharp["eigenvalues"],
        threshold=sharp["threshold"],
        title=title,
    )
    paths += plot.save_figure(fig, rd.figures / "loss_sharpness")
    if opt == "ngd" and len(sharp["step"]):
        fig = plot.ngd_indicators(
            sharp["step"],
            sharp["inv_stableness_sum"],
            sharp["sqrt_loss_sum"],
            sharp["sqrt_loss_reference"],
            lr=lr,
        )
        paths += plot.save_figure(fig, rd.figures / "ngd_indicators")
    if opt == "sqrtgd" and len(sharp["step"]):
        at = np.searchsorted(steps["step"], sharp["step"]).clip(0, len(steps["step"]) - 1)
        stableness = steps["effective_lr"][at] * sharp["eigenvalues"][:, 0]
        fig = plot.sqrt_indicators(
            sharp["step"], sharp["sqrt_loss_sum"], sharp["sqrt_loss_reference"], stableness, lr=lr
        )
        paths += plot.save_figure(fig, rd.figures / "sqrt_indicators")
    return paths
