"""The library objects an experiment configuration describes: its problem, optimizer and
initial point."""

from __future__ import annotations

import numpy as np

from .config import Config, ConfigError
from .io import DamagedFileError
from .records_file import read_records
from .run_folder import RunDir


def build_problem(config: Config):
    """The configuration's problem (an ``eosfast.problems.MLP`` on its data)."""
    import eosfast

    from .data import load_data

    p = config["problem"]
    try:
        X, Y = load_data(config["data"])
        return eosfast.problems.MLP(
            X,
            Y,
            hidden=tuple(p["hidden"]),
            activation=p["activation"],
            loss=p["loss"],
            bias=p["bias"],
        )
    except (ValueError, TypeError) as exc:  # the data or sizes do not fit: bad input
        raise ConfigError(
            f"{config.source}: [data] / [problem]: {exc}; fix the configuration or the data"
        ) from exc


def build_optimizer(config: Config):
    """``eosfast.GD``, ``eosfast.NormalizedGD`` or ``eosfast.SqrtGD`` from ``[optimizer]``."""
    import eosfast

    o = config["optimizer"]
    if o["type"] == "gd":
        return eosfast.GD(o["lr"], momentum=o["momentum"], nesterov=o["nesterov"])
    if o["type"] == "ngd":
        return eosfast.NormalizedGD(o["lr"])
    return eosfast.SqrtGD(o["lr"], loss_min=o["loss_min"])


def initial_point(config: Config, problem) -> np.ndarray:
    """``problem.init(seed)``, or the final iterate of the run folder ``[run] init_from``."""
    source = config["run"]["init_from"]
    if source is None:
        return problem.init(config["run"]["seed"])
    records = RunDir(source).records
    try:
        if not RunDir(source).finished() or not records.is_file():
            raise ConfigError(f"[run] init_from: {source} is not a finished run folder")
        x0 = read_records(records).get("x_final")
    except DamagedFileError as exc:
        raise ConfigError(f"[run] init_from: {exc}") from None
    if x0 is None or np.shape(x0) != (problem.dim,):
        raise ConfigError(
            f"[run] init_from: the final iterate in {records} has shape {np.shape(x0)}, "
            f"the problem has dim {problem.dim}"
        )
    return np.asarray(x0, dtype=np.float64)
