"""The trajectory runner: :func:`run` and :func:`resume`.

The loop runs in C++ with the GIL released and hands control back to Python
only every ``callback_every`` / ``checkpoint_every`` steps, when a record
buffer is full, or every ~0.2 s when a ``progress`` callable is given
(:mod:`eosfast._run_loop`). Records go to memory or to ``.npy`` files
(:mod:`eosfast._record_stores`); checkpoints are checked before a resume trusts
them (:mod:`eosfast._checkpoint_format`).
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import _core
from ._checkpoint_format import fingerprint, read_checkpoint, same_fingerprint, stream_folder
from ._record_stores import MemoryStore, StreamStore, capacities
from ._run_loop import RunInfo, Session, check_callbacks, drive, ranks_of
from ._validation import as_positive_int, as_vector
from .optimizers import Optimizer, optimizer_from_config
from .problems import Problem
from .trajectory import Trajectory

__all__ = ["RunInfo", "check_resumable", "resume", "run"]
_ENDED = tuple(s.name for s in _core.RUN_STATUSES if s.ended)


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
    diverge_factor: float = _core.RunConfig().diverge_factor,
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
    callbacks = check_callbacks(
        callback, callback_every, checkpoint, checkpoint_every, progress, cfg
    )
    cfg["checkpoint_every"] = callbacks[3]
    if cfg["sharpness_every"] > 0 and tracker is None:
        from . import SharpnessTracker

        tracker = SharpnessTracker(k=1)
    if cfg["sharpness_every"] == 0:
        tracker = None
    distributed = ranks_of(problem)["ranks"] > 1
    if distributed:
        problem.check_same(x0, "x0")
    session = Session(problem, optimizer, tracker, cfg, x0, callbacks)
    if checkpoint is not None:
        session.fingerprint = fingerprint(problem, x0)  # collective on a distributed problem
    if stream is None or (distributed and not session.writes):
        session.store = MemoryStore(session.widths, capacities(cfg))
    else:
        session.store = StreamStore(stream, session.widths)
    return drive(session)


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
    saved_fingerprint = saved.get("fingerprint")
    cfg = dict(state["config"])
    optimizer = optimizer_from_config(state["optimizer"])
    tracker = None
    if state["tracker"] is not None:
        from . import SharpnessTracker

        tracker = SharpnessTracker.from_state(state["tracker"])
    callbacks = check_callbacks(
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
    session = Session(problem, optimizer, tracker, cfg, x, callbacks)
    session.core.restore(runner_state)
    session.wall_time = float(state.get("wall_time", 0.0))
    session.fingerprint = saved_fingerprint
    records = state["records"]
    if records["mode"] == "stream" and not session.writes:
        session.store = MemoryStore(session.widths, capacities(cfg))  # rank 0 owns the stream
    elif records["mode"] == "stream":
        session.store = StreamStore(
            stream_folder(path, records), session.widths, records["counts"], records.get("crcs")
        )
    else:
        session.store = MemoryStore(session.widths, capacities(cfg), records)
    if state["status"] in _ENDED:  # a callback's stop or a signal: go on
        traj = session.trajectory(state["status"])
        session.store.close()
        return traj
    return drive(session)


def check_resumable(path, problem) -> dict:
    """The checkpoint's state if ``problem`` may continue it; ``ValueError`` saying why not.

    Refuses a damaged or inconsistent checkpoint and a problem other than the run's own: another
    name or dim, or the same ones with other data (its fingerprint, L and grad L at x0, differs).
    """
    state = read_checkpoint(path)
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be an eosfast problem, got {type(problem).__name__}")
    saved = state["problem"]
    ranks, shards = _layout(saved)
    mine, my_shards = _layout(ranks_of(problem))
    if (ranks, shards) != (mine, my_shards):
        raise ValueError(
            f"{os.fspath(path)} was written by a run on {ranks} MPI rank(s) (shard sizes "
            f"{shards}), this problem is on {mine} (shard sizes {my_shards}); resume with the "
            f"same ranks and shards (mpiexec -n {ranks}): another layout sums in another "
            "order, so the run would not continue bitwise"
        )
    if saved["dim"] != problem.dim or saved["name"] != problem._core.name:
        raise ValueError(
            f"the checkpoint is of a {saved['name']} problem of dim {saved['dim']}, "
            f"got {problem._core.name} of dim {problem.dim}"
        )
    saved_fingerprint = saved.get("fingerprint")
    if saved_fingerprint is not None and not same_fingerprint(
        saved_fingerprint, fingerprint(problem, saved_fingerprint["x0"])
    ):
        raise ValueError(
            f"{os.fspath(path)} is a run of a different {saved['name']} problem (same name and "
            "dim, but its loss and gradient differ: other data or architecture); resume it "
            "with the problem it was started on"
        )
    return state


def _layout(problem_entry: dict) -> tuple[int, list | None]:
    """(ranks, shard sizes) of a checkpoint's problem entry (older checkpoints: one process)."""
    shards = problem_entry.get("shard_sizes")
    shards = None if shards is None else [int(n) for n in np.ravel(shards)]
    return int(problem_entry.get("ranks", 1)), shards
