"""One experiment from a configuration into a run folder: run or resume, record, summarise.

Uses the public API only: ``eosfast.run`` / ``eosfast.resume`` with a checkpoint in the run
folder, its callback to append records to the HDF5 file every ``flush_every`` steps and its
progress hook for the progress bar.
"""

from __future__ import annotations

import datetime
import shutil
import time

import numpy as np

from . import _signals
from .builders import build_optimizer, build_problem, initial_point, mpi_world
from .config import Config, ConfigError, load_config
from .io import DamagedFileError
from .records_file import described, trajectory_rows, write_records
from .run_folder import FINISHED, STREAM, RunDir

__all__ = ["run_experiment"]

# rewriting records.h5 may take at most this share of the run's time (the rest waits)
_RECORD_SHARE = 0.05


class _Recorder:
    """Writes a running trajectory's records to records.h5 (the runner's callback).

    The whole file is rewritten each time (write-then-rename, see
    :func:`eosfast.records_file.write_records`), so it is always complete and opens with plain h5py;
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

    Examples
    --------
    >>> import os, tempfile
    >>> from eosfast.config import parse_config
    >>> from eosfast.experiment import run_experiment
    >>> config = parse_config({"optimizer": {"type": "gd", "lr": 0.05}, "run": {"steps": 20},
    ...                        "data": {"name": "digits", "n_samples": 50}})
    >>> run_dir = os.path.join(tempfile.mkdtemp(), "run")
    >>> summary = run_experiment(config, run_dir, progress=False)
    >>> summary["status"], summary["steps_done"]
    ('completed', 20)
    >>> run_experiment(config, run_dir, progress=False) == summary  # finished: left as it is
    True
    """
    with _signals.deferred():  # a signal stops the run at a consistent step, see below
        return _run_experiment(config, RunDir(run_dir), progress, restart, threads)


def _run_experiment(config: Config, rd: RunDir, progress, restart, threads) -> dict:
    import eosfast

    from .progress import ProgressBar

    # Under mpiexec every rank runs all of this on its shard; rank 0 alone writes the folder.
    comm = mpi_world()
    root = comm is None or comm.Get_rank() == 0
    problem = build_problem(config, comm)  # bad data fails here, before any folder is made
    x0 = None if config["run"]["init_from"] is None else initial_point(config, problem)
    if _signals.stop_requested():
        raise KeyboardInterrupt  # before anything was made
    resuming = _on_root(comm, lambda: _prepare_folder(rd, config, restart))
    if resuming:
        try:
            eosfast.runner.check_resumable(rd.checkpoint, problem)
        except ValueError as exc:  # damaged, inconsistent, or of another problem
            raise ConfigError(f"cannot resume: {exc}; pass --restart to start over") from None
    if resuming is None:
        if root:
            shutil.rmtree(rd.path / STREAM, ignore_errors=True)  # left by a kill after the summary
        return rd.summary()
    threads = config["run"]["threads"] if threads is None else threads
    if threads:
        eosfast.set_num_threads(threads)
    optimizer = build_optimizer(config)
    tracking, run_cfg, out_cfg = config["tracking"], config["run"], config["output"]
    k = tracking["k"]
    if not resuming and root:
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
    if not root:
        recorder = _NoRecorder()  # the same callback schedule on every rank, one writer
    steps = run_cfg["steps"]
    label = f"{config['optimizer']['type']} lr={config['optimizer']['lr']:g}"
    bar = ProgressBar(steps, label, enabled=None if progress and root else False)
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
                initial_point(config, problem) if x0 is None else x0,
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
    summary = _summarise(config, traj, time.perf_counter() - start, resuming)
    if comm is not None:
        summary["ranks"] = comm.Get_size()
    if not root:
        return summary
    recorder.write(traj, final={"eos_onset": -1 if traj.eos_onset is None else traj.eos_onset})
    rd.write_summary(summary)
    if traj.status in FINISHED:
        shutil.rmtree(rd.path / STREAM, ignore_errors=True)  # only after the summary says so
    if out_cfg["figures"] and traj.status != "interrupted":
        from .plot import plot_run

        plot_run(rd.path)
    return summary


class _NoRecorder:
    """The recorder of the ranks other than 0: they write nothing."""

    def write(self, traj, final=None) -> None:
        pass

    def __call__(self, info) -> bool:
        return False


def _on_root(comm, work):
    """``work()`` on rank 0 only, its result (or its exception) on every rank."""
    if comm is None:
        return work()
    outcome = None
    if comm.Get_rank() == 0:
        try:
            outcome = (True, work())
        except Exception as exc:
            outcome = (False, exc)
    ok, value = comm.bcast(outcome, root=0)
    if not ok:
        raise value
    return value


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
    summary["eos_onset"] = traj.eos_onset  # the C++ runner's (Trajectory.eos_onset)
    return summary
