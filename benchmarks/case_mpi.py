"""Case 8: strong scaling of the whole EoS run over MPI ranks on this machine, and its
communication per step.

The same run (_mpi_run.py: the demo's 64-32-32-10 MLP on the digits, GD at the edge of
stability with the sharpness tracked every 10 steps) at 1, 2, ... ranks up to the cores,
each rank one eosfast thread, the samples sharded over the ranks. The peer is the run on
one rank (``DistributedProblem`` on 1 rank: the Python glue without messages); for context,
the plain single-process MLP run at 1 thread and at all cores. Each row carries
``scaling`` = t(1 rank) / t(row), the collective calls per step, the time inside
MPI_Allgather per step (messages plus the wait for the slowest rank), the doubles each
rank sends per step, and the bare MPI_Allgather time of one gradient's and of one 8-vector
HVP block's message with the ranks in step (the latency and bandwidth terms of
docs/distributed.md's cost model). Without mpi4py the rows are NaN with a note.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Context, Row, failed

CASE = "9-mpi"
JOB = Path(__file__).with_name("_mpi_run.py")


def run(ctx: Context, nthreads: int | None = None) -> list[Row]:
    steps, samples = (60, 300) if ctx.quick else (600, 1000)
    setting = f"GD at EoS, 64-32-32-10 MLP, {samples} digits, {steps} steps, lambda_1 every 10"
    counts = sorted({1, 2, ctx.nthreads}) if ctx.nthreads >= 2 else [1]
    rows, base = [], None
    for ranks in counts:
        method = f"eosfast.distributed, {ranks} rank(s) x 1 thread"
        try:
            result = job(ranks, steps, samples, ctx.nthreads)
        except Exception as exc:  # reported in the table, not hidden
            rows.append(failed(CASE, setting, method, exc, True))
            continue
        base = result["seconds"] if ranks == 1 else base
        per_step = {
            "collective_calls_per_step": result["calls"] / steps,
            "collective_seconds_per_step": result["collective_seconds"] / steps,
            "doubles_sent_per_step": result["doubles_sent"] / steps,
        }
        metrics = {**result, **per_step, "load_average": list(os.getloadavg())}
        if base is not None:
            metrics["scaling"] = base / result["seconds"]
        rows.append(Row(CASE, setting, method, result["seconds"], ranks > 1, metrics=metrics))
        if ranks == 1:
            key_all = "plain_all_threads"
            for key, n in (("plain_1thread", 1), ("plain_all_threads", result[key_all])):
                t = result[f"{key}_seconds"]
                m = {"scaling": base / t, "load_average": list(os.getloadavg())}
                rows.append(Row(CASE, setting, f"one process, MLP, {n} thread(s)", t, metrics=m))
    return rows


def mpiexec() -> str:
    here = Path(sys.executable).with_name("mpiexec")
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise RuntimeError("no mpiexec: pip install 'eosfast[mpi]'")
    return found


def job(ranks: int, steps: int, samples: int, cores: int) -> dict:
    import importlib.util

    if importlib.util.find_spec("mpi4py") is None:
        raise RuntimeError("mpi4py is not installed: pip install 'eosfast[mpi]'")
    env = dict(os.environ, EOSFAST_NUM_THREADS="1", OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        cmd = [mpiexec(), "-n", str(ranks), sys.executable, str(JOB), str(steps), str(samples)]
        start = time.perf_counter()
        args = [*cmd, str(out), str(cores)]
        done = subprocess.run(args, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
        result = json.loads(out.read_text())
        result["job_seconds"] = time.perf_counter() - start  # with MPI and Python start-up
        return result
