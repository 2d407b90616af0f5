"""Faults around run folders and their inputs (issue 18): sizes that overflow, clear errors."""

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
