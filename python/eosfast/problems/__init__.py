"""Loss functions with exact derivatives: built-in C++ kernels and Python callbacks."""

from ._base import Problem
from .callback import Callback
from .quadratic import Quadratic

__all__ = ["Callback", "Problem", "Quadratic"]
