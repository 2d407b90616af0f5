"""eosfast's exception and warning classes."""

from . import _core

NumericalError = _core.NumericalError
"""A numerical failure in the core (derives from RuntimeError)."""


class FlowConvergenceError(NumericalError):
    """Gradient flow (Phi) or the limiting flow did not converge within its budget."""


class EigengapWarning(UserWarning):
    """The top Hessian eigenvalue is (nearly) repeated, so lambda_1 is not differentiable."""


__all__ = ["EigengapWarning", "FlowConvergenceError", "NumericalError"]
