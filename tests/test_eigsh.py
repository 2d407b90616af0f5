"""eigsh against LAPACK (numpy.linalg.eigh) on explicit matrices."""

import eosfast
import numpy as np
import pytest
from _spectra import reflected, wanted
from conftest import random_symmetric
from eosfast.problems import Quadratic
from scipy.sparse.linalg import aslinearoperator


def check_result(A, res, k, tol, spectrum):
    """Every returned pair: true residual <= tol * scale, reported residual
    correct, orthonormal vectors, converged flags set."""
    n = A.shape[0]
    V, lam = res.eigenvectors, res.eigenvalues
    assert V.shape == (n, k) and lam.shape == (k,) and res.residuals.shape == (k,)
    assert res.all_converged, res.residuals
    scale = max(np.max(np.abs(spectrum)), 1e-300)
    residual = np.linalg.norm(A @ V - V * lam, axis=0)
    assert np.all(residual <= tol * scale * 1.01 + 1e-13 * scale), (residual, tol * scale)
    np.testing.assert_allclose(res.residuals, residual, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-10)
    assert res.matvecs > 0


@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
@pytest.mark.parametrize("k", [1, 4, 7])
def test_random_spectrum(rng, which, k):
    n = 300
    spectrum = rng.standard_normal(n)
    A = reflected(rng, spectrum)
    res = eosfast.eigsh(A, k=k, which=which, tol=1e-9, seed=1)
    check_result(A, res, k, 1e-9, spectrum)
    scale = np.max(np.abs(spectrum))
    np.testing.assert_allclose(res.eigenvalues, wanted(spectrum, k, which), atol=1e-9 * scale)


def test_clustered_top(rng):
    n = 400
    spectrum = rng.uniform(-1, 0.5, n)
    spectrum[:6] = 1 - 1e-6 * np.arange(6)  # gaps of 1e-6, above tol = 1e-9
    A = reflected(rng, spectrum)
    res = eosfast.eigsh(A, k=4, tol=1e-10, seed=3)
    check_result(A, res, 4, 1e-10, spectrum)
    np.testing.assert_allclose(res.eigenvalues, 1 - 1e-6 * np.arange(4), atol=1e-10)


@pytest.mark.parametrize("multiplicity", [3, 6])
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_repeated_top_eigenvalue(rng, multiplicity, k):
    n = 500
    spectrum = rng.uniform(-1, 1, n)
    spectrum[:multiplicity] = 2.0
    A = reflected(rng, spectrum)
    res = eosfast.eigsh(A, k=k, tol=1e-10, seed=k)
    check_result(A, res, k, 1e-10, spectrum)
    np.testing.assert_allclose(res.eigenvalues, wanted(spectrum, k, "LA"), atol=1e-9)


def test_repeated_eigenvalue_with_block_start(rng):
    n = 300
    spectrum = rng.uniform(-1, 1, n)
    spectrum[:4] = 3.0
    A = reflected(rng, spectrum)
    res = eosfast.eigsh(A, k=5, tol=1e-10, block=4, seed=0)
    check_result(A, res, 5, 1e-10, spectrum)
    np.testing.assert_allclose(res.eigenvalues, wanted(spectrum, 5, "LA"), atol=1e-9)


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("k", [1, 3, 6])
def test_low_rank(rng, rank, k):
    n = 200
    B = rng.standard_normal((n, rank))
    A = B @ B.T
    spectrum = np.linalg.eigvalsh(A)
    res = eosfast.eigsh(A, k=k, tol=1e-10, seed=2)
    check_result(A, res, k, 1e-10, spectrum)
    exact = spectrum[::-1][:k]
    np.testing.assert_allclose(res.eigenvalues, exact, atol=1e-9 * exact[0])


def test_negative_dominant_la_vs_lm(rng):
    n = 250
    spectrum = np.concatenate([[-10.0, -9.0, -8.5], rng.uniform(-1, 3, n - 3)])
    spectrum[3] = 3.5
    A = reflected(rng, spectrum)
    la = eosfast.eigsh(A, k=2, which="LA", seed=0)
    lm = eosfast.eigsh(A, k=2, which="LM", seed=0)
    np.testing.assert_allclose(la.eigenvalues, wanted(spectrum, 2, "LA"), atol=1e-7)
    np.testing.assert_allclose(lm.eigenvalues, [-10.0, -9.0], atol=1e-7)
    assert la.eigenvalues[0] == pytest.approx(3.5, abs=1e-7)
    problem = Quadratic(A)
    assert eosfast.sharpness(problem, np.zeros(n)) == pytest.approx(3.5, abs=1e-7)


@pytest.mark.parametrize("n, k", [(1, 1), (2, 1), (2, 2), (7, 7), (30, 30)])
@pytest.mark.parametrize("which", ["LA", "SA", "BE"])
def test_tiny_dimensions(rng, n, k, which):
    spectrum = rng.standard_normal(n)
    A = reflected(rng, spectrum)
    res = eosfast.eigsh(A, k=k, which=which, tol=1e-10)
    check_result(A, res, k, 1e-10, spectrum)
    np.testing.assert_allclose(res.eigenvalues, wanted(spectrum, k, which), atol=1e-10)


