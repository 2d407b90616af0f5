import math

import eosfast
import numpy as np
import pytest
from conftest import random_symmetric
from eosfast.problems import Callback, Quadratic
from scipy.linalg import expm
from scipy.special import lambertw


def exact_quadratic_flow(A, b, x0, t):
    x_star = np.linalg.solve(A, b)
    return x_star + expm(-t * A) @ (x0 - x_star)


@pytest.mark.parametrize("dense_output", [True, False])
def test_quadratic_matches_matrix_exponential(rng, dense_output):
    A = random_symmetric(rng, 6, np.geomspace(0.1, 5.0, 6))
    b = rng.standard_normal(6)
    x0 = rng.standard_normal(6)
    times = np.array([0.0, 0.05, 0.3, 1.0, 2.5, 4.0])
    res = eosfast.gradient_flow(
        Quadratic(A, b), x0, times=times, rtol=1e-11, atol=1e-13, dense_output=dense_output
    )
    assert res.converged and res.status == "completed" and res.t == 4.0
    assert res.states.shape == (6, 6)
    for t, state in zip(times, res.states, strict=True):
        np.testing.assert_allclose(state, exact_quadratic_flow(A, b, x0, t), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(res.x, res.states[-1])
    assert res.grad_evals >= 6 * res.steps


def test_tolerance_controls_the_error(rng):
    A = random_symmetric(rng, 4, [0.5, 1.0, 2.0, 3.0])
    x0 = rng.standard_normal(4)
    exact = exact_quadratic_flow(A, np.zeros(4), x0, 3.0)
    errors, steps = [], []
    for rtol in (1e-4, 1e-7, 1e-10):
        res = eosfast.gradient_flow(Quadratic(A), x0, 3.0, rtol=rtol, atol=rtol * 1e-2)
        errors.append(np.abs(res.x - exact).max())
        steps.append(res.steps)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-9
    assert steps[0] < steps[1] < steps[2]


@pytest.mark.parametrize("condition", [10.0, 1e4])
def test_reaches_the_minimiser(rng, condition):
    A = random_symmetric(rng, 8, np.geomspace(1.0, condition, 8))
    b = rng.standard_normal(8)
    res = eosfast.gradient_flow(Quadratic(A, b), rng.standard_normal(8), gtol=1e-10)
    assert res.converged and res.status == "converged" and res.grad_norm <= 1e-10
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), atol=1e-9)
    if condition > 100:  # stiff: the Newton-CG end game finishes it
        assert res.stiff and res.newton_steps >= 1 and res.hvps >= 1
        assert res.steps < 2000


def test_limit_on_a_manifold_of_minima_keeps_flat_directions(rng):
    # L = 1/2 x^T A x with a 3-dim kernel: Phi(x0) = projection of x0 onto ker A.
    Q, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    A = (Q * np.array([0, 0, 0, 1.0, 10.0, 100.0, 1000.0])) @ Q.T
    x0 = rng.standard_normal(7)
    res = eosfast.gradient_flow(Quadratic(A), x0, gtol=1e-11)
    assert res.converged
    P = Q[:, :3] @ Q[:, :3].T
    np.testing.assert_allclose(res.x, P @ x0, atol=1e-10)


def toy_problem():
    """L(x, y) = (1 + x^2) y^2: Gamma = {y = 0}, the first figure of Arora et al."""

    def loss_and_grad(z):
        x, y = z
        return (1 + x * x) * y * y, np.array([2 * x * y * y, 2 * (1 + x * x) * y])

    def hvp(z, v):
        x, y = z
        H = np.array([[2 * y * y, 4 * x * y], [4 * x * y, 2 * (1 + x * x)]])
        return H @ v

    return Callback(loss_and_grad, 2, hvp=hvp)


@pytest.mark.parametrize("start", [(3.0, 0.5), (1.0, -1.2), (-2.0, 0.3)])
def test_phi_of_the_toy_problem_matches_lambert_w(start):
    x, y = start
    expected = np.sign(x) * np.sqrt(lambertw(x * x * np.exp(x * x - y * y)).real)
    res = eosfast.gradient_flow(toy_problem(), np.array(start), gtol=1e-12, rtol=1e-10)
    assert res.converged
    np.testing.assert_allclose(res.x, [expected, 0.0], atol=1e-7)


def test_conserved_quantity_along_the_toy_flow():
    # ln|x| + x^2/2 - y^2/2 is constant along the flow.
    times = np.linspace(0.0, 2.0, 9)
    res = eosfast.gradient_flow(toy_problem(), np.array([1.5, 1.0]), times=times, rtol=1e-11)
    x, y = res.states.T
    invariant = np.log(np.abs(x)) + x**2 / 2 - y**2 / 2
    np.testing.assert_allclose(invariant, invariant[0], atol=1e-9)


def test_statuses_and_errors():
    problem = Quadratic(np.array([1.0, 1e3]))
    short = eosfast.gradient_flow(problem, np.ones(2), 100.0, max_steps=5)
    assert short.status == "max_steps" and not short.converged
    no_end = eosfast.gradient_flow(problem, np.ones(2), gtol=1e-8, endgame=False, max_steps=20)
    assert no_end.status == "max_steps" and no_end.newton_steps == 0
    with pytest.raises(ValueError, match="needs gtol"):
        eosfast.gradient_flow(problem, np.ones(2), math.inf)
    with pytest.raises(ValueError, match="sorted"):
        eosfast.gradient_flow(problem, np.ones(2), times=[1.0, 0.5])
    with pytest.raises(ValueError, match="beyond t_end"):
        eosfast.gradient_flow(problem, np.ones(2), 1.0, times=[2.0])
    with pytest.raises(ValueError, match="give t_end"):
        eosfast.gradient_flow(problem, np.ones(2))
    with pytest.raises(ValueError, match="shape"):
        eosfast.gradient_flow(problem, np.ones(3), 1.0)


def test_unbounded_below_is_diverged_or_stopped():
    problem = Callback(lambda z: (-float(np.exp(z[0])), np.array([-np.exp(z[0])])), 1)
    res = eosfast.gradient_flow(problem, np.zeros(1), 10.0)
    assert not res.converged and res.status in ("step_size_underflow", "max_steps", "diverged")


def test_callback_exception_propagates():
    def bad(z):
        raise RuntimeError("broken gradient")

    with pytest.raises(RuntimeError, match="broken gradient"):
        eosfast.gradient_flow(Callback(bad, 2), np.ones(2), 1.0)


def test_the_result_is_the_bound_cpp_struct_read_only():
    from eosfast import _core
    from eosfast.problems import Quadratic

    result = eosfast.gradient_flow(Quadratic(np.diag([1.0, 2.0])), [1.0, 1.0], times=[0.5, 1.0])
    assert isinstance(result, eosfast.FlowResult) and eosfast.FlowResult is _core.FlowResult
    assert result.states.shape == (2, 2) and result.times.shape == (2,)
    np.testing.assert_allclose(result.states[-1], result.x)
    np.testing.assert_allclose(result.x, np.exp([-1.0, -2.0]), rtol=1e-6)
    with pytest.raises(AttributeError):
        result.status = "converged"
    assert not result.x.flags.writeable
    assert "FlowResult(status='completed'" in repr(result)
