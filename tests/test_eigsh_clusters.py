"""eigsh on clustered spectra: every copy of a repeated extreme eigenvalue is
found even when the next eigenvalue is close, and the answer does not depend
on the operator's scale. LAPACK (numpy.linalg.eigvalsh) is the reference."""

import eosfast
import numpy as np
import pytest


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
    """Seeded random cases: multiplicity 2-8 at the top or the bottom, the next
    eigenvalue at a relative gap of 1e-1 ... 1e-3, n = 50-500, k from 1 to the
    multiplicity + 2, every `which`: no wrong answer (a missed copy is wrong),
    and a pair reported converged is a true eigenpair."""
    rng = np.random.default_rng(16)
    wrong = []
    for trial in range(48):
        n = int(rng.integers(50, 501))
        mult = int(rng.integers(2, 9))
        gap = 10.0 ** rng.uniform(-3, -1)
        at_top = trial % 2 == 0
        rest = (
            np.linspace(1 - gap, -0.9, n - mult) if at_top else np.linspace(0.9, -1 + gap, n - mult)
        )
        d = np.concatenate([np.full(mult, 1.0 if at_top else -1.0), rest])
        A = _rotated(d, rng)
        which = ["LA" if at_top else "SA", "LM", "BE"][trial % 3]
        ks = sorted({1, mult, mult + 1, mult + 2} | {int(rng.integers(1, mult + 3))})
        for k in ks:
            r = eosfast.eigsh(A, k=k, which=which, tol=1e-10, seed=trial)
            got = np.abs(r.eigenvalues) if which == "LM" else r.eigenvalues
            if not np.allclose(np.sort(got), np.sort(_wanted(d, k, which)), atol=1e-8):
                wrong.append((n, mult, gap, which, k, r.eigenvalues))
            V = r.eigenvectors
            res = np.linalg.norm(A @ V - V * r.eigenvalues, axis=0)
            assert np.all(res[r.converged] <= 1e-9)
    assert not wrong, wrong


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
