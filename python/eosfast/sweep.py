"""Sweeps over learning rates and seeds on Dask distributed, one run folder per task.

A sweep runs on a ``LocalCluster`` by default (worker processes with one Dask thread each, as
many as fit the machine's cores given each task's thread budget) or on an existing cluster
(``scheduler="tcp://host:port"``). Each task sets its eosfast thread count first, so workers do
not oversubscribe the machine. A failed task is reported and the others go on; re-running a
sweep skips the runs whose folder holds a finished summary.

Ctrl-C (SIGINT) or SIGTERM stops a sweep without losing work: the driver sets the sweep's stop
event, every running task stops its run at the next hand-back (within about 0.2 s of a step) and
leaves a checkpoint and records of its last step, tasks not yet started do not start, and the
index records each run's status; the same command then continues every run. Local workers
ignore SIGINT themselves (a terminal's Ctrl-C reaches the whole process group), so only the
driver decides. A second signal, or tasks that do not stop within ``STOP_GRACE_SECONDS``, end the
sweep at once (the runs keep their latest periodic checkpoint).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import _signals

__all__ = [
    "TaskResult",
    "plan_workers",
    "point_name",
    "require_dask",
    "run_tasks",
    "sweep",
    "sweep_points",
]

#: how long a stopping sweep waits for its running tasks to checkpoint and return
STOP_GRACE_SECONDS = 120.0
_NOT_STARTED = "eosfast-not-started"


@dataclass
class TaskResult:
    """The outcome of one task: ``ok``, its return value or the error and traceback."""

    name: str
    ok: bool
    value: object = None
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def plan_workers(n_tasks: int, cores: int, threads_per_task: int | None = None):
    """Workers and threads per task for a local cluster: workers x threads <= cores.

    Without ``threads_per_task``: one worker per task up to the number of cores, and the cores
    shared among them. Returns ``(n_workers, threads_per_task)``.

    Examples
    --------
    >>> from eosfast.sweep import plan_workers
    >>> plan_workers(n_tasks=3, cores=8)
    (3, 2)
    >>> plan_workers(n_tasks=10, cores=8, threads_per_task=4)
    (2, 4)
    """
    cores = max(1, int(cores))
    n_tasks = max(1, int(n_tasks))
    if threads_per_task is None:
        n_workers = min(cores, n_tasks)
        return n_workers, max(1, cores // n_workers)
    if threads_per_task < 1:
        raise ValueError(f"threads_per_task must be >= 1, got {threads_per_task}")
    return max(1, min(n_tasks, cores // threads_per_task)), int(threads_per_task)


DASK_MISSING = (
    "sweeps need Dask distributed, which is not installed; "
    "install it with `pip install 'eosfast[sweep]'`"
)


def require_dask() -> None:
    """Raise ``ModuleNotFoundError`` with the install hint when Dask distributed is missing.

    Examples
    --------
    >>> from eosfast.sweep import require_dask
    >>> require_dask()  # nothing happens: distributed is installed
    """
    from importlib.util import find_spec

    if find_spec("distributed") is None:
        raise ModuleNotFoundError(DASK_MISSING, name="distributed")


def _threaded_call(fn, kwargs, threads, stop_event):
    """Runs inside a worker: set the thread budget, call, time it (errors propagate).

    While ``fn`` runs, a watcher thread waits on the sweep's stop event and stops eosfast runs in
    this process when it is set (see :func:`eosfast._signals.watching`); a task whose sweep is
    already stopping does not start.
    """
    from distributed import Event, get_client

    import eosfast

    stop = Event(stop_event, client=get_client())
    if stop.is_set():
        return _NOT_STARTED, 0.0
    eosfast.set_num_threads(threads)
    start = time.perf_counter()
    with _signals.watching(stop.wait):
        value = fn(**kwargs)
    return value, time.perf_counter() - start


def _ignore_interrupts() -> None:
    """On a local worker: SIGINT is the driver's to handle (Ctrl-C reaches the process group)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_tasks(
    fn,
    tasks: dict,
    *,
    scheduler: str | None = None,
    threads_per_task: int | None = None,
    cores: int | None = None,
    on_done=None,
) -> list[TaskResult]:
    """Run ``fn(**kwargs)`` for each ``name -> kwargs`` of ``tasks`` on Dask distributed.

    Parameters
    ----------
    fn : callable
        A picklable function (module level); it runs in a worker with
        ``eosfast.set_num_threads(threads_per_task)`` applied.
    tasks : dict
        Task names to keyword arguments.
    scheduler : str, optional
        Address of an existing scheduler; default: a local cluster on 127.0.0.1.
    threads_per_task : int, optional
        eosfast threads per task. Default: cores / workers.
    cores : int, optional
        Cores of this machine for the local cluster (default ``os.cpu_count()``).
    on_done : callable, optional
        Called with each :class:`TaskResult` as it finishes.

    Returns
    -------
    list of TaskResult
        In the order of ``tasks``; failed tasks have ``ok=False`` and the error's traceback.
        After a stop (SIGINT / SIGTERM inside :func:`eosfast._signals.deferred`, as in the CLI),
        the tasks that never started have ``extra["not_started"]``; outside it a Ctrl-C raises
        ``KeyboardInterrupt`` once the running tasks have stopped and been reported.

    Examples
    --------
    Not run as a doctest, since it starts a Dask cluster (``math.sqrt`` stands for a
    module-level function of the user's):

    >>> import math
    >>> from eosfast.sweep import run_tasks
    >>> results = run_tasks(math.sqrt, {"a": {"x": 4.0}}, cores=2)  # doctest: +SKIP
    >>> [(r.name, r.ok) for r in results]  # doctest: +SKIP
    [('a', True)]
    """
    from distributed import Client, Event, LocalCluster, as_completed

    if not tasks:
        return []
    cluster = None
    if scheduler is None:
        n_workers, threads = plan_workers(len(tasks), cores or os.cpu_count(), threads_per_task)
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        client.run(_ignore_interrupts)
    else:
        client = Client(scheduler)
        threads = threads_per_task or _remote_threads(client)
    results = {}
    stop_event = f"eosfast-stop-{uuid.uuid4().hex}"
    interrupted = False  # a KeyboardInterrupt (outside deferred) to raise once all is reported
    try:
        futures = {
            client.submit(
                _threaded_call, fn, kwargs, threads, stop_event, key=f"eosfast-{name}", pure=False
            ): name
            for name, kwargs in tasks.items()
        }
        pending = as_completed(futures)
        stopping_since = None
        while not pending.is_empty():
            try:
                batch = pending.next_batch(block=False)
                if stopping_since is None and _signals.stop_requested():
                    stopping_since = time.monotonic()
                    Event(stop_event, client=client).set()
            except KeyboardInterrupt:  # a Ctrl-C outside deferred(): stop the tasks, then raise
                if stopping_since is not None:
                    raise  # the second one: leave at once
                interrupted, stopping_since = True, time.monotonic()
                Event(stop_event, client=client).set()
                continue
            for future in batch:
                result = _result(futures[future], future)
                result.extra["threads"] = threads
                results[futures[future]] = result
                if on_done is not None:
                    on_done(result)
            if not batch:
                if stopping_since is not None:
                    waited = time.monotonic() - stopping_since
                    if waited > STOP_GRACE_SECONDS or _signals.repeated():
                        break
                time.sleep(0.05)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if interrupted:
        raise KeyboardInterrupt
    for name in tasks:  # tasks that did not stop in time (their runs keep their checkpoints)
        results.setdefault(name, TaskResult(name, False, error="stopped: did not end in time"))
    return [results[name] for name in tasks]


