"""Spectral density by stochastic Lanczos quadrature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _core
from .._validation import as_float_array, as_positive_int
from ..progress import reporter
from ._common import operator
from .trace import _PROBE_BYTES, rademacher


@dataclass(frozen=True)
class SpectralDensity:
    """A smoothed spectral density and the quadrature behind it.

    Attributes
    ----------
    grid : ndarray, shape (g,)
    density : ndarray, shape (g,)
        ``(1/N) sum_probes sum_i w_i g_sigma(t - theta_i)``, a probability
        density (integrates to 1; multiply by ``dim`` for eigenvalues per unit).
    nodes, weights : ndarray, shape (n_probes, lanczos_steps)
        Gauss quadrature nodes (Ritz values) and weights of each probe; a probe
        whose Krylov space became invariant early has fewer nodes (the rest
        have weight 0). Each probe's weights sum to 1.
    sigma : float
        Width of the Gaussian kernel.
    dim : int
    matvecs : int
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    dim: int
    matvecs: int

    def trace_of(self, f) -> float:
        """Estimate of tr f(H) = dim * mean over probes of sum_i w_i f(theta_i)."""
        values = np.where(self.weights > 0, f(self.nodes), 0.0)
        return float(self.dim * np.mean(np.sum(self.weights * values, axis=1)))


def spectral_density(
    op,
    n_probes: int = 10,
    lanczos_steps: int = 80,
    grid=1000,
    sigma: float | None = None,
    seed: int | None = None,
    *,
    dim: int | None = None,
    progress=None,
) -> SpectralDensity:
    """The spectral density of a symmetric operator by stochastic Lanczos quadrature.

    For each Rademacher probe z (numpy PCG64, ``np.random.default_rng(seed)``),
    ``lanczos_steps`` Lanczos steps with full reorthogonalisation from
    ``z / ||z||`` give a tridiagonal T, whose float64 eigendecomposition yields
    Gauss quadrature nodes theta_i and weights (first eigenvector components
    squared); the density is the average of the node measures convolved with a
    Gaussian of width sigma (Ubaru, Chen & Saad 2017; Ghorbani, Krishnan &
    Xiao 2019).

    Parameters
    ----------
    grid : int or ndarray
        Number of grid points spanning the nodes +- 5 sigma, or the grid itself.
    sigma : float, optional
        Kernel width; default 1% of the node range (or 1e-3 max(1, |node|) if
        all nodes coincide).

    progress : bool or callable, optional
        True: a bar over the probes on stderr (tqdm when installed, a plain
        line otherwise); a callable: ``progress(probes_done, n_probes)`` after
        each batch of probes; None / False: silent.

    Returns
    -------
    SpectralDensity

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> H = np.diag(np.linspace(1.0, 2.0, 50))
    >>> d = eosfast.spectral_density(H, n_probes=4, lanczos_steps=20, seed=0)
    >>> mass = float(d.density.sum() * (d.grid[1] - d.grid[0]))  # a probability density
    >>> round(d.trace_of(lambda t: t), 6), round(mass, 2)
    (75.0, 1.0)
    """
    H = operator(op, dim)
    n_probes = as_positive_int(n_probes, "n_probes")
    steps = min(as_positive_int(lanczos_steps, "lanczos_steps"), H.dim)
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_probes, _PROBE_BYTES // (8 * H.dim)))
    nodes, weights, matvecs = [], [], 0
    with reporter(progress, n_probes, "eosfast.spectral_density", "probe") as bar:
        for start in range(0, n_probes, batch):
            Z = rademacher(rng, H.dim, min(batch, n_probes - start))
            t, w, _counts, m = _core.slq_nodes(H._core, Z, steps)
            nodes.append(np.asarray(t).T)
            weights.append(np.asarray(w).T)
            matvecs += int(m)
            bar.update(start + Z.shape[1], matvecs=matvecs)
    nodes, weights = np.concatenate(nodes), np.concatenate(weights)
    used = nodes[weights > 0]
    lo, hi = float(used.min()), float(used.max())
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else 1e-3 * max(1.0, abs(hi))
    elif not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    sigma = float(sigma)
    if np.isscalar(grid) and not isinstance(grid, np.ndarray):
        t = np.linspace(lo - 5 * sigma, hi + 5 * sigma, as_positive_int(grid, "grid", minimum=2))
    else:
        t = as_float_array(grid, "grid")
        if t.ndim != 1 or t.size < 1:
            raise ValueError("grid must be a 1-D array or a number of points")
    # Gaussian smoothing, accumulated over probes to bound memory.
    density = np.zeros_like(t)
    norm = 1.0 / (n_probes * sigma * np.sqrt(2 * np.pi))
    for theta, w in zip(nodes, weights, strict=True):
        keep = w > 0
        diff = (t[:, None] - theta[keep][None, :]) / sigma
        density += np.exp(-0.5 * diff**2) @ w[keep]
    return SpectralDensity(t, density * norm, nodes, weights, sigma, H.dim, matvecs)
