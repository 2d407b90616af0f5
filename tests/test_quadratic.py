import numpy as np
import pytest
from conftest import random_symmetric
from eosfast.problems import Quadratic


def normwise(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("n", [1, 3, 50, 700])
def test_dense_quadratic_matches_numpy(rng, n):
    A = random_symmetric(rng, n)
    b = rng.standard_normal(n)
    x = rng.standard_normal(n)
    q = Quadratic(A, b)
    assert q.dim == n
    assert abs(q.loss(x) - (0.5 * x @ A @ x - b @ x)) <= 1e-14 * max(1, abs(0.5 * x @ A @ x))
    assert normwise(q.grad(x), A @ x - b) <= 1e-14
    loss, g = q.loss_and_grad(x)
    assert loss == q.loss(x)
    np.testing.assert_array_equal(g, q.grad(x))
    v = rng.standard_normal(n)
    assert normwise(q.hvp(x, v), A @ v) <= 1e-14
    np.testing.assert_array_equal(q.third(x, v), np.zeros(n))


def test_diagonal_quadratic(rng):
    d = rng.uniform(-1, 3, 40)
    x = rng.standard_normal(40)
    q = Quadratic(d)
    assert normwise(q.grad(x), d * x) <= 1e-15
    np.testing.assert_allclose(q.A, d)
    assert normwise(q.hvp(x, np.eye(40)), np.diag(d)) <= 1e-15


@pytest.mark.parametrize("order", ["C", "F"])
def test_block_hvp_equals_columnwise(rng, order):
    n, m = 300, 7
    q = Quadratic(random_symmetric(rng, n))
    x = rng.standard_normal(n)
    V = np.array(rng.standard_normal((n, m)), order=order)
    HV = q.hvp(x, V)
    assert HV.shape == (n, m)
    # a block product is a GEMM, one column a GEMV: equal up to rounding
    for j in range(m):
        np.testing.assert_allclose(HV[:, j], q.hvp(x, V[:, j]), rtol=1e-13, atol=1e-13)


def test_hvp_accepts_non_contiguous_views(rng):
    n = 60
    q = Quadratic(random_symmetric(rng, n))
    x = rng.standard_normal(2 * n)[::2]
    V = rng.standard_normal((n, 10))[:, ::3]
    np.testing.assert_allclose(q.hvp(x, V), q.A @ V, rtol=1e-13, atol=1e-13)


def test_hessian_operator(rng):
    n = 30
    A = random_symmetric(rng, n)
    q = Quadratic(A)
    x = rng.standard_normal(n)
    H = q.hessian(x)
    assert H.shape == (n, n)
    np.testing.assert_allclose(H.to_dense(), A, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(H.point, x)
    v = rng.standard_normal(n)
    np.testing.assert_allclose(H.to_scipy() @ v, A @ v, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(H @ v, q.hvp(x, v))
    x[:] = 0  # the operator keeps its own copy of the point
    assert not np.all(H.point == 0)


def test_to_dense_refuses_huge():
    q = Quadratic(np.ones(30000))
    with pytest.raises(ValueError, match="max_dim"):
        q.hessian(np.zeros(30000)).to_dense()


def test_round_off_asymmetry_is_tolerated(rng):
    B = rng.standard_normal((20, 20))
    A = B @ np.diag(rng.uniform(1, 2, 20)) @ B.T
    A[0, 1] += 1e-14 * abs(A).max()
    q = Quadratic(A)
    np.testing.assert_array_equal(q.A, q.A.T)


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((np.array([[1.0, 2.0], [0.0, 1.0]]),), ValueError, "symmetric"),
        ((np.ones((2, 3)),), ValueError, "square"),
        ((np.zeros((0, 0)),), ValueError, "non-empty"),
        ((np.array([[np.nan, 0], [0, 1.0]]),), ValueError, "NaN"),
        ((np.eye(2), np.ones(3)), ValueError, "b has shape"),
        ((np.eye(2), np.array([np.inf, 0])), ValueError, "NaN or inf"),
        ((np.eye(2).astype(complex),), TypeError, "real numeric"),
        ((np.array([["a", "b"], ["c", "d"]]),), TypeError, "real numeric"),
    ],
)
def test_quadratic_bad_construction(args, error, match):
    with pytest.raises(error, match=match):
        Quadratic(*args)


def test_quadratic_bad_calls():
    q = Quadratic(np.eye(3))
    with pytest.raises(ValueError, match=r"x has shape \(2,\), expected \(3,\)"):
        q.loss(np.ones(2))
    with pytest.raises(ValueError, match="NaN or inf"):
        q.grad(np.array([0, np.nan, 0]))
    with pytest.raises(TypeError, match="real numeric"):
        q.grad(np.ones(3, dtype=complex))
    with pytest.raises(ValueError, match="v has shape"):
        q.hvp(np.ones(3), np.ones((4, 2)))
    with pytest.raises(ValueError, match="v has shape"):
        q.hvp(np.ones(3), np.ones((3, 0)))
    with pytest.raises(ValueError, match="u has shape"):
        q.third(np.ones(3), np.ones(5))
    # integer input is converted, not rejected
    assert q.loss(np.array([1, 2, 3])) == 7.0