def _result(name: str, future) -> TaskResult:
    if future.status == "finished":
        value, seconds = future.result()
        if isinstance(value, str) and value == _NOT_STARTED:
            result = TaskResult(name, False, error="not started: the sweep was stopped")
            result.extra["not_started"] = True
            return result
        return TaskResult(name, True, value, seconds=seconds)
    exc = future.exception()
    tb = "".join(traceback.format_exception(type(exc), exc, future.traceback()))
    return TaskResult(name, False, error=f"{type(exc).__name__}: {exc}", traceback=tb)


def _remote_threads(client) -> int:
    """Default budget on an existing cluster: per host, cores / Dask threads (at least 1)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(os.cpu_count)
    per_host_threads, per_host_cores = {}, {}
    for address, info in workers.items():
        host = info.get("host", address)
        per_host_threads[host] = per_host_threads.get(host, 0) + info.get("nthreads", 1)
        per_host_cores[host] = cores.get(address) or 1
    return max(1, min(per_host_cores[h] // per_host_threads[h] for h in per_host_threads))


def sweep_points(lrs, seeds) -> list[dict]:
    """The grid of overrides: every learning rate with every seed.

    Examples
    --------
    >>> from eosfast.sweep import sweep_points
    >>> sweep_points([0.05, 0.1], [0])
    [{'optimizer.lr': 0.05, 'run.seed': 0}, {'optimizer.lr': 0.1, 'run.seed': 0}]
    >>> sweep_points([], [])
    [{}]
    """
    lrs = list(lrs) or [None]
    seeds = list(seeds) or [None]
    points = []
    for lr, seed in itertools.product(lrs, seeds):
        point = {}
        if lr is not None:
            point["optimizer.lr"] = float(lr)
        if seed is not None:
            point["run.seed"] = int(seed)
        points.append(point)
    return points


def point_name(point: dict) -> str:
    """A run folder name for a grid point, e.g. ``lr=0.05_seed=1``.

    Examples
    --------
    >>> from eosfast.sweep import point_name
    >>> point_name({"optimizer.lr": 0.05, "run.seed": 1})
    'lr=0.05_seed=1'
    >>> point_name({})
    'base'
    """
    parts = []
    for key, value in point.items():
        short = key.rsplit(".", 1)[-1]
        parts.append(f"{short}={value:g}" if isinstance(value, float) else f"{short}={value}")
    return "_".join(parts) or "base"


def _sweep_task(config_text: str, run_dir: str) -> dict:
    """One sweep task: run a configuration (given as TOML text) in its run folder."""
    from .config import parse_toml_text
    from .experiment import run_experiment

    config = parse_toml_text(config_text, source=str(Path(run_dir) / "config.toml"))
    return run_experiment(config, run_dir, progress=False)


def sweep(
    config,
    out,
    lrs=(),
    seeds=(),
    *,
    scheduler: str | None = None,
    threads_per_task: int | None = None,
    cores: int | None = None,
    on_done=None,
) -> dict:
    """Run ``config`` for every learning rate and seed, each in ``out/<lr=..._seed=...>``.

    Runs whose folder already holds a finished summary are skipped (and reported as such).
    Returns a dict with ``results`` (one entry per grid point of this sweep: name, run folder,
    status, error); ``out/sweep.json`` holds these rows merged into those of earlier sweeps.

    Examples
    --------
    Not run as a doctest, since it starts a Dask cluster and runs four experiments:

    >>> from eosfast.config import load_config
    >>> from eosfast.sweep import sweep
    >>> config = load_config("gd.toml")  # doctest: +SKIP
    >>> out = sweep(config, "sweep-out", lrs=[0.05, 0.1], seeds=[0, 1])  # doctest: +SKIP
    >>> [row["name"] for row in out["results"]]  # doctest: +SKIP
    ['lr=0.05_seed=0', 'lr=0.05_seed=1', 'lr=0.1_seed=0', 'lr=0.1_seed=1']
    """
    from .run_folder import RunDir, write_json_atomic

    require_dask()  # before any folder is made
    out = Path(out)
    earlier = _read_index(out / "sweep.json")
    out.mkdir(parents=True, exist_ok=True)
    tasks, skipped = {}, {}
    for point in sweep_points(lrs, seeds):
        name = point_name(point)
        run_dir = out / name
        overridden = config.with_overrides({**point, "output.dir": str(run_dir)})
        if RunDir(run_dir).finished():
            skipped[name] = RunDir(run_dir).summary()
            continue
        tasks[name] = {"config_text": overridden.to_toml(), "run_dir": str(run_dir)}
    rows = [
        {"name": n, "run_dir": str(out / n), "status": s.get("status"), "skipped": True}
        for n, s in skipped.items()
    ]
    merged = {row["name"]: row for row in earlier}
    merged.update((row["name"], row) for row in rows)

    def done(result):  # the index follows each finished task: an interrupted sweep keeps it
        row = _task_row(result, out)
        rows.append(row)
        merged[row["name"]] = row
        write_json_atomic(out / "sweep.json", {"results": list(merged.values())})
        if on_done is not None:
            on_done(result)

    write_json_atomic(out / "sweep.json", {"results": list(merged.values())})
    run_tasks(
        _sweep_task,
        tasks,
        scheduler=scheduler,
        threads_per_task=threads_per_task,
        cores=cores,
        on_done=done,
    )
    order = {name: i for i, name in enumerate([*skipped, *tasks])}
    rows.sort(key=lambda row: order[row["name"]])  # skipped first, then the grid's order
    merged = {row["name"]: row for row in earlier}
    merged.update((row["name"], row) for row in rows)
    write_json_atomic(out / "sweep.json", {"results": list(merged.values())})
    return {"results": rows}


def _task_row(r: TaskResult, out: Path) -> dict:
    row = {
        "name": r.name,
        "run_dir": str(out / r.name),
        "skipped": False,
        "seconds": r.seconds,
        "threads": r.extra.get("threads"),
    }
    if r.ok:
        row["status"] = r.value.get("status")
    elif r.extra.get("not_started"):
        row["status"] = "not_started"
    else:
        row.update(status="failed", error=r.error, traceback=r.traceback)
    return row


def _read_index(index: Path) -> list[dict]:
    """The rows of an earlier ``sweep.json`` (none if absent); a damaged index is an error.

    A sweep updates the index instead of replacing it: a grid point that ran again replaces its
    earlier row in place, new points are appended, so two sweeps into one folder keep one index.
    """
    import json

    from .io import DamagedFileError

    if not index.is_file():
        return []
    try:
        rows = json.loads(index.read_text(encoding="utf-8"))["results"]
        if not all(isinstance(row, dict) and isinstance(row["name"], str) for row in rows):
            raise TypeError("rows must be objects with a name")
        return rows
    except (ValueError, KeyError, TypeError) as exc:
        raise DamagedFileError(
            f"{index} is damaged ({exc}); move it away to start a new sweep index"
        ) from None
