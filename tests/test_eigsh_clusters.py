"""eigsh on clustered spectra: every copy of a repeated extreme eigenvalue is
found even when the next eigenvalue is close, and the answer does not depend
on the operator's scale. LAPACK (numpy.linalg.eigvalsh) is the reference."""

import sys
from pathlib import Path

import eosfast
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_spectrum  # noqa: E402


def _rotated(d, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((d.size, d.size)))
    A = (Q * d) @ Q.T
    return 0.5 * (A + A.T)


def _wanted(lam, k, which):
    if which == "LA":
        return np.sort(lam)[::-1][:k]
    if which == "SA":
        return np.sort(lam)[:k]
    if which == "LM":
        return np.abs(lam[np.argsort(-np.abs(lam), kind="stable")][:k])
    top = np.sort(lam)[::-1]
    return np.concatenate([top[: (k + 1) // 2], top[::-1][: k // 2]])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 3])
def test_the_copy_next_to_a_close_eigenvalue(seed, k):
    """The reproducer of the report: eigenvalues 1, 1, then 0.997 ... -0.9."""
    n = 200
    d = np.concatenate([[1.0, 1.0], np.linspace(0.997, -0.9, n - 2)])
    for A in (_rotated(d, np.random.default_rng(0)), np.diag(d)):
        r = eosfast.eigsh(A, k=k, which="LA", tol=1e-10, seed=seed)
        np.testing.assert_allclose(r.eigenvalues, np.sort(d)[::-1][:k], atol=1e-9)
        assert r.all_converged


def test_stress_multiplicities_and_small_gaps():
    """Seeded random cases (benchmarks/bench_spectrum.py's cluster_cases): multiplicity
    2-8 at the top or the bottom (for SM: nearest zero), the next eigenvalue at a
    relative gap of 1e-1 ... 1e-3, n = 50-500, k from 1 to the multiplicity + 2, every
    `which` (LA, SA, LM, BE, SM): no wrong answer against LAPACK (a missed copy is
    wrong), and a pair reported converged is a true eigenpair. ARPACK runs on the same
    cases (at most 30 restarts) and the matvec counts are printed side by side (run
    with -s to see them; speed is bench_spectrum.py's business, not asserted here)."""
    rows = bench_spectrum.clusters(trials=40, tol=1e-10, verbose=False, arpack_maxiter=30)
    print("\n" + bench_spectrum.cluster_summary(rows))
    assert {r["which"] for r in rows} == {"LA", "SA", "LM", "BE", "SM"}
    wrong = [r for r in rows if not r["right_eosfast"]]
    assert not wrong, wrong
    assert all(r["converged_are_pairs"] for r in rows)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300])
def test_the_answer_does_not_depend_on_the_scale(scale):
    rng = np.random.default_rng(3)
    d = np.array([3.0, 2.0, 2.0, 1.0, 0.5, -1.0] + list(np.linspace(-0.9, 0.4, 30)))
    A = _rotated(d, rng)
    ref = eosfast.eigsh(A, k=3, tol=1e-10, seed=0)
    r = eosfast.eigsh(A * scale, k=3, tol=1e-10, seed=0)
    assert r.all_converged
    np.testing.assert_allclose(r.eigenvalues / scale, ref.eigenvalues, rtol=1e-12)
    np.testing.assert_allclose(r.eigenvalues / scale, [3, 2, 2], rtol=1e-9)
    assert r.matvecs == ref.matvecs
    assert np.all(r.residuals <= 1e-10 * 3 * scale)


def test_a_tiny_operator_is_not_reported_as_converged_after_one_product():
    r = eosfast.eigsh(np.diag([3.0, 2.0, 1.0]) * 1e-200, k=1, seed=0)
    np.testing.assert_allclose(r.eigenvalues, [3e-200], rtol=1e-12)
    assert eosfast.sharpness(
        eosfast.problems.Quadratic(np.diag([3.0, 2.0, 1.0]) * 1e-200), np.zeros(3)
    ) == (pytest.approx(3e-200, rel=1e-12))


# SciPy's calling conventions.


def test_sparse_input_and_linear_operators_agree_with_scipy():
    import scipy.sparse as sp
    from scipy.sparse.linalg import aslinearoperator
    from scipy.sparse.linalg import eigsh as arpack

    rng = np.random.default_rng(5)
    n = 300
    M = sp.random(n, n, density=0.02, random_state=5, format="csr")
    M = M + M.T + sp.diags(rng.standard_normal(n))
    ref = np.sort(arpack(M, k=4, which="LA", return_eigenvectors=False))[::-1]
    for A in (M, sp.csr_array(M), M.tocoo(), aslinearoperator(M)):
        w, v = eosfast.eigsh(A, k=4, tol=1e-10, seed=0)
        np.testing.assert_allclose(w, ref, rtol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(M @ v - v * w, axis=0), 0, atol=1e-8)
    with pytest.raises(ValueError, match="not symmetric"):
        eosfast.eigsh(sp.csr_matrix(np.triu(np.ones((5, 5)))), k=1)
    with pytest.raises(TypeError, match="complex"):
        eosfast.eigsh(sp.csr_matrix(np.eye(4) * 1j), k=1)


def test_scipy_keywords_and_unpacking():
    A = np.diag(np.arange(1.0, 41.0))
    w, v = eosfast.eigsh(A, k=2, rng=3)
    np.testing.assert_allclose(w, [40, 39])
    assert v.shape == (40, 2)
    values = eosfast.eigsh(A, k=2, rng=np.random.default_rng(1), return_eigenvectors=False)
    np.testing.assert_allclose(values, [40, 39])
    r = eosfast.eigsh(A, k=1, maxiter=1, seed=0)
    assert r.matvecs <= 20
    with pytest.raises(TypeError):
        eosfast.eigsh(A, 2, "LA")  # everything after k is keyword-only
    with pytest.raises(ValueError, match="at most one"):
        eosfast.eigsh(A, k=1, seed=1, rng=1)
    with pytest.raises(ValueError, match="at most one"):
        eosfast.eigsh(A, k=1, max_matvecs=10, maxiter=1)


def test_a_problem_gets_a_hint_to_pass_its_hessian():
    problem = eosfast.problems.Quadratic(np.eye(3))
    with pytest.raises(TypeError, match=r"problem.hessian\(x\)"):
        eosfast.eigsh(problem)


@pytest.mark.parametrize("n", [40, 300])
def test_smallest_magnitude_against_lapack(n):
    """SM: the eigenvalues nearest zero, of either sign, by ascending magnitude; a
    repeated one (0.3 twice) and a +-pair (0.5, -0.5) among them."""
    rng = np.random.default_rng(n)
    d = np.concatenate(
        [[0.3, 0.3, -0.5, 0.5], rng.uniform(0.6, 2.0, n - 4) * rng.choice([-1, 1], n - 4)]
    )
    A = _rotated(d, rng)
    lam = np.linalg.eigvalsh(A)
    for k in (1, 2, 3, 4, 5):
        r = eosfast.eigsh(A, k=k, which="SM", tol=1e-10, seed=1)
        want = lam[np.argsort(np.abs(lam), kind="stable")][:k]
        np.testing.assert_allclose(np.abs(r.eigenvalues), np.abs(want), atol=1e-9)
        np.testing.assert_allclose(np.sort(r.eigenvalues), np.sort(want), atol=1e-9)
        assert np.all(np.diff(np.abs(r.eigenvalues)) >= -1e-12)  # ascending magnitude
        assert r.all_converged
        V = r.eigenvectors
        np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-10)
        assert np.all(np.linalg.norm(A @ V - V * r.eigenvalues, axis=0) <= 1e-10 * 2.0 * 1.01)
    tiny = eosfast.eigsh(A * 1e-200, k=2, which="SM", tol=1e-10, seed=1)
    np.testing.assert_allclose(tiny.eigenvalues, [0.3e-200, 0.3e-200], rtol=1e-9)


