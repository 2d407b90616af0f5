import eosfast
import numpy as np
import pytest
from eosfast.problems import MLP
from scipy.special import erf

ACTIVATIONS = ["tanh", "relu", "gelu", "softplus", "silu", "identity"]
LOSSES = ["mse", "ce"]


def normwise(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


# --- an independent numpy implementation -------------------------------------------------


def _act(name, z):
    """sigma(z) and sigma'(z)."""
    if name == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(float)
    if name == "gelu":
        cdf = 0.5 * (1 + erf(z / np.sqrt(2)))
        return z * cdf, cdf + z * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
    if name == "softplus":
        s = 1 / (1 + np.exp(-z))
        return np.logaddexp(0, z), s
    if name == "silu":
        s = 1 / (1 + np.exp(-z))
        return z * s, s + z * s * (1 - s)
    return z, np.ones_like(z)


def _layers(x, sizes, bias):
    """(W, b) per layer read straight from the documented flat layout."""
    out, off = [], 0
    for i in range(len(sizes) - 1):
        o, k = sizes[i + 1], sizes[i]
        W = x[off : off + o * k].reshape(o, k)
        off += o * k
        b = np.zeros(o)
        if bias:
            b = x[off : off + o]
            off += o
        out.append((W, b))
    assert off == len(x)
    return out


def reference(x, X, Y, sizes, act, loss, bias):
    """Loss, gradient, outputs and pre-activations by plain numpy backprop."""
    layers = _layers(x, sizes, bias)
    n = X.shape[0]
    hs, ds, pre = [X], [], []
    h = X
    for i, (W, b) in enumerate(layers):
        z = h @ W.T + b
        if i < len(layers) - 1:
            pre.append(z)
            h, d = _act(act, z)
            ds.append(d)
            hs.append(h)
        else:
            h = z
    F = h
    if loss == "mse":
        value = 0.5 * np.sum((F - Y) ** 2) / n
        delta = (F - Y) / n
    else:
        m = F.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(F - m).sum(axis=1))
        value = np.mean(lse - F[np.arange(n), Y])
        P = np.exp(F - lse[:, None])
        P[np.arange(n), Y] -= 1
        delta = P / n
    grads = []
    for i in range(len(layers) - 1, -1, -1):
        W, _ = layers[i]
        gW = delta.T @ hs[i]
        grads.append((gW, delta.sum(axis=0)))
        if i > 0:
            delta = (delta @ W) * ds[i - 1]
    grads.reverse()
    flat = np.concatenate(
        [np.concatenate([gW.ravel(), gb] if bias else [gW.ravel()]) for gW, gb in grads]
    )
    return value, flat, F, pre


def make(rng, act, loss, n=300, d=4, hidden=(5, 4), k=3, bias=True, **kw):
    X = rng.standard_normal((n, d))
    Y = rng.integers(0, k, n) if loss == "ce" else rng.standard_normal((n, k))
    mlp = MLP(X, Y, hidden=hidden, activation=act, loss=loss, bias=bias, **kw)
    # for ReLU, a point whose pre-activations all stay away from the kink at 0,
    # so that finite differences see one smooth piece
    for seed in range(1, 100):
        x = mlp.init(seed) * 2.0
        pre = reference(x, X, Y, mlp.layer_sizes, act, loss, bias)[3]
        if away_from_kinks(act, pre):
            return mlp, X, Y, x
    raise AssertionError("no point away from the ReLU kinks")


def away_from_kinks(act, pre, margin=2e-4):
    return act != "relu" or not pre or min(np.abs(z).min() for z in pre) > margin