def _small_spectra():
    """Small spectra with repeated eigenvalues, where the Krylov space of a
    random start becomes invariant (exact breakdown) after a few steps."""
    fixed = [
        [0, 1, 1],
        [0, 1, 1, 1],
        [1, 1],
        [0, 0, 1, 1],
        [5, 5, 5, 1, 0, -1],
        [2, 2, -3, -3, -3, 1],
        [0] * 7,  # the zero matrix
        [1] * 9,  # the identity
        [0] * 8 + [3],  # rank 1
        [0] * 10 + [-2],
        [4],
        [0, 3, 3, 2, 1, 3, 3, -2, 0, -3, -3, 1],
    ]
    rng = np.random.default_rng(2024)
    drawn = [rng.integers(-3, 4, size=int(rng.integers(2, 13))) for _ in range(8)]
    return [np.asarray(d, dtype=float) for d in fixed + drawn]


@pytest.mark.parametrize("which", ["LA", "SA", "LM", "BE"])
@pytest.mark.parametrize("case", range(len(_small_spectra())))
def test_every_copy_of_repeated_eigenvalues(which, case):
    """All k from 1 to n on small rotated integer spectra: exactly LAPACK's
    wanted eigenvalues, every copy of a repeated one included."""
    spectrum = _small_spectra()[case]
    n = spectrum.size
    rng = np.random.default_rng(case)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * spectrum) @ Q.T
    A = 0.5 * (A + A.T)
    lam = np.linalg.eigvalsh(A)
    size = np.max(np.abs(lam)) if np.any(lam) else 1.0
    for k in range(1, n + 1):
        res = eosfast.eigsh(A, k=k, which=which, tol=1e-8, seed=k)
        check_result(A, res, k, 1e-8, lam)
        got, expected = res.eigenvalues, wanted(lam, k, which)
        if which == "LM":  # ties between +a and -a may go either way
            got, expected = np.abs(got), np.abs(expected)
        np.testing.assert_allclose(np.sort(got), np.sort(expected), rtol=0, atol=1e-8 * size)


@pytest.mark.parametrize("k", [1, 3])
def test_zero_operator(k):
    n = 40
    res = eosfast.eigsh(np.zeros((n, n)), k=k)
    assert res.all_converged
    np.testing.assert_array_equal(res.eigenvalues, np.zeros(k))
    np.testing.assert_array_equal(res.residuals, np.zeros(k))
    np.testing.assert_allclose(res.eigenvectors.T @ res.eigenvectors, np.eye(k), atol=1e-12)


def test_identity_all_copies():
    res = eosfast.eigsh(np.eye(60), k=5)
    assert res.all_converged
    np.testing.assert_allclose(res.eigenvalues, np.ones(5), atol=1e-14)


@pytest.mark.parametrize("which", ["LA", "BE"])
def test_large_dimension_known_spectrum(rng, which):
    n = 3000
    spectrum = 0.01 * rng.standard_normal(n)
    spectrum[:5] = [40, 25, 25, 10, -30]  # outliers over a bulk, one repeated
    A = reflected(rng, spectrum)
    res = eosfast.eigsh(A, k=4, which=which, tol=1e-9, seed=4)
    np.testing.assert_allclose(res.eigenvalues, wanted(spectrum, 4, which), atol=1e-7)
    residual = np.linalg.norm(A @ res.eigenvectors - res.eigenvectors * res.eigenvalues, axis=0)
    assert np.all(residual <= 1e-9 * 40 * 1.01)


def test_warm_start_agrees_with_cold(rng):
    n = 400
    spectrum = rng.uniform(-1, 1, n)
    spectrum[:3] = [5.0, 4.0, 3.9]
    A = reflected(rng, spectrum)
    cold = eosfast.eigsh(A, k=3, tol=1e-10, seed=0)
    # a nearby operator, warm-started from the cold eigenvectors (a block v0)
    E = reflected(rng, rng.uniform(-1, 1, n)) * 1e-4
    warm = eosfast.eigsh(A + E, k=3, tol=1e-10, v0=cold.eigenvectors)
    recold = eosfast.eigsh(A + E, k=3, tol=1e-10, seed=5)
    np.testing.assert_allclose(warm.eigenvalues, recold.eigenvalues, atol=1e-9)
    np.testing.assert_allclose(
        np.abs(np.sum(warm.eigenvectors * recold.eigenvectors, 0)), 1, atol=1e-8
    )
    # one start vector
    single = eosfast.eigsh(A + E, k=1, tol=1e-10, v0=cold.eigenvectors[:, 0])
    assert single.eigenvalues[0] == pytest.approx(recold.eigenvalues[0], abs=1e-9)
    assert single.matvecs < recold.matvecs


