"""Closed-form toy landscapes (docs/theory.md, 7. Toy problems with closed forms) as
Python-callback problems with exact derivatives, plus their known manifold quantities:
independent references for the manifold-flow tests."""

import numpy as np
from eosfast.problems import Callback
from scipy.integrate import solve_ivp
from scipy.special import lambertw


def valley():
    """L(x, y) = (1 + x^2) y^2: Gamma = {y = 0}, lambda_1 = 2 (1 + x^2)."""

    def loss_and_grad(p):
        x, y = p
        return (1 + x * x) * y * y, np.array([2 * x * y * y, 2 * (1 + x * x) * y])

    def hvp(p, v):
        x, y = p
        H = np.array([[2 * y * y, 4 * x * y], [4 * x * y, 2 * (1 + x * x)]])
        return H @ v

    def third(p, u):
        x, y = p
        return np.array(
            [8 * y * u[0] * u[1] + 4 * x * u[1] ** 2, 4 * y * u[0] ** 2 + 8 * x * u[0] * u[1]]
        )

    return Callback(loss_and_grad, 2, hvp=hvp, third=third)


def valley_phi(p):
    x, y = p
    return np.array([np.sign(x) * np.sqrt(lambertw(x * x * np.exp(x * x - y * y)).real), 0.0])


def valley_ngd_flow(x0, tau):
    return np.sign(x0) * np.sqrt(lambertw(x0 * x0 * np.exp(x0 * x0 - tau)).real)


def valley_sqrt_flow(x0, tau):
    return x0 * np.exp(-tau / 2)


def two_normal():
    """L = 1/2 (a(x) y^2 + z^2), a = 3 + sin x: Gamma = {y = z = 0}, lambda_1 = a(x)."""

    def loss_and_grad(p):
        x, y, z = p
        a = 3 + np.sin(x)
        return 0.5 * (a * y * y + z * z), np.array([0.5 * np.cos(x) * y * y, a * y, z])

    def hvp(p, v):
        x, y, _ = p
        a = 3 + np.sin(x)
        H = np.array(
            [[-0.5 * np.sin(x) * y * y, np.cos(x) * y, 0], [np.cos(x) * y, a, 0], [0, 0, 1.0]]
        )
        return H @ v

    def third(p, u):
        x, y, _ = p
        # u^T H u = -1/2 sin(x) y^2 u0^2 + 2 cos(x) y u0 u1 + a u1^2 + u2^2
        dx = -0.5 * np.cos(x) * y * y * u[0] ** 2 - 2 * np.sin(x) * y * u[0] * u[1]
        dx += np.cos(x) * u[1] ** 2
        dy = -np.sin(x) * y * u[0] ** 2 + 2 * np.cos(x) * u[0] * u[1]
        return np.array([dx, dy, 0.0])

    return Callback(loss_and_grad, 3, hvp=hvp, third=third)


def circle():
    """L = 1/2 a(theta) (r - 1)^2, a = 2 + cos theta: Gamma = unit circle, lambda_1 = a."""

    def parts(p):
        x, y = p
        r = np.sqrt(x * x + y * y)  # complex-safe, for the complex-step HVP below
        c, s = x / r, y / r  # cos, sin theta
        return r, c, s

    def grad(p):
        r, c, s = parts(p)
        # dL/dr = a (r - 1), dL/dtheta = -1/2 sin(theta) (r - 1)^2
        dr, dth = (2 + c) * (r - 1), -0.5 * s * (r - 1) ** 2
        return dr * np.array([c, s]) + dth / r * np.array([-s, c])

    def loss_and_grad(p):
        r, c, _ = parts(p)
        return 0.5 * (2 + c) * (r - 1) ** 2, grad(p)

    def hvp(p, v, h=1e-30):
        # complex step: exact to rounding, since grad is analytic
        return grad(p + 1j * h * v).imag / h

    return Callback(loss_and_grad, 2, hvp=hvp)


def reference_flow_1d(rhs, x0, taus):
    """Integrate a scalar ODE dx/dtau = rhs(x) to 1e-12 as the flow reference."""
    sol = solve_ivp(
        lambda t, x: [rhs(x[0])], (0, max(taus)), [x0], t_eval=taus, rtol=1e-12, atol=1e-12
    )
    return sol.y[0]


def crossing():
    """L = 1/2 ((3 + x) y^2 + 5/2 z^2): Gamma = {y = z = 0}, lambda_1 = max(3 + x, 5/2).
    The NGD flow dx/dtau = -1 / (4 (3 + x)) drives x from 1 to the crossing x = -1/2
    (where lambda_1 = lambda_2) at tau = 2 (3 + x)^2 |_{-1/2}^{1} = 19.5."""

    def loss_and_grad(p):
        x, y, z = p
        return 0.5 * ((3 + x) * y * y + 2.5 * z * z), np.array([0.5 * y * y, (3 + x) * y, 2.5 * z])

    def hvp(p, v):
        x, y, _ = p
        return np.array([[0.0, y, 0.0], [y, 3 + x, 0.0], [0.0, 0.0, 2.5]]) @ v

    def third(p, u):
        return np.array([u[1] ** 2, 2 * u[0] * u[1], 0.0])

    return Callback(loss_and_grad, 3, hvp=hvp, third=third)