# --- value and gradient -------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_loss_and_grad_match_numpy(rng, act, loss, bias):
    mlp, X, Y, x = make(rng, act, loss, bias=bias)
    value, grad, F, _ = reference(x, X, Y, mlp.layer_sizes, act, loss, bias)
    assert abs(mlp.loss(x) - value) <= 1e-13 * abs(value)
    v, g = mlp.loss_and_grad(x)
    assert v == mlp.loss(x)
    assert normwise(g, grad) <= 1e-12
    np.testing.assert_array_equal(mlp.grad(x), g)
    assert normwise(mlp.predict(x), F) <= 1e-13
    Xn = rng.standard_normal((7, X.shape[1]))
    assert (
        normwise(mlp.predict(x, Xn), reference(x, Xn, Y[:7], mlp.layer_sizes, act, loss, bias)[2])
        <= 1e-13
    )


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_grad_matches_finite_differences(rng, act, loss):
    mlp, X, Y, x = make(rng, act, loss)
    assert away_from_kinks(act, reference(x, X, Y, mlp.layer_sizes, act, loss, True)[3])
    g = mlp.grad(x)
    for _ in range(3):
        v = rng.standard_normal(mlp.dim)
        h = 1e-5
        fd = (mlp.loss(x + h * v) - mlp.loss(x - h * v)) / (2 * h)
        assert abs(g @ v - fd) <= 1e-7 * max(1.0, abs(fd))


# --- Hessian-vector products ---------------------------------------------------------------


def fd_hessian(mlp, x, h=1e-5):
    cols = [(mlp.grad(x + h * e) - mlp.grad(x - h * e)) / (2 * h) for e in np.eye(mlp.dim)]
    return np.array(cols).T


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_hvp_vs_explicit_and_finite_difference_hessian(rng, act, loss):
    mlp, X, Y, x = make(rng, act, loss, n=280, d=3, hidden=(4, 3), k=2)
    assert away_from_kinks(act, reference(x, X, Y, mlp.layer_sizes, act, loss, True)[3])
    # explicit Hessian, column by column, and as one block
    H = np.column_stack([mlp.hvp(x, e) for e in np.eye(mlp.dim)])
    np.testing.assert_array_equal(mlp.hvp(x, np.eye(mlp.dim)), H)
    scale = np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-13 * scale
    assert np.abs(H - fd_hessian(mlp, x)).max() <= 1e-7 * max(scale, 1.0)
    u, v = rng.standard_normal((2, mlp.dim))
    assert abs(u @ mlp.hvp(x, v) - mlp.hvp(x, u) @ v) <= 1e-13 * np.linalg.norm(H) * 100


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_third_matches_finite_differences_of_hvp(rng, act, loss):
    mlp, X, Y, x = make(rng, act, loss)
    assert mlp.exact_third
    assert away_from_kinks(act, reference(x, X, Y, mlp.layer_sizes, act, loss, True)[3])
    u = rng.standard_normal(mlp.dim)
    t = mlp.third(x, u)
    h = 1e-4
    fd = (mlp.hvp(x + h * u, u) - mlp.hvp(x - h * u, u)) / (2 * h)
    if act in ("relu", "identity") and loss == "mse":
        # piecewise quadratic in the last layer: still a nonzero third derivative
        assert np.linalg.norm(t) > 0
    assert normwise(t, fd) <= 1e-6
    # directional check of grad (u^T H u) along a second vector
    w = rng.standard_normal(mlp.dim)
    q = [u @ mlp.hvp(x + s * h * w, u) for s in (1, -1)]
    assert abs(t @ w - (q[0] - q[1]) / (2 * h)) <= 1e-6 * np.linalg.norm(t) * np.linalg.norm(w)


@pytest.mark.parametrize("loss", LOSSES)
def test_block_hvp_is_bitwise_columnwise_and_cached_operator_agrees(rng, loss):
    mlp, X, Y, x = make(rng, "softplus", loss, n=520, hidden=(140, 9))
    V = rng.standard_normal((mlp.dim, 9))  # more than one group of 8 directions
    HV = mlp.hvp(x, V)
    for j in range(V.shape[1]):
        np.testing.assert_array_equal(HV[:, j], mlp.hvp(x, V[:, j]))
    H = mlp.hessian(x)
    assert H._core.cached_chunks == 3
    np.testing.assert_array_equal(H @ V, HV)
    # a cache for one chunk only: the other chunks are recomputed, same bits
    small = MLP(
        X,
        Y,
        hidden=(140, 9),
        activation="softplus",
        loss=loss,
        hessian_cache_mb=1.01 * mlp._core.chunk_state_bytes / 2**20,
    )
    Hs = small.hessian(x)
    assert Hs._core.cached_chunks == 1
    np.testing.assert_array_equal(Hs @ V, HV)
    assert (
        MLP(X, Y, hidden=(140, 9), activation="softplus", loss=loss, hessian_cache_mb=0)
        .hessian(x)
        ._core.cached_chunks
        == 0
    )


