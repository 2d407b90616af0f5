import numpy as np
import pytest
from eosfast.problems import Circle, ScalarProduct, TwoNormal, Valley2D
from scipy.integrate import solve_ivp


def normwise(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def fd_third(p, x, u, k=1e-3):
    """Fourth-order central difference of s -> H(x + s u) u."""
    f = {s: p.hvp(x + s * k * u, u) for s in (-2, -1, 1, 2)}
    return (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * k)


def fd_grad(p, x, h=1e-6):
    return np.array([(p.loss(x + h * e) - p.loss(x - h * e)) / (2 * h) for e in np.eye(p.dim)])


def fd_hessian(p, x, h=1e-6):
    return np.column_stack(
        [(p.grad(x + h * e) - p.grad(x - h * e)) / (2 * h) for e in np.eye(p.dim)]
    )


# --- closed-form derivatives -----------------------------------------------------------------


def test_valley2d_closed_forms(rng):
    p = Valley2D()
    for x, y in rng.standard_normal((5, 2)) * 2:
        X = np.array([x, y])
        assert p.loss(X) == pytest.approx((1 + x * x) * y * y, rel=1e-15)
        np.testing.assert_allclose(p.grad(X), [2 * x * y * y, 2 * (1 + x * x) * y], rtol=1e-14)
        H = np.array([[2 * y * y, 4 * x * y], [4 * x * y, 2 * (1 + x * x)]])
        np.testing.assert_allclose(p.hvp(X, np.eye(2)), H, rtol=1e-14, atol=1e-15)
        u1, u2 = u = rng.standard_normal(2)
        expected = [8 * y * u1 * u2 + 4 * x * u2 * u2, 4 * y * u1 * u1 + 8 * x * u1 * u2]
        np.testing.assert_allclose(p.third(X, u), expected, rtol=1e-13, atol=1e-14)


def test_two_normal_closed_forms(rng):
    p = TwoNormal()
    for x, y, z in rng.standard_normal((5, 3)) * 2:
        X = np.array([x, y, z])
        s, c = np.sin(x), np.cos(x)
        assert p.loss(X) == pytest.approx(0.5 * ((3 + s) * y * y + z * z), rel=1e-15)
        np.testing.assert_allclose(p.grad(X), [0.5 * c * y * y, (3 + s) * y, z], rtol=1e-14)
        H = np.array([[-0.5 * s * y * y, c * y, 0], [c * y, 3 + s, 0], [0, 0, 1]])
        np.testing.assert_allclose(p.hvp(X, np.eye(3)), H, rtol=1e-14, atol=1e-15)
        u1, u2, _ = u = rng.standard_normal(3)
        expected = [
            -0.5 * c * y * y * u1 * u1 - 2 * s * y * u1 * u2 + c * u2 * u2,
            -s * y * u1 * u1 + 2 * c * u1 * u2,
            0.0,
        ]
        np.testing.assert_allclose(p.third(X, u), expected, rtol=1e-13, atol=1e-14)


def test_circle_gradient_in_polar_form(rng):
    p = Circle()
    for r, th in zip(rng.uniform(0.2, 3, 5), rng.uniform(-np.pi, np.pi, 5), strict=True):
        X = r * np.array([np.cos(th), np.sin(th)])
        a, da = 2 + np.cos(th), -np.sin(th)
        assert p.loss(X) == pytest.approx(0.5 * a * (r - 1) ** 2, rel=1e-14)
        radial, angular = np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])
        g = a * (r - 1) * radial + 0.5 * da * (r - 1) ** 2 / r * angular
        np.testing.assert_allclose(p.grad(X), g, rtol=1e-13, atol=1e-15)


def test_scalar_product_closed_forms(rng):
    D = 4
    p = ScalarProduct(D)
    x = rng.uniform(0.5, 1.5, D) * rng.choice([-1, 1], D)
    prod = np.prod(x)
    loo = np.array([np.prod(np.delete(x, i)) for i in range(D)])
    assert p.loss(x) == pytest.approx(0.5 * (prod - 1) ** 2, rel=1e-14)
    np.testing.assert_allclose(p.grad(x), (prod - 1) * loo, rtol=1e-14)
    H = np.outer(loo, loo)
    for i in range(D):
        for j in range(D):
            if i != j:
                H[i, j] += (prod - 1) * np.prod(np.delete(x, [i, j]))
    np.testing.assert_allclose(p.hvp(x, np.eye(D)), H, rtol=1e-13, atol=1e-15)
    x0 = x.copy()
    x0[1] = 0.0  # zeros need no division
    np.testing.assert_allclose(p.hvp(x0, np.eye(D)), fd_hessian(p, x0), rtol=1e-7, atol=1e-8)


