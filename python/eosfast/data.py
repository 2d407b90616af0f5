"""Data for experiments: the embedded handwritten digits, or the user's ``.npz`` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["load_data", "load_digits_data", "load_npz_data", "prepare"]


def load_digits_data(
    n_samples: int | None = None, targets: str = "onehot", scale="standard", subset_seed=0
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (1797 samples, 64 features, 10 classes).

    Parameters
    ----------
    n_samples : int, optional
        Use a random subset of this size (drawn with ``subset_seed``, kept in file order).
    targets : {"onehot", "centered", "labels"}
        One-hot rows, one-hot minus 1/10 (rows summing to zero), or integer labels.
    scale : {"standard", "none"}
        "standard": centre each feature and divide by the overall standard deviation.

    Returns
    -------
    X : ndarray, shape (n, 64), float64
    Y : ndarray, shape (n, 10) float64, or (n,) int64 for ``targets="labels"``

    Examples
    --------
    >>> from eosfast.data import load_digits_data
    >>> X, Y = load_digits_data(n_samples=100)
    >>> X.shape, Y.shape, bool((Y.sum(axis=1) == 1).all())
    ((100, 64), (100, 10), True)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return prepare(bunch.data, bunch.target, n_samples, targets, scale, subset_seed, "digits")


def load_npz_data(path, n_samples=None, targets="onehot", scale="none", subset_seed=0):
    """Arrays ``X`` (n, d) and ``Y`` (n, k) or integer labels (n,) from an ``.npz`` file.

    Targets given as a matrix are used as they are; integer labels are turned into
    ``targets`` like the digits' labels.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from eosfast.data import load_npz_data
    >>> path = os.path.join(tempfile.mkdtemp(), "data.npz")
    >>> np.savez(path, X=np.eye(3), Y=np.array([0, 1, 1]))
    >>> X, Y = load_npz_data(path)
    >>> Y
    array([[1., 0.],
           [0., 1.],
           [0., 1.]])
    """
    path = Path(path)
    with open(path, "rb") as file:  # closed by us even when numpy fails half-way
        try:
            archive = np.load(file, allow_pickle=False)
        except Exception as exc:  # garbage, a truncated zip, pickled data: numpy's many errors
            raise ValueError(
                f"{path} is not a readable .npz archive ({_one_line(exc)}); save it with "
                "numpy.savez(path, X=X, Y=Y)"
            ) from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} holds a single array, not an .npz archive of X and Y")
        return _read_xy(archive, path, n_samples, targets, scale, subset_seed)


def _read_xy(archive, path, n_samples, targets, scale, subset_seed):
    with archive:
        missing = [name for name in ("X", "Y") if name not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: missing array(s) {', '.join(missing)}; found {archive.files}"
            )
        try:
            X, Y = archive["X"], archive["Y"]
        except Exception as exc:  # object arrays, truncated members, bad CRCs
            raise ValueError(
                f"{path}: cannot read X and Y ({_one_line(exc)}); save plain numeric arrays "
                "with numpy.savez(path, X=X, Y=Y)"
            ) from None
    return prepare(X, Y, n_samples, targets, scale, subset_seed, str(path))


def load_data(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """The data of a validated ``[data]`` configuration table.

    Examples
    --------
    >>> from eosfast.data import load_data
    >>> table = dict(name="digits", n_samples=50, targets="labels", scale="standard",
    ...              subset_seed=0)
    >>> X, Y = load_data(table)
    >>> X.shape, Y.dtype
    ((50, 64), dtype('int64'))
    """
    options = dict(
        n_samples=data["n_samples"],
        targets=data["targets"],
        scale=data["scale"],
        subset_seed=data["subset_seed"],
    )
    if data["name"] == "digits":
        return load_digits_data(**options)
    return load_npz_data(data["path"], **options)


def prepare(X, Y, n_samples, targets, scale, subset_seed, source):
    """Checks, subset, feature scaling and target encoding shared by every data source.

    Examples
    --------
    >>> import numpy as np
    >>> from eosfast.data import prepare
    >>> X, Y = prepare(np.ones((4, 2)), np.array([0, 1, 2, 1]), None, "centered", "none", 0, "mine")
    >>> Y.shape, bool(np.allclose(Y.sum(axis=1), 0.0))
    ((4, 3), True)
    """
    X, Y = np.asarray(X), np.asarray(Y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{source}: X must have shape (n, d) with n, d >= 1, got {X.shape}")
    for name, A in (("X", X), ("Y", Y)):
        if np.issubdtype(A.dtype, np.complexfloating):
            raise ValueError(f"{source}: {name} is complex ({A.dtype}); give real numbers")
        if A.dtype == np.bool_ or not np.issubdtype(A.dtype, np.number):
            raise ValueError(f"{source}: {name} must hold numbers, got dtype {A.dtype}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{source}: X must hold finite numbers")
    if Y.ndim not in (1, 2) or Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{source}: Y must have shape (n,) or (n, k) with n = {X.shape[0]} as in X, "
            f"got {Y.shape}"
        )
    n = X.shape[0]
    k = int(Y.max()) + 1 if Y.ndim == 1 and np.issubdtype(Y.dtype, np.integer) else None
    if n_samples is not None:
        if n_samples > n:
            raise ValueError(f"{source}: n_samples = {n_samples} but the data has {n} samples")
        keep = np.sort(np.random.default_rng(subset_seed).permutation(n)[:n_samples])
        X, Y = X[keep], Y[keep]
    X = np.ascontiguousarray(X, dtype=np.float64)
    if scale == "standard":
        X = X - X.mean(axis=0)
        std = X.std()
        if std > 0:
            X = X / std
    if Y.ndim == 2:
        if targets == "labels":
            raise ValueError(f"{source}: targets = 'labels' needs integer labels Y of shape (n,)")
        if not np.issubdtype(Y.dtype, np.number) or not np.all(np.isfinite(Y)):
            raise ValueError(f"{source}: Y must hold finite numbers")
        return X, np.ascontiguousarray(Y, dtype=np.float64)
    if not np.issubdtype(Y.dtype, np.integer) or Y.min() < 0:
        raise ValueError(f"{source}: Y of shape (n,) must hold non-negative integer labels")
    if targets == "labels":
        return X, Y.astype(np.int64)
    onehot = np.zeros((Y.shape[0], k))
    onehot[np.arange(Y.shape[0]), Y] = 1.0
    if targets == "centered":
        onehot -= 1.0 / k
    return X, onehot


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
