"""The result of :func:`eosfast.run`: records as numpy arrays with their step indices."""

from __future__ import annotations

import numpy as np

from . import _core
from .optimizers import optimizer_names

# Column layouts and statuses, declared once in C++ (src/cpp/dynamics/records.hpp, runner.hpp).
SCALAR_COLUMNS = tuple(c.name for c in _core.SCALAR_COLUMNS)
SHARPNESS_COLUMNS = tuple(c.name for c in _core.SHARPNESS_COLUMNS)
SHARPNESS_BLOCKS = tuple(c.name for c in _core.SHARPNESS_BLOCKS)
#: the statuses of a returned trajectory (every status but "running")
STATUSES = tuple(s.name for s in _core.RUN_STATUSES if s.name != "running")


class Trajectory:
    """A GD trajectory.

    Per-step records (every ``record_every`` steps and at the last step), with
    ``steps`` their step indices t (the record describes x_t and the step
    x_t -> x_{t+1}):

    - ``loss``, ``grad_norm``: L(x_t), |grad L(x_t)|
    - ``step_norm``: |x_{t+1} - x_t| (NaN at the last step, where no step is taken)
    - ``lr``: the scheduled lr_t; ``effective_lr``: the lr of the equivalent GD step
      on L; ``objective``: what the optimizer descends (L, sqrt(L - loss_min), ...)

    Sharpness records (every ``sharpness_every`` steps), with ``sharpness_steps``:

    - ``eigenvalues`` (n, k): the tracked top eigenvalues of grad^2 L(x_t), descending
      (NaN-padded when fewer were tracked); ``sharpness`` = ``eigenvalues[:, 0]``
    - ``threshold``: the optimizer's stability threshold on lambda_1 at step t;
      ``ratio`` = sharpness / threshold (>= 1 at or beyond the edge of stability)
    - ``step_overlap``, ``grad_overlap`` (n, k): cosines <v_i, x_{t+1} - x_t> / |x_{t+1} - x_t|
      and <v_i, g_t> / |g_t| with the eigenvectors v_i sign-aligned to the previous
      measurement (so the period-2 oscillation shows as alternating signs)
    - ``hvps``: Hessian-vector products spent on each measurement
    - ``eos``: the optimizer's EoS indicators (see :attr:`eos`)

    Also ``iterate_steps`` and ``iterates`` (n, dim) when iterates were saved,
    ``x_final``, ``step`` (steps taken), ``status`` (one of "completed",
    "converged", "diverged", "interrupted", "stopped_by_callback"), ``eos_onset``
    (the first measured step with sharpness >= threshold, or None) and ``metadata``.
    """

    def __init__(
        self, scalars, sharpness, iterates, width, x_final, step, status, eos_onset, metadata
    ):
        self._scalars = scalars
        self._sharpness = sharpness
        self._iterates = iterates
        self._width = int(width)
        self.x_final = np.asarray(x_final)
        self.step = int(step)
        self.status = str(status)
        self.eos_onset = None if eos_onset is None or eos_onset < 0 else int(eos_onset)
        self.metadata = dict(metadata)

    # per-step records
    def _scalar(self, name):
        return self._scalars[:, SCALAR_COLUMNS.index(name)]

    @property
    def steps(self) -> np.ndarray:
        return self._scalar("step").astype(np.int64)

    @property
    def loss(self) -> np.ndarray:
        return self._scalar("loss")

    @property
    def grad_norm(self) -> np.ndarray:
        return self._scalar("grad_norm")

    @property
    def step_norm(self) -> np.ndarray:
        return self._scalar("step_norm")

    @property
    def lr(self) -> np.ndarray:
        return self._scalar("lr")

    @property
    def effective_lr(self) -> np.ndarray:
        return self._scalar("effective_lr")

    @property
    def objective(self) -> np.ndarray:
        return self._scalar("objective")

    # sharpness records
    def _sharp(self, name):
        return self._sharpness[:, SHARPNESS_COLUMNS.index(name)]

    def _block(self, name):
        k = self._tracked()
        base = len(SHARPNESS_COLUMNS) + SHARPNESS_BLOCKS.index(name) * self._width
        return self._sharpness[:, base : base + k]

    def _tracked(self) -> int:
        """Columns that hold at least one measured eigenvalue."""
        base = len(SHARPNESS_COLUMNS)
        eig = self._sharpness[:, base : base + self._width]
        used = np.flatnonzero(np.any(~np.isnan(eig), axis=0)) if eig.size else []
        return int(used[-1]) + 1 if len(used) else min(self._width, 1)

    @property
    def sharpness_steps(self) -> np.ndarray:
        return self._sharp("step").astype(np.int64)

    @property
    def eigenvalues(self) -> np.ndarray:
        return self._block("eigenvalues")

    @property
    def sharpness(self) -> np.ndarray:
        return self.eigenvalues[:, 0] if self._width else np.empty(0)

    @property
    def threshold(self) -> np.ndarray:
        return self._sharp("threshold")

    @property
    def ratio(self) -> np.ndarray:
        return self._sharp("ratio")

    @property
    def hvps(self) -> np.ndarray:
        return self._sharp("hvps").astype(np.int64)

    @property
    def step_overlap(self) -> np.ndarray:
        return self._block("step_overlap")

    @property
    def grad_overlap(self) -> np.ndarray:
        return self._block("grad_overlap")

    @property
    def eos(self) -> dict:
        """EoS indicators at each sharpness measurement t (arrays over ``sharpness_steps``).

        Always ``ratio`` = lambda_1 / threshold (for GD lambda_1 lr / 2). For
        NormalizedGD also ``inv_stableness_sum`` = 1/S_t + 1/S_{t+1} with
        S = lr_eff lambda_1(x_t) (about 1 in Phase II), and for NormalizedGD and
        SqrtGD ``sqrt_loss_sum`` = sqrt(L_t - L_min) + sqrt(L_{t+1} - L_min) with its
        Phase-II value ``sqrt_loss_reference`` (lr sqrt(lambda_1 / 2) for NGD,
        lr lambda_1 / 2 for SqrtGD). Values need step t + 1 and are NaN at a
        measurement on the last step.
        """
        out = {"ratio": self.ratio}
        names = optimizer_names(self.metadata.get("optimizer", {}).get("name", ""))
        for column in () if names is None else names.indicators:  # the optimizer's own
            out[column] = self._sharp(column)
        return out

    # iterates
    @property
    def iterate_steps(self) -> np.ndarray:
        return self._iterates[:, 0].astype(np.int64)

    @property
    def iterates(self) -> np.ndarray:
        return self._iterates[:, 1:]

    @property
    def hvps_total(self) -> int:
        return int(self.hvps.sum()) if len(self._sharpness) else 0

    def __len__(self) -> int:
        return len(self._scalars)

    def __repr__(self) -> str:
        return (
            f"Trajectory(status={self.status!r}, step={self.step}, records={len(self)}, "
            f"sharpness_records={len(self._sharpness)}, eos_onset={self.eos_onset})"
        )
