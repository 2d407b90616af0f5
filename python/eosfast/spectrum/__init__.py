"""Hessian spectra, matrix-free: eigsh, the sharpness tracker, power iteration,
trace estimators and spectral densities. The solvers run in C++ over any
operator :func:`eosfast.as_operator` accepts."""

from ._common import EigenResult
from .density import SpectralDensity, spectral_density
from .eigsh import eigsh, sharpness
from .power import PowerResult, power_iteration
from .trace import TraceEstimate, hutchinson, hutchpp
from .tracker import SharpnessTracker

__all__ = [
    "EigenResult",
    "PowerResult",
    "SharpnessTracker",
    "SpectralDensity",
    "TraceEstimate",
    "eigsh",
    "hutchinson",
    "hutchpp",
    "power_iteration",
    "sharpness",
    "spectral_density",
]
