"""SciPy's own test cases for the symmetric standard problem, as eosfast tests.

The cases of scipy/sparse/linalg/_eigen/arpack/tests/test_arpack.py that ask
``scipy.sparse.linalg.eigsh`` for eigenpairs of a real symmetric matrix A
(A x = lambda x), rewritten for eosfast: the small float32-representable
positive definite matrix under every ``which`` ("LM", "SM", "LA", "SA",
"BE"), given as a dense array, a ``csr_array`` and a ``LinearOperator``, in
float32 and float64; start vectors for k = 1..5; a budget too small to
converge (``maxiter``); the arpack-ng 1315 regression (k = 9 of diag(1..1000)
with ncv = 19); the k-subset property; threads and re-entrant calls; and the
error cases (bad shapes, bad ``which``, k beyond the dimension, operators of
more than 2 dimensions). LAPACK (numpy.linalg.eigh) is the reference.

Not supported, and refused with a clear error instead (tested here):
**complex Hermitian input** (dense, sparse or a complex LinearOperator:
TypeError naming complex operators), the generalized problem (``M=``) and
shift-invert (``sigma=``, ``mode=``): unknown keywords, TypeError. Where SciPy
raises ``ArpackNoConvergence``, eosfast returns the pairs with a
``converged`` flag each. SciPy hands ``k >= n`` on a dense matrix to LAPACK
and refuses it on a LinearOperator; eosfast accepts ``k = n`` for every input.
"""

import threading
import weakref

import eosfast
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

RTOL = {"f": 3000 * np.finfo(np.float32).eps, "d": 2000 * np.finfo(np.float64).eps}
WHICH = ["LM", "SM", "LA", "SA", "BE"]
MATTYPES = {"dense": np.asarray, "csr": sp.csr_array, "linop": aslinearoperator}


def _positive_definite(n, rng):
    """M M^T of a uniform M, rounded to float32 (so float32 and float64 runs
    see the same matrix)."""
    M = rng.random((n, n))
    return (M @ M.T).astype("f").astype("d")


