"""A seeded fuzz of the ``eosfast`` command (issue 18): generated configurations, argument lists
and damaged run folders. Every outcome must be a success, a divergence (exit 3) or one line of
error with exit 2: never exit 1 (an unexpected error), a traceback, a signal or a bad value that
is silently accepted."""

import shutil

import numpy as np
import pytest

pytest.importorskip("h5py")

from eosfast.cli import main  # noqa: E402
from eosfast.config import SCHEMA  # noqa: E402
from eosfast.records_file import read_records  # noqa: E402
from eosfast.run_folder import RunDir  # noqa: E402

BASE = {
    "problem": {"hidden": [3]},
    "data": {"path": "data.npz"},
    "optimizer": {"type": "gd", "lr": 0.2},
    "run": {"steps": 6, "seed": 0},
    "tracking": {"sharpness_every": 2, "k": 1},
    "output": {"dir": "run", "figures": False, "checkpoint_every": 3, "flush_every": 2},
}

# Values of each kind a TOML file can hold, good for no key of that kind (see _bad_values).
_WRONG_TYPE = {
    "int": ['"3"', "1.5", "true", "[1]"],
    "float": ['"0.1"', "true", "[0.1]", "nan", "inf"],
    "bool": ["1", '"true"'],
    "str": ["1", "true", '"no-such-choice"'],
    "int_list": ['"3"', "[1.5]", "[true]", "3"],
    "path": ["1", "true"],
}
# Good values that keep a run tiny, per key (other keys keep the baseline's value).
GOOD = {
    ("problem", "hidden"): ["[2]", "[2, 3]", "[1]"],
    ("problem", "activation"): ['"relu"', '"gelu"', '"identity"', '"softplus"', '"silu"'],
    ("problem", "bias"): ["false"],
    ("data", "n_samples"): ["5", "12"],
    ("data", "subset_seed"): ["3"],
    ("data", "scale"): ['"standard"', '"none"'],
    ("data", "targets"): ['"onehot"', '"centered"'],
    ("optimizer", "lr"): ["0.01", "1e-8", "50.0"],
    ("optimizer", "momentum"): ["0.5", "0.0"],
    ("run", "steps"): ["1", "9"],
    ("run", "seed"): ["7", "123456789"],
    ("run", "threads"): ["1", "2"],
    ("run", "record_every"): ["1", "4", "100"],
    ("run", "diverge_factor"): ["1.5", "1e300", "inf"],
    ("run", "save_iterates_every"): ["1", "5"],
    ("tracking", "sharpness_every"): ["0", "1", "100"],
    ("tracking", "k"): ["1", "2", "3"],
    ("tracking", "tol"): ["1e-3", "0.5"],
    ("output", "checkpoint_every"): ["1", "100"],
    ("output", "flush_every"): ["1", "100"],
    ("output", "figures"): ["false"],
}


def _bad_values(table, key):
    spec = SCHEMA[table][key]
    bad = list(_WRONG_TYPE[spec.kind])
    if spec.kind == "str" and not spec.choices:
        bad.remove('"no-such-choice"')
    if spec.kind in ("int", "float", "int_list") and spec.minimum is not None:
        low = spec.minimum if spec.positive else spec.minimum - 1
        bad.append(f"[{int(low)}]" if spec.kind == "int_list" else str(int(low)))
    if spec.maximum is not None:
        bad.append(str(spec.maximum))
    if spec.kind == "path":
        bad.append('"no/such/file.npz"')
    if spec.infinite:  # inf has a meaning here (e.g. diverge_factor: only a non-finite L stops)
        bad.remove("inf")
        bad.append("-inf")
    return bad


def _toml(config):
    lines = []
    for table, keys in config.items():
        lines.append(f"[{table}]")
        for key, value in keys.items():
            lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value):
    if isinstance(value, str) and value[:1] in '"[' or value in ("true", "false"):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if _is_number(value) else f'"{value}"'
    return repr(value).replace("'", '"').replace("True", "true").replace("False", "false")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _outcome(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors are exit 2
        code = exc.code
    captured = capsys.readouterr()
    err = captured.err
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 2, 3), (argv, code, err)
    if code == 2 and "usage:" not in err:
        assert err.count("\n") == 1 and err.startswith("eosfast: "), (argv, err)
    return code


