import warnings

import eosfast
import numpy as np
import pytest
from eosfast import flow
from eosfast.problems import Circle
from flow_toys import (
    circle,
    reference_flow_1d,
    two_normal,
    valley,
    valley_ngd_flow,
    valley_phi,
    valley_sqrt_flow,
)


@pytest.mark.parametrize("start", [(3.0, 0.5), (-1.2, 0.8), (0.7, -1.5)])
def test_project_matches_lambert_w(start):
    result = flow.project(valley(), np.array(start), tol=1e-12)
    assert result.converged and result.grad_norm <= 1e-12
    np.testing.assert_allclose(result.point, valley_phi(start), atol=1e-8)


def test_project_fails_clearly_without_minimisers():
    # L = x: gradient flow never stops
    runaway = eosfast.problems.Callback(lambda x: (x[0], np.ones(1)), 1)
    with pytest.raises(eosfast.FlowConvergenceError, match="did not reach"):
        flow.project(runaway, np.zeros(1), max_time=10.0)


def test_sharpness_gradient_and_tangent_on_valley():
    X = np.array([1.5, 0.0])
    top = flow.top_eigen(valley(), X)
    assert top.sharpness == pytest.approx(2 * (1 + 1.5**2), rel=1e-12)
    assert abs(top.vector[1]) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(flow.grad_sharpness(valley(), X), [4 * 1.5, 0.0], atol=1e-10)
    np.testing.assert_allclose(flow.tangent_projector(valley(), X), [[1, 0], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(
        flow.tangent_apply(valley(), X, np.array([0.3, 2.0])), [0.3, 0], atol=1e-6
    )


def test_tangent_projector_with_two_normal_directions():
    P = flow.tangent_projector(two_normal(), np.array([0.4, 0.0, 0.0]))
    np.testing.assert_allclose(P, np.diag([1.0, 0.0, 0.0]), atol=1e-12)
    with pytest.raises(ValueError, match="contradicts"):
        flow.tangent_projector(two_normal(), np.array([0.4, 0.0, 0.0]), rank=1)


def test_tangent_projector_on_the_circle():
    theta = 0.7
    X = np.array([np.cos(theta), np.sin(theta)])
    tangent = np.array([-np.sin(theta), np.cos(theta)])
    np.testing.assert_allclose(
        flow.tangent_projector(circle(), X), np.outer(tangent, tangent), atol=1e-8
    )


def test_eigengap_warning():
    # L = 1/2 (x_5^2 + x_6^2): the top eigenvalue is double everywhere.
    degenerate = eosfast.problems.Quadratic(np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0]))
    with pytest.warns(eosfast.EigengapWarning, match="eigengap"):
        flow.grad_sharpness(degenerate, np.zeros(6))


@pytest.mark.parametrize("algorithm, exact", [("ngd", valley_ngd_flow), ("sqrt", valley_sqrt_flow)])
def test_limiting_flow_on_valley(algorithm, exact):
    taus = np.linspace(0, 2, 9)
    result = flow.limiting_flow(
        valley(), algorithm, np.array([3.0, 0.0]), 2.0, taus=taus, rtol=1e-7
    )
    states = result.at(taus)
    np.testing.assert_allclose(states[:, 0], exact(3.0, taus), rtol=1e-5)
    np.testing.assert_allclose(states[:, 1], 0, atol=1e-9)
    np.testing.assert_allclose(
        result.sharpness_at(taus), 2 * (1 + exact(3.0, taus) ** 2), rtol=1e-4
    )
    assert np.all(np.diff(result.sharpness) < 0)  # both flows decrease lambda_1


def test_limiting_flow_accepts_optimizer_instances():
    result = flow.limiting_flow(valley(), eosfast.NormalizedGD(0.01), np.array([2.0, 0.0]), 0.5)
    assert result.algorithm == "ngd"
    with pytest.raises(TypeError):
        flow.limiting_flow(valley(), eosfast.GD(0.01), np.array([2.0, 0.0]), 0.5)
    with pytest.raises(ValueError, match="'ngd' or 'sqrt'"):
        flow.limiting_flow(valley(), "adam", np.array([2.0, 0.0]), 0.5)


@pytest.mark.parametrize("algorithm, c", [("ngd", 0.25), ("sqrt", 0.125)])
def test_limiting_flow_two_normal_directions(algorithm, c):
    def rhs(x):
        a, da = 3 + np.sin(x), np.cos(x)
        return -c * da / a if algorithm == "ngd" else -c * da

    taus = np.linspace(0, 1.5, 4)
    result = flow.limiting_flow(two_normal(), algorithm, np.array([0.3, 0.0, 0.0]), 1.5, taus=taus)
    np.testing.assert_allclose(result.at(taus)[:, 0], reference_flow_1d(rhs, 0.3, taus), rtol=1e-5)


