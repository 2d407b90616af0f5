import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eosfast  # noqa: E402
import eosfast.torch as et  # noqa: E402
from torch import nn  # noqa: E402
from torch.autograd.functional import hessian  # noqa: E402
from torch.func import functional_call  # noqa: E402

F64 = torch.float64


def mse(out, y):
    """eosfast's "mse": (1/n) sum_i 1/2 ||out_i - y_i||^2."""
    return 0.5 * ((out - y) ** 2).sum(1).mean()


def seeded(build, seed=0):
    torch.manual_seed(seed)
    return build().to(F64)


MODELS = {
    "mlp": lambda: nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)),
    "gelu": lambda: nn.Sequential(
        nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 4), nn.Softplus(), nn.Linear(4, 2)
    ),
    "layernorm": lambda: nn.Sequential(
        nn.Linear(3, 5), nn.LayerNorm(5), nn.Tanh(), nn.Linear(5, 2)
    ),
    "batchnorm_eval": lambda: nn.Sequential(
        nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)
    ).eval(),
    "cnn": lambda: nn.Sequential(
        nn.Unflatten(1, (1, 3, 1)),
        nn.Conv2d(1, 2, (2, 1)),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4, 2),
    ),
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: torch's thread pool only adds latency (and noise on a shared machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(10, 3, generator=g, dtype=F64), torch.randn(10, 2, generator=g, dtype=F64)


def reference_loss(model, loss_fn, X, Y):
    """The loss as a function of the parameters_to_vector vector, written independently."""
    named = list(model.named_parameters())

    def f(flat):
        tensors, start = {}, 0
        for name, p in named:
            tensors[name] = flat[start : start + p.numel()].reshape(p.shape)
            start += p.numel()
        return loss_fn(functional_call(model, tensors, (X,)), Y)

    return f