def test_without_the_copy_check_a_copy_can_be_missed():
    """check_copies=False is ARPACK's behaviour (fewer products): on the reproducer it
    returns the next eigenvalue in place of the second copy, which the check finds."""
    n = 200
    d = np.concatenate([[1.0, 1.0], np.linspace(0.997, -0.9, n - 2)])
    A = np.diag(d)
    checked = eosfast.eigsh(A, k=2, tol=1e-10, seed=0)
    unchecked = eosfast.eigsh(A, k=2, tol=1e-10, seed=0, check_copies=False)
    np.testing.assert_allclose(checked.eigenvalues, [1, 1], atol=1e-9)
    np.testing.assert_allclose(unchecked.eigenvalues, [1, 0.997], atol=1e-9)
    assert unchecked.matvecs < checked.matvecs
    with pytest.raises(TypeError, match="check_copies"):
        eosfast.eigsh(A, k=2, check_copies="no")


def test_blocks_of_a_linear_operator_go_through_matmat():
    from scipy.sparse.linalg import LinearOperator

    rng = np.random.default_rng(7)
    A = _rotated(np.linspace(-1, 2, 60), rng)
    calls = {"matvec": 0, "matmat": 0}

    class Op(LinearOperator):
        def __init__(self):
            super().__init__(np.float64, A.shape)

        def _matvec(self, v):
            calls["matvec"] += 1
            return A @ np.ravel(v)

        def _matmat(self, V):
            calls["matmat"] += 1
            return A @ V

    r = eosfast.eigsh(Op(), k=3, block=3, tol=1e-10, seed=0)
    np.testing.assert_allclose(r.eigenvalues, [2, 2 - 3 / 59, 2 - 6 / 59], atol=1e-9)
    assert calls["matmat"] > 0
    # The block run asks for blocks of 3 (the copy check, single-vector, for vectors).
    assert calls["matmat"] + calls["matvec"] < r.matvecs


def test_power_iteration_takes_eigsh_keywords():
    A = np.diag([3.0, 2.0, 1.0, -0.5])
    r = eosfast.power_iteration(A, 1, which="LA", tol=1e-8, max_iter=5000, seed=0)
    np.testing.assert_allclose(r.eigenvalues, [3.0], rtol=1e-7)
    with pytest.raises(TypeError):
        eosfast.power_iteration(A, 1, 1e-8)  # tol by position: the old order is gone
