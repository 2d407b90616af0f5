"""One MPI job of tests/test_distributed.py: ``mpiexec -n P python _mpi_job.py MODE OUT``.

``check``: the distributed problem against the single-process problem on all the data
(loss, gradient, HVP blocks, third, eigsh; MLP, matrix sensing and eosfast.torch) and a
200-step GD run with sharpness tracking; writes rank 0's results to OUT (an .npz) and
the relative differences to the single-process run; asserts that all ranks hold bitwise
the same results. With P = 2 it also interrupts a run on one rank and resumes it; with
P = 3 (``check OUT CHECKPOINT``, a two-rank job's checkpoint) it checks the refusals
(definitions, x0, empty shard, another rank count) and a raising rank caught on every rank.

``raise``: rank P - 1 raises inside a run; nothing catches it (the job must end).
"""

import os
import signal
import sys
import time

import eosfast
import numpy as np
from eosfast.distributed import DistributedError, DistributedProblem, shard_slice
from eosfast.problems import MLP, MatrixSensing
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
N = 101  # never a multiple of the rank count: unequal shards


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, 6)), rng.normal(size=(N, 3))


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def same_on_all_ranks(arrays):
    digest = b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in arrays)
    everyone = comm.allgather(digest)
    assert all(d == everyone[0] for d in everyone), "ranks hold different results"


def check(out, two_rank_checkpoint=None):
    X, Y = data()
    mine = shard_slice(N)
    problem = DistributedProblem(MLP(X[mine], Y[mine], hidden=(16,)))
    full = MLP(X, Y, hidden=(16,))
    x = full.init(seed=1)
    V = np.random.default_rng(2).normal(size=(full.dim, 4))
    errors = {
        "mlp_loss": rel(problem.loss(x), full.loss(x)),
        "mlp_grad": rel(problem.grad(x), full.grad(x)),
        "mlp_hvp": rel(problem.hvp(x, V), full.hvp(x, V)),
        "mlp_hvp_one": rel(problem.hvp(x, V[:, 0]), full.hvp(x, V[:, 0])),
        "mlp_third": rel(problem.third(x, V[:, 0]), full.third(x, V[:, 0])),
    }
    top = eosfast.eigsh(problem.hessian(x), k=2, seed=0)
    errors["mlp_eigsh"] = rel(
        top.eigenvalues, eosfast.eigsh(full.hessian(x), k=2, seed=0).eigenvalues
    )

    # 200 steps of GD, the sharpness tracked every 10 steps: it rises from 0.9 (2 / lr) to
    # 1.1 (2 / lr), the edge of stability without a loss spike. Through a spike (lr = 1 /
    # lambda_1(x0): at step 190) any two summation orders part to O(1): rounding differences
    # grow exponentially there, in the single-process run as well.
    lr = 2.0 / eosfast.sharpness(full, x) * 0.9
    kw = {"steps": 200, "sharpness_every": 10}
    traj = eosfast.run(problem, eosfast.GD(lr=lr), x, **kw)
    ref = eosfast.run(full, eosfast.GD(lr=lr), x, **kw)
    errors["run_loss"] = rel(traj.loss, ref.loss)
    errors["run_sharpness"] = rel(traj.sharpness, ref.sharpness)
    errors["run_x_final"] = rel(traj.x_final, ref.x_final)

    rng = np.random.default_rng(3)
    A, y = rng.normal(size=(N, 4, 5)), rng.normal(size=N)
    sensing = DistributedProblem(MatrixSensing(A[mine], y[mine], rank=2))
    full_s = MatrixSensing(A, y, rank=2)
    xs = rng.normal(size=full_s.dim)
    errors["sensing_grad"] = rel(sensing.grad(xs), full_s.grad(xs))
    errors["sensing_hvp"] = rel(sensing.hvp(xs, xs), full_s.hvp(xs, xs))
    errors["sensing_third"] = rel(sensing.third(xs, xs), full_s.third(xs, xs))

    results = [traj.loss, traj.sharpness, traj.x_final, problem.grad(x), problem.hvp(x, V)]
    same_on_all_ranks(results)
    folder = os.path.splitext(out)[0] + "_interrupted"
    if size == 2:
        errors["resumed_x_final"] = check_interrupt_and_resume(problem, lr, x, traj, folder)
    if size == 3:
        # the two-rank job's checkpoint: another rank count is refused, saying so
        expect(
            ValueError,
            "was written by a run on 2 MPI rank(s)",
            lambda: eosfast.resume(two_rank_checkpoint, problem),
        )
        errors.update(check_torch(mine))
        check_refusals(X, Y, mine, x)
    if rank == 0:
        np.savez(out, *results, errors=np.array(list(errors.items()), dtype=object))


