"""SIGINT and SIGTERM while a run goes, handled in this one place.

Inside :func:`deferred` a signal is only recorded: no ``KeyboardInterrupt`` is raised in the
middle of a callback, a checkpoint or a record write, so those always finish. The one place
where a signal acts at once is the C++ slice of the loop (:func:`advance`): there it ends the
slice at the runner's last committed step (the runner is transactional), and the caller then
writes a checkpoint of that step and records that match it before it returns.

Handlers can only be installed from the main thread; elsewhere (e.g. a Dask worker thread)
signals keep whatever handling the process has. A signal that the process ignores
(``SIG_IGN``, as for background jobs) stays ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: the shell's exit code for a process ended by each signal (128 + its number)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class _State:
    def __init__(self):
        self.received = None  # the first signal number received, or None
        self.depth = 0  # nesting of deferred()
        self.in_core = False  # a C++ slice is running: the handler may end it
        self.previous = {}


_state = _State()


def _handler(signum, frame):
    if _state.received is None:
        _state.received = signum
    if _state.in_core:
        _state.in_core = False  # at most one KeyboardInterrupt per slice
        raise KeyboardInterrupt


def received() -> int | None:
    """The first signal received inside the latest outermost :func:`deferred`, or None."""
    return _state.received


def stop_requested() -> bool:
    """A signal came while this thread (the main one) is inside :func:`deferred`."""
    return _state.depth > 0 and _state.received is not None and _is_main()


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
