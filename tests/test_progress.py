"""The progress bar: shows steps, loss and sharpness on a terminal, nothing otherwise."""

import pytest

pytest.importorskip("tqdm")

from eosfast.progress import ProgressBar, on_terminal  # noqa: E402


def test_silent_when_not_on_a_terminal(capsys):
    assert not on_terminal()  # pytest captures stdout and stderr
    with ProgressBar(100, "run") as bar:
        assert not bar.enabled
        bar.update(50, 0.1, 2.0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_shows_steps_loss_and_sharpness_when_enabled(capsys):
    with ProgressBar(100, "gd lr=0.1", enabled=True) as bar:
        bar.update(40, 0.125, 19.5)
        bar.update(30, float("nan"), float("nan"))  # never goes back, skips non-finite values
        bar.update(100, 0.0625, 20.0)
    err = capsys.readouterr().err
    assert "gd lr=0.1" in err and "100/100" in err
    assert "loss=6.250e-02" in err and "sharpness=20" in err
    assert "nan" not in err
