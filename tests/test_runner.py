import math
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
from eosfast.problems import Callback, Quadratic


def quartic(rng, n=6):
    """L(x) = 1/4 sum_i (x_i^2 - 1)^2 + 1/2 x^T B x: a Hessian that moves with x."""
    B = random_symmetric(rng, n, np.linspace(0.2, 3.0, n))

    def loss_and_grad(x):
        return 0.25 * np.sum((x * x - 1) ** 2) + 0.5 * x @ B @ x, (x * x - 1) * x + B @ x

    def hessian(x):
        return np.diag(3 * x * x - 1) + B

    return Callback(loss_and_grad, n, hvp=lambda x, v: hessian(x) @ v), hessian


def test_records_and_step_indices(rng):
    problem = Quadratic(random_symmetric(rng, 4, [1, 2, 3, 4.0]), rng.standard_normal(4))
    x0 = rng.standard_normal(4)
    full = eosfast.run(problem, eosfast.GD(0.1, momentum=0.5), x0, 10, save_iterates_every=1)
    sparse = eosfast.run(problem, eosfast.GD(0.1, momentum=0.5), x0, 10, record_every=3)
    np.testing.assert_array_equal(full.steps, np.arange(11))
    np.testing.assert_array_equal(sparse.steps, [0, 3, 6, 9, 10])
    np.testing.assert_array_equal(sparse.loss, full.loss[[0, 3, 6, 9, 10]])
    for t in range(11):
        assert full.loss[t] == pytest.approx(problem.loss(full.iterates[t]), rel=1e-14)
        assert full.grad_norm[t] == pytest.approx(np.linalg.norm(problem.grad(full.iterates[t])))
    steps = np.linalg.norm(np.diff(full.iterates, axis=0), axis=1)
    np.testing.assert_allclose(full.step_norm[:-1], steps, rtol=1e-13)
    assert np.isnan(full.step_norm[-1])
    np.testing.assert_array_equal(full.objective, full.loss)
    np.testing.assert_array_equal(full.x_final, full.iterates[-1])
    assert full.status == "completed" and full.step == 10 and len(full) == 11
    meta = full.metadata
    assert meta["problem"] == "Quadratic" and meta["optimizer"]["momentum"] == 0.5
    assert meta["version"] == eosfast.__version__ and meta["num_threads"] >= 1
    assert meta["variant"] == eosfast.info()["variant"]


@pytest.mark.parametrize("k", [1, 3])
def test_recorded_sharpness_equals_a_cold_eigh(rng, k):
    problem, hessian = quartic(rng)
    tracker = eosfast.SharpnessTracker(k=k, tol=1e-10)
    lr = 0.3
    traj = eosfast.run(
        problem,
        eosfast.GD(lr),
        1.5 * rng.standard_normal(6),
        30,
        sharpness_every=5,
        tracker=tracker,
        save_iterates_every=5,
    )
    np.testing.assert_array_equal(traj.sharpness_steps, [0, 5, 10, 15, 20, 25, 30])
    np.testing.assert_array_equal(traj.iterate_steps, traj.sharpness_steps)
    assert traj.eigenvalues.shape == (7, k)
    for i, x in enumerate(traj.iterates):
        w, V = np.linalg.eigh(hessian(x))
        np.testing.assert_allclose(traj.eigenvalues[i], w[::-1][:k], rtol=1e-8, atol=1e-9)
        g = problem.grad(x)
        cos = V[:, ::-1][:, :k].T @ g / np.linalg.norm(g)
        np.testing.assert_allclose(np.abs(traj.grad_overlap[i]), np.abs(cos), atol=1e-6)
        if i < len(traj.iterates) - 1:  # GD steps along -g
            np.testing.assert_allclose(traj.step_overlap[i], -traj.grad_overlap[i], atol=1e-12)
        assert traj.threshold[i] == pytest.approx(2 / lr)
    np.testing.assert_allclose(traj.ratio, traj.sharpness * lr / 2)
    assert np.all(traj.hvps > 0) and traj.hvps_total == traj.metadata["hvps"]
    assert np.all(np.isnan(traj.step_overlap[-1]))


def test_recorded_sharpness_equals_a_cold_eigsh_on_an_mlp(rng):
    """The warm-started tracker inside the C++ loop gives what a cold eosfast.eigsh gives."""
    X, Y = rng.standard_normal((60, 5)), rng.standard_normal((60, 3))
    problem = eosfast.problems.MLP(X, Y, hidden=(8, 6), activation="tanh")
    x0 = problem.init(0)
    lr = 2 / eosfast.sharpness(problem, x0, tol=1e-10)  # at the edge from the start
    traj = eosfast.run(
        problem,
        eosfast.GD(lr),
        x0,
        60,
        sharpness_every=10,
        tracker=eosfast.SharpnessTracker(k=2, tol=1e-10),
        save_iterates_every=10,
    )
    np.testing.assert_array_equal(traj.iterate_steps, traj.sharpness_steps)
    assert traj.hvps[1:].mean() < traj.hvps[0]  # the later measurements are warm-started
    for i, x in enumerate(traj.iterates):
        cold = eosfast.eigsh(problem.hessian(x), k=2, tol=1e-10, seed=100 + i)
        np.testing.assert_allclose(traj.eigenvalues[i], cold.eigenvalues, rtol=1e-9)
        assert traj.threshold[i] == pytest.approx(2 / lr)


