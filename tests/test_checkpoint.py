import os
import signal
import subprocess
import sys
import textwrap
import time

import eosfast
import numpy as np
import pytest
from conftest import random_symmetric
from eosfast.io import NpyAppender, load_checkpoint, save_checkpoint
from eosfast.problems import Quadratic

ARRAYS = ("_scalars", "_sharpness", "_iterates", "x_final")


def assert_bitwise_equal(a, b):
    for name in ARRAYS:
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))
    assert a.status == b.status and a.step == b.step and a.eos_onset == b.eos_onset


def test_checkpoint_files_round_trip(tmp_path):
    state = {
        "a": np.arange(6.0).reshape(2, 3),
        "nested": {"s": "text", "n": 7, "f": 0.1, "b": True, "none": None, "empty": {}},
        "big": np.uint64(2**63 + 5),
        "nothing": np.empty((0, 4)),
    }
    path = tmp_path / "c.npz"
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    np.testing.assert_array_equal(back["a"], state["a"])
    assert back["nested"] == {"s": "text", "n": 7, "f": 0.1, "b": True, "none": None, "empty": {}}
    assert back["big"] == 2**63 + 5 and back["nothing"].shape == (0, 4)
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary left behind
    save_checkpoint(path, {"a": 1})  # replaced atomically
    assert load_checkpoint(path) == {"a": 1}


def test_npy_appender(tmp_path):
    path = tmp_path / "r.npy"
    app = NpyAppender(path, 3)
    rows = np.arange(30.0).reshape(10, 3)
    app.append(rows[:4])
    app.flush()
    np.testing.assert_array_equal(np.load(path), rows[:4])
    app.append(rows[4:])
    app.close()
    np.testing.assert_array_equal(np.load(path), rows)
    again = NpyAppender(path, 3, rows=6)  # continue from a checkpoint's row count
    again.append(rows[:1])
    again.close()
    np.testing.assert_array_equal(np.load(path), np.vstack([rows[:6], rows[:1]]))
    with NpyAppender(tmp_path / "x.npy", 2) as other, pytest.raises(ValueError, match="columns"):
        other.append(rows)


def setup(rng):
    problem = Quadratic(random_symmetric(rng, 5, [0.5, 1, 2, 3, 9.0]), rng.standard_normal(5))
    return problem, rng.standard_normal(5)


@pytest.mark.parametrize(
    "optimizer",
    [
        eosfast.GD(0.23, momentum=0.3),
        eosfast.NormalizedGD(eosfast.Schedule.cosine(0.05, 300, lr_min=0.01)),
        eosfast.SqrtGD(0.02, loss_min=-10.0),
    ],
)
def test_resume_is_bitwise_identical(rng, tmp_path, optimizer):
    problem, x0 = setup(rng)
    kwargs = dict(sharpness_every=7, record_every=3, save_iterates_every=11)
    reference = eosfast.run(
        problem, optimizer, x0, 300, tracker=eosfast.SharpnessTracker(k=2), **kwargs
    )
    path = tmp_path / "run.npz"
    stopped = eosfast.run(
        problem,
        optimizer,
        x0,
        300,
        tracker=eosfast.SharpnessTracker(k=2),
        checkpoint=path,
        checkpoint_every=50,
        callback=lambda info: info.step == 150,
        callback_every=25,
        **kwargs,
    )
    assert stopped.status == "stopped_by_callback" and stopped.step == 150
    saved = load_checkpoint(path)
    assert saved["runner"]["step"] == 150 and saved["tracker"]["measurements"] > 0
    resumed = eosfast.resume(path, problem)
    assert_bitwise_equal(resumed, reference)
    # A finished run's checkpoint gives its trajectory back.
    assert_bitwise_equal(eosfast.resume(path, problem), reference)


def test_resume_checks_the_problem(rng, tmp_path):
    problem, x0 = setup(rng)
    path = tmp_path / "run.npz"
    eosfast.run(problem, eosfast.GD(0.1), x0, 10, checkpoint=path)
    with pytest.raises(ValueError, match="dim"):
        eosfast.resume(path, Quadratic(np.ones(3)))
    with pytest.raises(ValueError, match="not an eosfast checkpoint"):
        save_checkpoint(path, {"a": 1})
        eosfast.resume(path, problem)


KILLED_RUN = textwrap.dedent(
    """
    import sys, time, numpy as np, eosfast
    from eosfast.problems import Quadratic
    A, b, x0 = (np.load(sys.argv[1])[k] for k in ("A", "b", "x0"))
    def slow(info):
        time.sleep(0.01)  # keeps the run going until it is killed
    eosfast.run(Quadratic(A, b), eosfast.GD(0.2, momentum=0.5), x0, 200_000,
                sharpness_every=997, record_every=7, save_iterates_every=1000,
                tracker=eosfast.SharpnessTracker(k=2, seed=3),
                checkpoint=sys.argv[2], checkpoint_every=20_000,
                callback=slow, callback_every=100, stream=sys.argv[3])
    """
)


def test_resume_after_the_process_was_killed(rng, tmp_path):
    problem, x0 = setup(rng)
    np.savez(tmp_path / "problem.npz", A=problem.A, b=problem.b, x0=x0)
    path, folder = tmp_path / "run.npz", tmp_path / "records"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "problem.npz"), str(path), str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    with proc:
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                if path.exists() and load_checkpoint(path)["runner"]["step"] >= 40_000:
                    break
                time.sleep(0.05)
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.3)  # somewhere between two checkpoints, records half-streamed
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    saved = load_checkpoint(path)
    assert 40_000 <= saved["runner"]["step"] < 200_000
    resumed = eosfast.resume(path, problem)
    reference = eosfast.run(
        problem,
        eosfast.GD(0.2, momentum=0.5),
        x0,
        200_000,
        sharpness_every=997,
        record_every=7,
        save_iterates_every=1000,
        tracker=eosfast.SharpnessTracker(k=2, seed=3),
    )
    assert_bitwise_equal(resumed, reference)
    np.testing.assert_array_equal(np.load(folder / "scalars.npy"), reference._scalars)