def check_interrupt_and_resume(problem, lr, x, whole, folder):
    """SIGINT on rank 1 only at step 100: every rank stops there, rank 0 writes the
    checkpoint and the records; resuming on the same ranks ends bitwise where ``whole`` ends."""
    if rank == 0:
        os.makedirs(folder, exist_ok=True)
    comm.barrier()
    path = os.path.join(folder, "run.ckpt")

    def interrupt(info):
        if rank == 1 and info.step == 100:
            os.kill(os.getpid(), signal.SIGINT)

    kw = {"steps": 200, "sharpness_every": 10, "checkpoint": path, "callback": interrupt}
    cut = eosfast.run(problem, eosfast.GD(lr=lr), x, stream=folder, progress=rank == 0, **kw)
    assert cut.status == "interrupted" and cut.step == 100, (cut.status, cut.step)
    assert os.path.exists(path) and comm.allgather(os.path.exists(path))
    again = eosfast.resume(path, problem, progress=True)
    assert again.status == "completed"
    same_on_all_ranks([again.x_final])
    if rank == 0:
        assert np.array_equal(again.loss, whole.loss)  # rank 0's records: the stream, all of it
    assert np.array_equal(again.x_final, whole.x_final)
    return 0.0


def check_torch(mine):
    import eosfast.torch
    import torch

    torch.manual_seed(0)
    X, Y = (torch.from_numpy(a) for a in data())
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    model = model.double()
    mse = lambda out, y: 0.5 * ((out - y) ** 2).sum(1).mean()  # noqa: E731
    local = eosfast.torch.problem(model, mse, (X[mine], Y[mine]))
    full = eosfast.torch.problem(model, mse, (X, Y))
    x = full.vector_from_model()
    problem = DistributedProblem(local, x0=x)
    u = np.random.default_rng(4).normal(size=full.dim)
    return {
        "torch_grad": rel(problem.grad(x), full.grad(x)),
        "torch_hvp": rel(problem.hvp(x, u), full.hvp(x, u)),
        "torch_third": rel(problem.third(x, u), full.third(x, u)),
    }


def expect(error, fragment, make):
    try:
        make()
    except error as exc:
        assert fragment in str(exc), f"{fragment!r} not in {exc}"
        return
    raise AssertionError(f"no {error.__name__} ({fragment!r})")


def check_refusals(X, Y, mine, x):
    hidden = (16,) if rank < 2 else (17,)
    expect(ValueError, "differ in their dim", lambda: DistributedProblem(MLP(X, Y, hidden=hidden)))
    act = "tanh" if rank < 2 else "gelu"
    expect(
        ValueError,
        "differ in their problem definition",
        lambda: DistributedProblem(MLP(X, Y, hidden=(16,), activation=act)),
    )
    x0 = x if rank < 2 else x + 1e-16 * np.abs(x).max()
    expect(ValueError, "x0 differs", lambda: DistributedProblem(MLP(X, Y, hidden=(16,)), x0=x0))
    expect(ValueError, "empty shard", lambda: DistributedProblem(MLP(X, Y), n_local=rank))

    # a raising rank: every rank gets the same DistributedError, nobody waits
    problem = DistributedProblem(Raising(MLP(X[mine], Y[mine], hidden=(16,)), after=5))
    start = time.monotonic()
    expect(DistributedError, "rank 2 of 3 raised RuntimeError: shard broke", lambda: run(problem))
    assert time.monotonic() - start < 30
    # different points: eigsh with a fresh random start on each rank
    expect(DistributedError, "different points", lambda: eosfast.eigsh(problem.hessian(x), k=1))


class Raising(MLP):
    """The last rank's shard raises at its ``after``-th gradient."""

    def __init__(self, inner, after):
        self._core, self.calls, self.after = inner._core, 0, after

    def loss_and_grad(self, x):
        self.calls += 1
        if rank == size - 1 and self.calls > self.after:
            raise RuntimeError("shard broke")
        return super().loss_and_grad(x)


def run(problem):
    return eosfast.run(problem, eosfast.GD(lr=0.1), problem.local.init(seed=0), steps=50)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "check":
        check(out, *sys.argv[3:])
    else:
        X, Y = data()
        mine = shard_slice(N)
        run(DistributedProblem(Raising(MLP(X[mine], Y[mine], hidden=(16,)), after=5)))