def test_period_two_oscillation_shows_in_the_step_overlap(rng):
    problem = Quadratic(random_symmetric(rng, 5, [0.5, 1, 1.5, 2, 6.0]))
    traj = eosfast.run(
        problem, eosfast.NormalizedGD(0.05), rng.standard_normal(5), 600, sharpness_every=1
    )
    overlap = traj.step_overlap[-50:-1, 0]
    assert np.all(np.abs(overlap) > 0.9)
    assert np.all(overlap[:-1] * overlap[1:] < 0)
    np.testing.assert_allclose(traj.eos["inv_stableness_sum"][-50:-1], 1.0, atol=1e-3)


def test_eos_onset(rng):
    problem = Quadratic(np.array([4.0, 1.0]))
    above = eosfast.run(problem, eosfast.GD(0.6), np.ones(2), 5, sharpness_every=1)
    assert above.eos_onset == 0
    below = eosfast.run(problem, eosfast.GD(0.4), np.ones(2), 5, sharpness_every=1)
    assert below.eos_onset is None and np.all(below.ratio < 1)
    # NGD: the threshold 2 |g| / lr falls as the iterate approaches the minimum.
    ngd = eosfast.run(problem, eosfast.NormalizedGD(0.01), np.ones(2), 400, sharpness_every=3)
    first = np.flatnonzero(ngd.sharpness >= ngd.threshold)[0]
    assert ngd.eos_onset == ngd.sharpness_steps[first] > 0


def test_divergence_stops_the_run(rng):
    problem = Quadratic(random_symmetric(rng, 4, [1, 2, 3, 10.0]))
    x0 = np.ones(4)
    traj = eosfast.run(problem, eosfast.GD(1.05 * 2 / 10), x0, 2000)
    assert traj.status == "diverged" and traj.step < 2000
    assert traj.loss[-1] > 1e6 * traj.loss[0] and np.all(traj.loss[:-1] <= 1e6 * traj.loss[0])
    later = eosfast.run(problem, eosfast.GD(1.05 * 2 / 10), x0, 2000, diverge_factor=1e12)
    assert later.status == "diverged" and later.step > traj.step
    np.testing.assert_array_equal(later.loss[: len(traj.loss)], traj.loss)


def test_non_finite_loss_is_divergence():
    calls = []

    def loss_and_grad(x):
        calls.append(1)
        value = math.nan if len(calls) > 5 else float(x @ x)
        return value, 2 * x

    traj = eosfast.run(Callback(loss_and_grad, 2), eosfast.GD(0.1), np.ones(2), 100)
    assert traj.status == "diverged" and traj.step == 5 and math.isnan(traj.loss[-1])


def test_callbacks_see_the_state_and_can_stop(rng):
    problem = Quadratic(np.array([1.0, 2.0]))
    seen = []

    def callback(info):
        seen.append(info.step)
        assert np.array_equal(info.x, info.trajectory().x_final)
        assert info.last_loss == info.trajectory().loss[-1]
        return info.step >= 50

    traj = eosfast.run(
        problem, eosfast.GD(0.1), np.ones(2), 1000, callback=callback, callback_every=10
    )
    assert seen == [10, 20, 30, 40, 50]
    assert traj.status == "stopped_by_callback" and traj.step == 50 and traj.steps[-1] == 49


def test_callback_exceptions_propagate_with_traceback():
    def failing_callback(info):
        raise ZeroDivisionError("from the callback")

    with pytest.raises(ZeroDivisionError, match="from the callback") as excinfo:
        eosfast.run(
            Quadratic(np.ones(2)), eosfast.GD(0.1), np.ones(2), 100, callback=failing_callback
        )
    assert any(entry.name == "failing_callback" for entry in excinfo.traceback)


def test_progress_is_rate_limited():
    calls = []
    start = time.monotonic()

    def slow(x):  # ~1 s in all
        time.sleep(1e-4)
        return float(x @ x), 2 * x

    traj = eosfast.run(
        Callback(slow, 2),
        eosfast.GD(0.1),
        np.ones(2),
        8000,
        record_every=1000,
        progress=lambda *a: calls.append((time.monotonic(), *a)),
    )
    elapsed = time.monotonic() - start
    assert traj.status == "completed"
    assert 1 <= len(calls) <= elapsed / 0.2 + 2
    steps = [c[1] for c in calls]
    assert steps == sorted(steps) and steps[-1] == 8000 and len(calls) >= 3
    assert np.all(np.diff([c[0] for c in calls][:-1]) >= 0.19)


