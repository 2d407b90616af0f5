"""How closely a real trajectory follows the predicted limiting flow."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._limiting import LimitingFlow
from ._manifold import project, top_eigen


@dataclass
class FlowComparison:
    """Per compared step t (tau = lr^2 t):

    - ``distance``: ||Phi(x_t) - X(tau)||
    - ``sharpness_projected``: lambda_1(Phi(x_t)); ``sharpness_flow``: lambda_1(X(tau))
    - ``alignment``: |<x_t - Phi(x_t), v_1>| / ||x_t - Phi(x_t)|| with v_1 at Phi(x_t)
      (the theory predicts x_t oscillates along v_1)
    - ``indicators``: the trajectory's EoS indicators nearest to each step, if recorded.
    """

    steps: np.ndarray
    tau: np.ndarray
    distance: np.ndarray
    sharpness_projected: np.ndarray
    sharpness_flow: np.ndarray
    alignment: np.ndarray
    projections: np.ndarray
    indicators: dict = field(default_factory=dict)

    @property
    def relative_sharpness_error(self) -> np.ndarray:
        return np.abs(self.sharpness_projected - self.sharpness_flow) / np.abs(self.sharpness_flow)

    def table(self) -> str:
        """A plain-text table, one row per compared step."""
        head = (
            f"{'step':>10} {'tau':>10} {'|Phi(x)-X|':>12} {'lam1(Phi x)':>12} "
            f"{'lam1(X)':>12} {'rel.err':>9} {'align':>7}"
        )
        rows = [head, "-" * len(head)]
        for i in range(self.steps.size):
            rows.append(
                f"{self.steps[i]:>10d} {self.tau[i]:>10.4g} {self.distance[i]:>12.4e} "
                f"{self.sharpness_projected[i]:>12.6g} {self.sharpness_flow[i]:>12.6g} "
                f"{self.relative_sharpness_error[i]:>9.2e} {self.alignment[i]:>7.3f}"
            )
        return "\n".join(rows)

    def as_dict(self) -> dict:
        out = {
            name: getattr(self, name)
            for name in (
                "steps",
                "tau",
                "distance",
                "sharpness_projected",
                "sharpness_flow",
                "alignment",
            )
        }
        out["relative_sharpness_error"] = self.relative_sharpness_error
        return out


def compare_iterates(
    problem,
    iterates,
    steps,
    lr: float,
    flow: LimitingFlow,
    *,
    step_offset: int = 0,
    project_tol=1e-11,
) -> FlowComparison:
    """Compare iterates x_t (rows of ``iterates`` at ``steps``) with the flow at
    tau = lr^2 (t - step_offset)."""
    iterates = np.asarray(iterates, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.int64)
    tau = lr * lr * (steps - step_offset)
    states = flow.at(tau)
    n = steps.size
    distance, lam_proj, lam_flow, align = (np.empty(n) for _ in range(4))
    projections = np.empty_like(iterates)
    v_proj = v_flow = None
    for i in range(n):
        phi = project(problem, iterates[i], tol=project_tol).point
        projections[i] = phi
        top_p = top_eigen(problem, phi, v0=v_proj)
        top_f = top_eigen(problem, states[i], v0=v_flow)
        v_proj, v_flow = top_p.vector, top_f.vector
        offset = iterates[i] - phi
        distance[i] = np.linalg.norm(phi - states[i])
        lam_proj[i], lam_flow[i] = top_p.sharpness, top_f.sharpness
        norm = np.linalg.norm(offset)
        align[i] = abs(offset @ top_p.vector) / norm if norm > 0 else np.nan
    return FlowComparison(steps, tau, distance, lam_proj, lam_flow, align, projections)
