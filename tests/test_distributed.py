"""eosfast.distributed in real MPI jobs (mpiexec -n 2 and -n 3, tests/_mpi_job.py)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="eosfast.distributed needs mpi4py (the 'mpi' extra)")

JOB = Path(__file__).with_name("_mpi_job.py")
TOL = 1e-12


def mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel's) or on PATH."""
    here = Path(sys.executable).with_name("mpiexec")
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.skip("mpi4py is installed but no mpiexec was found (pip install mpich)")
    return found


def mpi_job(ranks: int, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, EOSFAST_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, str(JOB), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def results(path) -> tuple[list, dict]:
    with np.load(path, allow_pickle=True) as f:
        arrays = [f[f"arr_{i}"] for i in range(len(f.files) - 1)]
        errors = {str(k): float(v) for k, v in f["errors"]}
    return arrays, errors


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mpi2")
    outs = []
    for i in range(2):
        out = folder / f"run{i}.npz"
        job = mpi_job(2, "check", out)
        assert job.returncode == 0, job.stderr
        outs.append(results(out))
    return folder, outs


def test_two_ranks_match_the_single_process_problem_and_run(two_rank_runs):
    _, errors = two_rank_runs[1][0]
    assert set(errors) >= {"mlp_grad", "mlp_hvp", "mlp_third", "run_loss", "run_sharpness"}
    assert "resumed_x_final" in errors  # interrupted on one rank, resumed bitwise
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, bad


def test_two_runs_with_two_ranks_are_bitwise_identical(two_rank_runs):
    (a, _), (b, _) = two_rank_runs[1]
    assert len(a) == len(b) == 5
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_three_ranks_torch_sensing_and_refusals(tmp_path, two_rank_runs):
    # unequal shards (101 samples: 33, 34, 34); eosfast.torch and MatrixSensing shards; the
    # refusals (dim, definition, x0, empty shard, a two-rank checkpoint) and a raising rank
    # caught on every rank
    out = tmp_path / "run.npz"
    job = mpi_job(3, "check", out, two_rank_runs[0] / "run0_interrupted" / "run.ckpt")
    assert job.returncode == 0, job.stderr
    _, errors = results(out)
    assert {"torch_grad", "torch_hvp", "torch_third", "sensing_third"} <= set(errors)
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, bad


def test_a_raising_rank_ends_the_job_with_the_error_on_every_rank():
    start = time.monotonic()
    job = mpi_job(3, "raise", "-", timeout=120)
    elapsed = time.monotonic() - start
    assert job.returncode != 0
    message = "DistributedError: rank 2 of 3 raised RuntimeError: shard broke"
    assert job.stderr.count(message) == 3, job.stderr
    assert elapsed < 60  # startup included; a hang would hit the timeout
