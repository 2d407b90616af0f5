"""Timing, thread control and result rows shared by every benchmark case."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Row:
    """One measurement: a method on one setting of one case.

    ``seconds`` is the best (minimum) of the repeats, the figure least disturbed by other
    processes on a shared machine; ``median`` is kept in the JSON. ``eosfast`` marks the
    library's own entries; every other row is a peer. ``precision`` is "f64" or "f32".
    """

    case: str
    setting: str
    method: str
    seconds: float
    eosfast: bool = False
    precision: str = "f64"
    median: float | None = None
    repeats: int = 1
    metrics: dict = field(default_factory=dict)
    note: str = ""
    peer: bool = True  # False: context only (e.g. a loop without the sharpness), never "best peer"

    def as_dict(self) -> dict:
        return asdict(self)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def use_clock(name: str) -> None:
    """ "wall" (default) or "cpu": this process's CPU time, all its threads summed (for a busy
    machine: at 1 thread it is the work done, undisturbed by other processes; at more
    threads it also counts threads that spin while they wait)."""
    global _clock
    _clock = CLOCKS[name]


@dataclass
class Timing:
    best: float
    median: float
    repeats: int
    value: object = None


def measure(fn, *, min_time: float = 0.2, max_repeats: int = 20, warmup: int = 1) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then repeats until ``min_time`` has passed.

    Returns the best and the median wall time, and the value of the last call. A warmup call
    longer than ``min_time`` leaves one timed call.
    """
    value = None
    slow = False
    for _ in range(warmup):
        t0 = _clock()
        value = fn()
        slow = _clock() - t0 > min_time
    if slow:  # one timed call is all the budget allows
        max_repeats = 1
    times = []
    start = _clock()
    while True:
        t0 = _clock()
        value = fn()
        times.append(_clock() - t0)
        if len(times) >= max_repeats or _clock() - start >= min_time:
            break
    times.sort()
    return Timing(times[0], times[len(times) // 2], len(times), value)


def once(fn) -> Timing:
    """Time one call of ``fn()`` (for solvers whose cost is the quantity measured)."""
    t0 = _clock()
    value = fn()
    dt = _clock() - t0
    return Timing(dt, dt, 1, value)


def failed(case: str, setting: str, method: str, exc: BaseException, eosfast=False) -> Row:
    """A method that raised: kept in the report as NaN with the error, never dropped."""
    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    return Row(case, setting, method, float("nan"), eosfast, note=f"FAILED {msg}")


def all_cores() -> int:
    import eosfast

    return int(eosfast.info()["hardware_threads"])


@contextlib.contextmanager
def threads(n: int):
    """Run eosfast, PyTorch and the BLAS behind numpy/scipy with ``n`` threads each."""
    import eosfast
    from threadpoolctl import threadpool_limits

    torch = _torch_if_loaded()
    before_eos = eosfast.get_num_threads()
    before_torch = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        eosfast.set_num_threads(n)
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            eosfast.set_num_threads(before_eos)
            if torch is not None:
                torch.set_num_threads(before_torch)


def _torch_if_loaded():
    """PyTorch when it is installed (imported here so its thread count is set before use)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt_time(seconds: float) -> str:
    if not finite(seconds):
        return "-"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_value(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v == 0 or not math.isfinite(v):
            return str(v)
        if abs(v) >= 1e4 or abs(v) < 1e-2:
            return f"{v:.2e}"
        return f"{v:.3g}"
    return str(v)


@dataclass
class Context:
    """What every case needs to know about this run."""

    quick: bool
    nthreads: int
    min_time: float
    gemm_rate: dict = field(default_factory=dict)  # threads -> FLOP/s

    def gemm(self, nthreads: int | None = None) -> float:
        return self.gemm_rate.get(nthreads or self.nthreads, float("nan"))
