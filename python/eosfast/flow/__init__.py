"""Manifold-flow analysis (Arora, Li & Panigrahi 2022): Phi, tangent projections, the
gradient of the sharpness, the limiting flows of Normalized GD and GD on sqrt(L), and the
distance between a real trajectory and the prediction."""

from ._compare import FlowComparison, Prediction, compare, compare_iterates, predict_and_compare
from ._limiting import LimitingFlow, limiting_flow
from ._manifold import (
    Projection,
    TopEigen,
    grad_sharpness,
    normal_rank,
    project,
    tangent_apply,
    tangent_projector,
    top_eigen,
)

__all__ = [
    "FlowComparison",
    "Prediction",
    "compare",
    "compare_iterates",
    "predict_and_compare",
    "LimitingFlow",
    "Projection",
    "TopEigen",
    "grad_sharpness",
    "limiting_flow",
    "normal_rank",
    "project",
    "tangent_apply",
    "tangent_projector",
    "top_eigen",
]
