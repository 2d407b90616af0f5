"""Configuration files and data: defaults, clear errors, the digits and .npz sources."""

import numpy as np
import pytest
from eosfast.config import ConfigError, load_config, parse_config, parse_toml_text
from eosfast.data import load_data, prepare

MINIMAL = """
[data]
name = "digits"
n_samples = 100

[optimizer]
type = "gd"
lr = 0.1

[run]
steps = 10
"""


def test_defaults_and_paths(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert config.text == MINIMAL
    assert config["problem"] == {
        "type": "mlp",
        "hidden": [32, 32],
        "activation": "tanh",
        "loss": "mse",
        "bias": True,
    }
    assert config["data"]["targets"] == "onehot" and config["data"]["scale"] == "standard"
    assert config["output"]["dir"] == tmp_path / "exp"
    assert config["tracking"]["sharpness_every"] == 10
    again = parse_toml_text(config.to_toml(), source="elsewhere/config.toml")
    assert again.values == config.values


def test_overrides_are_validated_again(tmp_path):
    config = parse_toml_text(MINIMAL, source=str(tmp_path / "c.toml"))
    changed = config.with_overrides({"optimizer.lr": np.float64(0.25), "run.seed": 3})
    assert changed["optimizer"]["lr"] == 0.25 and changed["run"]["seed"] == 3
    assert config["optimizer"]["lr"] == 0.1
    with pytest.raises(ConfigError, match="must be > 0"):
        config.with_overrides({"optimizer.lr": -1.0})
    with pytest.raises(ConfigError, match="unknown key 'optimizer.rate'"):
        config.with_overrides({"optimizer.rate": 1.0})


def _with(text, old, new):
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("lr = 0.1", "lrr = 0.1"), r"unknown key 'lrr' in \[optimizer\] \(did you mean 'lr'\?\)"),
        (("lr = 0.1", 'lr = "0.1"'), r"\[optimizer\] lr must be a number, got string '0.1'"),
        (("lr = 0.1", "lr = 0"), r"\[optimizer\] lr must be > 0"),
        (("steps = 10", "steps = 2.5"), r"\[run\] steps must be an integer, got float 2.5"),
        (("steps = 10", "steps = 0"), r"\[run\] steps must be >= 1"),
        (("steps = 10", "seed = 1"), r"\[run\] is missing the required key 'steps'"),
        (('type = "gd"', 'type = "adam"'), r"type must be one of 'gd', 'ngd', 'sqrtgd'"),
        (("[run]", "[runn]"), r"unknown key 'runn' in the top level \(did you mean 'run'\?\)"),
        (("[run]\nsteps = 10", ""), r"missing table \[run\]"),
        (('name = "digits"', 'name = "mnist"'), r"name must be one of 'digits'"),
        (('name = "digits"', ""), r"\[data\] needs exactly one of"),
        (('name = "digits"', 'path = "missing.npz"'), r"\[data\] path: file not found: .*missing"),
        (
            ("lr = 0.1", "lr = 0.1\nmomentum = 0.9\nloss_min = 0.1"),
            r"loss_min applies to type = 'sqrtgd' only",
        ),
        (
            ("n_samples = 100", 'n_samples = 100\ntargets = "labels"'),
            r'targets = "labels" goes with \[problem\] loss = "ce"',
        ),
        (("steps = 10", 'steps = 10\ninit_from = "nowhere"'), r"init_from: run folder not found"),
        (("lr = 0.1", "lr = 0.1 = 2"), r"invalid TOML"),
        (("steps = 10", "steps = 10\nthreads = true"), r"threads must be an integer, got boolean"),
    ],
)
def test_errors_name_the_table_and_key(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(_with(MINIMAL, *edit))
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file_and_non_table():
    with pytest.raises(ConfigError, match=r"run must be a table \[run\], got integer 3"):
        parse_config({"run": 3, "optimizer": {"type": "gd", "lr": 1.0}})
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/config.toml")
    with pytest.raises(ConfigError, match="table of tables"):
        parse_config([1, 2])


def test_digits_subset_scaling_and_targets():
    config = parse_toml_text(MINIMAL)
    X, Y = load_data(config["data"])
    assert X.shape == (100, 64) and Y.shape == (100, 10)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-12)
    assert X.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    X2, Y2 = load_data(config.with_overrides({"data.targets": "centered"})["data"])
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_allclose(Y2, Y - 0.1)
    X3, _ = load_data(config.with_overrides({"data.subset_seed": 1})["data"])
    assert not np.array_equal(X3, X)