@pytest.mark.parametrize("algorithm, c", [("ngd", 0.25), ("sqrt", 0.125)])
def test_limiting_flow_on_the_circle(algorithm, c):
    def rhs(theta):
        a, da = 2 + np.cos(theta), -np.sin(theta)
        return -c * da / a if algorithm == "ngd" else -c * da

    theta0, taus = 0.6, np.linspace(0, 2, 5)
    X0 = np.array([np.cos(theta0), np.sin(theta0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = flow.limiting_flow(Circle(), algorithm, X0, 2.0, taus=taus, rtol=1e-7)
    states = result.at(taus)
    np.testing.assert_allclose(np.hypot(states[:, 0], states[:, 1]), 1.0, atol=1e-7)
    theta = np.arctan2(states[:, 1], states[:, 0])
    np.testing.assert_allclose(theta, reference_flow_1d(rhs, theta0, taus), atol=1e-5)
    # The same flow from a Python callback without `third` (finite differences): labelled.
    with pytest.warns(eosfast.FiniteDifferenceWarning):
        approximate = flow.limiting_flow(circle(), algorithm, X0, 2.0, taus=taus, rtol=1e-7)
    np.testing.assert_allclose(approximate.at(taus), states, atol=1e-5)


def test_implicit_tangent_agrees_with_explicit():
    X0, taus = np.array([2.0, 0.0]), np.array([0.0, 0.5, 1.0])
    explicit = flow.limiting_flow(valley(), "ngd", X0, 1.0, taus=taus, tangent="explicit")
    implicit = flow.limiting_flow(valley(), "ngd", X0, 1.0, taus=taus, tangent="implicit")
    np.testing.assert_allclose(implicit.at(taus), explicit.at(taus), atol=1e-5)


def test_finite_difference_third_is_labelled():
    """A callback without `third` still gives grad lambda_1 (finite differences), with a
    warning that says so; its value agrees with the exact one to finite-difference accuracy."""
    exact = valley()

    def loss_and_grad(p):
        return exact.loss_and_grad(p)

    approximate = eosfast.problems.Callback(loss_and_grad, 2)
    X = np.array([1.5, 0.0])
    with pytest.warns(eosfast.FiniteDifferenceWarning, match="finite differences"):
        g = flow.grad_sharpness(approximate, X)
    np.testing.assert_allclose(g, flow.grad_sharpness(exact, X), rtol=1e-5, atol=1e-6)


def test_limiting_flow_warns_once_about_a_repeated_top_eigenvalue():
    # L = 1/2 (a(x) y^2 + a(x) z^2): the top eigenvalue a(x) = 3 + sin x is double on Gamma.
    def loss_and_grad(p):
        x, y, z = p
        a, r = 3 + np.sin(x), y * y + z * z
        return 0.5 * a * r, np.array([0.5 * np.cos(x) * r, a * y, a * z])

    def hvp(p, v):
        x, y, z = p
        a, c = 3 + np.sin(x), np.cos(x)
        H = np.array(
            [[-0.5 * np.sin(x) * (y * y + z * z), c * y, c * z], [c * y, a, 0], [c * z, 0, a]]
        )
        return H @ v

    def third(p, u):
        x, y, z = p
        c, s = np.cos(x), np.sin(x)
        dx = -0.5 * c * (y * y + z * z) * u[0] ** 2 - 2 * s * (y * u[1] + z * u[2]) * u[0]
        dx += c * (u[1] ** 2 + u[2] ** 2)
        dy = -s * y * u[0] ** 2 + 2 * c * u[0] * u[1]
        dz = -s * z * u[0] ** 2 + 2 * c * u[0] * u[2]
        return np.array([dx, dy, dz])

    double = eosfast.problems.Callback(loss_and_grad, 3, hvp=hvp, third=third)
    # By default the flow stops where lambda_1 is not simple, with the gap status.
    stopped = flow.limiting_flow(double, "sqrt", np.array([0.3, 0.0, 0.0]), 0.5)
    assert stopped.status == "eigengap_closed" and stopped.info["gap_tau"] == 0.0
    assert stopped.steps == 0 and stopped.tau.size == 1
    np.testing.assert_allclose(stopped.at(0.0), [0.3, 0.0, 0.0], atol=1e-9)
    with pytest.warns(eosfast.EigengapWarning, match="repeated at") as record:
        result = flow.limiting_flow(
            double, "sqrt", np.array([0.3, 0.0, 0.0]), 0.5, on_degenerate="continue"
        )
    assert len(record) == 1 and result.status == "completed"
    assert result.info["degenerate_evaluations"] == result.info["velocity_evaluations"]
    assert result.info["smallest_eigengap"] < 1e-3


def test_scope_cross_entropy_is_an_error_and_relu_a_warning():
    X = np.random.default_rng(0).standard_normal((6, 3))
    ce = eosfast.problems.MLP(X, np.array([0, 1, 2, 0, 1, 2]), hidden=[4], loss="ce")
    with pytest.raises(ValueError, match="cross-entropy has no manifold"):
        flow.limiting_flow(ce, "ngd", ce.init(seed=0), 0.1)
    with pytest.raises(ValueError, match="cross-entropy has no manifold"):
        flow.predict_and_compare(ce, "ngd", ce.init(seed=0), 0.01, 0.1)
    relu = eosfast.problems.MLP(X, X[:, :1], hidden=[8], activation="relu")
    with pytest.raises(ValueError, match="tau_end"), pytest.warns(UserWarning, match="ReLU"):
        flow.limiting_flow(relu, "sqrt", relu.init(seed=0), -1.0)
