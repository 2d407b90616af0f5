"""Progress of the flow computations: ``progress(stage, done, total)`` callables.

``progress=True`` shows one tqdm bar per stage when tqdm is installed, a plain line per
report on stderr otherwise; a callable receives every report; None / False is silent.
"""

from __future__ import annotations

import sys


class _Bars:
    """One tqdm bar per stage, moved to ``done`` of ``total`` at every report."""

    def __init__(self, tqdm):
        self.tqdm = tqdm
        self.bars = {}

    def __call__(self, stage, done, total):
        if stage == "cost":
            _line(stage, done, total)
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = self.tqdm(
                total=total, desc=f"eosfast.flow {stage}", file=sys.stderr, leave=True
            )
        if total != bar.total:
            bar.total = total
        bar.update(max(0, done - bar.n))
        if done >= total:
            bar.close()


def _line(stage, done, total):
    if stage == "cost":
        print(f"eosfast.flow: estimated cost {total}", file=sys.stderr, flush=True)
    else:
        print(f"eosfast.flow: {stage} {done}/{total}", file=sys.stderr, flush=True)


def reporter(progress):
    """The ``progress(stage, done, total)`` callable for a ``progress`` argument."""
    if progress is None or progress is False:
        return lambda stage, done, total: None
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _line
        return _Bars(tqdm)
    if not callable(progress):
        raise TypeError("progress must be None, a bool or a callable(stage, done, total)")
    return progress
