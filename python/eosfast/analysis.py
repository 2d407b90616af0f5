"""Summaries of recorded runs: the Edge of Stability in a few numbers.

The functions take the records of a run as plain arrays, the way a run folder's HDF5 file holds
them: ``records["steps"]`` (step, loss, ...) and ``records["sharpness"]`` (step, threshold,
ratio = lambda_1 / threshold, inv_stableness_sum, sqrt_loss_sum, sqrt_loss_reference,
eigenvalues (m, k), ...).
"""

from __future__ import annotations

import numpy as np

__all__ = ["eos_summary", "indicator_text", "tail"]


def tail(values, fraction: float) -> np.ndarray:
    """The last ``fraction`` of ``values`` (at least one entry when there are any).

    Examples
    --------
    >>> from eosfast.analysis import tail
    >>> tail([1, 2, 3, 4, 5, 6, 7, 8], 0.25)
    array([7, 8])
    >>> tail([1, 2, 3], 0.01)
    array([3])
    """
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return values
    return values[n - max(1, int(round(fraction * n))) :]


def _mean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def eos_summary(records: dict, optimizer: str, last: float = 0.25) -> dict:
    """The numbers of the demo's table for one run.

    Parameters
    ----------
    records : dict
        ``{"steps": {...}, "sharpness": {...}}`` as in a run folder.
    optimizer : {"gd", "ngd", "sqrtgd"}
    last : float
        The fraction of the sharpness measurements averaged over ("the last part of the run").

    Returns
    -------
    dict
        ``final_loss``; ``sharpness`` (mean lambda_1 over the last part); ``sharpness_ratio``
        (mean lambda_1 / threshold over the last part; for GD that is lambda_1 lr / 2, about 1 at
        the edge of stability); for NGD ``inv_stableness_sum`` (mean 1/S_t + 1/S_{t+1}, about
        1); for NGD and sqrt(L)-GD ``sqrt_loss_ratio`` (mean (sqrt L_t + sqrt L_{t+1}) / its
        prediction, about 1).

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.analysis import eos_summary
    >>> records = {
    ...     "steps": {"loss": np.array([1.0, 0.5, 0.25])},
    ...     "sharpness": {
    ...         "ratio": np.array([0.5, 0.9, 1.0, 1.02]),
    ...         "eigenvalues": np.array([[10.0], [18.0], [20.0], [20.4]]),
    ...     },
    ... }
    >>> s = eos_summary(records, "gd")
    >>> s["final_loss"], s["sharpness"], s["sharpness_ratio"]
    (0.25, 20.4, 1.02)
    """
    steps = records.get("steps", {})
    sharp = records.get("sharpness", {})
    losses = np.asarray(steps.get("loss", []), dtype=np.float64)
    out = {"final_loss": float(losses[-1]) if losses.size else None}
    ratio = np.asarray(sharp.get("ratio", []), dtype=np.float64)
    eig = np.asarray(sharp.get("eigenvalues", np.zeros((0, 1))), dtype=np.float64)
    out["sharpness"] = _mean(tail(eig[:, 0], last)) if eig.size else None
    out["sharpness_ratio"] = _mean(tail(ratio, last))
    if optimizer == "ngd":
        out["inv_stableness_sum"] = _mean(tail(sharp.get("inv_stableness_sum", []), last))
    if optimizer in ("ngd", "sqrtgd"):
        num = np.asarray(sharp.get("sqrt_loss_sum", []), dtype=np.float64)
        den = np.asarray(sharp.get("sqrt_loss_reference", []), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["sqrt_loss_ratio"] = _mean(tail(num / den, last)) if num.size else None
    return out


def indicator_text(summary: dict, optimizer: str) -> str:
    """The demo table's indicator cell: each optimizer's own edge-of-stability numbers.

    GD: lambda_1 lr / 2 (the sharpness over its threshold 2 / lr) and the first step where it
    reached 1; NGD: 1/S_t + 1/S_{t+1} and sqrt(L_t) + sqrt(L_{t+1}) over its prediction
    lr sqrt(lambda_1 / 2); GD on sqrt(L): sqrt(L_t) + sqrt(L_{t+1}) over lr lambda_1 / 2.
    Each is about 1 at the edge of stability.

    Examples
    --------
    >>> from eosfast.analysis import indicator_text
    >>> indicator_text({"sharpness_ratio": 1.01, "eos_onset": 120}, "gd")
    'lambda_1*lr/2 = 1.010 (from step 120)'
    >>> indicator_text({"inv_stableness_sum": 0.99, "sqrt_loss_ratio": 1.1}, "ngd")
    '1/S_t + 1/S_{t+1} = 0.990, sqrt(L) sum / prediction = 1.100'
    """

    def fmt(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}f}"

    if optimizer == "gd":
        onset = summary.get("eos_onset")
        since = "never reached 1" if onset is None else f"from step {onset}"
        return f"lambda_1*lr/2 = {fmt(summary.get('sharpness_ratio'))} ({since})"
    sqrt = f"sqrt(L) sum / prediction = {fmt(summary.get('sqrt_loss_ratio'))}"
    if optimizer == "ngd":
        return f"1/S_t + 1/S_{{t+1}} = {fmt(summary.get('inv_stableness_sum'))}, {sqrt}"
    return sqrt
