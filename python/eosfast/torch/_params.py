"""Which parameters form the flat vector, and moving vectors into and out of a model."""

from __future__ import annotations

import re

import numpy as np
import torch

from .._validation import as_float_array, check_finite


class ParameterLayout:
    """The selected parameters of a model, in ``model.named_parameters()`` order.

    The flat vector concatenates ``p.ravel()`` of each selected parameter in that
    order, exactly as ``torch.nn.utils.parameters_to_vector`` does (for a stack of
    ``nn.Linear`` layers: the weight, row-major, then the bias of each layer).
    """

    def __init__(self, model, params=None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        named = list(model.named_parameters())
        if not named:
            raise ValueError(f"the model ({type(model).__name__}) has no parameters")
        selected = _select(named, params)
        for name, p in selected:
            if not p.is_floating_point():
                raise TypeError(f"parameter {name!r} has non-floating dtype {p.dtype}")
        self.names = [name for name, _ in selected]
        self.shapes = [tuple(p.shape) for _, p in selected]
        self.numels = [p.numel() for _, p in selected]
        ends = np.cumsum(self.numels).astype(int).tolist()
        self.offsets = [0] + ends[:-1]  # where each parameter starts
        self.dim = ends[-1]
        if self.dim == 0:
            raise ValueError("the selected parameters have no entries (all are empty tensors)")

    def tensors(self, model):
        """The selected parameters of ``model`` (live objects), in layout order."""
        params = dict(model.named_parameters())
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ValueError(f"the model has no parameters named {missing}")
        return [params[n] for n in self.names]

    def unflatten(self, flat: torch.Tensor) -> dict:
        """name -> view of ``flat`` with the parameter's shape."""
        return {
            name: flat[start : start + n].view(shape)
            for name, shape, n, start in zip(
                self.names, self.shapes, self.numels, self.offsets, strict=True
            )
        }


def _select(named, params):
    if params is None:
        selected = [(n, p) for n, p in named if p.requires_grad]
        if not selected:
            raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
        return selected
    if isinstance(params, str):
        pattern = re.compile(params)
        selected = [(n, p) for n, p in named if pattern.search(n)]
        what = f"the pattern {params!r}"
    elif callable(params):
        selected = [(n, p) for n, p in named if params(n)]
        what = "the params predicate"
    else:
        try:
            wanted = list(params)
        except TypeError:
            raise TypeError(
                "params must be None, a regular expression (str), a predicate "
                f"name -> bool or a list of parameter names, got {type(params).__name__}"
            ) from None
        known = {n for n, _ in named}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ValueError(f"no parameters named {unknown}; the model has {sorted(known)}")
        if len(set(wanted)) != len(wanted):
            raise ValueError("params lists a name twice")
        selected = [(n, p) for n, p in named if n in set(wanted)]
        what = "the params list"
    if not selected:
        raise ValueError(f"{what} selects no parameters; the model has {[n for n, _ in named]}")
    return selected


def vector_from_model(model, params=None) -> np.ndarray:
    """The model's selected parameters as one flat float64 numpy vector.

    Parameters
    ----------
    model : torch.nn.Module
    params : None, str, callable or list of str
        Which parameters, as in :func:`eosfast.torch.problem` (default: all
        trainable ones).

    Returns
    -------
    ndarray, shape (dim,), float64
        In ``torch.nn.utils.parameters_to_vector`` order.

    Examples
    --------
    >>> import torch
    >>> from eosfast.torch import vector_from_model
    >>> x = vector_from_model(torch.nn.Linear(3, 1, dtype=torch.float64))  # float32 is refused
    >>> x.shape, x.dtype
    ((4,), dtype('float64'))
    """
    layout = ParameterLayout(model, params)
    with torch.no_grad():
        parts = [p.detach().reshape(-1).to("cpu", torch.float64) for p in layout.tensors(model)]
    return torch.cat(parts).numpy().copy()


def load_vector(model, x, params=None) -> None:
    """Write a flat vector into the model's selected parameters, in place.

    Use it to inspect an iterate or an eigenvector (e.g. a Hessian eigenvector
    loaded into a copy of the model shows which weights it moves).

    Parameters
    ----------
    model : torch.nn.Module
    x : array_like or torch.Tensor, shape (dim,)
        Values in ``torch.nn.utils.parameters_to_vector`` order; cast to each
        parameter's dtype and device.
    params : None, str, callable or list of str
        Which parameters, as in :func:`eosfast.torch.problem`.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from eosfast.torch import load_vector
    >>> model = torch.nn.Linear(3, 1, dtype=torch.float64)
    >>> load_vector(model, np.arange(4.0))
    >>> model.weight.tolist(), model.bias.tolist()
    ([[0.0, 1.0, 2.0]], [3.0])
    """
    layout = ParameterLayout(model, params)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = as_float_array(x, "x")
    if x.shape != (layout.dim,):
        raise ValueError(f"x has shape {x.shape}, expected ({layout.dim},)")
    check_finite(x, "x")
    flat = torch.from_numpy(np.array(x, order="C"))  # a copy: x may be read-only
    with torch.no_grad():
        for p, value in zip(layout.tensors(model), layout.unflatten(flat).values(), strict=True):
            p.copy_(value.to(device=p.device, dtype=p.dtype))
