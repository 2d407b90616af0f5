"""One job of case 8 (case_mpi.py): ``mpiexec -n P python _mpi_run.py STEPS SAMPLES OUT CORES``.

The demo's EoS run (a 64-32-32-10 tanh MLP on scikit-learn's digits, MSE, GD at lr = 2 /
(0.9 lambda_1(x0)), the sharpness tracked every 10 steps), the samples sharded over the P
ranks. Rank 0 writes OUT (JSON): the run's wall time between two barriers, its HVPs, the
collective calls, seconds and doubles of the DistributedProblem (communication and wait),
and the bare cost of an MPI_Allgather of one gradient's message and of a block of 8 HVPs,
timed here with the ranks in step (after a barrier), i.e. without any load imbalance.
On one rank it also times the plain single-process run (no DistributedProblem) at 1 thread
and at CORES threads.
"""

import json
import sys
import time

import eosfast
import numpy as np
from eosfast.data import load_digits_data
from eosfast.distributed import DistributedProblem, shard_slice
from eosfast.problems import MLP
from mpi4py import MPI

comm = MPI.COMM_WORLD


def allgather_seconds(doubles: int, repeats: int = 200) -> float:
    send, recv = np.zeros(doubles), np.empty((comm.Get_size(), doubles))
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        comm.Allgather(send, recv)
    return (time.perf_counter() - start) / repeats


def main(steps: int, samples: int, out: str, cores: int) -> None:
    X, Y = load_digits_data(n_samples=samples)
    mine = shard_slice(len(X))
    problem = DistributedProblem(MLP(X[mine], Y[mine], hidden=(32, 32)))
    x0 = problem.local.init(seed=0)
    lr = 2.0 / (0.9 * eosfast.sharpness(problem, x0, seed=0))
    problem.communication.__init__()  # count the run only
    comm.Barrier()
    start = time.perf_counter()
    traj = eosfast.run(problem, eosfast.GD(lr=lr), x0, steps, sharpness_every=10)
    comm.Barrier()
    seconds = time.perf_counter() - start
    stats = problem.communication
    result = {
        "ranks": comm.Get_size(),
        "dim": problem.dim,
        "samples": problem.n_samples,
        "steps": steps,
        "seconds": seconds,
        "hvps": int(traj.hvps_total),
        "final_loss": float(traj.loss[-1]),
        "final_sharpness": float(traj.sharpness[-1]),
        "calls": stats.calls,
        "collective_seconds": stats.seconds,
        "doubles_sent": stats.doubles,
        "allgather_grad": allgather_seconds(problem.dim + 4),
        "allgather_block8": allgather_seconds(8 * problem.dim + 3),
        "threads": eosfast.get_num_threads(),
    }
    if comm.Get_size() == 1:  # the peers: the plain MLP on all the data, no MPI in the loop
        full = MLP(X, Y, hidden=(32, 32))
        for name, threads in (("plain_1thread", 1), ("plain_all_threads", cores)):
            eosfast.set_num_threads(threads)
            start = time.perf_counter()
            eosfast.run(full, eosfast.GD(lr=lr), x0, steps, sharpness_every=10)
            result[f"{name}_seconds"] = time.perf_counter() - start
        result["plain_all_threads"] = cores
    if comm.Get_rank() == 0:
        with open(out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