@pytest.fixture
def workdir(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", X=rng.standard_normal((12, 3)), Y=rng.standard_normal((12, 2)))
    return tmp_path


def _cases(rng):
    """(toml values, expected: "good" or "bad") for single mutations and good combinations."""
    cases = []
    for (table, key), values in GOOD.items():
        for value in values:
            cases.append(({(table, key): value}, "good"))
    for table, keys in SCHEMA.items():
        for key in keys:
            if (table, key) in (("data", "name"), ("run", "init_from"), ("output", "dir")):
                continue
            for value in _bad_values(table, key):
                cases.append(({(table, key): value}, "bad"))
    cases.append(({("data", "n_samples"): "13"}, "bad"))  # more samples than the data
    cases.append(({("optimizer", "nesterov"): "true"}, "bad"))  # without momentum
    cases.append(({("optimizer", "loss_min"): "0.1"}, "bad"))  # sqrtgd only
    cases.append(({("unknown", "key"): "1"}, "bad"))
    cases.append(({("run", "stepz"): "1"}, "bad"))
    keys = list(GOOD)
    while len(cases) < 200:
        picked = rng.choice(len(keys), size=3, replace=False)
        cases.append(
            ({keys[i]: GOOD[keys[i]][rng.integers(len(GOOD[keys[i]]))] for i in picked}, "good")
        )
    return cases


def test_generated_configurations(workdir, capsys, restore_threads):
    rng = np.random.default_rng(18)
    for n, (changes, expected) in enumerate(_cases(rng)):
        config = {table: dict(keys) for table, keys in BASE.items()}
        for (table, key), value in changes.items():
            config.setdefault(table, {})[key] = value
        config["output"]["dir"] = f"run{n}"
        path = workdir / f"exp{n}.toml"
        path.write_text(_toml(config))
        code = _outcome(capsys, ["run", str(path), "-q"])
        if expected == "bad":
            assert code == 2, (changes, code)  # no silently accepted value
            assert not (workdir / f"run{n}").exists(), changes  # no half-made folder
        else:
            assert code in (0, 3), (changes, code)
            assert RunDir(workdir / f"run{n}").finished()


def test_generated_argument_lists(workdir, capsys):
    config = workdir / "exp.toml"
    config.write_text(_toml(BASE))
    assert main(["run", str(config), "-q"]) == 0
    tokens = [
        "run", "plot", "info", "-q", "--restart", "--out", "--lr", "--seed", "0.1", "-3", "x",
        str(config), str(workdir / "run"), str(workdir / "missing.toml"), str(workdir / "data.npz"),
        str(workdir / "nothing"), "", "--threads-per-task", "0",
    ]  # fmt: skip
    rng = np.random.default_rng(21)
    for _ in range(60):
        argv = [tokens[i] for i in rng.integers(len(tokens), size=int(rng.integers(1, 5)))]
        _outcome(capsys, argv)
    for argv in (
        ["sweep", str(workdir / "missing.toml"), "--lr", "0.1"],
        ["sweep", str(config), "--lr", "x"],
        ["run", str(workdir / "data.npz")],
        ["plot", str(workdir / "nothing")],
        ["plot", str(config)],
    ):
        assert _outcome(capsys, argv) == 2, argv


def test_damaged_run_folders(workdir, capsys, monkeypatch):
    config = workdir / "exp.toml"
    config.write_text(_toml(BASE))
    assert main(["run", str(config), "-q", "--out", str(workdir / "reference")]) == 0
    reference = read_records(workdir / "reference" / "records.h5")

    class Killed(BaseException):
        pass

    def killed(self, summary):
        raise Killed  # a kill after the final checkpoint and records, before the summary

    monkeypatch.setattr(RunDir, "write_summary", killed)
    with pytest.raises(Killed):
        main(["run", str(config), "-q"])
    monkeypatch.undo()
    capsys.readouterr()
    pristine = workdir / "pristine"
    shutil.move(str(workdir / "run"), str(pristine))
    files = sorted(p for p in pristine.rglob("*") if p.is_file())
    rng = np.random.default_rng(5)
    accepted = 0
    for _ in range(40):
        shutil.rmtree(workdir / "run", ignore_errors=True)
        shutil.copytree(pristine, workdir / "run")
        victim = workdir / "run" / files[rng.integers(len(files))].relative_to(pristine)
        data = bytearray(victim.read_bytes())
        if rng.random() < 0.5 and data:
            data = data[: int(rng.integers(len(data)))]
        elif data:
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        victim.write_bytes(bytes(data))
        code = _outcome(capsys, ["run", str(config), "-q"])
        assert code in (0, 2), (victim, code)
        if code == 0:  # the damage did not matter: the records must be exactly right
            accepted += 1
            back = read_records(workdir / "run" / "records.h5")
            for group in ("steps", "sharpness"):
                for name, values in reference[group].items():
                    np.testing.assert_array_equal(back[group][name], values, err_msg=str(victim))
            np.testing.assert_array_equal(back["x_final"], reference["x_final"])
            if accepted == 1:  # plotting is slow: once
                assert _outcome(capsys, ["plot", str(workdir / "run")]) == 0
    assert accepted < 40
