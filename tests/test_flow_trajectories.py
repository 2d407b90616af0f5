"""Real Normalized GD / GD-on-sqrt(L) trajectories against the predicted limiting flows
(Arora, Li & Panigrahi 2022): Phi(x_t) follows X(lr^2 t) with an O(lr) error."""

import eosfast
import numpy as np
import pytest
from eosfast import flow
from eosfast.problems import Circle, TwoNormal, Valley2D

START = np.array([3.0, 0.5])


def _valley_error(algorithm, lr, tau_end=2.0):
    """max_t |Phi(x_t) - X(lr^2 t)| on the valley, both sides in closed form."""
    problem = Valley2D()
    optimizer = eosfast.NormalizedGD(lr) if algorithm == "ngd" else eosfast.SqrtGD(lr)
    steps = int(round(tau_end / lr**2))
    traj = eosfast.run(problem, optimizer, START, steps, save_iterates_every=steps // 8)
    X0 = problem.phi(START)
    errors = [
        np.linalg.norm(problem.phi(x) - problem.limiting_flow(X0, lr**2 * t, algorithm))
        for t, x in zip(traj.iterate_steps, traj.iterates, strict=True)
    ]
    return max(errors)


@pytest.mark.parametrize("algorithm", ["ngd", "sqrt"])
def test_tracking_error_shrinks_with_lr(algorithm):
    errors = [_valley_error(algorithm, lr) for lr in (0.04, 0.02, 0.01)]
    # O(lr): halving lr at least roughly halves the error.
    assert errors[1] < 0.6 * errors[0] and errors[2] < 0.6 * errors[1], errors
    assert errors[0] < 1e-2


@pytest.mark.parametrize("algorithm", ["ngd", "sqrt"])
def test_predict_and_compare_on_valley(algorithm):
    lr = 0.02
    pred = flow.predict_and_compare(Valley2D(), algorithm, START, lr, 2.0, points=8)
    c = pred.comparison
    assert pred.algorithm == algorithm and pred.lr == lr
    assert 0 < pred.onset_step < 200  # Phase I: Theta(1/lr) steps
    assert c.steps.size == 9 and c.tau[-1] == pytest.approx(2.0)
    # against the closed forms, independently of the numerical flow
    X0 = Valley2D().phi(pred.phase1.x_final)
    exact = np.array([Valley2D().limiting_flow(X0, t, algorithm) for t in c.tau])
    np.testing.assert_allclose(pred.flow.at(c.tau), exact, atol=1e-5)
    np.testing.assert_allclose(c.sharpness_flow, 2 * (1 + exact[:, 0] ** 2), rtol=1e-6)
    assert np.max(c.distance) < 2e-3
    assert np.max(c.relative_sharpness_error) < 2e-3
    assert c.sharpness_projected[-1] < 0.9 * c.sharpness_projected[0]  # real drift along Gamma
    # x_t - Phi(x_t) points along v_1 = e_y, and the indicators sit at their Phase-II values
    assert np.all(c.alignment[1:] > 0.999)
    assert np.array_equal(c.indicators["step"], c.steps)
    if algorithm == "ngd":
        np.testing.assert_allclose(c.indicators["inv_stableness_sum"][:-1], 1.0, atol=0.02)
    ratio = c.indicators["sqrt_loss_sum"][:-1] / c.indicators["sqrt_loss_reference"][:-1]
    np.testing.assert_allclose(ratio, 1.0, atol=0.05)
    assert "lam1(Phi x)" in c.table() and len(c.table().splitlines()) == 2 + c.steps.size
    assert set(c.as_dict()) >= {"distance", "tau", "indicator_sqrt_loss_sum"}


@pytest.mark.parametrize(
    "problem, start, algorithm",
    [
        (TwoNormal(), np.array([0.3, 0.05, -0.04]), "ngd"),
        (Circle(), np.array([1.1 * np.cos(0.6), 1.1 * np.sin(0.6)]), "sqrt"),
    ],
)
def test_predict_and_compare_with_two_normal_directions_and_a_curved_manifold(
    problem, start, algorithm
):
    pred = flow.predict_and_compare(problem, algorithm, start, 0.01, 1.0, points=5)
    c = pred.comparison
    assert np.max(c.distance) < 5e-3
    assert np.max(c.relative_sharpness_error) < 5e-3
    assert c.sharpness_projected[-1] < c.sharpness_projected[0]


def test_compare_a_user_run():
    problem, lr = Valley2D(), 0.02
    traj = eosfast.run(
        problem, eosfast.SqrtGD(lr), START, 5000, save_iterates_every=1000, sharpness_every=500
    )
    result = flow.limiting_flow(problem, "sqrt", START, 2.0)
    c = flow.compare(problem, traj, result)
    np.testing.assert_array_equal(c.steps, traj.iterate_steps)
    assert np.max(c.distance) < 2e-3
    # the nearest sharpness measurement to each saved iterate
    np.testing.assert_array_equal(c.indicators["step"], c.steps)
    # iterates past the flow's end are left out; a later start shifts tau
    short = flow.limiting_flow(problem, "sqrt", traj.iterates[1], 0.8)
    c = flow.compare(problem, traj, short, start_step=1000)
    np.testing.assert_array_equal(c.steps, [1000, 2000, 3000])
    np.testing.assert_allclose(c.tau, [0.0, 0.4, 0.8])


def test_compare_and_predict_bad_input():
    problem = Valley2D()
    ngd = eosfast.run(problem, eosfast.NormalizedGD(0.02), START, 100, save_iterates_every=50)
    sqrt_flow = flow.limiting_flow(problem, "sqrt", START, 0.1)
    with pytest.raises(ValueError, match="flow is the 'sqrt'"):
        flow.compare(problem, ngd, sqrt_flow)
    gd = eosfast.run(problem, eosfast.GD(0.02), START, 10, save_iterates_every=5)
    with pytest.raises(ValueError, match="NormalizedGD or SqrtGD"):
        flow.compare(problem, gd, sqrt_flow)
    scheduled = eosfast.run(
        problem, eosfast.SqrtGD(eosfast.Schedule.linear_warmup(0.02, 5)), START, 10
    )
    with pytest.raises(ValueError, match="constant learning rate"):
        flow.compare(problem, scheduled, sqrt_flow)
    warmup = eosfast.SqrtGD(eosfast.Schedule.linear_warmup(0.02, 5))
    with pytest.raises(ValueError, match="optimizer's schedule is 'linear_warmup'"):
        flow.predict_and_compare(problem, warmup, START, 0.02, 1.0)
    unsaved = eosfast.run(problem, eosfast.SqrtGD(0.02), START, 10)
    with pytest.raises(ValueError, match="save_iterates_every"):
        flow.compare(problem, unsaved, sqrt_flow)
    with pytest.raises(eosfast.FlowConvergenceError, match="Phase II"):
        flow.predict_and_compare(problem, "ngd", START, 0.02, 1.0, max_phase1_steps=10)
    with pytest.raises(ValueError, match="tau_end"):
        flow.predict_and_compare(problem, "ngd", START, 0.02, -1.0)
    with pytest.raises(ValueError, match="lr"):
        flow.predict_and_compare(problem, "sqrt", START, 0.0, 1.0)


def test_ngd_on_an_mlp_follows_the_predicted_sharpness():
    """About 2k parameters, trained to zero MSE on the digits by Normalized GD itself (Phase
    I), then lambda_1(Phi(x_t)) against tau = lr^2 t follows the flow's lambda_1(X(tau))."""
    pytest.importorskip("sklearn")
    from eosfast.data import load_digits_data
    from eosfast.problems import MLP

    X, labels = load_digits_data(n_samples=60, targets="labels")
    problem = MLP(X, (labels - 4.5) / 3.0, hidden=[30], activation="tanh", loss="mse")
    assert 1900 <= problem.dim <= 2100
    pred = flow.predict_and_compare(
        problem, "ngd", problem.init(seed=3), 0.01, 1.0, points=8, rtol=1e-3, project_tol=1e-9
    )
    c = pred.comparison
    assert pred.phase1.loss[-1] < 1e-3  # near-zero loss once Phase II starts
    assert c.sharpness_projected[-1] < 0.8 * c.sharpness_projected[0]  # lambda_1 falls >= 20%
    assert np.max(c.relative_sharpness_error) < 0.05
    assert np.all(np.diff(c.sharpness_flow) < 0)
    np.testing.assert_allclose(c.indicators["inv_stableness_sum"][:-1], 1.0, atol=0.1)
