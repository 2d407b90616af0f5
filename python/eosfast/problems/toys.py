"""Toy landscapes whose manifolds of minimisers, sharpness and flows are known in closed form.

Each toy has exact ``grad``, ``hvp`` and ``third`` in C++ and, for the
manifold-flow machinery of Arora, Li & Panigrahi (2022), the closed-form limit
of gradient flow ``phi(x)`` (Phi of docs/theory.md, 4. Phi and the projection), the
sharpness on the manifold Gamma, its top eigenvector (the normal direction) and the
tangent projection P_X. Where the limiting flows on Gamma have closed forms, ``limiting_flow``
gives them (tau = lr^2 t):

- NGD:        dX/dtau = -(1/4) P_X grad log lambda_1(X)
- sqrt(L)-GD: dX/dtau = -(1/8) P_X grad lambda_1(X)
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._validation import as_positive_int, as_real, as_vector
from ._base import Problem

_ALGORITHMS = tuple(n.flow for n in _core.OPTIMIZER_NAMES if n.flow)  # ("ngd", "sqrt")


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {_ALGORITHMS}, got {algorithm!r}")


def _check_tau(tau) -> float:
    tau = as_real(tau, "tau")
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    return tau


def _solve_increasing(f, target: float, start: float, slope_min: float, slope_max: float) -> float:
    """The root of f(s) = target for f increasing with slope in [slope_min, slope_max]."""
    from scipy.optimize import brentq

    gap = target - f(start)
    if gap == 0:
        return start
    a, b = start + gap / slope_max, start + gap / slope_min
    lo, hi = min(a, b), max(a, b)
    flo, fhi = f(lo) - target, f(hi) - target
    if flo == 0:
        return lo
    if fhi == 0:
        return hi
    return brentq(lambda s: f(s) - target, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)


def _log_cosh(s: float) -> float:
    a = abs(s)
    return a + np.log1p(np.exp(-2 * a)) - np.log(2.0)


class ScalarProduct(Problem):
    """L(x) = 1/2 (prod_i x_i - 1)^2 on R^D (matrix factorization of a scalar).

    Gamma = {prod_i x_i = 1}, of dimension D - 1. On Gamma the Hessian is
    n n^T with n = grad p, n_i = prod_{j != i} x_j, so the sharpness is
    lambda_1 = sum_i prod_{j != i} x_j^2 = sum_i 1 / x_i^2, minimised (= D) at the
    balanced points |x_i| = 1. Gradient flow conserves x_i^2 - x_j^2, so
    Phi(x)_i = sign(x_i) sqrt(x_i^2 + c) with c the root of prod_i (x_i^2 + c) = 1.
    """

    def __init__(self, D):
        self._core = _core.ScalarProduct(as_positive_int(D, "D"))

    def phi(self, x) -> np.ndarray:
        """The limit of gradient flow from ``x``.

        Raises ValueError when the flow does not reach Gamma: when the signs
        of the non-zero coordinates multiply to -1, or two coordinates are 0.
        """
        x = as_vector(x, self.dim)
        zeros = np.flatnonzero(x == 0)
        signs = np.sign(x)
        if len(zeros) >= 2:
            raise ValueError("x has two zero coordinates: a critical point off the manifold")
        if len(zeros) == 1:
            signs[zeros[0]] = np.prod(signs[x != 0])
        elif np.prod(signs) < 0:
            raise ValueError("prod(x) < 0: gradient flow from x does not reach prod(x) = 1")
        sq = x * x
        m = sq.min()
        # c = e^w - m: f(w) = sum_i log(x_i^2 - m + e^w) is increasing in w,
        # -> -inf as w -> -inf, and f(w) >= D w >= 0 for w >= 0.
        excess = sq - m

        def f(w):
            return np.sum(np.log(excess + np.exp(w)))

        w_hi, w_lo = 0.0, -1.0
        while f(w_lo) > 0:
            w_lo *= 2
        from scipy.optimize import brentq

        w = brentq(f, w_lo, w_hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)
        return signs * np.sqrt(excess + np.exp(w))

    def manifold_normal_vector(self, X) -> np.ndarray:
        """grad p(X), n_i = prod_{j != i} X_j (unnormalised)."""
        X = as_vector(X, self.dim, "X")
        return np.array([np.prod(np.delete(X, i)) for i in range(self.dim)])

    def manifold_sharpness(self, X) -> float:
        """lambda_1 on Gamma: sum_i prod_{j != i} X_j^2 (= sum_i 1/X_i^2 there)."""
        n = self.manifold_normal_vector(X)
        return float(n @ n)

    def manifold_normal(self, X) -> np.ndarray:
        """The top eigenvector v_1 on Gamma (unit, sign of grad p)."""
        n = self.manifold_normal_vector(X)
        return n / np.linalg.norm(n)

    def tangent_projection(self, X) -> np.ndarray:
        """P_X = I - v_1 v_1^T, the projection on T_X Gamma."""
        v = self.manifold_normal(X)
        return np.eye(self.dim) - np.outer(v, v)


class Valley2D(Problem):
    """L(x, y) = (1 + x^2) y^2, the first figure of Arora, Li & Panigrahi (2022).

    Gamma = {y = 0}; on it the Hessian is diag(0, 2 (1 + x^2)), so
    lambda_1 = 2 (1 + x^2), v_1 = e_y and P_X projects on e_x. Gradient flow
    conserves ln|x| + x^2/2 - y^2/2, hence
    Phi(x, y) = (sign(x) sqrt(W(x^2 exp(x^2 - y^2))), 0) with W the Lambert W
    function, evaluated as Wright's omega(ln x^2 + x^2 - y^2) = W(e^.) so that
    large x do not overflow.
    """

    def __init__(self):
        self._core = _core.Valley2D()

    def phi(self, x) -> np.ndarray:
        from scipy.special import wrightomega

        x0, y0 = as_vector(x, 2)
        if x0 == 0:
            return np.zeros(2)
        return np.array(
            [np.sign(x0) * np.sqrt(wrightomega(np.log(x0 * x0) + x0 * x0 - y0 * y0)), 0.0]
        )

    def manifold_sharpness(self, X) -> float:
        X = as_vector(X, 2, "X")
        return 2.0 * (1.0 + X[0] ** 2)

    def manifold_normal(self, X) -> np.ndarray:
        as_vector(X, 2, "X")
        return np.array([0.0, 1.0])

    def tangent_projection(self, X) -> np.ndarray:
        as_vector(X, 2, "X")
        return np.diag([1.0, 0.0])

    def limiting_flow(self, X0, tau, algorithm="ngd") -> np.ndarray:
        """X(tau) on Gamma from X0 = (x0, 0).

        NGD: dx/dtau = -x / (2 (1 + x^2)), x(tau) = sign(x0) sqrt(W(x0^2 exp(x0^2 - tau)));
        sqrt(L)-GD: dx/dtau = -x / 2, x(tau) = x0 exp(-tau / 2).
        """
        from scipy.special import wrightomega

        _check_algorithm(algorithm)
        tau = _check_tau(tau)
        x0 = as_vector(X0, 2, "X0")[0]
        if algorithm == "sqrt":
            return np.array([x0 * np.exp(-tau / 2), 0.0])
        if x0 == 0:
            return np.zeros(2)
        return np.array([np.sign(x0) * np.sqrt(wrightomega(np.log(x0 * x0) + x0 * x0 - tau)), 0.0])


class TwoNormal(Problem):
    """L(x, y, z) = 1/2 (a(x) y^2 + b z^2) with a(x) = 3 + sin x > b = 1.

    Gamma = {y = z = 0} (two normal directions); on it the Hessian is
    diag(0, a(x), 1), so lambda_1 = a(x) = 3 + sin x (simple: a >= 2 > 1),
    v_1 = e_y and P_X projects on e_x. With psi = ln|tan(pi/4 + x/2)| (monotone
    between consecutive zeros of cos x, where a' = cos x vanishes) and
    G(psi) = 6 psi + 2 ln cosh psi (= integral of 2 a / a' dx), gradient flow
    conserves G - y^2/2, so Phi = (x_inf, 0, 0) with G(x_inf) = G(x) - y^2/2 in the
    same cell. Limiting flows: NGD dx/dtau = -a'/(4a), i.e. G decreases at
    rate 1/2; sqrt(L)-GD dx/dtau = -a'/8, i.e. psi decreases at rate 1/8.
    All go to x = -pi/2 (mod 2 pi), the minimum of a.
    """

    def __init__(self):
        self._core = _core.TwoNormal()

    @staticmethod
    def _psi(x: float) -> float:
        return float(np.log(abs(np.tan(np.pi / 4 + x / 2))))

    @staticmethod
    def _G(psi: float) -> float:
        return 6 * psi + 2 * _log_cosh(psi)

    @staticmethod
    def _x_from_psi(psi: float, x0: float) -> float:
        k = np.floor((x0 + np.pi / 2) / np.pi)  # x0 in [-pi/2 + k pi, pi/2 + k pi)
        t = 2 * np.arctan(np.exp(psi))
        if k % 2 == 0:
            return float(t - np.pi / 2 + k * np.pi)
        return float(3 * np.pi / 2 - t + (k - 1) * np.pi)

    def _move(self, x0: float, dG: float) -> float:
        if np.cos(x0) == 0:
            return x0
        psi0 = self._psi(x0)
        psi = _solve_increasing(self._G, self._G(psi0) - dG, psi0, 4.0, 8.0)
        return self._x_from_psi(psi, x0)

    def phi(self, x) -> np.ndarray:
        x0, y0, _ = as_vector(x, 3)
        return np.array([self._move(x0, 0.5 * y0 * y0), 0.0, 0.0])

    def manifold_sharpness(self, X) -> float:
        X = as_vector(X, 3, "X")
        return 3.0 + np.sin(X[0])

    def manifold_normal(self, X) -> np.ndarray:
        as_vector(X, 3, "X")
        return np.array([0.0, 1.0, 0.0])

    def tangent_projection(self, X) -> np.ndarray:
        as_vector(X, 3, "X")
        return np.diag([1.0, 0.0, 0.0])

    def limiting_flow(self, X0, tau, algorithm="ngd") -> np.ndarray:
        """X(tau) on Gamma from X0 = (x0, 0, 0) (closed form up to a scalar root for NGD)."""
        _check_algorithm(algorithm)
        tau = _check_tau(tau)
        x0 = as_vector(X0, 3, "X0")[0]
        if algorithm == "ngd":
            return np.array([self._move(x0, 0.5 * tau), 0.0, 0.0])
        if np.cos(x0) == 0:
            return np.array([x0, 0.0, 0.0])
        return np.array([self._x_from_psi(self._psi(x0) - tau / 8, x0), 0.0, 0.0])


class Circle(Problem):
    """L = 1/2 a(theta) (r - 1)^2 with a(theta) = 2 + cos theta, in Cartesian (x, y).

    Gamma is the unit circle; on it the Hessian is a(theta) n n^T with n the
    radial unit vector, so lambda_1 = 2 + cos theta = 2 + x, v_1 = (x, y) and
    P_X = I - X X^T. The loss is undefined at the origin (theta has no value
    there; the limit depends on the direction), so every method raises
    ValueError at r = 0, and the derivatives grow like r^-k as r -> 0.
    With chi = ln|tan(theta/2)| and K(chi) = -4 chi + 2 ln cosh chi (= integral of
    2 a / a' dtheta), gradient flow conserves K - ln r - 1/r, so Phi is the point
    of the unit circle with K(theta_inf) = K(theta) - (ln r + 1/r - 1), on the same
    side of the x-axis. Limiting flows (arc length = theta): NGD
    dtheta/dtau = -a'/(4a), i.e. K decreases at rate 1/2; sqrt(L)-GD
    dtheta/dtau = -a'/8, i.e. chi increases at rate 1/8. All go to theta = pi.
    """

    def __init__(self):
        self._core = _core.Circle()

    @staticmethod
    def _minus_K(chi: float) -> float:
        return 4 * chi - 2 * _log_cosh(chi)

    @staticmethod
    def _polar(X) -> tuple[float, float]:
        x, y = as_vector(X, 2, "X")
        r = float(np.hypot(x, y))
        if r == 0:
            raise ValueError("Circle is undefined at the origin (r = 0)")
        return r, float(np.arctan2(y, x))

    def _move(self, theta0: float, dK: float) -> np.ndarray:
        if np.sin(theta0) == 0:
            return np.array([np.cos(theta0), 0.0])
        chi0 = float(np.log(abs(np.tan(theta0 / 2))))
        chi = _solve_increasing(self._minus_K, self._minus_K(chi0) + dK, chi0, 2.0, 6.0)
        return self._point(chi, theta0)

    @staticmethod
    def _point(chi: float, theta0: float) -> np.ndarray:
        theta = 2 * np.arctan(np.exp(chi)) * np.sign(theta0)
        return np.array([np.cos(theta), np.sin(theta)])

    def phi(self, x) -> np.ndarray:
        r, theta = self._polar(x)
        return self._move(theta, np.log(r) + 1 / r - 1)

    def manifold_sharpness(self, X) -> float:
        r, theta = self._polar(X)
        return 2.0 + np.cos(theta)

    def manifold_normal(self, X) -> np.ndarray:
        r, theta = self._polar(X)
        return np.array([np.cos(theta), np.sin(theta)])

    def tangent_projection(self, X) -> np.ndarray:
        n = self.manifold_normal(X)
        return np.eye(2) - np.outer(n, n)

    def limiting_flow(self, X0, tau, algorithm="ngd") -> np.ndarray:
        """X(tau) on the unit circle from the angle of X0."""
        _check_algorithm(algorithm)
        tau = _check_tau(tau)
        _, theta0 = self._polar(X0)
        if algorithm == "ngd":
            return self._move(theta0, 0.5 * tau)
        if np.sin(theta0) == 0:
            return np.array([np.cos(theta0), 0.0])
        return self._point(float(np.log(abs(np.tan(theta0 / 2)))) + tau / 8, theta0)