def relerr(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def fd_third(p, x, u, h=1e-6):
    """d/dt H(x + t u) u by central differences of exact HVPs (error O(h^2), under 1e-7 here)."""
    return (p.hvp(x + h * u, u) - p.hvp(x - h * u, u)) / (2 * h)


def test_import_eosfast_does_not_import_torch():
    code = "import sys, eosfast, eosfast.problems; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vector_order_is_parameters_to_vector():
    model = seeded(MODELS["mlp"])
    x = et.vector_from_model(model)
    expected = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.testing.assert_array_equal(x, expected)
    W1, b1, W2, b2 = (p.detach().numpy() for p in model.parameters())
    np.testing.assert_array_equal(x, np.concatenate([W1.ravel(), b1, W2.ravel(), b2]))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_derivatives_match_dense_torch_hessian(name, data, rng):
    model = seeded(MODELS[name])
    X, Y = data
    p = et.problem(model, mse, data)
    assert isinstance(p, eosfast.problems.Problem)
    assert p.exact_hvp and p.exact_third and p.mode == "forward-over-reverse"
    x = p.vector_from_model() + 0.1 * rng.standard_normal(p.dim)
    f = reference_loss(model, mse, X, Y)
    xt = torch.from_numpy(x).requires_grad_()
    loss = f(xt)
    (g,) = torch.autograd.grad(loss, xt)
    H = hessian(f, torch.from_numpy(x)).numpy()
    value, grad = p.loss_and_grad(x)
    assert value == pytest.approx(loss.item(), rel=1e-14)
    assert relerr(grad, g.numpy()) < 1e-13
    V = rng.standard_normal((p.dim, 5))
    assert relerr(p.hvp(x, V), H @ V) < 1e-12
    assert relerr(p.hvp(x, V[:, 2]), H @ V[:, 2]) < 1e-12
    assert relerr(p.hessian(x).to_dense(), H) < 1e-12


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hvp_matches_finite_differences_of_gradients(name, data, rng):
    p = et.problem(seeded(MODELS[name]), mse, data)
    x, v = p.vector_from_model(), rng.standard_normal(p.dim)
    h = 1e-5
    fd = (p.grad(x + h * v) - p.grad(x - h * v)) / (2 * h)
    assert relerr(p.hvp(x, v), fd) < 1e-7


@pytest.mark.parametrize("name", sorted(MODELS))
def test_third_matches_finite_differences_of_hvps(name, data, rng):
    """third = grad_x (u^T H u) = d/dt H(x + t u) u, including through LayerNorm/BatchNorm."""
    p = et.problem(seeded(MODELS[name]), mse, data)
    x, u = p.vector_from_model(), rng.standard_normal(p.dim)
    t = p.third(x, u)
    assert relerr(t, fd_third(p, x, u)) < 1e-6
    # the gradient of the scalar u^T H u, by central differences along a random w
    w, h = rng.standard_normal(p.dim), 1e-4
    quad = [u @ p.hvp(x + s * h * w, u) for s in (1, -1)]
    assert w @ t == pytest.approx((quad[0] - quad[1]) / (2 * h), rel=1e-6)


def test_third_through_norm_layers_in_training_mode(data, rng):
    """PyTorch's native batch_norm / instance_norm third derivatives are wrong; eosfast's not."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 4),
        nn.BatchNorm1d(4),
        nn.Unflatten(1, (2, 2)),
        nn.InstanceNorm1d(2, affine=True),
        nn.Flatten(),
        nn.Tanh(),
        nn.Linear(4, 2),
    ).to(F64)
    with pytest.warns(et.TorchHazardWarning, match="batch statistics"):
        p = et.problem(model, mse, data)
    x, u = p.vector_from_model(), rng.standard_normal(p.dim)
    assert relerr(p.third(x, u), fd_third(p, x, u)) < 1e-6


@pytest.mark.parametrize("batch_size", [1, 3, 4, 9])
def test_micro_batched_equals_full_batch(batch_size, data, rng):
    model = seeded(MODELS["cnn"])
    full = et.problem(model, mse, data)
    micro = et.problem(model, mse, data, batch_size=batch_size)
    x, V = full.vector_from_model(), rng.standard_normal((full.dim, 3))
    assert micro.loss(x) == pytest.approx(full.loss(x), rel=1e-14)
    assert relerr(micro.grad(x), full.grad(x)) < 1e-13
    assert relerr(micro.hvp(x, V), full.hvp(x, V)) < 1e-13
    assert relerr(micro.third(x, V[:, 0]), full.third(x, V[:, 0])) < 1e-13


def test_dataloader_equals_tensor_pair(data, rng):
    model = seeded(MODELS["mlp"])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*data), batch_size=4)
    a = et.problem(model, mse, data)
    b = et.problem(model, mse, loader)
    c = et.problem(model, mse, loader, batch_size=3)  # splits each loader batch further
    x, v = a.vector_from_model(), rng.standard_normal(a.dim)
    for q in (b, c):
        assert q.loss(x) == pytest.approx(a.loss(x), rel=1e-14)
        assert relerr(q.grad(x), a.grad(x)) < 1e-13
        assert relerr(q.hvp(x, v), a.hvp(x, v)) < 1e-13
        assert relerr(q.third(x, v), a.third(x, v)) < 1e-13


def test_numpy_data_and_cross_entropy(rng):
    model = seeded(MODELS["mlp"])
    X = rng.standard_normal((8, 3))
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    p = et.problem(model, nn.CrossEntropyLoss(), (X, y))
    x, v = p.vector_from_model(), rng.standard_normal(p.dim)
    f = reference_loss(model, nn.CrossEntropyLoss(), torch.from_numpy(X), torch.from_numpy(y))
    H = hessian(f, torch.from_numpy(x)).numpy()
    assert relerr(p.hvp(x, v), H @ v) < 1e-12


def test_block_products_are_one_vmapped_call(data, rng):
    p = et.problem(seeded(MODELS["mlp"]), mse, data, chunk_size=2)
    calls = []
    engine = p._engine
    hvp_forward = engine._hvp_forward
    engine._hvp_forward = lambda x, V: calls.append(V.shape) or hvp_forward(x, V)
    x, V = p.vector_from_model(), rng.standard_normal((p.dim, 5))
    HV = p.hessian(x) @ V
    assert calls == [(p.dim, 5)]
    for j in range(5):
        assert relerr(HV[:, j], p.hvp(x, V[:, j])) < 1e-14


class Cube(torch.autograd.Function):
    """x^3 as an old-style autograd.Function: no forward-mode formula, no torch.func support."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x**2


class CubeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, X):
        return self.b(Cube.apply(self.a(X)))


