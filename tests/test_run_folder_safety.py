"""Run folders that never lose work or crash (issue 18): signals, full disks, damaged files,
moved folders, resume checks, HDF5 for plain h5py readers."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import eosfast  # noqa: E402
from eosfast.cli import main  # noqa: E402
from eosfast.io import DamagedFileError, load_checkpoint  # noqa: E402
from eosfast.records_file import read_records  # noqa: E402

CONFIG = """
[problem]
hidden = [6]

[data]
path = "data.npz"

[optimizer]
type = "{opt}"
lr = {lr}

[run]
steps = {steps}
seed = 1

[tracking]
sharpness_every = 5
k = 2

[output]
dir = "run"
checkpoint_every = {checkpoint_every}
flush_every = 7
figures = false
"""


def make_experiment(folder, opt="gd", lr=0.5, steps=80, checkpoint_every=30, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "data.npz", X=rng.standard_normal((24, 3)), Y=rng.standard_normal((24, 2)))
    path = folder / "exp.toml"
    path.write_text(CONFIG.format(opt=opt, lr=lr, steps=steps, checkpoint_every=checkpoint_every))
    return path


def records_of(run):
    return read_records(run / "records.h5")


def assert_same_records(a, b):
    assert a.keys() == b.keys()
    for group in a:
        if isinstance(a[group], dict):
            assert a[group].keys() == b[group].keys(), group
            for name in a[group]:
                np.testing.assert_array_equal(a[group][name], b[group][name], err_msg=name)
        else:
            np.testing.assert_array_equal(a[group], b[group])


def assert_consistent(run):
    """The checkpoint, stream/ and records.h5 of a folder agree, with no duplicated steps."""
    state = load_checkpoint(run / "checkpoint.npz")
    step = state["runner"]["step"]
    counts = state["records"]["counts"]
    rec = records_of(run)
    steps = rec["steps"]["step"]
    assert len(steps) == counts["scalars"]
    assert np.all(np.diff(steps) > 0)
    for group in ("steps", "sharpness"):
        lengths = {len(v) for v in rec[group].values()}
        assert len(lengths) == 1, (group, lengths)
    assert len(rec["sharpness"]["step"]) == counts["sharpness"]
    if state["status"] == "interrupted" and len(steps):
        assert steps[-1] == step - 1  # every committed step recorded, none past it
    return state


@pytest.fixture
def reference(tmp_path_factory):
    """An uninterrupted run of the standard experiment, and its records."""
    folder = tmp_path_factory.mktemp("reference")
    config = make_experiment(folder)
    assert main(["run", str(config), "-q"]) == 0
    return records_of(folder / "run")


# -- signals


def _signal_after(calls, signum):
    """A CallbackProblem loss whose n-th evaluation sends ``signum`` to this process."""
    count = [0]

    def loss_and_grad(x):
        count[0] += 1
        if count[0] == calls:
            os.kill(os.getpid(), signum)
        return 0.5 * float(x @ x) + float(np.sin(x).sum()), x + np.cos(x)

    return loss_and_grad


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_first_checkpoint_then_resume_is_bitwise_identical(tmp_path, signum):
    x0 = np.linspace(-1.0, 1.0, 5)
    gd = eosfast.GD(0.3)
    plain = eosfast.problems.Callback(_signal_after(0, signum), dim=5)
    full = eosfast.run(plain, gd, x0, 50, save_iterates_every=1)
    problem = eosfast.problems.Callback(_signal_after(9, signum), dim=5)
    ckpt = tmp_path / "c.npz"
    part = eosfast.run(
        problem, gd, x0, 50, checkpoint=ckpt, checkpoint_every=40, save_iterates_every=1
    )
    assert part.status == "interrupted" and part.metadata["signal"] == signal.Signals(signum).name
    assert 0 < part.step < 40  # stopped inside the C++ loop, before the first checkpoint
    state = load_checkpoint(ckpt)
    assert state["status"] == "interrupted" and state["runner"]["step"] == part.step
    np.testing.assert_array_equal(part.iterates, full.iterates[: len(part.iterates)])
    np.testing.assert_array_equal(part.x_final, full.iterates[part.step])
    rest = eosfast.resume(ckpt, plain)
    assert rest.status == "completed"
    np.testing.assert_array_equal(rest.x_final, full.x_final)
    np.testing.assert_array_equal(rest.loss, full.loss)
    np.testing.assert_array_equal(rest.iterates, full.iterates)


def test_a_signal_during_a_callback_lets_it_finish_and_stops_after_it(tmp_path):
    seen = []

    def callback(info):
        if info.step == 20:
            os.kill(os.getpid(), signal.SIGINT)  # deferred: no KeyboardInterrupt here
        seen.append(info.step)
        return False

    problem = eosfast.problems.Callback(_signal_after(0, signal.SIGINT), dim=3)
    traj = eosfast.run(
        problem,
        eosfast.GD(0.2),
        np.ones(3),
        100,
        callback=callback,
        callback_every=10,
        checkpoint=tmp_path / "c.npz",
    )
    assert seen == [10, 20] and traj.status == "interrupted" and traj.step == 20
    assert load_checkpoint(tmp_path / "c.npz")["runner"]["step"] == 20
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


_CHILD = """
import resource, signal, sys
import eosfast.cli
limit = int(sys.argv[1])
if limit:  # writes past the limit fail with EFBIG instead of raising SIGXFSZ
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
print("--- eosfast imported", file=sys.stderr, flush=True)
sys.exit(eosfast.cli.main(sys.argv[2:]))
"""


class _Child:
    """``eosfast`` in a subprocess (imported first: an editable install may print as it loads)."""

    def __init__(self, args, file_size_limit=0):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(file_size_limit), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.send_signal, self.kill, self.wait = (
            self.proc.send_signal,
            self.proc.kill,
            self.proc.wait,
        )

    def started(self):
        """Wait until eosfast is imported in the child."""
        self._started = True
        while self.proc.stderr.readline() not in ("--- eosfast imported\n", ""):
            pass

    def communicate(self, timeout):
        out, err = self.proc.communicate(timeout=timeout)
        self.returncode = self.proc.returncode
        if getattr(self, "_started", False):
            return out, err
        return out, err.partition("--- eosfast imported\n")[2]


def _run_cli(args, file_size_limit=0):
    return _Child(args, file_size_limit)


@pytest.mark.slow
def test_a_seeded_loop_of_signals_loses_nothing_and_every_folder_is_consistent(tmp_path):
    config = make_experiment(tmp_path, steps=800, checkpoint_every=200)
    config.write_text(config.read_text().replace("flush_every = 7", "flush_every = 1"))
    start = time.monotonic()
    assert main(["run", str(config), "-q", "--out", str(tmp_path / "reference")]) == 0
    duration = time.monotonic() - start
    reference = records_of(tmp_path / "reference")
    rng = np.random.default_rng(2024)
    run = tmp_path / "run"
    interrupted = 0
    for attempt in range(8):
        proc = _run_cli(["run", str(config), "-q"])
        proc.started()
        time.sleep(float(rng.uniform(0.05, 0.7 * duration)))
        signum = (signal.SIGINT, signal.SIGTERM)[attempt % 2]
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        # -2 / -15: the signal came while Python was still starting, before eosfast's handlers
        assert proc.returncode in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM), (
            proc.returncode,
            err,
        )
        assert "Traceback" not in err and "Exception ignored" not in err, err
        if proc.returncode == 0:
            break
        if proc.returncode < 0:
            continue
        interrupted += 1
        assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
        if (run / "checkpoint.npz").is_file():
            state = assert_consistent(run)
            assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
            assert state["signal"] in ("SIGINT", "SIGTERM")  # this attempt or an earlier one
    assert interrupted >= 3, interrupted
    assert main(["run", str(config), "-q"]) in (0, 3)
    assert_same_records(records_of(run), reference)


def test_a_signal_after_the_last_step_leaves_a_completed_run_and_exit_code_0(tmp_path, monkeypatch):
    """The run finished before the signal came: nothing was interrupted, nothing to resume."""
    import eosfast.experiment

    finish = eosfast.experiment.run_experiment

    def finish_then_signal(*args, **kwargs):
        summary = finish(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # recorded by the CLI's deferred handler only
        return summary

    monkeypatch.setattr(eosfast.experiment, "run_experiment", finish_then_signal)
    config = make_experiment(tmp_path)
    assert main(["run", str(config), "-q"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"


# -- full disks and I/O errors


@pytest.mark.parametrize("limit", [3_000, 12_000, 40_000])
def test_a_write_that_fails_stops_the_run_with_one_line_and_the_folder_resumes(
    tmp_path, reference, limit
):
    config = make_experiment(tmp_path, checkpoint_every=10)
    text = config.read_text().replace("steps = 80", "steps = 80\nsave_iterates_every = 1")
    config.write_text(text)
    proc = _run_cli(["run", str(config), "-q"], file_size_limit=limit)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (proc.returncode, err)  # never a signal
    assert err.count("\n") == 1 and "File too large" in err and "Traceback" not in err, err
    assert "Exception ignored" not in err
    run = tmp_path / "run"
    if (run / "checkpoint.npz").is_file():
        load_checkpoint(run / "checkpoint.npz")  # intact
    if (run / "records.h5").is_file():
        records_of(run)  # a complete file
    assert main(["run", str(config), "-q"]) == 0  # space again: the run continues
    ours = records_of(run)
    np.testing.assert_array_equal(ours["steps"]["loss"], reference["steps"]["loss"])
    np.testing.assert_array_equal(ours["x_final"], reference["x_final"])
    assert not list(run.glob(".*tmp*"))  # no temporary file left behind


def test_a_full_disk_while_writing_a_file_keeps_the_old_one(tmp_path, monkeypatch):
    from eosfast import run_folder

    target = tmp_path / "summary.json"
    run_folder.write_json_atomic(target, {"status": "running"})

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_folder.os, "write", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        run_folder.write_json_atomic(target, {"status": "completed"})
    monkeypatch.undo()
    assert str(target) in str(info.value)
    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


# -- records.h5 for plain h5py


def test_records_open_with_plain_h5py_while_running_and_after_kill_9(tmp_path):
    config = make_experiment(tmp_path, steps=10**6, checkpoint_every=500)
    proc = _run_cli(["run", str(config), "-q"])
    run = tmp_path / "run"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (run / "checkpoint.npz").is_file() and (run / "records.h5").is_file():
            break
        time.sleep(0.05)
    with h5py.File(run / "records.h5", "r") as f:  # while the run goes
        assert f.attrs["status"] == "running" and len(f["steps/step"]) > 0
    proc.kill()
    proc.communicate(timeout=30)
    with h5py.File(run / "records.h5", "r") as f:  # after kill -9
        n = len(f["steps/step"])
        assert all(len(d) == n for d in f["steps"].values())


def test_datasets_are_described_and_only_the_optimizers_columns_are_written(tmp_path):
    gd = make_experiment(tmp_path / "gd")
    ngd = make_experiment(tmp_path / "ngd", opt="ngd", lr=0.05)
    assert main(["run", str(gd), "-q"]) == 0
    assert main(["run", str(ngd), "-q"]) == 0
    with h5py.File(tmp_path / "gd" / "run" / "records.h5", "r") as f:
        assert "inv_stableness_sum" not in f["sharpness"]
        assert "sqrt_loss_sum" not in f["sharpness"]
        for group in ("steps", "sharpness"):
            assert "step" in f[group].attrs["step_axis"]
            for name, d in f[group].items():
                assert d.attrs["description"] and d.attrs["units"], name
        assert f["x_final"].attrs["description"]
    with h5py.File(tmp_path / "ngd" / "run" / "records.h5", "r") as f:
        for name in ("inv_stableness_sum", "sqrt_loss_sum", "sqrt_loss_reference"):
            assert np.isfinite(f["sharpness"][name][:-1]).all()


def test_a_truncated_or_bit_flipped_record_file_is_reported_at_once(tmp_path, capsys):
    config = make_experiment(tmp_path)
    assert main(["run", str(config), "-q"]) == 0
    path = tmp_path / "run" / "records.h5"
    good = path.read_bytes()
    original = read_records(path)
    path.write_bytes(good[: len(good) // 2])
    start = time.monotonic()
    with pytest.raises(DamagedFileError, match="damaged"):
        read_records(path)
    assert main(["plot", str(tmp_path / "run"), "-q"]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "records.h5" in err
    rng = np.random.default_rng(7)
    detected = 0
    for position in rng.integers(0, len(good), 60):
        flipped = bytearray(good)
        flipped[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(flipped))
        try:
            back = read_records(path)
        except DamagedFileError:
            detected += 1
            continue
        assert_same_records(back, original)  # the flip hit unused bytes: nothing changed
    assert detected > 0


# -- folders that resume


def test_a_folder_killed_before_its_summary_is_finished_on_the_next_run(
    tmp_path, reference, monkeypatch
):
    from eosfast.run_folder import RunDir

    class Killed(BaseException):
        pass

    def killed(self, summary):
        raise Killed  # the process dies after the final checkpoint and records

    config = make_experiment(tmp_path)
    monkeypatch.setattr(RunDir, "write_summary", killed)
    with pytest.raises(Killed):
        main(["run", str(config), "-q"])
    monkeypatch.undo()
    run = tmp_path / "run"
    assert not (run / "summary.json").exists()
    assert load_checkpoint(run / "checkpoint.npz")["status"] == "completed"
    assert main(["run", str(config), "-q"]) == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert_same_records(records_of(run), reference)


def test_resume_of_a_finished_streamed_run_returns_its_trajectory(tmp_path):
    problem = eosfast.problems.Callback(_signal_after(0, 0), dim=4)
    ckpt = tmp_path / "c.npz"
    full = eosfast.run(
        problem, eosfast.GD(0.2), np.ones(4), 30, checkpoint=ckpt, stream=tmp_path / "s"
    )
    again = eosfast.resume(ckpt, problem)
    assert again.status == "completed"
    np.testing.assert_array_equal(again.loss, full.loss)


def test_a_moved_folder_resumes_in_place_and_never_writes_into_the_original(tmp_path, reference):
    config = make_experiment(tmp_path, steps=80, checkpoint_every=30)
    proc = _run_cli(["run", str(config), "-q"])
    run = tmp_path / "run"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (run / "checkpoint.npz").is_file():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert proc.returncode == 130
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    shutil.move(str(run), str(tmp_path / "moved"))
    assert main(["run", str(config), "-q", "--out", str(copy)]) == 0
    assert not run.exists()  # nothing written at the old place
    assert_same_records(records_of(copy), reference)
    assert main(["run", str(config), "-q", "--out", str(tmp_path / "moved")]) == 0
    assert_same_records(records_of(tmp_path / "moved"), reference)
    assert before  # the original had files


def test_resume_refuses_other_data_and_an_inconsistent_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    problem = eosfast.problems.MLP(X, Y, hidden=(4,))
    ckpt = tmp_path / "c.npz"
    eosfast.run(problem, eosfast.GD(0.1), problem.init(0), 20, checkpoint=ckpt, checkpoint_every=10)
    other = eosfast.problems.MLP(X + 0.01, Y, hidden=(4,))
    with pytest.raises(ValueError, match="different MLP"):
        eosfast.resume(ckpt, other)
    state = load_checkpoint(ckpt)
    from eosfast.io import save_checkpoint

    for path, value in (("step", -3), ("step", 10**6), ("hvps", -1)):
        bad = json.loads(json.dumps(state, default=lambda a: a.tolist()))
        bad["runner"][path] = value
        bad["runner"]["x"] = np.asarray(bad["runner"]["x"])
        save_checkpoint(tmp_path / "bad.npz", bad)
        with pytest.raises(ValueError, match="inconsistent"):
            eosfast.resume(tmp_path / "bad.npz", problem)
    (tmp_path / "garbage.npz").write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(ValueError, match="damaged"):
        eosfast.resume(tmp_path / "garbage.npz", problem)


# -- smaller items


def test_divergence_is_relative_to_a_floor_not_to_a_loss_near_zero():
    # L0 ~ 1e-17, then a rise to ~1e-3: an ordinary loss, not a divergence
    def loss_and_grad(x):
        return float(x @ x), 2 * x

    problem = eosfast.problems.Callback(loss_and_grad, dim=2)
    x0 = np.array([3e-9, 0.0])
    traj = eosfast.run(problem, eosfast.GD(2.0), x0, 10)  # x grows 3x a step
    assert traj.status == "completed" and traj.loss[-1] > 1e6 * traj.loss[0]
    assert eosfast._core.diverge_floor == 1.0
    traj = eosfast.run(problem, eosfast.GD(3.0), np.array([1.0, 0.0]), 50, diverge_factor=10)
    assert traj.status == "diverged" and traj.loss[-1] > 10 and traj.loss[-2] <= 10


def test_a_huge_step_count_does_not_preallocate():
    problem = eosfast.problems.Callback(lambda x: (float(x @ x), 2 * x), dim=2)
    traj = eosfast.run(
        problem,
        eosfast.GD(0.1),
        np.ones(2),
        10**12,
        callback=lambda info: info.step >= 50,
        callback_every=10,
    )
    assert traj.status == "stopped_by_callback" and traj.step == 50


@pytest.mark.parametrize("where", ["grad", "loss"])
def test_a_callbacks_complex_values_are_refused(where):
    def loss_and_grad(x):
        loss = float(x @ x)
        grad = 2 * x
        if where == "grad":
            return loss, grad + 1j
        return complex(loss, 1.0), grad

    problem = eosfast.problems.Callback(loss_and_grad, dim=2)
    with pytest.raises(ValueError, match="complex"):
        problem.loss_and_grad(np.ones(2))


def test_a_flipped_bit_in_the_streamed_records_is_found_on_resume(tmp_path, capsys, monkeypatch):
    from eosfast.run_folder import RunDir

    class Killed(BaseException):
        pass

    def killed(self, summary):
        raise Killed

    config = make_experiment(tmp_path)
    monkeypatch.setattr(RunDir, "write_summary", killed)
    with pytest.raises(Killed):
        main(["run", str(config), "-q"])
    monkeypatch.undo()
    path = tmp_path / "run" / "stream" / "scalars.npy"
    data = bytearray(path.read_bytes())
    data[300] ^= 0x10  # a data byte of the first rows
    path.write_bytes(bytes(data))
    assert main(["run", str(config), "-q"]) == 2
    err = capsys.readouterr().err
    assert "scalars.npy is damaged" in err and "checksum" in err


def test_ctrl_c_during_a_wide_block_hvp_is_answered_within_a_direction_group():
    import threading

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((256, 60)), rng.standard_normal((256, 4))
    problem = eosfast.problems.MLP(X, Y, hidden=(150, 150))  # one chunk of 256 samples
    H = problem.hessian(problem.init(0))
    V = rng.standard_normal((problem.dim, 64))
    start = time.monotonic()
    H @ V[:, :8]  # one direction group
    group = time.monotonic() - start
    timer = threading.Timer(1.5 * group, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        H @ V  # 8 groups; polled only once per chunk it would take 8 groups
    elapsed = time.monotonic() - start
    timer.join()
    assert elapsed < 5.0 * group, (elapsed, group)
