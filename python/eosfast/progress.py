"""A progress bar for long runs (tqdm), silent when not on a terminal or when asked to be."""

from __future__ import annotations

import math
import sys


def on_terminal() -> bool:
    """True when both stdout and stderr are terminals (the bar goes to stderr)."""
    return _isatty(sys.stdout) and _isatty(sys.stderr)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """Steps done, with the latest loss and sharpness; a no-op when disabled.

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
    """

    def __init__(self, total: int, desc: str = "", enabled: bool | None = None, initial=0):
        self.enabled = on_terminal() if enabled is None else bool(enabled)
        self._bar = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.25,
                leave=True,
            )
        self._done = initial

    def update(self, step: int, loss: float | None = None, sharpness: float | None = None):
        """Move to ``step`` (absolute) and show the latest loss and sharpness."""
        if self._bar is None:
            return
        if step > self._done:
            self._bar.update(step - self._done)
            self._done = step
        fields = {}
        if loss is not None and math.isfinite(loss):
            fields["loss"] = f"{loss:.3e}"
        if sharpness is not None and math.isfinite(sharpness):
            fields["sharpness"] = f"{sharpness:.4g}"
        if fields:
            self._bar.set_postfix(fields, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
