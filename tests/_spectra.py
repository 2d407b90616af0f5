"""Test matrices with known spectra, cheap to build at a few thousand dims."""

import numpy as np


def reflected(rng, spectrum):
    """A dense symmetric matrix with exactly this spectrum: H D H with the
    Householder reflection H = I - 2 u u^T (O(n^2) to build, no QR)."""
    d = np.asarray(spectrum, dtype=float)
    u = rng.standard_normal(d.size)
    u /= np.linalg.norm(u)
    Du = d * u
    A = np.diag(d) - 2 * np.outer(u, Du) - 2 * np.outer(Du, u) + 4 * (u @ Du) * np.outer(u, u)
    return 0.5 * (A + A.T)


def wanted(spectrum, k, which):
    """The k eigenvalues eigsh returns for `which`, in its order."""
    s = np.sort(np.asarray(spectrum, dtype=float))
    if which == "LA":
        return s[::-1][:k]
    if which == "SA":
        return s[:k]
    if which == "LM":
        return s[np.argsort(-np.abs(s), kind="stable")][:k]
    high, low = (k + 1) // 2, k // 2
    return np.sort(np.concatenate([s[::-1][:high], s[:low]]))[::-1]