def test_reverse_over_reverse_fallback(data, rng):
    model = seeded(CubeNet)
    p = et.problem(model, mse, data)
    x, V = p.vector_from_model(), rng.standard_normal((p.dim, 3))
    with pytest.warns(et.TorchHazardWarning, match="falls back to reverse-over-reverse"):
        HV = p.hvp(x, V)
    assert p.mode == "reverse-over-reverse"

    def f(flat):  # the same network without the custom Function
        X, Y = data
        named = dict(model.named_parameters())
        shapes = [named[n].shape for n in ("a.weight", "a.bias", "b.weight", "b.bias")]
        parts = torch.split(flat, [int(np.prod(s)) for s in shapes])
        Wa, ba, Wb, bb = (t.reshape(s) for t, s in zip(parts, shapes, strict=True))
        return mse(((X @ Wa.T + ba) ** 3) @ Wb.T + bb, Y)

    H = hessian(f, torch.from_numpy(x)).numpy()
    assert relerr(HV, H @ V) < 1e-12
    u = V[:, 0]
    assert relerr(p.third(x, u), fd_third(p, x, u)) < 1e-6  # no second warning (errors)


def test_params_selection(data, rng):
    model = seeded(MODELS["mlp"])
    full = et.problem(model, mse, data)
    x = full.vector_from_model()
    H = full.hessian(x).to_dense()
    last = list(range(20, 32))  # 2.weight (2x5) and 2.bias (2)
    for params in (r"^2\.", ["2.bias", "2.weight"], lambda n: n.startswith("2.")):
        p = et.problem(model, mse, data, params=params)
        assert p.names == ["2.weight", "2.bias"] and p.dim == 12
        y = p.vector_from_model()
        np.testing.assert_array_equal(y, x[last])
        np.testing.assert_allclose(p.hessian(y).to_dense(), H[np.ix_(last, last)], rtol=1e-13)
        assert relerr(p.grad(y), full.grad(x)[last]) < 1e-14
    model[0].weight.requires_grad_(False)
    assert et.problem(model, mse, data).names == ["0.bias", "2.weight", "2.bias"]


def test_load_vector_round_trip(data, rng):
    model = seeded(MODELS["mlp"])
    x = rng.standard_normal(32)
    et.load_vector(model, x)
    np.testing.assert_array_equal(et.vector_from_model(model), x)
    np.testing.assert_array_equal(model[2].bias.detach().numpy(), x[30:])
    et.load_vector(model, torch.zeros(2, dtype=F64), params="2.bias")
    assert not model[2].bias.detach().any() and model[0].weight.detach().numpy()[0, 0] == x[0]
    p = et.problem(model, mse, data)
    p.load_vector(x)
    assert p.loss(x) == p.loss(p.vector_from_model())
    parts = p.split(x)
    np.testing.assert_array_equal(parts["0.weight"], x[:15].reshape(5, 3))
    with pytest.raises(ValueError, match=r"shape \(31,\), expected \(32,\)"):
        et.load_vector(model, np.zeros(31))
    with pytest.raises(ValueError, match="NaN"):
        et.load_vector(model, np.full(32, np.nan))
    frozen = np.array(x[::-1])
    frozen.flags.writeable = False  # e.g. a read-only view of a trajectory: no torch warning
    et.load_vector(model, frozen)
    np.testing.assert_array_equal(et.vector_from_model(model), frozen)


