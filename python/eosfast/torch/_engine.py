"""The derivatives of a full-batch PyTorch loss over a flat parameter vector.

L(x) = (1/n) sum_b n_b loss_fn(model_x(X_b), Y_b) over micro-batches b of n_b
samples, so micro-batched equals full-batch for losses that average over
their batch. Gradients by reverse mode; HVPs by forward-over-reverse
(``jvp`` of ``grad``, ``vmap``-ed over the columns of a block in chunks);
``third`` = grad_x (u^T H(x) u) = d/dt H(x + t u) u by one more ``jvp``.
Where ``torch.func`` fails (no forward-mode formula, vmap-incompatible code),
double and triple backward with ``torch.autograd.grad`` take over.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.func import functional_call, grad, jvp, vmap

from ._hazards import CompositeNorms, TorchHazardWarning

FORWARD = "forward-over-reverse"
REVERSE = "reverse-over-reverse"


class Engine:
    """Holds no reference to the eosfast problem (the C++ side holds this object)."""

    def __init__(self, model, loss_fn, batches, layout, stateful, dtype, device, chunk_size):
        self.model, self.loss_fn, self.batches, self.layout = model, loss_fn, batches, layout
        self.stateful = stateful
        self.dtype, self.device, self.chunk_size = dtype, device, chunk_size
        self.mode = FORWARD

    # -- the loss of one micro-batch as a function of the flat vector --------

    def _buffers(self) -> dict:
        """Copies of the buffers a forward pass would update (the model's stay untouched)."""
        modules = dict(self.model.named_modules())
        return {
            f"{name}.{b}" if name else b: t.clone()
            for name in self.stateful
            for b, t in modules[name].named_buffers(recurse=False)
        }

    def batch_loss(self, flat, X, Y, composite=False):
        tensors = self.layout.unflatten(flat)
        tensors.update(self._buffers())
        if composite:
            with CompositeNorms():
                return self.loss_fn(functional_call(self.model, tensors, (X,)), Y)
        return self.loss_fn(functional_call(self.model, tensors, (X,)), Y)

    def check_loss(self, loss):
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"loss_fn must return a torch.Tensor, got {type(loss).__name__}")
        if loss.dim() != 0:
            raise ValueError(
                f"loss_fn must return a scalar (0-dim) tensor, got shape {tuple(loss.shape)}; "
                "average over the batch (e.g. reduction='mean')"
            )
        if loss.dtype != self.dtype:
            raise TypeError(f"loss_fn returned dtype {loss.dtype}, expected {self.dtype}")
        return loss

    # -- conversions --------------------------------------------------------

    def to_torch(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype)

    @staticmethod
    def to_numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    # -- callbacks of the C++ problem ----------------------------------------

    def loss_and_grad(self, x):
        flat = self.to_torch(x).requires_grad_()
        total, g, n = 0.0, torch.zeros_like(flat), 0
        for X, Y, nb in self.batches:
            loss = self.check_loss(self.batch_loss(flat, X, Y))
            if loss.requires_grad:
                (gb,) = torch.autograd.grad(loss, flat, allow_unused=True, materialize_grads=True)
                g += nb * gb
            total += nb * loss.item()
            n += nb
        return total / n, self.to_numpy(g / n)

    def hvp(self, x, V):
        """H(x) V for a block V of shape (dim, m)."""
        return self._dispatch(self._hvp_forward, self._hvp_reverse, x, V)

    def third(self, x, u):
        return self._dispatch(self._third_forward, self._third_reverse, x, u)

    def _dispatch(self, forward, reverse, x, w):
        if self.mode == FORWARD:
            try:
                return forward(x, w)
            except (RuntimeError, NotImplementedError) as err:
                self.mode = REVERSE
                warnings.warn(
                    "torch.func forward-over-reverse differentiation failed for this model "
                    f"({type(err).__name__}: {str(err).strip().splitlines()[0]}); eosfast "
                    "falls back to reverse-over-reverse (double backward, one column at a "
                    "time), which is slower",
                    TorchHazardWarning,
                    stacklevel=2,
                )
        return reverse(x, w)

    def _accumulate(self, per_batch, shape):
        out, n = torch.zeros(shape, dtype=self.dtype, device=self.device), 0
        for X, Y, nb in self.batches:
            out += nb * per_batch(X, Y)
            n += nb
        return self.to_numpy(out / n)

    def _hvp_forward(self, x, V):
        flat, block = self.to_torch(x), self.to_torch(V)

        def per_batch(X, Y):
            g = grad(lambda p: self.batch_loss(p, X, Y))
            column = lambda v: jvp(g, (flat,), (v,))[1]  # noqa: E731
            return vmap(column, in_dims=1, out_dims=1, chunk_size=self.chunk_size)(block)

        return self._accumulate(per_batch, block.shape)

    def _third_forward(self, x, u):
        flat, dir_ = self.to_torch(x), self.to_torch(u)

        def per_batch(X, Y):
            g = grad(lambda p: self.batch_loss(p, X, Y, composite=True))
            hu = lambda p: jvp(g, (p,), (dir_,))[1]  # noqa: E731
            return jvp(hu, (flat,), (dir_,))[1]

        return self._accumulate(per_batch, flat.shape)

    def _gradient_graph(self, flat, X, Y, composite=False):
        loss = self.batch_loss(flat, X, Y, composite)
        if not loss.requires_grad:
            return None
        return torch.autograd.grad(loss, flat, create_graph=True)[0]

    @staticmethod
    def _backward(out, flat, w, create_graph=False):
        if out is None or not out.requires_grad:
            return torch.zeros_like(flat)
        return torch.autograd.grad(
            out,
            flat,
            w,
            retain_graph=True,
            create_graph=create_graph,
            allow_unused=True,
            materialize_grads=True,
        )[0]

    def _hvp_reverse(self, x, V):
        flat, block = self.to_torch(x).requires_grad_(), self.to_torch(V)

        def per_batch(X, Y):
            g = self._gradient_graph(flat, X, Y)
            cols = [self._backward(g, flat, block[:, j]) for j in range(block.shape[1])]
            return torch.stack(cols, dim=1)

        return self._accumulate(per_batch, block.shape)

    def _third_reverse(self, x, u):
        flat, dir_ = self.to_torch(x).requires_grad_(), self.to_torch(u)

        def per_batch(X, Y):
            g = self._gradient_graph(flat, X, Y, composite=True)
            hu = self._backward(g, flat, dir_, create_graph=True)
            return self._backward(hu @ dir_ if hu.requires_grad else None, flat, None)

        return self._accumulate(per_batch, flat.shape)
