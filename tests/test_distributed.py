"""eosfast.distributed in real MPI jobs (mpiexec -n 2 and -n 3, tests/_mpi_job.py)."""

import json
import os
import shutil
import signal
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


CONFIG = """
[problem]
hidden = [8]

[data]
name = "digits"
n_samples = 120

[optimizer]
type = "gd"
lr = 0.4

[run]
steps = {steps}
seed = 3

[tracking]
sharpness_every = {sharpness_every}
k = 2

[output]
dir = "run"
checkpoint_every = {checkpoint_every}
flush_every = 10
"""


def eosfast_run(ranks: int, config, *args, **popen) -> subprocess.Popen:
    env = dict(os.environ, EOSFAST_NUM_THREADS="1")
    cli = [sys.executable, "-m", "eosfast.cli", "run", str(config), *args]
    return subprocess.Popen(
        [mpiexec(), "-n", str(ranks), *cli],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        **popen,
    )


def test_cli_under_mpiexec_shards_the_data_and_matches_one_process(tmp_path):
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("sklearn")
    from eosfast.cli import main

    config = tmp_path / "small.toml"
    config.write_text(CONFIG.format(steps=60, sharpness_every=5, checkpoint_every=20))
    out, _ = eosfast_run(2, config, "--out", tmp_path / "two").communicate(timeout=300)
    assert out.count("status completed, steps 60") == 1, out  # rank 0 reports, alone
    assert main(["run", str(config), "-q", "--out", str(tmp_path / "one")]) == 0
    with (
        h5py.File(tmp_path / "two" / "records.h5") as a,
        h5py.File(tmp_path / "one" / "records.h5") as b,
    ):
        for name in ("x_final", "steps/loss", "sharpness/eigenvalues"):
            assert np.max(np.abs(a[name][()] - b[name][()])) <= TOL * np.max(np.abs(b[name][()]))
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["ranks"] == 2


def test_cli_interrupted_on_two_ranks_refuses_to_resume_on_three(tmp_path):
    config = tmp_path / "long.toml"
    config.write_text(CONFIG.format(steps=10**6, sharpness_every=50, checkpoint_every=1000))
    job = eosfast_run(2, config, cwd=tmp_path)
    start = time.monotonic()
    while not (tmp_path / "run" / "stream").is_dir() and time.monotonic() - start < 120:
        time.sleep(0.1)
    time.sleep(0.5)
    job.send_signal(signal.SIGINT)  # mpiexec passes it on to every rank
    out, _ = job.communicate(timeout=60)
    assert job.returncode == 130, out
    assert "status interrupted" in out and (tmp_path / "run" / "checkpoint.npz").is_file()
    out, _ = eosfast_run(3, config, cwd=tmp_path).communicate(timeout=300)
    assert "was written by a run on 2 MPI rank(s) (shard sizes [60, 60])" in out, out
    assert "resume with the same ranks and shards (mpiexec -n 2)" in out
