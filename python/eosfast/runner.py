"""The trajectory runner: :func:`run` and :func:`resume`.

The loop runs in C++ with the GIL released and hands control back to Python
only every ``callback_every`` / ``checkpoint_every`` steps, when a record
buffer is full, or every ~0.2 s when a ``progress`` callable is given.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from . import _core, _signals
from ._validation import as_positive_int, as_vector
from ._version import __version__
from .io import DamagedFileError, NpyAppender, load_checkpoint, save_checkpoint
from .optimizers import Optimizer, optimizer_from_config
from .problems import Problem
from .progress import ProgressBar
from .trajectory import SCALAR_COLUMNS, SHARPNESS_COLUMNS, Trajectory

_KINDS = ("scalars", "sharpness", "iterates")
_BUFFER_ROWS = 4096
_INITIAL_ROWS = 1 << 16  # records are preallocated up to this many rows, then grown
_PROGRESS_SECONDS = 0.2
_FORMAT = "eosfast-checkpoint-1"


class RunInfo:
    """What a callback sees after ``step`` steps.

    Attributes
    ----------
    step : int
        Steps taken; ``x`` is x_step.
    x : ndarray (dim,)
        A copy of the current iterate.
    last_loss, last_grad_norm : float
        L and |grad L| at the last evaluated iterate x_{step-1}.
    last_sharpness : float
        The latest measured lambda_1 (NaN before the first measurement).
    """

    def __init__(self, session):
        self._session = session
        self.step = session.core.step
        self.x = np.array(session.core.x)
        self.last_loss, self.last_grad_norm, self.last_sharpness = session.core.last

    @property
    def problem(self):
        return self._session.problem

    def trajectory(self) -> Trajectory:
        """The records so far as a :class:`Trajectory` (status "running")."""
        return self._session.trajectory("running")


class _MemoryStore:
    """Records in preallocated numpy arrays (grown by doubling if ever needed)."""

    def __init__(self, widths: dict, capacities: dict, saved: dict | None = None):
        self._data = {
            k: np.empty((min(max(capacities[k], 1), _INITIAL_ROWS), widths[k])) for k in _KINDS
        }
        self._rows = dict.fromkeys(_KINDS, 0)
        if saved is not None:
            for k in _KINDS:
                self.append_one(k, np.asarray(saved[k]).reshape(-1, widths[k]))

    def append_one(self, kind: str, block: np.ndarray) -> None:
        n, rows = block.shape[0], self._rows[kind]
        data = self._data[kind]
        if rows + n > data.shape[0]:
            grown = np.empty((max(2 * data.shape[0], rows + n), data.shape[1]))
            grown[:rows] = data[:rows]
            self._data[kind] = data = grown
        data[rows : rows + n] = block
        self._rows[kind] = rows + n

    def append(self, records: dict) -> None:
        for k in _KINDS:
            if records[k].shape[0]:
                self.append_one(k, records[k])

    def arrays(self) -> dict:
        return {k: self._data[k][: self._rows[k]] for k in _KINDS}

    def payload(self, checkpoint=None) -> dict:
        return {"mode": "memory", **{k: self._data[k][: self._rows[k]] for k in _KINDS}}

    def close(self) -> None:
        pass


class _StreamStore:
    """Records appended to ``<folder>/<kind>.npy`` (see :class:`eosfast.io.NpyAppender`)."""

    def __init__(self, folder, widths: dict, counts: dict | None = None, crcs=None):
        self.folder = os.path.abspath(os.fspath(folder))
        os.makedirs(self.folder, exist_ok=True)
        self._files = {}
        try:
            for k in _KINDS:
                rows = None if counts is None else int(counts[k])
                crc = None if crcs is None else int(crcs[k])
                path = os.path.join(self.folder, f"{k}.npy")
                self._files[k] = NpyAppender(path, widths[k], rows, crc)
        except BaseException:  # a damaged file: close the ones already open
            for f in self._files.values():
                f.close()
            raise

    def append(self, records: dict) -> None:
        for k in _KINDS:
            if records[k].shape[0]:
                self._files[k].append(records[k])

    def arrays(self) -> dict:
        return {k: f.load() for k, f in self._files.items()}

    def payload(self, checkpoint=None) -> dict:
        for f in self._files.values():
            f.flush()
        folder = self.folder
        if checkpoint is not None:  # relative to the checkpoint: a moved folder keeps working
            folder = os.path.relpath(folder, os.path.dirname(os.path.abspath(checkpoint)))
        return {
            "mode": "stream",
            "folder": folder,
            "counts": {k: f.rows for k, f in self._files.items()},
            "crcs": {k: f.crc for k, f in self._files.items()},
        }

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def _widths(dim: int, width: int) -> dict:
    return {
        "scalars": len(SCALAR_COLUMNS),
        "sharpness": len(SHARPNESS_COLUMNS) + 3 * width,
        "iterates": 1 + dim,
    }


def _capacities(cfg: dict) -> dict:
    steps = cfg["steps"]

    def count(every):
        return steps // every + 2 if every else 0

    return {
        "scalars": count(cfg["record_every"]),
        "sharpness": count(cfg["sharpness_every"]),
        "iterates": count(cfg["save_iterates_every"]),
    }


class _Session:
    """One run in progress: the C++ runner, its records and the hand-back schedule."""

    def __init__(self, problem, optimizer, tracker, cfg, x, callbacks):
        self.problem, self.optimizer, self.tracker, self.cfg = problem, optimizer, tracker, cfg
        self.core = _core.Runner(
            problem._core,
            optimizer._core,
            x,
            cfg["steps"],
            cfg["record_every"],
            cfg["sharpness_every"],
            cfg["save_iterates_every"],
            cfg["diverge_factor"],
            _BUFFER_ROWS,
            None if tracker is None else tracker._core,
        )
        self.widths = _widths(problem.dim, self.core.width)
        self.store = None
        (
            self.callback,
            self.callback_every,
            self.checkpoint,
            self.checkpoint_every,
            self.progress,
        ) = callbacks
        self.wall_time = 0.0
        self.signal = None  # the signal that interrupted the run
        self.fingerprint = None  # the problem's fingerprint (see _fingerprint), for resume

    def metadata(self) -> dict:
        from . import get_num_threads

        tracker = None
        if self.tracker is not None:
            core = self.tracker._core
            tracker = {
                "k": core.k,
                "tol": core.tol,
                "value_tol": core.value_tol if core.value_tol > 0 else None,
                "grow_above": None if math.isnan(core.grow_above) else core.grow_above,
                "max_k": core.max_k,
                "seed": int(core.seed),
            }
        return {
            "problem": self.problem._core.name,
            "dim": self.problem.dim,
            "optimizer": self.optimizer.config(),
            "tracker": tracker,
            "seed": None if tracker is None else tracker["seed"],
            "version": __version__,
            "variant": _core.variant,
            "num_threads": get_num_threads(),
            **{k: self.cfg[k] for k in ("steps", "record_every", "sharpness_every")},
            "save_iterates_every": self.cfg["save_iterates_every"],
            "diverge_factor": self.cfg["diverge_factor"],
            "hvps": self.core.state()["hvps"],
            "wall_time": self.wall_time,
            "signal": _signals.signal_name(self.signal),
        }

    def trajectory(self, status: str) -> Trajectory:
        arrays = self.store.arrays()
        state = self.core.state()
        return Trajectory(
            arrays["scalars"],
            arrays["sharpness"],
            arrays["iterates"],
            self.core.width,
            np.array(state["x"]),
            state["step"],
            status,
            state["eos_onset"],
            self.metadata(),
        )

    def save(self, path, status: str) -> None:
        save_checkpoint(
            path,
            {
                "format": _FORMAT,
                "status": status,
                "config": self.cfg,
                "problem": {
                    "name": self.problem._core.name,
                    "dim": self.problem.dim,
                    "fingerprint": self.fingerprint,
                },
                "optimizer": self.optimizer.config(),
                "runner": self.core.state(),
                "tracker": None if self.tracker is None else dict(self.tracker.state()),
                "records": self.store.payload(path),
                "wall_time": self.wall_time,
                "signal": _signals.signal_name(self.signal),
            },
        )

    def drive(self) -> Trajectory:
        """Run to the end, a stop or a signal; checkpoint and return the trajectory.

        SIGINT / SIGTERM are deferred (see :mod:`eosfast._signals`): callbacks and checkpoints
        always finish, and an interrupted run leaves a checkpoint of its last committed step.
        """
        with _signals.deferred():
            return self._drive()

    def _drive(self) -> Trajectory:
        core, status = self.core, self.core.status
        start = last_progress = time.monotonic()
        begin = core.step
        last_callback = last_checkpoint = begin
        while status == "running":
            if _signals.stop_requested():
                status = "interrupted"
                break
            t = core.step
            target = self.cfg["steps"]
            if self.callback is not None:
                target = min(target, (t // self.callback_every + 1) * self.callback_every)
            if self.checkpoint is not None:
                target = min(target, (t // self.checkpoint_every + 1) * self.checkpoint_every)
            budget = _PROGRESS_SECONDS if self.progress is not None else math.inf
            status = _signals.advance(core, max(target - t, 0), budget)
            self.store.append(core.take_records())
            if status != "running":
                break
            t = core.step
            now = time.monotonic()
            if self.progress is not None and now - last_progress >= _PROGRESS_SECONDS:
                last_progress = now
                loss, _, sharpness = core.last
                self.progress(t, loss, sharpness)
            if self.callback is not None and t % self.callback_every == 0 and t != last_callback:
                last_callback = t
                if self.callback(RunInfo(self)):
                    status = "stopped_by_callback"
                    break
            if self.checkpoint is not None and t % self.checkpoint_every == 0:
                if t != last_checkpoint:
                    last_checkpoint = t
                    self.wall_time += time.monotonic() - start
                    start = time.monotonic()
                    self.save(self.checkpoint, "running")
        if status == "interrupted" and _signals.stop_requested():
            self.signal = _signals.received()
        self.wall_time += time.monotonic() - start
        if self.checkpoint is not None:
            self.save(self.checkpoint, status)  # an interrupted run: its last committed step
        if self.progress is not None:
            loss, _, sharpness = core.last
            self.progress(core.step, loss, sharpness)
        traj = self.trajectory(status)
        self.store.close()
        return traj


def _check_callbacks(callback, callback_every, checkpoint, checkpoint_every, progress, cfg):
    if progress is False:
        progress = None
    for name, fn in (("callback", callback), ("progress", progress)):
        if fn is not None and fn is not True and not callable(fn):
            kinds = "callable" if name == "callback" else "True, False, None or a callable"
            raise TypeError(f"{name} must be {kinds}, got {type(fn).__name__}")
    if callback_every is None:
        callback_every = cfg["record_every"]
    if checkpoint_every is None:
        checkpoint_every = cfg.get("checkpoint_every") or max(1, cfg["steps"] // 10)
    callback_every = as_positive_int(callback_every, "callback_every")
    checkpoint_every = as_positive_int(checkpoint_every, "checkpoint_every")
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
    return callback, callback_every, checkpoint, checkpoint_every, progress


def run(
    problem,
    optimizer,
    x0,
    steps: int,
    *,
    sharpness_every: int = 0,
    tracker=None,
    record_every: int = 1,
    callback=None,
    callback_every: int | None = None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    diverge_factor: float = 1e6,
    progress=None,
    save_iterates_every: int = 0,
    stream=None,
) -> Trajectory:
    """Run an optimizer on a problem for ``steps`` steps, recording as it goes.

    Parameters
    ----------
    problem : eosfast.problems.Problem
    optimizer : eosfast.GD, NormalizedGD, SqrtGD or PowerLossGD
        Used as a configuration: the run gets its own copy (with fresh momentum).
    x0 : ndarray (dim,)
    steps : int
        The run ends at x_steps (after a closing evaluation of L there).
    sharpness_every : int
        Measure the top eigenvalues of grad^2 L every this many steps (0: never).
    tracker : eosfast.SharpnessTracker, optional
        Default ``SharpnessTracker(k=1, tol=1e-6)``; its warm starts carry over
        between measurements and it is updated in place.
    record_every : int
        Record loss, gradient norm, step length, lr, effective lr and objective
        every this many steps (and always at the last step).
    callback : callable, optional
        ``callback(info: RunInfo)`` every ``callback_every`` steps (default
        ``record_every``); returning True stops the run (status
        "stopped_by_callback"). Exceptions propagate with their traceback.
    checkpoint : str or PathLike, optional
        Write the full state there (atomically) every ``checkpoint_every`` steps
        (default ``steps // 10``) and when the run ends; continue with
        :func:`eosfast.resume`. An interrupted run (SIGINT or SIGTERM) writes a
        checkpoint of its last committed step before it returns. Checkpoints
        refer to ``stream`` by a path relative to their own folder, so a folder
        holding both can be moved or copied.
    diverge_factor : float
        Stop with status "diverged" when L is not finite or |L| exceeds
        ``diverge_factor * max(|L(x0)|, eosfast._core.diverge_floor)`` (the floor,
        1.0, keeps a run started near a minimum, L(x0) ~ 0, from "diverging" at its
        first ordinary loss; ``inf``: only non-finite losses stop).
    progress : bool or callable, optional
        ``progress(step, loss, sharpness)`` about every 0.2 s and at the end
        (``loss`` and ``sharpness`` are the latest evaluated / measured values).
        True: a bar on stderr showing them (tqdm when installed, a plain line
        otherwise); None / False: silent.
    save_iterates_every : int
        Save x_t every this many steps and at the last step (0: never).
    stream : str or PathLike, optional
        A folder: records go to ``scalars.npy``, ``sharpness.npy`` and
        ``iterates.npy`` there, appended as the run goes (bounded memory), and the
        returned trajectory memory-maps them.

    Returns
    -------
    Trajectory
        Status "completed", "converged" (NormalizedGD at a zero gradient,
        SqrtGD / PowerLossGD at L <= loss_min), "diverged", "interrupted"
        (SIGINT / Ctrl-C or SIGTERM, its name in ``metadata["signal"]``: the
        records up to the last committed step; signals are deferred while
        callbacks and checkpoints run, so those always finish) or
        "stopped_by_callback".

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast.problems import Quadratic
    >>> problem = Quadratic(np.array([1.0, 0.5]))
    >>> traj = eosfast.run(problem, eosfast.GD(lr=0.5), np.ones(2), steps=20, sharpness_every=5)
    >>> traj.status, int(traj.steps[-1])
    ('completed', 20)
    >>> round(float(traj.sharpness[-1]), 6), float(traj.threshold[-1])  # lambda_1 and 2/lr
    (1.0, 4.0)
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eosfast problem, got {type(problem).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an eosfast optimizer, got {type(optimizer).__name__}")
    x0 = as_vector(x0, problem.dim, "x0")
    diverge_factor = float(diverge_factor)
    if math.isnan(diverge_factor) or diverge_factor <= 1.0:
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor}")
    cfg = {
        "steps": as_positive_int(steps, "steps", minimum=0),
        "record_every": as_positive_int(record_every, "record_every"),
        "sharpness_every": as_positive_int(sharpness_every, "sharpness_every", minimum=0),
        "save_iterates_every": as_positive_int(save_iterates_every, "save_iterates_every", 0),
        "diverge_factor": diverge_factor,
    }
    callbacks = _check_callbacks(
        callback, callback_every, checkpoint, checkpoint_every, progress, cfg
    )
    cfg["checkpoint_every"] = callbacks[3]
    if cfg["sharpness_every"] > 0 and tracker is None:
        from . import SharpnessTracker

        tracker = SharpnessTracker(k=1)
    if cfg["sharpness_every"] == 0:
        tracker = None
    session = _Session(problem, optimizer, tracker, cfg, x0, callbacks)
    if checkpoint is not None:
        session.fingerprint = _fingerprint(problem, x0)
    if stream is None:
        session.store = _MemoryStore(session.widths, _capacities(cfg))
    else:
        session.store = _StreamStore(stream, session.widths)
    return _drive(session)


def _drive(session: _Session) -> Trajectory:
    """Drive the session; ``progress=True`` became a bar here, closed at the end."""
    if session.progress is not True:
        return session.drive()
    bar = ProgressBar(session.cfg["steps"], "eosfast.run", enabled=True, initial=session.core.step)
    session.progress = bar.update
    with bar:
        return session.drive()


def resume(
    path,
    problem,
    *,
    callback=None,
    callback_every: int | None = None,
    checkpoint=None,
    checkpoint_every: int | None = None,
    progress=None,
) -> Trajectory:
    """Continue a run from a checkpoint written by :func:`run`.

    The continued run is bitwise identical to one that was never stopped. A
    checkpoint of a run that ended (completed, converged, diverged) returns its
    trajectory at once; one that was interrupted or stopped by its callback
    continues. Refused with ``ValueError``: a damaged or inconsistent checkpoint,
    and a problem other than the run's own (see :func:`check_resumable`).

    Parameters
    ----------
    path : str or PathLike
        The checkpoint.
    problem : eosfast.problems.Problem
        The run's problem (problems are not stored; its name and dim are checked).
    callback, callback_every, progress
        As in :func:`run` (callbacks are not stored).
    checkpoint, checkpoint_every
        Where and how often to keep checkpointing: default the same file and
        interval as the original run.

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast.problems import Quadratic
    >>> import os, tempfile
    >>> problem = Quadratic(np.array([1.0, 0.5]))
    >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
    >>> whole = eosfast.run(problem, eosfast.GD(lr=0.5), np.ones(2), steps=20, checkpoint=path)
    >>> again = eosfast.resume(path, problem)  # a finished run comes back as it ended
    >>> bool(np.array_equal(again.x_final, whole.x_final)), again.status
    (True, 'completed')
    """
    state = check_resumable(path, problem)
    saved = state["problem"]
    fingerprint = saved.get("fingerprint")
    cfg = dict(state["config"])
    optimizer = optimizer_from_config(state["optimizer"])
    tracker = None
    if state["tracker"] is not None:
        from . import SharpnessTracker

        tracker = SharpnessTracker.from_state(state["tracker"])
    callbacks = _check_callbacks(
        callback,
        callback_every,
        os.fspath(path) if checkpoint is None else checkpoint,
        checkpoint_every,
        progress,
        cfg,
    )
    cfg["checkpoint_every"] = callbacks[3]
    runner_state = state["runner"]
    x = np.asarray(runner_state["x"], dtype=np.float64)
    session = _Session(problem, optimizer, tracker, cfg, x, callbacks)
    session.core.restore(runner_state)
    session.wall_time = float(state.get("wall_time", 0.0))
    session.fingerprint = fingerprint
    records = state["records"]
    if records["mode"] == "stream":
        session.store = _StreamStore(
            _stream_folder(path, records), session.widths, records["counts"], records.get("crcs")
        )
    else:
        session.store = _MemoryStore(session.widths, _capacities(cfg), records)
    if state["status"] in ("completed", "converged", "diverged"):  # a callback's stop: go on
        traj = session.trajectory(state["status"])
        session.store.close()
        return traj
    return _drive(session)


def check_resumable(path, problem) -> dict:
    """The checkpoint's state if ``problem`` may continue it; ``ValueError`` saying why not.

    Refuses a damaged or inconsistent checkpoint and a problem other than the run's own: another
    name or dim, or the same ones with other data (its fingerprint, L and grad L at x0, differs).
    """
    state = _read_checkpoint(path)
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eosfast problem, got {type(problem).__name__}")
    saved = state["problem"]
    if saved["dim"] != problem.dim or saved["name"] != problem._core.name:
        raise ValueError(
            f"the checkpoint is of a {saved['name']} problem of dim {saved['dim']}, "
            f"got {problem._core.name} of dim {problem.dim}"
        )
    fingerprint = saved.get("fingerprint")
    if fingerprint is not None and not _same_fingerprint(
        fingerprint, _fingerprint(problem, fingerprint["x0"])
    ):
        raise ValueError(
            f"{os.fspath(path)} is a run of a different {saved['name']} problem (same name and "
            "dim, but its loss and gradient differ: other data or architecture); resume it "
            "with the problem it was started on"
        )
    return state


def _stream_folder(checkpoint, records: dict) -> str:
    """The stream folder of a checkpoint (stored relative to it; older ones: absolute)."""
    base = os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
    return os.path.normpath(os.path.join(base, records["folder"]))


_PROBE_SLICES = 8


def _fingerprint(problem, x0) -> dict:
    """L and sums of grad L over interleaved slices at x0: they change with the problem's data.

    Stored in checkpoints so that :func:`resume` refuses a problem of the same name and dim
    whose data or architecture differ.
    """
    x0 = np.array(x0, dtype=np.float64)
    loss, grad = problem.loss_and_grad(x0)
    grad = np.asarray(grad, dtype=np.float64)
    sums = [float(grad[i::_PROBE_SLICES].sum()) for i in range(_PROBE_SLICES)]
    return {"x0": x0, "loss": float(loss), "grad_sums": np.array(sums)}


def _same_fingerprint(a: dict, b: dict) -> bool:
    """Equal up to rounding (another build variant may round differently)."""
    va = np.concatenate([[a["loss"]], np.asarray(a["grad_sums"], dtype=np.float64)])
    vb = np.concatenate([[b["loss"]], np.asarray(b["grad_sums"], dtype=np.float64)])
    if va.shape != vb.shape:
        return False
    scale = max(float(np.max(np.abs(va))), 1e-300)
    return bool(np.all(np.abs(va - vb) <= 1e-9 * scale))


_STATUSES = ("running", "completed", "converged", "diverged", "interrupted", "stopped_by_callback")


def _read_checkpoint(path) -> dict:
    """A checkpoint, checked for damage and for consistency before anything trusts it."""
    name = os.fspath(path)
    try:
        state = load_checkpoint(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile, numpy and OS errors of a damaged file
        raise DamagedFileError(f"{name} is damaged and cannot be read ({_one_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ValueError(f"{name} is not an eosfast checkpoint")
    try:
        _check_state(state)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DamagedFileError(
            f"{name} is inconsistent, refusing to resume it: {_one_line(exc)}"
        ) from None
    return state


def _check_state(state: dict) -> None:
    def count(value, what, top=None):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{what} must be an integer, got {value!r}")
        if value < 0 or (top is not None and value > top):
            raise ValueError(f"{what} = {value} is out of range [0, {top}]")
        return int(value)

    cfg, runner, problem = state["config"], state["runner"], state["problem"]
    steps = count(cfg["steps"], "config steps")
    for key in ("record_every", "checkpoint_every"):
        if count(cfg[key], f"config {key}") < 1:
            raise ValueError(f"config {key} must be >= 1")
    for key in ("sharpness_every", "save_iterates_every"):
        count(cfg[key], f"config {key}")
    dim = count(problem["dim"], "problem dim")
    step = count(runner["step"], "runner step", steps)
    count(runner["hvps"], "runner hvps")
    if state["status"] not in _STATUSES or runner["status"] not in _STATUSES:
        raise ValueError(f"unknown status {state['status']!r} / {runner['status']!r}")
    x = np.asarray(runner["x"])
    if x.shape != (dim,) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"the iterate has shape {x.shape} and dtype {x.dtype}, the dim is {dim}")
    if runner["status"] == "running" and not np.all(np.isfinite(x)):
        raise ValueError("the iterate of a running run is not finite")
    records = state["records"]
    if records["mode"] == "stream":
        for kind in _KINDS:
            count(records["counts"][kind], f"record count of {kind}", step + 2)
    elif records["mode"] == "memory":
        for kind in _KINDS:
            rows = np.asarray(records[kind])
            if rows.ndim != 2 and rows.size:
                raise ValueError(f"the {kind} records have shape {rows.shape}")
            if len(rows) > step + 2:
                raise ValueError(f"{len(rows)} {kind} records for {step} steps")
    else:
        raise ValueError(f"unknown record mode {records['mode']!r}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
