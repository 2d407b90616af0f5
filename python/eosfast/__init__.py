"""eosfast: gradient descent at the Edge of Stability, with a C++ core.

Problems (losses with exact gradients, Hessian-vector products and
third-derivative products), Hessian spectra, GD trajectories and the
manifold flows of Arora, Li & Panigrahi (2022).
"""

from . import (
    _core,  # noqa: F401  (selects the kernel variant first)
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
from .operators import HessianOperator, Operator, as_operator
from .optimizers import GD, NormalizedGD, PowerLossGD, Schedule, SqrtGD
from .runner import RunInfo, resume, run
from .trajectory import Trajectory

NumericalError = _core.NumericalError

_from_environment()
_register_with_threadpoolctl()

__all__ = [
    "__version__",
    "as_operator",
    "FlowResult",
    "GD",
    "get_num_threads",
    "gradient_flow",
    "HessianOperator",
    "info",
    "io",
    "NormalizedGD",
    "NumericalError",
    "Operator",
    "PowerLossGD",
    "problems",
    "resume",
    "run",
    "RunInfo",
    "Schedule",
    "set_num_threads",
    "SqrtGD",
    "Trajectory",
]
