"""Run folders: the HDF5 record file (written whole, read back with plain h5py), summaries."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from eosfast.io import DamagedFileError  # noqa: E402
from eosfast.records_file import read_attrs, read_records, write_records  # noqa: E402
from eosfast.run_folder import RunDir, write_json_atomic  # noqa: E402


def _rows(start, stop, k=3):
    steps = np.arange(start, stop)
    return {
        "steps": {"step": steps, "loss": 1.0 / (1.0 + steps)},
        "sharpness": {"step": steps[::2], "eigenvalues": np.outer(steps[::2], np.arange(1, k + 1))},
    }


def test_write_and_read_back_with_plain_h5py(tmp_path):
    path = tmp_path / "r.h5"
    groups = {**_rows(0, 5), "x_final": np.arange(4.0)}
    described = {"steps/loss": {"description": "L(x_t)", "units": "loss"}}
    write_records(path, groups, attrs={"eosfast_version": "x", "lr": 0.5}, described=described)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["steps/step"][()], np.arange(5))
        np.testing.assert_array_equal(
            f["sharpness/eigenvalues"][()], _rows(0, 5)["sharpness"]["eigenvalues"]
        )
        np.testing.assert_array_equal(f["x_final"][()], np.arange(4.0))
        assert f.attrs["lr"] == 0.5 and f["steps/loss"].attrs["units"] == "loss"
        assert f["steps/loss"].fletcher32  # a flipped bit is reported, not returned
    assert read_attrs(path) == {"eosfast_version": "x", "lr": 0.5}
    back = read_records(path)
    np.testing.assert_array_equal(back["steps"]["loss"], 1.0 / (1.0 + np.arange(5)))


def test_empty_groups_are_written(tmp_path):
    path = tmp_path / "r.h5"
    write_records(path, _rows(0, 0))
    assert len(read_records(path)["sharpness"]["eigenvalues"]) == 0


def test_a_reader_always_sees_a_whole_file_while_it_is_rewritten(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from eosfast.records_file import write_records
        for n in range(1, 120):
            write_records(sys.argv[1], {"steps": {"step": np.arange(n), "loss": np.ones(n)}})
        """
    )
    path = tmp_path / "r.h5"
    write_records(path, {"steps": {"step": np.arange(1), "loss": np.ones(1)}})
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)])
    reads = 0
    while proc.poll() is None:
        with h5py.File(path, "r") as f:  # never half a file, never a lock
            assert len(f["steps/step"]) == len(f["steps/loss"])
        reads += 1
    assert proc.wait() == 0 and reads > 0
    assert len(read_records(path)["steps"]["step"]) == 119


def test_a_file_that_is_not_hdf5_is_reported(tmp_path):
    path = tmp_path / "r.h5"
    path.write_bytes(b"not an HDF5 file")
    with pytest.raises(DamagedFileError, match="damaged"):
        read_records(path)
    with pytest.raises(DamagedFileError, match="damaged"):
        read_attrs(path)


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