def test_float32(data, rng):
    model = seeded(MODELS["mlp"])
    p64 = et.problem(model, mse, data)
    x, v = p64.vector_from_model(), rng.standard_normal(p64.dim)
    data32 = tuple(t.float() for t in data)
    p32 = et.problem(model.float(), mse, data32, dtype=torch.float32)
    assert p32.loss(x) == pytest.approx(p64.loss(x), rel=1e-6)
    assert relerr(p32.hvp(x, v), p64.hvp(x, v)) < 1e-5
    assert relerr(p32.third(x, v), p64.third(x, v)) < 1e-4


def test_randomness_is_an_error_and_mode_is_kept(data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).to(F64)
    with pytest.raises(ValueError, match=r"\['1'\] draw random numbers"):
        et.problem(model, mse, data)
    assert model.training  # no silent eval()
    model[1].eval()
    et.problem(model, mse, data)
    assert model[0].training and not model[1].training
    rrelu = nn.Sequential(nn.Linear(3, 2), nn.RReLU()).to(F64)
    with pytest.raises(ValueError, match="random"):
        et.problem(rrelu, mse, data)
    et.problem(nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.0)).to(F64), mse, data)


def test_batch_statistics_warn_and_running_stats_stay(data, rng):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 2)).to(F64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(et.TorchHazardWarning, match=r"\['1'\] normalise with batch statistics"):
        full = et.problem(model, mse, data)
    with pytest.warns(et.TorchHazardWarning):
        micro = et.problem(model, mse, data, batch_size=5)
    x, v = full.vector_from_model(), rng.standard_normal(full.dim)
    full.hvp(x, v), full.third(x, v), micro.grad(x)
    for k, t in model.state_dict().items():
        assert torch.equal(t, before[k]), k
    assert model.training
    # the loss depends on the micro-batch partition, as the warning says
    assert abs(micro.loss(x) - full.loss(x)) > 1e-3


def test_dataloader_shuffle_warns(data):
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*data), batch_size=4, shuffle=True
    )
    with pytest.warns(et.TorchHazardWarning, match="shuffles"):
        et.problem(seeded(MODELS["mlp"]), mse, loader)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda m, d: (nn.ReLU(), mse, d), ValueError, "has no parameters"),
        (lambda m, d: ("model", mse, d), TypeError, "torch.nn.Module"),
        (lambda m, d: (m, lambda o, y: ((o - y) ** 2).mean(0), d), ValueError, r"scalar.*\(2,\)"),
        (lambda m, d: (m, lambda o, y: 1.0, d), TypeError, "must return a torch.Tensor"),
        (lambda m, d: (m, nn.MSELoss(reduction="sum"), d), ValueError, "reduction='sum'"),
        (lambda m, d: (m, "mse", d), TypeError, "loss_fn must be callable"),
        (lambda m, d: (m.float(), mse, d), TypeError, "'0.weight' has dtype torch.float32"),
        (lambda m, d: (m, mse, (d[0].float(), d[1])), TypeError, "inputs have dtype torch.float32"),
        (lambda m, d: (m, mse, (d[0][:0], d[1][:0])), ValueError, "empty"),
        (lambda m, d: (m, mse, (d[0], d[1][:5])), ValueError, "10 samples but targets have 5"),
        (lambda m, d: (m, mse, d[0]), TypeError, "pair"),
        (lambda m, d: (m, mse, (d[0], [1, 2])), TypeError, "targets must be a torch.Tensor"),
    ],
)
def test_bad_input(make, error, match, data):
    with pytest.raises(error, match=match):
        et.problem(*make(seeded(MODELS["mlp"]), data))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"params": "nothing"}, ValueError, "selects no parameters"),
        ({"params": ["0.weight", "9.bias"]}, ValueError, r"no parameters named \['9.bias'\]"),
        ({"params": 3}, TypeError, "params must be"),
        ({"dtype": torch.int64}, TypeError, "dtype must be"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
    ],
)
def test_bad_options(kwargs, error, match, data):
    with pytest.raises(error, match=match):
        et.problem(seeded(MODELS["mlp"]), mse, data, **kwargs)


