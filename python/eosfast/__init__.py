"""eosfast: gradient descent at the Edge of Stability, with a C++ core.

Problems (losses with exact gradients, Hessian-vector products and
third-derivative products), Hessian spectra, GD trajectories and the
manifold flows of Arora, Li & Panigrahi (2022).
"""

from . import (
    _core,  # noqa: F401  (selects the kernel variant first)
    flow,
    io,
    problems,
)
from ._gradient_flow import FlowResult, gradient_flow
from ._info import info
from ._threads import (
    _from_environment,
    _register_with_threadpoolctl,
    get_num_threads,
    set_num_threads,
)
from ._version import __version__
from .errors import (
    EigengapWarning,
    FiniteDifferenceWarning,
    FlowConvergenceError,
    NumericalError,
)
from .operators import HessianOperator, Operator, as_operator
from .optimizers import GD, NormalizedGD, PowerLossGD, Schedule, SqrtGD
from .runner import RunInfo, resume, run
from .spectrum import (
    EigenResult,
    PowerResult,
    SharpnessTracker,
    SpectralDensity,
    TraceEstimate,
    eigsh,
    hutchinson,
    hutchpp,
    power_iteration,
    sharpness,
    spectral_density,
)
from .trajectory import Trajectory

_from_environment()
_register_with_threadpoolctl()

__all__ = [
    "GD",
    "EigenResult",
    "EigengapWarning",
    "FiniteDifferenceWarning",
    "FlowConvergenceError",
    "FlowResult",
    "HessianOperator",
    "NormalizedGD",
    "NumericalError",
    "Operator",
    "PowerLossGD",
    "PowerResult",
    "RunInfo",
    "Schedule",
    "SharpnessTracker",
    "SpectralDensity",
    "SqrtGD",
    "TraceEstimate",
    "Trajectory",
    "__version__",
    "as_operator",
    "eigsh",
    "flow",
    "get_num_threads",
    "gradient_flow",
    "hutchinson",
    "hutchpp",
    "info",
    "io",
    "power_iteration",
    "problems",
    "resume",
    "run",
    "set_num_threads",
    "sharpness",
    "spectral_density",
]
