"""The eosfast command line end to end: run, plot, resume after a kill, info, config errors."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
pytest.importorskip("sklearn")

import eosfast  # noqa: E402
from eosfast.builders import build_optimizer, build_problem  # noqa: E402
from eosfast.cli import main  # noqa: E402
from eosfast.config import load_config  # noqa: E402

SMALL = """
[problem]
hidden = [8]

[data]
name = "digits"
n_samples = 120

[optimizer]
type = "gd"
lr = 0.4

[run]
steps = 60
seed = 3

[tracking]
sharpness_every = 5
k = 2

[output]
dir = "small_run"
checkpoint_every = 20
flush_every = 10
"""


def _write(tmp_path, text=SMALL, name="small.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_writes_a_run_folder_matching_the_api(tmp_path, capsys):
    config_path = _write(tmp_path)
    assert main(["run", str(config_path), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    run = tmp_path / "small_run"
    # the folder keeps the resolved configuration (absolute paths), the text as written is in
    # records.h5
    assert load_config(run / "config.toml").values == load_config(config_path).values
    with h5py.File(run / "records.h5", "r") as f:
        assert f.attrs["config"] == SMALL
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps_done"] == 60
    for stem in ("loss_sharpness",):
        assert (run / "figures" / f"{stem}.png").stat().st_size > 1000
        assert (run / "figures" / f"{stem}.svg").stat().st_size > 1000
    assert not (run / "stream").exists()

    # the same run through the public API: the HDF5 file holds exactly its records
    config = load_config(config_path)
    problem = build_problem(config)
    traj = eosfast.run(
        problem,
        build_optimizer(config),
        problem.init(3),
        60,
        sharpness_every=5,
        tracker=eosfast.SharpnessTracker(k=2, tol=1e-6),
    )
    with h5py.File(run / "records.h5", "r") as f:
        np.testing.assert_array_equal(f["steps/step"][()], np.arange(61))
        np.testing.assert_array_equal(f["steps/loss"][()], traj.loss)
        np.testing.assert_array_equal(f["steps/effective_lr"][()], traj.effective_lr)
        np.testing.assert_array_equal(f["sharpness/step"][()], traj.sharpness_steps)
        np.testing.assert_array_equal(f["sharpness/eigenvalues"][()], traj.eigenvalues)
        np.testing.assert_allclose(f["sharpness/threshold"][()], 2 / 0.4)
        np.testing.assert_array_equal(f["x_final"][()], traj.x_final)
        assert f["sharpness/eigenvalues"].shape == (len(traj.sharpness_steps), 2)
        assert f.attrs["status"] == "completed" and f.attrs["optimizer"] == "gd"
        assert f.attrs["config"] == SMALL
    assert summary["final_loss"] == traj.loss[-1]
    assert summary["final_loss"] == pytest.approx(problem.loss(traj.x_final))

    # running again leaves a finished folder alone; plot redraws its figures
    mtime = (run / "records.h5").stat().st_mtime_ns
    assert main(["run", str(config_path), "-q"]) == 0
    assert (run / "records.h5").stat().st_mtime_ns == mtime
    capsys.readouterr()
    assert main(["run", str(config_path)]) == 0  # not quiet: says that nothing ran
    assert "holds a finished run: nothing ran (pass --restart" in capsys.readouterr().out
    assert (run / "records.h5").stat().st_mtime_ns == mtime
    (run / "figures" / "loss_sharpness.png").unlink()
    assert main(["plot", str(run)]) == 0
    assert str(run / "figures" / "loss_sharpness.png") in capsys.readouterr().out


def test_a_changed_config_does_not_overwrite_a_run(tmp_path, capsys):
    config_path = _write(tmp_path, SMALL.replace("steps = 60", "steps = 4"))
    assert main(["run", str(config_path), "-q"]) == 0
    _write(tmp_path, SMALL.replace("steps = 60", "steps = 5"))
    assert main(["run", str(config_path), "-q"]) == 2
    assert "holds a run of a different configuration" in capsys.readouterr().err
    assert main(["run", str(config_path), "-q", "--restart"]) == 0
    summary = json.loads((tmp_path / "small_run" / "summary.json").read_text())
    assert summary["steps_done"] == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SMALL.replace("lr = 0.4", "lr = -0.4"), "[optimizer] lr must be > 0"),
        (SMALL.replace("hidden = [8]", "hiden = [8]"), "did you mean 'hidden'?"),
        (SMALL.replace("k = 2", 'k = "2"'), "[tracking] k must be an integer, got string"),
        (SMALL.replace('name = "digits"', 'path = "nope.npz"'), "file not found"),
    ],
)
def test_config_errors_exit_2_with_a_message(tmp_path, capsys, text, message):
    assert main(["run", str(_write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eosfast: configuration error:") and message in err
    assert not (tmp_path / "small_run").exists()


def test_missing_config_and_info(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["info"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == eosfast.__version__
    assert facts["optional_packages"]["h5py"] == h5py.__version__


LONG = (
    SMALL.replace("steps = 60", "steps = 3000")
    .replace("checkpoint_every = 20", "checkpoint_every = 100")
    .replace("sharpness_every = 5", "sharpness_every = 2")
)


def _kill_after_checkpoint(config_path, run):
    """Start `eosfast run` in a subprocess and SIGKILL it once it has checkpointed."""
    env = {**os.environ, "EOSFAST_NUM_THREADS": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "eosfast.cli", "run", str(config_path), "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        deadline = time.monotonic() + 60
        while not (run / "checkpoint.npz").exists():
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (run / "summary.json").exists(), "the run finished before it was killed"


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path, restore_threads):
    eosfast.set_num_threads(1)
    config_path = _write(tmp_path, LONG)
    run = tmp_path / "small_run"
    _kill_after_checkpoint(config_path, run)
    with h5py.File(run / "records.h5", "r") as f:  # plain h5py, no SWMR
        partial = len(f["steps/step"])
    assert 0 < partial < 3001
    assert main(["run", str(config_path), "-q"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed"] is True

    reference = tmp_path / "reference"
    assert main(["run", str(config_path), "-q", "--out", str(reference)]) == 0
    with h5py.File(run / "records.h5", "r") as a, h5py.File(reference / "records.h5", "r") as b:
        for group in ("steps", "sharpness"):
            assert set(a[group]) == set(b[group])
            for name in a[group]:
                np.testing.assert_array_equal(a[group][name][()], b[group][name][()])
        np.testing.assert_array_equal(a["x_final"][()], b["x_final"][()])
        assert len(a["steps/step"]) == 3001


def test_application_modules_import_no_heavy_dependency():
    code = (
        "import sys, eosfast, eosfast.cli, eosfast.config, eosfast.data, eosfast.run_folder, "
        "eosfast.plot, eosfast.sweep, eosfast.experiment, eosfast.records_file, "
        "eosfast.builders, eosfast.demo, eosfast.progress, "
        "eosfast.analysis\n"
        "heavy = ('matplotlib', 'h5py', 'distributed', 'dask', 'tqdm', 'sklearn', 'torch',"
        " 'mpi4py')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_plot_of_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "nonexistent_dir"
    assert main(["plot", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nonexistent_dir is not a folder" in err
    assert "Traceback" not in err and not missing.exists()
    with pytest.raises(Exception, match="is not a folder"):
        main(["plot", str(missing), "--debug"])


def test_sweep_without_dask_hints_at_the_extra_and_makes_no_folder(tmp_path, capsys, monkeypatch):
    import importlib.util

    config = tmp_path / "exp.toml"
    config.write_text(SMALL)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "distributed" else real(name)
    )
    out = tmp_path / "grid"
    assert main(["sweep", str(config), "--lr", "0.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eosfast[sweep]" in err and not out.exists()


def test_an_unexpected_error_is_one_line_with_a_debug_hint(tmp_path, capsys, monkeypatch):
    import eosfast.plot

    def broken(run_dir):
        raise RuntimeError("records\nare broken")

    monkeypatch.setattr(eosfast.plot, "plot_run", broken)
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        err == "eosfast: RuntimeError: records are broken (rerun with --debug for the traceback)\n"
    )
    with pytest.raises(RuntimeError, match="broken"):
        main(["plot", str(tmp_path), "--debug"])
