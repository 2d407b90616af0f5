"""Argument checks shared by the public API: clear errors before C++ runs."""

import numbers

import numpy as np


def as_float_array(a, name: str) -> np.ndarray:
    """``a`` as a float64 array; TypeError for non-real dtypes."""
    arr = np.asarray(a)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64)


def check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")


def as_vector(x, dim: int, name: str = "x") -> np.ndarray:
    """A finite float64 vector of shape (dim,)."""
    arr = as_float_array(x, name)
    if arr.shape != (dim,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({dim},)")
    check_finite(arr, name)
    return np.ascontiguousarray(arr)


def as_block(v, dim: int, name: str = "v") -> tuple[np.ndarray, bool]:
    """A finite float64 block of shape (dim, m) in Fortran order, and whether ``v`` was 1-D."""
    arr = as_float_array(v, name)
    if arr.ndim == 1:
        if arr.shape != (dim,):
            raise ValueError(f"{name} has shape {arr.shape}, expected ({dim},) or ({dim}, m)")
        check_finite(arr, name)
        return arr.reshape(dim, 1, order="F"), True
    if arr.ndim != 2 or arr.shape[0] != dim or arr.shape[1] < 1:
        raise ValueError(
            f"{name} has shape {arr.shape}, expected ({dim},) or ({dim}, m) with m >= 1"
        )
    check_finite(arr, name)
    return np.asfortranarray(arr), False


def as_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def as_real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value
