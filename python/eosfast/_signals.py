"""SIGINT and SIGTERM while a run goes, handled in this one place.

Inside :func:`deferred` a signal is only recorded: no ``KeyboardInterrupt`` is raised in the
middle of a callback, a checkpoint or a record write, so those always finish. The one place
where a signal acts at once is the C++ slice of the loop (:func:`advance`): there it ends the
slice at the runner's last committed step (the runner is transactional), and the caller then
writes a checkpoint of that step and records that match it before it returns.

Handlers can only be installed from the main thread; elsewhere (e.g. a Dask worker thread)
signals keep whatever handling the process has. There a run is stopped by :func:`request_stop`
instead (a sweep's tasks watch the sweep's stop event, see :mod:`eosfast.sweep`): the run ends at
its next hand-back, with the same checkpoint and records as after a signal. A signal that the
process ignores (``SIG_IGN``, as for background jobs) stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the shell's exit code for a process ended by each signal (128 + its number)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: the longest a C++ slice runs when someone waits on it (a progress bar, a stop watcher)
HAND_BACK_SECONDS = 0.2


class _State:
    def __init__(self):
        self.received = None  # the first signal number received, or None
        self.count = 0  # signals received inside the outermost deferred()
        self.depth = 0  # nesting of deferred()
        self.in_core = False  # a C++ slice is running: the handler may end it
        self.previous = {}
        self.requested = None  # a signal number passed to request_stop(), for every thread
        self.watched = 0  # stop watchers running: runs hand back often enough to notice


_state = _State()


def _handler(signum, frame):
    _state.count += 1
    if _state.received is None:
        _state.received = signum
    if _state.in_core:
        _state.in_core = False  # at most one KeyboardInterrupt per slice
        raise KeyboardInterrupt


def received() -> int | None:
    """The first signal received inside the latest outermost :func:`deferred` (or the one
    passed to :func:`request_stop`), or None."""
    return _state.received if _state.received is not None else _state.requested


def stop_requested() -> bool:
    """A signal came while this thread (the main one) is inside :func:`deferred`, or a stop
    was requested for every thread (:func:`request_stop`)."""
    if _state.requested is not None:
        return True
    return _state.depth > 0 and _state.received is not None and _is_main()


def repeated() -> bool:
    """A second signal came inside the outermost :func:`deferred` (the user insists)."""
    return _state.count >= 2


def request_stop(signum: int) -> None:
    """Stop the runs of this process at their next hand-back, as ``signum`` would (any thread)."""
    _state.requested = signum


@contextlib.contextmanager
def watching(stopped):
    """While inside, a thread polls ``stopped(timeout)`` (True: stop) and calls
    :func:`request_stop` with SIGINT when it says so; runs hand back every HAND_BACK_SECONDS."""
    done = threading.Event()

    def watch():
        while not done.is_set():
            if stopped(0.5):
                request_stop(signal.SIGINT)
                return

    _state.requested = None
    _state.watched += 1
    watcher = threading.Thread(target=watch, name="eosfast-stop-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        _state.watched -= 1
        _state.requested = None


def hand_back_seconds(progress: bool) -> float:
    """How long a C++ slice may run before it hands back: short when someone waits on it."""
    return HAND_BACK_SECONDS if progress or _state.watched > 0 else float("inf")


def _is_main() -> bool:
    return threading.current_thread() is threading.main_thread()


def signal_name(signum: int | None) -> str | None:
    return None if signum is None else signal.Signals(signum).name


@contextlib.contextmanager
def deferred():
    """Record SIGINT / SIGTERM instead of raising them (nestable; main thread only)."""
    if not _is_main():
        yield
        return
    outer = _state.depth == 0
    if outer:
        _state.received = None
        _state.count = 0
        _state.previous = {}
        for signum in SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                _state.previous[signum] = signal.signal(signum, _handler)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if outer:
            for signum, handler in _state.previous.items():
                signal.signal(signum, handler)
            _state.previous = {}


def advance(core, steps: int, seconds: float, interruptible: bool = True) -> str:
    """``core.advance(steps, seconds)``; a signal during it ends it with "interrupted".

    Not ``interruptible`` (a distributed run, whose ranks must stop at the same step): a
    signal is only recorded, and the caller stops at the next hand-back.
    """
    try:
        _state.in_core = interruptible and _state.depth > 0 and _is_main()
        status = core.advance(steps, seconds)
    except KeyboardInterrupt:  # from the handler, or a Ctrl-C outside deferred()
        status = "interrupted"
    finally:
        _state.in_core = False
    if status == "interrupted" and core.status != "running":
        status = core.status  # the slice had already ended on its own
    return status
