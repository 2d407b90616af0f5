"""The peers: PyTorch HVPs, PyHessian, hessian-eigenthings and ARPACK on the same MLP.

Each helper returns plain callables on tensors or numpy arrays so the cases can time them
side by side. Matvec counts come from counting wrappers, not from the peers' own reports.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from _models import mse_criterion, torch_data, torch_flat_loss, torch_module

DTYPES = {"f64": "float64", "f32": "float32"}


def torch_dtype(precision: str):
    import torch

    return getattr(torch, DTYPES[precision])


class Counter:
    """Wraps ``fn`` and counts its calls (or the columns it was applied to)."""

    def __init__(self, fn, columns=None):
        self.fn = fn
        self.calls = 0
        self.columns = columns

    def __call__(self, *args, **kwargs):
        self.calls += self.columns(*args) if self.columns else 1
        return self.fn(*args, **kwargs)


class TorchHVP:
    """HVPs of the benchmark MLP in PyTorch, on a flat parameter tensor ``theta``.

    - ``double_backward(v)``: builds the gradient graph (``create_graph=True``) and
      differentiates ``<grad, v>`` again; the graph is rebuilt per call (a fresh point).
    - ``reused(v)``: the same with the gradient graph built once per point (what
      PyHessian does; the fastest for repeated products at one point).
    - ``forward_over_reverse(v)``: ``torch.func.jvp(torch.func.grad(loss), theta, v)``.
    Blocks: ``reused_block(V)`` (``is_grads_batched``) and ``func_block(V)`` (``vmap``), with
    ``V`` of shape (m, dim).
    """

    def __init__(self, spec, theta: np.ndarray, X: np.ndarray, Y: np.ndarray, precision="f64"):
        import torch

        self.torch = torch
        self.dtype = torch_dtype(precision)
        self.X, self.Y = torch_data(X, Y, self.dtype)
        self.loss = torch_flat_loss(spec, self.X, self.Y)
        self.theta = torch.as_tensor(theta, dtype=self.dtype).clone()
        self._grad_graph = None
        self._fn_hvp = None

    def set_point(self, theta) -> None:
        self.theta = self.torch.as_tensor(theta, dtype=self.dtype).clone()
        self._grad_graph = None

    def loss_and_grad(self, theta=None):
        torch = self.torch
        t = (self.theta if theta is None else theta).detach().requires_grad_(True)
        value = self.loss(t)
        (g,) = torch.autograd.grad(value, t)
        return value.detach(), g

    def double_backward(self, v):
        torch = self.torch
        t = self.theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.loss(t), t, create_graph=True)
        (hv,) = torch.autograd.grad(g, t, grad_outputs=v)
        return hv

    def _graph(self):
        if self._grad_graph is None:
            torch = self.torch
            t = self.theta.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.loss(t), t, create_graph=True)
            self._grad_graph = (t, g)
        return self._grad_graph

    def reused(self, v):
        t, g = self._graph()
        (hv,) = self.torch.autograd.grad(g, t, grad_outputs=v, retain_graph=True)
        return hv

    def reused_block(self, V):
        t, g = self._graph()
        (hv,) = self.torch.autograd.grad(
            g, t, grad_outputs=V, retain_graph=True, is_grads_batched=True
        )
        return hv

    def forward_over_reverse(self, v):
        from torch.func import grad, jvp

        return jvp(grad(self.loss), (self.theta,), (v,))[1]

    def func_block(self, V):
        from torch.func import vmap

        return vmap(self.forward_over_reverse)(V)

    def numpy_operator(self, counter: bool = True):
        """``v -> H v`` on float64 numpy vectors through the reused graph (for ARPACK)."""
        torch = self.torch

        def matvec(v):
            v = np.asarray(v).reshape(-1)
            hv = self.reused(torch.as_tensor(v, dtype=self.dtype))
            return hv.detach().numpy().astype(np.float64, copy=False)

        return Counter(matvec) if counter else matvec


def arpack(matvec, dim: int, k: int, tol: float, v0=None, maxiter=None):
    """``scipy.sparse.linalg.eigsh`` (ARPACK, which='LA') on a counted matvec.

    Returns (eigenvalues descending, eigenvectors (dim, k), matvecs)."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    counted = Counter(matvec)
    op = LinearOperator((dim, dim), matvec=counted, dtype=np.float64)
    vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=v0, maxiter=maxiter)
    order = np.argsort(vals)[::-1]
    return vals[order], vecs[:, order], counted.calls


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def pyhessian_top(spec, theta, X, Y, k: int, tol: float, max_iter: int, precision="f64"):
    """``pyhessian.hessian(...).eigenvalues(maxIter, tol, top_n=k)`` on the benchmark MLP.

    PyHessian draws its start vectors with ``torch.randn`` in the default dtype, so the
    default dtype is set to the model's for the call (nothing else is changed).
    Returns (eigenvalues as PyHessian orders them, matvecs, converged): converged when no
    eigenvalue used all ``max_iter`` iterations (counted through its ``orthnormal`` calls).
    """
    import sys

    import pyhessian  # noqa: F401  (the package rebinds the name ``hessian`` to the class)
    import torch

    ph = sys.modules["pyhessian.hessian"]
    dtype = torch_dtype(precision)
    model = torch_module(spec, theta, dtype)
    Xt, Yt = torch_data(X, Y, dtype)
    counted = Counter(ph.hessian_vector_product)
    per_eigen: dict = {}
    original = (ph.hessian_vector_product, ph.orthnormal)

    def orthnormal(w, v_list):
        per_eigen[len(v_list)] = per_eigen.get(len(v_list), 0) + 1
        return original[1](w, v_list)

    before = torch.get_default_dtype()
    ph.hessian_vector_product, ph.orthnormal = counted, orthnormal
    torch.set_default_dtype(dtype)
    try:
        with _quiet():
            comp = ph.hessian(model, mse_criterion, data=(Xt, Yt), cuda=False)
            vals, _ = comp.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
    finally:
        ph.hessian_vector_product, ph.orthnormal = original
        torch.set_default_dtype(before)
    converged = all(count < max_iter for count in per_eigen.values())
    return np.asarray(vals, dtype=np.float64), counted.calls, converged


