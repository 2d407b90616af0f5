"""Power iteration, Hutchinson / Hutch++ traces and stochastic Lanczos
quadrature against exact values on matrices with known spectra."""

import eosfast
import numpy as np
import pytest
from _spectra import reflected, wanted
from conftest import random_symmetric
from eosfast.problems import Quadratic


def residuals(A, res):
    V = res.eigenvectors
    return np.linalg.norm(A @ V - V * res.eigenvalues, axis=0)


@pytest.fixture
def negative_dominant(rng):
    n = 200
    spectrum = rng.uniform(-1, 1, n)
    spectrum[:4] = [-12.0, 6.0, 3.0, -2.5]
    return spectrum, reflected(rng, spectrum)


def test_power_largest_magnitude(negative_dominant):
    spectrum, A = negative_dominant
    res = eosfast.power_iteration(A, k=3, tol=1e-8, max_iter=5000, seed=0)
    assert res.shift == 0.0 and res.all_converged
    np.testing.assert_allclose(res.eigenvalues, wanted(spectrum, 3, "LM"), atol=1e-6)
    assert np.all(residuals(A, res) <= 1e-8 * 12 * 1.01)
    np.testing.assert_allclose(res.residuals, residuals(A, res), atol=1e-12)


def test_power_largest_algebraic_by_shift(negative_dominant):
    spectrum, A = negative_dominant
    res = eosfast.power_iteration(A, k=2, which="LA", tol=1e-8, max_iter=20000, seed=0)
    assert res.shift < -12.0  # H - shift I is positive semidefinite
    np.testing.assert_allclose(res.eigenvalues, [6.0, 3.0], atol=1e-6)
    explicit = eosfast.power_iteration(A, k=1, tol=1e-8, max_iter=20000, shift=-13.0, seed=0)
    assert explicit.shift == -13.0
    assert explicit.eigenvalues[0] == pytest.approx(6.0, abs=1e-6)
    # The field's LM baseline would report -12 as the "top eigenvalue".
    lm = eosfast.power_iteration(A, k=1, tol=1e-8, max_iter=5000, seed=0)
    assert lm.eigenvalues[0] == pytest.approx(-12.0, abs=1e-6)


def test_power_budget_and_bad_input(rng):
    A = random_symmetric(rng, 50)
    short = eosfast.power_iteration(A, tol=1e-12, max_iter=3)
    assert not short.all_converged and short.matvecs == 3
    with pytest.raises(ValueError, match="which"):
        eosfast.power_iteration(A, which="SA")
    with pytest.raises(ValueError, match="exceeds"):
        eosfast.power_iteration(A, k=51)
    with pytest.raises(ValueError, match="shift"):
        eosfast.power_iteration(A, shift=np.nan)
    B = rng.standard_normal((50, 50))
    with pytest.raises(ValueError, match="not symmetric"):
        eosfast.power_iteration(lambda v: B @ v, dim=50)


def test_hutchinson_exact_on_diagonal_and_unbiased(rng):
    d = rng.uniform(-1, 2, 500)
    # Rademacher probes: z^T D z = tr D exactly for diagonal D
    diag = eosfast.hutchinson(Quadratic(d).hessian(np.zeros(500)), n_probes=5, seed=1)
    assert diag.estimate == pytest.approx(d.sum(), rel=1e-12)
    assert diag.stderr == pytest.approx(0.0, abs=1e-9)
    A = reflected(rng, d)
    est = eosfast.hutchinson(A, n_probes=400, seed=2)
    assert est.matvecs == 400 and est.samples.shape == (400,)
    assert abs(est.estimate - d.sum()) <= 4 * est.stderr
    assert est.stderr == pytest.approx(np.std(est.samples, ddof=1) / 20)
    again = eosfast.hutchinson(A, n_probes=400, seed=2)
    assert again.estimate == est.estimate


def test_hutchpp_low_rank_exact_and_beats_hutchinson(rng):
    n = 400
    B = rng.standard_normal((n, 5))
    low = B @ B.T
    est = eosfast.hutchpp(low, n_matvecs=30, seed=0)
    assert est.estimate == pytest.approx(np.trace(low), rel=1e-10)
    assert est.matvecs == 10 + 5 + 10  # Q has rank 5: five products for H Q
    spectrum = 1.0 / np.arange(1, n + 1) ** 2  # fast decay: Hutch++'s regime
    A = reflected(rng, spectrum)
    errors_pp, errors_h = [], []
    for seed in range(5):
        pp = eosfast.hutchpp(A, n_matvecs=60, seed=seed)
        assert abs(pp.estimate - spectrum.sum()) <= 5 * pp.stderr + 1e-12
        errors_pp.append(abs(pp.estimate - spectrum.sum()))
        errors_h.append(abs(eosfast.hutchinson(A, 60, seed=seed).estimate - spectrum.sum()))
    assert np.mean(errors_pp) < 0.2 * np.mean(errors_h)
    with pytest.raises(ValueError):
        eosfast.hutchpp(A, n_matvecs=2)