def test_bitwise_identical_for_1_2_3_threads(rng, restore_threads):
    # widths above the 128-row tiles and 2 sample chunks
    X = rng.standard_normal((300, 20))
    for loss, Y in (("mse", rng.standard_normal((300, 3))), ("ce", rng.integers(0, 5, 300))):
        mlp = MLP(X, Y, hidden=(140, 130), activation="tanh", loss=loss)
        x = mlp.init(3)
        V = rng.standard_normal((mlp.dim, 3))
        results = []
        for threads in (1, 2, 3):
            eosfast.set_num_threads(threads)
            value, g = mlp.loss_and_grad(x)
            results.append((value, g, mlp.hvp(x, V), mlp.hessian(x) @ V, mlp.third(x, V[:, 0])))
        for other in results[1:]:
            assert other[0] == results[0][0]
            for a, b in zip(other[1:], results[0][1:], strict=True):
                np.testing.assert_array_equal(a, b)


def test_relu_hessian_is_the_almost_everywhere_derivative(rng):
    # on a fixed activation pattern the ReLU network is piecewise linear in its input
    # and the Hessian equals the finite-difference Hessian away from kinks
    mlp, X, Y, x = make(rng, "relu", "mse", n=100, d=3, hidden=(4,), k=1)
    assert away_from_kinks("relu", reference(x, X, Y, mlp.layer_sizes, "relu", "mse", True)[3])
    H = mlp.hvp(x, np.eye(mlp.dim))
    assert np.abs(H - fd_hessian(mlp, x)).max() <= 1e-7 * np.abs(H).max()


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_flatten_unflatten_and_init(rng, bias):
    mlp, X, Y, _ = make(rng, "tanh", "mse", hidden=(200, 6), bias=bias)
    x = mlp.init(7)
    np.testing.assert_array_equal(x, mlp.init(7))
    assert not np.array_equal(x, mlp.init(8))
    layers = mlp.unflatten(x)
    np.testing.assert_array_equal(mlp.flatten(layers), x)
    sizes = mlp.layer_sizes
    assert [W.shape for W, _ in layers] == [(sizes[i + 1], sizes[i]) for i in range(3)]
    for (W, b), (Wr, br) in zip(layers, _layers(x, sizes, bias), strict=True):
        np.testing.assert_array_equal(W, Wr)
        bound = 1 / np.sqrt(W.shape[1])
        assert np.abs(W).max() <= bound
        if bias:
            np.testing.assert_array_equal(b, br)
            assert np.abs(b).max() <= bound
        else:
            assert b is None
    W1 = layers[1][0]  # 1200 draws, uniform on [-a, a]: variance a^2 / 3
    assert abs(W1.var() / (1 / 200 / 3) - 1) < 0.15
    assert mlp.dim == sum(
        o * i + (o if bias else 0) for i, o in zip(sizes, sizes[1:], strict=False)
    )


def test_linear_model_and_explicit_num_classes(rng):
    X = rng.standard_normal((50, 3))
    y = rng.integers(0, 2, 50)
    mlp = MLP(X, y, hidden=(), loss="ce", num_classes=4)
    assert mlp.layer_sizes == [3, 4]
    x = mlp.init(0)
    value, grad, _, _ = reference(x, X, y, [3, 4], "identity", "ce", True)
    assert normwise(mlp.grad(x), grad) <= 1e-13
    # cross-entropy of a linear model is convex: the Hessian is positive semidefinite
    assert np.linalg.eigvalsh(mlp.hvp(x, np.eye(mlp.dim))).min() > -1e-12


# --- bad input -----------------------------------------------------------------------------