def test_empty_dataloader(data):
    empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data[0][:0], data[1][:0]))
    with pytest.raises(ValueError, match="empty"):
        et.problem(seeded(MODELS["mlp"]), mse, empty)


def test_frozen_model_has_no_trainable_parameters(data):
    model = seeded(MODELS["mlp"]).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        et.problem(model, mse, data)
    assert et.problem(model, mse, data, params=".*").dim == 32


def test_errors_inside_the_model_propagate(data):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, X):
            if self.lin.weight.sum() > 100:
                raise KeyError("user bug")
            return self.lin(X)

    p = et.problem(seeded(Broken), mse, data)
    with pytest.raises(KeyError, match="user bug"):
        p.grad(np.full(p.dim, 100.0))


def test_tied_weights_count_once(data, rng):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)).to(F64)
    model[2].weight = model[0].weight  # one parameter used by two layers
    X = data[0]
    p = et.problem(model, mse, (X, X))
    assert p.names == ["0.weight", "0.bias", "2.bias"] and p.dim == 15
    x = p.vector_from_model()

    def f(flat):
        W, b0, b2 = flat[:9].reshape(3, 3), flat[9:12], flat[12:]
        return mse(torch.tanh(X @ W.T + b0) @ W.T + b2, X)

    H = hessian(f, torch.from_numpy(x)).numpy()
    assert relerr(p.hessian(x).to_dense(), H) < 1e-12
    assert relerr(p.third(x, x), fd_third(p, x, x)) < 1e-6


MLP_ACTIVATIONS = {
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "silu": nn.SiLU,
    "identity": nn.Identity,
    "relu": nn.ReLU,
}


@pytest.mark.parametrize("activation", sorted(MLP_ACTIVATIONS))
@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_agrees_with_builtin_mlp_kernel(activation, loss, rng):
    """Same weights, same loss: the adapter equals eosfast's C++ MLP kernel to 1e-10."""
    X = rng.standard_normal((37, 4))
    act = MLP_ACTIVATIONS[activation]
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 6), act(), nn.Linear(6, 5), act(), nn.Linear(5, 3)).to(F64)
    if loss == "mse":
        Y = rng.standard_normal((37, 3))
        p = et.problem(model, mse, (X, Y))
    else:
        Y = rng.integers(0, 3, 37)
        p = et.problem(model, nn.CrossEntropyLoss(), (X, Y))
    kernel = eosfast.problems.MLP(X, Y, hidden=(6, 5), activation=activation, loss=loss)
    assert kernel.dim == p.dim
    x = p.vector_from_model()
    V = rng.standard_normal((p.dim, 4))
    assert p.loss(x) == pytest.approx(kernel.loss(x), rel=1e-10)
    assert relerr(p.grad(x), kernel.grad(x)) < 1e-10
    assert relerr(p.hvp(x, V), kernel.hvp(x, V)) < 1e-10
    assert relerr(p.third(x, V[:, 0]), kernel.third(x, V[:, 0])) < 1e-10


@pytest.mark.parametrize("name", ["mlp", "layernorm", "cnn"])
def test_eigsh_sharpness_matches_a_dense_torch_hessian(name, data, rng):
    """eosfast.eigsh on the adapter's Hessian operator = eigh of autograd's dense Hessian."""
    model = seeded(MODELS[name])
    X, Y = data
    p = et.problem(model, mse, data)
    x = p.vector_from_model() + 0.3 * rng.standard_normal(p.dim)
    H = hessian(reference_loss(model, mse, X, Y), torch.from_numpy(x)).numpy()
    expected = np.linalg.eigvalsh(0.5 * (H + H.T))[::-1]
    res = eosfast.eigsh(p.hessian(x), k=3, tol=1e-10, seed=0)
    assert res.all_converged
    np.testing.assert_allclose(res.eigenvalues, expected[:3], rtol=1e-8)
    assert eosfast.sharpness(p, x, tol=1e-10) == pytest.approx(expected[0], rel=1e-8)
    # the eigenvector is one of the dense Hessian's: ||H v - lambda v|| small
    v = res.eigenvectors[:, 0]
    assert np.linalg.norm(H @ v - expected[0] * v) < 1e-6 * abs(expected[0])


