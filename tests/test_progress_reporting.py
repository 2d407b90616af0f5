"""progress=True / a callable on the long calls: run, eigsh, spectral_density; the plain line."""

import eosfast
import numpy as np
import pytest
from eosfast import progress as progress_module
from eosfast.problems import Quadratic


def test_reporter_kinds():
    seen = []
    with progress_module.reporter(lambda d, t: seen.append((d, t)), 4, "x") as rep:
        rep.update(2)
        rep.update(1)  # never backwards
        rep.update(4, loss=float("nan"))
    assert seen == [(2, 4), (4, 4)]
    assert not progress_module.reporter(None, 4).enabled
    assert not progress_module.reporter(False, 4).enabled
    with pytest.raises(TypeError, match="progress must be None, a bool or a callable"):
        progress_module.reporter(1, 4)


def test_plain_line_without_tqdm(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "have_tqdm", lambda: False)
    with progress_module.reporter(True, 3, "probes", "probe") as rep:
        rep.update(1, matvecs=10)
        rep.update(3, matvecs=30)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "probes: 1/3 probe [matvecs=10]"
    assert err.splitlines()[-1] == "probes: 3/3 probe [matvecs=30]"  # the final state, always


def test_progress_bar_without_tqdm(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "have_tqdm", lambda: False)
    with progress_module.ProgressBar(100, "gd", enabled=True) as bar:
        bar.update(100, 0.0625, 20.0)
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gd: 100/100 step [loss=6.250e-02, sharpness=20]"
    )


@pytest.mark.parametrize("tqdm", [True, False])
def test_run_progress_true(monkeypatch, capsys, tqdm):
    if tqdm:
        pytest.importorskip("tqdm")
    monkeypatch.setattr(progress_module, "have_tqdm", lambda: tqdm)
    problem = Quadratic(np.array([1.0, 0.5]))
    quiet = eosfast.run(problem, eosfast.GD(0.5), np.ones(2), 50, sharpness_every=10)
    assert capsys.readouterr().err == ""
    traj = eosfast.run(problem, eosfast.GD(0.5), np.ones(2), 50, sharpness_every=10, progress=True)
    err = capsys.readouterr().err
    assert "eosfast.run" in err and "50/50" in err
    np.testing.assert_array_equal(traj.x_final, quiet.x_final)  # progress changes nothing
    assert eosfast.run(problem, eosfast.GD(0.5), np.ones(2), 5, progress=False).status
    with pytest.raises(TypeError, match="progress must be True, False, None or a callable"):
        eosfast.run(problem, eosfast.GD(0.5), np.ones(2), 5, progress="yes")


def test_eigsh_and_spectral_density_progress(capsys):
    H = np.diag(np.linspace(1.0, 2.0, 40))
    calls = []
    w = eosfast.eigsh(H, k=2, seed=0, progress=lambda d, t: calls.append((d, t))).eigenvalues
    assert calls == [(1, 1)]
    np.testing.assert_allclose(w, [2.0, 2.0 - 1.0 / 39], rtol=1e-10)
    eosfast.eigsh(H, k=1, seed=0, progress=True)
    assert "eosfast.eigsh k=1 dim=40" in capsys.readouterr().err
    calls = []
    d = eosfast.spectral_density(
        H, n_probes=6, lanczos_steps=10, seed=0, progress=lambda done, t: calls.append((done, t))
    )
    assert calls[-1] == (6, 6) and all(t == 6 for _, t in calls)
    same = eosfast.spectral_density(H, n_probes=6, lanczos_steps=10, seed=0, progress=True)
    np.testing.assert_array_equal(d.density, same.density)
    assert "eosfast.spectral_density" in capsys.readouterr().err
