"""Loss functions with exact derivatives: built-in C++ kernels and Python callbacks."""

from ._base import Problem
from .callback import Callback
from .matrix import MatrixFactorization, MatrixSensing
from .mlp import MLP
from .quadratic import Quadratic
from .toys import Circle, ScalarProduct, TwoNormal, Valley2D

__all__ = [
    "MLP",
    "Callback",
    "Circle",
    "MatrixFactorization",
    "MatrixSensing",
    "Problem",
    "Quadratic",
    "ScalarProduct",
    "TwoNormal",
    "Valley2D",
]
