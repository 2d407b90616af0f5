import eosfast
import numpy as np
import pytest
from eosfast.problems import Callback


def smooth(x):
    """L(x) = sum(cos(x_i) x_{i+1}^2) + (sum x^2)^2 / 8: smooth, coupled, non-quadratic."""
    s = x @ x
    loss = np.sum(np.cos(x[:-1]) * x[1:] ** 2) + s**2 / 8
    g = 0.5 * s * x
    g[:-1] += -np.sin(x[:-1]) * x[1:] ** 2
    g[1:] += 2 * np.cos(x[:-1]) * x[1:]
    return loss, g


def smooth_hessian(x):
    n = x.size
    s = x @ x
    H = 0.5 * s * np.eye(n) + np.outer(x, x)
    for i in range(n - 1):
        H[i, i] += -np.cos(x[i]) * x[i + 1] ** 2
        H[i + 1, i + 1] += 2 * np.cos(x[i])
        H[i, i + 1] += -2 * np.sin(x[i]) * x[i + 1]
        H[i + 1, i] += -2 * np.sin(x[i]) * x[i + 1]
    return H


def smooth_third(x, u):
    """grad_x (u^T H(x) u), by differentiating smooth_hessian by hand."""
    n = x.size
    out = (u @ u) * x + 2 * (x @ u) * u
    for i in range(n - 1):
        c, s = np.cos(x[i]), np.sin(x[i])
        a, b = u[i], u[i + 1]
        # terms: -cos(x_i) x_{i+1}^2 a^2 + 2 cos(x_i) b^2 - 4 sin(x_i) x_{i+1} a b
        out[i] += s * x[i + 1] ** 2 * a**2 - 2 * s * b**2 - 4 * c * x[i + 1] * a * b
        out[i + 1] += -2 * c * x[i + 1] * a**2 - 4 * s * a * b
    return out


@pytest.fixture
def point(rng):
    return rng.standard_normal(6), rng.standard_normal(6)


def test_callback_loss_and_grad(point):
    x, _ = point
    p = Callback(smooth, 6)
    loss, g = smooth(x)
    assert p.loss(x) == loss
    np.testing.assert_array_equal(p.grad(x), g)


def test_finite_difference_hvp_accuracy(point):
    x, v = point
    p = Callback(smooth, 6)
    assert not p.exact_hvp and not p.exact_third
    exact = smooth_hessian(x) @ v
    assert np.linalg.norm(p.hvp(x, v) - exact) <= 1e-6 * np.linalg.norm(exact)
    # measured accuracy of the documented scheme: far better than the promise
    assert np.linalg.norm(p.hvp(x, v) - exact) <= 1e-8 * np.linalg.norm(exact)


def test_finite_difference_third_accuracy(point):
    x, u = point
    exact = smooth_third(x, u)
    from_grad = Callback(smooth, 6).third(x, u)
    assert np.linalg.norm(from_grad - exact) <= 1e-6 * np.linalg.norm(exact)
    from_hvp = Callback(smooth, 6, hvp=lambda y, v: smooth_hessian(y) @ v).third(x, u)
    assert np.linalg.norm(from_hvp - exact) <= 1e-8 * np.linalg.norm(exact)


def test_exact_callbacks_are_used(point):
    x, v = point
    p = Callback(smooth, 6, hvp=lambda y, w: smooth_hessian(y) @ w, third=smooth_third)
    assert p.exact_hvp and p.exact_third
    np.testing.assert_array_equal(p.hvp(x, v), smooth_hessian(x) @ v)
    np.testing.assert_array_equal(p.third(x, v), smooth_third(x, v))
    V = np.stack([v, 2 * v, x], axis=1)
    HV = p.hvp(x, V)
    for j in range(3):
        np.testing.assert_array_equal(HV[:, j], p.hvp(x, V[:, j]))


def test_callback_sees_a_copy():
    seen = []

    def f(x):
        seen.append(x)
        return 0.5 * x @ x, x.copy()

    p = Callback(f, 3)
    x = np.array([1.0, 2.0, 3.0])
    p.grad(x)
    p.grad(2 * x)
    np.testing.assert_array_equal(seen[0], x)
    np.testing.assert_array_equal(seen[1], 2 * x)