def test_slq_nodes_exact_for_few_distinct_eigenvalues(rng):
    n = 300
    values = np.array([-2.0, 0.5, 1.0, 4.0])
    counts = np.array([60, 150, 60, 30])
    spectrum = np.repeat(values, counts)
    A = reflected(rng, spectrum)
    sd = eosfast.spectral_density(A, n_probes=40, lanczos_steps=20, seed=0, sigma=0.05)
    # The Krylov space of each probe is 4-dimensional: Lanczos stops early and
    # the quadrature is exact, nodes at the eigenvalues.
    used = sd.nodes[sd.weights > 0]
    assert np.all(np.min(np.abs(used[:, None] - values[None, :]), axis=1) <= 1e-10)
    np.testing.assert_allclose(sd.weights.sum(axis=1), 1, atol=1e-12)
    assert sd.matvecs == 40 * 4
    assert sd.trace_of(lambda x: x) == pytest.approx(spectrum.sum(), abs=0.15 * n)
    assert sd.trace_of(lambda x: x**2) == pytest.approx((spectrum**2).sum(), rel=0.1)
    # weights estimate the multiplicities
    mass = [sd.weights[np.abs(sd.nodes - v) < 1e-8].sum() / 40 for v in values]
    np.testing.assert_allclose(mass, counts / n, atol=0.06)


def test_slq_density_matches_smoothed_spectrum(rng):
    n = 1500
    spectrum = np.concatenate([rng.uniform(-0.2, 0.2, n - 5), [3.0, 4.0, 4.5, 6.0, 8.0]])
    A = Quadratic(spectrum).hessian(np.zeros(n))
    sd = eosfast.spectral_density(A, n_probes=30, lanczos_steps=60, seed=1, sigma=0.1, grid=400)
    dx = sd.grid[1] - sd.grid[0]
    assert np.sum(sd.density) * dx == pytest.approx(1.0, abs=1e-3)
    diff = (sd.grid[:, None] - spectrum[None, :]) / 0.1
    exact = np.exp(-0.5 * diff**2).sum(axis=1) / (n * 0.1 * np.sqrt(2 * np.pi))
    assert np.sum(np.abs(sd.density - exact)) * dx < 0.1
    # tr f(H) for smooth f, against the exact value
    assert sd.trace_of(np.exp) == pytest.approx(np.exp(spectrum).sum(), rel=0.05)
    same = eosfast.spectral_density(A, n_probes=30, lanczos_steps=60, seed=1, sigma=0.1, grid=400)
    np.testing.assert_array_equal(sd.density, same.density)


def test_slq_grid_sigma_and_bad_input(rng):
    A = reflected(rng, rng.uniform(-1, 1, 100))
    grid = np.linspace(-2, 2, 50)
    sd = eosfast.spectral_density(A, n_probes=3, lanczos_steps=10, grid=grid, seed=0)
    np.testing.assert_array_equal(sd.grid, grid)
    assert sd.sigma > 0 and sd.nodes.shape == (3, 10)
    zero = eosfast.spectral_density(np.zeros((20, 20)), n_probes=2, lanczos_steps=5, seed=0)
    assert zero.matvecs == 2 and np.all(zero.nodes[zero.weights > 0] == 0)
    with pytest.raises(ValueError, match="sigma"):
        eosfast.spectral_density(A, sigma=-1.0)
    with pytest.raises(ValueError, match="lanczos_steps"):
        eosfast.spectral_density(A, lanczos_steps=0)
    B = rng.standard_normal((30, 30))
    with pytest.raises(ValueError, match="not symmetric"):
        eosfast.spectral_density(lambda v: B @ v, dim=30)
    with pytest.raises(eosfast.NumericalError):
        eosfast.spectral_density(lambda v: np.full(30, np.inf), dim=30)


@pytest.mark.parametrize("threads", [2, 3])
def test_estimators_bitwise_across_threads(rng, restore_threads, threads):
    n = 20000 + 17
    d = rng.standard_normal(n)
    d[:2] = [10.0, -8.0]
    op = Quadratic(d).hessian(np.zeros(n))

    def run():
        return (
            eosfast.power_iteration(op, k=2, tol=1e-4, seed=0).eigenvectors,
            eosfast.hutchpp(op, n_matvecs=12, seed=0).estimate,
            eosfast.spectral_density(op, n_probes=2, lanczos_steps=15, seed=0).nodes,
        )

    eosfast.set_num_threads(1)
    reference = run()
    eosfast.set_num_threads(threads)
    for a, b in zip(reference, run(), strict=True):
        np.testing.assert_array_equal(a, b)
