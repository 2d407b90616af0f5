"""Faults around run folders and their inputs (issue 18): sizes that overflow, clear errors."""

import os

import numpy as np
import pytest
from eosfast.problems import MLP


@pytest.mark.parametrize(
    ("hidden", "loss", "labels_max"),
    [((2**40, 2**40), "mse", None), ((4,), "ce", 2**62), ((2**62,), "mse", None)],
)
def test_mlp_dimensions_that_overflow_a_64_bit_index_are_refused(hidden, loss, labels_max):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    if loss == "ce":
        Y = np.array([0, 1, 0, 1, labels_max], dtype=np.int64)
    else:
        Y = rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="64-bit index"):
        MLP(X, Y, hidden=hidden, loss=loss)


def test_mlp_sizes_just_inside_the_limits_are_checked_exactly():
    from eosfast.problems.mlp import _INDEX_MAX, _check_sizes

    _check_sizes(1, [1, _INDEX_MAX], bias=False)  # exactly the largest count: accepted
    with pytest.raises(ValueError, match="parameters"):
        _check_sizes(1, [1, _INDEX_MAX], bias=True)  # one more per output unit
    with pytest.raises(ValueError, match="samples x a layer"):
        _check_sizes(2, [1, 2**62], bias=False)


def test_more_samples_than_the_data_is_exit_2_and_leaves_no_folder(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("h5py")
    from eosfast.cli import main

    config = tmp_path / "exp.toml"
    config.write_text(
        '[data]\nname = "digits"\nn_samples = 100000\n'
        '[optimizer]\ntype = "gd"\nlr = 0.1\n[run]\nsteps = 3\n'
    )
    assert main(["run", str(config), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "n_samples = 100000 but the data has 1797" in err
    assert str(config) in err and not (tmp_path / "exp").exists()


# -- every CLI failure: one line, exit 2, no half-made folder ---------------------------------

_BASE = (
    '[data]\npath = "{data}"\n[optimizer]\ntype = "gd"\nlr = 0.1\n[run]\nsteps = 30\n'
    "[tracking]\nsharpness_every = 5\n[output]\nfigures = false\ncheckpoint_every = 10\n"
)


def _data_files(folder):
    """Malformed .npz files: object arrays, garbage, truncated, empty, complex X."""
    rng = np.random.default_rng(0)
    good = folder / "good.npz"
    np.savez(good, X=rng.standard_normal((12, 3)), Y=rng.standard_normal((12, 2)))
    np.savez(folder / "object.npz", X=np.array([1, "a", None], dtype=object), Y=np.zeros(3))
    (folder / "garbage.npz").write_bytes(rng.bytes(300))
    (folder / "truncated.npz").write_bytes(good.read_bytes()[:400])
    (folder / "empty.npz").write_bytes(b"")
    np.savez(folder / "complex.npz", X=rng.standard_normal((12, 3)) + 1j, Y=np.zeros((12, 2)))
    np.savez(folder / "complexY.npz", X=np.ones((12, 3)), Y=np.zeros((12, 2)) + 1j)
    return good


def _one_line_exit_2(capsys, argv, *needles):
    from eosfast.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("eosfast: "), err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("object", "Object arrays"),
        ("garbage", "not a readable .npz"),
        ("truncated", "not a readable .npz"),
        ("empty", "not a readable .npz"),
        ("complex", "X is complex"),
        ("complexY", "Y is complex"),
    ],
)
def test_malformed_npz_data_is_one_line_exit_2_and_no_folder(tmp_path, capsys, name, needle):
    _data_files(tmp_path)
    config = tmp_path / "exp.toml"
    config.write_text(_BASE.format(data=f"{name}.npz"))
    _one_line_exit_2(capsys, ["run", str(config), "-q"], needle, f"{name}.npz")
    assert not (tmp_path / "exp").exists()


def test_a_non_utf8_config_is_one_line_exit_2(tmp_path, capsys):
    config = tmp_path / "exp.toml"
    config.write_bytes(b"# caf\xe9\n" + _BASE.format(data="good.npz").encode())
    _one_line_exit_2(capsys, ["run", str(config), "-q"], "not UTF-8", "exp.toml")


def test_an_output_folder_that_is_a_file_or_unwritable_is_refused(tmp_path, capsys):
    _data_files(tmp_path)
    config = tmp_path / "exp.toml"
    config.write_text(_BASE.format(data="good.npz"))
    (tmp_path / "afile").write_text("")
    _one_line_exit_2(capsys, ["run", str(config), "-q", "--out", str(tmp_path / "afile")], "a file")
    _one_line_exit_2(
        capsys,
        ["run", str(config), "-q", "--out", str(tmp_path / "afile" / "x")],
        "Not a directory",
    )
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _one_line_exit_2(capsys, ["run", str(config), "-q", "--out", str(locked / "run")], "run")


def _finished_folder(tmp_path, killed_before_summary=False, monkeypatch=None):
    from eosfast.cli import main
    from eosfast.run_folder import RunDir

    _data_files(tmp_path)
    config = tmp_path / "exp.toml"
    config.write_text(_BASE.format(data="good.npz"))
    if killed_before_summary:

        class Killed(BaseException):
            pass

        def killed(self, summary):
            raise Killed

        monkeypatch.setattr(RunDir, "write_summary", killed)
        with pytest.raises(Killed):
            main(["run", str(config), "-q"])
        monkeypatch.undo()
    else:
        assert main(["run", str(config), "-q"]) == 0
    return config, tmp_path / "exp"


def test_a_corrupt_summary_is_one_line_exit_2(tmp_path, capsys):
    config, run = _finished_folder(tmp_path)
    (run / "summary.json").write_text("{bad")
    _one_line_exit_2(capsys, ["run", str(config), "-q"], "summary.json is damaged", "--restart")


@pytest.mark.parametrize("damage", ["checkpoint", "stream", "stream-header", "no-stream"])
def test_a_damaged_checkpoint_or_stream_is_one_line_exit_2(tmp_path, capsys, monkeypatch, damage):
    config, run = _finished_folder(tmp_path, killed_before_summary=True, monkeypatch=monkeypatch)
    capsys.readouterr()
    if damage == "checkpoint":
        data = bytearray((run / "checkpoint.npz").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (run / "checkpoint.npz").write_bytes(bytes(data))
    elif damage == "stream":
        with open(run / "stream" / "scalars.npy", "r+b") as f:
            f.truncate(300)
    elif damage == "stream-header":
        with open(run / "stream" / "sharpness.npy", "r+b") as f:
            f.write(b"garbage!")
    else:
        import shutil

        shutil.rmtree(run / "stream")
    err = _one_line_exit_2(capsys, ["run", str(config), "-q"], "--restart")
    assert "Traceback" not in err
    from eosfast.cli import main

    assert main(["run", str(config), "-q", "--restart"]) == 0


def test_plot_of_a_missing_or_damaged_folder_is_one_line_exit_2(tmp_path, capsys):
    _one_line_exit_2(capsys, ["plot", str(tmp_path / "nothing")], "not a folder")
    config, run = _finished_folder(tmp_path)
    capsys.readouterr()
    data = (run / "records.h5").read_bytes()
    (run / "records.h5").write_bytes(data[:100])
    _one_line_exit_2(capsys, ["plot", str(run)], "records.h5 is damaged")


def test_a_damaged_sweep_index_is_one_line_exit_2(tmp_path, capsys):
    pytest.importorskip("distributed")
    _data_files(tmp_path)
    config = tmp_path / "exp.toml"
    config.write_text(_BASE.format(data="good.npz"))
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text("[1, 2")
    _one_line_exit_2(capsys, ["sweep", str(config), "--lr", "0.1", "--out", str(out)], "sweep.json")


def test_init_from_a_damaged_folder_is_one_line_exit_2(tmp_path, capsys):
    config, run = _finished_folder(tmp_path)
    (run / "records.h5").write_bytes(b"garbage")
    other = tmp_path / "other.toml"
    other.write_text(_BASE.format(data="good.npz") + "")
    text = other.read_text().replace("steps = 30", f'steps = 30\ninit_from = "{run}"')
    other.write_text(text)
    _one_line_exit_2(capsys, ["run", str(other), "-q"], "init_from", "damaged")
    assert not (tmp_path / "other").exists()