def _expected(lam, k, which):
    """The k eigenvalues SciPy's ``which`` selects, sorted ascending."""
    lam = np.sort(lam)
    if which == "LM":
        chosen = lam[np.argsort(np.abs(lam), kind="stable")][-k:]
    elif which == "SM":
        chosen = lam[np.argsort(np.abs(lam), kind="stable")][:k]
    elif which == "LA":
        chosen = lam[-k:]
    elif which == "SA":
        chosen = lam[:k]
    else:  # BE: k // 2 from the bottom, the rest from the top
        chosen = np.concatenate([lam[: k // 2], lam[k // 2 - k :]])
    return np.sort(chosen)


def _check(A, w, v, expected, typ):
    rtol = RTOL[typ]
    np.testing.assert_allclose(np.sort(w), expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(A @ v, v * w, rtol=rtol, atol=rtol * np.max(np.abs(A)))


SS = _positive_definite(6, np.random.RandomState(2300))
SS_EVAL = np.linalg.eigvalsh(SS)


@pytest.mark.parametrize("mattype", MATTYPES)
@pytest.mark.parametrize("which", WHICH)
@pytest.mark.parametrize("typ", ["f", "d"])
def test_symmetric_modes(typ, which, mattype):
    a = SS.astype(typ)
    w, v = eosfast.eigsh(MATTYPES[mattype](a), k=2, which=which, tol=1e-13, seed=0)
    _check(SS, w, v, _expected(SS_EVAL, 2, which), typ)


@pytest.mark.parametrize("typ", ["f", "d"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_symmetric_starting_vector(k, typ):
    v0 = np.random.default_rng(1749532110418901).uniform(size=6).astype(typ)
    r = eosfast.eigsh(SS.astype(typ), k=k, which="LM", v0=v0, tol=1e-13)
    assert r.all_converged
    _check(SS, r.eigenvalues, r.eigenvectors, _expected(SS_EVAL, k, "LM"), typ)


def test_symmetric_no_convergence_is_a_status_not_an_exception():
    """SciPy raises ArpackNoConvergence with the converged pairs attached;
    eosfast returns all k pairs, each flagged, within the budget maxiter * ncv."""
    m = _positive_definite(30, np.random.RandomState(1234))
    r = eosfast.eigsh(m, k=4, which="LM", v0=m[:, 0], maxiter=1, ncv=9, tol=1e-15)
    assert r.matvecs <= 9
    assert r.eigenvalues.shape == (4,)
    assert not r.all_converged
    res = np.linalg.norm(m @ r.eigenvectors - r.eigenvectors * r.eigenvalues, axis=0)
    np.testing.assert_allclose(res, r.residuals, rtol=1e-6, atol=1e-12 * np.abs(m).max())
    scale = np.max(np.abs(np.linalg.eigvalsh(m)))
    assert np.all(res[r.converged] <= 1e-15 * scale * 1.01)
    # The same call with room converges, as SciPy's retry with a larger maxiter does.
    r = eosfast.eigsh(m, k=4, which="LM", v0=m[:, 0], ncv=9, tol=1e-14)
    assert r.all_converged
    _check(m, r.eigenvalues, r.eigenvectors, _expected(np.linalg.eigvalsh(m), 4, "LM"), "d")


def test_arpack_ng_1315_regression():
    """diag(1..1000), k = 9, ncv = 2k + 1, which LM, a random v0."""
    w0 = np.arange(1, 1001, dtype=float)
    A = sp.diags_array([w0], offsets=[0], shape=(1000, 1000))
    v0 = np.random.RandomState(1234).rand(1000)
    w = eosfast.eigsh(A, k=9, ncv=19, which="LM", v0=v0, return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(w), w0[-9:], rtol=1e-4)


@pytest.mark.parametrize("which", ["LM", "SM", "LA", "SA"])
def test_the_k_pairs_are_a_subset_of_the_k_plus_1_pairs(which):
    rng = np.random.default_rng(2)
    n = 10
    A = sp.random_array((n, n), density=0.5, rng=rng)
    A.data *= 2
    A.data -= 1
    A = (A + A.T).tocsr()
    previous = np.array([])
    for k in range(1, 9):
        w, z = eosfast.eigsh(A, k=k, which=which, v0=np.ones(n), tol=1e-13)
        assert np.linalg.norm(A @ z - z * w) <= 1e-10
        if previous.size:
            assert np.abs(previous[:, None] - w).min(axis=1).max() <= 1e-10
        previous = w


def test_threads_give_the_same_answer():
    x = sp.diags_array([1.0, -2.0, 1.0], offsets=[-1, 0, 1], shape=(50, 50))
    v0 = np.random.default_rng(1234).random(50)
    results = []

    def worker():
        for op in (x, x.toarray()):
            results.append(eosfast.eigsh(op, k=3, v0=v0, which="LM", tol=1e-12).eigenvalues)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker()
    assert len(results) == 10
    for r in results:
        np.testing.assert_allclose(r, results[-1], rtol=1e-12)
    lam = np.linalg.eigvalsh(x.toarray())
    np.testing.assert_allclose(np.sort(results[-1]), _expected(lam, 3, "LM"), rtol=1e-10)


def test_reentrant_calls():
    """A LinearOperator whose matvec runs eigsh itself."""
    x = sp.diags_array([1.0, -2.0, 1.0], offsets=[-1, 0, 1], shape=(50, 50))

    def matvec(v):
        w, u = eosfast.eigsh(x, k=1, which="LM", seed=0)
        return (x @ v) / abs(w[0])

    A = LinearOperator((50, 50), matvec=matvec, dtype=float)
    w = eosfast.eigsh(A, k=1, which="LM", seed=0, tol=1e-8).eigenvalues
    np.testing.assert_allclose(abs(w[0]), 1.0, rtol=1e-7)


def test_the_operator_is_released_after_the_call():
    class Op(LinearOperator):
        def __init__(self):
            super().__init__(np.float64, (10, 10))

        def _matvec(self, v):
            return 2.0 * np.ravel(v)

    op = Op()
    ref = weakref.ref(op)
    eosfast.eigsh(op, k=2, seed=0)
    del op
    assert ref() is None


def test_k_up_to_the_dimension():
    rng = np.random.RandomState(1234)
    A = rng.random((4, 4))
    A = A + A.T
    lam = np.linalg.eigvalsh(A)
    for op in (A, sp.csr_array(A), aslinearoperator(A)):
        r = eosfast.eigsh(op, k=4, which="LA", tol=1e-12, seed=0)
        np.testing.assert_allclose(np.sort(r.eigenvalues), lam, rtol=1e-10)
        with pytest.raises(ValueError, match="exceeds"):
            eosfast.eigsh(op, k=5)


def test_error_cases():
    with pytest.raises(ValueError, match="square"):
        eosfast.eigsh(sp.csc_array(np.zeros((2, 3))))
    with pytest.raises(ValueError, match="square"):
        eosfast.eigsh(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="which"):
        eosfast.eigsh(sp.csc_array(np.eye(8)), which="XX")
    with pytest.raises(ValueError, match="which"):
        eosfast.eigsh(np.eye(8), which="LR")  # eigs' name; eigsh wants LA
    with pytest.raises(ValueError, match="not symmetric"):
        eosfast.eigsh(np.random.RandomState(2301).random((6, 6)), k=2)
    with pytest.raises(TypeError):
        eosfast.eigsh(np.eye(4), k=1, M=np.eye(4))  # no generalized problem
    with pytest.raises(TypeError):
        eosfast.eigsh(np.eye(4), k=1, sigma=0.5)  # no shift-invert
    try:
        nd = LinearOperator(shape=(2, 2, 2), matvec=lambda v: v, dtype=np.float64)
    except ValueError:  # older SciPy refuses the shape itself
        return
    with pytest.raises(ValueError, match="square"):
        eosfast.eigsh(nd)


def test_complex_hermitian_input_is_refused():
    rng = np.random.default_rng(0)
    M = rng.random((6, 6)) + 1j * rng.random((6, 6))
    H = M @ M.conj().T
    for op in (H, sp.csr_array(H), aslinearoperator(H)):
        with pytest.raises(TypeError, match="complex"):
            eosfast.eigsh(op, k=2)
