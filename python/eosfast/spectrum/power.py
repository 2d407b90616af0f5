"""Power iteration with deflation: the field's baseline."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .. import _core
from .._validation import as_positive_int
from ._common import EigenResult, check_tol, check_which, core_seed, operator


@dataclass(frozen=True)
class PowerResult(EigenResult):
    """An :class:`EigenResult` plus the shift the iteration used."""

    shift: float = 0.0


def power_iteration(
    op,
    k: int = 1,
    *,
    which: str = "LM",
    tol: float = 1e-6,
    max_iter: int = 1000,
    shift: float | None = None,
    seed: int | None = None,
    dim: int | None = None,
) -> PowerResult:
    """Eigenpairs by power iteration with deflation (as PyHessian computes them).

    Called as :func:`eigsh` is: ``power_iteration(op, k, which=..., tol=...)``,
    everything after ``k`` keyword-only (before 0.x, ``tol``, ``max_iter``,
    ``which``, ``shift`` and ``seed`` could be passed by position in that
    order; such calls now raise ``TypeError``).

    Iterates ``v <- P (H - shift I) v / ||.||``, ``P`` projecting out the pairs
    already found, and stops a pair when ``||H v - theta v|| <= tol * scale``
    (theta the Rayleigh quotient of the unshifted H, scale the largest
    ``|theta|`` seen) or after ``max_iter`` products.

    Parameters
    ----------
    which : {"LM", "LA"}
        "LM" (default, shift 0): largest magnitude, what PyHessian reports as
        the top eigenvalue -- not the sharpness when a negative eigenvalue is
        larger in magnitude. "LA": largest algebraic, through a shift with
        ``H - shift I`` positive semidefinite; by default
        ``shift = -1.01 |theta|`` with theta from a loose (tol 1e-3)
        largest-magnitude run. Convergence then slows to the ratio
        ``(lambda_2 - shift) / (lambda_1 - shift)``; prefer :func:`eigsh`.
    shift : float, optional
        Explicit shift (any shift <= lambda_min gives "LA").

    Returns
    -------
    PowerResult
        The eigenpairs (ordered as :class:`EigenResult`) and ``shift``.

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast.problems import Quadratic
    >>> H = Quadratic(np.array([4.0, 1.0, 0.5])).hessian(np.zeros(3))
    >>> r = eosfast.power_iteration(H, k=1, tol=1e-10, seed=0)
    >>> np.round(r.eigenvalues, 6).tolist()
    [4.0]
    """
    H = operator(op, dim)
    k = as_positive_int(k, "k")
    if k > H.dim:
        raise ValueError(f"k = {k} exceeds the dimension {H.dim}")
    which = check_which(which, ("LM", "LA"))
    tol = check_tol(tol)
    max_iter = as_positive_int(max_iter, "max_iter")
    if shift is None:
        core_shift = math.nan
    else:
        if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not np.isfinite(shift):
            raise ValueError(f"shift must be a finite real number, got {shift!r}")
        core_shift = float(shift)
    r, used = _core.power_iteration(H._core, k, which, tol, max_iter, core_shift, core_seed(seed))
    base = EigenResult._from_core(r)
    return PowerResult(**base.__dict__, shift=float(used))