def eigenthings_operator(spec, theta, X, Y, precision="f64"):
    """hessian-eigenthings' ``HessianOperator`` on the benchmark MLP (one full batch)."""
    from hessian_eigenthings import HessianOperator

    dtype = torch_dtype(precision)
    model = torch_module(spec, theta, dtype)
    batch = torch_data(X, Y, dtype)

    def loss_fn(model, batch):
        return mse_criterion(model(batch[0]), batch[1])

    return HessianOperator(model, [batch], loss_fn)


def eigenthings_lanczos(spec, theta, X, Y, k: int, tol: float, max_iter: int, precision="f64"):
    """``hessian_eigenthings.lanczos(op, k, which='LA', tol, max_iter)``: a single, unrestarted
    Lanczos run of ``max_iter`` steps. Returns (eigenvalues, all converged, matvecs)."""
    from hessian_eigenthings import lanczos

    op = eigenthings_operator(spec, theta, X, Y, precision)
    counted = Counter(op.matvec)
    op.matvec = counted
    res = lanczos(op, k=k, which="LA", tol=tol, max_iter=max_iter, seed=0)
    vals = res.eigenvalues.detach().double().numpy()
    return np.sort(vals)[::-1], bool(res.converged.all()), counted.calls


def eigenthings_power(spec, theta, X, Y, k: int, tol: float, max_iter: int, precision="f64"):
    """``hessian_eigenthings.deflated_power_iteration(op, k, tol, max_iter)`` (largest
    magnitude). Returns (eigenvalues, all converged, matvecs)."""
    from hessian_eigenthings import deflated_power_iteration

    op = eigenthings_operator(spec, theta, X, Y, precision)
    counted = Counter(op.matvec)
    op.matvec = counted
    res = deflated_power_iteration(op, k=k, tol=tol, max_iter=max_iter, seed=0)
    vals = res.eigenvalues.detach().double().numpy()
    return np.sort(vals)[::-1], bool(res.converged.all()), counted.calls