TOYS = [
    (ScalarProduct(3), [0.7, -1.3, 0.9]),
    (ScalarProduct(1), [0.4]),
    (Valley2D(), [1.3, -0.6]),
    (TwoNormal(), [2.1, 0.7, -0.4]),
    (Circle(), [0.6, -1.4]),
    (Circle(), [-0.05, 0.02]),  # near the origin: large but finite derivatives
]


@pytest.mark.parametrize(("p", "x"), TOYS)
def test_derivatives_against_finite_differences(rng, p, x):
    x = np.asarray(x)
    scale = max(1.0, np.linalg.norm(x))
    h = 1e-7 * scale
    assert normwise(p.grad(x), fd_grad(p, x, h)) <= 1e-6
    H = p.hvp(x, np.eye(p.dim))
    assert np.abs(H - H.T).max() <= 1e-14 * np.abs(H).max()
    assert normwise(H, fd_hessian(p, x, h)) <= 1e-6
    for j in range(p.dim):
        np.testing.assert_array_equal(H[:, j], p.hvp(x, np.eye(p.dim)[:, j]))
    u, v = rng.standard_normal((2, p.dim))
    assert abs(u @ p.hvp(x, v) - p.hvp(x, u) @ v) <= 1e-13 * np.abs(H).max() * p.dim
    fd = fd_third(p, x, u, 1e-3 * np.linalg.norm(x))
    slack = 1e-9 * np.abs(H).max() * (u @ u) / np.linalg.norm(x)  # third = 0 for ScalarProduct(1)
    assert np.linalg.norm(p.third(x, u) - fd) <= 1e-7 * np.linalg.norm(fd) + slack
    np.testing.assert_array_equal(p.hessian(x) @ v, p.hvp(x, v))


# --- manifolds of minimisers -----------------------------------------------------------------

ON_MANIFOLD = [
    (ScalarProduct(3), [2.0, 0.8, 0.625]),
    (Valley2D(), [1.7, 0.0]),
    (TwoNormal(), [0.4, 0.0, 0.0]),
    (Circle(), [np.cos(2.0), np.sin(2.0)]),
]


@pytest.mark.parametrize(("p", "X"), ON_MANIFOLD)
def test_sharpness_and_normal_on_the_manifold(p, X):
    X = np.asarray(X)
    assert p.loss(X) <= 1e-30
    assert np.linalg.norm(p.grad(X)) <= 1e-15
    H = p.hessian(X).to_dense()
    w, Q = np.linalg.eigh(H)
    assert w[-1] == pytest.approx(p.manifold_sharpness(X), rel=1e-14)
    assert abs(abs(Q[:, -1] @ p.manifold_normal(X)) - 1) <= 1e-14
    P = p.tangent_projection(X)
    assert np.abs(P @ H).max() <= 1e-14 * w[-1]
    np.testing.assert_allclose(P @ P, P, atol=1e-15)
    # grad lambda_1 = grad^3 L[v1, v1], tangent part vs the closed-form sharpness
    v1 = p.manifold_normal(X)
    t = P @ p.third(X, v1)
    k = 1e-5
    fd = np.array(
        [(p.manifold_sharpness(X + k * e) - p.manifold_sharpness(X - k * e)) / (2 * k) for e in P.T]
    )
    np.testing.assert_allclose(t, P @ fd, rtol=1e-7, atol=1e-8)


def test_scalar_product_sharpness_is_sum_of_inverse_squares():
    p = ScalarProduct(3)
    X = np.array([2.0, 0.8, 0.625])
    assert p.manifold_sharpness(X) == pytest.approx(np.sum(1 / X**2), rel=1e-14)
    assert p.manifold_sharpness(np.ones(3)) == pytest.approx(3.0)


def gradient_flow(p, x, T):
    sol = solve_ivp(
        lambda t, z: -p.grad(z),
        (0, T),
        np.asarray(x, float),
        method="DOP853",
        rtol=1e-12,
        atol=1e-14,
    )
    return sol.y[:, -1]


