"""Manifold-flow analysis (Arora, Li & Panigrahi 2022): Phi, tangent projections, the
gradient of the sharpness, the limiting flows of Normalized GD and GD on sqrt(L), and the
distance between a real trajectory and the prediction; the central flow of GD at the edge
of stability (Cohen, Damian, Talwalkar, Kolter & Lee 2025) and its comparison with GD."""

from ._central import CentralComparison, CentralFlow, central_flow, compare_central
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
from ._sdcp import SDCPSolution, solve_sdcp

__all__ = [
    "CentralComparison",
    "CentralFlow",
    "SDCPSolution",
    "central_flow",
    "compare_central",
    "solve_sdcp",
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
