"""Stochastic trace estimators: Hutchinson and Hutch++."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _core
from .._validation import as_positive_int
from ._common import operator

# Probe columns per C++ call: bounds the probe block to about 64 MB.
_PROBE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class TraceEstimate:
    """A stochastic trace estimate.

    Attributes
    ----------
    estimate : float
    stderr : float
        Standard error of the estimate (sample standard deviation of the
        stochastic part over sqrt of its sample count; NaN with one sample).
    samples : ndarray
        The stochastic samples (``z^T H z``; for Hutch++ those of the deflated
        remainder).
    matvecs : int
    """

    estimate: float
    stderr: float
    samples: np.ndarray
    matvecs: int


def rademacher(rng: np.random.Generator, dim: int, count: int) -> np.ndarray:
    """``count`` Rademacher (+-1) vectors as the columns of a (dim, count) Fortran array."""
    signs = rng.integers(0, 2, size=(count, dim), dtype=np.int8)
    return np.asfortranarray((2.0 * signs - 1.0).T)


def _stderr(samples: np.ndarray) -> float:
    if samples.size < 2:
        return float("nan")
    return float(np.std(samples, ddof=1) / np.sqrt(samples.size))


def hutchinson(op, n_probes: int = 100, seed: int | None = None, *, dim: int | None = None):
    """Hutchinson's estimate of tr(H) from ``n_probes`` Rademacher probes.

    ``tr(H) ~ (1/N) sum_i z_i^T H z_i`` (Hutchinson 1990), probes from numpy's
    PCG64 (``np.random.default_rng(seed)``); one product per probe.

    Returns
    -------
    TraceEstimate

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> H = np.diag([4.0, 1.0, 0.5])
    >>> est = eosfast.hutchinson(H, n_probes=50, seed=0)
    >>> bool(abs(est.estimate - 5.5) < 1.0)
    True
    """
    H = operator(op, dim)
    n_probes = as_positive_int(n_probes, "n_probes")
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_probes, _PROBE_BYTES // (8 * H.dim)))
    parts = []
    for start in range(0, n_probes, batch):
        Z = rademacher(rng, H.dim, min(batch, n_probes - start))
        parts.append(np.asarray(_core.hutchinson_samples(H._core, Z)))
    samples = np.concatenate(parts)
    return TraceEstimate(float(samples.mean()), _stderr(samples), samples, n_probes)


def hutchpp(op, n_matvecs: int = 99, seed: int | None = None, *, dim: int | None = None):
    """Hutch++ estimate of tr(H) with ``n_matvecs`` products.

    Meyer, Musco, Musco & Woodruff (2021), Alg. 1: a third of the products
    sketch the range, ``Q = orth(H S)``; ``tr(Q^T H Q)`` is exact (a third) and
    the remainder ``(I - QQ^T) H (I - QQ^T)`` gets Hutchinson's estimate (the
    last third). With a decaying spectrum the error falls like 1/n_matvecs
    instead of 1/sqrt(n_matvecs). The standard error is that of the remainder.

    Returns
    -------
    TraceEstimate

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast import hutchpp
    >>> H = np.diag([4.0, 1.0, 0.5])  # exact when dim <= n_matvecs / 3:
    >>> round(hutchpp(H, n_matvecs=9, seed=0).estimate, 8)
    5.5
    """
    H = operator(op, dim)
    n_matvecs = as_positive_int(n_matvecs, "n_matvecs", minimum=3)
    rng = np.random.default_rng(seed)
    s = n_matvecs // 3
    S = rademacher(rng, H.dim, s)
    G = rademacher(rng, H.dim, n_matvecs - 2 * s)
    low_rank, samples, _rank, matvecs = _core.hutchpp_parts(H._core, S, G)
    samples = np.asarray(samples)
    return TraceEstimate(float(low_rank + samples.mean()), _stderr(samples), samples, int(matvecs))