def test_operator_kinds_agree(rng):
    n = 120
    A = random_symmetric(rng, n)
    expected = np.linalg.eigvalsh(A)[::-1][:3]
    for op, kw in [
        (A, {}),
        (aslinearoperator(A), {}),
        (lambda v: A @ v, {"dim": n}),
        (Quadratic(A).hessian(np.zeros(n)), {}),
    ]:
        res = eosfast.eigsh(op, k=3, tol=1e-10, seed=0, **kw)
        np.testing.assert_allclose(res.eigenvalues, expected, atol=1e-9)


def test_finite_difference_noise_passes_symmetry_probe(rng):
    n = 50
    A = random_symmetric(rng, n)
    noise = rng.standard_normal((n, n)) * 1e-9
    res = eosfast.eigsh(lambda v: (A + noise) @ v, k=1, tol=1e-6, dim=n)
    assert res.eigenvalues[0] == pytest.approx(np.linalg.eigvalsh(A)[-1], abs=1e-6)


def test_seed_reproducible_and_budget_status(rng):
    n = 300
    spectrum = rng.uniform(0, 1, n)
    spectrum[:3] = [3, 2, 1.5]
    A = reflected(rng, spectrum)
    a = eosfast.eigsh(A, k=3, seed=7)
    b = eosfast.eigsh(A, k=3, seed=7)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    np.testing.assert_array_equal(a.eigenvectors, b.eigenvectors)
    short = eosfast.eigsh(A, k=3, max_matvecs=5, seed=7)  # a status, not an exception
    assert not short.all_converged and short.matvecs <= 5


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("which", ["LA", "LM"])
def test_bitwise_identical_across_threads(rng, restore_threads, threads, which):
    n = 20000 + 17  # several vector chunks and a ragged tail
    d = 0.01 * rng.standard_normal(n)
    d[:4] = [9.0, 7.0, 7.0, -8.0]
    diagonal = Quadratic(d).hessian(np.zeros(n))
    m = 700
    dense = Quadratic(reflected(rng, rng.standard_normal(m))).hessian(np.zeros(m))

    def solve():
        return [eosfast.eigsh(op, k=3, which=which, seed=11) for op in (diagonal, dense)]

    eosfast.set_num_threads(1)
    reference = solve()
    eosfast.set_num_threads(threads)
    for r, s in zip(reference, solve(), strict=True):
        np.testing.assert_array_equal(r.eigenvalues, s.eigenvalues)
        np.testing.assert_array_equal(r.eigenvectors, s.eigenvectors)
        np.testing.assert_array_equal(r.residuals, s.residuals)
        assert r.matvecs == s.matvecs


def test_bad_input(rng):
    A = random_symmetric(rng, 10)
    with pytest.raises(ValueError, match="k"):
        eosfast.eigsh(A, k=0)
    with pytest.raises(ValueError, match="exceeds"):
        eosfast.eigsh(A, k=11)
    with pytest.raises(ValueError, match="which"):
        eosfast.eigsh(A, which="LR")
    with pytest.raises(ValueError, match="tol"):
        eosfast.eigsh(A, tol=0)
    with pytest.raises(ValueError, match="v0"):
        eosfast.eigsh(A, v0=np.ones(9))
    with pytest.raises(ValueError, match="v0"):
        eosfast.eigsh(A, v0=np.ones((10, 2, 1)))
    with pytest.raises(ValueError, match="NaN"):
        eosfast.eigsh(A, v0=np.full(10, np.nan))
    B = rng.standard_normal((10, 10))
    with pytest.raises(ValueError, match="not symmetric"):
        eosfast.eigsh(lambda v: B @ v, dim=10)
    with pytest.raises(eosfast.NumericalError, match="NaN"):
        eosfast.eigsh(lambda v: np.full(10, np.nan), dim=10)
    with pytest.raises(TypeError):
        eosfast.eigsh(A, seed=1.5)


def test_nan_after_a_few_products_and_python_errors(rng):
    A = random_symmetric(rng, 30)
    calls = [0]

    def flaky(v):
        calls[0] += 1
        return A @ v if calls[0] < 6 else A @ v * np.nan

    with pytest.raises(eosfast.NumericalError, match="NaN or inf"):
        eosfast.eigsh(flaky, dim=30)

    def broken(v):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        eosfast.eigsh(broken, dim=30)


def test_missed_copy_check_costs_few_products_on_a_simple_spectrum(rng):
    """The check runs first on H deflated by the whole Krylov space of the main run, where
    a simple spectrum leaves nothing near the wanted values: a few products over ARPACK,
    which does not check."""
    from scipy.sparse.linalg import LinearOperator
    from scipy.sparse.linalg import eigsh as arpack

    n = 2000
    spectrum = 0.01 * rng.standard_normal(n)
    spectrum[:24] = np.geomspace(50.0, 0.5, 24)
    A = reflected(rng, spectrum)
    calls = [0]

    def matvec(v):
        calls[0] += 1
        return A @ np.ravel(v)

    op = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    arpack(op, k=5, which="LA", tol=1e-8, v0=np.ones(n))
    res = eosfast.eigsh(A, k=5, tol=1e-8, seed=0)
    np.testing.assert_allclose(res.eigenvalues, spectrum[:5], rtol=1e-12)
    assert res.matvecs <= calls[0] + 4, (res.matvecs, calls[0])
