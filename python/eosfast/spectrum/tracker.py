"""Warm-started tracking of the top Hessian eigenpairs along a trajectory."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from .._validation import as_positive_int
from ._common import EigenResult, check_tol, core_seed, operator

# The C++ defaults (src/cpp/spectrum/tracker.hpp, TrackerOptions): the one declaration.
_DEFAULTS = _core.TrackerOptions()
# Keys a saved state must have ("older" may be absent in states saved before it).
_REQUIRED_KEYS = ("vectors", "values", "k", "rng_state", "measurements")
_STATE_FORMAT = _core.TrackerState.FORMAT


class SharpnessTracker:
    """Tracks the top-k eigenpairs of a slowly changing symmetric operator.

    The first :meth:`measure` is a cold :func:`eigsh`; later ones start a
    single-vector Lanczos run from the sum of the previous eigenvectors (when
    two previous eigenvalues coincide to ``4 * tol`` relative, an :func:`eigsh`
    from that start with its check for missed copies); from the third
    measurement on the previous vectors are first extrapolated linearly from the last two,
    ``normalize(2 v_t - v_{t-1})``. A slowly moving Hessian costs fewer
    products than a cold solve. Each eigenvector's sign is aligned
    with the previous one it overlaps most.

    Parameters
    ----------
    k : int
        Eigenpairs per measurement (the largest algebraic ones).
    tol : float
        Relative residual tolerance, as in :func:`eigsh`: a pair is converged
        when ``||H v - theta v|| <= tol * scale`` (scale an estimate of ``||H||``).
        The eigenvalue error is about the residual squared over the gap to the
        next eigenvalue: along GD on MLPs at the Edge of Stability, ``tol=1e-4``
        gives relative eigenvalue errors below 1e-6 (``benchmarks/bench_spectrum.py``).
    value_tol : float, optional
        If given, a pair also counts as converged when its a-posteriori
        eigenvalue error bound ``r**2 / delta <= value_tol * scale``
        (Kato-Temple), with ``r`` the residual norm and ``delta`` a conservative
        estimate of the distance from the Ritz value to the rest of the
        spectrum (the gap to the nearest other Ritz value, less that value's
        residual estimate and less ``r``; the rule applies only when
        ``delta > 0`` and the neighbouring Ritz values are resolved, i.e. their
        residual estimates are at most a quarter of their distance). The
        eigenvalue error then is about ``value_tol`` relative to ``||H||``,
        while the residual (and the eigenvector angle, about ``r / delta``) may
        be larger than ``tol``: use it when the eigenvalues matter more than
        the vectors. The residuals are still reported, and ``converged`` is
        true for a pair that passed either rule. Eigenvalues the Krylov basis
        has not found are not covered. Applies to the warm measurements (the
        first, cold, one and the :func:`eigsh` fallback for copies use ``tol``
        only).
    grow_above : float, optional
        If given, k grows (up to ``max_k``) until the smallest eigenvalue found
        is below this threshold, so every eigenvalue above it is reported
        (e.g. ``1.5 / lr``); the next measurement starts from
        ``max(k, count above + 1)``.
    max_k : int
        Upper bound for k.
    seed : int, optional
        Seed of the cold start and random restarts.
    max_matvecs : int, optional
        Budget per measurement (default automatic).

    The C++ tracker is ``self._core``; the trajectory runner drives the same class.
    """

    def __init__(
        self,
        k: int = _DEFAULTS.k,
        tol: float = _DEFAULTS.tol,
        value_tol: float | None = None,
        grow_above: float | None = None,
        max_k: int = _DEFAULTS.max_k,
        seed: int | None = 0,
        max_matvecs: int | None = None,
    ):
        k = as_positive_int(k, "k")
        max_k = as_positive_int(max_k, "max_k")
        if max_k < k:
            raise ValueError(f"max_k = {max_k} is smaller than k = {k}")
        if grow_above is None:
            threshold = math.nan
        elif (
            isinstance(grow_above, bool)
            or not isinstance(grow_above, numbers.Real)
            or not np.isfinite(grow_above)
        ):
            raise ValueError(f"grow_above must be a finite real number or None, got {grow_above!r}")
        else:
            threshold = float(grow_above)
        if value_tol is None:
            core_value_tol = 0.0
        else:
            try:
                core_value_tol = check_tol(value_tol)
            except (TypeError, ValueError) as exc:
                raise type(exc)(str(exc).replace("tol", "value_tol", 1)) from None
        budget = 0 if max_matvecs is None else as_positive_int(max_matvecs, "max_matvecs")
        self._options = {
            "k": k,
            "tol": check_tol(tol),
            "value_tol": value_tol if value_tol is None else core_value_tol,
            "grow_above": grow_above if grow_above is None else threshold,
            "max_k": max_k,
            "seed": seed,
            "max_matvecs": max_matvecs,
        }
        self._core = _core.SharpnessTracker(
            _core.TrackerOptions(
                k=k,
                tol=self._options["tol"],
                value_tol=core_value_tol,
                grow_above=threshold,
                max_k=max_k,
                max_matvecs=budget,
                seed=core_seed(seed),
            )
        )

    @property
    def options(self) -> dict:
        return dict(self._options)

    def measure(self, op, *, dim: int | None = None) -> EigenResult:
        """Eigenpairs of ``op`` (any operator :func:`eosfast.as_operator` accepts)."""
        H = operator(op, dim)
        return EigenResult._from_core(self._core.measure(H._core))

    @property
    def last(self) -> EigenResult:
        """The last measurement (after a restore: the saved pairs, residuals NaN)."""
        return EigenResult._from_core(self._core.last())

    def state(self) -> _core.TrackerState:
        """Everything the next measurement depends on: the C++ state, read-only.

        Attributes (and keys: it reads as a mapping of plain values, which is
        what a checkpoint stores, e.g. ``dict(state)``): ``vectors`` (dim,
        k_prev), ``values`` (k_prev), ``older`` (dim, k_older: the eigenvectors
        before those, for the extrapolated start), ``k`` (of the next
        measurement), ``rng_state``, ``measurements``, ``options`` (the
        tracker's options; as a key, a dict in the C++ convention: 0 for no
        ``value_tol`` or ``max_matvecs``, NaN for no ``grow_above``) and
        ``format`` (of the state; a different one is refused). It pickles. A
        tracker rebuilt by :meth:`from_state` continues bitwise identically.
        """
        return self._core.state()

    def restore(self, state) -> None:
        """Continue from ``state``: a :meth:`state` or a mapping with its keys (a
        checkpoint's dict; one without ``older`` starts from ``vectors``).
        Options stay this tracker's."""
        if not isinstance(state, _core.TrackerState):
            state = _state_from_mapping(state)
        self._core.restore(state)

    @classmethod
    def from_state(cls, state) -> SharpnessTracker:
        """A tracker with the saved options, continuing from ``state`` (as :meth:`restore`)."""
        if "options" not in state:
            raise ValueError("tracker state lacks 'options'")
        options = dict(state["options"])
        if "format" not in state:  # a checkpoint of eosfast <= 0.1: the constructor's arguments
            tracker = cls(**options)
        else:
            if state["format"] != _STATE_FORMAT:
                raise ValueError(
                    f"the tracker state has format {state['format']}, this eosfast reads "
                    f"format {_STATE_FORMAT}: continue it with the eosfast that saved it"
                )
            # The saved C++ options exactly (its seed is the one the core used).
            tracker = cls(**_constructor_arguments(options))
            tracker._core = _core.SharpnessTracker(_core.TrackerOptions(**options))
            tracker._options["seed"] = int(options["seed"])
        tracker.restore(state)
        return tracker

    def __repr__(self) -> str:
        opts = ", ".join(f"{key}={value!r}" for key, value in self._options.items())
        return f"SharpnessTracker({opts})"


def _constructor_arguments(options: dict) -> dict:
    """SharpnessTracker arguments but the seed from a state's options (the C++
    convention: 0 for no value_tol or max_matvecs, NaN for no grow_above)."""
    args = {key: options[key] for key in ("k", "tol", "max_k")}
    args["value_tol"] = options["value_tol"] or None
    args["grow_above"] = None if math.isnan(options["grow_above"]) else options["grow_above"]
    args["max_matvecs"] = options["max_matvecs"] or None
    return args


def _state_from_mapping(state) -> _core.TrackerState:
    missing = [key for key in _REQUIRED_KEYS if key not in state]
    if missing:
        raise ValueError(f"tracker state lacks {missing}")
    vectors = np.asfortranarray(np.asarray(state["vectors"], dtype=np.float64))
    values = np.asarray(state["values"], dtype=np.float64)
    if vectors.ndim != 2 or values.ndim != 1 or vectors.shape[1] != values.shape[0]:
        raise ValueError("tracker state: vectors must be (dim, k) and values (k,)")
    older = np.zeros((vectors.shape[0], 0))
    if "older" in state:
        older = np.asfortranarray(np.asarray(state["older"], dtype=np.float64))
        if older.ndim != 2:
            raise ValueError("tracker state: older must be (dim, k_older)")
    return _core.TrackerState(
        vectors=vectors,
        values=values,
        older=older,
        k=int(state["k"]),
        rng_state=int(state["rng_state"]),
        measurements=int(state["measurements"]),
        options=_DEFAULTS,  # restore keeps the tracker's own options
    )
