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

from .config import Config, ConfigError, load_config
from .optimizers import OPTIMIZER_NAMES
from .rundir import (
    FINISHED,
    RecordFile,
    RunDir,
    finalize_records,
    read_attrs,
    read_records,
    recover_records,
)

STREAM = "stream"  # the runner's own record files while the run goes (removed at the end)

_SCALARS = ("loss", "grad_norm", "step_norm", "lr", "effective_lr", "objective")
_SHARP_SCALARS = (
    "threshold",
    "ratio",
    "inv_stableness_sum",
    "sqrt_loss_sum",
    "sqrt_loss_reference",
)
_SHARP_BLOCKS = ("eigenvalues", "step_overlap", "grad_overlap")
_OPTIMIZER_NAMES = {n.config: n.title for n in OPTIMIZER_NAMES if n.config}


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
    if not RunDir(source).finished() or not records.is_file():
        raise ConfigError(f"[run] init_from: {source} is not a finished run folder")
    x0 = read_records(records).get("x_final")
    if x0 is None or np.shape(x0) != (problem.dim,):
        raise ConfigError(
            f"[run] init_from: the final iterate in {records} has shape {np.shape(x0)}, "
            f"the problem has dim {problem.dim}"
        )
    return np.asarray(x0, dtype=np.float64)


def record_schema(k: int, dim: int, iterates: bool) -> dict:
    """The HDF5 groups and datasets of a run (see docs/run_folder.md)."""
    schema = {
        "steps": {"step": ("int64", ()), **{n: ("float64", ()) for n in _SCALARS}},
        "sharpness": {
            "step": ("int64", ()),
            "hvps": ("int64", ()),
            **{n: ("float64", ()) for n in _SHARP_SCALARS},
            **{n: ("float64", (k,)) for n in _SHARP_BLOCKS},
        },
    }
    if iterates:
        schema["iterates"] = {"step": ("int64", ()), "x": ("float64", (dim,))}
    return schema


def _trajectory_rows(traj, start: dict, k: int, iterates: bool) -> dict:
    """The rows of a Trajectory from ``start[group]`` on, in the run folder's layout."""
    rows = {}
    s = start["steps"]
    rows["steps"] = {"step": traj.steps[s:], **{n: getattr(traj, n)[s:] for n in _SCALARS}}
    s = start["sharpness"]
    eos = traj.eos
    sharp = {"step": traj.sharpness_steps[s:], "hvps": traj.hvps[s:]}
    m = len(sharp["step"])
    sharp["threshold"] = traj.threshold[s:]
    sharp["ratio"] = traj.ratio[s:]
    for name in ("inv_stableness_sum", "sqrt_loss_sum", "sqrt_loss_reference"):
        sharp[name] = eos[name][s:] if name in eos else np.full(m, np.nan)
    for name in _SHARP_BLOCKS:
        block = np.full((m, k), np.nan)
        values = getattr(traj, name)[s:]
        block[:, : values.shape[1]] = values[:, :k]
        sharp[name] = block
    rows["sharpness"] = sharp
    if iterates:
        s = start["iterates"]
        rows["iterates"] = {"step": traj.iterate_steps[s:], "x": traj.iterates[s:]}
    return rows


class _Recorder:
    """Appends a running trajectory's new rows to records.h5 (the runner's callback)."""

    def __init__(self, path, schema, k, iterates, attrs=None, resume_lengths=None):
        self.k, self.iterates = k, iterates
        if resume_lengths is None:
            self.file = RecordFile(path, "w", schema, attrs)
            self.written = dict.fromkeys(schema, 0)
        else:
            recover_records(path, resume_lengths)
            self.file = RecordFile(path, "a")
            self.written = self.file.lengths()

    def write(self, traj) -> None:
        rows = _trajectory_rows(traj, self.written, self.k, self.iterates)
        self.file.append(rows)
        for group, columns in rows.items():
            self.written[group] += len(next(iter(columns.values())))
        self.file.flush()

    def __call__(self, info) -> bool:
        self.write(info.trajectory())
        return False

    def close(self) -> None:
        self.file.close()


def _checkpoint_lengths(path) -> dict | None:
    """Rows per group at a checkpoint (its streamed record counts), None if unreadable."""
    import eosfast

    try:
        counts = eosfast.io.load_checkpoint(path)["records"]["counts"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return {
        "steps": int(counts["scalars"]),
        "sharpness": int(counts["sharpness"]),
        "iterates": int(counts["iterates"]),
    }


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
    import eosfast

    from .progress import ProgressBar

    rd = RunDir(run_dir)
    problem = build_problem(config)  # bad data fails here, before any folder is made
    resuming = _prepare_folder(rd, config, restart)
    if resuming is None:
        return rd.summary()
    threads = config["run"]["threads"] if threads is None else threads
    if threads:
        eosfast.set_num_threads(threads)
    optimizer = build_optimizer(config)
    tracking, run_cfg, out_cfg = config["tracking"], config["run"], config["output"]
    k = tracking["k"]
    iterates = run_cfg["save_iterates_every"] > 0
    schema = record_schema(k, problem.dim, iterates)
    lengths = _checkpoint_lengths(rd.checkpoint) if resuming else None
    if resuming and (lengths is None or not rd.records.is_file()):
        resuming = False  # nothing consistent to continue from: start over
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
    recorder = _Recorder(rd.records, schema, k, iterates, attrs, lengths if resuming else None)
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
            traj = eosfast.resume(rd.checkpoint, problem, **hooks)
        else:
            tracker = None
            if tracking["sharpness_every"] > 0:
                tracker = eosfast.SharpnessTracker(k=k, tol=tracking["tol"])
            traj = eosfast.run(
                problem,
                optimizer,
                initial_point(config, problem),
                steps,
                sharpness_every=tracking["sharpness_every"],
                tracker=tracker,
                record_every=run_cfg["record_every"],
                diverge_factor=run_cfg["diverge_factor"],
                save_iterates_every=run_cfg["save_iterates_every"],
                stream=rd.path / STREAM,
                **hooks,
            )
        recorder.write(traj)
    finally:
        bar.close()
        recorder.close()
    summary = _summarise(config, traj, time.perf_counter() - start, resuming)
    finalize_records(
        rd.records,
        datasets={"x_final": traj.x_final},
        attrs={
            "status": traj.status,
            "steps_done": traj.step,
            "eos_onset": -1 if traj.eos_onset is None else traj.eos_onset,
        },
    )
    if traj.status in FINISHED:
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)
    rd.write_summary(summary)
    if out_cfg["figures"]:
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
        return rd.checkpoint.is_file()
    if restart and rd.path.exists():
        for name in (rd.records, rd.checkpoint, rd.summary_path):
            name.unlink(missing_ok=True)
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)
        shutil.rmtree(rd.figures, ignore_errors=True)
    rd.create()
    rd.write_config(config.text if config.text is not None else config.to_toml())
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
