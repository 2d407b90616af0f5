"""The library objects an experiment configuration describes: its problem, optimizer and
initial point."""

from __future__ import annotations

import os

import numpy as np

from .config import Config, ConfigError
from .io import DamagedFileError
from .records_file import read_records
from .run_folder import RunDir


def mpi_world():
    """``MPI.COMM_WORLD`` when mpiexec started this process as one of several ranks, else None.

    Read from the launcher's environment (MPICH's ``PMI_SIZE``, Open MPI's
    ``OMPI_COMM_WORLD_SIZE``), so a single process never imports mpi4py.
    """
    sizes = [os.environ.get(v) for v in _MPI_SIZE_VARIABLES]
    size = next((int(v) for v in sizes if v and v.isdigit()), 1)
    if size < 2:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise ConfigError(
            f"started by mpiexec as one of {size} ranks, but mpi4py is not installed: "
            "pip install 'eosfast[mpi]'"
        ) from None
    return MPI.COMM_WORLD


_MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def build_problem(config: Config, comm=None):
    """The configuration's problem (an ``eosfast.problems.MLP`` on its data).

    With an MPI ``comm`` of several ranks: this rank's contiguous shard of the samples
    (:func:`eosfast.distributed.shard_slice`) in a
    :class:`~eosfast.distributed.DistributedProblem`, the same full-batch problem.
    """
    import eosfast

    from .data import load_data

    p = config["problem"]
    try:
        X, Y = load_data(config["data"])
        if comm is not None:
            from .distributed import DistributedProblem, shard_slice

            mine = shard_slice(len(X), comm)
            # the classes of all the data: a shard may lack the last ones
            classes = int(np.max(Y)) + 1 if p["loss"] == "ce" else None
            return DistributedProblem(_mlp(eosfast, X[mine], Y[mine], p, classes), comm)
        return _mlp(eosfast, X, Y, p)
    except (ValueError, TypeError) as exc:  # the data or sizes do not fit: bad input
        raise ConfigError(
            f"{config.source}: [data] / [problem]: {exc}; fix the configuration or the data"
        ) from exc


def _mlp(eosfast, X, Y, p, num_classes=None):
    return eosfast.problems.MLP(
        X,
        Y,
        hidden=tuple(p["hidden"]),
        activation=p["activation"],
        loss=p["loss"],
        bias=p["bias"],
        num_classes=num_classes,
    )


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
    if source is None:  # a distributed problem: its shard's MLP draws the same initial point
        return getattr(problem, "local", problem).init(config["run"]["seed"])
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