def test_interrupt_from_a_signal_handler():
    problem = Quadratic(np.array([1.0, 0.5]))

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        traj = eosfast.run(problem, eosfast.GD(0.1), np.ones(2), 10**10, record_every=10**5)
        latency = time.monotonic() - start - 0.3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert traj.status == "interrupted" and 0 < traj.step < 10**10
    assert latency < 0.5
    # Nothing recorded is lost: every record up to the last completed step is there.
    np.testing.assert_array_equal(traj.steps, np.arange(0, traj.step, 10**5))


def test_ctrl_c_in_a_subprocess(tmp_path):
    script = textwrap.dedent(
        """
        import sys, numpy as np, eosfast
        from eosfast.problems import Quadratic
        def progress(step, loss, sharpness):
            print("running", flush=True)
        traj = eosfast.run(Quadratic(np.array([1.0, 0.5])), eosfast.GD(0.1), np.ones(2), 10**11,
                           record_every=10**6, progress=progress)
        ok = np.array_equal(traj.steps, np.arange(0, traj.step, 10**6))
        print(traj.status, traj.step > 0, ok, flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with proc:
        try:
            while (line := proc.stdout.readline()) and line.strip() != "running":
                pass  # (an editable build may print its rebuild first)
            assert line.strip() == "running", proc.stderr.read()
            sent = time.monotonic()
            os.kill(proc.pid, signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            elapsed = time.monotonic() - sent
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == "interrupted True True"
    assert elapsed < 2.0


def test_python_problems_run_on_the_calling_thread(rng):
    problem, _ = quartic(rng, 3)
    assert not problem._core.thread_safe
    traj = eosfast.run(problem, eosfast.GD(0.05), np.ones(3), 20, sharpness_every=4)
    assert traj.status == "completed" and len(traj.sharpness) == 6


def trajectories_with_threads(threads, make):
    eosfast.set_num_threads(threads)
    return make()


@pytest.mark.usefixtures("restore_threads")
def test_threads_give_bitwise_identical_trajectories(rng):
    # Sizes with several row chunks (256) and vector chunks (8192); gaps at the top of the
    # spectra keep Lanczos short.
    spectrum = np.append(np.linspace(0.1, 5, 298), [8.0, 10.0])
    dense = Quadratic(random_symmetric(rng, 300, spectrum), rng.standard_normal(300))
    diag = Quadratic(np.append(np.linspace(0.1, 1.0, 9999), 2.0))
    x_dense, x_diag = rng.standard_normal(300), rng.standard_normal(10000)

    def make():
        a = eosfast.run(
            dense,
            eosfast.GD(0.21, momentum=0.5),
            x_dense,
            12,
            sharpness_every=4,
            tracker=eosfast.SharpnessTracker(k=2, tol=1e-8),
        )
        b = eosfast.run(diag, eosfast.NormalizedGD(0.5), x_diag, 12, sharpness_every=6)
        return a, b

    results = [trajectories_with_threads(t, make) for t in (1, 2, 3)]
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a.x_final, b.x_final)
            np.testing.assert_array_equal(a._scalars, b._scalars)
            np.testing.assert_array_equal(a._sharpness, b._sharpness)


def test_streamed_records_equal_memory_records(rng, tmp_path):
    problem = Quadratic(random_symmetric(rng, 3, [1, 2, 5.0]))
    x0 = rng.standard_normal(3)
    kwargs = dict(sharpness_every=7, save_iterates_every=5, record_every=2)
    memory = eosfast.run(problem, eosfast.GD(0.39), x0, 10_000, **kwargs)
    streamed = eosfast.run(problem, eosfast.GD(0.39), x0, 10_000, stream=tmp_path, **kwargs)
    for name in ("steps", "loss", "step_norm", "sharpness", "step_overlap", "iterates"):
        np.testing.assert_array_equal(getattr(memory, name), getattr(streamed, name))
    on_disk = np.load(tmp_path / "scalars.npy")
    assert on_disk.shape == (5001, 7)
    np.testing.assert_array_equal(on_disk[:, 1], memory.loss)


def test_bad_run_arguments(rng):
    problem = Quadratic(np.ones(2))
    with pytest.raises(TypeError):
        eosfast.run(problem, "GD", np.ones(2), 10)
    with pytest.raises(ValueError, match="shape"):
        eosfast.run(problem, eosfast.GD(0.1), np.ones(3), 10)
    with pytest.raises(ValueError, match="diverge_factor"):
        eosfast.run(problem, eosfast.GD(0.1), np.ones(2), 10, diverge_factor=0.5)
    with pytest.raises(ValueError, match="record_every"):
        eosfast.run(problem, eosfast.GD(0.1), np.ones(2), 10, record_every=0)
    with pytest.raises(TypeError, match="callback"):
        eosfast.run(problem, eosfast.GD(0.1), np.ones(2), 10, callback=3)
