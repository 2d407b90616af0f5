import eosfast
import numpy as np
import pytest
from eosfast.problems import MatrixFactorization, MatrixSensing, ScalarProduct


def normwise(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def sensing(rng, m=40, d1=5, d2=4, rank=2):
    A = rng.standard_normal((m, d1, d2))
    y = rng.standard_normal(m)
    return MatrixSensing(A, y, rank), A, y


def factorization(rng, d1=5, d2=4, rank=2):
    M = rng.standard_normal((d1, d2))
    return MatrixFactorization(M, rank), M


def reference_sensing(A, y, U, V):
    """Loss and gradient of 1/(2m) sum (<A_i, U V^T> - y_i)^2 with numpy einsum."""
    r = np.einsum("iab,ab->i", A, U @ V.T) - y
    S = np.einsum("i,iab->ab", r, A) / len(y)
    return 0.5 * np.mean(r * r), np.concatenate([(S @ V).ravel(), (S.T @ U).ravel()])


def problems(rng):
    return [sensing(rng)[0], factorization(rng)[0]]


def test_sensing_loss_and_grad_match_numpy(rng):
    p, A, y = sensing(rng)
    x = rng.standard_normal(p.dim)
    U, V = p.split(x)
    value, grad = reference_sensing(A, y, U, V)
    assert abs(p.loss(x) - value) <= 1e-14 * value
    assert normwise(p.grad(x), grad) <= 1e-13
    assert p.measurements == 40 and p.shape == (5, 4) and p.rank == 2


def test_factorization_loss_and_grad_match_numpy(rng):
    p, M = factorization(rng)
    x = rng.standard_normal(p.dim)
    U, V = p.split(x)
    R = U @ V.T - M
    assert abs(p.loss(x) - 0.5 * np.sum(R * R)) <= 1e-14 * np.sum(R * R)
    assert normwise(p.grad(x), p.join(R @ V, R.T @ U)) <= 1e-14
    np.testing.assert_array_equal(p.M, M)


@pytest.mark.parametrize("which", [0, 1])
def test_derivatives_match_finite_differences(rng, which):
    p = problems(rng)[which]
    x = rng.standard_normal(p.dim)
    g = p.grad(x)
    h = 1e-5
    v = rng.standard_normal(p.dim)
    assert abs(g @ v - (p.loss(x + h * v) - p.loss(x - h * v)) / (2 * h)) <= 1e-8 * np.linalg.norm(
        g
    )
    # explicit Hessian vs finite differences of gradients, symmetric
    H = np.column_stack([p.hvp(x, e) for e in np.eye(p.dim)])
    H_fd = np.column_stack(
        [(p.grad(x + h * e) - p.grad(x - h * e)) / (2 * h) for e in np.eye(p.dim)]
    )
    assert np.abs(H - H_fd).max() <= 1e-8 * np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-14 * np.abs(H).max()
    np.testing.assert_allclose(p.hvp(x, np.eye(p.dim)), H, rtol=1e-13, atol=1e-13 * np.abs(H).max())
    u = rng.standard_normal(p.dim)
    assert abs(u @ p.hvp(x, v) - p.hvp(x, u) @ v) <= 1e-13 * np.linalg.norm(H)
    # third vs finite differences of HVPs: H(x + s u) u is a cubic in s, on which the
    # fourth-order central difference is exact up to rounding
    t = p.third(x, u)
    k = 1e-2
    f = {s: p.hvp(x + s * k * u, u) for s in (-2, -1, 1, 2)}
    fd = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * k)
    assert normwise(t, fd) <= 1e-10
    assert p.exact_hvp and p.exact_third


@pytest.mark.parametrize("which", [0, 1])
def test_hessian_operator_caches_and_agrees(rng, which):
    p = problems(rng)[which]
    x = rng.standard_normal(p.dim)
    V = rng.standard_normal((p.dim, 3))
    H = p.hessian(x)
    np.testing.assert_array_equal(H @ V, p.hvp(x, V))
    np.testing.assert_array_equal(H.point, x)


