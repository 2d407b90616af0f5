"""Run folders: the HDF5 record file (read back with plain h5py), SWMR, crash recovery."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from eosfast.rundir import (  # noqa: E402
    RecordFile,
    RunDir,
    finalize_records,
    read_records,
    recover_records,
    write_json_atomic,
)

SCHEMA = {
    "steps": {"step": ("int64", ()), "loss": ("float64", ())},
    "sharpness": {"step": ("int64", ()), "eigenvalues": ("float64", (3,))},
}


def _rows(start, stop, k=3):
    steps = np.arange(start, stop)
    return {
        "steps": {"step": steps, "loss": 1.0 / (1.0 + steps)},
        "sharpness": {"step": steps[::2], "eigenvalues": np.outer(steps[::2], np.arange(1, k + 1))},
    }


def test_append_and_read_back_with_plain_h5py(tmp_path):
    path = tmp_path / "records.h5"
    with RecordFile(path, "w", SCHEMA, attrs={"eosfast_version": "x", "lr": 0.5}) as rec:
        rec.append(_rows(0, 7))
        rec.flush()
        rec.append(_rows(7, 12))
    finalize_records(path, datasets={"x_final": np.arange(4.0)}, attrs={"status": "completed"})
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["steps/step"][()], np.arange(12))
        np.testing.assert_array_equal(f["steps/loss"][()], 1.0 / (1.0 + np.arange(12)))
        expected = np.concatenate([np.arange(0, 7, 2), np.arange(7, 12, 2)])
        np.testing.assert_array_equal(f["sharpness/step"][()], expected)
        assert f["sharpness/eigenvalues"].shape == (len(expected), 3)
        np.testing.assert_array_equal(f["sharpness/eigenvalues"][:, 2], 3 * expected)
        np.testing.assert_array_equal(f["x_final"][()], np.arange(4.0))
        assert f.attrs["status"] == "completed"
        assert f.attrs["lr"] == 0.5


def test_append_rejects_ragged_or_unknown_columns(tmp_path):
    with RecordFile(tmp_path / "r.h5", "w", SCHEMA) as rec:
        with pytest.raises(ValueError, match="different lengths"):
            rec.append({"steps": {"step": np.arange(3), "loss": np.zeros(2)}})
        with pytest.raises(KeyError, match="no group"):
            rec.append({"nope": {"step": np.arange(3)}})
        with pytest.raises(KeyError, match="no dataset"):
            rec.append({"steps": {"stp": np.arange(3)}})


def test_truncate_and_reopen_to_append(tmp_path):
    path = tmp_path / "records.h5"
    with RecordFile(path, "w", SCHEMA) as rec:
        rec.append(_rows(0, 10))
        rec.truncate({"steps": 4, "sharpness": 2})
    with RecordFile(path, "a") as rec:
        assert rec.lengths() == {"steps": 4, "sharpness": 2}
        rec.append(_rows(4, 6))
    records = read_records(path)
    np.testing.assert_array_equal(records["steps"]["step"], np.arange(6))
    np.testing.assert_array_equal(records["sharpness"]["step"], [0, 2, 4])


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from eosfast.rundir import RecordFile
    rec = RecordFile(sys.argv[1], "w", {"steps": {"step": ("int64", ())}})
    rec.append({"steps": {"step": np.arange(5)}})
    rec.flush()
    print("flushed", flush=True)
    sys.stdin.readline()
    rec.append({"steps": {"step": np.arange(5, 9)}})
    rec.flush()
    print("flushed", flush=True)
    time.sleep(60)
    """
)


def _wait_for(proc, word):
    for line in proc.stdout:
        if word in line:
            return
    raise AssertionError(f"the writer ended without printing {word!r}")


def test_readable_while_written_and_recoverable_after_kill(tmp_path):
    """SWMR: a reader sees each flush; after SIGKILL the rows flushed so far survive."""
    path = tmp_path / "records.h5"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    with subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            _wait_for(proc, "flushed")
            with h5py.File(path, "r", swmr=True) as f:
                np.testing.assert_array_equal(f["steps/step"][()], np.arange(5))
            proc.stdin.write("go\n")
            proc.stdin.flush()
            _wait_for(proc, "flushed")
            np.testing.assert_array_equal(read_records(path)["steps"]["step"], np.arange(9))
        finally:
            proc.kill()
    # a killed writer leaves HDF5's write flag set: reopening to append needs the recovery copy
    with pytest.raises(OSError):
        h5py.File(path, "a", libver="latest")
    recover_records(path, {"steps": 7})
    with RecordFile(path, "a") as rec:
        rec.append({"steps": {"step": [100]}})
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["steps/step"][()], [0, 1, 2, 3, 4, 5, 6, 100])


def test_summary_json_is_plain_json(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create()
    assert run.summary() is None and not run.finished()
    run.write_summary(
        {"status": "completed", "loss": np.float64(0.25), "curve": np.arange(3), "bad": np.nan}
    )
    data = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert data == {"status": "completed", "loss": 0.25, "curve": [0, 1, 2], "bad": None}
    assert run.finished()
    write_json_atomic(run.summary_path, {"status": "interrupted"})
    assert not run.finished()
