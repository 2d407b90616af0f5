"""The loop of one run: the C++ runner driven slice by slice, with callbacks, checkpoints,
progress and signals handled between slices (the hand-back schedule)."""

from __future__ import annotations

import math
import os
import time

from . import _checkpoint_format, _core, _record_stores, _signals
from ._validation import as_positive_int
from ._version import __version__
from .io import save_checkpoint
from .progress import ProgressBar
from .trajectory import Trajectory

_PROGRESS_SECONDS = _signals.HAND_BACK_SECONDS  # one progress report per slice at most


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
        self.x = session.core.x  # a fresh copy of the C++ iterate
        self.last_loss, self.last_grad_norm, self.last_sharpness = session.core.last

    @property
    def problem(self):
        return self._session.problem

    def trajectory(self) -> Trajectory:
        """The records so far as a :class:`Trajectory` (status "running")."""
        return self._session.trajectory("running")


class Session:
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
            _core.RunConfig().buffer_rows,
            None if tracker is None else tracker._core,
        )
        self.widths = _record_stores.widths(problem.dim, self.core.width)
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
        self.fingerprint = None  # see _checkpoint_format.fingerprint; stored for resume
        # A distributed problem: every rank runs this loop, in slices of the same steps agreed
        # at every hand-back (with the stop decision), and only rank 0 writes and reports.
        self.comm = getattr(problem, "comm", None) if _is_distributed(problem) else None
        self.writes = self.comm is None or problem.is_root
        if not self.writes:
            self.progress = None
        self.slice_steps = 1  # a distributed run's next slice, proposed by rank 0

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
            "hvps": self.core.hvps,
            "wall_time": self.wall_time,
            "signal": _signals.signal_name(self.signal),
        }

    def trajectory(self, status: str) -> Trajectory:
        arrays = self.store.arrays()
        core = self.core
        return Trajectory(
            arrays["scalars"],
            arrays["sharpness"],
            arrays["iterates"],
            core.width,
            core.x,  # a fresh copy of the C++ iterate
            core.step,
            status,
            core.eos_onset,
            self.metadata(),
        )

    def save(self, path, status: str) -> None:
        if not self.writes:
            return
        save_checkpoint(
            path,
            {
                "format": _checkpoint_format.FORMAT,
                "status": status,
                "config": self.cfg,
                "problem": {
                    "name": self.problem._core.name,
                    "dim": self.problem.dim,
                    "fingerprint": self.fingerprint,
                    **ranks_of(self.problem),
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
            if self._stop_requested():
                status = "interrupted"
                break
            t = core.step
            target = self.cfg["steps"]
            if self.callback is not None:
                target = min(target, (t // self.callback_every + 1) * self.callback_every)
            if self.checkpoint is not None:
                target = min(target, (t // self.checkpoint_every + 1) * self.checkpoint_every)
            if self.comm is None:
                budget = _signals.hand_back_seconds(self.progress is not None)
                status = _signals.advance(core, max(target - t, 0), budget)
            else:
                status = self._advance_slice(max(target - t, 0))
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

    def _stop_requested(self) -> bool:
        """A signal ends the run; a distributed run agrees on it (and on the next slice)."""
        if self.comm is None:
            return _signals.stop_requested()
        everyone = self.comm.allgather((_signals.stop_requested(), self.slice_steps))
        self.slice_steps = everyone[0][1]
        return any(stop for stop, _ in everyone)

    def _advance_slice(self, steps: int) -> str:
        """At most ``slice_steps`` steps, not cut short by a signal (the ranks could part);
        rank 0 sizes the next slice to take about the progress interval."""
        steps = min(steps, self.slice_steps)
        begin, start = self.core.step, time.monotonic()
        status = _signals.advance(self.core, steps, math.inf, interruptible=False)
        done, elapsed = self.core.step - begin, time.monotonic() - start
        if self.writes and done > 0:
            rate = done / max(elapsed, 1e-9)
            self.slice_steps = max(1, min(2 * self.slice_steps, int(rate * _PROGRESS_SECONDS)))
        return status


def _is_distributed(problem) -> bool:
    from .distributed import DistributedProblem

    return isinstance(problem, DistributedProblem)


def ranks_of(problem) -> dict:
    """The MPI layout a checkpoint records: ranks and shard sizes (1 and None: one process)."""
    if not _is_distributed(problem):
        return {"ranks": 1, "shard_sizes": None}
    return {"ranks": problem.size, "shard_sizes": list(problem.shard_sizes)}


def check_callbacks(callback, callback_every, checkpoint, checkpoint_every, progress, cfg):
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


def drive(session: Session) -> Trajectory:
    """Drive the session; ``progress=True`` became a bar here, closed at the end."""
    if session.progress is not True:
        return session.drive()
    bar = ProgressBar(session.cfg["steps"], "eosfast.run", enabled=True, initial=session.core.step)
    session.progress = bar.update
    with bar:
        return session.drive()