def test_bad_input_raises_value_error_naming_the_argument(rng):
    X = rng.standard_normal((20, 3))
    Y = rng.standard_normal((20, 2))
    labels = rng.integers(0, 3, 20)
    with pytest.raises(ValueError, match="Y"):
        MLP(X, Y[:19], hidden=(4,))
    with pytest.raises(ValueError, match="labels"):
        MLP(X, labels[:19], hidden=(4,), loss="ce")
    with pytest.raises(ValueError, match="labels"):
        MLP(X, labels, hidden=(4,), loss="ce", num_classes=2)
    with pytest.raises(ValueError, match="labels"):
        MLP(X, labels - 1, hidden=(4,), loss="ce")
    with pytest.raises(ValueError, match="labels"):
        MLP(X, labels + 0.5, hidden=(4,), loss="ce")
    Xbad = X.copy()
    Xbad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        MLP(Xbad, Y, hidden=(4,))
    Ybad = Y.copy()
    Ybad[0, 0] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN"):
        MLP(X, Ybad, hidden=(4,))
    with pytest.raises(ValueError, match=r"hidden\[1\]"):
        MLP(X, Y, hidden=(4, 0))
    with pytest.raises(ValueError, match="activation"):
        MLP(X, Y, hidden=(4,), activation="sigmoid")
    with pytest.raises(ValueError, match="loss"):
        MLP(X, Y, hidden=(4,), loss="hinge")
    with pytest.raises(ValueError, match="num_classes"):
        MLP(X, Y, hidden=(4,), num_classes=3)
    with pytest.raises(ValueError, match="X"):
        MLP(X[:, :0], Y, hidden=(4,))
    mlp = MLP(X, Y, hidden=(4,))
    with pytest.raises(ValueError, match="x has shape"):
        mlp.loss(np.zeros(mlp.dim + 1))
    with pytest.raises(ValueError, match="v has shape"):
        mlp.hvp(np.zeros(mlp.dim), np.zeros(mlp.dim - 1))
    with pytest.raises(ValueError, match="u has shape"):
        mlp.third(np.zeros(mlp.dim), np.zeros(3))
    with pytest.raises(ValueError, match="X has shape"):
        mlp.predict(np.zeros(mlp.dim), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="expected"):
        mlp.flatten(mlp.unflatten(np.zeros(mlp.dim))[:1])


def tanh_by_predict(z, width):
    """tanh(z_i) through the kernel: 1 input, ``width`` tanh units with unit weights and
    identity outputs, so every column of ``predict`` is tanh(z)."""
    problem = MLP(np.ones((2, 1)), np.zeros((2, width)), hidden=[width], activation="tanh")
    x = problem.flatten([(np.ones((width, 1)), np.zeros(width)), (np.eye(width), np.zeros(width))])
    return problem.predict(x, z.reshape(-1, 1))


def test_tanh_within_3_ulp_of_libm_and_the_same_in_every_position(rng):
    """The kernel's tanh (vectorised, its own expm1) against numpy's libm tanh over
    [1e-8, 30] and both signs; the value of an argument must not depend on where it sits
    in a buffer (vector body or scalar tail: width 7 vs 8, reversed order)."""
    z = np.concatenate(
        [rng.standard_normal(5000) * s for s in (1e-8, 1e-3, 0.1, 0.5, 1, 3, 10)]
        + [np.array([0.0, 1e-310, 0.3466, 0.35, 19.1, -19.1, 25.0, 1e300, -1e300])]
    )
    eight = tanh_by_predict(z, 8)
    ref = np.tanh(z)
    ulps = np.abs(eight[:, 0] - ref) / np.maximum(np.spacing(np.abs(ref)), 5e-324)
    assert ulps.max() <= 3, (z[np.argmax(ulps)], ulps.max())
    assert ulps.mean() < 1
    assert np.array_equal(eight, np.repeat(eight[:, :1], 8, axis=1))
    assert np.array_equal(tanh_by_predict(z, 7)[:, 0], eight[:, 0])
    assert np.array_equal(tanh_by_predict(z[::-1], 1)[::-1, 0], eight[:, 0])
    assert np.all(np.abs(eight) <= 1) and np.array_equal(np.sign(eight[:, 0]), np.sign(z))
