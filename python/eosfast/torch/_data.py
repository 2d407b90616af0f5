"""The data set as a sequence of micro-batches: a tensor pair or a DataLoader."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._validation import as_positive_int
from ._hazards import TorchHazardWarning


def _as_tensor(a, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach()
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    raise TypeError(f"{what} must be a torch.Tensor or a numpy array, got {type(a).__name__}")


def _check_pair(batch, dtype, where: str):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{where} must be an (inputs, targets) pair, got {type(batch).__name__}")
    X, Y = _as_tensor(batch[0], f"{where}: inputs"), _as_tensor(batch[1], f"{where}: targets")
    if X.dim() == 0 or Y.dim() == 0:
        raise ValueError(f"{where}: inputs and targets need a leading sample dimension")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{where}: inputs have {X.shape[0]} samples but targets have {Y.shape[0]}")
    for name, t in (("inputs", X), ("targets", Y)):
        if t.is_floating_point() and t.dtype != dtype:
            raise TypeError(
                f"{where}: {name} have dtype {t.dtype} but the problem computes in {dtype}; "
                f"convert them (e.g. tensor.to({dtype})) or pass dtype={t.dtype}"
            )
    return X, Y


class Batches:
    """Iterates (inputs, targets, n) micro-batches of at most ``batch_size`` samples."""

    def __init__(self, data, batch_size, dtype, device):
        self.batch_size = None if batch_size is None else as_positive_int(batch_size, "batch_size")
        self.dtype, self.device = dtype, device
        if isinstance(data, torch.utils.data.DataLoader):
            self.loader, self.pair = data, None
            if isinstance(data.sampler, torch.utils.data.RandomSampler):
                warnings.warn(
                    "the DataLoader shuffles: every pass sums the micro-batches in a new order, "
                    "so losses and derivatives differ by rounding between calls; use "
                    "shuffle=False",
                    TorchHazardWarning,
                    stacklevel=4,
                )
        else:
            self.loader, self.pair = None, _check_pair(data, dtype, "data")
            if self.pair[0].shape[0] == 0:
                raise ValueError("data is empty (0 samples)")

    def __iter__(self):
        if self.pair is not None:
            chunks = [self.pair]
        else:
            chunks = (_check_pair(b, self.dtype, "a DataLoader batch") for b in self.loader)
        seen = 0
        for X, Y in chunks:
            n = X.shape[0]
            step = n if self.batch_size is None else self.batch_size
            for start in range(0, n, max(step, 1)):
                Xb = X[start : start + step].to(self.device)
                Yb = Y[start : start + step].to(self.device)
                seen += Xb.shape[0]
                yield Xb, Yb, Xb.shape[0]
        if seen == 0:
            raise ValueError("data is empty: the DataLoader yielded no samples")
