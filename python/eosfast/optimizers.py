"""Full-batch update rules and learning-rate schedules.

An optimizer is a configuration: ``eosfast.run`` gives each run its own copy of
the C++ update rule, so one optimizer object can start many runs. Each reports
its effective learning rate on L, its stability threshold on lambda_1 (the
sharpness beyond which the step is unstable on the local quadratic model) and
the objective it descends.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _core
from ._validation import as_float_array, as_positive_int, as_real, check_finite


class Schedule:
    """A learning-rate schedule: ``lr_t`` for the update from x_t to x_{t+1}.

    Build one with :meth:`constant`, :meth:`linear_warmup`, :meth:`cosine` or
    :meth:`array`; optimizers also accept a float (constant) or a 1-D array.
    """

    def __init__(self, core):
        self._core = core

    @classmethod
    def constant(cls, lr: float) -> Schedule:
        """``lr_t = lr``."""
        return cls(_core.Schedule.constant(_positive(lr, "lr")))

    @classmethod
    def linear_warmup(cls, lr: float, warmup_steps: int) -> Schedule:
        """``lr_t = lr (t + 1) / warmup_steps`` for ``t < warmup_steps``, then ``lr``."""
        return cls(
            _core.Schedule.linear_warmup(
                _positive(lr, "lr"), as_positive_int(warmup_steps, "warmup_steps")
            )
        )

    @classmethod
    def cosine(
        cls, lr: float, total_steps: int, lr_min: float = 0.0, warmup_steps: int = 0
    ) -> Schedule:
        """Linear warmup, then cosine decay from ``lr`` to ``lr_min`` at ``total_steps``.

        ``lr_t = lr_min + (lr - lr_min) (1 + cos(pi s)) / 2`` with
        ``s = min(1, (t - warmup_steps) / (total_steps - warmup_steps))``.
        """
        return cls(
            _core.Schedule.cosine(
                _positive(lr, "lr"),
                as_positive_int(total_steps, "total_steps"),
                as_real(lr_min, "lr_min"),
                as_positive_int(warmup_steps, "warmup_steps", minimum=0),
            )
        )

    @classmethod
    def array(cls, values) -> Schedule:
        """``lr_t = values[t]``; a run may not take more steps than ``len(values)``."""
        arr = as_float_array(values, "lr array")
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"an lr array must be 1-D and non-empty, got shape {arr.shape}")
        check_finite(arr, "lr array")
        if np.any(arr <= 0):
            raise ValueError("every learning rate in the array must be positive")
        return cls(_core.Schedule.array(np.ascontiguousarray(arr)))

    def __call__(self, t: int) -> float:
        """The learning rate of step ``t``."""
        t = as_positive_int(t, "t", minimum=0)
        if t >= self._core.length:
            raise ValueError(f"the schedule defines {self._core.length} steps, t = {t}")
        return self._core.at(t)

    def values(self, n: int) -> np.ndarray:
        """``lr_t`` for ``t`` in ``range(n)``, shape (n,)."""
        return self._core.values_until(as_positive_int(n, "n", minimum=0))

    @property
    def kind(self) -> str:
        return self._core.kind

    def config(self) -> dict:
        """The parameters that rebuild this schedule (see :meth:`from_config`)."""
        c = self._core
        if c.kind == "array":
            return {"kind": "array", "values": np.array(c.values)}
        out = {"kind": c.kind, "lr": c.lr}
        if c.kind == "linear_warmup":
            out["warmup_steps"] = c.warmup_steps
        elif c.kind == "cosine":
            out.update(total_steps=c.total_steps, lr_min=c.lr_min, warmup_steps=c.warmup_steps)
        return out

    @classmethod
    def from_config(cls, config: dict) -> Schedule:
        kind = str(config["kind"])
        args = {k: _plain(v) for k, v in config.items() if k != "kind"}
        if kind == "array":
            return cls.array(config["values"])
        if kind not in ("constant", "linear_warmup", "cosine"):
            raise ValueError(f"unknown schedule kind {kind!r}")
        return getattr(cls, kind)(**args)

    def __repr__(self) -> str:
        cfg = self.config()
        if cfg["kind"] == "array":
            return f"Schedule.array(<{cfg['values'].size} values>)"
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "kind")
        return f"Schedule.{cfg['kind']}({args})"


def _plain(v):
    return v.item() if isinstance(v, np.generic | np.ndarray) and np.ndim(v) == 0 else v


def _positive(value, name: str) -> float:
    value = as_real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def as_schedule(lr) -> Schedule:
    """A float (constant), a 1-D array (per step) or a :class:`Schedule`."""
    if isinstance(lr, Schedule):
        return lr
    if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
        return Schedule.constant(lr)
    if isinstance(lr, np.ndarray | list | tuple):
        return Schedule.array(lr)
    raise TypeError(f"lr must be a float, a 1-D array or a Schedule, got {type(lr).__name__}")


class Optimizer:
    """Common interface of the update rules (backed by a C++ ``eosfast::Optimizer``)."""

    _core = None

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def schedule(self) -> Schedule:
        return self._schedule

    @property
    def lr(self):
        """The base learning rate (the array for an array schedule)."""
        cfg = self._schedule.config()
        return cfg["values"] if cfg["kind"] == "array" else cfg["lr"]

    def effective_lr(self, loss: float, grad_norm: float, t: int = 0) -> float:
        """The learning rate of the equivalent plain-GD step on L at step ``t``."""
        return self._core.effective_lr(self._schedule(t), float(loss), float(grad_norm))

    def threshold(self, loss: float, grad_norm: float, t: int = 0) -> float:
        """The stability threshold on lambda_1 of the step at ``t``."""
        return self._core.threshold(self._schedule(t), float(loss), float(grad_norm))

    def objective(self, loss: float) -> float:
        """The objective this optimizer descends, as a function of L."""
        return self._core.objective(float(loss))

    def config(self) -> dict:
        """Everything that rebuilds this optimizer (see :func:`optimizer_from_config`)."""
        return {"name": self.name, "schedule": self._schedule.config(), **self._params()}

    def _params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self._params().items())
        return f"{self.name}(lr={self._schedule!r}{params})"


class GD(Optimizer):
    """Gradient descent, optionally with heavy-ball or Nesterov momentum.

    ``v <- momentum v + g``, ``x <- x - lr v``; with ``nesterov=True`` (PyTorch's
    form) ``x <- x - lr (g + momentum v)``. The momentum buffer starts at zero.
    Threshold on lambda_1: ``2/lr``; heavy ball ``(2 + 2 beta)/lr``; Nesterov
    ``(2 + 2 beta)/((1 + 2 beta) lr)``. Objective: L.

    Parameters
    ----------
    lr : float, 1-D array or Schedule
    momentum : float in [0, 1)
    nesterov : bool
    """

    def __init__(self, lr, momentum: float = 0.0, nesterov: bool = False):
        self._schedule = as_schedule(lr)
        momentum = as_real(momentum, "momentum")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self._core = _core.GD(self._schedule._core, momentum, bool(nesterov))

    def _params(self) -> dict:
        return {"momentum": self._core.momentum, "nesterov": self._core.nesterov}


class NormalizedGD(Optimizer):
    """Normalized GD: ``x <- x - lr g / |g|`` (Arora, Li & Panigrahi 2022).

    Effective lr on L ``lr_t = lr / |g|``, threshold ``2 / lr_t``, objective L.
    A run stops with status "converged" at an exactly zero gradient.
    """

    def __init__(self, lr):
        self._schedule = as_schedule(lr)
        self._core = _core.NormalizedGD(self._schedule._core)


class PowerLossGD(Optimizer):
    """GD with constant lr on ``(L - loss_min)^p``.

    ``x <- x - lr p (L - loss_min)^(p-1) g``: effective lr on L
    ``lr p (L - loss_min)^(p-1)``, threshold ``2 / lr_eff``. A run stops with status
    "converged" once ``L <= loss_min``.
    """

    def __init__(self, lr, p: float, loss_min: float = 0.0):
        self._schedule = as_schedule(lr)
        self._core = _core.PowerLossGD(
            self._schedule._core, _positive(p, "p"), as_real(loss_min, "loss_min")
        )

    def _params(self) -> dict:
        return {"p": self._core.p, "loss_min": self._core.loss_min}


class SqrtGD(Optimizer):
    """GD on ``sqrt(L - loss_min)`` (Arora, Li & Panigrahi 2022).

    ``x <- x - lr g / (2 sqrt(L - loss_min))``: effective lr on L
    ``lr / (2 sqrt(L - loss_min))``, threshold ``4 sqrt(L - loss_min) / lr``,
    objective ``sqrt(L - loss_min)``. A run stops with status "converged" once
    ``L <= loss_min``.
    """

    def __init__(self, lr, loss_min: float = 0.0):
        self._schedule = as_schedule(lr)
        self._core = _core.SqrtGD(self._schedule._core, as_real(loss_min, "loss_min"))

    def _params(self) -> dict:
        return {"loss_min": self._core.loss_min}


_OPTIMIZERS = {cls.__name__: cls for cls in (GD, NormalizedGD, PowerLossGD, SqrtGD)}

# The one table of optimizer names (src/cpp/dynamics/optimizer_names.hpp): class
# name, [optimizer] type of a run configuration, eosfast.flow's algorithm, title
# and EoS indicators. Every other spelling is derived from it.
OPTIMIZER_NAMES = _core.OPTIMIZER_NAMES
CONFIG_TYPES = tuple(n.config for n in OPTIMIZER_NAMES if n.config)
FLOW_ALGORITHMS = tuple(n.flow for n in OPTIMIZER_NAMES if n.flow)


def optimizer_names(name: str):
    """The table entry of an optimizer, by class name or configuration type (None if unknown)."""
    for n in OPTIMIZER_NAMES:
        if name in (n.name, n.config) and name:
            return n
    return None


def _snake(name: str) -> str:
    return "".join(
        "_" + c.lower() if c.isupper() and i and name[i - 1].islower() else c.lower()
        for i, c in enumerate(name)
    )


def flow_algorithm(algorithm) -> str:
    """eosfast.flow's name ("ngd" or "sqrt") of an algorithm given by any of its
    names (case-insensitive, e.g. "sqrt", "sqrtgd", "SqrtGD", "sqrt_gd") or an
    optimizer instance."""
    flows = [n for n in OPTIMIZER_NAMES if n.flow]
    if isinstance(algorithm, str):
        word = algorithm.lower()
        for n in flows:
            if word in (n.flow, n.config, n.name.lower(), _snake(n.name)):
                return n.flow
        words = " or ".join(repr(n.flow) for n in flows)
        raise ValueError(f"algorithm must be {words}, got {algorithm!r}")
    if isinstance(algorithm, Optimizer):
        for n in flows:
            if algorithm.name == n.name:
                return n.flow
    choices = ", ".join([repr(n.flow) for n in flows] + [n.name for n in flows][:-1])
    kind = type(algorithm).__name__
    raise TypeError(f"algorithm must be {choices} or {flows[-1].name}, got {kind}")


def optimizer_from_config(config: dict) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.config`."""
    name = str(config["name"])
    if name not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}")
    params = {k: _plain(v) for k, v in config.items() if k not in ("name", "schedule")}
    return _OPTIMIZERS[name](Schedule.from_config(config["schedule"]), **params)
