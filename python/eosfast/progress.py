"""Progress reporting for long calls: a tqdm bar when tqdm is installed, a plain line otherwise.

:class:`Reporter` is the reusable piece: ``reporter(progress, total, desc)`` turns
the ``progress`` argument of a long call (None / False: silent, True: a bar or a
line on stderr, a callable: called with ``(done, total)``) into one object with
``update`` and ``close``. :class:`ProgressBar` is the run's bar (steps, loss and
sharpness), silent when not on a terminal unless asked.
"""

from __future__ import annotations

import math
import sys
import time


def on_terminal() -> bool:
    """True when both stdout and stderr are terminals (the bar goes to stderr).

    Examples
    --------
    >>> from eosfast.progress import on_terminal
    >>> isinstance(on_terminal(), bool)
    True
    """
    return _isatty(sys.stdout) and _isatty(sys.stderr)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def have_tqdm() -> bool:
    """Whether tqdm can be imported (the ``demo`` extra installs it).

    Examples
    --------
    >>> from eosfast.progress import have_tqdm
    >>> isinstance(have_tqdm(), bool)
    True
    """
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


# A plain line at most this often (seconds), so a log file stays short.
_LINE_SECONDS = 1.0


class _Line:
    """The fallback without tqdm: ``desc: done/total unit [fields]`` lines on stderr."""

    def __init__(self, total, desc, unit, initial):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = initial
        self._fields = ""
        self._last = -math.inf

    def update(self, n):
        self.n += n
        self.refresh()

    def set_postfix(self, fields, refresh=False):
        self._fields = ", ".join(f"{k}={v}" for k, v in fields.items())

    def refresh(self, force=False):
        now = time.monotonic()
        if not force and now - self._last < _LINE_SECONDS:
            return
        self._last = now
        total = "?" if self.total is None else self.total
        tail = f" [{self._fields}]" if self._fields else ""
        label = f"{self.desc}: " if self.desc else ""
        print(f"{label}{self.n}/{total} {self.unit}{tail}", file=sys.stderr, flush=True)

    def close(self):
        self.refresh(force=True)


def _bar(total, desc, unit, initial, use_tqdm):
    if use_tqdm:
        from tqdm import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.25,
            leave=True,
        )
    return _Line(total, desc, unit, initial)


class Reporter:
    """Progress of one long call: ``done`` out of ``total`` units.

    Build it with :func:`reporter`. ``update(done, **fields)`` moves to ``done``
    (absolute, never backwards) and shows the finite ``fields``; ``close()``
    ends the bar. Also a context manager.

    Examples
    --------
    >>> from eosfast.progress import reporter
    >>> seen = []
    >>> with reporter(lambda done, total: seen.append((done, total)), 3, "probes") as rep:
    ...     for i in range(3):
    ...         rep.update(i + 1)
    >>> seen
    [(1, 3), (2, 3), (3, 3)]
    >>> reporter(None, 3).enabled
    False
    """

    def __init__(self, total, desc="", unit="it", *, sink=None, bar=None, initial=0):
        self.total, self.desc = total, desc
        self._sink, self._bar = sink, bar
        self._done = initial
        self.enabled = sink is not None or bar is not None

    def update(self, done: int, **fields) -> None:
        """Move to ``done`` (absolute) and show the finite ``fields``."""
        shown = {}
        for key, value in fields.items():
            if isinstance(value, float):
                if not math.isfinite(value):
                    continue
                value = f"{value:.4g}"
            shown[key] = value
        if self._bar is not None:
            if shown:
                self._bar.set_postfix(shown, refresh=False)
            if done > self._done:
                self._bar.update(done - self._done)
        if done > self._done:
            self._done = done
            if self._sink is not None:
                self._sink(done, self.total)

    def close(self) -> None:
        """End the bar (a plain line prints its final state)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def reporter(progress, total: int | None, desc: str = "", unit: str = "it") -> Reporter:
    """The :class:`Reporter` for a call's ``progress`` argument.

    Parameters
    ----------
    progress : None, bool or callable
        None / False: silent. True: a tqdm bar on stderr when tqdm is
        installed, otherwise a plain line on stderr at most once a second and
        at the end. A callable: ``progress(done, total)`` whenever ``done``
        grows.
    total : int or None
        The units of work (None: unknown).
    desc, unit : str
        A short label and the name of one unit of work.

    Returns
    -------
    Reporter

    Raises
    ------
    TypeError
        ``progress`` is none of these.

    Examples
    --------
    >>> from eosfast.progress import reporter
    >>> reporter(True, 10, "demo").enabled
    True
    >>> reporter("yes", 10)
    Traceback (most recent call last):
    ...
    TypeError: progress must be None, a bool or a callable(done, total), got str
    """
    if progress is None or progress is False:
        return Reporter(total, desc, unit)
    if progress is True:
        return Reporter(total, desc, unit, bar=_bar(total, desc, unit, 0, have_tqdm()))
    if not callable(progress):
        raise TypeError(
            "progress must be None, a bool or a callable(done, total), "
            f"got {type(progress).__name__}"
        )
    return Reporter(total, desc, unit, sink=progress)


class ProgressBar(Reporter):
    """Steps done, with the latest loss and sharpness; a no-op when disabled.

    The :class:`Reporter` of a run: its unit is the step and its fields are the loss and
    sharpness.

    A tqdm bar when tqdm is installed, otherwise a plain line on stderr (at
    most once a second and at the end).

    Parameters
    ----------
    total : int
        Steps of the run.
    desc : str
        A short label.
    enabled : bool, optional
        Default: only on a terminal (see :func:`on_terminal`).
    initial : int
        Steps already done (a resumed run).

    Examples
    --------
    >>> from eosfast.progress import ProgressBar
    >>> with ProgressBar(100, "run", enabled=False) as bar:
    ...     bar.update(50, loss=0.1, sharpness=2.0)
    >>> bar.enabled
    False
    """

    def __init__(self, total: int, desc: str = "", enabled: bool | None = None, initial=0):
        enabled = on_terminal() if enabled is None else bool(enabled)
        bar = _bar(total, desc, "step", initial, have_tqdm()) if enabled else None
        super().__init__(total, desc, "step", bar=bar, initial=initial)

    def update(self, step: int, loss: float | None = None, sharpness: float | None = None):
        """Move to ``step`` (absolute) and show the latest loss and sharpness."""
        fields = {}
        if loss is not None and math.isfinite(loss):
            fields["loss"] = f"{loss:.3e}"
        if sharpness is not None and math.isfinite(sharpness):
            fields["sharpness"] = f"{sharpness:.4g}"
        super().update(step, **fields)