def test_npz_data(tmp_path, rng):
    X = rng.standard_normal((20, 3))
    labels = rng.integers(0, 4, 20)
    np.savez(tmp_path / "d.npz", X=X, Y=labels)
    text = MINIMAL.replace('name = "digits"\nn_samples = 100', 'path = "d.npz"')
    config = parse_toml_text(text, source=str(tmp_path / "c.toml"))
    assert config["data"]["scale"] == "none"
    Xl, Yl = load_data(config["data"])
    np.testing.assert_array_equal(Xl, X)
    np.testing.assert_array_equal(Yl, np.eye(4)[labels])
    np.savez(tmp_path / "d.npz", X=X)
    with pytest.raises(ValueError, match=r"missing array\(s\) Y"):
        load_data(config["data"])


@pytest.mark.parametrize(
    ("X", "Y", "message"),
    [
        (np.zeros((3, 2)), np.zeros(4, dtype=int), "Y must have shape"),
        (np.zeros(3), np.zeros(3, dtype=int), "X must have shape"),
        (np.full((3, 2), np.nan), np.zeros(3, dtype=int), "finite"),
        (np.zeros((3, 2)), np.array([0, -1, 2]), "non-negative integer labels"),
        (np.zeros((3, 2)), np.zeros((3, 2)), "targets = 'labels' needs integer labels"),
    ],
)
def test_bad_arrays(X, Y, message):
    targets = "labels" if "labels'" in message else "onehot"
    with pytest.raises(ValueError, match=message):
        prepare(X, Y, None, targets, "none", 0, "test")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[tracking]\ntol = 0", r"\[tracking\] tol must be > 0"),
        ("[tracking]\ntol = 1.5", r"\[tracking\] tol must be < 1"),
        ("[tracking]\nk = 65", r"\[tracking\] k must be < 65"),
        ("[problem]\nactivation = 'sigmoid'", r"activation must be one of 'tanh'"),
    ],
)
def test_limits_come_from_the_library_objects(tmp_path, extra, message):
    path = tmp_path / "bad.toml"
    path.write_text(MINIMAL + "\n" + extra + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_values_the_config_accepts_at_its_limits_are_accepted_by_the_library(tmp_path):
    from eosfast import SharpnessTracker
    from eosfast.config import SCHEMA
    from eosfast.problems.mlp import ACTIVATIONS, LOSSES

    assert SCHEMA["problem"]["activation"].choices == ACTIVATIONS
    assert SCHEMA["problem"]["loss"].choices == LOSSES
    path = tmp_path / "edge.toml"
    path.write_text(MINIMAL + "\n[tracking]\nk = 64\ntol = 0.999\n")
    tracking = load_config(path)["tracking"]
    SharpnessTracker(k=tracking["k"], tol=tracking["tol"])  # no error from the library either


def test_nesterov_without_momentum_is_a_config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(_with(MINIMAL, "lr = 0.1", "lr = 0.1\nnesterov = true"))
    with pytest.raises(ConfigError, match=r"nesterov = true needs momentum > 0"):
        load_config(path)
    path.write_text(_with(MINIMAL, "lr = 0.1", "lr = 0.1\nnesterov = true\nmomentum = 0.5"))
    assert load_config(path)["optimizer"]["nesterov"] is True
