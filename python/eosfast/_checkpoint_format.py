"""The checkpoint of a run: its format name, the checks before a resume trusts it, and the
problem's fingerprint that tells a run's own problem from another of the same name and dim."""

from __future__ import annotations

import os

import numpy as np

from . import _core
from ._record_stores import RECORD_KINDS
from .io import DamagedFileError, load_checkpoint

FORMAT = "eosfast-checkpoint-1"
_STATUSES = tuple(s.name for s in _core.RUN_STATUSES)
_PROBE_SLICES = 8


def stream_folder(checkpoint, records: dict) -> str:
    """The stream folder of a checkpoint (stored relative to it; older ones: absolute)."""
    base = os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
    return os.path.normpath(os.path.join(base, records["folder"]))


def fingerprint(problem, x0) -> dict:
    """L and sums of grad L over interleaved slices at x0: they change with the problem's data.

    Stored in checkpoints so that :func:`eosfast.resume` refuses a problem of the same name and dim
    whose data or architecture differ.
    """
    x0 = np.array(x0, dtype=np.float64)
    loss, grad = problem.loss_and_grad(x0)
    grad = np.asarray(grad, dtype=np.float64)
    sums = [float(grad[i::_PROBE_SLICES].sum()) for i in range(_PROBE_SLICES)]
    return {"x0": x0, "loss": float(loss), "grad_sums": np.array(sums)}


def same_fingerprint(a: dict, b: dict) -> bool:
    """Equal up to rounding (another build variant may round differently)."""
    va = np.concatenate([[a["loss"]], np.asarray(a["grad_sums"], dtype=np.float64)])
    vb = np.concatenate([[b["loss"]], np.asarray(b["grad_sums"], dtype=np.float64)])
    if va.shape != vb.shape:
        return False
    scale = max(float(np.max(np.abs(va))), 1e-300)
    return bool(np.all(np.abs(va - vb) <= 1e-9 * scale))


def read_checkpoint(path) -> dict:
    """A checkpoint, checked for damage and for consistency before anything trusts it."""
    name = os.fspath(path)
    try:
        state = load_checkpoint(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile, numpy and OS errors of a damaged file
        raise DamagedFileError(f"{name} is damaged and cannot be read ({_one_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
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
        for kind in RECORD_KINDS:
            count(records["counts"][kind], f"record count of {kind}", step + 2)
    elif records["mode"] == "memory":
        for kind in RECORD_KINDS:
            rows = np.asarray(records[kind])
            if rows.ndim != 2 and rows.size:
                raise ValueError(f"the {kind} records have shape {rows.shape}")
            if len(rows) > step + 2:
                raise ValueError(f"{len(rows)} {kind} records for {step} steps")
    else:
        raise ValueError(f"unknown record mode {records['mode']!r}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