@pytest.mark.parametrize(
    "momentum, nesterov", [(0.0, False), (0.9, False), (0.5, True)], ids=["gd", "polyak", "nest"]
)
def test_run_equals_a_hand_written_torch_gd_loop(momentum, nesterov, data, rng):
    """eosfast.run on the adapter follows the same iterates as torch.optim.SGD at full batch,
    and its recorded sharpness is the dense Hessian's top eigenvalue at those iterates."""
    X, Y = data
    model = seeded(MODELS["cnn"])
    p = et.problem(model, mse, data)
    x0, lr, steps = p.vector_from_model(), 0.2, 25
    traj = eosfast.run(
        p,
        eosfast.GD(lr, momentum=momentum, nesterov=nesterov),
        x0,
        steps,
        save_iterates_every=1,
        sharpness_every=5,
        tracker=eosfast.SharpnessTracker(k=1, tol=1e-10),
    )
    assert traj.status == "completed"
    np.testing.assert_array_equal(p.vector_from_model(), x0)  # the model itself is untouched

    twin = seeded(MODELS["cnn"])
    sgd = torch.optim.SGD(twin.parameters(), lr=lr, momentum=momentum, nesterov=nesterov)
    losses, iterates = [], [torch.nn.utils.parameters_to_vector(twin.parameters()).detach()]
    for _ in range(steps):
        sgd.zero_grad()
        loss = mse(twin(X), Y)
        loss.backward()
        sgd.step()
        losses.append(loss.item())
        iterates.append(torch.nn.utils.parameters_to_vector(twin.parameters()).detach())
    iterates = torch.stack(iterates).numpy()
    np.testing.assert_allclose(traj.loss[:steps], losses, rtol=1e-12)
    scale = np.abs(iterates).max()
    np.testing.assert_allclose(traj.iterates, iterates, rtol=0, atol=1e-12 * scale)

    f = reference_loss(twin, mse, X, Y)
    for step, value in zip(traj.sharpness_steps, traj.sharpness, strict=True):
        H = hessian(f, torch.from_numpy(iterates[step])).numpy()
        assert value == pytest.approx(np.linalg.eigvalsh(0.5 * (H + H.T))[-1], rel=1e-8)


class _Attention(nn.Module):
    """Self-attention over 3 tokens of width 4, then a linear read-out."""

    def __init__(self):
        super().__init__()
        self.att = nn.MultiheadAttention(4, 2, batch_first=True)
        self.out = nn.Linear(12, 2)

    def forward(self, X):
        tokens = X.reshape(-1, 3, 4)
        mixed, _ = self.att(tokens, tokens, tokens, need_weights=False)
        return self.out((mixed + tokens).flatten(1))


def test_attention_warns_on_cpu_and_the_math_kernel_gives_exact_hvps(rng):
    """Fused (flash) attention has no double backward, on CPU too: the adapter says so, and
    with the math kernel its HVPs and third derivatives are right."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model = seeded(_Attention).eval()
    g = torch.Generator().manual_seed(2)
    X, Y = torch.randn(6, 12, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64)
    with pytest.warns(et.TorchHazardWarning, match=r"\['att'\].*SDPBackend.MATH"):
        p = et.problem(model, mse, (X, Y))
    x = p.vector_from_model()
    V = rng.standard_normal((p.dim, 3))
    with sdpa_kernel(SDPBackend.MATH):
        H = hessian(reference_loss(model, mse, X, Y), torch.from_numpy(x)).numpy()
        assert relerr(p.hvp(x, V), H @ V) < 1e-12
        assert relerr(p.third(x, V[:, 0]), fd_third(p, x, V[:, 0])) < 1e-6
    assert p.mode == "forward-over-reverse"
