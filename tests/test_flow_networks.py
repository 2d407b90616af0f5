"""Phi on networks: the 1210-parameter one-hot MLP against a solve_ivp reference, and the
clear errors on bad input (saddles, under-parameterised models, bad tolerances)."""

import eosfast
import numpy as np
import pytest
from eosfast import flow
from eosfast.problems import ScalarProduct
from scipy.integrate import solve_ivp


def _onehot_digits_mlp():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data[:20] / 16.0
    Y = np.eye(10)[digits.target[:20]]
    return eosfast.problems.MLP(X, Y, hidden=[16], activation="tanh")


@pytest.mark.slow
def test_project_on_a_one_hot_mlp_matches_solve_ivp():
    problem = _onehot_digits_mlp()
    assert problem.dim == 1210
    x0 = eosfast.gradient_flow(problem, problem.init(seed=0), t_end=200.0, rtol=1e-6, atol=1e-8).x
    result = flow.project(problem, x0, tol=1e-9)
    assert result.converged and result.grad_norm <= 1e-9 and result.loss <= 1e-10
    assert result.grad_evals > 0 and result.integrator_steps > 0
    reference = solve_ivp(
        lambda t, x: -problem.grad(x),
        (0.0, 1e6),
        x0,
        method="BDF",
        rtol=1e-12,
        atol=1e-14,
        jac=lambda t, x: -problem.hessian(x).to_dense(max_dim=4000),
    )
    assert reference.status == 0
    np.testing.assert_allclose(result.point, reference.y[:, -1], atol=1e-6)


def test_project_rejects_the_saddle_of_the_scalar_product():
    with pytest.raises(eosfast.FlowConvergenceError, match="saddle"):
        flow.project(ScalarProduct(2), [1.0, -1.0])
    with pytest.raises(eosfast.FlowConvergenceError, match="saddle"):
        flow.project(ScalarProduct(2), [1.0, -1.0], loss_floor=None)
    with pytest.raises(eosfast.FlowConvergenceError, match="saddle"):
        flow.limiting_flow(ScalarProduct(2), "ngd", [1.0, -1.0], 1.0)
    assert flow.project(ScalarProduct(2), [2.0, 0.7]).converged


def test_project_on_an_under_parameterised_mlp_stops_within_its_budget():
    rng = np.random.default_rng(0)
    problem = eosfast.problems.MLP(
        rng.standard_normal((50, 3)), rng.standard_normal(50), hidden=[4]
    )
    assert problem.dim == 21
    with pytest.raises(eosfast.FlowConvergenceError, match="max_steps"):
        flow.project(problem, problem.init(seed=0), max_steps=5000)


def test_project_and_limiting_flow_validate_their_inputs():
    sp = ScalarProduct(2)
    with pytest.raises(ValueError, match="NaN"):
        flow.project(sp, [np.nan, 1.0])
    for bad in (0.0, -1e-6, np.nan):
        with pytest.raises(ValueError, match="rtol"):
            flow.limiting_flow(sp, "ngd", [2.0, 0.5], 1.0, rtol=bad)
        with pytest.raises(ValueError, match="rtol"):
            flow.project(sp, [2.0, 0.5], rtol=bad)
    with pytest.raises(ValueError, match="taus"):
        flow.limiting_flow(sp, "ngd", [2.0, 0.5], 1.0, taus=[np.nan])
    with pytest.raises(ValueError, match="on_degenerate"):
        flow.limiting_flow(sp, "ngd", [2.0, 0.5], 1.0, on_degenerate="crawl")
    with pytest.raises(ValueError, match="alignment_tol"):
        flow.predict_and_compare(sp, "ngd", [2.0, 0.5], 0.01, 0.1, alignment_tol=0.0)


def test_predict_and_compare_reports_cost_and_progress():
    from flow_toys import valley

    stages = []
    pred = flow.predict_and_compare(
        valley(), "ngd", np.array([2.0, 0.05]), 0.05, 0.1, progress=lambda *a: stages.append(a)
    )
    assert [s[0] for s in stages] == ["cost", "phase1", "phase1", "phase2", "flow", "compare"]
    assert pred.cost["phase2_steps"] == round(0.1 / 0.05**2)
    with pytest.raises(TypeError, match="progress"):
        flow.predict_and_compare(valley(), "ngd", np.array([2.0, 0.05]), 0.05, 0.1, progress=3)
