"""Data-parallel problems over MPI: each rank holds a shard of the samples.

A :class:`DistributedProblem` wraps the problem of one rank's shard (an
:class:`~eosfast.problems.MLP`, :class:`~eosfast.problems.MatrixSensing`, an
``eosfast.torch`` problem, any problem whose loss is a mean over samples) and
is the full-batch problem on every rank: loss, gradient, HVP blocks and
``third`` are the shards' results weighted by ``n_r / n`` (shard sizes ``n_r``,
``n = sum n_r``) and summed over the ranks. Everything above the problem
(:func:`eosfast.run`, :func:`eosfast.eigsh`, the tracker, :mod:`eosfast.flow`)
runs unchanged, the same calls on every rank.

The reduction is deterministic: every rank sends its partial result with
``MPI_Allgather`` and every rank adds the P parts in rank order, so all ranks
hold bitwise identical sums, and two runs with the same ranks and shards give
bitwise identical results (``MPI_Allreduce`` fixes no order). Against the
single-process problem on all the data the sums differ by rounding only: each
shard's mean and the weighted sum of P terms add at most about
``(P + 2) eps`` relative to the sum of the terms' magnitudes
(``docs/distributed.md``; the tests check 1e-12).

Needs ``mpi4py`` (the ``mpi`` extra: ``pip install "eosfast[mpi]"`` brings
MPICH's wheel and its ``mpiexec``); start ``mpiexec -n P python -m mpi4py script.py``
so that an exception outside eosfast's collective calls aborts the whole job.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from . import _core
from ._validation import as_block, as_positive_int, as_vector
from .problems import Problem

__all__ = ["CommunicationStats", "DistributedError", "DistributedProblem", "shard_slice"]

# The header of every message: the status (0 ok, 1 this rank raised) and the fingerprint
# of the inputs (x and the vectors), 64 bits as two 32-bit halves, exact in float64.
_HEADER = 3
_OK, _RAISED = 0.0, 1.0


class DistributedError(RuntimeError):
    """A collective evaluation failed: a rank raised, or the ranks disagree.

    Every rank raises it with the same message (the failing rank and its error), so
    no rank waits for the others forever.
    """


@dataclass
class CommunicationStats:
    """The collective evaluations of a :class:`DistributedProblem` on this rank, so far.

    ``seconds`` is the time inside ``MPI_Allgather``: the messages and the wait for the
    slowest rank (load imbalance); ``doubles`` counts what this rank sent (each rank
    receives ``size`` times as much).
    """

    calls: int = 0
    seconds: float = 0.0
    doubles: int = 0

    def add(self, seconds: float, doubles: int) -> None:
        self.calls += 1
        self.seconds += seconds
        self.doubles += doubles


def _comm_world():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - the tests skip without mpi4py
        raise ImportError("eosfast.distributed needs mpi4py: pip install 'eosfast[mpi]'") from exc
    return MPI.COMM_WORLD


def shard_slice(n: int, comm=None) -> slice:
    """This rank's contiguous block of ``n`` samples (balanced: sizes differ by at most 1).

    Rank r of P gets samples ``[r n // P, (r + 1) n // P)``; ``comm`` defaults to
    ``MPI.COMM_WORLD``. Raises ValueError when ``n < P`` (a rank would get no sample).

    Examples
    --------
    >>> from eosfast.distributed import shard_slice
    >>> shard_slice(10)  # one process: every sample
    slice(0, 10, None)
    """
    comm = _comm_world() if comm is None else comm
    n = as_positive_int(n, "n")
    rank, size = comm.Get_rank(), comm.Get_size()
    if n < size:
        raise ValueError(f"{n} samples cannot be shared by {size} ranks (a shard would be empty)")
    return slice(rank * n // size, (rank + 1) * n // size)


def _shard_size(problem) -> int:
    """The number of samples the shard's loss averages over."""
    for attr in ("n_samples", "measurements"):
        value = getattr(problem, attr, None)
        if value is not None:
            return int(value)
    raise TypeError(
        f"cannot tell how many samples a {type(problem).__name__} averages over; "
        "pass n_local (this rank's number of samples)"
    )


def _definition(problem) -> str:
    """What must agree between ranks: the type, dim and architecture, not the data."""
    parts = [type(problem).__name__, str(problem.dim)]
    for attr in ("layer_sizes", "activation", "loss_name", "bias", "shape", "rank", "names"):
        value = getattr(problem, attr, None)
        if value is not None and not callable(value):
            parts.append(f"{attr}={value!r}")
    if hasattr(problem, "shapes") and hasattr(problem, "names"):
        parts.append(f"shapes={problem.shapes!r}, dtype={problem.dtype}")
    return "; ".join(parts)


def _digest(*arrays) -> int:
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return int.from_bytes(h.digest(), "little")


class DistributedProblem(Problem):
    """The full-batch problem of the shards held by the MPI ranks.

    Every rank constructs it with its own shard, collectively (the constructor
    and every evaluation are collective calls on ``comm``).

    Parameters
    ----------
    local : eosfast.problems.Problem
        This rank's problem on its shard; its loss must be a mean over its samples
        (the MLP's and matrix sensing's conventions, ``eosfast.torch`` with a
        batch-averaging ``loss_fn``).
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``.
    n_local : int, optional
        The shard's number of samples; default ``local.n_samples`` (MLP,
        ``eosfast.torch`` with a tensor pair) or ``local.measurements``.
    x0 : ndarray (dim,), optional
        A starting point that must be bitwise the same on every rank (checked).

    Notes
    -----
    Every evaluation is one ``MPI_Allgather`` of ``3 + m`` doubles per rank (``m``:
    1 for the loss, ``dim + 1`` for loss and gradient, ``dim x cols`` for an HVP
    block, ``dim`` for ``third``) after the local evaluation. The message carries
    a status flag and a 64-bit hash of the inputs: a rank whose evaluation raised
    makes every rank raise :class:`DistributedError` (the raising rank chains its
    own exception), and ranks evaluating at different points (e.g. ``eigsh`` with
    ``seed=None``, a fresh random start per rank) raise at the first such call.
    Construction checks that the ranks agree on the problem's definition (type,
    dim, architecture) and on ``x0``, and refuses an empty shard.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.distributed import DistributedProblem, shard_slice
    >>> from eosfast.problems import MLP
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    >>> mine = shard_slice(len(X))  # under mpiexec -n P: this rank's rows
    >>> problem = DistributedProblem(MLP(X[mine], Y[mine], hidden=(4,)))
    >>> x = problem.local.init(seed=0)
    >>> full = MLP(X, Y, hidden=(4,))
    >>> bool(np.allclose(problem.grad(x), full.grad(x), rtol=1e-13, atol=0))
    True
    """

    def __init__(self, local, comm=None, *, n_local=None, x0=None):
        if not isinstance(local, Problem):
            raise TypeError(f"local must be an eosfast problem, got {type(local).__name__}")
        if isinstance(local, DistributedProblem):
            raise TypeError("local is already a DistributedProblem")
        self._comm = _comm_world() if comm is None else comm
        self.local = local
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        n = _shard_size(local) if n_local is None else n_local
        n = int(n) if isinstance(n, (int, np.integer)) and not isinstance(n, bool) else None
        x0_digest = None if x0 is None else _digest(as_vector(x0, local.dim, "x0"))
        mine = (n, local.dim, _definition(local), x0_digest)
        everyone = self._comm.allgather(mine)
        self._check_agreement(everyone, n_local)
        self.shard_sizes = tuple(e[0] for e in everyone)
        self.n_samples = sum(self.shard_sizes)
        self.weights = np.array([s / self.n_samples for s in self.shard_sizes])
        self.communication = CommunicationStats()
        self._hessian = None  # (x, the shard's Hessian operator at x)
        self._core = _core.CallbackProblem(
            self._loss_and_grad, local.dim, self._hvp, self._third, True
        )

    def _check_agreement(self, everyone, n_local):
        sizes = [e[0] for e in everyone]
        if None in sizes:
            bad = [r for r, n in enumerate(sizes) if n is None]
            raise TypeError(f"rank(s) {bad}: n_local must be an int, got {n_local!r}")
        if min(sizes) < 1:
            bad = [r for r, n in enumerate(sizes) if n < 1]
            raise ValueError(f"rank(s) {bad} hold an empty shard (shard sizes {sizes})")
        for index, what in ((1, "dim"), (2, "problem definition")):
            if len({e[index] for e in everyone}) > 1:
                lines = "\n".join(f"  rank {r}: {e[index]}" for r, e in enumerate(everyone))
                raise ValueError(f"the ranks' problems differ in their {what}:\n{lines}")
        digests = {e[3] for e in everyone}
        if len(digests) > 1:
            differ = [r for r, e in enumerate(everyone) if e[3] != everyone[0][3]]
            raise ValueError(f"x0 differs between ranks (ranks {differ} differ from rank 0)")

    @property
    def comm(self):
        return self._comm

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that writes records, checkpoints and progress in a run."""
        return self.rank == 0

    def check_same(self, x, name: str = "x") -> None:
        """Raise ValueError on every rank unless ``x`` is bitwise the same on all ranks."""
        digest = _digest(as_vector(x, self.dim, name))
        everyone = self._comm.allgather(digest)
        if len(set(everyone)) > 1:
            differ = [r for r, d in enumerate(everyone) if d != everyone[0]]
            raise ValueError(f"{name} differs between ranks (ranks {differ} differ from rank 0)")

    def _reduce(self, evaluate, inputs, length: int) -> np.ndarray:
        """sum_r w_r part_r in rank order, on every rank; ``evaluate`` gives this rank's part."""
        send = np.zeros(_HEADER + length)
        digest = _digest(*inputs)
        send[1], send[2] = float(digest >> 32), float(digest & 0xFFFFFFFF)
        error = None
        try:
            send[_HEADER:] = np.ravel(evaluate())
        except BaseException as exc:  # KeyboardInterrupt too: the others must not wait
            error = exc
            send[0] = _RAISED
        recv = np.empty((self.size, _HEADER + length))
        start = time.perf_counter()
        self._comm.Allgather(send, recv)
        self.communication.add(time.perf_counter() - start, send.size)
        if np.any(recv[:, 0] != _OK):
            mine = None if error is None else f"{type(error).__name__}: {error}"
            messages = self._comm.allgather(mine)
            first = next(r for r, m in enumerate(messages) if m is not None)
            raise DistributedError(
                f"rank {first} of {self.size} raised {messages[first]}"
            ) from error
        if np.any(recv[:, 1:_HEADER] != recv[0, 1:_HEADER]):
            differ = [r for r in range(self.size) if np.any(recv[r, 1:_HEADER] != send[1:_HEADER])]
            raise DistributedError(
                f"the ranks evaluated the problem at different points (ranks {differ} differ "
                f"from rank {self.rank}); every rank must make the same calls with the same "
                "arguments (pass a seed to eigsh and the solvers)"
            )
        total = self.weights[0] * recv[0, _HEADER:]
        for r in range(1, self.size):
            total += self.weights[r] * recv[r, _HEADER:]
        return total

    def _loss_and_grad(self, x):
        def evaluate():
            loss, grad = self.local.loss_and_grad(x)
            return np.concatenate([[loss], grad])

        total = self._reduce(evaluate, (x,), self.dim + 1)
        return float(total[0]), total[1:]

    def _hvp(self, x, V):
        cols = V.shape[1]
        total = self._reduce(lambda: self._local_hessian(x).apply(V), (x, V), self.dim * cols)
        return total.reshape(self.dim, cols)

    def _local_hessian(self, x):
        """The shard's Hessian operator at x, kept while the products stay at x (a
        solver's run of products: the MLP's caches its forward pass and deltas there)."""
        if self._hessian is None or not np.array_equal(self._hessian[0], x):
            self._hessian = None  # free the old caches first
            self._hessian = (np.array(x), self.local._core.hessian(x))
        return self._hessian[1]

    def _third(self, x, u):
        return self._reduce(lambda: self.local.third(x, u), (x, u), self.dim)

    def loss(self, x) -> float:
        x = as_vector(x, self.dim)
        return float(self._reduce(lambda: [self.local.loss(x)], (x,), 1)[0])

    def hvp(self, x, v) -> np.ndarray:
        block, one = as_block(v, self.dim, "v")
        out = self._hvp(as_vector(x, self.dim), np.asarray(block))
        return out[:, 0] if one else out

    def __repr__(self) -> str:
        return (
            f"DistributedProblem({self.local!r}, rank={self.rank}, size={self.size}, "
            f"n_samples={self.n_samples})"
        )
