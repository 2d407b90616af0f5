"""eosfast's exception and warning classes."""

from . import _core

NumericalError = _core.NumericalError
"""A numerical failure in the core (derives from RuntimeError)."""


class FlowConvergenceError(NumericalError):
    """Gradient flow (Phi) or the limiting flow did not converge within its budget."""


class EigengapWarning(UserWarning):
    """The top Hessian eigenvalue is (nearly) repeated, so lambda_1 is not differentiable."""


class FiniteDifferenceWarning(UserWarning):
    """A result rests on finite-difference derivatives (a problem without an exact
    ``third`` or ``hvp``): expect about 1e-8 relative error, not machine precision."""


__all__ = ["EigengapWarning", "FiniteDifferenceWarning", "FlowConvergenceError", "NumericalError"]