def test_callback_exception_propagates_unchanged():
    class MyError(Exception):
        pass

    def boom(*args):
        raise MyError("from the user")

    p = Callback(boom, 2)
    with pytest.raises(MyError, match="from the user"):
        p.grad(np.zeros(2))
    with pytest.raises(MyError):
        p.hvp(np.zeros(2), np.ones(2))
    q = Callback(smooth, 2, hvp=boom)
    with pytest.raises(MyError):
        q.hessian(np.zeros(2)) @ np.ones(2)


@pytest.mark.parametrize(
    "fn, match",
    [
        (
            lambda x: (0.0, np.zeros(3)),
            r"gradient\) returned an array of shape \(3,\), expected \(2,\)",
        ),
        (lambda x: (0.0, np.zeros((2, 1))), r"shape \(2, 1\)"),
        (lambda x: 0.0, "tuple"),
        (lambda x: ("a", np.zeros(2)), "real number"),
        (lambda x: (0.0, "not an array"), "expected"),
    ],
)
def test_callback_bad_returns(fn, match):
    with pytest.raises(ValueError, match=match):
        Callback(fn, 2).grad(np.zeros(2))


def test_callback_hvp_bad_return():
    p = Callback(smooth, 3, hvp=lambda x, v: np.zeros(4))
    with pytest.raises(ValueError, match=r"hvp returned an array of shape \(4,\)"):
        p.hvp(np.zeros(3), np.ones(3))


def test_callback_bad_construction():
    with pytest.raises(TypeError, match="callable"):
        Callback(42, 2)
    with pytest.raises(TypeError, match="hvp must be callable"):
        Callback(smooth, 2, hvp=3)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        Callback(smooth, 0)
    with pytest.raises(TypeError, match="dim must be an integer"):
        Callback(smooth, 2.5)


def test_callback_problem_is_flagged_not_thread_safe():
    assert not eosfast._core.CallbackProblem(smooth, 2, None, None).thread_safe


def test_block_hvp_is_one_call_per_block(point):
    x, v = point
    shapes = []

    def block(y, V):
        shapes.append((V.shape, V.flags.f_contiguous))
        return smooth_hessian(y) @ V

    p = Callback(smooth, 6, hvp=block, third=smooth_third, block_hvp=True)
    assert p._core.block_hvp and p.exact_hvp
    V = np.stack([v, 2 * v, x], axis=1)
    np.testing.assert_allclose(p.hvp(x, V), smooth_hessian(x) @ V, rtol=1e-14)
    np.testing.assert_allclose(p.hessian(x) @ V, smooth_hessian(x) @ V, rtol=1e-14)
    np.testing.assert_allclose(p.hvp(x, v), smooth_hessian(x) @ v, rtol=1e-14)
    assert shapes == [((6, 3), True), ((6, 3), True), ((6, 1), True)]


def test_block_hvp_feeds_the_finite_difference_third(point):
    x, u = point
    p = Callback(smooth, 6, hvp=lambda y, V: smooth_hessian(y) @ V, block_hvp=True)
    assert not p.exact_third
    exact = smooth_third(x, u)
    assert np.linalg.norm(p.third(x, u) - exact) <= 1e-8 * np.linalg.norm(exact)


def test_block_hvp_bad_use():
    with pytest.raises(ValueError, match="block_hvp=True needs an hvp"):
        Callback(smooth, 2, block_hvp=True)
    with pytest.raises(TypeError, match="block_hvp must be a bool"):
        Callback(smooth, 2, hvp=lambda x, V: V, block_hvp=1)
    p = Callback(smooth, 3, hvp=lambda x, V: np.zeros((3, 1)), block_hvp=True)
    with pytest.raises(ValueError, match=r"hvp returned .* shape \(3, 1\), expected \(3, 2\)"):
        p.hvp(np.zeros(3), np.ones((3, 2)))
    q = Callback(smooth, 3, hvp=lambda x, V: np.zeros(3), block_hvp=True)
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(3, 1\)"):
        q.hvp(np.zeros(3), np.ones(3))
