"""Extreme eigenpairs of symmetric operators by thick-restart Lanczos."""

from __future__ import annotations

import warnings

import numpy as np

from .. import _core
from .._validation import as_block, as_positive_int
from ..progress import reporter
from ._common import EigenResult, check_tol, check_which, core_seed, operator

# eigsh's `which` rules (the C++ core's parse_which accepts the same names).
_WHICH = ("LA", "SA", "LM", "BE", "SM")


def eigsh(
    op,
    k: int = 1,
    *,
    which: str = "LA",
    tol: float = 1e-8,
    v0=None,
    max_matvecs: int | None = None,
    maxiter: int | None = None,
    block: int = 1,
    seed: int | None = None,
    rng=None,
    ncv: int | None = None,
    dim: int | None = None,
    return_eigenvectors: bool = True,
    check_copies: bool = True,
    progress=None,
):
    """k eigenpairs of a symmetric operator, matrix-free.

    Eigenvalues come back **most wanted first** (``"LA"``: descending, so
    ``eigenvalues[0]`` is the sharpness; ``"SA"``: ascending), not ascending
    as in ``scipy.sparse.linalg.eigsh``. The result unpacks like SciPy's,
    ``w, v = eigsh(A, k=2)``; everything after ``k`` is keyword-only.

    Thick-restart Lanczos (Wu & Simon 2000) with full reorthogonalisation,
    run in C++ with the GIL released. A pair is converged when its true
    residual ``||H v - lambda v||`` is at most ``tol * scale``, scale the
    largest ``|Ritz value|`` seen (an estimate of ``||H||``). Every copy of a
    repeated eigenvalue among the k wanted is found: after convergence a
    Lanczos run from a fresh random vector, with the found pairs deflated,
    looks for eigenvalues the Krylov space could not contain (on small
    operators it covers the whole complement); any it finds are converged
    there and replace the worst, and the check repeats.

    Parameters
    ----------
    op : Operator, ndarray (dim, dim), scipy sparse matrix/array, LinearOperator or callable
        Real symmetric (complex Hermitian input is not supported). A problem's
        Hessian at x is ``problem.hessian(x)``. Callables (and LinearOperators
        and sparse matrices, applied through scipy) are probed for symmetry
        first, to relative tolerance 1e-6 (two products, counted).
    k : int
        Number of eigenpairs, ``1 <= k <= dim``.
    which : {"LA", "SA", "LM", "BE", "SM"}
        Largest algebraic (the sharpness), smallest algebraic, largest
        magnitude, both ends (``ceil(k/2)`` from the top), or smallest
        magnitude (returned by ascending magnitude). **SM costs more**: it is
        interior to the spectrum, and without a factorisation (SciPy's
        ``sigma=0`` shift-invert) eigsh finds it as the bottom end of ``H^2``,
        converged to ``max(tol**2, 1e-14)`` with at least one pair more than k
        (until the last is clearly above the k-th, so ``+-lambda``, one
        eigenvalue of ``H^2``, are never split), then separates ``+-lambda``
        by a Rayleigh-Ritz with H: two products per Lanczos step, and the relative
        gaps that set the speed shrink to
        ``(lambda_{k+1}^2 - lambda_k^2) / lambda_max^2``. Expect several times
        the products of ``"LA"``; with a matrix at hand, SciPy's
        ``eigsh(A, sigma=0)`` is the faster route.
    tol : float
        Relative residual tolerance, in (0, 1).
    v0 : ndarray, shape (dim,) or (dim, m), optional
        Start vector, or a block of m start vectors (the block size becomes at
        least m). Default: random.
    max_matvecs : int, optional
        Budget of operator applications; default ``max(2000, 200 * ncv)``.
        When it runs out the result reports what converged.
    maxiter : int, optional
        SciPy's name for the work limit, in restart cycles: the budget becomes
        ``maxiter * ncv`` products. Give at most one of ``max_matvecs`` and
        ``maxiter``.
    block : int
        Block size of the Lanczos process (1: single-vector Lanczos).
    seed : int, optional
        Seed of the random start and restarts (None: fresh entropy).
    rng : int or numpy.random.Generator, optional
        SciPy's name for the seed; a Generator supplies one integer seed.
        Give at most one of ``seed`` and ``rng``.
    ncv : int, optional
        Largest basis size; default ``max(2k + 2 block, 20)``, at most dim.
    dim : int, optional
        Dimension of a callable operator.

    return_eigenvectors : bool
        False: return only the eigenvalues (an ndarray, most wanted first).
    check_copies : bool
        True (default): after convergence, look for copies of repeated
        eigenvalues the Krylov space could not contain (see above). False
        skips that check, as ARPACK does: fewer products, but a repeated
        eigenvalue may come back once, with the next eigenvalue in its place.
    progress : bool or callable, optional
        The solve runs in C++ in one call: True shows a bar (tqdm when
        installed, a plain line otherwise) on stderr that ends with the
        products used, whether all converged and the time; a callable gets
        ``progress(done, total)`` = ``(1, 1)`` when the solve ends.

    Returns
    -------
    EigenResult
        Non-convergence is reported in ``converged``, not raised (nor is a
        check for further copies of a repeated eigenvalue that ran out of
        budget: its pairs are then all reported unconverged). Unpacks as
        ``(eigenvalues, eigenvectors)``.

    Raises
    ------
    ValueError
        Bad arguments, or a non-symmetric operator.
    TypeError
        Not an operator (a problem: pass ``problem.hessian(x)``).
    eosfast.NumericalError
        The operator returned NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast.problems import Quadratic
    >>> H = Quadratic(np.array([3.0, 2.0, 1.0, 0.5])).hessian(np.zeros(4))
    >>> w, v = eosfast.eigsh(H, k=2, seed=0)  # the top two, largest first
    >>> np.round(w, 8).tolist(), v.shape
    ([3.0, 2.0], (4, 2))
    >>> np.round(eosfast.eigsh(np.diag([1.0, -2.0, 4.0]), k=1, which="SA", seed=0).eigenvalues, 8)
    array([-2.])
    """
    H = operator(op, dim)
    n = H.dim
    k = as_positive_int(k, "k")
    if k > n:
        raise ValueError(f"k = {k} exceeds the dimension {n}")
    which = check_which(which, _WHICH)
    tol = check_tol(tol)
    block = as_positive_int(block, "block")
    if v0 is None:
        start = np.zeros((n, 0), order="F")
    else:
        start, _ = as_block(v0, n, "v0")
        if start.shape[1] > n:
            raise ValueError(f"v0 has {start.shape[1]} columns, more than dim = {n}")
    if max_matvecs is not None and maxiter is not None:
        raise ValueError("give at most one of max_matvecs and maxiter")
    if seed is not None and rng is not None:
        raise ValueError("give at most one of seed and rng (SciPy's name for it)")
    if rng is not None:
        seed = _seed_from_rng(rng)
    ncv = 0 if ncv is None else as_positive_int(ncv, "ncv")
    budget = 0 if max_matvecs is None else as_positive_int(max_matvecs, "max_matvecs")
    if maxiter is not None:
        cycle = _core.eigsh_default_ncv(n, k, max(block, start.shape[1]), ncv)
        budget = as_positive_int(maxiter, "maxiter") * cycle
    if not isinstance(check_copies, (bool, np.bool_)):
        raise TypeError(f"check_copies must be a bool, got {type(check_copies).__name__}")
    with reporter(progress, 1, f"eosfast.eigsh k={k} dim={n}", "solve") as bar:
        r = _core.eigsh(
            H._core, k, which, tol, start, ncv, block, budget, core_seed(seed), bool(check_copies)
        )
        result = EigenResult._from_core(r)
        bar.update(1, matvecs=result.matvecs, converged=result.all_converged)
    return result if return_eigenvectors else result.eigenvalues


def _seed_from_rng(rng) -> int:
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(
            f"rng must be an integer seed or a numpy Generator, got {type(rng).__name__}"
        )
    return int(rng)


def sharpness(problem, x, tol: float = 1e-8, seed: int | None = 0) -> float:
    """The sharpness lambda_max(grad^2 L(x)): the largest *algebraic* Hessian eigenvalue.

    ``eigsh(problem.hessian(x), k=1, which="LA", tol=tol, seed=seed)``; warns
    (RuntimeWarning) if the solver did not converge.

    Examples
    --------
    >>> import numpy as np
    >>> import eosfast
    >>> from eosfast.problems import Quadratic
    >>> problem = Quadratic(np.array([3.0, 2.0, 1.0]))
    >>> round(eosfast.sharpness(problem, np.zeros(3)), 8)
    3.0
    """
    result = eigsh(problem.hessian(x), k=1, which="LA", tol=tol, seed=seed)
    if not result.all_converged:
        warnings.warn(
            f"sharpness: Lanczos did not converge (residual {result.residuals[0]:.3g} after "
            f"{result.matvecs} products); use eigsh with a larger max_matvecs",
            RuntimeWarning,
            stacklevel=2,
        )
    return float(result.eigenvalues[0])