def test_factorization_hessian_rank_on_the_manifold(rng):
    d1, d2, r = 6, 4, 2
    U0, V0 = rng.standard_normal((d1, r)), rng.standard_normal((d2, r))
    p = MatrixFactorization(U0 @ V0.T, r)
    x = p.join(U0, V0)
    assert p.loss(x) < 1e-28
    assert np.linalg.norm(p.grad(x)) < 1e-13
    eig = np.linalg.eigvalsh(p.hessian(x).to_dense())
    tol = 1e-10 * eig.max()
    assert np.sum(eig > tol) == (d1 + d2 - r) * r  # normal directions
    assert np.sum(np.abs(eig) <= tol) == r * r  # the GL(r) orbit
    assert eig.min() > -tol


def test_scalar_factorization_equals_scalar_product(rng):
    p = MatrixFactorization(np.ones((1, 1)), 1)
    q = ScalarProduct(2)
    x, u = rng.standard_normal((2, 2))
    assert abs(p.loss(x) - q.loss(x)) <= 1e-15
    np.testing.assert_allclose(p.grad(x), q.grad(x), rtol=1e-14)
    np.testing.assert_allclose(p.hvp(x, u), q.hvp(x, u), rtol=1e-14)
    np.testing.assert_allclose(p.third(x, u), q.third(x, u), rtol=1e-14)


def test_sensing_with_identity_measurements_is_factorization(rng):
    d1, d2 = 3, 4
    A = np.eye(d1 * d2).reshape(d1 * d2, d1, d2)
    M = rng.standard_normal((d1, d2))
    s = MatrixSensing(A, M.ravel(), 2)
    f = MatrixFactorization(M, 2)
    x, u = rng.standard_normal((2, s.dim))
    m = d1 * d2  # the sensing loss carries 1/m
    assert abs(m * s.loss(x) - f.loss(x)) <= 1e-13 * f.loss(x)
    np.testing.assert_allclose(m * s.hvp(x, u), f.hvp(x, u), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m * s.third(x, u), f.third(x, u), rtol=1e-12, atol=1e-13)


def test_bitwise_identical_for_1_2_3_threads(rng, restore_threads):
    # sizes spanning several 128-row tiles
    ps = [
        MatrixSensing(rng.standard_normal((300, 20, 30)), rng.standard_normal(300), 3),
        MatrixFactorization(rng.standard_normal((300, 260)), 4),
    ]
    for p in ps:
        x = rng.standard_normal(p.dim)
        V = rng.standard_normal((p.dim, 3))
        results = []
        for threads in (1, 2, 3):
            eosfast.set_num_threads(threads)
            value, g = p.loss_and_grad(x)
            results.append((value, g, p.hvp(x, V), p.third(x, V[:, 0])))
        for other in results[1:]:
            assert other[0] == results[0][0]
            for a, b in zip(other[1:], results[0][1:], strict=True):
                np.testing.assert_array_equal(a, b)


def test_split_join_roundtrip(rng):
    p, _ = factorization(rng, 5, 3, 2)
    x = rng.standard_normal(p.dim)
    U, V = p.split(x)
    assert U.shape == (5, 2) and V.shape == (3, 2)
    np.testing.assert_array_equal(U, x[:10].reshape(5, 2))
    np.testing.assert_array_equal(p.join(U, V), x)
    np.testing.assert_allclose(p.product(x), U @ V.T)
    with pytest.raises(ValueError, match="U has shape"):
        p.join(V, V)


def test_bad_input(rng):
    A = rng.standard_normal((10, 3, 2))
    with pytest.raises(ValueError, match="A must have shape"):
        MatrixSensing(A[0], np.zeros(3), 1)
    with pytest.raises(ValueError, match="y has shape"):
        MatrixSensing(A, np.zeros(9), 1)
    bad = A.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="A contains NaN"):
        MatrixSensing(bad, np.zeros(10), 1)
    with pytest.raises(ValueError, match="y contains NaN"):
        MatrixSensing(A, np.full(10, np.inf), 1)
    with pytest.raises(ValueError, match="rank"):
        MatrixSensing(A, np.zeros(10), 0)
    with pytest.raises(ValueError, match="M must have shape"):
        MatrixFactorization(np.zeros(3), 1)
    with pytest.raises(ValueError, match="M contains NaN"):
        MatrixFactorization(np.full((2, 2), np.nan), 1)
    p = MatrixFactorization(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="x has shape"):
        p.grad(np.zeros(p.dim + 1))
