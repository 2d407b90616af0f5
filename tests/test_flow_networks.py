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
    assert result.endgame == "gauss-newton" and result.jacobians >= 1
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


def test_project_on_an_under_parameterised_mlp_fails_fast():
    rng = np.random.default_rng(0)
    problem = eosfast.problems.MLP(
        rng.standard_normal((50, 3)), rng.standard_normal(50), hidden=[4]
    )
    assert problem.dim == 21
    with pytest.raises(eosfast.FlowConvergenceError, match="under-parameterised"):
        flow.project(problem, problem.init(seed=0))
    with pytest.raises(eosfast.FlowConvergenceError, match="max_steps"):
        flow.project(problem, problem.init(seed=0), max_steps=5000, loss_floor=None)


def _small_onehot_mlp():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4))
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    return eosfast.problems.MLP(X, Y, hidden=[5], activation="tanh")


def test_residual_jacobian_matches_finite_differences_and_autograd():
    torch = pytest.importorskip("torch")
    problem = _small_onehot_mlp()
    x = problem.init(seed=2)
    J = problem.residual_jacobian(x)
    r = problem.residuals(x)
    assert J.shape == (6 * 3, problem.dim)
    assert abs(0.5 * r @ r - problem.loss(x)) < 1e-15
    np.testing.assert_allclose(J.T @ r, problem.grad(x), atol=1e-14)
    e = 1e-6
    fd = np.column_stack(
        [
            (problem.residuals(x + e * u) - problem.residuals(x - e * u)) / (2 * e)
            for u in np.eye(problem.dim)
        ]
    )
    np.testing.assert_allclose(J, fd, atol=1e-8)
    (W1, b1), (W2, b2) = problem.unflatten(x)
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.standard_normal((6, 4)))
    sizes = [W1.size, b1.size, W2.size, b2.size]

    def outputs(theta):
        w1, c1, w2, c2 = torch.split(theta, sizes)
        hidden = torch.tanh(X @ w1.reshape(W1.shape).T + c1)
        return (hidden @ w2.reshape(W2.shape).T + c2).reshape(-1) / np.sqrt(6)

    auto = torch.autograd.functional.jacobian(outputs, torch.tensor(x)).numpy()
    np.testing.assert_allclose(J, auto, atol=1e-13)
    with pytest.raises(ValueError, match="mse"):
        eosfast.problems.MLP(X.numpy(), np.arange(6) % 3, hidden=[5], loss="ce").residuals(
            np.zeros(38)
        )


def test_gauss_newton_end_game_agrees_with_newton_krylov_and_the_flow():
    problem = _small_onehot_mlp()
    x0 = eosfast.gradient_flow(problem, problem.init(seed=0), t_end=300.0).x
    gn = flow.project(problem, x0, tol=1e-11)
    nk = flow.project(problem, x0, tol=1e-11, endgame="newton-krylov")
    assert gn.endgame == "gauss-newton" and gn.jacobians >= 1 and gn.hvps == 0
    assert nk.endgame == "newton-krylov" and nk.jacobians == 0
    assert gn.grad_norm <= 1e-11 and gn.loss <= 1e-20
    np.testing.assert_allclose(gn.point, nk.point, atol=1e-8)
    reference = solve_ivp(
        lambda t, x: -problem.grad(x), (0.0, 1e5), x0, method="LSODA", rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(gn.point, reference.y[:, -1], atol=1e-7)
    with pytest.raises(ValueError, match="endgame"):
        flow.project(problem, x0, endgame="bfgs")
    with pytest.raises(ValueError, match="least-squares"):
        flow.project(ScalarProduct(2), [2.0, 0.7], endgame="gauss-newton")
    with pytest.raises(ValueError, match="project_options"):
        flow.limiting_flow(problem, "ngd", x0, 0.1, project_options={"tol": 1e-3})


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
    names = [s[0] for s in stages]
    assert names[0] == "cost" and names[-1] == "compare"
    order = list(dict.fromkeys(names))
    assert order == ["cost", "phase1", "phase2", "flow", "compare"]
    assert stages[names.index("flow") - 1][0] == "cost"  # the flow's own estimate
    flow_reports = [s for s in stages if s[0] == "flow"]
    assert flow_reports[-1][1:] == (100, 100)
    assert all(a[1] <= b[1] for a, b in zip(flow_reports, flow_reports[1:], strict=False))
    assert pred.cost["phase2_steps"] == round(0.1 / 0.05**2)
    assert pred.cost["flow_projections_per_step"] == 2
    with pytest.raises(TypeError, match="progress"):
        flow.predict_and_compare(valley(), "ngd", np.array([2.0, 0.05]), 0.05, 0.1, progress=3)


def test_a_closing_eigengap_stops_the_flow_with_its_status():
    from flow_toys import crossing

    # lambda_1 = 3 + x meets lambda_2 = 5/2 at x = -1/2, tau = 19.5; the relative gap
    # falls below 1e-3 at x = -1/2 + 2.5e-3 / (1 - 1e-3), tau = 2 (16 - (2.5 + 2.5e-3)^2).
    result = flow.limiting_flow(crossing(), "ngd", [1.0, 0.0, 0.0], 30.0)
    assert result.status == "eigengap_closed"
    x_gap = -0.5 + 2.5e-3 / (1 - 1e-3)
    tau_gap = 2 * (16 - (3 + x_gap) ** 2)
    assert result.tau[-1] <= result.info["gap_tau"] <= tau_gap + 0.5
    assert result.info["gap_tau"] > tau_gap - 2.0
    assert result.states[-1, 0] > x_gap and result.states[-1, 0] < -0.3
    assert result.steps + result.rejected < 1000
    np.testing.assert_allclose(result.sharpness[-1], 3 + result.states[-1, 0], rtol=1e-8)


def test_progress_true_shows_bars_or_lines(capsys):
    from flow_toys import valley

    flow.limiting_flow(valley(), "ngd", [2.0, 0.0], 0.2, progress=True)
    err = capsys.readouterr().err
    assert "estimated cost" in err and "flow" in err


def test_bad_input_gives_a_clear_error_never_a_hang():
    from eosfast.problems import MLP, Quadratic

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 3)), rng.standard_normal(8)
    # NaN in the data: rejected when the problem is built.
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLP(bad, y, hidden=[6])
    with pytest.raises(ValueError, match="NaN"):
        MLP(X, np.where(np.arange(8) == 3, np.nan, y), hidden=[6])
    # Cross-entropy: no minimisers at finite parameters.
    ce = MLP(X, np.arange(8) % 2, hidden=[6], loss="ce")
    with pytest.raises(ValueError, match="cross-entropy"):
        flow.project(ce, ce.init(seed=0))
    with pytest.raises(ValueError, match="cross-entropy"):
        flow.predict_and_compare(ce, "ngd", ce.init(seed=0), 0.01, 0.1)
    # No minimiser at all (unbounded below): the flow diverges, a clear error.
    with pytest.raises(eosfast.FlowConvergenceError, match="status"):
        flow.project(Quadratic(np.diag([1.0, -1.0])), [1.0, 1.0])
    # A start far from Gamma: bounded work, then an error naming the limits.
    mlp = MLP(X, y, hidden=[6])
    with pytest.raises(eosfast.FlowConvergenceError, match="max_steps"):
        flow.project(mlp, 30.0 * mlp.init(seed=0), max_steps=3000)