PHI_CASES = [
    (Valley2D(), [3.0, 0.5], 30),
    (Valley2D(), [-1.2, 0.8], 30),
    (TwoNormal(), [0.3, 1.0, 2.0], 40),
    (TwoNormal(), [2.5, 0.7, -0.3], 40),  # cos x < 0: drifts towards 3 pi / 2
    (Circle(), [0.3, 1.2], 60),
    (Circle(), [1.5, -0.4], 60),
    (ScalarProduct(3), [0.5, 2.0, 1.5], 60),
    (ScalarProduct(3), [-0.7, -1.1, 0.9], 60),
    (ScalarProduct(2), [0.0, 0.5], 60),
]


@pytest.mark.parametrize(("p", "x", "T"), PHI_CASES)
def test_phi_is_the_limit_of_gradient_flow(p, x, T):
    phi = p.phi(x)
    assert p.loss(phi) <= 1e-26
    np.testing.assert_allclose(phi, gradient_flow(p, x, T), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(p.phi(phi), phi, rtol=1e-12, atol=1e-14)


def limiting_flow_ode(p, X0, tau, algorithm):
    """dX/dtau = -c P_X grad f with grad lambda_1 = grad^3 L[v1, v1] from the C++ third."""

    def rhs(_, X):
        v1 = p.manifold_normal(X)
        g = p.tangent_projection(X) @ p.third(X, v1)
        if algorithm == "ngd":
            return -0.25 * g / p.manifold_sharpness(X)
        return -0.125 * g

    sol = solve_ivp(rhs, (0, tau), np.asarray(X0, float), method="DOP853", rtol=1e-11, atol=1e-13)
    return sol.y[:, -1]


@pytest.mark.parametrize("algorithm", ["ngd", "sqrt"])
@pytest.mark.parametrize(
    ("p", "X0"),
    [
        (Valley2D(), [3.0, 0.0]),
        (TwoNormal(), [0.9, 0.0, 0.0]),
        (TwoNormal(), [2.2, 0.0, 0.0]),
        (Circle(), [np.cos(0.5), np.sin(0.5)]),
        (Circle(), [np.cos(-2.0), np.sin(-2.0)]),
    ],
)
def test_limiting_flow_closed_forms(p, X0, algorithm):
    for tau in (0.5, 2.0):
        X = p.limiting_flow(X0, tau, algorithm)
        assert p.loss(X) <= 1e-26
        np.testing.assert_allclose(
            X, limiting_flow_ode(p, X0, tau, algorithm), rtol=1e-7, atol=1e-9
        )
    np.testing.assert_allclose(p.limiting_flow(X0, 0.0, algorithm), X0, atol=1e-14)


def test_valley_large_x_does_not_overflow():
    p = Valley2D()
    phi = p.phi([40.0, 3.0])  # x^2 exp(x^2) overflows a double
    assert np.all(np.isfinite(phi)) and 39.5 < phi[0] < 40.0
    assert np.all(np.isfinite(p.limiting_flow([40.0, 0.0], 1.0)))


# --- bad input -----------------------------------------------------------------------------


def test_circle_is_undefined_at_the_origin():
    p = Circle()
    zero = np.zeros(2)
    for call in (p.loss, p.grad, p.phi, p.manifold_sharpness):
        with pytest.raises(ValueError, match="origin"):
            call(zero)
    with pytest.raises(ValueError, match="origin"):
        p.hvp(zero, np.ones(2))
    with pytest.raises(ValueError, match="origin"):
        p.third(zero, np.ones(2))


def test_bad_input():
    with pytest.raises(ValueError, match="D must be >= 1"):
        ScalarProduct(0)
    with pytest.raises(ValueError, match="prod"):
        ScalarProduct(2).phi([-1.0, 2.0])
    with pytest.raises(ValueError, match="two zero"):
        ScalarProduct(3).phi([0.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="algorithm"):
        Valley2D().limiting_flow([1.0, 0.0], 1.0, "adam")
    with pytest.raises(ValueError, match="tau"):
        TwoNormal().limiting_flow([1.0, 0.0, 0.0], -1.0)
    with pytest.raises(ValueError, match="x has shape"):
        TwoNormal().loss(np.zeros(2))
